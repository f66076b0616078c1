"""export_state_dict.py — writes the weights of a PyTorch checkpoint as a .safetensors file that
inspectd loads: an official DINO checkpoint (main_dino.py's checkpoint.pth, its "teacher" entry,
whose names are backbone.* and head.*), a pretrained DINO backbone (dino_deitsmall8_pretrain.pth,
names as they are), or any state dict with DINO/timm names. Only torch, json and struct.

    /usr/bin/python3 export_state_dict.py checkpoint.pth teacher.safetensors --key teacher \
        --strip backbone.
    /usr/bin/python3 export_state_dict.py --demo

--demo rewrites tests/reference/python_export.safetensors, which tests/unit/test_safetensors.c
loads: the teacher of a tiny model saved the way main_dino.py saves it, exported by this script.
Every weight holds a value the C test can recompute (see pattern())."""
import argparse
import json
import os
import struct
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


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
    sys.path.insert(0, os.path.join(HERE, "..", "bench"))
    from torchvit import Model  # noqa: E402
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
    path = os.path.join(HERE, "python_export.safetensors")
    hlen = export(weights, path, {"config": json.dumps(DEMO), "source": "checkpoint.pth teacher"})
    # the C test relies on this file's data section being unaligned, as such exports often are
    assert (8 + hlen) % 4 != 0, "header length makes the data aligned; change the metadata"
    print(f"wrote {path}: {len(weights)} tensors, header {hlen} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--key", help="entry of the checkpoint holding the state dict (teacher)")
    ap.add_argument("--strip", action="append", default=[],
                    help="name prefix to remove (module., backbone.); may repeat")
    ap.add_argument("--demo", action="store_true", help="rewrite python_export.safetensors")
    args = ap.parse_args()
    if args.demo:
        demo()
    elif args.checkpoint and args.out:
        weights = load_weights(args.checkpoint, args.key, args.strip)
        export(weights, args.out)
        print(f"wrote {args.out}: {len(weights)} tensors")
    else:
        ap.error("give CHECKPOINT OUT, or --demo")


if __name__ == "__main__":
    main()
