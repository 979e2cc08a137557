"""Seconds per sweep and peak memory: MultiTaskMF (buy + cart) against implicit's ALS on the union.

Each model runs in its own subprocess (so peak RSS is its own) on the same machine, in the same run, with the same
factors, sweeps and threads, in rounds: every model once per round, the ratio taken against the same round's implicit
run. Numba compilation is excluded from our timing (a tiny warm-up fit of the same configuration runs first; the
compiled kernels are cached on disk) and reported separately.

    python benchmarks/speed.py --data-dir ../shared/datasets/beibei --factors 64 --iterations 15 --threads 2
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: what runs: implicit's ALS on the union, and our model as shipped (defaults) and in two reduced forms that show
#: where the time goes
VARIANTS = {
    "implicit": "implicit ALS on the union of all behaviours",
    "ours": "MultiTaskMF, defaults (cross-task features with per-user weights, private factors, learned heads)",
    "ours-fixed3": "MultiTaskMF, defaults but cg_tol=0 (every row takes all 3 CG steps, as implicit's do)",
    "ours-nocross": "MultiTaskMF without cross-task features (cross_tasks=None), learned heads",
    "ours-plain": "MultiTaskMF without cross-task features, heads fixed at 1 (the bare shared-factor solver)",
}


def load_data(data_dir):
    """The dataset in ``data_dir``: GHCF format (beibei) when it has ``train.txt``, pair format (tmall) otherwise."""
    from mtl_classic.datasets import load_ghcf, load_pairs

    loader = load_ghcf if (Path(data_dir) / "train.txt").exists() else load_pairs
    return loader(data_dir).data


def union_matrix(data):
    """The 0/1 float32 union of every task's observed pairs: what implicit's ALS is fitted on."""
    import numpy as np
    import scipy.sparse as sp

    union = None
    for t in data.task_names:
        m = data.matrices[t]
        m = sp.csr_matrix((np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)
        union = m if union is None else union + m
    union.data[:] = 1.0
    return union


def our_model(variant, task_names, args):
    """The unfitted MultiTaskMF of one of our ``VARIANTS`` (``args``: target, aux_weight, factors, iterations,
    threads, dtype)."""
    from mtl_classic import MultiTaskMF, Task

    cross = None if variant in ("ours-nocross", "ours-plain") else "all"
    tasks = [Task(t, weight=(1.0 if t == args.target else args.aux_weight), cross_tasks=cross) for t in task_names]
    return MultiTaskMF(tasks, factors=args.factors, iterations=args.iterations, n_jobs=args.threads,
                       random_state=0, dtype=args.dtype, fit_heads=variant != "ours-plain",
                       **({"cg_tol": 0.0} if variant == "ours-fixed3" else {}))


def _child(args):
    """Run one model in this process and print a JSON line with its timings."""
    import resource

    import numpy as np
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    data = load_data(args.data_dir)
    load_seconds = time.perf_counter() - t0
    out = {"model": args.child, "load_seconds": load_seconds,
           "nnz": {t: int(data.nnz(t)) for t in data.task_names}}
    if args.child.startswith("ours"):
        compile_start = time.perf_counter()
        # the warm-up runs the timed model's own configuration (dtype, cross features, heads) on tiny data, so that
        # every kernel specialisation the timed fit calls is compiled (or loaded from numba's disk cache) here
        rng = np.random.default_rng(0)
        tiny = {}
        for t in data.task_names:
            m = sp.random(30, 20, density=0.2, format="csr", random_state=rng)
            m.data[:] = 1.0
            tiny[t] = m
        from mtl_classic import MultiTaskData
        warm_args = argparse.Namespace(**dict(vars(args), factors=4, iterations=1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            our_model(args.child, data.task_names, warm_args).fit(MultiTaskData.from_matrices(tiny))
        out["compile_seconds"] = time.perf_counter() - compile_start
        model = our_model(args.child, data.task_names, args)
        start = time.perf_counter()
        model.fit(data)
        fit = time.perf_counter() - start
        out["n_iter"] = model.n_iter_
    else:
        from implicit.cpu.als import AlternatingLeastSquares
        union = union_matrix(data)
        out["nnz_union"] = int(union.nnz)
        dtype = np.float32 if args.dtype == "float32" else np.float64
        model = AlternatingLeastSquares(factors=args.factors, iterations=args.iterations, regularization=0.01,
                                        num_threads=args.threads, random_state=0, dtype=dtype)
        with threadpool_limits(1, "blas"):
            start = time.perf_counter()
            model.fit(union.astype(dtype), show_progress=False)
            fit = time.perf_counter() - start
        out["n_iter"] = args.iterations
    out["fit_seconds"] = fit
    out["seconds_per_sweep"] = fit / out["n_iter"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT " + json.dumps(out), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = HERE.parent.parent / "shared" / "datasets" / "beibei"
    parser.add_argument("--data-dir", default=str(default_data), help="a GHCF (beibei) or pair-format (tmall) folder")
    parser.add_argument("--target", default="buy")
    parser.add_argument("--aux-weight", type=float, default=1.0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="floating point type of both models' factors (implicit's default is float32)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds; every model runs once per round, and the median round ratio is reported")
    parser.add_argument("--out", default=str(HERE / "out"))
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    if not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a folder")

    # rounds: every model once per round, in turn, so that each round's ratios compare runs minutes apart at most
    # (this machine's speed drifts by tens of percent over an hour; "best of" per model would pair unlike moments)
    runs = {model: [] for model in VARIANTS}
    for _ in range(args.repeats):
        for model in VARIANTS:
            cmd = [sys.executable, __file__, "--child", model] + [
                a for a in (argv if argv is not None else sys.argv[1:])]
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                sys.stderr.write(proc.stdout + proc.stderr)
                raise SystemExit(f"the {model} run failed (exit {proc.returncode})")
            runs[model].append(json.loads(line[0][len("RESULT "):]))
    results = {}
    for model in VARIANTS:
        per_sweep = [r["seconds_per_sweep"] for r in runs[model]]
        results[model] = dict(min(runs[model], key=lambda r: r["seconds_per_sweep"]))
        results[model]["all_seconds_per_sweep"] = per_sweep
        results[model]["median_seconds_per_sweep"] = float(statistics.median(per_sweep))
        results[model]["round_ratios"] = [s / r["seconds_per_sweep"] for s, r in zip(per_sweep, runs["implicit"])]
    ratios = {m: float(statistics.median(results[m]["round_ratios"])) for m in VARIANTS}

    import implicit
    import numpy
    import numba
    meta = {"data_dir": args.data_dir, "factors": args.factors, "iterations": args.iterations,
            "threads": args.threads, "dtype": args.dtype, "repeats": args.repeats, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__,
            "implicit": implicit.__version__, "machine": platform.machine()}
    nnz_ours = sum(results["ours"]["nnz"].values())
    rows = ["| model | nnz | s / sweep (median) | ratio to implicit (median of rounds) | ratio range | peak RSS (MB) |",
            "|---|---|---|---|---|---|"]
    for m, what in VARIANTS.items():
        r = results[m]
        nnz = r.get("nnz_union", nnz_ours)
        rows.append(f"| {what} | {nnz} | {r['median_seconds_per_sweep']:.3f} | {ratios[m]:.2f}x | "
                    f"{min(r['round_ratios']):.2f}-{max(r['round_ratios']):.2f}x | {r['peak_rss_mb']:.0f} |")
    table = "\n".join(rows) + (
        f"\n\n{Path(args.data_dir).name}: k={args.factors}, {args.iterations} sweeps, {args.threads} threads, "
        f"{args.dtype}, {args.repeats} rounds (each round runs every model once, in turn, each in its own process; a "
        f"round's ratio divides by that round's implicit run); our numba compile "
        f"({results['ours']['compile_seconds']:.1f}s, cached on disk after the first run) excluded. Ratio of the "
        f"shipped model (defaults): **{ratios['ours']:.2f}x**.\n")
    sys.path.insert(0, str(HERE))
    import _common
    env = _common.environment()
    table += "\n" + _common.environment_markdown(env) + "\n"
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text(table)
    (out / "speed.json").write_text(json.dumps({"meta": meta, "environment": env, "results": results,
                                                "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
