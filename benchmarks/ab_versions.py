"""Seconds per sweep of two versions of MultiTaskMF (an earlier git commit and the working tree), and of implicit's
ALS, fitted in turn in one process, in rounds.

On a shared, noisy machine two separate runs of ``speed.py`` can differ by more than a code change does. Alternating
whole fits of the two versions in one process, with implicit's ALS between them, measures the change directly: the
median of the rounds' new / old ratios. The earlier version is exported with ``git archive`` into a temporary
folder and imported as ``mtl_classic_old``.

    python benchmarks/ab_versions.py --old 0d52d78 --data-dir ../shared/datasets/beibei --rounds 8
"""
import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def export_old(ref, folder):
    """Export the package at git ``ref`` into ``folder`` as ``mtl_classic_old``."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref, "mtl_classic"], cwd=HERE.parent,
                             capture_output=True, check=True).stdout
    tar_path = Path(folder) / "old.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(folder, filter="data")
    (Path(folder) / "mtl_classic").rename(Path(folder) / "mtl_classic_old")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git commit or ref of the earlier version")
    parser.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "datasets" / "beibei"))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", default=None, help="also write ab_versions.md and ab_versions.json into this folder")
    args = parser.parse_args(argv)

    import numpy as np
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(HERE))
    from speed import load_data, union_matrix

    import mtl_classic as new
    folder = tempfile.mkdtemp(prefix="mtl_ab_")
    export_old(args.old, folder)
    sys.path.insert(0, folder)
    import mtl_classic_old as old

    data = load_data(args.data_dir)
    data_old = old.MultiTaskData.from_matrices(data.matrices, user_ids=list(data.user_map.ids),
                                               item_ids=list(data.item_map.ids))
    union = union_matrix(data)

    def fit(pkg, d):
        tasks = [pkg.Task(t) for t in data.task_names]
        model = pkg.MultiTaskMF(tasks, factors=args.factors, iterations=args.iterations, n_jobs=args.threads,
                                random_state=0, dtype=args.dtype)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(d)
        return (time.perf_counter() - start) / model.n_iter_, model.loss_history_[-1]

    def fit_implicit():
        model = AlternatingLeastSquares(factors=args.factors, iterations=args.iterations, regularization=0.01,
                                        num_threads=args.threads, random_state=0,
                                        dtype=np.float32 if args.dtype == "float32" else np.float64)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # implicit's BLAS-threads check: limited just here
            start = time.perf_counter()
            model.fit(union.astype(model.dtype), show_progress=False)
            return (time.perf_counter() - start) / args.iterations

    fit(new, data)  # compile / load both versions' kernels
    fit(old, data_old)
    rows = []
    for r in range(args.rounds):
        s_old, loss_old = fit(old, data_old)
        s_new, loss_new = fit(new, data)
        s_imp = fit_implicit()
        rows.append({"old": s_old, "new": s_new, "implicit": s_imp, "loss_old": loss_old, "loss_new": loss_new})
        print(f"round {r}: s/sweep old {s_old:.4f} new {s_new:.4f} implicit {s_imp:.4f}; "
              f"final objective old {loss_old:.8g} new {loss_new:.8g}", flush=True)
    med = {k: statistics.median(row[k] for row in rows) for k in ("old", "new", "implicit")}
    summary = {"old_ref": args.old, "median_seconds_per_sweep": med,
               "new_over_old": statistics.median(row["new"] / row["old"] for row in rows),
               "new_over_implicit": statistics.median(row["new"] / row["implicit"] for row in rows),
               "old_over_implicit": statistics.median(row["old"] / row["implicit"] for row in rows), "rounds": rows}
    print(f"median s/sweep: old {med['old']:.4f}, new {med['new']:.4f}, implicit {med['implicit']:.4f}; "
          f"new / old {summary['new_over_old']:.2f}; to implicit: new {summary['new_over_implicit']:.2f}x, "
          f"old {summary['old_over_implicit']:.2f}x")
    print("RESULT " + json.dumps(summary))
    if args.out:
        import _common
        env = _common.environment()
        table = [{"model": "implicit ALS on the union", "s / sweep, median": med["implicit"],
                  "range": f"{min(r['implicit'] for r in rows):.3f}-{max(r['implicit'] for r in rows):.3f}",
                  "ratio to implicit, median of rounds": "1.00x"},
                 {"model": f"defaults at {args.old} (old)", "s / sweep, median": med["old"],
                  "range": f"{min(r['old'] for r in rows):.3f}-{max(r['old'] for r in rows):.3f}",
                  "ratio to implicit, median of rounds": f"{summary['old_over_implicit']:.2f}x"},
                 {"model": "defaults now (the imported mtl_classic)", "s / sweep, median": med["new"],
                  "range": f"{min(r['new'] for r in rows):.3f}-{max(r['new'] for r in rows):.3f}",
                  "ratio to implicit, median of rounds": f"{summary['new_over_implicit']:.2f}x"}]
        md = [f"# In-process A/B: {args.old} against the imported mtl_classic", "", _common.environment_markdown(env),
              "", f"{Path(args.data_dir).name}: k={args.factors}, {args.iterations} sweeps, {args.threads} threads, "
              f"{args.dtype}, {args.rounds} rounds (old, new, implicit in turn in one process, after one untimed "
              f"warm-up fit of each version).", "",
              _common.markdown_table(table, ["model", "s / sweep, median", "range",
                                             "ratio to implicit, median of rounds"], {"s / sweep, median": ".3f"}),
              "", f"New / old, median of the rounds' ratios: {summary['new_over_old']:.2f}. Final objective: old "
              f"{rows[-1]['loss_old']:.8g}, new {rows[-1]['loss_new']:.8g}."]
        _common.write_outputs(args.out, "ab_versions", "\n".join(md), {"environment": env, "args": vars(args),
                                                                        **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
