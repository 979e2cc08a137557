"""The evaluation protocol of docs/MATH.md section 4, the same for every model.

Ranking: every item is scored for every test user (no sampled negatives), the user's training items of the target
task are removed, the top K are compared with the held-out items and HR@K (= Recall@K), NDCG@K, Precision@K and
MAP@K are averaged over the users with at least one held-out item. Users are ranked by :func:`mtl_classic.ranking.rank`, the
ranking path of every model's ``recommend``; there is no Python loop over items.

Pointwise: RMSE / MAE for regression heads, AUC / log loss for binary (logistic) heads, on the held-out pairs.

Any object with ``score_items(task, user_indices)`` (ranking) or ``predict_indices(task, users, items)``
(pointwise) can be evaluated.
"""
import numbers

import numpy as np
import scipy.sparse as sp

from ..data.container import MultiTaskData
from ..ranking import rank
from . import metrics

__all__ = ["evaluate_ranking", "evaluate_pointwise", "evaluate_split"]

def _check_ks(ks):
    if isinstance(ks, numbers.Integral):
        ks = (ks,)
    ks = tuple(ks)
    if not ks or any(not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of ints >= 1. Got {ks!r}.")
    return tuple(sorted(set(int(k) for k in ks)))


def _check_test(train, test, where):
    if not sp.issparse(test):
        raise ValueError(f"{where}: test must be a scipy.sparse matrix over the training index.")
    test = test.tocsr() if test.format != "csr" else test
    if test.shape != (train.n_users, train.n_items):
        raise ValueError(f"{where}: test has shape {test.shape}; expected (n_users, n_items) = "
                         f"{(train.n_users, train.n_items)} of the training data.")
    if not test.has_sorted_indices:
        test = test.copy()
        test.sort_indices()
    return test


def evaluate_ranking(model, train, test, task, ks=(10, 50), batch_size=None, users=None, per_user=False):
    """Full-ranking top-K evaluation of one task.

    Parameters
    ----------
    model : object
        Fitted model with ``score_items(task, user_indices) -> (len(users), n_items)`` scores (higher = better,
        seen items not filtered).
    train : MultiTaskData
        The training data the model was fitted on; ``train.matrices[task]`` gives the items removed per user.
    test : scipy.sparse matrix, shape (train.n_users, train.n_items)
        Held-out pairs of ``task``; every stored entry is relevant.
    task : str
        The task ranked (and whose training items are filtered).
    ks : sequence of int, default=(10, 50)
        Cut-offs.
    batch_size : int or None, default=None
        Users scored per call of ``score_items`` (None: :func:`mtl_classic.ranking.batch_rows`' memory policy).
    users : array-like of int, optional
        Internal user indices to evaluate (default: all). Only those with at least one held-out item count.
    per_user : bool, default=False
        Also return every evaluated user's own values (for paired comparisons of two models on the same users, such
        as a bootstrap interval of their ratio).

    Returns
    -------
    dict
        ``"HR@K"``, ``"NDCG@K"``, ``"Recall@K"``, ``"Precision@K"``, ``"MAP@K"`` for every K (floats, averaged over
        test users; HR@K equals Recall@K), ``"n_users"`` (users evaluated) and ``"n_test_pairs"``
        (their held-out pairs). A held-out pair that is also a training pair of ``task`` is filtered like every
        seen item and can never be hit; ``"n_test_pairs_in_train"`` counts them.
    """
    where = "evaluate_ranking"
    if not isinstance(train, MultiTaskData):
        raise ValueError(f"{where}: train must be a MultiTaskData. Got {type(train).__name__}.")
    if task not in train.matrices:
        raise ValueError(f"{where}: unknown task {task!r}; tasks are {train.task_names}.")
    ks = _check_ks(ks)
    if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
        raise ValueError(f"{where}: batch_size must be None or an int >= 1. Got {batch_size!r}.")
    test = _check_test(train, test, where)
    n_rel_all = np.diff(test.indptr)
    if users is None:
        candidates = np.arange(train.n_users)
    else:
        candidates = np.unique(np.asarray(users, dtype=np.int64).ravel())
        if candidates.size and (candidates[0] < 0 or candidates[-1] >= train.n_users):
            raise ValueError(f"{where}: users must be internal indices in [0, {train.n_users}).")
    eval_users = candidates[n_rel_all[candidates] > 0]
    seen = train.matrices[task]

    def score_fn(batch):
        return np.array(model.score_items(task, batch), dtype=np.float64)  # private writable copy

    # fixed-width lists: positions without a candidate (every item filtered) come back as item -1, never a hit
    top, _, _ = rank(score_fn, eval_users, max(ks), train.n_items, seen=[seen], batch_size=batch_size, pad=True,
                     where=f"{where}: {type(model).__name__}.score_items")
    test_rows = test[eval_users]
    hits = metrics.hit_matrix(top, test_rows)
    n_rel = n_rel_all[eval_users]
    values = {}
    for k in ks:
        recall = metrics.recall_at_k(hits, n_rel, k)
        values.update({f"HR@{k}": recall, f"NDCG@{k}": metrics.ndcg_at_k(hits, n_rel, k), f"Recall@{k}": recall,
                       f"Precision@{k}": metrics.precision_at_k(hits, k),
                       f"MAP@{k}": metrics.average_precision_at_k(hits, n_rel, k)})
    sums = {key: val.sum() for key, val in values.items()}
    n_overlap = _count_common(seen[eval_users], test_rows)
    n = len(eval_users)
    out = {key: (float(val / n) if n else float("nan")) for key, val in sums.items()}
    out["n_users"] = int(n)
    out["n_test_pairs"] = int(n_rel_all[eval_users].sum())
    out["n_test_pairs_in_train"] = n_overlap
    if per_user:
        out["per_user"] = {"users": np.asarray(eval_users, dtype=np.int64),
                           **{key: np.asarray(val, dtype=np.float64) for key, val in values.items()}}
    return out


def _count_common(a, b):
    """Number of (row, column) positions stored in both CSR matrices of the same shape."""
    if a.nnz == 0 or b.nnz == 0:
        return 0
    n = np.int64(a.shape[1])
    ka = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr)) * n + a.indices
    kb = np.repeat(np.arange(b.shape[0], dtype=np.int64), np.diff(b.indptr)) * n + b.indices
    return int(np.isin(kb, ka).sum())


