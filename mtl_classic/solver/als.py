"""The alternating solver of docs/MATH.md section 2, on arrays only (no pandas, no estimator, no files).

Entry point: :func:`fit_alternating`. It takes :class:`TaskArrays` (one per task, built by
:func:`prepare_task_arrays` from a CSR matrix of observations) and returns a :class:`Params` plus the objective
history. Each sweep updates, in order, user rows, item rows, heads, then intercepts / biases / cross-task weights;
every block is an exact (Cholesky), monotone (warm-started CG) or bound-tightened (logistic, Jaakkola-Jordan)
minimisation, so the objective never increases beyond round-off.
"""
import time

import numpy as np
import scipy.linalg as sla

from ..heads import logistic_bound
from . import kernels
from .side import (SideTerm, row_terms, side_entries, side_objective, update_side_factors,  # noqa: F401
                   with_side_entries)
from .terms import (  # noqa: F401  (the solver's public names are re-exported here)
    Params, SolverConfig, TaskArrays, _EntryTerms, _bias_column_sums, _bias_head_terms, _bias_reg, _curvature,
    _dense_rhs, _dense_term, _entry_terms, _factor_scores, _gram, _offsets, _stacked_terms, entry_negative_weights,
    head_mask, head_penalties, init_params, item_gram, negative_mass, negative_scale, objective, prepare_task_arrays,
    row_evidence, side_regularization)


class _Stacked:
    """All tasks' entries as one CSR over rows (users or items) with augmented columns col * T + t, for the row
    kernels; ``order`` takes the tasks' concatenated entries to this layout.

    Within a row the entries run by column, the T tasks' entries on one (row, col) pair side by side, so the row
    kernels read the T adjacent rows ``w_t * q_col`` of :func:`kernels.scaled_copies` together (measured faster
    than task-major columns t * n_other + col on Beibei, whose purchases are all carted). The head kernel walks the
    user side too, forming p_u * w_t once per user."""

    def __init__(self, tasks, n_rows, n_other, by_item):
        n_tasks = len(tasks)
        bounds = np.concatenate([[0], np.cumsum([len(t.rows) for t in tasks])]).astype(np.int64)
        users = np.concatenate([t.rows for t in tasks]).astype(np.int64)
        items = np.concatenate([t.cols for t in tasks]).astype(np.int64)
        task_of = np.repeat(np.arange(n_tasks, dtype=np.int64), np.diff(bounds))
        # every task's entries run user-major, by item: merged, they give the user side (pairs by item, tasks in
        # order); a stable counting sort of that by item gives the item side (pairs by user, tasks in order)
        n_users = n_other if by_item else n_rows
        order, indptr = kernels.merge_rows(users, items, bounds, n_users)
        if by_item:
            by_item_order, indptr = kernels.counting_order(kernels.gather(items, order, np.empty_like(order)), n_rows)
            order = kernels.gather(order, by_item_order, np.empty_like(order))
        self.order, self.indptr = order, indptr
        self.indices = kernels.stacked_columns(users if by_item else items, task_of, order, n_tasks)
        self.evidence = row_evidence(tasks, n_rows, by_item)


#: the public name of the stacked layout of one side (a distributed fit builds one per block of rows)
StackedLayout = _Stacked


def _update_item_bias(task, t, params, config, f, o):
    """Exact update of an implicit task's whole-data item biases (closed form per item); ``o`` updated in place."""
    num, den, o_rest = item_bias_sums(task, t, params, f, o)
    new = item_bias_values(task, t, params, config, num, den)
    params.item_biases[t] = new
    o[:] = o_rest + new[task.cols]


def item_bias_sums(task, t, params, f, o):
    """The entries' sums of the closed-form item bias update (per item, over ``params.item_factors``' items) and
    the offsets without the item bias; sums over disjoint sets of entries add up."""
    a, z, w0 = task.confidence, task.target, entry_negative_weights(task)
    n_items = params.item_factors.shape[0]
    o_rest = o - params.item_biases[t][task.cols]
    num = np.bincount(task.cols, a * (f + o_rest - z) - w0 * f, minlength=n_items)
    den = np.bincount(task.cols, a - w0, minlength=n_items)
    return num, den, o_rest


