"""Compiled kernels of the alternating solver (numba), on plain arrays only.

Every row solve has the form of docs/MATH.md section 2, written once for all tasks by stacking them side by side:
the "augmented" columns j = i * T + t (T tasks) carry x_j = w_t * q_i, and for row u

    A_u = A0 + sum_j curv_uj x_j x_j^T        (A0 = sum_t lambda_t w0_t D_t G D_t + reg I, from the Gram matrix)
    b_u = sum_j lin_uj x_j

so the whole-data negatives never cost more than O(k^2) per row. ``reference.py`` holds a plain numpy version
of the same solves for the tests.
"""
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

from .offset_kernels import apply_block_change, block_sums, coordinate_blocks, coordinate_update  # noqa: F401

#: rows handed to a thread at a time: rows differ wildly in length (popular items), so static halves leave one
#: core idle; measured on Beibei's item side, 128 took 0.5 s where the default static split took 1.3 s
PARALLEL_CHUNKSIZE = 128


@contextmanager
def kernel_threads(n_jobs=None):
    """Run the compiled kernels on ``n_jobs`` threads (None: all cores) with dynamic row scheduling, and keep BLAS
    on one thread meanwhile: the solver's BLAS calls are small Gram matrices, and threaded BLAS would only fight the
    kernels' threads for the same cores."""
    n = numba.config.NUMBA_NUM_THREADS if n_jobs is None else min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)
    old_threads = numba.get_num_threads()
    old_chunk = numba.get_parallel_chunksize()
    try:
        numba.set_num_threads(n)
        numba.set_parallel_chunksize(PARALLEL_CHUNKSIZE)
        with threadpool_limits(limits=1, user_api="blas"):
            yield n
    finally:
        numba.set_parallel_chunksize(old_chunk)
        numba.set_num_threads(old_threads)


#: rows per parallel work unit of the CG row solves: each unit allocates its scratch vectors once, and units are
#: handed to threads one at a time (rows differ wildly in length: popular items)
ROW_BLOCK = 64


@njit(inline="always")
def _dense_matvec(A0, v, out, k):
    """out = A0 v for a symmetric A0, as k axpys over A0's rows (vectorises without horizontal sums)."""
    for j in range(k):
        out[j] = 0.0
    for m in range(k):
        vm = v[m]
        for j in range(k):
            out[j] += A0[m, j] * vm


@njit(inline="always")
def _entries_product(start, end, indices, curv, lin, X, v, out, with_lin, zero):
    """out += sum_e (lin_e - curv_e X[col_e] . v) X[col_e] over entries [start, end) (lin left out unless
    ``with_lin``), two entries at a time so that v and out are read once for both."""
    k = X.shape[1]
    e = start
    while e + 1 < end:
        c1 = indices[e]
        c2 = indices[e + 1]
        d1 = zero
        d2 = zero
        for m in range(k):
            vm = v[m]
            d1 += X[c1, m] * vm
            d2 += X[c2, m] * vm
        a1 = -curv[e] * d1
        a2 = -curv[e + 1] * d2
        if with_lin:
            a1 += lin[e]
            a2 += lin[e + 1]
        for m in range(k):
            out[m] += a1 * X[c1, m] + a2 * X[c2, m]
        e += 2
    if e < end:
        c1 = indices[e]
        d1 = zero
        for m in range(k):
            d1 += X[c1, m] * v[m]
        a1 = -curv[e] * d1
        if with_lin:
            a1 += lin[e]
        for m in range(k):
            out[m] += a1 * X[c1, m]


@njit(inline="always")
def _b_minus_A_v(start, end, indices, curv, lin, X, A0, identity, d, s, A1, has_a1, tmp, v, out, with_b, zero):
    """out = b - A v (``with_b``) or -A v for one row, A = s A0 + A1 + d I + sum_e curv_e X_e X_e^T (A1 only when
    ``has_a1``; ``tmp`` scratch), b = sum_e lin_e X_e (A0 = I when ``identity``, where d and A1 are not read: the
    preconditioned basis has no per-row diagonal)."""
    k = X.shape[1]
    if identity:
        for m in range(k):
            out[m] = -s * v[m]
    else:
        _dense_matvec(A0, v, out, k)
        for m in range(k):
            out[m] = -s * out[m] - d * v[m]
        if has_a1:
            _dense_matvec(A1, v, tmp, k)
            for m in range(k):
                out[m] -= tmp[m]
    _entries_product(start, end, indices, curv, lin, X, v, out, with_b, zero)


