"""Sustained frame rate from Aravis's fake GigE Vision camera into the database through a real
daemon (driver = aravis, 512x512 Mono8 by default, the camera as fast as it goes), and the CPU the
daemon and the camera use. The camera runs inside this process (tests/integration/lib/fakecam.py);
the daemon JPEG-encodes the raw frames and stores them in SQLite. Several runs; medians at the end.

    /usr/bin/python3 tests/bench/camera_to_db.py [BUILD_DIR] [--seconds S] [--runs N] [--size W]
"""
import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "lib"))
from fakecam import DEVICE_ID, FakeCamera  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "lib"))
from testlib import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def camera_counts(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=5) as r:
        cam = json.loads(r.read())["cameras"][0]
    return cam["frames_captured"], cam["frames_dropped"]


def stored(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
        return c.execute("SELECT count(*) FROM frames").fetchone()[0]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def one_run(binary, size, fmt, seconds):
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "inspectd.db")
        conf = os.path.join(tmp, "inspectd.conf")
        with open(conf, "w") as f:
            f.write(f"[http]\nlisten = 127.0.0.1:{port}\n[store]\npath = {db}\n"
                    f"[log]\nlevel = warn\n[trainer]\nenabled = false\n"
                    f"[camera.line1]\ndriver = aravis\ndevice = {DEVICE_ID}\n"
                    f"pixel_format = {fmt}\nwidth = {size}\nheight = {size}\nfps = 1000\n")
        daemon = subprocess.Popen([binary, "run", "--config", conf])
        try:
            t0 = time.monotonic()
            while not ready(port):
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("daemon not ready in 30 s")
                time.sleep(0.2)
            time.sleep(2)  # warm-up
            n0, c0, f0, w0 = stored(db), cpu_seconds(daemon.pid), own_cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            n1, c1, f1, w1 = stored(db), cpu_seconds(daemon.pid), own_cpu_seconds(), time.monotonic()
            mb = os.path.getsize(db) / 1e6
            captured, dropped = camera_counts(port)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    wall = w1 - w0
    return (n1 - n0) / wall, 100 * (c1 - c0) / wall, 100 * (f1 - f0) / wall, mb, captured, dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--format", default="Mono8")
    a = ap.parse_args()
    binary = os.path.join(a.build, "inspectd")
    fps, cpu = [], []
    with FakeCamera():
        for i in range(a.runs):
            r, c, cam, mb, captured, dropped = one_run(binary, a.size, a.format, a.seconds)
            fps.append(r)
            cpu.append(c)
            print(f"run {i + 1}: {r:.1f} frames/s into the database, daemon CPU {c:.0f}% of one "
                  f"core, fake camera CPU {cam:.0f}%, database {mb:.0f} MB, {captured} frames "
                  f"captured, {dropped} dropped by the queue", flush=True)
    print(f"fake GigE camera {a.size}x{a.size} {a.format} -> daemon -> SQLite: median "
          f"{statistics.median(fps):.1f} frames/s, daemon CPU {statistics.median(cpu):.0f}% of "
          f"one core")
    print(f"camera_db_frames_per_s: {statistics.median(fps):.1f}")


if __name__ == "__main__":
    main()
