"""Train/test splits that keep every task on the same index.

Only the *target* task loses its held-out pairs; auxiliary tasks stay in training untouched (so a model can use the
user's cart when predicting the purchase it must rank). All functions return a :class:`Split`; a validation split for
tuning is the same function applied to ``split.train``.
"""
from dataclasses import dataclass, field
import numbers

import numpy as np
import scipy.sparse as sp

from .container import MultiTaskData, _canonical

__all__ = ["Split", "leave_last_out", "random_holdout", "given_test_pairs"]


@dataclass
class Split:
    """A training set and the target task's held-out pairs.

    Attributes
    ----------
    train : MultiTaskData
        Every task; the target task without its held-out pairs (timestamps filtered alike).
    test : scipy.sparse.csr_matrix
        Held-out pairs of the target task, shape ``(train.n_users, train.n_items)``, values = the original values
        (explicit zeros kept).
    target : str
        The target task.
    info : dict
        How the split was made and its counts (``n_test_pairs``, ``n_test_users``, ...).
    """

    train: MultiTaskData
    test: sp.csr_matrix
    target: str
    info: dict = field(default_factory=dict)

    @property
    def test_users(self):
        """Internal indices of users with at least one held-out pair."""
        return np.flatnonzero(np.diff(self.test.indptr) > 0)


# --------------------------------------------------------------------------------------------------------------------
def _check_target(data, target, where):
    if not isinstance(data, MultiTaskData):
        raise TypeError(f"{where}: data must be a MultiTaskData. Got {type(data).__name__}.")
    if target not in data.matrices:
        raise ValueError(f"{where}: unknown target task {target!r}; tasks are {data.task_names}.")


