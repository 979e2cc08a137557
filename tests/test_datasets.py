import json
from pathlib import Path

import numpy as np
import pytest

from mtl_classic.datasets import MOVIELENS_DIR, load_ghcf, load_movielens, load_movielens_items, load_pairs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _write(dirpath, files):
    dirpath.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (dirpath / name).write_text(text)
    return dirpath


# ---- GHCF --------------------------------------------------------------------------------------------------------
def test_load_ghcf_tiny(tmp_path):
    d = _write(tmp_path / "bb", {
        "train.txt": "0 1 2\n1 0\n\n2\n",
        "cart.txt": "0 1 2 3\n1 0 0\n",
        "test.txt": "0 3\n1 4\n3 2\n",
    })
    ds = load_ghcf(d)
    data, test = ds[:2]  # a named tuple
    assert test is ds.test
    assert data.task_names == ["cart", "buy"]
    assert data.shape == (4, 5)  # ids 0..max seen in any file, test included
    assert data.user_map.ids.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(data.matrices["buy"].toarray()[:2], [[0, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    assert data.matrices["cart"][1, 0] == 2.0  # repeated pair summed ...
    assert ds.report["duplicates"] == {"cart": 1, "buy": 0}  # ... and reported
    assert ds.report["blank_lines"]["train.txt"] == 1
    assert ds.test.nnz == 3 and ds.target == "buy" and ds.validation is None
    t = ds.report["test"]
    assert t["n_pairs_user_without_train"] == 1  # user 3
    assert t["n_pairs_item_without_train"] == 1  # item 4
    assert t["n_pairs_in_train_target"] == 0
    assert "kept" in ds.report["held_out_rule"]


@pytest.mark.parametrize("text, line, count", [
    ("0 1\n1 x\n2 y 3\n", 2, 2),
    ("0 1\n1 -2\n", 2, 1),
    ("0 1.5\n", 1, 1),
])
def test_load_ghcf_malformed_names_file_line_and_count(tmp_path, text, line, count):
    d = _write(tmp_path / "bad", {"train.txt": text, "cart.txt": "0 1\n", "test.txt": "0 1\n"})
    with pytest.raises(ValueError, match=rf"train.txt'.*{count} malformed line\(s\).*first bad line {line}"):
        load_ghcf(d)


def test_load_ghcf_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_ghcf(tmp_path / "nowhere")
    d = _write(tmp_path / "m", {"train.txt": "0 1\n", "test.txt": "0 1\n"})
    with pytest.raises(FileNotFoundError, match="cart.txt"):
        load_ghcf(d)
    d = _write(tmp_path / "e", {"train.txt": "\n\n", "cart.txt": "0 1\n", "test.txt": "0 1\n"})
    with pytest.raises(ValueError, match="empty"):
        load_ghcf(d)


# ---- pairs -------------------------------------------------------------------------------------------------------
def test_load_pairs_tiny(tmp_path):
    d = _write(tmp_path / "tm", {
        "buy.txt": "1 1\n1 2\n2 2\n2 2\n",
        "collect.txt": "3 3\n",
        "validation.txt": "1 3\n",
        "test.txt": "2 4\n4 1\n",
        "count.txt": json.dumps({"user": 4, "item": 4}),
    })
    ds = load_pairs(d)
    data = ds.data
    assert data.task_names == ["buy", "collect"]
    assert data.shape == (4, 4)
    assert data.user_map.ids.tolist() == [1, 2, 3, 4]  # external id = file id, index = id - 1
    assert data.matrices["buy"][1, 1] == 2.0 and ds.report["duplicates"]["buy"] == 1
    np.testing.assert_array_equal(ds.test.toarray()[[1, 3]], [[0, 0, 0, 1], [1, 0, 0, 0]])
    assert ds.validation[0, 2] == 1.0
    assert ds.report["test"]["n_pairs_user_without_train"] == 1  # user 4
    assert ds.report["test"]["n_pairs_item_without_train"] == 1  # item 4
    assert ds.report["validation"]["n_pairs"] == 1
    assert ds.report["users_without_train"] == 1


def test_load_pairs_errors(tmp_path):
    d = _write(tmp_path / "a", {"buy.txt": "1 1\n1 2 3\n4\n", "test.txt": "1 1\n"})
    with pytest.raises(ValueError, match=r"buy.txt'.*2 malformed line\(s\).*first bad line 2"):
        load_pairs(d)
    d = _write(tmp_path / "b", {"buy.txt": "1 1\n0 2\n", "test.txt": "1 1\n"})
    with pytest.raises(ValueError, match=r"buy.txt'.*below 1.*first bad line 2"):
        load_pairs(d)
    d = _write(tmp_path / "c", {"buy.txt": "1 1\n2 9\n", "test.txt": "1 1\n",
                                 "count.txt": '{"user": 2, "item": 5}'})
    with pytest.raises(ValueError, match=r"buy.txt'.*item ids outside 1 .. 5.*first bad line 2"):
        load_pairs(d)
    d = _write(tmp_path / "d", {"buy.txt": "", "test.txt": "1 1\n"})
    with pytest.raises(ValueError, match="empty"):
        load_pairs(d)
    with pytest.raises(ValueError, match="target 'purchase'"):
        load_pairs(tmp_path / "c", target="purchase")


# ---- MovieLens ---------------------------------------------------------------------------------------------------
def _ml(tmp_path, ratings, tags="userId,movieId,tag,timestamp\n1,10,fun,5\n1,10,fun,6\n"):
    return _write(tmp_path / "ml", {"ratings.csv": ratings, "tags.csv": tags})


def test_load_movielens_tiny(tmp_path):
    d = _ml(tmp_path, "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,2.5,200\n2,10,5.0,50\n")
    data = load_movielens(d)
    assert data.task_names == ["rated", "liked", "rating", "tagged"]
    assert data.user_map.ids.tolist() == [1, 2] and data.item_map.ids.tolist() == [10, 20]
    np.testing.assert_array_equal(data.matrices["liked"].toarray(), [[1, 0], [1, 0]])
    assert data.matrices["liked"].nnz == 3  # the 0 label is an observation
    np.testing.assert_array_equal(data.matrices["rating"].toarray(), [[4.0, 2.5], [5.0, 0]])
    assert data.matrices["tagged"][0, 0] == 2.0 and data.report["loader"]["duplicates"]["tagged"] == 1
    assert data.timestamps["rating"][0, 1] == 200 and data.timestamps["tagged"][0, 0] == 6
    only = load_movielens(d, tasks=["rating"])
    assert only.task_names == ["rating"]
    with pytest.raises(FileNotFoundError, match="movies.csv"):
        load_movielens_items(d)


@pytest.mark.parametrize("ratings, match", [
    ("userId,movieId,stars,timestamp\n1,1,4,1\n", r"missing column\(s\) \['rating'\]"),
    ("userId,movieId,rating,timestamp\n", "no rows"),
    ("", "empty"),
    ("userId,movieId,rating,timestamp\n1,1,4,1\n,2,4,1\n", r"'userId'.*1 row\(s\).*line 3"),
    ("userId,movieId,rating,timestamp\n1,1,4,1\n1,2.5,4,1\n", r"'movieId'.*non-integer.*line 3"),
    ("userId,movieId,rating,timestamp\n1,1,4,1\n1,2,abc,1\n1,3,inf,1\n", r"'rating'.*2 row\(s\).*line 3"),
])
def test_load_movielens_bad_input(tmp_path, ratings, match):
    d = _ml(tmp_path, ratings)
    with pytest.raises(ValueError, match=match):
        load_movielens(d)


def test_load_movielens_missing_tags_file(tmp_path):
    d = _write(tmp_path / "x", {"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4,1\n"})
    with pytest.raises(FileNotFoundError, match="tags.csv"):
        load_movielens(d)
    assert load_movielens(d, tasks=["rated"]).nnz("rated") == 1
    with pytest.raises(ValueError, match="subset"):
        load_movielens(d, tasks=["stars"])


def test_embedded_movielens():
    assert (MOVIELENS_DIR / "README.txt").is_file()
    data = load_movielens()
    assert data.shape == (610, 9742)
    assert data.nnz("rated") == 100836
    items = load_movielens_items()
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert items.reindex(data.item_map.ids)["title"].notna().all()


# ---- shared benchmark data (skipped when absent) -----------------------------------------------------------------
@pytest.mark.skipif(not (SHARED / "beibei").is_dir(), reason="shared Beibei data not present")
def test_shared_beibei():
    ds = load_ghcf(SHARED / "beibei")
    assert ds.data.shape == (21716, 7977)
    assert ds.report["test"]["n_pairs"] == 21716


@pytest.mark.skipif(not (SHARED / "tmall").is_dir(), reason="shared Tmall data not present")
def test_shared_tmall():
    ds = load_pairs(SHARED / "tmall")
    assert ds.data.shape == (41738, 11953)
    assert ds.data.task_names == ["buy", "cart", "collect"]
    assert ds.test.nnz == 31572
