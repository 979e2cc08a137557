"""How MultiTaskMF's defaults were chosen: candidate settings on validation splits only, leave-one-dataset-out.

Every candidate is a change from the shipped defaults (``MultiTaskMF(tasks=[Task(b) for b in behaviours])``, the
MovieLens rating tasks with their own kinds). It is fitted on each dataset's validation split (carved from the
training data as the test split was, ``_common.load_bench`` / ``protocol_validation``: Tmall's own validation
file, Beibei's highest-index buy per user, MovieLens with :data:`MOVIELENS_HOLDOUT` pairs per user by time; the test
split is never read) and scored by NDCG@10 of the target. Besides MovieLens, Beibei and Tmall, two synthetic sets
with planted factors (``_common.SYNTHETIC``) take part: views and buys from the same factors, where transfer helps,
and from independent ones, where it can only hurt. Scores are divided by the best candidate's on the same dataset,
so that datasets weigh alike.

Leave-one-dataset-out: for each dataset D, the candidate with the best mean relative score on the *other* datasets
is the one a user of D would have been handed; its relative score on D says how well choosing on other data
transfers. The table also prints each candidate's mean over all datasets.

Usage::

    python benchmarks/defaults.py --data-dir ../shared/datasets                 # all candidate sets
    python benchmarks/defaults.py --data-dir ../shared/datasets --sets base reg
"""
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

