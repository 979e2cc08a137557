"""Small id helpers shared by the estimator surface and the numpy-only inference path (no heavy imports)."""
import numpy as np


def as_query(values):
    """Ids as a 1-d numpy array (object unless already a numpy array) without splitting strings or tuples; a
    scalar id gives a length-1 array."""
    if isinstance(values, np.ndarray):
        return values.ravel()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        out = np.empty(1, dtype=object)
        out[0] = values
        return out
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
