"""Compiled kernels of the offsets' exact coordinate updates (docs/MATH.md section 2, step 4): intercepts, biases
and cross-task weights with their per-item / per-user deviations, as blocks of per-entry offsets ``values[index_e] *
contribution_e``. Re-exported by :mod:`.kernels`, where the solver finds them. Arrays only (numba)."""
import numpy as np
from numba import njit, prange


@njit(cache=True)
def coordinate_update(a, z, f, o, contribution, values, index, lam, reg):
    """Exact minimisation over one block of per-entry offsets ``values[index_e] * contribution_e`` of the weighted
    squared loss sum_e lam a_e (z_e - f_e - o_e)^2 + reg |values|^2 (docs/MATH.md section 2, step 4).

    ``o`` (the current offsets) is updated in place to the new block; the new block is returned. Rows of the block
    that no entry touches get 0.
    """
    n = values.shape[0]
    num = np.zeros(n)
    den = np.zeros(n)
    for e in range(f.shape[0]):
        c = contribution[e]
        if c == 0.0:
            continue
        i = index[e]
        ac = a[e] * c
        num[i] += ac * (z[e] - f[e] - o[e] + values[i] * c)
        den[i] += ac * c
    new = np.zeros(n)
    for i in range(n):
        d = lam * den[i] + reg
        if d > 0.0:
            new[i] = lam * num[i] / d
    for e in range(f.shape[0]):
        c = contribution[e]
        if c != 0.0:
            i = index[e]
            o[e] += (new[i] - values[i]) * c
    return new


@njit(inline="always")
def _block_index(kind, row, col):
    """Index of an entry's value within a block of kind 0 (one value), 1 / 3 (per user), 2 / 4 (per item)."""
    if kind == 0:
        return 0
    if kind == 1 or kind == 3:
        return row
    return col


@njit(inline="always")
def _block_value(values, start, joint, i):
    """The value a block starting at ``start`` puts on an entry of index i: beta + gamma_i for a joint block
    (kinds 3 / 4, beta first), values[start + i] otherwise."""
    if joint:
        return values[start] + values[start + 1 + i]
    return values[start + i]


@njit(parallel=True, cache=True)
def coordinate_blocks(a, z, f, o, cross, rows, cols, feats, kinds, regs, starts, values, lam, n_chunks):
    """:func:`coordinate_update` over a sequence of blocks, each pass over the entries applying the previous
    block's change to ``o`` while it gathers the next block's sums (B + 1 passes for B blocks, not 2B), the entries
    split into ``n_chunks`` parallel chunks with their own sums.

    Block b holds ``values[starts[b]:starts[b + 1]]``; its contribution on entry e is ``cross[e, feats[b]]``
    (``feats[b] < 0``: 1) times its value at index 0, ``rows[e]`` or ``cols[e]`` for ``kinds[b]`` 0, 1 or 2. Kinds
    3 and 4 are a shared value and its per-user / per-item deviations minimised jointly: the block holds
    [beta, gamma_0, ...], entry e carries beta + gamma[index_e], both penalised by ``regs[b]``. The joint minimum
    is closed form: for fixed beta each gamma_i = lam (N_i - D_i beta) / (lam D_i + reg), and beta solves
    reg beta = reg sum_i gamma_i(beta) (N_i, D_i: the entries' sums of a c r and a c^2 on index i). Returns the
    new values; ``o`` is updated in place.
    """
    n_entries = f.shape[0]
    size = (n_entries + n_chunks - 1) // n_chunks
    new = values.copy()
    prev = -1
    for b in range(feats.shape[0] + 1):
        last = b == feats.shape[0]
        joint = (not last) and kinds[b] >= 3
        shift = 1 if joint else 0  # joint blocks keep beta first
        n = 0 if last else starts[b + 1] - starts[b] - shift
        num = np.zeros((n_chunks, n))
        den = np.zeros((n_chunks, n))
        for chunk in prange(n_chunks):
            for e in range(chunk * size, min(n_entries, (chunk + 1) * size)):
                if prev >= 0:
                    c = 1.0 if feats[prev] < 0 else cross[e, feats[prev]]
                    if c != 0.0:
                        i = _block_index(kinds[prev], rows[e], cols[e])
                        joint_prev = kinds[prev] >= 3
                        o[e] += (_block_value(new, starts[prev], joint_prev, i)
                                 - _block_value(values, starts[prev], joint_prev, i)) * c
                if last:
                    continue
                c = 1.0 if feats[b] < 0 else cross[e, feats[b]]
                if c == 0.0:
                    continue
                i = _block_index(kinds[b], rows[e], cols[e])
                ac = a[e] * c
                num[chunk, i] += ac * (z[e] - f[e] - o[e] + _block_value(values, starts[b], joint, i) * c)
                den[chunk, i] += ac * c
        if last:
            break
        total_num = num.sum(axis=0)
        total_den = den.sum(axis=0)
        reg = regs[b]
        if joint:
            top = 0.0
            bottom = reg
            for i in range(n):
                d = lam * total_den[i] + reg
                top += reg * lam * total_num[i] / d
                bottom += reg * lam * total_den[i] / d
            beta = top / bottom if bottom > 0.0 else 0.0
            new[starts[b]] = beta
            for i in range(n):
                d = lam * total_den[i] + reg
                new[starts[b] + 1 + i] = lam * (total_num[i] - total_den[i] * beta) / d if d > 0.0 else 0.0
        else:
            for i in range(n):
                d = lam * total_den[i] + reg
                new[starts[b] + i] = lam * total_num[i] / d if d > 0.0 else 0.0
        prev = b
    return new


@njit(cache=True)
def block_sums(a, z, f, o, cross, feat, kind, rows, cols, values, n):
    """The entries' sums (num, den) of one block of :func:`coordinate_blocks` (its ``feats``, ``kinds`` and
    values for one block, ``n`` indices) at the current offsets ``o``: what one pass of that kernel gathers for
    the block. Sums over disjoint sets of entries add up (a distributed fit sums its blocks')."""
    joint = kind >= 3
    num = np.zeros(n)
    den = np.zeros(n)
    for e in range(f.shape[0]):
        c = 1.0 if feat < 0 else cross[e, feat]
        if c == 0.0:
            continue
        i = _block_index(kind, rows[e], cols[e])
        ac = a[e] * c
        num[i] += ac * (z[e] - f[e] - o[e] + _block_value(values, 0, joint, i) * c)
        den[i] += ac * c
    return num, den


@njit(cache=True)
def apply_block_change(o, cross, feat, kind, rows, cols, old, new):
    """Move the offsets ``o`` in place from one block's ``old`` values to its ``new`` ones (the pass of
    :func:`coordinate_blocks` that applies a finished block)."""
    joint = kind >= 3
    for e in range(o.shape[0]):
        c = 1.0 if feat < 0 else cross[e, feat]
        if c != 0.0:
            i = _block_index(kind, rows[e], cols[e])
            o[e] += (_block_value(new, 0, joint, i) - _block_value(old, 0, joint, i)) * c
