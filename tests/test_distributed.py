"""The distributed fit (mtl_classic.distributed, the [dask] extra) is the local fit: same objective per sweep, same
arrays, on a two-process LocalCluster; it survives the loss of a worker mid-fit; bad input is named."""
import os
import signal
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe", reason="the distributed fit needs the [dask] extra (dask[dataframe])")
pytest.importorskip("distributed", reason="the distributed fit needs the [dask] extra (distributed)")

import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from _synthetic import TASKS, four_task_data  # noqa: E402
from mtl_classic import MultiTaskData, MultiTaskMF, Task  # noqa: E402
from mtl_classic import distributed as mdist  # noqa: E402

KW = dict(factors=6, iterations=4, dtype="float64", random_state=0, show_progress=False)
CONFIGS = {
    # factors=16: private_factors="auto" sizes each of the four tasks' blocks from its pairs' coverage (cap 2)
    "cg": dict(tasks=TASKS, factors=16),
    # exact rows and heads, whole-data item biases, task-private factors, plain CG-free path, alpha from the data
    "exact": dict(tasks=[Task("view", weight=0.5, item_bias=True, alpha="auto"), Task("buy"), Task("rating", kind="regression"),
                         Task("liked", kind="binary")], solver="cholesky", private_factors=1, factors=10),
}
# popularity-weighted negatives (s_i from the items' audiences): the preconditioned CG path with per-item scales, and
# the exact path with a whole-data item bias
CONFIGS.update({f"{name}+popularity": {**cfg, "negative_popularity": 0.5} for name, cfg in list(CONFIGS.items())})


