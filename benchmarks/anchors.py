"""Print the numbers behind the model's sanity anchors (docs/MATH.md section 2), on the same data the tests use.

The tests in ``tests/test_model.py`` assert bounds on these numbers; this script shows their values:

- one implicit task, heads fixed at 1: our objective and HR@10 against implicit's ALS on the same data and settings;
- planted shared factors: HR@10 of the joint model vs the target-only model on a sparse target, and the largest
  principal angle between the planted user subspace and the learned one.

    python benchmarks/anchors.py
"""
import os
import sys

import numpy as np
import scipy.linalg as sla

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from mtl_classic import MultiTaskData, MultiTaskMF, Task  # noqa: E402
from test_model import _hit_rate, _planted, implicit_als_comparison  # noqa: E402


def main():
    cmp = implicit_als_comparison()
    print("| one implicit task, heads fixed | objective | HR@10 (held-out) |")
    print("|---|---|---|")
    print(f"| MultiTaskMF (cholesky) | {cmp['ours_objective']:.2f} | {cmp['ours_hr']:.4f} |")
    print(f"| implicit ALS (same data, k, reg, iterations) | {cmp['peer_objective']:.2f} | {cmp['peer_hr']:.4f} |")
    gap = (cmp['ours_objective'] - cmp['peer_objective']) / cmp['peer_objective']
    print(f"\nrelative objective gap (ours - implicit) / implicit: {gap:+.4%}\n")

    U, aux, target, test = _planted()
    joint = MultiTaskMF([Task("aux", cross_tasks=None), Task("target", cross_tasks=None)], factors=8,
                        regularization=1.0, iterations=15, random_state=0)
    joint.fit(MultiTaskData.from_matrices({"aux": aux, "target": target}))
    single = MultiTaskMF([Task("target")], factors=8, regularization=1.0, iterations=15, random_state=0)
    single.fit(MultiTaskData.from_matrices({"target": target}))
    print("| planted factors (400 users, 300 items, rank 3) | target HR@10 | max principal angle to planted |")
    print("|---|---|---|")
    for name, m in (("joint (dense aux + sparse target)", joint), ("target only", single)):
        angle = np.degrees(sla.subspace_angles(U, m.user_factors_)).max()
        print(f"| {name} | {_hit_rate(m, 'target', target, test):.4f} | {angle:.1f} deg |")
    print(f"\ndensity: aux {aux.nnz / np.prod(aux.shape):.3f}, target {target.nnz / np.prod(target.shape):.4f}")


if __name__ == "__main__":
    main()
