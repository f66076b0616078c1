"""test_methods.py — the self-supervised methods beside DINO (--method byol, barlow, simclr) in
`inspectd train` on a database of frames from the synthetic camera: each method's run interrupted
after two steps resumes where it stopped, registers its model (bank, threshold) and that model
scores frames with `inspectd score`; the checkpoint's metadata and the model's row name the
method; a model or an interrupted run of another method is never continued (the run starts anew),
one of the same method is. Python standard library only."""
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
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[camera.line]
driver = synthetic
fps = 0
frames = 64
width = 64
height = 64
defect_rate = 0.02
seed = 4
[trainer]
enabled = false
"""


def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def frames(tmp, db):
    conf = os.path.join(tmp, "run.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db))
    log = open(os.path.join(tmp, "run.log"), "w+")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline and stored < 64:
        time.sleep(0.2)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/status" % port, timeout=5) as r:
                stored = json.loads(r.read())["database"]["frames_stored"]
        except OSError:
            pass
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert stored >= 64, "the synthetic camera stored %d frames" % stored


def train(db, out, method, *extra):
    args = [BIN, "train", "--db", db, "--out", out, "--method", method, *tiny_train(), *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (method, extra, r.stderr)
    return r.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-methods-")
    db = os.path.join(tmp, "line.db")
    frames(tmp, db)
    con = sqlite3.connect(db)
    image = con.execute("SELECT image FROM frames ORDER BY id LIMIT 1").fetchone()[0]
    frame = os.path.join(tmp, "frame.jpg")
    with open(frame, "wb") as f:
        f.write(image)

    # each method: two steps, then resumed to the end (2 epochs of 64 frames / 16), registered,
    # scoring; the next method finds the active model of another one and starts anew
    previous = None
    for method in ("dino", "barlow", "simclr", "byol"):
        out = os.path.join(tmp, "%s.safetensors" % method)
        err = train(db, out, method, "--max-steps", "2")
        assert "method %s" % method in err, err
        if previous in ("dino", "barlow"):  # the same network, another method
            assert "no warm start" in err and "trained with %s" % previous in err, err
        elif previous == "simclr":  # BYOL's predictor makes it another network too
            assert "no warm start" in err and "another network" in err, err
        assert ("embed_std" in err) == (method != "dino"), err  # the progress line's monitor
        m = meta(out)
        assert m["method"] == method and m["adam_step"] == "2", m
        assert json.loads(m["train"])["method"] == method, m["train"]
        err = train(db, out, method, "--resume", "--register")
        assert "resuming" in err and "now scores" in err, err
        active = con.execute("SELECT json_extract(meta, '$.method') FROM models "
                             "WHERE status = 'active'").fetchall()
        assert active == [(method,)], active
        m = meta(out)
        assert m["adam_step"] == "8" and m["method"] == method, m
        if method != "byol":  # every model shows the backbone and the same head
            assert "predictor" not in m["model"], m["model"]
        else:
            assert json.loads(m["model"])["predictor"] > 0, m["model"]
        r = subprocess.run([BIN, "score", "--db", db, frame], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        line = json.loads(r.stdout.splitlines()[0])
        assert line["score"] > 0, line
        print("%s: score %.4f after %s steps" % (method, line["score"], m["adam_step"]))
        previous = method

    # a run of the active model's method continues it
    again = os.path.join(tmp, "byol-2.safetensors")
    err = train(db, again, "byol", "--max-steps", "9")
    assert "warm start from" in err, err
    assert meta(again)["adam_step"] == "9", meta(again)

    # an interrupted run of another method is not resumed: the run starts anew
    other = os.path.join(tmp, "other.safetensors")
    train(db, other, "barlow", "--max-steps", "3", "--fresh")
    err = train(db, other, "simclr", "--resume", "--max-steps", "2")
    assert "not resuming" in err and "trained with barlow" in err, err
    m = meta(other)
    assert m["method"] == "simclr" and m["adam_step"] == "2", m

    r = subprocess.run([BIN, "train", "--db", db, "--out", other, "--method", "moco"],
                       capture_output=True, text=True)
    assert r.returncode == 64 and "dino, byol, barlow or simclr" in r.stderr, r.stderr
    shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
