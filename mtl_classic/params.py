"""The fitted parameters: one owner for the learned arrays, their schema and the score formula.

:class:`FittedParams` holds every learned array of a multi-task factorisation (docs/MATH.md section 1). The solver
updates one in place while it fits, the estimator keeps the result, :mod:`mtl_classic.persistence` writes and reads
it through :meth:`FittedParams.to_arrays` / :meth:`FittedParams.from_arrays`, and
:class:`mtl_classic.inference.InferenceModel` scores with it. Adding a learned array is a change here: a field, its
entry in :data:`SCHEMA`, and its term in the score formula.

The score of task t for user u and item i::

    s_t(u, i) = (p_u * w_t) . q_i + b_t + bu_t[u] + bi_t[i] + sum_b (beta_tb + gamma_tb[i] + delta_tb[u]) x_b(u, i)

where ``x_b`` is 1 where task b has a training observation of (u, i) (the cross-task features). numpy and scipy only.
"""
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp

__all__ = ["FittedParams", "SCHEMA", "OPTIONAL", "expected_shapes"]

#: Every learned array and its shape in symbols: T tasks, U users, I items, k factors.
SCHEMA = {
    "user_factors": ("U", "k"),               # p_u
    "item_factors": ("I", "k"),               # q_i
    "head_weights": ("T", "k"),               # w_t
    "intercepts": ("T",),                     # b_t
    "user_biases": ("T", "U"),                # bu_t[u]
    "item_biases": ("T", "I"),                # bi_t[i]
    "cross_weights": ("T", "T"),              # beta_tb
    "cross_item_weights": ("T", "T", "I"),    # gamma_tb[i], optional (cross_per_item)
    "cross_user_weights": ("T", "T", "U"),    # delta_tb[u], optional (cross_per_user)
}
#: Arrays that may be None (the model was fitted without them).
OPTIONAL = ("cross_item_weights", "cross_user_weights")
#: Arrays cast by ``astype`` (the rest stay float64: they are small, and exact intercepts keep cold-start answers).
_CAST = ("user_factors", "item_factors", "head_weights", "user_biases", "item_biases")


def expected_shapes(n_tasks, n_users, n_items, factors):
    """``{array name: shape}`` of every array in :data:`SCHEMA` for the given sizes."""
    size = {"T": int(n_tasks), "U": int(n_users), "I": int(n_items), "k": int(factors)}
    return {name: tuple(size[s] for s in dims) for name, dims in SCHEMA.items()}


