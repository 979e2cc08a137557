"""Calibrated probabilities for a task's scores, and how to check them.

A linear head's score (implicit or regression task) is not a probability, and a logistic head's probability is only
as good as its fit. :class:`TaskCalibrator` maps a task's raw scores to probabilities, fitted on held-out validation
pairs (never the test split):

* ``"platt"``: ``p = sigmoid(a * s + b)``, two parameters by weighted maximum likelihood (Newton's method);
* ``"isotonic"``: the monotone step function of best weighted squared error (scikit-learn's
  ``IsotonicRegression`` at fit time), applied by linear interpolation between its thresholds.

Applying a fitted calibrator needs numpy only (so the inference path can use it); fitting isotonic imports
scikit-learn when called.

Which pairs (:func:`validation_pairs`): for a **binary** task, the held-out labelled pairs. For an **implicit** task,
the held-out pairs are positives and negatives are sampled (seeded) among the same users' pairs that are observed
neither in training nor in the hold-out; each negative is weighted by ``candidates / sampled`` for its user, so the
fitted probability estimates ``P(pair held out | score)`` over *all* unobserved pairs of those users, not over an
artificially balanced sample. Calibrated this way, ``p(click) * p(buy) * price`` is an expected value (see
:meth:`mtl_classic.inference.InferenceModel.recommend_blended`).

Checking (:func:`reliability_curve`): binned mean predicted probability against observed frequency, the expected
calibration error ``ECE = sum_b (W_b / W) |mean_pred_b - freq_b|``, the Brier score and the log loss, all weighted.
"""
import json
import numbers
import os

import numpy as np
import scipy.sparse as sp

from ._errors import ModelFormatError, not_fitted
from .heads import sigmoid as _sigmoid

__all__ = ["TaskCalibrator", "validation_pairs", "fit_calibrator", "reliability_curve", "save_calibrators",
           "load_calibrators", "CALIBRATION_NAME"]

CALIBRATION_NAME = "calibration.json"
_METHODS = ("platt", "isotonic")


def _check_fit_inputs(scores, labels, sample_weight):
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape or s.size == 0:
        raise ValueError(f"TaskCalibrator.fit: scores and labels must be non-empty and of equal length; got "
                         f"{s.size} and {y.size}.")
    if not np.isfinite(s).all():
        raise ValueError("TaskCalibrator.fit: scores must be finite.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("TaskCalibrator.fit: labels must be 0 or 1.")
    w = np.ones_like(s) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if w.shape != s.shape or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("TaskCalibrator.fit: sample_weight must be finite, >= 0, not all zero, one per score.")
    if w[y == 1].sum() <= 0 or w[y == 0].sum() <= 0:
        raise ValueError("TaskCalibrator.fit: need both positive and negative labels (with weight > 0).")
    return s, y, w


def _fit_platt(s, y, w, max_iter=100, tol=1e-10):
    """Weighted logistic regression of y on one score: (a, b) by Newton's method on standardised scores."""
    mu = np.average(s, weights=w)
    sd = np.sqrt(np.average((s - mu) ** 2, weights=w)) or 1.0
    x = (s - mu) / sd
    W = w / w.sum()
    prior = np.sum(W * y)
    theta = np.array([0.0, np.log(prior / (1 - prior))])   # slope, intercept
    ridge = 1e-8
    for _ in range(max_iter):
        p = _sigmoid(theta[0] * x + theta[1])
        g = np.array([np.sum(W * (p - y) * x), np.sum(W * (p - y))]) + ridge * np.array([theta[0], 0.0])
        h = W * p * (1 - p)
        H = np.array([[np.sum(h * x * x) + ridge, np.sum(h * x)], [np.sum(h * x), np.sum(h) + ridge]])
        step = np.linalg.solve(H, g)
        # backtracking keeps every step a descent step (the loss is convex; this only guards against overshoot)
        loss = _weighted_log_loss(y, p, W)
        t = 1.0
        while t > 1e-8:
            cand = theta - t * step
            if _weighted_log_loss(y, _sigmoid(cand[0] * x + cand[1]), W) <= loss + 1e-15:
                break
            t /= 2
        theta = cand
        if np.max(np.abs(t * step)) < tol:
            break
    a = theta[0] / sd
    return float(a), float(theta[1] - a * mu)


def _weighted_log_loss(y, p, w, eps=1e-15):
    p = np.clip(p, eps, 1 - eps)
    return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))) / np.sum(w))


