/* test_yuv.c — YUV 4:2:0 to RGB: the BT.601 primaries and greys in both ranges, clamping, and the
 * chroma of each 2x2 block landing on its four pixels (odd sizes included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>

#include "yuv.h"

static void one_colour(uint8_t yv, uint8_t uv, uint8_t vv, bool full, uint8_t out[3])
{
    uint8_t y[1] = {yv}, u[1] = {uv}, v[1] = {vv};
    yuv420_to_rgb(out, y, 1, u, v, 1, 1, 1, full);
}

static void assert_rgb_near(const uint8_t got[3], int r, int g, int b)
{
    assert_in_range(abs(got[0] - r), 0, 2);
    assert_in_range(abs(got[1] - g), 0, 2);
    assert_in_range(abs(got[2] - b), 0, 2);
}

static void greys_and_primaries(void **state)
{
    uint8_t px[3];
    /* limited range: 16 is black, 235 white; BT.601 red is Y 81, U 90, V 240 */
    one_colour(16, 128, 128, false, px);
    assert_rgb_near(px, 0, 0, 0);
    one_colour(235, 128, 128, false, px);
    assert_rgb_near(px, 255, 255, 255);
    one_colour(81, 90, 240, false, px);
    assert_rgb_near(px, 255, 0, 0);
    one_colour(145, 54, 34, false, px);
    assert_rgb_near(px, 0, 255, 0);
    one_colour(41, 240, 110, false, px);
    assert_rgb_near(px, 0, 0, 255);
    /* full range: Y is the grey level itself; red is Y 76, U 85, V 255 */
    one_colour(0, 128, 128, true, px);
    assert_rgb_near(px, 0, 0, 0);
    one_colour(200, 128, 128, true, px);
    assert_rgb_near(px, 200, 200, 200);
    one_colour(76, 85, 255, true, px);
    assert_rgb_near(px, 255, 0, 0);
    /* out of gamut clamps instead of wrapping */
    one_colour(255, 255, 255, false, px);
    assert_int_equal(px[0], 255);
    one_colour(0, 0, 0, false, px);
    assert_int_equal(px[0], 0);
}

static void chroma_covers_its_2x2_block(void **state)
{
    enum { W = 5, H = 3, YS = 8, UVS = 4 };
    uint8_t y[H * YS], u[2 * UVS], v[2 * UVS], rgb[W * H * 3];
    for (int i = 0; i < H * YS; i++) y[i] = 128;
    for (int i = 0; i < 2 * UVS; i++) {
        u[i] = 128;
        v[i] = (uint8_t)(88 + 12 * i); /* a different red shift per block, inside the gamut */
    }
    yuv420_to_rgb(rgb, y, YS, u, v, UVS, W, H, true);
    for (int row = 0; row < H; row++)
        for (int x = 0; x < W; x++) {
            int e = v[(row / 2) * UVS + x / 2] - 128;
            assert_in_range(abs(rgb[(row * W + x) * 3] - (128 + e * 359 / 256)), 0, 1);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greys_and_primaries),
        cmocka_unit_test(chroma_covers_its_2x2_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
