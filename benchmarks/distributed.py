"""The distributed fit (mtl_classic.distributed on a Dask LocalCluster) against the local fit, on the same machine.

Data: synthetic multi-behaviour events with planted factors (view, cart, buy; all implicit), written as a folder of
parquet files (one file per ~1M events), at each ``--sizes`` total number of events over a fixed index of
``--users`` x ``--items`` (so the parameters, and whatever the driver holds of them, have the same size at every
data size). A view goes to the best of ``--candidates`` random items under the planted user / item factors
(rank 8); a view is carted with probability 0.2, a cart bought with probability 0.3 (both rising with the planted
score). ``mtl_classic/synthetic.py``'s generators draw dense users x items matrices, which does not scale to 10M
events; this generator draws the events one chunk at a time, O(events) memory.

Each measurement is its own process, so that every peak memory is that run's:

* local: ``pandas.read_parquet`` -> ``MultiTaskData.from_events`` -> ``MultiTaskMF.fit`` with ``n_jobs=2``;
* distributed: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1")`` (no worker
  memory limit, so nothing spills), ``dd.read_parquet`` -> ``mtl_classic.distributed.fit``; the client never
  reads the events.

Seconds per sweep: the median of sweeps 2..n (sweep 1 carries the first calls of the kernels in fresh processes);
the local fit's sweeps are timed from its per-sweep log records. Peak memory: the process's VmHWM (the client's
during the sweeps, read in the last sweep's callback, includes the Dask scheduler, which LocalCluster runs in the
client process; the client's after ``fit`` adds the training matrices the fitted model keeps as ``data_``). Bytes
moved: what the driver sends and receives per half-sweep (``distributed_stats_``; a broadcast counts once per
worker). The same ``random_state`` in both fits: the last column is their objectives' largest relative difference
per sweep (float32).

Usage::

    python benchmarks/distributed.py                          # 1M, 10M, 30M events
    python benchmarks/distributed.py --sizes 1e6 --iterations 3
"""
import argparse
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _common as C  # noqa: E402

# this file's name is the Dask package's: keep its folder off the path, so that ``import distributed`` finds Dask
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

TASKS = (("view", 0.3), ("cart", 0.3), ("buy", 1.0))
CHUNK = 1_000_000


def generate(path, n_events, n_users, n_items, candidates, seed=0):
    """Write ~``n_events`` view / cart / buy events as parquet files under ``path`` (skipped when present)."""
    import pandas as pd
    done = os.path.join(path, "_done.json")
    if os.path.exists(done):
        return json.load(open(done))
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    rank = 8
    U = rng.normal(size=(n_users, rank)).astype(np.float32)
    V = rng.normal(size=(n_items, rank)).astype(np.float32)
    n_views = int(round(n_events / (1 + 0.2 + 0.2 * 0.3)))
    written, part = {"view": 0, "cart": 0, "buy": 0}, 0
    for start in range(0, n_views, CHUNK):
        n = min(CHUNK, n_views - start)
        users = rng.integers(0, n_users, n)
        cand = rng.integers(0, n_items, (n, candidates))
        scores = np.einsum("nr,ncr->nc", U[users], V[cand]) / np.sqrt(rank)
        best = np.argmax(scores, axis=1)
        items, score = cand[np.arange(n), best], scores[np.arange(n), best]
        rise = 2 / (1 + np.exp(-(score - np.median(score))))      # mean ~1, rising with the planted score
        cart = rng.random(n) < np.clip(0.2 * rise, 0, 1)
        buy = cart & (rng.random(n) < np.clip(0.3 * rise, 0, 1))
        frames = [pd.DataFrame({"user": users[sel], "item": items[sel], "task": name})
                  for name, sel in (("view", np.ones(n, bool)), ("cart", cart), ("buy", buy))]
        for name, frame in zip(("view", "cart", "buy"), frames):
            written[name] += len(frame)
        pd.concat(frames, ignore_index=True).to_parquet(os.path.join(path, f"part-{part:05d}.parquet"), index=False)
        part += 1
    info = {"events": int(sum(written.values())), "per_task": written, "files": part}
    json.dump(info, open(done, "w"))
    return info


