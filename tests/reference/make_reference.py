"""make_reference.py — writes tests/reference/vit_step.safetensors: two DINO training steps of a
small inspectd model computed by PyTorch, for tests/unit/test_vit_reference.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_reference.py
The output is committed; CI does not need torch. The run is deterministic (fixed seed, CPU, float32):
running it again rewrites the same bytes. Tensor names: tests/reference/README.md. The model and the
step are tools/torch's (inspectd_model.py: forward_loss, update), the ones tools/torch/train.py
trains with, so test_vit_reference comparing core/ with this file is the equivalence of the two
trainers' steps. --out FILE writes elsewhere (tests/integration/test_torch.py replays a fresh one)."""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "torch"))
import inspectd_model as im  # noqa: E402
from inspectd_model import Model, param_groups, save_safetensors  # noqa: E402

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


def trainable(model):
    out = {}
    for name, p in model.backbone.named_parameters():
        out[name] = p
    for name, p in model.head.named_parameters():
        out["head." + name] = p
    return {k: v for k, v in out.items() if v.requires_grad}


def forward_backward(student, teacher, opt, center, glob, loc, tau_t):
    """tools/torch's forward and loss, then loss.backward(). Returns the tensors to record."""
    loss, (e_g, e_l), s_logits, t_logits = im.forward_loss(
        student, teacher, glob, loc, center, STEP["n_global"], STEP["n_local"], STEP["tau_s"],
        tau_t)
    s_logits.retain_grad()
    opt.zero_grad()
    loss.backward()
    return dict(e_g=e_g, e_l=e_l, s_logits=s_logits, t_logits=t_logits, loss=loss,
                grads={k: p.grad.clone() for k, p in trainable(student).items()})


def update(student, teacher, opt, center, t_logits, clip, hp):
    """tools/torch's step after backward with this step's lr, weight decay and momentum."""
    return im.update(student, teacher, opt, center, t_logits, clip, hp["lr"], hp["weight_decay"],
                     hp["ema_momentum"], STEP["center_momentum"])


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
    out_path = os.path.join(HERE, "vit_step.safetensors")
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        out_path = sys.argv[2]
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
    path = out_path
    save_safetensors(path, out, meta)
    print(f"wrote {path}: {len(out)} tensors; clip {clip:.4f}; "
          f"step 1 loss {loss1:.6f}, {clipped1} of {len(norms)} tensors clipped; "
          f"step 2 loss {r['loss'].item():.6f}, {clipped_count(r['grads'], clip)} clipped")


if __name__ == "__main__":
    main()