@njit(inline="always")
def _cg_row(start, end, indices, curv, lin, X, A0, identity, d, s, A1, has_a1, rhs, has_rhs, x, r, p, minus_Ap,
            tmp, cg_steps, rtol2):
    """At most ``cg_steps`` CG steps on A x = b for one row (A = s A0 + A1 + d I + sum_e curv_e X_e X_e^T, b =
    sum_e lin_e X_e (+ rhs when ``has_rhs``)), warm-started from ``x`` and updated in place, stopping once
    |r|^2 <= rtol2 |r_0|^2; r, p, minus_Ap (-A p), tmp are scratch vectors."""
    k = X.shape[1]
    zero = X[0, 0] - X[0, 0]  # a zero of X's type, for the accumulators
    _b_minus_A_v(start, end, indices, curv, lin, X, A0, identity, d, s, A1, has_a1, tmp, x, r, True, zero)  # b - Ax
    if has_rhs:
        for m in range(k):
            r[m] += rhs[m]
    rs_old = zero
    for m in range(k):
        p[m] = r[m]
        rs_old += r[m] * r[m]
    if rs_old < 1e-20:
        return
    stop = rtol2 * rs_old
    for _ in range(cg_steps):
        _b_minus_A_v(start, end, indices, curv, lin, X, A0, identity, d, s, A1, has_a1, tmp, p, minus_Ap, False,
                     zero)
        pAp = zero
        for m in range(k):
            pAp -= p[m] * minus_Ap[m]
        if pAp <= 0.0:
            break
        step = rs_old / pAp
        rs_new = zero
        for m in range(k):
            x[m] += step * p[m]
            r[m] += step * minus_Ap[m]
            rs_new += r[m] * r[m]
        if rs_new < 1e-20 or rs_new < stop:
            break
        beta = rs_new / rs_old
        for m in range(k):
            p[m] = r[m] + beta * p[m]
        rs_old = rs_new


@njit(parallel=True, cache=True, fastmath=True)
def _solve_rows_cg(indptr, indices, curv, lin, X, A0, identity, diag, scale, has_scale, A1, has_a1, rhs, has_rhs,
                   out, cg_steps, rtol2):
    """The compiled body of :func:`solve_rows_cg`."""
    n_rows = indptr.shape[0] - 1
    k = X.shape[1]
    n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    for blk in prange(n_blocks):
        x = np.empty(k, X.dtype)
        r = np.empty(k, X.dtype)
        p = np.empty(k, X.dtype)
        minus_Ap = np.empty(k, X.dtype)
        tmp = np.empty(k, X.dtype)
        for u in range(blk * ROW_BLOCK, min(n_rows, (blk + 1) * ROW_BLOCK)):
            for m in range(k):
                x[m] = out[u, m]
            _cg_row(indptr[u], indptr[u + 1], indices, curv, lin, X, A0, identity, diag[u],
                    scale[u] if has_scale else 1.0, A1, has_a1, rhs[u if has_rhs else 0], has_rhs, x, r, p, minus_Ap,
                    tmp, cg_steps, rtol2)
            for m in range(k):
                out[u, m] = x[m]


def solve_rows_cg(indptr, indices, curv, lin, X, A0, out, cg_steps, rtol=0.0, diag=None, rhs=None, scale=None,
                  A1=None):
    """Update ``out[u]`` by at most ``cg_steps`` conjugate-gradient steps on A_u p = b_u, warm-started from
    ``out[u]``; a row stops early once its residual norm is ``rtol`` times its first (0: never).

    CG from a warm start never increases the row's quadratic objective, so the sweep stays monotone. The work is
    done in ``X``'s floating point type (float32 halves memory traffic, as in implicit); pass ``curv``, ``lin`` and
    ``A0`` in that type too (A0 symmetric), or ``A0=None`` for the identity (the solver's preconditioned basis,
    where each CG step costs O(nnz_u k) without the O(k^2) product; ``scale`` applies to it too). ``diag``: a
    per-row penalty d_u added to A_u's diagonal (None: 0; only with an explicit A0); ``rhs``: a dense (n_rows, k)
    term added to every b_u (None: 0); ``scale``: a per-row factor s_u on A0 (None: 1) and ``A1`` a second dense
    part not scaled (None: 0), so that row u's dense part is ``s_u A0 + A1 + d_u I`` (popularity-weighted
    negatives on the item side: docs/MATH.md, "popularity-weighted negatives"). Rows go to the threads in blocks
    of :data:`ROW_BLOCK`, one block at a time.
    """
    identity = A0 is None
    if identity:
        if diag is not None or A1 is not None:
            raise ValueError("solve_rows_cg: a per-row diag or A1 needs an explicit A0 (with A0=None the rows are "
                             "solved in the preconditioned basis, where they are not the identity).")
        A0 = np.zeros((1, 1), X.dtype)  # unread
    if diag is None:
        diag = np.zeros(len(indptr) - 1, X.dtype)
    has_rhs, has_scale, has_a1 = rhs is not None, scale is not None, A1 is not None
    rhs = np.zeros((1, X.shape[1]), X.dtype) if rhs is None else np.ascontiguousarray(rhs, dtype=X.dtype)
    scale = np.ones(1, X.dtype) if scale is None else np.ascontiguousarray(scale, dtype=X.dtype)
    A1 = np.zeros((1, 1), X.dtype) if A1 is None else np.ascontiguousarray(A1, dtype=X.dtype)
    with numba.parallel_chunksize(1):  # one block at a time (restores the caller's chunk size)
        _solve_rows_cg(indptr, indices, curv, lin, X, A0, identity, diag, scale, has_scale, A1, has_a1, rhs, has_rhs,
                       out, cg_steps, float(rtol) ** 2)


