"""Compiled kernels of the alternating solver (numba), on plain arrays only.

Every row solve has the form of DESIGN.md section 2, written once for all tasks by stacking them side by side:
the "augmented" columns j = t * n_cols + i carry x_j = w_t * q_i, and for row u

    A_u = A0 + sum_j curv_uj x_j x_j^T        (A0 = sum_t lambda_t w0_t D_t G D_t + reg I, from the Gram matrix)
    b_u = sum_j lin_uj x_j

so the whole-data negatives never cost more than O(k^2) per row. ``reference.py`` holds a plain numpy version
of the same solves for the tests.
"""
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

#: rows handed to a thread at a time: rows differ wildly in length (popular items), so static halves leave one
#: core idle; measured on Beibei's item side, 128 took 0.5 s where the default static split took 1.3 s
PARALLEL_CHUNKSIZE = 128


@contextmanager
def kernel_threads(n_jobs=None):
    """Run the compiled kernels on ``n_jobs`` threads (None: all cores) with dynamic row scheduling, and keep BLAS
    on one thread meanwhile: the solver's BLAS calls are small Gram matrices, and threaded BLAS would only fight the
    kernels' threads for the same cores."""
    n = numba.config.NUMBA_NUM_THREADS if n_jobs is None else min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)
    old_threads = numba.get_num_threads()
    old_chunk = numba.get_parallel_chunksize()
    try:
        numba.set_num_threads(n)
        numba.set_parallel_chunksize(PARALLEL_CHUNKSIZE)
        with threadpool_limits(limits=1, user_api="blas"):
            yield n
    finally:
        numba.set_parallel_chunksize(old_chunk)
        numba.set_num_threads(old_threads)


@njit(parallel=True, cache=True, fastmath=True)
def solve_rows_cg(indptr, indices, curv, lin, X, A0, out, cg_steps):
    """Update ``out[u]`` by ``cg_steps`` conjugate-gradient steps on A_u p = b_u, warm-started from ``out[u]``.

    CG from a warm start never increases the row's quadratic objective, so the sweep stays monotone. The work is
    done in ``X``'s floating point type (float32 halves memory traffic, as in implicit); pass ``curv``, ``lin`` and
    ``A0`` in that type too.
    """
    n_rows = indptr.shape[0] - 1
    k = X.shape[1]
    zero = X[0, 0] - X[0, 0]  # a zero of X's type, for the accumulators
    for u in prange(n_rows):
        start, end = indptr[u], indptr[u + 1]
        x = out[u].astype(X.dtype)
        # r = b - A x
        r = np.zeros(k, X.dtype)
        for j in range(k):
            acc = zero
            for m in range(k):
                acc += A0[j, m] * x[m]
            r[j] = -acc
        for e in range(start, end):
            col = indices[e]
            coef = lin[e]
            c = curv[e]
            if c != 0.0:
                dot = zero
                for m in range(k):
                    dot += X[col, m] * x[m]
                coef -= c * dot
            if coef != 0.0:
                for m in range(k):
                    r[m] += coef * X[col, m]
        p = r.copy()
        rs_old = zero
        for m in range(k):
            rs_old += r[m] * r[m]
        if rs_old < 1e-20:
            continue
        Ap = np.empty(k, X.dtype)
        for _ in range(cg_steps):
            for j in range(k):
                acc = zero
                for m in range(k):
                    acc += A0[j, m] * p[m]
                Ap[j] = acc
            for e in range(start, end):
                c = curv[e]
                if c != 0.0:
                    col = indices[e]
                    dot = zero
                    for m in range(k):
                        dot += X[col, m] * p[m]
                    dot *= c
                    for m in range(k):
                        Ap[m] += dot * X[col, m]
            pAp = zero
            for m in range(k):
                pAp += p[m] * Ap[m]
            if pAp <= 0.0:
                break
            step = rs_old / pAp
            rs_new = zero
            for m in range(k):
                x[m] += step * p[m]
                r[m] -= step * Ap[m]
                rs_new += r[m] * r[m]
            if rs_new < 1e-20:
                break
            beta = rs_new / rs_old
            for m in range(k):
                p[m] = r[m] + beta * p[m]
            rs_old = rs_new
        out[u] = x


