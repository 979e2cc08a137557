"""Property-based tests of the library (hypothesis): random event frames through ``from_events`` -> ``fit`` ->
``recommend`` / ``predict`` -> ``save`` / ``load``.

Held for every frame: only ``ValueError`` / ``KeyError`` / ``TypeError`` with a message, never another exception;
event counts conserved (every row is in exactly one pair's count, duplicates counted and reported); ids round-trip
exactly (value and type); a saved and reloaded model (``MultiTaskMF.load`` and ``InferenceModel.load``) answers
exactly like the fitted one; a save interrupted part-way leaves the previous model loadable. Bounded: a few dozen
examples per property (about 10 s in all), fixed seeds, no deadline; ``MTL_PROPERTY_SCALE=20`` hunts with
random seeds and 20 times the examples."""
import collections
import math
import os
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (the [test] extra)")
from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mtl_classic import persistence  # noqa: E402
from mtl_classic.data import MultiTaskData  # noqa: E402
from mtl_classic.inference import InferenceModel  # noqa: E402
from mtl_classic.model import MultiTaskMF  # noqa: E402
from mtl_classic.tasks import Task  # noqa: E402

ALLOWED = (ValueError, KeyError, TypeError)
#: MTL_PROPERTY_SCALE=20 runs 20 times the examples from random seeds (a bug hunt); the default run is fixed.
SCALE = int(os.environ.get("MTL_PROPERTY_SCALE", "1"))


def bounded(n, **kwargs):
    return settings(max_examples=n * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                    suppress_health_check=list(HealthCheck), **kwargs)

# ids: small ints (collisions make duplicates), huge ints beyond int64, negative ints, unicode strings
int_ids = st.one_of(st.integers(0, 6), st.integers(-2 ** 70, 2 ** 70), st.sampled_from([2 ** 63, -2 ** 63 - 1]))
str_ids = st.one_of(st.sampled_from(["a", "b", "ü", "日本", "😀", "a b", "0", "1"]),
                    st.text(min_size=1, max_size=4))
task_names = st.sampled_from(["view", "buy", "cart", "ñ-task", "🛒"])


@st.composite
def event_frames(draw, bad=True):
    """A random long table of events and how to read and fit it: (frame, options for from_events, task kinds)."""
    id_style = draw(st.sampled_from(["int", "str", "mixed"]))
    ids = {"int": int_ids, "str": str_ids, "mixed": st.one_of(int_ids, str_ids)}[id_style]
    users = draw(st.lists(ids, min_size=1, max_size=6))
    items = draw(st.lists(ids, min_size=1, max_size=6))
    tasks = draw(st.lists(task_names, min_size=1, max_size=3, unique=True))
    n = draw(st.integers(1, 30))
    rows = draw(st.lists(st.tuples(st.sampled_from(users), st.sampled_from(items), st.sampled_from(tasks)),
                         min_size=n, max_size=n))
    dtype = draw(st.sampled_from([object, None]))          # None: pandas infers (int64 columns for small ints)
    frame = pd.DataFrame({"user": pd.Series([r[0] for r in rows], dtype=dtype),
                          "item": pd.Series([r[1] for r in rows], dtype=dtype),
                          "task": pd.Series([r[2] for r in rows], dtype=object)})
    options = {"value_col": None}
    kinds = {t: "implicit" for t in tasks}
    if draw(st.booleans()):
        options["value_col"] = "value"
        kinds = {t: draw(st.sampled_from(["implicit", "binary", "regression"])) for t in tasks}
        fits = {"implicit": st.one_of(st.integers(0, 5).map(float), st.floats(0, 1e6)),
                "binary": st.sampled_from([0.0, 1.0]),
                "regression": st.one_of(st.floats(-5, 5), st.floats(-1e6, 1e6), st.floats(-1e300, 1e300))}
        odd = st.one_of(st.floats(-1e308, 1e308), st.sampled_from([math.nan, math.inf, -math.inf]))
        frame["value"] = [draw(st.one_of(fits[kinds[r[2]]], odd) if bad else fits[kinds[r[2]]]) for r in rows]
    if draw(st.booleans()):
        options["timestamp_col"] = "ts"
        frame["ts"] = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
        options["aggregate"] = draw(st.sampled_from(["auto", "sum", "mean", "max", "last"]))
    if bad and draw(st.integers(0, 9)) == 0:                    # now and then an invalid id or task name
        column = draw(st.sampled_from(["user", "item", "task"]))
        frame[column] = frame[column].astype(object)
        frame.loc[draw(st.integers(0, n - 1)), column] = draw(st.sampled_from([None, "", "  ", math.nan]))
    used = set(frame["task"])
    if draw(st.integers(0, 9)) > 0:                             # else: a task of the model without any event
        kinds = {t: k for t, k in kinds.items() if t in used}
    return frame, options, kinds


def _key(v):
    """Ids compare like dict keys (docs/ARCHITECTURE.md): one key per id."""
    return v.item() if isinstance(v, np.generic) else v


