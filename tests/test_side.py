"""Side matrices (issue 18, first part): item x attribute and user x query matrices that share one side's factors,
fitted by the same alternating solver, and new items folded in from their attributes alone."""
import copy
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from mtl_classic import MultiTaskData, MultiTaskMF, Task
from mtl_classic.data.splits import random_holdout
from mtl_classic.evaluation import evaluate_ranking
from mtl_classic.solver import als
from mtl_classic.solver.side import SideTerm, side_objective


def _planted(seed=0, n_users=300, n_items=240, k=4, n_attrs=16, noise_attrs=False):
    """Buys from planted factors; item attributes from the same item factors (or independent noise)."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(n_items, k))
    scores = P @ Q.T
    buy = sp.csr_matrix((scores > np.quantile(scores, 0.95)).astype(float))
    G = rng.normal(size=(n_attrs, k))
    source = rng.normal(size=(n_items, k)) if noise_attrs else Q
    attrs = sp.csr_matrix((source @ G.T > 1.0).astype(float))
    return buy, attrs, scores


def _data(buy, attrs=None, queries=None):
    data = MultiTaskData.from_matrices({"buy": buy})
    item_side = None if attrs is None else {"genre": (attrs, [f"g{j}" for j in range(attrs.shape[1])])}
    user_side = None if queries is None else {"query": (queries, [f"q{j}" for j in range(queries.shape[1])])}
    return data.with_side(user_side=user_side, item_side=item_side)


def _model(**kw):
    params = dict(factors=8, iterations=10, random_state=0, show_progress=False)
    params.update(kw)
    return MultiTaskMF(**params)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_objective_never_increases_with_side_matrices_on_both_sides(solver):
    buy, attrs, _ = _planted()
    queries = sp.csr_matrix((np.random.default_rng(1).random((buy.shape[0], 10)) < 0.2).astype(float))
    tasks = [Task("buy"), Task("genre", side="item", weight=0.5), Task("query", side="user", weight=0.3)]
    m = _model(tasks=tasks, solver=solver, dtype="float64", iterations=15).fit(_data(buy, attrs, queries))
    steps = np.diff(m.loss_history_)
    assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), steps
    assert m.loss_history_[-1] < 0.5 * m.loss_history_[0]
    assert sorted(m.side_factors_) == ["genre", "query"]
    assert m.side_factors_["genre"].shape == (attrs.shape[1], 8)
    assert m.side_factors_["query"].shape == (10, 8)


def test_side_objective_is_the_direct_sum_and_its_column_factors_are_optimal():
    buy, attrs, _ = _planted()
    m = _model(tasks=[Task("buy"), Task("genre", side="item", weight=0.7)], solver="cholesky",
               dtype="float64").fit(_data(buy, attrs))
    Q, V = m.item_factors_, m.side_factors_["genre"]
    reg, nreg = m.regularization, m.negative_regularization

    def value(V_):
        term = SideTerm("genre", True, 0.7, attrs, V_)
        return side_objective([term], m.user_factors_, Q, reg, nreg)[0]

    direct = (0.7 * np.sum((attrs.toarray() - Q @ V.T) ** 2) + (reg + nreg * 0.7 * Q.shape[0]) * np.sum(V ** 2)
              + nreg * 0.7 * attrs.shape[1] * np.sum(Q ** 2))
    assert value(V) == pytest.approx(direct, rel=1e-10)
    # V is updated last in each sweep for the final Q: central differences of the side loss in V vanish
    eps, rng = 1e-5, np.random.default_rng(0)
    for _ in range(5):
        D = rng.normal(size=V.shape)
        slope = (value(V + eps * D) - value(V - eps * D)) / (2 * eps)
        assert abs(slope) < 1e-5 * (1 + abs(value(V))), slope


def test_a_row_solve_with_side_terms_minimises_the_objective_in_that_row():
    buy, attrs, _ = _planted(seed=2)
    tasks = [als.prepare_task_arrays("buy", "implicit", buy, alpha=3.0)]
    rng = np.random.default_rng(0)
    params = als.init_params(tasks, buy.shape[0], buy.shape[1], 5, rng, 0.1, dtype=np.float64)
    terms = [SideTerm("genre", True, 0.5, attrs, rng.normal(0, 0.3, (attrs.shape[1], 5)))]
    config = als.SolverConfig(regularization=0.1, negative_regularization=1e-3, solver="cholesky", fit_heads=False)
    _assert_item_rows_minimise(tasks, params, config, terms)


def _assert_item_rows_minimise(tasks, params, config, terms):
    """Solve the item rows with the side terms, then check by central differences that a few rows are at the
    objective's minimum (the task's terms plus the side matrices')."""
    als.solve_side(tasks, params, True, config, side_terms=terms)

    def total():
        return (als.objective(tasks, params, config)[0]
                + side_objective(terms, params.user_factors, params.item_factors, 0.1, 1e-3)[0])

    base, eps = total(), 1e-5
    for i in (0, 7, 100):
        for d in range(5):
            params.item_factors[i, d] += eps
            up = total()
            params.item_factors[i, d] -= 2 * eps
            down = total()
            params.item_factors[i, d] += eps
            assert abs(up - down) / (2 * eps) < 1e-4 * (1 + abs(base))


def test_new_items_ranked_from_their_attributes_beat_popularity_when_attributes_carry_the_factors():
    buy, attrs, scores = _planted(n_users=400, n_items=300, n_attrs=24)
    cold = np.arange(270, 300)                       # 30 items never seen in training
    warm = np.setdiff1d(np.arange(300), cold)
    data = _data(sp.csr_matrix(buy[:, warm]), sp.csr_matrix(attrs[warm]))
    m = _model(tasks=[Task("buy"), Task("genre", side="item")], factors=8, iterations=15).fit(data)
    q_new, _ = m.fold_in_items({"genre": sp.csr_matrix(attrs[cold])})
    s_new = m.user_factors_ @ (m.head_weights_[0] * q_new).T
    truth = scores[:, cold]
    # per user, the share of the planted top-3 cold items among the model's top-3 (a random order gets 0.1)
    top_model = np.argsort(-s_new, axis=1)[:, :3]
    top_true = np.argsort(-truth, axis=1)[:, :3]
    hit = np.mean([len(set(a) & set(b)) / 3 for a, b in zip(top_model, top_true)])
    # popularity cannot order items it has never seen: every cold item has the same (zero) count
    assert hit > 0.3, hit
    # and attributes alone give the cold items factors close to the ones a fit with their interactions gives
    full = _model(tasks=[Task("buy"), Task("genre", side="item")], factors=8, iterations=15).fit(_data(buy, attrs))
    s_full = full.user_factors_ @ (full.head_weights_[0] * full.item_factors_[cold]).T
    assert np.corrcoef(s_full.ravel(), truth.ravel())[0, 1] > 0.5


def test_a_noise_side_matrix_costs_the_warm_target_little():
    buy, noise, _ = _planted(seed=3, noise_attrs=True)
    data = _data(buy, noise)
    split = random_holdout(data, "buy", test_fraction=0.2, random_state=0)
    assert "genre" in split.train.side                       # splits keep the side matrices
    with_side = _model(tasks=[Task("buy"), Task("genre", side="item", weight=0.1)], iterations=15).fit(split.train)
    without = _model(tasks=[Task("buy")], iterations=15).fit(MultiTaskData.from_matrices(split.train.matrices))
    a = evaluate_ranking(with_side, split.train, split.test, "buy", ks=(10,))["NDCG@10"]
    b = evaluate_ranking(without, split.train, split.test, "buy", ks=(10,))["NDCG@10"]
    assert a >= 0.9 * b, (a, b)


