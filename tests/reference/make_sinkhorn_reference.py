"""make_sinkhorn_reference.py — writes tests/reference/sinkhorn_loss.safetensors: DINO's loss with
Sinkhorn-Knopp teacher targets (DINOv2's sinkhorn_knopp_teacher: exp(t / tau), then rounds of
normalising each prototype's share of the batch and each row) for 2 global teacher views and 4
student views, the targets, the loss and its gradient in the student logits, computed by
PyTorch, for tests/unit/test_dino.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_sinkhorn_reference.py
The output is committed; CI does not need torch. Deterministic (fixed seed, CPU, float32)."""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import save_safetensors  # noqa: E402

B, NT, NS, K = 3, 2, 4, 12
TAU_T, TAU_S, ITERS = 0.07, 0.1, 3


def sinkhorn(t, tau, iters):
    q = torch.exp(t / tau).t()  # K x rows
    rows, k = q.shape[1], q.shape[0]
    q = q / q.sum()
    for _ in range(iters):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / rows
    return (q * rows).t()


def main():
    g = torch.Generator().manual_seed(13)
    teacher = torch.randn(NT * B, K, generator=g) * 0.3
    student = torch.randn(NS * B, K, generator=g).requires_grad_()
    q = sinkhorn(teacher, TAU_T, ITERS)
    logp = torch.log_softmax(student / TAU_S, dim=-1)
    loss, pairs = 0.0, 0
    for i in range(NT):
        for v in range(NS):
            if v == i:
                continue
            loss = loss + torch.sum(-q[i * B:(i + 1) * B] * logp[v * B:(v + 1) * B], dim=-1).mean()
            pairs += 1
    loss = loss / pairs
    loss.backward()
    tensors = {"teacher": teacher, "student": student, "targets": q, "loss": loss.reshape(1),
               "dstudent": student.grad}
    save_safetensors(os.path.join(HERE, "sinkhorn_loss.safetensors"), tensors,
                     {"format": "inspectd-reference", "version": "1", "torch": torch.__version__})


if __name__ == "__main__":
    main()
