"""The inference path: answer ``recommend`` / ``predict`` from a saved model with numpy and scipy alone.

:class:`InferenceModel` reads a directory written by :func:`mtl_classic.persistence.save_model` (full or slim),
optionally memory-mapping its arrays, and scores exactly like :class:`~mtl_classic.model.MultiTaskMF`
(docs/MATH.md section 1)::

    s_t(u, i) = (p_u * w_t) . q_i + b_t + bu_t[u] + bi_t[i] + sum_b beta_tb x_b(u, i)

where ``x_b`` is the 0/1 pattern of task b's training observations. Importing this module imports neither
scikit-learn, numba nor pandas (a test holds that), so a serving process stays small.

Also here:

* ranking across tasks (:meth:`InferenceModel.recommend_blended`): a weighted sum of per-task scores, or an expected
  value ``prod_t p_t(u, i) * value_i`` from calibrated probabilities, with per-task breakdowns;
* the score formula itself lives in :class:`mtl_classic.params.FittedParams`, the ranking loop in
  :func:`mtl_classic.ranking.rank`; new and changing users are folded in by :mod:`mtl_classic.foldin`.

Cold start
----------
A user without any interaction (an unknown user served with ``unknown="popular"``, or a folded-in user whose
interactions are empty) has no factors. Rankings for such a user use the task's item *popularity*: the fraction of
training users with an observation of the item in that task. Pointwise predictions use the same popularity fraction
for implicit tasks (an estimate of "the user will interact with the item") and the population prediction
``b_t + bi_t[i]`` (the model at zero user factors and biases; a probability for logistic heads) for binary and
regression tasks.
"""
import copy
import numbers
import os

import numpy as np
import scipy.sparse as sp

from ._errors import ModelFormatError, not_fitted
from ._validation import check_number
from ._ids import IdMap, as_query
from ._side_math import SideColdStart, item_feature_specs
from ._sparse import observation_pattern
from .base import is_scalar_id
from .calibration import CALIBRATION_NAME, load_calibrators
from .heads import sigmoid
from .params import FittedParams
from .persistence import array_names, decode_ids, load_side, read_arrays, read_manifest
from .ranking import blend_scores, excluded_items, rank, seen_tasks
from .tasks import Task

__all__ = ["InferenceModel", "recommend_blended"]


def _check_int(where, name, value, low, high=None):
    check_number(f"{where}: {name}", value, integer=True, low=low, high=high)


def _side_entry(task, columns, V, c):
    """The ``side`` entry of side task ``task``: (side, weight, columns, column factors, intercepts, alpha,
    observed_only, binary)."""
    return (task.side, float(task.weight), columns, V, c, task.resolved_side_alpha(), task.kind != "implicit",
            task.kind == "binary")


