"""One validator for numeric settings: every module checks its parameters through :func:`check_number`, so the
rules (bools are not numbers, NaN and infinity are refused, bounds inclusive unless said) and the message
("<subject> must be an int >= 1. Got 0.") are the same everywhere."""
import copy
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["check_number", "parameter_of", "non_finite_fit_error", "check_estimator_settings",
           "check_validation", "shape_settings", "warm_start_params", "MAX_VALUE", "check_finite_values"]


def parameter_of(owner, name):
    """The subject of an estimator parameter's message: ``"The 'name' parameter of Owner"``."""
    return f"The {name!r} parameter of {owner if isinstance(owner, str) else type(owner).__name__}"


def check_number(subject, value, integer=False, low=None, high=None, low_open=False, none_ok=False,
                 real="a float"):
    """Return ``value`` when it is a number within the bounds, else raise ``ValueError``.

    Parameters
    ----------
    subject : str
        What is checked, as the message's subject (e.g. ``parameter_of(self, "factors")`` or ``"top_k: k"``).
    value : object
    integer : bool, default=False
        Require an integer (``numbers.Integral``); otherwise any finite real.
    low, high : float or None
        Bounds, inclusive (``low`` exclusive when ``low_open``).
    none_ok : bool, default=False
        Accept None.
    real : str, default="a float"
        How the message names a real number (the baselines say "a finite float").
    """
    if value is None and none_ok:
        return value
    if integer:
        ok, what = isinstance(value, numbers.Integral) and not isinstance(value, bool), "an int"
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))
        what = real
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = ""
        if low is not None and high is not None and integer and not low_open:
            bounds = f" in [{low}, {high}]"
        else:
            if low is not None:
                bounds += f" {'>' if low_open else '>='} {low}"
            if high is not None:
                bounds += f"{' and' if low is not None else ''} <= {high}"
        if none_ok:
            bounds += " or None"
        raise ValueError(f"{subject} must be {what}{bounds}. Got {value!r}.")
    return value


def non_finite_fit_error(tasks, data, dtype, sweep):
    """The error for a fit whose objective overflowed: name the task with the largest observed value."""
    largest = {t.name: float(np.max(np.abs(data.matrices[t.name].data), initial=0.0)) for t in tasks
               if t.kind != "implicit"}
    hint = ""
    if largest:
        name = max(largest, key=largest.get)
        hint = f" Task {name!r} has values up to {largest[name]:.3g} in absolute value;"
    return ValueError(f"MultiTaskMF.fit: the objective is not finite after sweep {sweep} (dtype {np.dtype(dtype).name})."
                      f"{hint} values this large overflow the factors. Rescale the values (e.g. standardise a "
                      f"regression target) or pass dtype='float64'.")


#: MultiTaskMF's numeric settings: name -> (low, integer, low_open, none_ok)
_MF_NUMBERS = {
    "factors": (1, True, False, False), "iterations": (1, True, False, False),
    "regularization": (0.0, False, False, False), "row_regularization": (0.0, False, False, False),
    "negative_regularization": (0.0, False, False, False), "negative_popularity": (0.0, False, False, False),
    "bias_regularization": (0.0, False, False, True),
    "head_regularization": (0.0, False, True, False), "cg_steps": (1, True, False, False),
    "cg_tol": (0.0, False, False, False), "cross_regularization": (0.0, False, True, False),
    "init_scale": (0.0, False, True, False), "early_stopping_rounds": (1, True, False, True),
    "n_jobs": (1, True, False, True),
}
_MF_BOOLS = ("fit_heads", "cross_per_item", "cross_per_user", "warm_start", "show_progress", "verbose")


def check_estimator_settings(est):
    """Check every setting of a :class:`mtl_classic.MultiTaskMF` (called by ``fit``); ``ValueError`` naming the
    parameter otherwise."""
    owner = type(est).__name__
    for name, (low, integer, low_open, none_ok) in _MF_NUMBERS.items():
        check_number(parameter_of(owner, name), getattr(est, name), integer=integer, low=low, low_open=low_open,
                     none_ok=none_ok)
    if not (isinstance(est.private_factors, str) and est.private_factors == "auto"):
        check_number(parameter_of(owner, "private_factors"), est.private_factors, integer=True, low=0)
    if est.solver not in ("cg", "cholesky"):
        raise ValueError(f"{parameter_of(owner, 'solver')} must be 'cg' or 'cholesky'. Got {est.solver!r}.")
    try:
        dtype_ok = np.dtype(est.dtype) in (np.float32, np.float64)
    except TypeError:
        dtype_ok = False
    if not dtype_ok:
        raise ValueError(f"{parameter_of(owner, 'dtype')} must be 'float32' or 'float64'. Got {est.dtype!r}.")
    for name in _MF_BOOLS:
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(f"{parameter_of(owner, name)} must be a bool. Got {getattr(est, name)!r}.")


