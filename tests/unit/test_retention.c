/* test_retention.c — retention on a real SQLite file: a database filled past a small limit loses
 * its oldest unprotected frames first (with their results and alerts) and keeps the flagged and
 * the confirmed ones, and the vacuum shrinks the file; confirmed defects go only after their
 * flagged_days and after every unprotected frame; with only protected frames left, images go off
 * (frames stored without them, read back as such) until an operator's review makes room; the
 * webhooks' outbox goes as the frames' derived rows do (its events older than the frames deleted
 * with them, and its oldest before images go off when only protected frames are left); a batch
 * that fails on a full database (max_page_count) is retried after making room and no frame is
 * lost; a database created without auto_vacuum is converted; the image cache's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tmpdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/image_cache.h"
#include "store/retention.h"
#include "store/store.h"
#include "store/scoring_store.h"
#include "capture/writer.h"

#define IMAGE_BYTES 8192

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_retention_XXXXXX");
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

/* n frames of IMAGE_BYTES incompressible bytes each, ids 1..n on a fresh database. */
static void fill(struct store *s, int n)
{
    int64_t cam, id;
    assert_int_equal(store_camera(s, "line", "synthetic", &cam), 0);
    unsigned char *bytes = malloc(IMAGE_BYTES);
    unsigned seed = 7;
    assert_int_equal(store_begin(s), 0);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < IMAGE_BYTES; k++) bytes[k] = (unsigned char)rand_r(&seed);
        struct store_frame fr = {.camera_id = cam,
                                 .seq = (uint64_t)i,
                                 .captured_at_us = 1000 + i,
                                 .width = 64,
                                 .height = 48,
                                 .format = FRAME_JPEG,
                                 .image = bytes,
                                 .image_size = IMAGE_BYTES};
        assert_int_equal(store_insert_frame(s, &fr, &id), 0);
    }
    assert_int_equal(store_commit(s), 0);
    free(bytes);
}

/* Runs SQL on a plain connection of its own (as the scorer and operators would). */
static void sql(const char *path, const char *text)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", text, msg);
    sqlite3_close(db);
}

static int64_t query_int(const char *path, const char *text)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, text, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", text, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int64_t file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* An alert on frame id in this state, from model 1 (created when missing). */
static void alert(const char *path, int64_t id, const char *state)
{
    char text[512];
    snprintf(text, sizeof text,
             "INSERT OR IGNORE INTO models (id, version, path, created_at) VALUES (1, 'v1', "
             "'/nonexistent', 0);"
             "INSERT INTO alerts (frame_id, model_id, camera_id, created_at, score, score_norm, "
             "threshold, state) VALUES (%lld, 1, 1, 0, 2, 2, 1, '%s')",
             (long long)id, state);
    sql(path, text);
}

static struct retention *make_retention(struct store *s, int64_t max_bytes, double flagged_days)
{
    char err[256];
    struct retention_config rc = {.max_bytes = max_bytes, .flagged_days = flagged_days};
    struct retention *r = retention_create(&rc, s, err, sizeof err);
    if (!r) fail_msg("%s", err);
    return r;
}

static bool frame_exists(const char *path, int64_t id)
{
    char text[96];
    snprintf(text, sizeof text, "SELECT count(*) FROM frames WHERE id = %lld", (long long)id);
    return query_int(path, text) == 1;
}

