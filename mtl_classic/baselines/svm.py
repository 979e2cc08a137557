"""A linear SVM per task on user-item pair features, ranked in closed form from its coefficient blocks."""
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor

from ._common import (BaselineMixin, add_sparse_rows, check_param, check_random_state, int_seed, item_popularity,
                      pair_lookup, pattern, user_activity)

_KINDS = ("implicit", "binary", "regression")


def _resolve_tasks(owner, data, tasks):
    """``tasks`` (None, names or Task objects) -> dict name -> kind, in the data's task order."""
    if tasks is None:
        return {t: "implicit" for t in data.task_names}
    kinds = {}
    for t in tasks:
        name, kind = (t, "implicit") if isinstance(t, str) else (getattr(t, "name", None), getattr(t, "kind", None))
        if name not in data.task_names:
            raise ValueError(f"The 'tasks' parameter of {type(owner).__name__} names task {name!r}, which is not in "
                             f"the data; tasks are {list(data.task_names)}.")
        if kind not in _KINDS:
            raise ValueError(f"The 'tasks' parameter of {type(owner).__name__}: task {name!r} has kind {kind!r}; "
                             f"expected one of {_KINDS}.")
        kinds[name] = kind
    return {t: kinds[t] for t in data.task_names if t in kinds}


def _sample_negatives(pat, users, n_negatives, rng, max_rounds=50):
    """For each entry of ``users``, ``n_negatives`` items drawn uniformly from the items the user has NOT got in
    ``pat`` (rejection sampling, vectorised). Draws still colliding after ``max_rounds`` rounds (users who have
    nearly every item) are dropped.

    Returns
    -------
    (neg_users, neg_items) : int64 arrays
    """
    n_items = pat.shape[1]
    u = np.repeat(np.asarray(users, dtype=np.int64), n_negatives)
    items = rng.integers(0, n_items, size=len(u))
    bad = pair_lookup(pat, u, items) > 0
    for _ in range(max_rounds):
        if not bad.any():
            break
        items[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        bad[bad] = pair_lookup(pat, u[bad], items[bad]) > 0
    keep = ~bad
    return u[keep], items[keep]


class LinearSVMRecommender(BaselineMixin):
    """One linear SVM per task on hand-made user-item pair features.

    Features of a pair (u, i) for the model of task t (an ``hstack`` of sparse blocks):

    1. one-hot user id (n_users columns);
    2. one-hot item id (n_items columns);
    3. the user's activity in every task: ``log1p(items observed)`` / its maximum (T columns);
    4. the item's popularity in every task: ``log1p(users observed)`` / its maximum (T columns);
    5. for every other task b in ``cross_tasks``, whether (u, i) is observed in b's training matrix (0/1 columns);
    6. optional item side features (the ``item_features`` argument of :meth:`fit`, e.g. MovieLens genres).

    Training pairs per task kind:

    * ``implicit``: every observed pair is a positive; ``n_negatives`` negatives per positive are drawn for the same
      user uniformly from the items the user has not got in that task (seeded by ``random_state``; rejection
      sampling). Hinge loss, :class:`sklearn.linear_model.SGDClassifier`.
    * ``binary``: the observed labels (value > 0.5 is 1), no sampling. Hinge loss, SGDClassifier.
    * ``regression``: the observed values (centred; the mean is added back to the intercept), epsilon-insensitive
      loss (linear SVR), :class:`sklearn.linear_model.SGDRegressor`.

    Ranking scores are the decision function. It is linear, so it is computed in closed form from the coefficient
    blocks, ``s(u, i) = c + w_user[u] + a_u . w_act + w_item[i] + p_i . w_pop + f_i . w_feat + sum_b w_b x_b(u, i)``,
    without ever building feature rows for all pairs.

    Parameters
    ----------
    target : str or None, default=None
        Task used when ``task=None``; None means the first modelled task.
    tasks : list of str or Task, or None, default=None
        Tasks to model (names are treated as ``implicit``; :class:`~mtl_classic.Task` objects give their kind).
        None models every task of the data as implicit.
    cross_tasks : list of str or None, default=None
        Tasks whose observed pairs are features (block 5) of the other tasks' models; None means every task. Leave
        out tasks that record the same events as a modelled task (MovieLens ``liked``/``rating`` for ``rated``):
        their pattern equals the label pattern, so the SVM would separate on it and learn nothing else.
    n_negatives : int, default=4
        Sampled negatives per positive for implicit tasks.
    alpha : float, default=1e-5
        L2 regularisation of the SGD solver (scikit-learn's ``alpha``).
    max_iter : int, default=20
        Epochs of SGD.
    tol : float or None, default=1e-4
        SGD stopping tolerance.
    epsilon : float, default=0.1
        Insensitivity of the regression loss.
    random_state : int, Generator or None, default=None

    Attributes
    ----------
    cross_tasks_ : list of str
        The resolved ``cross_tasks``.
    task_kinds_ : dict[str, str]
        Modelled tasks and their kinds.
    estimators_ : dict[str, SGDClassifier or SGDRegressor]
    coef_blocks_ : dict[str, dict[str, ndarray]]
        Per task: ``user``, ``item``, ``activity``, ``popularity``, ``cross`` (dict task -> weight), ``features``,
        ``intercept``.
    user_activity_ : ndarray (n_users, T)
    item_popularity_ : ndarray (n_items, T)
    item_features_ : csr_matrix (n_items, f) or None
    patterns_ : dict[str, csr_matrix]
        0/1 patterns of every task's training matrix (the cross features).
    n_train_pairs_ : dict[str, int]
    data_, default_task_
    """

    def __init__(self, target=None, tasks=None, cross_tasks=None, n_negatives=4, alpha=1e-5, max_iter=20, tol=1e-4,
                 epsilon=0.1, random_state=None):
        self.target = target
        self.tasks = tasks
        self.cross_tasks = cross_tasks
        self.n_negatives = n_negatives
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.epsilon = epsilon
        self.random_state = random_state

    # ---- features ---------------------------------------------------------------------------------------------
    def _pair_features(self, task, users, items):
        """Sparse feature rows of the pairs (for training and for checking the closed form)."""
        n = len(users)
        nu, ni = self.data_.n_users, self.data_.n_items
        ones = np.ones(n)
        rows = np.arange(n)
        blocks = [sp.csr_matrix((ones, (rows, users)), shape=(n, nu)),
                  sp.csr_matrix((ones, (rows, items)), shape=(n, ni)),
                  sp.csr_matrix(self.user_activity_[users]),
                  sp.csr_matrix(self.item_popularity_[items])]
        others = self._others(task)
        if others:
            cross = np.column_stack([pair_lookup(self.patterns_[b], users, items) for b in others])
            blocks.append(sp.csr_matrix(cross))
        if self.item_features_ is not None:
            blocks.append(self.item_features_[items])
        return sp.hstack(blocks, format="csr")

    def fit(self, data, item_features=None):
        """Fit one linear SVM per modelled task.

        Parameters
        ----------
        data : MultiTaskData
        item_features : array-like or sparse (n_items, f), pandas DataFrame, or None
            Item side features. An array is aligned with the data's item index; a DataFrame is indexed by external
            item id (items missing from it get zeros).

        Returns
        -------
        self
        """
        check_param(self, "n_negatives", self.n_negatives, "int", low=1)
        check_param(self, "alpha", self.alpha, "real", low=0, low_open=True)
        check_param(self, "max_iter", self.max_iter, "int", low=1)
        check_param(self, "tol", self.tol, "real", low=0, none_ok=True)
        check_param(self, "epsilon", self.epsilon, "real", low=0)
        kinds = _resolve_tasks(self, data, self.tasks)
        if not kinds:
            raise ValueError("The 'tasks' parameter of LinearSVMRecommender selects no task.")
        target = next(iter(kinds)) if self.target is None else self.target
        if target not in kinds:
            raise ValueError(f"The 'target' parameter of LinearSVMRecommender names task {target!r}, which is not "
                             f"modelled; modelled tasks are {list(kinds)}.")
        if self.cross_tasks is None:
            cross = list(data.task_names)
        else:
            cross = [b for b in data.task_names if b in self.cross_tasks]
            unknown = [b for b in self.cross_tasks if b not in data.task_names]
            if unknown:
                raise ValueError(f"The 'cross_tasks' parameter of LinearSVMRecommender names task(s) {unknown} not "
                                 f"in the data; tasks are {list(data.task_names)}.")
        rng = check_random_state(self.random_state)
        self.cross_tasks_ = cross
        self.data_ = data
        self.patterns_ = {t: pattern(data.matrices[t]) for t in data.task_names}
        act = np.column_stack([np.log1p(user_activity(data.matrices[t])) for t in data.task_names])
        pop = np.column_stack([np.log1p(item_popularity(data.matrices[t])) for t in data.task_names])
        self.user_activity_ = act / np.maximum(act.max(axis=0), 1e-12)
        self.item_popularity_ = pop / np.maximum(pop.max(axis=0), 1e-12)
        self.item_features_ = self._item_features(data, item_features)

        self.estimators_, self.coef_blocks_, self.n_train_pairs_ = {}, {}, {}
        for t, kind in kinds.items():
            m = sp.csr_matrix(data.matrices[t])
            users = np.repeat(np.arange(data.n_users, dtype=np.int64), np.diff(m.indptr))
            items = m.indices.astype(np.int64)
            values = np.asarray(m.data, dtype=np.float64)
            if kind == "implicit":
                nu_, ni_ = _sample_negatives(self.patterns_[t], users, self.n_negatives, rng)
                y = np.concatenate([np.ones(len(users)), np.zeros(len(nu_))])
                users, items = np.concatenate([users, nu_]), np.concatenate([items, ni_])
            elif kind == "binary":
                y = (values > 0.5).astype(np.float64)
            else:
                y = values
            # regression targets are centred (the offset goes back into the intercept): SGD's intercept moves slowly
            offset = float(y.mean()) if kind == "regression" else 0.0
            if kind != "regression" and len(np.unique(y)) < 2:
                raise ValueError(f"Task {t!r} has a single class in its training pairs; LinearSVMRecommender "
                                 f"needs both labels.")
            perm = rng.permutation(len(y))          # SGD sees pairs in a seeded random order
            X = self._pair_features(t, users[perm], items[perm])
            if kind == "regression":
                est = SGDRegressor(loss="epsilon_insensitive", epsilon=self.epsilon, alpha=self.alpha,
                                   max_iter=self.max_iter, tol=self.tol, random_state=int_seed(rng))
            else:
                est = SGDClassifier(loss="hinge", alpha=self.alpha, max_iter=self.max_iter, tol=self.tol,
                                    random_state=int_seed(rng))
            with warnings.catch_warnings():
                # a capped number of epochs is a hyper-parameter here, not a failure
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y[perm] - offset)
            self.estimators_[t] = est
            self.coef_blocks_[t] = self._split_coef(t, est)
            self.coef_blocks_[t]["intercept"] += offset
            self.n_train_pairs_[t] = int(len(y))
        self.task_kinds_ = kinds
        self.default_task_ = target
        return self

    def _others(self, task):
        """Tasks whose pair indicators are features of ``task``'s model (in the data's task order)."""
        return [b for b in self.cross_tasks_ if b != task]

    @staticmethod
    def _item_features(data, item_features):
        if item_features is None:
            return None
        if hasattr(item_features, "reindex"):         # pandas DataFrame indexed by external item id
            df = item_features.reindex(list(data.item_map.ids)).fillna(0.0)
            return sp.csr_matrix(df.to_numpy(dtype=np.float64))
        f = sp.csr_matrix(item_features, dtype=np.float64)
        if f.shape[0] != data.n_items:
            raise ValueError(f"item_features has {f.shape[0]} rows; the data has {data.n_items} items.")
        return f

    def _split_coef(self, task, est):
        w = np.asarray(est.coef_, dtype=np.float64).ravel()
        nu, ni, T = self.data_.n_users, self.data_.n_items, len(self.data_.task_names)
        others = self._others(task)
        cuts = np.cumsum([nu, ni, T, T, len(others)])
        blocks = {"user": w[:cuts[0]], "item": w[cuts[0]:cuts[1]], "activity": w[cuts[1]:cuts[2]],
                  "popularity": w[cuts[2]:cuts[3]],
                  "cross": dict(zip(others, w[cuts[3]:cuts[4]].tolist())),
                  "features": w[cuts[4]:], "intercept": float(np.ravel(est.intercept_)[0])}
        return blocks

    # ---- scoring ----------------------------------------------------------------------------------------------
    def _parts(self, task):
        c = self.coef_blocks_[task]
        user_part = c["user"] + self.user_activity_ @ c["activity"]
        item_part = c["item"] + self.item_popularity_ @ c["popularity"] + c["intercept"]
        if self.item_features_ is not None:
            item_part = item_part + self.item_features_ @ c["features"]
        return c, user_part, np.asarray(item_part).ravel()

    def score_items(self, task, user_indices):
        """Decision function of ``task``'s SVM for every item, in closed form; ``(len(user_indices), n_items)``."""
        task = self._check_task(task, allowed="task_kinds_")
        u = self._check_users(user_indices)
        c, user_part, item_part = self._parts(task)
        scores = user_part[u][:, None] + item_part[None, :]
        for b, wb in c["cross"].items():
            if wb != 0.0:
                add_sparse_rows(scores, self.patterns_[b][u], wb)
        return scores

    def predict_indices(self, task, user_indices, item_indices):
        """Decision function of ``task``'s SVM on the given pairs."""
        task = self._check_task(task, allowed="task_kinds_")
        u, i = self._check_pairs(user_indices, item_indices)
        c, user_part, item_part = self._parts(task)
        s = user_part[u] + item_part[i]
        for b, wb in c["cross"].items():
            s = s + wb * pair_lookup(self.patterns_[b], u, i)
        return s
