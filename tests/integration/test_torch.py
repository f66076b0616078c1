"""test_torch.py — tools/torch, the PyTorch copy of inspectd's training, against the C engine:
  1. step equivalence: tests/reference/make_reference.py computes two DINO steps with tools/torch's
     model and step (inspectd_model.py) into a fresh file, and the C engine replays them
     (build/tests/test_vit_reference with INSPECTD_VIT_STEP) within tests/reference's tolerances;
  2. a 2-process gloo run of `torchrun --nproc_per_node=2 tools/torch/train.py` for 3 steps on a
     small export (`inspectd export --dataset`), whose checkpoint holds what `inspectd train`
     writes (the training state and its metadata);
  3. `inspectd train --init` starts from it, and `inspectd model import` registers it so that
     `inspectd score` scores with it;
  4. an official DINO checkpoint (main_dino.py's dict, the DDP student's "module.backbone." and
     "module.head." names) through tools/torch/export_state_dict.py --model and `inspectd model
     import`.
Needs Debian's python3-torch and python3-torchvision (run with /usr/bin/python3)."""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, os.path.join(ROOT, "tools", "torch"))
from dataset_db import capture  # noqa: E402
from testlib import free_port  # noqa: E402
import inspectd_model as im  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
BUILD = os.path.dirname(BIN)
# a small model (both engines take the same flags)
MODEL = ["--dim", "32", "--depth", "2", "--heads", "2", "--patch", "8", "--batch", "16",
         "--locals", "2"]


def run(args, timeout=300, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (args[:3], r.returncode, r.stdout, r.stderr)
    return r


def step_equivalence(tmp):
    ref = os.path.join(tmp, "vit_step.safetensors")
    run([sys.executable, os.path.join(ROOT, "tests", "reference", "make_reference.py"), "--out",
         ref])
    r = run([os.path.join(BUILD, "tests", "test_vit_reference")], cwd=ROOT,
            env=dict(os.environ, INSPECTD_VIT_STEP=ref))
    assert "FAILED" not in r.stdout, r.stdout
    errs, f32 = [], False
    for line in r.stdout.splitlines():  # the f32 backends' errors (the bf16 runs' are looser)
        m = re.match(r"\s+gemm .*, (f32|bf16)$", line)
        if m:
            f32 = m.group(1) == "f32"
        m = re.search(r"(?:rel err|error(?: after step 2)?) ([0-9.e+-]+)", line)
        if m and f32:
            errs.append(float(m.group(1)))
    assert errs, r.stdout
    return max(errs)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-torch-")
    worst = step_equivalence(tmp)

    db = os.path.join(tmp, "line.db")
    capture(BIN, tmp, db, 40, rate=0.0)
    data = os.path.join(tmp, "line")
    run([BIN, "export", "--dataset", data, "--db", db, "--normals", "24"])
    ckpt = os.path.join(tmp, "torch.safetensors")
    r = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
             "--master_addr=127.0.0.1", "--master_port=%d" % free_port(), os.path.join(ROOT, "tools", "torch", "train.py"), "--data", data, "--out", ckpt,
             "--steps", "3", *MODEL])
    assert "2 process(es) on cpu (gloo)" in r.stderr, r.stderr
    speed = float(re.search(r"torch_images_per_s: (\S+)", r.stdout).group(1))
    tensors, meta = im.load_safetensors(ckpt)
    assert meta["format"] == "inspectd-checkpoint" and meta["adam_step"] == "3", meta
    model = json.loads(meta["model"])
    assert (model["dim"], model["depth"], model["patch"], model["img_size"]) == (32, 2, 8, 64)
    assert len(model["mean"]) == 3 and all(s > 0 for s in model["std"]), model
    for prefix in ("student.", "teacher.", "adam_m.", "adam_v."):
        assert prefix + "blocks.1.attn.qkv.weight" in tensors, prefix
    assert tensors["dino.center"].shape == (4096,)

    # inspectd train starts from it
    r = run([BIN, "train", "--images", os.path.join(data, "train", "good"), "--init", ckpt,
             "--out", os.path.join(tmp, "f2.safetensors"), "--epochs", "1", *MODEL])
    assert "starting from the weights of" in r.stderr, r.stderr

    # the daemon's scoring loads it
    r = run([BIN, "model", "import", ckpt, "--db", db])
    version = json.loads(r.stdout)["version"]
    image = os.path.join(data, "test", "good", sorted(os.listdir(os.path.join(data, "test",
                                                                              "good")))[0])
    r = run([BIN, "score", "--db", db, image])
    scored = json.loads(r.stdout)
    assert scored["model"] == version and scored["score"] > 0, scored

    # an official DINO checkpoint: {"student": DDP names, "teacher": ..., "epoch": ...}
    import torch
    student, teacher = im.make_pair(dict(im.default_model(), dim=32, depth=2, heads=2, patch=8,
                                         head_hidden=64, head_bottleneck=32, head_out=128), 5)
    wrapped = {"module.backbone." + k: v for k, v in student.backbone.state_dict().items()}
    wrapped.update({"module.head." + k: v for k, v in student.head.state_dict().items()})
    pth = os.path.join(tmp, "checkpoint.pth")
    torch.save({"student": wrapped, "teacher": {}, "epoch": 3}, pth)
    converted = os.path.join(tmp, "dino.safetensors")
    run([sys.executable, os.path.join(ROOT, "tools", "torch", "export_state_dict.py"), pth,
         converted, "--model", "--key", "student", "--heads", "2"])
    back, cfg, (mean, std), _ = im.load_checkpoint(converted)
    assert cfg["head_out"] == 128 and cfg["img_size"] == 64 and cfg["heads"] == 2, cfg
    assert torch.equal(back.backbone.blocks[1].mlp.fc2.weight, student.backbone.blocks[1].mlp.fc2.weight)
    r = run([BIN, "model", "import", converted, "--db", db])
    assert json.loads(r.stdout)["status"] == "active", r.stdout
    print("ok: step equivalence max rel err %.2e; 2 gloo processes %.1f images/s" %
          (worst, speed))


if __name__ == "__main__":
    main()
