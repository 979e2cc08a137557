"""Does the validation split rank the models as the test split does? The defaults and the fixed references on both.

Every choice of issue 13 (the defaults' values, the tuner's winner) is made on a validation split carved from the
training data (``_common.load_bench``; MovieLens as in ``defaults.py``), never on the test split. That is only
sound if the validation split poses the test's problem. This script fits the shipped defaults, implicit's ALS on the
target plus 1.0 on the user's auxiliary items (k=64, alpha=10, regularization=0.1: the issue's fixed reference),
the same ALS on the target alone, and the auxiliary-first rule, on the validation training data (scored on the
validation pairs) and on the training data (scored on the test pairs). On Beibei and Tmall a third split, one
random training pair per user (the validation used before ``_common.protocol_validation``), shows what a split
that is not built like the test does to the comparison. Each split's pairs are also scored in two
parts: pairs the user has in an auxiliary task (the auxiliary evidence says "this item") and the others.

The last table divides the defaults' NDCG@10 by the best reference's on each split: when the two ratios disagree
(one above 1, one below), a choice made on validation does not carry over to the test, whatever the mechanism.

Usage::

    python benchmarks/validation_transfer.py --data-dir ../shared/datasets
"""
import os
import sys
import time
import warnings


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import defaults as D  # noqa: E402

REFERENCES = ("ALS + aux bonus, fixed", "ALS target-only, fixed", "aux-first rule")
MODELS = ("MultiTaskMF, defaults",) + REFERENCES


def make(name, bench, data):
    """An unfitted model of the comparison: the defaults, quality.py's fixed references (``_common.model_specs``)
    and its ALS with the same fixed settings on the target alone."""
    from mtl_classic.baselines import ImplicitALSRecommender

    if name == "MultiTaskMF, defaults":
        return D.make_model(bench, data, {}, {})
    if name == "ALS target-only, fixed":
        return ImplicitALSRecommender(target=bench.target, factors=64, alpha=10.0, regularization=0.1,
                                      iterations=C.ITERATIONS, num_threads=C.THREADS, random_state=0)
    return C.model_specs(bench, only=[name])[0].make()


def run_dataset(name, data_dir):
    bench = C.load_bench(name, data_dir)
    vtrain, vtest = D.validation(bench)
    splits = {"validation": (vtrain, vtest), "test": (bench.train, bench.test)}
    if name in ("beibei", "tmall"):   # the split used before the protocol's own: one random training pair per user
        rtrain, rtest, _ = C.carve_validation(bench.train, bench.target, seed=0)
        splits = {"random validation": (rtrain, rtest), **splits}
    aux = C.AUX_TASKS[name]
    out = {"shares": {}, "ndcg@10": {}, "with aux": {}, "without aux": {}, "fit_seconds": {}}
    for split, (train, pairs) in splits.items():
        parts = C.split_by_aux(train, pairs, aux)
        out["shares"][split] = float(parts[0].nnz / max(pairs.nnz, 1))
        for model_name in MODELS:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # dropped cross tasks: reported by quality.py
                model = make(model_name, bench, train).fit(train)
            key = f"{split}|{model_name}"
            out["fit_seconds"][key] = time.perf_counter() - t0
            out["ndcg@10"][key] = C.evaluate(model, train, pairs, bench.target)["ndcg@10"]
            for part_name, part in zip(("with aux", "without aux"), parts):
                out[part_name][key] = C.evaluate(model, train, part, bench.target)["ndcg@10"] if part.nnz else None
            C.log(f"[{name}] {split} {model_name}: NDCG@10 {out['ndcg@10'][key]:.4f}")
    return out


def _cell(value):
    return "-" if value is None else f"{value:.4f}"


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    start = time.perf_counter()
    results = {name: run_dataset(name, args.data_dir) for name in args.datasets}
    rows, ratios = [], []
    for name, res in results.items():
        for split in res["shares"]:
            for model_name in MODELS:
                key = f"{split}|{model_name}"
                rows.append({"dataset": name, "split": split, "model": model_name,
                             "NDCG@10": _cell(res["ndcg@10"][key]), "pairs with aux evidence": _cell(
                                 res["with aux"][key]), "pairs without": _cell(res["without aux"][key]),
                             "share with aux": f"{res['shares'][split]:.3f}"})
        ratio = {}
        for split in res["shares"]:
            best = max(REFERENCES, key=lambda m: res["ndcg@10"][f"{split}|{m}"])
            ratio[split] = (res["ndcg@10"][f"{split}|MultiTaskMF, defaults"] / res["ndcg@10"][f"{split}|{best}"],
                            best)
        res["defaults_over_best_reference"] = {s: {"ratio": r, "best reference": b} for s, (r, b) in ratio.items()}
        for split in [s_ for s_ in ratio if s_ != "test"]:
            ratios.append({"dataset": name, "validation split": split, "defaults / best reference there":
                           f"{ratio[split][0]:.3f} ({ratio[split][1]})", "on test":
                           f"{ratio['test'][0]:.3f} ({ratio['test'][1]})", "same side of 1":
                           "yes" if (ratio[split][0] >= 1) == (ratio["test"][0] >= 1) else "no"})
    cols = ["dataset", "split", "model", "NDCG@10", "pairs with aux evidence", "pairs without", "share with aux"]
    md = ["# Validation against test: do the splits rank the models alike?", "",
          C.environment_markdown(C.environment()), "",
          "NDCG@10 of the target, full ranking with the training target items filtered; validation = the split "
          "the defaults are chosen on (`defaults.py`, built as the test split was: `_common.protocol_validation`), "
          "random validation = one random training pair per user (the split used before), test = the benchmark's "
          "test split. The references use the issue's fixed settings (k=64, alpha=10, regularization=0.1).", "",
          C.markdown_table(rows, cols), "",
          "The defaults divided by the best reference on each split:", "",
          C.markdown_table(ratios, ["dataset", "validation split", "defaults / best reference there", "on test",
                                    "same side of 1"]), "",
          f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    C.write_outputs(args.out, "validation_transfer", "\n".join(md), {"args": vars(args), "datasets": results})
    return results


if __name__ == "__main__":
    main()