def _hwm_mb(pid="self"):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _estimator(args):
    from mtl_classic import MultiTaskMF, Task
    return MultiTaskMF(tasks=[Task(n, weight=w) for n, w in TASKS], factors=args.factors, iterations=args.iterations,
                       random_state=0, show_progress=False, verbose=True, n_jobs=2)


class _SweepTimes(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.times = []

    def emit(self, record):
        if "sweep" in record.getMessage():
            self.times.append(record.created)


def run_local(args):
    import pandas as pd
    from mtl_classic import MultiTaskData
    begin = time.perf_counter()
    events = pd.read_parquet(args.data)
    data = MultiTaskData.from_events(events)
    del events
    handler = _SweepTimes()
    logging.getLogger("mtl_classic.model").addHandler(handler)
    logging.getLogger("mtl_classic.model").setLevel(logging.INFO)
    fit_start = time.time()
    model = _estimator(args).fit(data)
    sweeps = np.diff([fit_start] + handler.times)   # sweep 1 also holds the layout and the initial objective
    return {"sweep_seconds": sweeps.tolist(), "total_seconds": time.perf_counter() - begin,
            "peak_mb": _hwm_mb(), "loss_history": list(map(float, model.loss_history_)),
            "entries": int(sum(len(r) for r in [m.data for m in data.matrices.values()]))}


def run_distributed(args):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    from mtl_classic import distributed as mdist
    begin = time.perf_counter()
    client_sweeps = {}

    def callback(iteration, objective):
        client_sweeps["peak_mb"] = _hwm_mb()
        return False

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      memory_limit=0) as cluster, Client(cluster) as client:
        events = dd.read_parquet(args.data)
        model = mdist.fit(_estimator(args), events, client, n_jobs=1, callback=callback)
        workers = client.run(_hwm_mb)
        worker_transfers = client.run(lambda dask_worker: getattr(dask_worker.state, "transfer_incoming_bytes_total",
                                                                 None) if hasattr(dask_worker, "state") else None)
    stats = model.distributed_stats_
    halves = {}
    for sweep in stats["sweeps"][1:] or stats["sweeps"]:
        for what, n in sweep["bytes"].items():
            halves.setdefault(what, []).append(n)
    return {"sweep_seconds": [s["seconds"] for s in stats["sweeps"]], "total_seconds": time.perf_counter() - begin,
            "client_peak_sweeps_mb": client_sweeps.get("peak_mb"), "client_peak_mb": _hwm_mb(),
            "worker_peak_mb": sorted(workers.values()), "bytes": {k: float(np.mean(v)) for k, v in halves.items()},
            "worker_incoming_bytes_total": worker_transfers, "retries": stats["retries"],
            "blocks": [stats["n_user_blocks"], stats["n_item_blocks"]],
            "loss_history": list(map(float, model.loss_history_))}