def item_bias_values(task, t, params, config, num, den):
    """The new whole-data item biases of task t from the entries' sums (:func:`item_bias_sums`) and the full
    ``params``. The objective is separable per item, ``A_i b_i^2 + 2 B_i b_i``; with an item feature a the biases
    are ``gamma a`` and the exact gamma is ``-sum_i a_i B_i / sum_i a_i^2 A_i`` (or the task's fixed weight)."""
    lam, w0, n_users = task.weight, task.negative_weight, params.user_factors.shape[0]
    if task.negative_scale is not None:   # an item's unobserved pairs weigh w0 s_i
        w0 = w0 * task.negative_scale
    B = lam * (w0 * _bias_column_sums(task, t, params) + num)
    A = lam * (w0 * n_users + den) + _bias_reg(config)
    feature = getattr(task, "item_feature", None)
    if feature is None:
        return -B / A
    gamma = getattr(task, "item_feature_weight", None)
    if gamma is None:
        curvature = float(feature @ (A * feature))
        gamma = -float(feature @ B) / curvature if curvature > 0 else 0.0
    return gamma * feature


def solve_rows(tasks, params, stacked, by_item, config, offsets=None, terms=None, gram=None, scaled=None,
               side_terms=()):
    """Solve every user row (or item row, ``by_item``) with the other side, heads and offsets fixed.

    ``terms``: the sweep's :class:`_EntryTerms` (built here when not given); ``gram``: the other side's Gram
    matrix when the caller has it (users: :func:`item_gram`); ``scaled``: whether any row of the side carries an
    evidence-scaled penalty (None: read from ``stacked``). A caller that solves one block of a side's rows (a
    distributed fit) passes the whole side's ``gram`` and ``scaled``, and ``params`` with the block's rows of the
    solved side, so that every row takes the path the whole side would. ``side_terms``: side matrices
    (:mod:`.side`) whose shared part and right-hand sides join the rows' systems."""
    side = params.item_factors if by_item else params.user_factors
    other = params.user_factors if by_item else params.item_factors
    terms = _EntryTerms(tasks).refresh(params, offsets) if terms is None else terms.refresh_bounds(params, offsets)
    work = other.dtype if config.solver == "cg" else np.float64
    curv, lin = terms.for_rows(stacked, work)
    gram = (_gram(other) if by_item else item_gram(other, tasks)) if gram is None else gram
    A0 = _dense_term(tasks, params, gram, side_regularization(tasks, config, other.shape[0]), by_item)
    diag = config.row_regularization * stacked.evidence
    scaled = bool(np.any(diag)) if scaled is None else bool(scaled)
    # popularity-weighted negatives: item row i's whole-data part, its negatives and their penalty, is s_i A0 (the
    # side matrices' part, A1, is not scaled)
    scale, A1 = (negative_scale(tasks) if by_item else None), None
    rhs = _dense_rhs(tasks, params, by_item)
    entries = None
    if side_terms:
        dense, extra = row_terms(side_terms, by_item, side.shape[0], A0.shape[0], config.negative_regularization)
        if scale is None:
            A0 = A0 + dense
        else:
            A1, scaled = dense, True   # not the identity in A0's basis
        rhs = extra if rhs is None else (rhs if extra is None else rhs + extra)
        entries = side_entries([s for s in side_terms if s.by_item == by_item], side)   # their per-entry terms
    # plain CG when asked for, when A0 is too close to singular for its Cholesky factor to change the basis (e.g.
    # no implicit task and no regularization: A0 = 0), or when rows carry their own evidence-scaled penalty (a
    # per-row diagonal is not the identity in the shared basis)
    if (config.solver == "cg" and config.precondition and not scaled
            and np.linalg.cond(A0) <= 0.1 / np.finfo(work).eps):
        _solve_rows_preconditioned(stacked, curv, lin, other, params.head_weights, A0, side, config.cg_steps,
                                   config.cg_rtol, rhs, entries, scale)
        return
    X = kernels.scaled_copies(other, params.head_weights.astype(work),
                              np.empty((len(tasks) * other.shape[0], other.shape[1]), work))
    indptr, indices = stacked.indptr, stacked.indices
    if entries is not None:
        indptr, indices, curv, lin, X = with_side_entries(indptr, indices, curv, lin, X, entries,
                                                          entries[3].astype(work))
    if config.solver == "cholesky":
        kernels.solve_rows_cholesky(indptr, indices, curv, lin, X, A0, side, diag, rhs, scale=scale, A1=A1)
    else:
        kernels.solve_rows_cg(indptr, indices, curv, lin, X, A0.astype(work), side, config.cg_steps,
                              config.cg_rtol, diag=diag.astype(work) if scaled else None, rhs=rhs, scale=scale,
                              A1=A1)


