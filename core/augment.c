/* augment.c — multi-crop augmentation: crop, flip, jitter, grey, blur, solarise, normalise. */
#include "augment.h"

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

/* torchvision's RandomResizedCrop box: (x, y, w, h) in source pixels. */
static void random_box(const struct augment_config *c, enum augment_kind kind, int H, int W,
                       struct rng *r, float box[4])
{
    const float *scale = kind == AUG_LOCAL ? c->local_scale : c->global_scale;
    double area = (double)H * W;
    double lr0 = log(c->ratio[0]), lr1 = log(c->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * rng_range(r, scale[0], scale[1]);
        double ratio = exp(rng_range(r, lr0, lr1));
        int w = (int)lround(sqrt(target * ratio)), h = (int)lround(sqrt(target / ratio));
        if (w > 0 && h > 0 && w <= W && h <= H) {
            int y = (int)(rng_uniform(r) * (H - h + 1)), x = (int)(rng_uniform(r) * (W - w + 1));
            box[0] = (float)x, box[1] = (float)y, box[2] = (float)w, box[3] = (float)h;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < c->ratio[0])
        h = (int)lround(w / c->ratio[0]);
    else if (in_ratio > c->ratio[1])
        w = (int)lround(h * c->ratio[1]);
    box[0] = (float)((W - w) / 2), box[1] = (float)((H - h) / 2), box[2] = (float)w;
    box[3] = (float)h;
}

static void resize_box(const float *img, int C, int H, int W, const float box[4], int S, bool flip,
                       float *out)
{
    float sx = box[2] / S, sy = box[3] / S;
    for (int oy = 0; oy < S; oy++) {
        float fy = box[1] + (oy + 0.5f) * sy - 0.5f;
        fy = fy < 0 ? 0 : (fy > H - 1 ? (float)(H - 1) : fy);
        int y0 = (int)fy, y1 = y0 + 1 < H ? y0 + 1 : y0;
        float wy = fy - (float)y0;
        for (int ox = 0; ox < S; ox++) {
            int tx = flip ? S - 1 - ox : ox;
            float fx = box[0] + (tx + 0.5f) * sx - 0.5f;
            fx = fx < 0 ? 0 : (fx > W - 1 ? (float)(W - 1) : fx);
            int x0 = (int)fx, x1 = x0 + 1 < W ? x0 + 1 : x0;
            float wx = fx - (float)x0;
            for (int ch = 0; ch < C; ch++) {
                const float *p = img + (size_t)ch * H * W;
                float top = p[y0 * W + x0] * (1 - wx) + p[y0 * W + x1] * wx;
                float bot = p[y1 * W + x0] * (1 - wx) + p[y1 * W + x1] * wx;
                out[((size_t)ch * S + oy) * S + ox] = top * (1 - wy) + bot * wy;
            }
        }
    }
}

static float clamp01(float v)
{
    return v < 0 ? 0 : (v > 1 ? 1 : v);
}

/* Luma of pixel i of a planar image with C channels (BT.601, as torchvision's rgb_to_grayscale). */
static float luma(const float *x, int C, size_t plane, size_t i)
{
    return C == 3 ? 0.299f * x[i] + 0.587f * x[plane + i] + 0.114f * x[2 * plane + i] : x[i];
}

static void blend_with(float *x, size_t n, float factor, const float *other, float constant)
{
    for (size_t i = 0; i < n; i++)
        x[i] = clamp01(factor * x[i] + (1 - factor) * (other ? other[i] : constant));
}

static void adjust_hue(float *x, size_t plane, float shift)
{
    /* rotate chroma in YIQ space by 2π·shift: a smooth stand-in for the HSV hue shift */
    float cs = cosf(6.2831853f * shift), sn = sinf(6.2831853f * shift);
    for (size_t i = 0; i < plane; i++) {
        float r = x[i], g = x[plane + i], b = x[2 * plane + i];
        float y = 0.299f * r + 0.587f * g + 0.114f * b;
        float ii = 0.596f * r - 0.274f * g - 0.322f * b;
        float q = 0.211f * r - 0.523f * g + 0.312f * b;
        float i2 = ii * cs - q * sn, q2 = ii * sn + q * cs;
        x[i] = clamp01(y + 0.956f * i2 + 0.621f * q2);
        x[plane + i] = clamp01(y - 0.272f * i2 - 0.647f * q2);
        x[2 * plane + i] = clamp01(y - 1.106f * i2 + 1.703f * q2);
    }
}

static void color_jitter(const struct augment_config *c, float *x, int C, int S, struct rng *r,
                         float *gray)
{
    size_t plane = (size_t)S * S, n = plane * C;
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) { /* random order, as torchvision */
        int j = (int)(rng_uniform(r) * (i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int k = 0; k < 4; k++) {
        if (order[k] == 0 && c->brightness > 0) {
            float f = (float)rng_range(r, 1 - c->brightness, 1 + c->brightness);
            blend_with(x, n, f, NULL, 0.0f);
        } else if (order[k] == 1 && c->contrast > 0) {
            float f = (float)rng_range(r, 1 - c->contrast, 1 + c->contrast);
            double mean = 0;
            for (size_t i = 0; i < plane; i++) mean += luma(x, C, plane, i);
            blend_with(x, n, f, NULL, (float)(mean / plane));
        } else if (order[k] == 2 && c->saturation > 0 && C == 3) {
            float f = (float)rng_range(r, 1 - c->saturation, 1 + c->saturation);
            for (size_t i = 0; i < plane; i++)
                gray[i] = gray[plane + i] = gray[2 * plane + i] = luma(x, C, plane, i);
            blend_with(x, n, f, gray, 0.0f);
        } else if (order[k] == 3 && c->hue > 0 && C == 3) {
            adjust_hue(x, plane, (float)rng_range(r, -c->hue, c->hue));
        }
    }
}

static void gaussian_blur(float *x, int C, int S, float sigma, float *tmp)
{
    int rad = (int)ceilf(3.0f * sigma);
    if (rad < 1) rad = 1;
    if (rad > 32) rad = 32;
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
    size_t plane = (size_t)S * S, n = plane * C;
    float box[4];
    random_box(c, kind, H, W, r, box);
    bool flip = rng_uniform(r) < c->flip_p;
    resize_box(img, C, H, W, box, S, flip, out);
    if (rng_uniform(r) < c->jitter_p) color_jitter(c, out, C, S, r, scratch);
    if (C == 3 && rng_uniform(r) < c->gray_p)
        for (size_t i = 0; i < plane; i++)
            out[i] = out[plane + i] = out[2 * plane + i] = luma(out, C, plane, i);
    if (rng_uniform(r) < c->blur_p[kind])
        gaussian_blur(out, C, S, (float)rng_range(r, c->blur_sigma[0], c->blur_sigma[1]), scratch);
    if (kind == AUG_GLOBAL2 && rng_uniform(r) < c->solarize_p)
        for (size_t i = 0; i < n; i++) out[i] = out[i] >= 0.5f ? 1.0f - out[i] : out[i];
    for (int ch = 0; ch < C; ch++) {
        float m = c->mean[ch], inv = 1.0f / c->std[ch];
        float *p = out + (size_t)ch * plane;
        for (size_t i = 0; i < plane; i++) p[i] = (p[i] - m) * inv;
    }
}