# --------------------------------------------------------------------------------------------------------------------
class InferenceModel(SideColdStart):
    """A fitted multi-task model reduced to what answering needs; numpy and scipy only.

    Build it with :meth:`load` (a saved directory), :meth:`from_model` (a fitted ``MultiTaskMF``, sharing its
    arrays) or :func:`mtl_classic.foldin.fold_in_users` (new users). The constructor stores already-validated parts.

    Parameters
    ----------
    tasks : list of Task
        In the order of the per-task arrays.
    user_ids, item_ids : ndarray of int64 or sequence of hashable
        External ids in index order.
    params : FittedParams
        The learned arrays (the score formula, docs/MATH.md section 1).
    patterns : dict of str -> csr_matrix (n_users, n_items)
        0/1 pattern of every task's training observations: the seen items, and the cross-task features ``x_b``.
    popularity : ndarray (T, n_items)
        Fraction of training users with an observation of each item, per task (cold-start fallback).
    default_task : str or None
        Task used when ``task=None``.
    cold : ndarray of bool (n_users,), optional
        Users without any interaction: scored by popularity (see the module notes on cold start).
    calibrators : dict of str -> calibrator, optional
        Objects with ``transform(scores) -> probabilities`` (e.g. :class:`mtl_classic.calibration.TaskCalibrator`),
        used by :meth:`probabilities` and expected-value blending.
    side : dict of str -> tuple, optional
        (side, weight, columns IdMap, column factors, column intercepts, alpha, observed_only, binary) per side
        matrix of the fit (docs/MATH.md, "side matrices"): new items known by their attributes join
        through :meth:`with_items`.
    side_penalty : (float, float), default=(0.0, 0.0)
        The fit's ``regularization`` and ``negative_regularization`` (the cold rows' penalty rule).
    item_features : dict of str -> (str, IdMap or list, float), optional
        Per task with an ``item_feature``: that matrix's name, its (one) column id and the fitted weight gamma_t; new
        items that bring a value a under that name get the bias gamma_t * a (:meth:`with_items`).

    Attributes
    ----------
    task_names : list of str
    n_users, n_items, factors : int
    """

    def __init__(self, tasks, user_ids, item_ids, params, patterns, popularity, default_task=None, cold=None,
                 calibrators=None, side=None, side_penalty=(0.0, 0.0), item_features=None):
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.task_index = {n: j for j, n in enumerate(self.task_names)}
        self.user_ids = user_ids if isinstance(user_ids, IdMap) else IdMap(user_ids, kind="user")
        self.item_ids = item_ids if isinstance(item_ids, IdMap) else IdMap(item_ids, kind="item")
        self.params = params
        self.patterns = patterns
        self._pattern_list = [patterns[n] for n in self.task_names]
        self.popularity = popularity
        self.default_task = default_task
        self.cold = None if cold is None or not np.any(cold) else np.asarray(cold, dtype=bool)
        self.calibrators = dict(calibrators or {})
        # (side, weight, columns, V[, intercepts[, alpha[, observed_only[, binary]]]]): entries from before those
        # existed have 0 / False
        self.side = {name: (*entry[:4], entry[4] if len(entry) > 4 else np.zeros(len(entry[2])),
                            float(entry[5]) if len(entry) > 5 else 0.0, bool(entry[6]) if len(entry) > 6 else False,
                            bool(entry[7]) if len(entry) > 7 else False)
                     for name, entry in (side or {}).items()}
        self.side_penalty = tuple(side_penalty)
        # task name -> (its item_feature's name, that 1-column matrix's column ids, the fitted weight gamma_t)
        self.item_features = {task: (name, columns if isinstance(columns, IdMap) else IdMap.from_list(list(columns)),
                                     float(gamma)) for task, (name, columns, gamma) in (item_features or {}).items()}
        self.n_users, self.factors = params.user_factors.shape
        self.n_items = params.n_items
        self._logistic = [t.resolved_head() == "logistic" for t in self.tasks]
        # per task, computed once (each is a pass over the arrays): active cross tasks, whether biases are nonzero
        self._cross = [params.active_cross(t) for t in range(len(self.tasks))]
        self._offsets = [params.has_offsets(t) for t in range(len(self.tasks))]

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(cls, path, mmap_mode=None, dtype=None, check_version=True):
        """Load a model directory written by :func:`~mtl_classic.persistence.save_model` (full or slim).

        Parameters
        ----------
        path : str or os.PathLike
        mmap_mode : {None, "r", "c"}, default=None
            "r" maps the factor and bias arrays read-only from ``arrays.npz`` instead of reading them (the pages are
            shared between processes serving the same file and loaded on demand).
        dtype : {None, "float32", "float64"}, default=None
            Cast the factors (None keeps the stored dtype; a cast copies, so it defeats ``mmap_mode``).
        check_version : bool, default=True
            Refuse a model written by another mtl_classic version.

        Returns
        -------
        InferenceModel
            ``calibration.json`` in the directory, when present, supplies :attr:`calibrators`.

        Raises
        ------
        ModelFormatError
            Missing, truncated or corrupt files, another format or version.
        """
        manifest = read_manifest(path, check_version=check_version)
        arrays = read_arrays(path, manifest, mmap_mode=mmap_mode, names=array_names(manifest, values=False))
        try:
            tasks = [Task.from_dict(d) for d in manifest["tasks"]]
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: bad task description ({exc}).") from None
        n_users, n_items = manifest["n_users"], manifest["n_items"]
        patterns = {}
        for name, entry in manifest["matrices"].items():
            indptr, indices = arrays[f"{entry['key']}_indptr"], arrays[f"{entry['key']}_indices"]
            try:
                patterns[name] = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n_users, n_items))
            except ValueError as exc:
                raise ModelFormatError(f"{path}: training pattern of task {name!r} is corrupt ({exc}).") from None
        calibrators = None
        if os.path.exists(os.path.join(os.fspath(path), CALIBRATION_NAME)):
            calibrators = load_calibrators(path)
        side = {t.name: _side_entry(t, IdMap.from_list(columns), V, c)
                for t, columns, V, c, _ in load_side(manifest, arrays, path, n_users, n_items, values=False)}
        try:
            penalty = (float(manifest["params"]["regularization"]), float(manifest["params"]["negative_regularization"]))
            features = {str(t): (str(e["feature"]), list(e["columns"]), float(e["weight"]))
                        for t, e in manifest.get("item_features", {}).items()}   # (absent before 2026-12-08)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: bad penalty or item-feature settings in the manifest ({exc!r}).") from None
        return cls(tasks, decode_ids(manifest["user_ids"], "user", arrays),
                   decode_ids(manifest["item_ids"], "item", arrays), FittedParams.from_arrays(arrays, dtype=dtype),
                   patterns, np.asarray(arrays["popularity"], dtype=np.float64),
                   default_task=manifest["default_task"], calibrators=calibrators, side=side, side_penalty=penalty,
                   item_features=features)

    @classmethod
    def from_model(cls, model, dtype=None, calibrators=None):
        """View a fitted :class:`~mtl_classic.model.MultiTaskMF` as an InferenceModel (arrays shared, not copied).

        Parameters
        ----------
        model : MultiTaskMF
        dtype : {None, "float32", "float64"}, default=None
            Cast the factors (copies them).
        calibrators : dict of str -> calibrator, optional

        Returns
        -------
        InferenceModel
        """
        if not hasattr(model, "user_factors_"):
            raise not_fitted(model)
        data = model.data_
        names = [t.name for t in model.tasks_]
        patterns = {n: model.cross_features_[n] for n in names}
        popularity = np.vstack([np.bincount(patterns[n].indices, minlength=data.n_items) for n in names]) / max(
            data.n_users, 1)
        params = model.fitted_params_ if dtype is None else model.fitted_params_.astype(dtype)
        side = {t.name: _side_entry(t, data.side[t.name].columns, model.side_factors_[t.name],
                                    model.side_intercepts_[t.name])
                for t in getattr(model, "side_tasks_", None) or []}
        return cls(model.tasks_, data.user_map.ids, data.item_map.ids, params, patterns, popularity,
                   default_task=getattr(model, "default_task_", None), calibrators=calibrators, side=side,
                   side_penalty=(float(model.regularization), float(model.negative_regularization)),
                   item_features=item_feature_specs(model))

    def with_users(self, user_factors, user_biases, patterns, user_ids=None, cold=None, cross_user_weights=None):
        """A model over other users (e.g. folded-in ones) sharing this model's item side.

        Parameters
        ----------
        user_factors : ndarray (n, k)
        user_biases : ndarray (T, n)
        patterns : dict of str -> sparse matrix (n, n_items)
            The users' observations per task (patterns are taken; values are ignored). Missing tasks are empty.
        user_ids : sequence of hashable, optional
            External ids of the new users; default ``0 .. n - 1``.
        cold : ndarray of bool (n,), optional
            Users without any interaction (scored by popularity).
        cross_user_weights : ndarray (T, T, n), optional
            The users' own cross-task deviations delta_tb[u] (None: shared and per-item weights only).

        Returns
        -------
        InferenceModel
        """
        n = np.shape(user_factors)[0]
        pats = {name: observation_pattern(patterns[name]) if name in patterns else sp.csr_matrix((n, self.n_items))
                for name in self.task_names}
        ids = np.arange(n, dtype=np.int64) if user_ids is None else (
            np.asarray(user_ids, dtype=np.int64) if all(isinstance(u, numbers.Integral) for u in user_ids)
            else list(user_ids))
        return InferenceModel(self.tasks, ids, self.item_ids,
                              self.params.with_users(user_factors, user_biases, cross_user_weights), pats,
                              self.popularity, default_task=self.default_task, cold=cold, calibrators=self.calibrators,
                              side=self.side, side_penalty=self.side_penalty, item_features=self.item_features)

    # ---------------------------------------------------------------- helpers
    def _task(self, task, where="InferenceModel"):
        if task is None:
            task = self.default_task
            if task is None:
                raise ValueError(f"{where}: task=None but the model has no default task; pass task= one of "
                                 f"{self.task_names}.")
        if task not in self.task_index:
            raise ValueError(f"{where}: unknown task {task!r}; the model has tasks {self.task_names}.")
        return task

    def _users(self, users, unknown, where):
        if unknown not in ("raise", "popular"):
            raise ValueError(f"{where}: unknown must be 'raise' or 'popular'. Got {unknown!r}.")
        return self.user_ids.index(users, unknown="raise" if unknown == "raise" else "ignore")

    def _warm(self, idx):
        """Mask of rows that have factors (known and not cold)."""
        warm = idx >= 0
        if self.cold is not None:
            warm[warm] = ~self.cold[idx[warm]]
        return warm

    def _excluded(self, items, filter_items):
        return excluded_items(self.n_items, self.item_ids.index, items, filter_items)

    # ---------------------------------------------------------------- scoring
    def _factor_scores(self, t, u):
        """Raw scores (B, n_items) of task index ``t`` for known internal users ``u`` (the MultiTaskMF formula)."""
        return self.params.score_block(t, u, self._pattern_list, self._cross[t], self._offsets[t])

    def _scores(self, task, idx):
        """(scores, warm): raw scores of warm rows, popularity fractions of cold / unknown rows (idx -1)."""
        t = self.task_index[task]
        warm = self._warm(idx)
        if warm.all():
            return self._factor_scores(t, idx), warm
        out = np.empty((len(idx), self.n_items), dtype=np.result_type(self.params.item_factors.dtype, np.float64))
        if warm.any():
            out[warm] = self._factor_scores(t, idx[warm])
        out[~warm] = self.popularity[t]
        return out, warm

    def score_items(self, task, user_indices):
        """Scores of every item for internal user indices (logits for logistic heads; popularity for cold users).

        Parameters
        ----------
        task : str
        user_indices : array-like of int

        Returns
        -------
        ndarray (len(user_indices), n_items)
        """
        task = self._task(task, "score_items")
        idx = np.asarray(user_indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_users):
            raise IndexError(f"score_items: user indices must be in [0, {self.n_users}).")
        return self._scores(task, idx)[0]

    def probabilities(self, task, scores):
        """Probabilities from raw scores of ``task``: its calibrator when there is one, else the logistic head.

        Raises
        ------
        ValueError
            A task with a linear head and no calibrator (its scores are not probabilities).
        """
        if task in self.calibrators:
            return self.calibrators[task].transform(scores)
        if self._logistic[self.task_index[task]]:
            return sigmoid(scores)
        raise ValueError(f"task {task!r} has a linear head, so its scores are not probabilities; fit a "
                         f"mtl_classic.calibration.TaskCalibrator for it and pass calibrators={{{task!r}: ...}}.")

    def predict_indices(self, task, user_indices, item_indices, raw=False):
        """Pointwise predictions for internal index pairs (probabilities for logistic heads unless ``raw``).

        User index -1 (unknown) and cold users get the cold-start prediction (module notes).
        """
        task = self._task(task, "predict")
        t = self.task_index[task]
        u = np.asarray(user_indices, dtype=np.int64).ravel()
        i = np.asarray(item_indices, dtype=np.int64).ravel()
        if u.shape != i.shape:
            raise ValueError(f"predict: users and items must have the same length; got {u.shape[0]} and "
                             f"{i.shape[0]}.")
        warm = self._warm(u)
        uw, iw = u[warm], i[warm]
        s = self.params.score_pairs(t, uw, iw, self._pattern_list, self._cross[t])
        if self._logistic[t] and not raw:
            s = sigmoid(s)
        if warm.all():
            return s
        out = np.empty(len(u), dtype=s.dtype)
        out[warm] = s
        cold_items = i[~warm]
        if self.tasks[t].kind == "implicit":
            out[~warm] = self.popularity[t, cold_items]
        else:
            c = self.params.intercepts[t] + self.params.item_biases[t, cold_items]
            out[~warm] = sigmoid(c) if self._logistic[t] and not raw else c
        return out

    def predict(self, task, users, items, raw=False, unknown="raise"):
        """Predictions of ``task`` for pairs of external user and item ids.

        Parameters
        ----------
        task : str
        users, items : array-like of external ids, same length
        raw : bool, default=False
            Return logits instead of probabilities for logistic heads.
        unknown : {"raise", "popular"}, default="raise"
            What to do with unknown users: ``KeyError``, or the cold-start prediction.

        Returns
        -------
        ndarray of float
        """
        task = self._task(task, "predict")
        u = self._users(np.atleast_1d(as_query(users)), unknown, "predict")
        i = self.item_ids.index(as_query(items))
        return self.predict_indices(task, u, i, raw=raw)

    # ---------------------------------------------------------------- ranking
    def _rank(self, where, idx, n, score_fn, seen, excluded, batch_size, breakdown=(), blas_threads="auto"):
        """:func:`mtl_classic.ranking.rank` over this model's patterns (the seen tasks by name)."""
        return rank(score_fn, idx, n, self.n_items, seen=[self.patterns[t] for t in seen], excluded=excluded,
                    batch_size=batch_size, breakdown=breakdown, blas_threads=blas_threads, where=where)

    def recommend(self, users, n=10, task=None, filter_seen=True, filter_items=None, items=None, unknown="raise",
                  batch_size=None, blas_threads="auto"):
        """Top-``n`` items per user for one task, in external ids (same answers as ``MultiTaskMF.recommend``).

        Parameters
        ----------
        users : hashable or sequence of hashable
            External user id(s). A single id gives 1-d outputs.
        n : int, default=10
        task : str or None
            None uses the default task.
        filter_seen : bool, "any", str or list of str, default=True
            True: remove the user's training items of ``task``; "any": of any task; a task name or list: of those
            tasks; False: keep everything.
        filter_items : sequence of hashable, optional
            Item ids never to recommend.
        items : sequence of hashable, optional
            Allow-list: rank only these items.
        unknown : {"raise", "popular"}, default="raise"
            Unknown users raise ``KeyError``, or get the task's most popular items.
        batch_size : int or None, default=None
            Users scored together (memory ``batch_size * n_items`` floats; None:
            :func:`mtl_classic.ranking.batch_rows`).
        blas_threads : "auto", int or None, default="auto"
            BLAS threads during the call (restored afterwards, through threadpoolctl). "auto" uses 1 when the call
            spans several batches: the compiled top-k then runs on every core, and idle-spinning BLAS threads would
            only compete with it (measured on Tmall: about 1.5x more users per second than with 2 BLAS threads on 2
            cores). None leaves BLAS alone. BLAS limits are process-wide: pass None when other threads of the
            process run heavy BLAS work at the same time.

        Returns
        -------
        ids : ndarray (n_users, n_cols)
            External item ids, best first; ``n_cols = min(n, fewest candidates left for any user)``.
        scores : ndarray of float64 (n_users, n_cols)
            The scores of ``task`` (popularity fractions for cold users).
        """
        where = "recommend"
        task = self._task(task, where)
        _check_int(where, "n", n, 0)
        idx = self._users(users, unknown, where)
        seen = seen_tasks(filter_seen, [task], self.task_names, where)
        excluded = self._excluded(items, filter_items)
        top, scores, _ = self._rank(where, idx, n, lambda b: self._score_copy(task, b), seen, excluded, batch_size,
                                    blas_threads=blas_threads)
        ids = self.item_ids.external(top)
        if is_scalar_id(users):
            return ids[0], scores[0]
        return ids, scores

    def _score_copy(self, task, batch):
        scores, _ = self._scores(task, batch)
        return scores if scores.dtype == np.float64 else scores.astype(np.float64)

    def recommend_blended(self, users, n=10, weights=None, normalize=None, probabilities=None, item_values=None,
                          filter_seen=True, filter_items=None, items=None, unknown="raise", return_breakdown=False,
                          batch_size=None, blas_threads="auto"):
        """Top-``n`` items per user for a ranking across tasks.

        Two objectives (give exactly one of ``weights`` and ``probabilities``):

        * weighted sum: ``score = sum_t weights[t] * s_t(u, i)`` (raw scores, optionally normalised per row, see
          :func:`mtl_classic.ranking.blend_scores`);
        * expected value: ``score = prod_{t in probabilities} p_t(u, i) * item_values[i]``, e.g.
          ``p(click) * p(buy) * price``. Probabilities come from the model's calibrators (implicit and regression
          tasks need one) or from the logistic head.

        Parameters
        ----------
        users : hashable or sequence of hashable
        n : int, default=10
        weights : dict of str -> float, optional
        normalize : {None, "zscore", "rank"}, default=None
            Per-row rescaling of each task's scores before the weighted sum.
        probabilities : sequence of str, optional
            Tasks whose probabilities are multiplied.
        item_values : ndarray (n_items,) or dict of item id -> float, optional
            Per-item value for the expected value (default 1; items missing from a dict are worth 0).
        filter_seen : bool, "any", str or list of str, default=True
            True removes the user's training items of every task in the blend.
        filter_items, items, unknown, batch_size, blas_threads
            As in :meth:`recommend`.
        return_breakdown : bool, default=False
            Also return ``{task: values at the chosen items}`` (raw scores for the weighted sum, probabilities for
            the expected value; plus ``"value"``).

        Returns
        -------
        ids, scores[, breakdown]
        """
        where = "recommend_blended"
        _check_int(where, "n", n, 0)
        if (weights is None) == (probabilities is None):
            raise ValueError(f"{where}: give exactly one of weights= (weighted sum) and probabilities= "
                             f"(expected value).")
        idx = self._users(users, unknown, where)
        excluded = self._excluded(items, filter_items)
        if weights is not None:
            if not isinstance(weights, dict) or not weights:
                raise ValueError(f"{where}: weights must be a non-empty dict {{task: weight}}. Got {weights!r}.")
            tasks = [self._task(t, where) for t in weights]
            w = [float(weights[t]) for t in tasks]
            if item_values is not None:
                raise ValueError(f"{where}: item_values is for the expected value (probabilities=); the weighted "
                                 f"sum uses weights only.")

            def score_fn(batch):
                blocks = {t: self._scores(t, batch)[0] for t in tasks}
                return blend_scores([blocks[t] for t in tasks], w, normalize=normalize), blocks
            names = tasks
        else:
            if isinstance(probabilities, str) or not probabilities:
                raise ValueError(f"{where}: probabilities must be a non-empty list of task names. "
                                 f"Got {probabilities!r}.")
            tasks = [self._task(t, where) for t in probabilities]
            if normalize is not None:
                raise ValueError(f"{where}: normalize applies to the weighted sum only.")
            for t in tasks:
                if t not in self.calibrators and not self._logistic[self.task_index[t]]:
                    self.probabilities(t, np.zeros(1))          # raises the explanatory error
            values = self._item_values(item_values, where)

            def score_fn(batch):
                parts, total = {}, None
                for t in tasks:
                    s, warm = self._scores(t, batch)
                    p = np.array(s, dtype=np.float64)
                    if warm.any():
                        p[warm] = self.probabilities(t, s[warm])
                    parts[t] = p
                    total = p.copy() if total is None else total * p
                parts["value"] = np.broadcast_to(values, total.shape)
                return total * values, parts
            names = tasks + ["value"]
        seen = seen_tasks(filter_seen, tasks, self.task_names, where)
        top, scores, parts = self._rank(where, idx, n, score_fn, seen, excluded, batch_size,
                                        breakdown=names if return_breakdown else (), blas_threads=blas_threads)
        ids = self.item_ids.external(top)
        if is_scalar_id(users):
            ids, scores, parts = ids[0], scores[0], {k: v[0] for k, v in parts.items()}
        return (ids, scores, parts) if return_breakdown else (ids, scores)

    def _item_values(self, item_values, where):
        if item_values is None:
            return np.ones(self.n_items)
        if isinstance(item_values, dict):
            values = np.zeros(self.n_items)
            keys = list(item_values)
            values[self.item_ids.index(keys)] = [float(item_values[k]) for k in keys]
        else:
            values = np.asarray(item_values, dtype=np.float64)
            if values.shape != (self.n_items,):
                raise ValueError(f"{where}: item_values must have one value per item ({self.n_items}) in the model's "
                                 f"item order, or be a dict {{item id: value}}. Got shape {values.shape}.")
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: item_values must be finite.")
        return values


def recommend_blended(model, users, n=10, **kwargs):
    """:meth:`InferenceModel.recommend_blended` for a fitted ``MultiTaskMF`` or an ``InferenceModel``.

    ``calibrators=`` may be passed for a ``MultiTaskMF``; every other keyword goes to
    :meth:`InferenceModel.recommend_blended`.
    """
    calibrators = kwargs.pop("calibrators", None)
    if not isinstance(model, InferenceModel):
        model = InferenceModel.from_model(model, calibrators=calibrators)
    elif calibrators is not None:
        model = copy.copy(model)
        model.calibrators = dict(calibrators)
    return model.recommend_blended(users, n=n, **kwargs)
