"""private_factors="auto": each task's private block sized by the share of its pairs no other task observes
(mtl_classic.tasks.resolve_private_factors, mtl_classic._sparse.covered_pairs)."""
import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.filterwarnings("ignore:MultiTaskMF. cross-task features left out")

from mtl_classic import MultiTaskData, MultiTaskMF, Task  # noqa: E402
from mtl_classic._sparse import covered_pairs, observation_pattern  # noqa: E402
from mtl_classic.tasks import resolve_private_factors  # noqa: E402

KW = dict(factors=16, iterations=3, random_state=0, dtype="float64", show_progress=False)


def test_the_rule_gives_a_covered_task_no_block_and_an_uncovered_one_the_cap():
    # cap = min(8, 64 // (2 * 2)) = 8; a task whose pairs another task all observes shares every factor
    assert resolve_private_factors("auto", 64, 2, coverage=[0.4, 1.0]) == [5, 0]
    assert resolve_private_factors("auto", 64, 2, coverage=[0.0, 0.1]) == [8, 7]
    # the cap keeps at least half of the factors shared: 16 factors, 4 tasks -> at most 2 each
    assert resolve_private_factors("auto", 16, 4, coverage=[0.0, 0.0, 0.5, 1.0]) == [2, 2, 1, 0]
    assert resolve_private_factors("auto", 64, 2) == [8, 8]            # no coverage known: the cap
    assert resolve_private_factors(3, 64, 3, coverage=[1.0, 0.0, 0.5]) == [3, 3, 3]  # an int is given as is
    assert resolve_private_factors("auto", 64, 1, coverage=[0.0]) == [0]  # one task: all its factors are its own


def test_covered_pairs_counts_each_tasks_pairs_that_any_other_task_observes():
    a = sp.csr_matrix(np.array([[1, 1, 0], [0, 2, 1]]))
    b = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    c = sp.csr_matrix(np.array([[0, 0, 0], [0, 3, 0]]))
    got = covered_pairs({n: observation_pattern(m) for n, m in (("a", a), ("b", b), ("c", c))})
    assert got == {"a": 2, "b": 1, "c": 1}   # a's (0,0) by b and (1,1) by c; its (0,1) and (1,2) by none
    assert covered_pairs({"a": observation_pattern(a)}) == {"a": 0}


def _nested_data(seed=0, n_users=60, n_items=40):
    """'cart' and 'buy' where every buy is carted and most carts are not bought (Beibei's shape)."""
    rng = np.random.default_rng(seed)
    cart = sp.random(n_users, n_items, density=0.2, random_state=rng, format="csr")
    cart.data[:] = 1.0
    buy = cart.copy()
    buy.data = (rng.random(buy.nnz) < 0.3).astype(float)
    buy.eliminate_zeros()
    return MultiTaskData.from_matrices({"cart": cart, "buy": buy}), cart, buy


def test_a_fit_sizes_the_blocks_from_its_data_and_the_heads_read_only_their_own():
    data, cart, buy = _nested_data()
    model = MultiTaskMF(tasks=[Task("cart"), Task("buy")], **KW).fit(data)
    cap = 16 // 4
    share = buy.nnz / cart.nnz
    assert model.private_factors_ == [int(np.floor(cap * (1 - share) + 0.5)), 0]
    assert model.private_factors_[0] > 0
    W = model.head_weights_
    n_cart = model.private_factors_[0]
    shared = 16 - n_cart
    np.testing.assert_array_equal(W[1, shared:], 0.0)          # buy reads none of cart's private block
    assert np.all(W[0, shared:] != 0.0)                        # cart reads its own


def test_a_warm_start_keeps_the_blocks_of_the_fit_it_continues():
    data, _, _ = _nested_data()
    model = MultiTaskMF(tasks=[Task("cart"), Task("buy")], warm_start=True, **KW).fit(data)
    sizes = list(model.private_factors_)
    # the same users and items, but every cart now also bought: the rule alone would give cart no block
    both = MultiTaskData.from_matrices({"cart": data.matrices["cart"], "buy": data.matrices["cart"]})
    model.fit(both)
    assert model.private_factors_ == sizes


def test_too_many_private_factors_are_refused_with_the_sizes():
    data, _, _ = _nested_data()
    with pytest.raises(ValueError, match="leaves no shared factor: 2 tasks x 8 private factors >= factors=16"):
        MultiTaskMF(tasks=[Task("cart"), Task("buy")], private_factors=8, **{**KW}).fit(data)
