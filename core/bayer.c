/* bayer.c — bilinear demosaicing of 8-bit Bayer mosaics to interleaved RGB (see bayer.h). */
#include "bayer.h"

#include <assert.h>

/* Mirrors an index one step outside [0, n) back inside; the mirror keeps the parity, so the
 * neighbour found has the same colour as the one that is missing. */
static inline int mirror(int i, int n)
{
    return i < 0 ? 1 : i >= n ? n - 2 : i;
}

static inline uint8_t mean2(int a, int b)
{
    return (uint8_t)((a + b + 1) >> 1);
}

static inline uint8_t mean4(int a, int b, int c, int d)
{
    return (uint8_t)((a + b + c + d + 2) >> 2);
}

/* One output row. up/cur/down are the mosaic rows y-1, y, y+1 (mirrored at the edges); red_row
 * tells whether row y holds red (else blue) samples, colour_x is the parity of their columns; the
 * other columns of the row hold green. */
static void demosaic_row(uint8_t *out, const uint8_t *up, const uint8_t *cur, const uint8_t *down,
                         int width, int red_row, int colour_x)
{
    int own = red_row ? 0 : 2; /* channel sampled at (colour_x) sites of this row */
    int other = 2 - own;       /* the opposite colour, found on the diagonals / above-below */
    for (int x = 0; x < width; x++) {
        int l = mirror(x - 1, width), r = mirror(x + 1, width);
        uint8_t *px = out + 3 * (size_t)x;
        if ((x & 1) == colour_x) {
            px[own] = cur[x];
            px[1] = mean4(cur[l], cur[r], up[x], down[x]);
            px[other] = mean4(up[l], up[r], down[l], down[r]);
        } else {
            px[1] = cur[x];
            px[own] = mean2(cur[l], cur[r]);
            px[other] = mean2(up[x], down[x]);
        }
    }
}

void bayer_to_rgb(uint8_t *rgb, const uint8_t *raw, size_t raw_stride, int width, int height,
                  enum bayer_pattern pattern)
{
    assert(width >= 2 && height >= 2);
    /* position of the red sample inside the 2x2 cell; blue sits diagonally opposite */
    static const int red_x[] = {[BAYER_RG] = 0, [BAYER_BG] = 1, [BAYER_GB] = 0, [BAYER_GR] = 1};
    static const int red_y[] = {[BAYER_RG] = 0, [BAYER_BG] = 1, [BAYER_GB] = 1, [BAYER_GR] = 0};
    assert(pattern >= BAYER_RG && pattern <= BAYER_GR);
    for (int y = 0; y < height; y++) {
        const uint8_t *up = raw + (size_t)mirror(y - 1, height) * raw_stride;
        const uint8_t *cur = raw + (size_t)y * raw_stride;
        const uint8_t *down = raw + (size_t)mirror(y + 1, height) * raw_stride;
        int red_row = (y & 1) == red_y[pattern];
        int colour_x = red_row ? red_x[pattern] : 1 - red_x[pattern];
        demosaic_row(rgb + (size_t)y * width * 3, up, cur, down, width, red_row, colour_x);
    }
}
