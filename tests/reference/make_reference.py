"""make_reference.py — writes tests/reference/vit_step.safetensors: one DINO training step of a
small inspectd model computed by PyTorch, for tests/unit/test_vit_reference.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_reference.py
The output is committed; CI does not need torch. Tensor names: see the file's README section in
tests/reference/README.md."""
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
STEP = dict(batch=2, n_global=2, n_local=2, local_size=12, tau_s=0.1, tau_t=0.04,
            center_momentum=0.9, lr=0.01, weight_decay=0.04, ema_momentum=0.9,
            beta1=0.9, beta2=0.999, eps=1e-8)


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


def main():
    torch.manual_seed(0)
    b, ng, nl = STEP["batch"], STEP["n_global"], STEP["n_local"]
    student = Model(CFG)
    teacher = Model(CFG)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    out = {}
    for k, v in student.named_tensors().items():
        out["param." + k] = v.clone()

    glob = torch.randn(ng * b, CFG["in_chans"], CFG["img_size"], CFG["img_size"])
    loc = torch.randn(nl * b, CFG["in_chans"], STEP["local_size"], STEP["local_size"])
    center = torch.randn(1, CFG["head_out"]) * 0.1
    out["input.global"], out["input.local"], out["center"] = glob, loc, center.clone()

    with torch.no_grad():
        _, (t_logits,) = teacher([glob])
    (e_g, e_l), (s_g, s_l) = student([glob, loc])
    s_logits = torch.cat([s_g, s_l])
    s_logits.retain_grad()
    loss = dino_loss(s_logits, t_logits, center, ng, ng + nl, STEP["tau_s"], STEP["tau_t"])
    loss.backward()
    with torch.no_grad():
        patch = student.backbone.tokens(glob)[:, 1:]
    out.update({"student.embed.global": e_g, "student.embed.local": e_l,
                "student.patch.global": patch, "student.logits": s_logits,
                "teacher.logits": t_logits, "loss": loss.reshape(1),
                "dlogits.student": s_logits.grad})
    params = trainable(student)
    norms = sorted(p.grad.norm().item() for p in params.values())
    clip = norms[len(norms) // 2]  # about half of the tensors get clipped
    for k, p in params.items():
        out["grad." + k] = p.grad.clone()
    clip_gradients(student, clip)
    opt = torch.optim.AdamW(param_groups(student), lr=STEP["lr"],
                            weight_decay=STEP["weight_decay"],
                            betas=(STEP["beta1"], STEP["beta2"]), eps=STEP["eps"])
    opt.step()
    m = STEP["ema_momentum"]
    with torch.no_grad():
        for pt, ps in zip(teacher.parameters(), student.parameters()):
            pt.data.mul_(m).add_((1 - m) * ps.detach().data)
        center = center * STEP["center_momentum"] + \
            t_logits.mean(dim=0, keepdim=True) * (1 - STEP["center_momentum"])
    out["center.updated"] = center
    for k, v in student.named_tensors().items():
        out["updated." + k] = v
    for k, v in teacher.named_tensors().items():
        out["teacher.updated." + k] = v
    meta = {"format": "inspectd-reference", "version": "1",
            "config": json.dumps(dict(CFG, **STEP, clip=clip)),
            "torch": torch.__version__}
    path = os.path.join(HERE, "vit_step.safetensors")
    save_safetensors(path, out, meta)
    print(f"wrote {path}: {len(out)} tensors, loss {loss.item():.6f}, clip {clip:.4f}")


if __name__ == "__main__":
    main()
