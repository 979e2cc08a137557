"""The solver's arrays and terms: the task layout (:class:`TaskArrays`), the settings (:class:`SolverConfig`), every
entry's curvature and working target, the dense (Gram) parts of the row systems, the per-row penalties and the exact
objective (docs/MATH.md sections 1-2). The learned arrays are :class:`mtl_classic.params.FittedParams` (``Params``
here). The blocks that minimise the objective live in :mod:`mtl_classic.solver.als`.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._sparse import observation_pattern
from ..heads import logistic_bound, logistic_loss
from ..params import FittedParams as Params  # the learned arrays: one owner, mtl_classic.params
from . import kernels

@dataclass
class TaskArrays:
    """One task's entries on its pattern (observations plus the cross-task feature pattern), user-major order."""

    name: str
    kind: str                 # "implicit" | "binary" | "regression"
    weight: float             # lambda_t
    negative_weight: float    # w0_t (0 for observed-only tasks)
    biases: bool
    rows: np.ndarray          # int64 user index per entry
    cols: np.ndarray          # int64 item index per entry
    observed: np.ndarray      # bool, entry is an observation of this task
    confidence: np.ndarray    # a_e for implicit tasks (1 + alpha * count on observations, w0 elsewhere); 1 otherwise
    target: np.ndarray        # y_e (1/0 implicit, value regression, label binary)
    cross: np.ndarray         # (n_entries, n_cross) features x_b(u, i)
    cross_tasks: np.ndarray   # int64 indices of the tasks feeding the cross features
    item_bias: bool = False   # implicit tasks: an item bias bi_t[i] on every pair (the popularity term)
    item_feature: np.ndarray = None   # (n_items,) a_i: the item bias is constrained to gamma_t * a (one weight)
    item_feature_weight: float = None  # gamma_t held fixed (a fold-in of new items); None: learned
    negative_scale: np.ndarray = None  # (n_items,) s_i: an unobserved pair (u, i) weighs w0 s_i (None: w0)


@dataclass
class SolverConfig:
    """Settings of :func:`fit_alternating` (the estimator builds it from its parameters)."""

    regularization: float = 0.01
    head_regularization: float = 0.1
    fit_heads: bool = True
    row_regularization: float = 0.0   # extra factor penalty per weighted observation of an observed-only task
    negative_regularization: float = 0.0  # extra factor penalty per unit of a row's whole-data negative mass
    bias_regularization: float = None  # penalty on user / item biases (None: ``regularization``)
    fixed_heads: tuple = ()            # tasks whose head stays at its mask (the reference that pins the scale)
    head_mask: np.ndarray = None       # (T, k) 0/1: the factors each task's head reads (None: all); the others are
                                       # other tasks' private factors, where the head stays at 0
    cross_regularization: float = 10.0
    cross_per_item: bool = True
    cross_per_user: bool = True
    solver: str = "cg"
    cg_steps: int = 3
    cg_rtol: float = 0.1        # a row's CG stops once ||r|| <= cg_rtol * ||r_0||
    precondition: bool = True   # CG rows preconditioned by the Gram part (False: plain CG, as implicit's)
    iterations: int = 15


