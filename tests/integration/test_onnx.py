"""test_onnx.py — tools/torch/export_onnx.py against inspectd's own patch tokens: a small model
trained by `inspectd train` and registered by `inspectd model import` (its bank), exported with
--bank; the graph passes onnx.checker, has opset >= 13, a dynamic batch, no Erf (OpenCV 4.6 has
none) and no Tanh (the GELU is the erf one); OpenCV's dnn module loads it and, for the same images,
its tokens agree with `inspectd model tokens` (relative error max|a - b| / max|b| <= 1e-4); the
bank and threshold are written beside it. Needs Debian's python3-torch, python3-onnx and
python3-opencv (run with /usr/bin/python3)."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(ROOT, "tools", "torch"))
from dataset_db import capture  # noqa: E402
from testlib import tiny_train  # noqa: E402
import inspectd_model as im  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (args[:3], r.returncode, r.stdout, r.stderr)
    return r


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-onnx-")
    db = os.path.join(tmp, "line.db")
    capture(BIN, tmp, db, 30, rate=0.3)
    images = os.path.join(tmp, "images")
    os.mkdir(images)
    con = sqlite3.connect(db)
    files = []
    for i, (blob,) in enumerate(con.execute("SELECT image FROM frames ORDER BY id LIMIT 24")):
        files.append(os.path.join(images, "%02d.jpg" % i))
        with open(files[-1], "wb") as f:
            f.write(blob)
    con.close()
    ckpt = os.path.join(tmp, "m.safetensors")
    run([BIN, "train", "--images", images, "--out", ckpt, *tiny_train(1)])
    bank = json.loads(run([BIN, "model", "import", ckpt, "--db", db]).stdout)["path"]
    bank = bank.replace(".safetensors", ".bank.safetensors")
    tok = os.path.join(tmp, "tokens.safetensors")
    run([BIN, "model", "tokens", ckpt, "--out", tok, *files[:6]])

    out = os.path.join(tmp, "m.onnx")
    run([sys.executable, os.path.join(ROOT, "tools", "torch", "export_onnx.py"), "--checkpoint",
         ckpt, "--out", out, "--bank", bank])
    g = onnx.load(out)
    onnx.checker.check_model(g)
    assert max(o.version for o in g.opset_import if o.domain in ("", "ai.onnx")) >= 13
    ops = {n.op_type for n in g.graph.node}
    assert "Erf" not in ops and "Tanh" not in ops, ops
    assert g.graph.input[0].type.tensor_type.shape.dim[0].dim_param, g.graph.input[0]
    meta = {p.key: p.value for p in g.metadata_props}
    assert json.loads(meta["mean"]) and meta["layer"] == "1", meta
    side, bmeta = im.load_safetensors(os.path.join(tmp, "m.bank.safetensors"))
    assert side["bank"].shape[1] == 32 and float(bmeta["threshold"]) > 0, bmeta

    t, _ = im.load_safetensors(tok)
    x, want = t["input"].numpy(), t["tokens"].numpy()
    net = cv2.dnn.readNetFromONNX(out)
    got = []
    for i in range(len(x)):  # OpenCV 4.6's dnn runs this graph one image at a time
        net.setInput(x[i:i + 1])
        got.append(net.forward().copy())
    got = np.concatenate(got)
    assert got.shape == want.shape == (6, 64, 32), (got.shape, want.shape)
    err = float(np.abs(got - want).max() / np.abs(want).max())
    assert err <= 1e-4, err
    print("ok: OpenCV dnn against inspectd's patch tokens: rel err %.2e (%d ops: %s)" %
          (err, len(g.graph.node), ", ".join(sorted(ops))))


if __name__ == "__main__":
    main()
