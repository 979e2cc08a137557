"""Shared helpers of the benchmark scripts: datasets and splits, validation carving, evaluation, grid search,
environment records and output files.

The scripts are run from the repository root, e.g. ``python benchmarks/quality.py``; they import this module as
``_common`` (the scripts put their own directory on ``sys.path``).
"""
import datetime
import itertools
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "out")
_SHARED = os.path.abspath(os.path.join(REPO, "..", "shared", "datasets"))
DEFAULT_DATA_DIR = _SHARED if os.path.isdir(_SHARED) else None
KS = (10, 50)


# ----------------------------------------------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------------------------------------------
def environment():
    """Library versions, thread settings and machine facts, as a JSON-able dict."""
    import importlib

    versions = {}
    for name in ("mtl_classic", "numpy", "scipy", "sklearn", "pandas", "implicit", "joblib", "numba",
                 "threadpoolctl", "matplotlib"):
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception:                      # noqa: BLE001 - a missing optional library is just recorded
            versions[name] = None
    try:
        from threadpoolctl import threadpool_info
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                 for p in threadpool_info()]
    except Exception:                          # noqa: BLE001
        pools = []
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = fh.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    library = _git_state(_library_dir())
    scripts = _git_state(os.path.join(REPO, "benchmarks"), exclude=("results", "out"))  # outputs are not code
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        # the commit of the library actually imported (the git HEAD of the folder holding the imported
        # mtl_classic, e.g. a frozen worktree on PYTHONPATH) and, separately, of the benchmark scripts
        "git_commit": library["commit"],
        "git_uncommitted_library_files": library["dirty"],
        "library_path": library["path"],
        "library_commit": library["commit"],
        "library_dirty": library["dirty"],
        "scripts_path": scripts["path"],
        "scripts_commit": scripts["commit"],
        "scripts_dirty": scripts["dirty"],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory": mem,
        # 1-, 5- and 15-minute load averages when the environment was recorded (the machine is shared)
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                       "NUMBA_NUM_THREADS")},
        "threadpools": pools,
        "versions": versions,
        "argv": sys.argv,
    }


def _library_dir():
    """The folder of the imported ``mtl_classic`` package (None when it cannot be imported)."""
    try:
        import mtl_classic
    except ImportError:
        return None
    return os.path.dirname(os.path.abspath(mtl_classic.__file__))


