"""make_aux_reference.py — writes tests/reference/aux_loss.safetensors: the transformation-prediction
loss (cross-entropy of a linear head on class embeddings, mean over the rows) and its gradients in
the embeddings, the weight and the bias, computed by PyTorch, for tests/unit/test_dino.c.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_aux_reference.py
The output is committed; CI does not need torch. Deterministic (fixed seed, CPU, float32)."""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_reference import save_safetensors  # noqa: E402

N, D, A = 12, 16, 8


def main():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(N, D, generator=g).requires_grad_()
    w = (0.3 * torch.randn(A, D, generator=g)).requires_grad_()
    b = (0.3 * torch.randn(A, generator=g)).requires_grad_()
    target = torch.randint(0, A, (N,), generator=g)
    loss = torch.nn.functional.cross_entropy(x @ w.t() + b, target)
    loss.backward()
    tensors = {"x": x, "weight": w, "bias": b, "target": target.to(torch.float32),
               "loss": loss.reshape(1), "dx": x.grad, "dweight": w.grad, "dbias": b.grad}
    save_safetensors(os.path.join(HERE, "aux_loss.safetensors"), tensors,
                     {"format": "inspectd-reference", "version": "1", "torch": torch.__version__})


if __name__ == "__main__":
    main()
