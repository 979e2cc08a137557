"""Side matrices in the solver (docs/MATH.md, "side matrices"): a user x query or item x attribute matrix A that shares
one side's factors F (P or Q) and has column factors V of its own, with the loss

    lambda * ||A - F V^T - 1 c^T||_F^2  +  r_V ||V||^2  +  negative_regularization * lambda * n_columns * ||F||^2

(every pair weighs 1, A's values as targets, 0 where A has no entry; c the columns' intercepts, fitted with
``Task(biases=True)`` and 0 otherwise; r_V = regularization + negative_regularization * lambda * n_rows, the rows'
penalty rule of the model). Uniform weights keep it whole-data and O(nnz(A) k): in a row solve of F it adds the same
``lambda V^T V`` to every row's system (the shared part A0) and ``lambda (A V - 1 c^T V)`` to the right-hand sides,
so the row kernels are unchanged; V (and c) have a closed form given F. With ``alpha`` > 0 the matrix is implicit-style
(targets 1 on its entries with confidence ``1 + alpha * value``, 0 elsewhere with weight 1): the whole-data part is the
same with the 0/1 pattern as targets, and each entry adds its own term to its row's system
(:func:`side_entries`, appended to the row kernels' entries) and to its column's solve; regression and binary
side matrices have their entries only. Arrays only.
"""
import numpy as np
import scipy.sparse as sp

from .._side_math import (SideTerm, entry_scores, entry_weights, side_entries,  # noqa: F401  (SideTerm re-exported)
                          side_system)
from ..heads import logistic_loss

__all__ = ["SideTerm", "row_terms", "side_entries", "with_side_entries", "update_side_factors", "side_objective"]


def _on(terms, by_item):
    return [s for s in terms if s.by_item == by_item]


def row_terms(terms, by_item, n_rows, k, negative_regularization=0.0):
    """What the side's matrices add to its rows' systems: the shared k x k part (sum_s lambda_s V_s^T V_s plus the
    rows' extra penalty, ``negative_regularization`` times sum_s lambda_s n_columns_s) and every row's right-hand
    side sum_s lambda_s A_s V_s (n_rows x k, None without side matrices on this side); float64."""
    mine = _on(terms, by_item)
    for s in mine:
        if s.matrix.shape[0] != n_rows:
            raise ValueError(f"side matrix {s.name!r} has {s.matrix.shape[0]} rows; the side has {n_rows}.")
    return side_system(mine, k, negative_regularization)


def with_side_entries(indptr, indices, curv, lin, X, entries, V):
    """A row layout's entries (``indptr``, ``indices``, ``curv``, ``lin`` over the rows of ``X``) with each row's
    side entries of ``entries`` (:func:`~mtl_classic._side_math.side_entries`) appended after its own, their columns
    indexing the column factors ``V`` (in ``X``'s basis and type) stacked below ``X``. Returns the five merged
    arrays."""
    extra, extra_curv, extra_lin, _ = entries
    n = len(indptr) - 1
    rows_a = np.repeat(np.arange(n), np.diff(indptr))
    rows_b = np.repeat(np.arange(n), np.diff(extra.indptr))
    pos_a = np.arange(len(indices)) + extra.indptr[rows_a]
    pos_b = np.asarray(indptr)[rows_b + 1] + np.arange(extra.nnz)
    total = len(indices) + extra.nnz
    new_indices = np.empty(total, np.int64)
    new_indices[pos_a], new_indices[pos_b] = indices, extra.indices.astype(np.int64) + X.shape[0]
    out = [np.asarray(indptr, np.int64) + extra.indptr, new_indices]
    for a, b in ((curv, extra_curv), (lin, extra_lin)):
        merged = np.empty(total, a.dtype)
        merged[pos_a], merged[pos_b] = a, b
        out.append(merged)
    return (*out, np.vstack([X, V]))


def _column_penalty(s, n_rows, regularization, negative_regularization):
    if s.observed_only:          # no whole-data loss, hence no mass to scale the penalty with
        return regularization
    return regularization + negative_regularization * s.weight * n_rows


def _column_solves(s, F64, weights, targets, M0, B):
    """Each column's own solve over its entries e: ``(M0 + lambda sum_e w_e f_e f_e^T) x = B_j + lambda sum_e w_e z_e
    f_e`` (``weights`` w and working targets z in the matrix's csr order; with ``fit_intercepts`` f is augmented by a
    1, x holds the column's factors and intercept, and a column without entries gets 0)."""
    m = sp.csr_matrix(s.matrix, dtype=np.float64)
    order = np.argsort(m.indices, kind="stable")            # the entries by column
    rows_all = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(m.indices, minlength=m.shape[1]))])
    k = F64.shape[1]
    for j in range(m.shape[1]):
        sel = order[starts[j]:starts[j + 1]]
        rows, w, z = rows_all[starts[j]:starts[j + 1]], weights[sel], targets[sel]
        Fj = F64[rows]
        if s.fit_intercepts:
            if len(rows) == 0:
                s.factors[j], s.intercepts[j] = 0.0, 0.0
                continue
            Fj = np.hstack([Fj, np.ones((len(rows), 1))])
        x = np.linalg.solve(M0 + s.weight * ((Fj * w[:, None]).T @ Fj), B[j] + s.weight * ((w * z) @ Fj))
        s.factors[j] = x[:k]
        if s.fit_intercepts:
            s.intercepts[j] = x[k]


