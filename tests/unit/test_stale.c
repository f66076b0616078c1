/* test_stale.c — scoring_store_stale on a real SQLite file, the bound on how far scoring may lag:
 * the cut is the last frame stored before the bound, found by bisection over ids with gaps (frames
 * deleted by retention), every frame passed over is counted, a fresh next frame or no next frame
 * skips nothing, and a clock that stepped back cannot make it skip a frame it does not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>

#include "store/store.h"
#include "store/scoring_store.h"
#include "tmpdb.h"

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_stale_XXXXXX");
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
}

static void stale(struct scoring_store *ss, int64_t after, int64_t before, int64_t want_last,
                  int64_t want_count)
{
    int64_t last = -1, count = -1;
    assert_int_equal(scoring_store_stale(ss, 0, after, before, &last, &count), 0);
    if (last != want_last || count != want_count)
        fail_msg("after %lld before %lld: last %lld count %lld, want %lld %lld", (long long)after,
                 (long long)before, (long long)last, (long long)count, (long long)want_last,
                 (long long)want_count);
}

static void the_cut_and_the_count(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct store *s = store_open(f->path, err, sizeof err);
    if (!s) fail_msg("store_open: %s", err);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    /* frames 1..1000 stored at i ms, images large enough to need overflow pages */
    exec(db,
         "INSERT INTO cameras (id, name, driver, created_at) VALUES (1, 'line', 'synthetic', 0)");
    exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
             "INSERT INTO frames (id, camera_id, seq, captured_at, width, height, format, image, "
             "created_at) SELECT i, 1, i, i * 1000, 8, 8, 'jpeg', zeroblob(6000), i * 1000 FROM n");
    struct scoring_store *ss = scoring_store_open(f->path, err, sizeof err);
    if (!ss) fail_msg("scoring_store_open: %s", err);

    stale(ss, 0, 500500, 500, 500);       /* frames 1..500 were stored before 500.5 ms */
    stale(ss, 0, 500000, 499, 499);       /* the bound itself is not stale */
    stale(ss, 500, 500500, 500, 0);       /* the next frame is fresh: nothing */
    stale(ss, 0, 1, 0, 0);                /* none stale */
    stale(ss, 0, 1000000000, 1000, 1000); /* all stale */
    stale(ss, 1000, 1000000000, 1000, 0); /* no next frame */
    stale(ss, 123, 124500, 124, 1);       /* one */

    /* retention deleted 200..399: the bisection lands on the frames that are there */
    exec(db, "DELETE FROM frames WHERE id BETWEEN 200 AND 399");
    stale(ss, 0, 300500, 199, 199);
    stale(ss, 0, 400500, 400, 200);
    stale(ss, 150, 700500, 700, 550 - 200);

    /* the clock stepped back: frames 801..810 carry earlier times than 800; all frames passed
     * over are counted, whatever their own time */
    exec(db, "UPDATE frames SET created_at = created_at - 500000 WHERE id BETWEEN 801 AND 810");
    int64_t last = 0, count = 0;
    assert_int_equal(scoring_store_stale(ss, 0, 700, 850500, &last, &count), 0);
    assert_true(last >= 810 && last <= 850);
    int64_t in_range = 0;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT COUNT(*) FROM frames WHERE id > 700 AND id <= ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, last);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    in_range = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(count, in_range);

    scoring_store_close(ss);
    sqlite3_close(db);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(the_cut_and_the_count, setup, tmpdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
