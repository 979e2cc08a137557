"""Saving and loading fitted models: configuration as JSON, learned arrays in an ``.npz`` that never runs code.

Layout of a saved model (one directory)::

    model_dir/
        model.json    manifest: format and library versions, estimator parameters, tasks in order, id maps
                      (when not numeric or string), shapes and dtypes of every array, training history
        arrays.npz    every learned array, the id maps and the training matrices as CSR components
                      (``m<t>_indptr``, ``m<t>_indices``, ``m<t>_data``), uncompressed

``arrays.npz`` is an ordinary uncompressed zip of ``.npy`` members (``numpy.load(..., allow_pickle=False)`` reads
it), written so that every member's data starts on a 64-byte boundary: :func:`read_arrays` with ``mmap_mode="r"``
then maps the members straight from the file without copying, which keeps large catalogues out of memory.

Two artifacts share the layout:

* ``"full"`` (:func:`save_model`): everything ``MultiTaskMF.load`` needs to rebuild a fitted
  :class:`~mtl_classic.model.MultiTaskMF` (:func:`load_parts` reads it), training data included (so ``recommend(filter_seen=...)``, fold-in and
  refits of the same configuration work after loading).
* ``"slim"`` (``save_model(..., slim=True)``): factors, heads, biases, id maps, item popularity (fraction of users
  per item, per task) and the training *patterns* (indptr / indices only, needed for seen-item filters and
  cross-task features); read by :class:`mtl_classic.inference.InferenceModel` with numpy and scipy alone,
  optionally with float32 factors.

The learned arrays are those of :class:`mtl_classic.params.FittedParams` (its schema decides what is written and
checked). This module knows the file format, not the estimator: it imports neither scikit-learn, numba nor pandas,
so the inference path stays light.
"""
import json
import math
import numbers
import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._errors import ModelFormatError, not_fitted
from ._npz import read_npz, write_npz
from ._version import __version__
from ._side_persistence import (item_feature_entries, load_features, load_side, pattern_components,
                               side_array_names, side_entries)
from .params import OPTIONAL, SCHEMA, FittedParams, expected_shapes
from .tasks import Task

__all__ = ["ModelFormatError", "SavedModel", "save_model", "load_parts", "read_manifest", "read_arrays",
           "array_names", "FORMAT_NAME", "FORMAT_VERSION", "MANIFEST_NAME", "ARRAYS_NAME"]

FORMAT_NAME = "mtl_classic.MultiTaskMF"
FORMAT_VERSION = 1
MANIFEST_NAME = "model.json"
ARRAYS_NAME = "arrays.npz"

_MANIFEST_KEYS = {"format", "format_version", "library_version", "artifact", "params", "tasks", "heads",
                  "default_task", "n_users", "n_items", "factors", "dtype", "user_ids", "item_ids", "arrays",
                  "matrices", "attributes"}
_HISTORY = ("loss_history_", "validation_history_", "n_iter_", "fit_time_", "best_iteration_")
# learned attributes written in their own form (the arrays of FittedParams, the data, the id maps)
_KNOWN_LEARNED = {"tasks_", "task_index_", "fitted_params_", "cross_features_", "user_map_", "item_map_", "data_",
                  "default_task_", "side_tasks_", "side_factors_", "side_intercepts_", *_HISTORY}


#: parameters added after format version 1 was first written, with the value that reproduces the older fit (a
#: refit or a fold-in of an older model then behaves as it did)
_LEGACY_PARAMS = {"negative_regularization": 0.0, "row_regularization": 0.0, "bias_regularization": None,
                  "private_factors": 0, "negative_popularity": 0.0}


