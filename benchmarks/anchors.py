"""The numbers behind the model's sanity anchors (docs/MATH.md section 2), on small seeded synthetic data.

The tests (``tests/test_model.py``) assert bounds on the same two anchors; this script has its own copy of the data
and the measurements (it imports nothing from ``tests/``), and prints and writes their values:

- one implicit task, heads fixed at 1, no biases, exact (cholesky) row solves in float64: MultiTaskMF against
  implicit's ALS from the same start (the initial factors MultiTaskMF draws from ``random_state=0``) with the same
  counts, factors, regularization and iterations. Both objectives are the Hu-Koren-Volinsky objective computed by
  this script from each model's factors (:func:`hkv_objective`); HR@10 on one held-out pair per user;
- planted shared factors: HR@10 of the joint model (dense auxiliary task + sparse target) against the target-only
  model, and the largest principal angle between the planted user subspace and the learned one.

    python benchmarks/anchors.py [--out benchmarks/results]
"""
import argparse
import os
import sys
import time

import numpy as np
import scipy.linalg as sla

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def hit_rate(scores_of, train, test, k=10):
    """HR@k of the held-out pairs ``test`` (csr), the user's ``train`` items filtered; ``scores_of(users)`` gives
    the dense score rows."""
    users = np.unique(test.nonzero()[0])
    scores = np.array(scores_of(users), dtype=float)
    scores[train[users].toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(np.take_along_axis(test[users].toarray(), top, axis=1).sum(axis=1)))


def hkv_objective(counts, alpha, reg, X, Y):
    """sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (||X||^2 + ||Y||^2), with p = 1 and c = 1 + alpha * count on the
    observed pairs, p = 0 and c = 1 elsewhere (Hu, Koren and Volinsky's weighted MF, implicit's ALS objective)."""
    S = X @ Y.T
    dense = float(np.sum(S ** 2))                                  # every pair as unobserved (c = 1, p = 0) ...
    r, c = counts.nonzero()
    s = S[r, c]
    conf = 1.0 + alpha * np.asarray(counts[r, c]).ravel()
    observed = float(np.sum(conf * (1.0 - s) ** 2) - np.sum(s ** 2))   # ... then the observed pairs corrected
    return dense + observed + reg * (float(np.sum(X ** 2)) + float(np.sum(Y ** 2)))


def implicit_comparison(seed=5):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from mtl_classic import MultiTaskData, MultiTaskMF, Task
    from mtl_classic.synthetic import planted_counts

    train, test = planted_counts(seed)
    alpha, k, reg, iters = 2.0, 8, 0.1, 15

    ours = MultiTaskMF([Task("a", alpha=alpha)], factors=k, regularization=reg, negative_regularization=0.0,
                       iterations=iters, fit_heads=False, solver="cholesky", dtype="float64", random_state=0)
    ours.fit(MultiTaskData.from_matrices({"a": train}))

    confidence = train.copy()
    confidence.data = 1.0 + alpha * confidence.data
    rng0 = np.random.default_rng(0)                  # MultiTaskMF's start for random_state=0: users, then items
    start_p = rng0.standard_normal((train.shape[0], k)) * ours.init_scale
    start_q = rng0.standard_normal((train.shape[1], k)) * ours.init_scale
    with threadpool_limits(1, "blas"):
        peer = AlternatingLeastSquares(factors=k, regularization=reg, alpha=1.0, iterations=iters, dtype=np.float64,
                                       use_cg=False, random_state=0, num_threads=1)
        peer.user_factors, peer.item_factors = start_p.copy(), start_q.copy()
        peer.fit(confidence, show_progress=False)
    P, Q = np.asarray(ours.user_factors_, float), np.asarray(ours.item_factors_, float)
    return {"ours_objective": hkv_objective(train, alpha, reg, P, Q),
            "ours_loss_history_last": float(ours.loss_history_[-1]),
            "peer_objective": hkv_objective(train, alpha, reg, peer.user_factors, peer.item_factors),
            "ours_hr": hit_rate(lambda users: P[users] @ Q.T, train, test),
            "peer_hr": hit_rate(lambda users: peer.user_factors[users] @ peer.item_factors.T, train, test),
            "settings": {"alpha": alpha, "factors": k, "regularization": reg, "iterations": iters}}


def planted_comparison():
    from mtl_classic import MultiTaskData, MultiTaskMF, Task
    from mtl_classic.synthetic import planted_aux_target

    U, aux, target, test = planted_aux_target()   # the planted data of tests/test_model.py
    joint = MultiTaskMF([Task("aux", cross_tasks=None), Task("target", cross_tasks=None)], factors=8,
                        regularization=1.0, iterations=15, random_state=0)
    joint.fit(MultiTaskData.from_matrices({"aux": aux, "target": target}))
    single = MultiTaskMF([Task("target")], factors=8, regularization=1.0, iterations=15, random_state=0)
    single.fit(MultiTaskData.from_matrices({"target": target}))
    rows = []
    for name, m in (("joint (dense aux + sparse target)", joint), ("target only", single)):
        rows.append({"model": name,
                     "target HR@10": hit_rate(lambda users: m.score_items("target", users), target, test),
                     "max principal angle to planted (deg)":
                         float(np.degrees(sla.subspace_angles(U, m.user_factors_)).max())})
    density = {"aux": aux.nnz / np.prod(aux.shape), "target": target.nnz / np.prod(target.shape)}
    return rows, density


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=C.DEFAULT_OUT)
    args = p.parse_args(argv)
    env = C.environment()
    start = time.perf_counter()
    cmp = implicit_comparison()
    gap = (cmp["ours_objective"] - cmp["peer_objective"]) / cmp["peer_objective"]
    cmp["relative_gap"] = gap
    anchor = [{"model": "MultiTaskMF (cholesky, float64)", "objective": cmp["ours_objective"],
               "HR@10 (held-out)": cmp["ours_hr"]},
              {"model": "implicit ALS (same start, data, k, reg, iterations)", "objective": cmp["peer_objective"],
               "HR@10 (held-out)": cmp["peer_hr"]}]
    rows, density = planted_comparison()
    total = time.perf_counter() - start
    md = ["# Sanity anchors", "", C.environment_markdown(env), "",
          "## One implicit task, heads fixed at 1, no biases (300 users, 200 items, seed 5)", "",
          C.markdown_table(anchor, ["model", "objective", "HR@10 (held-out)"],
                           {"objective": ".4f", "HR@10 (held-out)": ".4f"}), "",
          f"Relative objective gap (ours - implicit) / implicit: {gap:+.2e} (both objectives computed by this "
          f"script from the models' factors).", "",
          "## Planted shared factors (400 users, 300 items, rank 3)", "",
          C.markdown_table(rows, ["model", "target HR@10", "max principal angle to planted (deg)"],
                           {"target HR@10": ".4f", "max principal angle to planted (deg)": ".1f"}), "",
          f"Density: aux {density['aux']:.3f}, target {density['target']:.4f}.", "",
          f"Total wall time {total:.1f} s."]
    C.write_outputs(args.out, "anchors", "\n".join(md),
                    {"environment": env, "implicit_comparison": cmp, "planted": rows, "density": density,
                     "total_seconds": total})


if __name__ == "__main__":
    main()
