/* test_store.c — the SQLite store on a real file: migration from empty and re-run, pragmas, a
 * newer schema refused, a database made by the schema before recipes migrated with nothing lost,
 * frames written in a transaction and read back through the read-only pool (paging, camera and
 * recipe filters, image bytes, ground truth), rollback and foreign keys, a camera's recipe
 * switched and overridden by its file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tmpdb.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/embedded.h"
#include "store/scoring_store.h"
#include "store/store.h"

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_store_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdb_teardown(state);
}

static struct store *open_store(const char *path)
{
    char err[512];
    struct store *s = store_open(path, err, sizeof err);
    if (!s) fail_msg("store_open: %s", err);
    return s;
}

/* Runs a one-value query on a separate plain connection. */
static char *query_text(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_query(const char *path, const char *sql, const char *want)
{
    char *got = query_text(path, sql);
    if (strcmp(got, want) != 0) fail_msg("%s: got '%s', want '%s'", sql, got, want);
    free(got);
}

static void migrates_from_empty(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    assert_true(store_schema_latest() >= 1);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    store_close(s);
    assert_query(f->path, "PRAGMA auto_vacuum", "2"); /* INCREMENTAL */
    assert_query(f->path, "PRAGMA journal_mode", "wal");
    assert_query(
        f->path,
        "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE "
        "type = 'table' ORDER BY name)",
        "alerts,cameras,events,frames,heatmaps,models,recipes,regions,results,sqlite_sequence,"
        "verdicts,verdicts_start,webhook_outbox");
}

/* Runs sql on a plain connection (foreign keys on, as the daemon's). */
static void run_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "failed");
    sqlite3_close(db);
}

/* A database as the schema before recipes (migrations 1 to 6) made it, with two cameras' frames,
 * the model that scored them all, a retired and a 'training' row, results and alerts: after the
 * migration every camera's default recipe has that model, each frame its camera's recipe, the
 * 'training' row is rejected, every reference holds, and each recipe then trains on its own. */
