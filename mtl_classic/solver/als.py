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
from .terms import (  # noqa: F401  (the solver's public names are re-exported here)
    Params, SolverConfig, TaskArrays, _EntryTerms, _bias_column_sums, _bias_head_terms, _bias_reg, _curvature,
    _dense_rhs, _dense_term, _entry_terms, _factor_scores, _gram, _offsets, _stacked_terms, head_mask,
    head_penalties, init_params, negative_mass, objective, prepare_task_arrays, row_evidence, side_regularization)


class _Stacked:
    """All tasks' entries as one CSR over rows (users or items) with augmented columns col * T + t, for the row
    kernels; ``order`` takes the tasks' concatenated entries to this layout.

    Within a row the entries run by column, the T tasks' entries on one (row, col) pair side by side, so the row
    kernels read the T adjacent rows ``w_t * q_col`` of :func:`kernels.scaled_copies` together (measured faster
    than task-major columns t * n_other + col on Beibei, whose purchases are all carted). The head kernel walks the
    user side too, forming p_u * q_i once per pair."""

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


def _update_item_bias(task, t, params, config, f, o):
    """Exact update of an implicit task's whole-data item biases (closed form per item); ``o`` updated in place."""
    a, z, w0, lam = task.confidence, task.target, task.negative_weight, task.weight
    n_items, n_users = params.item_factors.shape[0], params.user_factors.shape[0]
    old = params.item_biases[t]
    o_rest = o - old[task.cols]
    num = np.bincount(task.cols, a * (f + o_rest - z) - w0 * f, minlength=n_items)
    den = np.bincount(task.cols, a - w0, minlength=n_items)
    new = -lam * (w0 * _bias_column_sums(task, t, params) + num) / (lam * (w0 * n_users + den) + _bias_reg(config))
    params.item_biases[t] = new
    o[:] = o_rest + new[task.cols]


def _update_rows(tasks, params, stacked, by_item, config, offsets=None, terms=None, gram=None):
    """Solve every user row (or item row, ``by_item``) with the other side, heads and offsets fixed.

    ``terms``: the sweep's :class:`_EntryTerms` (built here when not given); ``gram``: the other side's Gram
    matrix when the caller has it."""
    side = params.item_factors if by_item else params.user_factors
    other = params.user_factors if by_item else params.item_factors
    terms = _EntryTerms(tasks).refresh(params, offsets) if terms is None else terms.refresh_bounds(params, offsets)
    work = other.dtype if config.solver == "cg" else np.float64
    curv, lin = terms.for_rows(stacked, work)
    gram = _gram(other) if gram is None else gram
    A0 = _dense_term(tasks, params, gram, side_regularization(tasks, config, other.shape[0]), by_item)
    diag = config.row_regularization * stacked.evidence
    scaled = bool(np.any(diag))
    rhs = _dense_rhs(tasks, params, by_item)
    # plain CG when asked for, when A0 is too close to singular for its Cholesky factor to change the basis (e.g.
    # no implicit task and no regularization: A0 = 0), or when rows carry their own evidence-scaled penalty (a
    # per-row diagonal is not the identity in the shared basis)
    if (config.solver == "cg" and config.precondition and not scaled
            and np.linalg.cond(A0) <= 0.1 / np.finfo(work).eps):
        _solve_rows_preconditioned(stacked, curv, lin, other, params.head_weights, A0, side, config.cg_steps,
                                   config.cg_rtol, rhs)
        return
    X = kernels.scaled_copies(other, params.head_weights.astype(work),
                              np.empty((len(tasks) * other.shape[0], other.shape[1]), work))
    if config.solver == "cholesky":
        kernels.solve_rows_cholesky(stacked.indptr, stacked.indices, curv, lin, X, A0, side, diag, rhs)
    else:
        kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, X, A0.astype(work), side, config.cg_steps,
                              config.cg_rtol, diag=diag.astype(work) if scaled else None, rhs=rhs)


