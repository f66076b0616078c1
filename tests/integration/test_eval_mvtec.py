"""test_eval_mvtec.py — `inspectd eval --mvtec DIR` on a small tree in the MVTec AD layout written
here (PNG, RGB and grey): one row per category with a train/good folder, obvious defects beat
chance, the table ends with mean_auroc; --categories selects, unknown ones and bad arguments fail
with a message. Python standard library only."""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

BIN = os.environ["INSPECTD_BIN"]
S = 24


def png(path, pixel, grey=False):
    chans = 1 if grey else 3
    raw = b"".join(b"\x00" + bytes(v for x in range(S) for v in pixel(x, y)[:chans])
                   for y in range(S))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    colour = 0 if grey else 2
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", S, S, 8, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def product(rnd, defect):
    """A grey disc on a dark belt; `defect` adds a bright scratch or a dark hole. Returns the
    pixel function and the defect's mask function."""
    cx, cy = 12 + rnd.uniform(-1, 1), 12 + rnd.uniform(-1, 1)
    hx, hy = rnd.randint(8, 15), rnd.randint(8, 15)
    noise = [[rnd.randint(-6, 6) for _ in range(S)] for _ in range(S)]

    def in_defect(x, y):
        if defect == "scratch":
            return abs(x - y) < 1 and 5 < x < 19
        return defect == "hole" and (x - hx) ** 2 + (y - hy) ** 2 < 6

    def pixel(x, y):
        v = 150 if (x - cx) ** 2 + (y - cy) ** 2 < 64 else 30
        if in_defect(x, y):
            v = 255 if defect == "scratch" else 0
        v = max(0, min(255, v + noise[y][x]))
        return (v, v, v)

    def mask(x, y):
        v = 255 if in_defect(x, y) else 0
        return (v, v, v)
    return pixel, mask


def make_tree(root):
    rnd = random.Random(3)
    for cat, grey in (("disc", False), ("plate", True)):
        for sub, n, defect in (("train/good", 40, None), ("test/good", 12, None),
                               ("test/scratch", 8, "scratch"), ("test/hole", 8, "hole")):
            d = os.path.join(root, cat, sub)
            os.makedirs(d)
            gt = os.path.join(root, cat, "ground_truth", sub.split("/")[1])
            if defect and cat == "disc":  # masks for disc only: plate has no pixel AUROC
                os.makedirs(gt)
            for i in range(n):
                pixel, mask = product(rnd, defect)
                png(os.path.join(d, "%03d.png" % i), pixel, grey)
                if defect and cat == "disc":
                    png(os.path.join(gt, "%03d_mask.png" % i), mask, True)
    os.makedirs(os.path.join(root, "not_a_category"))
    with open(os.path.join(root, "license.txt"), "w") as f:
        f.write("generated\n")


def run(root, *extra):
    args = [BIN, "eval", "--mvtec", root, "--size", "16", "--patch", "4", "--dim", "16",
            "--depth", "1", "--heads", "2", "--batch", "16", "--locals", "2", "--epochs", "2",
            "--minutes", "0.05", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def main():
    root = tempfile.mkdtemp(prefix="inspectd-mvtec-")
    make_tree(root)
    r = run(root)
    print(r.stdout)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()
            if line.split() and line.split()[0] in ("disc", "plate", "not_a_category")}
    assert sorted(rows) == ["disc", "plate"], rows
    for name, row in rows.items():
        pixels, untrained, trained = map(float, row[1:4])
        assert pixels > 70 and 0 <= untrained <= 100 and 0 <= trained <= 100, row
    # pixel AUROC of the heatmaps where masks exist (disc), "-" where not (plate)
    px = [float(v) for v in rows["disc"][4:7]]
    assert px[0] > 70 and all(0 <= v <= 100 for v in px), rows["disc"]
    assert px[2] > 60, rows["disc"]  # the trained network's heatmaps find the defects
    assert rows["plate"][4:7] == ["-", "-", "-"], rows["plate"]
    assert "no pixel AUROC for this category" in r.stderr, r.stderr
    for key in ("mean_pixel_auroc_pixels", "mean_pixel_auroc_untrained", "mean_pixel_auroc"):
        line = [x for x in r.stdout.splitlines() if x.startswith(key + ": ")]
        assert len(line) == 1 and float(line[0].split()[1]) == float(
            {"mean_pixel_auroc_pixels": px[0], "mean_pixel_auroc_untrained": px[1],
             "mean_pixel_auroc": px[2]}[key]), (key, r.stdout)
    assert "disc: 40 normal training images, 28 test images" in r.stderr, r.stderr
    mean = [line for line in r.stdout.splitlines() if line.startswith("mean_auroc: ")]
    assert len(mean) == 1 and r.stdout.rstrip().endswith(mean[0]), r.stdout

    r = run(root, "--categories", "plate", "--channels", "1")
    assert r.returncode == 0, r.stderr
    assert "\nplate " in r.stdout and "\ndisc " not in r.stdout, r.stdout
    r = run(root, "--categories", "bottle")
    assert r.returncode == 1 and "no category with a train/good folder" in r.stderr, r.stderr
    r = run(root, "--size", "18")
    assert r.returncode == 64 and "not a multiple of the patch size" in r.stderr, r.stderr
    r = subprocess.run([BIN, "eval", "--mvtec", root, "--dataset", "fashion-mnist"],
                       capture_output=True, text=True)
    assert r.returncode == 64 and "one of --dataset fashion-mnist or --mvtec DIR" in r.stderr
    shutil.rmtree(root)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
