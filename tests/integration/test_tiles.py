"""test_tiles.py — small defects in big frames ([recipe.NAME] input = tiles): at 1280 x 960 with
defects of a few pixels (synthetic defect_scale 0.1), a tiny model that cuts each frame into
128 px tiles at native resolution finds what the same model fed the whole frame shrunk to 128 px
(input = fit) misses. Both are trained by `inspectd train --db --register` on the same good
frames the daemon stored, and score the same held-out frames with `inspectd score`; the image
AUROC of tiles must beat fit's by a margin. Everything is seeded, so a run gives the same figures
on the same machine. The full comparison (pixel AUROC too, and timings) is `make bench-tiles`.
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
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = tiles-test-token
[store]
path = {db}
[trainer]
enabled = false
[camera.cam]
driver = synthetic
fps = {fps}
frames = {frames}
width = 1280
height = 960
shape = square
seed = {seed}
defect_rate = {rate}
defect_scale = 0.1
jpeg_quality = 95
"""

TINY = ["--size", "128", "--patch", "16", "--channels", "3", "--dim", "32", "--depth", "2",
        "--heads", "2", "--batch", "16", "--locals", "2", "--threads", "2", "--seed", "1"]


def count(db, sql):
    try:
        con = sqlite3.connect(db)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def run(tmp, name, db, frames, seed, rate, fps=0, until="SELECT count(*) FROM frames",
        during=None):
    """The daemon on db with a camera of `frames` synthetic frames, until the query `until`
    counts them all; then during(port), if given, and a clean stop."""
    conf = os.path.join(tmp, name + ".conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, frames=frames, seed=seed, rate=rate, fps=fps))
    log = open(os.path.join(tmp, name + ".log"), "w")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    deadline = time.time() + 120
    try:
        while count(db, until) < frames:
            assert time.time() < deadline, "%s: fewer than %d frames: %s" % (name, frames, until)
            time.sleep(0.3)
        if during:
            during(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def record(tmp, name, frames, seed, rate):
    """A database of `frames` synthetic frames stored by the daemon. Returns its path."""
    db = os.path.join(tmp, name + ".db")
    run(tmp, name, db, frames, seed, rate)
    return db


def train(tmp, db, name, mode, images):
    """The model of `mode` (fit or tiles), registered in a copy of db. Returns the copy."""
    mine = os.path.join(tmp, name + ".db")
    shutil.copy(db, mine)
    out = os.path.join(tmp, name + ".safetensors")
    t0 = time.monotonic()
    p = subprocess.run([BIN, "train", "--db", mine, "--recipe", "cam", "--out", out, "--register",
                        "--input", mode, "--max-images", str(images), "--epochs", "2"] + TINY,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "%s input" % mode in p.stderr, p.stderr[-2000:]
    print("%s: trained and registered in %.1f s" % (mode, time.monotonic() - t0))
    return mine


def auroc(scores, labels):
    """Rank AUROC of scores for labels (1 = defect), ties counting half."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def score(db, files):
    p = subprocess.run([BIN, "score", "--db", db, "--threads", "2"] + files, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(lines) == len(files), p.stdout
    return [x["score"] for x in lines]


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-tiles-")
    t0 = time.monotonic()
    good = record(tmp, "good", 30, seed=5, rate=0)
    test = record(tmp, "test", 32, seed=9, rate=0.5)
    con = sqlite3.connect(test)
    rows = con.execute("SELECT id, defect, image FROM frames ORDER BY id").fetchall()
    con.close()
    files, labels = [], []
    for fid, defect, image in rows:
        path = os.path.join(tmp, "frame-%d.jpg" % fid)
        with open(path, "wb") as f:
            f.write(image)
        files.append(path)
        labels.append(defect != "none")
    assert 8 <= sum(labels) <= 24, labels
    print("frames recorded in %.1f s" % (time.monotonic() - t0))

    fit_db = train(tmp, good, "fit", "fit", 30)
    tiles_db = train(tmp, good, "tiles", "tiles", 240)
    t1 = time.monotonic()
    fit = auroc(score(fit_db, files), labels)
    tiles = auroc(score(tiles_db, files), labels)
    print("image AUROC at 1280x960, defects of a few pixels: fit %.3f, tiles %.3f (scored in "
          "%.1f s; %.1f s in all)" % (fit, tiles, time.monotonic() - t1, time.monotonic() - t0))
    assert tiles >= 0.8 and tiles >= fit + 0.15, (fit, tiles)

    # the daemon scores with the tiles model: a result for every frame, the heatmap of a flagged
    # one is one grid over the whole frame (16 px cells: 80 x 60), an upload is cut into tiles too
    def upload(port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with open(files[0], "rb") as f:
            c.request("POST", "/api/v1/score?heatmap=1", f.read(),
                      {"Authorization": "Bearer tiles-test-token", "Content-Type": "image/jpeg"})
        r = c.getresponse()
        v = json.loads(r.read())
        assert r.status == 200 and v["heatmap_jpeg"] and v["score"] > 0, (r.status, v)
    before = count(tiles_db, "SELECT max(id) FROM frames")
    run(tmp, "live", tiles_db, 10, seed=11, rate=1.0, fps=4, during=upload,
        until="SELECT count(*) FROM results r JOIN frames f ON f.id = r.frame_id "
              "WHERE f.id > %d" % before)
    grids = sqlite3.connect(tiles_db).execute(
        "SELECT grid_w, grid_h FROM heatmaps h JOIN frames f ON f.id = h.frame_id "
        "WHERE f.id > ?", (before,)).fetchall()
    print("live: 10 defect frames scored by the tiles model, %d flagged" % len(grids))
    assert grids and set(grids) == {(80, 60)}, grids
    shutil.rmtree(tmp)
    print("test_tiles: ok")


if __name__ == "__main__":
    main()