def prepare_task_arrays(name, kind, observations, weight=1.0, alpha=1.0, negative_weight=1.0, biases=False,
                        cross_patterns=(), cross_task_indices=(), evidence_negative_weight=None, item_bias=False,
                        item_feature=None, item_feature_weight=None, negative_scale=None):
    """Lay one task out as :class:`TaskArrays`.

    Parameters
    ----------
    observations : csr_matrix (n_users, n_items)
        The task's observations; the sparsity pattern is the set of observed pairs (explicit zeros count).
    cross_patterns : sequence of csr_matrix
        0/1 pattern matrices ``x_b`` of the tasks feeding this head. For implicit tasks their pattern joins the
        task's entries (unobserved pairs there have target 0 and weight ``evidence_negative_weight``); for
        observed-only tasks the features are read on the observations only.
    evidence_negative_weight : float or None
        Implicit tasks: weight of the unobserved pairs that another task observed (None: ``negative_weight``).
    item_bias : bool
        Implicit tasks: an item bias on every pair, observed or not (docs/ARCHITECTURE.md, "popularity term").
    item_feature : array (n_items,) or None
        Implicit tasks: the item bias is ``gamma * item_feature`` with one learned weight gamma (implies
        ``item_bias``); ``item_feature_weight`` holds gamma fixed instead (new items folded in).
    negative_scale : array (n_items,) or None
        Implicit tasks: popularity-weighted negatives, an unobserved pair (u, i) weighs ``negative_weight * s_i``
        (None: every s_i = 1). The pairs another task observed keep ``evidence_negative_weight``: the weights stand
        for how likely the user saw the item, and there the user did.
    """
    obs = sp.csr_matrix(observations, dtype=np.float64)
    obs.sum_duplicates()
    shape = obs.shape
    union = observation_pattern(obs)
    if kind == "implicit":
        # entries = observations  U  the cross patterns (all values >= 1, so sparse sums drop nothing)
        for pat in cross_patterns:
            union = union + observation_pattern(pat)
        union = observation_pattern(union)
    union.sort_indices()
    n_entries = union.nnz
    # tag every entry: 1 where unobserved, 2 * (position in obs) + 3 where observed
    tag = union + sp.csr_matrix((2.0 * np.arange(1, obs.nnz + 1), obs.indices, obs.indptr), shape=shape)
    tag.sort_indices()
    observed = tag.data > 1.5
    obs_position = np.rint((tag.data[observed] - 3.0) / 2.0).astype(np.int64)
    rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(union.indptr))
    cols = union.indices.astype(np.int64)
    values = np.zeros(n_entries)
    values[observed] = obs.data[obs_position]
    scale = None
    if kind == "implicit" and negative_scale is not None:
        scale = np.asarray(negative_scale, dtype=np.float64)
        if scale.shape != (shape[1],) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError(f"task {name!r}: negative_scale must hold one positive finite value per item "
                             f"({shape[1]}); got shape {scale.shape}.")
    if kind == "implicit":
        off = negative_weight if evidence_negative_weight is None else evidence_negative_weight
        confidence = np.full(n_entries, float(off))
        confidence[observed] = 1.0 + alpha * values[observed]
        target = observed.astype(float)
        w0 = float(negative_weight)
    else:
        confidence = np.ones(n_entries)
        target = values
        w0 = 0.0
    cross = np.zeros((n_entries, len(cross_patterns)), order="F")  # columns contiguous for the kernels
    for b, pat in enumerate(cross_patterns):
        hit = union + 2.0 * union.multiply(observation_pattern(pat))
        hit.sort_indices()
        cross[:, b] = hit.data > 1.5
    return TaskArrays(name=name, kind=kind, weight=float(weight), negative_weight=w0, biases=bool(biases),
                      rows=rows, cols=cols, observed=observed, confidence=confidence, target=target, cross=cross,
                      cross_tasks=np.asarray(cross_task_indices, dtype=np.int64),
                      item_bias=(bool(item_bias) or item_feature is not None) and kind == "implicit",
                      item_feature=None if item_feature is None else np.asarray(item_feature, dtype=np.float64),
                      item_feature_weight=None if item_feature_weight is None else float(item_feature_weight),
                      negative_scale=scale)


def _gram(M):
    """M^T M as float64, by BLAS in M's own type (float32 factors: the float32 product, as implicit's YtY; its
    rounding is that of the float32 factors themselves; mixed float32/float64 products would leave BLAS)."""
    return (M.T @ M).astype(np.float64)


