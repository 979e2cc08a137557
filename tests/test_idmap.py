import json

import numpy as np
import pytest

from mtl_classic.data import IdMap


def test_str_ids_round_trip():
    m = IdMap(["b", "a", "c"])
    assert len(m) == 3
    assert m.ids.dtype == object
    assert "a" in m and "z" not in m
    np.testing.assert_array_equal(m.index(["c", "b"]), [2, 0])
    assert m.index(["c"]).dtype == np.int64
    np.testing.assert_array_equal(m.external([1, 2]), np.array(["a", "c"], dtype=object))
    np.testing.assert_array_equal(m.index("a"), [1])  # one id, not its characters


def test_int_ids_are_int64_and_json_round_trip():
    m = IdMap([10, 3, np.int64(7)])
    assert m.ids.dtype == np.int64
    lst = m.to_list()
    assert lst == [10, 3, 7] and all(type(v) is int for v in lst)
    back = IdMap.from_list(json.loads(json.dumps(lst)))
    assert back == m
    s = IdMap(["x", "y"])
    assert IdMap.from_list(json.loads(json.dumps(s.to_list()))) == s


def test_mixed_and_tuple_ids():
    m = IdMap([1, "1", ("u", 2)])
    assert m.ids.dtype == object
    np.testing.assert_array_equal(m.index([("u", 2), "1", 1]), [2, 1, 0])


