/* test_region.c — regions (region.h): the roi's syntax and bounds, a mask of another size scaled to
 * the ROI and the ignored pixels set to grey, tiles that cover a side flush with its edge (padding
 * ignored), a frame's tiles kept together in an image set, and the heatmap laid back onto one grid
 * over the whole frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "heatmap.h"
#include "image.h"
#include "imageset.h"
#include "region.h"

static void roi_syntax(void **state)
{
    struct region r = {0};
    char err[256];
    assert_int_equal(region_parse_roi("10, 20,30,40", &r, err, sizeof err), 0);
    assert_true(r.x == 10 && r.y == 20 && r.w == 30 && r.h == 40);
    const char *bad[] = {"",        "1,2,3",   "1,2,3,4,5",   "-1,0,4,4",
                         "0,0,0,4", "a,b,c,d", "0,0,4,70000", "0,0,4,4,"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(region_parse_roi(bad[i], &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "x,y,w,h"));
}

static void roi_outside_the_frame(void **state)
{
    struct region r = {.x = 8, .y = 0, .w = 60, .h = 10};
    int rect[4];
    char err[256];
    assert_int_equal(region_rect(&r, 64, 48, rect, err, sizeof err), -1);
    assert_string_equal(err, "roi 8,0,60,10 lies outside the 64x48 frame");
    r.w = 56;
    assert_int_equal(region_rect(&r, 64, 48, rect, err, sizeof err), 0);
    assert_true(rect[0] == 8 && rect[2] == 56);
    assert_int_equal(region_rect(NULL, 64, 48, rect, err, sizeof err), 0);
    assert_true(rect[0] == 0 && rect[2] == 64 && rect[3] == 48);
}

/* A grey frame whose pixel (x, y) is x + 10 y (clipped at 255). */
static void gradient(struct image *im, int w, int h)
{
    assert_int_equal(image_alloc(im, w, h, 1), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) im->data[y * im->stride + x] = (uint8_t)(x + 10 * y);
}

/* A 2 x 1 mask (left black) over an 8 x 4 ROI shrunk to 4 x 4: the left half grey and ignored. */
static void mask_scaled_to_the_roi(void **state)
{
    struct image im;
    gradient(&im, 16, 8);
    struct region r = {.x = 4, .y = 2, .w = 8, .h = 4};
    assert_int_equal(image_alloc(&r.mask, 2, 1, 1), 0);
    r.mask.data[0] = 0, r.mask.data[1] = 255;
    float px[16];
    uint8_t mask[16];
    char err[128];
    assert_int_equal(region_fit(&im, &r, 4, 1, px, mask, err, sizeof err), 0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            assert_int_equal(mask[y * 4 + x], x >= 2);
            if (x < 2) {
                assert_float_equal(px[y * 4 + x], REGION_IGNORED_VALUE, 0);
            } else { /* the mean of ROI pixels (2x, y) and (2x + 1, y) */
                float want = (4 + 2 * x + 0.5f + 10 * (2 + y)) / 255.0f;
                assert_float_equal(px[y * 4 + x], want, 0.5f / 255);
            }
        }
    region_free(&r);
    image_free(&im);
}

static void tiles_cover_a_side(void **state)
{
    int s[8];
    assert_int_equal(region_tile_starts(64, 64, 0, s, 8), 1);
    assert_int_equal(region_tile_starts(40, 64, 0, s, 8), 1);
    assert_int_equal(s[0], 0);
    assert_int_equal(region_tile_starts(128, 64, 0, s, 8), 2);
    assert_true(s[0] == 0 && s[1] == 64);
    /* 100 px in 64 px tiles overlapping by 8 at least: 2 tiles, the last flush with the edge */
    assert_int_equal(region_tile_starts(100, 64, 8, s, 8), 2);
    assert_true(s[0] == 0 && s[1] == 36);
    assert_int_equal(region_tile_starts(1280, 64, 0, s, 8), 8); /* at most max */
}

