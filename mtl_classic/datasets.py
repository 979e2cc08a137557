"""Dataset loaders. They read local files only and never download anything.

* :func:`load_movielens` -- MovieLens CSV (``ratings.csv``, ``tags.csv``); defaults to the embedded copy of
  ``ml-latest-small`` shipped with the package (``mtl_classic/datasets_data/ml-latest-small``, with its README and
  licence).
* :func:`load_ghcf` -- the GHCF/EHCF text format (``u i1 i2 ...`` per line, 0-based ids), e.g. Beibei.
* :func:`load_pairs` -- one ``u i`` pair per line, ids from 1, ``count.txt`` with the sizes, e.g. Tmall.

:func:`load_movielens` returns a :class:`~mtl_classic.data.MultiTaskData` (no given test split: use
:func:`~mtl_classic.data.leave_last_out`); :func:`load_ghcf` and :func:`load_pairs` return a :class:`Dataset` named
tuple (``data``, ``test``, ``validation``, ``report``, ...). Bad files raise
``FileNotFoundError`` naming the path or ``ValueError`` naming the file, the first bad line and the number of bad
lines; nothing is silently dropped.
"""
from itertools import chain
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.container import MultiTaskData, _build_csr
from .data.idmap import IdMap

__all__ = ["Dataset", "load_movielens", "load_movielens_items", "load_ghcf", "load_pairs", "MOVIELENS_DIR"]

#: The embedded copy of MovieLens ml-latest-small (GroupLens; see README.txt there for the licence).
MOVIELENS_DIR = Path(__file__).resolve().parent / "datasets_data" / "ml-latest-small"

MOVIELENS_TASKS = ("rated", "liked", "rating", "tagged")

_TEST_RULE = ("held-out pairs are kept even when their user or item has no training observation in any task (the id "
              "space is fixed by the files' integer ids, so every pair can be indexed); such pairs are counted here "
              "and can only be hit by models that score cold users/items")


class Dataset(NamedTuple):
    """What :func:`load_ghcf` and :func:`load_pairs` return (a named tuple: ``data, test = load_ghcf(path)[:2]``).

    Attributes
    ----------
    data : MultiTaskData
        The training observations of every task.
    test : scipy.sparse.csr_matrix or None
        Held-out pairs of the target task over ``data``'s index. Turn it into a split with
        ``given_test_pairs(ds.data, ds.target, ds.test)``.
    validation : scipy.sparse.csr_matrix or None
        Held-out validation pairs of the target task, when the dataset has them.
    report : dict
        Counts: users, items, nnz and duplicates per task, test / validation pairs and how many of them involve
        users or items without training data, blank lines skipped, and the rules applied.
    target : str or None
        The task ``test`` belongs to.
    name : str
        Short name of the dataset (directory name).
    """

    data: MultiTaskData
    test: sp.csr_matrix = None
    validation: sp.csr_matrix = None
    report: dict = None
    target: str = None
    name: str = None


