import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData


def _events():
    return pd.DataFrame({
        "user": ["u2", "u1", "u1", "u2", "u1", "u3"],
        "item": ["i1", "i2", "i2", "i1", "i3", "i1"],
        "task": ["buy", "buy", "buy", "cart", "cart", "buy"],
    })


def _assert_canonical(m):
    assert isinstance(m, sp.csr_matrix) and m.dtype == np.float64
    assert m.has_sorted_indices
    for r in range(m.shape[0]):
        cols = m.indices[m.indptr[r]:m.indptr[r + 1]]
        assert np.all(np.diff(cols) > 0)


def test_from_events_counts_and_index():
    data = MultiTaskData.from_events(_events())
    assert data.task_names == ["buy", "cart"]
    assert data.n_users == 3 and data.n_items == 3
    assert data.user_map.ids.tolist() == ["u1", "u2", "u3"]  # sorted
    buy = data.matrices["buy"]
    _assert_canonical(buy)
    np.testing.assert_array_equal(buy.toarray(), [[0, 2, 0], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(data.matrices["cart"].toarray(), [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    assert data.nnz("buy") == 3 and data.nnz("cart") == 2
    assert data.report["duplicates"] == {"buy": 1, "cart": 0}
    assert data.report["n_events"] == 6
    assert data.timestamps is None


def test_from_events_values_mean_keeps_explicit_zeros():
    df = pd.DataFrame({"user": [1, 1, 2, 2], "item": [5, 5, 6, 7], "task": ["r"] * 4, "v": [4.0, 2.0, 0.0, 1.0]})
    data = MultiTaskData.from_events(df, value_col="v")
    m = data.matrices["r"]
    assert data.user_map.ids.dtype == np.int64
    assert m.nnz == 3  # the rating 0 is an observation
    assert m[0, 0] == 3.0 and m[1, 1] == 0.0 and m[1, 2] == 1.0
    assert data.report["aggregate"] == {"r": "mean"}


@pytest.mark.parametrize("rule, expected", [("sum", 6.0), ("mean", 2.0), ("max", 4.0), ("last", 2.0)])
def test_aggregate_rules_and_last_by_timestamp(rule, expected):
    df = pd.DataFrame({"user": [1, 1, 1], "item": [1, 1, 1], "task": ["t"] * 3, "v": [2.0, 4.0, 0.0],
                       "ts": [30, 10, 20]})
    data = MultiTaskData.from_events(df, value_col="v", timestamp_col="ts", aggregate={"t": rule})
    assert data.matrices["t"][0, 0] == expected
    assert data.timestamps["t"][0, 0] == 30  # latest timestamp of the pair
    assert data.report["duplicates"] == {"t": 2}


def test_timestamps_pattern_and_datetime():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "task": ["t", "t", "t"],
                       "ts": pd.to_datetime(["1970-01-01 00:00:10", "1970-01-01 00:00:00", "1970-01-02 00:00:00"])})
    data = MultiTaskData.from_events(df, timestamp_col="ts")
    ts = data.timestamps["t"]
    m = data.matrices["t"]
    np.testing.assert_array_equal(ts.indptr, m.indptr)
    np.testing.assert_array_equal(ts.indices, m.indices)
    assert ts.nnz == 3  # the timestamp 0 is kept
    np.testing.assert_array_equal(ts.data, [10.0, 0.0, 86400.0])


@pytest.mark.parametrize("df, kwargs, match", [
    (pd.DataFrame({"user": [1], "item": [2]}), {}, "column.*task_col='task'"),
    (pd.DataFrame({"user": [], "item": [], "task": []}), {}, "empty"),
    (pd.DataFrame({"user": [1, None], "item": [2, 3], "task": ["t", "t"]}), {}, "'user'.*row 1"),
    (pd.DataFrame({"user": ["a", ""], "item": [2, 3], "task": ["t", "t"]}), {}, "'user'.*empty.*row 1"),
    (pd.DataFrame({"user": [1, 2], "item": [2, 3], "task": ["t", 5]}), {}, "'task'.*strings.*row 1"),
    (pd.DataFrame({"user": [1, 2], "item": [2, 3], "task": ["t", "t"], "v": [1.0, np.nan]}),
     {"value_col": "v"}, "'v'.*NaN.*row 1"),
    (pd.DataFrame({"user": [1, 2], "item": [2, 3], "task": ["t", "t"], "v": [np.inf, 1]}),
     {"value_col": "v"}, "'v'.*NaN/inf.*row 0"),
    (pd.DataFrame({"user": [1, 2], "item": [2, 3], "task": ["t", "t"], "v": ["1", "x"]}),
     {"value_col": "v"}, "'v'.*numeric.*row 1"),
    (pd.DataFrame({"user": [1, 2], "item": [2, 3], "task": ["t", "t"], "ts": [1, np.nan]}),
     {"timestamp_col": "ts"}, "'ts'.*row 1"),
    (pd.DataFrame({"user": [1], "item": [2], "task": ["t"]}), {"aggregate": "median"}, "aggregate"),
    (pd.DataFrame({"user": [1], "item": [2], "task": ["t"]}), {"aggregate": {"x": "sum"}}, "unknown task"),
])
def test_from_events_bad_input(df, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiTaskData.from_events(df, **kwargs)


def test_from_matrices_keeps_zeros_sums_duplicates_and_ids():
    coo = sp.coo_matrix((np.array([0.0, 1.0, 2.0, 3.0]), (np.array([0, 1, 1, 0]), np.array([2, 0, 0, 1]))),
                        shape=(2, 3))
    other = sp.csc_matrix(np.array([[1.0, 0, 0], [0, 0, 5.0]]))
    data = MultiTaskData.from_matrices({"a": coo, "b": other}, user_ids=["x", "y"], item_ids=[7, 8, 9])
    a = data.matrices["a"]
    _assert_canonical(a)
    assert a.nnz == 3 and a[0, 2] == 0.0 and a[1, 0] == 3.0
    assert data.report["duplicates"] == {"a": 1, "b": 0}
    assert data.item_map.index([9])[0] == 2
    assert data.shape == (2, 3)


def test_from_matrices_bad_input():
    m = sp.csr_matrix(np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        MultiTaskData.from_matrices({"a": m, "b": sp.csr_matrix(np.eye(3))})
    with pytest.raises(ValueError, match="user_ids"):
        MultiTaskData.from_matrices({"a": m}, user_ids=["x"])
    bad = m.copy()
    bad.data[1] = np.nan
    with pytest.raises(ValueError, match=r"'a'.*NaN/inf.*row 1, column 1"):
        MultiTaskData.from_matrices({"a": bad})
    with pytest.raises(TypeError, match="scipy.sparse"):
        MultiTaskData.from_matrices({"a": np.eye(2)})
    with pytest.raises(ValueError, match="non-empty"):
        MultiTaskData.from_matrices({})
    with pytest.raises(ValueError, match="pattern"):
        MultiTaskData.from_matrices({"a": m}, timestamps={"a": sp.csr_matrix(np.ones((2, 2)))})


def test_with_matrices_and_subset_tasks():
    data = MultiTaskData.from_events(_events())
    sub = data.subset_tasks(["cart"])
    assert sub.task_names == ["cart"] and sub.user_map is data.user_map
    with pytest.raises(ValueError, match="unknown task"):
        data.subset_tasks(["view"])
    new = data.with_matrices({"buy": sp.csr_matrix((3, 3))})
    assert new.task_names == ["buy"] and new.nnz("buy") == 0 and new.item_map is data.item_map
    with pytest.raises(ValueError, match="shape"):
        data.with_matrices({"buy": sp.csr_matrix((2, 3))})


def test_mixed_type_ids():
    df = pd.DataFrame({"user": ["b", 1, "a"], "item": [1, 2, 1], "task": ["t"] * 3})
    data = MultiTaskData.from_events(df)
    assert sorted(map(str, data.user_map.ids.tolist())) == ["1", "a", "b"]
    u = data.user_map.index([1])[0]
    assert data.matrices["t"][u, data.item_map.index([2])[0]] == 1.0


def test_last_without_timestamps_is_last_row_and_ties_keep_input_order():
    df = pd.DataFrame({"user": [1, 1, 1], "item": [1, 1, 1], "task": ["t"] * 3, "v": [2.0, 4.0, 0.0]})
    assert MultiTaskData.from_events(df, value_col="v", aggregate="last").matrices["t"][0, 0] == 0.0
    df["ts"] = [5, 5, 1]
    data = MultiTaskData.from_events(df, value_col="v", timestamp_col="ts", aggregate="last")
    assert data.matrices["t"][0, 0] == 4.0  # latest timestamp 5, tie -> the later row
