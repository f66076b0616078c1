/* augment.c — multi-crop augmentation: crop, flip, jitter, grey, blur, solarise, normalise. */
#include "augment.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void augment_defaults(struct augment_config *c, int global_size, int local_size)
{
    *c = (struct augment_config){.global_size = global_size,
                                 .local_size = local_size,
                                 .global_scale = {0.4f, 1.0f},
                                 .local_scale = {0.05f, 0.4f},
                                 .ratio = {3.0f / 4.0f, 4.0f / 3.0f},
                                 .flip_p = 0.5f,
                                 .jitter_p = 0.8f,
                                 .brightness = 0.4f,
                                 .contrast = 0.4f,
                                 .saturation = 0.2f,
                                 .hue = 0.1f,
                                 .gray_p = 0.2f,
                                 .blur_p = {1.0f, 0.1f, 0.5f},
                                 .blur_sigma = {0.1f, 2.0f},
                                 .solarize_p = 0.2f,
                                 .mean = {0.485f, 0.456f, 0.406f},
                                 .std = {0.229f, 0.224f, 0.225f}};
}

static int prob_ok(float p)
{
    return p >= 0.0f && p <= 1.0f;
}

int augment_check(const struct augment_config *c, char *err, size_t errsz)
{
    const char *why = NULL;
    if (c->global_size < 1 || c->local_size < 1 || c->global_size > 4096 || c->local_size > 4096)
        why = "crop sizes must be in [1, 4096]";
    else if (!(c->global_scale[0] > 0 && c->global_scale[0] <= c->global_scale[1] &&
               c->global_scale[1] <= 1 && c->local_scale[0] > 0 &&
               c->local_scale[0] <= c->local_scale[1] && c->local_scale[1] <= 1))
        why = "scale ranges must satisfy 0 < min <= max <= 1";
    else if (!(c->ratio[0] > 0 && c->ratio[0] <= c->ratio[1]))
        why = "aspect ratio range must satisfy 0 < min <= max";
    else if (!prob_ok(c->flip_p) || !prob_ok(c->jitter_p) || !prob_ok(c->gray_p) ||
             !prob_ok(c->solarize_p) || !prob_ok(c->blur_p[0]) || !prob_ok(c->blur_p[1]) ||
             !prob_ok(c->blur_p[2]))
        why = "probabilities must be in [0, 1]";
    else if (c->brightness < 0 || c->contrast < 0 || c->saturation < 0 || c->hue < 0 ||
             c->hue > 0.5f)
        why = "jitter strengths must be >= 0 (hue <= 0.5)";
    else if (!(c->blur_sigma[0] > 0 && c->blur_sigma[0] <= c->blur_sigma[1]))
        why = "blur sigma range must satisfy 0 < min <= max";
    else if (c->std[0] <= 0 || c->std[1] <= 0 || c->std[2] <= 0)
        why = "normalisation std must be positive";
    if (why) {
        if (errsz) snprintf(err, errsz, "invalid augmentation: %s", why);
        return -1;
    }
    return 0;
}

size_t augment_scratch_floats(const struct augment_config *c, int C, int H, int W)
{
    size_t S = (size_t)(c->global_size > c->local_size ? c->global_size : c->local_size);
    size_t resize = (size_t)C * (size_t)H * S, blur = S * S;
    return resize > blur ? resize : blur;
}

void augment_random_box(const float scale[2], const float ratio[2], int H, int W, struct rng *r,
                        int box[4])
{
    double area = (double)H * W;
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * rng_range(r, scale[0], scale[1]);
        double aspect = exp(rng_range(r, lr0, lr1));
        int w = (int)lround(sqrt(target * aspect)), h = (int)lround(sqrt(target / aspect));
        if (w > 0 && h > 0 && w <= W && h <= H) {
            box[1] = (int)(rng_uniform(r) * (H - h + 1));
            box[0] = (int)(rng_uniform(r) * (W - w + 1));
            box[2] = w, box[3] = h;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < ratio[0])
        h = (int)lround(w / ratio[0]);
    else if (in_ratio > ratio[1])
        w = (int)lround(h * ratio[1]);
    box[0] = (W - w) / 2, box[1] = (H - h) / 2, box[2] = w, box[3] = h;
}

