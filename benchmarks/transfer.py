"""Does an auxiliary behaviour help the target through the shared factors, or only through its exact pairs?

The multi-task model can gain in two ways: its shared factors learn from the dense behaviours (transfer), and its
heads read the other behaviours' observations of the very same (user, item) pair (cross-task evidence). This
script separates the two. For every dataset with auxiliary behaviours it fits, with the configurations that
``quality.py`` chose on validation (read from its JSON):

* implicit's ALS on the target only, and MultiTaskMF on the target only;
* MultiTaskMF on all tasks (the shipped defaults, with cross-task features);
* the same without cross-task features (``cross_tasks=None``): the shared factors are the only path.

It scores the held-out pairs that are *not* in any auxiliary behaviour of the user, twice: ranked as usual, and
ranked with the user's auxiliary items removed from the candidates ("factors only": the auxiliary items can no
longer take the top slots, so what is left is the quality of the factor scores). Both the validation split
(fitted on the validation-training data) and the test split (fitted on the training data) are reported; on Beibei
every validation pair is carted, so only the test split has pairs without auxiliary evidence.

Usage::

    python benchmarks/quality.py --out benchmarks/out            # first: chooses the configurations
    python benchmarks/transfer.py --quality benchmarks/out/quality.json
"""
import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

MODELS = ["ALS target-only", "MultiTaskMF single-task", "MultiTaskMF multi-task"]
NO_CROSS = "MultiTaskMF multi-task, no cross-task features"
COLUMNS = ["dataset", "split", "model", "pairs", "NDCG@10", "HR@10", "NDCG@10 factors only", "HR@10 factors only"]


def _without_cross(model):
    """The same unfitted MultiTaskMF with every task's cross-task features switched off."""
    return model.set_params(tasks=[dataclasses.replace(t, cross_tasks=None) for t in model.tasks])


def _filter_data(data, target, aux):
    """A MultiTaskData whose target matrix holds the training target pairs and every auxiliary pair: passed to
    the evaluation as ``train``, it removes the user's auxiliary items from the ranking as well."""
    from mtl_classic import MultiTaskData
    from mtl_classic._sparse import observation_pattern

    pattern = sum(observation_pattern(data.matrices[t]) for t in [target, *aux])
    return MultiTaskData.from_matrices({target: pattern})


def run_dataset(name, chosen, args):
    bench = C.load_bench(name, args.data_dir)
    aux = C.AUX_TASKS[name]
    specs = {s.name: s for s in C.model_specs(bench)}
    splits = {"validation": (bench.val_train, bench.val_test), "test": (bench.train, bench.test)}
    rows = []
    for split, (train, held_out) in splits.items():
        _, without = C.split_by_aux(train, held_out, aux)
        if without.nnz == 0:
            C.log(f"[{name}] {split}: every held-out pair has auxiliary evidence; skipped")
            continue
        filtered = _filter_data(train, bench.target, aux)
        for label in MODELS + [NO_CROSS]:
            spec = specs[MODELS[-1] if label == NO_CROSS else label]
            params = chosen[spec.name]
            t0 = time.perf_counter()
            if label == NO_CROSS:
                model = _without_cross(spec.make(**params)).fit(train)  # the multi-task spec fits with .fit
            else:
                model = spec.fit_on(params, train)
            fit_s = time.perf_counter() - t0
            usual = C.evaluate(model, train, without, bench.target)
            factors_only = C.evaluate(model, filtered, without, bench.target)
            C.log(f"[{name}] {split} {label}: NDCG@10 {usual['ndcg@10']:.4f}, factors only "
                  f"{factors_only['ndcg@10']:.4f} (fit {fit_s:.1f}s)")
            rows.append({"dataset": name, "split": split, "model": label, "pairs": int(without.nnz),
                         "NDCG@10": usual["ndcg@10"], "HR@10": usual["hr@10"],
                         "NDCG@10 factors only": factors_only["ndcg@10"],
                         "HR@10 factors only": factors_only["hr@10"], "params": params})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["beibei", "tmall"], choices=["beibei", "tmall"])
    p.add_argument("--data-dir", default=C.DEFAULT_DATA_DIR)
    p.add_argument("--quality", default=os.path.join(C.DEFAULT_OUT, "quality.json"),
                   help="quality.py's JSON output (the configurations chosen on validation)")
    p.add_argument("--out", default=C.DEFAULT_OUT)
    args = p.parse_args(argv)
    if not os.path.exists(args.quality):
        p.error(f"{args.quality} not found: run benchmarks/quality.py first (it chooses the configurations)")
    with open(args.quality) as fh:
        quality = json.load(fh)
    env = C.environment()
    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        if name not in quality["datasets"]:
            p.error(f"{args.quality} has no results for {name}")
        chosen = {r["model"]: r["chosen"] for r in quality["datasets"][name]["results"]}
        rows += run_dataset(name, chosen, args)
    total = time.perf_counter() - start
    md = ["# Transfer through the shared factors", "", C.environment_markdown(env), "",
          f"Configurations from `{args.quality}` (chosen on validation by quality.py). Held-out pairs *without* "
          "auxiliary evidence only; \"factors only\" ranks them with the user's auxiliary items removed from the "
          "candidates.", "", C.markdown_table(rows, COLUMNS), "", f"Total wall time {total / 60:.1f} min."]
    C.write_outputs(args.out, "transfer", "\n".join(md), {"environment": env, "args": vars(args), "rows": rows,
                                                          "total_seconds": total})


if __name__ == "__main__":
    main()
