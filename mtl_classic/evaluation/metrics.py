"""Metrics as pure functions on arrays.

Ranking metrics work from a matrix of top-K item indices (one row per user, best first) and the users' held-out
items; relevance is binary. Each returns one value per user; the protocol averages them over users.

Definitions (``hits[u, j]`` = the item ranked ``j + 1`` for user ``u`` is held out, ``R_u`` = number of held-out
items of ``u``):

* ``Recall@K = sum_{j<K} hits[u, j] / R_u`` -- also reported as HR@K (docs/MATH.md section 4); with one held-out item
  per user it is the hit rate.
* ``Precision@K = sum_{j<K} hits[u, j] / K``.
* ``NDCG@K = DCG / IDCG`` with ``DCG = sum_{j<K} hits[u, j] / log2(j + 2)`` and ``IDCG`` the DCG of ``min(R_u, K)``
  hits at the top.
* ``MAP@K``: ``AP@K = sum_{j<K} Precision@(j+1) * hits[u, j] / min(R_u, K)``.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

__all__ = ["hit_matrix", "recall_at_k", "hit_rate_at_k", "precision_at_k", "ndcg_at_k", "average_precision_at_k",
           "rmse", "mae", "auc", "log_loss"]


def hit_matrix(top_items, test):
    """Whether each recommended item is a held-out item of its user.

    Parameters
    ----------
    top_items : ndarray of int, shape (n_users, K)
        Recommended item indices, best first; row ``r`` belongs to row ``r`` of ``test``. Negative entries mean
        "no item" and never hit.
    test : scipy.sparse matrix, shape (n_users, n_items)
        Held-out items: every stored entry is relevant (values are ignored).

    Returns
    -------
    ndarray of bool, shape (n_users, K)
    """
    top = np.asarray(top_items, dtype=np.int64)
    if top.ndim != 2:
        raise ValueError(f"hit_matrix: top_items must be 2-d. Got shape {top.shape}.")
    if not sp.issparse(test):
        raise ValueError("hit_matrix: test must be a scipy.sparse matrix.")
    test = test.tocsr() if test.format != "csr" else test
    if test.shape[0] != top.shape[0]:
        raise ValueError(f"hit_matrix: top_items has {top.shape[0]} rows but test has {test.shape[0]}.")
    n_items = np.int64(test.shape[1])
    rows = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr))
    keys = np.sort(rows * n_items + test.indices)  # sorted already for canonical CSR; sort is cheap insurance
    query = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_items + top
    if keys.size == 0:
        return np.zeros(top.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[pos] == query) & (top >= 0)


def _check(hits, k, n_relevant=None):
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError(f"hits must be 2-d (n_users, K). Got shape {hits.shape}.")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an int >= 1. Got {k!r}.")
    hits = hits[:, :int(k)]
    if n_relevant is None:
        return hits, None
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    if n_rel.shape != (hits.shape[0],):
        raise ValueError(f"n_relevant must have one entry per user ({hits.shape[0]}). Got shape {n_rel.shape}.")
    return hits, n_rel


def recall_at_k(hits, n_relevant, k):
    """Recall@K per user: held-out items in the top K divided by the user's number of held-out items.

    Parameters
    ----------
    hits : ndarray of bool, shape (n_users, >= K or fewer)
        From :func:`hit_matrix`; missing columns (fewer than K items ranked) count as misses.
    n_relevant : ndarray, shape (n_users,)
        Held-out items per user (> 0; users without held-out items get 0).
    k : int

    Returns
    -------
    ndarray of float64, shape (n_users,)
    """
    hits, n_rel = _check(hits, k, n_relevant)
    found = hits.sum(axis=1)
    return np.divide(found, n_rel, out=np.zeros(len(found)), where=n_rel > 0)


def hit_rate_at_k(hits, n_relevant, k):
    """HR@K as in docs/MATH.md section 4: identical to :func:`recall_at_k`."""
    return recall_at_k(hits, n_relevant, k)


def precision_at_k(hits, k):
    """Precision@K per user: held-out items in the top K divided by K.

    Returns
    -------
    ndarray of float64, shape (n_users,)
    """
    hits, _ = _check(hits, k)
    return hits.sum(axis=1) / float(k)


def _discounts(k):
    return 1.0 / np.log2(np.arange(2, int(k) + 2))


def ndcg_at_k(hits, n_relevant, k):
    """NDCG@K per user with binary relevance.

    Returns
    -------
    ndarray of float64, shape (n_users,)
    """
    hits, n_rel = _check(hits, k, n_relevant)
    disc = _discounts(k)
    dcg = hits @ disc[:hits.shape[1]]
    ideal_cum = np.concatenate(([0.0], np.cumsum(disc)))
    idcg = ideal_cum[np.minimum(n_rel, k).astype(np.int64)]
    return np.divide(dcg, idcg, out=np.zeros(len(dcg)), where=idcg > 0)


def average_precision_at_k(hits, n_relevant, k):
    """AP@K per user: mean of Precision@(j+1) over the hit positions j < K, divided by ``min(R_u, K)``.

    Returns
    -------
    ndarray of float64, shape (n_users,)
    """
    hits, n_rel = _check(hits, k, n_relevant)
    h = hits.astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(n_rel, k)
    return np.divide((prec * h).sum(axis=1), denom, out=np.zeros(h.shape[0]), where=denom > 0)


# ---- pointwise ---------------------------------------------------------------------------------------------------
def _pair(y_true, y_pred, name):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true and y_pred must have the same length; got {y_true.size} and "
                         f"{y_pred.size}.")
    if y_true.size == 0:
        raise ValueError(f"{name}: no observations.")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError(f"{name}: y_true and y_pred must be finite.")
    return y_true, y_pred


def rmse(y_true, y_pred):
    """Root mean squared error."""
    y, p = _pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae(y_true, y_pred):
    """Mean absolute error."""
    y, p = _pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(y - p)))


def _labels(y, name):
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name}: labels must be 0 or 1.")


def auc(y_true, y_score):
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``) for 0/1 labels.

    Raises
    ------
    ValueError
        When labels are not 0/1 or only one class is present.
    """
    y, s = _pair(y_true, y_score, "auc")
    _labels(y, "auc")
    if y.min() == y.max():
        raise ValueError("auc: needs both classes in y_true; got only one.")
    return float(roc_auc_score(y, s))


def log_loss(y_true, y_prob, eps=1e-15):
    """Mean binary cross-entropy; probabilities are clipped to ``[eps, 1 - eps]``.

    Raises
    ------
    ValueError
        When labels are not 0/1 or probabilities are outside [0, 1].
    """
    y, p = _pair(y_true, y_prob, "log_loss")
    _labels(y, "log_loss")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("log_loss: y_prob must be probabilities in [0, 1].")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
