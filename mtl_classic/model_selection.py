"""Built-in model selection: a budgeted search on a validation split that the library carves from the training data.

:func:`validation_split` mirrors the evaluation protocol (the user's last target observation when the data has
timestamps, otherwise one random target observation per user; tasks that record the same events as the target lose
the held-out pairs too), and :class:`SuccessiveHalvingSearch` tries candidate settings on it with few sweeps, keeps
the best third, gives those more sweeps, and refits the winner on all the data.

Example::

    from mtl_classic.model_selection import SuccessiveHalvingSearch
    search = SuccessiveHalvingSearch(MultiTaskMF(tasks=tasks, random_state=0), target="buy").fit(data)
    search.best_estimator_.recommend(users, task="buy")
    search.trials_           # one row per (candidate, rung)
"""
import copy
import logging
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from tqdm.auto import tqdm

from ._sparse import same_pairs
from ._validation import check_number, parameter_of
from .data.splits import Split, leave_last_out, random_holdout
from .evaluation import evaluate_pointwise, evaluate_ranking
from .tasks import Task, resolve_private_factors

__all__ = ["validation_split", "SuccessiveHalvingSearch", "DEFAULT_SPACE", "same_event_tasks"]

logger = logging.getLogger(__name__)

#: The default search space. Keys are MultiTaskMF parameters, or ``tasks__alpha`` (every implicit task's
#: confidence scale, a number or ``"auto"``), ``tasks__aux_weight`` (the weight of every user x item task but the
#: target) and ``tasks__side_weight`` (the weight of every side task, a number or ``"auto"``). Side weights are not in
#: the default space: the warm validation split it scores is level at every side weight from 1 to 0.001, while the
#: cold start from side rows, which it does not score, wants the small ``"auto"`` weight
#: (``benchmarks/results/side_weights.md``).
DEFAULT_SPACE = {
    "factors": [32, 64, 128],
    "regularization": [0.01, 0.3, 3.0, 10.0, 30.0],
    "tasks__alpha": ["auto", 1.0, 3.0, 10.0, 30.0],
    "tasks__aux_weight": [0.1, 0.3, 1.0],
    "private_factors": [0, 4, 8],
    "negative_regularization": [0.0, 1e-4, 3e-4],
    "row_regularization": [0.03, 0.1, 0.3],
    "negative_popularity": [0.0, 0.25, 0.5, 0.75],
}


def _number_or_auto(value):
    """A search space's value for a Task setting that takes a number or ``"auto"``."""
    return value if isinstance(value, str) else float(value)


def same_event_tasks(data, target, share=0.99):
    """Tasks whose observed pairs coincide with the target's (>= ``share`` of each side's pairs in the other), such
    as MovieLens ``rated`` / ``liked`` / ``rating``: held-out target pairs must leave them too, or they leak."""
    return [name for name in data.task_names
            if name != target and all(same_pairs(data.matrices[target], data.matrices[name], share))]


def validation_split(data, target, random_state=0):
    """A validation split carved from ``data`` that mirrors the evaluation protocol.

    Parameters
    ----------
    data : MultiTaskData
    target : str
        The task to hold out.
    random_state : int, default=0

    Returns
    -------
    Split
        Every kind of target: the last observation per user when the target has timestamps (``leave_last_out``),
        otherwise one random observation per user with at least two. Same-event tasks (:func:`same_event_tasks`)
        lose the held-out pairs too; genuine auxiliary behaviours stay.
    """
    if target not in data.task_names:
        raise ValueError(f"validation_split: unknown target {target!r}; the data has tasks {list(data.task_names)}.")
    also = same_event_tasks(data, target) or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # held-out pairs kept in auxiliary tasks: the protocol
        stamps = getattr(data, "timestamps", None) or {}
        if stamps.get(target) is not None:
            return leave_last_out(data, target, n_holdout=1, min_train=1, also_remove=also)
        # a vanishing fraction holds out exactly one pair per user with at least two
        return random_holdout(data, target, test_fraction=1e-9, random_state=random_state, min_train=1,
                              also_remove=also)


def _checked_split(split, data, target):
    """A user's validation ``Split``, checked against the data it stands for."""
    where = "SuccessiveHalvingSearch.fit: validation"
    if not isinstance(split, Split):
        raise ValueError(f"{where} must be a mtl_classic.data.splits.Split (train and held-out pairs); got "
                         f"{type(split).__name__}.")
    train = split.train
    if list(train.task_names) != list(data.task_names):
        raise ValueError(f"{where}.train has tasks {list(train.task_names)}; the data has {list(data.task_names)}.")
    for side in ("user", "item"):
        if getattr(train, f"{side}_map") != getattr(data, f"{side}_map"):
            raise ValueError(f"{where}.train's {side} ids differ from the data's (same ids in the same order "
                             f"needed).")
    if split.test.shape != (data.n_users, data.n_items):
        raise ValueError(f"{where}.test has shape {split.test.shape}; expected {(data.n_users, data.n_items)}.")
    if split.test.nnz == 0:
        raise ValueError(f"{where}.test holds no pairs.")
    if split.target != target:
        raise ValueError(f"{where} holds out {split.target!r}, not the search's target {target!r}.")
    return split


