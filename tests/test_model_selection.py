"""The built-in search: a validation split that mirrors the protocol, successive halving, a refitted winner."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from mtl_classic import Task
from mtl_classic.data import MultiTaskData
from mtl_classic.model import MultiTaskMF
from mtl_classic.model_selection import SuccessiveHalvingSearch, same_event_tasks, validation_split
from mtl_classic.tasks import AUTO_CONFIDENCE_MASS

from _synthetic import four_task_data


def _view_buy(seed=0, n_users=80, n_items=40):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    S = P @ Q.T
    view = sp.csr_matrix((S > 0.5).astype(float))
    buy = sp.csr_matrix((S > 1.5).astype(float))
    return MultiTaskData.from_matrices({"view": view, "buy": buy})


def test_validation_split_holds_one_pair_per_user_and_removes_same_events():
    data = four_task_data()
    assert set(same_event_tasks(data, "rating")) == {"liked"}
    split = validation_split(data, "liked", random_state=0)
    counts = np.diff(split.test.indptr)
    n = np.diff(data.matrices["liked"].indptr)
    np.testing.assert_array_equal(counts, (n >= 2).astype(int))
    # the held-out pairs left the target and the task recording the same events, not the auxiliary ones
    held = split.test.astype(bool)
    assert held.multiply(split.train.matrices["liked"].astype(bool)).nnz == 0
    assert held.multiply(split.train.matrices["rating"].astype(bool)).nnz == 0
    assert split.train.matrices["view"].nnz == data.matrices["view"].nnz
    with pytest.raises(ValueError, match="unknown target 'nope'"):
        validation_split(data, "nope")


def test_search_keeps_the_starting_point_refits_the_best_and_records_every_fit():
    data = _view_buy()
    base = MultiTaskMF(tasks=[Task("view"), Task("buy")], factors=4, iterations=6, random_state=0)
    space = {"regularization": [0.01, 1.0, 100.0], "tasks__aux_weight": [0.3, 1.0]}
    search = SuccessiveHalvingSearch(base, target="buy", space=space, n_candidates=5, factor=2, min_iterations=2,
                                     show_progress=False).fit(data)
    trials = search.trials_
    # rungs of 2, 4 and 6 sweeps: 5, then 3, then 2 candidates
    assert list(trials.groupby("rung").size()) == [5, 3, 2]
    assert list(trials.groupby("rung")["iterations"].first()) == [2, 4, 6]
    assert 0 in set(trials.candidate)                        # the estimator's own settings are a candidate
    last = trials[trials.rung == trials.rung.max()]
    assert search.best_score_ == pytest.approx(last.score.max())
    # the refitted winner carries the chosen settings and the estimator's sweeps
    best = search.best_estimator_
    assert best.iterations == 6 and hasattr(best, "user_factors_")
    if "regularization" in search.best_params_:
        assert best.regularization == search.best_params_["regularization"]
    if "tasks__aux_weight" in search.best_params_:
        assert best.tasks[0].weight == search.best_params_["tasks__aux_weight"] and best.tasks[1].weight == "auto"
    # a regularization of 100 flattens the factors: drawn in the first rung, it is dropped after it
    assert 100.0 in set(trials[trials.rung == 0].regularization)
    assert 100.0 not in set(trials[trials.rung == 1].regularization)
    # sklearn habits
    assert clone(search).get_params()["space"] == space


def test_search_selects_regression_targets_by_rmse():
    data = four_task_data()
    base = MultiTaskMF(tasks=[Task("rating", kind="regression")], factors=3, iterations=4, random_state=0)
    search = SuccessiveHalvingSearch(base, target="rating", space={"row_regularization": [0.0, 0.1]},
                                     n_candidates=3, factor=3, min_iterations=4, show_progress=False,
                                     refit=False).fit(data.subset_tasks(["rating"]))
    assert (search.trials_.score < 0).all()          # -RMSE
    assert not hasattr(search, "best_estimator_")


@pytest.mark.parametrize("kw, message", [({"n_candidates": 0}, "n_candidates"), ({"factor": 1}, "factor"),
                                         ({"space": {"nope": [1]}}, "unknown parameters"),
                                         ({"space": {"factors": []}}, "non-empty list")])
def test_search_rejects_bad_settings(kw, message):
    base = MultiTaskMF(tasks=[Task("view"), Task("buy")], factors=2, iterations=2)
    with pytest.raises(ValueError, match=message):
        SuccessiveHalvingSearch(base, target="buy", show_progress=False, **kw).fit(_view_buy())


def test_search_never_draws_private_factors_that_crowd_out_the_shared_ones():
    base = MultiTaskMF(tasks=[Task("view"), Task("buy")], factors=8, iterations=2)
    search = SuccessiveHalvingSearch(base, target="buy", space={"factors": [4, 8], "private_factors": [0, 1, 2, 4]},
                                     n_candidates=20, show_progress=False)
    cands = search._candidates(search._check(), np.random.default_rng(0))
    drawn = [(c.get("factors", 8), c.get("private_factors", 0)) for c in cands[1:]]
    assert drawn and all(2 * 2 * p <= f for f, p in drawn)
    assert len(set(drawn)) == len(drawn) == 5      # every valid point once: (4,0) (4,1) (8,0) (8,1) (8,2)


def test_warm_started_rungs_score_what_fresh_fits_of_as_many_sweeps_score():
    # float64: a survivor continued from its previous rung is the fit of all its sweeps from the start, so the
    # trials (and the choice) equal those of a search that refits every rung from random factors
    data = _view_buy()
    base = MultiTaskMF(tasks=[Task("view"), Task("buy")], factors=4, iterations=6, random_state=0, dtype="float64")
    space = {"regularization": [0.01, 1.0, 100.0], "tasks__aux_weight": [0.3, 1.0]}
    runs = [SuccessiveHalvingSearch(base, target="buy", space=space, n_candidates=5, factor=2, min_iterations=2,
                                    warm_start=warm, show_progress=False).fit(data) for warm in (True, False)]
    warm, cold = (r.trials_ for r in runs)
    assert list(warm.iterations) == list(cold.iterations) and list(warm.candidate) == list(cold.candidate)
    np.testing.assert_allclose(warm.score, cold.score, rtol=1e-9)
    assert runs[0].best_params_ == runs[1].best_params_
    # the survivors ran only the sweeps their rung adds
    assert list(warm.groupby("rung").sweeps_run.max()) == [2, 2, 2]
    assert list(cold.groupby("rung").sweeps_run.max()) == [2, 4, 6]


def test_search_chooses_on_a_validation_split_the_user_gives():
    """``fit(data, validation=split)``: the search scores every candidate on the given pairs (here: each user's
    highest-index buy, as where item indices follow time), not on a carve of its own; bad splits are named."""
    from mtl_classic.data.splits import given_test_pairs
    from mtl_classic.evaluation import evaluate_ranking

    data = _view_buy()
    buy = data.matrices["buy"].tocsr()
    users = np.flatnonzero(np.diff(buy.indptr) >= 2)
    last = sp.csr_matrix((np.ones(len(users)), (users, buy.indices[buy.indptr[users + 1] - 1])), shape=buy.shape)
    split = given_test_pairs(data, "buy", last)
    base = MultiTaskMF(tasks=[Task("view"), Task("buy")], factors=4, iterations=4, random_state=0,
                       show_progress=False)
    search = SuccessiveHalvingSearch(base, target="buy", space={"regularization": [0.01, 1.0, 100.0]},
                                     n_candidates=3, factor=3, min_iterations=4, show_progress=False)
    search.fit(data, validation=split)
    assert search.validation_info_ == split.info
    # one rung: every candidate's recorded score is its NDCG@10 on the given pairs
    for _, row in search.trials_.iterrows():
        params = {} if np.isnan(row.regularization) else {"regularization": row.regularization}  # 0: its own
        model = search._build(params, 4).fit(split.train)
        expected = evaluate_ranking(model, split.train, split.test, "buy", ks=(10,))["NDCG@10"]
        assert row.score == pytest.approx(expected, rel=1e-9)
    other = MultiTaskData.from_matrices({"view": data.matrices["view"], "buy": buy}, user_ids=[f"u{i}" for i in
                                                                                              range(data.n_users)])
    with pytest.raises(ValueError, match="user ids differ"):
        search.fit(other, validation=split)
    with pytest.raises(ValueError, match="must be a mtl_classic.data.splits.Split"):
        search.fit(data, validation=last)
    with pytest.raises(ValueError, match="tasks"):
        search.fit(data.subset_tasks(["buy"]), validation=split)


def test_search_space_takes_alpha_auto_and_numbers():
    data = _view_buy()
    base = MultiTaskMF(tasks=[Task("view", alpha=2.0), Task("buy", alpha=2.0)], factors=4, iterations=2,
                       show_progress=False)
    search = SuccessiveHalvingSearch(base, target="buy", space={"tasks__alpha": ["auto", 3.0]}, show_progress=False)
    auto = search._build({"tasks__alpha": "auto"}, 2).fit(data)
    numeric = search._build({"tasks__alpha": 3.0}, 2)
    assert [t.alpha for t in numeric.tasks] == [3.0, 3.0]
    assert [t.alpha for t in auto.tasks] == ["auto", "auto"]
    density = {n: data.nnz(n) / (data.n_users * data.n_items) for n in ("view", "buy")}
    assert [t.alpha for t in auto.tasks_] == pytest.approx([AUTO_CONFIDENCE_MASS / density["view"],
                                                            AUTO_CONFIDENCE_MASS / density["buy"]])
    assert base.tasks[0].alpha == 2.0          # the searched estimator itself is never changed