static void oldest_unprotected_go_first(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    fill(s, 300); /* about 2.5 MB */
    alert(f->path, 1, "new");
    alert(f->path, 2, "new");
    alert(f->path, 3, "defect");
    alert(f->path, 4, "false_positive");
    alert(f->path, 150, "new");
    sql(f->path, "INSERT INTO results SELECT id, 1, 0.5, 0.5, 0, 10, 0 FROM frames WHERE id <= 20;"
                 "INSERT INTO heatmaps VALUES (4, 1, 1, 1, x'00000000');"
                 "PRAGMA wal_checkpoint(TRUNCATE)");
    int64_t before = file_bytes(f->path);
    assert_true(before > 2400000);

    const int64_t max = 1 << 20;
    struct retention *r = make_retention(s, max, 30);
    /* one call does at most about 200 ms of work: on a loaded machine it may take a few */
    struct store_usage u;
    int calls = 0;
    do {
        assert_true(retention_prepare(r, s, 8 * IMAGE_BYTES, 8));
        assert_int_equal(store_usage(s, &u), 0);
    } while (++calls < 50 &&
             (u.free_pages > 0 || (u.pages - u.free_pages) * u.page_size + 8 * IMAGE_BYTES > max));
    struct retention_status st;
    retention_get_status(r, &st);
    assert_false(st.images_off);

    /* what stays fits with the batch; the protected frames stayed */
    assert_true((u.pages - u.free_pages) * u.page_size + 8 * IMAGE_BYTES <= max);
    const int64_t protected_ids[] = {1, 2, 3, 150};
    for (int i = 0; i < 4; i++) assert_true(frame_exists(f->path, protected_ids[i]));
    /* the unprotected ones went oldest first: a prefix of them, frame 4 (a false positive) too */
    int64_t kept = query_int(f->path, "SELECT min(id) FROM frames WHERE id > 3 AND id <> 150");
    assert_true(kept > 150);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM frames"), 4 + (300 - kept + 1));
    assert_int_equal((int64_t)st.frames_deleted, kept - 4 - 1);
    assert_int_equal(st.image_bytes_deleted, st.frames_deleted * IMAGE_BYTES);
    /* their results, heatmaps and alerts went with them */
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM results"), 3);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM heatmaps"), 0);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM alerts"), 4);
    /* the pages went back to the filesystem */
    assert_int_equal(u.free_pages, 0);
    store_close(s);
    sql(f->path, "PRAGMA wal_checkpoint(TRUNCATE)");
    int64_t after = file_bytes(f->path);
    print_message("file %lld -> %lld bytes, %llu frames deleted\n", (long long)before,
                  (long long)after, (unsigned long long)st.frames_deleted);
    assert_true(after <= max && after < before / 2);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM pragma_integrity_check "
                                        "WHERE integrity_check <> 'ok'"),
                     0);
    retention_free(r);
}

static void expired_defects_go_last(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    fill(s, 150);
    /* 1..120 confirmed defects, 1..60 of them stored 40 days ago; 121..150 unprotected (150, the
     * newest, is kept whatever happens: frame ids are never reused) */
    for (int64_t id = 1; id <= 120; id++) alert(f->path, id, "defect");
    sql(f->path, "UPDATE frames SET created_at = created_at - 40 * 86400000000 WHERE id <= 60");
    struct retention *r = make_retention(s, 1 << 20, 30);
    assert_true(retention_prepare(r, s, IMAGE_BYTES, 1));
    for (int64_t id = 121; id < 150; id++) assert_false(frame_exists(f->path, id));
    assert_true(frame_exists(f->path, 150));
    for (int64_t id = 61; id <= 120; id++) assert_true(frame_exists(f->path, id));
    int64_t first = query_int(f->path, "SELECT min(id) FROM frames");
    assert_true(first > 1 && first <= 61); /* the oldest expired defects went, in order */
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM frames"), 120 - first + 1 + 1);
    retention_free(r);
    store_close(s);
}

static void only_protected_stops_images(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    fill(s, 150);
    for (int64_t id = 1; id <= 150; id++) alert(f->path, id, id % 2 ? "new" : "defect");
    /* max_size_mb = 1 and the room retention keeps for a WAL beyond its bound (64 KiB here) */
    struct retention *r = make_retention(s, (1 << 20) + (64 << 10), 30);
    assert_false(retention_prepare(r, s, IMAGE_BYTES, 1));
    struct retention_status st;
    retention_get_status(r, &st);
    assert_true(st.images_off);
    assert_non_null(strstr(st.reason, "max_size_mb = 1"));
    assert_int_equal(st.frames_deleted, 0);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM frames"), 150);

    /* a frame stored without its image reads back as such */
    int64_t id;
    struct store_frame fr = {.camera_id = 1,
                             .seq = 999,
                             .width = 64,
                             .height = 48,
                             .format = FRAME_JPEG,
                             .image_missing = "storage full"};
    assert_int_equal(store_insert_frame(s, &fr, &id), 0);
    char err[256];
    struct store_pool *pool = store_pool_open(f->path, 1, err, sizeof err);
    assert_non_null(pool);
    struct store_reader *rd = store_pool_get(pool);
    struct store_frame_info info;
    void *data = (void *)1;
    size_t size = 1;
    assert_int_equal(store_get_image(rd, id, &data, &size, &info), STORE_NO_IMAGE);
    assert_null(data);
    assert_int_equal(size, 0);
    assert_string_equal(info.image_missing, "storage full");
    assert_int_equal(info.image_size, 0);
    assert_int_equal(store_get_image(rd, 1, &data, &size, &info), 1);
    assert_int_equal(size, IMAGE_BYTES);
    assert_string_equal(info.image_missing, "");
    free(data);
    store_pool_put(pool, rd);
    store_pool_close(pool);
    struct scoring_store *ss = scoring_store_open(f->path, err, sizeof err);
    assert_non_null(ss);
    int64_t camera = 0;
    assert_int_equal(scoring_store_frame(ss, id, &data, &size, &camera), 2);
    assert_null(data);
    assert_int_equal(camera, 1);
    scoring_store_close(ss);

    /* images stay off until it is time to look again; then an operator's review makes room */
    sql(f->path, "UPDATE alerts SET state = 'false_positive' WHERE frame_id <= 60");
    assert_false(retention_prepare(r, s, IMAGE_BYTES, 1));
    sleep(2);
    assert_true(retention_prepare(r, s, IMAGE_BYTES, 1));
    retention_get_status(r, &st);
    assert_true(st.images_off); /* until a write with images commits */
    retention_committed(r, s, true);
    retention_get_status(r, &st);
    assert_false(st.images_off);
    /* the reviewed ones, and the frame stored without its image (unprotected) */
    assert_true(st.frames_deleted > 0 && st.frames_deleted <= 61);
    assert_false(frame_exists(f->path, 1));
    assert_true(frame_exists(f->path, 61));
    retention_free(r);
    store_close(s);
}

