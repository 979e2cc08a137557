"""The framework-free half of :mod:`mtl_classic.serving`: the served model and its hot-swap (:class:`ModelHolder`),
the request logic (parameters -> library calls -> JSON-able dicts), the validation messages and the ASGI middleware
for body limits and request logs. Imports numpy and the inference path only (no FastAPI, no scikit-learn)."""
import asyncio
import json
import logging
import math
import numbers
import os
import threading
import time

import numpy as np

from .foldin import fold_in_users
from .inference import InferenceModel
from .persistence import MANIFEST_NAME, read_manifest

__all__ = ["ModelHolder"]

log = logging.getLogger("mtl_classic.serving")


class _HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def _json_value(v):
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _json_list(values):
    return [_json_value(v) for v in np.asarray(values).tolist()]


# --------------------------------------------------------------------------------------------------------------------
# the served model and its hot-swap
# --------------------------------------------------------------------------------------------------------------------
class _Snapshot:
    """One loaded model: what a request uses from start to end (never modified after construction)."""

    def __init__(self, model, path, artifact, generation, estimator=None, stamp=None):
        self.model, self.path, self.artifact, self.generation = model, path, artifact, generation
        self.loaded_at = time.time()
        self.int_users = model.user_ids.ids.dtype.kind == "i"
        self.int_items = model.item_ids.ids.dtype.kind == "i"
        self._estimator, self._stamp = estimator, stamp
        self.fold_lock = threading.Lock()        # fold-ins are serialised (and the estimator loaded once)

    def estimator(self):
        """The full ``MultiTaskMF`` behind this model (loaded on first use); 409 / 501 when there is none."""
        if self._estimator is not None:
            return self._estimator
        if self.path is None:
            raise _HTTPError(501, "fold-in needs the full estimator: start the server from a full saved model "
                                  "directory (model.save(path)) or with the fitted MultiTaskMF")
        if self.artifact != "full":
            raise _HTTPError(409, f"the served model ({self.path}) is a slim inference artifact without training "
                                  f"data; fold-in needs a full model saved with model.save(path) (slim=False)")
        if _file_stamp(self.path) != self._stamp:
            raise _HTTPError(409, f"the model in {self.path} was replaced since it was loaded; POST /admin/reload "
                                  f"first")
        from .model import MultiTaskMF
        self._estimator = MultiTaskMF.load(self.path)
        return self._estimator


def _file_stamp(path):
    try:
        st = os.stat(os.path.join(os.fspath(path), MANIFEST_NAME))
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ModelHolder:
    """The one reference to the served model, replaced atomically by :meth:`load` / :meth:`reload`.

    Parameters
    ----------
    mmap_mode : {None, "r"}
        Passed to :meth:`InferenceModel.load`.
    loader : callable(path, mmap_mode) -> InferenceModel, optional
        Default :meth:`InferenceModel.load`.
    """

    def __init__(self, mmap_mode=None, loader=None):
        self.mmap_mode = mmap_mode
        self.loader = loader or (lambda path, mmap_mode: InferenceModel.load(path, mmap_mode=mmap_mode))
        self.current = None            # a _Snapshot; readers take it once per request
        self.closing = False
        self.generation = 0
        self._lock = threading.Lock()  # serialises loads (reads never wait for it)

    def set(self, model, path=None, estimator=None):
        """Serve ``model`` (an InferenceModel, or a fitted MultiTaskMF whose estimator then serves fold-ins)."""
        if not isinstance(model, InferenceModel):
            estimator, model = model, InferenceModel.from_model(model)
        artifact = None
        if path is not None:
            path = os.path.abspath(os.fspath(path))
            artifact = read_manifest(path, check_version=False)["artifact"]
        with self._lock:
            return self._swap(model, path, artifact, estimator, _file_stamp(path) if path else None)

    def _swap(self, model, path, artifact, estimator, stamp):
        self.generation += 1
        snap = _Snapshot(model, path, artifact, self.generation, estimator, stamp)
        self.current = snap            # the swap: one reference
        return snap

    def load(self, path):
        """Load the model saved in ``path`` completely, then serve it; the served model is untouched on error."""
        path = os.path.abspath(os.fspath(path))
        with self._lock:
            stamp = _file_stamp(path)
            artifact = read_manifest(path, check_version=True)["artifact"]
            model = self.loader(path, self.mmap_mode)
            return self._swap(model, path, artifact, None, stamp)

    def reload(self, path=None):
        """Reload from ``path`` (default: the served model's directory)."""
        if path is None:
            path = self.current.path if self.current is not None else None
            if path is None:
                raise ValueError("no model directory to reload: the served model was not loaded from a path")
        return self.load(path)

    def reload_logged(self, path=None):
        try:
            snap = self.reload(path)
            log.warning("reloaded the model from %s (generation %d)", snap.path, snap.generation)
        except Exception as exc:                  # noqa: BLE001 - a signal-driven reload must not kill the server
            log.error("reload failed, still serving the previous model: %s: %s", type(exc).__name__, exc)