_update_rows = solve_rows


def _solve_rows_preconditioned(stacked, curv, lin, other, head_weights, A0, side, cg_steps, rtol=0.0, rhs=None,
                               entries=None, scale=None):
    """CG on every row preconditioned by the shared dense part A0 = L L^T (docs/MATH.md section 2): in the basis
    y = L^T x the row system becomes (I + sum_e curv_e xt_e xt_e^T) y = sum_e lin_e xt_e with xt_e = L^{-1} x_e, so
    a CG step costs O(nnz_u k) without A0's O(k^2) product, and the iterates see only the rows' own entries
    (at most nnz_u eigenvalues differ from 1). The changes of basis are three matrix products per side. ``scale``:
    row r's dense part is scale[r] A0 (s_r I in the new basis)."""
    k = other.shape[1]
    work = other.dtype
    L = np.linalg.cholesky(A0)
    L_inv = sla.solve_triangular(L, np.eye(k), lower=True)
    # block t of the columns is D_t L^{-T}: row i of other @ M holds xt_(i, t) = L^{-1} (w_t * q_i) for every t,
    # side by side as the stacked augmented columns i * T + t expect
    M = (head_weights[:, :, None] * L_inv.T[None, :, :]).transpose(1, 0, 2).reshape(k, -1)
    Xt = _matmul(other, M).reshape(-1, k)
    indptr, indices = stacked.indptr, stacked.indices
    if entries is not None:   # side matrices' entries: their column factors in the new basis too
        indptr, indices, curv, lin, Xt = with_side_entries(indptr, indices, curv, lin, Xt, entries,
                                                           (entries[3] @ L_inv.T).astype(work))
    Y = _matmul(side, L)  # warm start in the new basis
    rhs = None if rhs is None else rhs @ L_inv.T  # L^{-1} h per row
    kernels.solve_rows_cg(indptr, indices, curv, lin, Xt, None, Y, cg_steps, rtol, rhs=rhs, scale=scale)
    kernels.row_matmul(Y, L_inv.astype(work), side)


def _matmul(A, B):
    """A @ B in A's floating point type, rows in parallel (:func:`kernels.row_matmul`)."""
    B = np.ascontiguousarray(B, dtype=A.dtype)
    return kernels.row_matmul(np.ascontiguousarray(A), B, np.empty((A.shape[0], B.shape[1]), A.dtype))


def _update_heads(tasks, params, config, n_chunks, user_side, offsets=None, terms=None, grams=None):
    """Heads w_t: k-dimensional least squares (docs/MATH.md section 2, step 3), solved by warm-started CG when
    ``config.solver == "cg"`` (matrix-free, O(nnz k) per step: the residual of all tasks in one pass over the
    user-side pairs, the exact line search in one pass over each task's entries) or exactly otherwise.

    Returns
    -------
    factor_scores : list of arrays or None
        CG: every task's factor scores on its entries at the new heads (the line search's pass computes them);
        None otherwise."""
    P, Q = params.user_factors, params.item_factors
    regs, dense, bias_lin = head_dense_terms(tasks, params, config,
                                             (_gram(P), item_gram(Q, tasks)) if grams is None else grams)
    terms = _EntryTerms(tasks).refresh(params, offsets) if terms is None else terms.refresh_bounds(params, offsets)
    if config.solver == "cholesky":
        solve_heads_exactly(params, config, head_normal_sums(tasks, params, config, terms, n_chunks), regs, dense,
                            bias_lin)
        return None
    # one warm-started CG step per head (exact line search along the residual r): monotone; heads move slowly.
    # The residual's pass also gives every entry's factor score z_e . w before the step; r^T H r needs only the
    # scalar sum_e curv_e (z_e . r)^2, whose pass gives the moves z_e . r, so the scores at the new heads
    # (f + step * move) cost no pass of their own
    R, scores = head_residual_sums(tasks, params, terms, user_side, n_chunks)
    R = head_directions(R, params, config, regs, dense, bias_lin)
    entries_parts, moves = head_move_sums(tasks, params, terms, R)
    steps = head_steps(params, R, dense, entries_parts)
    factor_scores = []
    for t in range(len(tasks)):
        f = scores[terms.bounds[t]:terms.bounds[t + 1]]
        if steps[t] > 0:
            f += steps[t] * moves[t]
        factor_scores.append(f)
    return factor_scores


