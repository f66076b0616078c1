/* test_synthetic.c — the synthetic product renderer: frames are a function of (seed, seq), the
 * defect rate holds over 2000 frames, the truth box covers exactly the pixels a defect changes,
 * and a defect region keeps every defect inside it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "synthetic.h"

static struct synthetic_params params(int w, int h, double rate, enum synthetic_shape shape)
{
    struct synthetic_params p;
    synthetic_params_default(&p);
    p.width = w, p.height = h, p.defect_rate = rate, p.shape = shape;
    return p;
}

static void same_seq_same_frame_other_seq_other_frame(void **state)
{
    struct synthetic_params p = params(96, 80, 0.5, SYNTHETIC_MIXED);
    struct image a, b;
    struct frame_truth ta, tb;
    assert_int_equal(synthetic_render(&p, 17, &a, &ta), IMAGE_OK);
    assert_int_equal(synthetic_render(&p, 17, &b, &tb), IMAGE_OK);
    assert_int_equal(a.width, 96);
    assert_int_equal(a.height, 80);
    assert_int_equal(a.channels, 3);
    assert_memory_equal(a.data, b.data, a.stride * a.height);
    assert_memory_equal(&ta, &tb, sizeof ta);
    image_free(&b);
    assert_int_equal(synthetic_render(&p, 18, &b, &tb), IMAGE_OK);
    assert_memory_not_equal(a.data, b.data, a.stride * a.height);
    image_free(&b);
    p.seed = 2;
    assert_int_equal(synthetic_render(&p, 17, &b, &tb), IMAGE_OK);
    assert_memory_not_equal(a.data, b.data, a.stride * a.height);
    image_free(&b), image_free(&a);
}

static void defect_rate_holds_over_2000_frames(void **state)
{
    struct synthetic_params p = params(64, 64, 0.1, SYNTHETIC_MIXED);
    int count[4] = {0};
    for (uint64_t seq = 0; seq < 2000; seq++) {
        struct image im;
        struct frame_truth t;
        assert_int_equal(synthetic_render(&p, seq, &im, &t), IMAGE_OK);
        count[t.defect]++;
        if (t.defect != DEFECT_NONE) {
            assert_true(0 <= t.x0 && t.x0 < t.x1 && t.x1 <= 64);
            assert_true(0 <= t.y0 && t.y0 < t.y1 && t.y1 <= 64);
        } else {
            assert_int_equal(t.x0 | t.y0 | t.x1 | t.y1, 0);
        }
        image_free(&im);
    }
    int defects = count[DEFECT_SCRATCH] + count[DEFECT_HOLE] + count[DEFECT_STAIN];
    /* binomial(2000, 0.1): mean 200, sd 13.4; +-5 sd */
    assert_in_range(defects, 133, 267);
    for (int k = DEFECT_SCRATCH; k <= DEFECT_STAIN; k++) assert_in_range(count[k], 35, 100);
}

static int max_channel_diff(const struct image *a, const struct image *b, int x, int y)
{
    int m = 0;
    for (int c = 0; c < 3; c++) {
        int d = abs(a->data[y * a->stride + 3 * x + c] - b->data[y * b->stride + 3 * x + c]);
        if (d > m) m = d;
    }
    return m;
}

/* Renders seq with and without its defect: the two frames differ clearly inside the truth box
 * and (almost) nowhere outside it. */
static void check_defect_pixels(int w, int h, enum synthetic_shape shape, uint64_t seq)
{
    struct synthetic_params with = params(w, h, 1.0, shape), without = params(w, h, 0.0, shape);
    struct image a, b;
    struct frame_truth ta, tb;
    assert_int_equal(synthetic_render(&with, seq, &a, &ta), IMAGE_OK);
    assert_int_equal(synthetic_render(&without, seq, &b, &tb), IMAGE_OK);
    assert_int_not_equal(ta.defect, DEFECT_NONE);
    assert_int_equal(tb.defect, DEFECT_NONE);
    int strong = 0, area = (ta.x1 - ta.x0) * (ta.y1 - ta.y0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int d = max_channel_diff(&a, &b, x, y);
            bool inside = x >= ta.x0 && x < ta.x1 && y >= ta.y0 && y < ta.y1;
            if (!inside) assert_in_range(d, 0, 6);
            if (inside && d > 30) strong++;
        }
    assert_true(strong >= 3);
    /* visible but not huge: the box stays well below a quarter of the frame */
    assert_true(area * 4 < w * h);
    assert_true(strong * 100 >= area * 8);
    image_free(&a), image_free(&b);
}

