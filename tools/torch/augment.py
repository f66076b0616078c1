"""augment.py — DINO's multi-crop augmentation (core/augment.c) for tools/torch/train.py, done on a
whole stack of crops at once: per image a random resized crop (torchvision's box, antialiased
bilinear resampling) and flip, then, each drawn per image, colour jitter with probability 0.8
(brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1, in a random order of the four), grey
conversion with probability 0.2, Gaussian blur (sigma 0.1 to 2 output pixels), solarisation (global
crop 2) and the per-channel normalisation. Grey input (one channel) gets brightness and contrast
only, as in core/. Per-image torchvision transforms cost about 100 ms an image for DINO's 8 crops
on a 2-core CPU; batched, a few."""
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.functional as TF


def uniform(n, lo, hi):
    return torch.empty(n).uniform_(lo, hi)


def chance(n, p):
    return torch.rand(n) < p


def grey(x):
    """(B, 3, S, S) → (B, 1, S, S) luma, torchvision's weights."""
    return (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def rgb_to_hsv(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, minc = x.max(dim=1).values, x.min(dim=1).values
    cr = maxc - minc
    s = cr / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    crd = torch.where(cr == 0, torch.ones_like(cr), cr)
    h = torch.where(maxc == r, (g - b) / crd,
                    torch.where(maxc == g, 2.0 + (b - r) / crd, 4.0 + (r - g) / crd))
    return torch.stack((torch.remainder(h / 6.0, 1.0), s, maxc), dim=1)


def hsv_to_rgb(x):
    """f(n) = v − v·s·clamp(min(k, 4 − k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    n = torch.tensor([5.0, 3.0, 1.0]).view(1, 3, 1, 1)
    k = torch.fmod(n + h * 6.0, 6.0)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def per_image(f, n):
    return f.view(n, 1, 1, 1)


def jitter_op(x, k):
    """Jitter operation k (0 brightness, 1 contrast, 2 saturation, 3 hue) with factors drawn per
    image."""
    n, c = x.shape[0], x.shape[1]
    if k == 0:
        return (x * per_image(uniform(n, 0.6, 1.4), n)).clamp(0, 1)
    if k == 1:
        m = (grey(x) if c == 3 else x).mean(dim=(1, 2, 3), keepdim=True)
        f = per_image(uniform(n, 0.6, 1.4), n)
        return (f * x + (1 - f) * m).clamp(0, 1)
    if c == 1:
        return x
    if k == 2:
        f = per_image(uniform(n, 0.8, 1.2), n)
        return (f * x + (1 - f) * grey(x)).clamp(0, 1)
    hsv = rgb_to_hsv(x)
    hsv[:, 0] = torch.fmod(hsv[:, 0] + uniform(n, -0.1, 0.1).view(n, 1, 1) + 1.0, 1.0)
    return hsv_to_rgb(hsv)


def color_jitter(x, p=0.8):
    """torchvision's ColorJitter(0.4, 0.4, 0.2, 0.1) with probability p, each image in its own
    random order of the four operations (round r applies every image's r-th one)."""
    n = x.shape[0]
    on = chance(n, p)
    order = torch.stack([torch.randperm(4) for _ in range(n)])
    out = x.clone()
    for r in range(4):
        for k in range(4):
            sel = (on & (order[:, r] == k)).nonzero().flatten()
            if len(sel):
                out[sel] = jitter_op(out[sel], k)
    return out


def gaussian_blur(x, p, size):
    """A Gaussian blur of sigma in [0.1, 2] per image with probability p: separable, 13 taps (fewer
    on crops too small), borders reflected."""
    n, c = x.shape[0], x.shape[1]
    on = chance(n, p)
    if not on.any():
        return x
    k = min(13, size if size % 2 else size - 1)
    sigma = uniform(n, 0.1, 2.0).view(n, 1)
    t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k).view(1, k)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = (w / w.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B·C, k)
    y = F.pad(x.reshape(1, n * c, size, size), (k // 2,) * 4, mode="reflect")
    y = F.conv2d(y, w.view(n * c, 1, 1, k), groups=n * c)
    y = F.conv2d(y, w.view(n * c, 1, k, 1), groups=n * c).view(n, c, size, size)
    return torch.where(per_image(on, n), y, x)


class CropKind:
    """One of DINO's three crop kinds: output size, scale range, blur and solarisation chance."""

    def __init__(self, size, scale, blur_p, solarize_p, mean, std):
        self.size, self.scale, self.blur_p, self.solarize_p = size, scale, blur_p, solarize_p
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def boxes(self, images):
        """Random resized crops with flips of each image (C, H, W) → (B, C, S, S)."""
        out = []
        for img in images:
            i, j, h, w = T.RandomResizedCrop.get_params(img, self.scale, (3 / 4, 4 / 3))
            crop = TF.resized_crop(img, i, j, h, w, [self.size, self.size],
                                   T.InterpolationMode.BILINEAR, antialias=True)
            out.append(crop.flip(-1) if torch.rand(1).item() < 0.5 else crop)
        return torch.stack(out).clamp(0, 1)

    def __call__(self, images):
        x = self.boxes(images)
        n = x.shape[0]
        x = color_jitter(x)
        if x.shape[1] == 3:
            x = torch.where(per_image(chance(n, 0.2), n), grey(x).expand_as(x), x)
        x = gaussian_blur(x, self.blur_p, self.size)
        if self.solarize_p:
            solar = torch.where(x >= 0.5, 1.0 - x, x)
            x = torch.where(per_image(chance(n, self.solarize_p), n), solar, x)
        return (x - self.mean) / self.std


def crop_kinds(o, mean, std):
    """Global 1 (always blurred), global 2 (blurred 1 in 10, solarised 1 in 5), local (small
    scale, blurred half the time)."""
    g, l = o["global_size"], o["local_size"]
    return (CropKind(g, o["global_scale"], 1.0, 0.0, mean, std),
            CropKind(g, o["global_scale"], 0.1, 0.2, mean, std),
            CropKind(l, o["local_scale"], 0.5, 0.0, mean, std))


def make_crops(images, idx, kinds, n_local):
    """The crop stacks of a batch (images[idx]), crop-major: crop 0 of every image first."""
    g1, g2, lo = kinds
    src = [images[i] for i in idx]
    glob = torch.cat([g1(src), g2(src)])
    loc = torch.cat([lo(src) for _ in range(n_local)]) if n_local else None
    return glob, loc
