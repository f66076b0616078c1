"""benchlib.py — what the daemon benchmarks share: a daemon on the synthetic camera (640x480 unless
told, log level warn, no trainer of its own) on a free loopback port, its status, and a first
model (300 frames, a short training, bank and threshold registered)."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from testlib import free_port  # noqa: E402

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[log]
level = warn
[trainer]
enabled = false
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = {width}
height = {height}
defect_rate = {rate}
seed = {seed}
"""


def status(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/status" % port, timeout=10) as r:
        return json.loads(r.read())


def run_daemon(exe, tmp, db, fps, frames, rate, seed, width=640, height=480, extra=""):
    """Starts the daemon (extra: more config sections) and waits until it answers. Returns
    (process, port)."""
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, fps=fps, frames=frames, rate=rate, seed=seed,
                              width=width, height=height))
        f.write(extra)
    d = subprocess.Popen([exe, "run", "--config", conf])
    for _ in range(200):
        try:
            status(port)
            return d, port
        except OSError:
            time.sleep(0.05)
    d.kill()
    raise RuntimeError("daemon did not answer")


def stop(d):
    d.send_signal(signal.SIGTERM)
    d.wait()


def first_model(exe, tmp, db, width=640, height=480, train=()):
    """300 frames of a mostly good line, then `inspectd train --register` on them (with the
    options train besides)."""
    d, port = run_daemon(exe, tmp, db, 0, 300, 0.01, 1, width, height)
    while status(port)["database"]["frames_stored"] < 300:
        time.sleep(0.2)
    stop(d)
    subprocess.run([exe, "train", "--db", db, "--out", os.path.join(tmp, "model.safetensors"),
                    "--register", "--size", "64", "--max-steps", "30", "--threads", "2"] +
                   list(train), check=True, stderr=subprocess.DEVNULL)
