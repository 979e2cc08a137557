"""Per-task losses and the quadratic surrogates the alternating solver minimises.

Every task's loss is written as a sum over entries of ``a_e * (z_e - s_e)^2`` (squared losses, exactly) or bounded
above by such a sum (the logistic loss, through the Jaakkola-Jordan bound, tight at the current score). The solver
only ever sees per-entry curvatures ``a_e`` and working targets ``z_e`` (docs/MATH.md section 2).
"""
import numpy as np

_TINY = 1e-10


def sigmoid(s):
    """Numerically stable logistic function."""
    s = np.asarray(s, dtype=float)
    out = np.empty_like(s)
    pos = s >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
    e = np.exp(s[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def squared_loss(y, s, weight=1.0):
    """Weighted squared loss ``sum weight * (y - s)^2`` (no 1/2, as in docs/MATH.md section 1)."""
    return float(np.sum(weight * (np.asarray(y) - np.asarray(s)) ** 2))


def squared_loss_grad(y, s, weight=1.0):
    """Gradient of :func:`squared_loss` with respect to the scores ``s``."""
    return -2.0 * weight * (np.asarray(y) - np.asarray(s))


def logistic_loss(y, s, weight=1.0):
    """Log loss ``sum weight * (log(1 + exp(s)) - y s)`` of labels ``y`` in {0, 1} at logits ``s``."""
    s = np.asarray(s, dtype=float)
    return float(np.sum(weight * (np.logaddexp(0.0, s) - np.asarray(y) * s)))


def logistic_loss_grad(y, s, weight=1.0):
    """Gradient of :func:`logistic_loss` with respect to the logits ``s``."""
    return weight * (sigmoid(s) - np.asarray(y))


def jaakkola_jordan_weight(xi):
    """Curvature of the Jaakkola-Jordan bound, ``tanh(xi / 2) / (4 xi)`` (1/8 at xi = 0).

    For labels y in {0, 1}: ``logloss(y, s) <= lam * s^2 - (y - 1/2) s + const(xi)`` with ``lam`` this weight, with
    equality at ``s = +-xi``; minimising the bound is a weighted least squares with target ``(y - 1/2) / (2 lam)``.
    """
    xi = np.abs(np.asarray(xi, dtype=float))
    out = np.full(xi.shape, 0.125)
    big = xi > 1e-6
    out[big] = np.tanh(xi[big] / 2.0) / (4.0 * xi[big])
    return np.maximum(out, _TINY)


def logistic_bound(y, xi):
    """Curvature ``a`` and working target ``z`` of the logistic bound at the current logits ``xi``.

    ``logloss(y, s) <= a (z - s)^2 + const``, equality at ``s = xi``.
    """
    a = jaakkola_jordan_weight(xi)
    z = (np.asarray(y, dtype=float) - 0.5) / (2.0 * a)
    return a, z
