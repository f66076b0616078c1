"""test_train.py — `inspectd train` on a directory of images written here: non-images and a
truncated PNG are skipped with a log line, the checkpoint is a safetensors file with the teacher
under DINO names, a run interrupted after 5 steps and resumed ends in the same state as an
uninterrupted one (on each GEMM backend, pinned with --gemm), and resuming with another model is
refused. Python standard library only."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

BIN = os.environ["INSPECTD_BIN"]


def png(path, w, h, pixel):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in pixel(x, y)) for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)
    return data


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        tensors[name] = struct.unpack("<%df" % ((en - b) // 4), blob[8 + n + b:8 + n + en])
    return tensors, meta


def train(img_dir, out, *extra):
    args = [BIN, "train", "--images", img_dir, "--out", out, "--size", "16", "--dim", "16",
            "--depth", "1", "--heads", "2", "--patch", "4", "--batch", "8", "--locals", "2",
            "--epochs", "4", "--every", "2", "--threads", "2", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-train-")
    img_dir = os.path.join(tmp, "images")
    os.mkdir(img_dir)
    rnd = random.Random(1)
    for i in range(24):
        cx, cy, r = rnd.randint(4, 11), rnd.randint(4, 11), rnd.randint(2, 5)
        png(os.path.join(img_dir, "p%02d.png" % i), 16, 16,
            lambda x, y: (200, 40, 40) if (x - cx) ** 2 + (y - cy) ** 2 < r * r else (30, 30, 90))
    data = png(os.path.join(tmp, "full.png"), 16, 16, lambda x, y: (1, 2, 3))
    with open(os.path.join(img_dir, "zz_truncated.png"), "wb") as f:
        f.write(data[:-20])
    with open(os.path.join(img_dir, "notes.txt"), "w") as f:
        f.write("not an image\n")

    a = os.path.join(tmp, "a.safetensors")
    r = train(img_dir, a)
    print(r.stderr)
    assert r.returncode == 0, r.returncode
    assert "skipping" in r.stderr and "notes.txt" in r.stderr, "non-image not reported"
    assert "zz_truncated.png" in r.stderr, "truncated PNG not reported"
    assert "24 images" in r.stderr
    ta, meta = read_safetensors(a)
    assert meta["format"] == "inspectd-checkpoint", meta
    assert len(ta["teacher.blocks.0.attn.qkv.weight"]) == 48 * 16
    assert "student.head.last_layer.weight_v" in ta and "adam_v.cls_token" in ta
    assert int(meta["adam_step"]) == 12, meta["adam_step"]  # 4 epochs of 24 / 8

    for backend in ("openblas", "onednn"):
        full = os.path.join(tmp, "full-%s.safetensors" % backend)
        r = train(img_dir, full, "--gemm", backend)
        assert r.returncode == 0, r.stderr
        ta_pinned, _ = read_safetensors(full)
        b = os.path.join(tmp, "b.safetensors")
        if os.path.exists(b):
            os.unlink(b)
        r = train(img_dir, b, "--max-steps", "5", "--gemm", backend)
        assert r.returncode == 0, r.stderr
        _, mb = read_safetensors(b)
        assert int(mb["adam_step"]) == 5, mb["adam_step"]
        r = train(img_dir, b, "--resume", "--gemm", backend)
        assert r.returncode == 0, r.stderr
        assert "resuming" in r.stderr
        tb, mb = read_safetensors(b)
        assert int(mb["adam_step"]) == 12
        worst = max(abs(x - y) for k in ta_pinned if k.startswith("teacher.")
                    for x, y in zip(ta_pinned[k], tb[k]))
        print("%s: max |teacher difference| after resume: %.3g" % (backend, worst))
        assert worst == 0, worst

    r = train(img_dir, b, "--resume", "--dim", "32")
    assert r.returncode != 0 and "another model" in r.stderr, r.stderr
    # --init: start from a's teacher; the first step's teacher is then a's, not a random init
    c = os.path.join(tmp, "c.safetensors")
    r = train(img_dir, c, "--init", a, "--max-steps", "1")
    assert r.returncode == 0 and "starting from the weights of" in r.stderr, r.stderr
    tc, _ = read_safetensors(c)
    near = max(abs(x - y) for x, y in zip(ta["teacher.pos_embed"], tc["teacher.pos_embed"]))
    assert near < 1e-2, near
    r = train(img_dir, c, "--init", a, "--dim", "32")
    assert r.returncode != 0 and "not a checkpoint of this model" in r.stderr, r.stderr
    r = subprocess.run([BIN, "train", "--images", img_dir], capture_output=True, text=True)
    assert r.returncode == 64 and "are required" in r.stderr
    shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
