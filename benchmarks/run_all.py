"""Run every benchmark script with the arguments that produced the tracked results, then rebuild RESULTS.md.

Each job below writes markdown + JSON under ``benchmarks/results/`` (every file names the library's commit, the
scripts' commit, the date, the library versions and the machine: ``_common.environment``); after the jobs,
``benchmarks/make_results.py`` rebuilds ``benchmarks/RESULTS.md`` and the README's headline table from those files.
Jobs run one at a time, in the order listed (``transfer`` reads ``quality``'s JSON), from the repository root, with
this interpreter and this environment (so ``PYTHONPATH=/path/to/frozen/checkout`` benchmarks that library, and the
results record its commit). Each job's wall time is printed.

    python benchmarks/run_all.py --list                     # the jobs, their commands and rough wall times
    python benchmarks/run_all.py                            # everything (about 45 min on 2 cores)
    python benchmarks/run_all.py --only transfer anchors    # some jobs, then make_results
    python benchmarks/run_all.py --skip quality defaults --dry-run

Not rerun by any job: ``results/at-9d75ea5/`` (an earlier commit's run, kept for the comparison RESULTS.md makes)
and ``results/ab_versions_4c15782_at_911d0f2.txt`` (the in-process A/B printed at 911d0f2, before ``ab_versions.py``
wrote files of its own).
"""
import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = "benchmarks/results"
DATA = "../shared/datasets"      # relative to the repository root, as in the documented commands

#: the defaults.py candidate sets of the tracked results/defaults.md (the "evidence" set has its own job and file)
DEFAULTS_SETS = ["base", "reg", "alpha", "cross", "cross+", "dtype", "item_bias", "head", "private", "negative",
                 "combined", "negative+", "previous", "row", "auto_alpha", "confidence"]


@dataclass
class Job:
    name: str
    script: str
    args: list
    minutes: float          # rough wall time on this 2-core machine, for --list
    outputs: list           # files it writes, relative to benchmarks/results


def jobs(data_dir):
    r = RESULTS
    return [
        Job("quality", "quality.py", ["--data-dir", data_dir, "--out", r], 16,
            ["quality.md", "quality.json", "quality_ndcg10.png"]),
        Job("tuner", "quality.py", ["--data-dir", data_dir, "--models", "MultiTaskMF built-in tuner",
                                    "--out", f"{r}/tuner"], 3,
            ["tuner/quality.md", "tuner/quality.json", "tuner/quality_ndcg10.png"]),
        Job("defaults", "defaults.py", ["--data-dir", data_dir, "--sets", *DEFAULTS_SETS, "--out", r], 8,
            ["defaults.md", "defaults.json"]),
        Job("validation_transfer", "validation_transfer.py", ["--data-dir", data_dir, "--out", r], 6,
            ["validation_transfer.md", "validation_transfer.json"]),
        Job("evidence_terms", "evidence_terms.py", ["--data-dir", data_dir, "--out", r], 6,
            ["evidence_terms.md", "evidence_terms.json"]),
        Job("popularity_negatives", "popularity_negatives.py", ["--data-dir", data_dir, "--out", r], 5,
            ["popularity_negatives.md", "popularity_negatives.json"]),
        Job("popularity", "defaults.py", ["--data-dir", data_dir, "--sets", "popularity", "--out",
                                          f"{r}/popularity"], 3, ["popularity/defaults.md", "popularity/defaults.json"]),
        Job("evidence", "defaults.py", ["--data-dir", data_dir, "--sets", "evidence", "--out", f"{r}/evidence"], 1,
            ["evidence/defaults.md", "evidence/defaults.json"]),
        Job("ratings", "ratings.py", ["--out", r], 1, ["ratings.md", "ratings.json"]),
        Job("ratings_validation", "ratings.py", ["--validation", "--out", r], 0.5,
            ["ratings_validation.md", "ratings_validation.json"]),
        Job("speed", "speed.py", ["--data-dir", f"{data_dir}/beibei", "--repeats", "5", "--out", r], 4,
            ["speed.md", "speed.json"]),
        Job("ab_versions", "ab_versions.py", ["--old", "4c15782", "--rounds", "4", "--data-dir", f"{data_dir}/beibei",
                                              "--out", r], 2, ["ab_versions.md", "ab_versions.json"]),
        Job("transfer", "transfer.py", ["--data-dir", data_dir, "--quality", f"{r}/quality.json", "--out", r], 3,
            ["transfer.md", "transfer.json"]),
        Job("task_weights", "task_weights.py", ["--data-dir", data_dir, "--out", r], 4,
            ["task_weights.md", "task_weights.json", "task_weights.png"]),
        Job("scaling", "scaling.py", ["--data-dir", data_dir, "--repeats", "3", "--out", r], 4,
            ["scaling.md", "scaling.json", "scaling.png"]),
        Job("profile_solver", "profile_solver.py", ["--data-dir", f"{data_dir}/beibei", "--out", r], 1,
            ["profile_solver.md", "profile_solver.json"]),
        Job("tuner_candidates", "tuner_candidates.py", ["--data-dir", data_dir, "--out", r], 6,
            ["tuner_candidates.md", "tuner_candidates.json"]),
        Job("cg_tol", "cg_tol.py", ["--data-dir", data_dir, "--out", r], 3, ["cg_tol.md", "cg_tol.json"]),
        Job("anchors", "anchors.py", ["--out", r], 0.3, ["anchors.md", "anchors.json"]),
        Job("recommend_speed", "recommend_speed.py", ["--data-dir", data_dir, "--threads", "2", "--out", r], 3,
            ["recommend_speed.md", "recommend_speed.json"]),
        Job("serving_load", "serving_load.py", ["--out", r], 7,
            ["serving_load.md", "serving_load.json", "serving_load_rss.png"]),
        Job("mutation_check", "mutation_check.py", ["--out", r], 8, ["mutation_check.md", "mutation_check.json"]),
        Job("calibration", "calibration.py", ["--out", r], 1,
            ["calibration.md", "calibration.json", "calibration_reliability.png"]),
        # cmfrec's row needs the [bench] extra (it is left out with a log line without it)
        Job("side", "side.py", ["--out", r], 1, ["side.md", "side.json"]),
        *[Job(f"side_seed{n}", "side.py", ["--seed", str(n), "--out", f"{r}/side-seed{n}"], 1,
              [f"side-seed{n}/side.md", f"side-seed{n}/side.json"]) for n in range(1, 6)],
        Job("side_draws", "side_draws.py", ["--out", r], 0.1, ["side_draws.md", "side_draws.json"]),
        Job("side_weights", "side_weights.py", ["--out", r], 5, ["side_weights.md", "side_weights.json"]),
        # needs the [dask] extra; writes its synthetic events (up to 30M interactions) as parquet under --work
        Job("distributed", "distributed.py", ["--sizes", "1e6", "1e7", "3e7", "--out", r], 30,
            ["distributed.md", "distributed.json", "distributed.png"]),
    ]


