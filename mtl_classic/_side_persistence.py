"""Saving and loading the side matrices of a model (the manifest's ``"side"`` entries and their arrays), for
:mod:`mtl_classic.persistence`: the side tasks' column factors and intercepts (and, in a full artifact, their
matrices), and the item-feature matrices that no side task models (``Task(item_feature=...)``)."""
import numpy as np
import scipy.sparse as sp

from ._errors import ModelFormatError
from ._side_math import item_feature_specs
from .tasks import Task

__all__ = ["pattern_components", "side_entries", "item_feature_entries", "side_array_names", "load_side",
           "load_features"]


def pattern_components(matrix):
    indptr = np.asarray(matrix.indptr)
    indices = np.asarray(matrix.indices)
    small = max(matrix.shape[1], len(indices)) < np.iinfo(np.int32).max
    dtype = np.int32 if small else np.int64
    return indptr.astype(dtype, copy=False), indices.astype(dtype, copy=False)


def _put_csr(arrays, key, matrix):
    """A matrix's CSR parts as ``<key>_indptr``, ``<key>_indices`` and ``<key>_data`` (float64)."""
    arrays[f"{key}_indptr"], arrays[f"{key}_indices"] = pattern_components(matrix)
    arrays[f"{key}_data"] = np.asarray(matrix.data, dtype=np.float64)


def _get_csr(arrays, key, shape):
    """The matrix :func:`_put_csr` wrote under ``key``."""
    return sp.csr_matrix((arrays[f"{key}_data"], arrays[f"{key}_indices"], arrays[f"{key}_indptr"].astype(np.int64)),
                         shape=shape)


def side_entries(model, arrays, slim, float_dtype):
    """The manifest's side matrices (task, column ids, array key) and their arrays: the column factors, and in a full
    artifact the matrix (CSR parts), so that a loaded model's ``data_`` has it for refits and warm starts."""
    out = []
    for j, task in enumerate(getattr(model, "side_tasks_", None) or []):
        key, m = f"s{j}", model.data_.side[task.name]
        V = np.asarray(model.side_factors_[task.name])
        arrays[f"{key}_factors"] = V.astype(float_dtype) if float_dtype is not None else V
        arrays[f"{key}_intercepts"] = np.asarray(model.side_intercepts_[task.name], dtype=np.float64)
        if not slim:
            _put_csr(arrays, key, m.matrix)
        out.append({"task": task.to_dict(), "columns": m.columns.to_list(), "key": key, "values": not slim,
                    "intercepts": True})
    modelled = {t.name for t in getattr(model, "side_tasks_", None) or []}
    features = sorted({t.item_feature for t in model.tasks_ if getattr(t, "item_feature", None)} - modelled)
    for j, name in enumerate(features if not slim else []):   # the fitted item biases hold gamma * a already
        key, m = f"f{j}", model.data_.side[name]
        _put_csr(arrays, key, m.matrix)
        out.append({"feature": name, "columns": m.columns.to_list(), "key": key, "values": True})
    return out


def item_feature_entries(model):
    """The manifest's ``"item_features"``: per task with an ``item_feature``, the matrix's name, its column ids and the
    fitted weight gamma_t, which new items' values are multiplied by (slim artifacts too: the serving path needs
    them)."""
    return {t: {"feature": feature, "columns": columns.to_list(), "weight": float(gamma)}
            for t, (feature, columns, gamma) in item_feature_specs(model).items()}


def side_array_names(manifest):
    names = []
    for entry in manifest.get("side", []):
        csr = [f"{entry['key']}_{part}" for part in ("indptr", "indices", "data")]
        if "feature" in entry:
            names += csr
            continue
        names += [f"{entry['key']}_factors"] + ([f"{entry['key']}_intercepts"] if entry.get("intercepts") else [])
        names += csr if entry.get("values") else []
    return names


def load_side(manifest, arrays, file, n_users, n_items, values=True):
    """[(Task, column ids, column factors, column intercepts, csr matrix or None)] of a saved model's side matrices
    (the matrix None with ``values=False``, as the serving path reads them, or in a slim artifact; the intercepts 0
    in artifacts written before side matrices had them)."""
    out = []
    for entry in manifest.get("side", []):
        if "feature" in entry:
            continue                           # an item-feature matrix: load_features
        try:
            task = Task.from_dict(entry["task"]).validate()
            key, columns = entry["key"], list(entry["columns"])
            V = np.array(arrays[f"{key}_factors"])
            if V.shape != (len(columns), manifest["factors"]):
                raise ValueError(f"column factors of shape {V.shape} for {len(columns)} columns")
            c = (np.array(arrays[f"{key}_intercepts"], dtype=np.float64) if entry.get("intercepts")
                 else np.zeros(len(columns)))
            if c.shape != (len(columns),) or not np.all(np.isfinite(c)):
                raise ValueError(f"column intercepts of shape {c.shape} (or not finite) for {len(columns)} columns")
            matrix = None
            if values and entry.get("values"):
                matrix = _get_csr(arrays, key, (n_items if task.side == "item" else n_users, len(columns)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{file}: a side matrix is corrupt ({exc}).") from None
        out.append((task, columns, V, c, matrix))
    return out


def load_features(manifest, arrays, file, n_items):
    """{name: (column ids, csr matrix)} of the item-feature matrices that no side task models (full artifacts)."""
    out = {}
    for entry in manifest.get("side", []):
        if "feature" not in entry:
            continue
        try:
            key, columns = entry["key"], list(entry["columns"])
            out[str(entry["feature"])] = (columns, _get_csr(arrays, key, (n_items, len(columns))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{file}: an item-feature matrix is corrupt ({exc}).") from None
    return out
