"""test_prune_recipes.py — the models directory is pruned before every training run, and what a run
of one recipe prunes never includes another recipe's interrupted run: recipe b's checkpoint that
no model row names (a run stopped before it registered) is still there after a run of recipe a,
for b's next run to resume, while the checkpoint of a recipe the config no longer names goes.
Python standard library only."""
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train, wait_while_training  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
TOKEN = "prune-test-token"

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = {token}
[store]
path = {db}
[trainer]
enabled = false
size = 64
patch = 8
channels = 3
dim = 32
depth = 2
heads = 2
batch = 16
locals = 2
epochs = 1
max_images = 40
threads = 2
[camera.top]
driver = synthetic
recipe = a
fps = 20
width = 64
height = 64
frames = 60
[camera.side]
driver = synthetic
recipe = b
fps = 20
width = 64
height = 64
frames = 60
seed = 2
"""


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + TOKEN,
                                               "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, (path, r.status, data)
    return json.loads(data)


def idle_after(port, runs):
    """Whether `runs` training runs have been started and none is running or waiting."""
    t = get(port, "/api/v1/train")
    return t["state"] == "idle" and t["runs"] >= runs


def query(db, path):
    """Whether a model row names the checkpoint at path (resumed and registered)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM models WHERE path = ?",
                           (os.path.realpath(path),)).fetchone()[0] > 0
    finally:
        con.close()


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-prune-")
    db = os.path.join(tmp, "line.db")
    conf = os.path.join(tmp, "inspectd.conf")
    models = os.path.join(tmp, "models")
    port = free_port()
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, token=TOKEN, db=db))
    log = open(os.path.join(tmp, "run.log"), "w+")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log, cwd=tmp)
    try:
        deadline = time.time() + 60
        while True:
            try:
                con = sqlite3.connect(db)
                n = con.execute("SELECT count(*) FROM frames").fetchone()[0]
                con.close()
                if n >= 120:
                    break
            except sqlite3.Error:
                pass
            assert time.time() < deadline, "120 frames"
            time.sleep(0.2)
        # an interrupted run of b (a real checkpoint no model row names) and a leftover of a
        # recipe no camera or section names any more
        os.makedirs(models, exist_ok=True)
        seed_ckpt = os.path.join(tmp, "seed.safetensors")
        subprocess.run([BIN, "train", "--db", db, "--recipe", "b", "--out", seed_ckpt,
                        "--max-steps", "1"] + tiny_train(1), check=True,
                       stderr=subprocess.DEVNULL)
        interrupted = os.path.join(models, "b@20260101T000000Z.safetensors")
        gone = os.path.join(models, "gone@20260101T000000Z.safetensors")
        shutil.copy(seed_ckpt, interrupted)
        shutil.copy(seed_ckpt, gone)
        s, j = post(port, "/api/v1/train", {"recipe": "a"})
        assert s == 202, (s, j)
        wait_while_training(lambda: idle_after(port, 1), proc.pid, "a's run")
        text = open(log.name).read()
        assert "removed 1 model file(s)" in text, text[-3000:]
        assert os.path.exists(interrupted), os.listdir(models)
        assert not os.path.exists(gone), os.listdir(models)
        # b's next run resumes it
        s, j = post(port, "/api/v1/train", {"recipe": "b"})
        assert s == 202, (s, j)
        wait_while_training(lambda: idle_after(port, 2), proc.pid, "b's run")
        training = get(port, "/api/v1/status")["training"]
        assert training["resumed"] == 1, training
        assert not os.path.exists(interrupted) or query(db, interrupted), os.listdir(models)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        if sys.exc_info()[0] is not None:
            log.seek(0)
            print(log.read()[-6000:])
    assert rc == 0, rc
    shutil.rmtree(tmp)
    print("test_prune_recipes: ok")


if __name__ == "__main__":
    main()
