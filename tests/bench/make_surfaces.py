"""make_surfaces.py — a surface-defect benchmark in the MVTec AD layout, cut from photographed
surfaces that Debian ships, with defects drawn here and their exact masks.

Sources: the 1024 × 1024 photographed terrain textures of Debian's `lugaru-data` package (34 MB,
CC-BY-SA 3.0, /usr/share/games/lugaru/Textures; `make deps` installs it). Each category is one
photograph. A product is a SIZE × SIZE window of it at its native scale. Train windows lie wholly
in the photograph's top rows [0, SPLIT), test windows (good and defective) wholly in its bottom rows
[SPLIT, 1024) (SPLIT is 704, or 768 for slate): no pixel of the photograph appears in both splits.
`--check-overlap` measures that the photographs do not repeat themselves across the split either
(game textures are often retouched with clone-stamped patches: Rock.jpg and MossRock.jpg of the
same package fail it, with test windows that match train windows at NCC 0.95 and 0.98).

Defects (scratch, stain, hole, crack) are drawn by this file alone, from geometry and the window's
own pixels; it shares no code with any synthetic-anomaly generator used for training. A defect's
mask (255 = defect) is exactly the set of pixels its drawing may change: every changed pixel lies
in the mask, and the mask covers the visible defect.

    OUT/<category>/train/good/NNN.png
    OUT/<category>/test/good/NNN.png
    OUT/<category>/test/<kind>/NNN.png
    OUT/<category>/ground_truth/<kind>/NNN_mask.png

Deterministic: the same arguments give byte-identical files (PNGs written here with zlib, no
metadata; every image drawn from its own seed derived from --seed, the category, the split and
its index, so a smaller count gives a prefix of a larger one, and a tree of one defect kind
(--kinds) holds the same images as the full tree: evaluating it gives that kind's AUROC). Needs /usr/bin/python3 with Debian's
python3-numpy and python3-pil (JPEG decoding).

    /usr/bin/python3 tests/bench/make_surfaces.py --out var/surfaces [--seed 0] [--size 128]
        [--categories slate,sand,lichen,snow] [--kinds scratch,stain,hole,crack]
        [--train 200] [--test-good 50] [--per-defect 20]
    /usr/bin/python3 tests/bench/make_surfaces.py --check-overlap
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

TEXTURES = "/usr/share/games/lugaru/Textures"
# category: (photograph in lugaru-data, what it shows, SPLIT: train rows [0, SPLIT), test rows
# [SPLIT, 1024)). Slate's split is lower because its rows 704-767 repeat rows 460-523.
CATEGORIES = {
    "slate": ("Rock2.jpg", "smooth grey-green slate with faint veins", 768),
    "sand": ("Sand.jpg", "rippled beige sand", 704),
    "lichen": ("Boulder.jpg", "dark stone spotted with pale lichen", 704),
    "snow": ("Snow.jpg", "fine-grained white snow crust", 704),
}
DEFAULT_CATEGORIES = ",".join(CATEGORIES)
SOURCE_SIZE = 1024
MAX_SIZE = 256  # the smallest test region (slate's) is 256 rows high
KINDS = ("scratch", "stain", "hole", "crack")
SPLITS = {"train": 0, "test": 1}


# --- PNG -----------------------------------------------------------------------------------------

def write_png(path, a):
    """Writes a uint8 (H, W) grey or (H, W, 3) RGB array as a PNG: no metadata, zlib level 9, so
    equal arrays give equal files."""
    h, w = a.shape[:2]
    colour = 0 if a.ndim == 2 else 2
    rows = np.ascontiguousarray(a, dtype=np.uint8).reshape(h, -1)
    raw = np.hstack([np.zeros((h, 1), np.uint8), rows]).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path + ".tmp", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    os.replace(path + ".tmp", path)


# --- sources and windows -------------------------------------------------------------------------

def load_source(category):
    """The category's photograph as a float32 (1024, 1024, 3) array in 0..255. Exits with a message
    naming the package when it is not installed."""
    path = os.path.join(TEXTURES, CATEGORIES[category][0])
    if not os.path.exists(path):
        sys.exit("make_surfaces: %s missing: install Debian's lugaru-data (make deps)" % path)
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    if img.shape != (SOURCE_SIZE, SOURCE_SIZE, 3):
        sys.exit("make_surfaces: %s is %s, expected %d x %d" % (path, img.shape, SOURCE_SIZE, SOURCE_SIZE))
    return img


def rng_for(seed, category, split, index):
    """The generator of one image: its own stream, independent of the counts asked for."""
    cat = sorted(CATEGORIES).index(category)
    return np.random.default_rng([seed, cat, SPLITS[split], index])


def rows(category, split):
    """The source rows [lo, hi) that the split's windows lie wholly inside."""
    cut_at = CATEGORIES[category][2]
    return (0, cut_at) if split == "train" else (cut_at, SOURCE_SIZE)


