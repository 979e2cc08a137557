"""The driver of :mod:`mtl_classic.distributed`: the rounds of one sweep, in the local fit's order.

The driver holds the parameters (the checkpoint: a sweep starts from them and nothing else), broadcasts them once
per half-sweep, gathers each block's new rows, and sums the blocks' sufficient statistics for the heads, the offsets'
coordinate updates and the objective. The blocks' functions are in :mod:`mtl_classic._distributed_blocks`.
"""
import copy
import logging
import time

import numpy as np
from dask.sizeof import sizeof

from . import _distributed_blocks as blocks
from .solver import als
from .solver.side import side_objective, update_side_factors
from .solver.terms import gram, item_gram, objective_from_entry_sums

log = logging.getLogger("mtl_classic.distributed")


def _flat_plan(summary, t, params, config):
    """The offsets' plan of one task as single steps: ("item_bias", None), ("block", block), ("cross", idx)."""
    out = []
    for step, arg in als.offset_plan(summary, t, params, config):
        if step == "blocks":
            out += [("block", b) for b in arg]
        else:
            out.append((step, arg))
    return out


def _slice(kind, values, lo, hi):
    """A block's part of a coordinate block's values: per-user kinds keep the block's users."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if kind == 1:
        return values[lo:hi]
    if kind == 3:
        return np.concatenate([values[:1], values[1 + lo:1 + hi]])
    return values


class Driver:
    """Runs the sweeps of one distributed fit (see the module docstring)."""

    def __init__(self, client, build, built, summaries, config, evidence, n_jobs, n_workers, lost, side_terms=()):
        """``build()`` returns new (user block, item block) futures from the events; ``built``: the first ones;
        ``side_terms``: the side matrices (:class:`mtl_classic.solver.side.SideTerm`, held here, column factors
        updated in place)."""
        self.client, self.build, self.summaries, self.config = client, build, summaries, config
        self.side_terms = list(side_terms)
        self.evidence, self.n_jobs, self.n_workers, self.lost = evidence, n_jobs, n_workers, lost
        self.n_observed = [s.n_observed for s in summaries]
        reg = config.row_regularization
        self.scaled = (bool(np.any(reg * evidence[0])), bool(np.any(reg * evidence[1])))
        self.user_blocks, self.item_blocks = built
        self.ranges = None
        self.sweeps, self.retries = [], 0
        self._bytes, self._seconds = {}, {}

    # ------------------------------------------------------------------ transport
    def _time(self, what, since):
        now = time.perf_counter()
        self._seconds[what] = self._seconds.get(what, 0.0) + now - since
        return now

    def _count(self, what, n):
        self._bytes[what] = self._bytes.get(what, 0) + int(n)

    def _scatter(self, obj, what):
        """``obj`` to one worker; the others fetch it from there when their tasks need it (each worker receives
        one copy, so the bytes counted are n_workers copies). Not ``broadcast=True``: the scheduler's replication
        waited forever when a worker died during it (distributed 2026.8), where a lost plain scatter fails the
        tasks that need it and the sweep runs again from its checkpoint."""
        self._count(what, sizeof(obj) * self.n_workers)
        return self.client.scatter(obj, hash=False)

    def _submit(self, what, fn, *args):
        self._count(what, sum(sizeof(a) for a in args if not hasattr(a, "key")))
        return self.client.submit(fn, *args, pure=False)

    def _gather(self, what, futures):
        out = self.client.gather(futures)
        self._count(what, sizeof(out))
        return out

    def _split(self, what, futures):
        firsts = self._gather(what, [self.client.submit(blocks.first, f, pure=False) for f in futures])
        return firsts, [self.client.submit(blocks.second, f, pure=False) for f in futures]

    # ------------------------------------------------------------------ the fit
    def run(self, params, max_retries, callback, verbose):
        """The sweeps from ``params`` (updated in place). Returns (history, n_iter)."""
        self._ensure_blocks()
        history = [self._attempt(max_retries, lambda p: self._initial_objective(p), params)[0]]
        self.gram_q = item_gram(params.item_factors, self.summaries)
        n_iter = 0
        for it in range(self.config.iterations):
            begin = time.perf_counter()
            self._bytes, self._seconds = {}, {}
            total, params_done = self._attempt(max_retries, self._sweep, params)
            params.__dict__.update(params_done.__dict__)
            n_iter = it + 1
            history.append(total)
            self.sweeps.append({"seconds": time.perf_counter() - begin, "bytes": dict(self._bytes),
                                "phases": dict(self._seconds)})
            if not np.isfinite(total):
                raise ValueError(f"distributed.fit: the objective is not finite after sweep {n_iter} (dtype "
                                 f"{params.user_factors.dtype}); rescale the values or use dtype='float64'.")
            log.log(logging.INFO if verbose else logging.DEBUG, "[distributed] sweep %3d/%d objective %.6g %.1fs",
                    n_iter, self.config.iterations, total, self.sweeps[-1]["seconds"])
            if callback is not None and callback(n_iter, total):
                break
        return history, n_iter

    def _attempt(self, max_retries, step, params):
        """``step`` on a copy of ``params`` (the checkpoint stays intact), again from the checkpoint after a loss."""
        for attempt in range(max_retries + 1):
            work, gram_q = copy.deepcopy(params), getattr(self, "gram_q", None)
            side = [(s.factors.copy(), None if s.intercepts is None else s.intercepts.copy()) for s in self.side_terms]
            try:
                return step(work), work
            except self.lost as exc:
                if attempt == max_retries:
                    raise
                for s, (V, c) in zip(self.side_terms, side):    # the side matrices' part of the checkpoint
                    s.factors[:] = V
                    if c is not None:
                        s.intercepts[:] = c
                self.retries += 1
                log.warning("distributed.fit: lost data during a sweep (%s: %s); running it again from the last "
                            "completed sweep", type(exc).__name__, exc)
                self.gram_q = gram_q
                self._ensure_blocks(rebuild=True)

    def _ensure_blocks(self, rebuild=False):
        """The blocks' futures, rebuilt from the events when one of them is in error (Dask recomputes lost ones)."""
        futures = (self.user_blocks or []) + (self.item_blocks or [])
        if rebuild and any(f.status in ("error", "cancelled") for f in futures):
            self.user_blocks, self.item_blocks = self.build()
            self.ranges = None
        if self.ranges is None:
            self.ranges = [[(int(lo), int(hi)) for lo, hi, _ in self.client.gather(
                [self.client.submit(blocks.block_facts, b, pure=False) for b in side])]
                for side in (self.user_blocks, self.item_blocks)]

    def _solve_side(self, params, by_item, gram_, what):
        """One half-sweep: ``params`` without the solved side to every worker (once), each block its own rows."""
        pf = self._scatter(blocks.without_rows(params, by_item), what)
        side = self.item_blocks if by_item else self.user_blocks
        return [self._submit(what, blocks.solve_block, b, pf, self._own(what, b, params, by_item, lo, hi), gram_,
                             self.config, self.scaled[int(by_item)], self.n_jobs,
                             blocks.side_rows(self.side_terms, by_item, lo, hi))
                for b, (lo, hi) in zip(side, self.ranges[int(by_item)])]

    def _own(self, what, block, params, by_item, lo, hi):
        """A block's own rows, as an argument of its task (rebuilt from the driver's parameters on a rerun; a
        future scattered to the block's worker would be lost with it)."""
        return blocks.own_rows(params, by_item, lo, hi)

    def _initial_objective(self, params):
        pf = self._scatter(blocks.without_rows(params, False), "objective")
        sums = self._gather("objective", [
            self._submit("objective", blocks.objective_sums, b, pf, self._own("objective", b, params, False, lo, hi),
                         self.n_jobs) for b, (lo, hi) in zip(self.user_blocks, self.ranges[0])])
        grams = (gram(params.user_factors), item_gram(params.item_factors, self.summaries))
        return self._objective(params, sums, grams)[0]

    def _objective(self, params, block_sums, grams):
        T = len(self.summaries)
        sums = [(sum(s[t][0] for s in block_sums), sum(s[t][1] for s in block_sums)) for t in range(T)]
        total, per_task = objective_from_entry_sums(self.summaries, params, self.config, sums, grams=grams,
                                                    evidence=self.evidence, n_observed=self.n_observed)
        if not self.side_terms:
            return total, per_task
        extra = side_objective(self.side_terms, params.user_factors, params.item_factors, *self._side_penalty)
        return total + sum(extra), list(per_task) + extra

    @property
    def _side_penalty(self):
        return self.config.regularization, self.config.negative_regularization

    def _sweep(self, params):
        """One sweep on ``params`` (in place): users, items, heads, offsets; returns the objective."""
        config = self.config
        clock = time.perf_counter()
        solved = self._solve_side(params, False, self.gram_q, "user half-sweep")
        rows = self._gather("user half-sweep", [self.client.submit(blocks.rows_of, s, pure=False) for s in solved])
        states = [self.client.submit(blocks.state_of, s, pure=False) for s in solved]
        del solved
        params.user_factors = np.concatenate(rows)
        update_side_factors(self.side_terms, params.user_factors, False, *self._side_penalty)
        gram_p = gram(params.user_factors)
        clock = self._time("user half-sweep", clock)
        rows = self._gather("item half-sweep", self._solve_side(params, True, gram_p, "item half-sweep"))
        params.item_factors = np.concatenate(rows)
        update_side_factors(self.side_terms, params.item_factors, True, *self._side_penalty)
        gram_q = item_gram(params.item_factors, self.summaries)   # Q^T diag(s) Q, as the local fit's
        grams = (gram_p, gram_q)
        clock = self._time("item half-sweep", clock)
        # the user blocks keep their own rows and the sweep's other arrays: they need the new item factors only
        pf = self._scatter(params.item_factors, "heads and offsets")
        head_step, steps = None, None
        if config.fit_heads:
            states, head_step, steps = self._heads(params, pf, states, grams)
        clock = self._time("heads", clock)
        total = self._offsets(params, pf, states, head_step, steps, grams)
        self._time("offsets and objective", clock)
        self.gram_q = gram_q
        return total

    def _heads(self, params, pf, states, grams):
        what, config = "heads and offsets", self.config
        regs, dense, bias_lin = als.head_dense_terms(self.summaries, params, config, grams, self.n_observed)
        if config.solver == "cholesky":
            parts = self._gather(what, [self._submit(what, blocks.head_normals, s, pf, config, 8, self.n_jobs)
                                        for s in states])
            sums = [None if parts[0][t] is None else (sum(p[t][0] for p in parts), sum(p[t][1] for p in parts))
                    for t in range(len(self.summaries))]
            als.solve_heads_exactly(params, config, sums, regs, dense, bias_lin)
            return states, None, None
        parts, states = self._split(what, [self._submit(what, blocks.head_residuals, s, pf, 8, self.n_jobs)
                                           for s in states])
        R = als.head_directions(sum(parts), params, config, regs, dense, bias_lin)
        parts, states = self._split(what, [self._submit(what, blocks.head_moves, s, pf, R, self.n_jobs)
                                           for s in states])
        return states, "cg", als.head_steps(params, R, dense, sum(parts))

    def _offsets(self, params, pf, states, head_step, steps, grams):
        """The offsets' coordinate updates, one round per step of the longest plan (the tasks side by side), then
        the objective's entry sums."""
        what, T = "heads and offsets", len(self.summaries)
        plans = [_flat_plan(s, t, params, self.config) for t, s in enumerate(self.summaries)]
        W = params.head_weights.copy()
        applied = [None] * T
        n_rounds = max(len(p) for p in plans)
        for r in range(n_rounds + 1):
            wanted = [plans[t][r] if r < len(plans[t]) else None for t in range(T)]
            final = all(w is None for w in wanted)
            item_biases = params.item_biases if final and any(s.item_bias for s in self.summaries) else None
            futures = [self._submit(what, blocks.offset_round, s, pf, W, steps, head_step,
                                    [self._message(a, lo, hi) for a in applied],
                                    [self._message(w, lo, hi) for w in wanted], item_biases, self.n_jobs)
                       for s, (lo, hi) in zip(states, self.ranges[0])]
            if final:
                return self._objective(params, self._gather(what, futures), grams)[0]
            sums, states = self._split(what, futures)
            applied = [None if wanted[t] is None else self._finish(t, wanted[t], [s[t] for s in sums], params)
                       for t in range(T)]

    def _message(self, step, lo, hi):
        """What one user block needs of a step: its values (a finished step: old and new values)."""
        if step is None:
            return None
        kind = step[0]
        if kind == "block":
            if len(step) == 3:   # finished: ("block", (feat, kind), (old, new))
                (feat, bkind), (old, new) = step[1], step[2]
                return ("block", feat, bkind, _slice(bkind, old, lo, hi), _slice(bkind, new, lo, hi))
            feat, bkind, _, values, _ = step[1]
            return ("block", feat, bkind, _slice(bkind, values, lo, hi))
        if kind == "item_bias":
            return step if len(step) == 3 else ("item_bias",)
        return step if len(step) == 4 else ("cross", step[1])

    def _finish(self, t, step, sums, params):
        """The new values of task t's step from the blocks' sums, written into ``params``; returns the finished
        step (old and new values) for the blocks to move their offsets."""
        summary, kind = self.summaries[t], step[0]
        if kind == "block":
            feat, bkind, reg, values, setter = step[1]
            if bkind in (1, 3):   # per-user sums: every block holds its own users'
                num, den = np.concatenate([s[0] for s in sums]), np.concatenate([s[1] for s in sums])
            else:
                num, den = sum(s[0] for s in sums), sum(s[1] for s in sums)
            old = np.atleast_1d(np.asarray(values, dtype=np.float64)).copy()
            new = als.block_values(bkind, num, den, reg, summary.weight)
            setter(new)
            return ("block", (feat, bkind), (old, new))
        if kind == "item_bias":
            num, den = sum(s[0] for s in sums), sum(s[1] for s in sums)
            old = params.item_biases[t].copy()
            params.item_biases[t] = als.item_bias_values(summary, t, params, self.config, num, den)
            return ("item_bias", old, params.item_biases[t].copy())
        beta_idx = step[1]
        H, g = sum(s[0] for s in sums), sum(s[1] for s in sums)
        old = params.cross_weights[t].copy()
        params.cross_weights[t, beta_idx] = als.cross_weight_values(H, g, self.config)
        return ("cross", beta_idx, old, params.cross_weights[t].copy())

    def report(self, n_user_blocks, n_item_blocks):
        """Plain JSON facts of the fit: blocks, retries, seconds and bytes moved per sweep."""
        return {"n_workers": int(self.n_workers), "n_user_blocks": int(n_user_blocks),
                "n_item_blocks": int(n_item_blocks), "retries": int(self.retries),
                "sweeps": [{"seconds": float(s["seconds"]), "bytes": {k: int(v) for k, v in s["bytes"].items()},
                            "phases": {k: float(v) for k, v in s["phases"].items()}} for s in self.sweeps]}