# --------------------------------------------------------------------------------------------------------------------
# ids
# --------------------------------------------------------------------------------------------------------------------
def _encode_ids(ids, prefix, arrays):
    """Store external ids: int64 array, UTF-8 blob + offsets for strings, or a JSON list for other simple types."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        arrays[f"{prefix}_ids"] = ids.astype(np.int64)
        return {"storage": "int64"}
    values = ids.tolist()
    if all(isinstance(v, str) for v in values):
        encoded = [v.encode("utf-8", "surrogatepass") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        arrays[f"{prefix}_ids_utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays[f"{prefix}_ids_offsets"] = offsets
        return {"storage": "utf8"}
    for v in values:
        if isinstance(v, float) and not math.isfinite(v) or not isinstance(v, (str, bool, numbers.Integral, float)):
            raise ValueError(f"cannot save {prefix} id {v!r} of type {type(v).__name__}: ids must be ints, strings, "
                             f"finite floats or bools.")
    return {"storage": "json", "values": [v.item() if isinstance(v, np.generic) else v for v in values]}


def _id_array_names(spec, prefix):
    storage = spec.get("storage") if isinstance(spec, dict) else None
    if storage == "int64":
        return [f"{prefix}_ids"]
    if storage == "utf8":
        return [f"{prefix}_ids_utf8", f"{prefix}_ids_offsets"]
    if storage == "json" and isinstance(spec.get("values"), list):
        return []
    raise ModelFormatError(f"model.json: bad {prefix}_ids entry {spec!r}.")


def decode_ids(spec, prefix, arrays):
    """External ids from their stored form: an int64 ndarray, or a list of str / JSON values."""
    storage = spec["storage"]
    if storage == "int64":
        return np.asarray(arrays[f"{prefix}_ids"], dtype=np.int64)
    if storage == "utf8":
        blob = np.asarray(arrays[f"{prefix}_ids_utf8"], dtype=np.uint8).tobytes()
        offsets = np.asarray(arrays[f"{prefix}_ids_offsets"], dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(blob) or np.any(
                np.diff(offsets) < 0):
            raise ModelFormatError(f"arrays.npz: {prefix} id offsets are inconsistent (corrupt file).")
        try:
            return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offsets[:-1].tolist(),
                                                                               offsets[1:].tolist())]
        except UnicodeDecodeError as exc:
            raise ModelFormatError(f"arrays.npz: {prefix} ids are not valid UTF-8 ({exc}).") from None
    return list(spec["values"])


# --------------------------------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------------------------------
def _json_scalar(value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_scalar(v) for v in list(value)]
    return None


def _json_exact(value):
    """Whether ``value`` survives a JSON round trip unchanged (dicts with str keys, lists, str, finite numbers)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        return False


def _json_params(model):
    params = model.get_params(deep=False)
    out = {}
    for key, value in params.items():
        if key == "tasks":
            out[key] = None if value is None else [t.to_dict() if hasattr(t, "to_dict") else str(t) for t in value]
        elif key == "random_state" and not (value is None or isinstance(value, numbers.Integral)):
            out[key] = None   # a Generator cannot be stored; the learned arrays are what matters
        else:
            out[key] = _json_scalar(value)
    return out


