"""Small synthetic multi-task data shared by the test modules (fixtures in conftest.py)."""
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


N_BLOCK_USERS, N_BLOCK_ITEMS, N_BUYS = 30, 12, 4


def block_data(seed=0):
    """Two user blocks x two item blocks. Users cart every item of their block and buy N_BUYS of them.

    Returns the training data (one bought item per user withheld) and the withheld item index per user.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = 2 * N_BLOCK_USERS, 2 * N_BLOCK_ITEMS
    cart = np.zeros((n_users, n_items))
    buy = np.zeros((n_users, n_items))
    held = np.zeros(n_users, dtype=np.int64)
    for u in range(n_users):
        block = np.arange(N_BLOCK_ITEMS) + (u // N_BLOCK_USERS) * N_BLOCK_ITEMS
        cart[u, block] = 1.0
        bought = rng.choice(block, size=N_BUYS + 1, replace=False)
        buy[u, bought[:-1]] = 1.0
        held[u] = bought[-1]
    users = [f"u{u}" for u in range(n_users)]
    items = [f"i{i}" for i in range(n_items)]
    data = MultiTaskData.from_matrices({"cart": sp.csr_matrix(cart), "buy": sp.csr_matrix(buy)},
                                       user_ids=users, item_ids=items)
    return data, held


def other_block(u):
    """The item indices of the block user ``u`` does not belong to (see :func:`block_data`)."""
    start = N_BLOCK_ITEMS if u < N_BLOCK_USERS else 0
    return np.arange(start, start + N_BLOCK_ITEMS)
