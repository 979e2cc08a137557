"""Mapping between external ids (any hashable: str, int, ...) and contiguous internal indices.

Internal indices are ``int64`` positions ``0 .. n - 1``; external ids only appear at the public surface and are
translated here. Lookups are vectorised through a :class:`pandas.Index` hash table.
"""
import numbers

import numpy as np
import pandas as pd

__all__ = ["IdMap"]

_MAX_SHOWN = 5


def _as_id_array(values):
    """Return ``values`` as a 1-d numpy array of ids without splitting tuples or strings into characters.

    Lists, tuples, numpy arrays, pandas Series/Index and other iterables are sequences of ids; a str, bytes or any
    non-iterable value is one id.
    """
    if isinstance(values, np.ndarray):
        return values.ravel()
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        out = np.empty(1, dtype=object)
        out[0] = values
        return out
    values = list(values)
    if values and all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in values):
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:
            pass
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _normalise_dtype(arr):
    """``int64`` when every id is an integer (and fits), ``object`` otherwise."""
    if arr.dtype == np.int64:
        return arr
    if arr.dtype.kind == "i":
        return arr.astype(np.int64)
    if arr.dtype.kind == "u":
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            return arr.astype(object)
        return arr.astype(np.int64)
    if arr.dtype == object and arr.size and pd.api.types.infer_dtype(arr, skipna=False) == "integer":
        try:
            return arr.astype(np.int64)
        except OverflowError:
            return arr
    return arr.astype(object)


def _describe(values, count):
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:_MAX_SHOWN])
    more = f" (showing {_MAX_SHOWN} of {count})" if count > _MAX_SHOWN else ""
    return f"{shown}{more}"


class IdMap:
    """Bijection between external ids and contiguous internal indices ``0 .. len(ids) - 1``.

    Parameters
    ----------
    ids : sequence of hashable
        Unique, non-null external ids in index order: ``ids[j]`` gets index ``j``.

    Attributes
    ----------
    ids : numpy.ndarray
        The external ids in index order; ``int64`` when every id is an integer, ``object`` otherwise.

    Raises
    ------
    ValueError
        When an id is null (None, NaN, NaT) or repeated.
    TypeError
        When an id is not hashable.

    Examples
    --------
    >>> m = IdMap(["alice", "bob"])
    >>> m.index(["bob", "alice"])
    array([1, 0])
    >>> m.external([0])
    array(['alice'], dtype=object)
    """

    def __init__(self, ids):
        arr = _as_id_array(ids)
        arr = _normalise_dtype(arr)
        if arr.dtype == object and arr.size:
            for position, value in enumerate(arr):
                try:
                    hash(value)
                except TypeError:
                    raise TypeError(f"IdMap: ids must be hashable; id at position {position} is "
                                    f"{type(value).__name__} {value!r}.") from None
            null = pd.isna(arr)
            if null.any():
                pos = np.flatnonzero(null)
                raise ValueError(f"IdMap: ids must be non-null; found {pos.size} null id(s), first at position "
                                 f"{pos[0]}.")
        index = self._make_index(arr)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()
            raise ValueError(f"IdMap: ids must be unique; {len(dup)} id(s) repeat: "
                             f"{_describe(np.asarray(dup, dtype=object), len(dup))}.")
        self.ids = arr
        self._index = index

    @staticmethod
    def _make_index(arr):
        try:
            return pd.Index(arr, dtype=arr.dtype, tupleize_cols=False)
        except TypeError as exc:  # unhashable ids
            raise TypeError(f"IdMap: ids must be hashable ({exc}).") from None

    # ---- container protocol ----
    def __len__(self):
        return int(self.ids.shape[0])

    def __contains__(self, external_id):
        try:
            return external_id in self._index
        except TypeError:
            return False

    def __iter__(self):
        return iter(self.ids.tolist())

    def __eq__(self, other):
        if not isinstance(other, IdMap):
            return NotImplemented
        return len(self) == len(other) and self.ids.dtype == other.ids.dtype and bool(np.all(self.ids == other.ids))

    __hash__ = None

    def __repr__(self):
        head = ", ".join(repr(v) for v in self.ids[:3].tolist())
        return f"IdMap(n={len(self)}, ids=[{head}{', ...' if len(self) > 3 else ''}])"

    # ---- translation ----
    def index(self, external_ids, unknown="raise"):
        """Internal indices of external ids.

        Parameters
        ----------
        external_ids : hashable or sequence of hashable
            One id (a str, bytes or any non-iterable value) or a sequence of ids.
        unknown : {"raise", "ignore"}, default="raise"
            ``"raise"``: a ``KeyError`` names up to five unknown ids and their count. ``"ignore"``: unknown ids get
            index ``-1``.

        Returns
        -------
        numpy.ndarray of int64, shape (n_ids,)
            One index per id, in input order (a single id gives a length-1 array).

        Raises
        ------
        KeyError
            When ``unknown="raise"`` and some ids are not in the map.
        ValueError
            When ``unknown`` is not one of the accepted values.
        """
        if unknown not in ("raise", "ignore"):
            raise ValueError(f"IdMap.index: unknown must be 'raise' or 'ignore'. Got {unknown!r}.")
        query = _as_id_array(external_ids)
        if query.size == 0:
            return np.empty(0, dtype=np.int64)
        if query.dtype.kind in "US":
            query = query.astype(object)
        try:
            idx = self._index.get_indexer(query)
        except TypeError:  # unhashable query values: look them up one by one
            idx = np.array([self._index.get_loc(q) if self.__contains__(q) else -1 for q in query])
        idx = np.asarray(idx, dtype=np.int64)
        if unknown == "raise":
            bad = idx < 0
            if bad.any():
                missing = pd.unique(query[bad]) if query.dtype != object else list(dict.fromkeys(
                    _hashable_or_repr(v) for v in query[bad]))
                raise KeyError(f"{len(missing)} unknown id(s): {_describe(list(missing), len(missing))}.")
        return idx

    def external(self, indices):
        """External ids of internal indices.

        Parameters
        ----------
        indices : int or array-like of int
            Internal indices in ``0 .. len(self) - 1`` (negative indices are rejected, not wrapped).

        Returns
        -------
        numpy.ndarray
            External ids with the dtype of :attr:`ids` and the shape of ``indices`` (1-d for a scalar).

        Raises
        ------
        IndexError
            When an index is out of range.
        """
        idx = np.asarray(indices)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.size and idx.dtype.kind not in "iu":
            raise IndexError(f"IdMap.external: indices must be integers. Got dtype {idx.dtype}.")
        idx = idx.astype(np.int64, copy=False)
        bad = (idx < 0) | (idx >= len(self))
        if bad.any():
            raise IndexError(f"IdMap.external: {int(bad.sum())} index(es) out of range [0, {len(self)}): "
                             f"{_describe(idx[bad].ravel(), int(bad.sum()))}.")
        return self.ids[idx]

    # ---- serialisation ----
    def to_list(self):
        """External ids as a plain Python list (ints stay ints, strs stay strs; JSON-able for such ids)."""
        return [v.item() if isinstance(v, np.generic) else v for v in self.ids.tolist()]

    @classmethod
    def from_list(cls, ids):
        """Inverse of :meth:`to_list`."""
        return cls(list(ids))


def _hashable_or_repr(v):
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)
