"""The same alternating fit as :meth:`MultiTaskMF.fit`, on a Dask cluster (the ``[dask]`` extra).

::

    from distributed import Client
    import dask.dataframe as dd
    from mtl_classic import MultiTaskMF, Task, distributed

    client = Client("scheduler:8786")
    events = dd.read_parquet("events/")                       # user, item, task (, value) columns
    model = distributed.fit(MultiTaskMF(tasks=[Task("cart"), Task("buy")], random_state=0), events, client)
    model.save("model/")                                      # a normal fitted MultiTaskMF

How (docs/SCALING.md): the interactions stay on the workers. Id maps come from distributed uniques (sorted, as
``MultiTaskData.from_events`` sorts them); the entries are partitioned once by user block and once by item block
(each entry stored twice, as in Spark's ALS) and laid out on their workers exactly as the local solver lays out the
whole matrix. One half-sweep is one round: the driver broadcasts the parameters with the fixed side's factors and
its Gram matrix, every block of rows is solved on its worker by :func:`mtl_classic.solver.als.solve_rows` (the
local fit's compiled kernels), and the driver assembles the new side. Heads, intercepts, biases and cross weights
come from sufficient statistics summed over the blocks (:func:`mtl_classic.solver.als.head_residual_sums`,
:func:`~mtl_classic.solver.als.block_sums`, ...), in the local fit's order. Popularity-weighted negatives
(``negative_popularity``): the items' audiences are counted once, in the first pass over the user blocks (their users
are disjoint, so the per-item counts add up), and the weights s_i go to every block's arrays (an item block gets its
items' share) and to the driver's Gram matrices of the items, Q^T diag(s) Q. The result is the local fit's: the
objective per sweep agrees to round-off, and so do the factors.

Faults: every block is rebuilt by Dask from the events if its worker is lost (its lineage is the read and the two
partitionings), and every sweep starts from the parameters the driver holds (the checkpoint of the last completed
sweep), never from a lineage of earlier sweeps; a sweep that loses data it cannot rebuild is run again from there.
"""
import logging
import time
import warnings
from asyncio import CancelledError as AsyncCancelled
from concurrent.futures import CancelledError
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import dask
from dask import delayed
from distributed import KilledWorker
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError

from . import _distributed_blocks as blocks
from ._distributed_driver import Driver
from ._sparse import observation_pattern
from .data import IdMap, MultiTaskData
from .data.side import build_side
from .model import MultiTaskMF
from .negatives import negative_popularity_scale
from .solver import als
from .tasks import item_feature_values, resolve_alphas, resolve_side_tasks, resolve_side_weights, resolve_tasks

__all__ = ["fit"]

log = logging.getLogger("mtl_classic.distributed")

#: what a lost worker raises in the driver: the sweep is run again from the driver's parameters
LOST = (KilledWorker, FutureCancelledError, CancelledError, AsyncCancelled, CommClosedError, OSError, TimeoutError)
AGGREGATES = ("sum", "mean", "max")
SAME_EVENTS = 0.99   # as tasks.resolve_cross_tasks


@dataclass
class TaskSummary:
    """What the driver knows of a task: its settings and counts (the entries stay on the workers)."""

    name: str
    kind: str
    weight: float
    negative_weight: float
    biases: bool
    item_bias: bool
    cross_tasks: np.ndarray
    n_observed: int
    item_feature: np.ndarray = None   # the item bias is gamma * item_feature (Task.item_feature)
    negative_scale: np.ndarray = None  # implicit tasks: the items' weights s_i of the negatives (TaskArrays')


class _DataStub:
    """The facts of the events that ``tasks.resolve_tasks`` reads (task names, observations per task)."""

    def __init__(self, counts, side=None):
        self.task_names = list(counts)
        self.matrices = {n: _Counted(c) for n, c in counts.items()}
        self.side = dict(side or {})


class _Counted:
    def __init__(self, nnz):
        self.nnz, self.data = int(nnz), np.zeros(0)   # values are checked on the workers


