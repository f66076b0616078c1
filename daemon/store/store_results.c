/* store_results.c — SQL for the verdicts of every part: list, one, the feed, counts, summary. */
#include "store_results.h"

#include "array.h"
#include "sqlite.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const verdict_names[RESULT_NVERDICTS] = {"ok", "ng", "unscored"};
static const char *const reason_names[RESULT_NREASONS] = {"no_model", "skipped", "undecodable",
                                                          "no_image", "error",   "late"};

const char *result_verdict_name(enum result_verdict v)
{
    return verdict_names[v];
}

const char *result_reason_name(enum result_reason r)
{
    return reason_names[r];
}

static int code_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

int result_verdict_code(const char *name)
{
    return code_of(verdict_names, RESULT_NVERDICTS, name);
}

int result_reason_code(const char *name)
{
    return code_of(reason_names, RESULT_NREASONS, name);
}

static const char result_columns[] =
    "SELECT v.id, v.frame_id, coalesce(c.name, ''), coalesce(f.seq, 0), f.part_id, v.captured_at, "
    "v.created_at, coalesce(v.scored_at, 0), v.verdict, v.reason, v.score, v.score_norm, "
    "v.threshold, coalesce(v.model_id, 0), coalesce(m.version, ''), coalesce(rc.name, ''), "
    "coalesce(f.recipe_id, 0) FROM verdicts v "
    "LEFT JOIN frames f ON f.id = v.frame_id LEFT JOIN cameras c ON c.id = v.camera_id "
    "LEFT JOIN models m ON m.id = v.model_id LEFT JOIN recipes rc ON rc.id = f.recipe_id ";

static void read_result(sqlite3_stmt *st, struct result_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    o->frame_id = sqlite3_column_int64(st, 1);
    store_column_text(o->camera, sizeof o->camera, st, 2);
    o->seq = (uint64_t)sqlite3_column_int64(st, 3);
    store_column_text(o->part_id, sizeof o->part_id, st, 4);
    o->captured_at = sqlite3_column_int64(st, 5);
    o->created_at = sqlite3_column_int64(st, 6);
    o->scored_at = sqlite3_column_int64(st, 7);
    int v = result_verdict_code((const char *)sqlite3_column_text(st, 8));
    o->verdict = v < 0 ? RESULT_UNSCORED : (enum result_verdict)v;
    o->reason = result_reason_code((const char *)sqlite3_column_text(st, 9));
    if (o->verdict == RESULT_UNSCORED && o->reason < 0) o->reason = REASON_ERROR;
    o->has_score = sqlite3_column_type(st, 10) != SQLITE_NULL;
    o->score = sqlite3_column_double(st, 10);
    o->score_norm = sqlite3_column_double(st, 11);
    o->threshold = sqlite3_column_double(st, 12);
    o->model_id = sqlite3_column_int64(st, 13);
    store_column_text(o->model_version, sizeof o->model_version, st, 14);
    store_column_text(o->recipe, sizeof o->recipe, st, 15);
    o->recipe_id = sqlite3_column_int64(st, 16);
}

/* Steps st into out (at most max rows) and finalizes it. Returns the count or -1. */
static int read_results(struct store_reader *r, sqlite3_stmt *st, struct result_info *out, int max,
                        const char *what)
{
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) read_result(st, &out[n++]);
    if (n == max) rc = SQLITE_DONE;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : store_reader_fail(r, what);
}

static int prepare_results(struct store_reader *r, const char *where, sqlite3_stmt **st,
                           const char *what)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%s%s", result_columns, where);
    return sqlite3_prepare_v2(store_reader_db(r), sql, -1, st, NULL) == SQLITE_OK
               ? 0
               : store_reader_fail(r, what);
}

int store_list_results(struct store_reader *r, const struct result_filter *f,
                       struct result_info *out, int max)
{
    sqlite3_stmt *st;
    if (prepare_results(r,
                        "WHERE (?1 IS NULL OR v.camera_id = (SELECT id FROM cameras WHERE name = "
                        "?1)) AND (?2 IS NULL OR v.verdict = ?2) AND (?3 IS NULL OR v.captured_at "
                        ">= ?3) AND (?4 IS NULL OR v.captured_at < ?4) AND v.id < ?5 AND (?7 IS "
                        "NULL OR f.recipe_id = (SELECT id FROM recipes WHERE name = ?7)) "
                        "ORDER BY v.id DESC LIMIT ?6",
                        &st, "list results"))
        return -1;
    if (f->camera) sqlite3_bind_text(st, 1, f->camera, -1, SQLITE_STATIC);
    if (f->verdict >= 0) sqlite3_bind_text(st, 2, verdict_names[f->verdict], -1, SQLITE_STATIC);
    if (f->since) sqlite3_bind_int64(st, 3, f->since);
    if (f->until) sqlite3_bind_int64(st, 4, f->until);
    sqlite3_bind_int64(st, 5, f->before > 0 ? f->before : INT64_MAX);
    sqlite3_bind_int(st, 6, max);
    if (f->recipe) sqlite3_bind_text(st, 7, f->recipe, -1, SQLITE_STATIC);
    return read_results(r, st, out, max, "list results");
}