# The head update in pieces (docs/MATH.md section 2, step 3): the sums over entries (``*_sums``, which add up over
# disjoint blocks of entries) and the dense parts on the full parameters. The local fit chains them on all entries;
# a distributed fit sums the entries' pieces over its blocks.
def head_dense_terms(tasks, params, config, grams, n_observed=None):
    """Every head's dense terms from the Gram matrices (P^T P, :func:`item_gram`): the penalties (T,), the dense
    parts of the systems ``lambda w0 G_P o G_Q + reg I`` (list of k x k) and the whole-data item biases' linear
    terms (T, k); ``n_observed`` as in :func:`head_penalties`."""
    GP, GQ = grams
    GPQ = GP * GQ
    k = params.user_factors.shape[1]
    regs = head_penalties(tasks, config, n_observed)
    dense = [task.weight * task.negative_weight * GPQ + regs[t] * np.eye(k) for t, task in enumerate(tasks)]
    return regs, dense, _bias_head_terms(tasks, params)


def head_normal_sums(tasks, params, config, terms, n_chunks=8):
    """Exact heads: every learned head's entries' sums (sum_e curv_e z_e z_e^T, sum_e lin_e z_e), None for the
    fixed heads."""
    P, Q = params.user_factors, params.item_factors
    out = []
    for t, task in enumerate(tasks):
        sl = slice(terms.bounds[t], terms.bounds[t + 1])
        out.append(None if t in config.fixed_heads else
                   kernels.head_normal_equations(task.rows, task.cols, terms.curv[sl], terms.lin[sl], P, Q, n_chunks))
    return out


def solve_heads_exactly(params, config, normal_sums, regs, dense, bias_lin):
    """Exact heads from :func:`head_normal_sums` (summed over every entry) and :func:`head_dense_terms`, each
    restricted to its mask; ``params.head_weights`` updated in place."""
    for t, sums in enumerate(normal_sums):
        if sums is None:
            continue
        H, g = sums
        on = slice(None) if config.head_mask is None else config.head_mask[t] > 0
        params.head_weights[t][on] = np.linalg.solve((H + dense[t])[on][:, on], (g + regs[t] - bias_lin[t])[on])


def head_residual_sums(tasks, params, terms, user_side, n_chunks=8):
    """The entries' part of every head's residual g - H w, (T, k), in one pass over the user-side layout, and every
    entry's factor score at the current heads (in the order of ``terms``)."""
    lay = user_side
    scores = np.empty(len(terms.curv))
    R = kernels.head_products(lay.indptr, lay.indices, lay.order, len(tasks), terms.curv, terms.lin,
                              params.user_factors, params.item_factors, params.head_weights, True, n_chunks, scores)
    return R, scores


def head_directions(R, params, config, regs, dense, bias_lin):
    """The CG directions of the heads: the residuals from their entries' part ``R`` (summed over every entry;
    completed in place) and the dense terms, 0 for the fixed heads, restricted to the masks."""
    R += regs[:, None] - np.einsum("tij,tj->ti", np.asarray(dense), params.head_weights) - bias_lin
    R[list(config.fixed_heads)] = 0.0  # a reference head stays at 1: its step is 0 and its scores unchanged
    if config.head_mask is not None:
        R *= config.head_mask  # CG in each head's own subspace: the other tasks' private factors stay unread
    return R