/* A ROI smaller than a tile: the tile is padded, the padding ignored. */
static void tile_padding_is_ignored(void **state)
{
    struct image im;
    gradient(&im, 16, 8);
    struct region r = {.x = 2, .y = 1, .w = 3, .h = 2};
    float px[16];
    uint8_t mask[16];
    char err[128];
    assert_int_equal(region_tile(&im, &r, 0, 0, 4, 1, px, mask, err, sizeof err), 0);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            bool in = x < 3 && y < 2;
            assert_int_equal(mask[y * 4 + x], in);
            float want = in ? (2 + x + 10 * (1 + y)) / 255.0f : REGION_IGNORED_VALUE;
            assert_float_equal(px[y * 4 + x], want, 1e-6);
        }
    image_free(&im);
}

/* Two frames of 2 x 2 tiles each: the set keeps each frame's tiles together. */
static void a_frames_tiles_stay_together(void **state)
{
    struct image im;
    gradient(&im, 24, 20);
    uint8_t *png;
    size_t len;
    char err[128];
    assert_int_equal(image_encode_png(&im, &png, &len, err, sizeof err), 0);
    struct image_set set = {.size = 16, .channels = 1};
    struct image_view v = {.tiles = true, .overlap = 4};
    assert_int_equal(image_set_add_region(&set, png, len, "frame", &v), 4);
    assert_int_equal(image_set_add_region(&set, png, len, "frame", &v), 4);
    assert_int_equal(image_set_add_encoded(&set, png, len, "whole"), 1);
    assert_int_equal(set.frames, 3);
    assert_true(set.first[0] == 0 && set.first[1] == 4 && set.first[2] == 8 && set.first[3] == 9);
    assert_null(set.masks); /* every pixel inspected */
    int nx, ny, x0[IMAGE_VIEW_MAX_TILES], y0[IMAGE_VIEW_MAX_TILES];
    assert_int_equal(image_view_tiles(&v, 16, 24, 20, &nx, &ny, x0, y0, err, sizeof err), 0);
    assert_true(nx == 2 && ny == 2 && x0[1] == 8 && y0[1] == 4);
    /* tile (1, 1) starts at frame pixel (8, 4) */
    assert_float_equal(set.pixels[3 * 256], (8 + 40) / 255.0f, 1e-6);
    free(png);
    image_set_free(&set);
    image_free(&im);
}

/* A ROI's 2 x 2 grid on a 40 x 20 frame, at cells of 10 px: in place, zero elsewhere. */
static void heatmap_in_place(void **state)
{
    float grid[4] = {1, 2, 3, 4}, out[HEATMAP_MAX_GRID * HEATMAP_MAX_GRID];
    struct heatmap_part part = {grid, 2, 2, {10, 0, 20, 20}};
    int gh, gw;
    heatmap_frame_grid(&part, 1, 40, 20, 10, 10, out, &gh, &gw);
    assert_true(gh == 2 && gw == 4);
    const float want[8] = {0, 1, 2, 0, 0, 3, 4, 0};
    for (int i = 0; i < 8; i++) assert_float_equal(out[i], want[i], 0);
    /* overlapping tiles: the larger value where both cover a cell */
    float a[1] = {5}, b[1] = {7};
    struct heatmap_part tiles[2] = {{a, 1, 1, {0, 0, 30, 20}}, {b, 1, 1, {10, 0, 30, 20}}};
    heatmap_frame_grid(tiles, 2, 40, 20, 10, 10, out, &gh, &gw);
    const float both[4] = {5, 7, 7, 7};
    for (int i = 0; i < 4; i++) assert_float_equal(out[i], both[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roi_syntax),
        cmocka_unit_test(roi_outside_the_frame),
        cmocka_unit_test(mask_scaled_to_the_roi),
        cmocka_unit_test(tiles_cover_a_side),
        cmocka_unit_test(tile_padding_is_ignored),
        cmocka_unit_test(a_frames_tiles_stay_together),
        cmocka_unit_test(heatmap_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
