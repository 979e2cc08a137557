"""Fold-in of new and changing users (and new items) with the fitted other side fixed; cold-start fallback."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData
from mtl_classic.foldin import fold_in_users
from mtl_classic.inference import InferenceModel
from mtl_classic.model import MultiTaskMF
from mtl_classic.tasks import Task


def _data(n_users=80, n_items=40, seed=0):
    """Planted shared factors: views are a dense, noisy view of the same preferences that drive purchases."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    S = P @ Q.T
    view = sp.csr_matrix((S + 0.3 * rng.normal(size=S.shape) > 0.3).astype(float) * rng.integers(1, 3, S.shape))
    buy = sp.csr_matrix((S > 1.4).astype(float))
    rating = sp.random(n_users, n_items, density=0.25, random_state=seed, format="csr")
    rating.data = np.clip(np.round(3 + (S[rating.nonzero()] + rng.normal(0, 0.3, rating.nnz))), 1, 5)
    liked = rating.copy()
    liked.data = (rating.data >= 4).astype(float)
    return MultiTaskData.from_matrices({"view": view, "buy": buy, "rating": rating, "liked": liked},
                                       user_ids=[f"u{i}" for i in range(n_users)],
                                       item_ids=[f"i{i}" for i in range(n_items)])


def _rows(data, users, tasks):
    """Per-user {task: {item id: value}} of the training data (explicit zeros included)."""
    out = []
    for u in users:
        out.append({t: dict(zip(data.item_map.external(data.matrices[t][u].indices).tolist(),
                                data.matrices[t][u].data.tolist())) for t in tasks})
    return out


def _rel_and_cos(a, b):
    rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return rel, cos


@pytest.fixture(scope="module")
def implicit_model():
    data = _data().subset_tasks(["view", "buy"])
    # no per-user cross-task deviations: the fold-in is then exactly the factor solve of the fit
    return MultiTaskMF(tasks=[Task("view", weight=0.5), Task("buy")], factors=6, iterations=250, solver="cholesky",
                       cross_per_user=False, random_state=0).fit(data)


@pytest.fixture(scope="module")
def mixed_model():
    tasks = [Task("view", weight=0.5), Task("buy"), Task("rating", kind="regression"), Task("liked", kind="binary")]
    return MultiTaskMF(tasks=tasks, factors=6, iterations=40, solver="cholesky", random_state=0).fit(_data())


def test_fold_in_of_training_users_reproduces_their_factors(implicit_model):
    # With implicit tasks only, a user's fold-in is one exact weighted least-squares solve against the fitted item
    # side: the fitted rows (solved against the item side of the previous sweep) agree to < 2% relative error.
    # (The fit must be converged for that: with per-user cross deviations, 80 sweeps left the objective still
    # falling and the fixed point 2.1% away; 250 sweeps bring it to 0.5%.)
    m = implicit_model
    data = m.data_
    folded = fold_in_users(m, _rows(data, range(data.n_users), data.task_names))
    rel, cos = _rel_and_cos(folded.params.user_factors, m.user_factors_)
    assert rel.max() < 0.02 and cos.min() > 0.9999, (rel.max(), cos.min())
    # and so the same recommendations
    users = list(range(data.n_users))
    a = folded.recommend(users, n=5, task="buy", filter_seen=False)[0]
    b = m.recommend(data.user_map.external(users), n=5, task="buy", filter_seen=False)[0]
    overlap = np.mean([len(set(x) & set(y)) / 5 for x, y in zip(a, b)])
    assert overlap > 0.95, overlap


def test_fold_in_with_bias_tasks_is_close(mixed_model):
    m = mixed_model
    data = m.data_
    folded = fold_in_users(m, _rows(data, range(data.n_users), data.task_names))
    rel, cos = _rel_and_cos(folded.params.user_factors, m.user_factors_)
    assert np.median(rel) < 0.05 and np.quantile(cos, 0.1) > 0.99, (np.median(rel), np.quantile(cos, 0.1))
    uu = np.arange(data.n_users)
    s_fold = folded.predict_indices("rating", np.repeat(uu, data.n_items), np.tile(np.arange(data.n_items),
                                                                                  data.n_users))
    s_fit = m.predict_indices("rating", np.repeat(uu, data.n_items), np.tile(np.arange(data.n_items), data.n_users))
    assert np.corrcoef(s_fold, s_fit)[0, 1] > 0.99