def negative_scale(tasks):
    """The items' weights s_i of the unobserved pairs (popularity-weighted negatives), shared by every task with
    whole-data negatives, or None when no task has them. The item rows' dense part is then ``s_i`` times one shared
    matrix, which needs one s for all tasks: tasks with different ones raise ``ValueError``."""
    tasks = [t for t in tasks if t.negative_weight > 0]
    scales = [t.negative_scale for t in tasks if t.negative_scale is not None]
    if not scales:
        return None
    if len(scales) < len(tasks) or any(s is not scales[0] and not np.array_equal(s, scales[0]) for s in scales):
        raise ValueError("the implicit tasks weigh their negatives by different item popularities ("
                         + ", ".join(t.name for t in tasks) + "); the solver needs one negative_scale for all.")
    return scales[0]


def entry_negative_weights(task):
    """w0 s_i on every entry of the task: the whole-data weight its entries replace (a float without
    ``negative_scale``)."""
    if task.negative_scale is None:
        return task.negative_weight
    return task.negative_weight * task.negative_scale[task.cols]


def item_gram(Q, tasks):
    """Q^T diag(s) Q (float64): the item side's Gram matrix of the whole-data negatives (:func:`_gram` without
    popularity-weighted negatives)."""
    s = negative_scale(tasks)
    if s is None:
        return _gram(Q)
    return ((Q * s[:, None].astype(Q.dtype)).T @ Q).astype(np.float64)


def row_evidence(tasks, n_rows, by_item):
    """Weighted observation count m_r = sum_t lambda_t n_tr of every row over the observed-only tasks (binary,
    regression): the scale of the row's loss, and of its evidence-scaled penalty ``row_regularization * m_r``
    (ALS-WR). Implicit tasks add nothing: their whole-data loss spans every pair of every row alike."""
    m = np.zeros(n_rows)
    for task in tasks:
        if task.kind != "implicit":
            idx = task.cols if by_item else task.rows
            m += task.weight * np.bincount(idx[task.observed], minlength=n_rows)
    return m


def negative_mass(tasks, n_other):
    """Whole-data negative mass of one row, the same for every row of a side: sum_t lambda_t w0_t n_other over the
    implicit tasks (``n_other``: the other side's size, n_items for user rows)."""
    return float(sum(task.weight * task.negative_weight for task in tasks)) * n_other


def side_regularization(tasks, config, n_other):
    """The dense penalty of every row of one side: ``regularization`` plus ``negative_regularization`` times the
    row's whole-data negative mass (a per-side constant, so it stays in the shared Gram part A0)."""
    return config.regularization + config.negative_regularization * negative_mass(tasks, n_other)


def head_penalties(tasks, config, n_observed=None):
    """Penalty on every head, (T,): ``head_regularization``, plus for binary and regression tasks
    ``row_regularization`` per weighted observation (the rows' evidence scaling, at the task's level: a head fitted
    to 100,000 ratings would otherwise rescale the factors that the reference task's head pins).

    ``n_observed``: every task's number of observations, for a caller whose ``tasks`` hold only part of them (a
    distributed fit's task summaries); None counts ``task.observed``."""
    if n_observed is None:
        n_observed = [np.count_nonzero(task.observed) for task in tasks]
    return np.array([config.head_regularization + (0.0 if task.kind == "implicit" else
                                                   config.row_regularization * task.weight * n)
                     for task, n in zip(tasks, n_observed)])


def _bias_reg(config):
    return config.regularization if config.bias_regularization is None else config.bias_regularization


def _offsets(task, t, params):
    """Offset o_e = b_t + bu_t[u] + bi_t[i] + sum_b beta_tb x_b(u, i) on the task's entries."""
    o = np.full(len(task.rows), params.intercepts[t])
    if task.biases:
        o += params.user_biases[t, task.rows] + params.item_biases[t, task.cols]
    elif task.item_bias:
        o += params.item_biases[t, task.cols]
    if task.cross.shape[1]:
        o += task.cross @ params.cross_weights[t, task.cross_tasks]
        for j, b in enumerate(task.cross_tasks):
            if params.cross_item_weights is not None:
                o += task.cross[:, j] * params.cross_item_weights[t, b, task.cols]
            if params.cross_user_weights is not None:
                o += task.cross[:, j] * params.cross_user_weights[t, b, task.rows]
    return o


