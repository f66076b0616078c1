/* test_reload.c — the config reload: which keys apply live and which need a restart (and no
 * difference read into two loads of the same file), the refusal to drop the token of a listener
 * that is not on loopback, camera sections compared and copied, and a real pipeline on a real
 * SQLite file reconfigured while it captures: the unchanged camera never stops (its sequence
 * numbers have no gap and nothing is dropped), the changed one restarts with its new parameters,
 * the removed one stops, the added one stores frames, a camera added back finds its slot and
 * counters, and a new camera takes over a removed one's slot only with fresh counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "array.h"
#include "tmpdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "capture/pipeline.h"
#include "run/reload.h"
#include "store/store.h"

static const char base_text[] = "[http]\nlisten = 127.0.0.1:8080\nthreads = 4\n"
                                "[store]\npath = ./x.db\njpeg_quality = 90\nbatch_frames = 64\n"
                                "batch_ms = 20\n[pipeline]\nqueue_size = 256\n"
                                "[trainer]\nenabled = true\nminutes = 10\n"
                                "[log]\nlevel = info\n"
                                "[camera.a]\ndriver = synthetic\nfps = 20\nwidth = 64\n";

static void parse(struct config *c, const char *text)
{
    char err[600];
    if (config_parse_string(c, text, "test", err, sizeof err) < 0) fail_msg("%s", err);
}

/* base_text with one line replaced. */
static void parse_with(struct config *c, const char *from, const char *to)
{
    char text[2048];
    const char *at = strstr(base_text, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base_text), base_text, to,
             at + strlen(from));
    parse(c, text);
}

static void same_file_means_no_change(void **state)
{
    struct config a, b;
    parse(&a, base_text);
    parse(&b, base_text);
    struct reload_diff d;
    reload_diff(&a, &b, &d);
    assert_false(d.log_level || d.trainer || d.token || d.jpeg_quality);
    assert_string_equal(d.restart, "");
    config_free(&b);
    /* cameras are the pipeline's business: no restart key for them */
    parse_with(&b, "fps = 20\nwidth = 64\n", "fps = 5\n[camera.b]\ndriver = synthetic\n");
    reload_diff(&a, &b, &d);
    assert_string_equal(d.restart, "");
    config_free(&a);
    config_free(&b);
}

static void live_keys_are_flagged(void **state)
{
    struct {
        const char *from, *to;
        size_t flag; /* offset of the bool in struct reload_diff */
    } cases[] = {
        {"level = info", "level = debug", offsetof(struct reload_diff, log_level)},
        {"enabled = true", "enabled = false", offsetof(struct reload_diff, trainer)},
        {"minutes = 10", "minutes = 2.5", offsetof(struct reload_diff, trainer)},
        {"minutes = 10", "minutes = 10\nevery_frames = 77", offsetof(struct reload_diff, trainer)},
        {"minutes = 10", "minutes = 10\nimport = /w.safetensors",
         offsetof(struct reload_diff, trainer)},
        {"minutes = 10", "minutes = 10\ndim = 64\ndepth = 2",
         offsetof(struct reload_diff, trainer)},
        {"threads = 4\n", "threads = 4\ntoken = abc\n", offsetof(struct reload_diff, token)},
        {"threads = 4\n", "threads = 4\ntoken_file = /t\n", offsetof(struct reload_diff, token)},
        {"jpeg_quality = 90", "jpeg_quality = 70", offsetof(struct reload_diff, jpeg_quality)},
    };
    struct config a;
    parse(&a, base_text);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct config b;
        parse_with(&b, cases[i].from, cases[i].to);
        struct reload_diff d;
        reload_diff(&a, &b, &d);
        bool flags[4] = {d.log_level, d.trainer, d.token, d.jpeg_quality};
        size_t want = (cases[i].flag - offsetof(struct reload_diff, log_level)) / sizeof(bool);
        for (size_t k = 0; k < 4; k++)
            if (flags[k] != (k == want))
                fail_msg("case %zu (%s): flag %zu is wrong", i, cases[i].to, k);
        if (d.restart[0]) fail_msg("case %zu: restart '%s'", i, d.restart);
        config_free(&b);
    }
    config_free(&a);
}

