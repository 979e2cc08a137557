"""Where a MultiTaskMF sweep spends its time: seconds per sweep of each solver part, on a multi-behaviour dataset.

Wraps the solver's functions and compiled kernels with wall-clock timers (nested parts are counted in their callers
too: ``_update_rows`` includes ``solve_rows_cg``), fits once to warm up, then fits ``--iterations`` sweeps and
prints a markdown table. The variants are those of ``speed.py``.

    python benchmarks/profile_solver.py --data-dir ../shared/datasets/beibei --variant ours-nocross
"""
import argparse
import collections
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtl_classic.solver import als, kernels  # noqa: E402  (may move with the library; this script follows it)
from speed import VARIANTS, load_data, our_model  # noqa: E402

SOLVER_PARTS = ["_update_rows", "_solve_rows_preconditioned", "_update_heads", "_update_offsets", "objective", "_gram",
                "_Stacked"]
KERNEL_PARTS = ["solve_rows_cg", "solve_rows_cholesky", "head_products", "coordinate_blocks", "gather",
                "entry_dots", "score_moves", "squared_loss", "scaled_copies", "row_matmul"]


def _timed(function, name, totals):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start
    return wrapper


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets/beibei")
    parser.add_argument("--variant", default="ours", choices=[v for v in VARIANTS if v.startswith("ours")])
    parser.add_argument("--target", default="buy")
    parser.add_argument("--aux-weight", type=float, default=1.0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--out", default=None, help="also write profile_solver.md and .json into this folder")
    args = parser.parse_args(argv)

    data = load_data(args.data_dir)
    totals = collections.defaultdict(float)
    for module, names in ((als, SOLVER_PARTS), (kernels, KERNEL_PARTS)):
        for name in names:
            setattr(module, name, _timed(getattr(module, name), name, totals))
    refresh = als._EntryTerms.refresh
    als._EntryTerms.refresh = _timed(refresh, "_EntryTerms.refresh", totals)

    our_model(args.variant, data.task_names, args).set_params(iterations=2).fit(data)  # compile and warm up
    totals.clear()
    start = time.perf_counter()
    our_model(args.variant, data.task_names, args).fit(data)
    total = time.perf_counter() - start
    head = (f"{args.variant} on {os.path.basename(os.path.normpath(args.data_dir))}: k={args.factors}, "
            f"{args.iterations} sweeps, {args.threads} threads, {args.dtype}; whole fit {total:.2f} s "
            f"({total / args.iterations:.4f} s per sweep, setup included). Parts are nested (a caller's time includes "
            f"its callees'); one warm-up fit of 2 sweeps ran first.")
    rows = [{"part": name, "s / sweep": seconds / args.iterations}
            for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]
    table = "\n".join(["| part | s / sweep |", "|---|---|"] + [f"| {r['part']} | {r['s / sweep']:.4f} |" for r in rows])
    print(head + "\n\n" + table)
    if args.out:
        import _common
        env = _common.environment()
        md = ["# Where a sweep's time goes", "", _common.environment_markdown(env), "", head, "", table]
        _common.write_outputs(args.out, "profile_solver", "\n".join(md),
                              {"environment": env, "args": vars(args), "whole_fit_seconds": total, "rows": rows})


if __name__ == "__main__":
    main()
