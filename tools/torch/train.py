"""train.py — inspectd's DINO training on PyTorch's distributed engine, for a machine bigger than a
line computer (a GPU box, or many CPUs): the model, multi-crop augmentation, loss, schedules and
defaults of `inspectd train` (tools/torch/inspectd_model.py), data parallel over N processes with
DistributedDataParallel (NCCL when CUDA is present, gloo on CPUs), writing a checkpoint in the form
`inspectd train` writes (student, teacher, AdamW moments, DINO centre; the model config and input
normalisation in its metadata), so that `inspectd model import FILE` scores with it, `inspectd
train --init FILE` starts from it and `inspectd train --warm FILE` goes on from its state.

    torchrun --nproc_per_node=N tools/torch/train.py --data DIR --out FILE.safetensors \\
        [--steps N] [--minutes M] [--epochs E] [model and training options]
    /usr/bin/python3 -m torch.distributed.run --nproc_per_node=2 tools/torch/train.py ...
    /usr/bin/python3 tools/torch/train.py --data DIR --out FILE   (one process, no torchrun)

DIR is an MVTec AD category (`inspectd export --dataset DIR`): the images of DIR/train/good (or of
DIR itself when it has no train/good), shrunk to --size with an area filter, normalised by their
own per-channel mean and spread, as `inspectd train --images` reads a folder. --batch is the
global batch (each of the N processes takes batch / N images of it), so the learning rate and the
schedules are those of one `inspectd train` run of the same options. Differences from core/: the
crops (tools/torch/augment.py: the same kinds, probabilities and ranges) come from another random
stream, and the collapse guard of core/train.c is not ported."""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import augment  # noqa: E402
import inspectd_model as im  # noqa: E402

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm")


def log(rank, msg):
    if rank == 0:
        print("train.py: " + msg, file=sys.stderr, flush=True)


def load_images(data, size, channels):
    """(N, C, S, S) float32 in [0, 1]: the images of data/train/good (or data), sorted by name."""
    d = os.path.join(data, "train", "good")
    if not os.path.isdir(d):
        d = data
    names = sorted(n for n in os.listdir(d) if n.lower().endswith(IMAGE_EXT))
    out = []
    for n in names:
        with Image.open(os.path.join(d, n)) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BOX)
            a = np.asarray(img, dtype=np.float32) / 255.0
        out.append(a[None] if channels == 1 else a.transpose(2, 0, 1))
    if len(out) < 2:
        raise SystemExit("train.py: %s: %d usable images; need at least 2" % (d, len(out)))
    return torch.from_numpy(np.stack(out)), d


def image_stats(x):
    """Per-channel mean and standard deviation over every pixel (core/imageset.c)."""
    x = x.double()
    mean = x.mean(dim=(0, 2, 3))
    var = (x * x).mean(dim=(0, 2, 3)) - mean * mean
    std = torch.where(var > 1e-6, var.clamp(min=0).sqrt(), torch.full_like(var, 0.25))
    return mean.tolist(), std.tolist()


class Batches(torch.utils.data.IterableDataset):
    """This process's share of every batch, step after step, as crop stacks: the data order is the
    seed's (the same in every process), the crops come from the process's own random stream (one
    per DataLoader worker; worker w of W makes steps w, w + W, ..., which the loader hands out in
    turn, so the steps keep their order)."""

    def __init__(self, images, kinds, n_local, batch, share, rank, seed):
        self.images, self.kinds, self.n_local = images, kinds, n_local
        self.batch, self.share, self.rank, self.seed = batch, share, rank, seed
        self.n = images.shape[0]
        self.per_epoch = max(self.n, batch) // batch

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        torch.manual_seed(self.seed * 1000003 + self.rank + 1 + 64 * worker)
        step, epoch, perm = worker, -1, None
        while True:
            if step // self.per_epoch != epoch:
                epoch = step // self.per_epoch
                g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
                perm = torch.randperm(max(self.n, self.batch), generator=g) % self.n
            at = (step % self.per_epoch) * self.batch + self.rank * self.share
            yield augment.make_crops(self.images, perm[at:at + self.share].tolist(), self.kinds,
                                     self.n_local)
            step += workers


