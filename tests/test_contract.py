"""The contract every recommender passes: the estimator, every baseline and InferenceModel, one mixin for all.

Each subclass of :class:`RecommenderContract` says how to build its fitted model on the block data of
``conftest.block`` (two user blocks x two item blocks; users cart their whole block and buy some of it) and inherits
every test. :class:`EstimatorContract` adds what only scikit-learn estimators promise (clone, refit, unfitted use).
"""
import numpy as np
import pytest
from sklearn.base import clone

from mtl_classic import NotFittedError
from mtl_classic.baselines import (AuxiliaryFirstRule, ClusteringRecommender, ImplicitALSRecommender,
                                   LinearSVMRecommender, PopularityRecommender)
from mtl_classic.inference import InferenceModel
from mtl_classic.model import MultiTaskMF
from mtl_classic.tasks import Task

from _synthetic import other_block


class RecommenderContract:
    """Tests every recommender passes; subclasses define :meth:`make` (a fitted model on ``data``)."""

    #: False for models that rank every user alike (popularity): their scores must then be one row for all
    personalised = True

    def make(self, data, tmp_path):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def subject(self, block, tmp_path_factory):
        data, held = block
        return self.make(data, tmp_path_factory.mktemp(type(self).__name__)), data, held

    def test_scores_shape_and_pointwise_agree(self, subject):
        model, data, _ = subject
        users = np.array([0, 5, 31, 59])
        s = model.score_items("buy", users)
        assert s.shape == (4, data.n_items) and np.all(np.isfinite(s))
        items = np.array([0, 3, 20, 23])
        np.testing.assert_allclose(model.predict_indices("buy", users, items), s[np.arange(4), items], rtol=1e-6,
                                   atol=1e-9)

    def test_withheld_item_beats_the_other_block(self, subject):
        model, data, held = subject
        users = np.arange(data.n_users)
        s = model.score_items("buy", users)
        if not self.personalised:       # one ranking for everyone, by design: check that instead
            np.testing.assert_array_equal(s, np.broadcast_to(s[0], s.shape))
            return
        wins = np.array([s[u, held[u]] > s[u, other_block(u)].max() for u in users])
        assert wins.mean() == 1.0, f"withheld item beats the other block for {wins.mean():.2f} of users"

    def test_recommend_external_ids_best_first_without_seen(self, subject):
        model, data, _ = subject
        ids, scores = model.recommend(["u0", "u40"], n=5, task="buy", filter_seen=True)
        assert ids.shape == (2, 5) and scores.shape == (2, 5)
        assert all(isinstance(x, str) and x.startswith("i") for x in ids.ravel())
        for row, user in zip(ids, ["u0", "u40"]):
            u = data.user_map.index([user])[0]
            assert not set(data.item_map.external(data.matrices["buy"][u].indices)) & set(row)
        assert np.all(np.diff(scores, axis=1) <= 1e-12)
        # the recommended scores are the model's scores
        u0 = data.user_map.index(["u0"])
        np.testing.assert_allclose(scores[0], model.score_items("buy", u0)[0, data.item_map.index(ids[0])],
                                   rtol=1e-6, atol=1e-9)
        everything, _ = model.recommend(["u0"], n=data.n_items, task="buy", filter_seen=False)
        assert sorted(everything.ravel().tolist()) == sorted(data.item_map.ids.tolist())

    def test_scalar_user_gives_one_row(self, subject):
        model, _, _ = subject
        ids, scores = model.recommend("u3", n=4, task="buy")
        assert ids.shape == (4,) and scores.shape == (4,)
        np.testing.assert_array_equal(ids, model.recommend(["u3"], n=4, task="buy")[0][0])

    def test_filters_allow_list_and_width_rule(self, subject):
        model, data, _ = subject
        allowed = ["i0", "i1", "i2", "i13", "i14"]
        ids, _ = model.recommend(["u0", "u35"], n=10, task="buy", items=allowed, filter_items=["i1"],
                                 filter_seen=False)
        assert ids.shape == (2, 4) and set(ids.ravel()) <= set(allowed) - {"i1"}
        # filter_seen="any": carts cover the user's whole block, so only the other block is left (12 items)
        ids, _ = model.recommend(["u0", "u40"], n=20, task="buy", filter_seen="any")
        assert ids.shape == (2, 12)
        named, _ = model.recommend(["u0", "u40"], n=20, task="buy", filter_seen=["buy", "cart"])
        np.testing.assert_array_equal(ids, named)
        none, _ = model.recommend(["u0"], n=0, task="buy")
        assert none.shape == (1, 0)

    def test_batches_do_not_change_the_answer(self, subject):
        model, data, _ = subject
        users = list(data.user_map.ids[:13])
        a = model.recommend(users, n=6, task="buy", batch_size=4)
        b = model.recommend(users, n=6, task="buy")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)        # float32 factors: BLAS round-off per block

    def test_unknown_ids_and_tasks_are_named(self, subject):
        model, _, _ = subject
        with pytest.raises(KeyError, match="nobody"):
            model.recommend(["u0", "nobody"], n=3, task="buy")
        with pytest.raises(KeyError, match="'zz'"):
            model.recommend(["u0"], n=3, task="buy", filter_items=["zz"])
        with pytest.raises(ValueError, match="nope"):
            model.recommend(["u0"], n=3, task="nope")
        with pytest.raises(ValueError, match="nope"):
            model.score_items("nope", np.arange(2))
        with pytest.raises(ValueError, match="nope"):
            model.predict_indices("nope", np.arange(2), np.arange(2))
        with pytest.raises(ValueError, match="filter_seen"):
            model.recommend(["u0"], n=3, task="buy", filter_seen="all")
        with pytest.raises(ValueError, match="batch_size"):
            model.recommend(["u0"], n=3, task="buy", batch_size=0)