/* PIL's antialiased bilinear taps for output index o of n source pixels resampled to S:
 * source pixels [*lo, *hi) with weight tri((x − centre + 0.5)·*ss) / *norm each. */
struct taps {
    int lo, hi;
    double centre, ss, norm;
};

static double tri(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static struct taps taps_for(int o, int n, int S)
{
    double scale = (double)n / S, support = scale > 1.0 ? scale : 1.0;
    struct taps t = {.centre = (o + 0.5) * scale, .ss = 1.0 / support};
    t.lo = (int)(t.centre - support + 0.5);
    t.hi = (int)(t.centre + support + 0.5);
    t.lo = t.lo < 0 ? 0 : t.lo;
    t.hi = t.hi > n ? n : t.hi;
    t.norm = 0.0;
    for (int x = t.lo; x < t.hi; x++) t.norm += tri((x - t.centre + 0.5) * t.ss);
    return t;
}

static double tap(const struct taps *t, int x)
{
    return tri((x - t->centre + 0.5) * t->ss) / t->norm;
}

void augment_resize_box(const float *img, int C, int H, int W, const int box[4], int S, bool flip,
                        float *scratch, float *out)
{
    int bx = box[0], by = box[1], bw = box[2], bh = box[3];
    assert(bx >= 0 && by >= 0 && bw > 0 && bh > 0 && bx + bw <= W && by + bh <= H);
    for (int ox = 0; ox < S; ox++) { /* rows of the box → scratch (C, bh, S) */
        struct taps t = taps_for(flip ? S - 1 - ox : ox, bw, S);
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < bh; y++) {
                const float *row = img + ((size_t)ch * H + by + y) * W + bx;
                double acc = 0.0;
                for (int x = t.lo; x < t.hi; x++) acc += row[x] * tap(&t, x);
                scratch[((size_t)ch * bh + y) * S + ox] = (float)acc;
            }
    }
    for (int oy = 0; oy < S; oy++) {
        struct taps t = taps_for(oy, bh, S);
        for (int ch = 0; ch < C; ch++)
            for (int ox = 0; ox < S; ox++) {
                double acc = 0.0;
                for (int y = t.lo; y < t.hi; y++)
                    acc += scratch[((size_t)ch * bh + y) * S + ox] * tap(&t, y);
                out[((size_t)ch * S + oy) * S + ox] = (float)acc;
            }
    }
}

static float clamp01(float v)
{
    return v < 0 ? 0 : (v > 1 ? 1 : v);
}

/* torchvision's rgb_to_grayscale weights, for pixel i of a planar RGB image. */
static float grey_at(const float *x, size_t plane, size_t i)
{
    return 0.2989f * x[i] + 0.587f * x[plane + i] + 0.114f * x[2 * plane + i];
}

void augment_brightness(float *x, int C, int S, float f)
{
    size_t n = (size_t)C * S * S;
    for (size_t i = 0; i < n; i++) x[i] = clamp01(f * x[i]);
}

void augment_contrast(float *x, int C, int S, float f)
{
    size_t plane = (size_t)S * S, n = plane * C;
    double mean = 0.0;
    for (size_t i = 0; i < plane; i++) mean += C == 3 ? grey_at(x, plane, i) : x[i];
    float m = (float)(mean / (double)plane) * (1.0f - f);
    for (size_t i = 0; i < n; i++) x[i] = clamp01(f * x[i] + m);
}

void augment_saturation(float *x, int C, int S, float f)
{
    size_t plane = (size_t)S * S;
    if (C != 3) return;
    for (size_t i = 0; i < plane; i++) {
        float g = grey_at(x, plane, i) * (1.0f - f);
        for (int ch = 0; ch < 3; ch++) x[ch * plane + i] = clamp01(f * x[ch * plane + i] + g);
    }
}