def test_fold_in_items_reproduces_training_item_factors(implicit_model, mixed_model):
    m = implicit_model
    q, b = m.fold_in_items({t: m.data_.matrices[t] for t in m.data_.task_names},
                         cross_item_weights=m.cross_item_weights_)
    rel, cos = _rel_and_cos(q, m.item_factors_)
    assert rel.max() < 0.02 and cos.min() > 0.9999, (rel.max(), cos.min())
    assert not b.any()     # implicit tasks have no biases
    m = mixed_model
    q, b = m.fold_in_items({t: m.data_.matrices[t] for t in m.data_.task_names}, n_sweeps=10,
                         cross_item_weights=m.cross_item_weights_)
    rel, cos = _rel_and_cos(q, m.item_factors_)
    assert np.median(rel) < 0.05 and np.quantile(cos, 0.1) > 0.99
    # a subset of tasks works too (e.g. a new item with views only)
    q_views, _ = m.fold_in_items({"view": m.data_.matrices["view"][:, :3]})
    assert q_views.shape == (3, 6) and np.isfinite(q_views).all()
    with pytest.raises(ValueError, match="rows"):
        m.fold_in_items({"view": m.data_.matrices["view"][:5]})


def test_views_only_user_gets_sensible_purchase_recommendations(mixed_model):
    # New users who only viewed: their purchase ranking (every task is predicted) must find their real purchases
    # far better than popularity does.
    m = mixed_model
    data = m.data_
    users = [u for u in range(data.n_users) if data.matrices["buy"][u].nnz]
    folded = fold_in_users(m, _rows(data, users, ["view"]))
    top = folded.recommend(list(range(len(users))), n=5, task="buy", filter_seen=False)[0]
    pop_top = np.argsort(-folded.popularity[folded.task_index["buy"]], kind="stable")[:5]
    hits, pop_hits = [], []
    for r, u in enumerate(users):
        bought = set(data.item_map.external(data.matrices["buy"][u].indices).tolist())
        hits.append(len(bought & set(top[r].tolist())) / min(5, len(bought)))
        pop_hits.append(len(bought & set(data.item_map.external(pop_top).tolist())) / min(5, len(bought)))
    assert np.mean(hits) > 0.6 and np.mean(hits) > np.mean(pop_hits) + 0.2, (np.mean(hits), np.mean(pop_hits))
    # the folded users' own views are their seen items
    viewed = folded.recommend([0], n=5, task="buy", filter_seen="view")[0][0]
    assert not set(viewed.tolist()) & set(_rows(data, [users[0]], ["view"])[0]["view"])


def test_cold_user_gets_the_popularity_fallback(mixed_model):
    m = mixed_model
    folded = fold_in_users(m, [{}, {"view": ["i1", "i2"]}], user_ids=["cold", "warm"])
    assert folded.cold.tolist() == [True, False]
    assert not folded.params.user_factors[0].any()
    ids, scores = folded.recommend("cold", n=5, task="buy")
    pop = folded.popularity[folded.task_index["buy"]]
    assert np.allclose(scores, np.sort(pop)[::-1][:5])
    assert np.allclose(folded.predict("view", ["cold"], ["i3"]), folded.popularity[folded.task_index["view"], 3])
    t = folded.task_index["rating"]
    assert np.allclose(folded.predict("rating", ["cold"], ["i3"]), m.intercepts_[t] + m.item_biases_[t, 3])
    assert np.isfinite(folded.recommend("warm", n=5, task="buy")[1]).all()


