"""A small JSON-over-HTTP server for a saved model, on the standard library alone.

Endpoints (loopback ``127.0.0.1`` by default)::

    GET  /health                                   -> {"status": "ok", "tasks": [...], "n_users": .., ...}
    GET  /recommend?user=U&task=T&n=10             -> {"user": U, "task": T, "items": [...], "scores": [...]}
         optional: filter_seen=true|false|any|<task>, exclude=i1,i2 (item ids never returned),
                   items=i1,i2 (allow-list), fallback=popular (unknown users get the task's most popular items),
                   weights=buy:1,click:0.3 (a blended ranking across tasks instead of task=; adds "breakdown")
    POST /predict   {"task": T, "pairs": [[user, item], ...], "fallback": "popular"?}
                                                   -> {"task": T, "predictions": [...]}

Errors are JSON ``{"error": message}`` with a 4xx status: 400 bad parameters, unknown task, ``n`` outside
``1..max_n``, malformed JSON or too many pairs; 404 unknown user / item (without ``fallback=popular``) or unknown
path; 405 wrong method; 411 missing Content-Length; 413 body larger than ``max_body``. Anything unexpected is a
500 ``{"error": "internal server error"}``: the client never sees a traceback and the server keeps serving.

Why the standard library (``http.server.ThreadingHTTPServer``): the server only wraps
:class:`mtl_classic.inference.InferenceModel`, whose answers take well under a millisecond to a few milliseconds of
numpy per request; a CPU-only process gains little from an asynchronous framework, and zero dependencies means
nothing more to install, audit or keep updated. The limits a production front end would enforce are applied here:
body size, request timeout, a bounded number of concurrent handler threads, strict parameter checks. For
TLS, authentication or exposure beyond loopback, put it behind a reverse proxy.
"""
import json
import math
import numbers
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
from threadpoolctl import threadpool_limits

from ._version import __version__
from .inference import InferenceModel

__all__ = ["RecommendApp", "make_server", "serve", "DEFAULT_MAX_BODY", "DEFAULT_MAX_N"]

DEFAULT_MAX_BODY = 1 << 20     # 1 MiB
DEFAULT_MAX_N = 1000
DEFAULT_MAX_PAIRS = 10_000