/* torchvision's _rgb2hsv for one pixel (h in [0, 1)). */
static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), cr = mx - mn;
    bool flat = mx == mn;
    *v = mx;
    *s = cr / (flat ? 1.0f : mx);
    float d = flat ? 1.0f : cr;
    float rc = (mx - r) / d, gc = (mx - g) / d, bc = (mx - b) / d;
    float hh = mx == r ? bc - gc : (mx == g ? 2.0f + rc - bc : 4.0f + gc - rc);
    *h = fmodf(hh / 6.0f + 1.0f, 1.0f);
}

/* torchvision's _hsv2rgb for one pixel. */
static void hsv_to_rgb(float h, float s, float v, float rgb[3])
{
    float i = floorf(h * 6.0f), f = h * 6.0f - i;
    int sector = ((int)i % 6 + 6) % 6;
    float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f));
    float t = clamp01(v * (1.0f - s * (1.0f - f)));
    const float table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int ch = 0; ch < 3; ch++) rgb[ch] = table[sector][ch];
}

void augment_hue(float *x, int C, int S, float shift)
{
    size_t plane = (size_t)S * S;
    if (C != 3) return;
    for (size_t i = 0; i < plane; i++) {
        float h, s, v, rgb[3];
        rgb_to_hsv(x[i], x[plane + i], x[2 * plane + i], &h, &s, &v);
        h = fmodf(h + shift + 1.0f, 1.0f);
        hsv_to_rgb(h, s, v, rgb);
        for (int ch = 0; ch < 3; ch++) x[ch * plane + i] = rgb[ch];
    }
}

void augment_grayscale(float *x, int C, int S)
{
    size_t plane = (size_t)S * S;
    if (C != 3) return;
    for (size_t i = 0; i < plane; i++)
        x[i] = x[plane + i] = x[2 * plane + i] = grey_at(x, plane, i);
}

void augment_solarize(float *x, int C, int S, float threshold)
{
    size_t n = (size_t)C * S * S;
    for (size_t i = 0; i < n; i++) x[i] = x[i] >= threshold ? 1.0f - x[i] : x[i];
}

/* ColorJitter: the four adjustments in a random order, each factor drawn when it is applied. */
static void color_jitter(const struct augment_config *c, float *x, int C, int S, struct rng *r)
{
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) {
        int j = (int)(rng_uniform(r) * (i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int k = 0; k < 4; k++) {
        if (order[k] == 0 && c->brightness > 0)
            augment_brightness(x, C, S, (float)rng_range(r, 1 - c->brightness, 1 + c->brightness));
        else if (order[k] == 1 && c->contrast > 0)
            augment_contrast(x, C, S, (float)rng_range(r, 1 - c->contrast, 1 + c->contrast));
        else if (order[k] == 2 && c->saturation > 0)
            augment_saturation(x, C, S, (float)rng_range(r, 1 - c->saturation, 1 + c->saturation));
        else if (order[k] == 3 && c->hue > 0)
            augment_hue(x, C, S, (float)rng_range(r, -c->hue, c->hue));
    }
}

void augment_blur(float *x, int C, int S, float sigma, float *tmp)
{
    int rad = (int)ceilf(3.0f * sigma);
    rad = rad < 1 ? 1 : (rad > 32 ? 32 : rad);
    float k[65], sum = 0;
    for (int i = -rad; i <= rad; i++) sum += k[i + rad] = expf(-0.5f * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++) k[i] /= sum;
    for (int ch = 0; ch < C; ch++) {
        float *p = x + (size_t)ch * S * S;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                float acc = 0;
                for (int i = -rad; i <= rad; i++) {
                    int sx = xx + i < 0 ? 0 : (xx + i >= S ? S - 1 : xx + i);
                    acc += k[i + rad] * p[y * S + sx];
                }
                tmp[y * S + xx] = acc;
            }
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                float acc = 0;
                for (int i = -rad; i <= rad; i++) {
                    int sy = y + i < 0 ? 0 : (y + i >= S ? S - 1 : y + i);
                    acc += k[i + rad] * tmp[sy * S + xx];
                }
                p[y * S + xx] = acc;
            }
    }
}

