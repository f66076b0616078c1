"""inspectd_model.py — the one PyTorch copy of inspectd's model and DINO step: the ViT and DINO head
of core/vit.c (same tensor names, shapes and initialisation), the loss, parameter groups, gradient
clipping, schedules and update of core/dino_step.c and core/train.c, the defaults of `inspectd
train`, the scoring readout's patch tokens (core/embedding.c's layer taps), and .safetensors
checkpoints in the form `inspectd train` writes. tools/torch/train.py trains with it under torchrun;
tests/reference/make_reference.py writes the reference vectors from it; tests/bench/torch_dino_step.py
is the benchmark peer. Debian's python3-torch (run with /usr/bin/python3)."""
import json
import math
import struct

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim, depth, heads, mlp_ratio):
        super().__init__()
        self.patch = patch
        n = (img_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def pos_for(self, h, w):
        n = self.pos_embed.shape[1] - 1
        gh, gw = h // self.patch, w // self.patch
        if gh * gw == n and gh == gw:
            return self.pos_embed
        side = int(math.sqrt(n))
        grid = self.pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
                             mode="bicubic")
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def tokens(self, x):
        b, _, h, w = x.shape
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.pos_for(h, w)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        return self.tokens(x)[:, 0]


class DINOHead(nn.Module):
    def __init__(self, dim, out, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class Model(nn.Module):
    """Backbone parameters unprefixed, head under `head.`, as in inspectd checkpoints."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = ViT(cfg["img_size"], cfg["patch"], cfg["in_chans"], cfg["dim"],
                            cfg["depth"], cfg["heads"], cfg["mlp_ratio"])
        self.head = DINOHead(cfg["dim"], cfg["head_out"], cfg["head_hidden"],
                             cfg["head_bottleneck"])

    def named_tensors(self):
        out = {}
        for k, v in self.backbone.state_dict().items():
            out[k] = v
        for k, v in self.head.state_dict().items():
            out["head." + k] = v
        return out

    def forward(self, crops_by_size):
        """crops_by_size: list of (n*B, C, H, W) tensors, one per resolution. Like DINO's
        MultiCropWrapper: one backbone pass per resolution, then the head once on all the class
        tokens. Returns (list of (n*B, D) embeddings, (sum of n*B, K) logits in input order)."""
        embeds = [self.backbone(x) for x in crops_by_size]
        return embeds, self.head(torch.cat(embeds))


def dino_loss(student_logits, teacher_logits, center, n_teacher, n_student, tau_s, tau_t):
    s = (student_logits / tau_s).chunk(n_student)
    q = F.softmax((teacher_logits - center) / tau_t, dim=-1).detach().chunk(n_teacher)
    total, terms = 0.0, 0
    for i, qi in enumerate(q):
        for v in range(n_student):
            if v == i:
                continue
            total = total + torch.sum(-qi * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            terms += 1
    return total / terms


def param_groups(model):
    reg, noreg = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (noreg if name.endswith(".bias") or p.ndim == 1 else reg).append(p)
    return [{"params": reg}, {"params": noreg, "weight_decay": 0.0}]


def clip_gradients(model, clip):
    for p in model.parameters():
        if p.grad is not None:
            norm = p.grad.data.norm(2)
            coef = clip / (norm + 1e-6)
            if coef < 1:
                p.grad.data.mul_(coef)


# ---- the defaults of `inspectd train` (core/train.c train_defaults, daemon/train/train_cli.c) ----

def default_model(img_size=64, in_chans=3):
    """The model `inspectd train` makes with no model flags."""
    return dict(dim=128, depth=4, heads=4, mlp_ratio=4, patch=4, img_size=img_size,
                in_chans=in_chans, head_hidden=1024, head_bottleneck=256, head_out=4096)


def default_train(img_size=64, patch=4):
    """The training options `inspectd train` uses with none given (DINO, centring, no extra
    tasks): batch, crops and DINO's schedules (main_dino.py, with inspectd's short-budget values)."""
    local = img_size * 3 // 7 // patch * patch
    return dict(batch=64, n_global=2, n_local=6, global_size=img_size,
                local_size=max(local, patch), global_scale=(0.4, 1.0), local_scale=(0.05, 0.4),
                lr=1.6e-2, min_lr=1e-6, weight_decay=0.04, weight_decay_end=0.4,
                momentum_teacher=0.99, teacher_temp=0.04, warmup_teacher_temp=0.04,
                student_temp=0.1, center_momentum=0.9, clip=3.0, warmup_frac=0.1,
                teacher_temp_warmup_frac=0.3, freeze_last_layer_frac=0.01, epochs=100,
                beta1=0.9, beta2=0.999, eps=1e-8, seed=0)


# ---- schedules (core/dino.c dino_schedule_at, core/train.c step_params) ----

def linspace_at(a, b, i, n):
    return a + (b - a) * i / (n - 1) if n > 1 else a


def cosine(base, final, step, total, warmup):
    """DINO's cosine_scheduler at one step: a linear warm-up from 0, then cosine to final."""
    if step < warmup:
        return linspace_at(0.0, base, step, warmup)
    if step >= total:
        return final
    t = (step - warmup) / (total - warmup)
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * t))


