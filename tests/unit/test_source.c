/* test_source.c — the source.h interface through the synthetic driver: dispatch, frame formats,
 * the frame count, fps pacing and timeouts, and parameter checking with readable reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "source.h"
#include "synthetic.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void registry_lists_the_drivers(void **state)
{
    const char *const *names = source_drivers();
    int found = 0;
    for (int i = 0; names[i]; i++) found += strcmp(names[i], "synthetic") == 0;
    assert_int_equal(found, 1);
    for (int st = -5; st <= 2; st++) assert_non_null(source_strerror(st));
    assert_string_equal(source_strerror(SOURCE_END), "end of source");
    source_close(NULL);
}

static void raw_frames_equal_the_renderer_and_the_count_ends(void **state)
{
    const struct source_param p[] = {{"width", "80"},    {"height", "60"}, {"fps", "0"},
                                     {"format", "rgb8"}, {"frames", "3"},  {"defect_rate", "1"}};
    char err[128];
    struct source *s = source_open("cam", "synthetic", p, 6, NULL, err, sizeof err);
    assert_non_null(s);
    struct synthetic_params sp;
    synthetic_params_default(&sp);
    sp.width = 80, sp.height = 60, sp.defect_rate = 1;
    for (uint64_t seq = 0; seq < 3; seq++) {
        struct frame f;
        assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
        assert_int_equal(f.format, FRAME_RGB8);
        assert_int_equal(f.seq, seq);
        assert_int_equal(f.width, 80);
        assert_int_equal(f.stride, 240);
        assert_int_equal(f.size, 240 * 60);
        assert_true(f.captured_at_us > 1600000000ll * 1000000);
        struct image im;
        struct frame_truth t;
        assert_int_equal(synthetic_render(&sp, seq, &im, &t), IMAGE_OK);
        assert_memory_equal(f.data, im.data, f.size);
        assert_true(f.has_truth);
        assert_memory_equal(&f.truth, &t, sizeof t);
        image_free(&im), frame_free(&f);
        assert_null(f.data);
    }
    struct frame f;
    assert_int_equal(source_next(s, &f, 1000), SOURCE_END);
    source_close(s);
}

static void jpeg_and_mono_frames_decode(void **state)
{
    char err[128];
    const struct source_param jp[] = {{"width", "120"}, {"height", "90"}, {"fps", "0"}};
    struct source *s = source_open("cam", "synthetic", jp, 3, NULL, err, sizeof err);
    assert_non_null(s);
    struct frame f;
    assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
    assert_int_equal(f.format, FRAME_JPEG);
    struct image im;
    assert_int_equal(image_decode(f.data, f.size, NULL, &im, err, sizeof err), IMAGE_OK);
    assert_int_equal(im.width, 120);
    assert_int_equal(im.height, 90);
    assert_int_equal(f.width, 120);
    image_free(&im), frame_free(&f);
    source_close(s);

    const struct source_param mp[] = {{"width", "50"}, {"height", "40"}, {"format", "mono8"}};
    s = source_open("cam", "synthetic", mp, 3, NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
    assert_int_equal(f.format, FRAME_MONO8);
    assert_int_equal(f.size, 50 * 40);
    assert_int_equal(f.stride, 50);
    frame_free(&f);
    source_close(s);
}

static void fps_is_kept_without_drift(void **state)
{
    const struct source_param p[] = {
        {"width", "64"}, {"height", "48"}, {"fps", "50"}, {"format", "mono8"}};
    char err[128];
    struct source *s = source_open("cam", "synthetic", p, 4, NULL, err, sizeof err);
    assert_non_null(s);
    struct frame f;
    assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
    frame_free(&f);
    double t0 = now_ms();
    for (int i = 0; i < 15; i++) {
        assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
        frame_free(&f);
    }
    /* 15 periods of 20 ms: never faster; slower only by what a busy machine takes (the deadlines
     * are absolute, so a late frame does not push the later ones back) */
    double dt = now_ms() - t0;
    assert_true(dt > 280 && dt < 2000);
    source_close(s);
}

static void a_short_timeout_returns_before_the_frame(void **state)
{
    const struct source_param p[] = {{"width", "32"}, {"height", "32"}, {"fps", "2"}};
    char err[128];
    struct source *s = source_open("cam", "synthetic", p, 3, NULL, err, sizeof err);
    assert_non_null(s);
    struct frame f;
    assert_int_equal(source_next(s, &f, 0), SOURCE_OK); /* the first frame is due at once */
    frame_free(&f);
    double t0 = now_ms();
    assert_int_equal(source_next(s, &f, 50), SOURCE_TIMEOUT);
    double dt = now_ms() - t0;
    assert_true(dt >= 45 && dt < 300);
    assert_null(f.data);
    assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
    assert_int_equal(f.seq, 1);
    frame_free(&f);
    source_close(s);
}

static void bad_params_are_rejected_with_a_reason(void **state)
{
    char err[128];
    assert_int_equal(source_check_param("synthetic", "fps", "20", err, sizeof err), 0);
    assert_int_equal(source_check_param("synthetic", "defect_rate", "0.25", err, sizeof err), 0);
    const char *bad[][2] = {{"fps", "-1"},        {"fps", "fast"},       {"fps", "20x"},
                            {"width", "8"},       {"height", "100000"},  {"format", "png"},
                            {"defect_rate", "2"}, {"jpeg_quality", "0"}, {"frames", "-3"},
                            {"seed", ""},         {"no_such_key", "1"}};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = 0;
        assert_int_equal(source_check_param("synthetic", bad[i][0], bad[i][1], err, sizeof err),
                         -1);
        assert_true(strlen(err) > 5);
    }
    assert_int_equal(source_check_param("nonesuch", "fps", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown driver"));

    const struct source_param p[] = {{"width", "64"}, {"fps", "abc"}};
    int status = 0;
    assert_null(source_open("cam", "synthetic", p, 2, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_EINVAL);
    assert_non_null(strstr(err, "fps"));
    assert_null(source_open("cam", "nonesuch", NULL, 0, NULL, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_lists_the_drivers),
        cmocka_unit_test(raw_frames_equal_the_renderer_and_the_count_ends),
        cmocka_unit_test(jpeg_and_mono_frames_decode),
        cmocka_unit_test(fps_is_kept_without_drift),
        cmocka_unit_test(a_short_timeout_returns_before_the_frame),
        cmocka_unit_test(bad_params_are_rejected_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
