"""Where the defaults lose on a validation split: the cross-task evidence terms against the shared factors.

The defaults are fitted on a dataset's validation split (``defaults.py``'s, built as the test split was; the test
split is never read) and scored three ways, each on all held-out pairs, on those with auxiliary evidence (the user
had the item in another behaviour) and on those without:

* the model as fitted;
* the factor part alone (every cross-task weight set to 0 after the fit);
* the cross-task terms scaled by 0.25-1.5 after the fit (is the squared loss's scale of the evidence the ranking's?);
* the fitted scores plus ``eta`` times the item's standardised log target popularity on evidence pairs only (does a
  popularity order among the user's auxiliary items, the auxiliary-first rule's, add anything?);
* the cross-task terms scaled per user by ``1 + theta z_u``, z_u the user's standardised log number of evidence
  items (does one carted item say more than one of fifty?).

    python benchmarks/evidence_terms.py --data-dir ../shared/datasets --datasets tmall beibei
"""
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


class _Shifted:
    """The fitted model's scores plus a fixed (users x items) term: ``extra(users) -> dense array``."""

    def __init__(self, model, extra):
        self.model, self.extra = model, extra

    def score_items(self, task, users):
        return self.model.score_items(task, users) + self.extra(users)


def _scaled(model, scale, weights):
    model.cross_weights_ = weights[0] * scale
    if weights[1] is not None:
        model.cross_user_weights_ = weights[1] * scale


def run(name, data_dir):
    from mtl_classic import MultiTaskMF
    from mtl_classic.evaluation import evaluate_ranking
    bench = C.load_bench(name, data_dir)
    train, test, target = bench.val_train, bench.val_test, bench.target
    with_aux, without = C.split_by_aux(train, test, C.AUX_TASKS[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = MultiTaskMF(tasks=C.shipped_tasks(bench), random_state=0, n_jobs=C.THREADS,
                            show_progress=False).fit(train)
    rows = []

    def score(label, m):
        vals = [evaluate_ranking(m, train, pairs, target, ks=(10,))["NDCG@10"] for pairs in (test, with_aux, without)]
        rows.append({"dataset": name, "scores": label, "all": vals[0], "with aux evidence": vals[1],
                     "without": vals[2]})
        C.log(f"[{name}] {label}: {vals[0]:.4f} / {vals[1]:.4f} / {vals[2]:.4f}")

    fp = model.fitted_params_
    weights = (fp.cross_weights.copy(), None if fp.cross_user_weights is None else fp.cross_user_weights.copy())
    score("the fitted defaults", model)
    for scale in (0.0, 0.25, 0.5, 0.75, 1.5):
        _scaled(model, scale, weights)
        score("factor part alone" if scale == 0 else f"cross-task terms x {scale:g}", model)
    _scaled(model, 1.0, weights)
    evidence = None
    for a in C.AUX_TASKS[name]:
        pattern = (train.matrices[a] > 0).astype(np.float64)
        evidence = pattern if evidence is None else evidence.maximum(pattern)
    evidence = sp.csr_matrix(evidence)
    pop = np.log1p(np.asarray((train.matrices[target] > 0).sum(axis=0)).ravel())
    pop = (pop - pop.mean()) / pop.std()
    for eta in (0.02, 0.05, 0.1):
        score(f"+ {eta:g} x log popularity on evidence pairs",
              _Shifted(model, lambda users, eta=eta: eta * evidence[users].toarray() * pop[None, :]))
    n_evidence = np.log1p(np.asarray(evidence.sum(axis=1)).ravel())
    z = (n_evidence - n_evidence.mean()) / max(n_evidence.std(), 1e-12)

    def cross_part(users):
        full = model.score_items(target, users)
        _scaled(model, 0.0, weights)
        bare = model.score_items(target, users)
        _scaled(model, 1.0, weights)
        return full - bare

    for theta in (-0.3, -0.15, 0.15):
        score(f"cross-task terms x (1 + {theta:g} z_u), z_u: the user's evidence count",
              _Shifted(model, lambda users, theta=theta: theta * z[users][:, None] * cross_part(users)))
    return rows


def main(argv=None):
    p = C.dataset_parser(__doc__.splitlines()[0], datasets=("tmall", "beibei"))
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows = [r for name in args.datasets for r in run(name, args.data_dir)]
    md = ["# The defaults' evidence terms on the validation splits", "", C.environment_markdown(C.environment()), "",
          "Validation NDCG@10 of the target (the test split is not read), on all held-out pairs and split by "
          "auxiliary evidence; every row rescores the same fitted model.", "",
          C.markdown_table(rows, ["dataset", "scores", "all", "with aux evidence", "without"]), "",
          f"Total {(time.perf_counter() - start) / 60:.1f} min."]
    C.write_outputs(args.out, "evidence_terms", "\n".join(md), {"rows": rows, "args": vars(args)})


if __name__ == "__main__":
    main()