@dataclass
class FittedParams:
    """The learned arrays of a multi-task matrix factorisation (shapes in :data:`SCHEMA`).

    Parameters
    ----------
    user_factors : ndarray (n_users, k)
    item_factors : ndarray (n_items, k)
    head_weights : ndarray (T, k)
    intercepts : ndarray (T,)
    user_biases : ndarray (T, n_users)
    item_biases : ndarray (T, n_items)
    cross_weights : ndarray (T, T)
        beta_tb, the weight of task b's training pattern x_b in task t's score.
    cross_item_weights : ndarray (T, T, n_items) or None
        Per-item deviations gamma_tb[i] of the cross-task weights.
    cross_user_weights : ndarray (T, T, n_users) or None
        Per-user deviations delta_tb[u].
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    head_weights: np.ndarray
    intercepts: np.ndarray
    user_biases: np.ndarray
    item_biases: np.ndarray
    cross_weights: np.ndarray
    cross_item_weights: np.ndarray = None
    cross_user_weights: np.ndarray = None

    # ---------------------------------------------------------------- sizes and arrays
    @property
    def n_users(self):
        return int(self.user_factors.shape[0])

    @property
    def n_items(self):
        return int(self.item_factors.shape[0])

    @property
    def n_tasks(self):
        return int(self.head_weights.shape[0])

    @property
    def factors(self):
        return int(self.item_factors.shape[1])

    def to_arrays(self):
        """``{name: ndarray}`` of every array present (optional ones left out when None); arrays are shared."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_arrays(cls, arrays, dtype=None, copy=False):
        """Parameters from ``{name: array}`` (e.g. read from a saved model; missing optional arrays are None).

        Parameters
        ----------
        arrays : mapping of str -> array-like
        dtype : {None, "float32", "float64"}, default=None
            Cast the factors, heads and biases (None keeps the stored dtype; intercepts and cross weights are
            always float64).
        copy : bool, default=False
            Copy the arrays (False keeps memory-mapped arrays mapped).
        """
        def take(name):
            value = arrays.get(name)
            if value is None:
                return None
            if name in ("intercepts", "cross_weights"):
                return np.array(value, dtype=np.float64, copy=True) if copy else np.asarray(value, np.float64)
            return np.array(value) if copy else value
        params = cls(**{f.name: take(f.name) for f in fields(cls)})
        return params if dtype is None else params.astype(dtype)

    def astype(self, dtype):
        """A copy with the factors, heads and biases cast to ``dtype`` (the other arrays shared)."""
        dtype = np.dtype(dtype)
        return replace(self, **{name: np.asarray(getattr(self, name), dtype=dtype) for name in _CAST})

    def with_users(self, user_factors, user_biases, cross_user_weights=None):
        """Parameters over other users (e.g. folded-in ones) sharing this item side."""
        dtype = self.item_factors.dtype
        return replace(self, user_factors=np.asarray(user_factors, dtype=dtype),
                       user_biases=np.asarray(user_biases, dtype=dtype), cross_user_weights=cross_user_weights)

    # ---------------------------------------------------------------- the score formula
    def cross_active(self, t, b):
        """Whether task b's pattern enters task t's score (a nonzero shared, per-item or per-user weight)."""
        if self.cross_weights[t, b] != 0:
            return True
        return any(dev is not None and np.any(dev[t, b] != 0)
                   for dev in (self.cross_item_weights, self.cross_user_weights))

    def active_cross(self, t):
        """Indices b of the tasks whose patterns enter task t's score."""
        return [b for b in range(self.n_tasks) if b != t and self.cross_active(t, b)]

    def cross_weights_at(self, t, b, users, items):
        """Weight of x_b in task t's score at (user, item) pairs: beta_tb + gamma_tb[i] + delta_tb[u]."""
        w = np.full(len(items), self.cross_weights[t, b])
        if self.cross_item_weights is not None:
            w += self.cross_item_weights[t, b, items]
        if self.cross_user_weights is not None:
            w += self.cross_user_weights[t, b, users]
        return w

    def has_offsets(self, t):
        """Whether task t has a nonzero intercept or bias (else they are left out of score blocks)."""
        return bool(np.any(self.user_biases[t]) or np.any(self.item_biases[t]) or self.intercepts[t] != 0)

    def score_block(self, t, users, patterns, cross=None, offsets=None):
        """Raw scores (len(users), n_items) of task index ``t`` for internal users (logits for logistic heads).

        Parameters
        ----------
        t : int
        users : ndarray of int64
        patterns : sequence of sparse matrix (n_users, n_items)
            The tasks' training patterns x_b, in task order (only the active cross tasks are read).
        cross : list of int, optional
            The active cross tasks of ``t`` (default :meth:`active_cross`; pass it to skip the check).
        offsets : bool, optional
            Whether ``t`` has an intercept or biases (default :meth:`has_offsets`, a pass over the bias arrays;
            callers scoring many blocks compute it once).
        """
        if offsets is None:
            offsets = self.has_offsets(t)
        scores = (self.user_factors[users] * self.head_weights[t]) @ self.item_factors.T
        if offsets:
            scores += self.intercepts[t] + self.user_biases[t, users][:, None] + self.item_biases[t][None, :]
        total = None
        for b in (self.active_cross(t) if cross is None else cross):
            rows = sp.csr_matrix(patterns[b][users])
            local = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
            rows.data = rows.data * self.cross_weights_at(t, b, users[local], rows.indices)
            total = rows if total is None else total + rows
        if total is not None and total.nnz:
            total = sp.csr_matrix(total)
            rows = np.repeat(np.arange(total.shape[0]), np.diff(total.indptr))
            scores[rows, total.indices] += total.data
        return scores

    def score_pairs(self, t, users, items, patterns, cross=None):
        """Raw scores of task index ``t`` at (user, item) pairs of internal indices."""
        s = np.einsum("nk,nk->n", self.user_factors[users] * self.head_weights[t], self.item_factors[items])
        s += self.intercepts[t] + self.user_biases[t, users] + self.item_biases[t, items]
        if len(users):
            for b in (self.active_cross(t) if cross is None else cross):
                x = np.asarray(patterns[b][users, items]).ravel()
                s += x * self.cross_weights_at(t, b, users, items)
        return s
