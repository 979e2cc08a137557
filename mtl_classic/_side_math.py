"""The cold-start solve of side matrices (docs/MATH.md, "cold start from side matrices"), numpy and scipy only: shared
by the estimator's fold-in and the serving path's :class:`~mtl_classic.inference.InferenceModel` (whose new-item
methods are implemented here on the instance they are given)."""
import copy

import numpy as np
import scipy.sparse as sp

from ._ids import IdMap

__all__ = ["side_system", "rows_from_side", "new_item_factors", "with_items"]


def side_system(parts, k, negative_regularization):
    """The part side matrices add to every row's system: ``(sum_s lambda_s V_s^T V_s + negative_regularization *
    sum_s lambda_s n_columns_s I, sum_s lambda_s a_s V_s)``, the first k x k and the same for every row, the second
    (n_rows, k) (None without parts). ``parts``: per side matrix (weight lambda_s, the rows' entries a_s as a sparse
    or dense n_rows x n_columns matrix, the column factors V_s); float64."""
    A = np.zeros((k, k))
    rhs = None
    mass = 0.0
    for weight, matrix, V in parts:
        V = np.asarray(V, dtype=np.float64)
        A += weight * (V.T @ V)
        part = weight * np.asarray(matrix @ V)
        rhs = part if rhs is None else rhs + part
        mass += weight * V.shape[0]
    A[np.diag_indices(k)] += negative_regularization * mass
    return A, rhs


def rows_from_side(parts, k, regularization, negative_regularization, prior_mean=None):
    """Factors of rows known only by their side matrices, shrunk towards the fitted rows' mean.

    Parameters
    ----------
    parts : list of (weight, matrix, column_factors)
        Per side matrix: its weight lambda_s, the rows' entries (sparse or dense, n_rows x n_columns) and the fitted
        column factors V_s (n_columns x k).
    k : int
    regularization, negative_regularization : float
        The model's row penalty rule: ``regularization`` plus ``negative_regularization`` times the rows' mass
        sum_s lambda_s n_columns_s.
    prior_mean : array (k,) or None
        The centre of the penalty: the mean of the side's fitted rows (None: 0). A row with little side evidence
        then stays near the average row (the average user ranks items about as popularity does) instead of near
        the zero row (every score 0: no ranking at all).

    Returns
    -------
    ndarray (n_rows, k), float64
        ``(sum_s lambda_s V_s^T V_s + r I)^{-1} (sum_s lambda_s V_s^T a_s + r m)`` for every row (m: ``prior_mean``).
    """
    A, rhs = side_system(parts, k, negative_regularization)
    A[np.diag_indices(k)] += regularization
    if prior_mean is not None:   # the whole diagonal penalty r, pulling towards m instead of 0
        r = regularization + negative_regularization * sum(weight * np.shape(V)[0] for weight, _, V in parts)
        rhs = rhs + r * np.asarray(prior_mean, dtype=np.float64)[None, :]
    return np.linalg.solve(A, rhs.T).T


def new_item_factors(model, item_ids, side_rows, where):
    """:meth:`mtl_classic.inference.InferenceModel.new_item_factors` (``model``: the InferenceModel)."""
    ids = list(item_ids)
    known = [i for i in ids if i in model.item_ids]
    if not ids or known or len(set(ids)) != len(ids):
        raise ValueError(f"{where}: item_ids must be new, unique ids; {known[:5] or ids[:5]} are known or repeated.")
    if not isinstance(side_rows, dict) or not side_rows:
        raise ValueError(f"{where}: side_rows must be a non-empty dict {{side matrix: rows}}.")
    parts = []
    for name, rows in side_rows.items():
        if name not in model.side or model.side[name][0] != "item":
            raise ValueError(f"{where}: {str(name)[:100]!r} is not an item side matrix of the model "
                             f"({sorted(n for n, s in model.side.items() if s[0] == 'item')}).")
        _, weight, columns, V = model.side[name]
        if not sp.issparse(rows) and not isinstance(rows, np.ndarray):
            if len(rows) != len(ids):
                raise ValueError(f"{where}: side_rows[{name!r}] has {len(rows)} rows for {len(ids)} items.")
            cols = [columns.index(np.asarray(list(r), dtype=object)) for r in rows]
            rows = sp.csr_matrix((np.ones(sum(map(len, cols))), np.concatenate(cols or [[]]).astype(np.int64),
                                  np.cumsum([0] + [len(c) for c in cols])), shape=(len(ids), len(columns)))
        if rows.shape != (len(ids), len(columns)) or not np.all(np.isfinite(sp.csr_matrix(rows).data)):
            raise ValueError(f"{where}: side_rows[{name!r}] must be finite, of shape {(len(ids), len(columns))}; "
                             f"got {rows.shape}.")
        parts.append((weight, sp.csr_matrix(rows, dtype=np.float64), V))
    return rows_from_side(parts, model.factors, *model.side_penalty,
                          prior_mean=np.asarray(model.params.item_factors, dtype=np.float64).mean(axis=0))


def with_items(model, item_ids, side_rows):
    """:meth:`mtl_classic.inference.InferenceModel.with_items` (``model``: the InferenceModel)."""
    q = new_item_factors(model, item_ids, side_rows, "InferenceModel.with_items")
    ids = list(item_ids)
    p, n = model.params, len(ids)
    params = copy.copy(p)
    params.item_factors = np.vstack([p.item_factors, q.astype(p.item_factors.dtype)])
    params.item_biases = np.hstack([p.item_biases, np.zeros((p.item_biases.shape[0], n), p.item_biases.dtype)])
    if p.cross_item_weights is not None:
        extra = np.zeros(p.cross_item_weights.shape[:2] + (n,))
        params.cross_item_weights = np.concatenate([p.cross_item_weights, extra], axis=2)
    patterns = {k: sp.hstack([m, sp.csr_matrix((m.shape[0], n))], format="csr") for k, m in model.patterns.items()}
    popularity = np.hstack([model.popularity, np.zeros((model.popularity.shape[0], n))])
    item_ids = IdMap(model.item_ids.to_list() + ids, kind="item")
    return type(model)(model.tasks, model.user_ids, item_ids, params, patterns, popularity,
                       default_task=model.default_task, cold=model.cold, calibrators=model.calibrators,
                       side=model.side, side_penalty=model.side_penalty)
