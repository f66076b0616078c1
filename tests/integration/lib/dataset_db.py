"""dataset_db.py — a database for the dataset-export tests: a short daemon run of the synthetic
camera (trainer off, so every frame is stored unscored), then flagged frames written straight into
the SQLite file while no daemon runs: an alert of each state on some normal frames, and a flagged
result without an alert on one (flagged, so never a normal frame). The model they name is 'retired'.
Python standard library only."""
import os
import re
import signal
import sqlite3
import subprocess
import time

CONFIG = """[http]
listen = 127.0.0.1:0
[store]
path = {db}
[trainer]
enabled = false
[camera.line]
driver = synthetic
fps = 0
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
"""


def capture(bin_path, tmp, db, frames, rate=0.2, seed=3):
    """Runs the daemon until the synthetic camera has stored its frames."""
    conf = os.path.join(tmp, "capture.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(db=db, frames=frames, rate=rate, seed=seed))
    log_path = os.path.join(tmp, "capture.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([bin_path, "run", "--config", conf], stdout=log, stderr=log)
        deadline = time.time() + 60
        try:
            while time.time() < deadline:
                time.sleep(0.2)
                if not os.path.exists(db):
                    continue
                try:
                    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
                    n = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    continue
                if n >= frames:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
    with open(log_path) as f:
        text = f.read()
    assert rc == 0, text
    assert re.search(r"listening on", text), text


def flag(db, states):
    """Alerts on the first normal frames, one per entry of states ('new', 'defect',
    'false_positive'), then a flagged result with no alert on the next one. Returns
    {state: [frame ids]} and the id of the flagged frame without an alert."""
    con = sqlite3.connect(db)
    model = con.execute("INSERT INTO models (version, path, created_at, threshold, meta, status) "
                        "VALUES ('dataset-test', '/nonexistent.safetensors', 1, 0.5, '{}', "
                        "'retired')").lastrowid
    ids = [i for i, in con.execute("SELECT id FROM frames WHERE defect = 'none' ORDER BY id "
                                   "LIMIT ?", (len(states) + 1,))]
    assert len(ids) == len(states) + 1, ids
    out = {}
    for fid, state in zip(ids, states):
        cam = con.execute("SELECT camera_id FROM frames WHERE id = ?", (fid,)).fetchone()[0]
        con.execute("INSERT INTO results (frame_id, model_id, score, score_norm, flagged, "
                    "latency_us, created_at) VALUES (?, ?, 1.0, 2.0, 1, 1000, 1)", (fid, model))
        con.execute("INSERT INTO alerts (frame_id, model_id, camera_id, created_at, score, "
                    "score_norm, threshold, state) VALUES (?, ?, ?, 1, 1.0, 2.0, 0.5, ?)",
                    (fid, model, cam, state))
        out.setdefault(state, []).append(fid)
    con.execute("INSERT INTO results (frame_id, model_id, score, score_norm, flagged, latency_us, "
                "created_at) VALUES (?, ?, 1.0, 2.0, 1, 1000, 1)", (ids[-1], model))
    con.commit()
    con.close()
    return out, ids[-1]
