"""The worker side of :mod:`mtl_classic.distributed`: the blocks of entries and the functions one round runs on them.

Every function here is pure (it copies what it changes), so that Dask may rerun any of them after losing a worker
and get the same answer. A block holds its rows' entries of every task, laid out exactly as the local fit lays out
the whole matrix (:func:`mtl_classic.solver.als.prepare_task_arrays` of the block's rows, or columns, and the same
stacked layout), and solves them with the solver's own public functions and compiled kernels: a user block's rows
are the local fit's rows, with the block's slice of the per-user arrays and the whole item side.
"""
import dataclasses
import threading

import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.sizeof import sizeof
from distributed import get_worker

from ._sparse import covered_pairs, observation_pattern
from .solver import als
from .solver.kernels import kernel_threads
from .solver.terms import EntryTerms, entry_offsets, factor_scores, objective_entry_sums
from .negatives import item_audiences

#: one compiled kernel call at a time per worker process (threads of one worker would share numba's pool)
_KERNEL_LOCK = threading.Lock()


def _threads(n_jobs):
    """Kernel threads of a task: ``n_jobs``, or the threads of the worker that runs it."""
    if n_jobs is not None:
        return int(n_jobs)
    try:
        return int(get_worker().state.nthreads)
    except (ValueError, AttributeError):
        return None


class _Kernels:
    """The kernels' thread limits and the worker's kernel lock, as one context."""

    def __init__(self, n_jobs):
        self.n_jobs = n_jobs

    def __enter__(self):
        _KERNEL_LOCK.acquire()
        self._limits = kernel_threads(_threads(self.n_jobs))
        self._limits.__enter__()

    def __exit__(self, *exc):
        try:
            self._limits.__exit__(*exc)
        finally:
            _KERNEL_LOCK.release()


# ---------------------------------------------------------------------------------------------------- ingest
def split_partition(df, spec, user_index, item_index):
    """One partition of the events as internal indices, split by user block: a list over user blocks of
    (user, item, task, value) arrays. Raises ``ValueError`` naming the column for null ids, unknown tasks and
    non-finite values."""
    cols = spec["columns"]
    for col in (cols["user"], cols["item"], cols["task"]):
        if df[col].isna().any():
            raise ValueError(f"distributed.fit: column {col!r} has null values.")
    users = user_index.get_indexer(df[cols["user"]])
    items = item_index.get_indexer(df[cols["item"]])
    tasks = pd.Index(spec["task_names"]).get_indexer(df[cols["task"]])
    if (tasks < 0).any():
        unknown = sorted({str(v) for v in df[cols["task"]][tasks < 0].unique()})[:5]
        raise ValueError(f"distributed.fit: column {cols['task']!r} names tasks {unknown} that are not modelled.")
    if (users < 0).any() or (items < 0).any():
        raise ValueError("distributed.fit: ids missing from the id maps (the events changed during the fit).")
    if cols["value"] is None:
        values = np.ones(len(df))
    else:
        values = pd.to_numeric(df[cols["value"]], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"distributed.fit: column {cols['value']!r} has {int(np.sum(~np.isfinite(values)))} "
                             f"NaN, infinite or non-numeric values.")
    block = np.searchsorted(spec["user_edges"], users, side="right") - 1
    order = np.argsort(block, kind="stable")
    bounds = np.searchsorted(block[order], np.arange(len(spec["user_edges"])))
    out = []
    for b in range(len(spec["user_edges"]) - 1):
        sel = order[bounds[b]:bounds[b + 1]]
        out.append((users[sel].astype(np.int64), items[sel].astype(np.int64), tasks[sel].astype(np.int64),
                    values[sel]))
    return out


