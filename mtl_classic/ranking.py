"""Ranking: the one top-N path of every model, and its helpers on dense score blocks.

:func:`rank` is what every recommender's ``recommend`` and the evaluation protocol call: users in batches (one batch
size policy, :func:`batch_rows`), one sentinel for a model's own -inf / NaN scores, seen items and excluded items
removed, top-k by :func:`top_k`. Also here: seen-item masks and blending across tasks.

Everything here works on internal indices and numpy / scipy arrays; no ids, no models. Importing this module imports
only numpy and scipy (the serving path relies on that); the compiled top-k kernel (numba) is loaded on first use.
"""
import contextlib
import numbers

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

__all__ = ["rank", "batch_rows", "seen_tasks", "excluded_items", "top_k", "mask_seen", "blend_scores"]

#: ``batch_size=None`` scores this many floats per block at most (32 MiB of float64), between 1 and 4096 users.
BLOCK_FLOATS = 2 ** 22
#: A model's own -inf / NaN scores become this while ranking: below every real score, above filtered items.
_LOWEST = -np.finfo(np.float64).max


def batch_rows(n_items, batch_size=None, where="rank"):
    """Users scored per block: ``batch_size``, or with None as many as fit in :data:`BLOCK_FLOATS` (1 to 4096)."""
    if batch_size is None:
        return int(max(1, min(4096, BLOCK_FLOATS // max(int(n_items), 1))))
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be None or an int >= 1. Got {batch_size!r}.")
    return int(batch_size)


def seen_tasks(filter_seen, tasks, task_names, where="recommend"):
    """The tasks whose training items are filtered, from a ``filter_seen`` argument.

    Parameters
    ----------
    filter_seen : bool, "any", str or list of str
        True: the ranked ``tasks``; "any": every task; a task name or list: those tasks; False / None: none.
    tasks : list of str
        The task(s) being ranked.
    task_names : list of str
        Every task of the model.

    Returns
    -------
    list of str
    """
    if filter_seen is False or filter_seen is None:
        return []
    if filter_seen is True:
        return list(tasks)
    if isinstance(filter_seen, str) and filter_seen == "any":
        return list(task_names)
    chosen = [filter_seen] if isinstance(filter_seen, str) else (
        list(filter_seen) if isinstance(filter_seen, (list, tuple)) else [])
    bad = [t for t in chosen if t not in task_names]
    if bad or not chosen:
        raise ValueError(f"{where}: filter_seen must be True, False, 'any' or task name(s) of {list(task_names)}. "
                         f"Got {filter_seen!r}.")
    return chosen


def excluded_items(n_items, item_index, items=None, filter_items=None):
    """Boolean mask (n_items,) of items never to return: outside the allow-list ``items`` or in ``filter_items``.

    ``item_index`` maps external item ids to internal indices (raising ``KeyError`` for unknown ids).
    """
    excluded = np.zeros(n_items, dtype=bool)
    if items is not None:
        excluded[:] = True
        excluded[item_index(items)] = False
    if filter_items is not None:
        excluded[item_index(filter_items)] = True
    return excluded


def _blas_limit(blas_threads, n_batches):
    """Context limiting BLAS threads for a ranking call ("auto": 1 thread when the call spans several batches)."""
    limit = (1 if n_batches > 1 else None) if blas_threads == "auto" else blas_threads
    if limit is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(limit), user_api="blas")


def _union_pattern(matrices, rows):
    union = None
    for m in matrices:
        part = m[rows]
        union = part if union is None else union + part
    union = sp.csr_matrix(union)
    union.data = np.ones(len(union.data))
    return union


def rank(score_fn, users, n, n_items, seen=(), excluded=None, batch_size=None, breakdown=(), pad=False,
         blas_threads=None, where="recommend"):
    """Top-``n`` items of every user: the one ranking loop of the package.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(batch) -> scores`` or ``-> (scores, parts)`` for an int64 array of internal user indices:
        ``scores`` of shape (len(batch), n_items), higher is better; ``parts`` a dict of arrays of the same shape
        (the values reported at the chosen items for ``breakdown``). The scores may be modified in place.
    users : ndarray of int64
        Internal user indices; -1 marks a row without a known user (it has no seen items).
    n : int
        Items per user, ``n >= 0``.
    n_items : int
    seen : sequence of sparse matrix (n_users, n_items)
        Every stored entry of row u (explicit zeros included) is removed from user u's candidates.
    excluded : ndarray of bool (n_items,), optional
        Items removed for every user.
    batch_size : int or None
        Users per score block (None: :func:`batch_rows`' memory policy).
    breakdown : sequence of str
        Names in ``parts`` to report at the chosen items.
    pad : bool, default=False
        False: every returned entry is a real candidate, so the width is ``min(n, c)`` where c is the smallest
        number of candidates left for any user. True: the width is ``min(n, n_items)`` and positions without a
        candidate come back as item -1 with score -inf (the evaluation protocol's fixed-width lists).
    blas_threads : "auto", int or None
        BLAS threads during the call (see ``InferenceModel.recommend``); None leaves BLAS alone.

    Returns
    -------
    top : ndarray of int64 (len(users), width)
    scores : ndarray of float64 (len(users), width)
        A model's own -inf / NaN scores rank below every real score and come back as -inf.
    parts : dict of str -> ndarray of float64 (len(users), width)
    """
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: n must be an int >= 0. Got {n!r}.")
    users = np.asarray(users, dtype=np.int64).ravel()
    batch = batch_rows(n_items, batch_size, where)
    excluded = np.zeros(n_items, dtype=bool) if excluded is None else excluded
    seen = list(seen)
    n_candidates = int(n_items - excluded.sum())
    width = min(int(n), n_items if pad else n_candidates)
    known = users[users >= 0]
    if not pad and seen and len(known) and width > 0:
        n_seen_allowed = np.asarray(_union_pattern(seen, known) @ (~excluded).astype(np.float64))
        width = min(width, int(n_candidates - n_seen_allowed.max()))
    width = max(width, 0)
    top_out = np.empty((len(users), width), dtype=np.int64)
    scores_out = np.empty((len(users), width), dtype=np.float64)
    parts_out = {name: np.empty((len(users), width), dtype=np.float64) for name in breakdown}
    any_excluded = bool(excluded.any())
    with _blas_limit(blas_threads, -(-len(users) // batch)):
        for start in range(0, len(users), batch):
            rows = users[start:start + batch]
            out = score_fn(rows)
            scores, parts = out if isinstance(out, tuple) else (out, {})
            if scores.shape != (len(rows), n_items):
                raise ValueError(f"{where}: the model's scores have shape {scores.shape}; expected "
                                 f"{(len(rows), n_items)}.")
            # the model's own -inf / NaN stay rankable, below every candidate and above filtered items; one
            # row-sum pass detects them without a full-size boolean temporary
            has_low = not np.isfinite(scores.sum(axis=1)).all()
            if has_low:
                scores[~(scores > -np.inf)] = _LOWEST
            b_known = np.flatnonzero(rows >= 0)
            for matrix in seen:
                if len(b_known) == len(rows):
                    mask_seen(scores, matrix[rows])
                elif len(b_known):
                    sub = scores[b_known]
                    mask_seen(sub, matrix[rows[b_known]])
                    scores[b_known] = sub
            if any_excluded:
                scores[:, excluded] = -np.inf
            top, vals = top_k(scores, width)
            if pad:
                top[vals == -np.inf] = -1
            if has_low:
                vals[vals == _LOWEST] = -np.inf
            top_out[start:start + len(rows)] = top
            scores_out[start:start + len(rows)] = vals
            for name in breakdown:
                parts_out[name][start:start + len(rows)] = np.take_along_axis(parts[name], np.maximum(top, 0),
                                                                              axis=1)
    return top_out, scores_out, parts_out

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

