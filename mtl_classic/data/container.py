"""``MultiTaskData``: one CSR matrix per task over a shared user and item index.

Conventions (docs/ARCHITECTURE.md): every task matrix is a ``scipy.sparse.csr_matrix`` of ``float64``, shape
``(n_users, n_items)``, with sorted indices and no duplicate entries. The sparsity pattern *is* the set of
observations: explicit zeros (a 0/1 label of 0, a rating of 0) are kept. Nothing in this module calls
``eliminate_zeros`` or scipy's ``sum_duplicates`` (which drops zeros); matrices are assembled from
``(data, indices, indptr)`` directly.
"""

import copy

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .idmap import IdMap
from .side import SIDES, build_side

__all__ = ["MultiTaskData", "AGGREGATES"]

AGGREGATES = ("sum", "mean", "max", "last")


# --------------------------------------------------------------------------------------------------------------------
# array helpers (no pandas, no self)
# --------------------------------------------------------------------------------------------------------------------
def _build_csr(rows, cols, values, shape, how="sum", timestamps=None):
    """Assemble a canonical CSR matrix from coordinates, aggregating duplicate ``(row, col)`` pairs.

    Parameters
    ----------
    rows, cols : ndarray of int64
        Coordinates, ``0 <= rows < shape[0]``, ``0 <= cols < shape[1]``.
    values : ndarray of float64
        One value per coordinate.
    shape : tuple of int
    how : {"sum", "mean", "max", "last"}
        Rule for duplicates. ``"last"`` keeps the value of the latest entry by ``timestamps`` (ties and missing
        timestamps broken by input order: the later row wins).
    timestamps : ndarray of float64 or None
        Optional timestamps; the result's timestamp for a pair is the maximum over its duplicates.

    Returns
    -------
    matrix : csr_matrix
        Canonical (sorted indices, no duplicates), explicit zeros kept.
    ts_matrix : csr_matrix or None
        Timestamps with the same pattern as ``matrix`` (None when ``timestamps`` is None).
    n_duplicates : int
        Number of input entries merged into an earlier entry of the same pair.
    """
    n_rows, n_cols = int(shape[0]), int(shape[1])
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    n = rows.shape[0]
    key = rows * np.int64(max(n_cols, 1)) + cols
    if how == "last" and timestamps is not None:
        order = np.lexsort((np.asarray(timestamps, dtype=np.float64), key))  # stable: input order breaks ties
    else:
        order = np.argsort(key, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)[order]
    key = key[order]
    if n:
        new_group = np.empty(n, dtype=bool)
        new_group[0] = True
        np.not_equal(key[1:], key[:-1], out=new_group[1:])
        starts = np.flatnonzero(new_group)
    else:
        starts = np.empty(0, dtype=np.int64)
    n_groups = starts.shape[0]
    n_duplicates = n - n_groups
    if n_duplicates == 0:
        out_values, out_ts = values, ts
    else:
        ends = np.append(starts[1:], n) - 1
        if how == "sum":
            out_values = np.add.reduceat(values, starts)
        elif how == "mean":
            out_values = np.add.reduceat(values, starts) / np.diff(np.append(starts, n))
        elif how == "max":
            out_values = np.maximum.reduceat(values, starts)
        elif how == "last":
            out_values = values[ends]
        else:  # pragma: no cover - validated by callers
            raise ValueError(f"unknown aggregation {how!r}")
        out_ts = None if ts is None else np.maximum.reduceat(ts, starts)
    g_rows, g_cols = rows[starts], cols[starts]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(g_rows, minlength=n_rows), out=indptr[1:])
    indices = g_cols.astype(_index_dtype(n_cols, n_groups), copy=False)
    indptr = indptr.astype(indices.dtype, copy=False)
    matrix = sp.csr_matrix((np.ascontiguousarray(out_values, dtype=np.float64), indices, indptr),
                           shape=(n_rows, n_cols))
    matrix.has_sorted_indices = True
    ts_matrix = None
    if out_ts is not None:
        ts_matrix = sp.csr_matrix((np.ascontiguousarray(out_ts, dtype=np.float64), indices.copy(), indptr.copy()),
                                  shape=(n_rows, n_cols))
        ts_matrix.has_sorted_indices = True
    return matrix, ts_matrix, int(n_duplicates)


