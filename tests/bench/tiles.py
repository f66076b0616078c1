"""Small defects in big frames, fit against tiles ([recipe.NAME] input), in three parts.

1. Accuracy: the synthetic camera at 1280x960 with defects of a few pixels (defect_scale 0.1);
   the same model (128 px input, patch 16, ViT dim 64, depth 4) trained for --minutes on the same
   good frames with --input fit and --input tiles (`inspectd train --db --register`), then both
   score the same held-out frames (`inspectd score --grid`): image AUROC, and pixel AUROC of the
   heatmap grid against the defect's truth box (every pixel the defect changes lies in it; the
   frame at a quarter of its resolution).
2. Scoring latency per frame of 1, 4 and 16 tiles on one core (build/bench/bench_tiles: the
   default model at 64 px, after decoding).
3. Frame -> result p99 of the daemon at 20 fps with 16 tiles a frame (a 256x256 camera, input
   tiles at 64 px; the default model, then the tests' tiny one) while a training run goes on
   beside it (as tests/bench/latency.py measures it), and the frames scored and skipped.

    /usr/bin/python3 tests/bench/tiles.py [BUILD_DIR] [--minutes M] [--seconds S]
        [--train-frames N] [--test-frames N] [--tile-frames N]
Ends with the figures as `name: value` lines."""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from benchlib import first_model, free_port, run_daemon, status

W, H = 1280, 960
MODEL = ["--size", "128", "--patch", "16", "--channels", "3", "--dim", "64", "--depth", "4",
         "--heads", "2", "--batch", "32", "--locals", "2", "--threads", "2", "--seed", "1"]


def record(exe, tmp, name, frames, seed, rate):
    db = os.path.join(tmp, name + ".db")
    conf = os.path.join(tmp, name + ".conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:%d\n[store]\npath = %s\n[log]\nlevel = warn\n"
                "[trainer]\nenabled = false\n[camera.cam]\ndriver = synthetic\nfps = 0\n"
                "frames = %d\nwidth = %d\nheight = %d\nshape = square\nseed = %d\n"
                "defect_rate = %g\ndefect_scale = 0.1\njpeg_quality = 95\n"
                % (port, db, frames, W, H, seed, rate))
    d = subprocess.Popen([exe, "run", "--config", conf])
    while True:
        time.sleep(0.5)
        try:
            if status(port)["database"]["frames_stored"] >= frames:
                break
        except OSError:
            pass
    d.send_signal(signal.SIGTERM)
    d.wait()
    return db