@njit(parallel=True, cache=True, fastmath=True)
def _solve_rows_cholesky(indptr, indices, curv, lin, X, A0, out, diag, scale, A1, rhs, has_rhs):
    """The compiled body of :func:`solve_rows_cholesky`."""
    n_rows = indptr.shape[0] - 1
    k = X.shape[1]
    for u in prange(n_rows):
        A = scale[u] * A0 + A1
        for j in range(k):
            A[j, j] += diag[u]
        b = np.zeros(k)
        if has_rhs:
            for j in range(k):
                b[j] = rhs[u, j]
        for e in range(indptr[u], indptr[u + 1]):
            col = indices[e]
            c = curv[e]
            g = lin[e]
            for j in range(k):
                xj = X[col, j]
                b[j] += g * xj
                if c != 0.0:
                    cxj = c * xj
                    for m in range(j + 1):
                        A[j, m] += cxj * X[col, m]
        for j in range(k):
            for m in range(j + 1, k):
                A[j, m] = A[m, j]
        out[u] = np.linalg.solve(A, b)


def solve_rows_cholesky(indptr, indices, curv, lin, X, A0, out, diag=None, rhs=None, scale=None, A1=None):
    """Exact update ``out[u] = A_u^{-1} b_u`` for every row, ``A_u = scale[u] A0 + A1 + diag[u] I + sum_e curv_e
    X_e X_e^T``, ``b_u = sum_e lin_e X_e + rhs[u]`` (``diag`` / ``rhs`` / ``A1`` None: 0, ``scale`` None: 1);
    assembly O(nnz_u k^2), solve O(k^3)."""
    n_rows, k = len(indptr) - 1, X.shape[1]
    diag = np.zeros(n_rows) if diag is None else np.asarray(diag, dtype=np.float64)
    scale = np.ones(n_rows) if scale is None else np.asarray(scale, dtype=np.float64)
    A1 = np.zeros((k, k)) if A1 is None else np.asarray(A1, dtype=np.float64)
    has_rhs = rhs is not None
    rhs = np.zeros((1, k)) if rhs is None else np.ascontiguousarray(rhs, dtype=np.float64)
    _solve_rows_cholesky(indptr, indices, curv, lin, X, np.asarray(A0, dtype=np.float64), out, diag, scale, A1, rhs,
                         has_rhs)


@njit(parallel=True, cache=True, fastmath=True)
def entry_dots(rows, cols, P, Qw):
    """f_e = P[rows[e]] . Qw[cols[e]] for every entry e (the factor part of the score on a sparse pattern)."""
    n = rows.shape[0]
    k = P.shape[1]
    out = np.empty(n)
    for e in prange(n):
        u = rows[e]
        i = cols[e]
        acc = 0.0
        for m in range(k):
            acc += P[u, m] * Qw[i, m]
        out[e] = acc
    return out


@njit(parallel=True, cache=True, fastmath=True)
def score_moves(rows, cols, curv, P, Qd, moves):
    """For every entry e of one task: how its factor score moves along a head direction d,
    ``moves[e] = P[u] . Qd[i]`` (Qd = Q * d; u = rows[e], i = cols[e]; accumulated in P's type). Returns
    sum_e curv_e moves_e^2, the entries' part of d^T H d in the heads' exact line search (docs/MATH.md section 2,
    step 3). One pass, O(nnz k)."""
    n = rows.shape[0]
    k = P.shape[1]
    zero = P[0, 0] - P[0, 0]
    total = 0.0
    for e in prange(n):
        u = rows[e]
        i = cols[e]
        g = zero
        for m in range(k):
            g += P[u, m] * Qd[i, m]
        moves[e] = g
        total += curv[e] * g * g
    return total