#: candidate sets: name -> list of (label, estimator overrides, implicit-task overrides)
CANDIDATES = {
    "base": [("shipped defaults", {}, {})],
    "reg": [(f"regularization={r:g}, negative_regularization=0", {"regularization": r, "negative_regularization": 0.0},
             {}) for r in (1.0, 10.0, 30.0)],
    "alpha": [(f"alpha={a:g}", {}, {"alpha": a}) for a in (3.0, 10.0)],
    "cross": [("cross_per_item=True", {"cross_per_item": True}, {}),
              ("cross_per_user=False", {"cross_per_user": False}, {}),
              ("cross_regularization=30", {"cross_regularization": 30.0}, {})],
    "cross+": [("cross_per_item=True, private_factors=0 (the defaults until bf5d673)",
                {"cross_per_item": True, "private_factors": 0}, {}),
               ("cross_per_user=False, private_factors=0", {"cross_per_user": False, "private_factors": 0}, {}),
               ("regularization=10, negative_regularization=0, private_factors=0",
                {"regularization": 10.0, "negative_regularization": 0.0, "private_factors": 0}, {})],
    "dtype": [("dtype=float64", {"dtype": "float64"}, {})],
    "item_bias": [("item_bias=True", {}, {"item_bias": True})],
    "evidence": [(f"evidence_negative_weight={e:g}", {}, {"evidence_negative_weight": e}) for e in (0.1, 1.0)],
    "head": [(f"head_regularization={h:g}", {"head_regularization": h}, {}) for h in (100.0, 1000.0, 10000.0)],
    # private_factors="auto" sizes each task's block by the share of its pairs no other task observes; these give
    # every task the same block (8: the rule until the coverage rule)
    "private": [(f"private_factors={n} (every task)", {"private_factors": n}, {}) for n in (0, 4, 8, 12)],
    "negative": [(f"negative_regularization={r:g}", {"negative_regularization": r}, {}) for r in (0.0, 3e-4, 1e-3)],
    "combined": [(f"regularization={r:g}, negative_regularization=0, alpha=3",
                  {"regularization": r, "negative_regularization": 0.0}, {"alpha": 3.0}) for r in (3.0, 10.0)],
    "negative+": [(f"negative_regularization={r:g}, alpha={a:g}", {"negative_regularization": r}, {"alpha": a})
                  for r, a in ((2e-4, 1.0), (1e-4, 3.0), (2e-4, 3.0))],
    "previous": [("previous defaults (before issue 13)", {"negative_regularization": 0.0, "row_regularization": 0.0,
                                                          "bias_regularization": None, "dtype": "float64",
                                                          "cross_per_item": True, "private_factors": 0}, {})],
    "row": [(f"row_regularization={r:g}", {"row_regularization": r}, {}) for r in (0.0, 0.01, 0.03)],
    # alpha from the data (Task(alpha="auto")): the positives' extra confidence is this share of the negative mass
    "auto_alpha": [(f"alpha auto, mass {m:g}", {}, {"alpha_mass": m}) for m in (0.003, 0.01, 0.015, 0.02, 0.03)]
    + [(f"alpha auto, mass 0.01, {lab}", prm, {"alpha_mass": 0.01}) for lab, prm in (
        ("regularization=10, negative_regularization=0", {"regularization": 10.0, "negative_regularization": 0.0}),
        ("negative_regularization=3e-4", {"negative_regularization": 3e-4}),
        ("private_factors=12", {"private_factors": 12}))],
    # each task's weight from its share of the observations: weight_t = (nnz_t / max_b nnz_b) ** power, so that a
    # task with few observations (Tmall's 2k carts against 221k collects) no longer has the same loss mass as a dense
    # one (with alpha="auto" every implicit task's loss totals about the same mass)
    "task_weight": [(f"task weights (nnz share) ** {g:g}", {}, {"weight_power": g}) for g in (0.25, 0.5, 1.0, -0.25, -0.5)],
    # the prior on the per-user (and per-item) cross-task deviations, in observations: lower lets a user's own
    # conversion of carts / collects into purchases depart sooner from the shared weight
    "cross_prior": [(f"cross_regularization={r:g}", {"cross_regularization": r}, {}) for r in (1.0, 3.0, 30.0)],
    "sweeps": [("iterations=25", {"iterations": 25}, {}), ("cg_steps=6", {"cg_steps": 6}, {})],
    # issue 13's "learned weight on log counts": the target's log(1 + training count) per item as the target's
    # item feature (Task(item_feature=...), one weight), against the free item bias of the "item_bias" set
    "item_feature": [("target's log counts as its item feature", {}, {"popularity_feature": True})],
    # the reference ALS's own confidence and penalty (alpha=10, regularization 0.1) and steps towards it
    # a ceiling on alpha="auto": a task with very few observations (Tmall's 2k carts) gets alpha in the thousands, so
    # each of its pairs weighs as much as thousands of negatives in the shared factors
    "alpha_cap": [(f"alpha auto, at most {c:g}", {}, {"alpha_cap": c}) for c in (100.0, 300.0, 1000.0)],
    # popularity-weighted negatives (He et al. 2016): an unobserved pair weighs w0 s_i, s_i ~ (1 + users of i) ** beta
    # (shipped: 0.25)
    "popularity": [(f"negative_popularity={b:g}", {"negative_popularity": b}, {})
                   for b in (0.0, 0.1, 0.5, 0.75, 1.0)],
    # with a learned popularity term (whole-data item biases) that can put back the popularity the weights take out
    "popularity_bias": [(f"negative_popularity={b:g}, item_bias=True", {"negative_popularity": b},
                         {"item_bias": True}) for b in (0.25, 0.5, 0.75, 1.0)],
    "confidence": [(f"alpha={a:g}, regularization={r:g}, negative_regularization={n:g}",
                    {"regularization": r, "negative_regularization": n}, {"alpha": a})
                   for a, r, n in ((10.0, 0.1, 0.0), (10.0, 1.0, 0.0), (10.0, 0.01, 1e-5), (3.0, 0.01, 3e-5))],
}

#: MovieLens validation holds out the last MOVIELENS_HOLDOUT ratings per user (not one): 610 users and one pair each
#: gave differences of 30% between neighbouring settings, noise rather than signal
MOVIELENS_HOLDOUT = 5


def validation(bench):
    """(train, held-out pairs) of the validation split used here."""
    if bench.name != "movielens":
        return bench.val_train, bench.val_test
    others = [t for t in bench.train.task_names if t != bench.target]
    vtrain, vtest, _ = C.carve_validation(bench.train, bench.target, by_time=True, drop_from=others,
                                          n_holdout=MOVIELENS_HOLDOUT)
    return vtrain, vtest


def with_popularity_feature(data, target):
    """``data`` with the target's log(1 + training count) per item as a 1-column item side matrix."""
    counts = np.log1p(np.asarray((data.matrices[target] > 0).sum(axis=0)).ravel())
    return data.with_side(item_side={"target_popularity": (counts[:, None], ["log_count"])})