def head_move_sums(tasks, params, terms, R):
    """Per task, the entries' part sum_e curv_e (z_e . r_t)^2 of r_t^T H r_t, (T,), and every entry's move
    z_e . r_t of its factor score along the direction."""
    P, Q = params.user_factors, params.item_factors
    parts, moves = np.zeros(len(tasks)), []
    for t, task in enumerate(tasks):
        if not np.any(R[t]):     # a fixed (reference) head, or one at its optimum: no move, no pass over its entries
            moves.append(np.zeros(len(task.rows)))
            continue
        sl = slice(terms.bounds[t], terms.bounds[t + 1])
        moves.append(np.empty(len(task.rows)))
        parts[t] = kernels.score_moves(task.rows, task.cols, terms.curv[sl], P, (Q * R[t]).astype(P.dtype), moves[t])
    return parts, moves


def head_steps(params, R, dense, entries_parts):
    """The exact line search along every direction (``entries_parts``: :func:`head_move_sums` summed over every
    entry); updates ``params.head_weights`` in place and returns the steps (0 where a head did not move)."""
    steps = np.zeros(len(R))
    for t in range(len(R)):
        rs, rHr = R[t] @ R[t], entries_parts[t] + R[t] @ dense[t] @ R[t]
        if rs >= 1e-20 and rHr > 0:
            steps[t] = rs / rHr
            params.head_weights[t] += steps[t] * R[t]
    return steps


def _coordinate_update(task, f, o, contribution, values, index, reg):
    """Exact minimisation over one block of per-entry offsets ``values[index_e] * contribution_e``.

    ``o`` is the current offset on the task's entries; it is updated in place to the new block value, and the new
    block is returned. The logistic bound is re-tightened at the current scores first.
    """
    a, z = (logistic_bound(task.target, f + o) if task.kind == "binary" else (task.confidence, task.target))
    return kernels.coordinate_update(a, z, f, o, contribution, np.asarray(values, dtype=np.float64), index,
                                     task.weight, float(reg))


#: parallel chunks of the offset updates (each with its own sums: chunks x block size memory)
OFFSET_CHUNKS = 8


def _run_blocks(task, f, o, blocks):
    """Exact coordinate updates of ``blocks`` in order: (feature column or -1 for a constant 1, index kind 0 / 1 / 2
    for one value / per user / per item, penalty, current values, setter). Squared-loss tasks run them in one
    compiled routine; logistic tasks re-tighten their bound before each block."""
    if not blocks:
        return
    if task.kind == "binary":
        index = {0: np.zeros(len(f), dtype=np.int64), 1: task.rows, 2: task.cols}
        for feat, kind, reg, values, setter in blocks:
            contribution = np.ones(len(f)) if feat < 0 else task.cross[:, feat]
            setter(_coordinate_update(task, f, o, contribution, np.atleast_1d(values), index[kind], reg))
        return
    sizes = [len(np.atleast_1d(values)) for _, _, _, values, _ in blocks]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    new = kernels.coordinate_blocks(
        task.confidence, task.target, f, o, task.cross, task.rows, task.cols,
        np.array([b[0] for b in blocks], dtype=np.int64), np.array([b[1] for b in blocks], dtype=np.int64),
        np.array([b[2] for b in blocks], dtype=np.float64), starts,
        np.concatenate([np.atleast_1d(np.asarray(b[3], dtype=np.float64)) for b in blocks]), task.weight,
        OFFSET_CHUNKS)
    for b, (_, _, _, _, setter) in enumerate(blocks):
        setter(new[starts[b]:starts[b + 1]])


def _update_task_offsets(task, t, params, config, side=None, o=None, f=None):
    """Exact coordinate updates of one task's intercept, biases, cross weights and their deviations.

    ``side="user"`` / ``"item"`` updates only the per-user / per-item offsets (fold-in of new rows). ``o``: the
    task's current offsets on its entries when the caller has them (updated in place); ``f``: likewise its factor
    scores."""
    f = _factor_scores(task, t, params) if f is None else f
    o = _offsets(task, t, params) if o is None else o
    for step, arg in offset_plan(task, t, params, config, side):
        if step == "item_bias":
            _update_item_bias(task, t, params, config, f, o)
        elif step == "blocks":
            _run_blocks(task, f, o, arg)
        else:  # several cross weights, solved jointly (a small dense system)
            H, g, old = cross_weight_sums(task, t, params, f, o, arg)
            params.cross_weights[t, arg] = cross_weight_values(H, g, config)
            o += task.cross @ params.cross_weights[t, arg] - old
    return o, f