def auroc(scores, labels):
    """Rank AUROC (ties count half)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    return (sum(r for r, y in zip(ranks, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)


def pixels(grid, box, step=4):
    """The grid's value and the truth (inside the box) of every step-th pixel of the frame."""
    gw, gh, v = grid["w"], grid["h"], grid["values"]
    out, truth = [], []
    for y in range(step // 2, H, step):
        row = v[(y * gh // H) * gw:(y * gh // H + 1) * gw]
        for x in range(step // 2, W, step):
            out.append(row[x * gw // W])
            truth.append(box is not None and box[0] <= x < box[2] and box[1] <= y < box[3])
    return out, truth


def accuracy(exe, tmp, args):
    good = record(exe, tmp, "good", args.train_frames, 5, 0)
    test = record(exe, tmp, "test", args.test_frames, 9, 0.5)
    con = sqlite3.connect(test)
    rows = con.execute("SELECT id, defect, defect_x0, defect_y0, defect_x1, defect_y1, image "
                       "FROM frames ORDER BY id").fetchall()
    con.close()
    files, labels, boxes = [], [], []
    for fid, defect, x0, y0, x1, y1, image in rows:
        path = os.path.join(tmp, "frame-%d.jpg" % fid)
        with open(path, "wb") as f:
            f.write(image)
        files.append(path)
        labels.append(defect != "none")
        boxes.append((x0, y0, x1, y1) if defect != "none" else None)
    figures = {}
    for mode, images in (("fit", args.train_frames), ("tiles", 8 * args.train_frames)):
        db = os.path.join(tmp, mode + ".db")
        shutil.copy(good, db)
        t0 = time.monotonic()
        subprocess.run([exe, "train", "--db", db, "--out", os.path.join(tmp, mode + ".safetensors"),
                        "--register", "--input", mode, "--max-images", str(images), "--minutes",
                        str(args.minutes)] + MODEL, check=True, stderr=subprocess.DEVNULL)
        trained = time.monotonic() - t0
        t0 = time.monotonic()
        p = subprocess.run([exe, "score", "--db", db, "--grid", "--threads", "2"] + files,
                           check=True, capture_output=True, text=True)
        scored = (time.monotonic() - t0) / len(files)
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        image = auroc([x["score"] for x in lines], labels)
        px, truth = [], []
        for x, box in zip(lines, boxes):
            v, t = pixels(x["grid"], box)
            px += v
            truth += t
        pixel = auroc(px, truth)
        print("%-5s: trained %.0f s, scored %.2f s a frame (2 threads); image AUROC %.3f, pixel "
              "AUROC %.3f" % (mode, trained, scored, image, pixel))
        figures["%s_image_auroc" % mode] = image
        figures["%s_pixel_auroc" % mode] = pixel
    print("%d good training frames, %d test frames (%d with a defect), %dx%d, defect_scale 0.1"
          % (args.train_frames, len(files), sum(labels), W, H))
    return figures


# the models of part 3: the default one (ViT dim 128, depth 4, patch 4), and the tests' tiny one
# (dim 32, depth 2, patch 8), both at 64 px
LATENCY_MODELS = {"default": [], "tiny": ["--patch", "8", "--dim", "32", "--depth", "2",
                                          "--heads", "2", "--batch", "16", "--locals", "2"]}


def latency(exe, tmp, args, name):
    db = os.path.join(tmp, "line-%s.db" % name)
    model = LATENCY_MODELS[name]
    first_model(exe, tmp, db, 256, 256, ["--input", "tiles", "--max-images", "2400"] + model)
    frames = int(args.seconds * 20) + 40
    d, port = run_daemon(exe, tmp, db, 20, frames, 0.05, 2, 256, 256)
    trainer = subprocess.Popen(["nice", "-n", "19", exe, "train", "--db", db, "--out",
                                os.path.join(tmp, "busy.safetensors"), "--size", "64",
                                "--input", "tiles", "--threads", "1", "--minutes",
                                str(args.seconds / 60 + 5)] + model,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    con = sqlite3.connect(db)
    start_id = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    time.sleep(args.seconds)
    st = status(port)
    time.sleep(2)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    d.send_signal(signal.SIGTERM)
    d.wait()
    rows = con.execute(
        "SELECT (r.created_at - f.created_at) / 1000.0, r.latency_us / 1000.0 FROM frames f "
        "JOIN results r ON r.frame_id = f.id WHERE f.id > ? ORDER BY f.id", (start_id,)).fetchall()
    stored = con.execute("SELECT COUNT(*) FROM frames WHERE id > ?", (start_id,)).fetchone()[0]
    skipped = con.execute("SELECT COUNT(*) FROM verdicts WHERE frame_id > ? AND "
                          "reason = 'skipped'", (start_id,)).fetchone()[0]
    lat = sorted(r[0] for r in rows)
    work = sorted(r[1] for r in rows)
    if not lat:
        print("no frame was scored", file=sys.stderr)
        sys.exit(1)
    p = lambda v, q: v[min(len(v) - 1, int(q * len(v)))]
    print("daemon: 256x256 camera at 20 fps, input tiles (16 tiles of 64 px a frame), %s model, "
          "a training run beside it, %.0f s: %d frames stored, %d scored, %d skipped, %d dropped"
          % (name, args.seconds, stored, len(rows), skipped,
             sum(c["frames_dropped"] for c in st["cameras"])))
    print("frame written -> result committed: p50 %.1f ms, p99 %.1f ms; scoring work p50 %.1f "
          "ms, p99 %.1f ms" % (p(lat, 0.5), p(lat, 0.99), p(work, 0.5), p(work, 0.99)))
    return {"tiles16_%s_frame_to_result_p99_ms" % name: p(lat, 0.99),
            "tiles16_%s_scoring_work_p50_ms" % name: p(work, 0.5),
            "tiles16_%s_frames_scored_share" % name: len(rows) / max(stored, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--minutes", type=float, default=2)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--train-frames", type=int, default=100)
    ap.add_argument("--test-frames", type=int, default=100)
    ap.add_argument("--tile-frames", type=int, default=100, help="frames bench_tiles times")
    args = ap.parse_args()
    exe = os.path.join(args.build, "inspectd")
    tmp = tempfile.mkdtemp(prefix="inspectd-bench-tiles-")
    figures = accuracy(exe, tmp, args)
    sys.stdout.flush()
    subprocess.run([os.path.join(args.build, "bench", "bench_tiles"), "--frames",
                    str(args.tile_frames)], check=True)
    for name in LATENCY_MODELS:
        figures.update(latency(exe, tmp, args, name))
    for k, v in figures.items():
        print("%s: %.3f" % (k, v))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
