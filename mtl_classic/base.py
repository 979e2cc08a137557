"""``RecommenderMixin``: batched top-N recommendation in external ids, built on ``score_items``.

Every model (``MultiTaskMF`` and every baseline) exposes the scoring surface of docs/ARCHITECTURE.md::

    model.score_items(task, user_indices) -> ndarray (len(user_indices), n_items)   # higher = better
    model.data_                                                                # the training MultiTaskData
    model.default_task_                                                        # task used when task=None (or None)

and inherits :meth:`RecommenderMixin.recommend` from here.
"""
import numpy as np

from ._errors import not_fitted
from ._ids import as_query

from .ranking import excluded_items, rank, seen_tasks

__all__ = ["RecommenderMixin", "is_scalar_id"]


def is_scalar_id(users):
    """Whether ``users`` is one id (a str, bytes, 0-d array or any non-iterable value) rather than a sequence."""
    if isinstance(users, np.ndarray):
        return users.ndim == 0
    return isinstance(users, (str, bytes)) or not hasattr(users, "__iter__")


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

    def recommend(self, users, n=10, task=None, filter_seen=True, filter_items=None, items=None, batch_size=None):
        """Top-``n`` items for each user, in external ids.

        Parameters
        ----------
        users : hashable or sequence of hashable
            External user id(s) of the training data. A single id (not a list) gives 1-d outputs.
        n : int, default=10
            Number of items per user, ``n >= 0``.
        task : str or None, default=None
            Task whose scores rank the items; None means the model's ``default_task_``.
        filter_seen : bool, "any", str or list of str, default=True
            True removes the items the user has in the training data of ``task``; ``"any"`` removes items the user
            has in any task; a task name or list removes those tasks' items; False keeps everything.
        filter_items : sequence of hashable, optional
            External item ids never to recommend.
        items : sequence of hashable, optional
            Allow-list of external item ids: only these are ranked.
        batch_size : int or None, default=None
            Users scored per call of ``score_items`` (memory ``batch_size * n_items`` floats; None:
            :func:`mtl_classic.ranking.batch_rows`).

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
        where = f"{type(self).__name__}.recommend"
        user_idx = data.user_map.index(as_query(users))
        excluded = excluded_items(data.n_items, lambda ids: data.item_map.index(as_query(ids)), items, filter_items)
        seen = [data.matrices[t] for t in seen_tasks(filter_seen, [task], data.task_names, where)]

        def score_fn(batch):
            return np.array(self.score_items(task, batch), dtype=np.float64)  # a private, writable copy

        top, scores, _ = rank(score_fn, user_idx, n, data.n_items, seen=seen, excluded=excluded,
                              batch_size=batch_size, where=where)
        ids = data.item_map.external(top.ravel()).reshape(top.shape)
        if is_scalar_id(users):
            return ids[0], scores[0]
        return ids, scores