def evaluate_split(model, split, ks=(10, 50), batch_size=None, users=None):
    """:func:`evaluate_ranking` on a :class:`~mtl_classic.data.Split` (its train, test and target)."""
    return evaluate_ranking(model, split.train, split.test, split.target, ks=ks, batch_size=batch_size, users=users)


def evaluate_pointwise(model, task, test, kind=None, batch_size=100_000):
    """Pointwise metrics of one task on held-out pairs.

    Parameters
    ----------
    model : object
        Fitted model with ``predict_indices(task, user_indices, item_indices)`` (values for regression heads,
        probabilities for logistic heads).
    task : str
    test : scipy.sparse matrix
        Held-out pairs of ``task`` (internal indices) with their true values / 0-1 labels; explicit zeros count.
    kind : {"regression", "binary"} or None
        Which metrics: ``"regression"`` -> RMSE and MAE, ``"binary"`` -> AUC and log loss. None looks the task
        up in ``model.tasks_`` (binary kind or logistic head -> "binary", else "regression").
    batch_size : int, default=100000
        Pairs per call of ``predict_indices``.

    Returns
    -------
    dict
        ``{"RMSE": ..., "MAE": ..., "n_pairs": ...}`` or ``{"AUC": ..., "LogLoss": ..., "n_pairs": ...}``.
    """
    where = "evaluate_pointwise"
    if kind is None:
        found = [t for t in getattr(model, "tasks_", []) if getattr(t, "name", None) == task]
        if not found:
            raise ValueError(f"{where}: kind=None needs model.tasks_ to describe task {task!r}; pass "
                             f"kind='regression' or 'binary'.")
        t = found[0]
        head = t.resolved_head() if hasattr(t, "resolved_head") else getattr(t, "head", None)
        kind = "binary" if (t.kind == "binary" or head == "logistic") else "regression"
    if kind not in ("regression", "binary"):
        raise ValueError(f"{where}: kind must be 'regression' or 'binary'. Got {kind!r}.")
    if not sp.issparse(test):
        raise ValueError(f"{where}: test must be a scipy.sparse matrix.")
    coo = sp.coo_matrix(test)  # keeps explicit zeros (0 labels)
    rows, cols, y = coo.row.astype(np.int64), coo.col.astype(np.int64), np.asarray(coo.data, dtype=np.float64)
    if y.size == 0:
        raise ValueError(f"{where}: test has no pairs.")
    pred = np.concatenate([np.asarray(model.predict_indices(task, rows[s:s + batch_size], cols[s:s + batch_size]),
                                      dtype=np.float64).ravel() for s in range(0, y.size, batch_size)])
    if kind == "regression":
        return {"RMSE": metrics.rmse(y, pred), "MAE": metrics.mae(y, pred), "n_pairs": int(y.size)}
    return {"AUC": metrics.auc(y, pred), "LogLoss": metrics.log_loss(y, pred), "n_pairs": int(y.size)}