def _factor_scores(task, t, params):
    """f_e = (p_u * w_t) . q_i on the task's entries."""
    P = params.user_factors
    return kernels.entry_dots(task.rows, task.cols, P, (params.item_factors * params.head_weights[t]).astype(P.dtype))


def _curvature(task, t, params, f=None, o=None):
    """Per-entry weights a_e and working targets z_e of the task's (surrogate) loss at the current parameters."""
    if task.kind == "binary":
        if f is None:
            f = _factor_scores(task, t, params)
        if o is None:
            o = _offsets(task, t, params)
        return logistic_bound(task.target, f + o)
    return task.confidence, task.target


def _entry_terms(task, t, params, o=None):
    """curv_e and lin_e of the row / head normal equations (see kernels.py) for one task.

    ``o``: the task's current offsets on its entries when the caller has them (they change only in the offset
    block, so the solver computes them once per sweep)."""
    if o is None:
        o = _offsets(task, t, params)
    a, z = _curvature(task, t, params, o=o)
    lam = task.weight
    # implicit: every pair already carries w0 through the Gram matrix; entries add (a_e - w0)
    w0 = entry_negative_weights(task)
    curv = lam * (a - w0) if task.kind == "implicit" else lam * a
    lin = lam * a * (z - o)
    if task.item_bias:  # the pair's whole-data term w0 (f + b_i)^2 is replaced by the entry's own
        lin += lam * w0 * params.item_biases[t, task.cols]
    return curv, lin


def _weighted_item_biases(task, t, params):
    """s * b_t: task t's whole-data item biases weighted by the negatives' item weights (b_t without them)."""
    b = params.item_biases[t]
    return b if task.negative_scale is None else task.negative_scale * b


def _bias_sums(params, t, task):
    """(P^T 1, Q^T (s * b_t)) in float64: the two sums through which task t's whole-data item biases reach the rows,
    the heads and the objective (s: the negatives' item weights, 1 without them)."""
    P, Q = params.user_factors, params.item_factors
    return P.sum(axis=0, dtype=np.float64), Q.T.astype(np.float64) @ _weighted_item_biases(task, t, params)


def _dense_rhs(tasks, params, by_item):
    """The whole-data item biases' part of every row's right-hand side, (n_rows, k), or None without them:
    user rows ``-sum_t lambda_t w0_t w_t * (Q^T (s * b_t))`` (the same for all), item row i
    ``-sum_t lambda_t w0_t s_i b_t[i] w_t * (P^T 1)``."""
    n_rows = params.item_factors.shape[0] if by_item else params.user_factors.shape[0]
    rhs = None
    for t, task in enumerate(tasks):
        if not task.item_bias:
            continue
        lam_w0, w = task.weight * task.negative_weight, params.head_weights[t]
        sum_p, q_b = _bias_sums(params, t, task)
        if rhs is None:
            rhs = np.zeros((n_rows, w.shape[0]))
        rhs -= lam_w0 * (np.outer(_weighted_item_biases(task, t, params), w * sum_p) if by_item else w * q_b)
    return rhs


def _bias_column_sums(task, t, params):
    """sum_u f_t(u, i) for every item: ``Q (w_t * P^T 1)``."""
    return params.item_factors.astype(np.float64) @ (params.head_weights[t] * _bias_sums(params, t, task)[0])


def _bias_head_terms(tasks, params):
    """(T, k): the whole-data item biases' linear term ``lambda w0 (P^T 1) * (Q^T b_t)`` in every head's gradient
    (0 for tasks without them)."""
    out = np.zeros(params.head_weights.shape)
    for t, task in enumerate(tasks):
        if task.item_bias:
            sum_p, q_b = _bias_sums(params, t, task)
            out[t] = task.weight * task.negative_weight * sum_p * q_b
    return out


