"""test_make_surfaces.py — tests/bench/make_surfaces.py: two runs with the same seed write
byte-identical trees in the MVTec AD layout (another seed does not); every defect image equals its
clean source window outside its mask, the mask is non-empty and the defect changed most of it;
train and test windows come from disjoint source rows; --kinds writes a subset of the same files. Needs lugaru-data, python3-numpy and
python3-pil (DEB_DEPS)."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "bench")
sys.path.insert(0, BENCH)
import make_surfaces as ms  # noqa: E402

SIZE = 64
COUNTS = ["--train", "2", "--test-good", "2", "--per-defect", "3"]


def generate(out, seed):
    r = subprocess.run([sys.executable, os.path.join(BENCH, "make_surfaces.py"), "--out", out,
                        "--seed", str(seed), "--size", str(SIZE)] + COUNTS,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def digests(root):
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                found[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return found


def check_layout(files):
    for c in ms.CATEGORIES:
        want = {"%s/train/good/%03d.png" % (c, i) for i in range(2)}
        want |= {"%s/test/good/%03d.png" % (c, i) for i in range(2)}
        for k in ms.KINDS:
            want |= {"%s/test/%s/%03d.png" % (c, k, i) for i in range(3)}
            want |= {"%s/ground_truth/%s/%03d_mask.png" % (c, k, i) for i in range(3)}
        got = {f for f in files if f.startswith(c + "/")}
        assert got == want, (c, sorted(got ^ want))


def check_defects(root, seed):
    """Redraws each defect's clean window from the script's own seed stream and compares."""
    for c in ms.CATEGORIES:
        src = ms.load_source(c)
        for k, kind in enumerate(ms.KINDS):
            for i in range(3):
                img = np.asarray(Image.open(os.path.join(root, c, "test", kind, "%03d.png" % i)))
                mask = np.asarray(Image.open(os.path.join(root, c, "ground_truth", kind,
                                                          "%03d_mask.png" % i)))
                assert img.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE), (c, kind, i)
                assert set(np.unique(mask)) <= {0, 255} and (mask == 255).any(), (c, kind, i)
                rng = ms.rng_for(seed, c, "test", 100000 * (k + 1) + i)
                clean, drawn, _ = ms.defect_sample(src, ms.rows(c, "test"), kind, SIZE, rng)
                assert np.array_equal(drawn, img), (c, kind, i)
                changed = (ms.to_u8(clean) != img).any(axis=2)
                inside = mask == 255
                assert not (changed & ~inside).any(), ("changed outside the mask", c, kind, i)
                share = changed[inside].mean()
                assert share >= 0.5, ("mask mostly unchanged", c, kind, i, share)


def check_split():
    for c, (_, _, split) in ms.CATEGORIES.items():
        (t0, t1), (s0, s1) = ms.rows(c, "train"), ms.rows(c, "test")
        assert t0 == 0 and t1 == s0 == split and s1 == ms.SOURCE_SIZE, c
        assert s1 - s0 >= ms.MAX_SIZE and t1 - t0 >= ms.MAX_SIZE, c
        rng = np.random.default_rng(5)
        for rows_ in ((t0, t1), (s0, s1)):
            for _ in range(50):
                _, (y, x) = ms.cut(np.zeros((1024, 1024, 3), np.float32), rows_, ms.MAX_SIZE, rng)
                assert rows_[0] <= y and y + ms.MAX_SIZE <= rows_[1] and 0 <= x <= 1024 - ms.MAX_SIZE


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-surfaces-")
    a, b, other = (os.path.join(tmp, n) for n in ("a", "b", "other"))
    print(generate(a, 7), end="")
    generate(b, 7)
    generate(other, 8)
    da, db, do = digests(a), digests(b), digests(other)
    assert da == db, sorted(f for f in set(da) | set(db) if da.get(f) != db.get(f))
    assert set(do) == set(da) and all(do[f] != da[f] for f in da if "/train/" in f), "seed ignored"
    check_layout(da)
    check_defects(a, 7)
    check_split()
    r = subprocess.run([sys.executable, os.path.join(BENCH, "make_surfaces.py"), "--out", a,
                        "--categories", "marble"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown category marble" in r.stderr, r.stderr
    one = os.path.join(tmp, "holes")
    r = subprocess.run([sys.executable, os.path.join(BENCH, "make_surfaces.py"), "--out", one,
                        "--seed", "7", "--size", str(SIZE), "--kinds", "hole"] + COUNTS,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d1 = digests(one)  # one kind alone: the same files as in the full tree, no others
    assert d1 and all(da[f] == h for f, h in d1.items()), "a kind's images depend on --kinds"
    assert {f.split("/")[2] for f in d1 if "/test/" in f} == {"good", "hole"}, sorted(d1)
    shutil.rmtree(tmp)
    print("ok: %d files, identical over two runs" % len(da))


if __name__ == "__main__":
    sys.exit(main())
