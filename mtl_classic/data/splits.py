"""Train/test splits that keep every task on the same index.

Only the *target* task loses its held-out pairs; auxiliary tasks stay in training untouched (so a model can use the
user's cart when predicting the purchase it must rank). Tasks that record the *same* events as the target (MovieLens
``rated`` / ``liked`` / ``rating`` are three views of one rating) must lose the held-out pairs too: name them in
``also_remove``. A split warns when every held-out pair is still observed in another task. All functions return a :class:`Split`; a validation split for
tuning is the same function applied to ``split.train``.
"""
from dataclasses import dataclass, field
import numbers
import warnings

import numpy as np
import scipy.sparse as sp

from .._validation import check_number
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
    check_number(f"{where}: {name}", value, integer=True, low=low)


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


def _keys(matrix):
    """``row * n_cols + col`` of every stored entry (int64, sorted for canonical CSR)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * np.int64(matrix.shape[1]) + matrix.indices


def _check_also_remove(data, target, also_remove, where):
    if also_remove is None:
        return []
    if isinstance(also_remove, str):
        also_remove = [also_remove]
    also_remove = list(also_remove)
    unknown = [t for t in also_remove if t not in data.matrices]
    if unknown:
        raise ValueError(f"{where}: also_remove names unknown task(s) {unknown}; tasks are {data.task_names}.")
    return [t for t in also_remove if t != target]


def _finish(data, target, held, test, method, extra, also_remove):
    """Build the Split: drop ``held`` (mask over the target's entries) from the target and the held-out pairs
    ``test`` from every task in ``also_remove``; count held-out pairs that stay observed in other tasks."""
    test_keys = _keys(test)
    matrices = dict(data.matrices)
    timestamps = dict(data.timestamps) if data.timestamps else {}
    removed = {target: int(held.sum())}
    drops = {target: ~held}
    for task in also_remove:
        in_test = np.isin(_keys(data.matrices[task]), test_keys)
        drops[task] = ~in_test
        removed[task] = int(in_test.sum())
    for task, keep in drops.items():
        matrices[task] = _select(data.matrices[task], keep)
        if task in timestamps:
            timestamps[task] = _select(timestamps[task], keep)
    train = data.with_matrices(matrices, timestamps=timestamps or None)
    in_aux = {task: int(np.isin(test_keys, _keys(m)).sum())
              for task, m in matrices.items() if task != target}
    info = {"method": method, "target": target,
            "n_test_pairs": int(test.nnz),
            "n_test_users": int(np.count_nonzero(np.diff(test.indptr))),
            "n_train_pairs": int(matrices[target].nnz)}
    info.update(extra)
    info.update({"also_removed": {t: removed[t] for t in also_remove}, "test_pairs_in_other_tasks": in_aux})
    full = [t for t, n in in_aux.items() if test.nnz and n == test.nnz]
    if full:
        warnings.warn(f"{method}: every held-out pair of {target!r} is still observed in the training data of "
                      f"task(s) {full}. If those tasks record the same events (e.g. MovieLens 'rated', 'liked' and "
                      f"'rating'), pass also_remove={full!r}, or the held-out pairs leak into training.",
                      UserWarning, stacklevel=3)
    train.report = {"split": info}
    return Split(train=train, test=test, target=target, info=info)


# --------------------------------------------------------------------------------------------------------------------
def leave_last_out(data, target, n_holdout=1, min_train=1, also_remove=None):
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
    also_remove : str or list of str, optional
        Other tasks from which the held-out pairs are removed too. Use it for tasks that record the *same* events as
        the target (MovieLens ``rated`` / ``liked`` / ``rating``); otherwise the held-out pairs leak into training.
        Genuine auxiliary behaviours (cart, collect, ...) stay untouched, as the protocol requires.

    Returns
    -------
    Split
        ``info`` also counts ``n_users_skipped`` (users with some but too few target observations), the pairs
        removed from ``also_remove`` tasks and ``test_pairs_in_other_tasks`` (held-out pairs still observed in each
        other task's training data). A ``UserWarning`` is issued when *every* held-out pair is still observed in
        some other task (a likely leak).

    Notes
    -----
    Ties in timestamps are broken by item index: of two pairs with the same timestamp the one with the larger item
    index counts as later. Deterministic; no randomness.
    """
    where = "leave_last_out"
    _check_target(data, target, where)
    also_remove = _check_also_remove(data, target, also_remove, where)
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
    return _finish(data, target, held, _select(m, held), "leave_last_out",
                   {"n_holdout": n_holdout, "min_train": min_train, "n_users_skipped": skipped}, also_remove)


def random_holdout(data, target, test_fraction=0.2, random_state=None, min_train=1, also_remove=None):
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
    also_remove : str or list of str, optional
        Other tasks from which the held-out pairs are removed too. Use it for tasks that record the *same* events as
        the target (MovieLens ``rated`` / ``liked`` / ``rating``); otherwise the held-out pairs leak into training.
        Genuine auxiliary behaviours (cart, collect, ...) stay untouched, as the protocol requires.

    Returns
    -------
    Split
        ``info`` as for :func:`leave_last_out` (same leak warning).
    """
    where = "random_holdout"
    _check_target(data, target, where)
    also_remove = _check_also_remove(data, target, also_remove, where)
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
    return _finish(data, target, held, _select(m, held), "random_holdout",
                   {"test_fraction": float(test_fraction), "random_state": seed, "min_train": min_train,
                    "n_users_skipped": skipped}, also_remove)


def given_test_pairs(data, target, test, also_remove=None):
    """Use given held-out pairs of the target task (e.g. a benchmark's test file).

    Parameters
    ----------
    data : MultiTaskData
    target : str
    test : scipy.sparse matrix, shape (data.n_users, data.n_items)
        Held-out pairs over ``data``'s index (stored entries are the pairs; values are kept).
    also_remove : str or list of str, optional
        Other tasks from which the held-out pairs are removed too. Use it for tasks that record the *same* events as
        the target (MovieLens ``rated`` / ``liked`` / ``rating``); otherwise the held-out pairs leak into training.
        Genuine auxiliary behaviours (cart, collect, ...) stay untouched, as the protocol requires.

    Returns
    -------
    Split
        Target pairs of ``data`` that are also in ``test`` are removed from training; their number is
        ``info["n_removed_from_train"]``. ``split.test`` is ``test`` as canonical float64 CSR. ``info`` as for
        :func:`leave_last_out` (same leak warning).
    """
    where = "given_test_pairs"
    _check_target(data, target, where)
    also_remove = _check_also_remove(data, target, also_remove, where)
    test, n_dup = _canonical(test, f"{where}: test")
    if test.shape != data.shape:
        raise ValueError(f"{where}: test has shape {test.shape}; expected (n_users, n_items) = {data.shape}.")
    m = data.matrices[target]
    held = np.isin(_keys(m), _keys(test))
    return _finish(data, target, held, test, "given_test_pairs",
                   {"n_removed_from_train": int(held.sum()), "n_test_duplicates_summed": int(n_dup)}, also_remove)