def _dense_term(tasks, params, gram, reg, by_item):
    """A0 = sum_t lambda_t w0_t D_t G D_t + reg I (the whole-data negatives through the Gram matrix; user rows:
    G = Q^T diag(s) Q with popularity-weighted negatives, whose item row i takes s_i A0)."""
    k = gram.shape[0]
    A0 = reg * np.eye(k)
    for t, task in enumerate(tasks):
        if task.negative_weight > 0:
            w = params.head_weights[t]
            A0 += task.weight * task.negative_weight * (w[:, None] * gram * w[None, :])
    return A0


class _EntryTerms:
    """Every task's (curv, lin) concatenated in task order (the entry order that :class:`_Stacked` permutes).

    Squared-loss tasks' terms depend on the offsets only, so they are filled once per sweep (:meth:`refresh`);
    logistic tasks' are refilled before every block (:meth:`refresh_bounds`), their bound following the scores.
    """

    def __init__(self, tasks):
        self.tasks = tasks
        self.bounds = np.concatenate([[0], np.cumsum([len(t.rows) for t in tasks])])
        self.curv = np.empty(self.bounds[-1])
        self.lin = np.empty(self.bounds[-1])
        # only a logistic task's curvature moves (its bound follows the scores); the others' is fixed by the data
        self._curv_fixed = all(t.kind != "binary" for t in tasks)
        self._filled = [False] * len(tasks)
        self._cast_curv, self._cast_lin = {}, {}

    def refresh(self, params, offsets=None, binary_only=False):
        offsets = offsets or [None] * len(self.tasks)
        for t, task in enumerate(self.tasks):
            if binary_only and task.kind != "binary":
                continue
            sl = slice(self.bounds[t], self.bounds[t + 1])
            if task.kind != "binary" and self._filled[t]:  # squared loss: curv is fixed, lin follows the offsets
                o = _offsets(task, t, params) if offsets[t] is None else offsets[t]
                kernels.linear_terms(task.confidence, task.target, o, task.weight, self.lin[sl])
                if task.item_bias:
                    self.lin[sl] += task.weight * entry_negative_weights(task) * params.item_biases[t, task.cols]
            else:
                self.curv[sl], self.lin[sl] = _entry_terms(task, t, params, offsets[t])
                self._filled[t] = True
            self._cast_lin = {}
            if not self._curv_fixed:
                self._cast_curv = {}
        return self

    def copy(self):
        """An independent copy (the arrays copied, the tasks shared), for a caller that must keep this one."""
        out = _EntryTerms.__new__(_EntryTerms)
        out.__dict__.update(self.__dict__)
        out.curv, out.lin, out._filled = self.curv.copy(), self.lin.copy(), list(self._filled)
        out._cast_curv, out._cast_lin = {}, {}
        return out

    def refresh_bounds(self, params, offsets=None):
        """Refill the logistic tasks' terms (a no-op without logistic tasks)."""
        return self.refresh(params, offsets, binary_only=True)

    def for_rows(self, stacked, dtype):
        """(curv, lin) in ``stacked``'s order and in ``dtype``: lin gathered once per side until the next refresh,
        curv once per fit unless a logistic task moves it."""
        key = (id(stacked), np.dtype(dtype))
        n = len(stacked.order)
        if key not in self._cast_curv:
            self._cast_curv[key] = kernels.gather(self.curv, stacked.order, np.empty(n, dtype))
        if key not in self._cast_lin:
            self._cast_lin[key] = kernels.gather(self.lin, stacked.order, np.empty(n, dtype))
        return self._cast_curv[key], self._cast_lin[key]


def _stacked_terms(tasks, params, offsets=None):
    """(curv, lin) of every task at the current parameters, concatenated in task order."""
    terms = _EntryTerms(tasks).refresh(params, offsets)
    return terms.curv, terms.lin


