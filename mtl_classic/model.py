"""MultiTaskMF: validate -> initialise -> solve -> store (docs/MATH.md sections 1-3)."""
import copy
import logging
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from ._errors import ModelFormatError, not_fitted
from ._validation import (check_estimator_settings, check_validation, non_finite_fit_error, shape_settings,
                          warm_start_params)
from ._sparse import covered_pairs, observation_pattern
from .base import RecommenderMixin
from .data import IdMap, MultiTaskData
from .data.side import SideMatrix
from .evaluation import evaluate_ranking
from .foldin import solve_new_rows
from .heads import sigmoid
from .inference import InferenceModel
from .params import SCHEMA
from .persistence import load_parts, save_model
from .solver import als
from .solver.kernels import kernel_threads
from .negatives import fit_negative_scale, fitted_negative_scale
from .tasks import (item_feature_values, item_feature_weights, resolve_alphas, resolve_cross_tasks,
                    resolve_private_factors, resolve_side_tasks, resolve_side_weights, resolve_tasks)

log = logging.getLogger(__name__)


class MultiTaskMF(RecommenderMixin, BaseEstimator):
    """Multi-task matrix factorisation with shared factors and per-task linear / logistic heads.

    The score of task t for user u and item i is (docs/MATH.md section 1)
    ``s_t(u, i) = (p_u * w_t) . q_i + b_t + bu_t[u] + bi_t[i] + sum_b beta_tb x_b(u, i)``,
    where ``x_b`` is 1 where task b has a training observation of (u, i).

    Parameters
    ----------
    tasks : list of Task or None, default=None
        The tasks to model, each naming a task of the data. None models every task of the data as an implicit task
        of weight 1, and every side matrix of the data (``MultiTaskData.with_side``) as ``Task(name, side=...)``.
    factors : int, default=64
        Number of shared latent factors k.
    iterations : int, default=15
        Number of alternating sweeps.
    regularization : float, default=0.01
        L2 penalty on every factor row (users and items alike).
    negative_regularization : float, default=1e-4
        Penalty scaled to the implicit tasks' whole-data loss: every user row adds
        ``negative_regularization * sum_t lambda_t w0_t n_items * ||p_u||^2`` (item rows ``... n_users``), the
        mass of the row's weak negatives, so the penalty keeps its strength relative to the Gram term whatever the
        numbers of users and items (MovieLens' 610 users give its item rows a small penalty, Tmall's 41,738 a large
        one). A constant per side: it stays in the rows' shared (preconditioned) part. Chosen on the validation
        splits of MovieLens, Beibei and Tmall (``benchmarks/defaults.py``, table in
        ``benchmarks/results/defaults.md``): against 0 it lifts Tmall by 12% at no cost on Beibei; 3e-4 and 1e-3
        cost Beibei 1-3%. A constant ``regularization=10`` scored as well in the final run but 18% lower on
        MovieLens in the run before (that column is noise-level), and 30 costs Beibei 8%.
    negative_popularity : float, default=0.25
        Popularity-weighted negatives (He et al., SIGIR 2016): an unobserved pair (u, i) weighs ``w0 s_i`` with
        ``s_i ~ (1 + c_i) ** negative_popularity`` (c_i: the item's users over the implicit tasks), mean 1, so a
        popular item a user did not take counts as stronger evidence against it; 0: every pair weighs w0. Chosen on
        the validation splits (``benchmarks/defaults.py``, set "popularity"): the best mean over five datasets;
        0.5 and 0.75 lift Tmall further but cost MovieLens and Beibei more than Tmall gains (docs/MATH.md,
        benchmarks/RESULTS.md). Pairs another task observed keep their ``evidence_negative_weight``.
    row_regularization : float, default=0.1
        Evidence-scaled L2 penalty (ALS-WR, as Spark's ALS): a user row adds ``row_regularization * m_u ||p_u||^2``,
        where m_u is the user's weighted number of observations in the binary and regression tasks (items alike).
        One unscaled penalty cannot suit a user with 5 ratings and one with 2,000; this one grows with the row's loss.
        Implicit tasks add nothing to m_u: their whole-data loss spans every pair of every row alike. Chosen on a
        validation split carved from the MovieLens ratings (``benchmarks/ratings.py``): 0.1-0.15 were level, 0 memorises
        the training set.
    bias_regularization : float or None, default=5.0
        L2 penalty on the user and item biases of binary and regression tasks: a prior worth about this many
        observations (None: ``regularization``). Chosen with ``row_regularization``; 2-10 were level.
    private_factors : int or "auto", default="auto"
        Task-private factors per task (with several tasks): of the ``factors`` columns, the last
        ``T * private_factors`` are split into one block per task that only that task's head reads (its head is 0
        on the other blocks), the rest are shared by all. A task keeps its own signal where the other behaviours
        say nothing, and negative transfer can be switched off (the classical form of shared and task-specific
        experts). ``"auto"``: each task's block from its data, ``round(cap * (1 - c_t))`` with c_t the share of
        its observed pairs that another task also observes and ``cap = min(8, factors // (2 T))`` (at least half of
        the factors shared; :func:`mtl_classic.tasks.resolve_private_factors`; the fitted sizes are
        ``private_factors_``). A target the other behaviours always record shares every factor, one they mostly
        miss keeps a private block. Chosen on validation splits against 0, 4, 8 (the rule before) and 12 for every
        task (``benchmarks/defaults.py``, table in ``benchmarks/results/at-5e8f15f/defaults.md``).
    head_regularization : float, default=0.1
        Penalty pulling every head vector w_t towards 1 (towards its mask with private factors). Binary and regression
        heads add ``row_regularization`` per weighted observation, as their rows do: a learned head fitted to many
        ratings would otherwise rescale the shared factors that the reference task pins (benchmarks/RESULTS.md,
        the MovieLens multi-task rating head).
    fit_heads : bool, default=True
        Learn the per-task head vectors; False keeps them at 1 (one implicit task then is exactly the weighted matrix
        factorisation of Hu, Koren and Volinsky). The head of the reference task (the largest ``weight * nnz``,
        ``reference_task_``) always stays at 1: it pins the factors' scale, so that no learned head can undo their
        penalty (``p diag(w) q`` is unchanged by ``p -> p / c, w -> c w``). With one task no head is learned.
    cross_regularization : float, default=10.0
        L2 penalty on the cross-task weights beta_tb and their per-item deviations gamma_tb[i]. It acts as a prior
        worth about this many (weighted) observations, so an item needs that much evidence before its own weight
        departs from the shared one.
    cross_per_item : bool, default=False
        Give every cross-task weight a per-item deviation: ``s_t += sum_b (beta_tb + gamma_tb[i]) x_b(u, i)``, e.g.
        how often a cart of this very item turns into a purchase. O(nnz) per sweep. Off by default: on validation
        splits built as the tests were it lost on Beibei (its latest purchases, where the items' past conversion
        misleads) and on planted data, and was level or slightly ahead elsewhere (``benchmarks/defaults.py``).
    cross_per_user : bool, default=True
        The same per user: ``+ delta_tb[u] x_b(u, i)``, e.g. how often this user buys what they put in the cart.
        Users folded in after fitting use the shared and per-item weights only.
    solver : {"cg", "cholesky"}, default="cg"
        Row solver: a few warm-started conjugate-gradient steps, or an exact Cholesky solve.
    cg_steps : int, default=3
        Most conjugate-gradient steps per row and sweep (``solver="cg"``). The steps are preconditioned by the
        whole-data Gram part of the row systems (docs/ARCHITECTURE.md).
    cg_tol : float, default=0.1
        A row's CG stops early once its residual norm has fallen to ``cg_tol`` times its first (0: always
        ``cg_steps`` steps). On the validation splits of MovieLens, Beibei and Tmall the objective after 15 sweeps
        ends within 0.05% of ``cg_tol=0`` and validation NDCG@10 is level (``benchmarks/cg_tol.py``, table in
        ``benchmarks/results/cg_tol.md``; 0.3 ends within 0.08%).
    init_scale : float, default=0.01
        Standard deviation of the random initial factors.
    early_stopping_rounds : int or None, default=None
        With ``validation`` given to :meth:`fit`: stop after this many sweeps without improvement of the validation
        NDCG@10, and keep the best sweep's parameters.
    dtype : {"float32", "float64"}, default="float32"
        Floating point type of the factors. float32 (implicit's default) halves memory traffic and memory; on the
        validation splits of MovieLens, Beibei and Tmall its NDCG@10 was that of float64 to 1e-4
        (``benchmarks/defaults.py``). float64 keeps the objective's monotonicity at float64 round-off.
    n_jobs : int or None, default=None
        Threads for the compiled kernels and BLAS. None uses every core.
    random_state : int, Generator or None, default=None
        Seed for the initial factors.
    warm_start : bool, default=False
        When True and the model is already fitted, :meth:`fit` starts from the fitted parameters instead of random
        factors and runs ``iterations`` more sweeps (scikit-learn's ``warm_start``). The data must have the same
        users, items and tasks as the previous fit, and the settings that shape the parameters (``factors``,
        ``private_factors``, ``dtype``, ``cross_per_item``, ``cross_per_user``, ``fit_heads``) must be unchanged.
        Every solver state lives in the parameters, so a fit of n sweeps continued by one of m sweeps equals a fit
        of n + m sweeps (``loss_history_`` then starts at the objective where the previous fit ended). Used by
        :class:`mtl_classic.model_selection.SuccessiveHalvingSearch` to give a rung's survivors more sweeps.
    show_progress : bool, default=True
        A tqdm progress bar over the sweeps with the current objective (as implicit's ``show_progress``). It is
        shown on a terminal only: tqdm turns itself off when stderr is not a TTY (logs, CI, notebooks' captured
        output); False never shows it.
    verbose : bool, default=False
        Report one line per sweep (objective, per-task terms, validation score, elapsed time) through
        ``logging`` at INFO on the logger ``"mtl_classic.model"`` (at DEBUG when False). The library never prints;
        configure logging (e.g. ``logging.basicConfig(level="INFO")``) to see the lines.

    Attributes
    ----------
    fitted_params_ : FittedParams
        Every learned array (:mod:`mtl_classic.params`); each is also an attribute ``<name>_``: user_factors_,
        item_factors_, head_weights_, intercepts_, user_biases_, item_biases_, cross_weights_,
        cross_item_weights_, cross_user_weights_.
    private_factors_ : list of int
        The private factors of each task of the fit, in ``tasks_`` order (``private_factors`` resolved; 0 with one
        task).
    tasks_, task_index_, reference_task_, cross_tasks_, dropped_cross_tasks_, cross_features_, user_map_,
    item_map_, data_, default_task_, loss_history_, n_iter_, validation_history_, fit_time_
        See docs/ARCHITECTURE.md.
    """

    def __init__(self, tasks=None, factors=64, iterations=15, regularization=0.01, negative_regularization=1e-4,
                 row_regularization=0.1, bias_regularization=5.0, negative_popularity=0.25, private_factors="auto",
                 head_regularization=0.1, fit_heads=True, cross_regularization=10.0, cross_per_item=False,
                 cross_per_user=True, solver="cg", cg_steps=3, cg_tol=0.1, init_scale=0.01, early_stopping_rounds=None,
                 dtype="float32", n_jobs=None, random_state=None, warm_start=False, show_progress=True, verbose=False):
        self.tasks = tasks
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.negative_regularization = negative_regularization
        self.row_regularization = row_regularization
        self.negative_popularity = negative_popularity
        self.bias_regularization = bias_regularization
        self.private_factors = private_factors
        self.head_regularization = head_regularization
        self.fit_heads = fit_heads
        self.cross_regularization = cross_regularization
        self.cross_per_item = cross_per_item
        self.cross_per_user = cross_per_user
        self.solver = solver
        self.cg_steps = cg_steps
        self.cg_tol = cg_tol
        self.init_scale = init_scale
        self.early_stopping_rounds = early_stopping_rounds
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.warm_start = warm_start
        self.show_progress = show_progress
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _validate_params(self):
        check_estimator_settings(self)

    def _resolve_tasks(self, data):
        """(the user x item tasks, alphas resolved; the side tasks, weights resolved)."""
        pairs, side_tasks = resolve_side_tasks(self.tasks, data)
        tasks = resolve_tasks(pairs, data)
        sums = {t.name: float(np.sum(data.matrices[t.name].data)) for t in tasks}
        tasks = resolve_alphas(tasks, sums, data.n_users, data.n_items)
        nnz = {t.name: data.matrices[t.name].nnz for t in tasks}
        return tasks, resolve_side_weights(side_tasks, getattr(data, "side", {}), tasks, nnz, sums)

    # ------------------------------------------------------------------ fitting
    def _task_arrays(self, tasks, matrices, patterns, cross_tasks=None, item_features=None, negative_scale="fitted"):
        """Solver arrays of every task; ``cross_tasks`` (default: the fitted ``cross_tasks_``) names the tasks whose
        patterns feed each head; ``item_features``: task name -> (values per item, fixed weight or None);
        ``negative_scale``: the items' weights of the negatives (default: the fit's, over its items)."""
        if isinstance(negative_scale, str):
            negative_scale = fitted_negative_scale(self)
        names = [t.name for t in tasks]
        if cross_tasks is None:
            cross_tasks = getattr(self, "cross_tasks_", None)
        if cross_tasks is None:  # a model restored without it: the tasks with a learned cross weight
            cross_tasks = {t.name: [names[b] for b in self.fitted_params_.active_cross(i)]
                           for i, t in enumerate(tasks)}
        arrays = []
        for t in tasks:
            cross = cross_tasks[t.name]
            arrays.append(als.prepare_task_arrays(
                t.name, t.kind, matrices[t.name], weight=t.weight, alpha=t.alpha,
                negative_weight=t.negative_weight, evidence_negative_weight=t.resolved_evidence_negative_weight(),
                biases=t.resolved_biases(), item_bias=t.resolved_item_bias(),
                cross_patterns=[patterns[c] for c in cross],
                cross_task_indices=[names.index(c) for c in cross], negative_scale=negative_scale,
                **dict(zip(("item_feature", "item_feature_weight"), (item_features or {}).get(t.name, ())))))
        return arrays

    @property
    def item_feature_weights_(self):
        """dict task name -> gamma_t, the learned weight of each task's ``item_feature`` (the item biases are
        ``gamma_t * a``)."""
        self._check_fitted()
        return item_feature_weights(self.tasks_, self.data_, self.fitted_params_.item_biases)

    def _head_mask(self, n_tasks, coverage=None):
        """The heads' mask of shared plus private factors for ``n_tasks`` tasks (None without private factors);
        ``coverage``: each task's share of pairs another task observes (``private_factors="auto"``). Sets
        ``private_factors_``; a warm start keeps the sizes of the fit it continues (the fit and
        :func:`mtl_classic.distributed.fit`)."""
        k = int(self.factors)
        sizes = resolve_private_factors(self.private_factors, k, n_tasks, coverage)
        if self.warm_start and hasattr(self, "fitted_params_") and hasattr(self, "private_factors_"):
            before = self.private_factors_
            sizes = [int(before)] * n_tasks if np.ndim(before) == 0 else [int(s) for s in before]
        if k - sum(sizes) < 1:
            what = (f"{n_tasks} tasks x {sizes[0]} private factors" if len(set(sizes)) == 1
                    else f"{sum(sizes)} private factors {sizes}")
            raise ValueError(f"The 'private_factors' parameter of MultiTaskMF ({self.private_factors}) leaves no "
                             f"shared factor: {what} >= factors={k}.")
        self.private_factors_ = sizes
        return als.head_mask(n_tasks, k, sizes) if sum(sizes) else None

    def _config(self):
        return als.SolverConfig(regularization=float(self.regularization),
                                row_regularization=float(self.row_regularization),
                                negative_regularization=float(self.negative_regularization),
                                bias_regularization=(None if self.bias_regularization is None
                                                     else float(self.bias_regularization)),
                                head_regularization=float(self.head_regularization), fit_heads=bool(self.fit_heads),
                                cross_regularization=float(self.cross_regularization),
                                cross_per_item=bool(self.cross_per_item),
                                cross_per_user=bool(self.cross_per_user),
                                solver=self.solver, cg_steps=int(self.cg_steps), cg_rtol=float(self.cg_tol),
                                iterations=int(self.iterations))

    def fit(self, data, validation=None):
        """Fit the model.

        Parameters
        ----------
        data : MultiTaskData
            Training observations, one matrix per task.
        validation : tuple (task, csr_matrix) or object with ``target`` and ``test``, optional
            Held-out pairs of one task over the data's index; NDCG@10 on them is recorded after every sweep in
            ``validation_history_`` and drives ``early_stopping_rounds``.

        Returns
        -------
        self
        """
        self._validate_params()
        if not hasattr(data, "matrices") or not hasattr(data, "user_map"):
            raise ValueError(f"fit expects a MultiTaskData; got {type(data).__name__}.")
        tasks, side_tasks = self._resolve_tasks(data)
        names = [t.name for t in tasks]
        val_task, val_matrix = check_validation(validation, data, names)

        rng = np.random.default_rng(self.random_state)
        patterns = {n: observation_pattern(data.matrices[n]) for n in names}
        self.cross_tasks_, self.dropped_cross_tasks_ = resolve_cross_tasks(tasks, patterns)
        if self.dropped_cross_tasks_:
            warnings.warn("MultiTaskMF: cross-task features left out because the feeding task's pairs are (almost) "
                          "all pairs the fed task records itself, so they say nothing about its other pairs: "
                          + "; ".join(f"{t} <- {b}" for t, b in self.dropped_cross_tasks_.items())
                          + " (see dropped_cross_tasks_).", UserWarning, stacklevel=2)
        arrays = self._task_arrays(tasks, data.matrices, patterns, item_features=item_feature_values(tasks, data),
                                   negative_scale=fit_negative_scale(self, tasks, data))
        covered = covered_pairs(patterns)
        coverage = [covered[n] / max(patterns[n].nnz, 1) for n in names]
        k, mask = int(self.factors), self._head_mask(len(tasks), coverage)
        params = warm_start_params(self, data, tasks) if self.warm_start else None
        if params is None:
            params = als.init_params(arrays, data.n_users, data.n_items, k, rng, float(self.init_scale),
                                     dtype=np.dtype(self.dtype), cross_per_item=bool(self.cross_per_item),
                                     cross_per_user=bool(self.cross_per_user), mask=mask)
        side_terms = self._side_terms(side_tasks, data, k, rng, params.user_factors.dtype)
        config = self._config()
        config.head_mask = mask
        # the reference task's head stays at 1, so that no learned head can rescale the factors past their penalty
        # (p diag(w) q is unchanged by p -> p / c, w -> c w)
        reference = int(np.argmax([t.weight * data.matrices[t.name].nnz for t in tasks]))
        self.reference_task_ = names[reference] if self.fit_heads else None
        if self.fit_heads:
            config.fixed_heads = (reference,)

        self._set_data_state(tasks, data, patterns, default_task=names[-1] if len(names) == 1 else None)
        self.validation_history_ = []
        best = {"score": -np.inf, "params": None, "iter": 0}

        def callback(it, total, per_task, elapsed):
            if not np.isfinite(total):
                raise non_finite_fit_error(tasks, data, self.dtype, it)
            line = f"[MultiTaskMF] sweep {it:3d}/{config.iterations} objective {total:.6g}"
            if len(per_task) > 1:
                line += " (" + ", ".join(f"{n} {v:.4g}" for n, v in zip(names + list(self.side_factors_), per_task))
                line += ")"
            if val_task is not None:
                self._store(params)
                score = self._validation_score(val_task, val_matrix)
                self.validation_history_.append(score)
                line += f" val NDCG@10 {score:.4f}"
                if score > best["score"]:
                    best.update(score=score, params=copy.deepcopy(params), iter=it,
                                side={n: V.copy() for n, V in self.side_factors_.items()},
                                side_c={n: c.copy() for n, c in self.side_intercepts_.items()})
            log.log(logging.INFO if self.verbose else logging.DEBUG, "%s %.1fs", line, elapsed)
            bar.set_postfix_str(f"objective {total:.6g}", refresh=False)
            bar.update(1)
            return (self.early_stopping_rounds is not None and val_task is not None
                    and it - best["iter"] >= self.early_stopping_rounds)

        start = time.perf_counter()
        bar = tqdm(total=config.iterations, desc="MultiTaskMF", unit="sweep", leave=False,
                   disable=None if self.show_progress else True)
        with kernel_threads(self.n_jobs), bar:
            history, n_iter = als.fit_alternating(arrays, params, config, callback=callback, side_terms=side_terms)
        self.fit_time_ = time.perf_counter() - start
        if not np.isfinite(history[0]):
            raise non_finite_fit_error(tasks, data, self.dtype, 0)
        if best["params"] is not None and self.early_stopping_rounds is not None:
            params, self.side_factors_, self.side_intercepts_ = best["params"], best["side"], best["side_c"]
            self.best_iteration_ = best["iter"]
        self._finish_fit(params, history, n_iter)
        return self

    def _side_terms(self, side_tasks, data, k, rng, dtype):
        """The side matrices' solver terms (their column factors drawn after the pair tasks' initial factors, so that
        a fit without them is unchanged; a warm start continues ``side_factors_``). Sets ``side_tasks_`` and
        ``side_factors_`` (the solver updates the arrays in place)."""
        before = getattr(self, "side_factors_", {}) if self.warm_start else {}
        before_c = getattr(self, "side_intercepts_", {}) if self.warm_start else {}
        terms = []
        for t in side_tasks:
            m = data.side[t.name]
            V, c = before.get(t.name), before_c.get(t.name)
            if V is None or V.shape != (m.n_columns, k):
                V = (rng.standard_normal((m.n_columns, k)) * float(self.init_scale)).astype(dtype)
            c = np.zeros(m.n_columns) if c is None or c.shape != (m.n_columns,) or not t.biases else c.copy()
            if t.kind == "binary":
                t.check_values(m.matrix.data, f"side task {t.name!r}")
            terms.append(als.SideTerm.from_task(t, m.matrix, V, c))
        self.side_tasks_, self.side_factors_ = side_tasks, {s.name: s.factors for s in terms}
        self.side_intercepts_ = {s.name: s.intercepts for s in terms}
        return terms

    def _set_data_state(self, tasks, data, patterns, default_task):
        """The fitted attributes that describe the tasks and the training data (set by ``fit``, ``load`` and
        :func:`mtl_classic.distributed.fit`)."""
        self.tasks_ = tasks
        self.task_index_ = {t.name: i for i, t in enumerate(tasks)}
        self.cross_features_ = patterns
        self.data_ = data
        self.user_map_, self.item_map_ = data.user_map, data.item_map
        self.default_task_ = default_task

    def _finish_fit(self, params, history, n_iter):
        """Store a fit's parameters and its record (``fit`` and :func:`mtl_classic.distributed.fit`)."""
        self._store(params)
        self._fit_settings = shape_settings(self)
        self.loss_history_ = history
        self.n_iter_ = n_iter

    def _store(self, params):
        self._scorer_cache = None
        self.fitted_params_ = params

    def _validation_score(self, task, matrix):
        return float(evaluate_ranking(self, self.data_, matrix, task, ks=(10,))["NDCG@10"])

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if not hasattr(self, "fitted_params_"):
            raise not_fitted(self)

    def _task(self, task):
        self._check_fitted()
        if task not in self.task_index_:
            raise ValueError(f"unknown task {task!r}; the model has tasks {list(self.task_index_)}.")
        return self.task_index_[task]

    def _scorer(self):
        """The numpy-only scorer over this model's arrays (shared, not copied): the one implementation of the score
        formula, used here and by the serving path."""
        if getattr(self, "_scorer_cache", None) is None:
            self._scorer_cache = InferenceModel.from_model(self)
        return self._scorer_cache

    def score_items(self, task, user_indices):
        """Scores of every item for the given internal user indices (logits for logistic heads).

        Returns
        -------
        ndarray of shape (len(user_indices), n_items)
        """
        self._task(task)
        return self._scorer().score_items(task, user_indices)

    def predict_indices(self, task, user_indices, item_indices, raw=False):
        """Pointwise predictions for internal index pairs: scores, or probabilities for logistic heads (logits with
        ``raw=True``)."""
        self._task(task)
        return self._scorer().predict_indices(task, user_indices, item_indices, raw=raw)

    def recommend(self, users, n=10, task=None, filter_seen=True, filter_items=None, items=None, batch_size=None):
        """Top-``n`` items for each user, in external ids; see :meth:`RecommenderMixin.recommend` for the arguments
        and the shape rule. Served by the numpy-only inference path, so the estimator and a deployed model give the
        same answers."""
        self._check_fitted()
        return self._scorer().recommend(users, n=n, task=task, filter_seen=filter_seen, filter_items=filter_items,
                                        items=items, batch_size=batch_size)

    def predict(self, task, users, items):
        """Predictions of ``task`` for pairs of external user and item ids.

        Parameters
        ----------
        task : str
            A pair task, or a side task: then ``users`` are the side's rows (item ids for an item side matrix) and
            ``items`` its column ids, and the prediction is ``f . v + c`` (an item-level target is a 1-column side
            matrix, ``Task("sales", side="item", biases=True)`` for its intercept c:
            ``predict("sales", items, ["sales"] * len(items))``).
        users, items : array-like of external ids, same length

        Returns
        -------
        ndarray of float: scores (linear heads) or probabilities (logistic heads)

        Raises
        ------
        KeyError
            If a user or item id is unknown to the training data.
        """
        self._check_fitted()
        side = {t.name: t for t in getattr(self, "side_tasks_", None) or []}
        if task in side:
            rows = (self.item_map_ if side[task].side == "item" else self.user_map_).index(
                np.atleast_1d(np.asarray(users, dtype=object)))
            cols = self.data_.side[task].columns.index(np.atleast_1d(np.asarray(items, dtype=object)))
            F = self.item_factors_ if side[task].side == "item" else self.user_factors_
            scores = (np.einsum("ij,ij->i", F[rows].astype(np.float64), self.side_factors_[task][cols])
                      + self.side_intercepts_[task][cols])
            return sigmoid(scores) if side[task].kind == "binary" else scores
        u = self.user_map_.index(np.atleast_1d(np.asarray(users, dtype=object)))
        i = self.item_map_.index(np.atleast_1d(np.asarray(items, dtype=object)))
        return self.predict_indices(task, u, i)

    def save(self, path, **kwargs):
        """Save the fitted model to the directory ``path`` (JSON + ``.npz``, no pickle); see
        :func:`mtl_classic.persistence.save_model` for the options."""
        return save_model(self, path, **kwargs)

    @classmethod
    def load(cls, path, check_version=True):
        """Load a model saved by :meth:`save` (a full artifact) as a fitted estimator.

        Parameters
        ----------
        path : str or os.PathLike
            The model directory.
        check_version : bool, default=True
            Refuse a model written by another mtl_classic version.

        Returns
        -------
        MultiTaskMF
            With every learned attribute restored and ``data_`` rebuilt from the stored training matrices
            (timestamps included when they were present), so ``predict``, ``recommend(filter_seen=...)`` and the
            fold-ins give the same answers as the saved model.

        Raises
        ------
        ModelFormatError
            Missing, truncated or corrupt files, another format or library version, a slim artifact, parameters this
            version does not know.
        """
        parts = load_parts(path, known_params=cls().get_params(deep=False), check_version=check_version)
        try:
            data = MultiTaskData(parts.matrices, IdMap(parts.user_ids), IdMap(parts.item_ids),
                                 timestamps=parts.timestamps or None, report={"source": f"loaded from {path}"})
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{parts.file}: the stored training data are invalid ({exc}).") from None
        data.side = {t.name: SideMatrix(t.name, t.side, m, IdMap.from_list(c)) for t, c, _, _, m in parts.side}
        features = parts.features or {}
        data.side.update({n: SideMatrix(n, "item", m, IdMap.from_list(c)) for n, (c, m) in features.items()})
        model = cls(**parts.params)
        model._set_data_state(parts.tasks, data, parts.patterns, parts.default_task)
        model.side_tasks_ = [t for t, _, _, _, _ in parts.side]
        model.side_factors_ = {t.name: V for t, _, V, _, _ in parts.side}
        model.side_intercepts_ = {t.name: c for t, _, _, c, _ in parts.side}
        model._store(parts.fitted)
        for attr, value in parts.attributes.items():     # plain JSON data only: restoring them runs no code
            setattr(model, attr, value)
        return model

    def fold_in(self, interactions, n_sweeps=10):
        """Factors of new (or refreshed) users from their interactions, with the fitted item side fixed.

        Parameters
        ----------
        interactions : dict {task: sparse matrix (n_new_users, n_items)}
            The users' observations in any subset of the modelled tasks, over the model's item index.
        n_sweeps : int, default=10
            Alternations between the exact factor solve and the bias / bound refresh (one suffices when every given
            task is implicit without biases).

        Returns
        -------
        user_factors : ndarray (n_new_users, k)
        user_biases : ndarray (T, n_new_users)
        user_cross_weights : ndarray (T, T, n_new_users) or None
            Per-user cross-task deviations (None when the model has none).
        """
        self._check_fitted()
        params = solve_new_rows(self, interactions, by_item=False, n_sweeps=n_sweeps, where="fold_in")
        return params.user_factors, params.user_biases, params.cross_user_weights

    def fold_in_items(self, interactions, n_sweeps=3, cross_item_weights=None):
        """Factors of new (or refreshed) items from their interactions, with the fitted user side fixed.

        The mirror of :meth:`fold_in`: each item row is one exact weighted least-squares solve (Cholesky) with the
        user factors, heads, intercepts, user biases and cross-task weights fixed, alternated with the exact item
        bias update for tasks with biases.

        Parameters
        ----------
        interactions : dict {task: sparse matrix (n_users, n_new_items)}
            The new items' observations in any subset of the tasks, over the model's user index (columns = new
            items). Item side matrices take the new items' rows instead (n_new_items, n_columns), and a task's
            ``item_feature`` its values (n_new_items, 1): their term is gamma_t * a (0 when not given).
        n_sweeps : int, default=3
        cross_item_weights : ndarray (T, T, n_new_items), optional
            Per-item deviations gamma_tb[i] of the cross-task weights for the new items, for a model fitted with
            ``cross_per_item=True``. Default: 0, the prior mean (the new items use the shared weights beta_tb).

        Returns
        -------
        item_factors : ndarray (n_new_items, k)
        item_biases : ndarray (T, n_new_items)
        """
        if not hasattr(self, "fitted_params_"):
            raise not_fitted(self, "fold_in_items needs a fitted model")
        params = solve_new_rows(self, interactions, by_item=True, n_sweeps=n_sweeps, where="fold_in_items",
                                cross_item_weights=cross_item_weights)
        return params.item_factors, params.item_biases


def _learned_array(name):
    def get(self):
        return getattr(self.fitted_params_, name)

    def set_(self, value):
        setattr(self.fitted_params_, name, value)
        self._scorer_cache = None          # the scorer caches per-task facts of the arrays (as after _store)
    return property(get, set_, doc=f"``fitted_params_.{name}`` (docs/ARCHITECTURE.md).")


# every learned array is also an attribute ``<name>_`` of the estimator (scikit-learn's convention)
for _name in SCHEMA:
    setattr(MultiTaskMF, _name + "_", _learned_array(_name))
del _name