def _git_state(path, exclude=()):
    """``{"path", "commit", "dirty"}`` of the git checkout holding ``path``: its HEAD (short hash) and the files
    under ``path`` (but not under ``exclude``, relative to ``path``) that differ from it (``[]`` when clean; None
    when ``path`` is not in a git checkout)."""
    import subprocess

    out = {"path": path, "commit": None, "dirty": None}
    if path is None or not os.path.isdir(path):
        return out
    try:
        run = dict(cwd=path, capture_output=True, text=True, timeout=30)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run)
        if head.returncode != 0:
            return out
        out["commit"] = head.stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--", ".",
                                 *(f":(exclude){e}" for e in exclude)], **run)
        out["dirty"] = [ln[3:] for ln in status.stdout.splitlines() if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _git_markdown(what, commit, dirty, path):
    text = f"{what} at git {commit}" if commit else f"{what} from {path} (not a git checkout)"
    if dirty:
        text += f" + uncommitted {dirty}"
    elif dirty is not None:
        text += " (clean)"
    return text


def environment_markdown(env):
    v = env["versions"]
    if "library_commit" in env:
        lib = _git_markdown("library", env["library_commit"], env["library_dirty"], env["library_path"])
        scr = _git_markdown("benchmark scripts", env["scripts_commit"], env["scripts_dirty"], env["scripts_path"])
        git = f"{lib}, {scr}"
    else:                                      # records written before the two commits were kept apart
        dirty = env.get("git_uncommitted_library_files")
        git = f"git {env['git_commit']}" + (f" + uncommitted {dirty}" if dirty else "")
    lines = [f"- date {env['date']}, {git}, python {env['python']}, {env['platform']}",
             f"- CPU: {env['cpu']} ({env['cpu_count']} logical cores, {env['affinity_cores']} usable), "
             f"memory {env['memory']}"
             + (", load average {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min) at the start".format(*env["loadavg"])
                if env.get("loadavg") else ""),
             "- versions: " + ", ".join(f"{k} {v[k]}" for k in v if v[k] is not None),
             "- BLAS/OpenMP pools: " + ", ".join(f"{p['internal_api']}={p['num_threads']}"
                                                   for p in env["threadpools"]),
             "- command: `python " + " ".join(env["argv"]) + "`"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------------
def markdown_table(rows, columns, formats=None):
    """A GitHub markdown table of ``rows`` (dicts) over ``columns``; ``formats`` maps column -> format spec."""
    formats = formats or {}
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            if v is None:
                cells.append("")
            elif c in formats and isinstance(v, (int, float, np.floating, np.integer)):
                cells.append(format(v, formats[c]))
            elif isinstance(v, (float, np.floating)):
                cells.append(f"{v:.4f}")
            else:
                cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_outputs(out_dir, name, markdown, payload):
    """Write ``<name>.md`` and ``<name>.json`` into ``out_dir`` (created) and print the markdown. A payload without
    an ``"environment"`` entry gets one (commits, versions, machine), so every JSON names what it measured."""
    if isinstance(payload, dict) and "environment" not in payload:
        payload = {"environment": environment(), **payload}
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, f"{name}.md")
    with open(md_path, "w") as fh:
        fh.write(markdown + "\n")
    with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
        json.dump(payload, fh, indent=2, default=_json_default)
    print(markdown)
    print(f"\n[wrote {md_path} and {name}.json]")


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# datasets and splits
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Bench:
    """One benchmark dataset: the training data, the held-out target pairs and the validation split.

    ``train`` / ``test``: the full training data and the test pairs (csr over ``train``'s index) of ``target``.
    ``val_train`` / ``val_test``: the validation split carved from ``train`` (tuning only).
    """

    name: str
    target: str
    train: object
    test: object
    val_train: object
    val_test: object
    info: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def carve_validation(train, target, seed=0, by_time=False, drop_from=(), n_holdout=1):
    """Validation split carved from ``train`` with ``mtl_classic.data.splits``.

    ``by_time``: ``leave_last_out(n_holdout)`` (default one per user); otherwise ``random_holdout`` with a vanishing
    ``test_fraction``, which holds out exactly one random target pair per user with at least two (seeded). The
    held-out pairs are also removed from the tasks in ``drop_from`` (MovieLens: the same rating event in other
    tasks), by the splits' ``also_remove``.

    Returns
    -------
    (val_train, val_test, how)
    """
    from mtl_classic.data.splits import leave_last_out, random_holdout

    drop_from = list(drop_from)
    with warnings.catch_warnings():
        if not drop_from:
            # Beibei / Tmall: the held-out purchases stay in the auxiliary tasks on purpose (carts are known at
            # prediction time), so the splits' leak warning (every held-out pair still observed elsewhere, e.g.
            # Beibei's carts) is expected here; with ``drop_from`` (MovieLens) it is left on
            warnings.filterwarnings("ignore", message=".*every held-out pair of", category=UserWarning)
        also = drop_from or None
        if by_time:
            s = leave_last_out(train, target, n_holdout=n_holdout, min_train=1, also_remove=also)
            how = f"leave_last_out(target, n_holdout={n_holdout}, min_train=1) on the training data"
        else:
            s = random_holdout(train, target, test_fraction=1e-9, random_state=seed, min_train=1, also_remove=also)
            how = (f"random_holdout(target, test_fraction=1e-9 (= one pair per user), random_state={seed}, "
                   f"min_train=1) on the training data")
    if drop_from:
        how += f"; held-out pairs also removed from {drop_from}"
    vtrain = s.train
    return vtrain, s.test, how


#: synthetic datasets with planted factors (``mtl_classic.synthetic.planted_aux_target``): a dense "view" and a
#: sparse "buy" (about 110 and 10 per user) from the same factors (transfer helps), or from independent ones (the
#: views say nothing about the buys: transfer can only hurt). For choosing defaults on validation splits only.
SYNTHETIC = {
    "synthetic-shared": dict(n_users=3000, n_items=1000, rank=8, aux_offset=-4.0, target_offset=-8.0, scale=1.0),
    "synthetic-independent": dict(n_users=3000, n_items=1000, rank=8, aux_offset=-4.0, target_offset=-8.0, scale=1.0,
                                  aux_factors="independent"),
}

#: auxiliary tasks used by the multi-behaviour models, per dataset (MovieLens: 'liked'/'rating' are the same
#: events as the target 'rated', so only 'tagged' is a different behaviour for the ALS/rule baselines)
AUX_TASKS = {"movielens": ["tagged"], "beibei": ["cart"], "tmall": ["cart", "collect"],
             **{name: ["view"] for name in SYNTHETIC}}


def load_bench(name, data_dir, seed=0):
    """Load one benchmark dataset with the project's loaders and carve the validation split.

    movielens: ``load_movielens()`` (the embedded copy), target ``rated``, test = ``leave_last_out`` by timestamp;
    the held-out pairs are also removed from ``liked``, ``rating`` and ``tagged`` (the split functions keep
    auxiliary tasks untouched, which here would hand every model the answer: a held-out rating is the same event in
    all three rating tasks). beibei: ``load_ghcf``; tmall: ``load_pairs``; target ``buy`` with the given test file,
    auxiliary behaviours untouched (the benchmark protocol).

    The validation split is built the way the dataset's test split was (:func:`protocol_validation`), so that a
    choice made on it answers the test's question: MovieLens and the synthetic sets carve as their tests do (last
    rating by time; one random pair per user); Tmall uses its own ``validation.txt`` (pairs in neither ``buy.txt``
    nor ``test.txt``; the fits stay on ``buy.txt``); Beibei, which has no timestamps, holds out each user's
    highest-index training buy, because its item indices rise with time (``benchmarks/validation_transfer.py``
    measures it: the test items' mean index is far above the training buys', and most test items are the user's
    highest-index carted item), so its test, each user's last purchase, is about recent items.
    """
    from mtl_classic import datasets

    extra = {}
    if name == "movielens":
        from mtl_classic.data.splits import leave_last_out
        full = datasets.load_movielens()
        full = getattr(full, "data", full)
        target = "rated"
        others = [t for t in full.task_names if t != target]
        # the held-out ratings are the same events in every rating task: removed from all of them
        split = leave_last_out(full, target, n_holdout=1, min_train=1, also_remove=others)
        train, test = split.train, split.test
        info = {"test": "leave_last_out(target='rated', n_holdout=1, min_train=1) by timestamp; held-out pairs "
                        f"removed from {others} as well"}
        # values of the held-out pairs in the pointwise tasks (for RMSE / AUC)
        for t in ("rating", "liked"):
            extra[f"test_{t}"] = _values_at(full.matrices[t], test)
        extra["items"] = datasets.load_movielens_items().reindex(full.item_map.ids)
        by_time, drop = True, others
    elif name in ("beibei", "tmall"):
        path = os.path.join(data_dir, name)
        ds = datasets.load_ghcf(path) if name == "beibei" else datasets.load_pairs(path)
        target = ds.target or "buy"
        train, test = ds.data, ds.test
        info = {"test": f"given test file ({name}/test.txt)", "loader_report": ds.report}
        by_time, drop = False, ()
    elif name in SYNTHETIC:
        from mtl_classic.data import MultiTaskData
        from mtl_classic.synthetic import planted_aux_target
        _, aux, target, test = planted_aux_target(seed=seed, **SYNTHETIC[name])
        train = MultiTaskData.from_matrices({"view": aux, "buy": target})
        test = sp.csr_matrix(test)
        info = {"test": f"planted_aux_target({SYNTHETIC[name]}, seed={seed}): one target pair per user held out"}
        target, by_time, drop = "buy", False, ()
    else:
        raise ValueError(f"unknown dataset {name!r}; expected movielens, beibei, tmall or one of {list(SYNTHETIC)}")
    val_train, val_test, how = protocol_validation(name, train, target, seed, by_time, drop,
                                                   ds.validation if name == "tmall" else None)
    if name == "movielens":
        for t in ("rating", "liked"):
            extra[f"val_{t}"] = _values_at(full.matrices[t], val_test)
    info = dict(info, target=target, validation=how, n_users=train.n_users, n_items=train.n_items,
                nnz={t: int(train.nnz(t)) for t in train.task_names},
                n_test_users=int((np.diff(test.indptr) > 0).sum()), n_test_pairs=int(test.nnz),
                n_val_users=int((np.diff(val_test.indptr) > 0).sum()),
                aux_share_test=_aux_share(train, test, AUX_TASKS[name]),
                aux_share_val=_aux_share(val_train, val_test, AUX_TASKS[name]),
                aux_share_train_target=_aux_share(train, train.matrices[target], AUX_TASKS[name]))
    return Bench(name, target, train, test, val_train, val_test, info, extra)


def protocol_validation(name, train, target, seed=0, by_time=False, drop_from=(), given=None):
    """(val_train, val_test, how): the validation split of :func:`load_bench`, built as the test split was.

    ``given``: the dataset's own validation pairs (Tmall), used as they are with ``train`` itself as the
    validation training data. Beibei: :func:`leave_highest_index_out`. Otherwise :func:`carve_validation`."""
    if given is not None:
        return train, sp.csr_matrix(given), f"the dataset's own validation file ({name}/validation.txt)"
    if name == "beibei":
        return leave_highest_index_out(train, target)
    return carve_validation(train, target, seed=seed, by_time=by_time, drop_from=drop_from)


def leave_highest_index_out(train, target):
    """Hold out every user's highest-item-index ``target`` pair (users with at least two): the "last purchase"
    of data whose item indices follow time. Auxiliary tasks are left as they are (as the test protocol does)."""
    from mtl_classic.data.splits import given_test_pairs

    m = sp.csr_matrix(train.matrices[target])
    m.sort_indices()
    users = np.flatnonzero(np.diff(m.indptr) >= 2)
    held = sp.csr_matrix((np.ones(len(users)), (users, m.indices[m.indptr[users + 1] - 1])), shape=m.shape)
    with warnings.catch_warnings():   # every held-out buy is still carted: the protocol keeps auxiliary tasks
        warnings.filterwarnings("ignore", message=".*every held-out pair of", category=UserWarning)
        split = given_test_pairs(train, target, held)
    return (split.train, split.test,
            f"each user's highest-item-index '{target}' pair held out (users with >= 2; item indices follow time)")


def _values_at(m, pairs):
    """csr with the pattern of ``pairs`` and the values of ``m`` there (pairs absent from ``m`` are dropped)."""
    from mtl_classic.baselines._common import pair_lookup
    rows = np.repeat(np.arange(pairs.shape[0], dtype=np.int64), np.diff(pairs.indptr))
    n = np.int64(m.shape[1])
    mk = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n + m.indices
    present = np.isin(rows * n + pairs.indices, mk)
    vals = pair_lookup(m, rows, pairs.indices)
    return sp.csr_matrix((vals[present], (rows[present], pairs.indices[present])), shape=pairs.shape)


def _aux_hit(data, pairs, aux):
    """Boolean per stored pair of ``pairs``: present in any auxiliary task of ``data``."""
    from mtl_classic._sparse import observation_pattern
    from mtl_classic.baselines._common import pair_lookup
    rows = np.repeat(np.arange(pairs.shape[0], dtype=np.int64), np.diff(pairs.indptr))
    hit = np.zeros(pairs.nnz, dtype=bool)
    for t in aux:
        hit |= pair_lookup(observation_pattern(data.matrices[t]), rows, pairs.indices) > 0
    return hit


def _aux_share(data, pairs, aux):
    """Share of ``pairs`` present in any auxiliary task of ``data`` (the exact-pair evidence available)."""
    if pairs.nnz == 0:
        return None
    return float(_aux_hit(data, pairs, aux).mean())


def split_by_aux(data, pairs, aux):
    """``pairs`` (csr) split into (present in an auxiliary task of ``data``, absent from all of them)."""
    pairs = sp.csr_matrix(pairs)
    pairs.sort_indices()
    hit = _aux_hit(data, pairs, aux)
    parts = []
    for keep in (hit, ~hit):
        part = pairs.copy()
        part.data = keep.astype(pairs.dtype)
        part.eliminate_zeros()
        parts.append(part)
    return tuple(parts)


def subsample_users(test, max_users, seed):
    """Keep the test pairs of at most ``max_users`` random test users (seeded); all when ``max_users`` is None."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    if max_users is None or len(users) <= max_users:
        return test
    keep = np.zeros(test.shape[0], dtype=bool)
    keep[np.random.default_rng(seed).choice(users, size=max_users, replace=False)] = True
    d = sp.diags(keep.astype(np.float64))
    out = sp.csr_matrix(d @ test)
    return out


# ----------------------------------------------------------------------------------------------------------------
# evaluation and tuning
# ----------------------------------------------------------------------------------------------------------------
def evaluate(model, train, test, target, ks=KS, per_user=False):
    """Protocol metrics (docs/MATH.md section 4) through ``mtl_classic.evaluation.evaluate_ranking``.

    Returns a flat dict ``{"hr@10": .., "ndcg@10": .., ...}`` plus ``n_users``; with ``per_user`` also
    ``"per_user_ndcg@10"``, every evaluated user's NDCG@10 (users ascending, for paired comparisons).
    """
    from mtl_classic.evaluation import evaluate_ranking

    res = evaluate_ranking(model, train, test, target, ks=ks, per_user=per_user)
    out = _flatten_metrics({k: v for k, v in res.items() if k != "per_user"}, ks)
    if per_user:
        out["per_user_ndcg@10"] = res["per_user"]["NDCG@10"]
    return out


def paired_bootstrap_ratio(ours, ref, n_resamples=2000, seed=0, level=0.95):
    """Ratio ``mean(ours) / mean(ref)`` of two models' per-user values on the same users, with a paired
    percentile-bootstrap interval over users (the users are resampled, each keeps both models' values).

    Returns
    -------
    (ratio, low, high)
    """
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape or ours.ndim != 1 or not len(ours):
        raise ValueError(f"paired_bootstrap_ratio needs two equal-length 1-d arrays; got {ours.shape} and "
                         f"{ref.shape}.")
    rng = np.random.default_rng(seed)
    ratios, n = np.empty(n_resamples), len(ours)
    chunk = max(1, 2 ** 22 // n)
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        ratios[start:start + len(idx)] = ours[idx].sum(axis=1) / np.maximum(ref[idx].sum(axis=1), 1e-300)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(ours.sum() / ref.sum()), float(low), float(high)


def _flatten_metrics(res, ks):
    if hasattr(res, "to_dict") and not isinstance(res, dict):
        res = res.to_dict()
    out = {}
    lower = {str(k).lower(): v for k, v in dict(res).items()}
    for k in ks:
        for m in ("hr", "ndcg"):
            for key in (f"{m}@{k}", f"{m}_{k}", f"{m}{k}"):
                if key in lower:
                    out[f"{m}@{k}"] = float(lower[key])
                    break
    for key in ("n_users", "users"):
        if key in lower:
            out["n_users"] = int(lower[key])
    if len(out) < 2 * len(ks):
        raise KeyError(f"evaluate_ranking returned keys {sorted(lower)}; cannot find hr/ndcg for ks={ks}")
    return out


def expand_grid(grid):
    """``{"a": [1, 2], "b": [3]}`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]`` (a list of dicts passes through)."""
    if isinstance(grid, list):
        return [dict(g) for g in grid]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


# ----------------------------------------------------------------------------------------------------------------
# models and their grids
# ----------------------------------------------------------------------------------------------------------------
ITERATIONS = 15
THREADS = 2


@dataclass
class ModelSpec:
    """How to build, fit and tune one model of the comparison.

    ``grid``: stage-1 grid (dict of lists or list of dicts), each point completed by ``defaults``. ``refine``:
    stage-2 grid of extra parameters (dict of lists, e.g. factors and regularization), tried as a product around
    the stage-1 winner (points already fitted are not refitted). ``make(**params)``
    returns an unfitted estimator; ``fit(model, data)`` fits it (default ``model.fit(data)``).
    """

    name: str
    make: object
    grid: object = field(default_factory=lambda: [{}])
    refine: dict = field(default_factory=dict)
    fit: object = None
    family: str = "baseline"
    defaults: dict = field(default_factory=dict)
    inner_choice: object = None   # () -> dict: what a self-tuning model chose in its last fit (the tuner row)

    def fit_on(self, params, data):
        model = self.make(**params)
        if self.fit is None:
            return model.fit(data)
        return self.fit(model, data)


def multitask_mf_available():
    """``(MultiTaskMF, Task)`` from the package, or None when mtl_classic.model is not importable."""
    try:
        from mtl_classic import MultiTaskMF, Task
        return MultiTaskMF, Task
    except ImportError:
        return None


MOVIELENS_KINDS = {"rated": "implicit", "liked": "binary", "rating": "regression", "tagged": "implicit"}


def genre_features(items):
    """One-hot genres (``a|b|c`` strings) of a movies DataFrame indexed by movieId -> DataFrame of 0/1 columns."""
    g = items["genres"].fillna("").str.get_dummies(sep="|")
    return g.drop(columns=[c for c in g.columns if c.startswith("(no genres")], errors="ignore").astype(float)


def shipped_tasks(bench, names=None, **implicit_params):
    """The task list of "the defaults" on ``bench``: ``Task(b)`` for every behaviour (``names``, default all of the
    training data's), MovieLens' ``liked`` / ``rating`` with their own kinds; ``implicit_params`` (e.g. ``alpha``) go
    to the implicit tasks only."""
    from mtl_classic import Task
    kinds = MOVIELENS_KINDS if bench.name == "movielens" else {}
    names = bench.train.task_names if names is None else names
    kind = {n: kinds.get(n, "implicit") for n in names}
    return [Task(n, kind=kind[n], **(implicit_params if kind[n] == "implicit" else {})) for n in names]


def dataset_parser(description, datasets=("movielens", "beibei", "tmall")):
    """The arguments every dataset benchmark takes: ``--data-dir``, ``--datasets`` and ``--out`` (add more, then
    ``parse_args``)."""
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--datasets", nargs="+", default=list(datasets))
    p.add_argument("--out", default=DEFAULT_OUT)
    return p


def params_label(params):
    """A configuration as quality.md writes it: ``k=v, k=v`` (floats in ``g`` format), "-" for none."""
    def v(x):
        return f"{x:g}" if isinstance(x, float) else str(x)
    return ", ".join(f"{k}={v(x)}" for k, x in params.items()) or "-"


def model_specs(bench, quick=False, only=None):
    """The models compared on ``bench`` with their (small) grids. ``quick``: one or two grid points each."""
    from mtl_classic.baselines import (AuxiliaryFirstRule, ClusteringRecommender, ImplicitALSRecommender,
                                       LinearSVMRecommender, PopularityRecommender)

    t = bench.target
    aux = AUX_TASKS[bench.name]
    refine = {"factors": [32, 64, 128], "regularization": [0.01, 1.0]}
    base_f = {"factors": 32, "regularization": 0.01}

    def g(full, small):
        return small if quick else full

    def als(**p):
        p = {**base_f, **p}
        w = p.pop("aux_weight", None)
        return ImplicitALSRecommender(target=t, iterations=ITERATIONS, num_threads=THREADS, random_state=0,
                                      aux_weights=None if w is None else {b: w for b in aux}, **p)

    specs = [
        ModelSpec("popularity", lambda: PopularityRecommender(target=t)),
        ModelSpec("aux-first rule", lambda: AuxiliaryFirstRule(target=t, auxiliary=aux)),
        ModelSpec("ALS target-only", als, g({"alpha": [1.0, 10.0, 40.0]}, {"alpha": [10.0]}), g(refine, {}),
                  defaults=base_f),
        ModelSpec("ALS merged", als, g({"aux_weight": [0.1, 0.3, 1.0], "alpha": [1.0, 10.0]},
                                       {"aux_weight": [0.3], "alpha": [1.0]}), g(refine, {}), defaults=base_f),
        ModelSpec("ALS + aux bonus", als, g({"aux_bonus": [0.1, 0.3, 1.0], "alpha": [1.0, 10.0]},
                                            {"aux_bonus": [1.0], "alpha": [10.0]}), g(refine, {}), defaults=base_f),
    ]
    # the reference of issue 13, with fixed settings: implicit's ALS on the target, k=64, alpha=10,
    # regularization=0.1, plus 1.0 on the user's auxiliary items
    specs.append(ModelSpec("ALS + aux bonus, fixed", lambda: als(factors=64, alpha=10.0, regularization=0.1,
                                                                  aux_bonus=1.0)))
    svm_feats = genre_features(bench.extra["items"]) if "items" in bench.extra else None
    specs.append(ModelSpec(
        "linear SVM", lambda **p: LinearSVMRecommender(target=t, tasks=[t], cross_tasks=aux, random_state=0, **p),
        g({"alpha": [1e-6, 1e-5, 1e-4], "n_negatives": [2, 4]}, {"alpha": [1e-5], "n_negatives": [2]}),
        fit=lambda m, d: m.fit(d, item_features=svm_feats)))
    specs.append(ModelSpec(
        "clustering", lambda **p: ClusteringRecommender(target=t, random_state=0, **p),
        g({"n_clusters": [50, 100, 200], "weighting": ["tfidf", "l2"]}, {"n_clusters": [50], "weighting": ["tfidf"]})))

    mt = multitask_mf_available()
    if mt is not None:
        MultiTaskMF, Task = mt
        kinds = MOVIELENS_KINDS if bench.name == "movielens" else {}

        def ours_single(**p):
            p = {**base_f, **p}
            a = p.pop("alpha", 1.0)
            return MultiTaskMF(tasks=[Task(t, kind="implicit", alpha=a)], iterations=ITERATIONS, n_jobs=THREADS,
                               random_state=0, verbose=False, **p)

        def ours_multi(**p):
            p = {**base_f, **p}
            a, w = p.pop("alpha", 1.0), p.pop("aux_weight", 0.3)
            tasks = []
            for name in bench.train.task_names:
                kind = kinds.get(name, "implicit")
                tasks.append(Task(name, kind=kind, weight=1.0 if name == t else w,
                                  **({"alpha": a} if kind == "implicit" else {})))
            return MultiTaskMF(tasks=tasks, iterations=ITERATIONS, n_jobs=THREADS, random_state=0, verbose=False,
                               **p)

        specs.append(ModelSpec("MultiTaskMF single-task", ours_single,
                               g({"alpha": [1.0, 10.0, 40.0]}, {"alpha": [10.0]}), g(refine, {}),
                               fit=lambda m, d: m.fit(d.subset_tasks([t])), family="ours", defaults=base_f))
        def ours_defaults():
            return MultiTaskMF(tasks=shipped_tasks(bench), random_state=0, n_jobs=THREADS)

        def ours_tuner():
            from mtl_classic.model_selection import SuccessiveHalvingSearch
            return SuccessiveHalvingSearch(ours_defaults(), target=t, random_state=0, show_progress=False)

        specs.append(ModelSpec("MultiTaskMF defaults", ours_defaults, family="ours"))
        tuner_choice = {}

        def fit_tuner(search, data):
            # the final fit chooses on the benchmark's validation split where it is built as the test was and the
            # library's own carve is not (Tmall's validation file, Beibei's latest buy per user)
            validation = None
            if data is bench.train and bench.name in ("beibei", "tmall"):
                from mtl_classic.data.splits import Split
                validation = Split(bench.val_train, bench.val_test, t, {"method": bench.info["validation"]})
            search.fit(data, validation=validation)
            tuner_choice.clear()
            tuner_choice.update(search.best_params_)
            return search.best_estimator_

        specs.append(ModelSpec("MultiTaskMF built-in tuner", ours_tuner, family="ours", fit=fit_tuner,
                               inner_choice=lambda: dict(tuner_choice)))
        specs.append(ModelSpec("MultiTaskMF multi-task", ours_multi,
                               g({"aux_weight": [0.1, 0.3, 1.0], "alpha": [1.0, 10.0]},
                                 {"aux_weight": [0.3], "alpha": [1.0]}), g(refine, {}), family="ours",
                               defaults=base_f))
    if only:
        specs = [s for s in specs if s.name in only or s.name.split()[0] in only]
    return specs


def tune(spec, bench, metric="ndcg@10", max_val_users=None):
    """Two-stage grid search on the validation split: ``spec.grid``, then ``spec.refine`` around the winner.

    Returns
    -------
    best_params : dict
    rows : list of dict (params, stage, validation metrics, fit seconds)
    """
    val_test = subsample_users(bench.val_test, max_val_users, seed=1)
    rows, seen = [], []

    def run(params, stage):
        key = json.dumps(params, sort_keys=True, default=str)
        if key in seen:
            return
        seen.append(key)
        t0 = time.perf_counter()
        model = spec.fit_on(params, bench.val_train)
        fit_s = time.perf_counter() - t0
        metrics = evaluate(model, bench.val_train, val_test, bench.target)
        rows.append({"stage": stage, "params": dict(params), **metrics, "fit_seconds": fit_s})
        log(f"  [{bench.name}] {spec.name} val {params} -> {metric} {metrics[metric]:.4f} (fit {fit_s:.1f}s)")

    for p in expand_grid(spec.grid):
        run({**p, **{k: v for k, v in spec.defaults.items() if k not in p}}, 1)
    best = dict(max(rows, key=lambda r: r[metric])["params"])
    if spec.refine:
        for extra in expand_grid(spec.refine):
            run({**best, **extra}, 2)
        best = dict(max(rows, key=lambda r: r[metric])["params"])
    return best, rows