def fit(estimator, events, client, user_col="user", item_col="item", task_col="task", value_col=None,
        aggregate="auto", n_blocks=None, n_jobs=None, max_retries=3, callback=None, user_side=None, item_side=None):
    """Fit ``estimator`` on a Dask cluster: the same sweeps as ``estimator.fit(MultiTaskData.from_events(...))``.

    Parameters
    ----------
    estimator : MultiTaskMF
        Its parameters are used as they are (``validation`` and early stopping are not supported here).
    events : dask.dataframe.DataFrame
        One row per event (or per observation with ``value_col``), e.g. ``dd.read_parquet`` of a folder. It is
        read on the workers and never collected on the client.
    client : distributed.Client
    user_col, item_col, task_col, value_col : str
        As in :meth:`MultiTaskData.from_events`. With ``tasks=None`` the tasks are the data's, in sorted order.
    aggregate : {"auto", "sum", "mean", "max"} or dict of str -> str, default="auto"
        Rule for several rows of the same (user, item, task), as in ``from_events`` ("last" is not supported).
    n_blocks : int or None
        Blocks of users and of items (None: one per worker thread of the cluster).
    n_jobs : int or None
        Kernel threads per task on a worker (None: the worker's threads; the estimator's ``n_jobs`` applies to
        the driver).
    max_retries : int, default=3
        Times a sweep is run again from the last completed sweep after losing data Dask cannot rebuild.
    callback : callable(iteration, objective) -> bool, optional
        Called after every sweep; True stops the fit.
    user_side, item_side : dict of str -> pandas.DataFrame or (matrix, column_ids), optional
        Side matrices (user x query, item x attribute), as :meth:`MultiTaskData.with_side` takes them: a DataFrame
        of (user or item id, column id[, value]) pairs (ids the events do not have are dropped and counted in
        ``data_.report["side_rows_dropped"]``), or a matrix whose rows follow the sorted ids of the events. They
        are held by the driver (a side matrix is small next to the events): every half-sweep sends each block its
        rows' part, and the driver updates the column factors, as the local fit does.

    Returns
    -------
    MultiTaskMF
        ``estimator``, fitted: every learned attribute of a local fit (``data_`` holds the training matrices,
        assembled on the client once the sweeps are done, as a fitted model needs them for its cross-task
        features and seen-item filters), plus ``distributed_stats_`` (seconds and bytes per sweep).

    Raises
    ------
    ValueError
        Missing columns, null ids, non-finite values, unknown or missing tasks (naming the column or task).
    """
    start = time.perf_counter()
    if not isinstance(estimator, MultiTaskMF):
        raise ValueError(f"distributed.fit fits a MultiTaskMF; got {type(estimator).__name__}.")
    estimator._validate_params()
    if getattr(estimator, "warm_start", False):
        raise ValueError("distributed.fit does not continue a fit: pass warm_start=False (it starts from the "
                         "estimator's random_state, as a first local fit does).")
    cols = _check_columns(events, user_col, item_col, task_col, value_col)
    facts = _scan(events, cols, client)
    side, dropped_side = {}, {}
    for kind, given in (("user", user_side), ("item", item_side)):
        for name, spec in (given or {}).items():
            if name in facts["rows_per_task"] or name in side:
                raise ValueError(f"distributed.fit: the side matrix name {name!r} is already a task or a side "
                                 f"matrix.")
            side[name], dropped_side[name] = build_side(name, kind, spec, IdMap(facts[kind + "s"]),
                                                        where="distributed.fit")
    stub = _DataStub(facts["rows_per_task"], side)
    pair_tasks, side_tasks = resolve_side_tasks(estimator.tasks, stub)
    tasks = resolve_tasks(pair_tasks, stub)
    names = [t.name for t in tasks]
    rules = _rules(aggregate, names, value_col)
    workers = client.scheduler_info()["workers"]
    n_workers = max(1, len(workers))
    nb = int(n_blocks) if n_blocks is not None else max(1, sum(w.get("nthreads", 1) for w in workers.values()))
    n_users, n_items = len(facts["users"]), len(facts["items"])
    user_edges = np.linspace(0, n_users, min(nb, n_users) + 1).astype(np.int64)
    item_edges = np.linspace(0, n_items, min(nb, n_items) + 1).astype(np.int64)
    beta = float(estimator.negative_popularity)
    spec = {"columns": cols, "task_names": names, "user_edges": user_edges, "n_items": n_items,
            "aggregate": rules, "task_objects": {t.name: t for t in tasks}}
    # the id indexes are literals of the graph, not scattered data: a worker's loss loses no lineage (scattered
    # futures have none, and the blocks built from them could not be rebuilt)
    indexes = [delayed(pd.Index(facts["users"])), delayed(pd.Index(facts["items"]))]

    def user_data(count_audiences=False):
        """The user blocks' matrices and statistics (the items' audiences only when asked: the first pass)."""
        split = [delayed(blocks.split_partition, pure=False)(part, spec, *indexes) for part in events.to_delayed()]
        block_spec = {**spec, "audiences": count_audiences}
        return client.compute([delayed(blocks.user_block_data, pure=False)(split, b, block_spec)
                               for b in range(len(user_edges) - 1)])

    first_data = [user_data(count_audiences=bool(beta))]
    stats = client.gather([client.submit(_stats_of, d, pure=False) for d in first_data[0]])
    nnz = {n: sum(s["nnz"][n] for s in stats) for n in names}
    for name in names:
        if nnz[name] == 0:   # every row of the task merged away cannot happen; kept for the local fit's message
            raise ValueError(f"task {name!r} has no observations in the data.")
    estimator.cross_tasks_, estimator.dropped_cross_tasks_ = _resolve_cross(tasks, nnz, stats)
    if estimator.dropped_cross_tasks_:
        warnings.warn("MultiTaskMF: cross-task features left out because the feeding task's pairs are (almost) "
                      "all pairs the fed task records itself, so they say nothing about its other pairs: "
                      + "; ".join(f"{t} <- {b}" for t, b in estimator.dropped_cross_tasks_.items())
                      + " (see dropped_cross_tasks_).", UserWarning, stacklevel=2)
    sums = {n: sum(s["sum"][n] for s in stats) for n in names}
    # popularity-weighted negatives: the blocks hold disjoint users, so their items' audiences add up
    audiences = sum(s["audiences"] for s in stats) if beta else None
    scale = negative_popularity_scale(audiences, beta)
    tasks = resolve_alphas(tasks, sums, n_users, n_items)
    side_tasks = resolve_side_weights(side_tasks, side, tasks, nnz, sums)
    specs = [_spec(t, estimator.cross_tasks_[t.name], names) for t in tasks]
    features = item_feature_values(tasks, stub)
    summaries = [TaskSummary(s["name"], s["kind"], s["weight"], s["negative_weight"] if s["kind"] == "implicit"
                             else 0.0, s["biases"], s["item_bias"], np.asarray(s["cross_indices"], dtype=np.int64),
                             nnz[s["name"]], features.get(s["name"], (None,))[0],
                             scale if s["kind"] == "implicit" else None) for s in specs]

    def build():
        """Block futures from the events (the first call reuses the partitioned data of the scan above)."""
        data = first_data.pop() if first_data else user_data()
        user_blocks = [client.submit(blocks.build_user_block, d, specs, n_items, n_jobs, scale, pure=False)
                       for d in data]
        pieces = [client.submit(blocks.item_pieces, d, specs, item_edges, pure=False) for d in data]
        item_blocks = [client.submit(blocks.build_item_block, j, item_edges, specs, n_users, n_jobs,
                                     None if scale is None else scale[item_edges[j]:item_edges[j + 1]], *pieces,
                                     pure=False) for j in range(len(item_edges) - 1)]
        return user_blocks, item_blocks

    built = build()
    user_facts = client.gather([client.submit(blocks.block_facts, b, pure=False) for b in built[0]])
    item_facts = client.gather([client.submit(blocks.block_facts, b, pure=False) for b in built[1]])
    evidence = (np.concatenate([f[2] for f in user_facts]), np.concatenate([f[2] for f in item_facts]))

    rng = np.random.default_rng(estimator.random_state)
    coverage = [sum(s["covered"][n] for s in stats) / max(nnz[n], 1) for n in names]
    k, mask = int(estimator.factors), estimator._head_mask(len(tasks), coverage)
    means = [sum(s["sum"][t.name] for s in stats) / nnz[t.name] if spec_["biases"] else None
             for t, spec_ in zip(tasks, specs)]
    params = als.init_params(summaries, n_users, n_items, k, rng, float(estimator.init_scale),
                             dtype=np.dtype(estimator.dtype), cross_per_item=bool(estimator.cross_per_item),
                             cross_per_user=bool(estimator.cross_per_user), mask=mask, observed_means=means)
    side_terms = estimator._side_terms(side_tasks, stub, k, rng, params.user_factors.dtype)  # as the local fit
    config = estimator._config()
    config.head_mask = mask
    reference = int(np.argmax([t.weight * nnz[t.name] for t in tasks]))
    estimator.reference_task_ = names[reference] if estimator.fit_heads else None
    if estimator.fit_heads:
        config.fixed_heads = (reference,)

    driver = Driver(client, build, built, summaries, config, evidence, n_jobs, n_workers, LOST, side_terms)
    del built, user_facts, item_facts
    history, n_iter = driver.run(params, max_retries, callback, estimator.verbose)
    fit_time = time.perf_counter() - start
    matrices = _assemble(client, driver.user_blocks, names, n_users, n_items)
    data = MultiTaskData(matrices, IdMap(facts["users"]), IdMap(facts["items"]),
                         report={"source": "distributed events", "n_events": facts["n_events"],
                                 "aggregate": rules, "nnz": nnz, "side_rows_dropped": dropped_side})
    data.side = side
    estimator._set_data_state(tasks, data, {n: observation_pattern(m) for n, m in matrices.items()},
                              default_task=names[-1] if len(names) == 1 else None)
    # the fold-ins' item weights (negatives.fitted_negative_scale) from these audiences, as fit_negative_scale
    # leaves them after a local fit
    estimator._negative_scale_cache = ((id(data), beta), audiences) if beta else None
    estimator.validation_history_ = []
    estimator._finish_fit(params, history, n_iter)
    estimator.fit_time_ = fit_time
    estimator.distributed_stats_ = driver.report(len(user_edges) - 1, len(item_edges) - 1)
    return estimator