def offset_plan(task, t, params, config, side=None):
    """The exact coordinate updates of one task's offsets, in the order the fit runs them: a list of steps
    ``("item_bias", None)`` (the whole-data item biases, :func:`item_bias_sums`), ``("blocks", blocks)`` (blocks
    ``(feature column or -1, index kind 0 / 1 / 2 / 3 / 4, penalty, current values, setter)`` of
    :func:`kernels.coordinate_blocks`, run in order) and ``("cross", indices)`` (several cross weights solved
    jointly, :func:`cross_weight_sums`). ``side`` as in :func:`update_user_offsets` / :func:`update_item_offsets`.
    The setters write into ``params``."""
    do_users, do_items, do_shared = side in (None, "user"), side in (None, "item"), side is None
    reg, cross_reg = _bias_reg(config), config.cross_regularization

    def setter(array, index):
        def set_values(new):
            array[index] = new[0] if np.ndim(array[index]) == 0 else new
        return set_values

    plan = [("item_bias", None)] if task.item_bias and do_items else []
    blocks = []
    if task.biases:
        if do_shared:  # intercept (unpenalised): one value on every entry
            blocks.append((-1, 0, 0.0, params.intercepts[t], setter(params.intercepts, t)))
        if do_users:
            blocks.append((-1, 1, reg, params.user_biases[t], setter(params.user_biases, t)))
        if do_items:
            blocks.append((-1, 2, reg, params.item_biases[t], setter(params.item_biases, t)))
    beta_idx = task.cross_tasks
    if do_shared and len(beta_idx) == 1:  # one feature: its weight is one value, like the intercept
        blocks.append((0, 0, cross_reg, params.cross_weights[t, beta_idx[0]],
                       setter(params.cross_weights, (t, beta_idx[0]))))
    elif do_shared and len(beta_idx) > 1:  # several: solved jointly (a small dense system)
        plan += [("blocks", blocks), ("cross", beta_idx)]
        blocks = []
    # per-item and per-user deviations on the pairs where task b observed (u, i): how much more (or less) this
    # item's / this user's evidence predicts task t; exact coordinate updates, shrunk towards 0
    for j, b in enumerate(beta_idx):
        for dev, kind, wanted in ((params.cross_item_weights, 2, do_items), (params.cross_user_weights, 1, do_users)):
            if wanted and dev is not None:
                blocks.append((j, kind, cross_reg, dev[t, b], setter(dev, (t, b))))
    if task.kind != "binary" and do_shared and len(beta_idx) == 1:
        _join_shared_weight(blocks, params, t, beta_idx[0])
    return plan + [("blocks", blocks)]


def cross_weight_sums(task, t, params, f, o, beta_idx):
    """The entries' sums of the joint update of several cross weights (``lambda X^T A X``, ``lambda X^T A r``;
    they add up over disjoint sets of entries) and the cross weights' current share of the offsets."""
    Xc = task.cross
    a, z = (logistic_bound(task.target, f + o) if task.kind == "binary" else (task.confidence, task.target))
    old = Xc @ params.cross_weights[t, beta_idx]
    r = z - f - (o - old)
    return task.weight * (Xc * a[:, None]).T @ Xc, task.weight * Xc.T @ (a * r), old


def cross_weight_values(H, g, config):
    """The jointly minimised cross weights from :func:`cross_weight_sums` summed over every entry."""
    return np.linalg.solve(H + config.cross_regularization * np.eye(len(g)), g)