def save_model(model, path, slim=False, dtype=None, overwrite=True):
    """Save a fitted :class:`~mtl_classic.model.MultiTaskMF` into the directory ``path``.

    Parameters
    ----------
    model : MultiTaskMF
        A fitted model.
    path : str or os.PathLike
        Target directory (created). ``model.json`` and ``arrays.npz`` are both written to temporary files first
        and then renamed into place, the manifest last: a save interrupted while writing leaves the previous model
        loadable, and no interruption leaves a manifest that points at a half-written or foreign array file.
    slim : bool, default=False
        Write the inference artifact only: factors, heads, biases, id maps, item popularity (fraction of users per
        item, per task) and the training patterns (for seen-item filters and cross-task features), without training
        values and history. Read it with
        :class:`mtl_classic.inference.InferenceModel`; ``MultiTaskMF.load`` refuses it.
    dtype : {None, "float32", "float64"}, default=None
        Store the float arrays in this dtype (None keeps float64). Only for ``slim=True``: a full model must round
        trip exactly.
    overwrite : bool, default=True
        Replace a model already saved in ``path``; False raises ``FileExistsError`` instead.

    Returns
    -------
    str
        The directory written.

    Raises
    ------
    ValueError
        Unfitted model, ``dtype`` with ``slim=False``, ids that cannot be stored without pickle.
    """
    if not hasattr(model, "fitted_params_") or not hasattr(model, "tasks_"):
        raise not_fitted(model, "call fit(data) before save_model")
    if dtype not in (None, "float32", "float64", np.float32, np.float64):
        raise ValueError(f"save_model: dtype must be None, 'float32' or 'float64'. Got {dtype!r}.")
    if dtype is not None and not slim:
        raise ValueError("save_model: dtype is only supported with slim=True (a full model round-trips exactly).")
    float_dtype = None if dtype is None else np.dtype(dtype)
    path = os.fspath(path)
    extra, unsaved = {}, []
    for attr in sorted(a for a in vars(model) if a.endswith("_") and not a.startswith("_")):
        if attr in _KNOWN_LEARNED:
            continue
        if _json_exact(getattr(model, attr)):      # small JSON metadata (e.g. cross_tasks_) is kept verbatim
            extra[attr] = getattr(model, attr)
        else:
            unsaved.append(attr)
    if unsaved:
        warnings.warn(f"save_model: learned attributes {unsaved} are neither part of format version "
                      f"{FORMAT_VERSION} nor plain JSON, and are not saved.", stacklevel=2)
    names = [t.name for t in model.tasks_]
    data = model.data_
    arrays = {}
    for name, value in model.fitted_params_.to_arrays().items():
        value = np.asarray(value)
        arrays[name] = value.astype(float_dtype, copy=False) if float_dtype is not None and value.dtype.kind == "f" \
            else value
    popularity = np.zeros((len(names), data.n_items))
    matrices = {}
    for t, name in enumerate(names):
        m = data.matrices[name]
        indptr, indices = pattern_components(m)
        popularity[t] = np.bincount(indices, minlength=data.n_items) / max(data.n_users, 1)
        key = f"m{t}"
        arrays[f"{key}_indptr"], arrays[f"{key}_indices"] = indptr, indices
        entry = {"key": key, "nnz": int(m.nnz), "values": not slim, "timestamps": False}
        if not slim:
            arrays[f"{key}_data"] = np.asarray(m.data, dtype=np.float64)
            ts = data.timestamps.get(name) if data.timestamps else None
            if ts is not None:
                arrays[f"{key}_timestamps"] = np.asarray(ts.data, dtype=np.float64)
                entry["timestamps"] = True
        matrices[name] = entry
    arrays["popularity"] = popularity
    side = side_entries(model, arrays, slim, float_dtype)
    user_ids = _encode_ids(data.user_map.ids, "user", arrays)
    item_ids = _encode_ids(data.item_map.ids, "item", arrays)

    attributes = dict(extra)
    if not slim:
        for attr in _HISTORY:
            if hasattr(model, attr):
                attributes[attr] = _json_scalar(getattr(model, attr))
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "artifact": "slim" if slim else "full",
        "params": _json_params(model),
        "tasks": [t.to_dict() for t in model.tasks_],
        "heads": [t.resolved_head() for t in model.tasks_],
        "default_task": getattr(model, "default_task_", None),
        "n_users": int(data.n_users),
        "n_items": int(data.n_items),
        "factors": int(model.user_factors_.shape[1]),
        "dtype": np.asarray(arrays["item_factors"]).dtype.name,
        "user_ids": user_ids,
        "item_ids": item_ids,
        "arrays": {k: {"shape": list(np.shape(v)), "dtype": np.asarray(v).dtype.str} for k, v in arrays.items()},
        "matrices": matrices,
        "side": side,
        "attributes": attributes,
    }
    features = item_feature_entries(model)
    if features:
        manifest["item_features"] = features
    text = json.dumps(manifest, indent=1, allow_nan=False)

    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"save_model: {path} exists and is not a directory.")
    if not overwrite and os.path.exists(os.path.join(path, MANIFEST_NAME)):
        raise FileExistsError(f"save_model: {path} already holds a saved model (pass overwrite=True to replace it).")
    os.makedirs(path, exist_ok=True)
    # both files are written under temporary names first: a save interrupted there leaves the previous model intact
    arrays_tmp = _write_temp(path, ARRAYS_NAME, lambda tmp: write_npz(tmp, arrays))
    try:
        manifest_tmp = _write_temp(path, MANIFEST_NAME, lambda tmp: _write_text(tmp, text))
    except BaseException:
        os.remove(arrays_tmp)
        raise
    old_manifest = os.path.join(path, MANIFEST_NAME)
    if os.path.exists(old_manifest):
        os.remove(old_manifest)   # between the two renames no manifest points at mismatched arrays
    os.replace(arrays_tmp, os.path.join(path, ARRAYS_NAME))
    os.replace(manifest_tmp, old_manifest)
    return path


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _write_temp(directory, name, writer):
    """Write a file under a temporary name in ``directory`` (removed on failure); returns that name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        writer(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return tmp


# --------------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------------
def read_manifest(path, check_version=True):
    """Read and validate ``model.json`` of a saved model directory.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    check_version : bool, default=True
        Refuse a model written by another mtl_classic version (the format version must always match).

    Returns
    -------
    dict

    Raises
    ------
    ModelFormatError
        Missing or unreadable manifest, another format or version, unknown or missing keys.
    """
    path = os.fspath(path)
    file = os.path.join(path, MANIFEST_NAME)
    if not os.path.isdir(path):
        raise ModelFormatError(f"{path} is not a directory: a saved model is a directory with {MANIFEST_NAME} and "
                               f"{ARRAYS_NAME}.")
    try:
        with open(file, "r", encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise ModelFormatError(f"{file} is missing: {path} is not a saved mtl_classic model (or the save was "
                               f"interrupted).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{file} is not valid JSON ({exc}); the file is truncated or corrupt.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ModelFormatError(f"{file} is not an mtl_classic model manifest (format {found!r}, expected "
                               f"{FORMAT_NAME!r}).")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{file} has format version {version!r} (written by mtl_classic "
                               f"{manifest.get('library_version')!r}); this mtl_classic {__version__} reads format "
                               f"version {FORMAT_VERSION}. Load it with the version that wrote it and refit or "
                               f"re-save.")
    written_by = manifest.get("library_version")
    if check_version and written_by != __version__:
        raise ModelFormatError(f"{file} was written by mtl_classic {written_by!r} but this is mtl_classic "
                               f"{__version__}; predictions may differ between versions. Pass check_version=False "
                               f"to load it anyway (the file format, version {FORMAT_VERSION}, is compatible).")
    # optional: side (models with side matrices), item_features (tasks with an item_feature)
    unknown = sorted(set(manifest) - _MANIFEST_KEYS - {"side", "item_features"})
    missing = sorted(_MANIFEST_KEYS - set(manifest))
    if unknown or missing:
        raise ModelFormatError(f"{file} has unknown keys {unknown} / lacks keys {missing} for format version "
                               f"{FORMAT_VERSION}.")
    if manifest["artifact"] not in ("full", "slim"):
        raise ModelFormatError(f"{file}: unknown artifact kind {manifest['artifact']!r}.")
    return manifest


def array_names(manifest, values=True):
    """Names of the arrays in ``arrays.npz`` that a manifest requires (``values=False``: without the training
    values and timestamps, which answering does not need)."""
    names = [n for n in SCHEMA if n not in OPTIONAL or n in manifest.get("arrays", {})] + ["popularity"]
    names += _id_array_names(manifest["user_ids"], "user") + _id_array_names(manifest["item_ids"], "item")
    for name, entry in manifest["matrices"].items():
        key = entry["key"]
        names += [f"{key}_indptr", f"{key}_indices"]
        if values and entry.get("values"):
            names.append(f"{key}_data")
        if values and entry.get("timestamps"):
            names.append(f"{key}_timestamps")
    return names + [n for n in side_array_names(manifest) if values or n.endswith(("_factors", "_intercepts"))]


def read_arrays(path, manifest, mmap_mode=None, names=None):
    """Read (or memory-map) the arrays of a saved model and check them against its manifest.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    manifest : dict
        From :func:`read_manifest`.
    mmap_mode : {None, "r", "c"}, default=None
        None reads every array into memory (zip CRCs checked); "r" maps them read-only from the file, "c"
        copy-on-write.
    names : list of str, optional
        Only these arrays (default: every array the manifest requires).

    Returns
    -------
    dict of str -> ndarray

    Raises
    ------
    ModelFormatError
        Missing, truncated or corrupt file; arrays whose shape or dtype disagree with the manifest.
    """
    file = os.path.join(os.fspath(path), ARRAYS_NAME)
    try:
        names = array_names(manifest) if names is None else list(names)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"{os.path.join(os.fspath(path), MANIFEST_NAME)} is malformed ({exc!r}).") from None
    arrays = read_npz(file, names, mmap_mode=mmap_mode)
    declared = manifest.get("arrays", {})
    for name, value in arrays.items():
        spec = declared.get(name)
        if spec is None or list(value.shape) != list(spec.get("shape", [])) or value.dtype.str != spec.get("dtype"):
            raise ModelFormatError(f"{file}: array {name!r} has shape {list(value.shape)} and dtype {value.dtype.str} "
                                   f"but {MANIFEST_NAME} declares {spec}; the two files do not belong together.")
    _check_shapes(file, manifest, arrays)
    return arrays


def _check_shapes(file, manifest, arrays):
    T, n_users, n_items, k = len(manifest["tasks"]), manifest["n_users"], manifest["n_items"], manifest["factors"]
    expected = {**expected_shapes(T, n_users, n_items, k), "popularity": (T, n_items)}
    for name, shape in expected.items():
        if name in arrays and tuple(arrays[name].shape) != shape:
            raise ModelFormatError(f"{file}: array {name!r} has shape {tuple(arrays[name].shape)}; expected {shape} "
                                   f"for {n_users} users, {n_items} items, {T} tasks and {k} factors.")
    for name, entry in manifest["matrices"].items():
        key = entry["key"]
        if f"{key}_indptr" not in arrays:
            continue
        indptr, indices = arrays[f"{key}_indptr"], arrays[f"{key}_indices"]
        if indptr.shape != (n_users + 1,) or int(indptr[0]) != 0 or int(indptr[-1]) != len(indices):
            raise ModelFormatError(f"{file}: the training matrix of task {name!r} is inconsistent (indptr).")
    for prefix, n in (("user", n_users), ("item", n_items)):
        spec = manifest[f"{prefix}_ids"]
        if spec["storage"] == "int64" and arrays[f"{prefix}_ids"].shape != (n,):
            raise ModelFormatError(f"{file}: {prefix} ids have shape {arrays[f'{prefix}_ids'].shape}; expected ({n},).")
        if spec["storage"] == "utf8" and arrays[f"{prefix}_ids_offsets"].shape != (n + 1,):
            raise ModelFormatError(f"{file}: {prefix} id offsets do not match {n} {prefix}s.")
        if spec["storage"] == "json" and len(spec["values"]) != n:
            raise ModelFormatError(f"{file}: {MANIFEST_NAME} lists {len(spec['values'])} {prefix} ids; expected {n}.")


@dataclass
class SavedModel:
    """The parts of a full saved model, as read by :func:`load_parts` (``MultiTaskMF.load`` assembles them)."""

    file: str                 # the manifest's path, for messages
    params: dict              # estimator parameters (tasks as Task objects; parameters added later at legacy values)
    tasks: list               # the fitted tasks, in array order
    fitted: FittedParams
    matrices: dict            # task -> csr_matrix of training values
    timestamps: dict          # task -> csr_matrix of timestamps (only tasks that had them)
    patterns: dict            # task -> 0/1 csr_matrix of the training pattern (the cross-task features)
    user_ids: object          # external ids in index order (int64 ndarray or list)
    item_ids: object
    default_task: object
    attributes: dict          # plain JSON learned attributes (histories, cross_tasks_, ...)
    side: list = ()           # [(Task, column ids, column factors, intercepts, csr matrix)] of the side matrices
    features: dict = None     # {name: (column ids, csr matrix)}: item-feature matrices no side task models


def load_parts(path, known_params, check_version=True):
    """Read a full model saved by :func:`save_model` into its parts.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    known_params : dict
        The estimator's parameters (``get_params``) this version knows; others are refused.
    check_version : bool, default=True
        Refuse a model written by another mtl_classic version.

    Returns
    -------
    SavedModel

    Raises
    ------
    ModelFormatError
        Missing, truncated or corrupt files, another format or library version, a slim artifact, parameters this
        version does not know.
    """
    manifest = read_manifest(path, check_version=check_version)
    file = os.path.join(os.fspath(path), MANIFEST_NAME)
    if manifest["artifact"] != "full":
        raise ModelFormatError(f"{path} holds a slim inference artifact without training data; load it with "
                               f"mtl_classic.inference.InferenceModel.load.")
    arrays = read_arrays(path, manifest)
    try:
        params = dict(manifest["params"])
        if params.get("tasks") is not None:
            params["tasks"] = [Task.from_dict(d) for d in params["tasks"]]
        tasks = [Task.from_dict(d).validate() for d in manifest["tasks"]]
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{file}: bad task description ({exc}).") from None
    unknown = sorted(set(params) - set(known_params))
    if unknown:
        raise ModelFormatError(f"{file} has parameters {unknown} that this mtl_classic {__version__} MultiTaskMF does "
                               f"not know.")
    # a model saved before a parameter existed was fitted as that parameter's neutral value, not today's default
    params = {**{k: v for k, v in _LEGACY_PARAMS.items() if k not in params}, **params}

    n_users, n_items = manifest["n_users"], manifest["n_items"]
    names = [t.name for t in tasks]
    if list(manifest["matrices"]) != names:
        raise ModelFormatError(f"{file}: the training matrices {list(manifest['matrices'])} do not match the tasks "
                               f"{names}.")
    matrices, timestamps, patterns = {}, {}, {}
    for name in names:
        entry = manifest["matrices"][name]
        key = entry["key"]
        indptr, indices = arrays[f"{key}_indptr"].astype(np.int64), arrays[f"{key}_indices"]
        try:
            matrices[name] = sp.csr_matrix((arrays[f"{key}_data"], indices, indptr), shape=(n_users, n_items))
            if entry.get("timestamps"):
                timestamps[name] = sp.csr_matrix((arrays[f"{key}_timestamps"], indices, indptr),
                                                 shape=(n_users, n_items))
        except ValueError as exc:
            raise ModelFormatError(f"{file}: training matrix of task {name!r} is corrupt ({exc}).") from None
        patterns[name] = sp.csr_matrix((np.ones(len(indices)), indices.copy(), indptr.copy()),
                                       shape=(n_users, n_items))
    attributes = manifest["attributes"]
    if not isinstance(attributes, dict) or not all(isinstance(a, str) and a.endswith("_") for a in attributes):
        raise ModelFormatError(f"{file}: 'attributes' must map learned attribute names (ending in '_') to values.")
    return SavedModel(file=file, params=params, tasks=tasks, fitted=FittedParams.from_arrays(arrays, copy=True),
                      matrices=matrices, timestamps=timestamps, patterns=patterns,
                      user_ids=decode_ids(manifest["user_ids"], "user", arrays),
                      item_ids=decode_ids(manifest["item_ids"], "item", arrays),
                      default_task=manifest["default_task"], attributes=attributes,
                      side=load_side(manifest, arrays, file, n_users, n_items),
                      features=load_features(manifest, arrays, file, n_items))