def _aggregate(rows, cols, values, shape, how):
    """CSR of (rows, cols, values) with the duplicates of a pair merged by ``how`` (sum / mean / max), sorted."""
    key = rows * shape[1] + cols
    order = np.argsort(key, kind="stable")
    key, values = key[order], values[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=np.int64)
    if how == "max":
        merged = np.maximum.reduceat(values, starts) if len(key) else values
    else:
        merged = np.add.reduceat(values, starts) if len(key) else values
        if how == "mean":
            merged = merged / np.diff(np.r_[starts, len(key)])
    uniq = key[starts]
    m = sp.csr_matrix((merged, (uniq // shape[1], uniq % shape[1])), shape=shape)
    m.sort_indices()
    return m


def user_block_data(pieces, b, spec):
    """The block's matrices, one CSR (block users x all items) per task, from its pieces of every partition, with
    the statistics the driver needs before the fit (observations, their target sums, shared pairs and, when
    ``spec["audiences"]``, every item's number of the block's users in
    :func:`~mtl_classic.negatives.item_audiences`)."""
    lo, hi = int(spec["user_edges"][b]), int(spec["user_edges"][b + 1])
    u, i, t, v = (np.concatenate([p[b][k] for p in pieces]) for k in range(4))
    matrices = {}
    for ti, name in enumerate(spec["task_names"]):
        sel = t == ti
        m = _aggregate(u[sel] - lo, i[sel], v[sel], (hi - lo, spec["n_items"]), spec["aggregate"][name])
        spec["task_objects"][name].check_values(m.data)
        matrices[name] = m
    patterns = {n: observation_pattern(m) for n, m in matrices.items()}
    names = spec["task_names"]
    stats = {"nnz": {n: int(m.nnz) for n, m in matrices.items()},
             "sum": {n: float(np.sum(m.data)) for n, m in matrices.items()},
             "both": {(a, c): int(patterns[a].multiply(patterns[c]).nnz) for a in names for c in names if a != c},
             "covered": covered_pairs(patterns),
             "audiences": (item_audiences(matrices, list(spec["task_objects"].values()), spec["n_items"])
                           if spec.get("audiences") else None)}
    return {"lo": lo, "hi": hi, "matrices": matrices, "stats": stats}


def _arrays(specs, matrices, negative_scale=None):
    """The solver's arrays of every task (``model.MultiTaskMF._task_arrays``' arguments, from ``specs``);
    ``negative_scale``: the popularity weights s_i of the matrices' columns (None: unweighted negatives)."""
    patterns = {n: observation_pattern(m) for n, m in matrices.items()}
    return [als.prepare_task_arrays(s["name"], s["kind"], matrices[s["name"]], weight=s["weight"], alpha=s["alpha"],
                                    negative_weight=s["negative_weight"],
                                    evidence_negative_weight=s["evidence_negative_weight"], biases=s["biases"],
                                    item_bias=s["item_bias"], cross_patterns=[patterns[c] for c in s["cross"]],
                                    cross_task_indices=s["cross_indices"], negative_scale=negative_scale)
            for s in specs]


@dataclasses.dataclass
class Block:
    """The entries of one block of rows (users [lo, hi), or items [lo, hi) with ``by_item``) of every task."""

    lo: int
    hi: int
    by_item: bool
    tasks: list
    layout: object
    matrices: dict = None     # user blocks: the block's training matrices (the fitted model's ``data_``)

    @property
    def nbytes(self):
        return int(sizeof(self.tasks) + sizeof(vars(self.layout)) + sizeof(self.matrices or {}))


@sizeof.register(Block)
def _sizeof_block(block):
    return block.nbytes


def _sizeof_arrays(obj):
    return int(sum(sizeof(v) for v in vars(obj).values()))


sizeof.register(als.TaskArrays)(_sizeof_arrays)
sizeof.register(als.Params)(_sizeof_arrays)


def build_user_block(data, specs, n_items, n_jobs=None, negative_scale=None):
    """A user block: its rows' entries of every task, user-major, with the whole item index (``negative_scale``:
    every item's popularity weight, or None)."""
    with _Kernels(n_jobs):
        tasks = _arrays(specs, data["matrices"], negative_scale)
        layout = als.StackedLayout(tasks, data["hi"] - data["lo"], n_items, by_item=False)
    return Block(data["lo"], data["hi"], False, tasks, layout, data["matrices"])


def item_pieces(data, specs, item_edges):
    """A user block's entries split by item block: a list over item blocks of {task: (user, item, value)}."""
    out = [dict() for _ in range(len(item_edges) - 1)]
    for s in specs:
        m = data["matrices"][s["name"]].tocoo()
        rows, cols = m.row.astype(np.int64) + data["lo"], m.col.astype(np.int64)
        block = np.searchsorted(item_edges, cols, side="right") - 1
        for j in range(len(item_edges) - 1):
            sel = block == j
            out[j][s["name"]] = (rows[sel], cols[sel] - item_edges[j], m.data[sel])
    return out


def build_item_block(j, item_edges, specs, n_users, n_jobs, negative_scale, *pieces):
    """An item block from its pieces of every user block: the same entries as the user blocks hold, item-major
    (``negative_scale``: the popularity weights of the block's items, or None; the row solve scales each item's
    whole-data part by its own)."""
    lo, hi = int(item_edges[j]), int(item_edges[j + 1])
    matrices = {}
    for s in specs:
        rows, cols, vals = (np.concatenate([p[j][s["name"]][k] for p in pieces]) for k in range(3))
        m = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, hi - lo))
        m.sort_indices()
        matrices[s["name"]] = m
    with _Kernels(n_jobs):
        tasks = _arrays(specs, matrices, negative_scale)
        layout = als.StackedLayout(tasks, hi - lo, n_users, by_item=True)
    return Block(lo, hi, True, tasks, layout)


def block_facts(block):
    """What the driver keeps of a block: its range and its rows' evidence (``row_evidence``)."""
    return block.lo, block.hi, block.layout.evidence


def block_matrices(block):
    return block.lo, block.matrices


# ---------------------------------------------------------------------------------------------------- views
SIDES = {False: ("user_factors", "user_biases", "cross_user_weights"),
         True: ("item_factors", "item_biases", "cross_item_weights")}


def own_rows(params, by_item, lo, hi):
    """A block's rows of its side's arrays (factors, biases, per-row cross deviations)."""
    out = {}
    for name in SIDES[by_item]:
        a = getattr(params, name)   # factors: rows first; biases and cross deviations: rows last
        out[name] = None if a is None else (a[lo:hi] if name.endswith("factors") else a[..., lo:hi]).copy()
    return out


def without_rows(params, by_item):
    """``params`` without the rows of one side (what every block of that side receives: the rest is its own)."""
    return dataclasses.replace(params, **{n: None if v is None else v[..., :0] if not n.endswith("factors")
                                          else v[:0] for n, v in ((n, getattr(params, n)) for n in SIDES[by_item])})


@dataclasses.dataclass
class UserState:
    """A user block during one sweep: the entries' offsets, terms, factor scores and head moves."""

    block: Block
    offsets: list
    terms: object
    view: object              # the parameters as the block's rows see them (its own new rows, the item side)
    scores: np.ndarray = None
    moves: list = None
    f: list = None

    @property
    def nbytes(self):
        return int(sizeof(self.offsets) + sizeof(self.terms.curv) * 2 + sizeof(self.scores) + sizeof(self.moves)
                   + sizeof(self.f) + sizeof(self.view))


@sizeof.register(UserState)
def _sizeof_state(state):
    return state.nbytes


def side_rows(side_terms, by_item, lo, hi):
    """The side matrices of the solved side restricted to rows lo:hi (what one block's row solve needs of them)."""
    return [dataclasses.replace(s, matrix=s.matrix[lo:hi]) for s in side_terms if s.by_item == by_item]


def solve_block(block, params, own, gram, config, scaled, n_jobs=None, side_terms=()):
    """One half-sweep on one block: the offsets and entry terms at ``params`` (without the block's side, whose
    rows ``own`` are the block's) and the block's rows solved with the other side fixed (``gram``: its Gram
    matrix; ``scaled``: the whole side's evidence-penalty flag; ``side_terms``: the side matrices' rows of the
    block, :func:`side_rows`). Returns the block's new rows, and for a user block its state for the rest of the
    sweep."""
    view = dataclasses.replace(params, **own)
    with _Kernels(n_jobs):
        offsets = [entry_offsets(task, t, view) for t, task in enumerate(block.tasks)]
        terms = EntryTerms(block.tasks).refresh(view, offsets)
        als.solve_rows(block.tasks, view, block.layout, block.by_item, config, offsets, terms, gram=gram,
                       scaled=scaled, side_terms=side_terms)
    rows = view.item_factors if block.by_item else view.user_factors
    return rows if block.by_item else (rows, UserState(block, offsets, terms, view))


def rows_of(result):
    return result[0]


def state_of(result):
    return result[1]


def _with_items(state, item_factors, **replace):
    return dataclasses.replace(state.view, item_factors=item_factors, **replace)


def head_residuals(state, item_factors, n_chunks=8, n_jobs=None):
    """The entries' part of the heads' residuals on the block (summed by the driver) and the entries' scores, at
    the sweep's new item factors."""
    view = _with_items(state, item_factors)
    terms = state.terms.copy()
    with _Kernels(n_jobs):
        terms.refresh_bounds(view, state.offsets)
        R, scores = als.head_residual_sums(state.block.tasks, view, terms, state.block.layout, n_chunks)
    return R, dataclasses.replace(state, terms=terms, scores=scores)


def head_moves(state, item_factors, R, n_jobs=None):
    """The entries' part of every head's r^T H r on the block, and the entries' moves along the directions."""
    with _Kernels(n_jobs):
        parts, moves = als.head_move_sums(state.block.tasks, _with_items(state, item_factors), state.terms, R)
    return parts, dataclasses.replace(state, moves=moves)


def head_normals(state, item_factors, config, n_chunks=8, n_jobs=None):
    """Exact heads: the block's entries' sums of every learned head's normal equations."""
    view = _with_items(state, item_factors)
    terms = state.terms.copy()
    with _Kernels(n_jobs):
        terms.refresh_bounds(view, state.offsets)
        return als.head_normal_sums(state.block.tasks, view, config, terms, n_chunks)


def _apply(task, t, o, f, step):
    """Move the offsets ``o`` in place by a finished step of the offsets' plan (old and new values)."""
    kind = step[0]
    if kind == "block":
        _, feat, block_kind, old, new = step
        als.apply_block(task, o, feat, block_kind, old, new)
    elif kind == "item_bias":
        _, old, new = step
        o_rest = o - old[task.cols]
        o[:] = o_rest + new[task.cols]
    else:
        _, beta_idx, old, new = step
        before = task.cross @ old[beta_idx]
        o += task.cross @ new[beta_idx] - before


def _sums(task, t, view, o, f, step):
    """The block's entries' sums of the next step of the offsets' plan."""
    kind = step[0]
    if kind == "block":
        _, feat, block_kind, values = step
        return als.block_sums(task, f, o, feat, block_kind, values)
    if kind == "item_bias":
        num, den, _ = als.item_bias_sums(task, t, view, f, o)
        return num, den
    H, g, _ = als.cross_weight_sums(task, t, view, f, o, step[1])
    return H, g


def offset_round(state, item_factors, head_weights, steps, head_step, applied, wanted, item_biases=None, n_jobs=None):
    """One round of the offsets' coordinate updates on a user block.

    ``applied``: per task the step finished in the previous round (or None), whose new values move the offsets;
    ``wanted``: per task the step whose entries' sums to return (or None). The first round also settles the
    factor scores at the new heads (``head_step``: "cg" adds ``steps * moves`` to the scores of the heads' pass,
    else they are computed at ``head_weights``). With ``wanted`` None everywhere, returns the objective's entry
    sums instead (at the final ``item_biases`` when given)."""
    block = state.block
    view = _with_items(state, item_factors, head_weights=head_weights)
    offsets = [o.copy() for o in state.offsets]
    with _Kernels(n_jobs):
        f = state.f
        if f is None:
            f = []
            for t, task in enumerate(block.tasks):
                if head_step == "cg":
                    ft = state.scores[state.terms.bounds[t]:state.terms.bounds[t + 1]].copy()
                    if steps[t] > 0:
                        ft += steps[t] * state.moves[t]
                else:
                    ft = factor_scores(task, t, view)
                f.append(ft)
        for t, task in enumerate(block.tasks):
            if applied[t] is not None:
                _apply(task, t, offsets[t], f[t], applied[t])
        if all(w is None for w in wanted):
            final = view if item_biases is None else dataclasses.replace(view, item_biases=item_biases)
            return objective_entry_sums(block.tasks, final, offsets, f)
        sums = [None if wanted[t] is None else _sums(task, t, view, offsets[t], f[t], wanted[t])
                for t, task in enumerate(block.tasks)]
    return sums, dataclasses.replace(state, offsets=offsets, f=f, scores=None, moves=None)


def objective_sums(block, params, own, n_jobs=None):
    """The objective's entry sums of a user block at ``params`` with its own rows ``own`` (the starting point)."""
    with _Kernels(n_jobs):
        return objective_entry_sums(block.tasks, dataclasses.replace(params, **own))


def first(pair):
    return pair[0]


def second(pair):
    return pair[1]
