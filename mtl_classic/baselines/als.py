"""implicit's alternating least squares (Hu, Koren, Volinsky) on the target, on merged behaviours, or with a bonus."""
import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ._common import (BaselineMixin, add_sparse_rows, check_param, check_random_state, int_seed, pair_lookup,
                      union_pattern)


def _als_class():
    # implicit.cpu directly, so that no GPU build is ever tried
    from implicit.cpu.als import AlternatingLeastSquares
    return AlternatingLeastSquares


class ImplicitALSRecommender(BaselineMixin):
    """Wrapper of ``implicit.cpu.als.AlternatingLeastSquares`` with three multi-behaviour variants.

    * buy-only (``aux_weights=None``): ALS on the target task's matrix.
    * merged (``aux_weights={task: weight}``): ALS on ``R_target + sum_b weight_b * R_b``, one matrix in which every
      behaviour counts as an interaction (auxiliary observations down-weighted by their weight).
    * auxiliary bonus (``aux_bonus > 0``): ``aux_bonus`` is added to the score of every item the user has in any
      auxiliary task (every task except the target), the exact-pair evidence of docs/MATH.md section 1. Combines with
      either of the two above.

    The matrix values are used as counts (implicit's confidence is ``alpha * value`` on observed entries and 1 on
    unobserved ones, its convention); use an implicit task (counts), not a rating task, as the target.

    Parameters
    ----------
    target : str, default="buy"
        The task to recommend for.
    factors : int, default=64
    regularization : float, default=0.01
    iterations : int, default=15
    alpha : float, default=1.0
        Passed to implicit (confidence scaling of observed entries).
    aux_weights : dict[str, float] or None, default=None
        Auxiliary tasks merged into the training matrix, with their weights.
    aux_bonus : float, default=0.0
        Constant added to the scores of items the user has in an auxiliary behaviour.
    random_state : int, Generator or None, default=None
    num_threads : int, default=0
        implicit's threads (0 = all cores).

    Attributes
    ----------
    user_factors_ : ndarray (n_users, factors), float32
    item_factors_ : ndarray (n_items, factors), float32
    train_matrix_ : csr_matrix
        The (merged) matrix handed to implicit.
    auxiliary_pattern_ : csr_matrix or None
        0/1 union of the auxiliary tasks (when ``aux_bonus != 0``).
    model_ : implicit.cpu.als.AlternatingLeastSquares
    data_, default_task_
    """

    def __init__(self, target="buy", factors=64, regularization=0.01, iterations=15, alpha=1.0, aux_weights=None,
                 aux_bonus=0.0, random_state=None, num_threads=0):
        self.target = target
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.aux_weights = aux_weights
        self.aux_bonus = aux_bonus
        self.random_state = random_state
        self.num_threads = num_threads

    def _validate(self, data):
        check_param(self, "factors", self.factors, "int", low=1)
        check_param(self, "regularization", self.regularization, "real", low=0)
        check_param(self, "iterations", self.iterations, "int", low=1)
        check_param(self, "alpha", self.alpha, "real", low=0, low_open=True)
        check_param(self, "aux_bonus", self.aux_bonus, "real")
        check_param(self, "num_threads", self.num_threads, "int", low=0)
        target = self._check_target(data, self.target)
        weights = {} if self.aux_weights is None else dict(self.aux_weights)
        for t, w in weights.items():
            if t not in data.task_names or t == target:
                raise ValueError(f"The 'aux_weights' parameter of ImplicitALSRecommender names task {t!r}, which is "
                                 f"not a task of the data other than the target; tasks are {data.task_names}.")
            check_param(self, f"aux_weights[{t!r}]", w, "real", low=0)
        return target, weights

    def fit(self, data):
        """Build the training matrix and run implicit's ALS on it.

        Parameters
        ----------
        data : MultiTaskData

        Returns
        -------
        self
        """
        target, weights = self._validate(data)
        rng = check_random_state(self.random_state)
        m = sp.csr_matrix(data.matrices[target], dtype=np.float64)
        for t, w in weights.items():
            if w > 0:
                m = m + w * sp.csr_matrix(data.matrices[t], dtype=np.float64)
        m = sp.csr_matrix(m, dtype=np.float32)
        m.sort_indices()
        cls = _als_class()
        # implicit warns when BLAS runs multithreaded inside its own threads; limit BLAS to one thread around it
        with threadpool_limits(1, "blas"):
            model = cls(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                        iterations=self.iterations, dtype=np.float32, num_threads=self.num_threads,
                        random_state=int_seed(rng))
            model.fit(m, show_progress=False)
        aux = [t for t in data.task_names if t != target]
        self.auxiliary_pattern_ = (union_pattern([data.matrices[t] for t in aux], m.shape)
                                   if self.aux_bonus != 0 and aux else None)
        self.model_ = model
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)
        self.train_matrix_ = m
        self.default_task_ = target
        self.data_ = data
        return self

    def score_items(self, task, user_indices):
        """``P[u] @ Q.T`` (+ ``aux_bonus`` on the user's auxiliary items), float64, ``(len(user_indices), n_items)``."""
        self._check_task(task, allowed="target")
        u = self._check_users(user_indices)
        scores = (self.user_factors_[u] @ self.item_factors_.T).astype(np.float64)
        if self.auxiliary_pattern_ is not None:
            add_sparse_rows(scores, self.auxiliary_pattern_[u], float(self.aux_bonus))
        return scores

    def predict_indices(self, task, user_indices, item_indices):
        """Scores of the given pairs (same formula as :meth:`score_items`)."""
        self._check_task(task, allowed="target")
        u, i = self._check_pairs(user_indices, item_indices)
        s = np.einsum("ij,ij->i", self.user_factors_[u], self.item_factors_[i]).astype(np.float64)
        if self.auxiliary_pattern_ is not None:
            s += float(self.aux_bonus) * pair_lookup(self.auxiliary_pattern_, u, i)
        return s
