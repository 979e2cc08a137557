"""Popularity-weighted negatives: the items' weights s_i of the unobserved pairs (docs/MATH.md, "Popularity-weighted
negatives"), from each item's audience in the training data.

``MultiTaskMF(negative_popularity=beta)`` weighs an unobserved pair (u, i) of an implicit task by w0 s_i with
``s_i = (1 + c_i) ** beta`` over its mean. The estimator's fit (:func:`fit_negative_scale`), its fold-ins
(:func:`fitted_negative_scale`) and the distributed fit derive s here; the solver takes it as an array.
"""
import numpy as np
import scipy.sparse as sp

__all__ = ["item_audiences", "negative_popularity_scale", "fit_negative_scale", "fitted_negative_scale"]


def item_audiences(matrices, tasks, n_items):
    """Every item's audience: the number of distinct users with an observation of it in any implicit task with
    whole-data negatives.

    Parameters
    ----------
    matrices : dict of str -> sparse matrix (n_users, n_items)
        The tasks' observations by task name.
    tasks : sequence of Task
    n_items : int

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    union = None
    for t in tasks:
        if t.kind == "implicit" and t.negative_weight > 0:
            pattern = (sp.csr_matrix(matrices[t.name]) != 0).astype(np.int8)
            union = pattern if union is None else union + pattern
    if union is None:
        return np.zeros(n_items)
    return np.asarray((union > 0).sum(axis=0), dtype=np.float64).ravel()


def negative_popularity_scale(audiences, beta, reference=None):
    """The items' weights of the unobserved pairs (popularity-weighted negatives, docs/MATH.md).

    Parameters
    ----------
    audiences : array-like (n_items,)
        The items' audiences c_i (:func:`item_audiences`).
    beta : float
        ``MultiTaskMF(negative_popularity=...)``.
    reference : array-like or None
        The audiences whose mean weight is 1 (default: ``audiences`` itself, so that the negatives' total weight is
        that of ``beta = 0``; new items folded in use the training items').

    Returns
    -------
    ndarray or None
        ``s_i = (1 + c_i) ** beta / mean_j (1 + c_j) ** beta`` over ``reference``; None when ``beta`` is 0.
    """
    if not beta:
        return None
    reference = audiences if reference is None else reference
    mean = float(np.mean((1.0 + np.asarray(reference, dtype=np.float64)) ** beta)) if len(reference) else 1.0
    return (1.0 + np.asarray(audiences, dtype=np.float64)) ** beta / mean


def fit_negative_scale(model, tasks, data):
    """The items' weights of the negatives for a fit of ``model`` on ``data`` (None when its
    ``negative_popularity`` is 0); the audiences are kept on the model for :func:`fitted_negative_scale`."""
    beta = float(getattr(model, "negative_popularity", 0.0) or 0.0)
    audiences = item_audiences(data.matrices, tasks, data.n_items) if beta else None
    model._negative_scale_cache = ((id(data), beta), audiences) if beta else None
    return negative_popularity_scale(audiences, beta)


def fitted_negative_scale(model, matrices=None):
    """A fitted ``MultiTaskMF``'s item weights of the negatives (:func:`negative_popularity_scale`) over its
    training items, or over new items from their ``matrices`` (a fold-in of items), the mean still that of the
    training items; None when ``negative_popularity`` is 0. The training items' values are cached on the model."""
    beta = float(getattr(model, "negative_popularity", 0.0) or 0.0)
    if not beta:
        return None
    key = (id(model.data_), beta)
    cache = getattr(model, "_negative_scale_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, item_audiences(model.data_.matrices, model.tasks_, model.data_.n_items))
        model._negative_scale_cache = cache
    fitted = cache[1]
    if matrices is None:
        return negative_popularity_scale(fitted, beta)
    n_new = next(iter(matrices.values())).shape[1]
    return negative_popularity_scale(item_audiences(matrices, model.tasks_, n_new), beta, reference=fitted)
