"""Target NDCG@10 as the auxiliary task weight varies, on the validation split and on the test split.

For each weight w, MultiTaskMF gets every auxiliary behaviour with weight w (the target keeps weight 1), and, for
comparison, implicit's ALS gets the merged matrix ``R_target + w * sum_b R_b``. Each configuration is fitted twice:
on the validation-training data (scored on the validation split carved from the training data) and on the full
training data (scored on the test split). This is a diagnostic of how well validation tracks test; the quality
benchmark chooses its weights on validation only.

Usage::

    python benchmarks/task_weights.py                     # beibei and tmall
    python benchmarks/task_weights.py --datasets tmall --weights 0.1 1
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def make_models(bench, w, args):
    from mtl_classic.baselines import ImplicitALSRecommender

    out = {"ALS merged": ImplicitALSRecommender(
        target=bench.target, factors=args.factors, regularization=args.regularization, alpha=args.als_alpha,
        iterations=C.ITERATIONS, aux_weights={b: w for b in C.AUX_TASKS[bench.name]}, num_threads=C.THREADS,
        random_state=0)}
    mt = C.multitask_mf_available()
    if mt is not None:
        MultiTaskMF, Task = mt
        tasks = [Task(n, kind="implicit", weight=1.0 if n == bench.target else w, alpha=args.alpha)
                 for n in bench.train.task_names]
        out["MultiTaskMF multi-task"] = MultiTaskMF(tasks=tasks, factors=args.factors, iterations=C.ITERATIONS,
                                                    regularization=args.regularization, n_jobs=C.THREADS,
                                                    random_state=0, verbose=False)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["beibei", "tmall"], choices=["beibei", "tmall"])
    p.add_argument("--data-dir", default=C.DEFAULT_DATA_DIR)
    p.add_argument("--out", default=C.DEFAULT_OUT)
    p.add_argument("--weights", nargs="+", type=float, default=[0.03, 0.1, 0.3, 1.0, 3.0])
    p.add_argument("--factors", type=int, default=32)
    p.add_argument("--regularization", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=1.0, help="MultiTaskMF Task.alpha (confidence 1 + alpha*count)")
    p.add_argument("--als-alpha", type=float, default=1.0, help="implicit's alpha (confidence alpha*count)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.data_dir:
        p.error("--data-dir is needed")

    env = C.environment()
    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        C.log(f"loading {name}")
        bench = C.load_bench(name, args.data_dir, seed=args.seed)
        for w in args.weights:
            for split in ("validation", "test"):
                train, test = ((bench.val_train, bench.val_test) if split == "validation"
                               else (bench.train, bench.test))
                for model_name, model in make_models(bench, w, args).items():
                    t0 = time.perf_counter()
                    model.fit(train)
                    fit_s = time.perf_counter() - t0
                    m = C.evaluate(model, train, test, bench.target)
                    rows.append({"dataset": name, "model": model_name, "aux weight": w, "split": split,
                                 "NDCG@10": m["ndcg@10"], "HR@10": m["hr@10"], "fit s": fit_s})
                    C.log(f"  [{name}] {model_name} w={w:g} {split}: NDCG@10 {m['ndcg@10']:.4f} ({fit_s:.1f}s)")
    total = time.perf_counter() - start

    # wide table: one row per dataset x model x weight
    wide = []
    for name in args.datasets:
        for model_name in dict.fromkeys(r["model"] for r in rows):
            for w in args.weights:
                sel = {r["split"]: r for r in rows if r["dataset"] == name and r["model"] == model_name
                       and r["aux weight"] == w}
                if not sel:
                    continue
                wide.append({"dataset": name, "model": model_name, "aux weight": f"{w:g}",
                             "val NDCG@10": sel["validation"]["NDCG@10"], "test NDCG@10": sel["test"]["NDCG@10"],
                             "val HR@10": sel["validation"]["HR@10"], "test HR@10": sel["test"]["HR@10"]})
    best = []
    for name in args.datasets:
        for model_name in dict.fromkeys(r["model"] for r in wide):
            sel = [r for r in wide if r["dataset"] == name and r["model"] == model_name]
            if sel:
                bv = max(sel, key=lambda r: r["val NDCG@10"])
                bt = max(sel, key=lambda r: r["test NDCG@10"])
                best.append({"dataset": name, "model": model_name, "weight chosen on validation": bv["aux weight"],
                             "its test NDCG@10": bv["test NDCG@10"], "best weight on test (hindsight)":
                             bt["aux weight"], "best test NDCG@10": bt["test NDCG@10"]})
    md = ["# Auxiliary task weight vs target NDCG@10", "", C.environment_markdown(env), "",
          f"factors={args.factors}, regularization={args.regularization}, MultiTaskMF alpha={args.alpha}, "
          f"implicit alpha={args.als_alpha}, iterations={C.ITERATIONS}, threads={C.THREADS}.", "",
          C.markdown_table(wide, ["dataset", "model", "aux weight", "val NDCG@10", "test NDCG@10", "val HR@10",
                                  "test HR@10"]), "",
          C.markdown_table(best, ["dataset", "model", "weight chosen on validation", "its test NDCG@10",
                                  "best weight on test (hindsight)", "best test NDCG@10"]), "",
          f"Total wall time {total / 60:.1f} min."]
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "task_weights.png")
    plot(rows, args, png)
    md.append(f"\n![task weights]({os.path.basename(png)})")
    C.write_outputs(args.out, "task_weights", "\n".join(md),
                    {"environment": env, "args": vars(args), "rows": rows, "total_seconds": total})


def plot(rows, args, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.datasets), figsize=(5.5 * len(args.datasets), 4), squeeze=False)
    for ax, name in zip(axes[0], args.datasets):
        for model_name in dict.fromkeys(r["model"] for r in rows):
            for split, style in (("validation", "--"), ("test", "-")):
                sel = sorted((r for r in rows if r["dataset"] == name and r["model"] == model_name
                              and r["split"] == split), key=lambda r: r["aux weight"])
                if sel:
                    ax.plot([r["aux weight"] for r in sel], [r["NDCG@10"] for r in sel], style, marker="o",
                            label=f"{model_name} ({split})")
        ax.set_xscale("log")
        ax.set_xlabel("auxiliary task weight")
        ax.set_ylabel("target NDCG@10")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