# --------------------------------------------------------------------------------------------------------------------
# request logic (no HTTP): parameters -> library calls -> JSON-able dicts
# --------------------------------------------------------------------------------------------------------------------
class _Logic:
    def __init__(self, max_n, max_pairs, allow_fallback):
        self.max_n, self.max_pairs, self.allow_fallback = int(max_n), int(max_pairs), allow_fallback

    @staticmethod
    def coerce(value, integer, kind):
        """A query / JSON id in the model's id type (ints for integer-id models)."""
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict, float)):
            raise _HTTPError(400, f"{kind} ids must be strings or integers; got {json.dumps(value)[:50]}")
        if integer:
            if isinstance(value, numbers.Integral):
                return int(value) if -2 ** 63 <= value < 2 ** 63 else str(value)   # beyond int64: unknown
            text = str(value).strip()
            try:
                v = int(text)
            except ValueError:
                return text          # cannot be a known id; reported as unknown (404)
            return v if -2 ** 63 <= v < 2 ** 63 else text
        return value if isinstance(value, str) else str(value)

    def task(self, model, task):
        if task is None or task == "":
            task = model.default_task
            if task is None:
                raise _HTTPError(400, f"missing parameter 'task'; tasks are {model.task_names}")
        if task not in model.task_index:
            raise _HTTPError(400, f"unknown task {str(task)[:100]!r}; tasks are {model.task_names}")
        return task

    def fallback(self, value):
        if value in (None, "", "none"):
            return "raise"
        if not self.allow_fallback:
            raise _HTTPError(400, "this server does not offer fallback=popular")
        return "popular"

    @staticmethod
    def filter_seen(model, value):
        if value is None or value is True or str(value).lower() in ("true", "1", "yes"):
            return True
        if value is False or str(value).lower() in ("false", "0", "no"):
            return False
        if value == "any":
            return "any"
        tasks = value.split(",")
        if any(t not in model.task_index for t in tasks):
            raise _HTTPError(400, f"filter_seen must be true, false, any or task name(s) of {model.task_names}; "
                                  f"got {value[:100]!r}")
        return tasks

    def weights(self, model, value):
        weights = {}
        for part in value.split(","):
            task, sep, w = part.partition(":")
            try:
                weight = float(w) if sep else float("nan")
            except ValueError:
                weight = float("nan")
            if not math.isfinite(weight):
                raise _HTTPError(400, f"weights must look like 'buy:1,click:0.3'; got {value[:100]!r}")
            weights[self.task(model, task)] = weight
        return weights

    def ranking(self, model, user, known, task, weights, n, filter_seen, exclude, allow, unknown):
        """The body of a recommendation answer (single task, or blended with ``weights``)."""
        try:
            if weights is not None:
                if task:
                    raise _HTTPError(400, "give either task= or weights=, not both")
                if not weights:
                    raise _HTTPError(400, "weights must name at least one task")
                weights = {self.task(model, t): float(w) for t, w in weights.items()}
                ids, scores, parts = model.recommend_blended(
                    [user], n=n, weights=weights, filter_seen=filter_seen, filter_items=exclude, items=allow,
                    unknown=unknown, return_breakdown=True)
                return {"user": _json_value(user), "weights": weights, "items": _json_list(ids[0]),
                        "scores": _json_list(scores[0]), "breakdown": {t: _json_list(v[0]) for t, v in parts.items()},
                        "fallback": not known}
            task = self.task(model, task)
            ids, scores = model.recommend([user], n=n, task=task, filter_seen=filter_seen, filter_items=exclude,
                                          items=allow, unknown=unknown)
        except KeyError as exc:
            raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown id") from None
        except (ValueError, TypeError) as exc:
            raise _HTTPError(400, str(exc)) from None
        return {"user": _json_value(user), "task": task, "items": _json_list(ids[0]), "scores": _json_list(scores[0]),
                "fallback": not known}

    _QUERY = {"user", "task", "n", "filter_seen", "exclude", "items", "fallback", "weights"}

    def query(self, items):
        """The parameters of ``GET /recommend`` from the query's (name, value) pairs."""
        q = {}
        for name, value in items:
            if name not in self._QUERY:
                raise _HTTPError(400, f"unknown parameter(s) {sorted({k for k, _ in items} - self._QUERY)}; "
                                      f"allowed: {sorted(self._QUERY)}")
            if name in q:
                raise _HTTPError(400, f"parameter(s) {[name]} given more than once")
            q[name] = value
        if not q.get("user"):
            raise _HTTPError(400, "missing parameter 'user'")
        raw = q.get("n", "10")
        try:
            q["n"] = int(raw)
        except ValueError:
            q["n"] = 0
        if not 1 <= q["n"] <= self.max_n:
            raise _HTTPError(400, f"n must be an integer in [1, {self.max_n}]; got {raw[:50]!r}")
        if q.get("fallback") not in (None, "", "none", "popular"):
            raise _HTTPError(400, f"fallback must be 'popular' or 'none'; got {q['fallback'][:50]!r}")
        return q

    def recommend(self, snap, items):
        model = snap.model
        q = self.query(items)
        user = self.coerce(q["user"], snap.int_users, "user")
        unknown = self.fallback(q.get("fallback"))
        filter_seen = self.filter_seen(model, q.get("filter_seen"))
        items = lambda v: None if v is None else [self.coerce(x, snap.int_items, "item") for x in v.split(",") if x]
        known = user in model.user_ids
        if not known and unknown == "raise":
            raise _HTTPError(404, f"unknown user {str(user)[:100]!r} (add fallback=popular for the most popular "
                                  f"items)")
        weights = None if q.get("weights") is None else self.weights(model, q["weights"])
        return self.ranking(model, user, known, q.get("task"), weights, q["n"], filter_seen, items(q.get("exclude")),
                            items(q.get("items")), unknown)

    def predict(self, snap, body):
        model = snap.model
        task = self.task(model, body.task)
        unknown = self.fallback(body.fallback)
        users = [self.coerce(u, snap.int_users, "user") for u, _ in body.pairs]
        items = [self.coerce(i, snap.int_items, "item") for _, i in body.pairs]
        try:
            pred = model.predict(task, users, items, unknown=unknown) if users else np.zeros(0)
        except KeyError as exc:
            raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown id") from None
        except (ValueError, TypeError) as exc:
            raise _HTTPError(400, str(exc)) from None
        return {"task": task, "predictions": _json_list(pred)}

    def events(self, snap, user, body):
        model = snap.model
        user = self.coerce(user, snap.int_users, "user")
        total = sum(len(v) for v in body.events.values())
        if total > self.max_pairs:
            raise _HTTPError(400, f"at most {self.max_pairs} events per request; got {total}")
        given, user_side = {}, sorted(n for n, s in model.side.items() if s[0] == "user")
        for task, items in body.events.items():
            if task in user_side:                  # a user side matrix's column ids (e.g. the queries typed)
                given[task] = items
                continue
            if task not in model.task_index:
                raise _HTTPError(400, f"unknown task {task[:100]!r} in events; tasks are {model.task_names}"
                                 + (f", user side matrices {user_side}" if user_side else ""))
            if isinstance(items, dict):
                given[task] = {self.coerce(k, snap.int_items, "item"): v for k, v in items.items()}
            else:
                given[task] = [self.coerce(i, snap.int_items, "item") for i in items]
        if body.unknown_items == "raise":
            try:                                   # the served model's ids name the kind in the message
                for task, items in given.items():
                    if task not in user_side:
                        model.item_ids.index(list(items))
            except KeyError as exc:
                raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown item") from None
        filter_seen = self.filter_seen(model, body.filter_seen)
        item_list = lambda v: None if v is None else [self.coerce(x, snap.int_items, "item") for x in v]
        known = user in model.user_ids
        side_only = not known and given and set(given) <= set(user_side)
        with snap.fold_lock:
            try:
                if side_only:                      # the cold-start solve: the served model alone, no estimator
                    folded = model.users_from_side([user], {n: [v] for n, v in given.items()},
                                                   unknown=body.unknown_items)
                else:
                    folded = fold_in_users(snap.estimator(), given, user_ids=[user],
                                           base_users=[user if known else None], unknown_items=body.unknown_items)
            except KeyError as exc:
                raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown id") from None
            except (ValueError, TypeError) as exc:
                raise _HTTPError(400, str(exc)) from None
        cold = folded.cold is not None
        out = self.ranking(folded, user, not cold, body.task, body.weights, body.n, filter_seen,
                           item_list(body.exclude), item_list(body.items), "raise")
        out.update(known_user=bool(known), events={t: len(v) for t, v in given.items()})
        return out

    def new_items(self, snap, body):
        """POST /items/rank: a known user's ranking of new items given by their side matrices' column ids."""
        model = snap.model
        user = self.coerce(body.user, snap.int_users, "user")
        if user not in model.user_ids:
            raise _HTTPError(404, f"unknown user {str(user)[:100]!r}: new items are ranked for known users")
        task = self.task(model, body.task)
        ids = [self.coerce(it.item, snap.int_items, "item") for it in body.items]
        names = sorted({name for it in body.items for name in it.side})
        features = sorted({name for it in body.items for name in it.features})
        if not names and not features:
            raise _HTTPError(400, "every new item needs its side matrices' column ids in 'side' (or its item "
                                  "features' values in 'features')")
        side_rows = {name: [it.side.get(name, []) for it in body.items] for name in names}
        columns = model.item_feature_columns
        for name in features:
            if name not in columns or name in side_rows:
                raise _HTTPError(400, f"{str(name)[:100]!r} in 'features' is not an item feature of the model "
                                      f"({sorted(columns)}) or is also given in 'side'")
            column = columns[name].ids[0]      # a 1-column matrix
            side_rows[name] = [{column: it.features[name]} if name in it.features else {} for it in body.items]
        try:
            scores = model.score_new_items(user, ids, side_rows, task=task)
        except KeyError as exc:
            raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown column id") from None
        except (ValueError, TypeError) as exc:
            raise _HTTPError(400, str(exc)) from None
        order = np.argsort(-scores, kind="stable")[:body.n]
        return {"user": _json_value(user), "task": task, "items": [_json_value(ids[j]) for j in order],
                "scores": _json_list(scores[order]), "fallback": False}


