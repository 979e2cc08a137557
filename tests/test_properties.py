"""Property-based tests of the library (hypothesis); first, the save that an interruption must not break."""
import os

import numpy as np
import pytest

from mtl_classic import persistence
from mtl_classic.model import MultiTaskMF


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
