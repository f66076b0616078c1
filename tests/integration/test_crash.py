"""test_crash.py — crash safety: the real daemon under load (a synthetic camera at full speed,
retention at work under a small size limit, the scorer, retraining by policy) is killed with
SIGKILL at random moments and restarted, CRASH_RUNS times (default 20; `make crash-test N=200`).
A first life, stopped cleanly, stores frames, and `inspectd train --register` makes a small first
model from them, so that the kills find a model scoring and the daemon's own retrainings (every
1000 frames) under way.

After every kill, on the database as the dead daemon left it:
  - PRAGMA integrity_check is ok (else: corrupt);
  - every frame the daemon reported committed (/api/v1/status storage.last_frame_id, polled while
    it ran) is there, retention's oldest-first deletes aside (else: lost);
  - the active model's checkpoint and bank load and score a stored frame (`inspectd score`, each
    time the active model changed; else: corrupt).
Then one more life, with the camera at a line's pace so that the idle-priority training child
gets the CPU, stopped with SIGTERM: by its end training has resumed an interrupted run
(`training.resumed` > 0 in some life) and a model trained by the daemon is registered (runs are
longer than a life here: they progress across the crashes through their checkpoints). No training child
outlives its daemon for long (the lock it holds is released). Ends with exactly
`crash_runs: N corrupt: C lost: L` and fails unless both are 0 and training resumed and finished.
CRASH_SEED picks the kill times (printed). Python standard library only."""
import fcntl
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import children_cpu, free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
RUNS = int(os.environ.get("CRASH_RUNS", "20"))
SEED = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
LIFE = (0.5, 3.5)  # seconds a daemon runs before its SIGKILL, uniform
# The last daemon runs until training has resumed and finished, as long as its training makes
# progress: it fails after STALL seconds in which neither its training status changed nor its
# training child used CPU (a slow or busy CPU only makes each step longer), or after LAST_LIFE
# seconds in all.
STALL = 120
LAST_LIFE = 1800

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
max_size_mb = 24
min_free_mb = 0
[trainer]
enabled = true
min_frames = 100
every_frames = 1000
minutes = 0.04
first_minutes = 0.04
size = 32
channels = 3
threads = 1
max_images = 64
dim = 32
depth = 2
heads = 2
batch = 16
[camera.line]
driver = synthetic
fps = {fps}
width = 128
height = 96
defect_rate = 0.2
"""


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
        return json.loads(r.read())


class Run:
    """One life of the daemon: start, poll what it reports, SIGKILL."""

    def __init__(self, tmp, db, i, fps=0):
        self.port = free_port()
        conf = os.path.join(tmp, "crash.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(port=self.port, db=db, fps=fps))
        self.log = open(os.path.join(tmp, "run-%03d.log" % i), "w")
        self.proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=self.log,
                                     stderr=self.log)
        self.reported = 0
        self.training = {}

    def poll(self):
        try:
            st = get(self.port, "/api/v1/status")
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            return False
        self.reported = max(self.reported, st["storage"]["last_frame_id"])
        self.training = st["training"]
        return True

    def live(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("inspectd exited with %s" % self.proc.returncode)
            self.poll()
            time.sleep(0.03)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


def check_frames(con, reported):
    """Frames reported committed but missing, above the oldest unprotected frame left (retention
    deletes oldest first and never the protected ones)."""
    lo = con.execute("SELECT min(id) FROM frames WHERE id NOT IN (SELECT frame_id FROM alerts "
                     "WHERE state <> 'false_positive')").fetchone()[0]
    if lo is None or reported < lo:
        return 0
    present = con.execute("SELECT count(*) FROM frames WHERE id BETWEEN ? AND ?",
                          (lo, reported)).fetchone()[0]
    return reported - lo + 1 - present


CHECKED = set()  # active models that loaded and scored


def check_model(con, db, tmp):
    """The active model loads and scores a stored frame. Returns None (no model, or checked
    already), True or False."""
    active = con.execute("SELECT id FROM models WHERE status = 'active'").fetchone()
    if not active or active[0] in CHECKED:
        return None
    row = con.execute("SELECT image FROM frames WHERE image_missing IS NULL ORDER BY id DESC "
                      "LIMIT 1").fetchone()
    image = os.path.join(tmp, "frame.jpg")
    with open(image, "wb") as f:
        f.write(row[0])
    r = subprocess.run([BIN, "score", "--db", db, image], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0 or "score" not in json.loads(r.stdout.splitlines()[0]):
        sys.stderr.write("inspectd score: %s\n" % r.stderr)
        return False
    CHECKED.add(active[0])
    return True


def check(db, tmp, reported):
    """Returns (corrupt, lost, model checked) for the database a killed daemon left."""
    con = sqlite3.connect(db, timeout=30)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not ok:
            return 1, 0, False
        lost = check_frames(con, reported)
        model = check_model(con, db, tmp)
        return (0 if model is not False else 1), lost, model is True
    finally:
        con.close()


def registered_models(db):
    con = sqlite3.connect(db, timeout=30)
    n = con.execute("SELECT count(*) FROM models WHERE status IN ('active', 'retired')").fetchone()[0]
    con.close()
    return n


def training_progress(run, db):
    """What changes while training gets on: its state, phase, step and counts, the models, and the
    CPU time of the training child (at idle priority a busy CPU may give it little)."""
    t = run.training
    return (t.get("state"), t.get("phase"), t.get("step"), t.get("runs"), t.get("resumed"),
            registered_models(db) if os.path.exists(db) else 0, children_cpu(run.proc.pid))


def life_until(tmp, db, i, fps, done):
    """A daemon left running until done(run), then stopped cleanly; it gives up after STALL
    seconds without training progress (or LAST_LIFE in all). Returns (the run, clean exit)."""
    run = Run(tmp, db, i, fps)
    start = last_change = time.monotonic()
    seen = None
    try:
        while time.monotonic() - last_change < STALL and time.monotonic() - start < LAST_LIFE:
            run.live(0.5)
            if done(run):
                break
            now = training_progress(run, db)
            if now != seen:
                seen, last_change = now, time.monotonic()
    finally:
        code = run.stop() if run.proc.poll() is None else run.proc.returncode
    return run, code == 0


def wait_for_orphans(db, timeout=30):
    """A training child gets SIGTERM when its daemon dies and holds the lock until it exits."""
    lock = os.path.join(os.path.dirname(db), "models", ".training.lock")
    if not os.path.exists(lock):
        return True
    deadline = time.time() + timeout
    with open(lock) as f:
        while time.time() < deadline:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                time.sleep(0.2)
    return False


def main():
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="inspectd-crash-")
    db = os.path.join(tmp, "line.db")
    corrupt = lost = models_checked = 0
    resumed = trainings = 0
    t0 = time.time()
    print("crash test: %d runs, seed %d" % (RUNS, SEED))
    try:
        first, clean = life_until(tmp, db, 0, 0, lambda run: run.reported >= 300)
        assert clean, "the first daemon did not stop cleanly"
        r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "first.safetensors"),
                            "--register", "--size", "32", "--patch", "8", "--dim", "32", "--depth",
                            "2", "--heads", "2", "--batch", "16", "--locals", "2", "--epochs", "2",
                            "--threads", "2", "--max-images", "128"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and registered_models(db) == 1, r.stderr
        print("%.0f s: frames stored and a first model trained" % (time.time() - t0))
        t1 = time.time()
        for i in range(1, RUNS + 1):
            run = Run(tmp, db, i)
            try:
                run.live(rng.uniform(*LIFE))
            finally:
                run.kill()
            resumed += run.training.get("resumed", 0)
            trainings += run.training.get("runs", 0)
            c, l, m = check(db, tmp, run.reported)
            corrupt, lost, models_checked = corrupt + c, lost + l, models_checked + m
            if c or l:
                print("run %d: corrupt %d, lost %d (last frame reported %d)" %
                      (i, c, l, run.reported))
        crashed = time.time() - t1
        orphans_gone = wait_for_orphans(db)
        last, clean = life_until(tmp, db, RUNS + 1, 20, lambda run: registered_models(db) >= 2
                                 and (resumed + run.training.get("resumed", 0)) > 0)
        resumed += last.training.get("resumed", 0)
        c, l, m = check(db, tmp, 0)
        corrupt, models_checked = corrupt + c, models_checked + m
        models = registered_models(db)
        con = sqlite3.connect(db)
        frames = con.execute("SELECT max(id) FROM frames").fetchone()[0]
        con.close()
        print("%.0f s of kills, %.0f s in all: %d frames committed, %d training runs started, "
              "%d resuming an interrupted one, %d models registered, %d model checks" %
              (crashed, time.time() - t0, frames, trainings, resumed, models, models_checked))
        ok = corrupt == 0 and lost == 0 and orphans_gone and clean and models >= 2 and resumed > 0
        if not orphans_gone:
            print("a training child still held its lock 30 s after the last kill")
        if not clean:
            print("the last daemon did not stop cleanly")
        if models < 2 or resumed == 0:
            print("training did not resume and finish: no progress for %d s (or %d s in all) "
                  "after the last start" % (STALL, LAST_LIFE))
        print("crash_runs: %d corrupt: %d lost: %d" % (RUNS, corrupt, lost))
        sys.exit(0 if ok else 1)
    except Exception:
        logs = sorted(n for n in os.listdir(tmp) if n.endswith(".log"))
        for name in logs[-2:]:
            with open(os.path.join(tmp, name)) as f:
                sys.stderr.write("--- %s\n%s" % (name, f.read()[-4000:]))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
