import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from mtl_classic import NotFittedError

from mtl_classic.base import RecommenderMixin
from mtl_classic.data import MultiTaskData
from mtl_classic.ranking import blend_scores, mask_seen, seen_tasks, top_k


def test_top_k_matches_full_sort():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 200))
    idx, vals = top_k(scores, 7)
    expected = np.argsort(-scores, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(vals, np.take_along_axis(scores, expected, axis=1))
    assert idx.dtype == np.int64


def test_top_k_edge_cases():
    s = np.array([[1.0, -np.inf, 3.0], [np.nan, 2.0, 2.0]])
    idx, vals = top_k(s, 10)  # k > n_items keeps all
    np.testing.assert_array_equal(idx, [[2, 0, 1], [1, 2, 0]])  # ties by index, NaN last
    np.testing.assert_array_equal(vals, [[3.0, 1.0, -np.inf], [2.0, 2.0, -np.inf]])
    idx, vals = top_k(s, 0)
    assert idx.shape == (2, 0)
    idx1, vals1 = top_k(np.array([0.5, 2.0, 1.0]), 2)
    np.testing.assert_array_equal(idx1, [1, 2])
    with pytest.raises(ValueError, match="k must be"):
        top_k(s, -1)


def test_mask_seen_in_place_keeps_explicit_zero_pattern():
    scores = np.zeros((2, 3))
    seen = sp.csr_matrix((np.array([0.0, 1.0]), np.array([1, 0]), np.array([0, 1, 2])), shape=(2, 3))
    out = mask_seen(scores, seen)
    assert out is scores
    np.testing.assert_array_equal(np.isneginf(scores), [[False, True, False], [True, False, False]])
    with pytest.raises(ValueError, match="shape"):
        mask_seen(np.zeros((3, 3)), seen)


def test_blend_scores():
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[3.0, 2.0, 1.0]])
    np.testing.assert_allclose(blend_scores([a, b], [1.0, 0.5]), [[2.5, 3.0, 3.5]])
    np.testing.assert_allclose(blend_scores([a, b], normalize="rank"), [[1 / 3, 1 / 3, 1 / 3]])
    z = blend_scores([a], [1.0], normalize="zscore")
    np.testing.assert_allclose(z.mean(), 0.0, atol=1e-12)


class FixedScores(RecommenderMixin):
    """score_items returns a fixed table; counts calls to check batching."""

    def __init__(self, data, table, default_task=None):
        self.data_ = data
        self.table = table
        self.default_task_ = default_task
        self.calls = []

    def score_items(self, task, user_indices):
        self.calls.append(len(user_indices))
        return self.table[task][np.asarray(user_indices)]


@pytest.fixture
def model():
    df = pd.DataFrame({
        "user": ["a", "a", "b", "c"],
        "item": ["x", "y", "z", "w"],
        "task": ["buy", "cart", "cart", "buy"],
    })
    data = MultiTaskData.from_events(df)  # users a, b, c; items w, x, y, z
    buy = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 5.0, 0.0]])
    return FixedScores(data, {"buy": buy, "cart": -buy}, default_task="buy")


def test_recommend_filters_seen_of_task(model):
    ids, scores = model.recommend(["a", "b"], n=2)
    np.testing.assert_array_equal(ids, [["w", "y"], ["z", "y"]])  # a saw x in buy
    np.testing.assert_array_equal(scores, [[4.0, 2.0], [4.0, 3.0]])
    ids, _ = model.recommend(["a"], n=2, filter_seen=False)
    np.testing.assert_array_equal(ids, [["w", "x"]])


def test_recommend_any_task_filter_and_item_filters(model):
    ids, _ = model.recommend(["a"], n=4, filter_seen="any")
    np.testing.assert_array_equal(ids, [["w", "z"]])  # x (buy) and y (cart) removed; width = candidates left
    ids, _ = model.recommend(["b"], n=3, filter_items=["z"])
    np.testing.assert_array_equal(ids, [["y", "x", "w"]])
    ids, _ = model.recommend(["b"], n=3, items=["w", "x"])
    np.testing.assert_array_equal(ids, [["x", "w"]])


def test_recommend_scalar_user_task_and_batches(model):
    ids, scores = model.recommend("c", n=2)
    assert ids.shape == (2,) and list(ids) == ["y", "x"]  # c bought w; y (5) then x (1)
    ids, _ = model.recommend(["a", "b", "c"], n=1, task="cart", batch_size=2)
    assert model.calls[-2:] == [2, 1]
    np.testing.assert_array_equal(ids, [["z"], ["w"], ["z"]])


def test_recommend_width_is_smallest_candidate_count(model):
    ids, scores = model.recommend(["a", "b"], n=4)
    assert ids.shape == (2, 3)  # a bought x: 3 candidates left; b has 4
    assert np.isfinite(scores).all()


def test_recommend_errors(model):
    with pytest.raises(KeyError, match="'nobody'"):
        model.recommend(["a", "nobody"])
    with pytest.raises(KeyError, match="'q'"):
        model.recommend(["a"], filter_items=["q"])
    with pytest.raises(ValueError, match=r"unknown task 'view'.*\['buy', 'cart'\]"):
        model.recommend(["a"], task="view")
    model.default_task_ = None
    with pytest.raises(ValueError, match="no default task"):
        model.recommend(["a"])
    with pytest.raises(ValueError, match="filter_seen"):
        model.recommend(["a"], task="buy", filter_seen="all")
    with pytest.raises(NotFittedError):
        FixedScores.__new__(FixedScores).recommend(["a"])


def test_seen_tasks_policy_and_named_tasks_for_every_recommender(model):
    names = model.data_.task_names
    assert seen_tasks(True, ["buy"], names) == ["buy"]
    assert seen_tasks("any", ["buy"], names) == list(names)
    assert seen_tasks(False, ["buy"], names) == []
    assert seen_tasks("cart", ["buy"], names) == ["cart"]
    with pytest.raises(ValueError, match="filter_seen must be"):
        seen_tasks("nope", ["buy"], names)
    # a task name is accepted by the generic mixin too (the baselines once refused what InferenceModel took)
    ids_any, _ = model.recommend(["a", "b", "c"], n=1, task="buy", filter_seen="any")
    ids_named, _ = model.recommend(["a", "b", "c"], n=1, task="buy", filter_seen=list(names))
    np.testing.assert_array_equal(ids_any, ids_named)


@pytest.mark.parametrize("k", [1, 5, 60])
def test_top_k_heap_kernel_matches_full_sort_with_ties_nan_and_inf(k):
    rng = np.random.default_rng(3)
    scores = np.floor(rng.random((40, 2000)) * 20)  # many ties; 80,000 entries -> compiled path
    scores[:, 7] = np.nan
    scores[:, 11] = -np.inf
    scores[0] = -np.inf
    idx, vals = top_k(scores, k)
    clean = np.where(np.isnan(scores), -np.inf, scores)
    cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    expected = np.lexsort((cols, -clean), axis=1)[:, :k]  # score descending, lower index first
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(vals, np.take_along_axis(clean, expected, axis=1))
    np.testing.assert_array_equal(idx[0], np.arange(k))
    i1, v1 = top_k(scores[3], k)  # 1-d input, small -> numpy path, same values
    np.testing.assert_array_equal(v1, vals[3])
