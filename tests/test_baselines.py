"""Tests of mtl_classic.baselines: hand-checked cases and each baseline's own rules (the contract every
recommender passes is tests/test_contract.py).

Fast and self-contained (synthetic data only; nothing under ../shared is read).
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from mtl_classic.baselines import (AuxiliaryFirstRule, ClusteringRecommender, ImplicitALSRecommender,
                                   LinearSVMRecommender, PopularityRecommender)
from mtl_classic.baselines._common import int_seed, pair_lookup
from mtl_classic.data import MultiTaskData

from _synthetic import N_BLOCK_ITEMS, N_BLOCK_USERS


def test_unknown_target_is_rejected(block):
    data, _ = block
    for make in (lambda: AuxiliaryFirstRule(target="nope"), lambda: ImplicitALSRecommender(target="nope"),
                 lambda: PopularityRecommender(target="nope"), lambda: ClusteringRecommender(target="nope"),
                 lambda: LinearSVMRecommender(target="nope")):
        with pytest.raises(ValueError, match="nope"):
            make().fit(data)


def test_bad_parameters_raise_named(block):
    data, _ = block
    with pytest.raises(ValueError, match="'factors' parameter of ImplicitALSRecommender"):
        ImplicitALSRecommender(factors=0).fit(data)
    with pytest.raises(ValueError, match="'n_clusters' parameter of ClusteringRecommender"):
        ClusteringRecommender(n_clusters=0).fit(data)
    with pytest.raises(ValueError, match="'aux_weights' parameter"):
        ImplicitALSRecommender(aux_weights={"nope": 1.0}).fit(data)


# ---------------------------------------------------------------------------------------------------------------
# hand-checked cases
# ---------------------------------------------------------------------------------------------------------------
def _tiny():
    # 3 users x 5 items.   buy: u0 {0, 1}, u1 {1}, u2 {1, 2};   cart: u0 {3}, u1 {0, 4}, u2 {2, 4}
    buy = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [0, 1, 1, 0, 0]], dtype=float))
    cart = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 1], [0, 0, 1, 0, 1]], dtype=float))
    return MultiTaskData.from_matrices({"buy": buy, "cart": cart}, user_ids=["a", "b", "c"],
                                       item_ids=[10, 11, 12, 13, 14])


def test_popularity_hand_checked():
    model = PopularityRecommender().fit(_tiny())
    assert model.default_task_ == "buy"
    np.testing.assert_array_equal(model.popularity_["buy"], [1, 3, 1, 0, 0])
    np.testing.assert_array_equal(model.popularity_["cart"], [1, 0, 1, 1, 2])
    ids, _ = model.recommend(["a"], n=3, task="cart", filter_seen=True)
    assert list(np.asarray(ids).ravel()) == [14, 10, 12]     # 14 (2 users), then 10 and 12 (1 each, index order)
    ids, _ = model.recommend(["b"], n=2, task="buy", filter_seen=False)
    assert list(np.asarray(ids).ravel())[0] == 11


def test_popularity_counts_explicit_zeros_as_observations():
    # u0: item 0 labelled 0, item 1 labelled 1; u1: item 0 labelled 0
    m = sp.csr_matrix((np.array([0.0, 1.0, 0.0]), np.array([0, 1, 0]), np.array([0, 2, 3])), shape=(2, 3))
    data = MultiTaskData.from_matrices({"liked": m})
    np.testing.assert_array_equal(PopularityRecommender().fit(data).popularity_["liked"], [2, 1, 0])


def test_rule_hand_checked():
    data = _tiny()
    model = AuxiliaryFirstRule(target="buy").fit(data)
    assert model.auxiliary_ == ["cart"]
    # user b: carted {10, 14}, bought {11}. Candidates 10 (buy pop 1), 14 (buy pop 0) first, then the rest by buy
    # popularity: 11 (3), 12 (1, cart pop 1), 13 (0, cart pop 1).
    ids, _ = model.recommend(["b"], n=5, task="buy", filter_seen=False)
    assert list(np.asarray(ids).ravel()) == [10, 14, 11, 12, 13]
    # user c: carted {12, 14} but 12 is already bought, so only 14 is a candidate; with seen items filtered:
    ids, _ = model.recommend(["c"], n=3, task="buy", filter_seen=True)
    assert list(np.asarray(ids).ravel()) == [14, 10, 13]    # 10 and 13 tie on buy pop 1 vs 0 -> 10 first
    # user a: carted 13 (buy pop 0) comes before item 11 (buy pop 3)
    s = model.score_items("buy", np.array([0]))[0]
    assert s[3] > s[1] > s[2]


def test_rule_explicit_auxiliary_list():
    data = _tiny()
    with pytest.raises(ValueError, match="'auxiliary' parameter"):
        AuxiliaryFirstRule(target="buy", auxiliary=["buy"]).fit(data)
    model = AuxiliaryFirstRule(target="cart", auxiliary=["buy"]).fit(data)
    s = model.score_items("cart", np.array([0]))[0]      # a bought {10, 11}, carted {13}: 10, 11 are candidates
    assert set(np.argsort(-s)[:2]) == {0, 1}


def test_als_matches_implicit_used_directly(block):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    data, _ = block
    params = dict(factors=6, regularization=0.05, iterations=8, alpha=2.0)
    ours = ImplicitALSRecommender(target="buy", random_state=3, num_threads=1, **params).fit(data)
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(random_state=int_seed(np.random.default_rng(3)), num_threads=1,
                                      dtype=np.float32, **params)
        ref.fit(sp.csr_matrix(data.matrices["buy"], dtype=np.float32), show_progress=False)
    np.testing.assert_allclose(ours.user_factors_, ref.user_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.item_factors_, ref.item_factors, rtol=1e-5, atol=1e-6)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(ours.score_items("buy", users), ref.user_factors @ ref.item_factors.T, rtol=1e-5,
                               atol=1e-6)
    # implicit's own top-N agrees with ours (seen items filtered on both sides)
    ref_ids, _ = ref.recommend(users[:5], sp.csr_matrix(data.matrices["buy"][:5], dtype=np.float32), N=3,
                               filter_already_liked_items=True)
    our_ids, _ = ours.recommend(list(data.user_map.external(users[:5])), n=3, task="buy", filter_seen=True)
    np.testing.assert_array_equal(np.asarray(our_ids), data.item_map.external(ref_ids.ravel()).reshape(5, 3))


def test_als_merged_matrix_and_bonus(block):
    data, _ = block
    merged = ImplicitALSRecommender(target="buy", factors=3, iterations=2, aux_weights={"cart": 0.25},
                                    random_state=0, num_threads=1).fit(data)
    expected = data.matrices["buy"] + 0.25 * data.matrices["cart"]
    np.testing.assert_allclose(merged.train_matrix_.toarray(), expected.toarray(), rtol=1e-6)
    plain = ImplicitALSRecommender(target="buy", factors=3, iterations=2, random_state=0, num_threads=1).fit(data)
    bonus = clone(plain).set_params(aux_bonus=2.0).fit(data)
    users = np.arange(data.n_users)
    diff = bonus.score_items("buy", users) - plain.score_items("buy", users)
    np.testing.assert_allclose(diff, 2.0 * (data.matrices["cart"].toarray() > 0), atol=1e-5)


def test_svm_closed_form_equals_decision_function(block):
    data, _ = block
    rng = np.random.default_rng(1)
    feats = rng.random((data.n_items, 3))
    model = LinearSVMRecommender(target="buy", n_negatives=2, alpha=1e-4, random_state=0).fit(data,
                                                                                              item_features=feats)
    assert set(model.estimators_) == {"cart", "buy"}
    users = np.repeat(np.arange(data.n_users), data.n_items)
    items = np.tile(np.arange(data.n_items), data.n_users)
    for task in ("buy", "cart"):
        X = model._pair_features(task, users, items)
        ref = model.estimators_[task].decision_function(X).reshape(data.n_users, data.n_items)
        np.testing.assert_allclose(model.score_items(task, np.arange(data.n_users)), ref, rtol=1e-9, atol=1e-9)
    # the cart evidence is what separates bought-from-cart pairs: its weight is positive for the buy model
    assert model.coef_blocks_["buy"]["cross"]["cart"] > 0
    # cross_tasks restricts block 5
    none = LinearSVMRecommender(target="buy", tasks=["buy"], cross_tasks=[], random_state=0).fit(data)
    assert none.coef_blocks_["buy"]["cross"] == {}
    with pytest.raises(ValueError, match="nope"):
        LinearSVMRecommender(cross_tasks=["nope"]).fit(data)


def test_svm_negative_sampling_avoids_observed_pairs(block):
    from mtl_classic.baselines.svm import _sample_negatives
    data, _ = block
    pat = data.matrices["cart"]
    users = np.repeat(np.arange(data.n_users), 3)
    nu, ni = _sample_negatives(pat, users, 5, np.random.default_rng(0))
    assert len(nu) == 5 * len(users)
    assert not np.any(pair_lookup(pat, nu, ni) > 0)


def test_svm_binary_and_regression_tasks():
    from mtl_classic import Task
    rng = np.random.default_rng(0)
    dense = rng.random((20, 15)) < 0.4
    planted = np.clip(np.round(3 + rng.normal(0, 1, (20, 1)) + rng.normal(0, 1, (1, 15))), 1, 5)  # user + item bias
    rating = sp.csr_matrix(np.where(dense, planted, 0.0))
    liked = rating.copy()
    liked.data = (liked.data >= 4).astype(float)          # explicit zeros are labels 0
    data = MultiTaskData.from_matrices({"rating": rating, "liked": liked})
    model = LinearSVMRecommender(tasks=[Task("rating", kind="regression"), Task("liked", kind="binary")],
                                 alpha=1e-3, max_iter=200, random_state=0).fit(data)
    assert model.task_kinds_ == {"rating": "regression", "liked": "binary"}
    assert model.n_train_pairs_["liked"] == data.matrices["liked"].nnz        # no sampling for binary tasks
    u, i = data.matrices["rating"].nonzero()
    pred = model.predict_indices("rating", u, i)
    np.testing.assert_allclose(pred, model.score_items("rating", np.arange(20))[u, i])
    assert np.corrcoef(pred, data.matrices["rating"].data)[0, 1] > 0.8


def test_clustering_recovers_blocks(block):
    data, _ = block
    model = ClusteringRecommender(n_clusters=2, n_components=4, target="buy", random_state=0).fit(data)
    labels = model.labels_
    assert len(set(labels[:N_BLOCK_USERS])) == 1 and len(set(labels[N_BLOCK_USERS:])) == 1
    assert labels[0] != labels[-1]
    # cluster popularity counts the cluster's users
    c = labels[0]
    np.testing.assert_array_equal(model.cluster_popularity_["cart"][c],
                                  np.r_[np.full(N_BLOCK_ITEMS, N_BLOCK_USERS), np.zeros(N_BLOCK_ITEMS)])