def test_unknown_raise_names_ids_and_count():
    m = IdMap(list(range(3)))
    with pytest.raises(KeyError, match=r"7 unknown id\(s\): 3, 4, 5, 6, 7 \(showing 5 of 7\)"):
        m.index([0, 3, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(m.index([2, 99, "x"], unknown="ignore"), [2, -1, -1])
    with pytest.raises(ValueError, match="unknown must be"):
        m.index([0], unknown="drop")


@pytest.mark.parametrize("ids, exc, msg", [
    (["a", None], ValueError, "non-null"),
    ([1.0, float("nan")], ValueError, "non-null"),
    (["a", "b", "a"], ValueError, "unique"),
    ([[1], [2]], TypeError, "hashable"),
])
def test_bad_ids(ids, exc, msg):
    with pytest.raises(exc, match=msg):
        IdMap(ids)


def test_external_out_of_range():
    m = IdMap(["a", "b"])
    with pytest.raises(IndexError, match="out of range"):
        m.external([2])
    with pytest.raises(IndexError, match="out of range"):
        m.external([-1])


def test_empty_and_vectorised_lookup():
    assert len(IdMap([])) == 0
    ids = np.arange(100_000) * 3
    m = IdMap(ids)
    q = np.array([299_997, 0, 3])
    np.testing.assert_array_equal(m.index(q), [99_999, 0, 1])
    assert m.index(np.array([], dtype=np.int64)).shape == (0,)


# ---- numpy-only IdMap (mtl_classic._ids) ----
def test_kind_names_the_ids_in_messages():
    m = IdMap(["a", "b"], kind="user")
    with pytest.raises(KeyError, match=r"3 unknown user id\(s\): 'x', 'y', 'z'\."):
        m.index(["a", "x", "y", "z", "x"])
    with pytest.raises(KeyError, match=r"1 unknown item id\(s\): 9\."):
        IdMap([1, 5], kind="item").index([9])
    with pytest.raises(KeyError, match=r"^'1 unknown id\(s\): 9\.'$"):  # no kind: the plain text
        IdMap([1, 5]).index([9])
    assert m.kind == "user" and IdMap([1]).kind is None
    assert "kind='user'" in repr(m) and repr(IdMap([1, 2])) == "IdMap(n=2, ids=[1, 2])"
    assert m == IdMap(["a", "b"])  # kind is a label, not part of the ids
    assert IdMap.from_list(m.to_list(), kind="user").kind == "user"
    with pytest.raises(TypeError, match="kind"):
        IdMap(["a"], kind=3)


@pytest.mark.parametrize("ids", [list(range(10, 20)), [40, 10, 30, 20, -5, 2 ** 62]], ids=["contiguous", "sparse"])
def test_int_ids_with_non_integer_queries_are_unknown(ids):
    m = IdMap(ids)
    assert m.ids.dtype == np.int64
    odd = ["abc", 1.5, True, False, np.True_, 2 ** 70, -2 ** 70, None, float("nan"), float("inf"), b"10", (10,),
           [10], np.datetime64("2020-01-01"), "10"]
    np.testing.assert_array_equal(m.index(odd, unknown="ignore"), np.full(len(odd), -1))
    for value in odd:
        assert value not in m
    # an integer-valued number is the id it equals (as for dict keys), in any container
    first = ids[0]
    for value in (first, np.int8(first), float(first), np.float32(first)):
        assert value in m
        np.testing.assert_array_equal(m.index([value, "abc"], unknown="ignore"), [0, -1])
    np.testing.assert_array_equal(m.index(np.array([float(first), 0.5, np.nan]), unknown="ignore"), [0, -1, -1])
    np.testing.assert_array_equal(m.index(np.array([first, 2 ** 64 - 1], dtype=np.uint64), unknown="ignore"), [0, -1])
    np.testing.assert_array_equal(m.index(np.array([True, False]), unknown="ignore"), [-1, -1])
    np.testing.assert_array_equal(m.index(np.array(["10", "abc"]), unknown="ignore"), [-1, -1])
    with pytest.raises(KeyError, match=r"3 unknown id\(s\): 'abc', 1.5, 1180591620717411303424\."):
        m.index(["abc", first, 1.5, 2 ** 70])


def test_non_contiguous_int_ids():
    rng = np.random.default_rng(0)
    ids = rng.choice(10 ** 12, size=5000, replace=False)
    m = IdMap(ids)
    assert m.ids.dtype == np.int64 and not m._contiguous
    pick = rng.integers(0, len(ids), size=3000)  # long enough for the sorted-query path
    absent = np.setdiff1d(rng.integers(0, 10 ** 12, size=100), ids)
    query = np.concatenate([ids[pick], absent])
    expected = np.concatenate([pick, np.full(len(absent), -1)])
    np.testing.assert_array_equal(m.index(query, unknown="ignore"), expected)
    np.testing.assert_array_equal(m.index(query[:10], unknown="ignore"), expected[:10])  # short query path
    np.testing.assert_array_equal(m.index(query.tolist(), unknown="ignore"), expected)
    np.testing.assert_array_equal(m.external(pick), ids[pick])
    extreme = IdMap([2 ** 63 - 1, -2 ** 63, 0])  # int64 limits: no overflow in the lookups
    np.testing.assert_array_equal(extreme.index([-2 ** 63, 0, 2 ** 63 - 1, 1, 2 ** 63], unknown="ignore"),
                                  [1, 2, 0, -1, -1])
    # a contiguous range that is not sorted is not the fast path, and still right
    shuffled = IdMap([3, 1, 2])
    np.testing.assert_array_equal(shuffled.index([1, 2, 3, 4], unknown="ignore"), [1, 2, 0, -1])
    with pytest.raises(ValueError, match=r"2 id\(s\) repeat: 5, 3; the first repeat is at position 2"):
        IdMap([5, 3, 5, 3, 9, 5])


def test_object_ids_compare_like_dict_keys():
    m = IdMap(["a", 1, 2.5, ("u", 2), b"x", "日本"])
    assert m.ids.dtype == object
    np.testing.assert_array_equal(
        m.index([1.0, True, np.int64(1), np.float32(2.5), ("u", 2.0), np.str_("a"), np.bytes_(b"x"), "日本"]),
        [1, 1, 1, 2, 3, 0, 4, 5])
    np.testing.assert_array_equal(m.index([b"a", "x", 2, [1], {"a": 1}], unknown="ignore"), [-1] * 5)
    assert "a" in m and ("u", 2) in m and [1] not in m and 3 not in m
    with pytest.raises(KeyError, match=r"2 unknown id\(s\): \[1\], 'zz'\."):
        m.index([[1], "zz", "a"])
    with pytest.raises(ValueError, match=r"1 id\(s\) repeat: 1.0; the first repeat is at position 1"):
        IdMap([1, 1.0, "a"])
    with pytest.raises(ValueError, match="repeat: True"):
        IdMap(["a", 1, True])


@pytest.mark.parametrize("ids, position", [
    (["a", None], 1),
    ([None, "a"], 0),
    (["a", float("nan")], 1),
    ([np.float32("nan"), "a"], 0),
    (np.array([1.5, np.nan]), 1),
    (["a", np.datetime64("NaT")], 1),
    (["a", np.timedelta64("NaT")], 1),
    (np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"), 1),
    (np.array(["NaT", "2020-01-01"], dtype="datetime64[ns]"), 0),
])
def test_null_ids_rejected_with_count_and_position(ids, position):
    with pytest.raises(ValueError, match=rf"non-null; found 1 null id\(s\), first at position {position}\."):
        IdMap(ids)


def test_pandas_nulls_and_inputs():
    pd = pytest.importorskip("pandas")
    for null in (pd.NaT, pd.NA):
        with pytest.raises(ValueError, match=r"found 2 null id\(s\), first at position 1"):
            IdMap(["a", null, None])
    with pytest.raises(ValueError, match="non-null"):
        IdMap(pd.Series([1, None], dtype="Int64"))
    m = IdMap(pd.Series(["b", "a"]), kind="user")
    assert m.ids.dtype == object and m.to_list() == ["b", "a"]
    np.testing.assert_array_equal(m.index(pd.Series(["a", "b"])), [1, 0])
    n = IdMap(pd.Index([7, 9]))
    assert n.ids.dtype == np.int64
    np.testing.assert_array_equal(n.index(pd.Series([9, 7, 8]), unknown="ignore"), [1, 0, -1])
    ts = IdMap([pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")])
    np.testing.assert_array_equal(ts.index([np.datetime64("2020-01-02T00:00:00"), pd.Timestamp("2020-01-01")]),
                                  [1, 0])


def test_import_does_not_load_pandas():
    import subprocess
    import sys

    # building and querying maps of both kinds too: no lazy pandas import on the way
    snippet = ("import sys; from mtl_classic._ids import IdMap; m = IdMap(['a', 'b'], kind='user'); "
               "assert list(m.index(['b'])) == [1] and list(IdMap([3, 1]).index([1])) == [1]; "
               "print(','.join(m for m in ('pandas', 'sklearn', 'numba') if m in sys.modules) or 'none')")
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_one_class_for_both_import_paths():
    from mtl_classic._ids import IdMap as Core
    from mtl_classic.data.idmap import IdMap as Legacy

    assert Core is Legacy is IdMap
