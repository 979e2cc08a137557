"""The cold-start solve of side matrices (docs/MATH.md, "cold start from side matrices"), numpy only: shared by the
estimator's fold-in and the serving path's :class:`~mtl_classic.inference.InferenceModel`."""
import numpy as np

__all__ = ["rows_from_side"]


def rows_from_side(parts, k, regularization, negative_regularization):
    """Factors of rows known only by their side matrices.

    Parameters
    ----------
    parts : list of (weight, matrix, column_factors)
        Per side matrix: its weight lambda_s, the rows' entries (sparse or dense, n_rows x n_columns) and the fitted
        column factors V_s (n_columns x k).
    k : int
    regularization, negative_regularization : float
        The model's row penalty rule: ``regularization`` plus ``negative_regularization`` times the rows' mass
        sum_s lambda_s n_columns_s.

    Returns
    -------
    ndarray (n_rows, k), float64
        ``(sum_s lambda_s V_s^T V_s + r I)^{-1} sum_s lambda_s V_s^T a_s`` for every row.
    """
    A = np.zeros((k, k))
    rhs = None
    mass = 0.0
    for weight, matrix, V in parts:
        V = np.asarray(V, dtype=np.float64)
        A += weight * (V.T @ V)
        part = weight * np.asarray(matrix @ V)
        rhs = part if rhs is None else rhs + part
        mass += weight * V.shape[0]
    A[np.diag_indices(k)] += regularization + negative_regularization * mass
    return np.linalg.solve(A, rhs.T).T