def _index_dtype(n_cols, nnz):
    return np.int32 if max(n_cols, nnz) < np.iinfo(np.int32).max else np.int64


def _coords(matrix):
    """``(rows, cols, values)`` of every stored entry of a sparse matrix (explicit zeros included)."""
    coo = sp.coo_matrix(matrix)  # keeps explicit zeros and duplicates
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data


def _canonical(matrix, where, how="sum", copy=True):
    """Canonical float64 ``csr_matrix`` of ``matrix``; duplicates aggregated by ``how``; explicit zeros kept.

    Returns ``(csr, n_duplicates)``. With ``copy=False`` an input that is already a canonical float64
    ``csr_matrix`` is returned as is.
    """
    if not sp.issparse(matrix):
        raise TypeError(f"{where} must be a scipy.sparse matrix. Got {type(matrix).__name__}.")
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{where} must hold real numbers. Got dtype {matrix.dtype}.")
    if matrix.format == "csr":
        data = np.asarray(matrix.data, dtype=np.float64)
        bad = ~np.isfinite(data)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            row = int(np.searchsorted(matrix.indptr, first, side="right") - 1)
            raise ValueError(f"{where} has {int(bad.sum())} NaN/inf value(s); first at (row {row}, "
                             f"column {int(matrix.indices[first])}).")
        if _is_canonical(matrix):
            if not copy and isinstance(matrix, sp.csr_matrix) and matrix.dtype == np.float64:
                matrix.has_sorted_indices = True
                return matrix, 0
            out = sp.csr_matrix((data.copy() if data is matrix.data else data, matrix.indices.copy(),
                                 matrix.indptr.copy()), shape=matrix.shape)
            out.has_sorted_indices = True
            return out, 0
    rows, cols, vals = _coords(matrix)
    vals = np.asarray(vals, dtype=np.float64)
    bad = ~np.isfinite(vals)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where} has {int(bad.sum())} NaN/inf value(s); first at (row {rows[first]}, "
                         f"column {cols[first]}).")
    out, _, n_dup = _build_csr(rows, cols, vals, matrix.shape, how=how)
    return out, n_dup


def _is_canonical(csr):
    """Sorted column indices and no repeated column within any row."""
    if csr.nnz == 0:
        return True
    idx = csr.indices.astype(np.int64)
    step = np.diff(idx)
    # positions where a new row starts may go down; inside a row the step must be > 0
    row_start = np.zeros(idx.shape[0], dtype=bool)
    starts = csr.indptr[:-1][np.diff(csr.indptr) > 0]
    row_start[starts] = True
    return bool(np.all((step > 0) | row_start[1:]))


def _check_task_name(name, where):
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: task names must be non-empty strings. Got {name!r}.")


