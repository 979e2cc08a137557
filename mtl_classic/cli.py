"""The ``mtl-classic`` command line: fit, evaluate, recommend, benchmark, serve.

Every subcommand has ``--help``. Bad arguments and library errors (unknown task, unknown user, unreadable file,
corrupt model, ...) print one line ``mtl-classic <command>: error: ...`` to stderr and exit with status 2. The CLI
holds no math: it reads files, calls the library and prints.

Examples::

    mtl-classic fit --events events.csv --tasks tasks.json --out model/
    mtl-classic evaluate --model model/ --events test.csv --task buy -k 10 50
    mtl-classic recommend --model model/ --user U --task buy -n 10
    mtl-classic benchmark
    mtl-classic serve --model model/ --port 8000
"""
import argparse
import contextlib
import csv
import json
import logging
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

from ._errors import ModelFormatError
from ._validation import check_number
from ._version import __version__
from .inference import InferenceModel
from .persistence import save_model
from .serving import serve
from .tasks import Task

# The estimator, the data layer, the evaluation and the baselines pull in scikit-learn, numba and pandas: the commands
# that need them import them when they run, so that `recommend` and `serve` start with numpy and scipy alone.

PROG = "mtl-classic"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _CommandError(Exception):
    """A user-facing error of a subcommand (printed as one line, exit status 2)."""


def _int_range(low, high=None):
    """argparse type: an int within the bounds (the library's one validator, check_number, decides)."""
    def parse(text):
        return _checked(text, int, "an integer", integer=True, low=low, high=high)
    return parse


def _nonneg_float(text):
    """argparse type: a finite float >= 0."""
    return _checked(text, float, "a number", low=0.0, real="a finite number")


