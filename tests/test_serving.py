"""The HTTP server (FastAPI + uvicorn) over real loopback sockets: every endpoint's answers and its JSON 4xx errors,
limits, fold-in, /ready vs /health, hot-swap under load, SIGHUP, workers, and schema fuzzing with schemathesis."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

for _name in ("fastapi", "uvicorn", "httpx"):
    pytest.importorskip(_name, reason=f"{_name} is not installed: the server is the optional [serve] extra "
                                      f"(python -m pip install -e '.[test,serve]')")
import httpx  # noqa: E402
import uvicorn  # noqa: E402

from mtl_classic.data import MultiTaskData  # noqa: E402
from mtl_classic.foldin import fold_in_users  # noqa: E402
from mtl_classic.inference import InferenceModel  # noqa: E402
from mtl_classic.model import MultiTaskMF  # noqa: E402
from mtl_classic.serving import create_app, listening_socket  # noqa: E402
from mtl_classic.tasks import Task  # noqa: E402

USERS = list(range(100, 140))
#: MTL_FUZZ_SCALE=10 fuzzes with 10 times the examples from random seeds (a bug hunt); the default run is fixed.
SCALE = int(os.environ.get("MTL_FUZZ_SCALE", "1"))


def _model(seed=0):
    rng = np.random.default_rng(seed)
    n_users, n_items = len(USERS), 25
    S = rng.normal(size=(n_users, 3)) @ rng.normal(size=(n_items, 3)).T
    view = sp.csr_matrix((S > 0.3).astype(float))
    buy = sp.csr_matrix((S > 1.3).astype(float))
    data = MultiTaskData.from_matrices({"view": view, "buy": buy}, user_ids=USERS,
                                       item_ids=[f"item{i}" for i in range(n_items)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # "cross-task features left out": expected here
        return MultiTaskMF(tasks=[Task("view", weight=0.5), Task("buy")], factors=4, iterations=3,
                           random_state=seed).fit(data)


@pytest.fixture(scope="module")
def fitted():
    return _model(0)


@pytest.fixture(scope="module")
def dirs(fitted, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    other = _model(1)
    out = {"full": str(root / "full"), "slim": str(root / "slim"), "other": str(root / "other")}
    fitted.save(out["full"])
    fitted.save(out["slim"], slim=True)
    other.save(out["other"])
    return out


@contextlib.contextmanager
def running(app, timeout=20):
    """A real uvicorn server for ``app`` on 127.0.0.1 (a free port) in a thread; always shut down."""
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def _wait_ready(client, timeout=20):
    deadline = time.monotonic() + timeout
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(dirs):
    """(base URL, app) of the module's server: the full model, small limits."""
    app = create_app(path=dirs["full"], max_body=4096, max_n=100, max_pairs=50, blas_threads=None, body_timeout=0.5)
    with running(app) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            _wait_ready(c)
        yield base, app


@pytest.fixture(scope="module")
def url(served):
    return served[0]


@pytest.fixture
def client(url):
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _json(resp):
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    return resp.json()


# --------------------------------------------------------------------------------------------------------------------
def test_binds_loopback_and_answers(client, url, fitted):
    assert url.startswith("http://127.0.0.1:")
    doc = _json(client.get("/health"))
    assert doc["status"] == "ok" and doc["ready"] is True and doc["tasks"] == ["view", "buy"]
    assert doc["artifact"] == "full" and doc["n_users"] == 40
    assert _json(client.get("/ready"))["status"] == "ready"