def _same_ids(a, b):
    a, b = list(a), list(b)
    return len(a) == len(b) and all(type(_key(x)) is type(_key(y)) and _key(x) == _key(y) for x, y in zip(a, b))


def _check_message(exc):
    assert isinstance(exc, ALLOWED), f"{type(exc).__name__}: {exc}"
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    assert str(text).strip(), f"{type(exc).__name__} without a message"
    if os.environ.get("MTL_PROPERTY_LOG"):                    # a bug hunt collects the messages for reading
        with open(os.environ["MTL_PROPERTY_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{type(exc).__name__}: {str(text)[:200]}\n")


def _build(frame, options):
    try:
        return MultiTaskData.from_events(frame, **options)
    except ALLOWED as exc:
        _check_message(exc)
        return None


def _fit(data, kinds):
    tasks = [Task(name, kind=kind) for name, kind in kinds.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MultiTaskMF(tasks=tasks, factors=2, iterations=2, random_state=0).fit(data)


def _fit_checked(data, kinds):
    """The fitted model, or None after a named ValueError / KeyError / TypeError (bad labels, a task without
    events, ...)."""
    try:
        return _fit(data, kinds)
    except ALLOWED as exc:
        _check_message(exc)
        return None


# --------------------------------------------------------------------------------------------------------------------
@bounded(200)
@given(event_frames())
def test_from_events_conserves_counts_and_ids_or_raises_a_named_error(case):
    frame, options, _ = case
    data = _build(frame, options)
    if data is None:
        return
    report = data.report
    assert report["n_events"] == len(frame)
    pairs = collections.Counter((_key(u), _key(i), t) for u, i, t in zip(frame["user"], frame["item"], frame["task"]))
    per_task = collections.Counter(frame["task"])
    users = {_key(u) for u in frame["user"]}
    items = {_key(i) for i in frame["item"]}
    assert data.n_users == len(users) and data.n_items == len(items)
    assert {_key(u) for u in data.user_map.ids.tolist()} == users          # nothing lost, nothing invented
    assert {_key(i) for i in data.item_map.ids.tolist()} == items
    assert set(data.task_names) == set(per_task)
    total = 0
    for task, m in data.matrices.items():
        distinct = sum(1 for (_, _, t) in pairs if t == task)
        assert m.nnz == distinct == report["nnz"][task]
        assert report["duplicates"][task] == per_task[task] - distinct      # duplicates counted and reported
        total += m.nnz + report["duplicates"][task]
        if options["value_col"] is None and options.get("aggregate", "auto") in ("auto", "sum"):
            assert m.data.sum() == per_task[task]                             # every event in one pair's count
    assert total == len(frame)
    u = data.user_map.index([_key(x) for x in frame["user"]])
    i = data.item_map.index([_key(x) for x in frame["item"]])
    assert _same_ids(data.user_map.external(u).tolist(), frame["user"])       # ids round-trip: value and type
    assert _same_ids(data.item_map.external(i).tolist(), frame["item"])
    for task in data.task_names:                                              # every row's pair is stored
        rows = np.flatnonzero(frame["task"].to_numpy() == task)
        m = data.matrices[task]
        coo = m.tocoo()
        stored = set(zip(coo.row.tolist(), coo.col.tolist()))             # explicit zeros included
        assert all((u[r], i[r]) in stored for r in rows)


@bounded(60)
@given(event_frames(bad=False), st.integers(1, 4))
def test_fit_recommend_predict_save_load_round_trip(case, n):
    frame, options, kinds = case
    data = _build(frame, options)
    assume(data is not None)
    model = _fit_checked(data, kinds)
    if model is None:
        return
    users = data.user_map.ids.tolist()
    items = data.item_map.ids.tolist()
    task = data.task_names[0]
    with tempfile.TemporaryDirectory() as tmp:
        answers = []
        try:
            ids, scores = model.recommend(users, n=n, task=task)
            pred = model.predict(task, users, [items[j % len(items)] for j in range(len(users))])
            answers = [(ids, scores, pred)]
        except ALLOWED as exc:
            _check_message(exc)
        path = os.path.join(tmp, "model")
        model.save(path)
        loaded = MultiTaskMF.load(path)
        served = InferenceModel.load(path)
        mapped = InferenceModel.load(path, mmap_mode="r")
        assert _same_ids(loaded.user_map_.ids.tolist(), users) and _same_ids(loaded.item_map_.ids.tolist(), items)
        assert _same_ids(served.user_ids.ids.tolist(), users) and _same_ids(served.item_ids.ids.tolist(), items)
        for ids, scores, pred in answers:
            known = {_key(v) for v in items}
            assert all(_key(v) in known for v in np.asarray(ids).ravel().tolist())
            assert np.all(np.isfinite(pred))
            for other in (loaded, served, mapped):
                ids2, scores2 = other.recommend(users, n=n, task=task)
                assert _same_ids(np.asarray(ids2).ravel(), np.asarray(ids).ravel())
                assert np.array_equal(scores2, scores)
                pred2 = other.predict(task, users, [items[j % len(items)] for j in range(len(users))])
                assert np.array_equal(pred2, pred)
        del mapped


@bounded(40, phases=[Phase.generate])
@given(event_frames(bad=False), event_frames(bad=False), st.floats(0.0, 1.0), st.sampled_from(["arrays", "manifest"]))
def test_an_interrupted_save_leaves_the_previous_model_loadable(monkeypatch, first, second, fraction, stage):
    old, new = _build(*first[:2]), _build(*second[:2])
    assume(old is not None and new is not None)
    old_model, new_model = _fit_checked(old, first[2]), _fit_checked(new, second[2])
    assume(old_model is not None and new_model is not None)
    task = old.task_names[0]
    users = old.user_map.ids.tolist()
    expected = old_model.recommend(users, n=2, task=task)
    real_write = persistence.write_npz

    def partial_npz(path, arrays):                 # the arrays file is written part-way, then the disk "fails"
        real_write(path, arrays)
        with open(path, "r+b") as fh:
            fh.truncate(int(os.path.getsize(path) * fraction))
        raise OSError(28, "No space left on device")

    def failing_text(path, text):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text[:int(len(text) * fraction)])
        raise OSError(28, "No space left on device")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model")
        old_model.save(path)
        with monkeypatch.context() as m:
            if stage == "arrays":
                m.setattr(persistence, "write_npz", partial_npz)
            else:
                m.setattr(persistence, "_write_text", failing_text)
            with pytest.raises(OSError):
                new_model.save(path)
        assert sorted(os.listdir(path)) == ["arrays.npz", "model.json"]     # no temporary file left behind
        for loaded in (MultiTaskMF.load(path), InferenceModel.load(path)):
            ids, scores = loaded.recommend(users, n=2, task=task)
            assert _same_ids(np.asarray(ids).ravel(), np.asarray(expected[0]).ravel())
            assert np.array_equal(scores, expected[1])
        new_model.save(path)                                                  # and the next save succeeds
        assert _same_ids(MultiTaskMF.load(path).user_map_.ids.tolist(), new.user_map.ids.tolist())


@bounded(100)
@given(event_frames(bad=False), st.one_of(int_ids, str_ids, st.none(), st.floats(allow_nan=True),
                                          st.lists(st.integers(), max_size=2)), st.integers(-2, 5))
def test_queries_with_odd_ids_and_n_raise_only_named_errors(case, odd, n):
    frame, options, kinds = case
    data = _build(frame, options)
    assume(data is not None)
    model = _fit_checked(data, kinds)
    assume(model is not None)
    served = InferenceModel.from_model(model)
    task = data.task_names[0]
    item = data.item_map.ids.tolist()[0]
    calls = [lambda: model.recommend([odd], n=max(n, 0), task=task),
             lambda: model.predict(task, [odd], [item]),
             lambda: served.recommend([odd], n=n, task=task, unknown="popular"),
             lambda: served.predict(task, [odd], [item], unknown="popular"),
             lambda: served.recommend(data.user_map.ids.tolist()[:1], n=n, task=task, filter_items=[odd]),
             lambda: model.recommend(data.user_map.ids.tolist()[:1], n=n, task="no such task")]
    for call in calls:
        try:
            call()
        except ALLOWED as exc:
            _check_message(exc)


def test_a_save_interrupted_while_writing_the_arrays_keeps_the_previous_model(monkeypatch, tmp_path,
                                                                               four_task_model):
    """The example behind the property above: save_model used to delete model.json before writing the new
    arrays, so a save that failed part-way left a directory that no longer loaded."""
    path = str(tmp_path / "model")
    four_task_model.save(path)
    users = four_task_model.data_.user_map.ids.tolist()[:5]
    expected = four_task_model.recommend(users, n=3, task="buy")
    real_write = persistence.write_npz

    def partial_npz(tmp, arrays):
        real_write(tmp, arrays)
        with open(tmp, "r+b") as fh:
            fh.truncate(os.path.getsize(tmp) // 2)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(persistence, "write_npz", partial_npz)
    with pytest.raises(OSError):
        four_task_model.save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(path)) == ["arrays.npz", "model.json"]
    ids, scores = MultiTaskMF.load(path).recommend(users, n=3, task="buy")
    assert np.array_equal(ids, expected[0]) and np.array_equal(scores, expected[1])


@bounded(5)
@given(st.sampled_from([1e12, 1e16, 1e100, -1e300]))
def test_extreme_but_finite_regression_values_give_a_finite_model_or_a_named_error(value):
    events = pd.DataFrame({"user": [1, 0, 2, 1], "item": [1, 0, 1, 2], "task": ["a", "b", "a", "b"],
                           "value": [0.0, value, 1.0, 3.0]})
    data = MultiTaskData.from_events(events, value_col="value")
    model = _fit_checked(data, {"a": "implicit", "b": "regression"})   # a named ValueError (overflow) is allowed
    if model is not None:
        assert np.all(np.isfinite(model.predict("b", [0, 1, 2], [0, 0, 0])))