def _checked(text, convert, what, **bounds):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    try:
        return check_number("the value", value, **bounds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weight(text):
    task, sep, w = text.partition("=")
    if not sep or not task:
        raise argparse.ArgumentTypeError(f"expected TASK=WEIGHT, got {text!r}")
    try:
        return task, float(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TASK=WEIGHT with a number, got {text!r}") from None


def _add_columns(p):
    p.add_argument("--user-col", default="user", help="column with user ids (default: user)")
    p.add_argument("--item-col", default="item", help="column with item ids (default: item)")
    p.add_argument("--task-col", default="task", help="column with task names (default: task)")
    p.add_argument("--value-col", default=None, help="column with values (default: none, each row is one event)")


def build_parser():
    """The argument parser of ``mtl-classic`` (subcommands fit, evaluate, recommend, benchmark, serve)."""
    parser = _Parser(prog=PROG, description="Multi-task recommendation with classical machine learning.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("fit", help="fit a MultiTaskMF on an events CSV and save it",
                       description="Fit a MultiTaskMF on a CSV of events (one row per user, item, task) and save "
                                   "it as a model directory. Prints one progress line per sweep.")
    p.add_argument("--events", required=True, help="CSV file of events")
    p.add_argument("--tasks", required=True,
                   help='JSON file: a list of task descriptions, e.g. [{"name": "view", "weight": 0.3}, '
                        '{"name": "buy"}] (keys of mtl_classic.Task); events of other tasks are ignored')
    p.add_argument("--out", required=True, help="model directory to write")
    _add_columns(p)
    p.add_argument("--timestamp-col", default=None, help="column with timestamps (optional)")
    p.add_argument("--aggregate", default="auto", choices=["auto", "sum", "mean", "max", "last"],
                   help="rule for repeated (user, item, task) rows (default: auto)")
    p.add_argument("--factors", type=_int_range(1), default=64, help="latent factors (default: 64)")
    p.add_argument("--iterations", type=_int_range(1), default=15, help="alternating sweeps (default: 15)")
    p.add_argument("--regularization", type=_nonneg_float, default=0.01, help="L2 penalty (default: 0.01)")
    p.add_argument("--solver", choices=["cg", "cholesky"], default="cg", help="row solver (default: cg)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--n-jobs", type=_int_range(1), default=None, help="threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("evaluate", help="ranking (and pointwise) metrics of a saved model on test events",
                       description="Full-ranking evaluation (docs/MATH.md section 4) of one task on held-out events: "
                                   "HR@K, NDCG@K, ...; with --value-col also RMSE/MAE or AUC/log loss. Test rows of "
                                   "users or items unknown to the model are dropped (and counted).")
    p.add_argument("--model", required=True, help="model directory (from mtl-classic fit)")
    p.add_argument("--events", required=True, help="CSV file of held-out events")
    p.add_argument("--task", required=True, help="task to evaluate")
    p.add_argument("-k", type=_int_range(1), nargs="+", default=[10, 50], help="cut-offs (default: 10 50)")
    _add_columns(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("recommend", help="top-n items for users from a saved model",
                       description="Top-n items for one or more users. With --weights, a blended ranking across "
                                   "tasks (weighted sum of their scores) instead of --task.")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--user", required=True, nargs="+", help="user id(s)")
    p.add_argument("--task", default=None, help="task to rank by (default: the model's only task)")
    p.add_argument("-n", type=_int_range(1, 10000), default=10, help="items per user (default: 10)")
    p.add_argument("--filter-seen", default="true",
                   help="true (the task's training items), false, any (items of any task) or a task name "
                        "(default: true)")
    p.add_argument("--exclude", nargs="+", default=None, metavar="ITEM", help="item ids never to recommend")
    p.add_argument("--items", nargs="+", default=None, metavar="ITEM", help="rank only these item ids")
    p.add_argument("--fallback", choices=["none", "popular"], default="none",
                   help="unknown users: error (none) or the most popular items (popular)")
    p.add_argument("--weights", type=_weight, nargs="+", default=None, metavar="TASK=W",
                   help="blend tasks, e.g. --weights buy=1 view=0.2")
    p.add_argument("--mmap", action="store_true", help="memory-map the model's arrays")
    p.add_argument("--new-items", default=None, metavar="CSV",
                   help="new items known only by their attributes, ranked with the others: a CSV with the header "
                        "item,side,column (one row per attribute, e.g. m9001,genre,Comedy) naming the model's item "
                        "side matrices, or item,side,column,value (e.g. m9001,sales,log_sales,2.3: also the "
                        "tasks' item features)")
    p.add_argument("--new-users", default=None, metavar="CSV",
                   help="new users known only by their side rows (e.g. the queries they typed), recommended for "
                        "instead of the model's users: a CSV with the header user,side,column naming the model's "
                        "user side matrices; --user then names users of the CSV")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("benchmark", help="a quick built-in comparison on the embedded MovieLens data",
                       description="MultiTaskMF (single- and multi-task) against popularity and implicit's ALS on the "
                                   "embedded MovieLens sample: target 'rated', auxiliary 'tagged', leave-last-out by "
                                   "timestamp, full ranking. Untuned defaults, about a minute; the tuned comparison is "
                                   "benchmarks/quality.py.")
    p.add_argument("--factors", type=_int_range(1), default=32, help="latent factors (default: 32)")
    p.add_argument("--iterations", type=_int_range(1), default=15, help="sweeps / ALS iterations (default: 15)")
    p.add_argument("--threads", type=_int_range(1), default=None, help="threads (default: all cores)")
    p.add_argument("--data", default=None, help="MovieLens directory (default: the embedded ml-latest-small)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("serve", help="serve a saved model over HTTP (FastAPI + uvicorn, the [serve] extra)",
                       description="Serve GET /health, GET /ready, GET /recommend?user=..&task=..&n=.., POST /predict "
                                   "{task, pairs}, POST /users/{user}/events (fold-in, full models) and POST "
                                   "/admin/reload (loopback clients; or SIGHUP) as JSON; the schema is at "
                                   "/openapi.json and the docs at /docs. Binds 127.0.0.1 unless --host says "
                                   "otherwise. Needs: python -m pip install 'mtl_classic[serve]'.")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=_int_range(0, 65535), default=8000, help="port (default: 8000; 0 = any free)")
    p.add_argument("--workers", type=_int_range(1, 256), default=1,
                   help="worker processes sharing one memory-mapped model (default: 1); SIGHUP to the main "
                        "process replaces them one by one with the model saved in --model")
    p.add_argument("--mmap", action="store_true", help="memory-map the model's arrays (always with --workers > 1)")
    p.add_argument("--max-n", type=_int_range(1), default=1000, help="largest n of /recommend (default: 1000)")
    p.add_argument("--max-pairs", type=_int_range(1), default=10000,
                   help="most pairs of one /predict, events of one fold-in (default: 10000)")
    p.add_argument("--max-body", type=_int_range(1), default=1 << 20, help="largest request body in bytes "
                                                                            "(default: 1 MiB)")
    p.add_argument("--max-threads", type=_int_range(1), default=32,
                   help="requests answered at once per process (default: 32)")
    p.add_argument("--timeout", type=_nonneg_float, default=30.0,
                   help="seconds an idle keep-alive connection stays open (default: 30)")
    p.add_argument("--graceful-timeout", type=_nonneg_float, default=30.0,
                   help="seconds a shutdown waits for requests in flight (default: 30)")
    p.add_argument("--no-fallback", action="store_true", help="refuse fallback=popular for unknown users")
    p.add_argument("--no-admin", action="store_true", help="no POST /admin/reload (SIGHUP still reloads)")
    p.add_argument("--verbose", action="store_true", help="log one JSON line per request to stderr")
    p.set_defaults(func=_cmd_serve)
    return parser


# --------------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------------
def _read_csv(path, columns):
    import pandas as pd

    if not os.path.isfile(path):
        raise _CommandError(f"events file {path} not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _CommandError(f"cannot read {path} as CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise _CommandError(f"{path} has no column(s) {missing}; its columns are {list(df.columns)}")
    return df


def _read_tasks(path):
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise _CommandError(f"tasks file {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _CommandError(f"tasks file {path} is not valid JSON ({exc})") from None
    if isinstance(doc, dict) and "tasks" in doc:
        doc = doc["tasks"]
    if not isinstance(doc, list) or not doc:
        raise _CommandError(f"tasks file {path} must hold a non-empty JSON list of task descriptions")
    tasks = []
    for entry in doc:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise _CommandError(f"tasks file {path}: each task must be an object or a name; got {entry!r}")
        try:
            tasks.append(Task.from_dict(entry).validate(where=f"tasks file {path}"))
        except TypeError as exc:
            raise _CommandError(f"tasks file {path}: bad task {entry!r} ({exc})") from None
    return tasks


def _coerce_ids(values, ids):
    """Command-line ids (strings) in the model's id type: ints for integer-id models."""
    if getattr(ids, "dtype", None) is not None and ids.dtype.kind == "i":
        out = []
        for v in values:
            try:
                out.append(int(v))
            except ValueError:
                out.append(v)
        return out
    return list(values)


def _table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[j])) for r in rows)) if rows else len(str(h))
              for j, h in enumerate(header)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(x):
    return f"{x:.4f}" if isinstance(x, float) else str(x)