class TaskCalibrator:
    """Map one task's raw scores to calibrated probabilities.

    Parameters
    ----------
    method : {"platt", "isotonic"}, default="platt"

    Attributes
    ----------
    a_, b_ : float
        Platt: ``p = sigmoid(a_ * s + b_)``.
    x_, y_ : ndarray
        Isotonic: thresholds (increasing scores) and their probabilities; ``p = interp(s, x_, y_)``, constant beyond
        the ends.
    n_samples_ : int
    """

    def __init__(self, method="platt"):
        self.method = method

    def fit(self, scores, labels, sample_weight=None):
        """Fit on raw scores and 0/1 labels (optionally weighted).

        Returns
        -------
        self
        """
        if self.method not in _METHODS:
            raise ValueError(f"The 'method' parameter of TaskCalibrator must be one of {_METHODS}. "
                             f"Got {self.method!r}.")
        s, y, w = _check_fit_inputs(scores, labels, sample_weight)
        if self.method == "platt":
            self.a_, self.b_ = _fit_platt(s, y, w)
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(s, y, sample_weight=w)
            self.x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        self.n_samples_ = int(s.size)
        return self

    def transform(self, scores):
        """Probabilities of raw scores (same shape)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            if not hasattr(self, "a_"):
                raise not_fitted(self, "call fit first")
            return _sigmoid(self.a_ * s + self.b_)
        if not hasattr(self, "x_"):
            raise not_fitted(self, "call fit first")
        return np.interp(s, self.x_, self.y_)

    predict_proba = transform

    def to_dict(self):
        """JSON-able description of the fitted calibrator."""
        if self.method == "platt":
            return {"method": "platt", "a": self.a_, "b": self.b_, "n_samples": self.n_samples_}
        return {"method": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist(), "n_samples": self.n_samples_}

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; bad descriptions raise ``ValueError``."""
        try:
            cal = cls(d["method"])
            if cal.method == "platt":
                cal.a_, cal.b_ = float(d["a"]), float(d["b"])
                ok = np.isfinite([cal.a_, cal.b_]).all()
            elif cal.method == "isotonic":
                cal.x_ = np.asarray(d["x"], dtype=np.float64)
                cal.y_ = np.asarray(d["y"], dtype=np.float64)
                ok = (cal.x_.ndim == 1 and cal.x_.shape == cal.y_.shape and cal.x_.size > 0
                      and np.isfinite(cal.x_).all() and (np.diff(cal.x_) >= 0).all()
                      and ((cal.y_ >= 0) & (cal.y_ <= 1)).all())
            else:
                ok = False
            cal.n_samples_ = int(d.get("n_samples", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad calibrator description ({exc!r}).") from None
        if not ok:
            raise ValueError(f"bad calibrator description {d!r}.")
        return cal

    def __repr__(self):
        return f"TaskCalibrator(method={self.method!r})"


# --------------------------------------------------------------------------------------------------------------------
# validation pairs
# --------------------------------------------------------------------------------------------------------------------
def validation_pairs(train, holdout, task, kind=None, negatives_per_positive=20, random_state=0, reweight=True):
    """Pairs, labels and weights to fit or assess a calibrator of ``task``.

    Parameters
    ----------
    train : MultiTaskData
        The data the model was fitted on.
    holdout : scipy.sparse matrix (n_users, n_items)
        Held-out pairs of ``task`` (validation for fitting; test for assessing), over ``train``'s index.
    task : str
    kind : {"implicit", "binary"} or None
        None: "binary" when every held-out value is 0 or 1 and some is 0, else "implicit". Binary: the held-out
        values are the labels. Implicit: held-out pairs are positives and negatives are sampled.
    negatives_per_positive : int, default=20
        Implicit tasks: negatives sampled per held-out pair (per user), uniformly among the user's items observed
        neither in ``train.matrices[task]`` nor in ``holdout``.
    random_state : int or None, default=0
    reweight : bool, default=True
        Weight each sampled negative by ``candidates / sampled`` of its user, so that weighted statistics refer to
        all unobserved pairs of the held-out users.

    Returns
    -------
    users, items : ndarray of int64
    labels : ndarray of float64 (0/1)
    weights : ndarray of float64
    """
    if task not in train.matrices:
        raise ValueError(f"validation_pairs: unknown task {task!r}; tasks are {train.task_names}.")
    hold = sp.csr_matrix(holdout)
    if hold.shape != (train.n_users, train.n_items):
        raise ValueError(f"validation_pairs: holdout has shape {hold.shape}; expected "
                         f"{(train.n_users, train.n_items)}.")
    rows = np.repeat(np.arange(hold.shape[0]), np.diff(hold.indptr)).astype(np.int64)
    cols = hold.indices.astype(np.int64)
    values = np.asarray(hold.data, dtype=np.float64)
    if kind is None:
        kind = "binary" if values.size and np.isin(values, (0.0, 1.0)).all() and (values == 0).any() else "implicit"
    if kind == "binary":
        return rows, cols, values.copy(), np.ones(len(values))
    if kind != "implicit":
        raise ValueError(f"validation_pairs: kind must be 'implicit' or 'binary'. Got {kind!r}.")
    if not isinstance(negatives_per_positive, numbers.Integral) or negatives_per_positive < 1:
        raise ValueError(f"validation_pairs: negatives_per_positive must be an int >= 1. "
                         f"Got {negatives_per_positive!r}.")
    rng = np.random.default_rng(random_state)
    n_items = train.n_items
    seen = train.matrices[task]
    users = np.flatnonzero(np.diff(hold.indptr) > 0)
    # observed keys (train + holdout) of the held-out users, for rejection
    observed = np.union1d(_keys(seen, users, n_items), _keys(hold, users, n_items))
    n_pos = np.diff(hold.indptr)[users]
    n_obs = np.searchsorted(observed, (users + 1) * n_items) - np.searchsorted(observed, users * n_items)
    candidates = n_items - n_obs
    want = np.minimum(n_pos * int(negatives_per_positive), candidates)
    neg_users = np.repeat(users, want)
    neg_items = np.empty(len(neg_users), dtype=np.int64)
    todo = np.arange(len(neg_users))
    for _ in range(1000):                # rejection sampling; duplicates among negatives are allowed
        if not len(todo):
            break
        draw = rng.integers(0, n_items, size=len(todo))
        keys = neg_users[todo] * n_items + draw
        pos = np.minimum(np.searchsorted(observed, keys), max(len(observed) - 1, 0))
        ok = observed[pos] != keys if len(observed) else np.ones(len(todo), dtype=bool)
        neg_items[todo[ok]] = draw[ok]
        todo = todo[~ok]
    if len(todo):
        keep = np.ones(len(neg_users), dtype=bool)
        keep[todo] = False
        neg_users, neg_items = neg_users[keep], neg_items[keep]
    per_user = dict(zip(users.tolist(), (candidates / np.maximum(want, 1)).tolist()))
    neg_w = np.array([per_user[u] for u in neg_users.tolist()]) if reweight else np.ones(len(neg_users))
    return (np.concatenate([rows, neg_users]), np.concatenate([cols, neg_items]),
            np.concatenate([np.ones(len(rows)), np.zeros(len(neg_users))]),
            np.concatenate([np.ones(len(rows)), neg_w]))


def _keys(matrix, users, n_items):
    sub = matrix[users]
    r = np.repeat(users, np.diff(sub.indptr)).astype(np.int64)
    return np.unique(r * n_items + sub.indices.astype(np.int64))


def fit_calibrator(model, train, holdout, task, method="platt", kind=None, negatives_per_positive=20,
                   random_state=0):
    """Fit a :class:`TaskCalibrator` of ``task`` on validation pairs (see :func:`validation_pairs`).

    Parameters
    ----------
    model : MultiTaskMF or InferenceModel
        Fitted on ``train``; its raw scores (logits for logistic heads) are calibrated.
    train, holdout, task, kind, negatives_per_positive, random_state
        See :func:`validation_pairs`.
    method : {"platt", "isotonic"}

    Returns
    -------
    TaskCalibrator
    """
    u, i, y, w = validation_pairs(train, holdout, task, kind=kind, negatives_per_positive=negatives_per_positive,
                                  random_state=random_state)
    return TaskCalibrator(method).fit(model.predict_indices(task, u, i, raw=True), y, sample_weight=w)


# --------------------------------------------------------------------------------------------------------------------
# reliability
# --------------------------------------------------------------------------------------------------------------------
def reliability_curve(probabilities, labels, sample_weight=None, n_bins=10, strategy="quantile"):
    """Reliability of predicted probabilities: binned predicted vs observed, ECE, Brier score, log loss.

    Parameters
    ----------
    probabilities : array-like of float in [0, 1]
    labels : array-like of 0/1
    sample_weight : array-like of float, optional
    n_bins : int, default=10
    strategy : {"quantile", "uniform"}, default="quantile"
        Bin edges at weighted quantiles of the predictions (equal mass per bin; useful when most predictions are
        small, as for rare implicit events) or uniform on [0, 1].

    Returns
    -------
    dict
        ``bins``: list of ``{"lo", "hi", "mean_predicted", "observed", "weight", "count"}`` (empty bins left out);
        ``ece``, ``max_calibration_error``, ``brier``, ``log_loss``, ``base_rate``, ``mean_predicted``,
        ``n_samples``.
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    w = np.ones_like(p) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if not (p.shape == y.shape == w.shape) or p.size == 0:
        raise ValueError("reliability_curve: probabilities, labels and weights must be non-empty, equal length.")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("reliability_curve: probabilities must lie in [0, 1].")
    if not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"reliability_curve: n_bins must be an int >= 1. Got {n_bins!r}.")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        order = np.argsort(p, kind="stable")
        cum = np.cumsum(w[order])
        targets = cum[-1] * np.arange(1, n_bins) / n_bins
        inner = p[order][np.minimum(np.searchsorted(cum, targets), len(p) - 1)]
        edges = np.unique(np.concatenate([[0.0], inner, [1.0]]))
    else:
        raise ValueError(f"reliability_curve: strategy must be 'quantile' or 'uniform'. Got {strategy!r}.")
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    total = w.sum()
    bins, ece, mce = [], 0.0, 0.0
    for b in range(len(edges) - 1):
        sel = which == b
        wb = w[sel].sum()
        if not sel.any() or wb <= 0:
            continue
        mp = float(np.sum(w[sel] * p[sel]) / wb)
        ob = float(np.sum(w[sel] * y[sel]) / wb)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "mean_predicted": mp, "observed": ob,
                     "weight": float(wb), "count": int(sel.sum())})
        ece += wb / total * abs(mp - ob)
        mce = max(mce, abs(mp - ob))
    return {"bins": bins, "ece": float(ece), "max_calibration_error": float(mce),
            "brier": float(np.sum(w * (p - y) ** 2) / total), "log_loss": _weighted_log_loss(y, p, w),
            "base_rate": float(np.sum(w * y) / total), "mean_predicted": float(np.sum(w * p) / total),
            "n_samples": int(p.size)}


# --------------------------------------------------------------------------------------------------------------------
# persistence (beside a saved model)
# --------------------------------------------------------------------------------------------------------------------
def save_calibrators(path, calibrators):
    """Write ``{task: TaskCalibrator}`` as ``calibration.json`` into a saved model directory.

    :meth:`mtl_classic.inference.InferenceModel.load` picks the file up.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"save_calibrators: {path} is not a directory (save the model there first).")
    doc = {"format": "mtl_classic.calibration", "format_version": 1,
           "calibrators": {task: cal.to_dict() for task, cal in calibrators.items()}}
    with open(os.path.join(path, CALIBRATION_NAME), "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, allow_nan=False)
    return path


def load_calibrators(path):
    """Read ``calibration.json`` of a model directory: ``{task: TaskCalibrator}``.

    Raises
    ------
    ModelFormatError
        Missing, unreadable or malformed file.
    """
    file = os.path.join(os.fspath(path), CALIBRATION_NAME)
    try:
        with open(file, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("format") != "mtl_classic.calibration" or doc.get("format_version") != 1:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('format_version')!r}")
        return {task: TaskCalibrator.from_dict(d) for task, d in doc["calibrators"].items()}
    except FileNotFoundError:
        raise ModelFormatError(f"{file} is missing.") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"{file} is not a valid calibration file ({exc}).") from None