class EstimatorContract(RecommenderContract):
    """What scikit-learn-style estimators add: clone gives an unfitted copy that refits to the same model."""

    def estimator(self):
        raise NotImplementedError

    def make(self, data, tmp_path):
        return self.estimator().fit(data)

    def test_clone_and_refit_reproducible(self, subject):
        model, data, _ = subject
        fresh = clone(model)
        assert not hasattr(fresh, "data_") and fresh.get_params() == model.get_params()
        with pytest.raises(NotFittedError):
            fresh.recommend(["u0"], n=3, task="buy")
        with pytest.raises(NotFittedError):
            fresh.score_items("buy", np.arange(2))
        np.testing.assert_allclose(fresh.fit(data).score_items("buy", np.arange(6)),
                                   model.score_items("buy", np.arange(6)), rtol=1e-5, atol=1e-6)
        assert model.default_task_ == "buy" and model.data_ is data


def _multitask():
    # private_factors=0: at factors=4 the default would leave 2 shared factors; this contract is about the surface
    return MultiTaskMF(tasks=[Task("cart"), Task("buy")], factors=4, iterations=10, dtype="float64",
                       private_factors=0, random_state=0)


class TestMultiTaskMF(EstimatorContract):
    def estimator(self):
        return _multitask()

    def make(self, data, tmp_path):
        model = super().make(data, tmp_path)
        model.default_task_ = "buy"          # two tasks: the contract ranks buy by default, as the baselines do
        return model


class TestInferenceModelFromASavedModel(RecommenderContract):
    def make(self, data, tmp_path):
        model = _multitask().fit(data)
        return InferenceModel.load(model.save(tmp_path / "model"), mmap_mode="r")


class TestPopularity(EstimatorContract):
    personalised = False

    def estimator(self):
        return PopularityRecommender(target="buy")


class TestAuxiliaryFirstRule(EstimatorContract):
    def estimator(self):
        return AuxiliaryFirstRule(target="buy")


class TestImplicitALS(EstimatorContract):
    def estimator(self):
        return ImplicitALSRecommender(target="buy", factors=2, regularization=0.01, iterations=10, random_state=0,
                                      num_threads=1)


class TestImplicitALSMerged(EstimatorContract):
    def estimator(self):
        return ImplicitALSRecommender(target="buy", factors=2, iterations=10, aux_weights={"cart": 0.3},
                                      random_state=0, num_threads=1)


class TestImplicitALSBonus(EstimatorContract):
    def estimator(self):
        return ImplicitALSRecommender(target="buy", factors=2, iterations=10, aux_bonus=0.5, random_state=0,
                                      num_threads=1)


class TestLinearSVM(EstimatorContract):
    def estimator(self):
        return LinearSVMRecommender(target="buy", n_negatives=4, alpha=1e-4, random_state=0)


class TestClustering(EstimatorContract):
    def estimator(self):
        return ClusteringRecommender(n_clusters=2, n_components=4, target="buy", random_state=0)