def _check_int(where, name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{where}: {name} must be an int >= {low}. Got {value!r}.")


def _select(matrix, keep):
    """CSR with only the entries where ``keep`` (a mask over ``matrix.data``) is True; zeros and order kept."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]), out=indptr[1:])
    out = sp.csr_matrix((matrix.data[keep].astype(np.float64), matrix.indices[keep].copy(), indptr),
                        shape=matrix.shape)
    out.has_sorted_indices = True
    return out


def _row_positions(matrix, sort_key):
    """For each stored entry, its position within its row after sorting the row by ``sort_key`` (ascending).

    Returns ``(position, row_length_of_entry)`` aligned with ``matrix.data``.
    """
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((sort_key, rows))  # rows stay in block order; entries sorted inside each row
    position = np.empty(matrix.nnz, dtype=np.int64)
    position[order] = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    return position, lengths[rows]


def _make_split(data, target, held, method, extra):
    m = data.matrices[target]
    matrices = dict(data.matrices)
    matrices[target] = _select(m, ~held)
    timestamps = dict(data.timestamps) if data.timestamps else None
    if timestamps and target in timestamps:
        timestamps[target] = _select(timestamps[target], ~held)
    train = data.with_matrices(matrices, timestamps=timestamps)
    test = _select(m, held)
    info = {"method": method, "target": target,
            "n_test_pairs": int(test.nnz),
            "n_test_users": int(np.count_nonzero(np.diff(test.indptr))),
            "n_train_pairs": int(matrices[target].nnz)}
    info.update(extra)
    train.report = {"split": info}
    return Split(train=train, test=test, target=target, info=info)


# --------------------------------------------------------------------------------------------------------------------
def leave_last_out(data, target, n_holdout=1, min_train=1):
    """Hold out each user's latest ``n_holdout`` observations of the target task (by timestamp).

    Parameters
    ----------
    data : MultiTaskData
        Must have timestamps for ``target``.
    target : str
        Task whose latest observations are held out.
    n_holdout : int, default=1
        Observations held out per user.
    min_train : int, default=1
        Observations of the target a user must keep in training; users with fewer than ``n_holdout + min_train``
        target observations keep all of them and get no test pairs.

    Returns
    -------
    Split
        ``info`` also counts ``n_users_skipped`` (users with some but too few target observations).

    Notes
    -----
    Ties in timestamps are broken by item index: of two pairs with the same timestamp the one with the larger item
    index counts as later. Deterministic; no randomness.
    """
    where = "leave_last_out"
    _check_target(data, target, where)
    _check_int(where, "n_holdout", n_holdout, 1)
    _check_int(where, "min_train", min_train, 0)
    if not data.timestamps or target not in data.timestamps:
        raise ValueError(f"{where}: task {target!r} has no timestamps; build the data with timestamp_col= (or use "
                         f"random_holdout).")
    m = data.matrices[target]
    ts = data.timestamps[target].data
    # descending by (timestamp, item): sort ascending by the negated key
    key = np.lexsort((-m.indices.astype(np.int64), -ts))
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[key] = np.arange(m.nnz)  # a global descending rank works as a within-row sort key
    position, length = _row_positions(m, rank)
    eligible = length >= n_holdout + min_train
    held = eligible & (position < n_holdout)
    lengths = np.diff(m.indptr)
    skipped = int(np.count_nonzero((lengths > 0) & (lengths < n_holdout + min_train)))
    return _make_split(data, target, held, "leave_last_out",
                       {"n_holdout": n_holdout, "min_train": min_train, "n_users_skipped": skipped})


def random_holdout(data, target, test_fraction=0.2, random_state=None, min_train=1):
    """Hold out a seeded random fraction of each user's observations of the target task.

    Parameters
    ----------
    data : MultiTaskData
    target : str
    test_fraction : float in (0, 1), default=0.2
        A user with ``n`` target observations gets ``max(1, round(test_fraction * n))`` held out, capped at
        ``n - min_train``; users with ``n <= min_train`` keep everything.
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the same seed gives the same split.
    min_train : int, default=1
        Observations each user keeps in training.

    Returns
    -------
    Split
        ``info`` also counts ``n_users_skipped``.
    """
    where = "random_holdout"
    _check_target(data, target, where)
    _check_int(where, "min_train", min_train, 0)
    if (not isinstance(test_fraction, numbers.Real) or isinstance(test_fraction, bool)
            or not 0.0 < float(test_fraction) < 1.0):
        raise ValueError(f"{where}: test_fraction must be a float in (0, 1). Got {test_fraction!r}.")
    rng = np.random.default_rng(random_state)
    m = data.matrices[target]
    lengths = np.diff(m.indptr)
    n_test = np.maximum(1, np.rint(test_fraction * lengths).astype(np.int64))
    n_test = np.minimum(n_test, np.maximum(lengths - min_train, 0))
    position, _ = _row_positions(m, rng.random(m.nnz))
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    held = position < n_test[rows]
    skipped = int(np.count_nonzero((lengths > 0) & (n_test == 0)))
    seed = random_state if isinstance(random_state, numbers.Integral) or random_state is None else "generator"
    return _make_split(data, target, held, "random_holdout",
                       {"test_fraction": float(test_fraction), "random_state": seed, "min_train": min_train,
                        "n_users_skipped": skipped})


def given_test_pairs(data, target, test):
    """Use given held-out pairs of the target task (e.g. a benchmark's test file).

    Parameters
    ----------
    data : MultiTaskData
    target : str
    test : scipy.sparse matrix, shape (data.n_users, data.n_items)
        Held-out pairs over ``data``'s index (stored entries are the pairs; values are kept).

    Returns
    -------
    Split
        Target pairs of ``data`` that are also in ``test`` are removed from training; their number is
        ``info["n_removed_from_train"]``. ``split.test`` is ``test`` as canonical float64 CSR.
    """
    where = "given_test_pairs"
    _check_target(data, target, where)
    test, n_dup = _canonical(test, f"{where}: test")
    if test.shape != data.shape:
        raise ValueError(f"{where}: test has shape {test.shape}; expected (n_users, n_items) = {data.shape}.")
    m = data.matrices[target]
    n_items = np.int64(data.n_items)
    key_train = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_items + m.indices
    key_test = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr)) * n_items + test.indices
    held = np.isin(key_train, key_test)
    matrices = dict(data.matrices)
    matrices[target] = _select(m, ~held)
    timestamps = dict(data.timestamps) if data.timestamps else None
    if timestamps and target in timestamps:
        timestamps[target] = _select(timestamps[target], ~held)
    train = data.with_matrices(matrices, timestamps=timestamps)
    info = {"method": "given_test_pairs", "target": target,
            "n_test_pairs": int(test.nnz),
            "n_test_users": int(np.count_nonzero(np.diff(test.indptr))),
            "n_train_pairs": int(matrices[target].nnz),
            "n_removed_from_train": int(held.sum()),
            "n_test_duplicates_summed": int(n_dup)}
    train.report = {"split": info}
    return Split(train=train, test=test, target=target, info=info)