# --------------------------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------------------------
def _cmd_fit(args):
    from .data import MultiTaskData
    from .model import MultiTaskMF

    tasks = _read_tasks(args.tasks)
    names = [t.name for t in tasks]
    cols = [args.user_col, args.item_col, args.task_col, args.value_col, args.timestamp_col]
    df = _read_csv(args.events, cols)
    keep = df[args.task_col].isin(names)
    if not keep.all():
        other = sorted(map(str, df.loc[~keep, args.task_col].unique()))[:10]
        print(f"{PROG} fit: ignoring {int((~keep).sum())} events of tasks not in {args.tasks}: {other}",
              file=sys.stderr)
        df = df[keep]
    absent = [n for n in names if n not in set(df[args.task_col])]
    if absent:
        raise _CommandError(f"tasks {absent} of {args.tasks} have no events in {args.events}")
    start = time.perf_counter()
    data = MultiTaskData.from_events(df, user_col=args.user_col, item_col=args.item_col, task_col=args.task_col,
                                     value_col=args.value_col, timestamp_col=args.timestamp_col,
                                     aggregate=args.aggregate)
    data = data.subset_tasks([n for n in names])
    if not args.quiet:
        print(f"{PROG} fit: {data.n_users} users, {data.n_items} items, "
              + ", ".join(f"{t} {data.nnz(t)}" for t in data.task_names) + " observations", flush=True)
    model = MultiTaskMF(tasks=tasks, factors=args.factors, iterations=args.iterations,
                        regularization=args.regularization, solver=args.solver, n_jobs=args.n_jobs,
                        random_state=args.random_state, show_progress=not args.quiet, verbose=not args.quiet)
    with _sweep_lines_to_stdout(enabled=not args.quiet):
        model.fit(data)
    save_model(model, args.out)
    print(f"{PROG} fit: saved to {args.out} ({model.n_iter_} sweeps, {time.perf_counter() - start:.1f}s)")
    return 0