# --------------------------------------------------------------------------------------------------------------------
# the ASGI application
# --------------------------------------------------------------------------------------------------------------------
def _validation_message(errors, logic):
    """One readable message for FastAPI's validation errors (the first one)."""
    e = errors[0] if errors else {"loc": (), "type": "", "msg": "invalid request"}
    loc, kind, got = tuple(e.get("loc", ())), e.get("type", ""), e.get("input")
    name = str(loc[-1]) if loc else ""
    shown = json.dumps(got, default=str)[:60] if got is not None else "nothing"
    if kind == "json_invalid":
        return f"malformed JSON body ({e.get('ctx', {}).get('error', e.get('msg'))})"
    if loc == ("body",):
        return ("missing JSON body" if kind == "missing" else
                "the body must be a JSON object (see GET /openapi.json for its fields)")
    if loc[:1] == ("body",) and kind == "extra_forbidden":
        return f"unknown key {name!r} in the body; see GET /openapi.json for the allowed keys"
    if name == "n" and len(loc) == 2:
        return f"n must be an integer in [1, {logic.max_n}]; got {shown}"
    if name in ("fallback",):
        return f"fallback must be 'popular' or 'none'; got {shown}"
    if loc[:1] == ("query",) and kind in ("missing", "string_too_short"):
        return f"missing parameter {name!r}"
    if loc[:2] == ("body", "pairs"):
        if kind == "too_long":
            return f"at most {logic.max_pairs} pairs per request; got {len(got) if isinstance(got, list) else '?'}"
        if len(loc) >= 4 and kind != "missing":
            return f"ids must be strings or integers; got {shown} at pairs[{loc[2]}][{loc[3]}]"
        return '"pairs" must be a list of [user, item] pairs'
    where = ".".join(str(x) for x in loc[1:]) or "request"
    return f"{loc[0] if loc else 'request'} {where}: {e.get('msg', 'invalid')}"


