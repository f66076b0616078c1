"""torchvit.py — the inspectd model (DINO-style ViT + DINO head) in PyTorch, for the reference
vectors and the benchmark peer. Parameter names match core/vit.c's tensor table."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim, depth, heads, mlp_ratio):
        super().__init__()
        self.patch = patch
        n = (img_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, in_chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def pos_for(self, h, w):
        n = self.pos_embed.shape[1] - 1
        gh, gw = h // self.patch, w // self.patch
        if gh * gw == n and gh == gw:
            return self.pos_embed
        side = int(math.sqrt(n))
        grid = self.pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((gh + 0.1) / side, (gw + 0.1) / side),
                             mode="bicubic")
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)

    def tokens(self, x):
        b, _, h, w = x.shape
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.pos_for(h, w)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        return self.tokens(x)[:, 0]


class DINOHead(nn.Module):
    def __init__(self, dim, out, hidden, bottleneck):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class Model(nn.Module):
    """Backbone parameters unprefixed, head under `head.`, as in inspectd checkpoints."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = ViT(cfg["img_size"], cfg["patch"], cfg["in_chans"], cfg["dim"],
                            cfg["depth"], cfg["heads"], cfg["mlp_ratio"])
        self.head = DINOHead(cfg["dim"], cfg["head_out"], cfg["head_hidden"],
                             cfg["head_bottleneck"])

    def named_tensors(self):
        out = {}
        for k, v in self.backbone.state_dict().items():
            out[k] = v
        for k, v in self.head.state_dict().items():
            out["head." + k] = v
        return out

    def forward(self, crops_by_size):
        """crops_by_size: list of (n*B, C, H, W) tensors, one per resolution. Like DINO's
        MultiCropWrapper: one backbone pass per resolution, then the head once on all the class
        tokens. Returns (list of (n*B, D) embeddings, (sum of n*B, K) logits in input order)."""
        embeds = [self.backbone(x) for x in crops_by_size]
        return embeds, self.head(torch.cat(embeds))


def dino_loss(student_logits, teacher_logits, center, n_teacher, n_student, tau_s, tau_t):
    s = (student_logits / tau_s).chunk(n_student)
    q = F.softmax((teacher_logits - center) / tau_t, dim=-1).detach().chunk(n_teacher)
    total, terms = 0.0, 0
    for i, qi in enumerate(q):
        for v in range(n_student):
            if v == i:
                continue
            total = total + torch.sum(-qi * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            terms += 1
    return total / terms


def param_groups(model):
    reg, noreg = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (noreg if name.endswith(".bias") or p.ndim == 1 else reg).append(p)
    return [{"params": reg}, {"params": noreg, "weight_decay": 0.0}]


def clip_gradients(model, clip):
    for p in model.parameters():
        if p.grad is not None:
            norm = p.grad.data.norm(2)
            coef = clip / (norm + 1e-6)
            if coef < 1:
                p.grad.data.mul_(coef)
