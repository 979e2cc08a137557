"""Id helpers shared by the estimator surface and the numpy-only inference path: :class:`IdMap` (external ids <->
contiguous internal indices) and :func:`as_query`.

This module imports numpy alone (no pandas; a test holds that), so the serving path stays small. pandas Series and
Index inputs are still accepted, by duck typing (``to_numpy``).

Equality of ids
---------------
Ids compare like keys of a Python ``dict`` (the rule the earlier pandas-based map followed too): ``1``, ``1.0``,
``np.int64(1)`` and ``True`` are one id, ``"a"`` and ``np.str_("a")`` are one id, ``"a"`` and ``b"a"`` are two.
Integer ids are held as ``int64`` and looked up without hashing (offset arithmetic for a contiguous range, a binary
search otherwise); a query value against them is known when it equals an integer in the map, so ``2.0`` finds id
``2``, while strings, ``1.5``, NaN, integers beyond ``int64`` and booleans are unknown ids (a boolean is not taken
for an integer id).
"""
import datetime
import numbers
from itertools import repeat

import numpy as np

__all__ = ["IdMap", "as_query"]

_MAX_SHOWN = 5
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1
# exact types whose values are never null, so construction skips the per-id null test for them
_NEVER_NULL = frozenset([str, bytes, int, bool, tuple, frozenset, np.str_, np.bytes_, np.bool_])
_NAN_KEY = object()  # one key for every NaN when unknown ids are de-duplicated for a message
_SORT_QUERIES = 256  # int lookups sort longer queries first
_TEMPORAL = (datetime.date, datetime.timedelta, np.datetime64, np.timedelta64)


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


def _is_int_type(t):
    return issubclass(t, numbers.Integral) and not issubclass(t, (bool, np.bool_))


def _all_ints(values):
    """Whether every value of the non-empty list ``values`` is an integer (not a bool); the first value decides
    most cases without a pass over the rest."""
    return _is_int_type(type(values[0])) and all(_is_int_type(t) for t in set(map(type, values)))


def _one(value):
    out = np.empty(1, dtype=object)
    out[0] = value
    return out


def _as_id_array(values):
    """Return ``values`` as a 1-d numpy array of ids without splitting tuples or strings into characters.

    Lists, tuples, numpy arrays, pandas Series/Index (anything 1-d with ``to_numpy``) and other iterables are
    sequences of ids; a str, bytes or any non-iterable value is one id. A list of integers becomes ``int64``.
    """
    if isinstance(values, np.ndarray):
        return values.ravel()
    if isinstance(values, (str, bytes)):
        return _one(values)
    if hasattr(values, "to_numpy") and getattr(values, "ndim", 1) == 1:
        return np.asarray(values.to_numpy()).ravel()
    if not hasattr(values, "__iter__"):
        return _one(values)
    values = list(values)
    if values and _all_ints(values):
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
        if arr.size and arr.max() > _INT64_MAX:
            return arr.astype(object)
        return arr.astype(np.int64)
    if arr.dtype == object and arr.size and _all_ints(arr.tolist()):
        try:
            return np.array([int(v) for v in arr.tolist()], dtype=np.int64)
        except OverflowError:
            return arr
    return arr.astype(object)