static void restart_keys_are_named(void **state)
{
    struct {
        const char *from, *to, *named;
    } cases[] = {
        {"listen = 127.0.0.1:8080", "listen = 127.0.0.1:8081", "[http] listen"},
        {"listen = 127.0.0.1:8080", "listen = 127.0.0.2:8080", "[http] listen"},
        {"threads = 4", "threads = 8", "[http] threads"},
        {"threads = 4", "threads = 4\nmax_connections = 8", "[http] max_connections"},
        {"threads = 4", "threads = 4\ntimeout = 5", "[http] timeout"},
        {"threads = 4", "threads = 4\nmax_upload = 100", "[http] max_upload"},
        {"threads = 4", "threads = 4\ntls_cert = /c.pem\ntls_key = /k.pem",
         "[http] tls_cert/tls_key"},
        {"path = ./x.db", "path = ./y.db", "[store] path"},
        {"batch_frames = 64", "batch_frames = 10", "[store] batch_frames"},
        {"batch_ms = 20", "batch_ms = 100", "[store] batch_ms"},
        {"batch_ms = 20", "batch_ms = 20\nmax_size_mb = 500",
         "[store] max_size_mb/min_free_mb/flagged_days"},
        {"batch_ms = 20", "batch_ms = 20\nmin_free_mb = 10",
         "[store] max_size_mb/min_free_mb/flagged_days"},
        {"batch_ms = 20", "batch_ms = 20\nflagged_days = 7",
         "[store] max_size_mb/min_free_mb/flagged_days"},
        {"queue_size = 256", "queue_size = 1000", "[pipeline] queue_size"},
        {"queue_size = 256", "queue_size = 256\nmax_score_lag_s = 5", "[pipeline] max_score_lag_s"},
    };
    struct config a;
    parse(&a, base_text);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct config b;
        parse_with(&b, cases[i].from, cases[i].to);
        struct reload_diff d;
        reload_diff(&a, &b, &d);
        assert_string_equal(d.restart, cases[i].named);
        assert_false(d.log_level || d.trainer || d.token || d.jpeg_quality);
        config_free(&b);
    }
    struct config b;
    char text[2048];
    snprintf(text, sizeof text, "%s", base_text);
    memcpy(strstr(text, "8080"), "9090", 4);
    memcpy(strstr(text, "batch_ms = 20"), "batch_ms = 30", 13);
    memcpy(strstr(text, "level = info"), "level = warn", 12);
    parse(&b, text);
    struct reload_diff d;
    reload_diff(&a, &b, &d);
    assert_string_equal(d.restart, "[http] listen, [store] batch_ms");
    assert_true(d.log_level);
    config_free(&a);
    config_free(&b);
}

static void token_kept_off_loopback(void **state)
{
    struct config open, next;
    parse_with(&open, "listen = 127.0.0.1:8080", "listen = 0.0.0.0:8080\ntoken = secret");
    parse(&next, base_text); /* loopback, no token: valid on its own */
    assert_non_null(reload_refusal(&open, &next));
    assert_non_null(strstr(reload_refusal(&open, &next), "token"));
    config_free(&next);
    parse_with(&next, "listen = 127.0.0.1:8080", "listen = 0.0.0.0:8080\ntoken = other");
    assert_null(reload_refusal(&open, &next));
    config_free(&next);
    struct config local;
    parse(&local, base_text);
    parse_with(&next, "threads = 4\n", "threads = 4\ntoken = t\n");
    assert_null(reload_refusal(&local, &next)); /* adding a token is always fine */
    assert_null(reload_refusal(&next, &local)); /* and removing it on loopback */
    config_free(&next);
    config_free(&local);
    config_free(&open);
}