def _first_rows(mask, index, limit=5):
    """Describe the first offending rows of a boolean mask over a DataFrame (position and index label)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(f"{p}" + (f" (index {index[p]!r})" if not isinstance(index, pd.RangeIndex) else "")
                      for p in pos[:limit])
    return f"{pos.size} row(s); first at row {shown}" if pos.size == 1 else f"{pos.size} rows; first at rows {shown}"


# --------------------------------------------------------------------------------------------------------------------
class MultiTaskData:
    """Observations of several tasks (behaviours) on one shared user and item index.

    Build it with :meth:`from_events` (a long table of events) or :meth:`from_matrices` (one sparse matrix per task).
    The constructor validates and stores already-built parts.

    Parameters
    ----------
    matrices : dict of str -> scipy.sparse matrix
        One matrix per task, all of shape ``(len(user_map), len(item_map))``, in task order. They are converted to
        canonical ``float64`` CSR (duplicates summed, explicit zeros kept).
    user_map, item_map : IdMap
        External ids of the rows and columns.
    timestamps : dict of str -> scipy.sparse matrix, optional
        For tasks that have them, a matrix with exactly the pattern of ``matrices[task]`` holding the latest
        timestamp of each pair. Tasks without timestamps are simply absent from the dict.
    report : dict, optional
        Notes from the builder (for example counts of aggregated duplicate rows).

    Attributes
    ----------
    matrices : dict of str -> csr_matrix
    timestamps : dict of str -> csr_matrix or None
        None when no task has timestamps; otherwise use ``data.timestamps.get(task)``.
    user_map, item_map : IdMap
    task_names : list of str
    n_users, n_items : int
    report : dict
    side : dict of str -> SideMatrix
        User x query and item x attribute matrices attached by :meth:`with_side` (empty by default); splits and
        ``subset_tasks`` keep them.
    """

    def __init__(self, matrices, user_map, item_map, timestamps=None, report=None):
        if not isinstance(matrices, dict) or not matrices:
            raise ValueError("MultiTaskData needs a non-empty dict {task name: sparse matrix}.")
        if not isinstance(user_map, IdMap) or not isinstance(item_map, IdMap):
            raise TypeError("MultiTaskData: user_map and item_map must be IdMap instances.")
        shape = (len(user_map), len(item_map))
        clean = {}
        for name, matrix in matrices.items():
            _check_task_name(name, "MultiTaskData")
            out, _ = _canonical(matrix, f"task {name!r}", copy=False)
            if out.shape != shape:
                raise ValueError(f"task {name!r} has shape {out.shape}; expected (n_users, n_items) = {shape}.")
            clean[name] = out
        self.matrices = clean
        self.user_map = user_map
        self.item_map = item_map
        self.timestamps = self._check_timestamps(timestamps)
        self.report = dict(report) if report else {}
        self.side = {}

    def _check_timestamps(self, timestamps):
        if timestamps is None:
            return None
        if not isinstance(timestamps, dict):
            raise TypeError("timestamps must be a dict {task name: sparse matrix} or None.")
        out = {}
        for name, ts in timestamps.items():
            if ts is None:
                continue
            if name not in self.matrices:
                raise ValueError(f"timestamps given for unknown task {name!r}; tasks are {self.task_names}.")
            ts, _ = _canonical(ts, f"timestamps of task {name!r}", how="max", copy=False)
            m = self.matrices[name]
            if ts.shape != m.shape or ts.nnz != m.nnz or not (
                    np.array_equal(ts.indptr, m.indptr) and np.array_equal(ts.indices, m.indices)):
                raise ValueError(f"timestamps of task {name!r} must have exactly the sparsity pattern of its matrix "
                                 f"({m.nnz} entries); got {ts.nnz} entries or a different pattern.")
            out[name] = ts
        return out or None

    # ---- constructors ----------------------------------------------------------------------------------------------
    @classmethod
    def from_matrices(cls, matrices, user_ids=None, item_ids=None, timestamps=None):
        """Build from one sparse matrix per task.

        Parameters
        ----------
        matrices : dict of str -> scipy.sparse matrix
            Same shape for every task; stored entries are observations (explicit zeros included). Duplicate
            entries are summed and counted in ``report["duplicates"]``.
        user_ids, item_ids : sequence of hashable, optional
            External ids of rows / columns; default ``0 .. n - 1``.
        timestamps : dict of str -> scipy.sparse matrix, optional
            Per-task timestamps with the same pattern as the task's matrix.

        Returns
        -------
        MultiTaskData

        Raises
        ------
        ValueError
            Empty dict, bad task names, mismatched shapes or id counts, NaN/inf values.
        TypeError
            A value that is not a scipy.sparse matrix.
        """
        if not isinstance(matrices, dict) or not matrices:
            raise ValueError("from_matrices needs a non-empty dict {task name: sparse matrix}.")
        clean, dups = {}, {}
        shape = None
        for name, matrix in matrices.items():
            _check_task_name(name, "from_matrices")
            out, n_dup = _canonical(matrix, f"from_matrices: task {name!r}")
            if shape is None:
                shape, first = out.shape, name
            elif out.shape != shape:
                raise ValueError(f"from_matrices: task {name!r} has shape {out.shape} but task {first!r} has "
                                 f"{shape}; every task must share the user and item index.")
            clean[name], dups[name] = out, n_dup
        user_map = IdMap(range(shape[0]) if user_ids is None else user_ids)
        item_map = IdMap(range(shape[1]) if item_ids is None else item_ids)
        if len(user_map) != shape[0]:
            raise ValueError(f"from_matrices: got {len(user_map)} user_ids for {shape[0]} matrix rows.")
        if len(item_map) != shape[1]:
            raise ValueError(f"from_matrices: got {len(item_map)} item_ids for {shape[1]} matrix columns.")
        report = {"source": "matrices", "duplicates": dups,
                  "nnz": {name: int(m.nnz) for name, m in clean.items()}}
        return cls(clean, user_map, item_map, timestamps=timestamps, report=report)

    @classmethod
    def from_events(cls, df, user_col="user", item_col="item", task_col="task", value_col=None, timestamp_col=None,
                    aggregate="auto"):
        """Build from a long table of events, one row per (user, item, task) observation.

        Parameters
        ----------
        df : pandas.DataFrame
            The events.
        user_col, item_col : str
            Columns with external user / item ids (any hashable; not null, not empty strings).
        task_col : str
            Column with the task name of each row (non-empty strings). Tasks are ordered by first appearance.
        value_col : str or None, default=None
            Column with the observed value (finite numbers; explicit zeros are observations). None means each row
            is one event and the value of a pair is its number of events.
        timestamp_col : str or None, default=None
            Numeric or datetime column. The timestamp of a pair is its latest event; datetimes are stored as
            seconds since the epoch (float).
        aggregate : {"auto", "sum", "mean", "max", "last"} or dict of str -> str, default="auto"
            Rule for several rows of the same (user, item, task): ``"auto"`` is ``"sum"`` when ``value_col`` is None
            and ``"mean"`` otherwise; ``"last"`` keeps the value of the latest row by ``timestamp_col`` (ties and
            no timestamps: the last row in table order). A dict gives a rule per task (other tasks: ``"auto"``).

        Returns
        -------
        MultiTaskData
            Users and items are indexed in sorted id order (first-appearance order when ids of mixed types cannot
            be sorted). ``data.report`` holds ``n_events``, per-task ``duplicates`` (rows merged into another row of
            the same pair), the ``aggregate`` rule used per task and per-task ``nnz``.

        Raises
        ------
        ValueError
            Missing columns, empty table, null or empty ids / task names, non-numeric / NaN / inf values or
            timestamps, unknown aggregation rules; the message names the column and the first bad rows.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_events needs a pandas DataFrame. Got {type(df).__name__}.")
        wanted = {"user_col": user_col, "item_col": item_col, "task_col": task_col}
        if value_col is not None:
            wanted["value_col"] = value_col
        if timestamp_col is not None:
            wanted["timestamp_col"] = timestamp_col
        missing = [f"{arg}={col!r}" for arg, col in wanted.items() if col not in df.columns]
        if missing:
            raise ValueError(f"from_events: column(s) not found: {', '.join(missing)}; the table has columns "
                             f"{list(df.columns)}.")
        if len(df) == 0:
            raise ValueError("from_events: the events table is empty.")
        index = df.index
        for col in (user_col, item_col, task_col):
            values = df[col]
            bad = np.array(values.isna(), dtype=bool)
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                bad |= _flag_uniques(values, lambda v: isinstance(v, str) and not v.strip())
            if bad.any():
                raise ValueError(f"from_events: column {col!r} has null or empty values in "
                                 f"{_first_rows(bad, index)}.")
        tasks_raw = df[task_col]
        not_str = _flag_uniques(tasks_raw, lambda v: not isinstance(v, str))
        if not_str.any():
            raise ValueError(f"from_events: column {task_col!r} must hold task names as strings; non-string values "
                             f"in {_first_rows(not_str, index)}.")
        task_codes, task_names = pd.factorize(tasks_raw, sort=False)
        task_names = [str(t) for t in task_names]

        # values
        n = len(df)
        if value_col is None:
            values = np.ones(n, dtype=np.float64)
        else:
            col = df[value_col]
            if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)):
                if pd.api.types.is_bool_dtype(col.dtype):
                    col = col.astype(np.float64)
                else:
                    converted = pd.to_numeric(col, errors="coerce")
                    bad = np.array(converted.isna(), dtype=bool) & np.array(col.notna(), dtype=bool)
                    if bad.any():
                        raise ValueError(f"from_events: column {value_col!r} must be numeric; non-numeric values in "
                                         f"{_first_rows(bad, index)}.")
                    col = converted
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = ~np.isfinite(values)
            if bad.any():
                raise ValueError(f"from_events: column {value_col!r} has NaN/inf values in {_first_rows(bad, index)}.")

        # timestamps
        ts = None
        if timestamp_col is not None:
            col = df[timestamp_col]
            if pd.api.types.is_datetime64_any_dtype(col.dtype):
                bad = np.array(col.isna(), dtype=bool)
                if bad.any():
                    raise ValueError(f"from_events: column {timestamp_col!r} has missing timestamps in "
                                     f"{_first_rows(bad, index)}.")
                if getattr(col.dt, "tz", None) is not None:
                    col = col.dt.tz_convert("UTC").dt.tz_localize(None)
                ts = (col - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=np.float64)
            elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
                ts = col.to_numpy(dtype=np.float64, na_value=np.nan)
                bad = ~np.isfinite(ts)
                if bad.any():
                    raise ValueError(f"from_events: column {timestamp_col!r} has NaN/inf timestamps in "
                                     f"{_first_rows(bad, index)}.")
            else:
                raise ValueError(f"from_events: column {timestamp_col!r} must be numeric or datetime64. Got dtype "
                                 f"{col.dtype}; convert it first (e.g. pandas.to_datetime).")

        # aggregation rules
        rules = cls._resolve_aggregate(aggregate, task_names, value_col)

        user_codes, user_ids = _factorize_ids(df[user_col])
        item_codes, item_ids = _factorize_ids(df[item_col])
        user_map, item_map = IdMap(user_ids), IdMap(item_ids)
        shape = (len(user_map), len(item_map))

        matrices, ts_mats, dups = {}, {}, {}
        order = np.argsort(task_codes, kind="stable")
        bounds = np.searchsorted(task_codes[order], np.arange(len(task_names) + 1))
        for t, name in enumerate(task_names):
            sel = order[bounds[t]:bounds[t + 1]]
            m, tm, n_dup = _build_csr(user_codes[sel], item_codes[sel], values[sel], shape, how=rules[name],
                                      timestamps=None if ts is None else ts[sel])
            matrices[name], dups[name] = m, n_dup
            if tm is not None:
                ts_mats[name] = tm
        report = {"source": "events", "n_events": int(n), "duplicates": dups, "aggregate": rules,
                  "nnz": {name: int(m.nnz) for name, m in matrices.items()}}
        return cls(matrices, user_map, item_map, timestamps=ts_mats or None, report=report)

    @staticmethod
    def _resolve_aggregate(aggregate, task_names, value_col):
        auto = "sum" if value_col is None else "mean"
        if isinstance(aggregate, dict):
            unknown = [t for t in aggregate if t not in task_names]
            if unknown:
                raise ValueError(f"from_events: aggregate names unknown task(s) {unknown}; tasks are {task_names}.")
            rules = {t: aggregate.get(t, "auto") for t in task_names}
        else:
            rules = {t: aggregate for t in task_names}
        for t, rule in rules.items():
            if rule == "auto":
                rules[t] = auto
            elif rule not in AGGREGATES:
                raise ValueError(f"from_events: aggregate for task {t!r} must be 'auto' or one of {AGGREGATES}. "
                                 f"Got {rule!r}.")
        return rules

    # ---- derived data ----------------------------------------------------------------------------------------------
    def with_matrices(self, matrices, timestamps=None):
        """A new ``MultiTaskData`` with the same id maps and new matrices (used by splits).

        Parameters
        ----------
        matrices : dict of str -> scipy.sparse matrix
            Shape ``(n_users, n_items)`` each.
        timestamps : dict of str -> scipy.sparse matrix, optional

        Returns
        -------
        MultiTaskData
        """
        return self._keep_side(type(self)(matrices, self.user_map, self.item_map, timestamps=timestamps,
                                          report={"source": "with_matrices"}))

    def with_side(self, user_side=None, item_side=None):
        """A new ``MultiTaskData`` with side matrices attached (docs/MATH.md, "side matrices"): a user x query matrix
        shares the user factors, an item x attribute matrix the item factors; model them with
        ``Task(name, side="user")`` / ``Task(name, side="item")``.

        Parameters
        ----------
        user_side, item_side : dict of str -> (matrix, column_ids) or pandas.DataFrame, optional
            Per name, a matrix with one row per user (item) in this data's index order and one column per id of
            ``column_ids``, or a DataFrame of (user or item id, column id[, value]) pairs; pairs of ids this data
            does not know are dropped and counted in ``report["side_rows_dropped"]``.

        Returns
        -------
        MultiTaskData
            The same matrices and id maps; ``side`` holds the earlier side matrices and the new ones.
        """
        out = copy.copy(self)                 # the same, already checked, matrices and id maps
        out.matrices, out.side, out.report = dict(self.matrices), dict(self.side), dict(self.report)
        out.timestamps = None if self.timestamps is None else dict(self.timestamps)
        dropped = dict(out.report.get("side_rows_dropped", {}))
        for side, given in zip(SIDES, (user_side, item_side)):
            for name, spec in (given or {}).items():
                if name in out.matrices or name in out.side:
                    raise ValueError(f"MultiTaskData.with_side: the name {name!r} is already a task or a side "
                                     f"matrix of this data.")
                rows = self.user_map if side == "user" else self.item_map
                out.side[name], dropped[name] = build_side(name, side, spec, rows)
        out.report["side_rows_dropped"] = dropped
        return out

    def _keep_side(self, new):
        new.side = dict(self.side)
        return new

    def subset_tasks(self, names):
        """A new ``MultiTaskData`` with only the tasks ``names`` (in the given order), same id maps.

        Raises
        ------
        ValueError
            When a name is not a task of this data.
        """
        if isinstance(names, str):
            names = [names]
        names = list(names)
        self._check_tasks(names)
        ts = None
        if self.timestamps:
            ts = {n: self.timestamps[n] for n in names if n in self.timestamps} or None
        return self._keep_side(type(self)({n: self.matrices[n] for n in names}, self.user_map, self.item_map,
                                          timestamps=ts, report={"source": "subset_tasks"}))

    def _check_tasks(self, names):
        unknown = [n for n in names if n not in self.matrices]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; tasks are {self.task_names}.")

    # ---- accessors -------------------------------------------------------------------------------------------------
    @property
    def task_names(self):
        """Task names in order."""
        return list(self.matrices)

    @property
    def n_users(self):
        """Number of users (rows)."""
        return len(self.user_map)

    @property
    def n_items(self):
        """Number of items (columns)."""
        return len(self.item_map)

    @property
    def shape(self):
        """``(n_users, n_items)``."""
        return (self.n_users, self.n_items)

    def nnz(self, task):
        """Number of observations (stored entries, explicit zeros included) of ``task``."""
        self._check_tasks([task])
        return int(self.matrices[task].nnz)

    def __repr__(self):
        tasks = ", ".join(f"{n}: {m.nnz}" for n, m in self.matrices.items())
        return f"MultiTaskData(n_users={self.n_users}, n_items={self.n_items}, nnz={{{tasks}}})"


def _flag_uniques(column, predicate):
    """Boolean mask of the rows whose value satisfies ``predicate``, evaluated once per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    flags = np.fromiter((bool(predicate(v)) for v in uniques), dtype=bool, count=len(uniques))
    return np.append(flags, False)[codes]  # code -1 (missing) -> False: nulls are reported separately


def _factorize_ids(column):
    """Codes and unique ids of an id column; sorted ids when they are mutually comparable."""
    try:
        codes, uniques = pd.factorize(column, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(column, sort=False)
    uniques = np.asarray(uniques.to_numpy() if hasattr(uniques, "to_numpy") else uniques)
    return codes.astype(np.int64), uniques
