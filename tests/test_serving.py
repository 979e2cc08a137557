"""The HTTP server: JSON answers, 4xx JSON errors for bad input, no tracebacks, keeps serving."""
import http.client
import json
import socket
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.data import MultiTaskData
from mtl_classic.inference import InferenceModel
from mtl_classic.model import MultiTaskMF
from mtl_classic.serving import RecommendApp, make_server
from mtl_classic.tasks import Task


def _model():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 25
    S = rng.normal(size=(n_users, 3)) @ rng.normal(size=(n_items, 3)).T
    view = sp.csr_matrix((S > 0.3).astype(float))
    buy = sp.csr_matrix((S > 1.3).astype(float))
    data = MultiTaskData.from_matrices({"view": view, "buy": buy}, user_ids=list(range(100, 100 + n_users)),
                                       item_ids=[f"item{i}" for i in range(n_items)])
    return MultiTaskMF(tasks=[Task("view", weight=0.5), Task("buy")], factors=4, iterations=3,
                       random_state=0).fit(data)


@pytest.fixture(scope="module")
def fitted():
    return _model()


@pytest.fixture(scope="module")
def server(fitted):
    srv = make_server(InferenceModel.from_model(fitted), port=0, max_body=4096, max_n=100)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        assert resp.getheader("Content-Type") == "application/json", raw
        return resp.status, json.loads(raw)
    finally:
        conn.close()


def test_binds_loopback(server):
    assert server.server_address[0] == "127.0.0.1"


def test_health_recommend_predict(server, fitted):
    status, doc = _request(server, "GET", "/health")
    assert status == 200 and doc["status"] == "ok" and doc["tasks"] == ["view", "buy"]
    status, doc = _request(server, "GET", "/recommend?user=103&task=buy&n=5")
    assert status == 200
    ids, scores = fitted.recommend([103], n=5, task="buy")
    assert doc["items"] == ids[0].tolist() and np.allclose(doc["scores"], scores[0])
    status, doc = _request(server, "GET", "/recommend?user=103&task=buy&n=5&filter_seen=any&exclude=item1,item2")
    assert status == 200 and not {"item1", "item2"} & set(doc["items"])
    status, doc = _request(server, "GET", "/recommend?user=103&weights=buy:1,view:0.5&n=3")
    assert status == 200 and set(doc["breakdown"]) == {"buy", "view"} and len(doc["items"]) == 3
    body = json.dumps({"task": "buy", "pairs": [[103, "item4"], [104, "item0"]]})
    status, doc = _request(server, "POST", "/predict", body, {"Content-Type": "application/json"})
    assert status == 200
    assert np.allclose(doc["predictions"], fitted.predict("buy", [103, 104], ["item4", "item0"]))
    status, doc = _request(server, "GET", "/recommend?user=999&task=buy&n=3&fallback=popular")
    assert status == 200 and doc["fallback"] is True and len(doc["items"]) == 3


BAD = [
    ("GET", "/recommend?user=999&task=buy", None, 404, "unknown user"),
    ("GET", "/recommend?user=abc&task=buy", None, 404, "unknown user"),
    ("GET", "/recommend?user=103&task=nope", None, 400, "unknown task"),
    ("GET", "/recommend?user=103", None, 400, "missing parameter 'task'"),
    ("GET", "/recommend?task=buy", None, 400, "missing parameter 'user'"),
    ("GET", "/recommend?user=103&task=buy&n=0", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&n=101", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&n=ten", None, 400, "n must be"),
    ("GET", "/recommend?user=103&task=buy&fallback=maybe", None, 400, "fallback"),
    ("GET", "/recommend?user=103&task=buy&filter_seen=sometimes", None, 400, "filter_seen"),
    ("GET", "/recommend?user=103&task=buy&exclude=nosuchitem", None, 404, "unknown item"),
    ("GET", "/recommend?user=103&task=buy&colour=red", None, 400, "unknown parameter"),
    ("GET", "/recommend?user=103&user=104&task=buy", None, 400, "more than once"),
    ("GET", "/recommend?user=103&weights=buy:x", None, 400, "weights"),
    ("GET", "/nowhere", None, 404, "not found"),
    ("POST", "/recommend?user=103&task=buy", b"{}", 405, "accepts GET"),
    ("GET", "/predict", None, 405, "accepts POST"),
    ("DELETE", "/health", None, 405, "not allowed"),
    ("POST", "/predict", b"{not json", 400, "malformed JSON"),
    ("POST", "/predict", b"\xff\xfe", 400, "malformed JSON"),
    ("POST", "/predict", b"[1, 2]", 400, "JSON object"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103]]}', 400, "pairs"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103, "item1"]], "x": 1}', 400, "unknown key"),
    ("POST", "/predict", b'{"task": "nope", "pairs": []}', 400, "unknown task"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[999, "item1"]]}', 404, "unknown user"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[103, "nope"]]}', 404, "unknown item"),
    ("POST", "/predict", b'{"task": "buy", "pairs": [[[1], "item1"]]}', 400, "ids must be"),
    ("POST", "/predict", b"x" * 5000, 413, "exceeds the limit"),
]


@pytest.mark.parametrize("method,path,body,status,message", BAD)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, method, path, body, status, message):
    got, doc = _request(server, method, path, body)
    assert got == status and message in doc["error"], doc
    assert "Traceback" not in json.dumps(doc)
    assert _request(server, "GET", "/recommend?user=101&task=buy&n=2")[0] == 200


def _raw(server, data):
    """Send raw bytes and read the reply until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return b"".join(chunks).decode()
            chunks.append(chunk)


def test_missing_content_length_and_malformed_request_line(server):
    reply = _raw(server, b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith("HTTP/1.1 411") and '"error"' in reply
    reply = _raw(server, b"GARBAGE\r\n\r\n")
    assert reply.startswith("HTTP/1.1 400") and '"error"' in reply and "<html" not in reply.lower()
    assert _request(server, "GET", "/health")[0] == 200


def test_internal_errors_are_500_without_traceback(fitted, capsys):
    app = RecommendApp(InferenceModel.from_model(fitted))

    def boom(*a, **k):
        raise RuntimeError("secret internals")
    app.model.recommend = boom
    status, doc = app.handle("GET", "/recommend?user=103&task=buy")
    assert status == 500 and doc == {"error": "internal server error"}
    assert "secret internals" in capsys.readouterr().err      # logged on the server side only


def test_keep_alive_connection_serves_many_requests(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    for n in (1, 2, 3):
        conn.request("GET", f"/recommend?user=102&task=view&n={n}")
        resp = conn.getresponse()
        assert resp.status == 200 and len(json.loads(resp.read())["items"]) == n
    conn.request("GET", "/recommend?user=102&task=view&n=0")
    resp = conn.getresponse()
    assert resp.status == 400 and json.loads(resp.read())["error"]
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn.close()
