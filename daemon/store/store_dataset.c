/* store_dataset.c — the SQL of dataset exports: the frames of one kind (normal, false positive,
 * confirmed defect) under a camera, recipe and capture-time filter, counted or read a keyset page
 * at a time. Only small columns are read here; images are read one at a time by the caller. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store_dataset.h"

/* The frames of each kind, as a condition on frames f (LEFT JOINed alerts a). */
static const char *const kind_sql[] = {
    [DATASET_NORMAL] = "a.id IS NULL AND (f.defect IS NULL OR f.defect = 'none')"
                       " AND f.image_missing IS NULL AND length(f.image) > 0"
                       " AND NOT EXISTS (SELECT 1 FROM results r WHERE r.frame_id = f.id"
                       "                 AND r.flagged = 1)"
                       " AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.frame_id = f.id"
                       "                 AND v.verdict = 'ng')",
    [DATASET_FALSE_POSITIVE] = "a.state = 'false_positive' AND f.image_missing IS NULL",
    [DATASET_DEFECT] = "a.state = 'defect' AND f.image_missing IS NULL"};

/* The filter, shared by both statements: ?1 camera, ?2 recipe, ?3 since, ?4 until. */
static const char filter_sql[] =
    " AND (?1 IS NULL OR c.name = ?1)"
    " AND (?2 IS NULL OR f.recipe_id = (SELECT id FROM recipes WHERE name = ?2))"
    " AND f.captured_at >= ?3 AND f.captured_at < ?4";

static const char from_sql[] = " FROM frames f JOIN cameras c ON c.id = f.camera_id"
                               " LEFT JOIN alerts a ON a.frame_id = f.id"
                               " LEFT JOIN recipes rc ON rc.id = f.recipe_id WHERE ";

static void bind_filter(sqlite3_stmt *st, const struct dataset_filter *f)
{
    if (f->camera[0]) sqlite3_bind_text(st, 1, f->camera, -1, SQLITE_STATIC);
    if (f->recipe[0]) sqlite3_bind_text(st, 2, f->recipe, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->since_us);
    sqlite3_bind_int64(st, 4, f->until_us);
}

/* Prepares SELECT cols FROM ... WHERE kind AND filter tail. Returns the statement or NULL. */
static sqlite3_stmt *prepare(struct store_reader *r, const char *cols, enum dataset_kind kind,
                             const char *tail)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT %s%s%s%s%s", cols, from_sql, kind_sql[kind], filter_sql,
             tail);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK) {
        store_reader_fail(r, "dataset");
        return NULL;
    }
    return st;
}

int64_t store_dataset_count(struct store_reader *r, enum dataset_kind kind,
                            const struct dataset_filter *f)
{
    sqlite3_stmt *st = prepare(r, "count(*)", kind, "");
    if (!st) return -1;
    bind_filter(st, f);
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        store_reader_fail(r, "dataset count");
    sqlite3_finalize(st);
    return n;
}

int store_dataset_page(struct store_reader *r, enum dataset_kind kind,
                       const struct dataset_filter *f, struct dataset_key after,
                       struct dataset_row *rows, int max)
{
    sqlite3_stmt *st =
        prepare(r, "f.id, c.name, rc.name, f.captured_at, f.format, f.defect, a.id", kind,
                " AND (f.captured_at > ?5 OR (f.captured_at = ?5 AND f.id > ?6))"
                " ORDER BY f.captured_at, f.id LIMIT ?7");
    if (!st) return -1;
    bind_filter(st, f);
    sqlite3_bind_int64(st, 5, after.captured_at_us);
    sqlite3_bind_int64(st, 6, after.frame_id);
    sqlite3_bind_int(st, 7, max);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dataset_row *o = &rows[n++];
        memset(o, 0, sizeof *o);
        o->frame_id = sqlite3_column_int64(st, 0);
        store_column_text(o->camera, sizeof o->camera, st, 1);
        store_column_text(o->recipe, sizeof o->recipe, st, 2);
        o->captured_at_us = sqlite3_column_int64(st, 3);
        store_column_text(o->format, sizeof o->format, st, 4);
        store_column_text(o->defect, sizeof o->defect, st, 5);
        o->alert_id = sqlite3_column_int64(st, 6);
    }
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* the page is full */
    if (rc != SQLITE_DONE) n = store_reader_fail(r, "dataset page");
    sqlite3_finalize(st);
    return n;
}
