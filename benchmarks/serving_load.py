"""Load benchmark of ``mtl-classic serve``: a bounded number of requests from local client threads on 127.0.0.1.

The server runs in its own process (``python -m mtl_classic.cli serve --port 0``) on a saved model: ``--model DIR``,
or by default a MultiTaskMF fitted here on the embedded MovieLens sample (tasks rated, liked, rating, tagged). The
client threads each keep one HTTP/1.1 connection open and send, in a seeded random order:

* ``GET /recommend?user=U&task=rated&n=10`` for random known users (share ``1 - predict_share``),
* ``POST /predict`` with 20 random (user, item) pairs of the ``rating`` task (share ``predict_share``).

Every response must be 200 with the expected JSON; anything else counts as an error and the script exits 1. After
the timed run a few malformed requests must get 4xx JSON errors and a last good request must still succeed.
Prints p50 / p90 / p99 / max latency and requests per second; writes markdown + JSON into ``--out``.

Usage::

    python benchmarks/serving_load.py [--requests 5000] [--clients 4] [--model DIR] [--out benchmarks/out]
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def _fit_default_model(path):
    from mtl_classic.datasets import load_movielens
    from mtl_classic.model import MultiTaskMF
    from mtl_classic.persistence import save_model
    from mtl_classic.tasks import Task

    data = load_movielens()
    tasks = [Task("rated", alpha=10.0), Task("liked", kind="binary", weight=0.3),
             Task("rating", kind="regression", weight=0.1), Task("tagged", weight=0.3)]
    model = MultiTaskMF(tasks=tasks, factors=32, iterations=5, random_state=0).fit(data)
    save_model(model, path)
    return f"MultiTaskMF (32 factors, 5 sweeps) on the embedded MovieLens sample, saved to {path}"


def _start_server(model_dir, extra):
    # the server imports the same mtl_classic as this process (e.g. a frozen worktree on PYTHONPATH), not whatever
    # ``python -m`` would find first in the current directory
    import mtl_classic
    root = os.path.dirname(os.path.dirname(os.path.abspath(mtl_classic.__file__)))
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


def _worker(host, port, plan, results, lock):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    lat, errors, samples = [], 0, []
    for method, path, body, check in plan:
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            raw = resp.read()
            ok = resp.status == 200 and check(json.loads(raw))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            ok, raw = False, repr(exc).encode()
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        lat.append(time.perf_counter() - start)
        if not ok:
            errors += 1
            if len(samples) < 3:
                samples.append(raw[:200].decode("utf-8", "replace"))
    conn.close()
    with lock:
        results["latencies"].extend(lat)
        results["errors"] += errors
        results["error_samples"].extend(samples)


def _plan(n, users, items, predict_share, rng):
    plan = []
    for _ in range(n):
        if rng.random() < predict_share:
            pairs = [[int(u), int(i)] for u, i in zip(rng.choice(users, 20), rng.choice(items, 20))]
            body = json.dumps({"task": "rating", "pairs": pairs}).encode()
            plan.append(("POST", "/predict", body, lambda d: len(d["predictions"]) == 20))
        else:
            u = int(rng.choice(users))
            plan.append(("GET", f"/recommend?user={u}&task=rated&n=10", None, lambda d: len(d["items"]) == 10))
    return plan


def _oversized_body(host, port, size=2 << 20):
    """Announce a body over the limit, send its first KiB only, and read the reply: the server must answer 413
    from the Content-Length alone and close, without reading the body."""
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode() + b"x" * 1024)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else head[:40]
    ok = status == 413 and "error" in json.loads(body or b"{}")
    return {"request": f"POST /predict (Content-Length {size}, 1 KiB sent)", "status": status, "expected": 413,
            "ok": ok}


def _bad_requests_then_good(host, port, user):
    checks = []
    for method, path, body, want in (("GET", "/recommend?user=-424242&task=rated", None, 404),
                                     ("GET", f"/recommend?user={user}&task=nope", None, 400),
                                     ("GET", f"/recommend?user={user}&task=rated&n=100000", None, 400),
                                     ("POST", "/predict", b"{broken", 400),
                                     ("OVERSIZED", None, None, 413),
                                     ("GET", f"/recommend?user={user}&task=rated&n=5", None, 200)):
        if method == "OVERSIZED":
            checks.append(_oversized_body(host, port))
            continue
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            checks.append({"request": f"{method} {path[:60]}", "status": resp.status, "expected": want,
                           "ok": resp.status == want and ("error" in doc) == (want != 200)})
        except (OSError, http.client.HTTPException, ValueError) as exc:
            checks.append({"request": f"{method} {path[:60]}", "status": repr(exc), "expected": want, "ok": False})
        finally:
            conn.close()
    return checks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="saved model directory (default: fit one on MovieLens)")
    p.add_argument("--requests", type=int, default=5000, help="total requests (bounded)")
    p.add_argument("--clients", type=int, default=4, help="client threads, one keep-alive connection each")
    p.add_argument("--predict-share", type=float, default=0.1)
    p.add_argument("--mmap", action="store_true", help="serve with memory-mapped arrays")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=_common.DEFAULT_OUT)
    args = p.parse_args(argv)

    from mtl_classic.inference import InferenceModel

    tmp = None
    if args.model is None:
        tmp = tempfile.TemporaryDirectory(prefix="mtl_serving_load_")
        model_dir = os.path.join(tmp.name, "model")
        source = _fit_default_model(model_dir)
    else:
        model_dir, source = args.model, f"saved model {args.model}"
    info = InferenceModel.load(model_dir)
    if "rated" not in info.task_index or "rating" not in info.task_index:
        raise SystemExit("serving_load.py expects a model with tasks 'rated' and 'rating' (MovieLens)")
    rng = np.random.default_rng(args.seed)
    plan = _plan(args.requests, info.user_ids.ids, info.item_ids.ids, args.predict_share, rng)
    warm = _plan(50, info.user_ids.ids, info.item_ids.ids, args.predict_share, rng)

    proc, host, port = _start_server(model_dir, ["--mmap"] if args.mmap else [])
    try:
        _worker(host, port, warm, {"latencies": [], "errors": 0, "error_samples": []}, threading.Lock())
        results = {"latencies": [], "errors": 0, "error_samples": []}
        lock = threading.Lock()
        threads = [threading.Thread(target=_worker, args=(host, port, plan[c::args.clients], results, lock))
                   for c in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        checks = _bad_requests_then_good(host, port, int(info.user_ids.ids[0]))
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if tmp is not None:
            tmp.cleanup()

    lat = np.array(results["latencies"]) * 1000
    row = {"requests": len(lat), "clients": args.clients, "errors": results["errors"],
           "requests_per_second": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
           "p90_ms": float(np.percentile(lat, 90)), "p99_ms": float(np.percentile(lat, 99)),
           "max_ms": float(lat.max()), "wall_seconds": wall}
    env = _common.environment()
    md = ["# Serving load (`mtl-classic serve`)", "",
          f"Model: {source}. Server: separate process on 127.0.0.1 (BLAS 1 thread per request"
          f"{', memory-mapped arrays' if args.mmap else ''}). Client: {args.clients} threads in this process, one "
          f"keep-alive connection each, {args.requests} requests after 50 warm-up requests: "
          f"{1 - args.predict_share:.0%} GET /recommend (task rated, n=10, random known users), "
          f"{args.predict_share:.0%} POST /predict (20 pairs of task rating). Client and server share the machine's "
          f"{os.cpu_count()} cores.", "",
          _common.markdown_table([row], ["requests", "clients", "errors", "requests_per_second", "p50_ms", "p90_ms",
                                         "p99_ms", "max_ms"],
                                 {"requests_per_second": ",.0f", "p50_ms": ".2f", "p90_ms": ".2f", "p99_ms": ".2f",
                                  "max_ms": ".1f"}),
          "", "After the run, malformed requests (expected status, then a good request):", "",
          _common.markdown_table(checks, ["request", "expected", "status", "ok"]),
          "", f"Server process still running afterwards: {alive}.", "", "## Environment", "",
          _common.environment_markdown(env)]
    if results["error_samples"]:
        md += ["", "Error samples:", *[f"- `{s}`" for s in results["error_samples"]]]
    _common.write_outputs(args.out, "serving_load", "\n".join(md),
                          {"result": row, "checks": checks, "server_alive": alive, "source": source,
                           "error_samples": results["error_samples"], "args": vars(args), "environment": env})
    failed = results["errors"] > 0 or not all(c["ok"] for c in checks) or not alive
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
