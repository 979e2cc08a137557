"""The auxiliary-first rule: what the user already carted/collected but has not bought, most popular first."""
import numpy as np

from ._common import BaselineMixin, add_sparse_rows, item_popularity, pair_lookup, pattern, union_pattern


class AuxiliaryFirstRule(BaselineMixin):
    """Rank the user's auxiliary-behaviour items first, then every other item, each group by target popularity.

    For user u the candidate group is ``A_u = (items u has in any auxiliary task) minus (items u has in the target
    task)``. Items in ``A_u`` come first, ordered by target popularity; all other items follow, ordered by target
    popularity. Ties in target popularity are broken by the summed popularity in the auxiliary tasks (then by item
    index, through the stable sort of the ranking code). The score is

        score(u, i) = offset * [i in A_u] + pop_target(i) + pop_aux(i) / (max(pop_aux) + 1)

    with ``offset = max(pop_target) + 2`` so that the group always dominates.

    Parameters
    ----------
    target : str, default="buy"
        The task to recommend for.
    auxiliary : list of str or None, default=None
        The auxiliary tasks; None means every task except ``target``.

    Attributes
    ----------
    auxiliary_ : list of str
        The resolved auxiliary tasks.
    target_popularity_ : ndarray (n_items,)
        Users per item in the target task.
    auxiliary_popularity_ : ndarray (n_items,)
        Summed users per item over the auxiliary tasks.
    candidates_ : csr_matrix (n_users, n_items)
        0/1 pattern of ``A_u`` for every user.
    data_, default_task_
        Training data; ``target``.
    """

    def __init__(self, target="buy", auxiliary=None):
        self.target = target
        self.auxiliary = auxiliary

    def fit(self, data):
        """Compute popularities and each user's candidate group.

        Parameters
        ----------
        data : MultiTaskData

        Returns
        -------
        self
        """
        target = self._check_target(data, self.target)
        if self.auxiliary is None:
            aux = [t for t in data.task_names if t != target]
        else:
            aux = list(self.auxiliary)
            for t in aux:
                if t not in data.task_names or t == target:
                    raise ValueError(f"The 'auxiliary' parameter of AuxiliaryFirstRule names task {t!r}, which is "
                                     f"not a task of the data other than the target; tasks are {data.task_names}.")
        shape = (data.n_users, data.n_items)
        union = union_pattern([data.matrices[t] for t in aux], shape)
        tgt = pattern(data.matrices[target])
        cand = union - union.multiply(tgt)
        cand = cand.tocsr()
        cand.eliminate_zeros()          # a derived 0/1 pattern, not a task matrix: zeros here mean "not a candidate"
        cand.sort_indices()
        self.auxiliary_ = aux
        self.target_popularity_ = item_popularity(data.matrices[target])
        self.auxiliary_popularity_ = (np.sum([item_popularity(data.matrices[t]) for t in aux], axis=0)
                                      if aux else np.zeros(data.n_items))
        self.candidates_ = cand
        self.default_task_ = target
        self.data_ = data
        return self

    def _item_scores(self):
        tie = self.auxiliary_popularity_ / (self.auxiliary_popularity_.max(initial=0.0) + 1.0)
        return self.target_popularity_ + tie, self.target_popularity_.max(initial=0.0) + 2.0

    def score_items(self, task, user_indices):
        """Rule scores for ``task`` (only the target task is modelled); shape ``(len(user_indices), n_items)``."""
        self._check_task(task, allowed="target")
        u = self._check_users(user_indices)
        base, offset = self._item_scores()
        scores = np.tile(base, (len(u), 1))
        return add_sparse_rows(scores, self.candidates_[u], offset)

    def predict_indices(self, task, user_indices, item_indices):
        """Rule scores of the given pairs."""
        self._check_task(task, allowed="target")
        u, i = self._check_pairs(user_indices, item_indices)
        base, offset = self._item_scores()
        return base[i] + offset * pair_lookup(self.candidates_, u, i)
