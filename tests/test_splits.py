import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData, given_test_pairs, leave_last_out, random_holdout


@pytest.fixture
def data():
    df = pd.DataFrame({
        "user": [0, 0, 0, 1, 1, 2, 0, 1],
        "item": [0, 1, 2, 0, 3, 1, 3, 2],
        "task": ["buy"] * 6 + ["cart"] * 2,
        "value": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
        "ts": [10, 30, 20, 5, 5, 7, 99, 1],
    })
    return MultiTaskData.from_events(df, value_col="value", timestamp_col="ts")


def _pairs(m):
    c = m.tocoo()
    return sorted(zip(c.row.tolist(), c.col.tolist(), c.data.tolist()))


def test_leave_last_out_holds_latest_and_keeps_aux(data):
    split = leave_last_out(data, "buy")
    # user 0: latest is item 1 (ts 30, value 0 kept); user 1: tie at ts 5 -> larger item 3; user 2: single -> kept
    assert _pairs(split.test) == [(0, 1, 0.0), (1, 3, 0.0)]
    assert _pairs(split.train.matrices["buy"]) == [(0, 0, 1.0), (0, 2, 1.0), (1, 0, 1.0), (2, 1, 1.0)]
    assert split.train.matrices["cart"] is data.matrices["cart"]  # auxiliary task untouched
    ts = split.train.timestamps["buy"]
    np.testing.assert_array_equal(ts.indices, split.train.matrices["buy"].indices)
    np.testing.assert_array_equal(ts.data, [10, 20, 5, 7])
    assert split.info["n_test_pairs"] == 2 and split.info["n_users_skipped"] == 1
    np.testing.assert_array_equal(split.test_users, [0, 1])
    assert split.train.user_map is data.user_map


def test_leave_last_out_n_holdout_and_min_train(data):
    split = leave_last_out(data, "buy", n_holdout=2, min_train=1)
    assert _pairs(split.test) == [(0, 1, 0.0), (0, 2, 1.0)]
    split = leave_last_out(data, "buy", n_holdout=1, min_train=0)
    assert split.test.nnz == 3


def test_leave_last_out_needs_timestamps(data):
    no_ts = data.with_matrices(data.matrices)
    with pytest.raises(ValueError, match="no timestamps"):
        leave_last_out(no_ts, "buy")
    with pytest.raises(ValueError, match="unknown target task 'view'"):
        leave_last_out(data, "view")
    with pytest.raises(ValueError, match="n_holdout"):
        leave_last_out(data, "buy", n_holdout=0)


def test_random_holdout_seeded_and_per_user():
    rng = np.random.default_rng(1)
    m = sp.random(40, 30, density=0.3, format="csr", random_state=2)
    aux = sp.random(40, 30, density=0.1, format="csr", random_state=3)
    data = MultiTaskData.from_matrices({"buy": m, "view": aux})
    a = random_holdout(data, "buy", test_fraction=0.25, random_state=7)
    b = random_holdout(data, "buy", test_fraction=0.25, random_state=7)
    c = random_holdout(data, "buy", test_fraction=0.25, random_state=8)
    assert (a.test != b.test).nnz == 0
    assert (a.test != c.test).nnz > 0
    lengths = np.diff(data.matrices["buy"].indptr)
    n_test = np.diff(a.test.indptr)
    expected = np.minimum(np.maximum(1, np.rint(0.25 * lengths)), np.maximum(lengths - 1, 0))
    np.testing.assert_array_equal(n_test, expected)
    # train + test = original, disjoint
    total = a.train.matrices["buy"] + a.test
    assert abs(total - data.matrices["buy"]).max() == 0
    assert a.train.matrices["buy"].multiply(a.test).nnz == 0
    assert a.train.matrices["view"] is data.matrices["view"]
    del rng


def test_random_holdout_bad_fraction(data):
    with pytest.raises(ValueError, match="test_fraction"):
        random_holdout(data, "buy", test_fraction=1.5)


def test_given_test_pairs_removes_overlap(data):
    test = sp.csr_matrix((np.array([1.0, 1.0]), (np.array([0, 2]), np.array([2, 3]))), shape=data.shape)
    split = given_test_pairs(data, "buy", test)
    assert split.info["n_removed_from_train"] == 1  # (0, 2) was a training buy
    assert (0, 2, 1.0) not in _pairs(split.train.matrices["buy"])
    assert split.test.nnz == 2 and split.info["n_test_users"] == 2
    with pytest.raises(ValueError, match="shape"):
        given_test_pairs(data, "buy", sp.csr_matrix((2, 2)))


def test_also_remove_same_event_tasks_and_leak_warning():
    df = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 2], "r": [4.0, 2.0, 5.0, 1.0], "ts": [1, 2, 3, 4]})
    events = pd.concat([df.assign(task="rated", value=1.0), df.assign(task="rating", value=df["r"]),
                        pd.DataFrame({"user": [0], "item": [1], "task": ["tagged"], "value": [1.0], "ts": [9]})])
    data = MultiTaskData.from_events(events, value_col="value", timestamp_col="ts")
    with pytest.warns(UserWarning, match=r"still observed.*\['rating'\].*also_remove"):
        leaky = leave_last_out(data, "rated")
    assert leaky.info["test_pairs_in_other_tasks"] == {"rating": 2, "tagged": 1}
    split = leave_last_out(data, "rated", also_remove=["rating"])
    assert _pairs(split.test) == [(0, 1, 1.0), (1, 2, 1.0)]
    assert _pairs(split.train.matrices["rating"]) == [(0, 0, 4.0), (1, 0, 5.0)]
    assert split.train.timestamps["rating"].nnz == 2
    assert split.train.matrices["tagged"].nnz == 1  # a genuine auxiliary behaviour stays
    assert split.info["also_removed"] == {"rating": 2}
    assert split.info["test_pairs_in_other_tasks"] == {"rating": 0, "tagged": 1}
    with pytest.raises(ValueError, match="also_remove names unknown"):
        random_holdout(data, "rated", also_remove=["view"])
    test = split.test
    given = given_test_pairs(data, "rated", test, also_remove="rating")
    assert given.train.matrices["rating"].nnz == 2
