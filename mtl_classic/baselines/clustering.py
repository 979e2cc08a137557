"""User clustering on multi-behaviour rows: each cluster recommends its own most popular items."""
import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from ._common import BaselineMixin, check_param, check_random_state, int_seed, item_popularity, pattern


class ClusteringRecommender(BaselineMixin):
    """Cluster users on their concatenated behaviours, then rank items by popularity inside the user's cluster.

    1. ``X = hstack([pattern(R_t) for t in tasks])`` (n_users x T * n_items), weighted by ``weighting``;
    2. ``TruncatedSVD(n_components)`` of X, rows L2-normalised (cosine geometry);
    3. k-means (``algorithm``) with ``n_clusters`` clusters;
    4. score of item i for user u in task t: the number of users of u's cluster with i in task t, plus the global
       popularity of i in t divided by (its maximum + 1), which breaks ties without ever overturning the cluster
       count.

    Parameters
    ----------
    n_clusters : int, default=20
    n_components : int, default=32
        SVD dimension (capped at the number of columns minus one).
    weighting : {"tfidf", "l2", None}, default="tfidf"
        ``tfidf``: scikit-learn's TfidfTransformer (items as terms, users as documents, L2 rows); ``l2``: L2-normalised
        rows; None: raw 0/1 rows.
    algorithm : {"minibatch", "kmeans"}, default="minibatch"
        :class:`~sklearn.cluster.MiniBatchKMeans` or :class:`~sklearn.cluster.KMeans`.
    n_init : int, default=3
        k-means restarts.
    target : str or None, default=None
        Task used when ``task=None``; None means the data's first task.
    random_state : int, Generator or None, default=None

    Attributes
    ----------
    labels_ : ndarray (n_users,), int64
        Cluster of each user.
    cluster_popularity_ : dict[str, ndarray (n_clusters, n_items)]
        Users of each cluster per item, per task.
    popularity_ : dict[str, ndarray (n_items,)]
        Global users per item, per task.
    svd_, kmeans_ : the fitted scikit-learn estimators
    data_, default_task_
    """

    def __init__(self, n_clusters=20, n_components=32, weighting="tfidf", algorithm="minibatch", n_init=3,
                 target=None, random_state=None):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.weighting = weighting
        self.algorithm = algorithm
        self.n_init = n_init
        self.target = target
        self.random_state = random_state

    def fit(self, data):
        """Embed, cluster, and count popularity per cluster.

        Parameters
        ----------
        data : MultiTaskData

        Returns
        -------
        self
        """
        check_param(self, "n_clusters", self.n_clusters, "int", low=1, high=data.n_users)
        check_param(self, "n_components", self.n_components, "int", low=1)
        check_param(self, "weighting", self.weighting, "option", options=("tfidf", "l2", None))
        check_param(self, "algorithm", self.algorithm, "option", options=("minibatch", "kmeans"))
        check_param(self, "n_init", self.n_init, "int", low=1)
        target = self._check_target(data, self.target)
        rng = check_random_state(self.random_state)
        pats = {t: pattern(data.matrices[t]) for t in data.task_names}
        X = sp.hstack(list(pats.values()), format="csr")
        if self.weighting == "tfidf":
            X = TfidfTransformer().fit_transform(X)
        elif self.weighting == "l2":
            X = normalize(X)
        n_comp = max(1, min(self.n_components, X.shape[1] - 1))
        svd = TruncatedSVD(n_components=n_comp, random_state=int_seed(rng))
        Z = normalize(svd.fit_transform(X))
        if self.algorithm == "minibatch":
            km = MiniBatchKMeans(n_clusters=self.n_clusters, n_init=self.n_init, batch_size=2048,
                                 random_state=int_seed(rng))
        else:
            km = KMeans(n_clusters=self.n_clusters, n_init=self.n_init, random_state=int_seed(rng))
        labels = km.fit_predict(Z).astype(np.int64)
        onehot = sp.csr_matrix((np.ones(data.n_users), (labels, np.arange(data.n_users))),
                               shape=(self.n_clusters, data.n_users))
        self.cluster_popularity_ = {t: np.asarray((onehot @ p).todense()) for t, p in pats.items()}
        self.popularity_ = {t: item_popularity(p) for t, p in pats.items()}
        self.labels_ = labels
        self.svd_, self.kmeans_ = svd, km
        self.default_task_ = target
        self.data_ = data
        return self

    def _tie(self, task):
        pop = self.popularity_[task]
        return pop / (pop.max(initial=0.0) + 1.0)

    def score_items(self, task, user_indices):
        """Cluster popularity (+ global-popularity tie-break) of every item; ``(len(user_indices), n_items)``."""
        task = self._check_task(task)
        u = self._check_users(user_indices)
        return self.cluster_popularity_[task][self.labels_[u]] + self._tie(task)[None, :]

    def predict_indices(self, task, user_indices, item_indices):
        """Scores of the given pairs."""
        task = self._check_task(task)
        u, i = self._check_pairs(user_indices, item_indices)
        return self.cluster_popularity_[task][self.labels_[u], i] + self._tie(task)[i]