def test_side_matrices_from_a_dataframe_count_unknown_ids_and_models_clone():
    buy, _, _ = _planted()
    data = MultiTaskData.from_matrices({"buy": buy})
    frame = pd.DataFrame({"item": [0, 1, 1, 5, 9999], "genre": ["a", "a", "b", "c", "a"]})
    data = data.with_side(item_side={"genre": frame})
    side = data.side["genre"]
    assert side.matrix.shape == (buy.shape[1], 3) and side.matrix.nnz == 4
    assert data.report["side_rows_dropped"] == {"genre": 1}
    model = _model(tasks=[Task("buy"), Task("genre", side="item")])
    assert clone(model).get_params()["tasks"][1].side == "item"
    model.fit(data)
    assert [t.name for t in model.side_tasks_] == ["genre"]
    assert model.recommend([0], n=3, task="buy")[0].shape == (1, 3)


@pytest.mark.parametrize("make, message", [
    (lambda d: d.with_side(item_side={"genre": (sp.csr_matrix((3, 2)), ["a", "b"])}), "has shape"),
    (lambda d: d.with_side(item_side={"buy": (sp.csr_matrix(np.ones((d.n_items, 1))), ["a"])}), "already a task"),
    (lambda d: d.with_side(item_side={"genre": (sp.csr_matrix(np.full((d.n_items, 1), np.nan)), ["a"])}), "NaN"),
    (lambda d: d.with_side(user_side={"q": [1, 2]}), "must be a"),
    (lambda d: d.with_side(item_side={"g": pd.DataFrame({"i": [0], "g": ["a"], "v": ["x"]})}), "must hold numbers"),
    (lambda d: d.with_side(item_side={"g": pd.DataFrame({"i": [0], "g": ["a"], "v": [np.nan]})}), "NaN"),
    (lambda d: d.with_side(item_side={"g": pd.DataFrame({"i": [0, None], "g": ["a", "b"]})}), "missing ids"),
])
def test_bad_side_matrices_are_named(make, message):
    buy, _, _ = _planted()
    with pytest.raises(ValueError, match=message):
        make(MultiTaskData.from_matrices({"buy": buy}))


@pytest.mark.parametrize("tasks, message", [
    ([Task("buy"), Task("genre", side="items")], "side must be"),
    ([Task("buy"), Task("genre", side="item", negative_weight=3.0)], "do not apply"),
    ([Task("buy"), Task("genre", side="item", alpha=3.0, biases=True)], "not both"),
    ([Task("buy"), Task("genre", side="item", alpha=-1.0)], "alpha must be >= 0"),
    ([Task("buy"), Task("genre", side="user")], "is on the item side"),
    ([Task("buy"), Task("tags", side="item"), Task("genre", side="item")], "not a side matrix"),
    ([Task("buy")], "does not name"),
])
def test_bad_side_tasks_are_named(tasks, message):
    buy, attrs, _ = _planted()
    with pytest.raises(ValueError, match=message):
        _model(tasks=tasks).fit(_data(buy, attrs))


def test_side_models_round_trip_and_refuse_what_they_cannot_do(tmp_path):
    buy, attrs, _ = _planted()
    queries = sp.csr_matrix((np.random.default_rng(1).random((buy.shape[0], 10)) < 0.2).astype(float))
    tasks = [Task("buy"), Task("genre", side="item", weight=0.5), Task("query", side="user")]
    m = _model(tasks=tasks, iterations=3).fit(_data(buy, attrs, queries))
    m.save(tmp_path / "m")
    loaded = MultiTaskMF.load(tmp_path / "m")
    assert [t.name for t in loaded.side_tasks_] == ["genre", "query"]
    for name in ("genre", "query"):
        np.testing.assert_array_equal(loaded.side_factors_[name], m.side_factors_[name])
        assert (loaded.data_.side[name].matrix != m.data_.side[name].matrix).nnz == 0
    assert loaded.data_.side["genre"].columns.to_list() == m.data_.side["genre"].columns.to_list()
    new = sp.csr_matrix(attrs[:4])
    np.testing.assert_allclose(loaded.fold_in_items({"genre": new})[0], m.fold_in_items({"genre": new})[0])
    # a loaded model continues its fit (warm start) with its side matrices
    more = loaded.set_params(warm_start=True, iterations=1).fit(loaded.data_)
    assert more.loss_history_[-1] <= more.loss_history_[0] * (1 + 1e-6)
    with pytest.raises(ValueError, match="it cannot fold in users"):
        m.fold_in({"genre": sp.csr_matrix((1, attrs.shape[1]))})
    with pytest.raises(ValueError, match="columns"):
        m.fold_in_items({"genre": sp.csr_matrix((1, attrs.shape[1] + 1))})
    from mtl_classic.tasks import resolve_tasks
    with pytest.raises(ValueError, match="split the side tasks off first"):
        resolve_tasks([Task("buy"), Task("genre", side="item")], MultiTaskData.from_matrices({"buy": buy}))


def test_cold_rows_fold_in_from_their_side_matrix_alone_in_closed_form():
    buy, attrs, _ = _planted(seed=4)
    m = _model(tasks=[Task("buy"), Task("genre", side="item", weight=0.6)], dtype="float64").fit(_data(buy, attrs))
    new = sp.csr_matrix(attrs[:6])
    q, biases = m.fold_in_items({"genre": new})
    V, k = m.side_factors_["genre"], m.factors
    penalty = m.regularization + m.negative_regularization * 0.6 * attrs.shape[1]
    mean = m.item_factors_.mean(axis=0)   # the penalty's centre: the fitted items' mean
    expected = np.linalg.solve(0.6 * V.T @ V + penalty * np.eye(k), (0.6 * (new @ V) + penalty * mean).T).T
    np.testing.assert_allclose(q, expected, rtol=1e-8, atol=1e-12)
    assert np.all(biases == 0)
    # an item whose side row is empty (all its attributes 0: still evidence under the uniform loss) solves the
    # same system with the prior's pull alone on its right-hand side
    empty, _ = m.fold_in_items({"genre": sp.csr_matrix((2, attrs.shape[1]))})
    np.testing.assert_allclose(empty, np.tile(np.linalg.solve(0.6 * V.T @ V + penalty * np.eye(k), penalty * mean),
                                              (2, 1)), rtol=1e-8)
    # with interactions too, the pair tasks' terms join the solve: the answer differs from the side-only one
    both, _ = m.fold_in_items({"genre": new, "buy": sp.csr_matrix(buy[:, :6])})
    assert not np.allclose(both, q)


def test_the_serving_model_takes_new_items_by_their_attributes(tmp_path):
    from mtl_classic.inference import InferenceModel
    buy, attrs, _ = _planted(seed=5)
    m = _model(tasks=[Task("buy"), Task("genre", side="item", weight=0.8)], dtype="float64").fit(_data(buy, attrs))
    rows = [["g1", "g4"], ["g2"], []]
    dense = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 1], [1, 4, 2])), shape=(3, attrs.shape[1]))
    expected, _ = m.fold_in_items({"genre": dense})
    m.save(tmp_path / "m")
    for served in (InferenceModel.from_model(m), InferenceModel.load(tmp_path / "m")):
        bigger = served.with_items(["new-a", "new-b", "new-c"], {"genre": rows})
        assert bigger.n_items == served.n_items + 3
        np.testing.assert_allclose(bigger.params.item_factors[-3:], expected, rtol=1e-8, atol=1e-12)
        # the new items are scored by the same formula: a user's factor scores on them, nothing else
        users = np.arange(5)
        new_scores = bigger.score_items("buy", users)[:, -3:]
        np.testing.assert_allclose(new_scores, m.user_factors_[users] @ (m.head_weights_[0] * expected).T
                                   + m.intercepts_[0], rtol=1e-8, atol=1e-10)
        ids, _ = bigger.recommend([0], n=bigger.n_items, task="buy", filter_seen=False)
        assert {"new-a", "new-b", "new-c"} <= set(np.ravel(ids).tolist())
    with pytest.raises(KeyError):
        served.with_items(["x"], {"genre": [["no-such-genre"]]})
    with pytest.raises(ValueError, match="new, unique"):
        served.with_items([0], {"genre": [["g1"]]})
    with pytest.raises(ValueError, match="not an item side matrix"):
        served.with_items(["x"], {"tags": [["g1"]]})