int store_get_result(struct store_reader *r, int64_t frame_id, struct result_info *out)
{
    sqlite3_stmt *st;
    if (prepare_results(r, "WHERE v.frame_id = ?1", &st, "get result")) return -1;
    sqlite3_bind_int64(st, 1, frame_id);
    return read_results(r, st, out, 1, "get result");
}

int store_results_after(struct store_reader *r, int64_t after, struct result_info *out, int max)
{
    sqlite3_stmt *st;
    if (prepare_results(r, "WHERE v.id > ?1 ORDER BY v.id LIMIT ?2", &st, "results after"))
        return -1;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, max);
    return read_results(r, st, out, max, "results after");
}

int store_last_result(struct store_reader *r, int64_t *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), "SELECT coalesce(max(id), 0) FROM verdicts", -1, &st,
                           NULL) != SQLITE_OK)
        return store_reader_fail(r, "last result");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_reader_fail(r, "last result");
}

/* Runs a grouping query into a growing array of `size`-byte rows filled by fill. Returns the
 * number of rows (*out malloc'ed, NULL when none) or -1. */
static int read_groups(struct store_reader *r, sqlite3_stmt *st, size_t size, void **out,
                       void (*fill)(sqlite3_stmt *st, void *row), const char *what)
{
    char *rows = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            int ncap = cap ? cap * 2 : 64;
            char *p = realloc(rows, (size_t)ncap * size);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            rows = p, cap = ncap;
        }
        fill(st, rows + (size_t)n++ * size);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(rows);
        *out = NULL;
        return store_reader_fail(r, what);
    }
    *out = rows;
    return n;
}

static void fill_count(sqlite3_stmt *st, void *row)
{
    struct result_count *c = row;
    store_column_text(c->camera, sizeof c->camera, st, 0);
    int v = result_verdict_code((const char *)sqlite3_column_text(st, 1));
    c->verdict = v < 0 ? RESULT_UNSCORED : (enum result_verdict)v;
    c->reason = result_reason_code((const char *)sqlite3_column_text(st, 2));
    if (c->verdict == RESULT_UNSCORED && c->reason < 0) c->reason = REASON_ERROR;
    c->n = sqlite3_column_int64(st, 3);
}

int store_result_counts(struct store_reader *r, int64_t upto, struct result_count **out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT coalesce(c.name, ''), v.verdict, v.reason, count(*) FROM "
                           "verdicts v LEFT JOIN cameras c ON c.id = v.camera_id WHERE v.id <= ?1 "
                           "GROUP BY v.camera_id, v.verdict, v.reason",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "count results");
    sqlite3_bind_int64(st, 1, upto);
    return read_groups(r, st, sizeof **out, (void **)out, fill_count, "count results");
}

static void fill_minute(sqlite3_stmt *st, void *row)
{
    struct result_minute *m = row;
    store_column_text(m->camera, sizeof m->camera, st, 0);
    m->minute = sqlite3_column_int64(st, 1);
    int v = result_verdict_code((const char *)sqlite3_column_text(st, 2));
    m->verdict = v < 0 ? RESULT_UNSCORED : (enum result_verdict)v;
    m->n = sqlite3_column_int64(st, 3);
    store_column_text(m->recipe, sizeof m->recipe, st, 4);
}

int store_result_minutes(struct store_reader *r, int64_t since, int64_t until,
                         struct result_minute **out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT coalesce(c.name, ''), v.captured_at / 60000000 AS minute, "
                           "v.verdict, count(*), coalesce(rc.name, '') FROM verdicts v "
                           "LEFT JOIN cameras c ON c.id = v.camera_id LEFT JOIN frames f ON "
                           "f.id = v.frame_id LEFT JOIN recipes rc ON rc.id = f.recipe_id "
                           "WHERE v.captured_at >= ?1 AND v.captured_at < ?2 "
                           "GROUP BY minute, v.camera_id, f.recipe_id, v.verdict ORDER BY minute",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "result summary");
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    return read_groups(r, st, sizeof **out, (void **)out, fill_minute, "result summary");
}
