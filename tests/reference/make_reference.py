"""make_reference.py — writes tests/reference/vit_step.safetensors: two DINO training steps of a
small inspectd model computed by PyTorch, for tests/unit/test_vit_reference.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_reference.py
The output is committed; CI does not need torch. The run is deterministic (fixed seed, CPU, float32):
running it again rewrites the same bytes. Tensor names: tests/reference/README.md."""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from torchvit import Model, clip_gradients, dino_loss, param_groups  # noqa: E402

CFG = dict(dim=48, depth=2, heads=3, mlp_ratio=4, patch=4, img_size=16, in_chans=3,
           head_hidden=64, head_bottleneck=32, head_out=64)
# eps is 1e-3, not DINO's 1e-8: with a tiny eps AdamW's first step moves every weight by ±lr
# whatever the scale of its gradient, so clipping (and where eps enters the update) would leave no
# trace in the updated weights. With 1e-3 every clipped tensor's update differs from the unclipped
# one by about 1e-3 of the weights or more.
STEP = dict(batch=2, n_global=2, n_local=2, local_size=12, tau_s=0.1, tau_t=0.04,
            center_momentum=0.9, lr=0.01, weight_decay=0.04, ema_momentum=0.9,
            beta1=0.9, beta2=0.999, eps=1e-3)
# The second step sees new crops and the schedules' next values; AdamW carries its moments over
# (step 2 of the bias correction).
STEP2 = dict(lr=0.02, weight_decay=0.1, tau_t=0.05, ema_momentum=0.95)


def save_safetensors(path, tensors, metadata):
    """The few lines a user needs to export any state dict for inspectd."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def trainable(model):
    out = {}
    for name, p in model.backbone.named_parameters():
        out[name] = p
    for name, p in model.head.named_parameters():
        out["head." + name] = p
    return {k: v for k, v in out.items() if v.requires_grad}


def forward_backward(student, teacher, opt, center, glob, loc, tau_t):
    """DINO's train_one_epoch up to loss.backward(): teacher on the globals, student on all crops
    (one backbone pass per resolution, the head once), the loss. Returns the tensors to record."""
    ng, nl = STEP["n_global"], STEP["n_local"]
    with torch.no_grad():
        _, t_logits = teacher([glob])
    (e_g, e_l), s_logits = student([glob, loc])
    s_logits.retain_grad()
    loss = dino_loss(s_logits, t_logits, center, ng, ng + nl, STEP["tau_s"], tau_t)
    opt.zero_grad()
    loss.backward()
    return dict(e_g=e_g, e_l=e_l, s_logits=s_logits, t_logits=t_logits, loss=loss,
                grads={k: p.grad.clone() for k, p in trainable(student).items()})


def update(student, teacher, opt, center, t_logits, clip, hp):
    """DINO's step after backward: clip, AdamW with this step's lr and weight decay (the
    regularised group is the first), EMA teacher, centre. Returns the new centre."""
    for i, group in enumerate(opt.param_groups):
        group["lr"] = hp["lr"]
        if i == 0:
            group["weight_decay"] = hp["weight_decay"]
    clip_gradients(student, clip)
    opt.step()
    m = hp["ema_momentum"]
    with torch.no_grad():
        for pt, ps in zip(teacher.parameters(), student.parameters()):
            pt.data.mul_(m).add_((1 - m) * ps.detach().data)
        cm = STEP["center_momentum"]
        return center * cm + t_logits.mean(dim=0, keepdim=True) * (1 - cm)


def perturb(model):
    """Moves every parameter off the special values DINO's init leaves (zero biases, unit
    LayerNorm scales, unit weight_g), where a forward that skipped it would still match."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g") or (name.endswith(".weight") and p.ndim == 1):
                p.mul_(1 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.add_(0.05 * torch.randn_like(p))


def clipped_count(grads, clip):
    return sum(g.norm().item() > clip for g in grads.values())


def crops(batch):
    ng, nl, c = STEP["n_global"], STEP["n_local"], CFG["in_chans"]
    glob = torch.randn(ng * batch, c, CFG["img_size"], CFG["img_size"])
    loc = torch.randn(nl * batch, c, STEP["local_size"], STEP["local_size"])
    return glob, loc


def main():
    torch.manual_seed(0)
    student = Model(CFG)
    perturb(student)
    teacher = Model(CFG)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    out = {}
    for k, v in student.named_tensors().items():
        out["param." + k] = v.clone()
    glob, loc = crops(STEP["batch"])
    center = torch.randn(1, CFG["head_out"]) * 0.1
    out["input.global"], out["input.local"], out["center"] = glob, loc, center.clone()
    opt = torch.optim.AdamW(param_groups(student), lr=STEP["lr"],
                            weight_decay=STEP["weight_decay"],
                            betas=(STEP["beta1"], STEP["beta2"]), eps=STEP["eps"])

    r = forward_backward(student, teacher, opt, center, glob, loc, STEP["tau_t"])
    with torch.no_grad():
        patch = student.backbone.tokens(glob)[:, 1:]
    out.update({"student.embed.global": r["e_g"], "student.embed.local": r["e_l"],
                "student.patch.global": patch, "student.logits": r["s_logits"],
                "teacher.logits": r["t_logits"], "loss": r["loss"].reshape(1),
                "dlogits.student": r["s_logits"].grad})
    for k, g in r["grads"].items():
        out["grad." + k] = g
    norms = sorted(g.norm().item() for g in r["grads"].values())
    clip = norms[len(norms) // 2]  # about half of the tensors get clipped
    center = update(student, teacher, opt, center, r["t_logits"], clip, STEP)
    out["center.updated"] = center
    for k, v in student.named_tensors().items():
        out["updated." + k] = v.clone()
    for k, v in teacher.named_tensors().items():
        out["teacher.updated." + k] = v.clone()
    loss1, clipped1 = r["loss"].item(), clipped_count(r["grads"], clip)

    glob, loc = crops(STEP["batch"])
    out["step2.input.global"], out["step2.input.local"] = glob, loc
    r = forward_backward(student, teacher, opt, center, glob, loc, STEP2["tau_t"])
    out["step2.teacher.logits"], out["step2.loss"] = r["t_logits"], r["loss"].reshape(1)
    center = update(student, teacher, opt, center, r["t_logits"], clip, STEP2)
    out["step2.center.updated"] = center
    for k, v in student.named_tensors().items():
        out["step2.updated." + k] = v.clone()

    meta = {"format": "inspectd-reference", "version": "1",
            "config": json.dumps(dict(CFG, **STEP, clip=clip, step2=STEP2)),
            "torch": torch.__version__}
    path = os.path.join(HERE, "vit_step.safetensors")
    save_safetensors(path, out, meta)
    print(f"wrote {path}: {len(out)} tensors; clip {clip:.4f}; "
          f"step 1 loss {loss1:.6f}, {clipped1} of {len(norms)} tensors clipped; "
          f"step 2 loss {r['loss'].item():.6f}, {clipped_count(r['grads'], clip)} clipped")


if __name__ == "__main__":
    main()