def test_the_command_line_ranks_new_items_given_by_their_attributes(tmp_path, capsys):
    import json
    from mtl_classic.cli import main
    buy, attrs, _ = _planted(seed=6)
    m = _model(tasks=[Task("buy"), Task("genre", side="item")]).fit(_data(buy, attrs))
    m.save(tmp_path / "m")
    csv_path = tmp_path / "new.csv"
    csv_path.write_text("item,side,column\n9001,genre,g1\n9001,genre,g3\n9002,genre,g2\n")
    n = buy.shape[1] + 2
    assert main(["recommend", "--model", str(tmp_path / "m"), "--user", "0", "-n", str(n), "--filter-seen",
                 "false", "--new-items", str(csv_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {9001, 9002} <= set(out["items"]) and len(out["items"]) == n
    bad = tmp_path / "bad.csv"
    bad.write_text("item,side,column\n9001,colour,red\n")
    assert main(["recommend", "--model", str(tmp_path / "m"), "--user", "0", "--new-items", str(bad)]) != 0
    assert "not an item side matrix" in capsys.readouterr().err


def test_new_items_are_scored_for_a_user_without_changing_the_served_model():
    from mtl_classic.inference import InferenceModel
    buy, attrs, _ = _planted(seed=7)
    m = _model(tasks=[Task("buy"), Task("genre", side="item")], dtype="float64").fit(_data(buy, attrs))
    served = InferenceModel.from_model(m)
    scores = served.score_new_items(3, ["a", "b"], {"genre": [["g0", "g5"], ["g7"]]}, task="buy")
    bigger = served.with_items(["a", "b"], {"genre": [["g0", "g5"], ["g7"]]})
    np.testing.assert_allclose(scores, bigger.score_items("buy", [3])[0, -2:], rtol=1e-8)
    assert served.n_items == buy.shape[1]


def _wait_ready(client, seconds=20):
    """Wait until the loopback server answers /ready with 200."""
    deadline = time.monotonic() + seconds
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_server_ranks_new_items_given_by_their_attributes(tmp_path):
    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    import httpx
    from test_serving import running   # the serving tests' real uvicorn server on 127.0.0.1
    from mtl_classic.inference import InferenceModel
    from mtl_classic.serving import create_app
    buy, attrs, _ = _planted(seed=8)
    m = _model(tasks=[Task("buy"), Task("genre", side="item")]).fit(_data(buy, attrs))
    m.save(tmp_path / "m")
    expected = InferenceModel.load(tmp_path / "m").score_new_items(2, ["x", "y", "z"],
                                                                   {"genre": [["g1"], ["g2", "g3"], ["g9"]]})
    app = create_app(path=str(tmp_path / "m"), max_n=10, max_pairs=20, blas_threads=None)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        _wait_ready(client)
        body = {"user": 2, "task": "buy", "n": 2, "items": [{"item": "x", "side": {"genre": ["g1"]}},
                                                           {"item": "y", "side": {"genre": ["g2", "g3"]}},
                                                           {"item": "z", "side": {"genre": ["g9"]}}]}
        r = client.post("/items/rank", json=body)
        assert r.status_code == 200, r.text
        order = np.argsort(-expected, kind="stable")[:2]
        assert r.json()["items"] == [["x", "y", "z"][j] for j in order]
        np.testing.assert_allclose(r.json()["scores"], expected[order], rtol=1e-5)
        bad_requests = ((dict(body, user=10 ** 6), 404),
                        (dict(body, items=[{"item": "x", "side": {"nope": ["a"]}}]), 400),
                        (dict(body, items=[{"item": "x", "side": {"genre": ["no-such"]}}]), 404),
                        (dict(body, items=[{"item": 0, "side": {"genre": ["g1"]}}]), 400),
                        (dict(body, items=[]), 400))
        for bad, status in bad_requests:
            r = client.post("/items/rank", json=bad)
            assert r.status_code == status, (bad, r.text)
            assert "error" in r.json()
        assert client.get("/health").json()["n_items"] == buy.shape[1]   # nothing stored


def test_an_item_level_target_is_a_one_column_side_matrix_and_predict_reads_it():
    buy, _, scores = _planted(seed=9, n_users=400, n_items=300)
    rng = np.random.default_rng(0)
    popularity = np.log1p(np.asarray(buy.sum(axis=0)).ravel()) + rng.normal(0, 0.05, buy.shape[1])
    sales = (popularity - popularity.mean())[:, None]            # centred: side matrices have no intercept
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(item_side={"sales": (sales, ["log_sales"])})
    m = _model(tasks=[Task("buy"), Task("sales", side="item", weight=5.0)], iterations=15).fit(data)
    items = np.arange(buy.shape[1])
    predicted = m.predict("sales", items, ["log_sales"] * len(items))
    assert np.corrcoef(predicted, sales.ravel())[0, 1] > 0.8
    with pytest.raises(KeyError):
        m.predict("sales", [0], ["no-such-column"])


def test_a_slim_artifact_keeps_what_cold_items_need(tmp_path):
    from mtl_classic.inference import InferenceModel
    buy, attrs, _ = _planted(seed=10)
    m = _model(tasks=[Task("buy"), Task("genre", side="item")]).fit(_data(buy, attrs))
    m.save(tmp_path / "slim", slim=True, dtype="float32")
    served = InferenceModel.load(tmp_path / "slim")
    np.testing.assert_allclose(served.new_item_factors(["n1"], {"genre": [["g2", "g3"]]}),
                               InferenceModel.from_model(m).new_item_factors(["n1"], {"genre": [["g2", "g3"]]}),
                               rtol=1e-4, atol=1e-6)
    folded = served.with_users(np.zeros((1, m.factors)), np.zeros((1, 1)), {})
    assert folded.side.keys() == served.side.keys()
    # side entries written before column intercepts existed (4-tuples) read as intercepts 0
    old_style = InferenceModel(served.tasks, served.user_ids, served.item_ids, served.params, served.patterns,
                               served.popularity, side={n: e[:4] for n, e in served.side.items()},
                               side_penalty=served.side_penalty)
    np.testing.assert_array_equal(old_style.side["genre"][4], np.zeros(attrs.shape[1]))
    np.testing.assert_allclose(old_style.new_item_factors(["n1"], {"genre": [["g2"]]}),
                               served.new_item_factors(["n1"], {"genre": [["g2"]]}), rtol=1e-12)
    with pytest.raises(Exception, match="slim"):
        MultiTaskMF.load(tmp_path / "slim")


def test_early_stopping_keeps_the_side_factors_of_the_best_sweep():
    buy, attrs, _ = _planted(seed=11)
    split = random_holdout(_data(buy, attrs), "buy", test_fraction=0.2, random_state=0)
    tasks = [Task("buy"), Task("genre", side="item")]
    m = _model(tasks=tasks, iterations=12, early_stopping_rounds=2).fit(split.train, validation=split)
    best = m.best_iteration_
    assert m.n_iter_ > best          # the fit went on past its best sweep, which is what it keeps
    again = _model(tasks=tasks, iterations=best).fit(split.train)
    np.testing.assert_allclose(m.side_factors_["genre"], again.side_factors_["genre"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.item_factors_, again.item_factors_, rtol=1e-5, atol=1e-6)


def test_new_users_fold_in_from_a_user_side_matrix_in_closed_form():
    buy, _, _ = _planted(seed=12)
    queries = sp.csr_matrix((np.random.default_rng(2).random((buy.shape[0], 15)) < 0.2).astype(float))
    m = _model(tasks=[Task("buy"), Task("query", side="user", weight=0.4)], dtype="float64").fit(
        _data(buy, queries=queries))
    new = sp.csr_matrix(queries[:3])
    p, biases, _ = m.fold_in({"query": new})
    V = m.side_factors_["query"]
    penalty = m.regularization + m.negative_regularization * 0.4 * V.shape[0]
    mean = m.user_factors_.mean(axis=0)
    expected = np.linalg.solve(0.4 * V.T @ V + penalty * np.eye(m.factors), (0.4 * (new @ V) + penalty * mean).T).T
    np.testing.assert_allclose(p, expected, rtol=1e-8, atol=1e-12)
    assert p.shape == (3, m.factors) and np.all(biases == 0)


def test_the_serving_model_takes_new_users_by_their_side_rows(tmp_path):
    from mtl_classic.inference import InferenceModel
    buy, _, _ = _planted(seed=13)
    queries = sp.csr_matrix((np.random.default_rng(3).random((buy.shape[0], 12)) < 0.2).astype(float))
    m = _model(tasks=[Task("buy"), Task("query", side="user", weight=0.5)], dtype="float64").fit(
        _data(buy, queries=queries))
    rows = [["q1", "q4"], ["q2"], []]
    dense = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 1], [1, 4, 2])), shape=(3, 12))
    expected, _, _ = m.fold_in({"query": dense})
    m.save(tmp_path / "m")
    for served in (InferenceModel.from_model(m), InferenceModel.load(tmp_path / "m")):
        np.testing.assert_allclose(served.new_user_factors(["v1", "v2", "v3"], {"query": rows}), expected,
                                   rtol=1e-8, atol=1e-12)
        visitors = served.users_from_side(["v1", "v2", "v3"], {"query": rows})
        assert visitors.n_users == 3 and not np.any(visitors.cold)
        np.testing.assert_allclose(visitors.score_items("buy", [0, 1, 2]),
                                   expected @ (m.head_weights_[0] * m.item_factors_).T + m.intercepts_[0],
                                   rtol=1e-8, atol=1e-10)
        ids, _ = visitors.recommend(["v1"], n=5, task="buy")
        assert len(np.ravel(ids)) == 5
        with pytest.raises(ValueError, match="new, unique"):
            served.users_from_side([m.data_.user_map.ids[0]], {"query": [["q1"]]})
        with pytest.raises(ValueError, match="not a user side matrix"):
            served.users_from_side(["v9"], {"buy": [["q1"]]})
        with pytest.raises(ValueError, match="has 1 rows for 2 users"):
            served.users_from_side(["v8", "v9"], {"query": [["q1"]]})
        with pytest.raises(KeyError):
            served.users_from_side(["v9"], {"query": [["no-such-query"]]})
        # unknown="ignore" drops the column ids the side matrix does not know (in lists and dicts alike)
        lenient = served.users_from_side(["v1", "v2", "v3"], {"query": [["q1", "nope", "q4"], {"q2": 1.0, "x": 2.0},
                                                                        []]}, unknown="ignore")
        np.testing.assert_allclose(lenient.params.user_factors, expected, rtol=1e-8, atol=1e-12)


