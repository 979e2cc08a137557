"""The one numeric validator every module uses: the same rules and the same message everywhere."""
import numpy as np
import pytest

from mtl_classic._validation import check_number, parameter_of


@pytest.mark.parametrize("value, kw, message", [
    (0, {"integer": True, "low": 1}, "The 'factors' parameter of MultiTaskMF must be an int >= 1. Got 0."),
    (True, {"integer": True, "low": 0}, "must be an int >= 0. Got True."),           # bools are not numbers
    (2.0, {"integer": True, "low": 0}, "must be an int >= 0. Got 2.0."),
    (np.nan, {"low": 0}, "must be a float >= 0. Got nan."),
    (np.inf, {}, "must be a float. Got inf."),
    (0.0, {"low": 0, "low_open": True}, "must be a float > 0. Got 0.0."),
    (11, {"integer": True, "low": 1, "high": 10}, "must be an int in [1, 10]. Got 11."),
    ("3", {"none_ok": True}, "must be a float or None. Got '3'."),
])
def test_bad_values_are_refused_with_one_message_form(value, kw, message):
    with pytest.raises(ValueError) as err:
        check_number(parameter_of("MultiTaskMF", "factors"), value, **kw)
    assert str(err.value).endswith(message)


def test_good_values_pass_through():
    assert check_number("k", 3, integer=True, low=1, high=3) == 3
    assert check_number("x", 0.5, low=0, low_open=True) == 0.5
    assert check_number("x", None, none_ok=True) is None
    assert check_number("x", np.int64(4), integer=True) == 4