def schedule_at(o, step, total):
    """This step's lr, weight decay, teacher momentum and temperature, and whether the last layer
    is frozen, for a run from scratch planned over total steps (o: default_train's keys)."""
    warm = min(int(o["warmup_frac"] * total), total)
    t_warm = int(o["teacher_temp_warmup_frac"] * total)
    return dict(lr=cosine(o["lr"] * o["batch"] / 256.0, o["min_lr"], step, total, warm),
                weight_decay=cosine(o["weight_decay"], o["weight_decay_end"], step, total, 0),
                ema_momentum=cosine(o["momentum_teacher"], 1.0, step, total, 0),
                tau_t=(linspace_at(o["warmup_teacher_temp"], o["teacher_temp"], step, t_warm)
                       if step < t_warm else o["teacher_temp"]),
                freeze_last_layer=step < int(o["freeze_last_layer_frac"] * total))


# ---- one DINO step (core/dino_step.c) ----

def forward_loss(student, teacher, glob, loc, center, n_global, n_local, tau_s, tau_t):
    """DINO's train_one_epoch up to the loss: the teacher on the global crops, the student on all
    crops (one backbone pass per resolution, the head once). student may be wrapped in
    DistributedDataParallel. Returns (loss, student embeddings, student logits, teacher logits)."""
    with torch.no_grad():
        _, t_logits = teacher([glob])
    embeds, s_logits = student([glob, loc] if n_local else [glob])
    loss = dino_loss(s_logits, t_logits, center, n_global, n_global + n_local, tau_s, tau_t)
    return loss, embeds, s_logits, t_logits


def set_hyper(opt, lr, weight_decay):
    """This step's lr on every group, weight decay on the regularised one (the first)."""
    for i, group in enumerate(opt.param_groups):
        group["lr"] = lr
        if i == 0:
            group["weight_decay"] = weight_decay


def update(student, teacher, opt, center, t_logits, clip, lr, weight_decay, ema_momentum,
           center_momentum, freeze_last_layer=False, all_reduce=None):
    """DINO's step after backward: clip per tensor, the last layer's gradient dropped while it is
    frozen, AdamW, the EMA teacher, the centre (the mean teacher output over every process when
    all_reduce sums a tensor across them). student is the bare Model. Returns the new centre."""
    set_hyper(opt, lr, weight_decay)
    if clip > 0:
        clip_gradients(student, clip)
    if freeze_last_layer:  # as core/adamw.c: a zero gradient (weight decay and moments go on)
        for name, p in student.named_parameters():
            if "last_layer" in name and p.grad is not None:
                p.grad.zero_()
    opt.step()
    with torch.no_grad():
        for pt, ps in zip(teacher.parameters(), student.parameters()):
            pt.data.mul_(ema_momentum).add_((1 - ema_momentum) * ps.detach().data)
        if all_reduce is None:
            batch_mean = t_logits.mean(dim=0, keepdim=True)
        else:
            batch_sum = t_logits.sum(dim=0, keepdim=True)
            rows = torch.tensor([float(t_logits.shape[0])])
            all_reduce(batch_sum)
            all_reduce(rows)
            batch_mean = batch_sum / rows
        return center * center_momentum + batch_mean * (1 - center_momentum)