static void camera_sections_compare_and_copy(void **state)
{
    struct config a, b;
    parse(&a, "[camera.x]\ndriver = synthetic\nfps = 5\nwidth = 32\n");
    parse(&b, "[camera.x]\ndriver = synthetic\nwidth = 32\nfps = 5\n");
    assert_true(config_camera_equal(&a.cameras[0], &b.cameras[0])); /* order does not matter */
    config_free(&b);
    const char *other[] = {"[camera.x]\ndriver = synthetic\nfps = 5\nwidth = 33\n",
                           "[camera.x]\ndriver = synthetic\nfps = 5\n",
                           "[camera.x]\ndriver = synthetic\nfps = 5\nwidth = 32\nheight = 48\n",
                           "[camera.y]\ndriver = synthetic\nfps = 5\nwidth = 32\n",
                           "[camera.x]\ndriver = folder\nfps = 5\npath = /tmp\n"};
    for (size_t i = 0; i < ARRAY_LEN(other); i++) {
        parse(&b, other[i]);
        assert_false(config_camera_equal(&a.cameras[0], &b.cameras[0]));
        config_free(&b);
    }
    struct config_camera copy;
    assert_int_equal(config_camera_copy(&copy, &a.cameras[0]), 0);
    config_free(&a); /* the copy outlives its config */
    parse(&b, "[camera.x]\ndriver = synthetic\nwidth = 32\nfps = 5\n");
    assert_true(config_camera_equal(&copy, &b.cameras[0]));
    assert_string_equal(copy.params[0].value, "5");
    config_camera_free(&copy);
    assert_int_equal(copy.nparams, 0);
    config_free(&b);
}

/* ---- a real pipeline ---- */

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_reload_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdb_teardown(state);
}

static void cameras_config(struct config *c, const char *db, const char *cameras)
{
    char text[2048];
    snprintf(text, sizeof text, "[store]\npath = %s\n%s", db, cameras);
    parse(c, text);
}

static bool status_of(struct pipeline *p, const char *name, struct pipeline_camera_status *st)
{
    for (size_t i = 0; pipeline_camera_status(p, i, st); i++)
        if (strcmp(st->name, name) == 0) return true;
    return false;
}

/* Waits until the camera stored more than `than` frames (up to 3 s). */
static void wait_stored(struct pipeline *p, const char *name, uint64_t than)
{
    struct pipeline_camera_status st;
    for (int i = 0; i < 300; i++) {
        if (status_of(p, name, &st) && st.stored > than) return;
        usleep(10000);
    }
    fail_msg("camera %s stored no more than %llu frames", name, (unsigned long long)than);
}

struct rows {
    int64_t n, min_seq, max_seq, distinct_seq;
    int64_t widths[2]; /* frames at width 64, at width 32 */
};

