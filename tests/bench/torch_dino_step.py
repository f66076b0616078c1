"""torch_dino_step.py — the PyTorch peer of bench_train / bench_embed: the same DINO step (or the
same backbone inference) with torch, 2 threads. Run with /usr/bin/python3 (Debian python3-torch).

    torch_dino_step.py train [--steps N] [--batch B]   → torch_images_per_s: X, peak RSS
    torch_dino_step.py embed [--iters N]               → torch_embed_b1_images_per_s, _b32_
With --bf16 the forward passes and the loss run under torch.autocast("cpu", dtype=torch.bfloat16)
(master weights, gradients and AdamW stay float32) and the lines are torch_bf16_…"""
import contextlib
import argparse
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                                "torch"))
from inspectd_model import Model, clip_gradients, dino_loss, param_groups  # noqa: E402

BENCH = dict(dim=192, depth=12, heads=3, mlp_ratio=4, patch=8, img_size=64, in_chans=3,
             head_hidden=2048, head_bottleneck=256, head_out=4096)


def autocast(args):
    """bfloat16 autocast on the CPU with --bf16, else nothing."""
    if args.bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prefix(args):
    return "torch_bf16" if args.bf16 else "torch"


def train(args):
    torch.manual_seed(0)
    b, ng, nl = args.batch, 2, 6
    student = Model(BENCH)
    teacher = Model(BENCH)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    opt = torch.optim.AdamW(param_groups(student), lr=1e-4, weight_decay=0.04)
    center = torch.zeros(1, BENCH["head_out"])
    glob = torch.randn(ng * b, 3, 64, 64)
    loc = torch.randn(nl * b, 3, 32, 32)
    times = []
    for step in range(-1, args.steps):
        t0 = time.perf_counter()
        with autocast(args):
            with torch.no_grad():
                _, t_logits = teacher([glob])
            _, s_logits = student([glob, loc])
            loss = dino_loss(s_logits.float(), t_logits.float(), center, ng, ng + nl, 0.1, 0.04)
        t_logits = t_logits.float()
        opt.zero_grad()
        loss.backward()
        clip_gradients(student, 3.0)
        opt.step()
        with torch.no_grad():
            center = center * 0.9 + t_logits.mean(dim=0, keepdim=True) * 0.1
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.data.mul_(0.996).add_((1 - 0.996) * ps.detach().data)
        dt = time.perf_counter() - t0
        if step >= 0:
            times.append(dt)
        print(f"step {step}: {dt:.3f} s, loss {loss.item():.4f}", flush=True)
    med = statistics.median(times)
    tag = prefix(args)
    print(f"{tag}_step_seconds: {med:.4f}")
    print(f"{tag}_peak_rss_mib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print(f"{tag}_images_per_s: {b / med:.3f}")


def embed(args):
    torch.manual_seed(0)
    model = Model(BENCH).backbone.eval()
    for b in (1, 32):
        x = torch.randn(b, 3, 64, 64)
        times = []
        with torch.inference_mode(), autocast(args):
            for i in range(-2, args.iters if b == 1 else max(3, args.iters // 8)):
                t0 = time.perf_counter()
                model(x)
                if i >= 0:
                    times.append(time.perf_counter() - t0)
        print(f"{prefix(args)}_embed_b{b}_images_per_s: {b / statistics.median(times):.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "embed"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    train(args) if args.mode == "train" else embed(args)


if __name__ == "__main__":
    main()
