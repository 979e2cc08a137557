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