static struct rows camera_rows(const char *db, const char *camera)
{
    sqlite3 *con;
    assert_int_equal(sqlite3_open_v2(db, &con, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(con,
                                        "SELECT count(*), min(seq), max(seq), count(DISTINCT seq),"
                                        " sum(f.width = 64), sum(f.width = 32) FROM frames f"
                                        " JOIN cameras c ON c.id = f.camera_id WHERE c.name = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    struct rows r = {sqlite3_column_int64(st, 0),
                     sqlite3_column_int64(st, 1),
                     sqlite3_column_int64(st, 2),
                     sqlite3_column_int64(st, 3),
                     {sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5)}};
    sqlite3_finalize(st);
    sqlite3_close(con);
    return r;
}

#define CAM(name, extra) "[camera." name "]\ndriver = synthetic\nfps = 100\nwidth = 64\n" extra

static void pipeline_reconfigures_only_what_changed(void **state)
{
    struct fixture *f = *state;
    char err[512];
    struct config c1, c2, c3, c4;
    cameras_config(&c1, f->path, CAM("steady", "") CAM("tuned", "") CAM("dropped", ""));
    struct store *store = store_open(f->path, err, sizeof err);
    assert_non_null(store);
    struct pipeline *p = pipeline_start(&c1, store, err, sizeof err);
    assert_non_null(p);
    config_free(&c1); /* the pipeline keeps its own copies */
    wait_stored(p, "steady", 10);
    wait_stored(p, "tuned", 10);
    wait_stored(p, "dropped", 10);
    struct pipeline_camera_status steady0, tuned0;
    assert_true(status_of(p, "steady", &steady0));
    assert_true(status_of(p, "tuned", &tuned0));

    /* tuned gets another width, dropped goes, added comes, steady stays as it was */
    cameras_config(&c2, f->path,
                   "[camera.added]\ndriver = synthetic\nfps = 100\nwidth = 64\n" CAM(
                       "steady", "") "[camera.tuned]\ndriver = synthetic\nfps = 100\nwidth = 32\n");
    assert_int_equal(pipeline_reconfigure(p, &c2), 3);
    assert_int_equal(pipeline_ncameras(p), 3);
    struct pipeline_camera_status st;
    const char *order[] = {"added", "steady", "tuned"}; /* the new config's order */
    for (size_t i = 0; i < 3; i++) {
        assert_true(pipeline_camera_status(p, i, &st));
        assert_string_equal(st.name, order[i]);
    }
    assert_false(pipeline_camera_status(p, 3, &st));
    assert_false(status_of(p, "dropped", &st));
    assert_true(status_of(p, "steady", &st));
    assert_int_equal(st.run, steady0.run); /* never restarted */
    assert_true(status_of(p, "tuned", &st));
    assert_true(st.run != tuned0.run);
    assert_true(st.captured >= tuned0.captured); /* its counters carry on */
    /* again with the same config: nothing to do */
    assert_int_equal(pipeline_reconfigure(p, &c2), 0);
    wait_stored(p, "added", 10);
    wait_stored(p, "tuned", st.stored + 10);
    int64_t dropped_rows = camera_rows(f->path, "dropped").n;

    /* dropped comes back: its old slot, its counters continue; added goes */
    cameras_config(&c3, f->path, CAM("steady", "") CAM("dropped", ""));
    assert_int_equal(pipeline_reconfigure(p, &c3), 3); /* added and tuned out, dropped in */
    assert_true(status_of(p, "dropped", &st));
    assert_true(st.captured >= (uint64_t)dropped_rows);
    wait_stored(p, "dropped", (uint64_t)dropped_rows + 5);

    /* Four slots used so far, two of them by removed cameras: twelve more cameras take the slots
     * never used, and one more takes over a removed camera's slot, with counters from zero. */
    char text[4096] = CAM("steady", "") CAM("dropped", "");
    for (int i = 0; i < CONFIG_MAX_CAMERAS - 4; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "[camera.fill%d]\ndriver = synthetic\nfps = 5\nwidth = 16\n", i);
    snprintf(text + strlen(text), sizeof text - strlen(text), CAM("late", ""));
    cameras_config(&c4, f->path, text);
    assert_int_equal(c4.ncameras, CONFIG_MAX_CAMERAS - 1);
    usleep(100000); /* the removed cameras' last frames are written */
    assert_true(pipeline_reconfigure(p, &c4) > 0);
    assert_int_equal(pipeline_ncameras(p), CONFIG_MAX_CAMERAS - 1);
    assert_true(status_of(p, "late", &st));
    assert_true(st.captured < 10); /* fresh: added and tuned had stored more than 10 each */
    wait_stored(p, "late", 5);

    pipeline_stop(p);
    struct pipeline_camera_status steady;
    assert_true(status_of(p, "steady", &steady));
    pipeline_free(p);
    store_close(store);

    /* steady: every frame from seq 0 on, none twice, none missing, none dropped */
    struct rows r = camera_rows(f->path, "steady");
    assert_int_equal(steady.dropped, 0);
    assert_int_equal(r.n, (int64_t)steady.stored);
    assert_int_equal(r.min_seq, 0);
    assert_int_equal(r.max_seq, r.n - 1);
    assert_int_equal(r.distinct_seq, r.n);
    /* tuned: frames at the old width, then at the new one */
    r = camera_rows(f->path, "tuned");
    assert_true(r.widths[0] >= 10 && r.widths[1] >= 10);
    assert_true(camera_rows(f->path, "added").n >= 10);
    assert_true(camera_rows(f->path, "late").n >= 5);
    config_free(&c2);
    config_free(&c3);
    config_free(&c4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_file_means_no_change),
        cmocka_unit_test(live_keys_are_flagged),
        cmocka_unit_test(restart_keys_are_named),
        cmocka_unit_test(token_kept_off_loopback),
        cmocka_unit_test(camera_sections_compare_and_copy),
        cmocka_unit_test_setup_teardown(pipeline_reconfigures_only_what_changed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
