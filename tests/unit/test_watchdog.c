/* test_watchdog.c — when the daemon may ping systemd's watchdog: progress between two snapshots
 * case by case (streaming cameras must capture and write, stalled ones must poll, cameras
 * reconnecting, starting, ended or restarted need nothing, the scorer must score or be idle), the
 * grace before no progress is a stall and the recovery after it, and snapshots of a real pipeline
 * on a real SQLite file with a real scorer: progress while it runs, a stall once its capture
 * threads are gone while the camera still reads as streaming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "array.h"
#include "tmpdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "capture/pipeline.h"
#include "scoring/scorer.h"
#include "store/store.h"
#include "run/watchdog.h"

#define S 1000000LL /* one second in microseconds */

static struct watchdog_camera cam(const char *name, uint64_t run, enum camera_state state,
                                  uint64_t captured, uint64_t written, uint64_t polls)
{
    struct watchdog_camera c = {
        .run = run, .state = state, .captured = captured, .written = written, .polls = polls};
    snprintf(c.name, sizeof c.name, "%s", name);
    return c;
}

/* Two streaming cameras and a scorer that has scored 10 frames, at t. */
static struct watchdog_snapshot base(int64_t t)
{
    struct watchdog_snapshot s = {.at_us = t, .ncameras = 2, .scorer_done = 10, .scorer_idle = 3};
    s.cameras[0] = cam("line1", 1, CAMERA_STREAMING, 100, 98, 120);
    s.cameras[1] = cam("line2", 2, CAMERA_STREAMING, 50, 50, 70);
    return s;
}

/* Everyone advanced by a bit. */
static struct watchdog_snapshot later(const struct watchdog_snapshot *s, int64_t dt)
{
    struct watchdog_snapshot n = *s;
    n.at_us += dt;
    for (size_t i = 0; i < n.ncameras; i++) {
        n.cameras[i].captured += 5;
        n.cameras[i].written += 5;
        n.cameras[i].polls += 5;
    }
    n.scorer_done += 4;
    return n;
}

static void expect_stuck(const struct watchdog_snapshot *a, const struct watchdog_snapshot *b,
                         const char *needle)
{
    char why[256] = "";
    assert_false(watchdog_progress(a, b, why, sizeof why));
    if (!strstr(why, needle)) fail_msg("why = '%s', expected '%s' in it", why, needle);
}

static void streaming_cameras_must_capture_and_write(void **state)
{
    struct watchdog_snapshot a = base(0), b = later(&a, S);
    char why[256];
    assert_true(watchdog_progress(&a, &b, why, sizeof why));

    b.cameras[1].captured = a.cameras[1].captured; /* line2's capture thread is stuck */
    expect_stuck(&a, &b, "camera line2: streaming, but no frame captured");

    b = later(&a, S);
    b.cameras[0].written = a.cameras[0].written; /* the writer is stuck */
    expect_stuck(&a, &b, "camera line1: frames captured, but none written");
    b.writer_retries = a.writer_retries + 3; /* no: it waits for room on a full disk */
    assert_true(watchdog_progress(&a, &b, why, sizeof why));

    /* nothing changed at all: the first camera is named */
    b = a;
    b.at_us += S;
    expect_stuck(&a, &b, "camera line1: streaming, but no frame captured");
}

static void stalled_cameras_must_poll(void **state)
{
    struct watchdog_snapshot a = base(0), b = later(&a, S);
    a.cameras[0].state = b.cameras[0].state = CAMERA_STALLED;
    b.cameras[0].captured = a.cameras[0].captured; /* no frame: that is what stalled means */
    b.cameras[0].written = a.cameras[0].written;
    char why[256];
    assert_true(watchdog_progress(&a, &b, why, sizeof why));
    b.cameras[0].polls = a.cameras[0].polls; /* but its loop must turn */
    expect_stuck(&a, &b, "camera line1: stalled, and its capture loop did not turn");
}

/* Reconnecting, opening or finished cameras are the daemon's own business: no counter needs to
 * move, and a camera that went from streaming to error in between is fine too. */
