"""How many candidates the built-in tuner should draw: choose on half of the validation users, score on the other half.

For each dataset (Tmall and Beibei: their validation splits are built as their tests are) the validation users are
split in two seeded halves A and B. ``SuccessiveHalvingSearch`` with ``n_candidates`` n (everything else as shipped)
chooses on the validation-training data scored on half A (``validation=``); its refit of the chosen settings on the
validation-training data (``best_estimator_``) is scored on half B, next to the shipped defaults on B. The test splits
are never read. B says whether what more candidates find on A carries over to users it was not chosen on.

Usage::

    python benchmarks/tuner_candidates.py --data-dir ../shared/datasets --out benchmarks/results
"""
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def halves(test, seed=1):
    """``test``'s pairs split by user into two seeded halves (csr, csr)."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    in_a = np.zeros(test.shape[0], dtype=bool)
    in_a[np.random.default_rng(seed).choice(users, len(users) // 2, replace=False)] = True
    out = []
    for keep in (in_a, ~in_a):
        part = sp.csr_matrix(sp.diags(keep.astype(np.float64)) @ test)
        part.eliminate_zeros()
        out.append(part)
    return tuple(out)


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0], datasets=("tmall", "beibei"))
    p.add_argument("--n-candidates", type=int, nargs="+", default=[12, 24])
    args = p.parse_args(argv)
    from mtl_classic import MultiTaskMF
    from mtl_classic.data.splits import Split
    from mtl_classic.model_selection import SuccessiveHalvingSearch

    rows = []
    start = time.perf_counter()
    for name in args.datasets:
        bench = C.load_bench(name, args.data_dir)
        vtrain = bench.val_train
        half_a, half_b = halves(bench.val_test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # dropped cross tasks are reported by quality.py
            base = MultiTaskMF(tasks=C.shipped_tasks(bench), random_state=0, n_jobs=C.THREADS)
            defaults_b = C.evaluate(base.fit(vtrain), vtrain, half_b, bench.target)["ndcg@10"]
            for n in args.n_candidates:
                t0 = time.perf_counter()
                search = SuccessiveHalvingSearch(base, target=bench.target, n_candidates=n, show_progress=False,
                                                 random_state=0)
                # chooses on half A, then refits the choice on the validation-training data (best_estimator_)
                search.fit(vtrain, validation=Split(vtrain, half_a, bench.target, {"method": "validation half A"}))
                score_b = C.evaluate(search.best_estimator_, vtrain, half_b, bench.target)["ndcg@10"]
                seconds = time.perf_counter() - t0
                rows.append({"dataset": name, "n_candidates": n, "score on A": search.best_score_,
                             "score on B": score_b, "defaults on B": defaults_b, "B / defaults": score_b / defaults_b,
                             "seconds": seconds, "chosen": C.params_label(search.best_params_)})
                C.log(f"[{name}] n_candidates={n}: A {search.best_score_:.4f}, B {score_b:.4f} "
                      f"(defaults {defaults_b:.4f}), {seconds:.0f}s")
    cols = ["dataset", "n_candidates", "score on A", "score on B", "defaults on B", "B / defaults", "seconds",
            "chosen"]
    fmt = {c: ".4f" for c in ("score on A", "score on B", "defaults on B")}
    fmt.update({"B / defaults": ".3f", "seconds": ".0f"})
    md = ["# Candidates of the built-in tuner: chosen on half A of the validation users, scored on half B", "",
          C.environment_markdown(C.environment()), "",
          "Validation NDCG@10 of the target. The search (everything else as shipped) chooses on half A; its choice is "
          "refitted on the validation-training data and scored on half B, beside the shipped defaults. Seconds: the "
          "search and the refit.", "", C.markdown_table(rows, cols, fmt), "",
          f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    C.write_outputs(args.out, "tuner_candidates", "\n".join(md), {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
