"""Detection figures from a scored database of the synthetic camera (it stores where it drew each
defect): image AUROC of the scores (defect vs good), flag rates at the model's threshold, and how
often the heatmap of a flagged defect frame peaks on the defect (its hottest patch cell overlaps
the defect's box), and the pixel AUROC of those heatmaps (patch grid upsampled bilinearly to the
frame, unsmoothed) against the defect boxes as masks.

    /usr/bin/python3 tests/bench/detection.py DB"""
import sqlite3
import struct
import sys


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


def main():
    con = sqlite3.connect(sys.argv[1])
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
    print("synthetic_image_auroc: %.4f" % auroc(pos, neg))


if __name__ == "__main__":
    main()
