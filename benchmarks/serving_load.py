"""Load, soak and hot-swap benchmark of ``mtl-classic serve``, against the retired standard-library server, on
127.0.0.1 only and bounded in requests.

Both servers run in their own process (``python -m mtl_classic.cli serve --port 0``) on the same saved model: the
current one (FastAPI + uvicorn) from this tree, the old one (``http.server.ThreadingHTTPServer``) exported from git
``--old-ref`` (default 95d647e, the last commit that had it) into a temporary folder. The model is ``--model DIR`` or
by default a MultiTaskMF fitted here on the embedded MovieLens sample. Client threads each keep one HTTP/1.1
connection open and send, in a seeded random order, ``GET /recommend?user=U&task=rated&n=10`` for random known
users and (share ``--predict-share``) ``POST /predict`` with 20 random (user, item) pairs of the ``rating`` task.

1. **Load**: ``--requests`` requests at each of ``--clients`` concurrent clients (1, 8 and 32), for each server
   (the current one also with ``--workers 2``) in the same run, in ``--rounds`` rounds: requests per second, p50 /
   p99 latency, errors, and the ratios to the old server within each round (median and range).
2. **Soak** (current server): ``--soak`` requests (at least 100,000 by default) from 8 clients while the server's
   resident memory (``VmRSS``) is sampled; its growth from the first sample after warm-up to the last is reported.
3. **Hot-swap** (current server): the same load while ``POST /admin/reload`` swaps between two saved models
   ``--swaps`` times; every request must still succeed, and both models must have answered.

Every response must be 200 with the expected JSON; anything else is an error and the script exits 1. After the
load, malformed requests must get 4xx JSON errors and a last good request must still succeed.

Usage::

    python benchmarks/serving_load.py [--requests 3000] [--clients 1 8 32] [--soak 100000] [--out benchmarks/out]
"""
import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fit_model(path, seed):
    from mtl_classic.datasets import load_movielens
    from mtl_classic.model import MultiTaskMF
    from mtl_classic.tasks import Task

    data = load_movielens()
    tasks = [Task("rated", alpha=10.0), Task("liked", kind="binary", weight=0.3),
             Task("rating", kind="regression", weight=0.1), Task("tagged", weight=0.3)]
    MultiTaskMF(tasks=tasks, factors=32, iterations=5, random_state=seed).fit(data).save(path)
    return f"MultiTaskMF (32 factors, 5 sweeps, random_state={seed}) on the embedded MovieLens sample"


def _export_old(ref, folder):
    """The package at git ``ref`` unpacked into ``folder`` (importable as ``mtl_classic`` from there)."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "mtl_classic"], cwd=REPO, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _start_server(root, model_dir, extra=()):
    """A server process running the package found in ``root``; returns (process, host, port)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.Popen([sys.executable, "-m", "mtl_classic.cli", "serve", "--model", model_dir, "--port", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env)
    line = proc.stdout.readline()
    if " on http://" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line} {proc.stderr.read()}")
    url = line.split(" on ")[1].split()[0]
    host, port = url[len("http://"):].split(":")
    return proc, host, int(port)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _plan(n, users, items, predict_share, rng):
    plan = []
    for _ in range(n):
        if rng.random() < predict_share:
            pairs = [[int(u), int(i)] for u, i in zip(rng.choice(users, 20), rng.choice(items, 20))]
            plan.append(("POST", "/predict", json.dumps({"task": "rating", "pairs": pairs}).encode(),
                         lambda d: len(d["predictions"]) == 20))
        else:
            plan.append(("GET", f"/recommend?user={int(rng.choice(users))}&task=rated&n=10", None,
                         lambda d: len(d["items"]) == 10))
    return plan


def _client(host, port, plan, results, lock, progress):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    lat, errors, samples, answers = [], 0, [], set()
    for method, path, body, check in plan:
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            raw = resp.read()
            doc = json.loads(raw)
            ok = resp.status == 200 and check(doc)
            if ok and "items" in doc:
                answers.add(tuple(doc["items"][:3]) + (str(doc["user"]),))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            ok, raw = False, repr(exc).encode()
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
        lat.append(time.perf_counter() - start)
        if not ok:
            errors += 1
            if len(samples) < 3:
                samples.append(raw[:200].decode("utf-8", "replace"))
        progress[0] += 1
    conn.close()
    with lock:
        results["latencies"].extend(lat)
        results["errors"] += errors
        results["error_samples"].extend(samples)
        results["answers"] |= answers