def objective(tasks, params, config, offsets=None, factor_scores=None, grams=None, evidence=None):
    """Exact objective L of docs/MATH.md section 1 (plus the L2 penalties on biases and cross weights).

    ``offsets`` / ``factor_scores``: each task's current offsets and factor scores on its entries, when the caller
    has them (computed here otherwise); ``grams``: (P^T P, Q^T Q) likewise; ``evidence``: the users' and items'
    :func:`row_evidence` likewise.

    Returns
    -------
    total : float
    per_task : list of float
        lambda_t * L_t for every task.
    """
    return objective_from_entry_sums(tasks, params, config, objective_entry_sums(tasks, params, offsets,
                                                                                  factor_scores),
                                     grams=grams, evidence=evidence)


def objective_entry_sums(tasks, params, offsets=None, factor_scores=None):
    """The parts of the objective that are sums over the tasks' entries, one pair per task: the entries' loss
    (logistic loss, or the squared loss less the whole-data ``w0 f^2`` the Gram matrices add back) and, for
    whole-data item biases, ``sum_e (2 f_e b_e + b_e^2)``. Sums over disjoint sets of entries add up, so a
    distributed fit sums its blocks' pairs and hands them to :func:`objective_from_entry_sums`."""
    out = []
    for t, task in enumerate(tasks):
        f = _factor_scores(task, t, params) if factor_scores is None else factor_scores[t]
        o = _offsets(task, t, params) if offsets is None else offsets[t]
        if task.kind == "binary":
            out.append((logistic_loss(task.target, f + o), 0.0))
            continue
        scale = np.empty(0) if task.negative_scale is None else task.negative_scale
        entries, bias = kernels.squared_loss(task.confidence, task.target, f, o, float(task.negative_weight), scale,
                                             task.cols), 0.0
        if task.item_bias:  # sum_e s_i (2 f_e b_e + b_e^2)
            be = params.item_biases[t][task.cols]
            s_e = 1.0 if task.negative_scale is None else task.negative_scale[task.cols]
            bias = float(np.sum(s_e * (2.0 * f * be + be * be)))
        out.append((entries, bias))
    return out


def objective_from_entry_sums(tasks, params, config, entry_sums, grams=None, evidence=None, n_observed=None):
    """The objective from :func:`objective_entry_sums` of every entry and the dense parts (Gram matrices,
    penalties) of the full ``params``; ``grams``: (P^T P, :func:`item_gram`); ``n_observed`` as in
    :func:`head_penalties`. Returns (total, per_task) as :func:`objective`."""
    P, Q = params.user_factors, params.item_factors
    GP, GQ = (_gram(P), item_gram(Q, tasks)) if grams is None else grams
    per_task = []
    for t, task in enumerate(tasks):
        entries, bias = entry_sums[t]
        if task.kind == "binary":
            loss = entries
        else:
            # implicit: sum over all pairs of w0 f^2 (Gram matrices) + the entries' correction; regression: w0 = 0
            w = params.head_weights[t]
            total_f2 = float(np.sum((w[:, None] * GP * w[None, :]) * GQ)) if task.negative_weight else 0.0
            loss = task.negative_weight * total_f2 + entries
            if task.item_bias:  # w0 sum_(u,i) s_i [(f + b_i)^2 - f^2] over all pairs, less the entries' share
                sb = _weighted_item_biases(task, t, params)
                loss += task.negative_weight * (2.0 * float(sb @ _bias_column_sums(task, t, params))
                                                + P.shape[0] * float(sb @ params.item_biases[t]) - bias)
        per_task.append(task.weight * loss)
    # ||P||^2 = trace(P^T P): the Gram matrices carry the factors' squared norms (with popularity-weighted negatives
    # an item row's penalty scales with its negatives' mass, s_i: trace(Q^T diag(s) Q))
    penalty = (side_regularization(tasks, config, Q.shape[0]) * np.trace(GP)
               + side_regularization(tasks, config, P.shape[0]) * np.trace(GQ))
    penalty += _bias_reg(config) * (np.sum(params.user_biases ** 2) + np.sum(params.item_biases ** 2))
    if config.row_regularization:
        if evidence is None:
            evidence = (row_evidence(tasks, P.shape[0], False), row_evidence(tasks, Q.shape[0], True))
        for M, m in zip((P, Q), evidence):
            penalty += config.row_regularization * float(m @ np.einsum("ij,ij->i", M, M, dtype=np.float64))
    penalty += config.cross_regularization * np.sum(params.cross_weights ** 2)
    for dev in (params.cross_item_weights, params.cross_user_weights):
        if dev is not None:
            penalty += config.cross_regularization * np.sum(dev ** 2)
    if config.fit_heads:
        target = 1.0 if config.head_mask is None else config.head_mask
        penalty += float(head_penalties(tasks, config, n_observed)
                         @ np.sum((params.head_weights - target) ** 2, axis=1))
    return float(sum(per_task) + penalty), per_task