def check_validation(validation, data, names):
    """``(task, csr matrix)`` of ``MultiTaskMF.fit``'s ``validation`` argument, checked against the data."""
    if validation is None:
        return None, None
    if isinstance(validation, tuple) and len(validation) == 2:
        task, matrix = validation
    elif hasattr(validation, "target") and hasattr(validation, "test"):
        task, matrix = validation.target, validation.test
    else:
        raise ValueError("validation must be a (task, csr_matrix) pair or a Split with .target and .test.")
    if task not in names:
        raise ValueError(f"validation task {task!r} is not one of the modelled tasks {names}.")
    matrix = sp.csr_matrix(matrix)
    if matrix.shape != (data.n_users, data.n_items):
        raise ValueError(f"validation matrix has shape {matrix.shape}; expected {(data.n_users, data.n_items)} "
                         f"(the data's users x items).")
    return task, matrix


def shape_settings(est):
    """The settings of a :class:`mtl_classic.MultiTaskMF` that shape its fitted parameters (a warm start may not
    change them)."""
    private = est.private_factors if isinstance(est.private_factors, str) else int(est.private_factors)
    return {"factors": int(est.factors), "private_factors": private,
            "dtype": np.dtype(est.dtype).name, "cross_per_item": bool(est.cross_per_item),
            "cross_per_user": bool(est.cross_per_user), "fit_heads": bool(est.fit_heads)}


def warm_start_params(est, data, tasks):
    """A copy of ``est``'s fitted parameters to continue from (``warm_start``), or None before the first fit; a
    ValueError when the data or the settings that shape the parameters changed."""
    if not hasattr(est, "fitted_params_"):
        return None
    old, where = est.fitted_params_, "MultiTaskMF(warm_start=True)"
    names = [t.name for t in tasks]
    if [t.name for t in est.tasks_] != names:
        raise ValueError(f"{where}: the tasks changed from {[t.name for t in est.tasks_]} to {names}; fit a new "
                         f"model (warm_start=False) for other tasks.")
    for what, before, now in (("users", est.user_map_, data.user_map), ("items", est.item_map_, data.item_map)):
        if before != now:
            raise ValueError(f"{where}: the data's {what} differ from the previous fit's ({len(before)} before, "
                             f"{len(now)} now, or other ids); warm starts need the same users and items.")
    before = getattr(est, "_fit_settings", None)  # None: a loaded model (its stored settings are the fit's)
    now = shape_settings(est)
    for name in now:
        if before is not None and before[name] != now[name]:
            raise ValueError(f"{where}: {name!r} changed since the previous fit ({before[name]!r} -> "
                             f"{now[name]!r}); the fitted parameters cannot be continued under it.")
    if old.factors != int(est.factors) or old.user_factors.dtype != np.dtype(est.dtype):
        raise ValueError(f"{where}: the fitted parameters have {old.factors} factors of {old.user_factors.dtype}; "
                         f"the settings ask for {est.factors} of {np.dtype(est.dtype)}.")
    return copy.deepcopy(old)


#: largest magnitude a value (count, label, rating, side matrix entry) may have: the squared loss and the
#: confidences square and sum the values, which overflows float64 (about 1.8e308) long before 1e308 itself
MAX_VALUE = 1e150


def check_finite_values(values, what):
    """Raise ``ValueError`` naming ``what`` when ``values`` hold NaN, infinite or overflowing (> ``MAX_VALUE`` in
    magnitude) entries."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.sum())} NaN or infinite values.")
    big = np.abs(values) > MAX_VALUE
    if big.any():
        raise ValueError(f"{what} has {int(big.sum())} values of magnitude above {MAX_VALUE:g} (largest "
                         f"{float(np.max(np.abs(values))):.3g}): the squared loss would overflow; rescale them.")
