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
(:func:`confidence_entries`, appended to the row kernels' entries) and to its column's solve. Arrays only.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._side_math import entry_weights, side_system
from .._sparse import observation_pattern
from ..heads import logistic_loss

__all__ = ["SideTerm", "row_terms", "confidence_entries", "with_confidence_entries", "update_side_factors",
           "side_objective"]


@dataclass
class SideTerm:
    """One side matrix in a fit: ``matrix`` (csr, rows of the user or item side being solved, ``by_item`` says which),
    its column factors ``factors`` (n_columns x k) and column intercepts ``intercepts`` (n_columns, float64; None: 0),
    both updated in place by :func:`update_side_factors` (the intercepts when ``fit_intercepts``)."""

    name: str
    by_item: bool
    weight: float
    matrix: object
    factors: np.ndarray
    intercepts: np.ndarray = None
    fit_intercepts: bool = False
    alpha: float = 0.0
    observed_only: bool = False   # Task(kind="regression"): squared error on the entries only (missing is unknown)
    logistic: bool = False        # Task(kind="binary"): logistic loss on the entries only (0/1 labels)

    @property
    def targets(self):
        """The whole-data part's targets: the values (``alpha`` 0), or 1 on every entry (``alpha`` > 0, whose
        confidence ``1 + alpha * value`` adds :func:`confidence_entries`)."""
        return observation_pattern(self.matrix) if self.alpha else self.matrix

    @property
    def n_columns(self):
        return self.matrix.shape[1]


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
    return side_system([(s.weight, s.targets, s.factors, s.intercepts) for s in mine if not s.observed_only], k,
                       negative_regularization)


def confidence_entries(terms, by_item, F=None):
    """The per-entry part of this side's side matrices with entry terms: confidence-weighted ones (``alpha`` > 0:
    curvature and linear term ``lambda * alpha * value``, the entry's target being 1) and observed-only ones
    (curvature ``lambda a``, linear term ``lambda a (z - c_j)``: a = 1 and z the value for regression, the logistic
    bound's weight and working target at the current scores of the rows ``F`` for binary). Returns (csr over the
    rows whose columns index the rows of the stacked column factors, curvatures and linear terms in the csr's entry
    order, the stacked column factors), or None without such matrices."""
    mine = [s for s in _on(terms, by_item) if s.alpha or s.observed_only]
    if not mine:
        return None
    blocks, curv, lin, start = [], [], [], 0
    for s in mine:
        m = sp.csr_matrix(s.matrix, dtype=np.float64)
        m.sort_indices()
        a = m.data
        if s.observed_only:
            c = np.zeros(m.shape[1]) if s.intercepts is None else np.asarray(s.intercepts, dtype=np.float64)
            w, z = entry_weights(m, s.factors, c, F, s.logistic)
            curv.append(s.weight * w)
            lin.append(s.weight * w * (z - c[m.indices]))
        else:
            curv.append(s.weight * s.alpha * a)
            lin.append(s.weight * s.alpha * a)
        # the entries' positions (plus 1: no stored value is 0) carry them through the horizontal stacking
        blocks.append(sp.csr_matrix((np.arange(start + 1, start + m.nnz + 1, dtype=np.float64), m.indices,
                                     m.indptr), shape=m.shape))
        start += m.nnz
    C = sp.hstack(blocks, format="csr")
    C.sort_indices()
    position = np.rint(C.data).astype(np.int64) - 1
    return (C, np.concatenate(curv)[position], np.concatenate(lin)[position],
            np.vstack([np.asarray(s.factors, dtype=np.float64) for s in mine]))


def with_confidence_entries(indptr, indices, curv, lin, extra, offset):
    """A row layout's entries (``indptr``, ``indices``, ``curv``, ``lin``) with each row's entries of ``extra`` =
    (csr, their curvatures, their linear terms) of :func:`confidence_entries` appended after its own, their columns
    shifted by ``offset``."""
    extra, extra_curv, extra_lin = extra
    n = len(indptr) - 1
    rows_a = np.repeat(np.arange(n), np.diff(indptr))
    rows_b = np.repeat(np.arange(n), np.diff(extra.indptr))
    pos_a = np.arange(len(indices)) + extra.indptr[rows_a]
    pos_b = np.asarray(indptr)[rows_b + 1] + np.arange(extra.nnz)
    total = len(indices) + extra.nnz
    new_indices = np.empty(total, np.int64)
    new_indices[pos_a], new_indices[pos_b] = indices, extra.indices.astype(np.int64) + offset
    out = [np.asarray(indptr, np.int64) + extra.indptr, new_indices]
    for a, b in ((curv, extra_curv), (lin, extra_lin)):
        merged = np.empty(total, a.dtype)
        merged[pos_a], merged[pos_b] = a, b
        out.append(merged)
    return out


def _column_penalty(s, n_rows, regularization, negative_regularization):
    if s.observed_only:          # no whole-data loss, hence no mass to scale the penalty with
        return regularization
    return regularization + negative_regularization * s.weight * n_rows


def _observed_columns(s, F64, r):
    """Observed-only: each column's own weighted least squares over its entries (with its intercept when fitted);
    binary: the logistic bound's weights and working targets at the current scores (a majorise-minimise step)."""
    m = sp.csr_matrix(s.matrix, dtype=np.float64)
    c = np.zeros(m.shape[1]) if s.intercepts is None else s.intercepts
    weights, targets = entry_weights(m, s.factors, c, F64, s.logistic)
    order = np.argsort(m.indices, kind="stable")            # the entries by column
    rows_all = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(m.indices, minlength=m.shape[1]))])
    k = F64.shape[1]
    for j in range(m.shape[1]):
        sel = order[starts[j]:starts[j + 1]]
        rows, w, a = rows_all[starts[j]:starts[j + 1]], weights[sel], targets[sel]
        Fj = F64[rows]
        if s.fit_intercepts:
            if len(rows) == 0:
                s.factors[j], s.intercepts[j] = 0.0, 0.0
                continue
            Fj = np.hstack([Fj, np.ones((len(rows), 1))])
        M = s.weight * ((Fj * w[:, None]).T @ Fj)
        M[np.arange(k), np.arange(k)] += r
        x = np.linalg.solve(M, s.weight * ((w * a) @ Fj))
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
        if s.observed_only:
            _observed_columns(s, F64, r)
            continue
        B = s.weight * (s.targets.T @ F64)
        if s.alpha:   # each column's own entries add lambda alpha a f f^T and lambda alpha a f: one solve per column
            M0 = s.weight * G + r * np.eye(k)
            A = sp.csc_matrix(s.matrix, dtype=np.float64)
            for j in range(A.shape[1]):
                rows, a = A.indices[A.indptr[j]:A.indptr[j + 1]], A.data[A.indptr[j]:A.indptr[j + 1]]
                Fj, w = F64[rows], s.weight * s.alpha * a
                s.factors[j] = np.linalg.solve(M0 + (Fj * w[:, None]).T @ Fj, B[j] + w @ Fj)
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
        if s.observed_only:             # the entries' squared errors only
            A = sp.coo_matrix(s.matrix)
            c = np.zeros(A.shape[1]) if s.intercepts is None else s.intercepts
            scores = np.einsum("ij,ij->i", F[A.row], V[A.col]) + c[A.col]
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
