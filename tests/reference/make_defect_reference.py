"""make_defect_reference.py — writes tests/reference/defect_loss.safetensors: the synthetic-defect
loss (a linear head on patch tokens, weighted binary cross-entropy with logits summed over the
patches; class-token rows are not read) and its gradients in the tokens, the weight and the bias,
computed by PyTorch, for tests/unit/test_dino.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_defect_reference.py
The output is committed; CI does not need torch. Deterministic (fixed seed, CPU, float32)."""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import save_safetensors  # noqa: E402

N, T, D = 3, 10, 16  # 3 images, a class token and 9 patches each


def main():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(N, T, D, generator=g).requires_grad_()
    w = (0.3 * torch.randn(1, D, generator=g)).requires_grad_()
    b = (0.3 * torch.randn(1, generator=g)).requires_grad_()
    target = (torch.rand(N, T - 1, generator=g) < 0.3).to(torch.float32)
    pw = torch.rand(N, T - 1, generator=g)
    pw[0, 2] = 0.0  # a patch the loss ignores
    pw = pw / pw.sum()
    z = (x[:, 1:] @ w.t()).squeeze(-1) + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target, weight=pw,
                                                                reduction="sum")
    loss.backward()
    tensors = {"x": x, "weight": w, "bias": b, "target": target, "pw": pw,
               "loss": loss.reshape(1), "dx": x.grad, "dweight": w.grad, "dbias": b.grad}
    save_safetensors(os.path.join(HERE, "defect_loss.safetensors"), tensors,
                     {"format": "inspectd-reference", "version": "1", "torch": torch.__version__})


if __name__ == "__main__":
    main()