def _check_columns(events, user_col, item_col, task_col, value_col):
    if not hasattr(events, "to_delayed") or not hasattr(events, "columns"):
        raise ValueError(f"distributed.fit needs a dask.dataframe.DataFrame of events; got {type(events).__name__}.")
    wanted = {"user_col": user_col, "item_col": item_col, "task_col": task_col}
    if value_col is not None:
        wanted["value_col"] = value_col
    missing = [f"{arg}={col!r}" for arg, col in wanted.items() if col not in events.columns]
    if missing:
        raise ValueError(f"distributed.fit: column(s) not found: {', '.join(missing)}; the events have columns "
                         f"{list(events.columns)}.")
    return {"user": user_col, "item": item_col, "task": task_col, "value": value_col}


def _bad_values(series):
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.Series([int(np.sum(~np.isfinite(values)))])


def _scan(events, cols, client):
    """One distributed pass: null ids, bad values, rows per task and the sorted unique ids."""
    lazy = {"nulls": events[[cols["user"], cols["item"], cols["task"]]].isna().sum(),
            "rows_per_task": events[cols["task"]].value_counts(split_out=1),
            "users": events[cols["user"]].dropna().unique(split_out=1),
            "items": events[cols["item"]].dropna().unique(split_out=1),
            "n_events": events.shape[0]}
    if cols["value"] is not None:
        lazy["bad"] = events[cols["value"]].map_partitions(_bad_values, meta=(None, "i8")).sum()
    facts = dict(zip(lazy, dask.compute(*lazy.values(), scheduler=client.get)))
    for col, count in facts["nulls"].items():
        if count:
            raise ValueError(f"distributed.fit: column {col!r} has {int(count)} null values.")
    if facts.get("bad"):
        raise ValueError(f"distributed.fit: column {cols['value']!r} has {int(facts['bad'])} NaN, infinite or "
                         f"non-numeric values.")
    if facts["n_events"] == 0:
        raise ValueError("distributed.fit: the events table is empty.")
    tasks = facts["rows_per_task"]
    if not all(isinstance(t, str) and t.strip() for t in tasks.index):
        raise ValueError(f"distributed.fit: column {cols['task']!r} must hold non-empty task names as strings.")
    facts["rows_per_task"] = {t: int(tasks[t]) for t in sorted(tasks.index)}
    for key, col in (("users", cols["user"]), ("items", cols["item"])):
        ids = np.asarray(facts[key].to_numpy() if hasattr(facts[key], "to_numpy") else facts[key])
        try:
            facts[key] = np.sort(ids)
        except TypeError:
            raise ValueError(f"distributed.fit: column {col!r} mixes id types that cannot be sorted; cast the ids "
                             f"to one type first.") from None
    facts["n_events"] = int(facts["n_events"])
    return facts


