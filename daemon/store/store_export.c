/* store_export.c — the SQL of exports: one keyset page of alerts joined with their frame, camera
 * and model. The statement is prepared on the lent connection for each page (a page is hundreds
 * of rows, so preparing costs nothing next to it) and finalized before the connection goes back.
 * Only the frame's small columns are read here; images are read one at a time by the caller. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_export.h"

static const char page_sql[] =
    "SELECT a.id, a.frame_id, c.name, f.captured_at, a.created_at, a.score, a.score_norm,"
    " a.threshold, a.state, a.note, m.version, f.format"
    " FROM alerts a JOIN frames f ON f.id = a.frame_id JOIN cameras c ON c.id = a.camera_id"
    " JOIN models m ON m.id = a.model_id"
    " WHERE a.id < ?1 AND (?2 IS NULL OR a.state = ?2) AND (?3 IS NULL OR c.name = ?3)"
    " AND a.created_at >= ?4 AND a.created_at < ?5"
    " AND (?7 IS NULL OR f.recipe_id = (SELECT id FROM recipes WHERE name = ?7))"
    " ORDER BY a.id DESC LIMIT ?6";

/* Fills one row; returns 0, or -1 when the note cannot be copied. */
static int read_row(sqlite3_stmt *st, struct export_row *out)
{
    memset(out, 0, sizeof *out);
    out->alert_id = sqlite3_column_int64(st, 0);
    out->frame_id = sqlite3_column_int64(st, 1);
    store_column_text(out->camera, sizeof out->camera, st, 2);
    out->captured_at_us = sqlite3_column_int64(st, 3);
    out->flagged_at_us = sqlite3_column_int64(st, 4);
    out->score = sqlite3_column_double(st, 5);
    out->score_norm = sqlite3_column_double(st, 6);
    out->threshold = sqlite3_column_double(st, 7);
    store_column_text(out->state, sizeof out->state, st, 8);
    if (sqlite3_column_type(st, 9) != SQLITE_NULL &&
        !(out->note = strdup((const char *)sqlite3_column_text(st, 9))))
        return -1;
    store_column_text(out->model_version, sizeof out->model_version, st, 10);
    store_column_text(out->format, sizeof out->format, st, 11);
    return 0;
}

int store_export_page(struct store_reader *r, const struct export_filter *f, int64_t before,
                      struct export_row *rows, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), page_sql, -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "export page");
    sqlite3_bind_int64(st, 1, before > 0 ? before : INT64_MAX);
    if (f->state[0]) sqlite3_bind_text(st, 2, f->state, -1, SQLITE_STATIC);
    if (f->camera[0]) sqlite3_bind_text(st, 3, f->camera, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->since_us);
    sqlite3_bind_int64(st, 5, f->until_us);
    sqlite3_bind_int(st, 6, max);
    if (f->recipe[0]) sqlite3_bind_text(st, 7, f->recipe, -1, SQLITE_STATIC);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_row(st, &rows[n]) < 0) {
            store_export_rows_free(rows, n + 1);
            sqlite3_finalize(st);
            return store_reader_error(r, "export page: out of memory");
        }
        n++;
    }
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* the page is full: LIMIT max ends it anyway */
    if (rc != SQLITE_DONE) {
        store_export_rows_free(rows, n);
        n = store_reader_fail(r, "export page");
    }
    sqlite3_finalize(st);
    return n;
}

void store_export_rows_free(struct export_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].note);
        rows[i].note = NULL;
    }
}
