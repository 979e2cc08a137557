"""Users per second for batched top-10 over the full Tmall catalogue: our inference path against implicit's recommend.

Both rank every item for every user and remove the user's training purchases; they use the same factors (ours),
the same number of threads and float32 or float64 alike where stated:

* ``InferenceModel.recommend`` (mtl_classic.inference): the full MultiTaskMF score of the ``buy`` task, i.e.
  ``(p_u * w_buy) . q_i`` plus the cross-task terms (the user's carts and collects with per-item weights);
* the same with float32 factors;
* ``MultiTaskMF.recommend``, for reference: the estimator serves ``recommend`` through the same inference path
  (``InferenceModel.from_model`` over the model's own arrays, in the model's dtype, float32 by default), so this row
  measures the estimator's overhead on top of that path, not a second implementation;
* implicit's ``AlternatingLeastSquares.recommend`` (implicit.cpu, the C++ top-k) on float32 factors
  ``user_factors = P * w_buy``, ``item_factors = Q``: the factor part of the same score, without cross-task terms;
* ``InferenceModel.recommend`` on exactly that factor-only score (cross weights dropped), float32: the like-for-like
  comparison with implicit.

``InferenceModel.recommend`` runs with its default ``blas_threads="auto"`` (BLAS at 1 thread for calls spanning
several batches, the compiled top-k on all threads); one row shows it with BLAS left at the common thread count.
implicit is timed with BLAS at the common thread count and at 1 thread (it warns about nested BLAS threads); the
ratio column compares with its faster configuration.

Data: Tmall from ``--data-dir`` (``tmall/`` via ``mtl_classic.datasets.load_pairs``); without it a synthetic catalogue
of the same size (41,738 users, 11,953 items, same number of purchases / carts / collects, random pairs).

Usage::

    python benchmarks/recommend_speed.py [--data-dir ../shared/datasets] [--threads 2] [--out benchmarks/out]
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (benchmarks/_common.py: environment record and output files)


def _synthetic(seed=0):
    from mtl_classic.data import MultiTaskData

    rng = np.random.default_rng(seed)
    n_users, n_items = 41738, 11953
    mats = {}
    for task, nnz in (("buy", 181428), ("cart", 1996), ("collect", 221514)):
        rows = rng.integers(0, n_users, nnz)
        cols = np.minimum(rng.zipf(1.3, nnz) - 1, n_items - 1)          # popularity-skewed items
        m = sp.csr_matrix((np.ones(nnz), (rows, cols)), shape=(n_users, n_items))
        m.data[:] = 1.0
        mats[task] = m
    return MultiTaskData.from_matrices(mats), "synthetic catalogue of Tmall's size (random pairs)"


def _one_blas_thread(fn):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return fn()


def _load(data_dir):
    path = os.path.join(data_dir, "tmall") if data_dir else None
    if path and os.path.isdir(path):
        from mtl_classic.datasets import load_pairs
        ds = load_pairs(path)
        return ds.data, f"Tmall ({path}), training files"
    return _synthetic()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=_common.DEFAULT_DATA_DIR, help="directory holding tmall/ (optional)")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--users", type=int, default=None, help="rank only this many users (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", default=_common.DEFAULT_OUT)
    args = p.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from mtl_classic.inference import InferenceModel
    from mtl_classic.model import MultiTaskMF
    from mtl_classic.tasks import Task

    data, source = _load(args.data_dir)
    tasks = [Task("buy"), Task("cart", weight=0.3), Task("collect", weight=0.3)]
    data = data.subset_tasks([t.name for t in tasks])
    _common.log(f"data: {source}: {data.n_users} users, {data.n_items} items")
    model = MultiTaskMF(tasks=tasks, factors=args.factors, iterations=args.iterations, n_jobs=args.threads,
                        random_state=0).fit(data)
    _common.log(f"fitted MultiTaskMF in {model.fit_time_:.1f}s")
    users = np.arange(data.n_users) if args.users is None else np.arange(min(args.users, data.n_users))
    user_ids = data.user_map.external(users)
    seen = data.matrices["buy"]
    t = model.task_index_["buy"]

    inf64 = InferenceModel.from_model(model, dtype="float64")
    inf32 = InferenceModel.from_model(model, dtype="float32")
    factors_only = dataclasses.replace(inf32.params, cross_weights=np.zeros_like(inf32.params.cross_weights),
                                       cross_item_weights=None, cross_user_weights=None)
    plain = InferenceModel(inf32.tasks, inf32.user_ids, inf32.item_ids, factors_only, inf32.patterns,
                           inf32.popularity)
    from implicit.cpu.als import AlternatingLeastSquares
    als = AlternatingLeastSquares(factors=args.factors, num_threads=args.threads, dtype=np.float32)
    als.user_factors = np.ascontiguousarray((model.user_factors_ * model.head_weights_[t]).astype(np.float32))
    als.item_factors = np.ascontiguousarray(model.item_factors_.astype(np.float32))
    user_items = sp.csr_matrix(seen, dtype=np.float32)[users]

    runs = [
        ("mtl_classic InferenceModel.recommend (full score, float64)",
         lambda: inf64.recommend(user_ids, n=args.n, task="buy", batch_size=args.batch_size)),
        ("mtl_classic InferenceModel.recommend (full score, float32)",
         lambda: inf32.recommend(user_ids, n=args.n, task="buy", batch_size=args.batch_size)),
        ("mtl_classic InferenceModel.recommend (factors only, float32)",
         lambda: plain.recommend(user_ids, n=args.n, task="buy", batch_size=args.batch_size)),
        ("mtl_classic InferenceModel.recommend (factors only, float32, BLAS at the common thread count)",
         lambda: plain.recommend(user_ids, n=args.n, task="buy", batch_size=args.batch_size, blas_threads=None)),
        (f"mtl_classic MultiTaskMF.recommend (full score, served by InferenceModel, {model.user_factors_.dtype})",
         lambda: model.recommend(user_ids, n=args.n, task="buy")),
        ("implicit ALS.recommend (factors only, float32)",
         lambda: als.recommend(users, user_items, N=args.n, filter_already_liked_items=True)),
        ("implicit ALS.recommend (factors only, float32, BLAS 1 thread)", lambda: _one_blas_thread(
            lambda: als.recommend(users, user_items, N=args.n, filter_already_liked_items=True))),
    ]
    rows, outputs, times = [], {}, {name: [] for name, _ in runs}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, fn in runs:
            outputs[name] = fn()                               # warm-up (JIT, caches) and the answers
        for _ in range(args.repeats):                          # round-robin: load drifts hit every method alike
            for name, fn in runs:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for name, _ in runs:
        median = float(np.median(times[name]))
        rows.append({"method": name, "seconds": median, "best_seconds": float(np.min(times[name])),
                     "users_per_second": len(users) / median})
        _common.log(f"{name}: {median:.2f}s, {len(users) / median:,.0f} users/s")
    # agreement on the like-for-like pair (same score): share of identical top-n item sets
    ours_ids = outputs["mtl_classic InferenceModel.recommend (factors only, float32)"][0]
    imp_ids = data.item_map.external(np.asarray(outputs["implicit ALS.recommend (factors only, float32)"][0]))
    same = float(np.mean([set(a) == set(b) for a, b in zip(ours_ids.tolist(), imp_ids.tolist())]))
    ref = max(r["users_per_second"] for r in rows if r["method"].startswith("implicit"))   # implicit's best
    for r in rows:
        r["vs_implicit"] = r["users_per_second"] / ref

    env = _common.environment()
    md = [f"# Batched top-{args.n} recommendation speed", "",
          f"{source}: {len(users):,} users x {data.n_items:,} items (full catalogue ranked, training purchases "
          f"filtered), MultiTaskMF buy/cart/collect with {args.factors} factors; {args.threads} threads for everyone "
          f"(BLAS, numba, implicit); batch {args.batch_size} users; median of {args.repeats} runs after a warm-up, the "
          f"methods interleaved round-robin. 1-minute load average {load_before} before, {load_after} after (other "
          f"processes share the machine: absolute numbers are noisy, the ratios less so).",
          "",
          _common.markdown_table(rows, ["method", "seconds", "users_per_second", "vs_implicit"],
                                 {"seconds": ".2f", "users_per_second": ",.0f", "vs_implicit": ".2f"}),
          "",
          "`vs_implicit` is relative to implicit's faster configuration (it warns about nested BLAS threads, so it "
          "is timed both with BLAS at the common thread count and with BLAS at 1 thread).", "",
          f"Like-for-like check: the factor-only InferenceModel ranking and implicit's give the same top-{args.n} "
          f"item set for {same:.1%} of users" + (" (float32 ties and round-off explain the rest)." if same < 1 else "."),
          "", "The full score adds the cross-task terms (sparse rows of the user's carts and collects, per-item "
          "weights) on top of the factor product; implicit has no such terms.", "", "## Environment", "",
          _common.environment_markdown(env)]
    _common.write_outputs(args.out, "recommend_speed", "\n".join(md),
                          {"rows": rows, "same_topn_share": same, "source": source, "n_users": len(users),
                           "loadavg_before": load_before, "loadavg_after": load_after, "times": times,
                           "n_items": data.n_items, "args": vars(args), "environment": env})
    return 0


if __name__ == "__main__":
    sys.exit(main())
