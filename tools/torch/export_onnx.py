"""export_onnx.py — an inspectd checkpoint's scoring backbone as an ONNX model, for other runtimes
(OpenCV's dnn, ONNX Runtime, TensorRT, OpenVINO): the teacher up to the scoring readout's patch
tokens, the output of block L (default the daemon's scoring block, (depth + 1) // 2) before any
norm, class token left out.

    /usr/bin/python3 tools/torch/export_onnx.py --checkpoint FILE --out M.onnx [--bank BANK]
        [--layer L] [--opset 13]

Graph: input "input" (B, C, S, S) float32, already normalised ((x − mean) / std per channel, the
model's values, written into the graph's metadata as "mean" and "std"), output "tokens"
(B, gh·gw, D); B is dynamic (ONNX Runtime and the like take any batch; OpenCV 4.6's dnn, whose
layers cannot broadcast over the batch here, runs it one image at a time). The graph uses only
operators that OpenCV 4.6's dnn module runs:
shapes are constants (the batch is the one -1 of every Reshape), the class token joins the patch
tokens through a Slice of them times zero plus the constant, LayerNorm is ReduceMean / Sub / Mul
/ Sqrt / Div with its scale and shift folded into the linear layer after it, every linear layer a
2-D MatMul plus bias between Reshapes, the attention's 1/√d scale folded into the query weights,
and GELU is the exact erf form 0.5·x·(1 + erf(x/√2)), with erf written out in
elementary operators (Abs, Exp, Mul, Add, Div, Sign) by Abramowitz and Stegun's 7.1.26 formula
(|error| <= 1.5e-7, about float32's resolution near 1: the erf GELU to float precision, never the
tanh approximation), since OpenCV 4.6 has no Erf layer. --native-erf keeps ONNX's Erf operator instead (ONNX Runtime has it).

With --bank (a model's FILE.bank.safetensors) the bank, its threshold and its readout are
written beside the model as M.bank.safetensors (tensors "bank" (rows, D) and, when the model has
the aligned readout, "grid_bank", "grid_mean", "grid_scale"; metadata threshold, layer, readout,
top_q and the rest of the bank's), so another runtime can score as the daemon does: a frame's
score is the largest distance of its patch tokens to their nearest bank row (see README,
"Outgrowing one machine")."""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inspectd_model as im  # noqa: E402


def erf(x):
    """erf from elementary operators: Abramowitz and Stegun 7.1.26, |error| <= 1.5e-7."""
    s = torch.sign(x)
    a = torch.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t +
               0.254829592) * t * torch.exp(-a * a)
    return s * y


def gelu(x, native):
    return 0.5 * x * (1.0 + (torch.erf(x * (1 / math.sqrt(2))) if native
                             else erf(x * (1 / math.sqrt(2)))))


def normalize(x, eps):
    """LayerNorm without its affine part (folded into the linear layer that follows)."""
    d = x - x.mean(dim=-1, keepdim=True)
    return d / torch.sqrt((d * d).mean(dim=-1, keepdim=True) + eps)


def folded(linear, ln):
    """linear(ln(x)) = W·(n·γ + β) + b = (W·diag γ)·n + (W·β + b): the weights and bias of the
    linear layer that reads a LayerNorm's normalised input n directly."""
    w, b = linear.weight.detach(), linear.bias.detach()
    return w * ln.weight.detach(), w @ ln.bias.detach() + b


