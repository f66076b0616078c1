"""test_scoring.py — the daemon as an inspector: frames from the synthetic camera (with seeded
defects) are stored, `inspectd train --db --register` trains a small model, builds its bank and
threshold and makes it the database's model; a training child killed with SIGKILL changes
nothing; then the running daemon scores every new frame: results for each, defect frames flagged
far more often than good ones, a heatmap and an alert for each flagged frame, the model shown by
/api/v1/status and /metrics. Python standard library only."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train, wait_while_training  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[pipeline]
max_score_lag_s = {lag}
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
{trainer}"""

TRAIN = tiny_train()


# lag 0: every frame is scored however late (a loaded machine must not make the counts flaky)
def start(tmp, db, frames, fps, seed, rate, trainer="[trainer]\nenabled = false\n", lag=0):
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, frames=frames, fps=fps, seed=seed, rate=rate,
                             trainer=trainer, lag=lag))
    log = open(os.path.join(tmp, "run-%d.log" % seed), "w+")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    return daemon, port, log


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        body = r.read()
        return json.loads(body) if path.startswith("/api") else body.decode()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, "daemon did not stop cleanly"


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-scoring-")
    db = os.path.join(tmp, "line.db")
    model = os.path.join(tmp, "model.safetensors")

    # 1. frames to learn from, while the daemon has no model: it is learning and scores nothing
    daemon, port, log = start(tmp, db, 300, 0, 1, 0.01)  # a line makes mostly good products
    wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 300, 60,
             "300 frames")
    status = get(port, "/api/v1/status")
    assert status["model"]["state"] == "learning" and status["scoring"]["frames_scored"] == 0, status
    stop(daemon)

    # 2. train, build the bank, calibrate, register
    r = subprocess.run([BIN, "train", "--db", db, "--out", model, "--register", *TRAIN],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "now scores" in r.stderr, r.stderr
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, status, threshold, json_extract(meta, '$.bank') FROM models").fetchall()
    assert len(rows) == 1 and rows[0][1] == "active" and rows[0][2] > 0, rows
    assert os.path.exists(rows[0][3]), rows

    # 3. a retraining killed half-way leaves the active model and its files alone
    other = os.path.join(tmp, "other.safetensors")
    child = subprocess.Popen([BIN, "train", "--db", db, "--out", other, "--register", *TRAIN,
                              "--epochs", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert con.execute("SELECT id, status FROM models").fetchall() == [(rows[0][0], "active")]

    # 3b. inspectd score: JSON lines for image files, heatmaps on request, errors per file
    files = []
    for fid, image in con.execute("SELECT id, image FROM frames ORDER BY id LIMIT 2"):
        files.append(os.path.join(tmp, "frame%d.jpg" % fid))
        with open(files[-1], "wb") as f:
            f.write(image)
    junk = os.path.join(tmp, "junk.jpg")
    with open(junk, "w") as f:
        f.write("not an image")
    maps = os.path.join(tmp, "maps")
    os.mkdir(maps)
    r = subprocess.run([BIN, "score", "--db", db, "--heatmap-dir", maps, files[0], junk, files[1]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [l["file"] for l in lines] == [files[0], junk, files[1]], lines
    assert "error" in lines[1] and "score" not in lines[1], lines
    for l in (lines[0], lines[2]):
        assert l["score"] > 0 and abs(l["score_norm"] - l["score"] / rows[0][2]) < 1e-4, l
        with open(l["heatmap"], "rb") as f:
            assert f.read(2) == b"\xff\xd8", l  # a JPEG
    r = subprocess.run([BIN, "score", "--db", os.path.join(tmp, "none.db"), files[0]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "inspectd score:" in r.stderr, r.stderr

    # 4. the daemon scores every new frame against the model
    last_before = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    con.close()
    daemon, port, log = start(tmp, db, 400, 40, 2, 0.3)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["scoring"]["frames_scored"] >= 400, 120,
                 "400 frames scored")
        status = get(port, "/api/v1/status")
        assert status["model"]["state"] == "scoring", status
        assert status["scoring"]["frames_failed"] == 0, status
        metrics = get(port, "/metrics")
        assert "inspectd_frames_scored_total 400" in metrics, metrics
        # the heatmap of a flagged frame over HTTP; an unflagged frame has none
        live = sqlite3.connect(db)
        hot = live.execute("SELECT frame_id FROM results WHERE flagged = 1 LIMIT 1").fetchone()[0]
        cold = live.execute("SELECT frame_id FROM results WHERE flagged = 0 LIMIT 1").fetchone()[0]
        live.close()
        url = "http://127.0.0.1:%d/api/v1/frames/%d/heatmap"
        with urllib.request.urlopen(url % (port, hot), timeout=10) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and r.read(2) == b"\xff\xd8"
        try:
            urllib.request.urlopen(url % (port, cold), timeout=10)
            raise AssertionError("an unflagged frame has no heatmap")
        except urllib.error.HTTPError as e:
            assert e.code == 404 and "no heatmap" in json.loads(e.read())["error"]
    finally:
        stop(daemon)
    con = sqlite3.connect(db)
    scored = con.execute(
        "SELECT f.defect, r.flagged FROM frames f JOIN results r ON r.frame_id = f.id "
        "WHERE f.id > ?", (last_before,)).fetchall()
    assert len(scored) == 400, len(scored)
    assert con.execute("SELECT COUNT(*) FROM results r JOIN frames f ON f.id = r.frame_id "
                       "WHERE f.id <= ?", (last_before,)).fetchone()[0] == 0
    bad = [f for d, f in scored if d != "none"]
    good = [f for d, f in scored if d == "none"]
    bad_rate, good_rate = sum(bad) / len(bad), sum(good) / len(good)
    print("flagged: %.2f of %d defect frames, %.3f of %d good frames" %
          (bad_rate, len(bad), good_rate, len(good)))
    assert bad_rate > 0.5 and good_rate < 0.05, (bad_rate, good_rate)
    flagged = con.execute("SELECT COUNT(*) FROM results WHERE flagged = 1").fetchone()[0]
    alerts = con.execute("SELECT COUNT(*) FROM alerts WHERE state = 'new'").fetchone()[0]
    maps = con.execute("SELECT COUNT(*) FROM heatmaps WHERE grid_w = 8 AND grid_h = 8 "
                       "AND length(data) = 256").fetchone()[0]
    assert flagged == alerts == maps and flagged > 0, (flagged, alerts, maps)

    # 4b. operators confirm some alerts as defects: a retraining leaves them out and must flag
    # them at least as well as the active model, or it is registered as rejected
    con.execute("UPDATE alerts SET state = 'defect' WHERE id IN "
                "(SELECT id FROM alerts ORDER BY id LIMIT 10)")
    con.commit()
    stored = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "v2.safetensors"),
                        "--register", *TRAIN], capture_output=True, text=True, timeout=300)
    assert "%d images from" % (stored - 10) in r.stderr, r.stderr
    assert "validation on 10 confirmed defects" in r.stderr, r.stderr
    models = con.execute("SELECT status, json_extract(meta, '$.rejected') FROM models "
                         "ORDER BY id").fetchall()
    assert len(models) == 2 and models[1][0] in ("active", "rejected"), models
    assert (models[1][0] == "rejected") == (r.returncode == 1) == (models[1][1] is not None), \
        (models, r.returncode)
    assert models[0][0] == ("active" if models[1][0] == "rejected" else "retired"), models

    # 5. a line faster than scoring: frames stored longer than max_score_lag_s before their turn
    # are skipped and counted, so the frames that are scored are never far behind the line
    before = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    con.close()
    daemon, port, log = start(tmp, db, 0, 0, 4, 0.01, lag=1)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["scoring"]["frames_skipped"] > 0, 60,
                 "frames skipped")
        time.sleep(4)
        status = get(port, "/api/v1/status")["scoring"]
        metrics = get(port, "/metrics")
    finally:
        stop(daemon)
    counted = re.search(r"^inspectd_frames_skipped_total (\d+)$", metrics, re.M)
    assert counted and int(counted.group(1)) >= status["frames_skipped"], metrics
    log.seek(0)
    assert "scoring fell more than 1 s behind the line: skipped" in log.read()
    con = sqlite3.connect(db)
    run = con.execute("SELECT COUNT(*), MAX(id) FROM frames WHERE id > ?", (before,)).fetchone()
    lags = con.execute("SELECT (r.created_at - f.created_at) / 1e6 FROM results r JOIN frames f "
                       "ON f.id = r.frame_id WHERE f.id > ? ORDER BY f.id", (before,)).fetchall()
    worst = max(x for (x,) in lags[len(lags) // 2:])
    # the time one frame takes to score here (results of a backlog come one after the other): a
    # slow or busy CPU makes it longer, and a frame's lag is the bound plus a frame or two of it
    done = [t for (t,) in con.execute("SELECT r.created_at / 1e6 FROM results r WHERE "
                                      "r.frame_id > ? ORDER BY r.created_at", (before,)).fetchall()]
    step = max(b - a for a, b in zip(done[len(done) // 2:], done[len(done) // 2 + 1:]))
    unscored = run[0] - len(lags)
    print("lag bound: %d frames stored, %d scored, %d skipped (status %d), worst lag of the "
          "second half %.2f s, slowest frame %.2f s" % (run[0], len(lags), unscored,
                                                         status["frames_skipped"], worst, step))
    assert status["frames_skipped"] > 0 and unscored >= status["frames_skipped"], status
    assert worst < 1.0 + max(2.0, 3 * step), (worst, step)

    # 6. a fresh line with retraining by policy: the daemon trains its first model by itself
    fresh = os.path.join(tmp, "fresh.db")
    policy = ("[trainer]\nenabled = true\nmin_frames = 150\nevery_frames = 400\nminutes = 0.1\n"
              "first_minutes = 0.1\n"
              "size = 32\nchannels = 3\nthreads = 2\n")
    daemon, port, log = start(tmp, fresh, 0, 50, 3, 0.01, policy)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["training"]["runs"] >= 1, 60, "training")
        assert get(port, "/api/v1/status")["training"]["running"] is True
        wait_while_training(lambda: get(port, "/api/v1/status")["scoring"]["frames_scored"] >= 20,
                            daemon.pid, "the first model scoring")
        status = get(port, "/api/v1/status")
        assert status["training"]["failures"] == 0 and status["model"]["state"] == "scoring", status
        first = status["scoring"]["model"]
        # the next model (every_frames later) takes over while the line keeps capturing
        wait_while_training(
            lambda: get(port, "/api/v1/status")["scoring"].get("model") not in (None, first),
            daemon.pid, "the second model")
        scored = get(port, "/api/v1/status")["scoring"]["frames_scored"]
        wait_for(lambda: get(port, "/api/v1/status")["scoring"]["frames_scored"] >= scored + 50,
                 60, "the second model scoring")
        assert "inspectd_training_runs_total 2" in get(port, "/metrics")
    finally:
        stop(daemon)
    con = sqlite3.connect(fresh)
    assert con.execute("SELECT COUNT(*) FROM models WHERE status = 'active'").fetchone()[0] == 1
    # no frame went unscored across the swap: every frame from the first scored one to the last
    # scored one has a result, from one model or the other
    gap = con.execute("SELECT COUNT(*), MIN(id) FROM frames WHERE id BETWEEN "
                      "(SELECT MIN(frame_id) FROM results) AND (SELECT MAX(frame_id) FROM results) "
                      "AND id NOT IN (SELECT frame_id FROM results)").fetchone()
    assert gap[0] == 0, "%d frames unscored from frame %s on" % gap
    per_model = con.execute("SELECT model_id, COUNT(*) FROM results GROUP BY model_id").fetchall()
    assert len(per_model) == 2 and all(n > 0 for _, n in per_model), per_model
    print("ok")


if __name__ == "__main__":
    main()