def _subprocess(mode, data, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--run", mode, "--data", data, "--factors", str(args.factors),
           "--iterations", str(args.iterations)]
    C.log("running", " ".join(cmd[2:]))
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError(f"{mode} run failed on {data}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 3e7])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--factors", type=int, default=32)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--work", default="/tmp/mtl_classic_distributed_bench")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--run", choices=["local", "distributed"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        logging.basicConfig(level=logging.WARNING)
        result = run_local(args) if args.run == "local" else run_distributed(args)
        print(json.dumps(result))
        return
    env = C.environment()
    rows, raw = [], []
    for size in args.sizes:
        path = os.path.join(args.work, f"events-{int(size)}-{args.users}x{args.items}")
        C.log(f"generating {int(size):,} events")
        info = generate(path, int(size), args.users, args.items, args.candidates)
        local = _subprocess("local", path, args)
        dist = _subprocess("distributed", path, args)
        s_local, s_dist = np.median(local["sweep_seconds"][1:]), np.median(dist["sweep_seconds"][1:])
        la, lb = np.array(local["loss_history"]), np.array(dist["loss_history"])
        b = dist["bytes"]
        rows.append({"events": info["events"], "nnz (observed pairs)": local["entries"],
                     "local s/sweep": s_local, "distributed s/sweep": s_dist, "ratio": s_dist / s_local,
                     "local ns/event/sweep": 1e9 * s_local / info["events"],
                     "distributed ns/event/sweep": 1e9 * s_dist / info["events"],
                     "local peak MB": local["peak_mb"], "worker peak MB": max(dist["worker_peak_mb"]),
                     "client peak MB (sweeps)": dist["client_peak_sweeps_mb"],
                     "client peak MB (with data_)": dist["client_peak_mb"],
                     "MB per user half-sweep": b.get("user half-sweep", 0) / 1e6,
                     "MB per item half-sweep": b.get("item half-sweep", 0) / 1e6,
                     "MB heads + offsets": b.get("heads and offsets", 0) / 1e6,
                     "local total s": local["total_seconds"], "distributed total s": dist["total_seconds"],
                     "max rel. objective diff": float(np.max(np.abs(la - lb) / np.abs(la)))})
        raw.append({"size": size, "data": info, "local": local, "distributed": dist})
        C.log(json.dumps(rows[-1]))
    columns = list(rows[0])
    formats = {c: ".3g" for c in columns}
    formats.update({"events": ",", "nnz (observed pairs)": ",", "ratio": ".2f", "max rel. objective diff": ".1e"})
    md = ["# Distributed fit: LocalCluster with 2 workers against the local fit", "", C.environment_markdown(env), "",
          f"Synthetic view / cart / buy events with planted factors over {args.users:,} users x {args.items:,} "
          f"items; MultiTaskMF(tasks=view 0.3, cart 0.3, buy 1, factors={args.factors}, float32, cg), "
          f"{args.iterations} sweeps; local fit n_jobs=2, distributed 2 worker processes x 1 thread on the same "
          "2 cores. Seconds per sweep: median of sweeps 2..n. Every number is one run on a shared machine (another "
          "engineer's benchmarks ran at the same time); the ratio compares two runs of the same data back to back.",
          "", C.markdown_table(rows, columns, formats), "",
          "Columns: `ratio` = distributed / local seconds per sweep (the engine's overhead per event); `client peak "
          "MB (sweeps)` = the client process's high-water mark by the last sweep (scheduler included); `(with "
          "data_)` after the fitted model has assembled its training matrices on the client; `MB per ... "
          "half-sweep` = what the driver sends (a broadcast once per worker) and receives in that half-sweep.",
          "", f"Rerun: `python benchmarks/distributed.py --sizes {' '.join(f'{s:g}' for s in args.sizes)}`"]
    C.write_outputs(args.out, "distributed", "\n".join(md), {"environment": env, "rows": rows, "raw": raw,
                                                             "args": vars(args)})
    plot(rows, os.path.join(args.out, "distributed.png"))


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = [r["events"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(x, [r["local s/sweep"] for r in rows], "o-", label="local fit (n_jobs=2)")
    a.plot(x, [r["distributed s/sweep"] for r in rows], "s-", label="distributed (2 workers x 1 thread)")
    a.set(xscale="log", yscale="log", xlabel="events", ylabel="seconds per sweep", title="Seconds per sweep")
    a.legend()
    b.plot(x, [r["local peak MB"] for r in rows], "o-", label="local process")
    b.plot(x, [r["worker peak MB"] for r in rows], "s-", label="largest worker")
    b.plot(x, [r["client peak MB (sweeps)"] for r in rows], "^-", label="client during the sweeps")
    b.plot(x, [r["client peak MB (with data_)"] for r in rows], "v--", label="client with the fitted model's data_")
    b.set(xscale="log", yscale="log", xlabel="events", ylabel="peak memory (MB)", title="Peak memory")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