@contextlib.contextmanager
def _sweep_lines_to_stdout(enabled):
    """Show the estimator's per-sweep log lines (logger ``mtl_classic.model``, INFO) on stdout while fitting."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("mtl_classic.model")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _test_matrix(model, df, args, with_values):
    if args.task_col in df.columns:
        df = df[df[args.task_col] == args.task]
    if len(df) == 0:
        raise _CommandError(f"{args.events} has no events of task {args.task!r}")
    data = model.data_
    u = data.user_map.index(df[args.user_col].to_numpy(), unknown="ignore")
    i = data.item_map.index(df[args.item_col].to_numpy(), unknown="ignore")
    ok = (u >= 0) & (i >= 0)
    if with_values:
        values = df[args.value_col].to_numpy(dtype=np.float64)[ok]
    else:
        values = np.ones(int(ok.sum()))
    coo = sp.coo_matrix((values, (u[ok], i[ok])), shape=(data.n_users, data.n_items))
    keys = u[ok] * data.n_items + i[ok]
    _, first = np.unique(keys, return_index=True)     # one entry per pair (the first), explicit zeros kept
    test = sp.csr_matrix((coo.data[first], (coo.row[first], coo.col[first])), shape=coo.shape)
    return test, int((~ok).sum()), len(df)


def _cmd_evaluate(args):
    from .evaluation import evaluate_pointwise, evaluate_ranking
    from .model import MultiTaskMF

    model = MultiTaskMF.load(args.model)
    if args.task not in model.task_index_:
        raise _CommandError(f"unknown task {args.task!r}; the model has tasks {list(model.task_index_)}")
    df = _read_csv(args.events, [args.user_col, args.item_col, args.value_col])
    test, dropped, n_rows = _test_matrix(model, df, args, with_values=False)
    result = {"task": args.task, "n_events": n_rows, "dropped_unknown": dropped}
    result.update(evaluate_ranking(model, model.data_, test, args.task, ks=tuple(args.k)))
    kind = model.tasks_[model.task_index_[args.task]].kind
    if args.value_col is not None and kind != "implicit":
        values, _, _ = _test_matrix(model, df, args, with_values=True)
        result.update(evaluate_pointwise(model, args.task, values))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if dropped:
        print(f"{PROG} evaluate: dropped {dropped} of {n_rows} test events with users or items unknown to the "
              f"model", file=sys.stderr)
    rows = [(k, _fmt(v)) for k, v in result.items() if k not in ("task",)]
    print(f"task {args.task!r}, model {args.model}")
    print(_table(["metric", "value"], rows))
    return 0


def _read_side_rows(path, model, kind):
    """(new item or user ids, {side matrix: rows}) from a CSV with the header item,side,column (``kind="item"``) or
    user,side,column, each row a list of column ids; with a fourth field, value (item,side,column,value), each row
    a dict {column id: value}, and (new items) a task's item feature may be named too, with its one column id."""
    flag = f"--new-{kind}s"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise _CommandError(f"{flag}: cannot read {path} ({exc.strerror or exc}).") from None
    header = [c.strip() for c in rows[0]] if rows else []
    if header not in ([kind, "side", "column"], [kind, "side", "column", "value"]):
        raise _CommandError(f"{flag}: {path} must start with the header {kind},side,column (or {kind},side,column,"
                            f"value).")
    columns = {n: s[2] for n, s in model.side.items() if s[0] == kind}
    if kind == "item":
        columns.update(model.item_feature_columns)
    ids, side = [], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) or not all(c.strip() for c in row):
            raise _CommandError(f"{flag}: {path} line {line} needs {len(header)} non-empty fields, got {row!r}.")
        new_id, name, column = (c.strip() for c in row[:3])
        if name not in columns:
            what = "an item side matrix or item feature" if kind == "item" else "a user side matrix"
            raise _CommandError(f"{flag}: {path} line {line} names {name!r}, not {what} of the model "
                                f"({sorted(columns)}).")
        try:
            value = float(row[3]) if len(row) == 4 else 1.0
        except ValueError:
            raise _CommandError(f"{flag}: {path} line {line}: value {row[3].strip()[:50]!r} is not a number.") from None
        if new_id not in ids:
            ids.append(new_id)
        side.setdefault(name, {}).setdefault(new_id, []).append((column, value))
    if not ids:
        raise _CommandError(f"{flag}: {path} has no rows.")
    rows_by_side = {}
    for name, per_row in side.items():
        pairs = [per_row.get(i, []) for i in ids]
        cols = [_coerce_ids([c for c, _ in p], columns[name].ids) for p in pairs]
        if len(header) == 3:
            rows_by_side[name] = cols
        else:   # {column: value}; a repeated column adds up
            rows_by_side[name] = [{} for _ in ids]
            for row, cs, p in zip(rows_by_side[name], cols, pairs):
                for c, (_, v) in zip(cs, p):
                    row[c] = row.get(c, 0.0) + v
    known = model.item_ids if kind == "item" else model.user_ids
    return _coerce_ids(ids, known.ids), rows_by_side


