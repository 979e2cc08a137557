"""The protocol on a fake model with a fixed score table; every number computed by hand."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData, given_test_pairs
from mtl_classic.evaluation import evaluate_pointwise, evaluate_ranking, evaluate_split
from mtl_classic.tasks import Task


class FakeModel:
    """Anything with score_items / predict_indices can be evaluated."""

    def __init__(self, table, tasks=()):
        self.table = np.asarray(table, dtype=float)
        self.tasks_ = list(tasks)
        self.calls = 0

    def score_items(self, task, user_indices):
        self.calls += 1
        return self.table[np.asarray(user_indices)]

    def predict_indices(self, task, user_indices, item_indices):
        return self.table[np.asarray(user_indices), np.asarray(item_indices)]


def _train():
    # buy: user 0 bought item 0, user 1 bought item 1; user 2 has no test items
    buy = sp.csr_matrix((np.ones(3), (np.array([0, 1, 2]), np.array([0, 1, 3]))), shape=(3, 5))
    cart = sp.csr_matrix((np.ones(2), (np.array([0, 2]), np.array([2, 4]))), shape=(3, 5))
    return MultiTaskData.from_matrices({"cart": cart, "buy": buy})


# held out: user 0 -> {1, 4}; user 1 -> {1 (also a training buy), 2}
TEST = sp.csr_matrix((np.ones(4), (np.array([0, 0, 1, 1]), np.array([1, 4, 1, 2]))), shape=(3, 5))
SCORES = [[9, 1, 5, 3, 4],  # seen 0 removed -> ranking 2, 4, 3, 1 -> hits at ranks 2 and 4
          [5, 9, 1, 2, 3],  # seen 1 removed -> ranking 0, 4, 3, 2 -> hit at rank 4 only
          [0, 0, 0, 0, 0]]

EXPECTED = {
    "HR@2": 0.25, "Recall@2": 0.25, "Precision@2": 0.25,
    "NDCG@2": 0.3868528072 / 2,  # user 0: (1/log2 3) / (1 + 1/log2 3); user 1: 0
    "MAP@2": 0.125,  # user 0: (1/2) / 2
    "HR@4": 0.75, "Recall@4": 0.75, "Precision@4": 0.375,
    "NDCG@4": 0.4574945262,  # ((1/log2 3 + 1/log2 5) + 1/log2 5) / (1 + 1/log2 3) / 2
    "MAP@4": 0.3125,  # user 0: (1/2 + 2/4) / 2 = 0.5; user 1: (1/4) / 2 = 0.125
}


@pytest.mark.parametrize("batch_size", [1, 2, 2048])
def test_evaluate_ranking_hand_computed(batch_size):
    model = FakeModel(SCORES)
    res = evaluate_ranking(model, _train(), TEST, "buy", ks=(2, 4), batch_size=batch_size)
    for key, value in EXPECTED.items():
        assert res[key] == pytest.approx(value), key
    assert res["n_users"] == 2 and res["n_test_pairs"] == 4 and res["n_test_pairs_in_train"] == 1
    assert model.calls == (2 if batch_size == 1 else 1)  # only users with held-out items are scored


def test_evaluate_ranking_users_subset_and_split():
    res = evaluate_ranking(FakeModel(SCORES), _train(), TEST, "buy", ks=[4], users=[1, 2])
    assert res["n_users"] == 1 and res["HR@4"] == pytest.approx(0.5)
    assert "HR@2" not in res
    split = given_test_pairs(_train(), "buy", TEST)  # removes the overlapping training buy (1, 1)
    res = evaluate_split(FakeModel(SCORES), split, ks=(1,))
    assert res["HR@1"] == pytest.approx(0.5 * (0 + 0.5))  # user 1's best item 1 now counts


def test_filtered_items_never_hit_even_when_few_items_remain():
    train = MultiTaskData.from_matrices({"buy": sp.csr_matrix(np.array([[1.0, 1.0, 0.0]]))})
    test = sp.csr_matrix(np.array([[1.0, 0.0, 1.0]]))  # item 0 is also a training item
    model = FakeModel([[-np.inf, 0.0, -np.inf]])  # the model's own -inf still ranks above filtered items
    res = evaluate_ranking(model, train, test, "buy", ks=(3,))
    assert res["Recall@3"] == pytest.approx(0.5)  # item 2 found at rank 1, item 0 filtered
    assert res["Precision@3"] == pytest.approx(1 / 3)


def test_evaluate_ranking_errors():
    with pytest.raises(ValueError, match="unknown task 'view'"):
        evaluate_ranking(FakeModel(SCORES), _train(), TEST, "view")
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(FakeModel(SCORES), _train(), TEST[:2], "buy")
    with pytest.raises(ValueError, match="ks"):
        evaluate_ranking(FakeModel(SCORES), _train(), TEST, "buy", ks=(0,))


def test_evaluate_pointwise_regression_and_binary():
    table = [[1.5, 2.0, 3.0], [0.8, 0.3, 0.5]]
    ratings = sp.csr_matrix((np.array([1.0, 2.0, 4.0]), (np.zeros(3, int), np.arange(3))), shape=(2, 3))
    res = evaluate_pointwise(FakeModel(table), "rating", ratings, kind="regression")
    assert res["RMSE"] == pytest.approx(np.sqrt(1.25 / 3)) and res["MAE"] == pytest.approx(0.5)
    assert res["n_pairs"] == 3
    # labels with an explicit 0: (1, 0.8) and (0, 0.3)
    labels = sp.csr_matrix((np.array([1.0, 0.0]), (np.array([1, 1]), np.array([0, 1]))), shape=(2, 3))
    model = FakeModel(table, tasks=[Task("liked", kind="binary")])
    res = evaluate_pointwise(model, "liked", labels)  # kind from model.tasks_
    assert res["AUC"] == pytest.approx(1.0)
    assert res["LogLoss"] == pytest.approx(0.2899092476)
    assert res["n_pairs"] == 2
    with pytest.raises(ValueError, match="kind"):
        evaluate_pointwise(FakeModel(table), "liked", labels)


def test_evaluate_ranking_per_user_values_are_the_hand_computed_ones():
    res = evaluate_ranking(FakeModel(SCORES), _train(), TEST, "buy", ks=(2, 4), per_user=True)
    per = res["per_user"]
    np.testing.assert_array_equal(per["users"], [0, 1])          # user 2 has no held-out items
    np.testing.assert_allclose(per["HR@4"], [1.0, 0.5])
    np.testing.assert_allclose(per["MAP@4"], [0.5, 0.125])
    for key in EXPECTED:
        assert per[key].mean() == pytest.approx(res[key]), key
    assert "per_user" not in evaluate_ranking(FakeModel(SCORES), _train(), TEST, "buy", ks=(2,))
