"""Detection figures from a scored database of the synthetic camera (it stores where it drew each
defect): image AUROC of the scores (defect vs good), flag rates at the model's threshold, and how
often the heatmap of a flagged defect frame peaks on the defect (its hottest patch cell overlaps
the defect's box), and the pixel AUROC of those heatmaps (patch grid upsampled bilinearly to the
frame, unsmoothed) against the defect boxes as masks.

With --untrained INSPECTD, the same frames are scored a second time by the same network before
any training (the architecture of the model that scored them, its weights as initialised: one
step of `inspectd train --fresh --max-steps 1`, whose learning rate is still 0 in its warm-up,
registered with the same bank and calibration code on a copy of the database holding the frames
stored before the trained model was made), and its figures
are printed beside the trained ones.

    /usr/bin/python3 tests/bench/detection.py DB [--untrained build/inspectd]"""
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

MODEL_FLAGS = {"dim": "--dim", "depth": "--depth", "heads": "--heads", "patch": "--patch",
               "img_size": "--size", "in_chans": "--channels", "head_out": "--head-out"}


def auroc(pos, neg):
    """Rank-based, ties counted half."""
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank, i, rsum = 1, 0, 0.0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (rank + rank + (j - i) - 1) / 2
        rsum += avg * sum(1 for k in range(i, j) if allv[k][1])
        rank += j - i
        i = j
    return (rsum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def upsample(grid, gw, gh, w, h):
    """Bilinear, pixel centres aligned as PyTorch's interpolate(align_corners=False)."""
    out = []
    for y in range(h):
        sy = min(max((y + 0.5) * gh / h - 0.5, 0), gh - 1)
        y0 = int(sy)
        y1, fy = min(y0 + 1, gh - 1), sy - int(sy)
        for x in range(w):
            sx = min(max((x + 0.5) * gw / w - 0.5, 0), gw - 1)
            x0 = int(sx)
            x1, fx = min(x0 + 1, gw - 1), sx - int(sx)
            top = grid[y0 * gw + x0] * (1 - fx) + grid[y0 * gw + x1] * fx
            bot = grid[y1 * gw + x0] * (1 - fx) + grid[y1 * gw + x1] * fx
            out.append(top * (1 - fy) + bot * fy)
    return out


def checkpoint_model(path):
    """The "model" metadata of a .safetensors checkpoint (its JSON header's __metadata__)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return json.loads(header["__metadata__"]["model"])


def untrained_scores(exe, db, frames):
    """{frame id: (score, flagged)} of frames [(id, format, image)] scored by the scoring model's
    architecture as initialised, registered on a copy of db."""
    con = sqlite3.connect(db)
    path, made = con.execute("SELECT m.path, m.created_at FROM results r JOIN models m "
                             "ON m.id = r.model_id ORDER BY r.frame_id DESC LIMIT 1").fetchone()
    con.close()
    model = checkpoint_model(path)
    tmp = tempfile.mkdtemp(prefix="inspectd-detection-")
    try:
        copy = os.path.join(tmp, "copy.db")
        src = sqlite3.connect(db)
        dst = sqlite3.connect(copy)
        src.backup(dst)  # a consistent copy, WAL included
        src.close()
        # the frames the trained model could learn from and calibrate on: those stored before it
        dst.execute("PRAGMA foreign_keys = ON")
        dst.execute("DELETE FROM frames WHERE created_at > ?", (made,))
        dst.commit()
        dst.close()
        flags = []
        for key, flag in MODEL_FLAGS.items():
            if key in model:
                flags += [flag, str(model[key])]
        subprocess.run([exe, "train", "--db", copy, "--out", os.path.join(tmp, "untrained.safetensors"),
                        "--fresh", "--max-steps", "1", "--register"] + flags,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        names = {}
        for fid, fmt, image in frames:
            name = os.path.join(tmp, "%d.%s" % (fid, "jpg" if fmt == "jpeg" else "png"))
            with open(name, "wb") as f:
                f.write(image)
            names[name] = fid
        out = {}
        files = sorted(names)
        for i in range(0, len(files), 200):
            run = subprocess.run([exe, "score", "--db", copy] + files[i:i + 200],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for line in run.stdout.splitlines():
                r = json.loads(line)
                if "error" not in r:
                    out[names[r["file"]]] = (r["score"], r["flagged"])
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = sys.argv[1:]
    exe = None
    if "--untrained" in args:
        i = args.index("--untrained")
        exe = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    con = sqlite3.connect(args[0])
    rows = con.execute(
        "SELECT f.id, f.defect, f.width, f.height, f.defect_x0, f.defect_y0, f.defect_x1, "
        "f.defect_y1, r.score, r.flagged, h.grid_w, h.grid_h, h.data FROM frames f "
        "JOIN results r ON r.frame_id = f.id LEFT JOIN heatmaps h ON h.frame_id = f.id "
        "AND h.model_id = r.model_id").fetchall()
    pos = [r[8] for r in rows if r[1] not in (None, "none")]
    neg = [r[8] for r in rows if r[1] == "none"]
    if not pos or not neg:
        sys.exit("need scored frames with and without defects")
    hits = maps = 0
    px_pos, px_neg = [], []
    for (_, d, w, h, x0, y0, x1, y1, _, flagged, gw, gh, data) in rows:
        if d in (None, "none") or not flagged or data is None:
            continue
        grid = struct.unpack("<%df" % (gw * gh), data)
        k = max(range(gw * gh), key=lambda i: grid[i])
        cx0, cy0 = (k % gw) * w / gw, (k // gw) * h / gh
        cx1, cy1 = cx0 + w / gw, cy0 + h / gh
        maps += 1
        hits += cx0 < x1 and x0 < cx1 and cy0 < y1 and y0 < cy1
        up = upsample(grid, gw, gh, w, h)
        for y in range(h):
            for x in range(w):
                (px_pos if x0 <= x < x1 and y0 <= y < y1 else px_neg).append(up[y * w + x])
    print("frames scored: %d defect, %d good" % (len(pos), len(neg)))
    print("flagged: %.3f of defect frames, %.4f of good frames" %
          (sum(r[9] for r in rows if r[1] not in (None, "none")) / len(pos),
           sum(r[9] for r in rows if r[1] == "none") / len(neg)))
    print("heatmap peak on the defect: %d of %d flagged defect frames" % (hits, maps))
    if px_pos and px_neg:
        print("pixel AUROC of those heatmaps against the defect boxes: %.4f (%d pixels)"
              % (auroc(px_pos, px_neg), len(px_pos) + len(px_neg)))
    if exe:
        ids = [r[0] for r in rows]
        frames = [con.execute("SELECT id, format, image FROM frames WHERE id = ?", (i,)).fetchone()
                  for i in ids]
        got = untrained_scores(exe, args[0], frames)
        upos = [got[r[0]][0] for r in rows if r[1] not in (None, "none") and r[0] in got]
        uneg = [got[r[0]][0] for r in rows if r[1] == "none" and r[0] in got]
        uflag_pos = sum(got[r[0]][1] for r in rows if r[1] not in (None, "none") and r[0] in got)
        uflag_neg = sum(got[r[0]][1] for r in rows if r[1] == "none" and r[0] in got)
        print("untrained network, same frames: image AUROC %.4f; flagged %.3f of defect frames, "
              "%.4f of good frames" % (auroc(upos, uneg), uflag_pos / len(upos),
                                       uflag_neg / len(uneg)))
        print("synthetic_image_auroc_untrained: %.4f" % auroc(upos, uneg))
    print("synthetic_image_auroc: %.4f" % auroc(pos, neg))


if __name__ == "__main__":
    main()
