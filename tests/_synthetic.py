"""Small synthetic multi-task data shared by the inference and persistence tests."""
import numpy as np
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData
from mtl_classic.tasks import Task

TASKS = [Task("view", weight=0.5), Task("buy"), Task("rating", kind="regression"), Task("liked", kind="binary")]


def four_task_data(n_users=50, n_items=30, seed=0, str_users=True):
    """view (implicit counts), buy (implicit), rating (regression) and liked (binary) from planted factors."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    S = P @ Q.T
    view = sp.csr_matrix((S > 0.3).astype(float) * rng.integers(1, 4, size=S.shape))
    buy = sp.csr_matrix((S > 1.4).astype(float))
    rating = sp.random(n_users, n_items, density=0.2, random_state=seed, format="csr")
    rating.data = np.round(rng.uniform(0.5, 5, rating.nnz) * 2) / 2
    liked = rating.copy()
    liked.data = (rating.data >= 3.5).astype(float)   # explicit zeros are observations
    users = [f"user-{i}" for i in range(n_users)] if str_users else list(range(1000, 1000 + n_users))
    return MultiTaskData.from_matrices({"view": view, "buy": buy, "rating": rating, "liked": liked},
                                       user_ids=users, item_ids=list(range(500, 500 + n_items)))
