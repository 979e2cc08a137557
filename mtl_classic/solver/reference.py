"""Plain numpy reference for the row solves of ``kernels.py`` (slow; for tests only)."""
import numpy as np


def row_system(layout, u, curv, lin, Q, W, A0):
    """The dense A_u and b_u of row ``u`` (see ``kernels.py``), built from the pair layout one entry at a time."""
    A = np.array(A0, dtype=np.float64)
    b = np.zeros(Q.shape[1])
    for e in range(layout.indptr[u], layout.indptr[u + 1]):
        for t, j in enumerate(layout.entry_map[e]):
            if j >= 0:
                x = W[t] * Q[layout.indices[e]]
                A += curv[j] * np.outer(x, x)
                b += lin[j] * x
    return A, b


def solve_rows_reference(layout, curv, lin, Q, W, A0):
    """Exact ``A_u^{-1} b_u`` for every row.

    Returns
    -------
    ndarray of shape (n_rows, k)
    """
    n_rows = len(layout.indptr) - 1
    return np.array([np.linalg.solve(*row_system(layout, u, curv, lin, Q, W, A0)) for u in range(n_rows)])