def _rules(aggregate, names, value_col):
    auto = "sum" if value_col is None else "mean"
    given = aggregate if isinstance(aggregate, dict) else {n: aggregate for n in names}
    unknown = [t for t in given if t not in names]
    if unknown:
        raise ValueError(f"distributed.fit: aggregate names unknown task(s) {unknown}; tasks are {names}.")
    rules = {n: given.get(n, "auto") for n in names}
    for n, rule in rules.items():
        rules[n] = auto if rule == "auto" else rule
        if rules[n] not in AGGREGATES:
            raise ValueError(f"distributed.fit: aggregate for task {n!r} must be 'auto' or one of {AGGREGATES}. "
                             f"Got {rule!r}.")
    return rules


def _stats_of(data):
    return data["stats"]


def _resolve_cross(tasks, nnz, stats):
    """``tasks.resolve_cross_tasks`` from the blocks' counts of shared pairs."""
    names = [t.name for t in tasks]
    cross, dropped = {}, {}
    for t in tasks:
        wanted = ([] if t.cross_tasks is None else [n for n in names if n != t.name] if t.cross_tasks == "all"
                  else list(t.cross_tasks))
        keep = []
        for b in wanted:
            both = sum(s["both"][(t.name, b)] for s in stats)
            if both >= SAME_EVENTS * nnz[b] and (t.kind == "implicit" or both >= SAME_EVENTS * nnz[t.name]):
                dropped.setdefault(t.name, []).append(b)
            else:
                keep.append(b)
        cross[t.name] = keep
    return cross, dropped


def _spec(task, cross, names):
    """The arguments of ``prepare_task_arrays`` for one task (as ``MultiTaskMF._task_arrays`` passes them)."""
    return {"name": task.name, "kind": task.kind, "weight": task.weight, "alpha": task.alpha,
            "negative_weight": task.negative_weight,
            "evidence_negative_weight": task.resolved_evidence_negative_weight(), "biases": task.resolved_biases(),
            "item_bias": task.resolved_item_bias(), "cross": list(cross), "cross_indices": [names.index(c) for c in cross]}


def _assemble(client, user_blocks, names, n_users, n_items):
    """The training matrices on the client (once, after the sweeps): the fitted model's ``data_``."""
    parts = sorted(client.gather([client.submit(blocks.block_matrices, b, pure=False) for b in user_blocks]),
                   key=lambda p: p[0])
    return {n: sp.csr_matrix(sp.vstack([m[n] for _, m in parts], format="csr")) for n in names}
