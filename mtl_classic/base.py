"""``RecommenderMixin``: batched top-N recommendation in external ids, built on ``score_items``.

Every model (``MultiTaskMF`` and every baseline) exposes the scoring surface of docs/ARCHITECTURE.md::

    model.score_items(task, user_indices) -> ndarray (len(user_indices), n_items)   # higher = better
    model.data_                                                                # the training MultiTaskData
    model.default_task_                                                        # task used when task=None (or None)

and inherits :meth:`RecommenderMixin.recommend` from here.
"""
import numbers

import numpy as np
import scipy.sparse as sp

from ._errors import not_fitted
from ._ids import as_query

from .ranking import mask_seen, top_k

__all__ = ["RecommenderMixin", "seen_matrix"]

_LOWEST = -np.finfo(np.float64).max


def seen_matrix(data, task, filter_seen=True):
    """The sparse matrix whose stored entries are the items to filter for each user, or None.

    Parameters
    ----------
    data : MultiTaskData
    task : str
        The task being ranked.
    filter_seen : bool or "any"
        True: the user's training observations of ``task``; ``"any"``: observations of any task; False: None.

    Returns
    -------
    csr_matrix or None
        Shape ``(n_users, n_items)``; only the pattern matters.
    """
    if filter_seen is False or filter_seen is None:
        return None
    if filter_seen is True:
        return data.matrices[task]
    if filter_seen == "any":
        union = None
        for m in data.matrices.values():
            pattern = sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)
            union = pattern if union is None else union + pattern  # all entries are >= 1: nothing is dropped
        return union.tocsr()
    raise ValueError(f"filter_seen must be True, False or 'any'. Got {filter_seen!r}.")


class RecommenderMixin:
    """Adds :meth:`recommend` to any fitted model exposing ``score_items``, ``data_`` and ``default_task_``."""

    def _resolve_task(self, task):
        data = getattr(self, "data_", None)
        if data is None:
            raise not_fitted(self)
        if task is None:
            task = getattr(self, "default_task_", None)
            if task is None:
                raise ValueError(f"{type(self).__name__}.recommend: task=None but the model has no default task; "
                                 f"pass task= one of {data.task_names}.")
        if task not in data.matrices:
            raise ValueError(f"{type(self).__name__}.recommend: unknown task {task!r}; available tasks are "
                             f"{data.task_names}.")
        return task

    def recommend(self, users, n=10, task=None, filter_seen=True, filter_items=None, items=None, batch_size=1024):
        """Top-``n`` items for each user, in external ids.

        Parameters
        ----------
        users : hashable or sequence of hashable
            External user id(s) of the training data. A single id (not a list) gives 1-d outputs.
        n : int, default=10
            Number of items per user, ``n >= 0``.
        task : str or None, default=None
            Task whose scores rank the items; None means the model's ``default_task_``.
        filter_seen : bool or "any", default=True
            True removes the items the user has in the training data of ``task``; ``"any"`` removes items the user
            has in any task; False keeps everything.
        filter_items : sequence of hashable, optional
            External item ids never to recommend.
        items : sequence of hashable, optional
            Allow-list of external item ids: only these are ranked.
        batch_size : int, default=1024
            Users scored per call of ``score_items`` (bounds memory to ``batch_size * n_items`` floats).

        Returns
        -------
        ids : ndarray, shape (n_users, n_cols)
            External item ids, best first (dtype of the item id map: int64 or object).
        scores : ndarray of float64, shape (n_users, n_cols)
            The matching scores of ``task``.

        Notes
        -----
        Every returned entry is a real candidate: no filtered item and no padding ever appears. Hence
        ``n_cols = min(n, c)`` where ``c`` is the smallest number of candidates left for any requested user (items
        allowed by ``items`` / ``filter_items`` minus that user's filtered seen items). When one user has fewer than
        ``n`` candidates left, every row of the call is shortened to that count; ask for that user separately to get
        full lists for the others.

        Raises
        ------
        KeyError
            Unknown user or item ids (named in the message).
        ValueError
            Unknown task, no default task, bad ``n`` / ``filter_seen`` / ``batch_size``.
        """
        task = self._resolve_task(task)
        data = self.data_
        name = type(self).__name__
        for arg, value, low in (("n", n, 0), ("batch_size", batch_size, 1)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}.recommend: {arg} must be an int >= {low}. Got {value!r}.")
        if isinstance(users, np.ndarray):
            scalar = users.ndim == 0
        else:
            scalar = isinstance(users, (str, bytes)) or not hasattr(users, "__iter__")
        user_idx = data.user_map.index(as_query(users))

        excluded = np.zeros(data.n_items, dtype=bool)
        if items is not None:
            excluded[:] = True
            excluded[data.item_map.index(as_query(items))] = False
        if filter_items is not None:
            excluded[data.item_map.index(as_query(filter_items))] = True
        seen = seen_matrix(data, task, filter_seen)

        n_candidates = int(data.n_items - excluded.sum())
        width = min(int(n), n_candidates)
        if seen is not None and len(user_idx) and width > 0:
            seen_rows = seen[user_idx]
            allowed = (~excluded).astype(np.float64)
            n_seen_allowed = np.asarray(sp.csr_matrix((np.ones(seen_rows.nnz), seen_rows.indices, seen_rows.indptr),
                                                      shape=seen_rows.shape) @ allowed)
            width = min(width, int(n_candidates - n_seen_allowed.max()))
        width = max(width, 0)

        ids_out = np.empty((len(user_idx), width), dtype=data.item_map.ids.dtype)
        scores_out = np.empty((len(user_idx), width), dtype=np.float64)
        for start in range(0, len(user_idx), batch_size):
            batch = user_idx[start:start + batch_size]
            scores = np.array(self.score_items(task, batch), dtype=np.float64)  # a private, writable copy
            if scores.shape != (len(batch), data.n_items):
                raise ValueError(f"{name}.score_items returned shape {scores.shape}; expected "
                                 f"{(len(batch), data.n_items)}.")
            low = ~(scores > -np.inf)  # the model's own -inf / NaN: keep them below candidates, above filtered
            if low.any():
                scores[low] = _LOWEST
            if seen is not None:
                mask_seen(scores, seen[batch])
            if excluded.any():
                scores[:, excluded] = -np.inf
            top, vals = top_k(scores, width)
            if low.any():
                vals[vals == _LOWEST] = -np.inf
            ids_out[start:start + len(batch)] = data.item_map.external(top.ravel()).reshape(top.shape)
            scores_out[start:start + len(batch)] = vals
        if scalar:
            return ids_out[0], scores_out[0]
        return ids_out, scores_out