static void migrates_before_recipes(void **state)
{
    struct fixture *f = *state;
    for (int v = 1; v <= 6; v++) {
        const struct embed_file *m = NULL;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "schema/%04d_", v);
        for (const struct embed_file *e = embed_files; e->path && !m; e++)
            if (strncmp(e->path, prefix, strlen(prefix)) == 0) m = e;
        assert_non_null(m);
        run_sql(f->path, (const char *)m->data);
    }
    run_sql(f->path,
            "PRAGMA user_version = 6;"
            "INSERT INTO cameras (name, driver, created_at) VALUES ('top', 'synthetic', 1),"
            " ('side', 'synthetic', 2);"
            "INSERT INTO models (version, path, created_at, threshold, meta, status) VALUES"
            " ('v1', '/m1.safetensors', 10, 1.0, '{}', 'retired'),"
            " ('v2', '/m2.safetensors', 20, 2.0, '{\"bank\":\"/m2.bank\"}', 'active'),"
            " ('v3', '/m3.safetensors', 30, NULL, NULL, 'training');"
            "INSERT INTO frames (camera_id, seq, captured_at, width, height, format, image,"
            " created_at) VALUES (1, 1, 1, 8, 8, 'jpeg', x'00', 100), (2, 1, 1, 8, 8, 'jpeg',"
            " x'00', 101), (1, 2, 2, 8, 8, 'jpeg', x'00', 102);"
            "INSERT INTO results (frame_id, model_id, score, score_norm, flagged, latency_us,"
            " created_at) VALUES (1, 2, 3.0, 1.5, 1, 5, 110), (2, 2, 1.0, 0.5, 0, 5, 111);"
            "INSERT INTO alerts (frame_id, model_id, camera_id, created_at, score, score_norm,"
            " threshold) VALUES (1, 2, 1, 110, 3.0, 1.5, 2.0);");
    struct store *s = open_store(f->path);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    assert_query(f->path, "SELECT group_concat(name || ':' || model_id, ',') FROM recipes",
                 "top:2,side:2");
    assert_query(f->path,
                 "SELECT group_concat(x, ',') FROM (SELECT f.id || r.name AS x FROM frames f JOIN "
                 "recipes r ON r.id = f.recipe_id ORDER BY f.id)",
                 "1top,2side,3top");
    assert_query(f->path, "SELECT group_concat(version || ':' || status, ',') FROM models",
                 "v1:retired,v2:active,v3:rejected");
    assert_query(f->path, "SELECT count(*) FROM results WHERE model_id = 2", "2");
    assert_query(f->path, "SELECT model_id || ',' || camera_id FROM alerts", "2,1");
    assert_query(f->path, "SELECT count(*) FROM pragma_foreign_key_check", "0");
    assert_query(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'models_one_active'",
                 "0");
    char err[512];
    struct scoring_store *ss = scoring_store_open(f->path, err, sizeof err);
    if (!ss) fail_msg("scoring_store_open: %s", err);
    struct model_row row;
    assert_int_equal(scoring_store_active_model(ss, "side", &row), 1);
    assert_string_equal(row.version, "v2");
    assert_string_equal(row.bank, "/m2.bank");
    /* a new model of top leaves side's (the old shared one) active; side's own retires it */
    assert_int_equal(scoring_store_register_model(ss, "top", "v4", "/m4.safetensors", "/m4.bank",
                                                  1.5, 10, 0.1, "{}", true, NULL, NULL, 0),
                     0);
    assert_query(f->path, "SELECT status FROM models WHERE version = 'v2'", "active");
    assert_int_equal(scoring_store_register_model(ss, "side", "v5", "/m5.safetensors", "/m5.bank",
                                                  1.5, 10, 0.1, "{}", true, NULL, NULL, 0),
                     0);
    assert_query(f->path, "SELECT status FROM models WHERE version = 'v2'", "retired");
    assert_query(f->path,
                 "SELECT group_concat(r.name || ':' || m.version, ',') FROM recipes r JOIN models"
                 " m ON m.id = r.model_id",
                 "top:v4,side:v5");
    /* the model triggers still feed the event log: after the three rows made before the
     * migration, v4 added, then v2 retired and v5 added */
    assert_query(f->path, "SELECT group_concat(ref, ',') FROM events WHERE kind = 'model'",
                 "1,2,3,4,2,5");
    scoring_store_close(ss);
    store_close(s);
    /* the states nothing wrote are gone from the schema */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE models SET status = 'training' WHERE id = 1", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
}

/* A camera's recipe: the file's, a switch that holds while the file says the same, and a switch
 * the file then overrides; frames record the recipe and list by it. */
static void camera_recipes(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t cam, top, other, again;
    char name[64];
    assert_int_equal(store_camera(s, "cam", "synthetic", &cam), 0);
    assert_int_equal(store_camera_recipe(s, cam, "top", name, sizeof name, &top), 0);
    assert_string_equal(name, "top");
    assert_int_equal(store_switch_recipe(s, cam, "other", "top", &other), 0);
    assert_true(other != top);
    assert_int_equal(store_camera_recipe(s, cam, "top", name, sizeof name, &again), 0);
    assert_string_equal(name, "other"); /* the switch holds: the file still says top */
    assert_int_equal(again, other);
    assert_int_equal(store_camera_recipe(s, cam, "third", name, sizeof name, &again), 0);
    assert_string_equal(name, "third"); /* the file changed: its recipe wins, the switch ends */
    assert_int_equal(store_camera_recipe(s, cam, "top", name, sizeof name, &again), 0);
    assert_string_equal(name, "top");
    assert_int_equal(again, top);
    assert_query(f->path, "SELECT count(*) FROM cameras WHERE recipe IS NOT NULL", "0");
    store_close(s);
}