def test_recommend_predict_blend_and_fallback(client, fitted):
    model = InferenceModel.from_model(fitted)
    doc = _json(client.get("/recommend?user=103&task=buy&n=5"))
    ids, scores = fitted.recommend([103], n=5, task="buy")
    assert doc["items"] == ids[0].tolist() and np.allclose(doc["scores"], scores[0]) and doc["fallback"] is False
    doc = _json(client.get("/recommend?user=103&task=buy&n=5&filter_seen=any&exclude=item1,item2"))
    assert not {"item1", "item2"} & set(doc["items"])
    doc = _json(client.get("/recommend", params={"user": "103", "task": "buy", "items": "item3,item4,item5"}))
    assert set(doc["items"]) <= {"item3", "item4", "item5"}
    doc = _json(client.get("/recommend?user=103&weights=buy:1,view:0.5&n=3"))
    ids, scores, parts = model.recommend_blended([103], n=3, weights={"buy": 1.0, "view": 0.5},
                                                 return_breakdown=True)
    assert doc["items"] == ids[0].tolist() and np.allclose(doc["scores"], scores[0])
    assert set(doc["breakdown"]) == {"buy", "view"} and np.allclose(doc["breakdown"]["view"], parts["view"][0])
    assert doc["weights"] == {"buy": 1.0, "view": 0.5} and "task" not in doc
    r = client.post("/predict", json={"task": "buy", "pairs": [[103, "item4"], [104, "item0"]]})
    assert r.status_code == 200
    assert np.allclose(_json(r)["predictions"], fitted.predict("buy", [103, 104], ["item4", "item0"]))
    assert _json(client.post("/predict", json={"task": "buy", "pairs": []}))["predictions"] == []
    doc = _json(client.get("/recommend?user=999&task=buy&n=3&fallback=popular"))
    assert doc["fallback"] is True and doc["items"] == model.recommend([999], n=3, task="buy",
                                                                       unknown="popular")[0][0].tolist()
    r = client.post("/predict", json={"task": "view", "pairs": [[999, "item1"]], "fallback": "popular"})
    assert np.allclose(_json(r)["predictions"], model.predict("view", [999], ["item1"], unknown="popular"))


BAD = [
    ("GET", "/recommend?user=999&task=buy", None, 404, "unknown user"),
    ("GET", "/recommend?user=abc&task=buy", None, 404, "unknown user"),
    ("GET", "/recommend?user=99999999999999999999999&task=buy", None, 404, "unknown user"),
    ("GET", "/recommend?user=103&task=nope", None, 400, "unknown task"),
    ("GET", "/recommend?user=103", None, 400, "missing parameter 'task'"),
    ("GET", "/recommend?task=buy", None, 400, "missing parameter 'user'"),
    ("GET", "/recommend?user=&task=buy", None, 400, "missing parameter 'user'"),
    ("GET", "/recommend?user=103&task=buy&n=0", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&n=101", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&n=ten", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&fallback=maybe", None, 400, "fallback"),
    ("GET", "/recommend?user=103&task=buy&filter_seen=sometimes", None, 400, "filter_seen"),
    ("GET", "/recommend?user=103&task=buy&exclude=nosuchitem", None, 404, "unknown item"),
    ("GET", "/recommend?user=103&task=buy&colour=red", None, 400, "unknown parameter"),
    ("GET", "/recommend?user=103&user=104&task=buy", None, 400, "more than once"),
    ("GET", "/recommend?user=103&weights=buy:x", None, 400, "weights"),
    ("GET", "/recommend?user=103&weights=buy:1&task=buy", None, 400, "not both"),
    ("GET", "/nowhere", None, 404, "not found"),
    ("POST", "/recommend?user=103&task=buy", b"{}", 405, "accepts GET"),
    ("GET", "/predict", None, 405, "accepts POST"),
    ("DELETE", "/health", None, 405, "accepts GET"),
    ("POST", "/predict", b"{not json", 400, "malformed JSON"),
    ("POST", "/predict", b"\xff\xfe", 400, "malformed JSON"),
    ("POST", "/predict", b"[1, 2]", 400, "JSON object"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103]]}', 400, "pairs"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103, "item1"]], "x": 1}', 400, "unknown key"),
    ("POST", "/predict", b'{"task": "nope", "pairs": []}', 400, "unknown task"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[999, "item1"]]}', 404, "unknown user"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103, "nope"]]}', 404, "unknown item"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[[1], "item1"]]}', 400, "ids must be"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[true, "item1"]]}', 400, "ids must be"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[1.5, "item1"]]}', 400, "ids must be"),
    ("POST", "/predict", json.dumps({"task": "buy", "pairs": [[103, "item1"]] * 51}).encode(), 400,
     "at most 50 pairs"),
    ("POST", "/predict?x=1", b'{"task": "buy", "pairs": []}', 400, "not query parameters"),
    ("POST", "/predict", b"x" * 5000, 413, "exceeds the limit"),
    ("POST", "/users/103/events", b'{"events": {"view": ["item1"]}, "n": 0}', 400, "n must be"),
    ("POST", "/users/103/events", b'{"events": {"nope": ["item1"]}, "task": "buy"}', 400, "unknown task"),
    ("POST", "/users/103/events", b'{"events": {"view": ["nosuch"]}, "task": "buy"}', 404, "unknown item"),
    ("POST", "/users/103/events", b'{"events": {"view": {"item1": NaN}}, "task": "buy"}', 400, "events"),
    ("POST", "/users/103/events", b'{"events": {"view": ["item1"]}, "task": "buy", "x": 1}', 400, "unknown key"),
    ("POST", "/users/103/events", b'{"task": "buy"}', 400, "events"),
    ("POST", "/users/103/events", json.dumps({"events": {"view": ["item1"] * 51}, "task": "buy"}).encode(), 400,
     "at most 50 events"),
]