def _solve_rows_preconditioned(stacked, curv, lin, other, head_weights, A0, side, cg_steps, rtol=0.0, rhs=None):
    """CG on every row preconditioned by the shared dense part A0 = L L^T (docs/MATH.md section 2): in the basis
    y = L^T x the row system becomes (I + sum_e curv_e xt_e xt_e^T) y = sum_e lin_e xt_e with xt_e = L^{-1} x_e, so
    a CG step costs O(nnz_u k) without A0's O(k^2) product, and the iterates see only the rows' own entries
    (at most nnz_u eigenvalues differ from 1). The changes of basis are three matrix products per side."""
    k = other.shape[1]
    work = other.dtype
    L = np.linalg.cholesky(A0)
    L_inv = sla.solve_triangular(L, np.eye(k), lower=True)
    # block t of the columns is D_t L^{-T}: row i of other @ M holds xt_(i, t) = L^{-1} (w_t * q_i) for every t,
    # side by side as the stacked augmented columns i * T + t expect
    M = (head_weights[:, :, None] * L_inv.T[None, :, :]).transpose(1, 0, 2).reshape(k, -1)
    Xt = (other @ M.astype(work)).reshape(-1, k)
    Y = side @ L.astype(work)  # warm start in the new basis
    rhs = None if rhs is None else rhs @ L_inv.T  # L^{-1} h per row
    kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, Xt, None, Y, cg_steps, rtol, rhs=rhs)
    np.matmul(Y, L_inv.astype(work), out=side)


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
    GP, GQ = (_gram(P), _gram(Q)) if grams is None else grams
    GPQ = GP * GQ
    k = P.shape[1]
    regs = head_penalties(tasks, config)
    dense = [task.weight * task.negative_weight * GPQ + regs[t] * np.eye(k) for t, task in enumerate(tasks)]
    bias_lin = _bias_head_terms(tasks, params)  # whole-data item biases' linear term, (T, k)
    terms = _EntryTerms(tasks).refresh(params, offsets) if terms is None else terms.refresh_bounds(params, offsets)
    curv, lin = terms.curv, terms.lin
    if config.solver == "cholesky":
        start = 0
        for t, task in enumerate(tasks):
            sl = slice(start, start + len(task.rows))
            start = sl.stop
            if t in config.fixed_heads:
                continue
            H, g = kernels.head_normal_equations(task.rows, task.cols, curv[sl], lin[sl], P, Q, n_chunks)
            on = slice(None) if config.head_mask is None else config.head_mask[t] > 0
            params.head_weights[t][on] = np.linalg.solve((H + dense[t])[on][:, on], (g + regs[t] - bias_lin[t])[on])
        return None
    # one warm-started CG step per head (exact line search along the residual r): monotone; heads move slowly.
    # The residual's pass also gives every entry's factor score z_e . w before the step; r^T H r needs only the
    # scalar sum_e curv_e (z_e . r)^2, whose pass gives the moves z_e . r, so the scores at the new heads
    # (f + step * move) cost no pass of their own
    lay = user_side
    W = params.head_weights
    T = len(tasks)
    scores = np.empty(len(curv))
    R = kernels.head_products(lay.indptr, lay.indices, lay.order, T, curv, lin, P, Q, W, True, n_chunks, scores)
    R += regs[:, None] - np.einsum("tij,tj->ti", np.asarray(dense), W) - bias_lin
    R[list(config.fixed_heads)] = 0.0  # a reference head stays at 1: its step is 0 and its scores unchanged
    if config.head_mask is not None:
        R *= config.head_mask  # CG in each head's own subspace: the other tasks' private factors stay unread
    factor_scores = []
    for t, task in enumerate(tasks):
        sl = slice(terms.bounds[t], terms.bounds[t + 1])
        f, moves = scores[sl], np.empty(len(task.rows))
        entries_part = kernels.score_moves(task.rows, task.cols, curv[sl], P, (Q * R[t]).astype(P.dtype), moves)
        rs, rHr = R[t] @ R[t], entries_part + R[t] @ dense[t] @ R[t]
        if rs >= 1e-20 and rHr > 0:
            step = rs / rHr
            W[t] += step * R[t]
            f += step * moves
        factor_scores.append(f)
    return factor_scores


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
    do_users, do_items, do_shared = side in (None, "user"), side in (None, "item"), side is None
    f = _factor_scores(task, t, params) if f is None else f
    o = _offsets(task, t, params) if o is None else o
    reg, cross_reg = _bias_reg(config), config.cross_regularization

    def setter(array, index):
        def set_values(new):
            array[index] = new[0] if np.ndim(array[index]) == 0 else new
        return set_values

    if task.item_bias and do_items:
        _update_item_bias(task, t, params, config, f, o)
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
        _run_blocks(task, f, o, blocks)
        blocks = []
        Xc = task.cross
        a, z = (logistic_bound(task.target, f + o) if task.kind == "binary" else (task.confidence, task.target))
        old = Xc @ params.cross_weights[t, beta_idx]
        r = z - f - (o - old)
        H = task.weight * (Xc * a[:, None]).T @ Xc + cross_reg * np.eye(len(beta_idx))
        g = task.weight * Xc.T @ (a * r)
        params.cross_weights[t, beta_idx] = np.linalg.solve(H, g)
        o += Xc @ params.cross_weights[t, beta_idx] - old
    # per-item and per-user deviations on the pairs where task b observed (u, i): how much more (or less) this
    # item's / this user's evidence predicts task t; exact coordinate updates, shrunk towards 0
    for j, b in enumerate(beta_idx):
        for dev, kind, wanted in ((params.cross_item_weights, 2, do_items), (params.cross_user_weights, 1, do_users)):
            if wanted and dev is not None:
                blocks.append((j, kind, cross_reg, dev[t, b], setter(dev, (t, b))))
    if task.kind != "binary" and do_shared and len(beta_idx) == 1:
        _join_shared_weight(blocks, params, t, beta_idx[0])
    _run_blocks(task, f, o, blocks)
    return o, f


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


