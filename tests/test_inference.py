"""InferenceModel: same answers as MultiTaskMF from a saved directory (read or memory-mapped), numpy/scipy only."""
import os

import numpy as np
import pytest

from mtl_classic.inference import InferenceModel, recommend_blended
from mtl_classic.persistence import save_model
from mtl_classic.ranking import blend_scores



@pytest.fixture(scope="module")
def saved(four_task_model, tmp_path_factory):
    return save_model(four_task_model, tmp_path_factory.mktemp("inf") / "model")


def _variants(four_task_model, saved):
    return {"from_model": InferenceModel.from_model(four_task_model), "load": InferenceModel.load(saved),
            "mmap": InferenceModel.load(saved, mmap_mode="r"),
            "slim": InferenceModel.load(save_model(four_task_model, os.path.join(os.path.dirname(saved), "slim"), slim=True))}


def test_same_scores_predictions_and_recommendations_as_the_model(four_task_model, saved):
    data = four_task_model.data_
    users = list(data.user_map.ids[:11])
    uu = np.repeat(data.user_map.ids, data.n_items)
    ii = np.tile(data.item_map.ids, data.n_users)
    for name, inf in _variants(four_task_model, saved).items():
        for task in data.task_names:
            assert np.array_equal(inf.score_items(task, np.arange(data.n_users)),
                                  four_task_model.score_items(task, np.arange(data.n_users))), (name, task)
            assert np.array_equal(inf.predict(task, uu, ii), four_task_model.predict(task, uu, ii)), (name, task)
            for kwargs in ({"filter_seen": True}, {"filter_seen": "any"}, {"filter_seen": False},
                           {"filter_items": [500, 503], "items": list(range(500, 520))}):
                a = inf.recommend(users, n=6, task=task, **kwargs)
                b = four_task_model.recommend(users, n=6, task=task, **kwargs)
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (name, task, kwargs)
        one = inf.recommend("user-3", n=4, task="buy")
        assert one[0].shape == (4,) and np.array_equal(one[0], four_task_model.recommend("user-3", n=4, task="buy")[0])
    assert isinstance(_variants(four_task_model, saved)["mmap"].params.item_factors, np.memmap)


def test_float32_artifact_is_close(four_task_model, saved, tmp_path):
    inf = InferenceModel.load(save_model(four_task_model, tmp_path / "f32", slim=True, dtype="float32"))
    assert inf.params.item_factors.dtype == np.float32
    ref = four_task_model.score_items("buy", np.arange(10))
    assert np.allclose(inf.score_items("buy", np.arange(10)), ref, rtol=1e-5, atol=1e-5)
    cast = InferenceModel.load(saved, dtype="float32")
    assert cast.params.user_factors.dtype == np.float32
    assert np.allclose(cast.score_items("buy", np.arange(10)), ref, rtol=1e-5, atol=1e-5)


def test_seen_filters_per_task_and_any(four_task_model):
    inf = InferenceModel.from_model(four_task_model)
    data = four_task_model.data_
    users = list(data.user_map.ids)
    for filter_seen, tasks in ((True, ["rating"]), ("any", data.task_names), ("view", ["view"]),
                               (["buy", "rating"], ["buy", "rating"])):
        ids, _ = inf.recommend(users, n=3, task="rating", filter_seen=filter_seen)
        for r, u in enumerate(range(data.n_users)):
            chosen = data.item_map.index(ids[r])
            for t in tasks:
                assert not np.intersect1d(chosen, data.matrices[t][u].indices).size
    with pytest.raises(ValueError, match="filter_seen"):
        inf.recommend(users, task="buy", filter_seen="nope")


