/* store_alerts.c — SQL for alerts, their review, model versions and the event log. */
#include "store_alerts.h"

#include "clock.h"
#include "sqlite.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char alert_columns[] =
    "SELECT a.id, a.frame_id, a.model_id, a.created_at, coalesce(f.captured_at, 0), "
    "coalesce(a.reviewed_at, 0), coalesce(c.name, ''), coalesce(m.version, ''), a.state, "
    "a.score, a.score_norm, a.threshold, a.note, "
    "coalesce((SELECT name FROM recipes WHERE id = f.recipe_id), '') FROM alerts a "
    "LEFT JOIN frames f ON f.id = a.frame_id LEFT JOIN cameras c ON c.id = a.camera_id "
    "LEFT JOIN models m ON m.id = a.model_id ";

static void read_alert(sqlite3_stmt *st, struct alert_info *a)
{
    a->id = sqlite3_column_int64(st, 0);
    a->frame_id = sqlite3_column_int64(st, 1);
    a->model_id = sqlite3_column_int64(st, 2);
    a->created_at = sqlite3_column_int64(st, 3);
    a->captured_at = sqlite3_column_int64(st, 4);
    a->reviewed_at = sqlite3_column_int64(st, 5);
    store_column_text(a->camera, sizeof a->camera, st, 6);
    store_column_text(a->model_version, sizeof a->model_version, st, 7);
    store_column_text(a->state, sizeof a->state, st, 8);
    a->score = sqlite3_column_double(st, 9);
    a->score_norm = sqlite3_column_double(st, 10);
    a->threshold = sqlite3_column_double(st, 11);
    a->has_note = sqlite3_column_type(st, 12) != SQLITE_NULL;
    store_column_text(a->note, sizeof a->note, st, 12);
    store_column_text(a->recipe, sizeof a->recipe, st, 13);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

int store_list_alerts(struct store_reader *r, const struct alert_filter *f, struct alert_info *out,
                      int max)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%sWHERE (?1 IS NULL OR a.state = ?1) AND (?2 IS NULL OR c.name = ?2) "
             "AND (?3 IS NULL OR a.created_at >= ?3) AND (?4 IS NULL OR a.created_at < ?4) "
             "AND (?5 IS NULL OR a.id < ?5) AND (?7 IS NULL OR f.recipe_id = (SELECT id FROM "
             "recipes WHERE name = ?7)) ORDER BY a.id DESC LIMIT ?6",
             alert_columns);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "list alerts");
    bind_opt_text(st, 1, f->state);
    bind_opt_text(st, 2, f->camera);
    bind_opt_int(st, 3, f->since);
    bind_opt_int(st, 4, f->until);
    bind_opt_int(st, 5, f->before);
    sqlite3_bind_int(st, 6, max);
    bind_opt_text(st, 7, f->recipe);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) read_alert(st, &out[n++]);
    if (n == max) rc = SQLITE_DONE;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : store_reader_fail(r, "list alerts");
}

int store_get_alert(struct store_reader *r, int64_t id, struct alert_info *out)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "%sWHERE a.id = ?", alert_columns);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "get alert");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_alert(st, out);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : store_reader_fail(r, "get alert");
}

static const char *const states[3] = {"new", "defect", "false_positive"};

static int state_index(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, states[i]) == 0) return i;
    return -1;
}

int store_alert_summary(struct store_reader *r, int64_t since, int64_t until,
                        struct alert_count **out)
{
    sqlite3_stmt *st;
    *out = NULL;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT coalesce(c.name, ''), a.state, a.created_at / 3600000000, "
                           "count(*) FROM alerts a LEFT JOIN cameras c ON c.id = a.camera_id "
                           "WHERE a.created_at >= ? AND a.created_at < ? "
                           "GROUP BY 1, 2, 3 ORDER BY 3, 1",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "alert summary");
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    struct alert_count *rows = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 1);
        int i = state ? state_index(state) : -1;
        if (i < 0) continue;
        if (n == cap) {
            struct alert_count *p = realloc(rows, sizeof *p * (size_t)(cap = cap ? 2 * cap : 32));
            if (!p) break;
            rows = p;
        }
        store_column_text(rows[n].camera, sizeof rows[n].camera, st, 0);
        rows[n].state = i;
        rows[n].hour = sqlite3_column_int64(st, 2);
        rows[n].n = sqlite3_column_int64(st, 3);
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(rows);
        return rc == SQLITE_ROW ? store_reader_error(r, "alert summary: out of memory")
                                : store_reader_fail(r, "alert summary");
    }
    *out = rows;
    return n;
}

/* Reads a row of model_columns into m. Returns 0, or -1 when out of memory. */
static int read_model(sqlite3_stmt *st, struct model_info *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    store_column_text(m->version, sizeof m->version, st, 1);
    store_column_text(m->status, sizeof m->status, st, 2);
    m->created_at = sqlite3_column_int64(st, 3);
    m->activated_at = sqlite3_column_int64(st, 4);
    if ((m->has_frames_used = sqlite3_column_type(st, 5) != SQLITE_NULL))
        m->frames_used = sqlite3_column_int64(st, 5);
    if ((m->has_loss = sqlite3_column_type(st, 6) != SQLITE_NULL))
        m->loss = sqlite3_column_double(st, 6);
    if ((m->has_threshold = sqlite3_column_type(st, 7) != SQLITE_NULL))
        m->threshold = sqlite3_column_double(st, 7);
    store_column_text(m->recipe, sizeof m->recipe, st, 9);
    const char *meta = (const char *)sqlite3_column_text(st, 8);
    return meta && !(m->meta = strdup(meta)) ? -1 : 0;
}

