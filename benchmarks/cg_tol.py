"""The row solver's settings on the validation splits: objective after the fit, validation NDCG@10 and fit time.

``cg_tol`` (a row's conjugate-gradient steps stop once its residual norm has fallen to ``cg_tol`` times its first)
and ``cg_steps`` are solver settings: they trade the objective reached in a fixed number of sweeps against time.
This script fits the shipped defaults (``MultiTaskMF(tasks=[Task(b) for b in behaviours])``, MovieLens' rating tasks
with their own kinds, as ``defaults.py``) on each dataset's validation-training split (``_common.load_bench``; the
test split is never read) with each candidate, and reports the final objective (``loss_history_[-1]``), its change
against ``cg_tol=0`` (every row takes all ``cg_steps`` steps), validation NDCG@10 and the fit time. The exact row
solve (``solver="cholesky"``) is the reference the CG settings approximate.

Usage::

    python benchmarks/cg_tol.py --data-dir ../shared/datasets --out benchmarks/results
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

#: (label, estimator overrides); the first is the reference of the relative column
CANDIDATES = [
    ("cg_tol=0 (all 3 steps)", {"cg_tol": 0.0}),
    ("cg_tol=0.1 (shipped)", {}),
    ("cg_tol=0.3", {"cg_tol": 0.3}),
    ("cg_steps=2, cg_tol=0.1", {"cg_steps": 2}),
    ("solver=cholesky (exact rows)", {"solver": "cholesky"}),
]


def make_model(bench, params):
    from mtl_classic import MultiTaskMF
    return MultiTaskMF(tasks=C.shipped_tasks(bench), random_state=0, n_jobs=C.THREADS, **params)


def main(argv=None):
    args = C.dataset_parser(__doc__.splitlines()[0]).parse_args(argv)
    env = C.environment()
    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        bench = C.load_bench(name, args.data_dir)
        make_model(bench, {"iterations": 1}).fit(bench.val_train)          # compile / warm up, untimed
        ref = None
        for label, params in CANDIDATES:
            t0 = time.perf_counter()
            model = make_model(bench, params).fit(bench.val_train)
            fit_s = time.perf_counter() - t0
            objective = float(model.loss_history_[-1])
            ref = objective if ref is None else ref
            metrics = C.evaluate(model, bench.val_train, bench.val_test, bench.target)
            rows.append({"dataset": name, "candidate": label, "params": params, "objective": objective,
                         "objective vs cg_tol=0": objective / ref - 1.0, "val NDCG@10": metrics["ndcg@10"],
                         "fit s": fit_s})
            C.log(f"[{name}] {label}: objective {objective:.1f} ({objective / ref - 1:+.4%}), val NDCG@10 "
                  f"{metrics['ndcg@10']:.4f}, fit {fit_s:.1f}s")
    total = time.perf_counter() - start
    md = ["# Row solver settings on the validation splits", "", C.environment_markdown(env), "",
          "The shipped defaults (15 sweeps, factors=64, float32, random_state=0) fitted on each dataset's "
          "validation-training split with one solver setting changed; objective = the final `loss_history_`; "
          "validation NDCG@10 on the validation split (all its users); one untimed warm-up fit per dataset first.",
          "", C.markdown_table(rows, ["dataset", "candidate", "objective", "objective vs cg_tol=0", "val NDCG@10",
                                      "fit s"],
                               {"objective": ",.1f", "objective vs cg_tol=0": "+.4%", "val NDCG@10": ".4f",
                                "fit s": ".1f"}),
          "", f"Total wall time {total / 60:.1f} min."]
    C.write_outputs(args.out, "cg_tol", "\n".join(md), {"environment": env, "args": vars(args), "rows": rows,
                                                        "total_seconds": total})


if __name__ == "__main__":
    main()