@njit(cache=True)
def _weighted_outer_chunk(rows, cols, weights, P, Q, H, start, end):
    k = P.shape[1]
    z = np.empty(k)
    for e in range(start, end):
        c = weights[e]
        if c == 0.0:
            continue
        u = rows[e]
        i = cols[e]
        for m in range(k):
            z[m] = P[u, m] * Q[i, m]
        for j in range(k):
            cz = c * z[j]
            for m in range(j + 1):
                H[j, m] += cz * z[m]


@njit(parallel=True, cache=True, fastmath=True)
def head_normal_equations(rows, cols, curv, lin, P, Q, n_chunks):
    """Sum of curv_e z_e z_e^T and lin_e z_e over entries, z_e = P[u] * Q[i] (docs/MATH.md section 2, step 3)."""
    k = P.shape[1]
    n = rows.shape[0]
    Hs = np.zeros((n_chunks, k, k))
    gs = np.zeros((n_chunks, k))
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * size
        end = min(n, start + size)
        _weighted_outer_chunk(rows, cols, curv, P, Q, Hs[c], start, end)
        for e in range(start, end):
            g = lin[e]
            if g != 0.0:
                u = rows[e]
                i = cols[e]
                for m in range(k):
                    gs[c, m] += g * P[u, m] * Q[i, m]
    H = Hs.sum(axis=0)
    for j in range(k):
        for m in range(j + 1, k):
            H[j, m] = H[m, j]
    return H, gs.sum(axis=0)


@njit(parallel=True, cache=True, fastmath=True)
def head_products(indptr, indices, order, n_tasks, curv, lin, P, Q, V, with_lin, n_chunks, dots):
    """Per task t, sum over its entries of (lin_e - curv_e z_e . V[t]) z_e with z_e = P[u] * Q[i] (``lin`` left out
    when ``with_lin`` is False), on the user-side stacked layout of :func:`solve_rows_cg` (augmented columns
    i * n_tasks + t, a row's entries by item). ``order[e]`` is entry e's position in ``curv`` / ``lin`` (the tasks'
    concatenated entries). With V = heads this is the entries' part of the heads' residuals g - H w; with V =
    directions and ``with_lin=False`` it is minus the entries' part of H d. ``dots[order[e]]`` receives z_e . V[t]
    (with V = heads: every entry's factor score). O(nnz k): per user, z_e . V[t] = Q[i] . (P[u] * V[t]) and the
    sum over the user's entries collects coef_e Q[i] before one product with P[u]. The per-entry work is done in
    Q's floating point type (float32 fits: float32, as the row solves), the totals in float64."""
    k = P.shape[1]
    n_rows = indptr.shape[0] - 1
    out = np.zeros((n_chunks, n_tasks, k))
    size = (n_rows + n_chunks - 1) // n_chunks
    zero = Q.dtype.type(0.0)
    for c in prange(n_chunks):
        pv = np.empty((n_tasks, k), Q.dtype)
        acc = np.empty((n_tasks, k), Q.dtype)
        for u in range(c * size, min(n_rows, (c + 1) * size)):
            if indptr[u] == indptr[u + 1]:
                continue
            for t in range(n_tasks):
                for m in range(k):
                    pv[t, m] = P[u, m] * V[t, m]
                    acc[t, m] = zero
            for e in range(indptr[u], indptr[u + 1]):
                col = indices[e]
                i = col // n_tasks
                t = col - i * n_tasks
                j = order[e]
                dot = zero
                for m in range(k):
                    dot += Q[i, m] * pv[t, m]
                dots[j] = dot
                coef = Q.dtype.type((lin[j] if with_lin else 0.0) - curv[j] * dot)
                if coef != zero:
                    for m in range(k):
                        acc[t, m] += coef * Q[i, m]
            for t in range(n_tasks):
                for m in range(k):
                    out[c, t, m] += P[u, m] * acc[t, m]
    return out.sum(axis=0)


@njit(parallel=True, cache=True)
def squared_loss(confidence, target, f, o, w0, scale, cols):
    """sum_e confidence_e (target_e - f_e - o_e)^2 - w0 s_e f_e^2: the entries' part of a squared-loss task's
    objective (the whole-data negatives w0 f^2 are added back through the Gram matrices); s_e = ``scale[cols[e]]``
    with popularity-weighted negatives, 1 when ``scale`` is empty."""
    total = 0.0
    scaled = scale.shape[0] > 0
    for e in prange(f.shape[0]):
        d = target[e] - f[e] - o[e]
        w = w0 * scale[cols[e]] if scaled else w0
        total += confidence[e] * d * d - w * f[e] * f[e]
    return total