class Tokens(nn.Module):
    """The backbone to block `layer`, every shape a constant but the batch, and every bias added
    to a 2-D product (OpenCV 4.6 turns MatMul + Add into its InnerProduct layer there, and cannot
    broadcast an Add of a constant over 3-D tokens)."""

    def __init__(self, vit, cfg, layer, native_erf):
        super().__init__()
        self.vit, self.layer, self.native = vit, layer, native_erf
        self.dim, self.heads = cfg["dim"], cfg["heads"]
        self.n = (cfg["img_size"] // cfg["patch"]) ** 2
        self.w = []
        for blk in vit.blocks[:layer]:
            qkv, fc1 = folded(blk.attn.qkv, blk.norm1), folded(blk.mlp.fc1, blk.norm2)
            # the attention scale folded into q's rows (OpenCV 4.6 drops a Mul after a 4-D MatMul)
            q_rows = torch.ones(qkv[0].shape[0], 1)
            q_rows[:self.dim] = blk.attn.scale
            qkv = (qkv[0] * q_rows, qkv[1] * q_rows[:, 0])
            proj = (blk.attn.proj.weight.detach(), blk.attn.proj.bias.detach())
            fc2 = (blk.mlp.fc2.weight.detach(), blk.mlp.fc2.bias.detach())
            self.w.append((qkv, proj, fc1, fc2, blk.norm1.eps, blk.norm2.eps))

    def linear(self, x, wb):
        w, b = wb
        y = torch.matmul(x.reshape(-1, w.shape[1]), w.t()) + b
        return y.reshape(-1, self.n + 1, w.shape[0])

    def attention(self, x, qkv_wb, proj_wb):
        t, c, h = self.n + 1, self.dim, self.heads
        w, b = qkv_wb
        qkv = torch.matmul(x.reshape(-1, c), w.t()) + b  # (B·T, 3C)

        def heads(i):  # (B, H, T, C/H), 4-D at most: OpenCV 4.6 cannot batch a 5-D permute
            return qkv[:, i * c:(i + 1) * c].reshape(-1, t, h, c // h).permute(0, 2, 1, 3)
        a = torch.softmax(torch.matmul(heads(0), heads(1).transpose(-2, -1)), dim=-1)
        return self.linear(torch.matmul(a, heads(2)).permute(0, 2, 1, 3).reshape(-1, t, c),
                           proj_wb)

    def block(self, x, w):
        qkv, proj, fc1, fc2, eps1, eps2 = w
        x = x + self.attention(normalize(x, eps1), qkv, proj)
        return x + self.linear(gelu(self.linear(normalize(x, eps2), fc1), self.native), fc2)

    def forward(self, x):
        p = self.vit.patch_embed.proj(x).reshape(-1, self.dim, self.n).transpose(1, 2)
        d, t_n = self.dim, self.n + 1
        cls = (p[:, :1, :].reshape(-1, d) * 0.0 + self.vit.cls_token.reshape(d)).reshape(-1, 1, d)
        t = torch.cat([cls, p], dim=1).reshape(-1, t_n * d) + self.vit.pos_embed.reshape(t_n * d)
        t = t.reshape(-1, t_n, d)
        for w in self.w:
            t = self.block(t, w)
        return t[:, 1:, :]


def write_bank(bank_path, out, layer):
    tensors, meta = im.load_safetensors(bank_path)
    if "bank" not in tensors:
        raise SystemExit("export_onnx.py: %s has no bank tensor" % bank_path)
    if meta.get("layer") and int(meta["layer"]) != layer:
        raise SystemExit("export_onnx.py: the bank holds tokens of block %s, the graph block %d: "
                         "give --layer %s" % (meta["layer"], layer, meta["layer"]))
    keep = {k: v for k, v in tensors.items()
            if k in ("bank", "grid_bank", "grid_mean", "grid_scale", "calibration")}
    im.save_safetensors(out, keep, dict(meta, source=os.path.abspath(bank_path)))
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bank", help="the model's .bank.safetensors: written beside the graph")
    ap.add_argument("--layer", type=int, help="block whose output is exported (default: the "
                    "scoring block)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--native-erf", action="store_true",
                    help="ONNX's Erf operator for GELU (not run by OpenCV 4.6)")
    args = ap.parse_args()
    if args.opset < 13:
        raise SystemExit("export_onnx.py: --opset must be 13 or more")
    model, cfg, (mean, std), meta = im.load_checkpoint(args.checkpoint)
    layer = im.scoring_layer(cfg) if args.layer is None else args.layer
    if not 0 <= layer <= cfg["depth"]:
        raise SystemExit("export_onnx.py: --layer must be 0 to %d" % cfg["depth"])
    net = Tokens(model.backbone.eval(), cfg, layer, args.native_erf).eval()
    x = torch.zeros(2, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    with torch.no_grad():
        torch.onnx.export(net, x, args.out, input_names=["input"], output_names=["tokens"],
                          dynamic_axes={"input": {0: "batch"}, "tokens": {0: "batch"}},
                          opset_version=args.opset, do_constant_folding=True)
    import onnx  # noqa: E402 (Debian's python3-onnx)
    g = onnx.load(args.out)
    for k, v in (("mean", json.dumps(mean)), ("std", json.dumps(std)), ("layer", str(layer)),
                 ("model", meta.get("model", "")), ("checkpoint", os.path.abspath(args.checkpoint))):
        g.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(g)
    onnx.save(g, args.out)
    print("wrote %s: block %d patch tokens (batch, %d, %d), opset %d, %s GELU" %
          (args.out, layer, (cfg["img_size"] // cfg["patch"]) ** 2, cfg["dim"], args.opset,
           "Erf" if args.native_erf else "elementary-erf"))
    if args.bank:
        out = os.path.splitext(args.out)[0] + ".bank.safetensors"
        bmeta = write_bank(args.bank, out, layer)
        print("wrote %s: threshold %s" % (out, bmeta.get("threshold")))


if __name__ == "__main__":
    main()