def _target_kind(estimator, target):
    for t in estimator.tasks or []:
        name = t if isinstance(t, str) else t.name
        if name == target:
            return "implicit" if isinstance(t, str) else t.kind
    return "implicit"


class SuccessiveHalvingSearch(BaseEstimator):
    """Budgeted search over MultiTaskMF settings by successive halving on a carved validation split.

    Parameters
    ----------
    estimator : MultiTaskMF
        The starting point; its own settings are always candidate 0, so the search can only pick something better
        on validation. ``tasks`` must be given (a list of Task or names).
    target : str
        The task whose validation score selects: NDCG@10 for implicit targets, -RMSE for regression, AUC for binary.
    space : dict or None, default=None
        Candidate values per parameter (see :data:`DEFAULT_SPACE`, the default). Parameters the estimator does not
        have raise ``ValueError``.
    n_candidates : int, default=24
        Candidates drawn (without repeats) from ``space``, candidate 0 included. Candidates whose private factors
        would take more than half of the factors are not drawn. 24 was chosen over 12 by choosing on half
        of the validation users of Tmall and Beibei and scoring the choice on the other half
        (``benchmarks/tuner_candidates.py``, ``benchmarks/results/tuner_candidates.md``); it takes about twice the
        time of 12.
    factor : int, default=3
        After every rung the best ``1 / factor`` of the candidates go on, with ``factor`` times the sweeps.
    min_iterations : int, default=5
        Sweeps per fit in the first rung; the last rung uses the estimator's ``iterations``.
    random_state : int or None, default=0
        Seed of the candidate draw and of the validation carve.
    refit : bool, default=True
        Refit the best candidate on all of ``data``.
    warm_start : bool, default=True
        A rung's survivors continue from their fit of the rung before (``MultiTaskMF(warm_start=True)``: a fit of
        n sweeps continued by m more equals a fit of n + m sweeps) instead of starting again; False refits them
        from random factors.
    show_progress : bool, default=True
        A tqdm progress bar over the fits.

    Attributes
    ----------
    best_params_ : dict
    best_score_ : float
        Validation score of the best candidate at the last rung.
    best_estimator_ : MultiTaskMF
        Refitted on all the data (``refit=True``).
    trials_ : pandas.DataFrame
        One row per fit: candidate, rung, sweeps (``iterations``, in all; ``sweeps_run``, those this fit ran: fewer
        when warm-started), the parameters, the validation score and the fit seconds.
    validation_info_ : dict
        How the validation split was carved.
    """

    def __init__(self, estimator, target, space=None, n_candidates=24, factor=3, min_iterations=5, random_state=0,
                 refit=True, warm_start=True, show_progress=True):
        self.estimator = estimator
        self.target = target
        self.space = space
        self.n_candidates = n_candidates
        self.factor = factor
        self.min_iterations = min_iterations
        self.random_state = random_state
        self.refit = refit
        self.warm_start = warm_start
        self.show_progress = show_progress

    def _check(self):
        for name, low in (("n_candidates", 1), ("factor", 2), ("min_iterations", 1)):
            check_number(parameter_of(self, name), getattr(self, name), integer=True, low=low)
        if not self.estimator.tasks:
            raise ValueError("SuccessiveHalvingSearch needs an estimator with tasks= given (the target and the "
                             "auxiliary tasks are named there).")
        space = DEFAULT_SPACE if self.space is None else self.space
        if not isinstance(space, dict) or not space:
            raise ValueError(f"The 'space' parameter of SuccessiveHalvingSearch must be a non-empty dict. "
                             f"Got {space!r}.")
        known = set(self.estimator.get_params(deep=False)) | {"tasks__alpha", "tasks__aux_weight",
                                                               "tasks__side_weight"}
        unknown = sorted(set(space) - known)
        if unknown:
            raise ValueError(f"SuccessiveHalvingSearch: space has unknown parameters {unknown}; known are "
                             f"{sorted(known)}.")
        for name, values in space.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"SuccessiveHalvingSearch: space[{name!r}] must be a non-empty list of values.")
        return space

    def _valid(self, cand):
        """Private factors may take at most half of the factors (the rest stay shared)."""
        n_tasks = len(self.estimator.tasks)
        factors = cand.get("factors", self.estimator.factors)
        private = resolve_private_factors(cand.get("private_factors", self.estimator.private_factors), factors,
                                          n_tasks)
        return n_tasks < 2 or 2 * sum(private) <= factors

    def _candidates(self, space, rng):
        names = sorted(space)
        out, seen = [{}], {()}
        n_total = int(np.prod([len(space[n]) for n in names]))
        for _ in range(50 * self.n_candidates):  # draws; a space with few valid points ends early
            if len(out) >= min(self.n_candidates, n_total + 1):
                break
            cand = {n: space[n][rng.integers(len(space[n]))] for n in names}
            key = tuple((n, repr(cand[n])) for n in names)
            if key not in seen and self._valid(cand):
                seen.add(key)
                out.append(cand)
        return out

    def _build(self, params, iterations):
        est = clone(self.estimator)
        params = dict(params)
        alpha = params.pop("tasks__alpha", None)
        aux = params.pop("tasks__aux_weight", None)
        side_weight = params.pop("tasks__side_weight", None)
        if alpha is not None or aux is not None or side_weight is not None:
            tasks = []
            for t in est.tasks:
                t = Task(t) if isinstance(t, str) else copy.deepcopy(t)
                if alpha is not None and t.kind == "implicit" and t.side is None:  # a side task's alpha is its own
                    t.alpha = _number_or_auto(alpha)
                if aux is not None and t.name != self.target and t.side is None:
                    t.weight = float(aux)
                if side_weight is not None and t.side is not None:
                    t.weight = _number_or_auto(side_weight)
                tasks.append(t)
            params["tasks"] = tasks
        if iterations is not None:
            params["iterations"] = int(iterations)
        return est.set_params(**params)

    def _score(self, model, split, kind):
        if kind == "regression":
            return -float(evaluate_pointwise(model, self.target, split.test, kind="regression")["RMSE"])
        if kind == "binary":
            return float(evaluate_pointwise(model, self.target, split.test, kind="binary")["AUC"])
        return float(evaluate_ranking(model, split.train, split.test, self.target, ks=(10,))["NDCG@10"])

    def fit(self, data, validation=None):
        """Search on a validation split, then refit the best candidate on ``data``.

        Parameters
        ----------
        data : MultiTaskData
        validation : Split or None, default=None
            The split to choose on, when you know better than the carve how your test pairs arise: for example a
            dataset's own validation file, or each user's latest purchase where item indices follow time
            (``mtl_classic.data.splits`` builds a ``Split``; its ``train`` must have ``data``'s users, items and
            tasks). None carves :func:`validation_split` from ``data``.

        Returns
        -------
        self
        """

        space = self._check()
        rng = np.random.default_rng(self.random_state)
        split = (validation_split(data, self.target, random_state=self.random_state) if validation is None
                 else _checked_split(validation, data, self.target))
        self.validation_info_ = dict(split.info)
        kind = _target_kind(self.estimator, self.target)
        candidates = self._candidates(space, rng)
        full = int(self.estimator.iterations)
        rungs, it = [], min(int(self.min_iterations), full)
        while True:
            rungs.append(it)
            if it >= full:
                break
            it = min(full, it * int(self.factor))
        def survivors(n):  # candidates that go on after a rung of n
            return max(1, int(np.ceil(n / self.factor)))

        n_fits, alive = 0, len(candidates)
        for _ in rungs:
            n_fits, alive = n_fits + alive, survivors(alive)
        rows, alive, models = [], list(range(len(candidates))), {}
        bar = tqdm(total=n_fits, desc="SuccessiveHalvingSearch", disable=not self.show_progress)
        try:
            for rung, iterations in enumerate(rungs):
                scores = {}
                for c in alive:
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # dropped cross tasks: reported at refit
                        if c in models:  # a survivor: only the sweeps this rung adds
                            model = models[c].set_params(iterations=iterations - rungs[rung - 1], warm_start=True)
                        else:
                            model = self._build(candidates[c], iterations)
                        model.fit(split.train)
                    if self.warm_start:
                        models[c] = model
                    seconds = time.perf_counter() - t0
                    scores[c] = self._score(model, split, kind)
                    rows.append({"candidate": c, "rung": rung, "iterations": iterations, "sweeps_run": model.n_iter_,
                                 **candidates[c],
                                 "score": scores[c], "fit_seconds": seconds})
                    logger.info("candidate %d rung %d (%d sweeps) %s: score %.5f", c, rung, iterations,
                                candidates[c], scores[c])
                    bar.update(1)
                    bar.set_postfix(best=f"{max(scores.values()):.4f}")
                if rung < len(rungs) - 1:
                    alive = sorted(alive, key=lambda c: -scores[c])[:survivors(len(alive))]
                    models = {c: m for c, m in models.items() if c in alive}
        finally:
            bar.close()
        best = max(alive, key=lambda c: scores[c])
        self.best_params_ = dict(candidates[best])
        self.best_score_ = scores[best]
        self.trials_ = pd.DataFrame(rows)
        if self.refit:
            self.best_estimator_ = self._build(self.best_params_, None).fit(data)
        return self
