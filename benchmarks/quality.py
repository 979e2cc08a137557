"""Ranking quality of every model on every dataset under the protocol of docs/MATH.md section 4.

For each dataset: hyper-parameters are chosen on a validation split carved from the training data (two-stage grid,
see ``_common.model_specs`` / ``_common.tune``), the chosen configuration is refitted on the full training data, and
the test split is evaluated once (full ranking, the user's training items of the target filtered, HR@K / NDCG@K for
K = 10, 50), also split by whether a held-out pair is in one of the user's auxiliary behaviours (e.g. carted) or
not. On MovieLens the multi-task model's pointwise metrics (RMSE of ``rating``, AUC / log loss of ``liked``)
on the held-out pairs are reported too.

Usage::

    python benchmarks/quality.py                         # all datasets, full grids
    python benchmarks/quality.py --datasets beibei --quick
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

COLUMNS = ["model", "HR@10", "NDCG@10", "HR@50", "NDCG@50", "val NDCG@10", "fit s", "grid", "chosen"]


def run_dataset(name, args):
    C.log(f"loading {name}")
    bench = C.load_bench(name, args.data_dir, seed=args.seed)
    specs = C.model_specs(bench, quick=args.quick, only=args.models)
    # test pairs with / without auxiliary evidence for the same (user, item), scored separately too
    test_parts = C.split_by_aux(bench.train, bench.test, C.AUX_TASKS[name])
    results = []
    for spec in specs:
        C.log(f"[{name}] tuning {spec.name}")
        t0 = time.perf_counter()
        best, rows = C.tune(spec, bench, max_val_users=args.max_val_users or None)
        tune_s = time.perf_counter() - t0
        best_val = max(rows, key=lambda r: r["ndcg@10"])
        t0 = time.perf_counter()
        model = spec.fit_on(best, bench.train)
        fit_s = time.perf_counter() - t0
        if spec.inner_choice is not None:  # the settings the model chose itself on the training data
            best = spec.inner_choice()
        test = C.evaluate(model, bench.train, bench.test, bench.target, per_user=True)
        per_user = test.pop("per_user_ndcg@10")
        C.log(f"[{name}] {spec.name} chosen {best}: test NDCG@10 {test['ndcg@10']:.4f} HR@10 {test['hr@10']:.4f}")
        by_aux = {part: C.evaluate(model, bench.train, pairs, bench.target)
                  for part, pairs in zip(("with", "without"), test_parts) if pairs.nnz}
        res = {"model": spec.name, "family": spec.family, "chosen": best, "test": test, "fit_seconds": fit_s,
               "tune_seconds": tune_s, "validation": rows, "val_ndcg@10": best_val["ndcg@10"],
               "test_by_aux": by_aux, "_per_user": per_user}
        if name == "movielens" and spec.name == "MultiTaskMF multi-task":
            res["pointwise"] = pointwise(model, bench)
        results.append(res)
    targets = target_ratios(name, results)
    for r in results:
        r.pop("_per_user")
    return bench, results, targets


#: issue 13's targets: (what, our model, the models it is set against (the best of them on test counts), ratio)
TARGETS = {
    "movielens": [("defaults >= ALS target-only", "MultiTaskMF defaults", ["ALS target-only"], 1.00),
                  ("tuner >= ALS merged", "MultiTaskMF built-in tuner", ["ALS merged"], 1.00)],
    "beibei": [("defaults >= best of ALS + bonus and the rule", "MultiTaskMF defaults",
                ["ALS + aux bonus, fixed", "ALS + aux bonus", "aux-first rule"], 1.00),
               ("tuner >= best other model", "MultiTaskMF built-in tuner", None, 1.00)],
    "tmall": [("defaults >= 1.05x best of ALS + bonus and the rule", "MultiTaskMF defaults",
               ["ALS + aux bonus, fixed", "ALS + aux bonus", "aux-first rule"], 1.05),
              ("tuner >= 1.10x best other model", "MultiTaskMF built-in tuner", None, 1.10)],
}


def target_ratios(name, results):
    """Every target of :data:`TARGETS` on this dataset: our test NDCG@10 over the best reference's, with a paired
    bootstrap 95% interval over the test users (the reference fixed at the one best on the whole test split).
    ``None`` as the references means every model outside our family."""
    by_name = {r["model"]: r for r in results}
    out = []
    for what, ours, refs, goal in TARGETS.get(name, []):
        refs = [r["model"] for r in results if r["family"] != "ours"] if refs is None else refs
        refs = [m for m in refs if m in by_name]
        if ours not in by_name or not refs:
            continue
        ref = max(refs, key=lambda m: by_name[m]["test"]["ndcg@10"])
        ratio, low, high = C.paired_bootstrap_ratio(by_name[ours]["_per_user"], by_name[ref]["_per_user"])
        verdict = "met" if low >= goal else ("missed" if high < goal else "not decided (interval spans it)")
        out.append({"dataset": name, "target": what, "ours": ours, "reference": ref,
                    "ours NDCG@10": by_name[ours]["test"]["ndcg@10"],
                    "reference NDCG@10": by_name[ref]["test"]["ndcg@10"],
                    "ratio": ratio, "95% interval": f"{low:.3f}-{high:.3f}", "low": low, "high": high, "goal": goal,
                    "verdict": verdict})
    return out


def pointwise(model, bench):
    """RMSE/MAE of ``rating`` and AUC/log loss of ``liked`` on the held-out (test) pairs, plus a reference."""
    from mtl_classic.evaluation import evaluate_pointwise, metrics

    out = {"model": {"rating": evaluate_pointwise(model, "rating", bench.extra["test_rating"], kind="regression"),
                     "liked": evaluate_pointwise(model, "liked", bench.extra["test_liked"], kind="binary")}}
    mean = float(bench.train.matrices["rating"].data.mean())
    y = bench.extra["test_rating"].data
    out["global mean"] = {"rating": {"RMSE": metrics.rmse(y, np.full_like(y, mean)),
                                     "MAE": metrics.mae(y, np.full_like(y, mean))},
                          "liked": {"AUC": 0.5}}
    return out


def pointwise_table(r):
    pw, ref = r["pointwise"]["model"], r["pointwise"]["global mean"]
    rows = [{"model": r["model"], "rating RMSE": pw["rating"]["RMSE"], "rating MAE": pw["rating"]["MAE"],
             "liked AUC": pw["liked"]["AUC"], "liked log loss": pw["liked"]["LogLoss"]},
            {"model": "global mean rating (reference)", "rating RMSE": ref["rating"]["RMSE"],
             "rating MAE": ref["rating"]["MAE"], "liked AUC": 0.5, "liked log loss": None}]
    return "\n".join(["Pointwise, held-out (test) pairs:", "",
                      C.markdown_table(rows, ["model", "rating RMSE", "rating MAE", "liked AUC", "liked log loss"]),
                      ""])


def table(results):
    rows = []
    for r in results:
        t = r["test"]
        rows.append({"model": r["model"], "HR@10": t["hr@10"], "NDCG@10": t["ndcg@10"], "HR@50": t["hr@50"],
                     "NDCG@50": t["ndcg@50"], "val NDCG@10": r["val_ndcg@10"], "fit s": r["fit_seconds"],
                     "grid": len(r["validation"]), "chosen": C.params_label(r["chosen"])})
    return C.markdown_table(rows, COLUMNS, {"fit s": ".1f"})


def aux_table(results):
    """Test NDCG@10 (HR@10) on the held-out pairs the user has in an auxiliary behaviour, and on the others."""
    if not any(r["test_by_aux"].get("with") for r in results):
        return ""
    rows = []
    for r in results:
        row = {"model": r["model"]}
        for part in ("with", "without"):
            m = r["test_by_aux"].get(part)
            row[f"{part} aux evidence"] = f"{m['ndcg@10']:.4f} ({m['hr@10']:.4f})" if m else "-"
        rows.append(row)
    n = {part: results[0]["test_by_aux"][part]["n_users"] for part in ("with", "without")
         if part in results[0]["test_by_aux"]}
    return "\n".join(["Test NDCG@10 (HR@10) split by whether a held-out pair is in an auxiliary behaviour of the "
                      "training data (users evaluated: "
                      + ", ".join(f"{v} {part}" for part, v in n.items()) + "):", "",
                      C.markdown_table(rows, ["model", "with aux evidence", "without aux evidence"]), ""])


def plot(all_results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(all_results)
    models = []
    for n in names:
        for r in all_results[n]:
            if r["model"] not in models:
                models.append(r["model"])
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(models) * len(names) / 2), 4.5))
    width = 0.8 / max(len(models), 1)
    for j, m in enumerate(models):
        vals = [next((r["test"]["ndcg@10"] for r in all_results[n] if r["model"] == m), np.nan) for n in names]
        ax.bar(np.arange(len(names)) + j * width - 0.4 + width / 2, vals, width, label=m)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("test NDCG@10")
    ax.set_title("NDCG@10 per model and dataset (hyper-parameters chosen on validation)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["movielens", "beibei", "tmall"],
                   choices=["movielens", "beibei", "tmall"])
    p.add_argument("--data-dir", default=C.DEFAULT_DATA_DIR,
                   help="directory with beibei/ and tmall/ (default: ../shared/datasets when present)")
    p.add_argument("--out", default=C.DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="one or two grid points per model")
    p.add_argument("--models", nargs="+", default=None, help="subset of model names (or their first word)")
    p.add_argument("--max-val-users", type=int, default=10000,
                   help="evaluate validation on at most this many random users (seeded; 0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation carve")
    args = p.parse_args(argv)
    if any(d != "movielens" for d in args.datasets) and not args.data_dir:
        p.error("--data-dir is needed for beibei / tmall")

    env = C.environment()
    start = time.perf_counter()
    all_results, benches, all_targets = {}, {}, []
    md = ["# Ranking quality", "", C.environment_markdown(env), ""]
    mt_missing = C.multitask_mf_available() is None
    if mt_missing:
        md.append("**MultiTaskMF rows are missing: mtl_classic.MultiTaskMF could not be imported.**\n")
    for name in args.datasets:
        bench, results, targets = run_dataset(name, args)
        all_results[name], benches[name] = results, bench
        all_targets += targets
        info = bench.info
        md += [f"## {name} (target `{bench.target}`)", "",
               f"{info['n_users']} users, {info['n_items']} items, nnz {info['nnz']}; test: {info['test']} "
               f"({info['n_test_users']} users, {info['n_test_pairs']} pairs); validation: {info['validation']} "
               f"({info['n_val_users']} users). Share of held-out pairs present in an auxiliary task "
               f"{aux_note(info)}.", "", table(results), "", aux_table(results)]
        md += [pointwise_table(r) for r in results if "pointwise" in r]
    if all_targets:
        md += ["## Issue 13's targets, with paired bootstrap intervals", "",
               "Our test NDCG@10 over the reference's (the best of the listed models on the whole test split), and a "
               "95% percentile interval from 2,000 paired bootstrap resamples of the test users (seed 0). A target is "
               "met when the interval's low end reaches the goal, missed when its high end stays below it.", "",
               C.markdown_table(all_targets, ["dataset", "target", "reference", "ours NDCG@10", "reference NDCG@10",
                                              "ratio", "95% interval", "goal", "verdict"],
                                {"ours NDCG@10": ".4f", "reference NDCG@10": ".4f", "ratio": ".3f", "goal": ".2f"}),
               ""]
    total = time.perf_counter() - start
    md.append(f"Total wall time {total / 60:.1f} min. Grids (stage 1, then stage 2 = factors x regularization "
              f"around the stage-1 winner for the factor models): see quality.json.")
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "quality_ndcg10.png")
    plot(all_results, png)
    md.append(f"\n![NDCG@10]({os.path.basename(png)})")
    grids = {name: {s.name: {"grid": s.grid, "refine": s.refine} for s in C.model_specs(benches[name], args.quick,
                                                                                        args.models)}
             for name in benches}
    payload = {"environment": env, "args": vars(args), "total_seconds": total, "iterations": C.ITERATIONS,
               "threads": C.THREADS, "grids": grids,
               "datasets": {n: {"info": benches[n].info, "results": all_results[n]} for n in all_results},
               "targets": all_targets}
    C.write_outputs(args.out, "quality", "\n".join(md), payload)


def aux_note(info):
    parts = [f"test {info['aux_share_test']:.3f}" if info["aux_share_test"] is not None else "test -",
             f"validation {info['aux_share_val']:.3f}" if info["aux_share_val"] is not None else "validation -",
             f"training target pairs {info['aux_share_train_target']:.3f}"]
    return ", ".join(parts)


if __name__ == "__main__":
    main()