@pytest.mark.parametrize("method,path,body,status,message", BAD)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(client, method, path, body, status, message):
    r = client.request(method, path, content=body)
    doc = _json(r)
    assert r.status_code == status and message in doc["error"], doc
    assert set(doc) == {"error"} and "Traceback" not in r.text
    assert client.get("/recommend?user=101&task=buy&n=2").status_code == 200


def _raw(url, data):
    """Send raw bytes and read the reply until the server closes the connection."""
    host, port = url.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks).decode()
            chunks.append(chunk)


def test_content_length_rules_and_chunked_bodies(url, client):
    reply = _raw(url, b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith("HTTP/1.1 411") and '"error"' in reply
    body = b'{"task": "buy", "pairs": [[103, "item4"]]}'
    chunked = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    reply = _raw(url, chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert reply.startswith("HTTP/1.1 200") and '"predictions"' in reply
    big = b"x" * 3000
    reply = _raw(url, chunked + (b"%x\r\n%s\r\n" % (len(big), big)) * 2 + b"0\r\n\r\n")
    assert reply.startswith("HTTP/1.1 413") and "exceeds the limit" in reply
    reply = _raw(url, b"GARBAGE\r\n\r\n")     # not HTTP: uvicorn's own 400 (plain text), and it keeps serving
    assert reply.startswith("HTTP/1.1 400") and "Traceback" not in reply
    started = time.monotonic()                  # a body announced but never sent: 408 after body_timeout (0.5 s)
    reply = _raw(url, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"task\"")
    assert reply.startswith("HTTP/1.1 408") and "did not arrive" in reply and time.monotonic() - started < 5
    assert client.get("/health").status_code == 200


def test_internal_errors_are_500_without_traceback(client, served, monkeypatch, caplog):
    model = served[1].state.holder.current.model

    def boom(*a, **k):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(model, "recommend", boom)
    with caplog.at_level("ERROR", logger="mtl_classic.serving"):
        r = client.get("/recommend?user=103&task=buy")
    assert r.status_code == 500 and _json(r) == {"error": "internal server error"}
    assert "secret internals" not in r.text and "secret internals" in caplog.text   # logged server-side only
    monkeypatch.undo()
    assert client.get("/recommend?user=103&task=buy").status_code == 200


def test_one_structured_log_line_per_request_at_info(client, caplog):
    with caplog.at_level("INFO", logger="mtl_classic.serving"):
        client.get("/recommend?user=103&task=buy&n=2")
        client.get("/recommend?user=103&task=nope")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mtl_classic.serving"
             and r.levelname == "INFO"]
    assert [(x["method"], x["path"], x["status"]) for x in lines[-2:]] == [("GET", "/recommend", 200),
                                                                         ("GET", "/recommend", 400)]
    assert all(x["ms"] >= 0 and x["client"] == "127.0.0.1" for x in lines)


def test_keep_alive_connection_serves_many_requests(client):
    for n in (1, 2, 3):
        assert len(_json(client.get(f"/recommend?user=102&task=view&n={n}"))["items"]) == n
    assert client.get("/recommend?user=102&task=view&n=0").status_code == 400
    assert client.get("/health").status_code == 200


def test_openapi_schema_and_docs(client):
    schema = _json(client.get("/openapi.json"))
    assert {"/health", "/ready", "/recommend", "/predict", "/users/{user}/events", "/admin/reload"} <= set(
        schema["paths"])
    assert "422" not in json.dumps({p: {m: list(op["responses"]) for m, op in ops.items()}
                                    for p, ops in schema["paths"].items()})
    n = next(p for p in schema["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 100
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


# --------------------------------------------------------------------------------------------------------------------
# fold-in
# --------------------------------------------------------------------------------------------------------------------
def test_events_fold_in_known_and_new_users(client, dirs):
    full = MultiTaskMF.load(dirs["full"])
    r = client.post("/users/103/events", json={"events": {"view": ["item1", "item2"]}, "task": "buy", "n": 4})
    doc = _json(r)
    assert r.status_code == 200 and doc["known_user"] is True and doc["events"] == {"view": 2}
    expected = fold_in_users(full, {"view": ["item1", "item2"]}, user_ids=[103], base_users=[103])
    ids, scores = expected.recommend([103], n=4, task="buy")
    assert doc["items"] == ids[0].tolist() and np.allclose(doc["scores"], scores[0])
    # a new user with events of one task only, a blended ranking, values given per item
    body = {"events": {"view": {"item3": 2, "item4": 1}}, "weights": {"buy": 1, "view": 0.2}, "n": 3,
            "filter_seen": "any", "exclude": ["item5"]}
    doc = _json(client.post("/users/newcomer/events", json=body))
    assert doc["known_user"] is False and doc["fallback"] is False and len(doc["items"]) == 3
    assert not {"item3", "item4", "item5"} & set(doc["items"]) and set(doc["breakdown"]) == {"buy", "view"}
    expected = fold_in_users(full, {"view": {"item3": 2.0, "item4": 1.0}}, user_ids=["newcomer"])
    ids, _ = expected.recommend_blended(["newcomer"], n=3, weights={"buy": 1, "view": 0.2}, filter_seen="any",
                                        filter_items=["item5"])
    assert doc["items"] == ids[0].tolist()
    # nothing is stored: the served model is unchanged
    assert client.get("/recommend?user=newcomer&task=buy").status_code == 404
    doc = _json(client.post("/users/newcomer/events", json={"events": {"view": ["nosuch"]}, "task": "buy",
                                                            "unknown_items": "ignore"}))
    assert doc["fallback"] is True      # no known event: the popularity fallback


def test_events_need_a_full_saved_model(dirs, fitted):
    for app, status, message in [
            (create_app(path=dirs["slim"], load="startup", blas_threads=None), 409, "slim"),
            (create_app(InferenceModel.from_model(fitted), blas_threads=None), 501, "full")]:
        with running(app) as base, httpx.Client(base_url=base, timeout=30) as c:
            _wait_ready(c)
            assert c.get("/recommend?user=103&task=buy").status_code == 200
            r = c.post("/users/103/events", json={"events": {"view": ["item1"]}, "task": "buy"})
            assert r.status_code == status and message in _json(r)["error"]


# --------------------------------------------------------------------------------------------------------------------
# readiness, admin, hot-swap
# --------------------------------------------------------------------------------------------------------------------
def test_ready_is_distinct_from_health(dirs):
    gate = threading.Event()

    def slow_loader(path, mmap_mode):
        assert gate.wait(20)
        return InferenceModel.load(path, mmap_mode=mmap_mode)
    app = create_app(path=dirs["full"], loader=slow_loader, blas_threads=None)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        doc = _json(c.get("/health"))
        assert doc["status"] == "ok" and doc["ready"] is False
        r = c.get("/ready")
        assert r.status_code == 503 and "not loaded" in _json(r)["error"]
        assert c.get("/recommend?user=103&task=buy").status_code == 503
        gate.set()
        _wait_ready(c)
        assert _json(c.get("/health"))["ready"] is True
        assert c.get("/recommend?user=103&task=buy").status_code == 200


def test_admin_reload_errors_keep_the_served_model(client, dirs):
    r = client.post("/admin/reload", json={"path": dirs["full"] + "-missing"})
    assert r.status_code == 400 and "still serving" in _json(r)["error"]
    r = client.post("/admin/reload", json={"path": "a\x00b"})
    assert r.status_code == 400
    r = client.post("/admin/reload", json={}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403 and "loopback" in _json(r)["error"]
    assert client.get("/recommend?user=103&task=buy").status_code == 200
    app = create_app(path=dirs["full"], admin=False, load="startup", blas_threads=None)
    with running(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/admin/reload").status_code == 403


def _answers(path, n=4):
    model = InferenceModel.load(path)
    return {u: model.recommend([u], n=n, task="buy")[0][0].tolist() for u in USERS[:8]}


def test_hot_swap_under_concurrent_load(dirs):
    """Threads hammer /recommend while the model is swapped six times: no request fails, every answer is
    exactly one model's, and the generation header says which."""
    answers = {"full": _answers(dirs["full"]), "other": _answers(dirs["other"])}
    assert answers["full"] != answers["other"]
    app = create_app(path=dirs["full"], load="startup", blas_threads=None, max_threads=8)
    failures, seen, stop = [], {"full": 0, "other": 0}, threading.Event()
    with running(app) as base:
        def hammer(k):
            with httpx.Client(base_url=base, timeout=30) as c:
                j = 0
                while not stop.is_set() or j < 5:
                    user = USERS[(k + j) % 8]
                    j += 1
                    r = c.get(f"/recommend?user={user}&task=buy&n=4")
                    if r.status_code != 200:
                        failures.append((r.status_code, r.text))
                        continue
                    generation = int(r.headers["x-model-generation"])
                    which = "full" if generation % 2 == 1 else "other"     # generation 1 = full, then alternating
                    if r.json()["items"] != answers[which][user]:
                        failures.append(("mixed", generation, user, r.json()["items"]))
                    seen[which] += 1
        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        with httpx.Client(base_url=base, timeout=30) as admin:
            for swap in range(6):
                time.sleep(0.15)
                r = admin.post("/admin/reload", json={"path": dirs["other" if swap % 2 == 0 else "full"]})
                assert r.status_code == 200 and r.json()["generation"] == swap + 2, r.text
        time.sleep(0.15)
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:5]
    assert seen["full"] > 10 and seen["other"] > 10, seen


# --------------------------------------------------------------------------------------------------------------------
# the command line: SIGHUP, workers, graceful shutdown, the missing extra
# --------------------------------------------------------------------------------------------------------------------
def _start_cli(model_dir, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "mtl_classic.cli", "serve", "--model", model_dir, "--port", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        raise AssertionError(line + proc.communicate(timeout=10)[1])
    return proc, line.split(" on ")[1].split()[0]


def _stop(proc):
    """SIGTERM: uvicorn's graceful shutdown, after which it re-raises the signal (exit status -15) or, with
    workers, the supervisor exits 0; anything else (a kill after 20 s, a traceback) is a failure."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return "killed"
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    return "stopped" if proc.returncode in (0, -signal.SIGTERM) else proc.returncode


def _poll(fn, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fn():
                return True
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX only")
def test_sighup_reloads_the_saved_model(dirs, tmp_path, fitted):
    path = str(tmp_path / "m")
    fitted.save(path)
    proc, base = _start_cli(path)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            assert _json(c.get("/health"))["generation"] == 1
            MultiTaskMF.load(dirs["other"]).save(path)           # a newly saved model in the same directory
            proc.send_signal(signal.SIGHUP)
            _poll(lambda: c.get("/health").json()["generation"] == 2)
            doc = _json(c.get("/recommend?user=103&task=buy&n=4"))
            assert doc["items"] == _answers(dirs["other"])[103]
    finally:
        assert _stop(proc) == "stopped"


def test_workers_share_the_model_and_shut_down_gracefully(dirs):
    proc, base = _start_cli(dirs["full"], "--workers", "2")
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            _poll(lambda: c.get("/ready").status_code == 200)
            expected = _answers(dirs["full"])[103]
            for _ in range(6):
                assert _json(c.get("/recommend?user=103&task=buy&n=4"))["items"] == expected
            r = c.post("/admin/reload", json={"path": dirs["other"]})
            assert r.status_code == 409 and "fixed" in _json(r)["error"]
            assert _json(c.get("/health"))["mmap_mode"] == "r"
            pids = {httpx.get(base + "/health", timeout=30).json()["pid"] for _ in range(6)}
            assert c.post("/admin/reload").status_code == 202     # uvicorn replaces the workers one by one
            for _ in range(20):
                assert c.get("/recommend?user=103&task=buy&n=4").status_code == 200
            _poll(lambda: httpx.get(base + "/health", timeout=30).json()["pid"] not in pids)   # new workers
            assert _json(httpx.get(base + "/recommend?user=103&task=buy&n=4", timeout=30))["items"] == expected
    finally:
        assert _stop(proc) == "stopped"


def test_sigterm_drains_a_request_in_flight(dirs):
    """A request whose body is still arriving when SIGTERM comes is answered before the process exits; new
    connections are refused meanwhile."""
    proc, base = _start_cli(dirs["full"])
    try:
        host, port = base.rsplit("//", 1)[1].split(":")
        body = b'{"task": "buy", "pairs": [[103, "item4"]]}'
        with socket.create_connection((host, int(port)), timeout=20) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None                       # still draining
            with pytest.raises(OSError):                     # and no longer accepting
                socket.create_connection((host, int(port)), timeout=5).close()
            s.sendall(body[10:])
            reply = b""
            while b'"predictions"' not in reply:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            reply = reply.decode()
        assert reply.startswith("HTTP/1.1 200") and '"predictions"' in reply, reply
        proc.wait(timeout=20)
    finally:
        assert _stop(proc) == "stopped"


def test_without_the_serve_extra_the_error_names_it(tmp_path):
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
            "import mtl_classic.serving, mtl_classic.cli\n"
            "try:\n    mtl_classic.serving.create_app(path='x')\nexcept ImportError as e:\n    print(e)\n"
            "sys.exit(mtl_classic.cli.main(['serve', '--model', 'x']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "[serve]" in out.stdout and "[serve]" in out.stderr, out
    assert out.stderr.count("\n") == 1


# --------------------------------------------------------------------------------------------------------------------
# schema fuzzing
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory):
    """A server whose ids are short strings (what the fuzzer generates most) and whose one task is the default, so
    that generated requests reach the model, not only the 4xx paths."""
    rng = np.random.default_rng(3)
    users, items = list("0123456789abcdefghij"), list("0123456789ABCDEFGHIJ")
    buy = sp.csr_matrix((rng.random((len(users), len(items))) < 0.3).astype(float))
    # one-letter side matrices with one-letter column ids: fuzzed events and new items reach the side paths too
    columns = list("0123ab")
    side = {name: (sp.csr_matrix((rng.random((n, len(columns))) < 0.4).astype(float)), columns)
            for name, n in (("q", len(users)), ("g", len(items)))}
    # and a one-letter item feature ("s", one column "v"): fuzzed new items' "features" reach the bias term
    sales = (rng.random((len(items), 1)) * 3.0, ["v"])
    data = MultiTaskData.from_matrices({"buy": buy}, user_ids=users, item_ids=items).with_side(
        user_side={"q": side["q"]}, item_side={"g": side["g"], "s": sales})
    model = MultiTaskMF(tasks=[Task("buy", item_feature="s"), Task("q", side="user"), Task("g", side="item")],
                        factors=3, iterations=2, random_state=0).fit(data)
    path = str(tmp_path_factory.mktemp("fuzz") / "model")
    model.save(path)
    with running(create_app(path=path, load="startup", max_n=50, max_pairs=100, blas_threads=None)) as base:
        yield base


@pytest.mark.parametrize("server", ["fuzz_url", "url"])
def test_schemathesis_fuzz_finds_no_server_error_and_no_schema_violation(server, request):
    """Both servers: short string ids and a default task (requests reach the model), and the module's server
    (integer user ids, two tasks, small limits)."""
    url = request.getfixturevalue(server)
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (the [test] extra)")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 6
    statuses = []
    for operation in operations:
        if operation.path == "/admin/reload":
            continue                     # reloads from fuzzed paths are covered by test_admin_reload_errors_...
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=40 * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                response = case.call_and_validate(base_url=url, checks=checks, timeout=30)
                statuses.append(response.status_code)
            try:
                fuzz()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label   # nothing to negate (no parameters)
    assert statuses and all(s < 500 for s in statuses)
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)
