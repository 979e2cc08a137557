"""Shared plumbing for the baselines: task checks, parameter checks, sparse pattern helpers.

Everything here works on internal indices and on the per-task CSR matrices of a
:class:`~mtl_classic.MultiTaskData` (``data.matrices``, ``data.task_names``, ``data.n_users``, ``data.n_items``).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from .._errors import not_fitted
from .._validation import check_number, parameter_of
from ..base import RecommenderMixin

__all__ = ["RecommenderMixin", "BaselineMixin", "check_param", "pattern", "pair_lookup", "item_popularity"]


# ----------------------------------------------------------------------------------------------------------------
# parameter checks
# ----------------------------------------------------------------------------------------------------------------
def check_param(owner, name, value, kind, low=None, high=None, low_open=False, none_ok=False, options=None):
    """Raise ``ValueError`` ("The 'name' parameter of Owner must be ... Got value.") unless ``value`` fits.

    Parameters
    ----------
    owner : object
        The estimator (its class name appears in the message).
    name : str
        Parameter name.
    value : object
        The value to check.
    kind : {"int", "real", "option"}
        Expected type. ``"option"`` checks membership in ``options``.
    low, high : float or None
        Inclusive bounds (``low`` exclusive when ``low_open``).
    none_ok : bool
        Whether None is allowed.
    options : sequence or None
        Allowed values for ``kind="option"``.
    """
    if kind == "option":
        if value is None and none_ok:
            return value
        if value not in options:
            raise ValueError(f"{parameter_of(owner, name)} must be one of {list(options)}. Got {value!r}.")
        return value
    return check_number(parameter_of(owner, name), value, integer=kind == "int", low=low, high=high,
                        low_open=low_open, none_ok=none_ok, real="a finite float")


def check_random_state(seed):
    """One :class:`numpy.random.Generator` from ``None``, an int, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def int_seed(rng):
    """A reproducible 31-bit int seed drawn from ``rng`` (for libraries that want ints)."""
    return int(rng.integers(0, 2**31 - 1))


# ----------------------------------------------------------------------------------------------------------------
# sparse helpers
# ----------------------------------------------------------------------------------------------------------------
def pattern(m):
    """0/1 float64 CSR with the sparsity pattern of ``m`` (explicit zeros count as observations)."""
    m = sp.csr_matrix(m)
    return sp.csr_matrix((np.ones(len(m.indices)), m.indices.copy(), m.indptr.copy()), shape=m.shape)


def union_pattern(mats, shape):
    """0/1 CSR of the union of the patterns of ``mats`` (an empty matrix when ``mats`` is empty)."""
    out = sp.csr_matrix(shape, dtype=np.float64)
    for m in mats:
        out = out + pattern(m)
    out = sp.csr_matrix(out)
    out.data[:] = 1.0
    out.sort_indices()
    return out


def item_popularity(m):
    """Number of users with an observation of each item (column counts of the pattern), float64."""
    m = sp.csr_matrix(m)
    return np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)


def user_activity(m):
    """Number of observed items per user (row counts of the pattern), float64."""
    m = sp.csr_matrix(m)
    return np.diff(m.indptr).astype(np.float64)


def pair_lookup(m, users, items):
    """Values of CSR ``m`` at the pairs ``(users[j], items[j])``; 0 where absent. Vectorised (binary search).

    Parameters
    ----------
    m : csr_matrix with sorted indices
    users, items : int arrays of equal length

    Returns
    -------
    ndarray of float64, shape (len(users),)
    """
    m = sp.csr_matrix(m)
    if not m.has_sorted_indices:
        m = m.copy()
        m.sort_indices()
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    n_items = m.shape[1]
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = rows * n_items + m.indices.astype(np.int64)           # sorted because rows and indices are sorted
    q = users * n_items + items
    pos = np.searchsorted(keys, q)
    pos_c = np.minimum(pos, max(len(keys) - 1, 0))
    out = np.zeros(len(q), dtype=np.float64)
    if len(keys):
        hit = keys[pos_c] == q
        out[hit] = m.data[pos_c[hit]]
    return out


def add_sparse_rows(scores, m_rows, value=None):
    """In place: ``scores[r, j] += value * m_rows[r, j]`` for the nonzeros of CSR ``m_rows`` (value None: the data)."""
    m_rows = sp.csr_matrix(m_rows)
    if not m_rows.has_canonical_format:          # canonical: each (row, col) once, so fancy += is exact
        m_rows = m_rows.copy()
        m_rows.sum_duplicates()
    rows = np.repeat(np.arange(m_rows.shape[0]), np.diff(m_rows.indptr))
    add = m_rows.data if value is None else value * m_rows.data
    scores[rows, m_rows.indices] += add
    return scores


# ----------------------------------------------------------------------------------------------------------------
# the shared estimator surface
# ----------------------------------------------------------------------------------------------------------------
class BaselineMixin(RecommenderMixin, BaseEstimator):
    """Task checks and user/item index checks shared by every baseline (and scikit-learn's get_params/set_params).

    Subclasses set ``data_``, ``default_task_`` (and ``tasks_`` when they model only some tasks) in ``fit``.
    """

    def _check_fitted(self):
        if not hasattr(self, "data_"):
            raise not_fitted(self)

    def _check_task(self, task, allowed=None):
        """Resolve ``task`` (None -> ``default_task_``) and raise ``ValueError`` naming an unknown task.

        ``allowed``: None (every task of the data), ``"target"`` (the default task only) or the name of a fitted
        attribute whose keys are the modelled tasks; read after the fitted check, so an unfitted model raises
        ``NotFittedError``.
        """
        self._check_fitted()
        if task is None:
            task = self.default_task_
        if allowed is None:
            allowed = list(self.data_.task_names)
        elif allowed == "target":
            allowed = [self.default_task_]
        else:
            allowed = list(getattr(self, allowed))
        if task not in allowed:
            raise ValueError(f"Unknown task {task!r} for {type(self).__name__}; known tasks are {allowed}.")
        return task

    def _check_target(self, data, target, name="target"):
        """Resolve a constructor ``target`` against the data (None -> the data's first task)."""
        names = list(data.task_names)
        if target is None:
            return names[0]
        if target not in names:
            raise ValueError(f"The {name!r} parameter of {type(self).__name__} names task {target!r}, which is not "
                             f"in the data; tasks are {names}.")
        return target

    def _check_users(self, user_indices):
        u = np.asarray(user_indices, dtype=np.int64).ravel()
        if len(u) and (u.min() < 0 or u.max() >= self.data_.n_users):
            bad = u[(u < 0) | (u >= self.data_.n_users)][:5].tolist()
            raise ValueError(f"user_indices out of range [0, {self.data_.n_users}): {bad}.")
        return u

    def _check_pairs(self, user_indices, item_indices):
        u = self._check_users(user_indices)
        i = np.asarray(item_indices, dtype=np.int64).ravel()
        if len(u) != len(i):
            raise ValueError(f"user_indices and item_indices must have the same length; got {len(u)} and {len(i)}.")
        if len(i) and (i.min() < 0 or i.max() >= self.data_.n_items):
            bad = i[(i < 0) | (i >= self.data_.n_items)][:5].tolist()
            raise ValueError(f"item_indices out of range [0, {self.data_.n_items}): {bad}.")
        return u, i