# --------------------------------------------------------------------------------------------------------------------
# text parsing helpers
# --------------------------------------------------------------------------------------------------------------------
def _require_file(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {str(path)!r}.")
    return path


def _read_int_lines(path, min_tokens, max_tokens=None):
    """Parse a text file of whitespace-separated non-negative integers, vectorised.

    Parameters
    ----------
    path : Path
    min_tokens, max_tokens : int
        Allowed number of integers on a non-blank line (``max_tokens`` None: unbounded).

    Returns
    -------
    values : ndarray of int64
        All integers, line after line.
    lengths : ndarray of int64
        Number of integers on each non-blank line.
    line_numbers : ndarray of int64
        1-based line number of each non-blank line.
    n_blank : int
        Blank (whitespace-only) lines skipped.

    Raises
    ------
    ValueError
        Naming the file, the first bad line (1-based) and the number of bad lines, for lines with a wrong number of
        fields or tokens that are not non-negative decimal integers; or for a file without data.
    """
    path = _require_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({exc}).") from None
    lines = text.splitlines()
    split = [line.split() for line in lines]
    all_lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    blank = all_lengths == 0
    if blank.all():
        raise ValueError(f"{str(path)!r} is empty (no data lines).")
    bad_len = ~blank & (all_lengths < min_tokens)
    if max_tokens is not None:
        bad_len |= all_lengths > max_tokens
    if bad_len.any():
        rows = np.flatnonzero(bad_len)
        want = f"{min_tokens}" if max_tokens == min_tokens else (
            f"at least {min_tokens}" if max_tokens is None else f"{min_tokens} to {max_tokens}")
        raise ValueError(f"{str(path)!r}: {rows.size} malformed line(s) (expected {want} integers per line); first "
                         f"bad line {rows[0] + 1}: {lines[rows[0]][:80]!r}.")
    tokens = np.array(list(chain.from_iterable(split)))
    token_line = np.repeat(np.arange(len(lines)), all_lengths)
    ok = np.char.isdigit(tokens) if tokens.size else np.ones(0, dtype=bool)
    values = None
    if ok.all():
        try:
            values = tokens.astype(np.int64)
        except (ValueError, OverflowError):  # exotic digits or huge numbers: find them one by one
            ok = np.array([_is_int64(t) for t in tokens.tolist()], dtype=bool)
    if values is None:
        bad_lines = np.unique(token_line[~ok])
        first = int(bad_lines[0])
        raise ValueError(f"{str(path)!r}: {bad_lines.size} malformed line(s) (ids must be non-negative integers); "
                         f"first bad line {first + 1}: {lines[first][:80]!r}.")
    keep = ~blank
    return values, all_lengths[keep], np.flatnonzero(keep) + 1, int(blank.sum())


def _is_int64(token):
    try:
        return token.isdigit() and 0 <= int(token) <= np.iinfo(np.int64).max
    except ValueError:
        return False


def _bad_line_error(path, what, line_numbers, mask):
    rows = np.asarray(line_numbers)[mask]
    return ValueError(f"{str(path)!r}: {rows.size} line(s) with {what}; first bad line {int(rows[0])}.")


def _read_ghcf_file(path):
    """``u i1 i2 ...`` lines -> (users, items, user_of_line, line_of_entry, n_blank)."""
    values, lengths, line_numbers, n_blank = _read_int_lines(path, min_tokens=1)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    line_users = values[starts]
    is_item = np.ones(values.shape[0], dtype=bool)
    is_item[starts] = False
    users = np.repeat(line_users, lengths - 1)
    items = values[is_item]
    entry_lines = np.repeat(line_numbers, lengths - 1)
    return users, items, line_users, line_numbers, entry_lines, n_blank


def _read_pairs_file(path):
    """``u i`` lines -> (users, items, line_of_entry, n_blank)."""
    values, lengths, line_numbers, n_blank = _read_int_lines(path, min_tokens=2, max_tokens=2)
    return values[0::2], values[1::2], line_numbers, n_blank


def _pairs_matrix(users, items, shape):
    m, _, n_dup = _build_csr(users, items, np.ones(users.shape[0]), shape, how="sum")
    return m, n_dup


def _held_out_report(name, matrix, train_matrices, target):
    """Counts for a held-out matrix: pairs, users, cold users/items, overlap with the training target."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    cols = matrix.indices
    user_has = np.zeros(matrix.shape[0], dtype=bool)
    item_has = np.zeros(matrix.shape[1], dtype=bool)
    for m in train_matrices.values():
        user_has |= np.diff(m.indptr) > 0
        item_has[m.indices] = True
    target_m = train_matrices[target]
    n_items = np.int64(matrix.shape[1])
    key_train = np.repeat(np.arange(target_m.shape[0], dtype=np.int64), np.diff(target_m.indptr)) * n_items \
        + target_m.indices
    overlap = np.isin(rows.astype(np.int64) * n_items + cols, key_train)
    return {
        "file": name,
        "n_pairs": int(matrix.nnz),
        "n_users": int(np.count_nonzero(np.diff(matrix.indptr))),
        "n_pairs_user_without_train": int(np.count_nonzero(~user_has[rows])),
        "n_pairs_item_without_train": int(np.count_nonzero(~item_has[cols])),
        "n_pairs_user_without_train_target": int(np.count_nonzero(np.diff(target_m.indptr)[rows] == 0)),
        "n_pairs_in_train_target": int(overlap.sum()),
    }


def _assemble(name, path, fmt, files, parsed, test_parsed, validation_parsed, target, user_ids, item_ids,
              to_index, extra_report):
    """Common tail of load_ghcf / load_pairs: index, build matrices, held-out matrices and the report."""
    shape = (len(user_ids), len(item_ids))
    matrices, dups = {}, {}
    for task, (users, items) in parsed.items():
        m, n_dup = _pairs_matrix(to_index(users, "user"), to_index(items, "item"), shape)
        matrices[task], dups[task] = m, n_dup
    data = MultiTaskData(matrices, IdMap(user_ids), IdMap(item_ids),
                         report={"source": fmt, "duplicates": dups,
                                 "nnz": {t: int(m.nnz) for t, m in matrices.items()}})
    report = {"name": name, "path": str(path), "format": fmt, "files": files,
              "n_users": data.n_users, "n_items": data.n_items,
              "nnz": {t: int(m.nnz) for t, m in matrices.items()},
              "duplicates": dups,
              "users_without_train": int(np.count_nonzero(
                  ~np.any([np.diff(m.indptr) > 0 for m in matrices.values()], axis=0))),
              "target": target}
    report.update(extra_report)
    held = {}
    for key, parsed_held in (("test", test_parsed), ("validation", validation_parsed)):
        if parsed_held is None:
            held[key] = None
            continue
        (users, items), fname = parsed_held
        m, n_dup = _pairs_matrix(to_index(users, "user"), to_index(items, "item"), shape)
        held[key] = m
        rep = _held_out_report(fname, m, matrices, target)
        rep["n_duplicates"] = n_dup
        report[key] = rep
    if test_parsed is not None or validation_parsed is not None:
        report["held_out_rule"] = _TEST_RULE
    data.report.update({"loader": report})
    return Dataset(data=data, test=held["test"], validation=held["validation"], report=report, target=target,
                   name=name)


# --------------------------------------------------------------------------------------------------------------------
# GHCF format (Beibei)
# --------------------------------------------------------------------------------------------------------------------
def load_ghcf(path, behaviors=None, test_file="test.txt", validation_file=None, target="buy"):
    """Load a dataset in the GHCF/EHCF text format (e.g. Beibei).

    Every file has one line per user: ``u i1 i2 ...`` (whitespace separated, 0-based integer ids; a line with only
    ``u`` is a user without items). Blank lines are skipped and counted.

    Parameters
    ----------
    path : str or Path
        Directory with the files.
    behaviors : dict of str -> str, optional
        Task name -> file name, in task order. Default: ``{"cart": "cart.txt", "buy": "train.txt"}`` plus
        ``"view": "pv.txt"`` (first) when that file exists; ``train.txt`` holds the purchases.
    test_file : str or None, default="test.txt"
        Held-out purchases (same format). None: no test.
    validation_file : str or None, default=None
        Optional held-out validation purchases (same format).
    target : str, default="buy"
        The task the held-out files belong to.

    Returns
    -------
    Dataset
        ``data`` holds users ``0 .. max user id`` and items ``0 .. max item id`` over all files (training and
        held-out), external id = internal index = the file's id; values are event counts (1 per listed pair;
        a pair listed twice counts 2 and is reported in ``report["duplicates"]``). ``count.txt`` (JSON with
        ``user`` and ``item``), when present, fixes the sizes instead and ids beyond it are an error.

    Raises
    ------
    FileNotFoundError
        A required file is missing.
    ValueError
        Malformed lines (the message names the file, the first bad line and the count), ids beyond
        ``count.txt``, or a target that is not a task.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No such dataset directory: {str(path)!r}.")
    if behaviors is None:
        behaviors = {}
        if (path / "pv.txt").is_file():
            behaviors["view"] = "pv.txt"
        behaviors.update({"cart": "cart.txt", "buy": "train.txt"})
    behaviors = dict(behaviors)
    if target not in behaviors:
        raise ValueError(f"load_ghcf: target {target!r} is not one of the behaviours {list(behaviors)}.")
    parsed, blank, user_lines = {}, {}, {}
    max_user, max_item = -1, -1
    raw = {}
    for task, fname in behaviors.items():
        users, items, line_users, line_numbers, entry_lines, n_blank = _read_ghcf_file(path / fname)
        raw[task] = (users, items, entry_lines, path / fname)
        blank[fname] = n_blank
        # a user on several lines of the same file is merged; count it
        user_lines[fname] = int(line_users.shape[0] - np.unique(line_users).shape[0])
        max_user = max(max_user, int(line_users.max()))
        if items.size:
            max_item = max(max_item, int(items.max()))
        parsed[task] = (users, items)
    held_parsed = {}
    for key, fname in (("test", test_file), ("validation", validation_file)):
        if fname is None:
            held_parsed[key] = None
            continue
        users, items, line_users, _, entry_lines, n_blank = _read_ghcf_file(path / fname)
        raw[key] = (users, items, entry_lines, path / fname)
        blank[fname] = n_blank
        max_user = max(max_user, int(line_users.max()))
        if items.size:
            max_item = max(max_item, int(items.max()))
        held_parsed[key] = ((users, items), fname)
    n_users, n_items, size_rule = _sizes(path, max_user + 1, max_item + 1, first_id=0, raw=raw)

    def to_index(ids, kind):
        return ids

    files = dict(behaviors)
    files.update({k: v for k, v in (("test", test_file), ("validation", validation_file)) if v})
    extra = {"blank_lines": blank, "repeated_user_lines": user_lines, "id_rule": size_rule,
             "value_rule": "1 per listed (user, item) pair; repeated pairs are summed (counted in duplicates)"}
    return _assemble(path.name, path, "ghcf", files, parsed, held_parsed["test"], held_parsed["validation"],
                     target, np.arange(n_users), np.arange(n_items), to_index, extra)