def make_pair(cfg, seed=0):
    """A student with DINO's init and its teacher (a frozen copy)."""
    torch.manual_seed(seed)
    student = Model(cfg)
    teacher = Model(cfg)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    return student, teacher


def make_optimizer(student, lr, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
    return torch.optim.AdamW(param_groups(student), lr=lr, weight_decay=weight_decay,
                             betas=(beta1, beta2), eps=eps)


# ---- the scoring readout (core/embedding.c, daemon/scoring/model.c) ----

def scoring_layer(cfg):
    """The block whose output tokens the daemon scores: the middle one, (depth + 1) // 2."""
    return (cfg["depth"] + 1) // 2


def patch_tokens(vit, x, layer):
    """The patch tokens (B, N, D) of block `layer`'s output (0: the patch embeddings with
    positions), as they are in the residual stream, before any norm: what the daemon banks."""
    b, _, h, w = x.shape
    t = vit.patch_embed(x)
    t = torch.cat([vit.cls_token.expand(b, -1, -1), t], dim=1) + vit.pos_for(h, w)
    for blk in vit.blocks[:layer]:
        t = blk(t)
    return t[:, 1:]


# ---- .safetensors (core/safetensors.c) ----

def save_safetensors(path, tensors, metadata, sort=True):
    """F32 tensors (names sorted unless sort is False), metadata strings, the header padded to 8
    bytes. Written to path + ".tmp", then renamed."""
    import os
    header, blobs, offset = {}, [], 0
    for name in (sorted(tensors) if sort else list(tensors)):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def load_safetensors(path):
    """(tensors by name, metadata) of an F32 .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base, out = 8 + n, {}
    for name, h in header.items():
        if h["dtype"] != "F32":
            raise ValueError("%s: tensor %s is %s, not F32" % (path, name, h["dtype"]))
        a, b = h["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def model_json(cfg, mean, std):
    """The "model" metadata of an inspectd checkpoint: the config and input normalisation, keys
    sorted and compact as cmd_train.c writes them."""
    d = {k: cfg[k] for k in ("dim", "depth", "heads", "mlp_ratio", "patch", "img_size",
                             "in_chans", "head_hidden", "head_bottleneck", "head_out")}
    d["mean"] = [float(v) for v in mean]
    d["std"] = [float(v) for v in std]
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def load_checkpoint(path, prefix="teacher."):
    """A Model with the weights of an inspectd checkpoint (its teacher, or a plain export with
    prefix ""), its config and (mean, std). The config comes from the "model" metadata."""
    tensors, meta = load_safetensors(path)
    if "model" not in meta:
        raise ValueError("%s: no model metadata (not an inspectd checkpoint)" % path)
    m = json.loads(meta["model"])
    cfg = {k: m[k] for k in ("dim", "depth", "heads", "mlp_ratio", "patch", "img_size",
                             "in_chans", "head_hidden", "head_bottleneck", "head_out")}
    if not any(k.startswith(prefix) for k in tensors):
        prefix = ""
    model = Model(cfg)
    own = model.named_tensors()
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError("%s: missing tensors %s" % (path, ", ".join(missing[:4])))
    with torch.no_grad():
        model.backbone.load_state_dict({k: state[k] for k in model.backbone.state_dict()})
        model.head.load_state_dict({k: state["head." + k] for k in model.head.state_dict()})
    return model, cfg, (m["mean"], m["std"]), meta
