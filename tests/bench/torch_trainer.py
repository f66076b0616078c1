"""torch_trainer.py — tools/torch/train.py beside `inspectd train` on the same data and config (the
defaults: ViT dim 128, depth 4, 4 heads, patch 4 at 64 px, head 1024-256-4096, batch 64, 2 global +
6 local crops): images per second of `inspectd train`, of train.py in one process, and of
`torchrun --nproc_per_node=2` (gloo), each over the same number of steps (first step included, as
both report it). The data is an export of a synthetic line (`inspectd export --dataset`).

    flock /tmp/inspectd-heavy.lock nice -n 5 /usr/bin/python3 tests/bench/torch_trainer.py \\
        [BUILD_DIR] [--steps 20] [--frames 300]
prints inspectd_train_images_per_s, torch_1proc_images_per_s, torch_2proc_gloo_images_per_s."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))
from dataset_db import capture  # noqa: E402
from testlib import free_port  # noqa: E402


def run(args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=3600, env=env)
    assert r.returncode == 0, "%s\n%s\n%s" % (args[:4], r.stdout, r.stderr)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    binary = os.path.join(a.build, "inspectd")
    tmp = tempfile.mkdtemp(prefix="inspectd-torch-bench-")
    db = os.path.join(tmp, "line.db")
    capture(binary, tmp, db, a.frames, rate=0.0)
    data = os.path.join(tmp, "line")
    run([binary, "export", "--dataset", data, "--db", db, "--normals", str(a.frames - 44)])
    r = run([binary, "train", "--images", os.path.join(data, "train", "good"), "--out",
             os.path.join(tmp, "c.safetensors"), "--max-steps", str(a.steps)])
    c_speed = float(re.findall(r"([0-9.]+) img/s", r.stderr)[-1])
    train = os.path.join(ROOT, "tools", "torch", "train.py")
    r1 = run([sys.executable, train, "--data", data, "--out", os.path.join(tmp, "t1.safetensors"),
              "--steps", str(a.steps)])
    r2 = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
              "--master_addr=127.0.0.1", "--master_port=%d" % free_port(), train, "--data", data,
              "--out", os.path.join(tmp, "t2.safetensors"), "--steps", str(a.steps)])
    speed = [float(re.search(r"torch_images_per_s: (\S+)", r.stdout).group(1)) for r in (r1, r2)]
    print("steps: %d, batch 64, default model" % a.steps)
    print("inspectd_train_images_per_s: %.2f" % c_speed)
    print("torch_1proc_images_per_s: %.2f" % speed[0])
    print("torch_2proc_gloo_images_per_s: %.2f" % speed[1])


if __name__ == "__main__":
    main()
