"""The built-in tuner with and without warm starts: time, sweeps, choice, validation and test NDCG@10.

``SuccessiveHalvingSearch(MultiTaskMF(tasks=[Task(b) for b in behaviours]), target)`` with its defaults (12
candidates, rungs of 5 and 15 sweeps, the best third going on), once with ``warm_start=True`` (a rung's survivors
continue from their fit of the rung before) and once with ``warm_start=False`` (they are refitted from random
factors), in the same run on each dataset. The search carves its own validation split from the training data; the
test split is read only to score the refitted winner. float32 (the default), so the two searches' scores may differ
by round-off and, where two candidates are that close, choose differently.

Usage::

    python benchmarks/tuner_warm_start.py --data-dir ../shared/datasets --out benchmarks/results
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def make_search(bench, warm_start):
    from mtl_classic import MultiTaskMF
    from mtl_classic.model_selection import SuccessiveHalvingSearch
    base = MultiTaskMF(tasks=C.shipped_tasks(bench), random_state=0, n_jobs=C.THREADS, show_progress=False)
    return SuccessiveHalvingSearch(base, target=bench.target, random_state=0, warm_start=warm_start,
                                   show_progress=False)


def main(argv=None):
    args = C.dataset_parser(__doc__.splitlines()[0]).parse_args(argv)
    env = C.environment()
    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        bench = C.load_bench(name, args.data_dir)
        make_search(bench, True).estimator.set_params(iterations=1).fit(bench.val_train)  # compile, untimed
        for warm in (False, True):
            search = make_search(bench, warm)
            t0 = time.perf_counter()
            search.fit(bench.train)
            seconds = time.perf_counter() - t0
            trials = search.trials_
            test = C.evaluate(search.best_estimator_, bench.train, bench.test, bench.target)
            rows.append({"dataset": name, "warm_start": warm, "seconds": seconds,
                         "search seconds": float(trials.fit_seconds.sum()), "fits": len(trials),
                         "sweeps run": int(trials.sweeps_run.sum()), "best val": search.best_score_,
                         "test NDCG@10": test["ndcg@10"], "chosen": C.params_label(search.best_params_)})
            C.log(f"[{name}] warm_start={warm}: {seconds:.1f}s, {rows[-1]['sweeps run']} sweeps, best val "
                  f"{search.best_score_:.4f}, test {test['ndcg@10']:.4f}, chose {rows[-1]['chosen']}")
    for r in rows:
        cold = next(c for c in rows if c["dataset"] == r["dataset"] and not c["warm_start"])
        r["time vs cold"] = r["seconds"] / cold["seconds"]
    total = time.perf_counter() - start
    cols = ["dataset", "warm_start", "seconds", "time vs cold", "search seconds", "fits", "sweeps run", "best val",
            "test NDCG@10", "chosen"]
    md = ["# The built-in tuner with and without warm starts", "", C.environment_markdown(env), "",
          "`SuccessiveHalvingSearch` with its defaults (12 candidates, rungs of 5 and 15 sweeps) on each dataset's "
          "training data, once refitting a rung's survivors from random factors and once continuing them "
          "(`warm_start`), in the same run. seconds = the whole `fit` (search and refit of the winner on all the "
          "training data); search seconds = the fits on the validation split; best val = the winner's validation "
          "NDCG@10 (ratings: -RMSE); test = the refitted winner on the test split.",
          "", C.markdown_table(rows, cols, {"seconds": ".1f", "time vs cold": ".2f", "search seconds": ".1f",
                                            "best val": ".4f", "test NDCG@10": ".4f"}),
          "", f"Total wall time {total / 60:.1f} min."]
    C.write_outputs(args.out, "tuner_warm_start", "\n".join(md), {"environment": env, "args": vars(args),
                                                                  "rows": rows, "total_seconds": total})


if __name__ == "__main__":
    main()
