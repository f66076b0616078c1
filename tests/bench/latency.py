"""Frame → result latency of the running daemon: the synthetic camera at 20 fps (640x480 JPEG
frames), a model with a 64 px input already registered, and a training run going on beside it
the whole time (`inspectd train --db` at nice 19, as the daemon's own trainer runs it). Latency is
results.created_at − frames.created_at (the frame row written in the writer's transaction to its
result committed) over every frame of the measured window; frames skipped (verdict 'unscored',
reason 'skipped': scoring fell max_score_lag_s behind) and other unscored verdicts come from the
verdicts table, frames dropped by the queue from /api/v1/status.

    /usr/bin/python3 tests/bench/latency.py [BUILD_DIR] [--seconds S]
Ends with `frame_to_result_p99_ms: X`."""
import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from benchlib import first_model, run_daemon, status

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    exe = os.path.join(args.build, "inspectd")
    tmp = tempfile.mkdtemp(prefix="inspectd-latency-")
    db = os.path.join(tmp, "line.db")

    # a model first: 300 frames, a short training, bank and threshold
    first_model(exe, tmp, db)

    # the measurement: 20 fps while another training run goes on
    frames = int(args.seconds * 20) + 40
    d, port = run_daemon(exe, tmp, db, 20, frames, 0.05, 2)
    trainer = subprocess.Popen(["nice", "-n", "19", exe, "train", "--db", db, "--out",
                                os.path.join(tmp, "busy.safetensors"), "--size", "64",
                                "--threads", "1", "--minutes", str(args.seconds / 60 + 5)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    con = sqlite3.connect(db)
    start_id = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    time.sleep(args.seconds)
    st = status(port)
    time.sleep(2)  # let the last frames be scored
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    d.send_signal(signal.SIGTERM)
    d.wait()
    rows = con.execute(
        "SELECT (r.created_at - f.created_at) / 1000.0, r.latency_us / 1000.0 FROM frames f "
        "JOIN results r ON r.frame_id = f.id WHERE f.id > ? ORDER BY f.id", (start_id,)).fetchall()
    stored = con.execute("SELECT COUNT(*) FROM frames WHERE id > ?", (start_id,)).fetchone()[0]
    unscored = dict(con.execute("SELECT reason, COUNT(*) FROM verdicts WHERE frame_id > ? AND "
                                "verdict = 'unscored' GROUP BY reason", (start_id,)).fetchall())
    skipped = unscored.pop("skipped", 0)
    lat = sorted(r[0] for r in rows)
    work = sorted(r[1] for r in rows)
    dropped = sum(c["frames_dropped"] for c in st["cameras"])
    if not lat:
        print("no frame was scored", file=sys.stderr)
        sys.exit(1)
    p = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
    print("synthetic camera 640x480 at 20 fps, model input 64 px, a training run beside it, %.0f s"
          % args.seconds)
    print("frames stored %d, scored %d, skipped %d (behind by max_score_lag_s), other unscored "
          "%s, dropped by the queue %d" % (stored, len(lat), skipped, unscored or 0, dropped))
    print("frame written -> result committed: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (p(lat, 0.5), p(lat, 0.99), lat[-1]))
    print("scoring work (decode + embed + k-NN): p50 %.1f ms, p99 %.1f ms"
          % (p(work, 0.5), p(work, 0.99)))
    print("frame_to_result_p99_ms: %.1f" % p(lat, 0.99))


if __name__ == "__main__":
    main()