@njit(parallel=True, cache=True, fastmath=True)
def solve_rows_cholesky(indptr, indices, curv, lin, X, A0, out):
    """Exact update ``out[u] = A_u^{-1} b_u`` for every row (assembly O(nnz_u k^2), solve O(k^3))."""
    n_rows = indptr.shape[0] - 1
    k = X.shape[1]
    for u in prange(n_rows):
        A = A0.copy()
        b = np.zeros(k)
        for e in range(indptr[u], indptr[u + 1]):
            col = indices[e]
            c = curv[e]
            g = lin[e]
            for j in range(k):
                xj = X[col, j]
                b[j] += g * xj
                if c != 0.0:
                    cxj = c * xj
                    for m in range(j + 1):
                        A[j, m] += cxj * X[col, m]
        for j in range(k):
            for m in range(j + 1, k):
                A[j, m] = A[m, j]
        out[u] = np.linalg.solve(A, b)


@njit(parallel=True, cache=True, fastmath=True)
def entry_dots(rows, cols, P, Qw):
    """f_e = P[rows[e]] . Qw[cols[e]] for every entry e (the factor part of the score on a sparse pattern)."""
    n = rows.shape[0]
    k = P.shape[1]
    out = np.empty(n)
    for e in prange(n):
        u = rows[e]
        i = cols[e]
        acc = 0.0
        for m in range(k):
            acc += P[u, m] * Qw[i, m]
        out[e] = acc
    return out


@njit(cache=True)
def _weighted_outer_chunk(rows, cols, weights, P, Q, H, start, end):
    k = P.shape[1]
    z = np.empty(k)
    for e in range(start, end):
        c = weights[e]
        if c == 0.0:
            continue
        u = rows[e]
        i = cols[e]
        for m in range(k):
            z[m] = P[u, m] * Q[i, m]
        for j in range(k):
            cz = c * z[j]
            for m in range(j + 1):
                H[j, m] += cz * z[m]


@njit(parallel=True, cache=True, fastmath=True)
def head_normal_equations(rows, cols, curv, lin, P, Q, n_chunks):
    """Sum of curv_e z_e z_e^T and lin_e z_e over entries, z_e = P[u] * Q[i] (DESIGN.md section 2, step 3)."""
    k = P.shape[1]
    n = rows.shape[0]
    Hs = np.zeros((n_chunks, k, k))
    gs = np.zeros((n_chunks, k))
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * size
        end = min(n, start + size)
        _weighted_outer_chunk(rows, cols, curv, P, Q, Hs[c], start, end)
        for e in range(start, end):
            g = lin[e]
            if g != 0.0:
                u = rows[e]
                i = cols[e]
                for m in range(k):
                    gs[c, m] += g * P[u, m] * Q[i, m]
    H = Hs.sum(axis=0)
    for j in range(k):
        for m in range(j + 1, k):
            H[j, m] = H[m, j]
    return H, gs.sum(axis=0)


@njit(parallel=True, cache=True, fastmath=True)
def head_matvec(rows, cols, curv, P, Q, v, n_chunks):
    """Matrix-free head product (sum_e curv_e z_e z_e^T) v, z_e = P[u] * Q[i]; O(nnz k), entries with zero
    curvature skipped, so the heads can be solved by conjugate gradients without the O(nnz k^2) assembly."""
    k = P.shape[1]
    n = rows.shape[0]
    Hv = np.zeros((n_chunks, k))
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        z = np.empty(k)
        for e in range(c * size, min(n, (c + 1) * size)):
            ce = curv[e]
            if ce == 0.0:
                continue
            u = rows[e]
            i = cols[e]
            dot = 0.0
            for m in range(k):
                z[m] = P[u, m] * Q[i, m]
                dot += z[m] * v[m]
            dot *= ce
            for m in range(k):
                Hv[c, m] += dot * z[m]
    return Hv.sum(axis=0)


@njit(parallel=True, cache=True, fastmath=True)
def head_rhs(rows, cols, lin, P, Q, n_chunks):
    """sum_e lin_e z_e with z_e = P[u] * Q[i]."""
    k = P.shape[1]
    n = rows.shape[0]
    g = np.zeros((n_chunks, k))
    size = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for e in range(c * size, min(n, (c + 1) * size)):
            le = lin[e]
            if le == 0.0:
                continue
            u = rows[e]
            i = cols[e]
            for m in range(k):
                g[c, m] += le * P[u, m] * Q[i, m]
    return g.sum(axis=0)