void augment_crop(const struct augment_config *c, enum augment_kind kind, const float *img, int C,
                  int H, int W, struct rng *r, float *scratch, float *out)
{
    int S = kind == AUG_LOCAL ? c->local_size : c->global_size;
    size_t plane = (size_t)S * S;
    int box[4];
    augment_random_box(kind == AUG_LOCAL ? c->local_scale : c->global_scale, c->ratio, H, W, r,
                       box);
    bool flip = rng_uniform(r) < c->flip_p;
    augment_resize_box(img, C, H, W, box, S, flip, scratch, out);
    if (rng_uniform(r) < c->jitter_p) color_jitter(c, out, C, S, r);
    if (C == 3 && rng_uniform(r) < c->gray_p) augment_grayscale(out, C, S);
    if (rng_uniform(r) < c->blur_p[kind])
        augment_blur(out, C, S, (float)rng_range(r, c->blur_sigma[0], c->blur_sigma[1]), scratch);
    if (kind == AUG_GLOBAL2 && rng_uniform(r) < c->solarize_p) augment_solarize(out, C, S, 0.5f);
    for (int ch = 0; ch < C; ch++) {
        float m = c->mean[ch], inv = 1.0f / c->std[ch];
        float *p = out + (size_t)ch * plane;
        for (size_t i = 0; i < plane; i++) p[i] = (p[i] - m) * inv;
    }
}

void augment_dihedral(const float *img, int C, int S, int t, float *out)
{
    int k = t & 3;
    for (int c = 0; c < C; c++) {
        const float *src = img + (size_t)c * S * S;
        float *dst = out + (size_t)c * S * S;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int u = t >= 4 ? S - 1 - x : x; /* the column before the mirror */
                int sy = k == 0 ? y : k == 1 ? u : k == 2 ? S - 1 - y : S - 1 - u;
                int sx = k == 0 ? u : k == 1 ? S - 1 - y : k == 2 ? S - 1 - u : y;
                dst[(size_t)y * S + x] = src[(size_t)sy * S + sx];
            }
    }
}

void augment_paste_defect(float *dst, const float *src, int C, int S, struct rng *r, float *alpha)
{
    int kind = (int)(rng_next(r) % 3);
    double cy = rng_range(r, 0.15, 0.85) * S, cx = rng_range(r, 0.15, 0.85) * S;
    double th = rng_range(r, 0, M_PI), ct = cos(th), st = sin(th);
    /* half-extents along the shape's own axes (u along th, v across) */
    double hu, hv;
    if (kind == 0) /* rectangle */
        hu = rng_range(r, 0.06, 0.18) * S, hv = rng_range(r, 0.06, 0.18) * S, ct = 1, st = 0;
    else if (kind == 1) /* bar */
        hu = rng_range(r, 0.15, 0.4) * S, hv = fmax(0.6, rng_range(r, 0.01, 0.04) * S);
    else /* ellipse */
        hu = rng_range(r, 0.06, 0.2) * S, hv = rng_range(r, 0.06, 0.2) * S;
    /* the pasted content: src shifted by (dy, dx), its contrast and level changed */
    int dy = (int)(rng_range(r, 0.2, 0.8) * S), dx = (int)(rng_range(r, 0.2, 0.8) * S);
    float gain = (float)rng_range(r, 0.6, 1.4), shift = (float)rng_range(r, -0.6, 0.6);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double py = y + 0.5 - cy, px = x + 0.5 - cx;
            double u = px * ct + py * st, v = -px * st + py * ct, a;
            if (kind == 2) {
                double q = (u * u) / (hu * hu) + (v * v) / (hv * hv);
                a = q >= 1 ? 0 : q <= 0.5 ? 1 : (1 - q) * 2;
            } else {
                a = fabs(u) <= hu && fabs(v) <= hv ? 1 : 0;
            }
            alpha[(size_t)y * S + x] = (float)a;
            if (a <= 0) continue;
            int sy = (y + dy) % S, sx = (x + dx) % S;
            for (int c = 0; c < C; c++) {
                size_t o = ((size_t)c * S + y) * S + x;
                float v2 = src[((size_t)c * S + sy) * S + sx] * gain + shift;
                dst[o] = (float)((1 - a) * dst[o] + a * v2);
            }
        }
}
