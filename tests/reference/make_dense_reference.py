"""make_dense_reference.py — writes tests/reference/dense_loss.safetensors: the masked-patch
distillation loss (1 − cosine similarity between the student's and the teacher's tokens, summed
over the masked patches; class-token rows and unmasked patches are not read) and its gradient in
the student's tokens, computed by PyTorch, for tests/unit/test_dino.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_dense_reference.py
The output is committed; CI does not need torch. Deterministic (fixed seed, CPU, float32)."""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import save_safetensors  # noqa: E402

N, T, D = 3, 10, 16  # 3 images, a class token and 9 patches each


def main():
    g = torch.Generator().manual_seed(11)
    s = torch.randn(N, T, D, generator=g).requires_grad_()
    t = torch.randn(N, T, D, generator=g)
    mask = (torch.rand(N, T - 1, generator=g) < 0.4).to(torch.float32)
    mask[0, 0] = 1.0  # at least one masked patch
    cos = torch.nn.functional.cosine_similarity(s[:, 1:], t[:, 1:], dim=-1, eps=1e-12)
    loss = ((1.0 - cos) * mask).sum()
    loss.backward()
    tensors = {"student": s, "teacher": t, "mask": mask, "loss": loss.reshape(1), "dstudent": s.grad}
    save_safetensors(os.path.join(HERE, "dense_loss.safetensors"), tensors,
                     {"format": "inspectd-reference", "version": "1", "torch": torch.__version__})


if __name__ == "__main__":
    main()
