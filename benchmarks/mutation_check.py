"""Deliberate breaks of the math, one at a time, and the tests that catch each (issue 17's mutation check).

Each mutation replaces one line of the package in a fresh ``git worktree`` of HEAD (the working tree is never
touched), runs the whole suite there and lists the failing tests. Every mutation must turn at least one test red;
the script exits 1 otherwise.

    python benchmarks/mutation_check.py [--out benchmarks/results]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: name -> (file, original text, broken text)
MUTATIONS = {
    "score formula: head weights dropped (FittedParams.score_block)": (
        "mtl_classic/params.py",
        "scores = (self.user_factors[users] * self.head_weights[t]) @ self.item_factors.T",
        "scores = self.user_factors[users] @ self.item_factors.T"),
    "Gram term: whole-data negatives left out of A0 (terms._dense_term)": (
        "mtl_classic/solver/terms.py",
        "            A0 += task.weight * task.negative_weight * (w[:, None] * gram * w[None, :])",
        "            A0 += 0.0 * task.weight * task.negative_weight * (w[:, None] * gram * w[None, :])"),
    "seen filter: ranking.rank masks nothing": (
        "mtl_classic/ranking.py",
        "            for matrix in seen:\n                if len(b_known) == len(rows):",
        "            for matrix in seen[:0]:\n                if len(b_known) == len(rows):"),
    "logistic bound: working target doubled (heads.logistic_bound)": (
        "mtl_classic/heads.py",
        "    z = (np.asarray(y, dtype=float) - 0.5) / (2.0 * a)",
        "    z = (np.asarray(y, dtype=float) - 0.5) / (1.0 * a)"),
}


def run_suite(root):
    env = dict(os.environ, PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                         capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^FAILED (\S+?)(?: - |$)", out.stdout, re.M)))
    return failed, out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=_common.DEFAULT_OUT)
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="mtl_mutation_") as tmp:
        root = os.path.join(tmp, "tree")
        subprocess.run(["git", "worktree", "add", "--detach", root, "HEAD"], cwd=REPO, check=True,
                       capture_output=True)
        try:
            for name, (path, old, new) in MUTATIONS.items():
                file = os.path.join(root, path)
                with open(file) as fh:
                    src = fh.read()
                if old not in src:
                    raise SystemExit(f"mutation {name!r}: the original text is no longer in {path}")
                with open(file, "w") as fh:
                    fh.write(src.replace(old, new))
                try:
                    failed, summary = run_suite(root)
                finally:
                    with open(file, "w") as fh:
                        fh.write(src)
                _common.log(f"{name}: {len(failed)} failing tests")
                rows.append({"mutation": name, "file": path, "failing tests": len(failed), "suite": summary})
                details.append((name, failed))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", root], cwd=REPO, capture_output=True)
    env = _common.environment()
    md = ["# Mutation check: deliberate breaks and the tests that catch them", "", _common.environment_markdown(env),
          "", _common.markdown_table(rows, ["mutation", "file", "failing tests", "suite"]), ""]
    for name, failed in details:
        md += [f"## {name}", "", *[f"- `{t}`" for t in failed], ""]
    md.append(f"Total wall time {(time.perf_counter() - start) / 60:.1f} min.")
    _common.write_outputs(args.out, "mutation_check", "\n".join(md),
                          {"mutations": rows, "failing": dict(details), "environment": env})
    return 0 if all(r["failing tests"] > 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
