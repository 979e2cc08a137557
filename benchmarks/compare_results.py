"""Compare two runs of ``quality.py`` number for number: every test, per-evidence and validation metric of every
(dataset, model) row, and the configuration each row chose.

    python benchmarks/compare_results.py benchmarks/results/quality.json NEW/quality.json

Prints the largest relative difference and every row whose numbers differ by more than ``--rtol`` (default 1e-12)
or whose choice differs; exits with status 1 when there is any, so it can gate a change meant to keep behaviour.
"""
import argparse
import json
import sys


def _numbers(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, float(x)


def rows(path):
    """{(dataset, model): ({metric path: value}, chosen)} of a quality.py JSON file."""
    with open(path) as fh:
        doc = json.load(fh)
    out = {}
    for dataset, entry in doc["datasets"].items():
        for r in entry["results"]:
            metrics = {"test": r["test"], "by_aux": r.get("test_by_aux"), "val": r.get("val_ndcg@10")}
            out[(dataset, r["model"])] = (dict(_numbers(metrics)), r.get("chosen"))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rtol", type=float, default=1e-12)
    p.add_argument("--common", action="store_true", help="compare only the rows present in both runs")
    args = p.parse_args(argv)
    old, new = rows(args.old), rows(args.new)
    problems, worst, count = [], 0.0, 0
    keys = set(old) & set(new) if args.common else set(old) | set(new)
    for key in sorted(keys):
        if key not in old or key not in new:
            problems.append(f"{key}: only in {'new' if key in new else 'old'}")
            continue
        (a, chosen_a), (b, chosen_b) = old[key], new[key]
        for metric in sorted(set(a) | set(b)):
            if metric not in a or metric not in b:
                problems.append(f"{key} {metric}: only in one run")
                continue
            count += 1
            rel = abs(a[metric] - b[metric]) / max(abs(a[metric]), 1e-300)
            worst = max(worst, rel)
            if rel > args.rtol:
                problems.append(f"{key} {metric}: {a[metric]!r} -> {b[metric]!r}")
        if chosen_a != chosen_b:
            problems.append(f"{key} chosen: {chosen_a} -> {chosen_b}")
    print(f"{len(keys)} rows, {count} numbers compared; largest relative difference {worst:.3g} (rtol {args.rtol:g})")
    for line in problems:
        print(" -", line)
    print("identical up to rtol" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
