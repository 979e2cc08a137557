"""MultiTaskMF(warm_start=True): continuing a fit equals fitting all its sweeps at once; what may not change."""
import numpy as np
import pytest
from sklearn.base import clone

from mtl_classic.model import MultiTaskMF

from _synthetic import four_task_data


def _model(**kw):
    kw = dict(dict(factors=6, random_state=0, dtype="float64", show_progress=False), **kw)
    return MultiTaskMF(**kw)


@pytest.mark.parametrize("private", [0, 1])
def test_a_fit_continued_equals_one_fit_of_all_its_sweeps(private):
    data = four_task_data()
    full = _model(iterations=7, private_factors=private).fit(data)
    part = _model(iterations=3, private_factors=private, warm_start=True).fit(data)
    first = list(part.loss_history_)
    part.set_params(iterations=4).fit(data)
    # the continued history starts where the first part ended
    assert part.loss_history_[0] == pytest.approx(first[-1], rel=1e-12)
    joined = np.array(first + list(part.loss_history_[1:]))
    np.testing.assert_allclose(joined, full.loss_history_, rtol=1e-10)
    for name in ("user_factors_", "item_factors_", "head_weights_", "user_biases_", "item_biases_",
                 "cross_weights_"):
        np.testing.assert_allclose(getattr(part, name), getattr(full, name), rtol=1e-7, atol=1e-9, err_msg=name)
    assert part.n_iter_ == 4


def test_warm_start_before_any_fit_is_a_plain_fit_and_off_starts_again():
    data = four_task_data()
    plain = _model(iterations=3).fit(data)
    warm = _model(iterations=3, warm_start=True).fit(data)
    np.testing.assert_array_equal(plain.user_factors_, warm.user_factors_)
    again = _model(iterations=3).fit(data).fit(data)          # warm_start=False: the second fit starts afresh
    np.testing.assert_array_equal(again.loss_history_, plain.loss_history_)
    assert clone(warm).get_params()["warm_start"] is True


def test_warm_start_refuses_other_data_or_reshaped_parameters():
    data = four_task_data()
    model = _model(iterations=2, warm_start=True).fit(data)
    with pytest.raises(ValueError, match="users differ"):
        model.fit(four_task_data(n_users=40))
    with pytest.raises(ValueError, match="'factors' changed"):
        model.set_params(factors=5).fit(data)
    model.set_params(factors=6)
    with pytest.raises(ValueError, match="'cross_per_item' changed"):
        model.set_params(cross_per_item=not model.cross_per_item).fit(data)
    model.set_params(cross_per_item=not model.cross_per_item)
    with pytest.raises(ValueError, match="tasks changed"):
        model.fit(data.subset_tasks(["view", "buy"]))
    with pytest.raises(ValueError, match="'warm_start' parameter of MultiTaskMF must be a bool"):
        _model(warm_start="yes").fit(data)


def test_a_loaded_model_continues_where_the_saved_one_stopped(tmp_path):
    data = four_task_data()
    full = _model(iterations=5).fit(data)
    part = _model(iterations=2).fit(data)
    part.save(tmp_path / "m")
    loaded = MultiTaskMF.load(tmp_path / "m").set_params(iterations=3, warm_start=True).fit(data)
    np.testing.assert_allclose(loaded.loss_history_[-1], full.loss_history_[-1], rtol=1e-10)