class _Limits:
    """Pure ASGI middleware: body size limit (413), Content-Length rules (411 / 400), a body that does not arrive
    within ``body_timeout`` seconds (408) and one log line per request."""

    def __init__(self, app, max_body, body_timeout=30.0):
        self.app, self.max_body, self.body_timeout = app, int(max_body), float(body_timeout)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                receive = await self._bounded_body(scope, receive, sending)
                if receive is None:
                    return
            await self.app(scope, receive, sending)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(json.dumps({"method": scope["method"], "path": scope["path"], "status": status[0],
                                     "ms": round((time.perf_counter() - start) * 1000, 3),
                                     "client": (scope.get("client") or ["?"])[0]}))

    async def _bounded_body(self, scope, receive, send):
        headers = dict(scope["headers"])
        length, chunked = headers.get(b"content-length"), b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is None and not chunked:
            return await _send_json(send, 411, {"error": "Content-Length required"})
        if length is not None:
            try:
                length = int(length)
                if length < 0:
                    raise ValueError
            except ValueError:
                return await _send_json(send, 400, {"error": "bad Content-Length"})
            if length > self.max_body:
                return await _send_json(send, 413, {"error": f"body of {length} bytes exceeds the limit of "
                                                             f"{self.max_body}"})
        chunks, size, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                return await _send_json(send, 408, {"error": f"the request body did not arrive within "
                                                             f"{self.body_timeout:g} s"})
            if message["type"] != "http.request":
                return None                        # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body:
                return await _send_json(send, 413, {"error": f"body exceeds the limit of {self.max_body} bytes"})
        body, done = b"".join(chunks), [False]

        async def replay():
            if done[0]:
                return await receive()
            done[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return replay


async def _send_json(send, status, payload):
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
    return None
