"""Losses of the heads: finite-difference gradients and the logistic bound."""
import numpy as np
import pytest

from mtl_classic import heads


def _fd(f, s, eps=1e-6):
    g = np.zeros_like(s)
    for j in range(len(s)):
        d = np.zeros_like(s)
        d[j] = eps
        g[j] = (f(s + d) - f(s - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("loss, grad, labels", [
    (heads.squared_loss, heads.squared_loss_grad, "real"),
    (heads.logistic_loss, heads.logistic_loss_grad, "binary"),
])
def test_loss_gradients_match_finite_differences(loss, grad, labels):
    rng = np.random.default_rng(0)
    s = rng.normal(scale=3.0, size=20)
    y = rng.normal(size=20) if labels == "real" else rng.integers(0, 2, 20).astype(float)
    w = rng.uniform(0.5, 2.0, size=20)
    np.testing.assert_allclose(grad(y, s, w), _fd(lambda v: loss(y, v, w), s), rtol=1e-5, atol=1e-6)


def test_sigmoid_is_stable_and_correct():
    s = np.array([-800.0, -5.0, 0.0, 5.0, 800.0])
    p = heads.sigmoid(s)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [0.0, 1 / (1 + np.exp(5.0)), 0.5, 1 / (1 + np.exp(-5.0)), 1.0])


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_jaakkola_jordan_bound_majorises_and_touches(y):
    """The Jaakkola-Jordan bound, written out independently of the solver's (a, z):
    ``JJ(s) = log(1 + e^xi) + (s - xi) / 2 + lam(xi) (s^2 - xi^2) - y s`` majorises the log loss, touches it at
    ``s = xi`` with the same slope, and the solver's quadratic ``a (z - s)^2`` differs from it by a constant in s
    (so minimising the solver's weighted least squares minimises this bound)."""
    s = np.linspace(-10, 10, 401)
    loss = np.logaddexp(0.0, s) - y * s
    for xi in (-6.0, -0.7, 0.0, 0.3, 4.0):
        lam = np.tanh(abs(xi) / 2) / (4 * abs(xi)) if xi != 0 else 0.125
        jj = np.logaddexp(0.0, xi) + (s - xi) / 2 + lam * (s ** 2 - xi ** 2) - y * s
        assert np.all(jj >= loss - 1e-12)
        at_xi = np.logaddexp(0.0, xi) - y * xi
        assert heads.logistic_loss(y, xi) == pytest.approx(at_xi, rel=1e-12)
        a, z = heads.logistic_bound(np.array([y]), np.array([xi]))
        gap = jj - a[0] * (z[0] - s) ** 2
        np.testing.assert_allclose(gap, gap[0], atol=1e-9)   # the same quadratic in s
        slope = -2 * a[0] * (z[0] - xi)
        assert slope == pytest.approx(heads.logistic_loss_grad(y, xi), abs=1e-9)


def test_jaakkola_jordan_weight_limit():
    assert heads.jaakkola_jordan_weight(np.array([0.0]))[0] == pytest.approx(0.125)
    assert heads.jaakkola_jordan_weight(np.array([1e-8]))[0] == pytest.approx(0.125)
    assert heads.jaakkola_jordan_weight(np.array([2.0]))[0] == pytest.approx(np.tanh(1.0) / 8.0)