def _cmd_recommend(args):
    model = InferenceModel.load(args.model, mmap_mode="r" if args.mmap else None)
    for kind, path in (("item", args.new_items), ("user", args.new_users)):
        if path is None:
            continue
        new_ids, side_rows = _read_side_rows(path, model, kind)
        try:
            model = (model.with_items if kind == "item" else model.users_from_side)(new_ids, side_rows)
        except (KeyError, ValueError) as exc:
            raise _CommandError(f"--new-{kind}s: {exc}") from None
    users = _coerce_ids(args.user, model.user_ids.ids)
    exclude = None if args.exclude is None else _coerce_ids(args.exclude, model.item_ids.ids)
    allow = None if args.items is None else _coerce_ids(args.items, model.item_ids.ids)
    fs = args.filter_seen
    filter_seen = {"true": True, "false": False, "none": False}.get(fs.lower(), fs)
    unknown = "popular" if args.fallback == "popular" else "raise"
    results = []
    for user in users:                 # one user at a time: each gets its full list (see InferenceModel.recommend)
        if args.weights:
            if args.task is not None:
                raise _CommandError("give either --task or --weights, not both")
            ids, scores = model.recommend_blended([user], n=args.n, weights=dict(args.weights),
                                                  filter_seen=filter_seen, filter_items=exclude, items=allow,
                                                  unknown=unknown)
        else:
            ids, scores = model.recommend([user], n=args.n, task=args.task, filter_seen=filter_seen,
                                          filter_items=exclude, items=allow, unknown=unknown)
        results.append({"user": user, "items": ids[0].tolist(),
                        "scores": [float(s) if np.isfinite(s) else None for s in scores[0]]})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1, default=str))
        return 0
    rows = [(r["user"], rank + 1, item, _fmt(score)) for r in results
            for rank, (item, score) in enumerate(zip(r["items"], r["scores"]))]
    print(_table(["user", "rank", "item", "score"], rows))
    return 0