def _is_null(value):
    """None, NaN (float, numpy, Decimal), NaT (numpy or pandas) or ``pandas.NA``; pandas is never imported."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except Exception:  # pandas.NA: ``NA != NA`` is NA, whose truth value raises; a signalling Decimal NaN raises
        t = type(value)
        return (t.__name__ == "NAType" and t.__module__.startswith("pandas")) or t.__name__ == "Decimal"


def _shown(value):
    return value.item() if isinstance(value, np.generic) else value


def _describe(values, count):
    shown = ", ".join(repr(_shown(v)) for v in values[:_MAX_SHOWN])
    more = f" (showing {_MAX_SHOWN} of {count})" if count > _MAX_SHOWN else ""
    return f"{shown}{more}"


def _distinct(values):
    """``values`` without repeats, in order of first occurrence (ids compared as dict keys; NaNs are one value,
    unhashable values compare by repr)."""
    out = {}
    for v in values:
        key = _NAN_KEY if isinstance(v, (float, np.floating)) and v != v else _shown(v)
        try:
            out.setdefault(key, v)
        except TypeError:
            out.setdefault(("unhashable", repr(v)), v)
    return list(out.values())


def _as_int(value):
    """``value`` as a Python int when it equals one in the ``int64`` range, else None (never raises)."""
    t = type(value)
    if t is bool or t is np.bool_:
        return None
    try:
        if isinstance(value, numbers.Integral):
            out = int(value)
        elif isinstance(value, numbers.Number):  # float, numpy floats, Fraction, Decimal, complex
            if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
                if value.imag != 0:
                    return None
                value = value.real
            out = int(value)
            if out != value:
                return None
        else:
            return None
    except Exception:  # NaN, infinity, a signalling NaN
        return None
    return out if _INT64_MIN <= out <= _INT64_MAX else None


def _int_query(query):
    """``(values, valid)``: a query against integer ids as ``int64`` values, and which of them stand for an integer
    (the others are unknown ids whatever their ``values`` entry)."""
    kind = query.dtype.kind
    n = len(query)
    if kind == "i":
        return query.astype(np.int64, copy=False), None
    if kind == "u":
        valid = query <= _INT64_MAX
        return np.where(valid, query, 0).astype(np.int64), valid
    if kind == "c":
        query = np.where(query.imag == 0, query.real, np.nan)
        kind = "f"
    if kind == "f":
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(query) & (np.floor(query) == query) & (query >= -2.0 ** 63) & (query < 2.0 ** 63)
        return np.where(valid, query, 0).astype(np.int64), valid
    if kind != "O":  # bool, str, bytes, datetime, ...: never an integer id
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    values = query.tolist()
    types = set(map(type, values))
    if types <= {int}:
        try:
            return np.array(values, dtype=np.int64), None
        except OverflowError:
            pass
    elif types <= {str, bytes, np.str_, np.bytes_, type(None)}:
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    ints = [_as_int(v) for v in values]
    valid = np.fromiter((v is not None for v in ints), dtype=bool, count=n)
    out = np.fromiter((0 if v is None else v for v in ints), dtype=np.int64, count=n)
    return out, valid


def _temporal_key(value):
    """A numpy datetime/timedelta as the equal Python one: numpy's hash differs from Python's for equal values, so
    both sides of a dict lookup use the Python object (kept as is when numpy gives an int: ns precision, NaT)."""
    if isinstance(value, (np.datetime64, np.timedelta64)):
        out = value.item()
        return out if isinstance(out, _TEMPORAL) else value
    return value


def _query_values(values):
    """A query against object ids as a Python sequence of ids (a list or tuple is used as it is, to spare a pass
    over its values): the same reading of ``values`` as :func:`_as_id_array`."""
    if not isinstance(values, np.ndarray) and hasattr(values, "to_numpy") and getattr(values, "ndim", 1) == 1:
        values = np.asarray(values.to_numpy())
    if isinstance(values, np.ndarray):
        values = values.ravel()
        return list(values) if values.dtype.kind in "Mm" else values.tolist()  # numpy datetimes stay numpy ones
    if isinstance(values, (list, tuple)):
        return values
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return [values]
    return list(values)


def _dict_get(lookup, value):
    try:
        return lookup.get(value, -1)
    except TypeError:  # unhashable (not an id), or an equality test raised: retry a numpy scalar as a Python one
        if isinstance(value, np.generic):
            try:
                return lookup.get(value.item(), -1)
            except TypeError:
                pass
        return -1


class IdMap:
    """Bijection between external ids and contiguous internal indices ``0 .. len(ids) - 1``.

    Ids compare like ``dict`` keys (``1``, ``1.0`` and ``True`` are one id); see the module docstring for the rules
    of integer ids. numpy alone: no pandas is imported, though pandas Series/Index are accepted.

    Parameters
    ----------
    ids : sequence of hashable
        Unique, non-null external ids in index order: ``ids[j]`` gets index ``j``. An ``int64`` numpy array is kept
        as is (not copied): do not change it afterwards.
    kind : str or None, default=None
        What the ids are (e.g. ``"user"``, ``"item"``), used in messages only: ``"3 unknown user id(s): ..."``.

    Attributes
    ----------
    ids : numpy.ndarray
        The external ids in index order; ``int64`` when every id is an integer (that fits), ``object`` otherwise.
    kind : str or None
        As given.

    Raises
    ------
    ValueError
        When an id is null (None, NaN, NaT, ``pandas.NA``) or repeated; the message gives the count and a position.
    TypeError
        When an id is not hashable, or ``kind`` is neither None nor a str.

    Examples
    --------
    >>> m = IdMap(["alice", "bob"])
    >>> m.index(["bob", "alice"])
    array([1, 0])
    >>> m.external([0])
    array(['alice'], dtype=object)
    """

    def __init__(self, ids, kind=None):
        if kind is not None and not isinstance(kind, str):
            raise TypeError(f"IdMap: kind must be None or a str. Got {type(kind).__name__} {kind!r}.")
        self.kind = kind
        arr = _normalise_dtype(_as_id_array(ids))
        self._lookup = None  # object ids: external id -> index
        self._temporal = False  # object ids with dates or times: numpy ones are looked up as Python ones
        if arr.dtype == np.int64:
            self._init_int(arr)
        else:
            self._init_object(arr)
        self.ids = arr

    def _init_int(self, arr):
        n = len(arr)
        self._lo = int(arr[0]) if n else 0
        self._hi = int(arr[-1]) if n else -1
        # strictly increasing with span n - 1: exactly lo, lo + 1, ..., hi (comparisons only, no overflow)
        self._contiguous = bool(n == 0 or (self._hi - self._lo == n - 1 and np.all(arr[1:] > arr[:-1])))
        self._order = self._sorted = None
        if self._contiguous:
            return
        order = np.argsort(arr)
        ordered = arr[order]
        same = ordered[1:] == ordered[:-1]
        if same.any():  # stable order: within a run of equal ids, all but the first position are repeats
            order = np.argsort(arr, kind="stable")
            same = arr[order][1:] == arr[order][:-1]
            self._raise_repeats(arr, np.sort(order[1:][same]))
        self._order, self._sorted = order, ordered

    def _init_object(self, arr):
        values = keys = arr.tolist()
        types = set(map(type, values))
        self._temporal = any(issubclass(t, _TEMPORAL) for t in types)
        if self._temporal:
            keys = [_temporal_key(v) for v in values]
        try:
            lookup = dict(zip(keys, range(len(keys))))
        except TypeError as exc:
            for position, value in enumerate(values):
                try:
                    hash(value)
                except TypeError:
                    raise TypeError(f"IdMap: ids must be hashable; id at position {position} is "
                                    f"{type(value).__name__} {value!r}.") from None
            # every id hashes, an equality test raised (e.g. np.int8(1) == Decimal(1)): numpy scalars as Python ones
            keys = [_shown(_temporal_key(v)) for v in values]
            try:
                lookup = dict(zip(keys, range(len(keys))))
            except TypeError:
                raise TypeError(f"IdMap: ids must be hashable and comparable ({exc}).") from None
        if not types <= _NEVER_NULL:
            null = [j for j, v in enumerate(values) if type(v) not in _NEVER_NULL and _is_null(v)]
            if null:
                raise ValueError(f"IdMap: ids must be non-null; found {len(null)} null id(s), first at position "
                                 f"{null[0]}.")
        if len(lookup) < len(values):
            seen = set()
            repeats = []
            for j, v in enumerate(keys):
                if v in seen:
                    repeats.append(j)
                else:
                    seen.add(v)
            self._raise_repeats(arr, np.asarray(repeats, dtype=np.int64))
        self._lookup = lookup

    @staticmethod
    def _raise_repeats(arr, positions):
        """``positions``: where an id repeats an earlier one, ascending."""
        dup = _distinct(arr[positions].tolist())
        raise ValueError(f"IdMap: ids must be unique; {len(dup)} id(s) repeat: {_describe(dup, len(dup))}; the first "
                         f"repeat is at position {int(positions[0])}.")

    # ---- container protocol ----
    def __len__(self):
        return int(self.ids.shape[0])

    def __contains__(self, external_id):
        if self._lookup is not None:
            return _dict_get(self._lookup, _temporal_key(external_id) if self._temporal else external_id) >= 0
        return bool(self._int_indices(_one(external_id))[0] >= 0)

    def __iter__(self):
        return iter(self.ids.tolist())

    def __eq__(self, other):
        if not isinstance(other, IdMap):
            return NotImplemented
        return len(self) == len(other) and self.ids.dtype == other.ids.dtype and bool(np.all(self.ids == other.ids))

    __hash__ = None

    def __repr__(self):
        head = ", ".join(repr(v) for v in self.ids[:3].tolist())
        kind = "" if self.kind is None else f", kind={self.kind!r}"
        return f"IdMap(n={len(self)}{kind}, ids=[{head}{', ...' if len(self) > 3 else ''}])"

    # ---- translation ----
    def _dict_indices(self, values):
        """int64 index per value of the sequence ``values`` (object ids), -1 for unknown ones."""
        if self._temporal:
            values = [_temporal_key(v) for v in values]
        try:
            return np.fromiter(map(self._lookup.get, values, repeat(-1)), dtype=np.int64, count=len(values))
        except TypeError:  # an unhashable query value
            return np.fromiter((_dict_get(self._lookup, v) for v in values), dtype=np.int64, count=len(values))

    def _int_indices(self, query):
        """int64 index per value of the array ``query`` (int64 ids), -1 for unknown ones."""
        q, valid = _int_query(query)
        if not len(self.ids):
            return np.full(len(q), -1, dtype=np.int64)
        if self._contiguous:
            hit = (q >= self._lo) & (q <= self._hi)
            idx = q - self._lo
        else:
            # binary search; in sorted order for long queries (memory-friendly: ~5x faster on 1M random queries)
            order = np.argsort(q) if len(q) > _SORT_QUERIES else None
            qs = q if order is None else q[order]
            pos = np.searchsorted(self._sorted, qs)
            np.minimum(pos, len(self._sorted) - 1, out=pos)
            found = np.where(self._sorted[pos] == qs, self._order[pos], -1)
            if order is None:
                idx = found
            else:
                idx = np.empty_like(found)
                idx[order] = found
            hit = idx >= 0
        if valid is not None:
            hit &= valid
        return np.where(hit, idx, -1)

    def index(self, external_ids, unknown="raise"):
        """Internal indices of external ids.

        Parameters
        ----------
        external_ids : hashable or sequence of hashable
            One id (a str, bytes or any non-iterable value) or a sequence of ids (list, tuple, numpy array, pandas
            Series or Index, any iterable).
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
            When ``unknown="raise"`` and some ids are not in the map (``"3 unknown user id(s): ..."`` for a map of
            kind ``"user"``, ``"3 unknown id(s): ..."`` without a kind).
        ValueError
            When ``unknown`` is not one of the accepted values.
        """
        if unknown not in ("raise", "ignore"):
            raise ValueError(f"IdMap.index: unknown must be 'raise' or 'ignore'. Got {unknown!r}.")
        if self._lookup is not None:
            query = _query_values(external_ids)
            idx = self._dict_indices(query) if len(query) else np.empty(0, dtype=np.int64)
        else:
            query = _as_id_array(external_ids)
            idx = self._int_indices(query) if len(query) else np.empty(0, dtype=np.int64)
        if unknown == "raise":
            bad = idx < 0
            if bad.any():
                missing = _distinct([query[j] for j in np.flatnonzero(bad).tolist()])
                kind = "" if self.kind is None else f" {self.kind}"
                raise KeyError(f"{len(missing)} unknown{kind} id(s): {_describe(missing, len(missing))}.")
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
            When an index is out of range or not an integer.
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
        """External ids as a plain Python list.

        Returns
        -------
        list
            Ints stay ints, strs stay strs, numpy scalars become Python scalars (JSON-able for such ids).
        """
        return [_shown(v) for v in self.ids.tolist()]

    @classmethod
    def from_list(cls, ids, kind=None):
        """Inverse of :meth:`to_list`.

        Parameters
        ----------
        ids : sequence of hashable
            As returned by :meth:`to_list`.
        kind : str or None, default=None
            As for :class:`IdMap`.

        Returns
        -------
        IdMap
        """
        return cls(list(ids), kind=kind)