def test_fold_in_users_takes_user_side_rows_alone_or_with_events():
    from mtl_classic.foldin import fold_in_users
    from mtl_classic.inference import InferenceModel
    buy, _, _ = _planted(seed=14)
    queries = sp.csr_matrix((np.random.default_rng(4).random((buy.shape[0], 12)) < 0.2).astype(float))
    m = _model(tasks=[Task("buy"), Task("query", side="user", weight=0.5)], dtype="float64").fit(
        _data(buy, queries=queries))
    # side rows alone: the serving model's cold-start solve, nobody cold
    folded = fold_in_users(m, [{"query": ["q1", "q4"]}, {"query": {"q2": 2.0}}], user_ids=["a", "b"])
    direct = InferenceModel.from_model(m).new_user_factors(["a", "b"], {"query": sp.csr_matrix(
        ([1.0, 1.0, 2.0], ([0, 0, 1], [1, 4, 2])), shape=(2, 12))})
    np.testing.assert_allclose(folded.params.user_factors, direct, rtol=1e-8, atol=1e-12)
    assert not np.any(folded.cold)
    # side rows with events: the estimator's full solve with the side matrix in it
    items = m.data_.item_map.ids[:3].tolist()
    both = fold_in_users(m, {"buy": items, "query": ["q1"]}, user_ids=["c"])
    rows = {"buy": sp.csr_matrix((np.ones(3), ([0, 0, 0], [0, 1, 2])), shape=(1, buy.shape[1])),
            "query": sp.csr_matrix(([1.0], ([0], [1])), shape=(1, 12))}
    np.testing.assert_allclose(both.params.user_factors, m.fold_in(rows)[0], rtol=1e-8, atol=1e-12)
    # a known user refolded with nothing new gets back their fitted side row too: close to the fitted factors
    u = m.data_.user_map.ids[5]
    again = fold_in_users(m, {"buy": []}, user_ids=[u], base_users=[u])
    alone = fold_in_users(m, {"buy": []}, user_ids=[u], base_users=[u], n_sweeps=1)
    assert np.allclose(again.params.user_factors, alone.params.user_factors)
    assert (np.linalg.norm(again.params.user_factors[0] - m.user_factors_[5])
            < 0.1 * np.linalg.norm(m.user_factors_[5]))
    with pytest.raises(KeyError):
        fold_in_users(m, {"query": ["no-such-query"]})
    ignored = fold_in_users(m, [{"query": ["q1", "q4", "no-such-query"]}, {"query": {"q2": 2.0, "nope": 1.0}}],
                            user_ids=["a", "b"], unknown_items="ignore")
    np.testing.assert_allclose(ignored.params.user_factors, direct, rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="user side matrices"):
        fold_in_users(m, {"nope": ["q1"]})
    with pytest.raises(ValueError, match="NaN"):
        fold_in_users(m, {"query": {"q1": float("nan")}})
    with pytest.raises(ValueError, match="magnitude above"):
        fold_in_users(m, {"query": {"q1": 1e308}})
    with pytest.raises(ValueError, match="magnitude above"):
        InferenceModel.from_model(m).users_from_side(["z"], {"query": [{"q1": 1e308}]})
    with pytest.raises(ValueError, match="magnitude above"):
        MultiTaskData.from_matrices({"buy": buy}).with_side(
            user_side={"query": (queries.multiply(1e300), [f"q{j}" for j in range(12)])})