#: rows per thread's share of :func:`row_matmul`
MATMUL_BLOCK = 1024


@njit(parallel=True, cache=True)
def row_matmul(A, B, out):
    """out = A @ B with A's rows split over the kernels' threads (each block one single-threaded BLAS call): the
    fit keeps BLAS on one thread (:func:`kernel_threads`), so the solver's tall products (the preconditioned
    basis changes) run in parallel here. A, B and out share one floating point type."""
    n = A.shape[0]
    for b in prange((n + MATMUL_BLOCK - 1) // MATMUL_BLOCK):
        lo, hi = b * MATMUL_BLOCK, min(n, (b + 1) * MATMUL_BLOCK)
        out[lo:hi] = np.dot(A[lo:hi], B)
    return out


@njit(parallel=True, cache=True)
def linear_terms(a, z, o, lam, out):
    """out[e] = lam a_e (z_e - o_e): a squared-loss task's lin_e (the same operations as numpy's, in parallel)."""
    for e in prange(out.shape[0]):
        out[e] = lam * a[e] * (z[e] - o[e])
    return out


@njit(parallel=True, cache=True)
def gather(values, order, out):
    """out[e] = values[order[e]] (cast to ``out``'s type), in parallel."""
    for e in prange(order.shape[0]):
        out[e] = values[order[e]]
    return out


@njit(parallel=True, cache=True)
def scaled_copies(M, W, out):
    """out[r * T + t] = W[t] * M[r] for every row r of M and task t of T: the stacked augmented columns."""
    n, k = M.shape
    n_tasks = W.shape[0]
    for r in prange(n):
        for t in range(n_tasks):
            for m in range(k):
                out[r * n_tasks + t, m] = W[t, m] * M[r, m]
    return out


@njit(parallel=True, cache=True)
def merge_rows(rows, cols, bounds, n_rows):
    """The row-major order of several tasks' entries, each task's run ``[bounds[t], bounds[t + 1])`` already sorted
    by (row, col): a T-way merge within every row, by column, ties in task order. Returns the permutation and the
    CSR pointer of the merged rows. O(n T), rows in parallel."""
    n_tasks = bounds.shape[0] - 1
    n = rows.shape[0]
    starts = np.zeros((n_tasks, n_rows + 1), dtype=np.int64)  # starts[t, u]: task t's first entry of row >= u
    for t in prange(n_tasks):
        for e in range(bounds[t], bounds[t + 1]):
            starts[t, rows[e] + 1] += 1
        starts[t, 0] = bounds[t]
        for u in range(n_rows):
            starts[t, u + 1] += starts[t, u]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for u in range(n_rows):
        count = 0
        for t in range(n_tasks):
            count += starts[t, u + 1] - starts[t, u]
        indptr[u + 1] = indptr[u] + count
    order = np.empty(n, dtype=np.int64)
    for u in prange(n_rows):
        heads = starts[:, u].copy()
        for pos in range(indptr[u], indptr[u + 1]):
            best = -1
            for t in range(n_tasks):
                if heads[t] < starts[t, u + 1] and (best < 0 or cols[heads[t]] < cols[heads[best]]):
                    best = t
            order[pos] = heads[best]
            heads[best] += 1
    return order, indptr


@njit(parallel=True, cache=True)
def stacked_columns(other, task_of, order, n_tasks):
    """The augmented columns other[e] * n_tasks + task_of[e] of the entries e = order[j], in parallel."""
    out = np.empty(order.shape[0], dtype=np.int64)
    for j in prange(order.shape[0]):
        e = order[j]
        out[j] = other[e] * n_tasks + task_of[e]
    return out


@njit(cache=True)
def counting_order(keys, n_keys):
    """The stable sorting permutation of integer ``keys`` in [0, n_keys) (a counting sort, O(n + n_keys)), and
    the CSR pointer of the sorted keys."""
    indptr = np.zeros(n_keys + 1, dtype=np.int64)
    for e in range(keys.shape[0]):
        indptr[keys[e] + 1] += 1
    for r in range(n_keys):
        indptr[r + 1] += indptr[r]
    fill = indptr[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for e in range(keys.shape[0]):
        order[fill[keys[e]]] = e
        fill[keys[e]] += 1
    return order, indptr