def test_errors_and_unknown_user_fallback(four_task_model):
    inf = InferenceModel.from_model(four_task_model)
    with pytest.raises(KeyError, match="unknown user id"):
        inf.recommend(["nobody"], task="buy")
    with pytest.raises(KeyError, match="unknown item id"):
        inf.predict("buy", ["user-1"], [12345])
    with pytest.raises(ValueError, match="unknown task"):
        inf.recommend(["user-1"], task="nope")
    with pytest.raises(ValueError, match="no default task"):
        inf.recommend(["user-1"])
    with pytest.raises(ValueError, match="n must be"):
        inf.recommend(["user-1"], task="buy", n=-1)
    ids, scores = inf.recommend(["nobody", "user-1"], n=5, task="buy", unknown="popular")
    pop = inf.popularity[inf.task_index["buy"]]
    assert np.allclose(scores[0], np.sort(pop)[::-1][:5])
    assert np.array_equal(ids[1], four_task_model.recommend(["user-1"], n=5, task="buy")[0][0])
    # cold-start predictions: popularity for implicit tasks, the population prediction otherwise
    t = inf.task_index["liked"]
    p = inf.predict("liked", ["nobody"], [501], unknown="popular")
    assert np.allclose(p, 1 / (1 + np.exp(-(inf.params.intercepts[t] + inf.params.item_biases[t, 1]))))
    assert np.allclose(inf.predict("buy", ["nobody"], [501], unknown="popular"), pop[1])


def test_weighted_blend_and_breakdown(four_task_model):
    inf = InferenceModel.from_model(four_task_model)
    users = ["user-0", "user-5", "user-9"]
    u = four_task_model.data_.user_map.index(users)
    weights = {"buy": 1.0, "view": 0.3}
    ids, scores, parts = inf.recommend_blended(users, n=5, weights=weights, filter_seen=False,
                                               return_breakdown=True)
    blocks = [four_task_model.score_items(t, u) for t in weights]
    expected = blend_scores(blocks, list(weights.values()))
    cols = four_task_model.data_.item_map.index(ids.ravel()).reshape(ids.shape)
    assert np.allclose(scores, np.take_along_axis(expected, cols, axis=1))
    assert np.allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :5])
    for t, block in zip(weights, blocks):
        assert np.allclose(parts[t], np.take_along_axis(block, cols, axis=1))
    # filter_seen=True removes the items seen in any blended task
    ids, _ = inf.recommend_blended(users, n=5, weights=weights, normalize="zscore")
    for r, uu in enumerate(u):
        seen = np.union1d(four_task_model.data_.matrices["buy"][uu].indices, four_task_model.data_.matrices["view"][uu].indices)
        assert not np.intersect1d(four_task_model.data_.item_map.index(ids[r]), seen).size


def test_expected_value_blend(four_task_model):
    class Scale:   # a stand-in calibrator: anything with transform(scores) -> probabilities
        def transform(self, s):
            return np.clip(np.asarray(s, dtype=float), 0.0, 1.0)

    values = np.linspace(1.0, 3.0, four_task_model.data_.n_items)
    with pytest.raises(ValueError, match="linear head"):
        recommend_blended(four_task_model, ["user-1"], probabilities=["buy", "liked"], item_values=values)
    ids, scores, parts = recommend_blended(four_task_model, ["user-1", "user-2"], n=4, probabilities=["buy", "liked"],
                                           item_values=values, calibrators={"buy": Scale()}, filter_seen=False,
                                           return_breakdown=True)
    assert np.allclose(scores, parts["buy"] * parts["liked"] * parts["value"])
    u = four_task_model.data_.user_map.index(["user-1", "user-2"])
    p_buy = np.clip(four_task_model.score_items("buy", u), 0, 1)
    p_liked = 1 / (1 + np.exp(-four_task_model.score_items("liked", u)))
    full = p_buy * p_liked * values
    assert np.allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :4])
    by_dict = recommend_blended(four_task_model, "user-1", n=4, probabilities=["liked"], item_values={503: 10.0, 504: 1.0})
    assert set(by_dict[0][:2].tolist()) == {503, 504}
    with pytest.raises(ValueError, match="exactly one"):
        recommend_blended(four_task_model, ["user-1"], weights={"buy": 1}, probabilities=["liked"])


def test_non_finite_scores_rank_last_like_the_model(four_task_model):
    import copy

    broken = copy.deepcopy(four_task_model)
    broken.item_factors_[2] = np.nan                       # item 502 scores NaN for everyone
    inf = InferenceModel.from_model(broken)
    users = list(broken.data_.user_map.ids[:5])
    a = inf.recommend(users, n=30, task="buy", filter_seen=False)
    b = broken.recommend(users, n=30, task="buy", filter_seen=False)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.all(a[0][:, -1] == 502) and np.all(a[1][:, -1] == -np.inf)
