"""Plain numpy reference for the row solves of ``kernels.py`` (slow; for tests only)."""
import numpy as np


def solve_rows_reference(indptr, indices, curv, lin, X, A0):
    """Exact ``A_u^{-1} b_u`` for every row, with A_u and b_u built densely (see ``kernels.py``).

    Returns
    -------
    ndarray of shape (n_rows, k)
    """
    n_rows = len(indptr) - 1
    out = np.zeros((n_rows, X.shape[1]))
    for u in range(n_rows):
        sl = slice(indptr[u], indptr[u + 1])
        Xu = X[indices[sl]]
        A = A0 + (Xu * curv[sl, None]).T @ Xu
        b = Xu.T @ lin[sl]
        out[u] = np.linalg.solve(A, b)
    return out