static const char model_columns[] =
    "SELECT id, version, status, created_at, coalesce(activated_at, 0), frames_used, loss, "
    "threshold, meta, coalesce((SELECT name FROM recipes WHERE id = models.recipe_id), '') "
    "FROM models ";

void store_model_clear(struct model_info *m)
{
    free(m->meta);
    m->meta = NULL;
}

void store_models_free(struct model_info *m, int n)
{
    for (int i = 0; m && i < n; i++) store_model_clear(&m[i]);
    free(m);
}

int store_list_models(struct store_reader *r, struct model_info **out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%sORDER BY id DESC", model_columns);
    sqlite3_stmt *st;
    *out = NULL;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "list models");
    struct model_info *m = NULL;
    int n = 0, cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct model_info *p = realloc(m, sizeof *p * (size_t)(cap = cap ? 2 * cap : 8));
            if (!p) break;
            m = p;
        }
        if (read_model(st, &m[n]) < 0) break;
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_models_free(m, n);
        return rc == SQLITE_ROW ? store_reader_error(r, "list models: out of memory")
                                : store_reader_fail(r, "list models");
    }
    *out = m;
    return n;
}

int store_get_model(struct store_reader *r, int64_t id, struct model_info *out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%sWHERE id = ?", model_columns);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "get model");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) found = read_model(st, out) < 0 ? -1 : 1;
    sqlite3_finalize(st);
    if (found < 0) return store_reader_error(r, "get model: out of memory");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_reader_fail(r, "get model");
    return found;
}

int store_events_after(struct store_reader *r, int64_t after, struct event_row *out, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT id, kind, ref, created_at FROM events WHERE id > ? "
                           "ORDER BY id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "events");
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, max);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        out[n].id = sqlite3_column_int64(st, 0);
        store_column_text(out[n].kind, sizeof out[n].kind, st, 1);
        out[n].ref = sqlite3_column_int64(st, 2);
        out[n].created_at = sqlite3_column_int64(st, 3);
        n++;
    }
    if (n == max) rc = SQLITE_DONE;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : store_reader_fail(r, "events");
}

int store_last_event(struct store_reader *r, int64_t *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), "SELECT coalesce(max(id), 0) FROM events", -1, &st,
                           NULL) != SQLITE_OK)
        return store_reader_fail(r, "last event");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : store_reader_fail(r, "last event");
}

int store_alert_counts(struct store_reader *r, int64_t counts[3])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), "SELECT state, count(*) FROM alerts GROUP BY state",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "alert counts");
    counts[0] = counts[1] = counts[2] = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int i = s ? state_index(s) : -1;
        if (i >= 0) counts[i] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : store_reader_fail(r, "alert counts");
}

int store_review_alert(const char *path, int64_t id, const char *verdict, const char *note,
                       char *err, size_t errsz)
{
    sqlite3_stmt *st = NULL;
    int found = -1;
    int64_t now = clock_wall_us();
    sqlite3 *db = store_sqlite_open(path, SQLITE_OPEN_READWRITE, err, errsz);
    if (!db) return -1;
    if (sqlite3_prepare_v2(db,
                           "UPDATE alerts SET state = ?, note = ?, reviewed_at = ? WHERE id = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, verdict, -1, SQLITE_STATIC);
        bind_opt_text(st, 2, note);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, id);
        if (sqlite3_step(st) == SQLITE_DONE) found = sqlite3_changes(db) > 0;
    }
    if (found < 0) snprintf(err, errsz, "review alert %lld: %s", (long long)id, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

int store_list_recipes(struct store_reader *r, struct recipe_info *out, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT r.id, r.name, coalesce(r.model_id, 0), coalesce(m.version, ''), "
                           "(SELECT count(*) FROM frames WHERE recipe_id = r.id) FROM recipes r "
                           "LEFT JOIN models m ON m.id = r.model_id ORDER BY r.id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "list recipes");
    sqlite3_bind_int(st, 1, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct recipe_info *ri = &out[n++];
        ri->id = sqlite3_column_int64(st, 0);
        store_column_text(ri->name, sizeof ri->name, st, 1);
        ri->model_id = sqlite3_column_int64(st, 2);
        store_column_text(ri->model_version, sizeof ri->model_version, st, 3);
        ri->frames = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : store_reader_fail(r, "list recipes");
}

int store_recent_scores(struct store_reader *r, const char *recipe, int64_t model_id, double *out,
                        int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT r.score FROM frames f JOIN results r ON r.frame_id = f.id AND "
                           "r.model_id = ?2 WHERE f.recipe_id = (SELECT id FROM recipes WHERE "
                           "name = ?1) AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.frame_id = "
                           "f.id AND a.state = 'defect') ORDER BY f.id DESC LIMIT ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return store_reader_fail(r, "recent scores");
    sqlite3_bind_text(st, 1, recipe, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, model_id);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) out[n++] = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : store_reader_fail(r, "recent scores");
}
