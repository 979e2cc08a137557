"""The HTTP API of a saved model: FastAPI served by uvicorn (the optional ``[serve]`` extra).

Endpoints (loopback ``127.0.0.1`` by default; the schema is at ``GET /openapi.json``, interactive docs at
``GET /docs``)::

    GET  /health                       -> liveness: {"status": "ok", "ready": .., "tasks": [...], "n_users": .., ...}
    GET  /ready                        -> 200 once a model is loaded (readiness), else 503
    GET  /recommend?user=U&task=T&n=10 -> {"user": U, "task": T, "items": [...], "scores": [...], "fallback": false}
         optional: filter_seen=true|false|any|<task>[,<task>], exclude=i1,i2 (item ids never returned),
                   items=i1,i2 (allow-list), fallback=popular (unknown users get the task's most popular items),
                   weights=buy:1,click:0.3 (a blended ranking across tasks instead of task=; adds "breakdown")
    POST /predict  {"task": T, "pairs": [[user, item], ...], "fallback": "popular"?} -> {"task": T, "predictions": [..]}
    POST /users/{user}/events  {"events": {task: [item, ...] | {item: value}}, "task"|"weights", "n", ...}
                                       -> fresh recommendations after folding in the events (no refit, not stored);
                                          a user side matrix's column ids count as events ({"query": ["red shoes"]}):
                                          an unknown user with those alone is folded in from them (no estimator)
    POST /items/rank  {"user": U, "items": [{"item": id, "side": {name: [column, ...]}, "features"?: {name: value}}],
                       "task"?, "n"?}
                                       -> a known user's ranking of new items known only by their item side matrices
    POST /admin/reload {"path": DIR?}  -> hot-swap to a newly saved model (loopback clients only)

Errors are JSON ``{"error": message}`` with a 4xx status: 400 bad parameters or body, unknown task, ``n`` outside
``1..max_n``, too many pairs / events; 403 admin from a non-loopback client; 404 unknown user / item (without
``fallback=popular``) or unknown path; 405 wrong method; 408 a body slower than ``body_timeout``; 409 fold-in on a
slim artifact; 411 a POST with neither Content-Length nor a chunked body; 413 body over ``max_body``; 501 fold-in
without a full saved model; 503 no model loaded yet. Anything unexpected is a 500 ``{"error": "internal server
error"}``, logged on the server side; the client never sees a traceback. (A request line too malformed for HTTP
is answered by uvicorn itself: 400 with a plain-text body.)

Hot-swap: :meth:`ModelHolder.load` builds the new :class:`~mtl_classic.inference.InferenceModel` completely, then
replaces one reference; a request reads that reference once, so requests in flight finish on the model they started
with and every answer comes from one whole model. Triggers: ``POST /admin/reload`` (answered to loopback clients only,
never through a proxy that sets ``X-Forwarded-For``) and ``SIGHUP`` (single process). With ``workers > 1`` uvicorn runs
that many processes that memory-map the same ``arrays.npz`` (``mmap_mode="r"``: the pages are shared); ``SIGHUP`` to
the main process (or ``/admin/reload`` on any worker) makes uvicorn replace the workers one by one, each new worker
loading the model before it accepts connections. Shutdown (SIGINT / SIGTERM) is uvicorn's graceful one: stop
accepting, drain the requests in flight (at most ``graceful_timeout`` seconds).

Fold-in (``/users/{user}/events``) needs the full estimator: the first call loads ``MultiTaskMF.load(path)``
(scikit-learn and numba; the plain serving path uses numpy and scipy only) and folds in with
:func:`mtl_classic.foldin.fold_in_users`; a known user's training interactions are merged with the new events. The
answer is not remembered: other workers and later requests still see the saved model.

Answering is numpy work run in a bounded thread pool (``max_threads``); BLAS is held to ``blas_threads`` per process.
For TLS, authentication or exposure beyond loopback, put a reverse proxy in front.
"""
import asyncio
import contextlib
import importlib.util
import inspect
import json
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Dict, List, Literal, Optional, Tuple, Union

from threadpoolctl import threadpool_limits

from ._serving_core import ModelHolder, _HTTPError, _Limits, _Logic, _validation_message, log
from ._version import __version__
from .inference import InferenceModel
from .persistence import read_manifest

__all__ = ["create_app", "serve", "worker_app", "listening_socket", "ModelHolder", "DEFAULT_MAX_BODY", "DEFAULT_MAX_N",
           "DEFAULT_MAX_PAIRS"]