def run_builtin_benchmark(factors=32, iterations=15, threads=None, path=None, progress=None):
    """The quick comparison behind ``mtl-classic benchmark``.

    MovieLens (embedded ml-latest-small unless ``path``), tasks ``rated`` (target) and ``tagged`` (auxiliary);
    test = each user's latest ``rated`` pair (leave-last-out by timestamp, removed from ``tagged`` too); full
    ranking of all items, training items of ``rated`` filtered. Models: popularity, implicit's ALS on ``rated`` and
    on ``rated + 0.3 tagged``, MultiTaskMF on ``rated`` alone and jointly with ``tagged`` (weight 0.3), with the
    same factors, iterations, regularisation 0.01 and confidence ``alpha = 10`` everywhere, and MultiTaskMF on both
    tasks with its own defaults (the same factors and iterations, nothing else set). Untuned.

    Returns
    -------
    list of dict
        One row per model: ``model``, ``HR@10``, ``NDCG@10``, ``HR@50``, ``NDCG@50``, ``fit_seconds``.
    """
    from .baselines import ImplicitALSRecommender, PopularityRecommender
    from .data.splits import leave_last_out
    from .datasets import load_movielens
    from .evaluation import evaluate_ranking
    from .model import MultiTaskMF

    say = progress or (lambda msg: None)
    data = load_movielens(path, tasks=["rated", "tagged"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        split = leave_last_out(data, "rated", n_holdout=1, min_train=1, also_remove=["tagged"])
    train, test = split.train, split.test
    n_threads = threads or os.cpu_count() or 1
    common = {"factors": factors, "iterations": iterations, "regularization": 0.01, "random_state": 0}
    models = [
        ("popularity", lambda: PopularityRecommender(target="rated"), train),
        ("implicit ALS (rated)", lambda: ImplicitALSRecommender(target="rated", alpha=10.0, num_threads=n_threads,
                                                                **common), train),
        ("implicit ALS (rated + 0.3 tagged)",
         lambda: ImplicitALSRecommender(target="rated", alpha=10.0, aux_weights={"tagged": 0.3},
                                        num_threads=n_threads, **common), train),
        ("MultiTaskMF (rated)", lambda: MultiTaskMF(tasks=[Task("rated", alpha=10.0)], n_jobs=n_threads, **common),
         train.subset_tasks(["rated"])),
        ("MultiTaskMF (rated + tagged 0.3)",
         lambda: MultiTaskMF(tasks=[Task("rated", alpha=10.0), Task("tagged", weight=0.3, alpha=10.0)],
                             n_jobs=n_threads, **common), train),
        ("MultiTaskMF, its defaults (rated + tagged)",
         lambda: MultiTaskMF(tasks=[Task("rated"), Task("tagged")], factors=factors, iterations=iterations,
                             random_state=0, n_jobs=n_threads), train),
    ]
    rows = []
    for name, make, fit_data in models:
        start = time.perf_counter()
        model = make().fit(fit_data)
        seconds = time.perf_counter() - start
        res = evaluate_ranking(model, fit_data, test, "rated", ks=(10, 50))
        rows.append({"model": name, "HR@10": res["HR@10"], "NDCG@10": res["NDCG@10"], "HR@50": res["HR@50"],
                     "NDCG@50": res["NDCG@50"], "fit_seconds": seconds, "n_users": res["n_users"]})
        say(f"{name}: NDCG@10 {res['NDCG@10']:.4f} ({seconds:.1f}s)")
    return rows


def _cmd_benchmark(args):
    say = None if args.json else (lambda msg: print(f"{PROG} benchmark: {msg}", file=sys.stderr, flush=True))
    start = time.perf_counter()
    rows = run_builtin_benchmark(args.factors, args.iterations, args.threads, args.data, progress=say)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"MovieLens ml-latest-small, target 'rated', leave-last-out, {rows[0]['n_users']} test users, full "
          f"ranking; factors {args.factors}, {args.iterations} iterations, untuned")
    print(_table(["model", "HR@10", "NDCG@10", "HR@50", "NDCG@50", "fit s"],
                 [(r["model"], _fmt(r["HR@10"]), _fmt(r["NDCG@10"]), _fmt(r["HR@50"]), _fmt(r["NDCG@50"]),
                   f"{r['fit_seconds']:.1f}") for r in rows]))
    print(f"({time.perf_counter() - start:.0f}s in total)")
    return 0


def _cmd_serve(args):
    try:
        return serve(args.model, host=args.host, port=args.port, workers=args.workers,
                     mmap_mode="r" if args.mmap else None, max_body=args.max_body, max_n=args.max_n,
                     max_pairs=args.max_pairs, max_threads=args.max_threads, allow_fallback=not args.no_fallback,
                     admin=not args.no_admin, verbose=args.verbose, timeout_keep_alive=args.timeout,
                     graceful_timeout=args.graceful_timeout)
    except ImportError as exc:
        raise _CommandError(str(exc)) from None


# --------------------------------------------------------------------------------------------------------------------
def _one_line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= 500 else text[:497] + "..."


def main(argv=None):
    """Entry point of the ``mtl-classic`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is required: fit, evaluate, recommend, benchmark or serve")
    where = f"{PROG} {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyError as exc:
        message = exc.args[0] if exc.args else "unknown id"
    except (_CommandError, ModelFormatError, ValueError, OSError) as exc:
        message = str(exc)
    except KeyboardInterrupt:
        return 130
    print(f"{where}: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
