"""Sparse helpers shared by the solver, the estimator and the numpy-only inference path (numpy and scipy only)."""
import numpy as np
import scipy.sparse as sp


def observation_pattern(matrix):
    """CSR with value 1 on every stored entry of ``matrix``: its observation pattern, explicit zeros included.

    Parameters
    ----------
    matrix : sparse matrix or array-like

    Returns
    -------
    csr_matrix
        Duplicate entries merged into one; the index arrays belong to the result (``matrix`` is not touched).
    """
    m = sp.csr_matrix(matrix, copy=True)
    m.sum_duplicates()
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)



def same_pairs(a, b, share):
    """(b's pairs lie inside a's, and a's inside b's): whether at least ``share`` of each one's observed pairs are
    also the other's. Both true: the two tasks record the same events (MovieLens ``rated`` / ``liked`` /
    ``rating``); only the first: b lies inside a (Beibei's purchases, all carted, inside ``cart``)."""
    a, b = observation_pattern(a), observation_pattern(b)
    both = a.multiply(b).nnz
    return both >= share * b.nnz, both >= share * a.nnz


def covered_pairs(patterns):
    """Per task, how many of its observed pairs another task also observes.

    Parameters
    ----------
    patterns : dict {task name: sparse matrix (n_users, n_items)}
        Each task's observation pattern (:func:`observation_pattern`), all over the same rows and columns.

    Returns
    -------
    dict {task name: int}
    """
    names = list(patterns)
    out = {}
    for name in names:
        others = [patterns[o] for o in names if o != name]
        out[name] = int(patterns[name].multiply(sum(others[1:], others[0])).nnz) if others else 0
    return out
