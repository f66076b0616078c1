/* test_bayer.c — Bayer demosaicing: every pattern, flat colours exact everywhere, colour ramps
 * exact away from the border, and a hand-checked 4x4 mosaic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bayer.h"

/* Samples an RGB image (h, w, 3) into a mosaic of the given pattern, rows `stride` apart. */
static void mosaic(uint8_t *raw, size_t stride, const uint8_t *rgb, int w, int h,
                   enum bayer_pattern p)
{
    static const char *cells[] = {"RGGB", "BGGR", "GBRG", "GRBG"};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            char c = cells[p][(y & 1) * 2 + (x & 1)];
            int ch = c == 'R' ? 0 : c == 'G' ? 1 : 2;
            raw[y * stride + x] = rgb[(y * w + x) * 3 + ch];
        }
}

static uint8_t *ramp(int w, int h)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    assert_non_null(rgb);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            rgb[(y * w + x) * 3 + 0] = (uint8_t)(10 + 3 * x + 2 * y);
            rgb[(y * w + x) * 3 + 1] = (uint8_t)(200 - 2 * x + y);
            rgb[(y * w + x) * 3 + 2] = (uint8_t)(40 + x + 4 * y);
        }
    return rgb;
}

static void flat_colour_is_flat_for_every_pattern(void **state)
{
    enum { W = 9, H = 7, STRIDE = 12 };
    uint8_t rgb[W * H * 3], raw[H * STRIDE], out[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        rgb[i * 3] = 201;
        rgb[i * 3 + 1] = 37;
        rgb[i * 3 + 2] = 118;
    }
    for (int p = BAYER_RG; p <= BAYER_GR; p++) {
        memset(raw, 0xEE, sizeof raw);
        mosaic(raw, STRIDE, rgb, W, H, p);
        bayer_to_rgb(out, raw, STRIDE, W, H, p);
        assert_memory_equal(out, rgb, sizeof rgb);
    }
}

static void ramp_is_exact_inside_the_border(void **state)
{
    enum { W = 32, H = 24 };
    uint8_t *rgb = ramp(W, H), raw[W * H], out[W * H * 3];
    for (int p = BAYER_RG; p <= BAYER_GR; p++) {
        mosaic(raw, W, rgb, W, H, p);
        bayer_to_rgb(out, raw, W, W, H, p);
        for (int y = 1; y < H - 1; y++)
            for (int x = 1; x < W - 1; x++)
                for (int c = 0; c < 3; c++)
                    assert_int_equal(out[(y * W + x) * 3 + c], rgb[(y * W + x) * 3 + c]);
        /* at the border the mirrored neighbour stands in: off by at most one step in x plus one in
         * y (the steepest channel, blue, climbs 1 per column and 4 per row) */
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) assert_in_range(abs(out[x * 3 + c] - rgb[x * 3 + c]), 0, 5);
    }
    free(rgb);
}

static void hand_checked_rggb(void **state)
{
    /* R G R G / G B G B / … with R=100, G=50, B=20 except one brighter green at (1,0) */
    const uint8_t raw[16] = {100, 90, 100, 50, 50, 20, 50, 20, 100, 50, 100, 50, 50, 20, 50, 20};
    uint8_t out[16 * 3];
    bayer_to_rgb(out, raw, 4, 4, 4, BAYER_RG);
    /* (0,0) red site: G from (1,0)=90 mirrored twice on the left, (0,1)=50 twice above/below */
    assert_int_equal(out[0], 100);
    assert_int_equal(out[1], (90 + 90 + 50 + 50 + 2) / 4);
    assert_int_equal(out[2], 20);
    /* (1,0) green site on a red row: R from left/right, B from above/below (mirrored) */
    assert_int_equal(out[3], 100);
    assert_int_equal(out[4], 90);
    assert_int_equal(out[5], 20);
    /* (1,1) blue site: G from the four sides, R from the four diagonals */
    assert_int_equal(out[(4 + 1) * 3 + 0], 100);
    assert_int_equal(out[(4 + 1) * 3 + 1], (90 + 50 + 50 + 50 + 2) / 4);
    assert_int_equal(out[(4 + 1) * 3 + 2], 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flat_colour_is_flat_for_every_pattern),
        cmocka_unit_test(ramp_is_exact_inside_the_border),
        cmocka_unit_test(hand_checked_rggb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