def command(job):
    return [sys.executable, os.path.join("benchmarks", job.script), *job.args]


def main(argv=None):
    all_jobs = jobs(DATA)
    names = [j.name for j in all_jobs]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="jobs: " + ", ".join(names))
    p.add_argument("--only", nargs="+", choices=names, metavar="NAME", help="run only these jobs (in the listed order)")
    p.add_argument("--skip", nargs="+", choices=names, default=[], metavar="NAME", help="run all jobs but these")
    p.add_argument("--list", action="store_true", help="print the jobs and their commands, run nothing")
    p.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    p.add_argument("--data-dir", default=DATA, help=f"datasets folder (default {DATA}, relative to the repository)")
    p.add_argument("--no-make-results", action="store_true", help="do not rebuild RESULTS.md and the README table")
    p.add_argument("--keep-going", action="store_true", help="run the remaining jobs after one fails")
    args = p.parse_args(argv)

    selected = [j for j in jobs(args.data_dir) if (not args.only or j.name in args.only) and j.name not in args.skip]
    if args.list:
        for j in jobs(args.data_dir):
            print(f"{j.name:20s} ~{j.minutes:g} min  {shlex.join(['python', *command(j)[1:]])}")
            print(f"{'':20s} writes {', '.join(f'{RESULTS}/{o}' for o in j.outputs)}")
        return 0
    failed, times = [], []
    for j in selected:
        cmd = command(j)
        print(f"[run_all] {j.name}: {shlex.join(['python', *cmd[1:]])}", flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        rc = subprocess.call(cmd, cwd=REPO)
        wall = time.perf_counter() - start
        times.append((j.name, wall, rc))
        print(f"[run_all] {j.name}: exit {rc}, wall time {wall / 60:.1f} min ({wall:.0f} s)", flush=True)
        if rc != 0:
            failed.append(j.name)
            if not args.keep_going:
                break
    make = [sys.executable, os.path.join("benchmarks", "make_results.py")]
    if not args.no_make_results and not failed:
        print(f"[run_all] {shlex.join(['python', *make[1:]])}", flush=True)
        if not args.dry_run:
            rc = subprocess.call(make, cwd=REPO)
            if rc != 0:
                failed.append("make_results")
    if times:
        print("\n[run_all] wall times: " + ", ".join(f"{n} {w:.0f} s" + ("" if rc == 0 else f" (exit {rc})")
                                                  for n, w, rc in times))
    if failed:
        print(f"[run_all] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
