"""Compiled top-k kernel used by :func:`mtl_classic.ranking.top_k` for large score blocks.

Kept apart from ``ranking.py`` so that importing the ranking helpers (and the serving path) does not import numba.
"""
import numpy as np
from numba import njit, prange

__all__ = ["top_k_heap"]


# --------------------------------------------------------------------------------------------------------------------
# compiled top-k: one bounded heap per row, O(n_items log k), rows in parallel. The heap's root is the *worst* kept
# entry under the order (score descending, index ascending), so ties are always resolved towards the lower index.
# --------------------------------------------------------------------------------------------------------------------
@njit(inline="always")
def _worse(s1, i1, s2, i2):
    return s1 < s2 or (s1 == s2 and i1 > i2)


@njit(inline="always")
def _sift_down(hv, hi, size, s, j):
    pos = 0
    while True:
        c = 2 * pos + 1
        if c >= size:
            break
        r = c + 1
        if r < size and _worse(hv[r], hi[r], hv[c], hi[c]):
            c = r
        if _worse(hv[c], hi[c], s, j):
            hv[pos] = hv[c]
            hi[pos] = hi[c]
            pos = c
        else:
            break
    hv[pos] = s
    hi[pos] = j


@njit(parallel=True, cache=True)
def top_k_heap(scores, k, out_idx, out_val):  # pragma: no cover - compiled
    """Fill ``out_idx`` / ``out_val`` with each row's ``k`` largest scores, best first, through a bounded min-heap
    per row (rows in parallel); ties go to the lower item index."""
    n_rows, n_items = scores.shape
    for row in prange(n_rows):
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        size = 0
        for j in range(n_items):
            s = scores[row, j]
            if s != s:  # NaN ranks as -inf
                s = -np.inf
            if size < k:
                pos = size
                size += 1
                while pos > 0:
                    parent = (pos - 1) // 2
                    if _worse(s, j, hv[parent], hi[parent]):
                        hv[pos] = hv[parent]
                        hi[pos] = hi[parent]
                        pos = parent
                    else:
                        break
                hv[pos] = s
                hi[pos] = j
            elif s > hv[0]:  # a later index with an equal score is worse: strict comparison suffices
                _sift_down(hv, hi, size, s, j)
        for t in range(size - 1, -1, -1):  # pop the worst into the last free slot
            out_val[row, t] = hv[0]
            out_idx[row, t] = hi[0]
            if t > 0:
                _sift_down(hv, hi, t, hv[t], hi[t])
