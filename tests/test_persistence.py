"""Save / load round trips of MultiTaskMF and clear errors for foreign, truncated or corrupt files."""
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from mtl_classic import persistence
from mtl_classic.data import MultiTaskData
from mtl_classic.model import MultiTaskMF
from mtl_classic.persistence import ModelFormatError, read_arrays, read_manifest, save_model

from _synthetic import TASKS, four_task_data


def test_round_trip_identical_predictions_and_recommendations(four_task_model, tmp_path):
    path = four_task_model.save(tmp_path / "model")          # MultiTaskMF.save / .load delegate to mtl_classic.persistence
    assert sorted(os.listdir(path)) == ["arrays.npz", "model.json"]
    loaded = MultiTaskMF.load(path)
    assert isinstance(loaded, MultiTaskMF)
    assert loaded.get_params()["factors"] == 5 and loaded.tasks == TASKS
    users = four_task_model.data_.user_map.ids
    items = four_task_model.data_.item_map.ids
    uu, ii = np.meshgrid(np.arange(len(users)), np.arange(len(items)), indexing="ij")
    for task in ("view", "buy", "rating", "liked"):
        assert np.array_equal(loaded.score_items(task, np.arange(len(users))),
                              four_task_model.score_items(task, np.arange(len(users))))
        assert np.array_equal(loaded.predict(task, users[uu.ravel()], items[ii.ravel()]),
                              four_task_model.predict(task, users[uu.ravel()], items[ii.ravel()]))
        for filter_seen in (True, "any", False):
            a = loaded.recommend(list(users[:7]), n=5, task=task, filter_seen=filter_seen)
            b = four_task_model.recommend(list(users[:7]), n=5, task=task, filter_seen=filter_seen)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    for name, m in four_task_model.data_.matrices.items():
        lm = loaded.data_.matrices[name]
        assert np.array_equal(lm.indptr, m.indptr) and np.array_equal(lm.indices, m.indices)
        assert np.array_equal(lm.data, m.data)   # explicit zeros (liked = 0) survive
    assert loaded.data_.user_map == four_task_model.data_.user_map and loaded.data_.item_map == four_task_model.data_.item_map
    assert loaded.loss_history_ == pytest.approx(four_task_model.loss_history_)
    assert loaded.n_iter_ == four_task_model.n_iter_
    # fold-in works on the loaded model and agrees exactly with the original (cross_tasks_ etc. restored)
    for attr in ("cross_tasks_", "dropped_cross_tasks_"):
        if hasattr(four_task_model, attr):
            assert getattr(loaded, attr) == getattr(four_task_model, attr)
    rows = {t: four_task_model.data_.matrices[t][:3] for t in ("view", "buy", "liked")}
    for a, b in zip(loaded.fold_in(rows), four_task_model.fold_in(rows)):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_int_ids_and_timestamps_round_trip(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame({"user": rng.integers(0, 30, n), "item": rng.integers(0, 25, n),
                       "task": rng.choice(["view", "buy"], n, p=[0.7, 0.3]), "ts": rng.integers(0, 10_000, n)})
    data = MultiTaskData.from_events(df, timestamp_col="ts")
    model = MultiTaskMF(factors=4, iterations=2, random_state=0).fit(data)
    loaded = MultiTaskMF.load(save_model(model, tmp_path / "m"))
    assert loaded.data_.user_map.ids.dtype == np.int64
    assert loaded.data_.user_map == data.user_map
    for t in data.task_names:
        assert np.array_equal(loaded.data_.timestamps[t].data, data.timestamps[t].data)
    assert np.array_equal(loaded.score_items("buy", np.arange(data.n_users)),
                          model.score_items("buy", np.arange(data.n_users)))


def test_arrays_are_plain_npz_without_pickle_and_memory_mappable(four_task_model, tmp_path):
    path = save_model(four_task_model, tmp_path / "m")
    with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        assert np.array_equal(z["user_factors"], four_task_model.user_factors_)
    manifest = read_manifest(path)
    mapped = read_arrays(path, manifest, mmap_mode="r")
    assert isinstance(mapped["item_factors"], np.memmap)
    assert all(v.ctypes.data % 64 == 0 for v in mapped.values() if isinstance(v, np.memmap))
    assert np.array_equal(mapped["item_factors"], four_task_model.item_factors_)
    with pytest.raises(ValueError):
        mapped["item_factors"][0, 0] = 1.0   # read-only


def test_missing_truncated_and_corrupt_files_give_clear_errors(four_task_model, tmp_path):
    with pytest.raises(ModelFormatError, match="not a directory"):
        MultiTaskMF.load(tmp_path / "nowhere")
    path = save_model(four_task_model, tmp_path / "m")
    npz = os.path.join(path, "arrays.npz")
    good = open(npz, "rb").read()

    open(npz, "wb").write(good[: len(good) // 2])               # truncated
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        MultiTaskMF.load(path)
    with pytest.raises(ModelFormatError):
        read_arrays(path, read_manifest(path), mmap_mode="r")

    bad = bytearray(good)
    offset = good.index(b"item_factors.npy") + 400                # flip bytes inside a member's data
    bad[offset:offset + 8] = b"\xff" * 8
    open(npz, "wb").write(bytes(bad))
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        MultiTaskMF.load(path)

    os.remove(npz)
    with pytest.raises(ModelFormatError, match="missing"):
        MultiTaskMF.load(path)

    man = os.path.join(path, "model.json")
    text = open(man).read()
    open(man, "w").write(text[:100])
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        MultiTaskMF.load(path)
    os.remove(man)
    with pytest.raises(ModelFormatError, match="model.json is missing"):
        MultiTaskMF.load(path)


def _rewrite_manifest(path, **changes):
    man = os.path.join(path, "model.json")
    d = json.load(open(man))
    d.update(changes)
    json.dump(d, open(man, "w"))


def test_other_versions_and_foreign_manifests_are_refused(four_task_model, tmp_path):
    path = save_model(four_task_model, tmp_path / "m")
    _rewrite_manifest(path, library_version="0.0.1")
    with pytest.raises(ModelFormatError, match="written by mtl_classic '0.0.1'"):
        MultiTaskMF.load(path)
    assert isinstance(MultiTaskMF.load(path, check_version=False), MultiTaskMF)
    _rewrite_manifest(path, format_version=99)
    with pytest.raises(ModelFormatError, match="format version 99"):
        MultiTaskMF.load(path, check_version=False)
    _rewrite_manifest(path, format_version=persistence.FORMAT_VERSION, format="something.else")
    with pytest.raises(ModelFormatError, match="not an mtl_classic model"):
        MultiTaskMF.load(path)
    _rewrite_manifest(path, format=persistence.FORMAT_NAME, library_version=persistence.__version__, surprise=1)
    with pytest.raises(ModelFormatError, match="unknown keys"):
        MultiTaskMF.load(path)


def test_arrays_from_another_model_are_detected(four_task_model, tmp_path):
    a = save_model(four_task_model, tmp_path / "a")
    other = MultiTaskMF(tasks=TASKS, factors=3, iterations=1, random_state=0).fit(four_task_model.data_)
    b = save_model(other, tmp_path / "b")
    shutil.copy(os.path.join(b, "arrays.npz"), os.path.join(a, "arrays.npz"))
    with pytest.raises(ModelFormatError, match="do not belong together"):
        MultiTaskMF.load(a)


def test_pickled_member_is_refused(four_task_model, tmp_path):
    path = save_model(four_task_model, tmp_path / "m")
    npz = os.path.join(path, "arrays.npz")
    arrays = dict(np.load(npz, allow_pickle=False))
    arrays["user_factors"] = np.array([object()] * 3, dtype=object)
    np.savez(npz, **arrays)                                       # a member that would need pickle
    with pytest.raises(ModelFormatError):
        MultiTaskMF.load(path)
    with pytest.raises(ModelFormatError):
        read_arrays(path, read_manifest(path), mmap_mode="r")


def test_slim_artifact_and_save_errors(four_task_model, tmp_path):
    path = save_model(four_task_model, tmp_path / "slim", slim=True, dtype="float32")
    manifest = read_manifest(path)
    assert manifest["artifact"] == "slim" and manifest["dtype"] == "float32"
    with zipfile.ZipFile(os.path.join(path, "arrays.npz")) as zf:
        assert not any(n.endswith("_data.npy") for n in zf.namelist())
    with pytest.raises(ModelFormatError, match="slim inference artifact"):
        MultiTaskMF.load(path)
    with pytest.raises(ValueError, match="not fitted"):
        save_model(MultiTaskMF(), tmp_path / "x")
    with pytest.raises(ValueError, match="only supported with slim=True"):
        save_model(four_task_model, tmp_path / "x", dtype="float32")
    with pytest.raises(FileExistsError):
        save_model(four_task_model, path, overwrite=False)


def test_float32_model_without_per_item_cross_weights_round_trips(tmp_path):
    model = MultiTaskMF(tasks=TASKS, factors=4, iterations=2, dtype="float32", cross_per_item=False,
                        random_state=0).fit(four_task_data(seed=3))
    assert model.cross_item_weights_ is None
    loaded = MultiTaskMF.load(save_model(model, tmp_path / "m"))
    assert loaded.cross_item_weights_ is None and loaded.user_factors_.dtype == model.user_factors_.dtype
    assert loaded.get_params()["dtype"] == "float32" and loaded.get_params()["cross_per_item"] is False
    users = np.arange(model.data_.n_users)
    for task in ("buy", "liked"):
        assert np.array_equal(loaded.score_items(task, users), model.score_items(task, users))


def test_unknown_learned_attributes_are_reported(four_task_model, tmp_path):
    import copy

    model = copy.copy(four_task_model)
    model.something_new_ = np.ones(3)
    model.plain_metadata_ = {"buy": ["view", "cart"], "n": 3}
    with pytest.warns(UserWarning, match="something_new_"):
        save_model(model, tmp_path / "m")
    loaded = MultiTaskMF.load(tmp_path / "m")
    assert loaded.plain_metadata_ == {"buy": ["view", "cart"], "n": 3}     # JSON metadata round-trips
    assert not hasattr(loaded, "something_new_")


def test_a_model_saved_before_the_new_penalties_loads_with_their_neutral_values(four_task_model, tmp_path):
    """A manifest without negative_regularization, row_regularization, bias_regularization, private_factors (an
    older save) loads with the values it was four_task_model with (0, 0, None -> regularization, 0), not today's defaults,
    so that its fold-in and refit behave as before; a current save keeps its own values."""
    path = save_model(four_task_model, tmp_path / "m")
    assert MultiTaskMF.load(path).row_regularization == four_task_model.row_regularization == 0.1
    manifest_file = os.path.join(path, persistence.MANIFEST_NAME)
    with open(manifest_file) as fh:
        manifest = json.load(fh)
    for key in ("negative_regularization", "row_regularization", "bias_regularization", "private_factors"):
        del manifest["params"][key]
    with open(manifest_file, "w") as fh:
        json.dump(manifest, fh)
    old = MultiTaskMF.load(path)
    assert (old.negative_regularization, old.row_regularization, old.bias_regularization,
            old.private_factors) == (0.0, 0.0, None, 0)
    np.testing.assert_array_equal(old.user_factors_, four_task_model.user_factors_)
