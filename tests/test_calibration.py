"""TaskCalibrator (Platt / isotonic), validation pairs with sampled negatives, reliability curves."""
import json
import os

import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.calibration import (TaskCalibrator, fit_calibrator, load_calibrators, reliability_curve,
                                     save_calibrators, validation_pairs)
from mtl_classic.data import MultiTaskData
from mtl_classic.inference import InferenceModel
from mtl_classic.model import MultiTaskMF
from mtl_classic.persistence import ModelFormatError, save_model
from mtl_classic.tasks import Task


def _synthetic(n=20000, a=2.0, b=-1.0, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a * s + b)))).astype(float)
    return s, y


def test_platt_recovers_the_logistic_link():
    s, y = _synthetic()
    cal = TaskCalibrator("platt").fit(3.0 * s + 5.0, y)         # any affine rescaling of the score
    assert cal.a_ * 3.0 == pytest.approx(2.0, abs=0.1)
    assert cal.b_ + cal.a_ * 5.0 == pytest.approx(-1.0, abs=0.1)
    # weights act like repetitions
    w = np.where(np.arange(len(s)) % 2 == 0, 2.0, 1.0)
    rep = np.concatenate([np.arange(len(s)), np.arange(0, len(s), 2)])
    a = TaskCalibrator("platt").fit(s, y, sample_weight=w)
    b = TaskCalibrator("platt").fit(s[rep], y[rep])
    assert a.a_ == pytest.approx(b.a_, rel=1e-6) and a.b_ == pytest.approx(b.b_, rel=1e-6)


def test_isotonic_is_monotone_and_matches_scikit_learn():
    from sklearn.isotonic import IsotonicRegression

    s, y = _synthetic(5000)
    cal = TaskCalibrator("isotonic").fit(s, y)
    grid = np.linspace(-4, 4, 101)
    p = cal.transform(grid)
    assert np.all(np.diff(p) >= 0) and p.min() >= 0 and p.max() <= 1
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y)
    assert np.allclose(p, ref.predict(grid))


def test_round_trip_and_errors(tmp_path):
    s, y = _synthetic(2000)
    cals = {"a": TaskCalibrator("platt").fit(s, y), "b": TaskCalibrator("isotonic").fit(s, y)}
    os.makedirs(tmp_path / "m")
    save_calibrators(tmp_path / "m", cals)
    back = load_calibrators(tmp_path / "m")
    for k in cals:
        assert np.array_equal(back[k].transform(s), cals[k].transform(s))
    json.dump({"format": "mtl_classic.calibration", "format_version": 1, "calibrators": {"a": {"method": "x"}}},
              open(tmp_path / "m" / "calibration.json", "w"))
    with pytest.raises(ModelFormatError):
        load_calibrators(tmp_path / "m")
    with pytest.raises(ValueError, match="method"):
        TaskCalibrator("spline").fit(s, y)
    with pytest.raises(ValueError, match="0 or 1"):
        TaskCalibrator().fit(s, y * 2)
    with pytest.raises(ValueError, match="both positive and negative"):
        TaskCalibrator().fit(s, np.ones_like(s))
    with pytest.raises(AttributeError, match="not fitted"):
        TaskCalibrator().transform(s)


def test_reliability_curve():
    rng = np.random.default_rng(1)
    p = rng.random(50000)
    y = (rng.random(p.size) < p).astype(float)
    good = reliability_curve(p, y, n_bins=10, strategy="uniform")
    assert good["ece"] < 0.02 and len(good["bins"]) == 10
    assert sum(b["count"] for b in good["bins"]) == p.size
    bad = reliability_curve(p ** 3, y, n_bins=10)
    assert bad["ece"] > 0.15 and bad["brier"] > good["brier"]
    assert good["base_rate"] == pytest.approx(y.mean())
    w = rng.random(p.size)
    weighted = reliability_curve(p, y, sample_weight=w)
    assert weighted["base_rate"] == pytest.approx(np.average(y, weights=w))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        reliability_curve(p + 1, y)


def _data(n_users=120, n_items=60, seed=0):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    S = P @ Q.T
    click = sp.csr_matrix((S + rng.normal(size=S.shape) > 1.0).astype(float))
    rated = sp.random(n_users, n_items, density=0.3, random_state=seed, format="csr")
    rated.data = (S[rated.nonzero()] + rng.normal(size=rated.nnz) > 0).astype(float)
    return MultiTaskData.from_matrices({"click": click, "liked": rated})


def _holdout(matrix, fraction, seed):
    rng = np.random.default_rng(seed)
    out = rng.random(matrix.nnz) < fraction
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    keep = sp.csr_matrix((matrix.data[~out], (rows[~out], matrix.indices[~out])), shape=matrix.shape)
    held = sp.csr_matrix((matrix.data[out], (rows[out], matrix.indices[out])), shape=matrix.shape)
    return keep, held


def test_validation_pairs_sample_true_negatives_with_weights():
    data = _data()
    train_click, held = _holdout(data.matrices["click"], 0.2, 0)
    train = data.with_matrices({"click": train_click, "liked": data.matrices["liked"]})
    u, i, y, w = validation_pairs(train, held, "click", negatives_per_positive=5, random_state=0)
    pos = y == 1
    assert pos.sum() == held.nnz and np.all(w[pos] == 1)
    observed = (train_click + held).tocsr()
    assert np.asarray(observed[u[~pos], i[~pos]]).ravel().sum() == 0        # negatives are unobserved pairs
    # per user, the negative weights add up to that user's number of unobserved candidates
    for user in np.unique(u[~pos])[:10]:
        cand = data.n_items - observed[user].nnz
        assert w[(~pos) & (u == user)].sum() == pytest.approx(cand)
    again = validation_pairs(train, held, "click", negatives_per_positive=5, random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (u, i, y, w)))     # seeded
    # binary tasks: the held-out labels themselves
    _, held_liked = _holdout(data.matrices["liked"], 0.2, 1)
    u, i, y, w = validation_pairs(train, held_liked, "liked")
    assert np.array_equal(y, held_liked.data) and np.all(w == 1)


def test_calibrating_a_fitted_model_improves_reliability(tmp_path):
    data = _data()
    rest, test = _holdout(data.matrices["click"], 0.15, 0)
    fit_part, val = _holdout(rest, 0.15, 1)
    train = data.with_matrices({"click": fit_part, "liked": data.matrices["liked"]})
    model = MultiTaskMF(tasks=[Task("click"), Task("liked", kind="binary")], factors=4, iterations=5,
                        random_state=0).fit(train)
    inf = InferenceModel.from_model(model)
    u, i, y, w = validation_pairs(train, test, "click", random_state=7)
    raw = inf.predict_indices("click", u, i, raw=True)
    before = reliability_curve(np.clip(raw, 0, 1), y, sample_weight=w)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(model, train, val, "click", method=method)
        after = reliability_curve(cal.transform(raw), y, sample_weight=w)
        assert after["log_loss"] < before["log_loss"], (method, after, before)
        assert after["ece"] < before["ece"] or after["ece"] < 0.01
    # stored beside the model, the calibrators serve expected-value rankings
    path = save_model(model, tmp_path / "m")
    save_calibrators(path, {"click": fit_calibrator(model, train, val, "click")})
    loaded = InferenceModel.load(path)
    assert set(loaded.calibrators) == {"click"}
    ids, scores, parts = loaded.recommend_blended([0, 1], n=5, probabilities=["click", "liked"],
                                                  return_breakdown=True)
    assert np.all((parts["click"] >= 0) & (parts["click"] <= 1))
    assert np.allclose(scores, parts["click"] * parts["liked"])