def _run(host, port, plan, clients, during=None):
    """Send ``plan`` from ``clients`` threads; ``during(progress)`` runs beside them (monitor, swaps)."""
    results = {"latencies": [], "errors": 0, "error_samples": [], "answers": set()}
    lock, progress = threading.Lock(), [0]
    threads = [threading.Thread(target=_client, args=(host, port, plan[c::clients], results, lock, progress))
               for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    side = during(progress, threads) if during is not None else None
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array(results["latencies"]) * 1000
    row = {"clients": clients, "requests": len(lat), "errors": results["errors"],
           "requests_per_second": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
           "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()), "wall_seconds": wall}
    return row, results, side


def _post(host, port, path, doc):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.request("POST", path, body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _bad_requests_then_good(host, port, user):
    checks = []
    for method, path, body, want in (("GET", "/recommend?user=-424242&task=rated", None, 404),
                                     ("GET", f"/recommend?user={user}&task=nope", None, 400),
                                     ("GET", f"/recommend?user={user}&task=rated&n=100000", None, 400),
                                     ("POST", "/predict", b"{broken", 400),
                                     ("GET", f"/recommend?user={user}&task=rated&n=5", None, 200)):
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            checks.append({"request": f"{method} {path[:60]}", "status": resp.status, "expected": want,
                           "ok": resp.status == want and ("error" in doc) == (want != 200)})
        except (OSError, http.client.HTTPException, ValueError) as exc:
            checks.append({"request": f"{method} {path[:60]}", "status": repr(exc), "expected": want, "ok": False})
        finally:
            conn.close()
    return checks


def plot_rss(soak, swap_at, path):
    """The soak's resident memory against requests served (matplotlib, the [bench] extra)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done, rss = zip(*soak["rss_samples"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(np.array(done) / 1000, rss, marker=".", lw=1, color="tab:blue", label="server VmRSS")
    ax.axvline(swap_at / 1000, color="0.6", lw=0.8, ls="--", label="10% of the soak")
    ax.set_xlabel("requests served (thousands)")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(0, max(rss) * 1.15)
    ax.set_title(f"Soak of the current server: {soak['requests']:,} requests, 8 clients")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="saved model directory (default: fit one on MovieLens)")
    p.add_argument("--requests", type=int, default=3000, help="requests per load level and server (bounded)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="concurrent clients per level")
    p.add_argument("--soak", type=int, default=100_000, help="requests of the soak run (current server)")
    p.add_argument("--swaps", type=int, default=6, help="hot-swaps during the swap run")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the load levels (every server in each round)")
    p.add_argument("--workers", type=int, nargs="*", default=[2],
                   help="also load the current server with these --workers counts (memory-mapped model)")
    p.add_argument("--old-ref", default="95d647e", help="git commit with the standard-library server")
    p.add_argument("--predict-share", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=_common.DEFAULT_OUT)
    args = p.parse_args(argv)

    from mtl_classic.inference import InferenceModel

    started = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="mtl_serving_load_")
    model_dir = args.model or os.path.join(tmp.name, "model")
    source = f"saved model {args.model}" if args.model else _fit_model(model_dir, seed=0)
    other_dir = os.path.join(tmp.name, "model_b")
    _fit_model(other_dir, seed=1)
    info = InferenceModel.load(model_dir)
    if "rated" not in info.task_index or "rating" not in info.task_index:
        raise SystemExit("serving_load.py expects a model with tasks 'rated' and 'rating' (MovieLens)")
    users, items = info.user_ids.ids, info.item_ids.ids
    rng = np.random.default_rng(args.seed)
    plans = {c: _plan(args.requests, users, items, args.predict_share, rng) for c in args.clients}
    warm = _plan(200, users, items, args.predict_share, rng)
    old_root = _export_old(args.old_ref, os.path.join(tmp.name, "old"))
    import mtl_classic
    new_root = os.path.dirname(os.path.dirname(os.path.abspath(mtl_classic.__file__)))

    load_rows, checks, failures = [], {}, []
    servers = [("FastAPI + uvicorn (current)", new_root, [])]
    servers += [(f"FastAPI + uvicorn (current), --workers {w}", new_root, ["--workers", str(w)]) for w in args.workers]
    servers.append((f"http.server ThreadingHTTPServer ({args.old_ref})", old_root, []))
    for rnd in range(1, args.rounds + 1):          # rounds: every server in turn, so drifts of the machine hit all
        for name, root, extra in servers:
            proc, host, port = _start_server(root, model_dir, extra)
            try:
                _run(host, port, warm, 1)
                for c in args.clients:
                    row, res, _ = _run(host, port, plans[c], c)
                    load_rows.append({"round": rnd, "server": name, **row})
                    failures += res["error_samples"]
                checks[name] = _bad_requests_then_good(host, port, int(users[0]))
                if proc.poll() is not None:
                    failures.append(f"{name} exited during the run")
            finally:
                _stop(proc)
        _common.log(f"load round {rnd} done")

    # soak and hot-swap on the current server
    proc, host, port = _start_server(new_root, model_dir)
    try:
        _run(host, port, warm, 1)
        soak_plan = _plan(args.soak, users, items, args.predict_share, rng)
        samples = []

        def monitor(progress, threads):
            while any(t.is_alive() for t in threads):
                samples.append((progress[0], _rss_mb(proc.pid)))
                time.sleep(1.0)
            samples.append((progress[0], _rss_mb(proc.pid)))
        soak_row, soak_res, _ = _run(host, port, soak_plan, 8, during=monitor)
        failures += soak_res["error_samples"]
        rss = [m for _, m in samples]
        # the allocator and the caches settle during the first requests: growth is also read from 10% on
        settled = next(m for done, m in samples if done >= 0.1 * args.soak)
        soak = {**soak_row, "rss_first_mb": rss[0], "rss_at_10pct_mb": settled, "rss_last_mb": rss[-1],
                "rss_max_mb": max(rss), "rss_growth_mb": rss[-1] - rss[0],
                "rss_growth_after_10pct_mb": rss[-1] - settled,
                "rss_samples": samples}
        _common.log(f"soak done: {soak_row['requests']} requests, RSS {rss[0]:.1f} -> {rss[-1]:.1f} MB")

        swap_plan = _plan(max(args.requests * 3, 5000), users, items, args.predict_share, rng)
        swap_log = []

        def swapper(progress, threads):
            targets = [other_dir, model_dir]
            step = len(swap_plan) / (args.swaps + 1)
            for s in range(args.swaps):
                while progress[0] < (s + 1) * step and any(t.is_alive() for t in threads):
                    time.sleep(0.01)
                status, doc = _post(host, port, "/admin/reload", {"path": targets[s % 2]})
                swap_log.append({"swap": s + 1, "at_request": progress[0], "status": status,
                                 "generation": doc.get("generation")})
        swap_row, swap_res, _ = _run(host, port, swap_plan, 8, during=swapper)
        failures += swap_res["error_samples"]
        swap_ok = all(s["status"] == 200 for s in swap_log) and len(swap_log) == args.swaps
        # the two models rank differently: some user must have got two different top-3 lists during the swaps
        tops = {}
        for *top, user in swap_res["answers"]:
            tops.setdefault(user, set()).add(tuple(top))
        distinct_models = any(len(v) > 1 for v in tops.values())
        swap = {**swap_row, "swaps": swap_log, "all_swaps_200": swap_ok, "answers_from_both_models": distinct_models}
        alive = proc.poll() is None
    finally:
        _stop(proc)
        tmp.cleanup()

    errors = sum(r["errors"] for r in load_rows) + soak["errors"] + swap["errors"]
    checks_ok = all(c["ok"] for rows in checks.values() for c in rows)
    # ratios within each round (same machine state), then their median and range over the rounds
    per_round = {}
    for r in load_rows:
        per_round.setdefault((r["round"], r["clients"]), {})[r["server"]] = r
    ratios = {}
    for (rnd, c), rows in per_round.items():
        old = [rows[k] for k in rows if "current" not in k][0]
        for name, new in rows.items():
            if "current" in name:
                q = ratios.setdefault((c, name), {"rps": [], "p50": [], "p99": []})
                q["rps"].append(new["requests_per_second"] / old["requests_per_second"])
                q["p50"].append(new["p50_ms"] / old["p50_ms"])
                q["p99"].append(new["p99_ms"] / old["p99_ms"])

    def span(v):
        return f"{np.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
    ratio_rows = [{"clients": c, "server": name, "rps current / old": span(q["rps"]),
                   "p50 current / old": span(q["p50"]), "p99 current / old": span(q["p99"]),
                   "rps_ratios": q["rps"], "p99_ratios": q["p99"]} for (c, name), q in sorted(ratios.items())]
    env = _common.environment()
    fmt = {"requests_per_second": ",.0f", "p50_ms": ".2f", "p99_ms": ".2f", "max_ms": ".1f"}
    md = ["# Serving load, soak and hot-swap (`mtl-classic serve`)", "", _common.environment_markdown(env), "",
          f"Model: {source}. Servers: each in its own process on 127.0.0.1, one at a time, the same saved model; "
          f"clients: threads in this process, one keep-alive connection each; {1 - args.predict_share:.0%} "
          f"GET /recommend (task rated, n=10, random known users), {args.predict_share:.0%} POST /predict (20 "
          f"pairs of task rating). Client and server share the machine's {os.cpu_count()} cores, so the client's "
          f"own work is part of every latency.", "", "## Load: both servers in the same run", "",
          _common.markdown_table(load_rows, ["round", "server", "clients", "requests", "errors",
                                             "requests_per_second", "p50_ms", "p99_ms", "max_ms"], fmt), "",
          f"Ratios to the old server within each round, median (range) over {args.rounds} round(s):", "",
          _common.markdown_table(ratio_rows, ["clients", "server", "rps current / old", "p50 current / old",
                                              "p99 current / old"]), "",
          "## Soak (current server, 8 clients)", "",
          _common.markdown_table([soak], ["requests", "errors", "requests_per_second", "p50_ms", "p99_ms",
                                          "rss_first_mb", "rss_at_10pct_mb", "rss_last_mb", "rss_max_mb",
                                          "rss_growth_after_10pct_mb"],
                                 {**fmt, "rss_first_mb": ".1f", "rss_at_10pct_mb": ".1f", "rss_last_mb": ".1f",
                                  "rss_max_mb": ".1f", "rss_growth_after_10pct_mb": "+.1f"}), "",
          f"Resident memory (VmRSS of the server process) sampled every second ({len(soak['rss_samples'])} "
          f"samples): at the first sample after the 200 warm-up requests, at 10% of the soak, at the end; the "
          f"growth is read from 10% on (the allocator settles during the first requests).", "",
          "![resident memory during the soak](serving_load_rss.png)", "",
          "## Hot-swap under load (current server, 8 clients)", "",
          _common.markdown_table([swap], ["requests", "errors", "requests_per_second", "p50_ms", "p99_ms",
                                          "max_ms"], fmt), "",
          f"{len(swap['swaps'])} swaps between two saved models (`POST /admin/reload`), all answered 200: "
          f"{swap['all_swaps_200']}; answers from both models seen: {swap['answers_from_both_models']}.", "",
          "## Malformed requests after the load (expected status, then a good request)", ""]
    for name, rows in checks.items():
        md += [f"{name}:", "", _common.markdown_table(rows, ["request", "expected", "status", "ok"]), ""]
    md += [f"Errors in all runs: {errors}. Current server still running after the soak and swaps: {alive}. "
           f"Total wall time {(time.perf_counter() - started) / 60:.1f} min."]
    if failures:
        md += ["", "Error samples:", *[f"- `{s}`" for s in failures[:10]]]
    os.makedirs(args.out, exist_ok=True)
    plot_rss(soak, 0.1 * args.soak, os.path.join(args.out, "serving_load_rss.png"))
    _common.write_outputs(args.out, "serving_load", "\n".join(md),
                          {"load": load_rows, "ratios": ratio_rows, "soak": soak, "swap": swap, "checks": checks,
                           "errors": errors, "server_alive": alive, "source": source, "args": vars(args),
                           "environment": env})
    failed = errors > 0 or not checks_ok or not alive or not swap["all_swaps_200"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
