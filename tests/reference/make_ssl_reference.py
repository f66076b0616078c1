"""make_ssl_reference.py — writes tests/reference/ssl_loss.safetensors: the losses of the methods
beside DINO (BYOL's normalised MSE over the pairs of different crops, Barlow Twins' cross-correlation
loss on batch-standardised projections, SimCLR's NT-Xent), BYOL's predictor MLP, and the spread of
L2-normalised embeddings, with their gradients, computed by PyTorch for tests/unit/test_ssl.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_ssl_reference.py
The output is committed; CI does not need torch. Deterministic (fixed seed, CPU, float32)."""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import save_safetensors  # noqa: E402

# BYOL: B images, 2 global crops (the targets), 2 more student crops (local crops)
BYOL = {"B": 3, "n_teacher": 2, "n_student": 4, "K": 8}
BARLOW = {"B": 6, "K": 5, "lambda": 0.3}
SIMCLR = {"B": 4, "K": 6, "tau": 0.5}
PRED = {"N": 5, "K": 6, "H": 4}
SPREAD = {"n": 7, "K": 5}


def byol_loss(target, pred, B, nt, ns):
    K = target.shape[1]
    z = F.normalize(target.view(nt, B, K), dim=-1)
    p = F.normalize(pred.view(ns, B, K), dim=-1)
    total, pairs = 0.0, 0
    for i in range(ns):
        for j in range(nt):
            if i != j:
                total = total + (2 - 2 * (p[i] * z[j]).sum(-1)).mean()
                pairs += 1
    return total / pairs


def barlow_loss(z, B, lam):
    def bn(x):
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    c = bn(z[:B]).t() @ bn(z[B:]) / B
    diag = torch.diagonal(c)
    return (diag - 1).pow(2).sum() + lam * (c - torch.diag(diag)).pow(2).sum()


def simclr_loss(z, B, tau):
    u = F.normalize(z, dim=1)
    s = (u @ u.t() / tau).masked_fill(torch.eye(2 * B, dtype=torch.bool), float("-inf"))
    labels = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)])
    return F.cross_entropy(s, labels)


def main():
    g = torch.Generator().manual_seed(20)
    out = {}
    b = BYOL
    target = torch.randn(b["n_teacher"] * b["B"], b["K"], generator=g)
    pred = torch.randn(b["n_student"] * b["B"], b["K"], generator=g).requires_grad_()
    loss = byol_loss(target, pred, b["B"], b["n_teacher"], b["n_student"])
    loss.backward()
    out.update({"byol.target": target, "byol.pred": pred, "byol.loss": loss.reshape(1),
                "byol.dpred": pred.grad})

    z = (torch.randn(2 * BARLOW["B"], BARLOW["K"], generator=g) * 2 + 0.5).requires_grad_()
    loss = barlow_loss(z, BARLOW["B"], BARLOW["lambda"])
    loss.backward()
    out.update({"barlow.z": z, "barlow.loss": loss.reshape(1), "barlow.dz": z.grad})

    z = torch.randn(2 * SIMCLR["B"], SIMCLR["K"], generator=g).requires_grad_()
    loss = simclr_loss(z, SIMCLR["B"], SIMCLR["tau"])
    loss.backward()
    out.update({"simclr.z": z, "simclr.loss": loss.reshape(1), "simclr.dz": z.grad})

    N, K, H = PRED["N"], PRED["K"], PRED["H"]
    z = torch.randn(N, K, generator=g).requires_grad_()
    w1 = (0.5 * torch.randn(H, K, generator=g)).requires_grad_()
    b1 = (0.5 * torch.randn(H, generator=g)).requires_grad_()
    w2 = (0.5 * torch.randn(K, H, generator=g)).requires_grad_()
    b2 = (0.5 * torch.randn(K, generator=g)).requires_grad_()
    dp = torch.randn(N, K, generator=g)
    p = F.linear(F.gelu(F.linear(z, w1, b1)), w2, b2)
    (p * dp).sum().backward()
    out.update({"pred.z": z, "pred.w1": w1, "pred.b1": b1, "pred.w2": w2, "pred.b2": b2,
                "pred.dp": dp, "pred.p": p, "pred.dz": z.grad, "pred.dw1": w1.grad,
                "pred.db1": b1.grad, "pred.dw2": w2.grad, "pred.db2": b2.grad})

    z = torch.randn(SPREAD["n"], SPREAD["K"], generator=g)
    std = F.normalize(z, dim=1).std(0, unbiased=False).mean()
    out.update({"spread.z": z, "spread.std": std.reshape(1)})

    config = {"byol": BYOL, "barlow": BARLOW, "simclr": SIMCLR, "pred": PRED, "spread": SPREAD}
    save_safetensors(os.path.join(HERE, "ssl_loss.safetensors"), out,
                     {"format": "inspectd-reference", "version": "1", "torch": torch.__version__,
                      "config": json.dumps(config, sort_keys=True)})


if __name__ == "__main__":
    main()