DEFAULT_MAX_BODY = 1 << 20     # 1 MiB
DEFAULT_MAX_N = 1000
DEFAULT_MAX_PAIRS = 10_000
_ENV = "MTL_CLASSIC_SERVE_OPTIONS"     # the options of a multi-worker server, read by each worker process
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ENDPOINTS = ("GET /health, GET /ready, GET /recommend, POST /predict, POST /users/{user}/events, "
              "POST /items/rank, POST /admin/reload, GET /openapi.json, GET /docs")


def _require_serve_extra():
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"the mtl-classic HTTP server needs FastAPI and uvicorn, the optional [serve] extra "
                          f"(missing: {', '.join(missing)}); install it with: python -m pip install "
                          f"'mtl_classic[serve]'")


def create_app(model=None, path=None, max_n=DEFAULT_MAX_N, max_pairs=DEFAULT_MAX_PAIRS, max_body=DEFAULT_MAX_BODY,
               max_threads=32, allow_fallback=True, mmap_mode=None, blas_threads=1, admin=True, load="background",
               loader=None, sighup=True, workers=1, body_timeout=30.0):
    """The FastAPI application serving a model.

    Parameters
    ----------
    model : InferenceModel or fitted MultiTaskMF, optional
        Served at once (a MultiTaskMF also serves fold-ins). Without it the model is loaded from ``path``.
    path : str or os.PathLike, optional
        The saved model directory: loaded when ``model`` is None, reloaded by ``/admin/reload`` and SIGHUP, and
        read by the fold-in (``MultiTaskMF.load``).
    max_n, max_pairs : int
        Largest ``n``; most pairs of one ``/predict`` (and events of one fold-in).
    max_body : int, default=1 MiB
        Largest request body (413 above).
    max_threads : int, default=32
        Requests answered at once (a thread pool; further requests wait).
    allow_fallback : bool, default=True
        Whether ``fallback=popular`` is honoured.
    mmap_mode : {None, "r"}
        How models are loaded from ``path``.
    blas_threads : int or None, default=1
        BLAS threads of the process while serving (requests already run in parallel); None leaves BLAS alone.
    admin : bool, default=True
        Offer ``POST /admin/reload`` (to loopback clients only).
    load : {"background", "startup"}
        Without ``model``: load in a thread after startup (``/ready`` is 503 until done) or before accepting
        connections.
    loader : callable(path, mmap_mode) -> InferenceModel, optional
    sighup : bool, default=True
        Reload on SIGHUP (single process, main thread only).
    workers : int, default=1
        The number of worker processes of this server (admin reloads then restart every worker through uvicorn).
    body_timeout : float, default=30
        Seconds a request body may take to arrive (408 after).

    Returns
    -------
    fastapi.FastAPI
        ``app.state.holder`` is the :class:`ModelHolder`.
    """
    _require_serve_extra()
    from fastapi import Body, FastAPI, Path, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
    from starlette.exceptions import HTTPException as StarletteHTTPException

    if load not in ("background", "startup"):
        raise ValueError(f"create_app: load must be 'background' or 'startup'; got {load!r}")
    if model is None and path is None:
        raise ValueError("create_app: give a model or the path of a saved model")
    logic = _Logic(max_n, max_pairs, allow_fallback)
    holder = ModelHolder(mmap_mode=mmap_mode, loader=loader)
    if model is not None:
        holder.set(model, path)
    pool = ThreadPoolExecutor(max_workers=int(max_threads), thread_name_prefix="mtl-serve")
    Id = Union[StrictInt, StrictStr]
    Finite = Annotated[float, Field(allow_inf_nan=False)]

    class Error(BaseModel):
        error: str

    class Health(BaseModel):
        status: str
        ready: bool
        library_version: str
        tasks: Optional[List[str]] = None
        default_task: Optional[str] = None
        n_users: Optional[int] = None
        n_items: Optional[int] = None
        factors: Optional[int] = None
        calibrated_tasks: Optional[List[str]] = None
        model_path: Optional[str] = None
        artifact: Optional[str] = None
        generation: Optional[int] = None
        mmap_mode: Optional[str] = None
        pid: int

    class Ready(BaseModel):
        status: str
        generation: int
        model_path: Optional[str] = None

    class Ranking(BaseModel):
        user: Id
        task: Optional[str] = None
        weights: Optional[Dict[str, float]] = None
        items: List[Id]
        scores: List[Optional[float]]
        breakdown: Optional[Dict[str, List[Optional[float]]]] = None
        fallback: bool = Field(description="true: the user got the popularity fallback (unknown or no events)")

    class FoldedRanking(Ranking):
        known_user: bool = Field(description="the user was in the training data (its interactions were merged)")
        events: Dict[str, int] = Field(description="number of events given per task")

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        task: Optional[str] = None
        pairs: List[Tuple[Id, Id]] = Field(max_length=logic.max_pairs, description="[user id, item id] pairs")
        fallback: Optional[Literal["popular", "none", ""]] = None

    class Predictions(BaseModel):
        task: str
        predictions: List[Optional[float]]

    class EventsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        events: Dict[str, Union[List[Id], Dict[str, Finite]]] = Field(
            description="per task: item ids (each counts 1) or {item id: value} (counts, labels or ratings); per "
                        "user side matrix of the model: its column ids (e.g. the queries typed)")
        task: Optional[str] = None
        weights: Optional[Dict[str, Finite]] = Field(None, description="a blended ranking instead of task")
        n: int = Field(10, ge=1, le=logic.max_n)
        filter_seen: Union[StrictBool, str] = True
        exclude: Optional[List[Id]] = Field(None, max_length=logic.max_pairs)
        items: Optional[List[Id]] = Field(None, max_length=logic.max_pairs)
        unknown_items: Literal["raise", "ignore"] = "raise"

    class NewItem(BaseModel):
        model_config = ConfigDict(extra="forbid")
        item: Id
        side: Dict[str, List[Id]] = Field(default_factory=dict,
                                          description="per item side matrix of the model: the item's column ids "
                                                      "(e.g. {\"genre\": [\"Comedy\"]})")
        features: Dict[str, Finite] = Field(default_factory=dict,
                                            description="per item feature of the model (a task's item_feature): the "
                                                        "item's value (e.g. {\"sales\": 2.3})")

    class NewItemsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        user: Id
        items: List[NewItem] = Field(min_length=1, max_length=logic.max_pairs)
        task: Optional[str] = None
        n: int = Field(10, ge=1, le=logic.max_n)

    class ReloadRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: Optional[str] = Field(None, description="a saved model directory (default: the served one)")

    class Reloaded(BaseModel):
        status: str
        generation: Optional[int] = None
        model_path: Optional[str] = None

    def errors(*codes):
        return {c: {"model": Error} for c in (400, 500, 503) + codes}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        limiter = threadpool_limits(limits=int(blas_threads), user_api="blas") if blas_threads is not None else None
        previous = None
        if sighup and workers == 1 and hasattr(signal, "SIGHUP") and threading.current_thread() is \
                threading.main_thread():
            previous = signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=holder.reload_logged,
                                                                                daemon=True).start())
        if holder.current is None:
            if load == "startup":
                holder.load(path)
            else:
                threading.Thread(target=holder.reload_logged, args=(path,), daemon=True).start()
        try:
            yield
        finally:
            holder.closing = True
            if previous is not None:
                signal.signal(signal.SIGHUP, previous)
            pool.shutdown(wait=False)
            if limiter is not None:
                limiter.restore_original_limits()

    # a body without Content-Type is JSON too (FastAPI >= 0.12x is strict by default; older ones always were lax)
    lax = {"strict_content_type": False} if "strict_content_type" in inspect.signature(FastAPI).parameters else {}
    app = FastAPI(title="mtl_classic", version=__version__, lifespan=lifespan, **lax,
                  description="Recommendations and predictions from a saved mtl_classic model (docs: mtl_classic."
                              "serving). Errors are JSON {\"error\": message}.")
    app.state.holder = holder
    app.add_middleware(_Limits, max_body=max_body, body_timeout=body_timeout)

    def fail(status, message):
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        return fail(400, _validation_message(exc.errors(), logic))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        if exc.status_code == 404:
            return fail(404, f"not found: {request.url.path[:200]}; endpoints are {_ENDPOINTS}")
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "another method")
            return fail(405, f"{request.url.path[:200]} accepts {allow} only; got {request.method}")
        return fail(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request, exc):
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path[:200], type(exc).__name__, exc)
        return fail(500, "internal server error")

    async def answer(fn, *args):
        snap = holder.current
        if snap is None or holder.closing:
            return fail(503, "shutting down" if holder.closing else "model not loaded yet")
        try:
            payload = await asyncio.get_running_loop().run_in_executor(pool, fn, snap, *args)
        except _HTTPError as exc:
            return fail(exc.status, exc.message)
        except Exception as exc:                 # noqa: BLE001 - never leak a traceback; keep serving
            log.exception("internal error in %s: %s: %s", getattr(fn, "__name__", fn), type(exc).__name__, exc)
            return fail(500, "internal server error")
        return JSONResponse(payload, headers={"X-Model-Generation": str(snap.generation)})

    @app.get("/health", response_model=Health, responses={500: {"model": Error}}, summary="Liveness")
    async def health():
        snap = holder.current
        out = {"status": "ok", "ready": snap is not None and not holder.closing, "library_version": __version__,
               "pid": os.getpid(), "mmap_mode": holder.mmap_mode}
        if snap is not None:
            m = snap.model
            out.update(tasks=m.task_names, default_task=m.default_task, n_users=int(m.n_users),
                       n_items=int(m.n_items), factors=int(m.factors), calibrated_tasks=sorted(m.calibrators),
                       model_path=snap.path, artifact=snap.artifact, generation=snap.generation)
        return JSONResponse(out)

    @app.get("/ready", response_model=Ready, responses={503: {"model": Error}, 500: {"model": Error}},
             summary="Readiness: 200 once a model is loaded")
    async def ready():
        snap = holder.current
        if snap is None or holder.closing:
            return fail(503, "shutting down" if holder.closing else "model not loaded yet")
        return JSONResponse({"status": "ready", "generation": snap.generation, "model_path": snap.path})

    def query(name, schema, description, required=False):
        return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}
    # the query is parsed by _Logic.query (FastAPI's per-parameter validation cost ~0.5 ms a request); documented here
    recommend_query = [
        query("user", {"type": "string", "minLength": 1}, "user id (an integer for integer-id models)", True),
        query("task", {"type": "string"}, "task to rank by (default: the model's only task)"),
        query("n", {"type": "integer", "minimum": 1, "maximum": logic.max_n, "default": 10}, "items to return"),
        query("filter_seen", {"type": "string"}, "true (default), false, any or task name(s), comma-separated"),
        query("exclude", {"type": "string"}, "comma-separated item ids never returned"),
        query("items", {"type": "string"}, "comma-separated allow-list of item ids"),
        query("fallback", {"type": "string", "enum": ["popular", "none", ""]},
              "popular: unknown users get the task's most popular items"),
        query("weights", {"type": "string"}, "a blended ranking instead of task, e.g. buy:1,view:0.3")]

    @app.get("/recommend", response_model=Ranking, responses=errors(404), summary="Top-n items for a user",
             openapi_extra={"parameters": recommend_query})
    async def recommend(request: Request):
        return await answer(logic.recommend, request.query_params.multi_items())

    @app.post("/predict", response_model=Predictions, responses=errors(404, 408, 411, 413),
              summary="Pointwise predictions for (user, item) pairs")
    async def predict(request: Request, body: PredictRequest):
        if request.query_params:
            return fail(400, "POST /predict takes a JSON body, not query parameters")
        return await answer(logic.predict, body)

    @app.post("/users/{user}/events", response_model=FoldedRanking, responses=errors(404, 408, 409, 411, 413, 501),
              summary="Fold in a user's new events (any tasks), then recommend; no refit, nothing stored")
    async def events(user: str = Path(description="user id: a known user's training data are merged"),
                     body: EventsRequest = Body()):
        return await answer(logic.events, user, body)

    @app.post("/items/rank", response_model=Ranking, responses=errors(404, 408, 411, 413),
              summary="Rank new items, known only by their side matrices (e.g. genres), for a known user; nothing "
                      "stored")
    async def new_items(body: NewItemsRequest):
        return await answer(logic.new_items, body)

    @app.post("/admin/reload", response_model=Reloaded, responses={202: {"model": Reloaded}, **errors(403, 409)},
              summary="Hot-swap to a newly saved model (loopback clients only)")
    async def reload(request: Request, body: Optional[ReloadRequest] = Body(None)):
        client = request.client.host if request.client else None
        if not admin or client not in _LOOPBACK or "x-forwarded-for" in request.headers:
            return fail(403, "the admin endpoint answers local (loopback) clients only"
                        if admin else "this server has no admin endpoint")
        new_path = None if body is None else body.path
        if workers > 1:
            if new_path is not None and holder.current and os.path.abspath(new_path) != holder.current.path:
                return fail(409, "with several workers the model directory is fixed: save the new model into "
                                 f"{holder.current.path} and reload without a path")
            os.kill(os.getppid(), signal.SIGHUP)     # uvicorn's supervisor replaces the workers one by one
            return JSONResponse({"status": "restarting workers"}, status_code=202)
        try:
            snap = await asyncio.get_running_loop().run_in_executor(None, holder.reload, new_path)
        except Exception as exc:                      # noqa: BLE001 - a bad directory is the caller's error
            return fail(400, f"cannot load a model from {new_path or 'the served directory'}: "
                             f"{type(exc).__name__}: {str(exc)[:300]}; still serving the previous model")
        return JSONResponse({"status": "reloaded", "generation": snap.generation, "model_path": snap.path})

    original_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            schema = original_openapi()
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)      # validation errors are 400 {"error": ..}
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema
    app.openapi = openapi
    return app


