"""The mtl-classic command line: fit -> recommend / evaluate / serve, --help, one-line errors with exit status 2."""
import json
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest

from mtl_classic.cli import main
from mtl_classic.model import MultiTaskMF


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 2000
    users = rng.integers(0, 60, n)
    items = (users * 7 + rng.integers(0, 12, n)) % 40          # some structure: users prefer nearby items
    df = pd.DataFrame({"uid": users, "sku": [f"sku{i}" for i in items],
                       "behaviour": rng.choice(["view", "cart", "buy"], n, p=[0.7, 0.2, 0.1]),
                       "ts": rng.integers(0, 10_000, n)})
    # held-out purchases: one (user, item) pair per user among the first buyers, removed from the training events
    # (every buy row of the pair; its views / carts stay, as the protocol keeps auxiliary behaviours)
    buys = df[df.behaviour == "buy"].drop_duplicates("uid").head(25)
    held = set(zip(buys.uid, buys.sku))
    is_held = np.array([(u, i) in held for u, i in zip(df.uid, df.sku)]) & (df.behaviour == "buy").to_numpy()
    df[~is_held].to_csv(d / "events.csv", index=False)
    df[is_held].to_csv(d / "test.csv", index=False)
    (d / "tasks.json").write_text(json.dumps([{"name": "view", "weight": 0.3}, {"name": "buy"}]))
    return d


@pytest.fixture(scope="module")
def model_dir(files):
    out = files / "model"
    code = main(["fit", "--events", str(files / "events.csv"), "--tasks", str(files / "tasks.json"),
                 "--out", str(out), "--user-col", "uid", "--item-col", "sku", "--task-col", "behaviour",
                 "--timestamp-col", "ts", "--factors", "4", "--iterations", "3", "--quiet"])
    assert code == 0
    return out


def test_fit_prints_a_progress_line_per_sweep(files, capsys, tmp_path):
    code = main(["fit", "--events", str(files / "events.csv"), "--tasks", str(files / "tasks.json"),
                 "--out", str(tmp_path / "m"), "--user-col", "uid", "--item-col", "sku", "--task-col", "behaviour",
                 "--factors", "4", "--iterations", "2"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.count("[MultiTaskMF] sweep") == 2 and "saved to" in captured.out
    assert "ignoring" in captured.err and "cart" in captured.err            # events of tasks not in tasks.json
    model = MultiTaskMF.load(tmp_path / "m")
    assert [t.name for t in model.tasks_] == ["view", "buy"] and model.tasks_[0].weight == 0.3


def test_recommend(model_dir, capsys):
    model = MultiTaskMF.load(model_dir)
    assert main(["recommend", "--model", str(model_dir), "--user", "3", "--task", "buy", "-n", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ids, scores = model.recommend([3], n=4, task="buy")
    assert doc["user"] == 3 and doc["items"] == ids[0].tolist() and np.allclose(doc["scores"], scores[0])
    assert main(["recommend", "--model", str(model_dir), "--user", "3", "4", "--task", "view", "-n", "2",
                 "--exclude", "sku1", "--filter-seen", "any", "--mmap"]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") == 2 + 4 and "sku1 " not in table
    assert main(["recommend", "--model", str(model_dir), "--user", "3", "--weights", "buy=1", "view=0.5",
                 "-n", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 3
    assert main(["recommend", "--model", str(model_dir), "--user", "12345", "--task", "buy", "--fallback",
                 "popular", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 10


def test_evaluate(model_dir, files, capsys):
    assert main(["evaluate", "--model", str(model_dir), "--events", str(files / "test.csv"), "--task", "buy",
                 "-k", "5", "10", "--user-col", "uid", "--item-col", "sku", "--task-col", "behaviour",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    test = pd.read_csv(files / "test.csv")
    assert {"HR@5", "NDCG@10"} <= set(doc) and doc["n_events"] == len(test)
    # HR@10 recomputed from the saved model's own top-10 (training buys filtered), pair by pair
    model = MultiTaskMF.load(model_dir)
    pairs = test.drop_duplicates(["uid", "sku"])
    users = sorted(pairs.uid.unique())
    ids, _ = model.recommend(users, n=10, task="buy", filter_seen=True)
    hits = [len(set(pairs[pairs.uid == u].sku) & set(row)) / len(pairs[pairs.uid == u]) for u, row in zip(users, ids)]
    assert doc["HR@10"] == pytest.approx(np.mean(hits))
    assert doc["HR@10"] > 0        # held-out pairs are rankable: not filtered as training buys


ERRORS = [
    (["recommend", "--model", "{model}", "--user", "999999", "--task", "buy"], "unknown user"),
    (["recommend", "--model", "{model}", "--user", "3", "--task", "nope"], "unknown task"),
    (["recommend", "--model", "{model}", "--user", "3", "--task", "buy", "--exclude", "nosuch"], "unknown item"),
    (["recommend", "--model", "{missing}", "--user", "3", "--task", "buy"], "not a directory"),
    (["evaluate", "--model", "{model}", "--events", "{missing}", "--task", "buy"], "not found"),
    (["fit", "--events", "{events}", "--tasks", "{events}", "--out", "{out}"], "not valid JSON"),
    (["fit", "--events", "{events}", "--tasks", "{tasks}", "--out", "{out}"], "no column"),
]


@pytest.mark.parametrize("argv,message", ERRORS)
def test_library_errors_are_one_line_and_exit_2(argv, message, model_dir, files, capsys, tmp_path):
    fill = {"model": str(model_dir), "missing": str(tmp_path / "missing"), "events": str(files / "events.csv"),
            "tasks": str(files / "tasks.json"), "out": str(tmp_path / "out")}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mtl-classic ") and "error:" in err and message in err, err
    assert "Traceback" not in err


BAD_ARGS = [
    [],
    ["frobnicate"],
    ["fit", "--events", "x.csv"],
    ["fit", "--events", "x.csv", "--tasks", "t.json", "--out", "o", "--factors", "0"],
    ["recommend", "--model", "m", "--user", "1", "-n", "ten"],
    ["serve", "--model", "m", "--port", "70000"],
    ["evaluate", "--model", "m", "--events", "e.csv", "--task", "buy", "-k", "0"],
]


@pytest.mark.parametrize("argv", BAD_ARGS)
def test_bad_arguments_give_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "usage:" not in err, err


@pytest.mark.parametrize("command", [[], ["fit"], ["evaluate"], ["recommend"], ["benchmark"], ["serve"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: mtl-classic" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = shutil.which("mtl-classic")
    if exe is None:
        pytest.skip("the mtl-classic console script is not on PATH (package not installed)")
    out = subprocess.run([exe, "recommend", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--task" in out.stdout
    out = subprocess.run([exe, "recommend"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_serve_subprocess(model_dir):
    proc = subprocess.Popen([sys.executable, "-m", "mtl_classic.cli", "serve", "--model", str(model_dir),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving" in line and "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" on ")[1].split()[0]
        with urllib.request.urlopen(url + "/health", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        with urllib.request.urlopen(url + "/recommend?user=3&task=buy&n=2", timeout=10) as resp:
            assert len(json.loads(resp.read())["items"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_builtin_benchmark_runs(capsys):
    assert main(["benchmark", "--factors", "4", "--iterations", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows][0] == "popularity" and len(rows) == 6
    assert rows[-1]["model"] == "MultiTaskMF, its defaults (rated + tagged)"
    assert all(0 <= r["NDCG@10"] <= 1 for r in rows)
