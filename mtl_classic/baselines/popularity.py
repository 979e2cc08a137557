"""Most-popular baseline: one item ranking per task, the same for every user."""
import numpy as np

from ._common import BaselineMixin, item_popularity


class PopularityRecommender(BaselineMixin):
    """Rank items by popularity within each task.

    The popularity of item i in task t is the number of users with an observation of i in task t (the column count
    of the task's sparsity pattern; explicit zeros such as a 0 label count as observations).

    Parameters
    ----------
    target : str or None, default=None
        Task used when ``recommend``/``score_items`` get ``task=None``. None means the data's first task.

    Attributes
    ----------
    popularity_ : dict[str, ndarray of shape (n_items,)]
        Users per item, per task.
    data_ : MultiTaskData
        The training data.
    default_task_ : str
        The resolved ``target``.
    """

    def __init__(self, target=None):
        self.target = target

    def fit(self, data):
        """Count users per item in every task.

        Parameters
        ----------
        data : MultiTaskData

        Returns
        -------
        self
        """
        self.default_task_ = self._check_target(data, self.target)
        self.popularity_ = {t: item_popularity(data.matrices[t]) for t in data.task_names}
        self.data_ = data
        return self

    def score_items(self, task, user_indices):
        """Popularity of every item in ``task``, repeated for each user: shape ``(len(user_indices), n_items)``."""
        task = self._check_task(task)
        u = self._check_users(user_indices)
        return np.tile(self.popularity_[task], (len(u), 1))

    def predict_indices(self, task, user_indices, item_indices):
        """Popularity of each item of the pairs in ``task``."""
        task = self._check_task(task)
        _, i = self._check_pairs(user_indices, item_indices)
        return self.popularity_[task][i]
