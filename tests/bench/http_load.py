"""HTTP load on the running daemon: `wrk` on loopback against /api/v1/alerts and /metrics at the
same time (one wrk each, 1 thread, 8 connections, --latency) for 20 s while the synthetic camera
captures 640x480 frames at 20 fps and the scorer scores them against a small model (so the
alert list has alerts in it). The capture rate is measured over the same 20 s and over 20 s
before the load, from /api/v1/status; frames dropped by the queue are counted.

    /usr/bin/python3 tests/bench/http_load.py [BUILD_DIR] [--seconds S]
Ends with `http_p99_ms: X errors: N` (X: the larger p99 of the two endpoints; N: socket errors
plus non-2xx answers of both)."""
import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

from benchlib import first_model, run_daemon, status

def stored(port):
    st = status(port)
    return (sum(c["frames_stored"] for c in st["cameras"]),
            sum(c["frames_dropped"] for c in st["cameras"]))


def ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(text):
    """Requests/s, p50 and p99 in ms, and errors (socket errors + non-2xx/3xx) of wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {int(m.group(1)): ms(m.group(2), m.group(3))
           for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    return rps, pct[50], pct[99], errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    exe = os.path.join(args.build, "inspectd")
    tmp = tempfile.mkdtemp(prefix="inspectd-http-")
    db = os.path.join(tmp, "line.db")

    # a model first, so that frames are scored and alerts exist
    first_model(exe, tmp, db)

    frames = 20 * (3 * args.seconds + 30)
    d, port = run_daemon(exe, tmp, db, 20, frames, 0.1, 2)
    try:
        time.sleep(5)  # the camera settles
        s0, _ = stored(port)
        time.sleep(args.seconds)
        s1, drop1 = stored(port)
        quiet_fps = (s1 - s0) / args.seconds
        base = "http://127.0.0.1:%d" % port
        wrks = [subprocess.Popen(["wrk", "-t1", "-c8", "-d%ds" % args.seconds, "--latency",
                                  base + path], stdout=subprocess.PIPE, text=True)
                for path in ("/api/v1/alerts", "/metrics")]
        outs = [w.communicate()[0] for w in wrks]
        s2, drop2 = stored(port)
        load_fps = (s2 - s1) / args.seconds
        alerts = len(json.loads(urllib.request.urlopen(base + "/api/v1/alerts?limit=500",
                                                       timeout=10).read())["alerts"])
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait()
    print("wrk -t1 -c8 -d%ds on loopback, both endpoints at once, while the synthetic camera "
          "captures 640x480 at 20 fps and every frame is scored (%d alerts listed)"
          % (args.seconds, alerts))
    worst, errors = 0.0, 0
    for path, out in zip(("/api/v1/alerts", "/metrics"), outs):
        rps, p50, p99, err = parse_wrk(out)
        worst, errors = max(worst, p99), errors + err
        print("%-16s %8.0f requests/s  p50 %6.2f ms  p99 %6.2f ms  errors %d"
              % (path, rps, p50, p99, err))
    print("capture: %.1f frames/s stored before the load, %.1f during it; dropped by the queue: "
          "%d before, %d during" % (quiet_fps, load_fps, drop1, drop2 - drop1))
    print("http_p99_ms: %.2f errors: %d" % (worst, errors))


if __name__ == "__main__":
    main()
