"""export_state_dict.py — writes the weights of a PyTorch checkpoint as a .safetensors file that
inspectd loads: an official DINO checkpoint (main_dino.py's checkpoint.pth, its "teacher" entry,
whose names are backbone.* and head.*, or "module."-prefixed when saved from DDP), a pretrained DINO
backbone (dino_deitsmall8_pretrain.pth, names as they are), or any state dict with DINO/timm names.
Only torch, json and struct.

    /usr/bin/python3 tools/torch/export_state_dict.py checkpoint.pth teacher.safetensors \
        --key teacher --strip module. --strip backbone.
    /usr/bin/python3 tools/torch/export_state_dict.py checkpoint.pth m.safetensors --model \
        [--heads H] [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225]
    /usr/bin/python3 tools/torch/export_state_dict.py --demo

With --model the file is a checkpoint `inspectd model import` registers as it is: the tensors
under "teacher." and the "model" metadata `inspectd train` writes, read off the shapes (width,
depth, patch, input size, head; heads default to width / 64, as in DINO's ViTs) with the input
normalisation given (ImageNet's by default, what DINO's backbones were trained with).
--key auto (the default with --model) takes "teacher" when the checkpoint has it.

--demo rewrites tests/reference/python_export.safetensors, which tests/unit/test_safetensors.c
loads: the teacher of a tiny model saved the way main_dino.py saves it, exported by this script.
Every weight holds a value the C test can recompute (see pattern())."""
import argparse
import json
import math
import os
import struct
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def export(state_dict, path, metadata=None):
    """The few lines: an 8-byte little-endian header length, the JSON header, the raw data (float32,
    little-endian, C order) in the state dict's own order. No padding."""
    header, blobs, offset = {}, [], 0
    for name, t in state_dict.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return len(raw)


def load_weights(checkpoint, key, strip):
    ckpt = torch.load(checkpoint, map_location="cpu")
    if key == "auto":
        key = "teacher" if isinstance(ckpt, dict) and "teacher" in ckpt else None
    sd = ckpt[key] if key else ckpt
    out = {}
    for name, t in sd.items():
        for prefix in strip:
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = t
    return out


# The demo model (tiny: the committed file stays a few kilobytes).
DEMO = dict(dim=8, depth=1, heads=2, mlp_ratio=2, patch=4, img_size=8, in_chans=1,
            head_hidden=12, head_bottleneck=6, head_out=10)


def pattern(name, numel):
    """Element i of tensor `name`: a name hash plus i/1024, exact in float32 (so swapped or
    misplaced tensors show)."""
    h = sum((j + 1) * ord(c) for j, c in enumerate(name)) % 1000
    return torch.tensor([h + i / 1024 for i in range(numel)], dtype=torch.float32)


def demo():
    from inspectd_model import Model  # noqa: E402
    model = Model(DEMO)
    teacher = {}  # what DINO's MultiCropWrapper state_dict holds: backbone.*, then head.*
    with torch.no_grad():
        for prefix, part in (("backbone.", model.backbone), ("head.", model.head)):
            for name, t in part.state_dict().items():
                full = name if prefix == "backbone." else prefix + name
                t.copy_(pattern(full, t.numel()).reshape(t.shape))
                teacher[prefix + name] = t
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "checkpoint.pth")
        torch.save({"teacher": teacher, "epoch": 1}, ckpt)
        weights = load_weights(ckpt, "teacher", ["backbone."])
    path = os.path.join(HERE, "..", "..", "tests", "reference", "python_export.safetensors")
    hlen = export(weights, path, {"config": json.dumps(DEMO), "source": "checkpoint.pth teacher"})
    # the C test relies on this file's data section being unaligned, as such exports often are
    assert (8 + hlen) % 4 != 0, "header length makes the data aligned; change the metadata"
    print(f"wrote {path}: {len(weights)} tensors, header {hlen} bytes")


def infer_config(weights, heads=None):
    """The model config of a state dict with DINO/timm names, from its shapes."""
    dim = weights["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("blocks."))
    w = weights["patch_embed.proj.weight"]
    patch, in_chans = w.shape[-1], w.shape[1]
    grid = int(round(math.sqrt(weights["pos_embed"].shape[1] - 1)))
    cfg = dict(dim=dim, depth=depth, heads=heads or max(1, dim // 64),
               mlp_ratio=weights["blocks.0.mlp.fc1.weight"].shape[0] // dim, patch=patch,
               img_size=grid * patch, in_chans=in_chans, head_hidden=0, head_bottleneck=0,
               head_out=0)
    if "head.last_layer.weight_v" in weights:
        cfg.update(head_hidden=weights["head.mlp.0.weight"].shape[0],
                   head_bottleneck=weights["head.mlp.4.weight"].shape[0],
                   head_out=weights["head.last_layer.weight_v"].shape[0])
    return cfg


def numbers(text, n):
    vals = [float(v) for v in text.split(",")]
    if len(vals) != n:
        raise SystemExit("export_state_dict.py: give %d comma-separated values, not %r" % (n, text))
    return vals


def export_model(weights, out, heads, mean, std):
    """weights as an inspectd checkpoint: "teacher." names, "model" metadata, sorted tensors."""
    sys.path.insert(0, HERE)
    from inspectd_model import model_json, save_safetensors  # noqa: E402
    cfg = infer_config(weights, heads)
    keep = {k: v for k, v in weights.items() if cfg["head_out"] > 0 or not k.startswith("head")}
    c = cfg["in_chans"]
    meta = {"format": "inspectd-checkpoint", "version": "1",
            "model": model_json(cfg, numbers(mean, c) if mean else [0.485, 0.456, 0.406][:c],
                                numbers(std, c) if std else [0.229, 0.224, 0.225][:c]),
            "source": "export_state_dict.py", "method": "dino"}
    save_safetensors(out, {"teacher." + k: v for k, v in keep.items()}, meta)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--key", help="entry of the checkpoint holding the state dict (teacher)")
    ap.add_argument("--strip", action="append", default=[],
                    help="name prefix to remove (module., backbone.); may repeat")
    ap.add_argument("--demo", action="store_true", help="rewrite python_export.safetensors")
    ap.add_argument("--model", action="store_true",
                    help="write an inspectd checkpoint (teacher. names, model metadata)")
    ap.add_argument("--heads", type=int, help="attention heads (default: width / 64)")
    ap.add_argument("--mean", help="input normalisation, one value per channel")
    ap.add_argument("--std", help="input normalisation, one value per channel")
    args = ap.parse_args()
    if args.demo:
        demo()
    elif args.checkpoint and args.out and args.model:
        weights = load_weights(args.checkpoint, args.key or "auto",
                               args.strip or ["module.", "backbone."])
        cfg = export_model(weights, args.out, args.heads, args.mean, args.std)
        print(f"wrote {args.out}: {len(weights)} tensors, model {json.dumps(cfg)}")
    elif args.checkpoint and args.out:
        weights = load_weights(args.checkpoint, args.key, args.strip)
        export(weights, args.out)
        print(f"wrote {args.out}: {len(weights)} tensors")
    else:
        ap.error("give CHECKPOINT OUT, or --demo")


if __name__ == "__main__":
    main()