static void other_states_need_nothing(void **state)
{
    const enum camera_state states[] = {CAMERA_STARTING, CAMERA_ERROR, CAMERA_ENDED};
    for (size_t k = 0; k < ARRAY_LEN(states); k++) {
        struct watchdog_snapshot a = base(0), b = a;
        b.at_us += 20 * S;
        b.scorer_idle++;
        for (size_t i = 0; i < b.ncameras; i++) b.cameras[i].state = states[k];
        char why[256];
        assert_true(watchdog_progress(&a, &b, why, sizeof why));
    }
    /* no camera at all streaming, the scorer idle: progress */
    struct watchdog_snapshot a = base(0), b = a;
    a.cameras[0].state = a.cameras[1].state = CAMERA_ERROR;
    b = a;
    b.scorer_idle += 100;
    char why[256];
    assert_true(watchdog_progress(&a, &b, why, sizeof why));
}

/* A camera restarted by a reload (another run) or added since is not compared with the old one;
 * a removed camera is not looked for. */
static void restarted_and_added_cameras_start_afresh(void **state)
{
    struct watchdog_snapshot a = base(0), b = later(&a, S);
    b.cameras[1] = cam("line2", 7, CAMERA_STREAMING, 50, 50, 70); /* restarted: run 7 */
    b.cameras[2] = cam("line3", 8, CAMERA_STREAMING, 0, 0, 0);    /* added */
    b.ncameras = 3;
    char why[256];
    assert_true(watchdog_progress(&a, &b, why, sizeof why));

    struct watchdog_snapshot c = later(&b, S);
    c.cameras[2].captured = b.cameras[2].captured; /* from now on line3 is held to it */
    expect_stuck(&b, &c, "camera line3");

    c = later(&b, S);
    c.ncameras = 1; /* line2 and line3 removed */
    assert_true(watchdog_progress(&b, &c, why, sizeof why));
}

static void scorer_must_score_or_be_idle(void **state)
{
    struct watchdog_snapshot a = base(0), b = later(&a, S);
    char why[256];
    b.scorer_done = a.scorer_done; /* scored nothing, but found nothing to do: idle */
    b.scorer_idle = a.scorer_idle + 1;
    assert_true(watchdog_progress(&a, &b, why, sizeof why));
    b.scorer_idle = a.scorer_idle; /* neither: stuck inside a frame or a model load */
    expect_stuck(&a, &b, "scorer");
    b.scorer_done = a.scorer_done + 1; /* a failed frame counts as done */
    assert_true(watchdog_progress(&a, &b, why, sizeof why));
}

static void grace_is_half_the_interval_with_a_floor(void **state)
{
    assert_int_equal(watchdog_grace_us(30 * S, 20), 15 * S);
    assert_int_equal(watchdog_grace_us(4 * S, 20), WATCHDOG_GRACE_MIN_US + 20000);
    assert_int_equal(watchdog_grace_us(0, 10000), WATCHDOG_GRACE_MIN_US + 10 * S);
    assert_int_equal(watchdog_grace_us(120 * S, 10000), 60 * S);
}

/* The monitor: progress moves the reference; no progress is waited out for the grace, then it is
 * a stall; progress seen later ends the stall, and parts progressing at different moments add up
 * against the reference. */
static void stall_after_the_grace_and_recovery(void **state)
{
    struct watchdog w;
    struct watchdog_snapshot s0 = base(0);
    watchdog_init(&w, 10 * S, &s0);
    char why[256];
    struct watchdog_snapshot s1 = later(&s0, S);
    assert_int_equal(watchdog_check(&w, &s1, why, sizeof why), WATCHDOG_PROGRESS);
    assert_int_equal(w.last.at_us, S);

    /* line1 stops capturing: waiting until 10 s after the last progress, then stalled */
    struct watchdog_snapshot s = s1;
    for (int t = 2; t <= 10; t++) {
        s = later(&s, S);
        s.cameras[0].captured = s1.cameras[0].captured;
        s.cameras[0].written = s1.cameras[0].written;
        assert_int_equal(watchdog_check(&w, &s, why, sizeof why), WATCHDOG_WAITING);
    }
    s = later(&s, S); /* 11 s: 10 s since the last progress */
    s.cameras[0].captured = s1.cameras[0].captured;
    s.cameras[0].written = s1.cameras[0].written;
    assert_int_equal(watchdog_check(&w, &s, why, sizeof why), WATCHDOG_STALLED);
    assert_non_null(strstr(why, "camera line1"));
    assert_int_equal(w.last.at_us, S); /* still measured from the last progress */

    s = later(&s, S); /* it captures again */
    assert_int_equal(watchdog_check(&w, &s, why, sizeof why), WATCHDOG_PROGRESS);
    assert_int_equal(w.last.at_us, 12 * S);

    /* the camera advances in one tick, the scorer only in the next: progress then */
    struct watchdog_snapshot cam_only = later(&s, S);
    cam_only.scorer_done = s.scorer_done;
    cam_only.scorer_idle = s.scorer_idle;
    assert_int_equal(watchdog_check(&w, &cam_only, why, sizeof why), WATCHDOG_WAITING);
    struct watchdog_snapshot scorer_only = cam_only;
    scorer_only.at_us += S;
    scorer_only.scorer_done += 1;
    assert_int_equal(watchdog_check(&w, &scorer_only, why, sizeof why), WATCHDOG_PROGRESS);
}

