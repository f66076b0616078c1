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
    "a.score, a.score_norm, a.threshold, a.note FROM alerts a "
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
             "AND (?5 IS NULL OR a.id < ?5) ORDER BY a.id DESC LIMIT ?6",
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

static json_t *zero_counts(void)
{
    return json_pack("{s:i, s:i, s:i}", "new", 0, "defect", 0, "false_positive", 0);
}

static void add_count(json_t *obj, const char *state, json_int_t n)
{
    json_t *v = json_object_get(obj, state);
    if (v) json_integer_set(v, json_integer_value(v) + n);
}

json_t *store_alert_summary(struct store_reader *r, int64_t since, int64_t until)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r),
                           "SELECT coalesce(c.name, ''), a.state, a.created_at / 3600000000, "
                           "count(*) FROM alerts a LEFT JOIN cameras c ON c.id = a.camera_id "
                           "WHERE a.created_at >= ? AND a.created_at < ? "
                           "GROUP BY 1, 2, 3 ORDER BY 3, 1",
                           -1, &st, NULL) != SQLITE_OK) {
        store_reader_fail(r, "alert summary");
        return NULL;
    }
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    json_t *by_state = zero_counts(), *by_camera = json_object(), *by_hour = json_array();
    json_t *hour = NULL;
    int64_t hour_no = -1, total = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cam = (const char *)sqlite3_column_text(st, 0);
        const char *state = (const char *)sqlite3_column_text(st, 1);
        int64_t h = sqlite3_column_int64(st, 2), n = sqlite3_column_int64(st, 3);
        if (!cam || !state || state_index(state) < 0) continue;
        total += n;
        add_count(by_state, state, n);
        json_t *c = json_object_get(by_camera, cam);
        if (!c) json_object_set_new(by_camera, cam, c = zero_counts());
        add_count(c, state, n);
        if (h != hour_no) {
            char stamp[32];
            time_t secs = (time_t)(h * 3600);
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:00:00Z", &tm);
            hour = zero_counts();
            json_object_set_new(hour, "hour", json_string(stamp));
            json_array_append_new(by_hour, hour);
            hour_no = h;
        }
        add_count(hour, state, n);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_reader_fail(r, "alert summary");
        json_decref(by_state), json_decref(by_camera), json_decref(by_hour);
        return NULL;
    }
    return json_pack("{s:I, s:o, s:o, s:o}", "total", (json_int_t)total, "by_state", by_state,
                     "by_camera", by_camera, "by_hour", by_hour);
}

static json_t *model_row_json(sqlite3_stmt *st)
{
    json_error_t je;
    const char *meta_text = (const char *)sqlite3_column_text(st, 8);
    json_t *meta = meta_text ? json_loads(meta_text, 0, &je) : NULL;
    json_t *j =
        json_pack("{s:I, s:s, s:s, s:I, s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                  "version", (const char *)sqlite3_column_text(st, 1), "status",
                  (const char *)sqlite3_column_text(st, 2), "created_at",
                  (json_int_t)sqlite3_column_int64(st, 3), "activated_at",
                  (json_int_t)sqlite3_column_int64(st, 4));
    if (!j) {
        json_decref(meta);
        return NULL;
    }
    json_object_set_new(j, "frames_used",
                        sqlite3_column_type(st, 5) == SQLITE_NULL
                            ? json_null()
                            : json_integer(sqlite3_column_int64(st, 5)));
    json_object_set_new(j, "loss",
                        sqlite3_column_type(st, 6) == SQLITE_NULL
                            ? json_null()
                            : json_real(sqlite3_column_double(st, 6)));
    json_object_set_new(j, "threshold",
                        sqlite3_column_type(st, 7) == SQLITE_NULL
                            ? json_null()
                            : json_real(sqlite3_column_double(st, 7)));
    json_object_set_new(j, "meta", meta ? meta : json_object());
    return j;
}

static const char model_columns[] =
    "SELECT id, version, status, created_at, coalesce(activated_at, 0), frames_used, loss, "
    "threshold, meta FROM models ";

json_t *store_list_models(struct store_reader *r)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%sORDER BY id DESC", model_columns);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK) {
        store_reader_fail(r, "list models");
        return NULL;
    }
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(arr, model_row_json(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        store_reader_fail(r, "list models");
        return NULL;
    }
    return arr;
}

json_t *store_get_model(struct store_reader *r, int64_t id, bool *found)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%sWHERE id = ?", model_columns);
    sqlite3_stmt *st;
    *found = false;
    if (sqlite3_prepare_v2(store_reader_db(r), sql, -1, &st, NULL) != SQLITE_OK) {
        store_reader_fail(r, "get model");
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    json_t *j = rc == SQLITE_ROW ? model_row_json(st) : NULL;
    sqlite3_finalize(st);
    *found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) store_reader_fail(r, "get model");
    return j;
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
