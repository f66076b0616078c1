"""soak.py — the daemon left running for DURATION seconds (default 3600): a synthetic camera at
30 fps (640x480 JPEG), retraining by policy (a first model after 300 frames, then one every 1800
frames, two-minute runs), retention under a 256 MiB limit, and a client polling the HTTP API
once a second (status, readiness, metrics, a page of frames, an image, a heatmap).

Measured on the daemon's process (its training children are processes of their own):
  - resident memory (VmRSS) once it is warm — a minute (a tenth of a shorter run) after the first
    model started scoring, or half-way through when none did — and at the end: growth must stay
    under 5 %;
  - open file descriptors at the same two moments: no more at the end;
  - frames: every captured frame is stored, dropped by the queue's drop-oldest policy (counted)
    or failed; none may fail;
  - model files: with keep_models = 2, no more than those of three models and a run going on.
Prints one `soak_...: value` line per figure, then `soak: ok` or what went wrong (exit code 1).
Python standard library only; `make soak` runs it (DURATION=600 make soak for ten minutes)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
DURATION = float(os.environ.get("DURATION", "3600"))

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
max_size_mb = 256
min_free_mb = 1024
[trainer]
enabled = true
min_frames = 300
every_frames = 1800
minutes = 2
first_minutes = 2
size = 32
channels = 3
threads = 1
max_images = 300
keep_models = 2
[camera.line]
driver = synthetic
fps = 30
"""


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Client:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.requests = self.errors = 0

    def get(self, path):
        self.requests += 1
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError, OSError):
            self.errors += 1
            return 0, b""

    def json(self, path):
        status, body = self.get(path)
        return json.loads(body) if status == 200 else None

    def round(self):
        """What an operator's screen polls once a second."""
        st = self.json("/api/v1/status")
        self.get("/readyz")
        self.get("/metrics")
        page = self.json("/api/v1/frames?limit=20")
        if page and page["frames"]:
            newest = page["frames"][0]
            if newest["image"]:
                self.get(newest["image"])
            self.get("/api/v1/frames/%d/heatmap" % newest["id"])
        return st


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-soak-")
    port = free_port()
    conf = os.path.join(tmp, "soak.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=os.path.join(tmp, "soak.db")))
    log = open(os.path.join(tmp, "soak.log"), "w")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    client = Client(port)
    deadline = time.time() + 30
    while client.get("/healthz")[0] != 200 and time.time() < deadline:
        time.sleep(0.1)
    client.requests = client.errors = 0
    t0 = time.time()
    warm = None  # (seconds, rss kB, fds)
    scoring_since = None
    settle = min(60.0, DURATION / 10)
    st = None
    problems = []
    try:
        while time.time() - t0 < DURATION:
            if daemon.poll() is not None:
                problems.append("the daemon exited with %s" % daemon.returncode)
                break
            st = client.round() or st
            elapsed = time.time() - t0
            if scoring_since is None and st and st["scoring"]["state"] == "scoring":
                scoring_since = elapsed
            warm_now = (scoring_since is not None and elapsed >= scoring_since + settle) or \
                elapsed >= DURATION / 2
            if warm is None and warm_now:
                warm = (elapsed, proc_status(daemon.pid, "VmRSS"), open_fds(daemon.pid))
            time.sleep(1.0)
        end = (time.time() - t0, proc_status(daemon.pid, "VmRSS"), open_fds(daemon.pid))
        st = client.json("/api/v1/status") or st
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=120)
        if code != 0:
            problems.append("exit code %d on SIGTERM" % code)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.close()

    with open(os.path.join(tmp, "soak.log")) as f:
        summary = re.search(r"camera line: (\d+) frames captured, (\d+) stored, (\d+) dropped, "
                            r"(\d+) failed", f.read())
    cam = dict(zip(("frames_captured", "frames_stored", "frames_dropped", "frames_failed"),
                   map(int, summary.groups()))) if summary else st["cameras"][0]
    growth = 100.0 * (end[1] - warm[1]) / warm[1]
    print("soak_duration_s: %.0f" % end[0])
    print("soak_warm_at_s: %.0f" % warm[0])
    print("soak_rss_warm_kb: %d" % warm[1])
    print("soak_rss_end_kb: %d" % end[1])
    print("soak_rss_growth_pct: %.2f" % growth)
    print("soak_fds_warm: %d" % warm[2])
    print("soak_fds_end: %d" % end[2])
    for key in ("captured", "stored", "dropped", "failed"):
        print("soak_frames_%s: %d" % (key, cam["frames_" + key]))
    print("soak_frames_scored: %d" % st["scoring"]["frames_scored"])
    print("soak_trainings: %d (failures %d)" % (st["training"]["runs"],
                                                st["training"]["failures"]))
    print("soak_retention_frames_deleted: %d" % st["storage"]["frames_deleted"])
    print("soak_database_bytes: %d" % st["database"]["size_bytes"])
    print("soak_http_requests: %d (%d failed to connect)" % (client.requests, client.errors))
    models_dir = os.path.join(tmp, "models")
    model_files = [n for n in os.listdir(models_dir) if n.endswith(".safetensors")] \
        if os.path.isdir(models_dir) else []
    print("soak_model_files: %d (%.0f MB)" % (
        len(model_files), sum(os.path.getsize(os.path.join(models_dir, n))
                              for n in model_files) / 1e6))
    if growth >= 5:
        problems.append("resident memory grew %.1f %%" % growth)
    if end[2] > warm[2]:
        problems.append("open files went from %d to %d" % (warm[2], end[2]))
    if cam["frames_failed"] or cam["frames_captured"] != (
            cam["frames_stored"] + cam["frames_dropped"] + cam["frames_failed"]):
        problems.append("frames not accounted for: %s" % cam)
    if client.errors:
        problems.append("%d requests could not connect" % client.errors)
    # keep_models = 2 (and the active model's): a checkpoint and a bank each, plus the
    # checkpoint of a run that was still going (or interrupted) when the soak ended, and its bank
    if len(model_files) > 2 * 3 + 2:
        problems.append("%d model files kept: %s" % (len(model_files), sorted(model_files)))
    if problems:
        with open(os.path.join(tmp, "soak.log")) as f:
            sys.stderr.write(f.read()[-5000:])
        print("soak: " + "; ".join(problems))
    else:
        print("soak: ok")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