def test_changing_user_merges_history_with_fresh_interactions(mixed_model):
    m = mixed_model
    data = m.data_
    fresh = {"view": ["i0", "i1"], "liked": {"i5": 0.0}}
    merged = fold_in_users(m, [fresh], base_users=["u3"])
    explicit = _rows(data, [3], data.task_names)[0]
    for item in fresh["view"]:
        explicit["view"][item] = explicit["view"].get(item, 0.0) + 1.0
    explicit["liked"]["i5"] = 0.0
    direct = fold_in_users(m, [explicit])
    assert np.allclose(merged.params.user_factors, direct.params.user_factors)
    assert np.allclose(merged.params.user_biases, direct.params.user_biases)
    # fresh views count as seen
    ids = merged.recommend([0], n=10, task="view")[0][0]
    assert not {"i0", "i1"} & set(ids.tolist())


def test_fold_in_errors(mixed_model):
    m = mixed_model
    with pytest.raises(KeyError, match="unknown"):
        fold_in_users(m, {"view": ["nope"]})
    ok = fold_in_users(m, {"view": ["nope", "i1"]}, unknown_items="ignore")
    assert ok.cold is None          # the known item was kept: the user is warm
    with pytest.raises(ValueError, match="unknown task"):
        fold_in_users(m, {"click": ["i1"]})
    with pytest.raises(ValueError, match="base_users"):
        fold_in_users(m, [{}, {}], base_users=["u1"])
    assert isinstance(fold_in_users(m, {"view": ["i1"]}), InferenceModel)


@pytest.mark.parametrize("task, value, message", [
    ("view", np.nan, "interactions\\['view'\\] has 1 NaN or infinite values"),
    ("view", -2.0, "interactions\\['view'\\] is implicit but has 1 negative values"),
    ("rating", np.inf, "interactions\\['rating'\\] has 1 NaN or infinite values"),
    ("liked", 2.0, "interactions\\['liked'\\] is binary but has 1 labels outside"),
    # finite but huge: the squared loss overflowed inside the compiled row solve (a SystemError, a 500 on the server)
    ("view", 1e308, "interactions\\['view'\\] has 1 values of magnitude above 1e\\+150"),
    ("rating", -1e200, "interactions\\['rating'\\] has 1 values of magnitude above"),
])
def test_fold_in_rejects_bad_values_naming_the_task(mixed_model, task, value, message):
    # a NaN count used to give NaN factors silently; a negative count, a negative confidence
    m = mixed_model
    n_users, n_items = m.user_factors_.shape[0], m.item_factors_.shape[0]
    new_user = sp.csr_matrix(([1.0, value], ([0, 0], [0, 1])), shape=(1, n_items))
    with pytest.raises(ValueError, match="fold_in: " + message):
        m.fold_in({task: new_user})
    new_item = sp.csr_matrix(([1.0, value], ([0, 1], [0, 0])), shape=(n_users, 1))
    with pytest.raises(ValueError, match="fold_in_items: " + message):
        m.fold_in_items({task: new_item})
    with pytest.raises(ValueError, match="columns"):
        m.fold_in({task: new_item})
    with pytest.raises(ValueError, match="unknown task 'click'"):
        m.fold_in({"click": new_user})


def test_fit_and_events_reject_values_whose_squares_overflow(mixed_model):
    data = _data()
    m = data.matrices["rating"].copy()
    m.data[0] = 1e200
    big = MultiTaskData.from_matrices({**data.matrices, "rating": m}, user_ids=data.user_map.ids,
                                      item_ids=data.item_map.ids)
    with pytest.raises(ValueError, match="task 'rating' has 1 values of magnitude above"):
        MultiTaskMF(tasks=[Task("view"), Task("rating", kind="regression")], factors=4, iterations=2,
                    show_progress=False).fit(big.subset_tasks(["view", "rating"]))
    item = mixed_model.data_.item_map.ids[0]
    with pytest.raises(ValueError, match="fold_in_users: task 'view' has 1 values of magnitude above"):
        fold_in_users(mixed_model, {"view": {item: 1e308}})