# --------------------------------------------------------------------------------------------------------------------
# running it
# --------------------------------------------------------------------------------------------------------------------
def listening_socket(host="127.0.0.1", port=0, backlog=2048):
    """A bound, listening TCP socket for uvicorn (``Server.run(sockets=[...])``, workers).

    Created with ``proto=IPPROTO_TCP``: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of
    such sockets, and uvicorn writes a response's headers and body separately, so a socket with ``proto=0`` (what
    ``socket.socket()`` and uvicorn's own ``bind_socket`` make) holds every small body back ~40 ms for the
    client's delayed ACK. Connections made before the server runs wait in the backlog.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def worker_app():
    """The application of one worker process of a multi-worker server (options from the environment)."""
    options = json.loads(os.environ[_ENV])
    return create_app(load="startup", **options)


def serve(model, host="127.0.0.1", port=8000, workers=1, mmap_mode=None, ready=None, verbose=False,
          timeout_keep_alive=30, graceful_timeout=30, **kwargs):
    """Serve a saved model until interrupted (Ctrl-C / SIGTERM: graceful shutdown).

    Parameters
    ----------
    model : str, os.PathLike, InferenceModel or MultiTaskMF
        A saved model directory or a loaded model (a loaded model is single-process and cannot be reloaded).
    host, port
        Loopback by default; port 0 picks a free port.
    workers : int, default=1
        Worker processes; with more than one the model is memory-mapped (``mmap_mode="r"``) and shared.
    mmap_mode : {None, "r"}
        Memory-map the model's arrays.
    ready : callable(url), optional
        Called once the socket listens (default: print the URL to stdout).
    verbose : bool, default=False
        Log one JSON line per request (logger ``mtl_classic.serving`` at INFO) to stderr.
    timeout_keep_alive, graceful_timeout : float
        Seconds an idle keep-alive connection is kept; seconds shutdown waits for requests in flight.
    **kwargs
        Passed to :func:`create_app` (``max_n``, ``max_pairs``, ``max_body``, ``max_threads``, ``allow_fallback``,
        ``blas_threads``, ``admin``).

    Returns
    -------
    int
        0 after a clean shutdown.
    """
    _require_serve_extra()
    import uvicorn

    workers = int(workers)
    if workers < 1:
        raise ValueError(f"serve: workers must be >= 1; got {workers}")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[mtl-classic serve] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    path = None if isinstance(model, InferenceModel) or hasattr(model, "fitted_params_") else os.path.abspath(model)
    if workers > 1:
        if path is None:
            raise ValueError("serve: several workers need a saved model directory, not a loaded model")
        mmap_mode = "r"
        InferenceModel.load(path, mmap_mode="r")              # fail fast, before any worker starts
        os.environ[_ENV] = json.dumps({"path": path, "mmap_mode": "r", "workers": workers, **kwargs})
        app, info = "mtl_classic.serving:worker_app", read_manifest(path, check_version=False)
        summary = f"{info['n_users']} users, {info['n_items']} items, tasks {[t['name'] for t in info['tasks']]}"
    else:
        if path is not None:
            model = InferenceModel.load(path, mmap_mode=mmap_mode)
        app = create_app(model, path=path, mmap_mode=mmap_mode, **kwargs)
        m = app.state.holder.current.model
        summary = f"{m.n_users} users, {m.n_items} items, tasks {m.task_names}"
    config = uvicorn.Config(app, host=host, port=int(port), workers=workers, factory=workers > 1,
                            log_level="info" if verbose else "warning", access_log=False,
                            timeout_keep_alive=timeout_keep_alive, timeout_graceful_shutdown=graceful_timeout,
                            server_header=False)
    sock = listening_socket(host, port, config.backlog)
    bound = sock.getsockname()
    url = f"http://{bound[0] if ':' not in bound[0] else '[' + bound[0] + ']'}:{bound[1]}"
    if ready is None:
        print(f"mtl-classic: serving {summary} on {url} with {workers} worker(s) (Ctrl-C to stop)", flush=True)
    else:
        ready(url)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            from uvicorn.supervisors import Multiprocess
            older = "target" in inspect.signature(Multiprocess).parameters     # uvicorn < 0.50 takes the target
            (Multiprocess(config, target=server.run, sockets=[sock]) if older else
             Multiprocess(config, sockets=[sock])).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        log.removeHandler(handler)
    return 0