static void rerun_is_idempotent(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t cam;
    assert_int_equal(store_camera(s, "a", "synthetic", &cam), 0);
    store_close(s);
    s = open_store(f->path);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    int64_t again;
    assert_int_equal(store_camera(s, "a", "synthetic", &again), 0);
    assert_int_equal(again, cam);
    store_close(s);
    assert_query(f->path, "SELECT count(*) FROM cameras", "1");
}

static void newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    store_close(open_store(f->path));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_null(store_open(f->path, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

static struct store_frame frame(int64_t camera, uint64_t seq, const char *bytes)
{
    return (struct store_frame){.camera_id = camera,
                                .seq = seq,
                                .captured_at_us = 1700000000000000 + (int64_t)seq,
                                .width = 64,
                                .height = 48,
                                .format = FRAME_JPEG,
                                .image = bytes,
                                .image_size = strlen(bytes)};
}

/* Writes frames 0..4 of camera a (even ones with ground truth) and 0..2 of camera b. */
static void write_sample(struct store *s)
{
    int64_t a, b, id;
    assert_int_equal(store_camera(s, "a", "synthetic", &a), 0);
    assert_int_equal(store_camera(s, "b", "folder", &b), 0);
    assert_int_equal(store_begin(s), 0);
    for (uint64_t i = 0; i < 5; i++) {
        char bytes[32];
        snprintf(bytes, sizeof bytes, "a-image-%llu", (unsigned long long)i);
        struct store_frame fr = frame(a, i, bytes);
        if (i % 2 == 0) {
            fr.has_truth = true;
            fr.truth = i == 2 ? (struct frame_truth){DEFECT_HOLE, 1, 2, 3, 4}
                              : (struct frame_truth){DEFECT_NONE, 0, 0, 0, 0};
        }
        assert_int_equal(store_insert_frame(s, &fr, &id), 0);
    }
    for (uint64_t i = 0; i < 3; i++) {
        struct store_frame fr = frame(b, i, "b-image");
        fr.format = FRAME_PNG;
        assert_int_equal(store_insert_frame(s, &fr, &id), 0);
    }
    assert_int_equal(store_commit(s), 0);
}

static struct store_pool *open_pool(const char *path)
{
    char err[512];
    struct store_pool *p = store_pool_open(path, 2, err, sizeof err);
    if (!p) fail_msg("store_pool_open: %s", err);
    return p;
}

static void frames_round_trip(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    write_sample(s);
    struct store_pool *pool = open_pool(f->path);
    struct store_reader *r = store_pool_get(pool);
    struct store_frame_info list[10];

    int n = store_list_frames(r, NULL, 0, list, 10);
    assert_int_equal(n, 8);
    for (int i = 1; i < n; i++) assert_true(list[i].id < list[i - 1].id);
    assert_string_equal(list[0].camera, "b");
    assert_string_equal(list[0].format, "png");

    n = store_list_frames(r, "a", 0, list, 2); /* newest two of a, then the page before them */
    assert_int_equal(n, 2);
    assert_int_equal(list[0].seq, 4);
    assert_int_equal(list[1].seq, 3);
    n = store_list_frames(r, "a", list[1].id, list, 10);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].seq, 2);
    assert_true(list[0].has_truth);
    assert_int_equal(list[0].truth.defect, DEFECT_HOLE);
    assert_int_equal(list[0].truth.x1, 3);
    assert_false(list[1].has_truth);
    assert_true(list[2].has_truth);
    assert_int_equal(list[2].truth.defect, DEFECT_NONE);
    assert_int_equal(list[2].width, 64);
    assert_int_equal(list[2].captured_at_us, 1700000000000000);
    assert_int_equal(store_list_frames(r, "nobody", 0, list, 10), 0);

    struct store_frame_info info;
    void *data;
    size_t size;
    assert_int_equal(store_get_image(r, list[0].id, &data, &size, &info), 1);
    assert_int_equal(size, strlen("a-image-2"));
    assert_memory_equal(data, "a-image-2", size);
    assert_int_equal(info.image_size, (int64_t)size);
    free(data);
    assert_int_equal(store_get_frame(r, 999, &info), 0);
    assert_int_equal(store_get_image(r, 999, &data, &size, &info), 0);
    assert_int_equal(store_has_camera(r, "b"), 1);
    assert_int_equal(store_has_camera(r, "c"), 0);

    int64_t frames, bytes;
    assert_int_equal(store_stats(r, &frames, &bytes), 0);
    assert_int_equal(frames, 8);
    assert_true(bytes > 0);
    store_pool_put(pool, r);
    store_pool_close(pool);
    store_close(s);
}

