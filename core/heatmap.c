/* heatmap.c — bilinear upsampling, Gaussian blur and the colour overlay of anomaly maps, and the
 * overlay of a frame as a JPEG. */
#include "heatmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

/* Source coordinate of output pixel i when n_in cells span n_out pixels (align_corners=False),
 * as the two neighbouring cells and the weight of the second. */
static void source_pos(int i, int n_in, int n_out, int *a, int *b, float *w)
{
    float s = ((float)i + 0.5f) * (float)n_in / (float)n_out - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int lo = (int)s;
    if (lo > n_in - 1) lo = n_in - 1;
    *a = lo;
    *b = lo + 1 < n_in ? lo + 1 : lo;
    *w = s - (float)lo;
}

/* One 1-D Gaussian pass over n values spaced `stride` apart, edges clamped. */
static void blur_line(float *x, int n, size_t stride, const float *kern, int radius, float *tmp)
{
    for (int i = 0; i < n; i++) tmp[i] = x[(size_t)i * stride];
    for (int i = 0; i < n; i++) {
        float acc = 0.0f;
        for (int r = -radius; r <= radius; r++) {
            int j = i + r < 0 ? 0 : (i + r >= n ? n - 1 : i + r);
            acc += kern[r + radius] * tmp[j];
        }
        x[(size_t)i * stride] = acc;
    }
}

int heatmap_upsample(const float *grid, int gh, int gw, float *map, int H, int W, float sigma)
{
    for (int y = 0; y < H; y++) {
        int y0, y1, x0, x1;
        float wy, wx;
        source_pos(y, gh, H, &y0, &y1, &wy);
        for (int x = 0; x < W; x++) {
            source_pos(x, gw, W, &x0, &x1, &wx);
            float top = grid[y0 * gw + x0] * (1 - wx) + grid[y0 * gw + x1] * wx;
            float bot = grid[y1 * gw + x0] * (1 - wx) + grid[y1 * gw + x1] * wx;
            map[(size_t)y * W + x] = top * (1 - wy) + bot * wy;
        }
    }
    if (sigma <= 0.0f) return 0;
    int radius = (int)ceilf(3.0f * sigma);
    float *kern = malloc(sizeof(float) * (size_t)(2 * radius + 1));
    float *tmp = malloc(sizeof(float) * (size_t)(H > W ? H : W));
    if (!kern || !tmp) {
        free(kern), free(tmp);
        return -1;
    }
    double sum = 0;
    for (int r = -radius; r <= radius; r++)
        sum += kern[r + radius] = expf(-0.5f * r * r / (sigma * sigma));
    for (int r = 0; r <= 2 * radius; r++) kern[r] = (float)(kern[r] / sum);
    for (int y = 0; y < H; y++) blur_line(map + (size_t)y * W, W, 1, kern, radius, tmp);
    for (int x = 0; x < W; x++) blur_line(map + x, H, (size_t)W, kern, radius, tmp);
    free(kern), free(tmp);
    return 0;
}

/* The colour of v (1.0 = threshold): blue 0, green 0.67, yellow 1.0, red 2.0 and above. */
static void colour(float v, float c[3])
{
    static const float stops[4][4] = {{0.0f, 0.1f, 0.2f, 0.9f},
                                      {0.67f, 0.1f, 0.8f, 0.3f},
                                      {1.0f, 1.0f, 0.9f, 0.1f},
                                      {2.0f, 0.9f, 0.05f, 0.05f}};
    if (v <= 0.0f) v = 0.0f;
    if (v >= 2.0f) v = 2.0f;
    int k = 0;
    while (k < 2 && v > stops[k + 1][0]) k++;
    float t = (v - stops[k][0]) / (stops[k + 1][0] - stops[k][0]);
    for (int i = 0; i < 3; i++)
        c[i] = stops[k][i + 1] + t * (stops[k + 1][i + 1] - stops[k][i + 1]);
}

void heatmap_overlay(const uint8_t *rgb, const float *map, int H, int W, float threshold,
                     uint8_t *out)
{
    for (size_t i = 0; i < (size_t)H * W; i++) {
        float v = map[i] / threshold, c[3];
        colour(v, c);
        float alpha = 0.25f + 0.45f * (v < 0.0f ? 0.0f : (v > 1.5f ? 1.0f : v / 1.5f));
        for (int k = 0; k < 3; k++) {
            float px = (1.0f - alpha) * rgb[3 * i + k] + alpha * 255.0f * c[k];
            out[3 * i + k] = (uint8_t)(px < 0.0f ? 0.0f : (px > 255.0f ? 255.0f : px + 0.5f));
        }
    }
}

void heatmap_peak(const float *map, int H, int W, int x0, int y0, int x1, int y1, float *inside,
                  float *outside)
{
    *inside = *outside = -INFINITY;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float v = map[(size_t)y * W + x];
            float *dst = x >= x0 && x < x1 && y >= y0 && y < y1 ? inside : outside;
            if (v > *dst) *dst = v;
        }
}

int heatmap_jpeg(const void *frame, size_t len, const float *grid, int gh, int gw, float threshold,
                 uint8_t **jpeg, size_t *jpeg_len, char *err, size_t errsz)
{
    struct image im = {0};
    struct image_decode_opts opts = {.channels = 3};
    if (image_decode(frame, len, &opts, &im, err, errsz) < 0) return -1;
    int W = im.width, H = im.height, rc = -1;
    float *map = malloc(sizeof(float) * (size_t)W * H);
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (map && rgb) {
        for (int y = 0; y < H; y++)
            memcpy(rgb + (size_t)y * W * 3, im.data + im.stride * y, (size_t)W * 3);
        float sigma = 4.0f * (float)(W > H ? W : H) / 256.0f;
        if (heatmap_upsample(grid, gh, gw, map, H, W, sigma) == 0) {
            heatmap_overlay(rgb, map, H, W, threshold, rgb);
            for (int y = 0; y < H; y++)
                memcpy(im.data + im.stride * y, rgb + (size_t)y * W * 3, (size_t)W * 3);
            rc = image_encode_jpeg(&im, 85, jpeg, jpeg_len, err, errsz) < 0 ? -1 : 0;
        } else {
            snprintf(err, errsz, "out of memory for the heatmap");
        }
    } else {
        snprintf(err, errsz, "out of memory for the heatmap");
    }
    free(map), free(rgb);
    image_free(&im);
    return rc;
}

void heatmap_frame_grid(const struct heatmap_part *parts, int n, int width, int height,
                        double cell_w, double cell_h, float *out, int *GH, int *GW)
{
    int gw = (int)(width / cell_w + 0.5), gh = (int)(height / cell_h + 0.5);
    gw = gw < 1 ? 1 : gw > HEATMAP_MAX_GRID ? HEATMAP_MAX_GRID : gw;
    gh = gh < 1 ? 1 : gh > HEATMAP_MAX_GRID ? HEATMAP_MAX_GRID : gh;
    *GH = gh, *GW = gw;
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) {
            double fx = (x + 0.5) * width / gw, fy = (y + 0.5) * height / gh;
            float v = 0;
            for (int k = 0; k < n; k++) {
                const struct heatmap_part *p = &parts[k];
                double u = (fx - p->rect[0]) / p->rect[2], w = (fy - p->rect[1]) / p->rect[3];
                if (u < 0 || u >= 1 || w < 0 || w >= 1) continue;
                float c = p->grid[(int)(w * p->gh) * p->gw + (int)(u * p->gw)];
                if (c > v) v = c;
            }
            out[y * gw + x] = v;
        }
}