def test_the_server_folds_in_a_visitor_from_the_queries_they_typed(tmp_path):
    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    import httpx
    from test_serving import running   # the serving tests' real uvicorn server on 127.0.0.1
    from mtl_classic.foldin import fold_in_users
    from mtl_classic.inference import InferenceModel
    from mtl_classic.serving import create_app
    buy, _, _ = _planted(seed=15)
    queries = sp.csr_matrix((np.random.default_rng(5).random((buy.shape[0], 12)) < 0.2).astype(float))
    m = _model(tasks=[Task("buy"), Task("query", side="user", weight=0.5)]).fit(_data(buy, queries=queries))
    m.save(tmp_path / "full")
    m.save(tmp_path / "slim", slim=True)
    visitor = InferenceModel.load(tmp_path / "slim").users_from_side(["v"], {"query": [["q1", "q3"]]})
    expected = visitor.recommend(["v"], n=5, task="buy")[0][0].tolist()
    with_events = fold_in_users(m, {"buy": [0, 1], "query": ["q1"]}, user_ids=["w"])
    expected_events = with_events.recommend(["w"], n=5, task="buy")[0][0].tolist()
    for artifact in ("slim", "full"):
        app = create_app(path=str(tmp_path / artifact), max_n=10, max_pairs=20, blas_threads=None)
        with running(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 20
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            r = client.post("/users/v/events", json={"events": {"query": ["q1", "q3"]}, "task": "buy", "n": 5})
            assert r.status_code == 200, r.text
            assert r.json()["items"] == expected and r.json()["fallback"] is False
            r = client.post("/users/v/events", json={"events": {"query": ["q1", "q3", "never-typed"]}, "task": "buy",
                                                     "n": 5, "unknown_items": "ignore"})
            assert r.status_code == 200, r.text
            assert r.json()["items"] == expected
            r = client.post("/users/w/events", json={"events": {"buy": [0, 1], "query": ["q1"]}, "task": "buy",
                                                     "n": 5})
            if artifact == "slim":      # events need the estimator: a slim artifact has no training data
                assert r.status_code == 409, r.text
            else:
                assert r.status_code == 200, r.text
                assert r.json()["items"] == expected_events
            for bad, status, says in (({"events": {"query": ["no-such"]}}, 404, "no-such"),
                                      ({"events": {"query": {"q1": 1e308}}}, 400, "magnitude above"),
                                      ({"events": {"nope": ["q1"]}}, 400, "user side matrices ['query']"),
                                      ({"events": {"query": {"q1": "x"}}}, 400, "events.query")):
                r = client.post("/users/v/events", json=dict(bad, task="buy"))
                assert r.status_code == status, (bad, r.text)
                assert says in r.json()["error"], r.text
            assert client.get("/health").json()["n_users"] == buy.shape[0]   # nothing stored


def test_the_command_line_recommends_for_new_users_given_by_their_side_rows(tmp_path, capsys):
    import json
    from mtl_classic.cli import main
    from mtl_classic.inference import InferenceModel
    buy, _, _ = _planted(seed=16)
    queries = sp.csr_matrix((np.random.default_rng(6).random((buy.shape[0], 12)) < 0.2).astype(float))
    m = _model(tasks=[Task("buy"), Task("query", side="user")]).fit(_data(buy, queries=queries))
    m.save(tmp_path / "m")
    csv_path = tmp_path / "visitors.csv"
    csv_path.write_text("user,side,column\nv1,query,q1\nv1,query,q3\nv2,query,q2\n")
    assert main(["recommend", "--model", str(tmp_path / "m"), "--user", "v1", "-n", "4", "--new-users",
                 str(csv_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = InferenceModel.load(tmp_path / "m").users_from_side(["v1", "v2"], {"query": [["q1", "q3"], ["q2"]]})
    assert out["items"] == expected.recommend(["v1"], n=4, task="buy")[0][0].tolist()
    for text, says in (("item,side,column\nv1,query,q1\n", "header user,side,column"),
                       ("user,side,column\nv1,genre,g1\n", "not a user side matrix"),
                       ("user,side,column\nv1,query,no-such\n", "no-such")):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        assert main(["recommend", "--model", str(tmp_path / "m"), "--user", "v1", "--new-users", str(bad)]) != 0
        assert says in capsys.readouterr().err


def test_column_intercepts_join_the_objective_and_their_update_is_optimal():
    buy, attrs, _ = _planted(seed=17)
    popularity = np.log1p(np.asarray(buy.sum(axis=0)).ravel())
    noise = np.random.default_rng(7).normal(0, 0.05, buy.shape[1])
    sales = sp.csr_matrix((3.0 + popularity - popularity.mean() + noise)[:, None])   # mean 3: not centred
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(item_side={"sales": (sales, ["s"]),
                                                                          "genre": (attrs, list(range(16)))})
    tasks = [Task("buy"), Task("sales", side="item", biases=True, weight=0.5), Task("genre", side="item")]
    for solver in ("cholesky", "cg"):
        m = _model(tasks=tasks, solver=solver, dtype="float64", iterations=12).fit(data)
        steps = np.diff(m.loss_history_)
        assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), steps
    assert m.side_intercepts_["sales"][0] > 0.5      # (the factor part can carry some of the mean too)
    assert np.all(m.side_intercepts_["genre"] == 0)        # biases off: no intercepts
    Q, V, c = m.item_factors_, m.side_factors_["sales"], m.side_intercepts_["sales"]
    reg, nreg = m.regularization, m.negative_regularization

    def value(V_, c_):
        term = SideTerm("sales", True, 0.5, sales, V_, c_)
        return side_objective([term], m.user_factors_, Q, reg, nreg)[0]

    direct = (0.5 * np.sum((sales.toarray() - Q @ V.T - c[None, :]) ** 2)
              + (reg + nreg * 0.5 * Q.shape[0]) * np.sum(V ** 2) + nreg * 0.5 * 1 * np.sum(Q ** 2))
    assert value(V, c) == pytest.approx(direct, rel=1e-10)
    eps = 1e-5       # V and c are updated last for the final Q: the side loss is flat in both
    for D, d in ((np.ones_like(V), 0.0), (np.zeros_like(V), 1.0), (np.random.default_rng(1).normal(size=V.shape), 0.3)):
        slope = (value(V + eps * D, c + eps * d) - value(V - eps * D, c - eps * d)) / (2 * eps)
        assert abs(slope) < 1e-5 * (1 + abs(value(V, c))), slope
    # the item-level target is predicted with its intercept: q_i . v + c
    items = m.data_.item_map.ids
    predicted = m.predict("sales", items, ["s"] * len(items))
    np.testing.assert_allclose(predicted, Q @ V[0] + c[0], rtol=1e-10)
    truth = sales.toarray().ravel()
    assert abs(predicted.mean() - truth.mean()) < 0.05 and np.corrcoef(predicted, truth)[0, 1] > 0.8


def test_column_intercepts_round_trip_and_enter_the_cold_start_solve(tmp_path):
    from mtl_classic.inference import InferenceModel
    buy, attrs, _ = _planted(seed=18)
    dense = attrs.toarray() * 2.0 + 1.0              # every entry present, mean far from 0
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(
        item_side={"genre": (sp.csr_matrix(dense), [f"g{j}" for j in range(dense.shape[1])])})
    m = _model(tasks=[Task("buy"), Task("genre", side="item", biases=True, weight=0.6)], dtype="float64").fit(data)
    c, V = m.side_intercepts_["genre"], m.side_factors_["genre"]
    assert np.all(c > 0.5)
    new = sp.csr_matrix(dense[:4])
    q, _ = m.fold_in_items({"genre": new})
    penalty = m.regularization + m.negative_regularization * 0.6 * dense.shape[1]
    expected = np.linalg.solve(0.6 * V.T @ V + penalty * np.eye(m.factors),
                               (0.6 * (new.toarray() - c[None, :]) @ V + penalty * m.item_factors_.mean(axis=0)).T).T
    np.testing.assert_allclose(q, expected, rtol=1e-8, atol=1e-12)
    m.save(tmp_path / "m")
    loaded = MultiTaskMF.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.side_intercepts_["genre"], c)
    for served in (InferenceModel.load(tmp_path / "m"), InferenceModel.from_model(m)):
        np.testing.assert_allclose(served.new_item_factors(["n0", "n1", "n2", "n3"], {"genre": new}), expected,
                                   rtol=1e-8, atol=1e-12)
    more = loaded.set_params(warm_start=True, iterations=1).fit(loaded.data_)   # continues from the intercepts
    assert more.loss_history_[-1] <= more.loss_history_[0] * (1 + 1e-9)


def _feature_data(seed=19, n_users=300, n_items=200, gamma=0.4):
    """Buys from planted factors plus gamma times a known item attribute (a "sales" prior), and the attribute as a
    1-column item side matrix."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 4)), rng.normal(size=(n_items, 4))
    sales = rng.normal(size=n_items)
    scores = 0.3 * P @ Q.T + gamma * 3 * sales[None, :]
    buy = sp.csr_matrix((scores > np.quantile(scores, 0.93)).astype(float))
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(item_side={"sales": (sales[:, None], ["s"])})
    return data, sales


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_an_item_feature_is_a_head_feature_with_one_exact_weight(solver):
    data, sales = _feature_data()
    m = _model(tasks=[Task("buy", item_feature="sales")], solver=solver, dtype="float64", iterations=12).fit(data)
    steps = np.diff(m.loss_history_)
    assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), steps
    gamma = m.item_feature_weights_["buy"]
    np.testing.assert_allclose(m.item_biases_[0], gamma * sales, rtol=1e-10, atol=1e-14)
    assert gamma > 0                                      # the planted prior is positive
    # gamma is the exact minimiser given the rest (the offsets are updated last): the objective is flat along a
    arrays = m._task_arrays(m.tasks_, m.data_.matrices, m.cross_features_)
    config = m._config()
    config.head_mask = m._head_mask(1)

    def total(g):
        params = copy.deepcopy(m.fitted_params_)
        params.item_biases[0] = g * sales
        return als.objective(arrays, params, config)[0]

    eps = 1e-5 * max(1.0, abs(gamma))
    slope = (total(gamma + eps) - total(gamma - eps)) / (2 * eps)
    assert abs(slope) < 1e-6 * abs(total(gamma)), slope
    assert total(gamma) < total(0.0) and total(gamma) < total(2 * gamma)


def test_an_item_feature_is_saved_and_new_items_take_gamma_times_their_value(tmp_path):
    # (whether it lifts a ranking is measured, not asserted: on planted data whose buys follow the feature the
    # shared factors already carry that popularity, and the feature's weight stays small; benchmarks/side.py)
    data, sales = _feature_data(seed=20, gamma=0.8)
    train = random_holdout(data, "buy", test_fraction=0.2, random_state=0).train   # (splits keep side matrices)
    with_feature = _model(tasks=[Task("buy", item_feature="sales")]).fit(train)
    with_feature.save(tmp_path / "m")
    loaded = MultiTaskMF.load(tmp_path / "m")
    assert loaded.item_feature_weights_ == pytest.approx(with_feature.item_feature_weights_, rel=1e-12)
    users = train.user_map.ids[:4]
    np.testing.assert_array_equal(loaded.recommend(users, n=5, task="buy")[0],
                                  with_feature.recommend(users, n=5, task="buy")[0])
    # a new item whose feature is not given: its term is 0, and the fitted items' biases are untouched
    new = sp.csr_matrix(np.asarray(train.matrices["buy"][:, :2].todense()))
    _, biases = with_feature.fold_in_items({"buy": new})
    assert np.all(biases == 0)
    # given (the 1-column matrix named by item_feature), its term is gamma * a, with interactions or alone
    gamma, a = with_feature.item_feature_weights_["buy"], np.array([1.5, -0.5])
    q_warm, warm = with_feature.fold_in_items({"buy": new, "sales": sp.csr_matrix(a[:, None])})
    np.testing.assert_allclose(warm[0], gamma * a, rtol=1e-12)
    q_cold, cold = with_feature.fold_in_items({"sales": sp.csr_matrix(a[:, None])})
    np.testing.assert_allclose(cold[0], gamma * a, rtol=1e-12)
    np.testing.assert_allclose(q_cold, np.tile(with_feature.item_factors_.astype(np.float64).mean(axis=0), (2, 1)),
                               rtol=1e-5, atol=1e-7)            # no side matrix given: the average item
    with pytest.raises(ValueError, match=r"interactions\['sales'\] must be a sparse matrix \(new rows x 1"):
        with_feature.fold_in_items({"sales": sp.csr_matrix(np.ones((2, 2)))})
    for bad, says in (({"item_feature": "nope"}, "must name a 1-column item side matrix"),
                      ({"item_feature": "sales", "item_bias": True}, "without item_bias=True"),
                      ({"item_feature": "sales", "kind": "binary"}, "for implicit user x item tasks")):
        with pytest.raises(ValueError, match=says):
            _model(tasks=[Task("buy", **bad)]).fit(train)


def test_the_serving_path_gives_new_items_their_item_feature_term(tmp_path):
    """InferenceModel.with_items / score_new_items read a task's item_feature among the side rows: the new items'
    bias gamma_t * a, as fold_in_items gives it; saved in slim artifacts; unknown without it in older ones."""
    import json
    from mtl_classic.inference import InferenceModel
    data, _ = _feature_data(seed=23, gamma=0.8)
    genres = sp.csr_matrix((np.random.default_rng(5).random((data.n_items, 6)) < 0.3).astype(float))
    data = data.with_side(item_side={"genre": (genres, [f"g{j}" for j in range(6)])})
    m = _model(tasks=[Task("buy", item_feature="sales"), Task("genre", side="item")]).fit(data)
    gamma, a = m.item_feature_weights_["buy"], np.array([2.0, -1.0, 0.0])
    rows = {"genre": [["g0", "g2"], ["g1"], []], "sales": [{"s": 2.0}, {"s": -1.0}, {}]}
    q, b = m.fold_in_items({"genre": _rows(rows["genre"], 6), "sales": sp.csr_matrix(a[:, None])})
    np.testing.assert_allclose(b[0], gamma * a, rtol=1e-12)
    u = data.user_map.ids[3]
    expect = q @ (m.head_weights_[0] * m.user_factors_[3]).astype(np.float64) + b[0]
    inf = InferenceModel.from_model(m)
    np.testing.assert_allclose(inf.score_new_items(u, ["n1", "n2", "n3"], rows), expect, rtol=1e-5, atol=1e-7)
    more = inf.with_items(["n1", "n2", "n3"], rows)
    np.testing.assert_allclose(more.params.item_biases[0, -3:], gamma * a, rtol=1e-6)
    without = inf.score_new_items(u, ["n1", "n2", "n3"], {"genre": rows["genre"]})   # feature not given: term 0
    np.testing.assert_allclose(expect - without, gamma * a, rtol=1e-5, atol=1e-7)
    alone = inf.score_new_items(u, ["n1", "n2"], {"sales": [{"s": 2.0}, {"s": -1.0}]})   # the average item
    assert alone[0] - alone[1] == pytest.approx(3.0 * gamma, rel=1e-5)
    m.save(tmp_path / "slim", slim=True)
    loaded = InferenceModel.load(tmp_path / "slim")
    np.testing.assert_allclose(loaded.score_new_items(u, ["n1", "n2", "n3"], rows), expect, rtol=1e-5, atol=1e-7)
    with pytest.raises(KeyError):
        inf.score_new_items(u, ["n1"], {"sales": [{"nope": 1.0}]})
    with pytest.raises(ValueError, match=r"side_rows\['sales'\] must have shape \(1, 1\)"):
        inf.score_new_items(u, ["n1"], {"sales": sp.csr_matrix(np.ones((1, 2)))})
    manifest = json.loads((tmp_path / "slim" / "model.json").read_text())
    del manifest["item_features"]                     # as written before new items took their feature values
    (tmp_path / "slim" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="'sales' is not an item side matrix"):
        InferenceModel.load(tmp_path / "slim").score_new_items(u, ["n1"], {"sales": [{"s": 1.0}]})


def test_the_server_and_the_cli_take_new_items_item_feature_values(tmp_path, capsys):
    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    import json
    import httpx
    from test_serving import running
    from mtl_classic.cli import main as cli
    from mtl_classic.inference import InferenceModel
    from mtl_classic.serving import create_app
    data, _ = _feature_data(seed=24, gamma=0.8)
    genres = sp.csr_matrix((np.random.default_rng(6).random((data.n_items, 6)) < 0.3).astype(float))
    data = data.with_side(item_side={"genre": (genres, [f"g{j}" for j in range(6)])})
    _model(tasks=[Task("buy", item_feature="sales"), Task("genre", side="item")]).fit(data).save(tmp_path / "m")
    served = InferenceModel.load(tmp_path / "m")
    rows = {"genre": [["g1"], ["g2", "g3"], []], "sales": [{"s": -1.0}, {}, {"s": 4.0}]}
    expected = served.score_new_items(2, ["x", "y", "z"], rows)
    app = create_app(path=str(tmp_path / "m"), max_n=10, max_pairs=20, blas_threads=None)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        _wait_ready(client)
        body = {"user": 2, "n": 3, "items": [{"item": "x", "side": {"genre": ["g1"]}, "features": {"sales": -1.0}},
                                             {"item": "y", "side": {"genre": ["g2", "g3"]}},
                                             {"item": "z", "features": {"sales": 4.0}}]}
        r = client.post("/items/rank", json=body)
        assert r.status_code == 200, r.text
        order = np.argsort(-expected, kind="stable")
        assert r.json()["items"] == [["x", "y", "z"][j] for j in order]
        np.testing.assert_allclose(r.json()["scores"], expected[order], rtol=1e-5)
        for bad in ([{"item": "x", "features": {"genre": 1.0}}], [{"item": "x", "features": {"nope": 1.0}}],
                    [{"item": "x"}]):
            r = client.post("/items/rank", json=dict(body, items=bad))
            assert r.status_code == 400 and "error" in r.json(), (bad, r.text)
    # the command line: item,side,column[,value]
    new = tmp_path / "new.csv"
    new.write_text("item,side,column,value\nx,genre,g1,1\nx,sales,s,-1\ny,genre,g2,1\ny,genre,g3,1\nz,sales,s,4\n")
    assert cli(["recommend", "--model", str(tmp_path / "m"), "--user", "2", "-n", "3", "--new-items", str(new),
                "--items", "x", "y", "z", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["items"] == [["x", "y", "z"][j] for j in order]
    np.testing.assert_allclose(got["scores"], expected[order], rtol=1e-5)
    new.write_text("item,side,column,value\nx,sales,s,lots\n")
    assert cli(["recommend", "--model", str(tmp_path / "m"), "--user", "2", "--new-items", str(new)]) != 0
    assert "is not a number" in capsys.readouterr().err


def _rows(lists, n_cols):
    """Lists of column indexes g<j> as a csr matrix of ones."""
    indices = [int(c[1:]) for r in lists for c in r]
    indptr = np.cumsum([0] + [len(r) for r in lists])
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(lists), n_cols))


def _counts(seed, n_rows, n_cols, density=0.15):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    return sp.csr_matrix(np.where(mask, rng.integers(1, 5, (n_rows, n_cols)), 0).astype(float))


def test_confidence_side_matrices_have_the_implicit_loss_and_exact_updates():
    """alpha > 0: every entry a target 1 of confidence 1 + alpha * value, the other pairs targets 0 of weight 1."""
    buy, attrs, _ = _planted(seed=21)
    queries = _counts(22, buy.shape[0], 9)
    tasks = [Task("buy"), Task("genre", side="item", alpha=3.0, weight=0.7),
             Task("query", side="user", alpha=5.0, weight=1.0)]
    data = _data(buy, attrs, queries)
    for solver in ("cholesky", "cg"):
        m = _model(tasks=tasks, solver=solver, dtype="float64", iterations=12).fit(data)
        steps = np.diff(m.loss_history_)
        assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), (solver, steps)
    P, V = m.user_factors_, m.side_factors_["query"]
    reg, nreg = m.regularization, m.negative_regularization

    def value(V_):
        return side_objective([SideTerm("query", False, 1.0, queries, V_, alpha=5.0)], P, m.item_factors_, reg, nreg)[0]

    dense = queries.toarray()
    confidence = 1.0 + 5.0 * dense
    direct = (np.sum(confidence * ((dense > 0) - P @ V.T) ** 2) + (reg + nreg * P.shape[0]) * np.sum(V ** 2)
              + nreg * queries.shape[1] * np.sum(P ** 2))
    assert value(V) == pytest.approx(direct, rel=1e-10)
    eps, rng = 1e-5, np.random.default_rng(0)        # V is updated last for the final P: the loss is flat in V
    for _ in range(4):
        D = rng.normal(size=V.shape)
        assert abs(value(V + eps * D) - value(V - eps * D)) / (2 * eps) < 1e-5 * value(V)
    # a new user from query counts alone: its own weighted least squares, centred on the fitted users' mean
    new = sp.csr_matrix(queries[:2])
    p, _, _ = m.fold_in({"query": new})
    penalty = reg + nreg * queries.shape[1]
    for u in range(2):
        a = new.toarray()[u]
        A = V.T @ V + (V * (5.0 * a)[:, None]).T @ V + penalty * np.eye(m.factors)
        b = (V.T @ (a > 0)) + (5.0 * a) @ V + penalty * P.mean(axis=0)
        np.testing.assert_allclose(p[u], np.linalg.solve(A, b), rtol=1e-8, atol=1e-12)
    from mtl_classic.inference import InferenceModel
    np.testing.assert_allclose(InferenceModel.from_model(m).new_user_factors(["x", "y"], {"query": new}), p,
                               rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("precondition", [True, False])
@pytest.mark.parametrize("kind", ["confidence", "observed only"])
def test_a_row_solve_with_side_entries_minimises_the_objective_in_that_row(precondition, kind):
    buy, attrs, _ = _planted(seed=23)
    counts = _counts(24, attrs.shape[0], attrs.shape[1])
    tasks = [als.prepare_task_arrays("buy", "implicit", buy, alpha=3.0)]
    rng = np.random.default_rng(0)
    params = als.init_params(tasks, buy.shape[0], buy.shape[1], 5, rng, 0.1, dtype=np.float64)
    V = rng.normal(0, 0.3, (attrs.shape[1], 5))
    terms = [SideTerm("genre", True, 0.5, counts, V, alpha=4.0) if kind == "confidence" else
             SideTerm("genre", True, 0.5, counts, V, rng.normal(0, 1, attrs.shape[1]), True, observed_only=True)]
    config = als.SolverConfig(regularization=0.1, negative_regularization=1e-3, solver="cg", cg_steps=60,
                              cg_rtol=0.0, fit_heads=False, precondition=precondition)
    _assert_item_rows_minimise(tasks, params, config, terms)


def _ages(seed=25, n_users=300, k=4, known=0.6):
    """A user-level value from the users' planted tastes (an "age"), known for a share of the users."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, k)), rng.normal(size=(240, k))
    scores = P @ Q.T
    buy = sp.csr_matrix((scores > np.quantile(scores, 0.95)).astype(float))
    age = 35.0 + 6.0 * P @ rng.normal(size=k) + rng.normal(0, 0.5, n_users)
    mask = rng.random(n_users) < known
    rows = np.flatnonzero(mask)
    matrix = sp.csr_matrix((age[rows], (rows, np.zeros(len(rows), dtype=int))), shape=(n_users, 1))
    return buy, matrix, age, mask


def test_a_regression_side_matrix_fits_its_entries_only_and_predicts_the_missing_ones():
    buy, ages, truth, known = _ages()
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(user_side={"age": (ages, ["age"])})
    users = data.user_map.ids
    rmse = {}
    for kind in ("regression", "implicit"):
        tasks = [Task("buy"), Task("age", side="user", kind=kind, biases=True, weight=0.05)]
        for solver in ("cholesky", "cg"):
            m = _model(tasks=tasks, solver=solver, dtype="float64", iterations=15).fit(data)
            steps = np.diff(m.loss_history_)
            assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), (kind, solver, steps)
        predicted = m.predict("age", users, ["age"] * len(users))
        rmse[kind] = float(np.sqrt(np.mean((predicted[~known] - truth[~known]) ** 2)))
        if kind == "regression":
            P, V, c = m.user_factors_, m.side_factors_["age"], m.side_intercepts_["age"]
            reg = m.regularization

            def value(V_, c_):
                term = SideTerm("age", False, 0.05, ages, V_, c_, True, observed_only=True)
                return side_objective([term], P, m.item_factors_, reg, m.negative_regularization)[0]

            rows = ages.tocoo().row
            direct = 0.05 * np.sum((ages.data - P[rows] @ V[0] - c[0]) ** 2) + reg * np.sum(V ** 2)
            assert value(V, c) == pytest.approx(direct, rel=1e-10)
            eps = 1e-5
            for D, d in ((np.ones_like(V), 0.0), (np.zeros_like(V), 1.0)):
                slope = (value(V + eps * D, c + eps * d) - value(V - eps * D, c - eps * d)) / (2 * eps)
                assert abs(slope) < 1e-5 * (1 + value(V, c)), slope
            # a new user known by age alone: one weighted least squares, centred on the fitted users' mean
            p, _, _ = m.fold_in({"age": sp.csr_matrix([[41.0]])})
            A = 0.05 * np.outer(V[0], V[0]) + reg * np.eye(m.factors)
            b = 0.05 * (41.0 - c[0]) * V[0] + reg * P.mean(axis=0)
            np.testing.assert_allclose(p[0], np.linalg.solve(A, b), rtol=1e-8, atol=1e-12)
            from mtl_classic.inference import InferenceModel
            np.testing.assert_allclose(InferenceModel.from_model(m).new_user_factors(["z"], {"age": [{"age": 41.0}]}),
                                       p, rtol=1e-8, atol=1e-12)
    # the uniform kind reads a missing age as 0 (and pulls every prediction towards it); the regression kind does not
    assert rmse["regression"] < 0.5 * rmse["implicit"], rmse
    assert rmse["regression"] < np.std(truth[~known]), rmse


def test_a_binary_side_matrix_fits_its_labels_under_the_logistic_loss():
    from scipy.optimize import minimize
    from sklearn.metrics import roc_auc_score
    from mtl_classic.heads import logistic_loss
    buy, ages, truth, known = _ages(seed=26)
    labels = (truth > np.median(truth)).astype(float)          # a 0/1 user attribute ("over the median age")
    rows = np.flatnonzero(known)
    matrix = sp.csr_matrix((labels[rows], (rows, np.zeros(len(rows), dtype=int))), shape=(len(truth), 1))
    data = MultiTaskData.from_matrices({"buy": buy}).with_side(user_side={"older": (matrix, ["older"])})
    users = data.user_map.ids
    auc = {}
    for kind in ("binary", "implicit"):
        tasks = [Task("buy"), Task("older", side="user", kind=kind, biases=kind == "binary", weight=0.5)]
        for solver in ("cholesky", "cg"):
            m = _model(tasks=tasks, solver=solver, dtype="float64", iterations=15).fit(data)
            steps = np.diff(m.loss_history_)          # majorise-minimise: the true logistic loss never increases
            assert np.all(steps <= 1e-9 * abs(m.loss_history_[0])), (kind, solver, steps)
        predicted = m.predict("older", users, ["older"] * len(users))
        auc[kind] = roc_auc_score(labels[~known], predicted[~known])
        if kind == "binary":
            assert np.all((predicted > 0) & (predicted < 1))            # probabilities
            P, V, c = m.user_factors_, m.side_factors_["older"], m.side_intercepts_["older"]
            value = side_objective([SideTerm("older", False, 0.5, matrix, V, c, True, observed_only=True,
                                             logistic=True)], P, m.item_factors_, m.regularization, 0.0)[0]
            scores = P[rows] @ V[0] + c[0]
            assert value == pytest.approx(0.5 * np.sum(logistic_loss(labels[rows], scores))
                                          + m.regularization * np.sum(V ** 2), rel=1e-10)
            # a new user known only as "older": the majorise-minimise solve reaches the exact minimiser
            p, _, _ = m.fold_in({"older": sp.csr_matrix([[1.0]])})
            mean, reg = P.mean(axis=0), m.regularization

            def objective(f):
                return 0.5 * logistic_loss(1.0, f @ V[0] + c[0]) + reg * np.sum((f - mean) ** 2)

            best = minimize(objective, mean, method="BFGS", options={"gtol": 1e-10}).x
            np.testing.assert_allclose(p[0], best, atol=1e-5)
    # the uniform kind reads an unknown label as 0; the binary kind leaves it out (measured 0.93 against 0.85)
    assert auc["binary"] > 0.8 and auc["binary"] > auc["implicit"], auc
    with pytest.raises(ValueError, match="labels outside"):
        bad = MultiTaskData.from_matrices({"buy": buy}).with_side(user_side={"older": (matrix * 2.0, ["older"])})
        _model(tasks=[Task("buy"), Task("older", side="user", kind="binary")]).fit(bad)


def test_the_built_in_tuner_weighs_side_tasks_on_their_own():
    from mtl_classic.model_selection import DEFAULT_SPACE, SuccessiveHalvingSearch
    buy, attrs, _ = _planted(seed=27)
    view = sp.csr_matrix(buy.toarray() + (np.random.default_rng(1).random(buy.shape) < 0.1))
    data = MultiTaskData.from_matrices({"view": view, "buy": buy}).with_side(
        item_side={"genre": (attrs, [f"g{j}" for j in range(attrs.shape[1])])})
    est = _model(tasks=[Task("view"), Task("buy"), Task("genre", side="item", alpha=2.0)])
    search = SuccessiveHalvingSearch(est, target="buy", n_candidates=4, min_iterations=2,
                                     space={**DEFAULT_SPACE, "tasks__side_weight": ["auto", 0.01, 1.0]})
    built = search._build({"tasks__aux_weight": 0.3, "tasks__side_weight": 0.01, "tasks__alpha": 3.0}, 2)
    weights = {t.name: (t.weight, t.alpha) for t in built.tasks}
    assert weights == {"view": (0.3, 3.0), "buy": ("auto", 3.0), "genre": (0.01, 2.0)}
    assert search._build({"tasks__side_weight": "auto"}, 2).tasks[2].weight == "auto"
    search.fit(data)
    assert search.best_estimator_.side_factors_["genre"].shape[0] == attrs.shape[1]
    assert set(search.trials_.columns) >= {"tasks__side_weight"}
    # the default space leaves side weights at their default (warm validation cannot tell them apart)
    assert SuccessiveHalvingSearch(est, target="buy")._check() == DEFAULT_SPACE


def test_side_weight_auto_weighs_the_side_mass_to_a_share_of_the_pair_tasks_mass():
    """weight="auto" (the default) is AUTO_SIDE_MASS * (the pair tasks' mass) / (the side matrix's own mass), per
    kind; a number is kept; a user x item task's "auto" is 1."""
    from mtl_classic.tasks import AUTO_SIDE_MASS
    buy, attrs, _ = _planted(seed=31)
    queries = _counts(32, buy.shape[0], 9)
    known = sp.csr_matrix((np.random.default_rng(3).random((buy.shape[0], 1)) < 0.4).astype(float))   # 1-labels
    data = _data(buy, attrs * 3.0, queries).with_side(user_side={"flag": (known, ["flag"])})
    tasks = [Task("buy"), Task("genre", side="item"), Task("query", side="user", alpha=5.0),
             Task("flag", side="user", kind="binary", weight=0.4)]
    m = _model(tasks=tasks, iterations=2).fit(data)
    fitted = {t.name: t.weight for t in m.side_tasks_}
    alpha = m.tasks_[0].alpha
    assert m.tasks_[0].weight == 1.0 and isinstance(alpha, float)
    pair = buy.nnz + alpha * buy.sum()
    assert fitted["genre"] == pytest.approx(AUTO_SIDE_MASS * pair / np.sum((attrs.data * 3.0) ** 2), rel=1e-12)
    assert fitted["query"] == pytest.approx(AUTO_SIDE_MASS * pair / np.sum(1.0 + 5.0 * queries.data), rel=1e-12)
    assert fitted["flag"] == 0.4
    # the units of a uniform side matrix's values do not change its weighted mass
    m10 = _model(tasks=tasks, iterations=2).fit(_data(buy, attrs * 30.0, queries).with_side(
        user_side={"flag": (known, ["flag"])}))
    assert {t.name: t.weight for t in m10.side_tasks_}["genre"] == pytest.approx(fitted["genre"] / 100.0, rel=1e-12)
    binary = _model(tasks=[Task("buy"), Task("flag", side="user", kind="binary")], iterations=2).fit(
        MultiTaskData.from_matrices({"buy": buy}).with_side(user_side={"flag": (known, ["flag"])}))
    assert binary.side_tasks_[0].weight == pytest.approx(AUTO_SIDE_MASS * pair / known.nnz, rel=1e-12)
    with pytest.raises(ValueError, match="weight must be a finite number > 0 or 'auto'"):
        _model(tasks=[Task("buy"), Task("genre", side="item", weight="half")]).fit(_data(buy, attrs))
