"""Side matrices in the solver (docs/MATH.md, "side matrices"): a user x query or item x attribute matrix A that shares
one side's factors F (P or Q) and has column factors V of its own, with the loss

    lambda * ||A - F V^T - 1 c^T||_F^2  +  r_V ||V||^2  +  negative_regularization * lambda * n_columns * ||F||^2

(every pair weighs 1, A's values as targets, 0 where A has no entry; c the columns' intercepts, fitted with
``Task(biases=True)`` and 0 otherwise; r_V = regularization + negative_regularization * lambda * n_rows, the rows'
penalty rule of the model). Uniform weights keep it whole-data and O(nnz(A) k): in a row solve of F it adds the same
``lambda V^T V`` to every row's system (the shared part A0) and ``lambda (A V - 1 c^T V)`` to the right-hand sides,
so the row kernels are unchanged; V (and c) have a closed form given F. Arrays only.
"""
from dataclasses import dataclass

import numpy as np

from .._side_math import side_system

__all__ = ["SideTerm", "row_terms", "update_side_factors", "side_objective"]


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
    return side_system([(s.weight, s.matrix, s.factors, s.intercepts) for s in mine], k, negative_regularization)


def _column_penalty(s, n_rows, regularization, negative_regularization):
    return regularization + negative_regularization * s.weight * n_rows


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
        B = s.weight * (s.matrix.T @ F64)
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
        fit = (s.matrix.data @ s.matrix.data - 2.0 * np.sum((s.matrix.T @ F) * V) + np.sum((F.T @ F) * (V.T @ V)))
        if s.intercepts is not None and np.any(s.intercepts):   # ||R - 1 c^T||^2 with R = A - F V^T
            c = s.intercepts
            column_sums = np.asarray(s.matrix.sum(axis=0)).ravel() - V @ F.sum(axis=0)
            fit += F.shape[0] * float(c @ c) - 2.0 * float(c @ column_sums)
        r = _column_penalty(s, F.shape[0], regularization, negative_regularization)
        row_penalty = negative_regularization * s.weight * s.n_columns * np.sum(F * F)
        out.append(float(s.weight * fit + r * np.sum(V * V) + row_penalty))
    return out
