"""Side-task weights on validation splits only (issue 18's open item: a default weight for side tasks).

Each side matrix of ``side.py`` (genres, tags, each movie's log rating count as a uniform item-level target with an
intercept, the same count as a regression side task) is fitted next to the shipped MovieLens tasks at a grid of task
weights, on the validation split of ``defaults.py`` (each user's last five training ratings by time; the test split
is not read), averaged over three model seeds. The genre matrix's cold start is scored on three cold-movie draws of
the *training* data (seeds 100-102, not the draws ``side.py`` reports), and the planted side matrices of ``side.py``
(attributes that carry the item factors, or noise) on their own hold-out. Printed next to each side matrix: the
quantities a data-derived rule could use (its squared-value mass per shared row against the pair tasks'). The first
row of each side matrix is the default, ``weight="auto"``, with the weight it resolved to (cold draws: each draw's).

    python benchmarks/side_weights.py --out benchmarks/results
"""
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import defaults as D  # noqa: E402
import side as S  # noqa: E402

WEIGHTS = ("auto", 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
SEEDS = (0, 1, 2)
COLD_SEEDS = (100, 101, 102)


def _fit(tasks, data, seed):
    from mtl_classic import MultiTaskMF
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return MultiTaskMF(tasks=tasks, random_state=seed, n_jobs=C.THREADS, show_progress=False).fit(data)


def _shown(w, model):
    """A weight as the tables show it: a number, or "auto (the fitted weights)"."""
    if not isinstance(w, str):
        return w
    return "auto (" + ", ".join(f"{t.name} {t.weight:.2g}" for t in model.side_tasks_) + ")"


def _side_sets(bench, data, genre_pairs, tag_pairs):
    """label -> (side tasks as functions of the weight, user_side, item_side) on ``data``."""
    from mtl_classic import Task
    counts = np.log1p(np.asarray((data.matrices[bench.target] > 0).sum(axis=0)).ravel())
    count_side = {"ratings": (counts[:, None], ["log_ratings"])}
    return {
        "genres": (lambda w: [Task("genre", side="item", weight=w)], {}, {"genre": genre_pairs}),
        "tags": (lambda w: [Task("tag", side="user", weight=w)], {"tag": tag_pairs}, {}),
        "genres and tags": (lambda w: [Task("genre", side="item", weight=w), Task("tag", side="user", weight=w)],
                            {"tag": tag_pairs}, {"genre": genre_pairs}),
        "log ratings (uniform, intercept)": (lambda w: [Task("ratings", side="item", biases=True, weight=w)], {},
                                             count_side),
        "log ratings (regression, intercept)": (
            lambda w: [Task("ratings", side="item", kind="regression", biases=True, weight=w)], {}, count_side),
    }


def pair_mass(data, tasks):
    """Per user and per item: the pair tasks' linear mass (observations plus the confidence beyond 1, implicit tasks
    at their auto alpha; observed entries for the others) divided by the shared side's row count."""
    from mtl_classic.tasks import auto_alpha
    total = 0.0
    for t in tasks:
        m = data.matrices[t.name]
        if t.kind == "implicit":
            total += m.nnz + auto_alpha(float(m.sum()), data.n_users, data.n_items) * float(m.sum())
        else:
            total += m.nnz
    return total / data.n_users, total / data.n_items


def warm(bench, genre_pairs, tag_pairs):
    vtrain, vtest = D.validation(bench)
    base = C.shipped_tasks(bench, vtrain.task_names)
    rows = []
    ref = np.mean([C.evaluate(_fit(base, vtrain, s), vtrain, vtest, bench.target)["ndcg@10"] for s in SEEDS])
    rows.append({"side matrix": "none", "weight": None, "val ndcg@10": ref, "vs none": 1.0})
    C.log(f"[warm] none: {ref:.4f}")
    per_user, per_item = pair_mass(vtrain, base)
    masses = {}
    for label, (make, user_side, item_side) in _side_sets(bench, vtrain, genre_pairs, tag_pairs).items():
        data = vtrain.with_side(user_side=user_side, item_side=item_side)
        masses[label] = {name: float((m.matrix.multiply(m.matrix)).sum())
                         / (per_user * m.matrix.shape[0] if m.side == "user" else per_item * m.matrix.shape[0])
                         for name, m in data.side.items()}
        for w in WEIGHTS:
            models = [_fit(base + make(w), data, s) for s in SEEDS]
            score = np.mean([C.evaluate(m, vtrain, vtest, bench.target)["ndcg@10"] for m in models])
            rows.append({"side matrix": label, "weight": _shown(w, models[0]), "val ndcg@10": score,
                         "vs none": score / ref})
            C.log(f"[warm] {label} weight {_shown(w, models[0])}: {score:.4f} ({score / ref:.3f})")
    return rows, masses


def cold(bench, genre_pairs):
    """Genre cold start on cold-movie draws of the training data (each draw's cold movies leave training entirely)."""
    from mtl_classic import Task
    train = bench.train
    target = train.matrices[bench.target]
    rows = []
    for w in WEIGHTS:
        scores, shown = [], []
        for seed in COLD_SEEDS:
            _, cold_items, wtrain, _ = S._cold_split(bench.target, seed, data=train)
            data = wtrain.with_side(item_side={"genre": genre_pairs})
            model = _fit(C.shipped_tasks(bench, wtrain.task_names) + [Task("genre", side="item", weight=w)], data, 0)
            shown.append(model.side_tasks_[0].weight)
            G_cold = S._cold_genres(genre_pairs, data.side["genre"].columns, train.item_map.ids[cold_items])
            q_new, _ = model.fold_in_items({"genre": G_cold})
            relevant = target[:, cold_items]
            users = np.flatnonzero(np.diff(relevant.indptr) > 0)
            t = model.task_index_[bench.target]
            s = model.user_factors_[users].astype(np.float64) @ (model.head_weights_[t] * q_new).T
            scores.append(S._ranking_metrics(s, (relevant[users] > 0).astype(float))[1])
        shown = w if not isinstance(w, str) else "auto (" + " / ".join(f"{x:.2g}" for x in shown) + ")"
        rows.append({"weight": shown, "cold ndcg@10 (mean of draws)": float(np.mean(scores)),
                     "draws": ", ".join(f"{x:.4f}" for x in scores)})
        C.log(f"[cold] weight {shown}: {np.mean(scores):.4f}")
    return rows


def cold_users(bench, tag_pairs):
    """Tag cold start: half of the taggers (draws 100-102 of the training data) leave training entirely, are folded
    in from their tags alone and rank every movie against their training ratings."""
    from mtl_classic import MultiTaskData, Task
    train = bench.train
    taggers = train.user_map.index(np.unique(tag_pairs["userId"]).astype(object), unknown="ignore")
    taggers = np.sort(taggers[taggers >= 0])
    rows = []
    for w in WEIGHTS:
        scores, shown = [], []
        for seed in COLD_SEEDS:
            cold = np.sort(np.random.default_rng(seed).choice(taggers, size=len(taggers) // 2, replace=False))
            warm_users = np.setdiff1d(np.arange(train.n_users), cold)
            wtrain = MultiTaskData.from_matrices({t: sp.csr_matrix(m[warm_users]) for t, m in train.matrices.items()},
                                                 user_ids=train.user_map.ids[warm_users], item_ids=train.item_map.ids)
            data = wtrain.with_side(user_side={"tag": tag_pairs})
            model = _fit(C.shipped_tasks(bench, wtrain.task_names) + [Task("tag", side="user", weight=w)], data, 0)
            shown.append(model.side_tasks_[0].weight)
            ids, columns = train.user_map.ids[cold], data.side["tag"].columns
            pairs = tag_pairs[tag_pairs["userId"].isin(ids) & tag_pairs["tag"].isin(columns.ids)]
            T_cold = sp.csr_matrix((np.ones(len(pairs)), (pd.Index(ids).get_indexer(pairs["userId"]),
                                                          columns.index(pairs["tag"].to_numpy(dtype=object)))),
                                   shape=(len(cold), len(columns)))
            T_cold.sum_duplicates()
            p_new = model.fold_in({"tag": T_cold})[0]
            relevant = (train.matrices[bench.target][cold] > 0).astype(float)
            keep = np.asarray(relevant.sum(axis=1)).ravel() > 0
            t = model.task_index_[bench.target]
            s = p_new[keep] @ (model.head_weights_[t] * model.item_factors_.astype(np.float64)).T
            scores.append(S._ranking_metrics(s, relevant[keep])[1])
        shown = w if not isinstance(w, str) else "auto (" + " / ".join(f"{x:.2g}" for x in shown) + ")"
        rows.append({"weight": shown, "cold users ndcg@10 (mean of draws)": float(np.mean(scores)),
                     "draws": ", ".join(f"{x:.4f}" for x in scores)})
        C.log(f"[cold users] weight {shown}: {np.mean(scores):.4f}")
    return rows


def synthetic(seed=0, n_users=2000, n_items=1000, k=8, n_attrs=40, density=0.003):
    """``side.synthetic``'s planted data at each weight (warm hold-out NDCG@10 only)."""
    from mtl_classic import MultiTaskData, Task
    from mtl_classic.data.splits import random_holdout
    rng, Q, buy, G = S.planted(seed, n_users, n_items, k, n_attrs, density)
    split = random_holdout(MultiTaskData.from_matrices({"buy": buy}), "buy", test_fraction=0.2, random_state=seed)
    ref = C.evaluate(_fit([Task("buy")], split.train, 0), split.train, split.test, "buy")["ndcg@10"]
    rows = [{"side matrix": "none", "weight": None, "ndcg@10": ref, "vs none": 1.0}]
    cold_items, warm_items = np.arange(n_items - n_items // 10, n_items), np.arange(n_items - n_items // 10)
    relevant = buy[:, cold_items]
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    rows[0]["cold items ndcg@10"] = S._ranking_metrics(np.random.default_rng(seed + 1).random(
        (len(users), len(cold_items))), relevant[users])[1]
    warm_train = MultiTaskData.from_matrices({"buy": sp.csr_matrix(buy[:, warm_items])})
    for label, source in (("attributes from the item factors", Q),
                          ("attributes from independent factors (noise)", rng.normal(size=(n_items, k)))):
        attrs = sp.csr_matrix((source @ G.T > 1.5).astype(float))
        data = split.train.with_side(item_side={"attr": (attrs, [f"a{j}" for j in range(n_attrs)])})
        warm_data = warm_train.with_side(item_side={"attr": (sp.csr_matrix(attrs[warm_items]),
                                                              [f"a{j}" for j in range(n_attrs)])})
        for w in WEIGHTS:
            model = _fit([Task("buy"), Task("attr", side="item", weight=w)], data, 0)
            ndcg = C.evaluate(model, split.train, split.test, "buy")["ndcg@10"]
            cold_model = _fit([Task("buy"), Task("attr", side="item", weight=w)], warm_data, 0)
            q_new, _ = cold_model.fold_in_items({"attr": sp.csr_matrix(attrs[cold_items])})
            cold_scores = cold_model.user_factors_[users].astype(np.float64) @ (cold_model.head_weights_[0] * q_new).T
            cold_ndcg = S._ranking_metrics(cold_scores, relevant[users])[1]
            rows.append({"side matrix": label, "weight": _shown(w, model), "ndcg@10": ndcg, "vs none": ndcg / ref,
                         "cold items ndcg@10": cold_ndcg})
            C.log(f"[synthetic] {label} weight {_shown(w, model)}: {ndcg:.4f} ({ndcg / ref:.3f}), cold {cold_ndcg:.4f}")
    return rows


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0], datasets=("movielens",))
    args = p.parse_args(argv)
    start = time.perf_counter()
    bench = C.load_bench("movielens", args.data_dir)
    genre_pairs, tag_pairs = S.side_frames(bench.train.item_map.ids)
    warm_rows, masses = warm(bench, genre_pairs, tag_pairs)
    cold_rows = cold(bench, genre_pairs)
    user_rows = cold_users(bench, tag_pairs)
    synthetic_rows = synthetic()
    mass_lines = [f"- {label}: " + ", ".join(f"{name} {value:.4g}" for name, value in m.items())
                  for label, m in masses.items()]
    env = C.environment()
    md = ["# Side-task weights on validation (issue 18)", "", C.environment_markdown(env), "",
          f"## Warm: MovieLens validation (last {D.MOVIELENS_HOLDOUT} training ratings per user), mean of model "
          f"seeds {SEEDS}", "",
          C.markdown_table(warm_rows, ["side matrix", "weight", "val ndcg@10", "vs none"], {"weight": "g"}), "",
          "Squared-value mass of each side matrix per shared row, over the pair tasks' mass per row:", "",
          *mass_lines, "",
          f"## Cold movies from genres: draws {COLD_SEEDS} of the training data, model seed 0", "",
          C.markdown_table(cold_rows, ["weight", "cold ndcg@10 (mean of draws)", "draws"], {"weight": "g"}), "",
          f"## Cold users from tags: half of the taggers (draws {COLD_SEEDS} of the training data), model seed 0", "",
          C.markdown_table(user_rows, ["weight", "cold users ndcg@10 (mean of draws)", "draws"], {"weight": "g"}), "",
          "## Synthetic (side.py's planted data): warm hold-out, and the last tenth of the items cold (folded in "
          "from their attributes; \"none\": a seeded random order)", "",
          C.markdown_table(synthetic_rows, ["side matrix", "weight", "ndcg@10", "vs none", "cold items ndcg@10"],
                           {"weight": "g"}), "",
          f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    C.write_outputs(args.out, "side_weights", "\n".join(md),
                    {"warm": warm_rows, "masses": masses, "cold": cold_rows, "cold_users": user_rows,
                     "synthetic": synthetic_rows,
                     "args": vars(args)})


if __name__ == "__main__":
    main()
