/* test_libcam.c — the libcamera driver on a host without camera modules: the camera manager starts,
 * enumeration works (and finds what is there), opening a camera that is not there fails with a
 * message naming the cameras found, and bad configuration values are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "libcam.h"

static void count(const struct camera_info *ci, void *ctx)
{
    assert_string_equal(ci->driver, "libcamera");
    assert_true(ci->id[0] != '\0');
    (*(int *)ctx)++;
}

static void enumerates_and_names_what_it_found(void **state)
{
    char err[256];
    int seen = 0;
    int n = libcam_list(count, &seen, err, sizeof err);
    assert_true(n >= 0);
    assert_int_equal(n, seen);
    print_message("libcamera sees %d camera(s)\n", n);

    struct libcam_config cfg;
    int status = 0;
    libcam_config_init(&cfg);
    assert_int_equal(libcam_config_set(&cfg, "device", "/base/nowhere/nothing@0", err, sizeof err),
                     0);
    assert_null(libcam_open("test", &cfg, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_ENODEV);
    print_message("%s\n", err);
    assert_non_null(strstr(err, "no libcamera camera '/base/nowhere/nothing@0'"));
    assert_non_null(strstr(err, "cameras found: "));

    if (n == 0) { /* this host: the first camera is not there either, and the message says so */
        libcam_config_init(&cfg);
        assert_null(libcam_open("test", &cfg, &status, err, sizeof err));
        assert_int_equal(status, SOURCE_ENODEV);
        assert_non_null(strstr(err, "cameras found: none"));
    }
}

static void config_rejects_bad_values(void **state)
{
    struct libcam_config cfg;
    char err[128];
    libcam_config_init(&cfg);
    assert_int_equal(cfg.buffers, 4);
    assert_int_equal(libcam_config_set(&cfg, "pixel_format", "nv12", err, sizeof err), -1);
    assert_non_null(strstr(err, "yuv420"));
    assert_int_equal(libcam_config_set(&cfg, "width", "0", err, sizeof err), -1);
    assert_int_equal(libcam_config_set(&cfg, "fps", "x", err, sizeof err), -1);
    assert_int_equal(libcam_config_set(&cfg, "buffers", "99", err, sizeof err), -1);
    assert_int_equal(libcam_config_set(&cfg, "exposure", "1", err, sizeof err), -1);
    assert_string_equal(err, "unknown key");
    assert_int_equal(libcam_config_set(&cfg, "pixel_format", "mjpeg", err, sizeof err), 0);
    assert_int_equal(cfg.pixel_format, LIBCAM_MJPEG);
    assert_int_equal(libcam_config_set(&cfg, "fps", "30", err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(enumerates_and_names_what_it_found),
        cmocka_unit_test(config_rejects_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