static void defect_pixels_differ_inside_the_box_only(void **state)
{
    for (uint64_t seq = 0; seq < 24; seq++) {
        check_defect_pixels(64, 64, (enum synthetic_shape)(seq % 4), seq);
        check_defect_pixels(200, 150, (enum synthetic_shape)(seq % 4), seq);
    }
}

static void every_defect_kind_is_drawn(void **state)
{
    struct synthetic_params p = params(64, 64, 1.0, SYNTHETIC_NUT);
    int seen[4] = {0};
    for (uint64_t seq = 0; seq < 30; seq++) {
        struct image im;
        struct frame_truth t;
        assert_int_equal(synthetic_render(&p, seq, &im, &t), IMAGE_OK);
        seen[t.defect]++;
        image_free(&im);
    }
    assert_int_equal(seen[DEFECT_NONE], 0);
    for (int k = DEFECT_SCRATCH; k <= DEFECT_STAIN; k++) assert_true(seen[k] > 0);
}

/* defect_region: every defect lies inside the region (its truth box, and every pixel it changes),
 * most frames still show one, and a frame is the same as without the region outside it. */
static void defects_stay_in_their_region(void **state)
{
    char err[128];
    int shown = 0;
    for (uint64_t seq = 0; seq < 60; seq++) {
        enum synthetic_shape shape = (enum synthetic_shape)(seq % 4);
        struct synthetic_params with = params(96, 64, 1.0, shape), clean = params(96, 64, 0, shape);
        assert_int_equal(synthetic_param_set(&with, "defect_region", "48,0,48,64", err, sizeof err),
                         0);
        struct image a, b;
        struct frame_truth ta, tb;
        assert_int_equal(synthetic_render(&with, seq, &a, &ta), IMAGE_OK);
        assert_int_equal(synthetic_render(&clean, seq, &b, &tb), IMAGE_OK);
        if (ta.defect != DEFECT_NONE) {
            shown++;
            assert_true(ta.x0 >= 48 && ta.x1 <= 96 && ta.y0 >= 0 && ta.y1 <= 64);
        }
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 48; x++) assert_in_range(max_channel_diff(&a, &b, x, y), 0, 0);
        image_free(&a), image_free(&b);
    }
    assert_true(shown >= 45); /* the right half holds most of the product */
}

static void bad_params_are_refused(void **state)
{
    struct synthetic_params p = params(8, 64, 0.1, SYNTHETIC_SQUARE);
    struct image im;
    struct frame_truth t;
    assert_int_equal(synthetic_render(&p, 0, &im, &t), IMAGE_EINVAL);
    assert_null(im.data);
    p = params(64, 64, 1.5, SYNTHETIC_SQUARE);
    assert_int_equal(synthetic_render(&p, 0, &im, &t), IMAGE_EINVAL);

    char err[128];
    synthetic_params_default(&p);
    assert_int_equal(synthetic_param_set(&p, "shape", "nut", err, sizeof err), 0);
    assert_int_equal(p.shape, SYNTHETIC_NUT);
    assert_int_equal(synthetic_param_set(&p, "format", "mono8", err, sizeof err), 0);
    assert_int_equal(p.format, FRAME_MONO8);
    assert_int_equal(synthetic_param_set(&p, "shape", "star", err, sizeof err), -1);
    assert_non_null(strstr(err, "shape"));
    assert_int_equal(synthetic_param_set(&p, "defect_scale", "0", err, sizeof err), -1);
    assert_int_equal(synthetic_param_set(&p, "defect_region", "1,2,3", err, sizeof err), -1);
    assert_non_null(strstr(err, "defect_region"));
    assert_int_equal(synthetic_param_set(&p, "defect_region", "0,0,0,5", err, sizeof err), -1);
    assert_int_equal(synthetic_param_set(&p, "defect_region", "1,2,3,4x", err, sizeof err), -1);
    assert_int_equal(synthetic_param_set(&p, "colour", "red", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seq_same_frame_other_seq_other_frame),
        cmocka_unit_test(defect_rate_holds_over_2000_frames),
        cmocka_unit_test(defect_pixels_differ_inside_the_box_only),
        cmocka_unit_test(every_defect_kind_is_drawn),
        cmocka_unit_test(defects_stay_in_their_region),
        cmocka_unit_test(bad_params_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
