"""test_warm.py — where the daemon's training runs start from (README, "Where a run starts"), on the
real daemon and its training child with a tiny model: the first run starts from random weights;
the next one (POST /api/v1/train) continues the active model, its weights, DINO centre and
optimiser state (the step count goes on, the checkpoint's teacher starts from the active one's);
{"fresh": true} starts anew; bad bodies get a 400 that says why; after the network is changed in
[trainer] (SIGHUP) the next run starts anew while the old model keeps scoring until the new one
is registered, and the run after it continues the new one. Then `inspectd train --db`: a warm
start by default, none with --fresh or a --dim of another network, --fresh with --resume refused.
Python standard library only."""
import http.client
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, wait_while_training  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = warm-test-token
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = false
threads = 2
size = 16
channels = 3
dim = {dim}
depth = 1
heads = 2
patch = 4
batch = 8
locals = 2
epochs = {epochs}
minutes = 5
first_minutes = 5
max_images = 48
[camera.line1]
driver = synthetic
fps = 10
width = 64
height = 48
"""
TINY = ["--size", "16", "--channels", "3", "--depth", "1", "--heads", "2", "--patch", "4",
        "--batch", "8", "--locals", "2", "--epochs", "2", "--threads", "2", "--max-images", "48"]
STEPS = 12  # a run's: 2 epochs of 48 images in batches of 8


def call(port, method, path, body=None, token="warm-test-token"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def get(port, path):
    status, j = call(port, "GET", path)
    assert status == 200, (path, status, j)
    return j


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def tensor(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        b, e = header[name]["data_offsets"]
        f.seek(8 + n + b)
        return f.read(e - b)


def models(db):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, version, path, meta, status FROM models ORDER BY id").fetchall()
    con.close()
    return [{"id": r[0], "version": r[1], "path": r[2], "meta": json.loads(r[3] or "{}"),
             "status": r[4]} for r in rows]


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-warm-")
    db = os.path.join(tmp, "line.db")
    conf = os.path.join(tmp, "inspectd.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, dim=16, epochs=2))
    log = open(os.path.join(tmp, "run.log"), "w+")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 60, 60,
                 "frames")

        def run(body, want_models, steps=STEPS):
            status, j = call(port, "POST", "/api/v1/train", body)
            assert status == 202, (status, j)
            progress = []

            def done():
                t = get(port, "/api/v1/train")
                if t.get("phase") == "training":
                    progress.append((t["step"], t["total_steps"]))
                return len(models(db)) >= want_models and t["state"] == "idle"

            wait_while_training(done, proc.pid, "training run %d" % want_models)
            # the API counts the run's own steps, a warm start's from its first
            assert all(0 <= s <= n <= steps for s, n in progress if n), progress
            t = get(port, "/api/v1/train")
            assert t["last_exit"] == 0, t
            m = models(db)[-1]
            assert m["status"] == "active", m
            return m, t

        # 1. a new line's first run: random weights
        first, t = run(None, 1)
        assert first["meta"]["start"] == "random" and first["meta"]["steps"] == STEPS, first
        assert t["fresh"] is False, t

        # 2. the next run continues it: steps go on, weights, centre and moments from it
        warm, t = run(b"{}", 2)
        assert warm["meta"]["start"] == "warm", warm
        assert warm["meta"]["steps"] == 2 * STEPS and warm["meta"]["run_steps"] == STEPS, warm
        meta = metadata(warm["path"])
        assert meta["run_first"] == str(STEPS) and meta["adam_step"] == str(2 * STEPS), meta
        assert tensor(warm["path"], "teacher.cls_token") != tensor(first["path"],
                                                                   "teacher.cls_token")
        log.seek(0)
        assert "warm start from %s: its weights, DINO centre and optimiser state" % first["path"] \
            in log.read()

        # 3. bad bodies are refused with the reason, and start nothing
        for body, why in [(b'{"fresh": 1}', "fresh must be true or false"),
                          (b'{"fresh": true, "minutes": 3}', "unknown field 'minutes'"),
                          (b"fresh", "bad JSON"), (b"[true]", "must be an object")]:
            status, j = call(port, "POST", "/api/v1/train", body)
            assert status == 400 and why in j["error"], (body, status, j)
        assert get(port, "/api/v1/train")["state"] == "idle"
        assert call(port, "POST", "/api/v1/train", b'{"fresh": true}', token=None)[0] == 401

        # 4. {"fresh": true}: anew, though the active model is the same network
        fresh, t = run(b'{"fresh": true}', 3)
        assert fresh["meta"]["start"] == "random" and fresh["meta"]["steps"] == STEPS, fresh
        assert t["fresh"] is True, t

        # 5. another network in [trainer] (applied by SIGHUP): the next run starts anew, and
        # the old model keeps scoring the line while it trains (a longer run, to look at that)
        with open(conf, "w") as f:
            f.write(CONFIG.format(port=port, db=db, dim=32, epochs=8))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded " + conf in open(log.name).read(), 30, "the reload")
        scored = get(port, "/api/v1/status")["scoring"]
        assert scored["model"] == fresh["version"], scored
        status, j = call(port, "POST", "/api/v1/train")
        assert status == 202, (status, j)
        during = []

        def new_model():
            t = get(port, "/api/v1/train")
            st = get(port, "/api/v1/status")
            if t.get("phase") == "training" and get(port, "/api/v1/train").get("phase") == "training":
                during.append((st["scoring"]["model"], st["scoring"]["frames_scored"]))
            return len(models(db)) >= 4 and st["scoring"].get("model") == models(db)[-1]["version"]

        wait_while_training(new_model, proc.pid, "the model of the new network scoring")
        other = models(db)[-1]
        assert other["meta"]["start"] == "random" and other["meta"]["steps"] == 4 * STEPS, other
        assert json.loads(metadata(other["path"])["model"])["dim"] == 32
        assert during and all(m == fresh["version"] for m, _ in during), during
        assert during[-1][1] > during[0][1], during
        print("while the new network trained: %d looks, frames scored %d to %d"
              % (len(during), during[0][1], during[-1][1]))
        log.seek(0)
        text = log.read()
        assert "no warm start: %s is another network" % fresh["path"] in text, text[-3000:]
        n = get(port, "/api/v1/status")["scoring"]["frames_scored"]
        wait_for(lambda: get(port, "/api/v1/status")["scoring"]["frames_scored"] > n, 60,
                 "frames scored by the new network")
        # ... and the run after it continues the new network
        wait_while_training(lambda: get(port, "/api/v1/train")["state"] == "idle", proc.pid,
                            "the run's end")
        again, _ = run(None, 5, 4 * STEPS)
        assert again["meta"]["start"] == "warm" and again["meta"]["steps"] == 8 * STEPS, again
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.seek(0)
        sys.stdout.write(log.read()[-4000:])
    assert code == 0, code

    # 6. `inspectd train --db`: warm from the active model (dim 32) by default, not with --fresh
    # or when the options describe another network
    def train(out, *extra):
        r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, out),
                            "--register", *TINY, *extra], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stderr, models(db)[-1]

    err, m = train("cli-warm.safetensors", "--dim", "32")
    assert "warm start from" in err and m["meta"]["start"] == "warm", (err, m)
    assert m["meta"]["steps"] == 9 * STEPS, m
    err, m = train("cli-fresh.safetensors", "--dim", "32", "--fresh")
    assert "warm start" not in err and m["meta"]["start"] == "random", (err, m)
    assert m["meta"]["steps"] == STEPS, m
    err, m = train("cli-other.safetensors", "--dim", "16")
    assert "is another network" in err and m["meta"]["start"] == "random", (err, m)
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "x.safetensors"),
                        "--fresh", "--resume"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "--fresh starts anew" in r.stderr, r.stderr
    shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    main()