def block_sums(task, f, o, feat, kind, values, rows=None):
    """The entries' sums (num, den) of one coordinate block of :func:`offset_plan` at the current offsets ``o``
    (logistic tasks: on the bound re-tightened at ``f + o``), one per index of the block: kind 0 one, 1 / 3 per
    user, 2 / 4 per item (3 / 4: ``values`` = [shared value, deviations]). ``rows``: the entries' user indices
    into ``values`` (default ``task.rows``). Sums over disjoint sets of entries add up; :func:`block_values`
    turns the totals into the block's exact minimiser (the closed forms of :func:`kernels.coordinate_blocks`)."""
    a, z = (logistic_bound(task.target, f + o) if task.kind == "binary" else (task.confidence, task.target))
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return kernels.block_sums(a, z, f, o, task.cross, int(feat), int(kind), task.rows if rows is None else rows,
                              task.cols, values, len(values) - (1 if kind >= 3 else 0))


def block_values(kind, num, den, reg, lam):
    """The exact minimiser of one coordinate block from its entries' sums over every entry (:func:`block_sums`)."""
    d = lam * den + reg
    safe = np.where(d > 0.0, d, 1.0)
    if kind < 3:
        return np.where(d > 0.0, lam * num / safe, 0.0)
    # shared value beta and its deviations gamma_i jointly: gamma_i(beta) = lam (N_i - D_i beta) / d_i, and
    # reg beta = reg sum_i gamma_i(beta)
    top = float(np.sum(reg * lam * num / safe))
    bottom = reg + float(np.sum(reg * lam * den / safe))
    beta = top / bottom if bottom > 0.0 else 0.0
    return np.concatenate([[beta], np.where(d > 0.0, lam * (num - den * beta) / safe, 0.0)])


def apply_block(task, o, feat, kind, old, new, rows=None):
    """Move the offsets ``o`` (in place) from a block's ``old`` values to its ``new`` ones."""
    kernels.apply_block_change(o, task.cross, int(feat), int(kind), task.rows if rows is None else rows, task.cols,
                               np.atleast_1d(np.asarray(old, dtype=np.float64)),
                               np.atleast_1d(np.asarray(new, dtype=np.float64)))


def _join_shared_weight(blocks, params, t, b):
    """Merge the block of the shared cross weight beta_tb with the block of its first per-item (or per-user)
    deviations, so that both are minimised jointly in one pass (closed form, :func:`kernels.coordinate_blocks`
    kinds 3 and 4) instead of one after the other."""
    at = next((n for n, blk in enumerate(blocks) if blk[0] == 0 and blk[1] == 0), None)
    dev_at = next((n for n, blk in enumerate(blocks) if blk[0] == 0 and blk[1] in (1, 2)), None)
    if at is None or dev_at is None:
        return
    feat, kind, reg, dev_values, dev_setter = blocks[dev_at]
    beta_setter = blocks[at][4]

    def set_both(new):
        beta_setter(new[:1])
        dev_setter(new[1:])

    joint = (feat, kind + 2, reg, np.concatenate([[params.cross_weights[t, b]], dev_values]), set_both)
    blocks[dev_at] = joint
    del blocks[at]


def update_user_offsets(tasks, params, config):
    """Exact updates of every per-user offset (biases, per-user cross deviations) with everything else fixed;
    used by fold-in of users."""
    for t, task in enumerate(tasks):
        _update_task_offsets(task, t, params, config, side="user")


def update_item_offsets(tasks, params, config):
    """The same for every per-item offset (biases, per-item cross deviations); used by fold-in of items."""
    for t, task in enumerate(tasks):
        _update_task_offsets(task, t, params, config, side="item")


def _update_offsets(tasks, params, config, offsets=None, factor_scores=None):
    """Exact coordinate updates of intercepts, user biases, item biases, cross weights and their deviations.

    ``offsets``: every task's current offsets, when the caller carries them (updated in place);
    ``factor_scores``: every task's factor scores on its entries, when the caller has them.

    Returns
    -------
    offsets, factor_scores : lists (one array per task) of the new offsets and the (unchanged) factor scores on
        the task's entries.
    """
    offsets = offsets or [None] * len(tasks)
    factor_scores = factor_scores or [None] * len(tasks)
    pairs = [_update_task_offsets(task, t, params, config, o=offsets[t], f=factor_scores[t])
             for t, task in enumerate(tasks)]
    return [o for o, _ in pairs], [f for _, f in pairs]


