"""Popularity-weighted negatives on the target alone, validation splits only (a lead for issue 13, not a default).

He et al.'s element-wise ALS ("Fast matrix factorization for online recommendation with implicit feedback", SIGIR
2016) weighs each unobserved pair by its item's popularity, ``w0_i ~ pop_i ** beta``, instead of one ``w0`` for all:
a popular item the user did not take is stronger evidence against it than an obscure one. This script asks whether
that helps the target's own ranking here, before any change to the multi-task solver: a plain weighted ALS on the
target task alone (numpy, exact row solves, the Gram trick with the weighted item Gram), ``beta`` in a grid, the
negatives' total weight held at ``n_items`` (as uniform ``w0 = 1``), k=64, alpha=10, regularization 0.1, 15 sweeps
(issue 13's fixed reference ALS); ``beta = 0`` is that ALS, checked against implicit's in the same run. Scored on
the validation split of each dataset (``defaults.py``'s), the test split unread.

    python benchmarks/popularity_negatives.py --data-dir ../shared/datasets --out benchmarks/results
"""
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import defaults as D  # noqa: E402

BETAS = (0.0, 0.25, 0.5, 0.75)
FACTORS, ALPHA, REG, SWEEPS = 64, 10.0, 0.1, 15


def _half_sweep(R, F, w0, solved, reg):
    """Exact solves of every row of ``solved`` against the fixed ``F``: R (rows x cols, counts), w0 per column of R
    (``w0`` array) or per row (scalar per row: an array over rows with ``per_row``)."""
    k = F.shape[1]
    eye = reg * np.eye(k)
    indptr, indices, data = R.indptr, R.indices, R.data
    for r in range(R.shape[0]):
        lo, hi = indptr[r], indptr[r + 1]
        cols = indices[lo:hi]
        Fc = F[cols]
        conf = 1.0 + ALPHA * data[lo:hi]
        base, neg = w0(r, cols)
        A = base + eye + (Fc * (conf - neg)[:, None]).T @ Fc
        solved[r] = np.linalg.solve(A, conf @ Fc)


def weighted_als(R, beta, seed=0):
    """(P, Q) of the ALS with negative weights w0_i = n_items * pop_i ** beta / sum_j pop_j ** beta."""
    n_users, n_items = R.shape
    pop = np.asarray((R > 0).sum(axis=0)).ravel() + 1.0
    w = pop ** beta
    w = w * n_items / w.sum()
    rng = np.random.default_rng(seed)
    P = rng.normal(scale=0.01, size=(n_users, FACTORS))
    Q = rng.normal(scale=0.01, size=(n_items, FACTORS))
    Rt = sp.csr_matrix(R.T)
    for _ in range(SWEEPS):
        GQ = (Q * w[:, None]).T @ Q                       # sum_i w0_i q_i q_i^T
        _half_sweep(R, Q, lambda r, cols: (GQ, w[cols]), P, REG)
        GP = P.T @ P
        _half_sweep(Rt, P, lambda r, cols: (w[r] * GP, np.full(len(cols), w[r])), Q, REG)
    return P, Q


class _Scores:
    """Factor scores, plus ``bonus`` on the user's pairs in ``aux`` (a csr matrix) when given: ALS + aux bonus."""

    def __init__(self, P, Q, aux=None, bonus=1.0):
        self.P, self.Q, self.aux, self.bonus = P, Q, aux, bonus

    def score_items(self, task, users):
        out = self.P[users] @ self.Q.T
        if self.aux is not None:
            out += self.bonus * (self.aux[users] > 0).toarray()
        return out


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0], datasets=("movielens", "beibei", "tmall"))
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows, bonus_rows = [], []
    for name in args.datasets:
        bench = C.load_bench(name, args.data_dir)
        vtrain, vtest = D.validation(bench)
        R = sp.csr_matrix(vtrain.matrices[bench.target], dtype=np.float64)
        for beta in BETAS:
            t0 = time.perf_counter()
            P, Q = weighted_als(R, beta)
            seconds = time.perf_counter() - t0
            res = C.evaluate(_Scores(P, Q), vtrain, vtest, bench.target)
            rows.append({"dataset": name, "model": f"weighted ALS, beta={beta:g}", "val ndcg@10": res["ndcg@10"],
                         "val hr@10": res["hr@10"], "fit s": seconds})
            C.log(f"[{name}] beta={beta:g}: val NDCG@10 {res['ndcg@10']:.4f} ({seconds:.0f}s)")
            if name != "movielens":     # the reference's structure: + 1 on the user's auxiliary pairs
                aux = sum(sp.csr_matrix(vtrain.matrices[t]) for t in vtrain.task_names if t != bench.target)
                res = C.evaluate(_Scores(P, Q, aux), vtrain, vtest, bench.target)
                bonus_rows.append({"dataset": name, "model": f"weighted ALS + aux bonus 1, beta={beta:g}",
                                   "val ndcg@10": res["ndcg@10"], "val hr@10": res["hr@10"], "fit s": seconds})
                C.log(f"[{name}] beta={beta:g} + aux bonus: val NDCG@10 {res['ndcg@10']:.4f}")
        import implicit
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1, "blas"):
            als = implicit.cpu.als.AlternatingLeastSquares(factors=FACTORS, regularization=REG, alpha=ALPHA,
                                                           iterations=SWEEPS, random_state=0, num_threads=C.THREADS)
            als.fit(R, show_progress=False)
        res = C.evaluate(_Scores(np.asarray(als.user_factors), np.asarray(als.item_factors)), vtrain, vtest,
                         bench.target)
        rows.append({"dataset": name, "model": "implicit ALS (the same settings)", "val ndcg@10": res["ndcg@10"],
                     "val hr@10": res["hr@10"], "fit s": float("nan")})
        C.log(f"[{name}] implicit: val NDCG@10 {res['ndcg@10']:.4f}")
    md = ["# Popularity-weighted negatives, target alone, validation splits", "",
          C.environment_markdown(C.environment()), "",
          f"Weighted ALS on the target task only: k={FACTORS}, alpha={ALPHA:g}, regularization={REG:g}, {SWEEPS} "
          f"sweeps; unobserved pairs weigh w0_i ~ (1 + count_i) ** beta (total n_items, as w0 = 1). Validation "
          f"splits of defaults.py.", "",
          C.markdown_table(rows, ["dataset", "model", "val ndcg@10", "val hr@10", "fit s"]), "",
          "The same fits with issue 13's reference structure on the multi-behaviour sets: + 1 on the user's pairs in "
          "the auxiliary behaviours (the shipped defaults' validation scores are in defaults.md).", "",
          C.markdown_table(bonus_rows, ["dataset", "model", "val ndcg@10", "val hr@10"]), "",
          f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    C.write_outputs(args.out, "popularity_negatives", "\n".join(md), {"rows": rows, "bonus_rows": bonus_rows,
                                                                      "args": vars(args)})


if __name__ == "__main__":
    main()
