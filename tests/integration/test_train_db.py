"""test_train_db.py — `inspectd train --db`: the real daemon stores 30 synthetic frames, then
training reads them back from its database (all of them, one camera's, one recipe's, those since a
time, at most N), names the source in the checkpoint's metadata, and refuses an unknown camera or
recipe, an empty selection and --camera without --db. Python standard library only."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:0
[store]
path = {db}
[trainer]
enabled = false
[camera.line1]
driver = synthetic
fps = 0
frames = 30
width = 64
height = 48
"""


def capture(tmp):
    db = os.path.join(tmp, "frames.db")
    conf = os.path.join(tmp, "inspectd.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(db=db))
    log = open(os.path.join(tmp, "run.log"), "w+")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline and daemon.poll() is None:
        log.seek(0)
        if "no more frames" in log.read():
            break
        time.sleep(0.1)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, "daemon did not stop cleanly"
    log.seek(0)
    text = log.read()
    assert "30 stored" in text, text
    return db


def train(db, out, *extra):
    args = [BIN, "train", "--db", db, "--out", out, "--size", "16", "--dim", "16", "--depth", "1",
            "--heads", "2", "--batch", "8", "--locals", "2", "--epochs", "1", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))["__metadata__"]


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-train-db-")
    db = capture(tmp)
    out = os.path.join(tmp, "model.safetensors")

    r = train(db, out, "--camera", "line1")
    assert r.returncode == 0, r.stderr
    assert "30 images from %s (recipe line1, camera line1, since the first frame)" % db \
        in r.stderr, r.stderr
    meta = metadata(out)
    assert meta["images"] == "30" and meta["source"].startswith(db), meta

    r = train(db, out, "--since", "1h", "--max-images", "12")
    assert r.returncode == 0 and "12 images from" in r.stderr, r.stderr
    r = train(db, out, "--since", "2020-01-01T10:00")
    assert r.returncode == 0 and "30 images from" in r.stderr, r.stderr

    r = train(db, out, "--since", "2999-01-01")
    assert r.returncode == 1 and "0 usable images" in r.stderr, r.stderr
    # the camera's recipe is its own name by default, and the database's only one
    r = train(db, out, "--recipe", "line1", "--max-images", "12")
    assert r.returncode == 0 and "12 images from %s (recipe line1," % db in r.stderr, r.stderr
    r = train(db, out, "--recipe", "nosuch")
    assert r.returncode == 1 and "no recipe named 'nosuch'" in r.stderr, r.stderr
    r = train(db, out, "--camera", "line9")
    assert r.returncode == 1 and "no frames of a camera named 'line9'" in r.stderr, r.stderr
    r = train(db, out, "--since", "yesterday")
    assert r.returncode == 64 and "bad value 'yesterday' for --since" in r.stderr, r.stderr
    r = subprocess.run([BIN, "train", "--images", tmp, "--camera", "line1", "--out", out],
                       capture_output=True, text=True)
    assert r.returncode == 64 and "select frames of --db" in r.stderr, r.stderr
    shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
