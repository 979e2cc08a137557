"""Ranking helpers on dense score blocks: vectorised top-k, seen-item masks and blending across tasks.

Everything here works on internal indices and numpy / scipy arrays; no ids, no models. Importing this module imports
only numpy and scipy (the serving path relies on that); the compiled top-k kernel (numba) is loaded on first use.
"""
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["top_k", "mask_seen", "blend_scores"]

#: Above this many scores in a block, :func:`top_k` uses the compiled heap kernel (below it numpy is as fast).
_HEAP_MIN_SIZE = 50_000
#: The heap kernel is used for k up to this value (beyond it a partial sort is as cheap).
_HEAP_MAX_K = 1024


def _heap_kernel():
    """The compiled kernel (imports numba on first use), or None when numba is not available."""
    try:
        from ._topk_kernel import top_k_heap
    except ImportError:  # pragma: no cover - numba is a dependency; the numpy path still works without it
        return None
    return top_k_heap


def top_k(scores, k):
    """The ``k`` highest scores of every row, sorted in descending order.

    Large blocks go through a compiled bounded-heap kernel, small ones through ``numpy.argpartition``; either way
    only the ``k`` selected entries are sorted (see Notes).

    Parameters
    ----------
    scores : array-like of float, shape (n_rows, n_items) or (n_items,)
        Higher is better. ``-inf`` is allowed (it ranks last); NaN is treated as ``-inf``.
    k : int
        Number of entries to keep, ``k >= 0``. ``k > n_items`` keeps all ``n_items``.

    Returns
    -------
    indices : ndarray of int64, shape (n_rows, min(k, n_items))
        Column indices of the selected entries, best first (1-d for 1-d ``scores``).
    values : ndarray of float, shape (n_rows, min(k, n_items))
        The matching scores (NaN reported as ``-inf``).

    Notes
    -----
    Equal scores are ordered by increasing column index. For large blocks (and ``k <= 1024``) a compiled kernel
    keeps a bounded heap per row (O(n_items log k), rows in parallel); ties at the k-th position then also go to the
    lower column index. The small-block numpy path (``argpartition``) leaves the choice among entries tied at the
    k-th position unspecified.
    """
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 0:
        raise ValueError(f"top_k: k must be an int >= 0. Got {k!r}.")
    scores = np.asarray(scores)
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"top_k: scores must be real numbers. Got dtype {scores.dtype}.")
    one_d = scores.ndim == 1
    if one_d:
        scores = scores[None, :]
    if scores.ndim != 2:
        raise ValueError(f"top_k: scores must be 1-d or 2-d. Got shape {scores.shape}.")
    n_rows, n_items = scores.shape
    k = min(int(k), n_items)
    if 0 < k <= _HEAP_MAX_K and scores.size >= _HEAP_MIN_SIZE and scores.dtype.kind == "f":
        kernel = _heap_kernel()
        if kernel is not None:
            idx = np.empty((n_rows, k), dtype=np.int64)
            vals = np.empty((n_rows, k), dtype=np.float64)
            kernel(np.ascontiguousarray(scores, dtype=np.float64), k, idx, vals)
            vals = vals.astype(scores.dtype, copy=False)
            return (idx[0], vals[0]) if one_d else (idx, vals)
    if scores.dtype.kind == "f":
        nan = np.isnan(scores)
        if nan.any():
            scores = np.where(nan, -np.inf, scores)
    if k == 0:
        idx = np.empty((n_rows, 0), dtype=np.int64)
    elif k < n_items:
        idx = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k:]
    else:
        idx = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    vals = np.take_along_axis(scores, idx, axis=1)
    # sort descending by value, ascending by index among ties
    order = np.lexsort((idx, -vals), axis=1) if k else idx
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64, copy=False)
    vals = np.take_along_axis(vals, order, axis=1)
    if one_d:
        return idx[0], vals[0]
    return idx, vals


def mask_seen(scores, seen_csr_rows, value=-np.inf):
    """Set the stored entries of a sparse matrix to ``value`` in a score block, in place.

    Parameters
    ----------
    scores : ndarray of float, shape (n_rows, n_items)
        Writable score block; modified in place.
    seen_csr_rows : scipy.sparse matrix, shape (n_rows, n_items)
        Row ``r`` lists the items to mask in ``scores[r]``; every stored entry counts (explicit zeros included),
        values are ignored.
    value : float, default=-inf
        The value written.

    Returns
    -------
    scores : ndarray
        The same array, for chaining.
    """
    if not isinstance(scores, np.ndarray) or scores.ndim != 2:
        raise ValueError("mask_seen: scores must be a 2-d numpy array.")
    if not sp.issparse(seen_csr_rows):
        raise ValueError("mask_seen: seen_csr_rows must be a scipy.sparse matrix.")
    seen = seen_csr_rows if seen_csr_rows.format == "csr" else sp.csr_matrix(sp.coo_matrix(seen_csr_rows))
    if seen.shape != scores.shape:
        raise ValueError(f"mask_seen: seen rows have shape {seen.shape} but scores have shape {scores.shape}.")
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = value
    return scores


def blend_scores(blocks, weights=None, normalize=None):
    """Weighted sum of several tasks' score blocks for the same users and items.

    Parameters
    ----------
    blocks : sequence of ndarray, each shape (n_rows, n_items)
        One score block per task (e.g. ``model.score_items(task, users)`` for several tasks).
    weights : sequence of float, optional
        One weight per block; default equal weights ``1 / len(blocks)``.
    normalize : {None, "zscore", "rank"}, default=None
        Per-row rescaling of each block before blending: ``"zscore"`` subtracts the row mean and divides by the row
        standard deviation (scales of different heads become comparable); ``"rank"`` replaces scores by their
        rank within the row divided by ``n_items`` (ties by column index). None blends raw scores.

    Returns
    -------
    ndarray of float64, shape (n_rows, n_items)
    """
    blocks = [np.asarray(b, dtype=np.float64) for b in blocks]
    if not blocks:
        raise ValueError("blend_scores: need at least one score block.")
    shape = blocks[0].shape
    if any(b.shape != shape for b in blocks):
        raise ValueError(f"blend_scores: every block must have the same shape; got {[b.shape for b in blocks]}.")
    if weights is None:
        weights = np.full(len(blocks), 1.0 / len(blocks))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(blocks),) or not np.isfinite(weights).all():
        raise ValueError(f"blend_scores: need {len(blocks)} finite weights. Got {weights.tolist()}.")
    if normalize not in (None, "zscore", "rank"):
        raise ValueError(f"blend_scores: normalize must be None, 'zscore' or 'rank'. Got {normalize!r}.")
    out = np.zeros(shape, dtype=np.float64)
    for w, b in zip(weights, blocks):
        if normalize == "zscore":
            std = b.std(axis=-1, keepdims=True)
            b = (b - b.mean(axis=-1, keepdims=True)) / np.where(std > 0, std, 1.0)
        elif normalize == "rank":
            ranks = np.empty_like(b)
            order = np.argsort(b, axis=-1, kind="stable")
            np.put_along_axis(ranks, order, np.broadcast_to(np.arange(shape[-1], dtype=np.float64), shape), axis=-1)
            b = ranks / shape[-1]
        out += w * b
    return out