class _HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _json_value(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _json_list(values):
    return [_json_value(v) for v in np.asarray(values).tolist()]


class RecommendApp:
    """The server's logic without HTTP: ``handle(method, target, body) -> (status, payload dict)``.

    Parameters
    ----------
    model : InferenceModel
    max_n : int, default=1000
        Largest ``n`` of ``/recommend``.
    max_pairs : int, default=10000
        Largest number of pairs in one ``/predict``.
    allow_fallback : bool, default=True
        Whether ``fallback=popular`` is honoured.
    """

    _RECOMMEND_PARAMS = {"user", "task", "n", "filter_seen", "exclude", "items", "fallback", "weights"}

    def __init__(self, model, max_n=DEFAULT_MAX_N, max_pairs=DEFAULT_MAX_PAIRS, allow_fallback=True):
        self.model = model
        self.max_n = int(max_n)
        self.max_pairs = int(max_pairs)
        self.allow_fallback = allow_fallback
        self._int_users = model.user_ids.ids.dtype.kind == "i"
        self._int_items = model.item_ids.ids.dtype.kind == "i"

    # ---------------------------------------------------------------- dispatch
    def handle(self, method, target, body=None):
        """Answer one request.

        Parameters
        ----------
        method : str
        target : str
            Path with query string, e.g. ``/recommend?user=1&task=buy``.
        body : bytes, optional

        Returns
        -------
        status : int
        payload : dict (JSON-able)
        """
        try:
            parts = urlsplit(target)
            path = parts.path.rstrip("/") or "/"
            routes = {"/health": ("GET", self._health), "/recommend": ("GET", self._recommend),
                      "/predict": ("POST", self._predict)}
            if path not in routes:
                raise _HTTPError(404, f"not found: {path}; endpoints are GET /health, GET /recommend, POST /predict")
            want, fn = routes[path]
            if method != want:
                raise _HTTPError(405, f"{path} accepts {want} only; got {method}")
            return 200, fn(parts.query, body)
        except _HTTPError as exc:
            return exc.status, {"error": exc.message}
        except Exception as exc:                  # noqa: BLE001 - never leak a traceback; keep serving
            print(f"[mtl-classic serve] internal error on {method} {target[:200]}: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            return 500, {"error": "internal server error"}

    # ---------------------------------------------------------------- helpers
    def _query(self, query, allowed):
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
        except ValueError as exc:
            raise _HTTPError(400, f"bad query string ({exc})") from None
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise _HTTPError(400, f"unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
        repeated = sorted(k for k, v in params.items() if len(v) > 1)
        if repeated:
            raise _HTTPError(400, f"parameter(s) {repeated} given more than once")
        return {k: v[0] for k, v in params.items()}

    def _user(self, value):
        """A query / JSON user id in the model's id type (ints for integer-id models)."""
        return self._coerce(value, self._int_users, "user")

    def _item(self, value):
        return self._coerce(value, self._int_items, "item")

    @staticmethod
    def _coerce(value, integer, kind):
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict, float)):
            raise _HTTPError(400, f"{kind} ids must be strings or integers; got {json.dumps(value)[:50]}")
        if integer:
            if isinstance(value, numbers.Integral):
                return int(value)
            text = str(value).strip()
            try:
                return int(text)
            except ValueError:
                return text          # cannot be a known id; reported as unknown (404)
        return value if isinstance(value, str) else str(value)

    def _task(self, task):
        if task is None or task == "":
            task = self.model.default_task
            if task is None:
                raise _HTTPError(400, f"missing parameter 'task'; tasks are {self.model.task_names}")
        if task not in self.model.task_index:
            raise _HTTPError(400, f"unknown task {str(task)[:100]!r}; tasks are {self.model.task_names}")
        return task

    def _fallback(self, value):
        if value in (None, "", "none"):
            return "raise"
        if value != "popular":
            raise _HTTPError(400, f"fallback must be 'popular' or 'none'; got {str(value)[:50]!r}")
        if not self.allow_fallback:
            raise _HTTPError(400, "this server does not offer fallback=popular")
        return "popular"

    def _n(self, value):
        if value is None:
            return 10
        try:
            n = int(value)
        except ValueError:
            raise _HTTPError(400, f"n must be an integer in [1, {self.max_n}]; got {value[:50]!r}") from None
        if not 1 <= n <= self.max_n:
            raise _HTTPError(400, f"n must be an integer in [1, {self.max_n}]; got {n}")
        return n

    def _filter_seen(self, value):
        if value is None or value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        if value == "any":
            return "any"
        tasks = value.split(",")
        bad = [t for t in tasks if t not in self.model.task_index]
        if bad:
            raise _HTTPError(400, f"filter_seen must be true, false, any or task name(s) of "
                                  f"{self.model.task_names}; got {value[:100]!r}")
        return tasks

    def _item_list(self, value):
        if value is None:
            return None
        return [self._item(v) for v in value.split(",") if v != ""]

    def _weights(self, value):
        weights = {}
        for part in value.split(","):
            task, sep, w = part.partition(":")
            try:
                weight = float(w) if sep else float("nan")
            except ValueError:
                weight = float("nan")
            if not math.isfinite(weight):
                raise _HTTPError(400, f"weights must look like 'buy:1,click:0.3'; got {value[:100]!r}")
            weights[self._task(task)] = weight
        return weights

    # ---------------------------------------------------------------- endpoints
    def _health(self, query, body):
        m = self.model
        return {"status": "ok", "library_version": __version__, "tasks": m.task_names, "default_task": m.default_task,
                "n_users": int(m.n_users), "n_items": int(m.n_items), "factors": int(m.factors),
                "calibrated_tasks": sorted(m.calibrators)}

    def _recommend(self, query, body):
        q = self._query(query, self._RECOMMEND_PARAMS)
        if "user" not in q or q["user"] == "":
            raise _HTTPError(400, "missing parameter 'user'")
        user = self._user(q["user"])
        n = self._n(q.get("n"))
        unknown = self._fallback(q.get("fallback"))
        filter_seen = self._filter_seen(q.get("filter_seen"))
        exclude = self._item_list(q.get("exclude"))
        allow = self._item_list(q.get("items"))
        known = user in self.model.user_ids
        if not known and unknown == "raise":
            raise _HTTPError(404, f"unknown user {str(user)[:100]!r} (add fallback=popular for the most popular "
                                  f"items)")
        try:
            if "weights" in q:
                if q.get("task"):
                    raise _HTTPError(400, "give either task= or weights=, not both")
                weights = self._weights(q["weights"])
                ids, scores, parts = self.model.recommend_blended(
                    [user], n=n, weights=weights, filter_seen=filter_seen, filter_items=exclude, items=allow,
                    unknown=unknown, return_breakdown=True)
                return {"user": _json_value(user), "weights": weights, "items": _json_list(ids[0]),
                        "scores": _json_list(scores[0]), "breakdown": {t: _json_list(v[0]) for t, v in parts.items()},
                        "fallback": not known}
            task = self._task(q.get("task"))
            ids, scores = self.model.recommend([user], n=n, task=task, filter_seen=filter_seen,
                                               filter_items=exclude, items=allow, unknown=unknown)
        except KeyError as exc:
            raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown id") from None
        except ValueError as exc:
            raise _HTTPError(400, str(exc)) from None
        return {"user": _json_value(user), "task": task, "items": _json_list(ids[0]), "scores": _json_list(scores[0]),
                "fallback": not known}

    def _predict(self, query, body):
        if query:
            raise _HTTPError(400, "POST /predict takes a JSON body, not query parameters")
        try:
            doc = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _HTTPError(400, f"malformed JSON body ({exc})") from None
        if not isinstance(doc, dict):
            raise _HTTPError(400, 'the body must be a JSON object {"task": .., "pairs": [[user, item], ...]}')
        unknown_keys = sorted(set(doc) - {"task", "pairs", "fallback"})
        if unknown_keys:
            raise _HTTPError(400, f"unknown key(s) {unknown_keys}; allowed: fallback, pairs, task")
        task = self._task(doc.get("task"))
        unknown = self._fallback(doc.get("fallback"))
        pairs = doc.get("pairs")
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise _HTTPError(400, '"pairs" must be a list of [user, item] pairs')
        if len(pairs) > self.max_pairs:
            raise _HTTPError(400, f"at most {self.max_pairs} pairs per request; got {len(pairs)}")
        users = [self._user(u) for u, _ in pairs]
        items = [self._item(i) for _, i in pairs]
        try:
            pred = self.model.predict(task, users, items, unknown=unknown) if pairs else np.zeros(0)
        except KeyError as exc:
            raise _HTTPError(404, str(exc.args[0]) if exc.args else "unknown id") from None
        except ValueError as exc:
            raise _HTTPError(400, str(exc)) from None
        return {"task": task, "predictions": _json_list(pred)}


# --------------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive; every response carries Content-Length
    default_request_version = "HTTP/1.0"   # so that even a garbled request line gets a status line and headers
    server_version = f"mtl-classic/{__version__}"
    sys_version = ""
    timeout = 30                           # seconds a connection may stay idle or slow
    disable_nagle_algorithm = True         # headers and body are two writes: never wait for a delayed ACK between

    def _send(self, status, payload, close=False):
        data = json.dumps(payload, allow_nan=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """JSON instead of the default HTML error page (malformed request lines, oversized headers, ...)."""
        try:
            self._send(code, {"error": message or self.responses.get(code, ("error",))[0]}, close=True)
        except OSError:
            self.close_connection = True

    def do_GET(self):
        status, payload = self.server.app.handle("GET", self.path)
        self._send(status, payload)

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            return self._send(411, {"error": "chunked bodies are not accepted; send Content-Length"}, close=True)
        if length is None:
            return self._send(411, {"error": "Content-Length required"}, close=True)
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            return self._send(400, {"error": "bad Content-Length"}, close=True)
        if length > self.server.max_body:
            return self._send(413, {"error": f"body of {length} bytes exceeds the limit of {self.server.max_body}"},
                              close=True)
        body = self.rfile.read(length)
        if len(body) != length:
            return self._send(400, {"error": "incomplete body"}, close=True)
        status, payload = self.server.app.handle("POST", self.path, body)
        self._send(status, payload)

    def _not_allowed(self):
        self._send(405, {"error": f"method {self.command} not allowed"}, close=True)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"[mtl-classic serve] {self.address_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app, max_body, max_threads, verbose):
        self.app = app
        self.max_body = int(max_body)
        self.verbose = verbose
        self._slots = threading.BoundedSemaphore(int(max_threads))
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        # at most max_threads connections are handled at once; further ones wait in the accept queue
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(model, host="127.0.0.1", port=8000, max_body=DEFAULT_MAX_BODY, max_n=DEFAULT_MAX_N,
                max_pairs=DEFAULT_MAX_PAIRS, max_threads=32, allow_fallback=True, verbose=False):
    """Build (but do not start) the HTTP server for an :class:`~mtl_classic.inference.InferenceModel`.

    Parameters
    ----------
    model : InferenceModel
    host : str, default="127.0.0.1"
        Loopback by default; "0.0.0.0" exposes it on every interface (put a reverse proxy in front).
    port : int, default=8000
        0 picks a free port (read it from ``server.server_address[1]``).
    max_body : int, default=1 MiB
    max_n, max_pairs, allow_fallback
        See :class:`RecommendApp`.
    max_threads : int, default=32
        Connections handled concurrently.
    verbose : bool, default=False
        Log every request to stderr.

    Returns
    -------
    http.server.ThreadingHTTPServer
        Call ``serve_forever()`` (e.g. in a thread) and ``shutdown()``; ``server.app`` is the :class:`RecommendApp`.
    """
    app = RecommendApp(model, max_n=max_n, max_pairs=max_pairs, allow_fallback=allow_fallback)
    return _Server((host, int(port)), app, max_body, max_threads, verbose)


def serve(model, host="127.0.0.1", port=8000, mmap_mode=None, blas_threads=1, ready=None, **kwargs):
    """Serve a model until interrupted (Ctrl-C).

    Parameters
    ----------
    model : str, os.PathLike or InferenceModel
        A saved model directory (loaded with :meth:`InferenceModel.load`) or a loaded model.
    host, port
        See :func:`make_server`.
    mmap_mode : {None, "r"}, default=None
        Memory-map the model's arrays.
    blas_threads : int or None, default=1
        BLAS threads per request (requests already run in parallel threads); None leaves BLAS alone.
    ready : callable(url), optional
        Called once the socket listens (default: print the URL to stdout).
    **kwargs
        Passed to :func:`make_server`.
    """
    if not isinstance(model, InferenceModel):
        model = InferenceModel.load(model, mmap_mode=mmap_mode)
    server = make_server(model, host=host, port=port, **kwargs)
    url = f"http://{server.server_address[0]}:{server.server_address[1]}"
    limiter = None
    if blas_threads is not None:
        limiter = threadpool_limits(limits=int(blas_threads), user_api="blas")
    try:
        if ready is None:
            print(f"mtl-classic: serving {model.n_users} users, {model.n_items} items, tasks {model.task_names} on "
                  f"{url} (Ctrl-C to stop)", flush=True)
        else:
            ready(url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if limiter is not None:
            limiter.restore_original_limits()
    return 0