def update_side_factors(terms, F, by_item, regularization, negative_regularization):
    """Exact update of every side matrix's column factors given the side's factors ``F``:
    V = lambda A^T F (lambda F^T F + r_V I)^{-1}, in place; with ``fit_intercepts`` V and c jointly, F augmented by a
    column of ones whose coefficient (c) is not penalised."""
    mine = _on(terms, by_item)
    if not mine:
        return
    F64 = F.astype(np.float64)
    G = F64.T @ F64
    k = G.shape[0]
    ones_F = F64.sum(axis=0)
    for s in mine:
        r = _column_penalty(s, F.shape[0], regularization, negative_regularization)
        if s.observed_only:   # its entries only; binary: the logistic bound at the current scores (one MM step)
            m = sp.csr_matrix(s.matrix, dtype=np.float64)
            c = np.zeros(m.shape[1]) if s.intercepts is None else s.intercepts
            size = k + 1 if s.fit_intercepts else k
            M0 = np.diag(np.r_[np.full(k, r), np.zeros(size - k)])
            _column_solves(s, F64, *entry_weights(m, s.factors, c, F64, s.logistic), M0, np.zeros((m.shape[1], size)))
            continue
        B = s.weight * (s.targets.T @ F64)
        if s.alpha:   # each column's entries add lambda alpha a (f f^T, f) to the whole-data part's system
            a = sp.csr_matrix(s.matrix, dtype=np.float64).data
            _column_solves(s, F64, s.alpha * a, np.ones(len(a)), s.weight * G + r * np.eye(k), B)
            continue
        if not s.fit_intercepts:
            s.factors[:] = np.linalg.solve(s.weight * G + r * np.eye(k), B.T).T
            continue
        M = np.zeros((k + 1, k + 1))
        M[:k, :k], M[:k, k], M[k, :k], M[k, k] = G, ones_F, ones_F, F.shape[0]
        M *= s.weight
        M[np.arange(k), np.arange(k)] += r
        rhs = np.hstack([B, s.weight * np.asarray(s.matrix.sum(axis=0)).T])
        X = np.linalg.solve(M, rhs.T).T
        s.factors[:], s.intercepts[:] = X[:, :k], X[:, k]


def side_objective(terms, P, Q, regularization, negative_regularization):
    """Every side matrix's exact loss and penalties (list of float, in ``terms`` order), from Gram matrices and
    one sparse product each: ||A - F V^T||^2 = ||A||^2 - 2 <A^T F, V> + <F^T F, V^T V>."""
    out = []
    for s in terms:
        F = (Q if s.by_item else P).astype(np.float64)
        V = s.factors.astype(np.float64)
        r = _column_penalty(s, F.shape[0], regularization, negative_regularization)
        if s.observed_only:             # the entries' squared errors (or logistic losses) only
            A = sp.csr_matrix(s.matrix, dtype=np.float64)
            scores = entry_scores(A, F, V, np.zeros(A.shape[1]) if s.intercepts is None else s.intercepts)
            loss = (np.sum(logistic_loss(A.data, scores)) if s.logistic
                    else float((A.data - scores) @ (A.data - scores)))
            out.append(float(s.weight * loss + r * np.sum(V * V)))
            continue
        T = s.targets
        fit = (T.data @ T.data - 2.0 * np.sum((T.T @ F) * V) + np.sum((F.T @ F) * (V.T @ V)))
        if s.alpha:                     # the entries' extra confidence: alpha a (1 - f . v)^2
            A = sp.coo_matrix(s.matrix)
            residual = 1.0 - np.einsum("ij,ij->i", F[A.row], V[A.col])
            fit += s.alpha * float(A.data @ (residual * residual))
        if s.intercepts is not None and np.any(s.intercepts):   # ||R - 1 c^T||^2 with R = A - F V^T
            c = s.intercepts
            column_sums = np.asarray(s.matrix.sum(axis=0)).ravel() - V @ F.sum(axis=0)
            fit += F.shape[0] * float(c @ c) - 2.0 * float(c @ column_sums)
        row_penalty = negative_regularization * s.weight * s.n_columns * np.sum(F * F)
        out.append(float(s.weight * fit + r * np.sum(V * V) + row_penalty))
    return out