def events_of(data, seed=0):
    """The data's observations as an event table in a shuffled order (one row per observation, value column)."""
    frames = []
    for name, m in data.matrices.items():
        c = m.tocoo()
        frames.append(pd.DataFrame({"user": data.user_map.ids[c.row], "item": data.item_map.ids[c.col],
                                    "task": name, "value": c.data}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def events():
    return events_of(four_task_data(n_users=60, n_items=40))


@pytest.fixture(scope="module")
def local_fits(events):
    data = MultiTaskData.from_events(events, value_col="value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: MultiTaskMF(**{**KW, **cfg}).fit(data) for name, cfg in CONFIGS.items()}


def _fit(client, events, cfg, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mdist.fit(MultiTaskMF(**{**KW, **cfg}), dd.from_pandas(events, npartitions=3), client,
                         value_col="value", n_blocks=3, **kwargs)


def _assert_same_fit(a, b, rtol=1e-8):
    la, lb = np.asarray(a.loss_history_), np.asarray(b.loss_history_)
    assert la.shape == lb.shape
    assert np.all(np.abs(la - lb) <= 1e-6 * np.abs(la)), np.abs(la - lb) / np.abs(la)
    pa, pb = a.fitted_params_.to_arrays(), b.fitted_params_.to_arrays()
    assert set(pa) == set(pb)
    for name in pa:
        if pa[name] is None:
            assert pb[name] is None
            continue
        scale = max(float(np.max(np.abs(pa[name]))), 1e-12)
        assert np.max(np.abs(pa[name] - pb[name])) <= rtol * scale, name


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_distributed_fit_is_the_local_fit(client, events, local_fits, config, tmp_path):
    local = local_fits[config]
    dist = _fit(client, events, CONFIGS[config])
    assert dist.n_iter_ == local.n_iter_ == KW["iterations"]
    # the objective per sweep to 1e-6 relative (the bar; measured: ~1e-15), the arrays to round-off
    _assert_same_fit(local, dist)
    assert dist.cross_tasks_ == local.cross_tasks_ and dist.reference_task_ == local.reference_task_
    assert dist.private_factors_ == local.private_factors_
    assert [t.alpha for t in dist.tasks_] == pytest.approx([t.alpha for t in local.tasks_], rel=1e-12)
    assert list(dist.user_map_.ids) == list(local.user_map_.ids)
    for name in local.data_.task_names:
        assert (dist.data_.matrices[name] != local.data_.matrices[name]).nnz == 0
    # a normal fitted estimator: recommend, predict, save and load
    users = list(local.user_map_.ids[:5])
    ids_l, scores_l = local.recommend(users, n=5, task="buy")
    ids_d, scores_d = dist.recommend(users, n=5, task="buy")
    np.testing.assert_allclose(scores_d, scores_l, rtol=1e-8, atol=1e-10)
    items = list(local.item_map_.ids[:5])
    np.testing.assert_allclose(dist.predict("liked", users, items), local.predict("liked", users, items), rtol=1e-8)
    dist.save(tmp_path / "model")
    loaded = MultiTaskMF.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.recommend(users, n=5, task="buy")[0], ids_d)
    stats = dist.distributed_stats_
    assert stats["n_workers"] == 2 and len(stats["sweeps"]) == KW["iterations"]
    assert stats["sweeps"][0]["bytes"]["user half-sweep"] > 0
    if CONFIGS[config].get("negative_popularity"):
        _assert_same_item_weights(local, dist, loaded, local_fits[config.split("+")[0]])


def _assert_same_item_weights(local, dist, loaded, uniform):
    """A fit with popularity-weighted negatives: the weights change the fit, and a fold-in of items uses the fit's
    weights on the distributed model (and on its saved copy, which counts them again from ``data_``) as on the
    local one."""
    from mtl_classic.negatives import fitted_negative_scale
    assert np.abs(local.item_factors_ - uniform.item_factors_).max() > 1e-3
    s = fitted_negative_scale(local)
    assert s.std() > 0.05
    for model in (dist, loaded):
        np.testing.assert_allclose(fitted_negative_scale(model), s, rtol=1e-12)
    columns = {n: local.data_.matrices[n][:, :5] for n in local.data_.task_names}
    expected = local.fold_in_items(columns)[0]
    for model in (dist, loaded):
        np.testing.assert_allclose(model.fold_in_items(columns)[0], expected, rtol=1e-7, atol=1e-10)


def test_the_fit_survives_the_loss_of_a_worker(client, events, local_fits):
    """A worker process is killed (SIGKILL) in the middle of the second sweep; Dask rebuilds its blocks from the
    events and the sweep is finished (or run again from the last completed sweep): the result is the undisturbed
    fit's."""
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    killed = []

    def kill_soon():
        time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])

    killer = threading.Thread(target=kill_soon, daemon=True)

    def callback(iteration, objective):
        if iteration == 1:
            killer.start()
        elif iteration == 2:   # a sweep faster than the sleep: the kill lands before the third one, never after
            killer.join(timeout=30)
        return False

    dist = _fit(client, events, CONFIGS["cg"], callback=callback)
    assert killed, "the worker was not killed during the fit"
    client.wait_for_workers(2, timeout=60)
    assert pids[0] not in client.run(os.getpid).values()
    _assert_same_fit(local_fits["cg"], dist)


def test_bad_input_is_named(client, events):
    with pytest.raises(ValueError, match="'value'"):
        mdist.fit(MultiTaskMF(tasks=TASKS, **KW), dd.from_pandas(events.drop(columns="value"), npartitions=2),
                  client, value_col="value")
    bad = events.copy()
    bad.loc[3, "value"] = np.nan
    with pytest.raises(ValueError, match="column 'value' has 1 NaN"):
        mdist.fit(MultiTaskMF(tasks=TASKS, **KW), dd.from_pandas(bad, npartitions=2), client, value_col="value")
    with pytest.raises(ValueError, match="'cart'"):
        mdist.fit(MultiTaskMF(tasks=TASKS + [Task("cart")], **KW), dd.from_pandas(events, npartitions=2), client,
                  value_col="value")
    with pytest.raises(ValueError, match="'liked'"):   # a task of the data that tasks= leaves out
        mdist.fit(MultiTaskMF(tasks=TASKS[:3], **KW), dd.from_pandas(events, npartitions=2), client,
                  value_col="value")
    negative = events.copy()
    negative.loc[negative.index[negative.task == "view"][0], "value"] = -1.0
    with pytest.raises(ValueError, match="'view'"):
        mdist.fit(MultiTaskMF(tasks=TASKS, **KW), dd.from_pandas(negative, npartitions=2), client,
                  value_col="value")


def _side_frames(data, seed=0):
    """Item x genre and user x query pairs for ``data``'s ids, with a few ids the events do not have (dropped)."""
    rng = np.random.default_rng(seed)
    items, users = list(data.item_map.ids), list(data.user_map.ids)
    genres = pd.DataFrame({"item": items + ["no-such-item"], "genre": [f"g{j % 5}" for j in range(len(items) + 1)]})
    genres = pd.concat([genres, pd.DataFrame({"item": items[::3], "genre": "g9"})], ignore_index=True)
    queries = pd.DataFrame({"user": rng.choice(users, 80), "query": rng.choice([f"q{j}" for j in range(7)], 80),
                            "value": rng.integers(1, 3, 80).astype(float)})
    ages = pd.DataFrame({"user": users[::2], "column": "age", "value": 30.0 + rng.normal(0, 5, len(users[::2]))})
    vip = pd.DataFrame({"user": users[1::3], "column": "vip", "value": (rng.random(len(users[1::3])) < 0.4) * 1.0})
    return {"genre": genres}, {"query": queries, "age": ages, "vip": vip}


# intercepts on the item side, per-entry confidences (query counts) and an observed-only value on the user side
SIDE_TASKS = [Task("genre", side="item", biases=True), Task("query", side="user", weight=0.5, alpha=2.0),
              Task("age", side="user", kind="regression", biases=True, weight=0.01),
              Task("vip", side="user", kind="binary", biases=True, weight=0.3)]


@pytest.mark.parametrize("negative_popularity", [0.0, 0.5])
def test_side_matrices_in_the_distributed_fit_are_the_local_fit(client, events, negative_popularity):
    """(with popularity-weighted negatives the item rows' side matrices add an unscaled part to s_i A0)"""
    data = MultiTaskData.from_events(events, value_col="value")
    item_side, user_side = _side_frames(data)
    cfg = dict(tasks=TASKS + SIDE_TASKS, factors=16, negative_popularity=negative_popularity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = MultiTaskMF(**{**KW, **cfg}).fit(data.with_side(user_side=user_side, item_side=item_side))
    dist = _fit(client, events, cfg, user_side=user_side, item_side=item_side)
    _assert_same_fit(local, dist)
    for name in ("genre", "query", "age", "vip"):
        np.testing.assert_allclose(dist.side_factors_[name], local.side_factors_[name], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(dist.side_intercepts_[name], local.side_intercepts_[name], rtol=1e-8, atol=1e-12)
        assert dist.data_.side[name].columns.to_list() == local.data_.side[name].columns.to_list()
    assert dist.data_.report["side_rows_dropped"] == {"query": 0, "age": 0, "vip": 0, "genre": 1}
    assert np.any(dist.side_intercepts_["genre"] != 0) and not np.any(dist.side_intercepts_["query"])
    assert dist.side_intercepts_["age"][0] == pytest.approx(local.side_intercepts_["age"][0], rel=1e-8)
    # a fold-in from the side rows alone works on the distributed model as on the local one
    rows = {"genre": local.data_.side["genre"].matrix[:3]}
    np.testing.assert_allclose(dist.fold_in_items(rows)[0], local.fold_in_items(rows)[0], rtol=1e-7, atol=1e-10)
    with pytest.raises(ValueError, match="already a task"):
        _fit(client, events, cfg, item_side={"view": item_side["genre"]})
    with pytest.raises(ValueError, match="does not name"):
        _fit(client, events, dict(tasks=TASKS, factors=16), item_side=item_side)


def test_a_sweep_run_again_restores_the_side_matrices_column_factors(client, events, monkeypatch):
    """A sweep that loses data is run again from the checkpoint, the side matrices' column factors included (the
    driver updates them in place): the result is the undisturbed fit's."""
    from mtl_classic import _distributed_driver
    data = MultiTaskData.from_events(events, value_col="value")
    item_side, user_side = _side_frames(data, seed=1)
    cfg = dict(tasks=TASKS + SIDE_TASKS, factors=16)
    undisturbed = _fit(client, events, cfg, user_side=user_side, item_side=item_side)
    original, calls = _distributed_driver.Driver._sweep, []

    def sweep_then_lose(self, params):
        total = original(self, params)           # the side factors have moved; then the sweep "loses" a worker
        calls.append(1)
        if len(calls) == 2:
            raise OSError("simulated loss after the side factors moved")
        return total

    monkeypatch.setattr(_distributed_driver.Driver, "_sweep", sweep_then_lose)
    dist = _fit(client, events, cfg, user_side=user_side, item_side=item_side)
    assert dist.distributed_stats_["retries"] == 1
    _assert_same_fit(undisturbed, dist, rtol=1e-12)
    for name in ("genre", "query", "age", "vip"):
        np.testing.assert_array_equal(dist.side_factors_[name], undisturbed.side_factors_[name])


def test_an_item_feature_in_the_distributed_fit_is_the_local_fit(client, events):
    from _synthetic import TASKS as BASE
    data = MultiTaskData.from_events(events, value_col="value")
    items = list(data.item_map.ids)
    sales = pd.DataFrame({"item": items, "column": "log_sales",
                          "value": np.log1p(np.arange(len(items)) % 7).astype(float)})
    tasks = [Task(t.name, kind=t.kind, weight=t.weight, item_feature="sales") if t.kind == "implicit" else t
             for t in BASE]
    cfg = dict(tasks=tasks, factors=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = MultiTaskMF(**{**KW, **cfg}).fit(data.with_side(item_side={"sales": sales}))
    dist = _fit(client, events, cfg, item_side={"sales": sales})
    _assert_same_fit(local, dist)
    assert dist.item_feature_weights_ == pytest.approx(local.item_feature_weights_, rel=1e-8)
    assert all(abs(g) > 0 for g in local.item_feature_weights_.values())