def solve_side(tasks, params, by_item, config, n_sweeps=1, n_jobs=None):
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
            _update_rows(tasks, params, stacked, by_item, config)
            update(tasks, params, config)
    return params


def fit_alternating(tasks, params, config, callback=None, n_chunks=8):
    """Run the alternating sweeps in place on ``params``.

    Parameters
    ----------
    tasks : list of TaskArrays
    params : Params
        Initial values; updated in place.
    config : SolverConfig
    callback : callable(iteration, objective, per_task, elapsed) -> bool, optional
        Called after every sweep; returning True stops early.

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
    gram_q = _gram(params.item_factors)
    evidence = (user_side.evidence, item_side.evidence)
    history = [objective(tasks, params, config, offsets, grams=(_gram(params.user_factors), gram_q),
                         evidence=evidence)[0]]
    start = time.perf_counter()
    n_iter = 0
    for it in range(config.iterations):
        terms.refresh(params, offsets)
        _update_rows(tasks, params, user_side, False, config, offsets, terms, gram=gram_q)
        gram_p = _gram(params.user_factors)
        _update_rows(tasks, params, item_side, True, config, offsets, terms, gram=gram_p)
        gram_q = _gram(params.item_factors)  # (also the next sweep's user-side Gram matrix)
        factor_scores = None
        if config.fit_heads:
            factor_scores = _update_heads(tasks, params, config, n_chunks, user_side, offsets, terms,
                                          grams=(gram_p, gram_q))
        offsets, factor_scores = _update_offsets(tasks, params, config, offsets, factor_scores)
        n_iter = it + 1
        total, per_task = objective(tasks, params, config, offsets, factor_scores, grams=(gram_p, gram_q),
                                    evidence=evidence)
        history.append(total)
        if callback is not None and callback(n_iter, total, per_task, time.perf_counter() - start):
            break
    return history, n_iter