def head_mask(n_tasks, factors, private_factors):
    """(T, k) 0/1 mask of shared plus task-private factors: the first ``factors - sum(private)`` columns are read by
    every head, then each task owns a block of its ``private_factors`` columns (an int: the same for every task, or
    one size per task) that only its head reads (one task: every column is its own)."""
    sizes = ([int(private_factors)] * n_tasks if np.ndim(private_factors) == 0
             else [int(s) for s in private_factors])
    mask = np.zeros((n_tasks, factors))
    shared = factors - sum(sizes)
    mask[:, :shared] = 1.0
    start = shared
    for t, size in enumerate(sizes):
        mask[t, start: start + size] = 1.0
        start += size
    return mask


def init_params(tasks, n_users, n_items, factors, rng, scale=0.01, dtype=np.float64, cross_per_item=False,
                cross_per_user=False, mask=None, observed_means=None):
    """Small random factors, heads at 1 (at ``mask``, when given), cross weights 0, intercepts at the observed mean
    (logit for binary). ``observed_means``: every task's mean observed target (None where it has no intercept),
    for a caller whose ``tasks`` hold only part of the entries; None computes them from ``tasks``."""
    T = len(tasks)
    params = Params(
        user_factors=(rng.standard_normal((n_users, factors)) * scale).astype(dtype),
        item_factors=(rng.standard_normal((n_items, factors)) * scale).astype(dtype),
        head_weights=np.ones((T, factors)) if mask is None else np.array(mask, dtype=np.float64),
        intercepts=np.zeros(T),
        user_biases=np.zeros((T, n_users)),
        item_biases=np.zeros((T, n_items)),
        cross_weights=np.zeros((T, T)),
        cross_item_weights=np.zeros((T, T, n_items)) if cross_per_item else None,
        cross_user_weights=np.zeros((T, T, n_users)) if cross_per_user else None,
    )
    for t, task in enumerate(tasks):
        if observed_means is not None:
            mean = observed_means[t]
        elif task.biases and task.observed.any():
            mean = float(np.mean(task.target[task.observed]))
        else:
            mean = None
        if mean is not None:
            params.intercepts[t] = initial_intercept(task.kind, mean)
    return params


def initial_intercept(kind, mean):
    """A task's starting intercept from the mean of its observed targets: the mean, or its logit (clipped) for a
    binary task."""
    if kind == "binary":
        return float(np.log(np.clip(mean, 1e-3, 1 - 1e-3) / np.clip(1 - mean, 1e-3, 1 - 1e-3)))
    return mean


#: public names of the per-entry terms (the distributed driver's blocks call them on their own entries)
entry_offsets, factor_scores, EntryTerms, bias_reg, gram = _offsets, _factor_scores, _EntryTerms, _bias_reg, _gram