def cut(src, rows_, size, rng):
    """A size × size window wholly inside source rows [lo, hi). Returns (float32 window, (y, x))."""
    lo, hi = rows_
    y = int(rng.integers(lo, hi - size + 1))
    x = int(rng.integers(0, src.shape[1] - size + 1))
    return src[y:y + size, x:x + size].copy(), (y, x)


# --- drawing helpers -----------------------------------------------------------------------------

def grid(size):
    """Pixel-centre coordinates (ys, xs), each (size, size) float32."""
    c = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(c, c, indexing="ij")


def stroke_alpha(size, points, widths, cut_below=0.15):
    """Coverage in 0..1 of a polyline (N, 2) of (y, x) points whose segment i is widths[i] pixels
    wide, with a one-pixel anti-aliased edge; coverage under cut_below is set to 0 so that what the
    stroke changes is exactly where the result is > 0."""
    ys, xs = grid(size)
    alpha = np.zeros((size, size), np.float32)
    for (y0, x0), (y1, x1), w in zip(points[:-1], points[1:], widths):
        dy, dx = y1 - y0, x1 - x0
        t = np.clip(((ys - y0) * dy + (xs - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
        d = np.hypot(ys - (y0 + t * dy), xs - (x0 + t * dx))
        np.maximum(alpha, np.clip(w / 2 + 0.5 - d, 0, 1), out=alpha)
    alpha[alpha < cut_below] = 0
    return alpha


def blur(a, sigma):
    """Separable Gaussian blur of a (H, W) array, edges clamped."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    for axis in (0, 1):
        p = np.pad(a, [(r, r) if ax == axis else (0, 0) for ax in (0, 1)], mode="edge")
        n = a.shape[axis]
        a = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(2 * r + 1))
    return a.astype(np.float32)


def luminance(img):
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


# --- defects: each takes (window, rng) and returns (image, alpha), alpha > 0 where it changed ------

def scratch(img, rng):
    """A thin straight-to-gently-curved line, lighter (abraded) or darker (groove) than the surface,
    fading at both ends."""
    s = img.shape[0]
    n = int(rng.integers(3, 7))
    length = rng.uniform(0.3, 0.75) * s
    theta = rng.uniform(0, np.pi)
    p = np.array([rng.uniform(0.25, 0.75) * s, rng.uniform(0.25, 0.75) * s])
    p -= 0.5 * length * np.array([np.sin(theta), np.cos(theta)])
    pts = [p.copy()]
    for _ in range(n - 1):
        theta += rng.normal(0, 0.12)
        p = p + length / (n - 1) * np.array([np.sin(theta), np.cos(theta)])
        pts.append(p.copy())
    w = rng.uniform(0.8, 2.2) * s / 128
    fade = np.sin(np.linspace(0.35, np.pi - 0.35, n - 1)) ** 0.5
    alpha = stroke_alpha(s, np.array(pts), w * fade)
    strength = rng.uniform(0.45, 0.8)
    a = (alpha * strength)[..., None]
    if rng.random() < 0.65:
        out = img + a * (255 - img)
    else:
        out = img * (1 - a)
    return out, alpha


def stain(img, rng):
    """A soft-edged blob of tinted liquid (oil, rust, water, dye): the surface shows through,
    tinted and darkened; its outline is irregular (a few Gaussians summed and thresholded)."""
    s = img.shape[0]
    ys, xs = grid(s)
    cy, cx = rng.uniform(0.25, 0.75, 2) * s
    r = rng.uniform(0.07, 0.18) * s
    field = np.zeros((s, s), np.float32)
    for _ in range(int(rng.integers(3, 7))):
        oy, ox = rng.normal(0, 0.5 * r, 2)
        sg = rng.uniform(0.4, 0.8) * r
        field += np.exp(-((ys - cy - oy) ** 2 + (xs - cx - ox) ** 2) / (2 * sg * sg))
    field /= field.max()
    t0, t1 = 0.3, 0.55
    blob = np.clip((field - t0) / (t1 - t0), 0, 1)
    blob = blob * blob * (3 - 2 * blob)  # smoothstep: exactly 0 outside the outline
    tints = np.array([[70, 45, 25], [150, 75, 35], [95, 100, 110], [170, 140, 50], [60, 80, 140]],
                     np.float32)
    tint = tints[int(rng.integers(len(tints)))] * rng.uniform(0.8, 1.1)
    opacity = rng.uniform(0.45, 0.8)
    mix = rng.uniform(0.4, 0.8)  # share of the surface's own texture kept under the stain
    alpha = blob * opacity
    alpha[alpha < 0.05] = 0
    under = mix * img * tint / 255 + (1 - mix) * tint
    a = alpha[..., None]
    return (1 - a) * img + a * under, alpha


def hole(img, rng):
    """A dark elliptic pit with an irregular outline, shaded as a cavity (darker towards the top
    edge where its wall hides the light), inside a thin lighter chipped rim."""
    s = img.shape[0]
    ys, xs = grid(s)
    cy, cx = rng.uniform(0.2, 0.8, 2) * s
    a_ax = rng.uniform(0.035, 0.1) * s
    b_ax = a_ax * rng.uniform(0.55, 1.0)
    phi = rng.uniform(0, np.pi)
    dy, dx = ys - cy, xs - cx
    u = (dx * np.cos(phi) + dy * np.sin(phi)) / a_ax
    v = (-dx * np.sin(phi) + dy * np.cos(phi)) / b_ax
    ang = np.arctan2(v, u)
    wobble = 1 + sum(rng.uniform(-0.08, 0.08) * np.sin(k * ang + rng.uniform(0, 2 * np.pi))
                     for k in (2, 3, 5))
    rho = np.hypot(u, v) / wobble
    edge_px = 1.0 / max(b_ax, 1.0)  # one pixel in units of rho
    pit = np.clip((1 - rho) / edge_px + 0.5, 0, 1)
    rim_out = 1 + max(1.5 * edge_px, 0.18)
    rim = np.clip((rim_out - rho) / edge_px + 0.5, 0, 1) * (1 - pit)
    depth = 0.06 + 0.16 * np.clip((dy / max(b_ax, 1) + 1) / 2, 0, 1)  # lit from below, wall on top
    lum = luminance(img)[..., None]
    floor = np.minimum(img, lum) * depth[..., None] + 6
    rim_gain = rng.uniform(0.15, 0.35)
    out = img + rim[..., None] * rim_gain * (255 - img)
    out = out * (1 - pit[..., None]) + floor * pit[..., None]
    alpha = np.maximum(pit, rim)
    alpha[alpha < 0.15] = 0
    keep = (alpha == 0)[..., None]
    return np.where(keep, img, out), alpha


def crack(img, rng):
    """A dark fracture that wanders (a persistent random walk, one pixel per step), tapering from
    its start, with up to two branches."""
    s = img.shape[0]
    alpha = np.zeros((s, s), np.float32)

    def walk(p, theta, steps, w0):
        pts = [p.copy()]
        for _ in range(steps):
            theta += rng.normal(0, 0.18)
            p = p + np.array([np.sin(theta), np.cos(theta)])
            pts.append(p.copy())
        widths = np.linspace(w0, 0.5, steps)
        return np.array(pts), widths, theta
    start = rng.uniform(0.2, 0.8, 2) * s
    theta = rng.uniform(0, 2 * np.pi)
    w0 = rng.uniform(1.4, 2.6) * s / 128
    pts, widths, _ = walk(start, theta, int(rng.uniform(0.35, 0.7) * s), w0)
    strokes = [(pts, widths)]
    for _ in range(int(rng.integers(0, 3))):
        i = int(rng.integers(len(pts) // 4, 3 * len(pts) // 4))
        bt = theta + rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
        strokes.append(walk(pts[i], bt, int(rng.uniform(0.1, 0.3) * s), widths[i] * 0.8)[:2])
    for p, w in strokes:
        np.maximum(alpha, stroke_alpha(s, p, w), out=alpha)
    strength = rng.uniform(0.6, 0.85)
    return img * (1 - strength * alpha[..., None]), alpha


DEFECTS = {"scratch": scratch, "stain": stain, "hole": hole, "crack": crack}


def defect_sample(src, test_rows, kind, size, rng):
    """One defective test product: (clean window, defective uint8 image, bool mask). The mask is
    where the defect's coverage is > 0; a draw covering under 0.1 % of the window (a stroke that
    left it) is redrawn from the same stream."""
    clean, _ = cut(src, test_rows, size, rng)
    while True:
        out, alpha = DEFECTS[kind](clean, rng)
        mask = alpha > 0
        if mask.sum() >= max(4, size * size // 1000):
            return clean, to_u8(np.where(mask[..., None], out, clean)), mask


def to_u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# --- the tree ------------------------------------------------------------------------------------

def make_category(out, category, seed, size, counts, kinds):
    """Writes one category's train/good, test/good, test/<kind> and ground_truth/<kind>."""
    src = load_source(category)
    root = os.path.join(out, category)
    for split, sub, n in (("train", "train/good", counts["train"]), ("test", "test/good", counts["test_good"])):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            win, _ = cut(src, rows(category, split), size, rng_for(seed, category, split, i))
            write_png(os.path.join(d, "%03d.png" % i), to_u8(win))
    for k, kind in enumerate(KINDS):
        if kind not in kinds:
            continue
        d, gt = os.path.join(root, "test", kind), os.path.join(root, "ground_truth", kind)
        os.makedirs(d, exist_ok=True)
        os.makedirs(gt, exist_ok=True)
        for i in range(counts["per_defect"]):
            rng = rng_for(seed, category, "test", 100000 * (k + 1) + i)
            _, img, mask = defect_sample(src, rows(category, "test"), kind, size, rng)
            write_png(os.path.join(d, "%03d.png" % i), img)
            write_png(os.path.join(gt, "%03d_mask.png" % i), mask.astype(np.uint8) * 255)
    print("%s: %s (lugaru-data %s), %d px; train %d (rows %d-%d), test good %d, %d each of %s "
          "(rows %d-%d)" % (category, CATEGORIES[category][1], CATEGORIES[category][0], size,
                            counts["train"], 0, CATEGORIES[category][2] - 1, counts["test_good"],
                            counts["per_defect"], "/".join(kinds), CATEGORIES[category][2],
                            SOURCE_SIZE - 1))


# --- the overlap check ---------------------------------------------------------------------------

def max_ncc(region, tmpl):
    """The largest normalised cross-correlation of tmpl (h, w) over every position wholly inside
    region (H, W), by FFT with box sums for the local norms."""
    h, w = tmpl.shape
    H, W = region.shape
    t = tmpl - tmpl.mean()
    shape = (H + h, W + w)
    num = np.fft.irfft2(np.fft.rfft2(region, shape) * np.conj(np.fft.rfft2(t, shape)), shape)
    num = num[:H - h + 1, :W - w + 1]

    def box(a):
        c = np.pad(a.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        return c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]
    n = h * w
    var = box(region * region) - box(region) ** 2 / n
    den = np.sqrt(np.maximum(var, 1e-6) * (t * t).sum())
    return float((num / den).max())


def check_overlap(categories, window, stride):
    """Prints, per category, how well the best-matching train-region window matches each test-region
    window (window px, on a stride grid), by NCC of the high-passed luminance (detail, not shading):
    median, 95th percentile and worst with its place. A cloned or tiled patch shows as a worst near
    1.0; unrelated photographed texture stays near 0.1-0.3."""
    for c in categories:
        lum = luminance(load_source(c))
        hp = (lum - blur(lum, 4)).astype(np.float64)
        (t0, t1), (s0, s1) = rows(c, "train"), rows(c, "test")
        found = []
        for y in range(s0, s1 - window + 1, stride):
            for x in range(0, SOURCE_SIZE - window + 1, stride):
                found.append((max_ncc(hp[t0:t1], hp[y:y + window, x:x + window]), y, x))
        v = np.array([f[0] for f in found])
        worst = max(found)
        print("%s: %d test windows of %d px vs every train window: NCC median %.3f, p95 %.3f, "
              "max %.3f (at y %d x %d)" % (c, len(found), window, np.median(v),
                                           np.percentile(v, 95), *worst), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="var/surfaces")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=128, help="product side in pixels (32..256)")
    ap.add_argument("--categories", default=DEFAULT_CATEGORIES,
                    help="comma-separated, of: " + ",".join(CATEGORIES))
    ap.add_argument("--kinds", default=",".join(KINDS), help="defect kinds, of: " + ",".join(KINDS))
    ap.add_argument("--train", type=int, default=200, help="train/good images per category")
    ap.add_argument("--test-good", type=int, default=50, help="test/good images per category")
    ap.add_argument("--per-defect", type=int, default=20, help="test images per defect kind")
    ap.add_argument("--check-overlap", action="store_true",
                    help="print how well test windows match train windows (slow), write nothing")
    a = ap.parse_args()
    cats = [c for c in a.categories.split(",") if c]
    bad = [c for c in cats if c not in CATEGORIES]
    if bad or not cats:
        ap.error("unknown category %s (known: %s)" % (",".join(bad) or "''", ",".join(CATEGORIES)))
    if not 32 <= a.size <= MAX_SIZE:
        ap.error("--size must be within 32..%d" % MAX_SIZE)
    kinds = [k for k in a.kinds.split(",") if k]
    if not kinds or any(k not in KINDS for k in kinds):
        ap.error("--kinds: a comma-separated list of %s" % ",".join(KINDS))
    if min(a.train, a.test_good, a.per_defect) < 0 or a.per_defect > 99999:
        ap.error("counts must be >= 0 (and --per-defect < 100000)")
    if a.check_overlap:
        check_overlap(cats, 64, 32)
        return
    counts = {"train": a.train, "test_good": a.test_good, "per_defect": a.per_defect}
    for c in cats:
        make_category(a.out, c, a.seed, a.size, counts, kinds)


if __name__ == "__main__":
    main()