def options():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="an MVTec AD category (its train/good)")
    ap.add_argument("--out", required=True, help="the checkpoint to write (.safetensors)")
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (the schedules are "
                    "laid over them)")
    ap.add_argument("--minutes", type=float, default=0, help="time budget")
    ap.add_argument("--epochs", type=int, default=100, help="upper bound (default 100)")
    m, t = im.default_model(), im.default_train()
    for k in ("dim", "depth", "heads", "patch", "head_hidden", "head_bottleneck", "head_out"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=m[k])
    ap.add_argument("--size", type=int, default=64, help="image size the model sees")
    ap.add_argument("--channels", type=int, default=3, choices=(1, 3))
    ap.add_argument("--batch", type=int, default=t["batch"], help="global batch")
    ap.add_argument("--locals", type=int, default=t["n_local"])
    ap.add_argument("--lr", type=float, default=t["lr"], help="peak lr per 256 images")
    ap.add_argument("--momentum", type=float, default=t["momentum_teacher"])
    ap.add_argument("--teacher-temp", type=float, default=t["teacher_temp"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads per process (default: the CPUs / processes)")
    ap.add_argument("--workers", type=int, default=-1,
                    help="processes cutting crops ahead of each training process (default: 4 "
                    "with CUDA, where the CPU is otherwise idle; 0 on CPUs: crops are cut "
                    "between steps)")
    return ap.parse_args()


def setup(args):
    """(rank, world, device, all_reduce): torchrun's process group, or one plain process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else \
        torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    threads = args.threads or max(1, (os.cpu_count() or 1) // int(
        os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    torch.set_num_threads(threads)

    def all_reduce(x):
        if world > 1:
            dist.all_reduce(x)
    return rank, world, device, all_reduce


def plan_total(args, per_epoch, done, seconds, total, first=False):
    """The schedules' length: --steps; else the epoch bound; with --minutes as many steps as fit
    at the speed so far (after 5, 10 and 20 steps, then every 25), never beyond the epoch bound."""
    bound = per_epoch * args.epochs
    if args.steps:
        return args.steps
    if args.minutes <= 0:
        return bound
    if first:
        return min(bound, 1000)
    if done in (5, 10, 20) or done % 25 == 0:
        return max(done + 1, min(bound, int(args.minutes * 60.0 / (seconds / done))))
    return total


def checkpoint(args, cfg, o, student, teacher, opt, center, step, total, n, source, mean, std,
               seconds):
    """The state `inspectd train` writes (core/checkpoint.c checkpoint_save_training)."""
    out = {}
    state = {id(p): opt.state.get(p, {}) for p in student.parameters()}
    params = dict(student.backbone.named_parameters())
    params.update({"head." + k: v for k, v in student.head.named_parameters()})
    for k, v in student.named_tensors().items():
        out["student." + k] = v
        s = state.get(id(params[k]), {}) if k in params else {}
        out["adam_m." + k] = s.get("exp_avg", torch.zeros_like(v))
        out["adam_v." + k] = s.get("exp_avg_sq", torch.zeros_like(v))
    for k, v in teacher.named_tensors().items():
        out["teacher." + k] = v
    out["dino.center"] = center.reshape(-1)
    train = json.dumps({"method": "dino", "batch": o["batch"], "locals": o["n_local"],
                        "lr": o["lr"], "momentum": o["momentum_teacher"],
                        "teacher_temp": o["teacher_temp"], "koleo": 0, "seed": args.seed,
                        "epochs": args.epochs, "engine": "torch", "processes": o["world"]},
                       separators=(",", ":"))
    meta = {"format": "inspectd-checkpoint", "version": "1",
            "model": im.model_json(cfg, mean, std), "train": train, "total_steps": str(total),
            "images": str(n), "source": source, "seconds": "%.3f" % seconds, "run_first": "0",
            "start": "random", "method": "dino", "adam_step": str(step)}
    im.save_safetensors(args.out, {k: v.detach().cpu() for k, v in out.items()}, meta)


def main():
    args = options()
    rank, world, device, all_reduce = setup(args)
    if args.batch % world:
        raise SystemExit("train.py: --batch %d is not a multiple of the %d processes" %
                         (args.batch, world))
    cfg = dict(im.default_model(args.size, args.channels), dim=args.dim, depth=args.depth,
               heads=args.heads, patch=args.patch, head_hidden=args.head_hidden,
               head_bottleneck=args.head_bottleneck, head_out=args.head_out)
    o = dict(im.default_train(args.size, args.patch), batch=args.batch, n_local=args.locals,
             lr=args.lr, momentum_teacher=args.momentum, teacher_temp=args.teacher_temp,
             seed=args.seed, world=world)
    images, source = load_images(args.data, args.size, args.channels)
    n = images.shape[0]
    batch = min(args.batch, n - n % world) if n < args.batch else args.batch
    o["batch"] = batch
    mean, std = image_stats(images)
    log(rank, "%d images from %s at %dx%d, %d channel(s); %d process(es) on %s (%s), batch %d "
        "(%d each), %d torch threads each" % (n, source, args.size, args.size, args.channels,
                                              world, device.type, "nccl" if device.type == "cuda"
                                              else "gloo" if world > 1 else "no group", batch,
                                              batch // world, torch.get_num_threads()))
    student, teacher = im.make_pair(cfg, args.seed)
    student, teacher = student.to(device), teacher.to(device)
    opt = im.make_optimizer(student, 0.0, o["weight_decay"], o["beta1"], o["beta2"], o["eps"])
    ddp = torch.nn.parallel.DistributedDataParallel(student) if world > 1 else student
    center = torch.zeros(1, cfg["head_out"], device=device)
    tf = augment.crop_kinds(o, mean, std)
    per_epoch = max(n, batch) // batch
    total = plan_total(args, per_epoch, 0, 0, 0, first=True)
    share = batch // world
    workers = args.workers if args.workers >= 0 else (4 if device.type == "cuda" else 0)
    loader = iter(torch.utils.data.DataLoader(
        Batches(images, tf, o["n_local"], batch, share, rank, args.seed), batch_size=None,
        num_workers=workers))
    t0, step, loss = time.perf_counter(), 0, float("nan")
    while step < total:
        glob, loc = next(loader)
        glob = glob.to(device)
        loc = loc.to(device) if loc is not None else None
        hp = im.schedule_at(o, step, total)
        loss_t, _, _, t_logits = im.forward_loss(ddp, teacher, glob, loc, center, 2,
                                                 o["n_local"], o["student_temp"], hp["tau_t"])
        opt.zero_grad()
        loss_t.backward()
        center = im.update(student, teacher, opt, center, t_logits, o["clip"], hp["lr"],
                           hp["weight_decay"], hp["ema_momentum"], o["center_momentum"],
                           hp["freeze_last_layer"], all_reduce if world > 1 else None)
        step += 1
        seconds = time.perf_counter() - t0
        # every process takes rank 0's plan and stop, so all of them end at the same step
        plan = torch.tensor([float(plan_total(args, per_epoch, step, seconds, total)),
                             float(args.minutes > 0 and seconds + seconds / step >
                                   args.minutes * 60.0)])
        if world > 1:
            dist.broadcast(plan, 0)
        total = int(plan[0].item())
        loss = loss_t.item()
        if rank == 0 and (step == 1 or step == total or step % 10 == 0):
            log(rank, "step %d/%d loss %.4f lr %.2e %.1f img/s" %
                (step, total, loss, hp["lr"], step * batch / seconds))
        if plan[1].item():
            break
    del loader  # its workers end
    seconds = time.perf_counter() - t0
    if rank == 0:
        checkpoint(args, cfg, o, student, teacher, opt, center, step, total, n, source, mean,
                   std, seconds)
        print("torch_images_per_s: %.3f" % (step * batch / seconds))
        print("steps: %d, seconds: %.1f, processes: %d, final loss %.4f -> %s" %
              (step, seconds, world, loss, args.out))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