static void rollback_and_foreign_keys(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t a;
    assert_int_equal(store_camera(s, "a", "synthetic", &a), 0);
    assert_int_equal(store_begin(s), 0);
    struct store_frame fr = frame(a, 0, "x");
    assert_int_equal(store_insert_frame(s, &fr, NULL), 0);
    store_rollback(s);
    assert_query(f->path, "SELECT count(*) FROM frames", "0");

    assert_int_equal(store_begin(s), 0);
    fr.camera_id = a + 100;                                 /* no such camera */
    assert_int_equal(store_insert_frame(s, &fr, NULL), -1); /* foreign keys are on */
    assert_non_null(strstr(store_errmsg(s), "FOREIGN KEY"));
    store_rollback(s);
    assert_query(f->path, "SELECT count(*) FROM frames", "0");
    store_close(s);
}

static void camera_driver_update(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t a, again;
    assert_int_equal(store_camera(s, "a", "synthetic", &a), 0);
    assert_int_equal(store_camera(s, "a", "folder", &again), 0);
    assert_int_equal(again, a);
    store_close(s);
    assert_query(f->path, "SELECT driver FROM cameras WHERE name = 'a'", "folder");
}

/* ---- the WAL stays within its bound while readers always hold a snapshot ---- */

struct reader_loop {
    const char *path;
    int stagger_us;
    atomic_bool *stop;
};

/* Short read transactions back to back, as the scorer, the results feed and HTTP requests make. */
static void *read_loop(void *arg)
{
    struct reader_loop *r = arg;
    sqlite3 *db;
    if (sqlite3_open_v2(r->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return NULL;
    sqlite3_busy_timeout(db, 5000);
    usleep(r->stagger_us);
    while (!atomic_load(r->stop)) {
        sqlite3_exec(db, "BEGIN; SELECT count(*) FROM frames;", NULL, NULL, NULL);
        usleep(3000);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return NULL;
}

static long long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static void wal_bounded_under_readers(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t cam, id;
    assert_int_equal(store_camera(s, "a", "synthetic", &cam), 0);
    assert_int_equal(store_set_limits(s, 0, 64 << 10), 0); /* 16 pages of 4 KiB */
    atomic_bool stop = false;
    struct reader_loop loops[2] = {{f->path, 0, &stop}, {f->path, 1500, &stop}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, read_loop, &loops[i]);
    static char image[8192];
    memset(image, 'x', sizeof image - 1);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    long long most = 0;
    for (uint64_t i = 0; i < 300; i++) { /* 2.4 MB in all: 37 bounds' worth */
        struct store_frame fr = frame(cam, i, image);
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_insert_frame(s, &fr, &id), 0);
        assert_int_equal(store_commit(s), 0);
        long long now = file_bytes(wal);
        most = now > most ? now : most;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    store_close(s);
    /* twice the bound and a transaction, and room for truncations that waited in vain while a
     * reader thread was off the CPU (a loaded machine: 4.5 bounds seen); without the hook the
     * WAL holds every commit, 2.4 MB and more */
    if (most > 16 * (64 << 10)) fail_msg("the WAL grew to %lld bytes past a bound of 65536", most);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrates_from_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(migrates_before_recipes, setup, teardown),
        cmocka_unit_test_setup_teardown(camera_recipes, setup, teardown),
        cmocka_unit_test_setup_teardown(rerun_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(frames_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_and_foreign_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(camera_driver_update, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_bounded_under_readers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