/* Makes room as a writer would before a batch of 8 frames, until nothing is left to do. */
static void make_room_for_batch(struct retention *r, struct store *s, int64_t max)
{
    struct store_usage u;
    int calls = 0;
    do {
        assert_true(retention_prepare(r, s, 8 * IMAGE_BYTES, 8));
        assert_int_equal(store_usage(s, &u), 0);
    } while (++calls < 50 &&
             (u.free_pages > 0 || (u.pages - u.free_pages) * u.page_size + 8 * IMAGE_BYTES > max));
}

static void outbox_goes_with_frames(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    fill(s, 300);
    alert(f->path, 1, "new");
    /* frame i stored at i s; a webhook event queued when each was stored (a receiver that is
     * down), plus one for every frame's alert or result */
    sql(f->path, "UPDATE frames SET created_at = id * 1000000;"
                 "INSERT INTO webhook_outbox (hook, kind, body, created_at) SELECT 'mes', "
                 "'result', '{\"frame_id\":' || id || '}', created_at FROM frames;"
                 "PRAGMA wal_checkpoint(TRUNCATE)");
    const int64_t max = 1 << 20;
    struct retention *r = make_retention(s, max, 30);
    make_room_for_batch(r, s, max);
    struct retention_status st;
    retention_get_status(r, &st);
    assert_false(st.images_off);
    int64_t kept = query_int(f->path, "SELECT min(id) FROM frames WHERE id > 1");
    assert_true(kept > 100);
    /* the events from before the newest frame deleted went with the frames, in the same
     * transactions: the outbox holds none older than the frames kept (frame 1 aside: protected) */
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM webhook_outbox"), 300 - kept + 1);
    assert_int_equal(query_int(f->path, "SELECT min(created_at) FROM webhook_outbox"),
                     kept * 1000000);
    assert_int_equal((int64_t)st.outbox_events_deleted, kept - 1);
    retention_free(r);
    store_close(s);
}

static void only_protected_takes_the_outbox_first(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    fill(s, 100);
    for (int64_t id = 1; id <= 100; id++) alert(f->path, id, id % 2 ? "new" : "defect");
    /* a receiver down for long: 400 events of 4 KB wait, more than the frames take */
    sql(f->path, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
                 "INSERT INTO webhook_outbox (hook, kind, body, created_at) SELECT 'mes', "
                 "'alert', hex(randomblob(2000)), 5000000000000000 + i FROM n;"
                 "PRAGMA wal_checkpoint(TRUNCATE)");
    const int64_t max = 2 << 20;
    struct retention *r = make_retention(s, max, 30);
    make_room_for_batch(r, s, max); /* with images, every call */
    struct retention_status st;
    retention_get_status(r, &st);
    assert_false(st.images_off);
    assert_int_equal(st.frames_deleted, 0);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM frames"), 100);
    /* the oldest events went, the newest stayed, in order */
    int64_t left = query_int(f->path, "SELECT count(*) FROM webhook_outbox");
    assert_true(left > 0 && left < 400);
    assert_int_equal((int64_t)st.outbox_events_deleted, 400 - left);
    assert_int_equal(query_int(f->path, "SELECT min(id) FROM webhook_outbox"), 400 - left + 1);
    print_message("only protected frames: %lld of 400 webhook events deleted, images kept on\n",
                  (long long)(400 - left));
    retention_free(r);
    store_close(s);
}

static struct queue_item random_item(uint64_t seq, unsigned *seed)
{
    struct queue_item it = {.camera = 0};
    it.frame.format = FRAME_JPEG;
    it.frame.width = 64;
    it.frame.height = 48;
    it.frame.seq = seq;
    it.frame.size = IMAGE_BYTES;
    it.frame.data = malloc(IMAGE_BYTES);
    for (int k = 0; k < IMAGE_BYTES; k++) it.frame.data[k] = (uint8_t)rand_r(seed);
    return it;
}

