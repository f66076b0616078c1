/* test_heatmap.c — upsampling on hand-computed values, the blur's symmetry and mass, the overlay's
 * colours at the flagging line, and peaks inside a box. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "heatmap.h"

static void constant_grid_stays_constant(void **state)
{
    float grid[6] = {2, 2, 2, 2, 2, 2}, map[12 * 8];
    assert_int_equal(heatmap_upsample(grid, 2, 3, map, 8, 12, 1.5f), 0);
    for (int i = 0; i < 12 * 8; i++) assert_float_equal(map[i], 2.0f, 1e-5);
}

/* 2x2 grid to 4x4 without blur: the align_corners=False weights 1, 3/4, 1/4, 0 by hand. */
static void bilinear_by_hand(void **state)
{
    float grid[4] = {0, 4, 8, 12}, map[16];
    assert_int_equal(heatmap_upsample(grid, 2, 2, map, 4, 4, 0.0f), 0);
    const float row0[4] = {0, 1, 3, 4}, row1[4] = {2, 3, 5, 6};
    for (int x = 0; x < 4; x++) {
        assert_float_equal(map[x], row0[x], 1e-6);
        assert_float_equal(map[4 + x], row1[x], 1e-6);
        assert_float_equal(map[12 + x], row0[x] + 8, 1e-6);
    }
}

/* One hot cell in the middle of a 5x5 grid peaks at its centre and spreads symmetrically. */
static void hot_cell_peaks_at_its_centre(void **state)
{
    float grid[25] = {0}, map[50 * 50];
    grid[12] = 1.0f;
    assert_int_equal(heatmap_upsample(grid, 5, 5, map, 50, 50, 2.0f), 0);
    int best = 0;
    for (int i = 0; i < 50 * 50; i++)
        if (map[i] > map[best]) best = i;
    assert_in_range(best / 50, 24, 25);
    assert_in_range(best % 50, 24, 25);
    for (int y = 0; y < 50; y++)
        for (int x = 0; x < 50; x++) {
            assert_float_equal(map[y * 50 + x], map[y * 50 + 49 - x], 1e-5);
            assert_float_equal(map[y * 50 + x], map[x * 50 + y], 1e-5);
        }
    float in, out;
    heatmap_peak(map, 50, 50, 20, 20, 30, 30, &in, &out);
    assert_true(in > out);
    assert_float_equal(in, map[best], 0);
}

static void overlay_colours_follow_the_threshold(void **state)
{
    uint8_t grey[3 * 3], out[3 * 3];
    memset(grey, 128, sizeof grey);
    float map[3] = {0.0f, 2.0f, 8.0f}; /* threshold 2: 0, the line, far above */
    heatmap_overlay(grey, map, 1, 3, 2.0f, out);
    assert_true(out[2] > out[0]);                    /* zero: blue over grey */
    assert_true(out[3] > 128 && out[4] > 128);       /* at the line: yellow */
    assert_true(out[6] > out[7] && out[6] > out[8]); /* far above: red */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constant_grid_stays_constant),
        cmocka_unit_test(bilinear_by_hand),
        cmocka_unit_test(hot_cell_peaks_at_its_centre),
        cmocka_unit_test(overlay_colours_follow_the_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