def make_model(bench, data, params, task_params):
    """The candidate's estimator; ``task_params["alpha_mass"]`` sets each implicit task's alpha by the rule of
    ``Task(alpha="auto")`` with that share of the negative mass; ``"popularity_feature"`` gives the target the
    item feature of :func:`with_popularity_feature` (fit it on that data)."""
    from mtl_classic import MultiTaskMF
    from mtl_classic.tasks import auto_alpha
    task_params = dict(task_params)
    mass = task_params.pop("alpha_mass", None)
    power = task_params.pop("weight_power", None)
    feature = task_params.pop("popularity_feature", False)
    cap = task_params.pop("alpha_cap", None)
    tasks = C.shipped_tasks(bench, data.task_names, **task_params)
    if feature:
        for t in tasks:
            if t.name == bench.target:
                t.item_feature = "target_popularity"
    if power is not None:
        top = max(data.matrices[t.name].nnz for t in tasks)
        for t in tasks:
            t.weight = (data.matrices[t.name].nnz / top) ** power
    if mass is not None or cap is not None:
        for t in tasks:
            if t.kind == "implicit":
                t.alpha = auto_alpha(float(data.matrices[t.name].sum()), data.n_users, data.n_items,
                                     t.negative_weight, **({} if mass is None else {"mass": mass}))
                t.alpha = t.alpha if cap is None else min(t.alpha, cap)
    return MultiTaskMF(tasks=tasks, random_state=0, n_jobs=C.THREADS, **params)


def lodo(table, labels, datasets):
    """Leave-one-dataset-out choice per dataset and its relative score there."""
    rel = {d: {lab: table[lab][d] / max(table[x][d] for x in labels) for lab in labels} for d in datasets}
    out = {}
    for d in datasets:
        others = [o for o in datasets if o != d]
        pick = max(labels, key=lambda lab: np.mean([rel[o][lab] for o in others]))
        out[d] = {"chosen": pick, "relative": rel[d][pick]}
    return rel, out


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0], datasets=("movielens", "beibei", "tmall", *C.SYNTHETIC))
    p.add_argument("--sets", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = p.parse_args(argv)
    cands = [c for s in args.sets for c in CANDIDATES[s]]
    if not any(label == "shipped defaults" for label, _, _ in cands):
        cands = CANDIDATES["base"] + cands
    labels = [c[0] for c in cands]
    table, seconds = {lab: {} for lab in labels}, {lab: {} for lab in labels}
    start = time.perf_counter()
    for name in args.datasets:
        bench = C.load_bench(name, args.data_dir)
        vtrain, vtest = validation(bench)
        for label, params, task_params in cands:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # dropped cross tasks are reported by quality.py
                fit_data = with_popularity_feature(vtrain, bench.target) if task_params.get("popularity_feature") \
                    else vtrain
                model = make_model(bench, vtrain, params, task_params).fit(fit_data)
            seconds[label][name] = time.perf_counter() - t0
            table[label][name] = C.evaluate(model, vtrain, vtest, bench.target)["ndcg@10"]
            C.log(f"[{name}] {label}: val NDCG@10 {table[label][name]:.4f} ({seconds[label][name]:.1f}s)")
    rel, choice = lodo(table, labels, args.datasets)
    rows = []
    for lab in labels:
        row = {"candidate": lab}
        for d in args.datasets:
            row[d] = f"{table[lab][d]:.4f} ({rel[d][lab]:.3f})"
        row["mean relative"] = float(np.mean([rel[d][lab] for d in args.datasets]))
        rows.append(row)
    cols = ["candidate", *args.datasets, "mean relative"]
    md = ["# Choosing the defaults on validation splits", "", C.environment_markdown(C.environment()), "",
          "Validation NDCG@10 of the target (relative to the best candidate on that dataset). Each candidate changes "
          "one thing from the shipped defaults (factors=64, 15 sweeps, random_state=0).", "",
          C.markdown_table(rows, cols), "", "Leave-one-dataset-out: the candidate chosen on the other datasets, and "
          "its relative score on the one left out:", "",
          C.markdown_table([{"left out": d, "chosen on the others": c["chosen"], "relative there": c["relative"]}
                            for d, c in choice.items()], ["left out", "chosen on the others", "relative there"]),
          "", f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    payload = {"args": vars(args), "candidates": [{"label": lab, "params": prm, "task_params": tp}
                                                  for lab, prm, tp in cands],
               "val_ndcg@10": table, "fit_seconds": seconds, "relative": rel, "lodo": choice}
    C.write_outputs(args.out, "defaults", "\n".join(md), payload)


if __name__ == "__main__":
    main()
