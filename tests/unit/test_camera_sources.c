/* test_camera_sources.c — the line-camera drivers reached through source.h, as the daemon reaches
 * them: Aravis's fake GigE Vision camera (on loopback, started here) opened with nothing but
 * `device =`, parameters checked by the driver's own setter, and libcamera's clear "no camera"
 * when it is built in. Shares the fake camera's lock file with test_aravis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arv.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "source.h"

static bool listed(const char *driver)
{
    for (const char *const *n = source_drivers(); *n; n++)
        if (strcmp(*n, driver) == 0) return true;
    return false;
}

static void aravis_params_are_checked_by_the_driver(void **state)
{
    char err[256];
    assert_true(listed("aravis"));
    assert_int_equal(source_check_param("aravis", "device", "Aravis-Fake-GV01", err, sizeof err),
                     0);
    assert_int_equal(source_check_param("aravis", "trigger", "sometimes", err, sizeof err), -1);
    assert_non_null(strstr(err, "trigger"));
    assert_int_equal(source_check_param("aravis", "loop", "true", err, sizeof err), -1);
}

static void the_fake_gige_camera_streams_through_source_open(void **state)
{
    ArvGvFakeCamera *fake = arv_gv_fake_camera_new("lo", "GV01");
    assert_non_null(fake);
    assert_true(arv_gv_fake_camera_is_running(fake));
    const struct source_param p[] = {{"device", "Aravis-Fake-GV01"}};
    char err[256];
    int status;
    struct source *s = source_open("line1", "aravis", p, 1, &status, err, sizeof err);
    if (!s) fail_msg("open: %s", err);
    uint64_t last = 0;
    for (int got = 0, tries = 0; got < 3 && tries < 40; tries++) {
        struct frame f;
        int rc = source_next(s, &f, 200);
        if (rc == SOURCE_TIMEOUT) continue;
        assert_int_equal(rc, SOURCE_OK);
        assert_int_equal(f.format, FRAME_MONO8);
        assert_true(f.width > 0 && f.height > 0);
        assert_int_equal(f.size, f.stride * f.height);
        if (got++) assert_true(f.seq > last);
        last = f.seq;
        frame_free(&f);
        if (got == 3) break;
        assert_true(tries < 39);
    }
    source_close(s);
    g_clear_object(&fake);
}

static void libcamera_says_which_cameras_it_found(void **state)
{
#ifdef INSPECTD_WITH_LIBCAMERA
    assert_true(listed("libcamera"));
    char err[256];
    int status;
    assert_null(source_open("board", "libcamera", NULL, 0, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_ENODEV);
    assert_true(strlen(err) > 10);
#else
    assert_false(listed("libcamera"));
#endif
}

int main(void)
{
    int lock = open("/tmp/inspectd-test-gvfake.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        perror("/tmp/inspectd-test-gvfake.lock");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aravis_params_are_checked_by_the_driver),
        cmocka_unit_test(the_fake_gige_camera_streams_through_source_open),
        cmocka_unit_test(libcamera_says_which_cameras_it_found),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    arv_shutdown();
    close(lock);
    return failed;
}
