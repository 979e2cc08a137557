"""Side matrices: a user x query or an item x attribute matrix that shares one side's factors (docs/MATH.md,
"side matrices").

A :class:`SideMatrix` holds one such matrix over the rows of the data's user or item index and columns of its own
(queries, tags, genres, brands), with an :class:`IdMap` for the columns. ``MultiTaskData.with_side`` attaches them;
:class:`mtl_classic.Task` with ``side="user"`` or ``side="item"`` models them.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validation import check_finite_values
from .idmap import IdMap

__all__ = ["SideMatrix", "SIDES", "build_side"]

SIDES = ("user", "item")


@dataclass(frozen=True)
class SideMatrix:
    """One side matrix: ``matrix`` (csr, float64, n_users or n_items rows x ``len(columns)``) and its column ids."""

    name: str
    side: str
    matrix: sp.csr_matrix
    columns: IdMap

    @property
    def n_columns(self):
        return self.matrix.shape[1]


def _from_pairs(name, frame, row_map, where):
    """(csr matrix, column IdMap, rows dropped) from a DataFrame whose first two columns are the row's external id
    and the column id, and an optional third the value (1 without it); duplicate pairs are summed."""
    if frame.shape[1] not in (2, 3):
        raise ValueError(f"{where}: a DataFrame needs 2 columns (row id, column id) or 3 (with a value); "
                         f"got columns {list(frame.columns)}.")
    for col in frame.columns[:2]:
        if frame[col].isna().any():
            raise ValueError(f"{where}: column {col!r} has {int(frame[col].isna().sum())} missing ids.")
    try:
        values = (np.ones(len(frame)) if frame.shape[1] == 2
                  else np.asarray(frame.iloc[:, 2], dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: the value column {frame.columns[2]!r} must hold numbers.") from None
    rows = row_map.index(frame.iloc[:, 0].to_numpy(dtype=object), unknown="ignore")
    known = rows >= 0
    columns = IdMap(sorted(set(frame.iloc[:, 1][known].tolist()), key=lambda x: (str(type(x)), x)))
    cols = columns.index(frame.iloc[:, 1][known].to_numpy(dtype=object))
    matrix = sp.csr_matrix((values[known], (rows[known], cols)), shape=(len(row_map), len(columns)))
    matrix.sum_duplicates()
    return matrix, columns, int((~known).sum())


def build_side(name, side, spec, row_map, where="MultiTaskData.with_side"):
    """Check one side matrix and return ``(SideMatrix, n_rows_dropped)``.

    Parameters
    ----------
    name : str
    side : {"user", "item"}
    spec : (matrix, column_ids) or pandas.DataFrame
        A matrix (scipy sparse or dense) with one row per user (item) in the data's index order and one column per
        id of ``column_ids``; or a DataFrame of (row id, column id[, value]) pairs, whose rows with ids the data does
        not know are dropped and counted (a new item's attributes, say, before it has any interaction).
    row_map : IdMap
        The data's user or item ids.
    """
    where = f"{where}: {side} side matrix {name!r}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: side matrices need a non-empty string name.")
    dropped = 0
    if hasattr(spec, "iloc") and hasattr(spec, "columns"):
        matrix, columns, dropped = _from_pairs(name, spec, row_map, where)
    elif isinstance(spec, tuple) and len(spec) == 2:
        matrix, ids = spec
        columns = ids if isinstance(ids, IdMap) else IdMap(list(ids))
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        if matrix.shape != (len(row_map), len(columns)):
            raise ValueError(f"{where} has shape {matrix.shape}; expected ({len(row_map)} {side}s, "
                             f"{len(columns)} column ids).")
    else:
        raise ValueError(f"{where} must be a (matrix, column_ids) pair or a DataFrame of (id, column[, value]) "
                         f"pairs. Got {type(spec).__name__}.")
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    check_finite_values(matrix.data, where)
    if matrix.nnz == 0:
        raise ValueError(f"{where} has no nonzero entry.")
    return SideMatrix(name, side, matrix, columns), dropped