/* ---- real parts ---- */

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_watchdog_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdb_teardown(state);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void real_pipeline_progresses_then_stalls(void **state)
{
    struct fixture *f = *state;
    char text[512], err[512];
    snprintf(text, sizeof text,
             "[store]\npath = %s\n[camera.belt]\ndriver = synthetic\nwidth = 64\nheight = 48\n"
             "fps = 100\n[camera.gone]\ndriver = folder\npath = %s/missing\n",
             f->path, f->dir);
    struct config cfg;
    if (config_parse_string(&cfg, text, "test", err, sizeof err) < 0) fail_msg("%s", err);
    struct store *store = store_open(f->path, err, sizeof err);
    assert_non_null(store);
    struct pipeline *p = pipeline_start(&cfg, store, err, sizeof err);
    assert_non_null(p);
    struct scorer *sc = scorer_start(f->path, 1, NULL, 0, err, sizeof err);
    assert_non_null(sc);
    usleep(300000);

    struct watchdog w;
    struct watchdog_snapshot s;
    watchdog_snapshot_take(&s, p, sc, mono_us());
    assert_int_equal(s.ncameras, 2);
    assert_string_equal(s.cameras[0].name, "belt");
    assert_int_equal(s.cameras[0].state, CAMERA_STREAMING);
    assert_int_equal(s.cameras[1].state, CAMERA_ERROR); /* its folder is missing: reconnecting */
    assert_true(s.cameras[0].run != s.cameras[1].run);
    watchdog_init(&w, watchdog_grace_us(0, cfg.batch_ms), &s);

    char why[256] = "";
    enum watchdog_verdict v = WATCHDOG_WAITING;
    for (int i = 0; i < 50 && v != WATCHDOG_PROGRESS; i++) {
        usleep(20000);
        watchdog_snapshot_take(&s, p, sc, mono_us());
        v = watchdog_check(&w, &s, why, sizeof why);
    }
    if (v != WATCHDOG_PROGRESS) fail_msg("no progress from a running pipeline: %s", why);
    assert_true(s.cameras[0].written > 0 && s.scorer_idle > 0);

    /* The capture threads and the writer end; the camera still reads as streaming: to the
     * watchdog that is a capture thread that hangs. */
    pipeline_stop(p);
    struct watchdog_snapshot stopped;
    watchdog_snapshot_take(&stopped, p, sc, mono_us());
    assert_int_equal(stopped.cameras[0].state, CAMERA_STREAMING);
    usleep(50000);
    struct watchdog_snapshot after;
    watchdog_snapshot_take(&after, p, sc, mono_us());
    assert_false(watchdog_progress(&stopped, &after, why, sizeof why));
    assert_non_null(strstr(why, "camera belt: streaming, but no frame captured"));
    watchdog_init(&w, 10 * S, &stopped);
    assert_int_equal(watchdog_check(&w, &after, why, sizeof why), WATCHDOG_WAITING);
    after.at_us = stopped.at_us + 10 * S; /* as if 10 s had passed like this */
    assert_int_equal(watchdog_check(&w, &after, why, sizeof why), WATCHDOG_STALLED);

    scorer_stop(sc);
    pipeline_free(p);
    store_close(store);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(streaming_cameras_must_capture_and_write),
        cmocka_unit_test(stalled_cameras_must_poll),
        cmocka_unit_test(other_states_need_nothing),
        cmocka_unit_test(restarted_and_added_cameras_start_afresh),
        cmocka_unit_test(scorer_must_score_or_be_idle),
        cmocka_unit_test(grace_is_half_the_interval_with_a_floor),
        cmocka_unit_test(stall_after_the_grace_and_recovery),
        cmocka_unit_test_setup_teardown(real_pipeline_progresses_then_stalls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