static void full_database_batch_is_retried(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_store(f->path);
    int64_t cam;
    assert_int_equal(store_camera(s, "line", "synthetic", &cam), 0);
    /* retention aims at 4 MiB, but the database may not grow past 1 MiB: writes fail as full */
    struct retention *r = make_retention(s, 4 << 20, 30);
    assert_int_equal(store_set_limits(s, 1 << 20, 64 << 10), 0);
    struct frame_queue *q = queue_create(1000);
    struct metrics_camera counters[1] = {0};
    struct writer_status ws = {0};
    struct image_cache *cache = image_cache_create(16, 1 << 20);
    struct writer_config wc = {.store = s,
                               .queue = q,
                               .camera_ids = &cam,
                               .counters = counters,
                               .ncameras = 1,
                               .batch_frames = 16,
                               .batch_ms = 5,
                               .retention = r,
                               .images = cache,
                               .status = &ws};
    char err[256];
    struct writer *w = writer_start(&wc, err, sizeof err);
    assert_non_null(w);
    unsigned seed = 3;
    for (uint64_t i = 0; i < 400; i++) {
        struct queue_item it = random_item(i, &seed);
        assert_int_equal(queue_push(q, &it), -1);
        if (i % 16 == 0) usleep(1000);
    }
    writer_stop(w);
    struct retention_status st;
    retention_get_status(r, &st);
    print_message("%llu full retries, %llu frames deleted\n",
                  (unsigned long long)atomic_load(&ws.full_retries),
                  (unsigned long long)st.frames_deleted);
    assert_true(atomic_load(&ws.full_retries) >= 1 && st.full_events >= 1);
    assert_int_equal(atomic_load(&counters[0].stored), 400);
    assert_int_equal(atomic_load(&counters[0].failed), 0);
    assert_int_equal(atomic_load(&ws.without_image), 0);
    assert_int_equal(atomic_load(&ws.last_frame_id), 400);
    /* what is not there was deleted by retention, oldest first; the newest frame is there */
    int64_t n = query_int(f->path, "SELECT count(*) FROM frames");
    assert_int_equal(n + (int64_t)st.frames_deleted, 400);
    assert_int_equal(query_int(f->path, "SELECT min(id) FROM frames"), 400 - n + 1);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM pragma_integrity_check "
                                        "WHERE integrity_check <> 'ok'"),
                     0);
    image_cache_free(cache);
    queue_destroy(q);
    retention_free(r);
    store_close(s);
}

static void plain_database_becomes_incremental(void **state)
{
    struct fixture *f = *state;
    sql(f->path, "PRAGMA auto_vacuum = NONE; CREATE TABLE notes (x); INSERT INTO notes VALUES (1)");
    assert_int_equal(query_int(f->path, "PRAGMA auto_vacuum"), 0);
    struct store *s = open_store(f->path);
    store_close(s);
    assert_int_equal(query_int(f->path, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(query_int(f->path, "SELECT x FROM notes"), 1);
}

static void image_cache_bounds(void **state)
{
    struct image_cache *c = image_cache_create(3, 100);
    void *data;
    size_t size;
    for (int64_t id = 1; id <= 4; id++) image_cache_put(c, id, calloc(1, 10), 10);
    assert_false(image_cache_take(c, 1, &data, &size)); /* the oldest went for room */
    assert_int_equal(image_cache_dropped(c), 1);
    assert_true(image_cache_take(c, 3, &data, &size));
    assert_int_equal(size, 10);
    free(data);
    assert_false(image_cache_take(c, 3, &data, &size)); /* taken once */
    image_cache_put(c, 5, calloc(1, 95), 95);           /* bytes: 2 and 4 must go */
    assert_false(image_cache_take(c, 2, &data, &size));
    assert_false(image_cache_take(c, 4, &data, &size));
    assert_true(image_cache_take(c, 5, &data, &size));
    free(data);
    image_cache_put(c, 6, calloc(1, 200), 200); /* larger than the cache: freed at once */
    assert_false(image_cache_take(c, 6, &data, &size));
    image_cache_put(c, 7, calloc(1, 10), 10); /* freed by image_cache_free */
    image_cache_free(c);
    image_cache_put(NULL, 8, calloc(1, 10), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(oldest_unprotected_go_first, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_defects_go_last, setup, teardown),
        cmocka_unit_test_setup_teardown(only_protected_stops_images, setup, teardown),
        cmocka_unit_test_setup_teardown(outbox_goes_with_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(only_protected_takes_the_outbox_first, setup, teardown),
        cmocka_unit_test_setup_teardown(full_database_batch_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_database_becomes_incremental, setup, teardown),
        cmocka_unit_test(image_cache_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
