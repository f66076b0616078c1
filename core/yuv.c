/* yuv.c — YUV 4:2:0 to RGB, BT.601 in 8.8 fixed point (see yuv.h). */
#include "yuv.h"

static inline uint8_t clamp255(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, size_t y_stride, const uint8_t *u,
                   const uint8_t *v, size_t uv_stride, int width, int height, bool full_range)
{
    /* luma scale and chroma coefficients, times 256 */
    const int ky = full_range ? 256 : 298, y0 = full_range ? 0 : 16;
    const int rv = full_range ? 359 : 409, gu = full_range ? 88 : 100, gv = full_range ? 183 : 208,
              bu = full_range ? 454 : 516;
    for (int row = 0; row < height; row++) {
        const uint8_t *yr = y + (size_t)row * y_stride;
        const uint8_t *ur = u + (size_t)(row / 2) * uv_stride;
        const uint8_t *vr = v + (size_t)(row / 2) * uv_stride;
        uint8_t *out = rgb + (size_t)row * width * 3;
        for (int x = 0; x < width; x++) {
            int c = ky * (yr[x] - y0) + 128, d = ur[x / 2] - 128, e = vr[x / 2] - 128;
            out[3 * x + 0] = clamp255((c + rv * e) >> 8);
            out[3 * x + 1] = clamp255((c - gu * d - gv * e) >> 8);
            out[3 * x + 2] = clamp255((c + bu * d) >> 8);
        }
    }
}