def solve_side(tasks, params, by_item, config, n_sweeps=1, n_jobs=None, side_terms=()):
    """The rows of one side (users, or items with ``by_item``) with the other side, the heads and the shared
    weights fixed: the fit's own row solve and per-row offset updates, alternated ``n_sweeps`` times, under the
    kernels' thread limits. The public seam for fold-in of new users or items (and any backend that solves one
    side at a time).

    Parameters
    ----------
    tasks : list of TaskArrays
        The rows' entries (``prepare_task_arrays`` of the new rows' observations).
    params : Params
        The fitted arrays with the side to solve replaced by the new rows' starting values (their biases and
        per-row cross deviations too); updated in place.
    by_item : bool
    config : SolverConfig
    n_sweeps : int, default=1
    n_jobs : int or None
        Kernel threads (None: every core).
    side_terms : sequence of SideTerm
        The new rows' side matrices with the fitted column factors (fixed here), e.g. a new item's attributes.

    Returns
    -------
    params
    """
    side = params.item_factors if by_item else params.user_factors
    other = params.user_factors if by_item else params.item_factors
    stacked = _Stacked(tasks, side.shape[0], other.shape[0], by_item=by_item)
    update = update_item_offsets if by_item else update_user_offsets
    with kernels.kernel_threads(n_jobs):
        for _ in range(int(n_sweeps)):
            _update_rows(tasks, params, stacked, by_item, config, side_terms=side_terms)
            update(tasks, params, config)
    return params


def fit_alternating(tasks, params, config, callback=None, n_chunks=8, side_terms=()):
    """Run the alternating sweeps in place on ``params``.

    Parameters
    ----------
    tasks : list of TaskArrays
    params : Params
        Initial values; updated in place.
    config : SolverConfig
    callback : callable(iteration, objective, per_task, elapsed) -> bool, optional
        Called after every sweep; returning True stops early. ``per_task`` lists the tasks' terms, then the side
        matrices'.
    side_terms : sequence of SideTerm
        Side matrices sharing the user or item factors (:mod:`.side`); their column factors are updated in place
        right after the rows they share.

    Returns
    -------
    history : list of float
        Objective after initialisation (index 0) and after every sweep.
    n_iter : int
    """
    n_users, n_items = params.user_factors.shape[0], params.item_factors.shape[0]
    user_side = _Stacked(tasks, n_users, n_items, by_item=False)
    item_side = _Stacked(tasks, n_items, n_users, by_item=True)
    terms = _EntryTerms(tasks)
    offsets = [_offsets(task, t, params) for t, task in enumerate(tasks)]
    gram_q = item_gram(params.item_factors, tasks)
    evidence = (user_side.evidence, item_side.evidence)
    reg = (config.regularization, config.negative_regularization)

    def total_objective(offsets, factor_scores, grams):
        total, per_task = objective(tasks, params, config, offsets, factor_scores, grams=grams, evidence=evidence)
        extra = side_objective(side_terms, params.user_factors, params.item_factors, *reg) if side_terms else []
        return total + sum(extra), list(per_task) + extra

    history = [total_objective(offsets, None, (_gram(params.user_factors), gram_q))[0]]
    start = time.perf_counter()
    n_iter = 0
    for it in range(config.iterations):
        terms.refresh(params, offsets)
        _update_rows(tasks, params, user_side, False, config, offsets, terms, gram=gram_q, side_terms=side_terms)
        update_side_factors(side_terms, params.user_factors, False, *reg)
        gram_p = _gram(params.user_factors)
        _update_rows(tasks, params, item_side, True, config, offsets, terms, gram=gram_p, side_terms=side_terms)
        update_side_factors(side_terms, params.item_factors, True, *reg)
        gram_q = item_gram(params.item_factors, tasks)  # (also the next sweep's user-side Gram matrix)
        factor_scores = None
        if config.fit_heads:
            factor_scores = _update_heads(tasks, params, config, n_chunks, user_side, offsets, terms,
                                          grams=(gram_p, gram_q))
        offsets, factor_scores = _update_offsets(tasks, params, config, offsets, factor_scores)
        n_iter = it + 1
        total, per_task = total_objective(offsets, factor_scores, (gram_p, gram_q))
        history.append(total)
        if callback is not None and callback(n_iter, total, per_task, time.perf_counter() - start):
            break
    return history, n_iter