def _sizes(path, n_users_seen, n_items_seen, first_id, raw):
    """Sizes from count.txt when present (checking every id fits), else from the largest id seen."""
    count_file = path / "count.txt"
    if not count_file.is_file():
        return n_users_seen, n_items_seen, (f"ids {first_id} .. largest id seen in any file (training or held "
                                            f"out); external id = the file's integer id")
    try:
        counts = json.loads(count_file.read_text(encoding="utf-8"))
        n_users, n_items = int(counts["user"]), int(counts["item"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(count_file)!r} must be JSON like {{\"user\": 10, \"item\": 20}} ({exc}).") from None
    if n_users < 1 or n_items < 1:
        raise ValueError(f"{str(count_file)!r}: sizes must be >= 1; got user={n_users}, item={n_items}.")
    last = first_id - 1
    for users, items, entry_lines, fpath in raw.values():
        for ids, n, kind in ((users, n_users, "user"), (items, n_items, "item")):
            bad = (ids < first_id) | (ids > n + last)
            if bad.any():
                raise _bad_line_error(fpath, f"{kind} ids outside {first_id} .. {n + last} (count.txt)", entry_lines,
                                      bad)
    return n_users, n_items, f"ids {first_id} .. {first_id} + count - 1 from count.txt; external id = the file's id"


# --------------------------------------------------------------------------------------------------------------------
# pair format (Tmall)
# --------------------------------------------------------------------------------------------------------------------
def load_pairs(path, behaviors=None, test_file="test.txt", validation_file="validation.txt", target="buy",
               first_id=1):
    """Load a dataset of ``u i`` pair files (e.g. Tmall: buy.txt, cart.txt, collect.txt, validation.txt, test.txt).

    Parameters
    ----------
    path : str or Path
        Directory with the files; ``count.txt`` (JSON ``{"user": n, "item": m}``) fixes the sizes when present.
    behaviors : dict of str -> str, optional
        Task name -> file name, in task order. Default: every ``*.txt`` in ``path`` except the test, validation and
        count files, named by file stem, in sorted order (Tmall: buy, cart, collect).
    test_file, validation_file : str or None
        Held-out pairs of ``target`` (None or a missing default ``validation.txt``: none).
    target : str, default="buy"
        The task the held-out files belong to.
    first_id : int, default=1
        Smallest valid id (Tmall ids start at 1). External ids are the file's ids; internal index = id - first_id.

    Returns
    -------
    Dataset
        Users ``first_id .. first_id + count.txt user - 1`` (or up to the largest id seen in any file when there is
        no count.txt), items likewise. Values are event counts (repeated pairs summed and reported in
        ``report["duplicates"]``).

    Raises
    ------
    FileNotFoundError
        A required file is missing.
    ValueError
        Malformed lines (the message names the file, the first bad line and the count), ids outside the id range,
        or a target that is not a task.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"No such dataset directory: {str(path)!r}.")
    held_names = {test_file, validation_file, "count.txt"}
    if behaviors is None:
        behaviors = {p.stem: p.name for p in sorted(path.glob("*.txt")) if p.name not in held_names}
        if not behaviors:
            raise FileNotFoundError(f"No behaviour files (*.txt) in {str(path)!r}.")
    behaviors = dict(behaviors)
    if target not in behaviors:
        raise ValueError(f"load_pairs: target {target!r} is not one of the behaviours {list(behaviors)}.")
    if validation_file == "validation.txt" and not (path / validation_file).is_file():
        validation_file = None
    raw, blank, parsed = {}, {}, {}
    for task, fname in behaviors.items():
        users, items, line_numbers, n_blank = _read_pairs_file(path / fname)
        raw[task] = (users, items, line_numbers, path / fname)
        blank[fname] = n_blank
        parsed[task] = (users, items)
    held_parsed = {"test": None, "validation": None}
    for key, fname in (("test", test_file), ("validation", validation_file)):
        if fname is None:
            continue
        users, items, line_numbers, n_blank = _read_pairs_file(path / fname)
        raw[key] = (users, items, line_numbers, path / fname)
        blank[fname] = n_blank
        held_parsed[key] = ((users, items), fname)
    for users, items, line_numbers, fpath in raw.values():
        for ids, kind in ((users, "user"), (items, "item")):
            bad = ids < first_id
            if bad.any():
                raise _bad_line_error(fpath, f"{kind} ids below {first_id} (ids start at {first_id})", line_numbers,
                                      bad)
    max_user = max(int(u.max()) for u, _, _, _ in raw.values())
    max_item = max(int(i.max()) for _, i, _, _ in raw.values())
    n_users, n_items, size_rule = _sizes(path, max_user - first_id + 1, max_item - first_id + 1, first_id, raw)

    def to_index(ids, kind):
        return ids - first_id

    files = dict(behaviors)
    files.update({k: v for k, v in (("test", test_file), ("validation", validation_file)) if v})
    extra = {"blank_lines": blank, "id_rule": size_rule,
             "value_rule": "1 per listed (user, item) pair; repeated pairs are summed (counted in duplicates)"}
    return _assemble(path.name, path, "pairs", files, parsed, held_parsed["test"], held_parsed["validation"],
                     target, np.arange(first_id, first_id + n_users), np.arange(first_id, first_id + n_items),
                     to_index, extra)


# --------------------------------------------------------------------------------------------------------------------
# MovieLens
# --------------------------------------------------------------------------------------------------------------------
def _read_csv(path, required):
    path = _require_file(path)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{str(path)!r} is empty.") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{str(path)!r} is not valid CSV: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{str(path)!r}: missing column(s) {missing}; found {list(df.columns)}.")
    if len(df) == 0:
        raise ValueError(f"{str(path)!r} has a header but no rows.")
    return df


def _check_column(df, path, col, kind):
    """Validate one CSV column; ``kind`` "id" (integers) or "value" (finite numbers). Lines are 1-based with header."""
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    values = np.array(num, dtype=np.float64)
    bad = ~np.isfinite(values)
    what = "missing, non-numeric or infinite values"
    if kind == "id":
        bad |= np.isfinite(values) & (values != np.round(values))
        what = "missing or non-integer ids"
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{str(path)!r}: column {col!r} has {rows.size} row(s) with {what}; first at line "
                         f"{rows[0] + 2} (value {raw.iloc[rows[0]]!r}).")
    return values.astype(np.int64) if kind == "id" else values


def load_movielens(path=None, tasks=None, like_threshold=4.0):
    """Load MovieLens ratings and tags as four tasks on one user x movie index.

    Tasks (in this order; pick a subset with ``tasks``):

    * ``rated`` -- implicit, 1 for every rated (user, movie);
    * ``liked`` -- binary among rated pairs: 1 if rating >= ``like_threshold`` else 0 (zeros are observations);
    * ``rating`` -- regression, the rating value (0.5 .. 5);
    * ``tagged`` -- implicit, number of tags the user put on the movie.

    Timestamps are kept (the latest per pair), so :func:`~mtl_classic.data.leave_last_out` works. ``rated``,
    ``liked`` and ``rating`` are three views of the same rating events: when one of them is the target of a split,
    remove the held-out pairs from the others too, e.g.
    ``leave_last_out(data, "rated", also_remove=["liked", "rating"])``; otherwise they leak into training.

    Parameters
    ----------
    path : str or Path, optional
        Directory with ``ratings.csv`` (``userId, movieId, rating, timestamp``) and, for the ``tagged`` task,
        ``tags.csv`` (``userId, movieId, tag, timestamp``). Default: the embedded ``ml-latest-small``
        (:data:`MOVIELENS_DIR`). Titles and genres: :func:`load_movielens_items`.
    tasks : sequence of str, optional
        Subset of ``("rated", "liked", "rating", "tagged")``; default all four.
    like_threshold : float, default=4.0
        Ratings at or above it are "liked".

    Returns
    -------
    MultiTaskData
        User and movie ids are the files' integer ids (sorted); users and items are those seen in the files read for
        the chosen tasks. A user re-rating a movie keeps the latest rating; repeated tags are summed; both are
        counted in ``data.report["loader"]["duplicates"]``. There is no given test split: use
        :func:`~mtl_classic.data.leave_last_out`.

    Raises
    ------
    FileNotFoundError
        A required file is missing.
    ValueError
        Missing columns, empty files, missing / non-integer ids or non-finite ratings / timestamps (the message
        names the file, the column and the first bad line).
    """
    path = MOVIELENS_DIR if path is None else Path(path)
    tasks = list(MOVIELENS_TASKS) if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in MOVIELENS_TASKS]
    if unknown or not tasks:
        raise ValueError(f"load_movielens: tasks must be a non-empty subset of {MOVIELENS_TASKS}. Got {tasks}.")
    tasks = [t for t in MOVIELENS_TASKS if t in tasks]
    frames, report = [], {"name": path.name, "path": str(path), "format": "movielens",
                          "like_threshold": float(like_threshold)}
    rating_tasks = [t for t in tasks if t != "tagged"]
    if rating_tasks:
        rpath = path / "ratings.csv"
        ratings = _read_csv(rpath, ["userId", "movieId", "rating", "timestamp"])
        u = _check_column(ratings, rpath, "userId", "id")
        i = _check_column(ratings, rpath, "movieId", "id")
        r = _check_column(ratings, rpath, "rating", "value")
        ts = _check_column(ratings, rpath, "timestamp", "value")
        report["n_rating_rows"] = int(len(ratings))
        for task in rating_tasks:
            value = {"rated": np.ones_like(r), "liked": (r >= like_threshold).astype(np.float64), "rating": r}[task]
            frames.append(pd.DataFrame({"user": u, "item": i, "task": task, "value": value, "ts": ts}))
    if "tagged" in tasks:
        tpath = path / "tags.csv"
        tags = _read_csv(tpath, ["userId", "movieId", "timestamp"])
        u = _check_column(tags, tpath, "userId", "id")
        i = _check_column(tags, tpath, "movieId", "id")
        ts = _check_column(tags, tpath, "timestamp", "value")
        report["n_tag_rows"] = int(len(tags))
        frames.append(pd.DataFrame({"user": u, "item": i, "task": "tagged", "value": 1.0, "ts": ts}))
    events = pd.concat(frames, ignore_index=True)
    aggregate = {"rated": "max", "liked": "last", "rating": "last", "tagged": "sum"}
    data = MultiTaskData.from_events(events, user_col="user", item_col="item", task_col="task", value_col="value",
                                     timestamp_col="ts", aggregate={t: aggregate[t] for t in tasks})
    report.update({"n_users": data.n_users, "n_items": data.n_items,
                   "nnz": {t: data.nnz(t) for t in data.task_names},
                   "duplicates": data.report["duplicates"],
                   "aggregate": data.report["aggregate"]})
    data.report.update({"loader": report})
    return data


def load_movielens_items(path=None):
    """Movie titles and genres of a MovieLens directory (``movies.csv``).

    Parameters
    ----------
    path : str or Path, optional
        Directory with ``movies.csv`` (``movieId, title, genres``); default the embedded ``ml-latest-small``.

    Returns
    -------
    pandas.DataFrame
        Columns ``title`` and ``genres``, indexed by ``movieId`` (the external item ids of :func:`load_movielens`).
        Use ``items.reindex(data.item_map.ids)`` to align it with a data set.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, missing columns, missing or non-integer ids (naming the file and the first bad line).
    """
    path = MOVIELENS_DIR if path is None else Path(path)
    mpath = path / "movies.csv"
    movies = _read_csv(mpath, ["movieId", "title", "genres"])
    ids = _check_column(movies, mpath, "movieId", "id")
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise ValueError(f"{str(mpath)!r}: {rows.size} repeated movieId(s); first at line {rows[0] + 2}.")
    out = movies[["title", "genres"]].set_axis(pd.Index(ids, name="movieId"))
    return out
