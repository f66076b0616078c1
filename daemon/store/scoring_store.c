/* scoring_store.c — SQL for models, results, heatmaps and alerts on the scorer's connection. */
#include "array.h"
#include "clock.h"
#include "scoring_store.h"

#include "sqlite.h"
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct scoring_store {
    sqlite3 *db;
    sqlite3_stmt *active, *unscored, *frame, *result, *heatmap, *alert, *verdict, *unscored_range;
    bool full; /* the last error was SQLITE_FULL or ENOSPC */
    char err[256];
};

static int fail(struct scoring_store *s, const char *what)
{
    s->full = store_sqlite_full(s->db);
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

const char *scoring_store_errmsg(const struct scoring_store *s)
{
    return s->err;
}

bool scoring_store_error_is_full(const struct scoring_store *s)
{
    return s->full;
}

struct scoring_store *scoring_store_open(const char *path, char *err, size_t errsz)
{
    struct scoring_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    static const char *const sql[] = {
        "SELECT m.id, m.version, m.path, json_extract(m.meta, '$.bank'), m.threshold, "
        "m.created_at, r.id, r.name FROM recipes r JOIN models m ON m.id = r.model_id "
        "WHERE r.name = ?1",
        "SELECT f.id FROM frames f WHERE f.recipe_id = ?4 AND f.id > ?2 AND NOT EXISTS (SELECT 1 "
        "FROM results r WHERE r.frame_id = f.id AND r.model_id = ?1) ORDER BY f.id LIMIT ?3",
        "SELECT image, camera_id, image_missing IS NOT NULL FROM frames WHERE id = ?",
        "INSERT OR REPLACE INTO results (frame_id, model_id, score, score_norm, flagged, "
        "latency_us, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        "INSERT OR REPLACE INTO heatmaps (frame_id, model_id, grid_w, grid_h, data) "
        "VALUES (?, ?, ?, ?, ?)",
        "INSERT OR IGNORE INTO alerts (frame_id, model_id, camera_id, created_at, score, "
        "score_norm, threshold) VALUES (?, ?, ?, ?, ?, ?, ?)",
        /* a verdict reached before the score (late) stays; the score goes beside it */
        "INSERT INTO verdicts (frame_id, camera_id, captured_at, verdict, model_id, score, "
        "score_norm, threshold, created_at) SELECT id, camera_id, captured_at, ?2, ?3, ?4, ?5, ?6, "
        "?7 FROM frames WHERE id = ?1 ON CONFLICT (frame_id) DO UPDATE SET "
        "model_id = excluded.model_id, score = excluded.score, score_norm = excluded.score_norm, "
        "threshold = excluded.threshold, scored_at = excluded.created_at "
        "WHERE verdicts.score IS NULL",
        "INSERT OR IGNORE INTO verdicts (frame_id, camera_id, captured_at, verdict, reason, "
        "created_at) SELECT id, camera_id, captured_at, 'unscored', ?3, ?4 FROM frames "
        "WHERE id > ?1 AND id <= ?2 AND (?5 = 0 OR recipe_id = ?5) ORDER BY id"};
    sqlite3_stmt **stmts[] = {&s->active,  &s->unscored, &s->frame,   &s->result,
                              &s->heatmap, &s->alert,    &s->verdict, &s->unscored_range};
    if (!(s->db = store_sqlite_open(path, SQLITE_OPEN_READWRITE, err, errsz))) {
        scoring_store_close(s);
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_LEN(sql); i++)
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, stmts[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errsz, "%s: %s (is the schema migrated?)", path, sqlite3_errmsg(s->db));
            scoring_store_close(s);
            return NULL;
        }
    return s;
}

void scoring_store_close(struct scoring_store *s)
{
    if (!s) return;
    sqlite3_stmt *stmts[] = {s->active,  s->unscored, s->frame,   s->result,
                             s->heatmap, s->alert,    s->verdict, s->unscored_range};
    for (size_t i = 0; i < ARRAY_LEN(stmts); i++) sqlite3_finalize(stmts[i]);
    sqlite3_close(s->db);
    free(s);
}

static void read_model_row(sqlite3_stmt *st, int col, struct model_row *out)
{
    out->id = sqlite3_column_int64(st, col);
    store_column_text(out->version, sizeof out->version, st, col + 1);
    store_column_text(out->path, sizeof out->path, st, col + 2);
    store_column_text(out->bank, sizeof out->bank, st, col + 3);
    out->threshold = sqlite3_column_double(st, col + 4);
    out->created_at = sqlite3_column_int64(st, col + 5);
    out->recipe_id = sqlite3_column_int64(st, col + 6);
    store_column_text(out->recipe, sizeof out->recipe, st, col + 7);
}

int scoring_store_active_model(struct scoring_store *s, const char *recipe, struct model_row *out)
{
    sqlite3_stmt *st = s->active;
    sqlite3_bind_text(st, 1, recipe, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_model_row(st, 0, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : fail(s, "active model");
}

int scoring_store_recipes(struct scoring_store *s, struct recipe_row *out, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT r.id, r.name, m.id, m.version, m.path, "
                           "json_extract(m.meta, '$.bank'), m.threshold, m.created_at, r.id, "
                           "r.name, coalesce(r.false_alarm_rate, 0), coalesce(r.threshold, 0), "
                           "r.sensitivity_file IS NOT NULL FROM recipes r LEFT JOIN models m ON "
                           "m.id = r.model_id ORDER BY r.id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "recipes");
    sqlite3_bind_int(st, 1, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct recipe_row *r = &out[n++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        store_column_text(r->name, sizeof r->name, st, 1);
        r->has_model = sqlite3_column_type(st, 2) != SQLITE_NULL;
        if (r->has_model) read_model_row(st, 2, &r->model);
        r->false_alarm_rate = sqlite3_column_double(st, 10);
        r->threshold = sqlite3_column_double(st, 11);
        r->sensitivity_set = sqlite3_column_int(st, 12) != 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "recipes");
}

static int exec(struct scoring_store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(s, sql);
}

/* version, or version-N for the smallest N >= 2 not taken, into out. Returns 0 or -1. */
static int free_version(struct scoring_store *s, const char *version, char *out, size_t outsz)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM models WHERE version = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "register model");
    int rc = -1;
    for (int n = 1; n < 1000 && rc == -1; n++) {
        int len = n == 1 ? snprintf(out, outsz, "%s", version)
                         : snprintf(out, outsz, "%s-%d", version, n);
        if (len < 0 || (size_t)len >= outsz) break;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, out, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            rc = 0;
        else if (step != SQLITE_ROW)
            break;
    }
    sqlite3_finalize(st);
    if (rc) snprintf(s->err, sizeof s->err, "register model: no free version for %s", version);
    return rc;
}

/* The id of recipe name, created if new. Returns 0 or -1. */
static int recipe_id(struct scoring_store *s, const char *name, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO recipes (name, created_at) VALUES (?1, ?2) "
                           "ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "recipe");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, clock_wall_us());
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : fail(s, "recipe");
    if (!rc) *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* Runs sql with two integer arguments. Returns 0 or -1. */
static int exec2(struct scoring_store *s, const char *sql, int64_t a, int64_t b)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return fail(s, sql);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s, sql);
    sqlite3_finalize(st);
    return rc;
}

int scoring_store_register_model(struct scoring_store *s, const char *recipe, const char *version,
                                 const char *ckpt, const char *bank, double threshold,
                                 int frames_used, double loss, const char *meta, bool active,
                                 int64_t *id, char *used, size_t usedsz)
{
    char unique[96];
    json_error_t je;
    json_t *j = json_loads(meta ? meta : "{}", 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(s->err, sizeof s->err, "register model: meta is not a JSON object");
        return -1;
    }
    json_object_set_new(j, "bank", json_string(bank));
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    sqlite3_stmt *st = NULL;
    int64_t now = clock_wall_us();
    int rc = text ? 0 : -1;
    if (!text) snprintf(s->err, sizeof s->err, "register model: out of memory");
    if (!rc) rc = exec(s, "BEGIN IMMEDIATE");
    int64_t rid = 0, new_id = 0;
    if (!rc) rc = free_version(s, version, unique, sizeof unique);
    if (!rc) rc = recipe_id(s, recipe, &rid);
    /* the recipe's model until now is retired first (the event log shows the retirement, then the
     * new model), unless another recipe still scores with it (a model from before recipes serves
     * every camera's) */
    if (!rc && active)
        rc = exec2(s,
                   "UPDATE models SET status = 'retired' WHERE id = (SELECT model_id FROM "
                   "recipes WHERE id = ?1) AND NOT EXISTS (SELECT 1 FROM recipes WHERE "
                   "model_id = models.id AND id <> ?1)",
                   rid, 0);
    if (!rc && sqlite3_prepare_v2(s->db,
                                  "INSERT INTO models (version, path, created_at, threshold, "
                                  "meta, status, frames_used, loss, activated_at, recipe_id) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  -1, &st, NULL) != SQLITE_OK)
        rc = fail(s, "register model");
    if (!rc) {
        sqlite3_bind_text(st, 1, unique, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ckpt, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_double(st, 4, threshold);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, active ? "active" : "rejected", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 7, frames_used);
        sqlite3_bind_double(st, 8, loss);
        if (active)
            sqlite3_bind_int64(st, 9, now);
        else
            sqlite3_bind_null(st, 9);
        sqlite3_bind_int64(st, 10, rid);
        if (sqlite3_step(st) != SQLITE_DONE) rc = fail(s, "register model");
    }
    sqlite3_finalize(st);
    if (!rc) new_id = sqlite3_last_insert_rowid(s->db);
    if (!rc && active) rc = exec2(s, "UPDATE recipes SET model_id = ?2 WHERE id = ?1", rid, new_id);
    if (!rc && id) *id = new_id;
    if (!rc) rc = exec(s, "COMMIT");
    if (!rc && used) snprintf(used, usedsz, "%s", unique);
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    free(text);
    return rc;
}

int scoring_store_unscored(struct scoring_store *s, int64_t model_id, int64_t recipe_id,
                           int64_t after_id, int64_t *ids, int max)
{
    sqlite3_stmt *st = s->unscored;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 4, recipe_id);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? n : fail(s, "unscored frames");
}

int scoring_store_resume_point(struct scoring_store *s, int64_t model_id, int64_t recipe_id,
                               int64_t *after_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT max(COALESCE((SELECT MAX(r.frame_id) FROM results r JOIN "
            "frames f ON f.id = r.frame_id WHERE r.model_id = ?1 AND f.recipe_id = "
            "?2), 0), COALESCE((SELECT f.id FROM frames f WHERE f.recipe_id = ?2 AND "
            "EXISTS (SELECT 1 FROM verdicts v WHERE v.frame_id = f.id) ORDER BY f.id "
            "DESC LIMIT 1), 0), COALESCE((SELECT frame_id FROM verdicts_start), 0))",
            -1, &st, NULL) != SQLITE_OK)
        return fail(s, "resume point");
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, recipe_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *after_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "resume point");
}

int scoring_store_frame(struct scoring_store *s, int64_t id, void **data, size_t *size,
                        int64_t *camera_id)
{
    sqlite3_stmt *st = s->frame;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW && sqlite3_column_int(st, 2)) {
        *data = NULL;
        *size = 0;
        *camera_id = sqlite3_column_int64(st, 1);
        found = 2;
    } else if (rc == SQLITE_ROW) {
        *size = (size_t)sqlite3_column_bytes(st, 0);
        *data = malloc(*size ? *size : 1);
        *camera_id = sqlite3_column_int64(st, 1);
        if (*data) {
            memcpy(*data, sqlite3_column_blob(st, 0), *size);
            found = 1;
        } else {
            snprintf(s->err, sizeof s->err, "frame %lld: out of memory", (long long)id);
            found = -1;
        }
    } else if (rc != SQLITE_DONE) {
        found = fail(s, "frame image");
    }
    sqlite3_reset(st);
    return found;
}

int scoring_store_frame_region(struct scoring_store *s, int64_t frame_id, int64_t *region_id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT region_id FROM frames WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "frame region");
    sqlite3_bind_int64(st, 1, frame_id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *region_id = sqlite3_column_int64(st, 0); /* NULL reads as 0 */
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = fail(s, "frame region");
    }
    sqlite3_finalize(st);
    return found;
}

int scoring_store_region(struct scoring_store *s, int64_t region_id, struct region *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT roi, mask FROM regions WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "region");
    sqlite3_bind_int64(st, 1, region_id);
    int rc = sqlite3_step(st), found = 0;
    char why[256];
    if (rc == SQLITE_ROW) {
        const char *roi = (const char *)sqlite3_column_text(st, 0);
        const void *mask = sqlite3_column_blob(st, 1);
        found = 1;
        if ((roi && region_parse_roi(roi, out, why, sizeof why)) ||
            (mask &&
             region_set_mask(out, mask, (size_t)sqlite3_column_bytes(st, 1), why, sizeof why))) {
            snprintf(s->err, sizeof s->err, "region %lld: %.200s", (long long)region_id, why);
            region_free(out);
            found = -1;
        }
    } else if (rc != SQLITE_DONE) {
        found = fail(s, "region");
    }
    sqlite3_finalize(st);
    return found;
}

static int step(struct scoring_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    rc = rc == SQLITE_DONE ? 0 : fail(s, what); /* before the reset, while the error is fresh */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int scoring_store_result(struct scoring_store *s, const struct scoring_result *r)
{
    int64_t now = clock_wall_us();
    double norm = r->threshold > 0 ? r->score / r->threshold : 0.0;
    if (exec(s, "BEGIN IMMEDIATE")) return -1;
    sqlite3_stmt *st = s->result;
    sqlite3_bind_int64(st, 1, r->frame_id);
    sqlite3_bind_int64(st, 2, r->model_id);
    sqlite3_bind_double(st, 3, r->score);
    sqlite3_bind_double(st, 4, norm);
    sqlite3_bind_int(st, 5, r->flagged);
    sqlite3_bind_int64(st, 6, r->latency_us);
    sqlite3_bind_int64(st, 7, now);
    int rc = step(s, st, "insert result");
    if (!rc && r->flagged && r->grid) {
        st = s->heatmap;
        sqlite3_bind_int64(st, 1, r->frame_id);
        sqlite3_bind_int64(st, 2, r->model_id);
        sqlite3_bind_int(st, 3, r->grid_w);
        sqlite3_bind_int(st, 4, r->grid_h);
        sqlite3_bind_blob(st, 5, r->grid, (int)(sizeof(float) * (size_t)r->grid_w * r->grid_h),
                          SQLITE_STATIC);
        rc = step(s, st, "insert heatmap");
    }
    if (!rc && r->flagged) {
        st = s->alert;
        sqlite3_bind_int64(st, 1, r->frame_id);
        sqlite3_bind_int64(st, 2, r->model_id);
        sqlite3_bind_int64(st, 3, r->camera_id);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_double(st, 5, r->score);
        sqlite3_bind_double(st, 6, norm);
        sqlite3_bind_double(st, 7, r->threshold);
        rc = step(s, st, "insert alert");
    }
    if (!rc) {
        st = s->verdict;
        sqlite3_bind_int64(st, 1, r->frame_id);
        sqlite3_bind_text(st, 2, r->flagged ? "ng" : "ok", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r->model_id);
        sqlite3_bind_double(st, 4, r->score);
        sqlite3_bind_double(st, 5, norm);
        sqlite3_bind_double(st, 6, r->threshold);
        sqlite3_bind_int64(st, 7, now);
        rc = step(s, st, "insert verdict");
    }
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int scoring_store_unscored_verdicts(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                                    int64_t last_id, const char *reason)
{
    sqlite3_stmt *st = s->unscored_range;
    sqlite3_bind_int64(st, 5, recipe_id);
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, last_id);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, clock_wall_us());
    return step(s, st, "insert unscored verdicts");
}

int scoring_store_stored_before(struct scoring_store *s, int64_t after_id, int64_t before_us,
                                int64_t *last)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM frames WHERE id > ?1 AND created_at < ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "frames stored before");
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, before_us);
    int rc = sqlite3_step(st);
    *last = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                ? sqlite3_column_int64(st, 0)
                : after_id;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "frames stored before");
}

int scoring_store_frames_after(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                               int max, int64_t *last)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT max(id) FROM (SELECT id FROM frames WHERE (?3 = 0 OR "
                           "recipe_id = ?3) AND id > ?1 ORDER BY id LIMIT ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "frames after");
    sqlite3_bind_int64(st, 3, recipe_id);
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, max);
    int rc = sqlite3_step(st);
    *last = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                ? sqlite3_column_int64(st, 0)
                : after_id;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "frames after");
}

static int count_query(struct scoring_store *s, const char *sql, int64_t arg, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return fail(s, sql);
    sqlite3_bind_int64(st, 1, arg);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, sql);
}

int scoring_store_confirmed_defect(struct scoring_store *s, int64_t frame_id)
{
    int64_t n = 0;
    if (count_query(s, "SELECT COUNT(*) FROM alerts WHERE frame_id = ? AND state = 'defect'",
                    frame_id, &n))
        return -1;
    return n > 0;
}

/* The first frame at or after id: its id and created_at. Returns 1, 0 when there is none, -1. */
static int frame_at_or_after(struct scoring_store *s, sqlite3_stmt *st, int64_t id, int64_t *got,
                             int64_t *created)
{
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *got = sqlite3_column_int64(st, 0);
        *created = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : fail(s, "stale frames");
}

int scoring_store_stale(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                        int64_t before_us, int64_t *last, int64_t *count)
{
    *last = after_id, *count = 0;
    sqlite3_stmt *at = NULL, *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, created_at FROM frames WHERE (?2 = 0 OR recipe_id = ?2) "
                           "AND id >= ?1 ORDER BY id LIMIT 1",
                           -1, &at, NULL) != SQLITE_OK)
        return fail(s, "stale frames");
    sqlite3_bind_int64(at, 2, recipe_id);
    /* the next frame to score: mostly fresh, and then that is all this costs */
    int64_t id = 0, created = 0, hi = 0;
    int rc = frame_at_or_after(s, at, after_id + 1, &id, &created);
    if (rc == 1 && created < before_us) {
        /* stale: find the last stale frame by bisection on id (frames are stored in id order, so
         * created_at does not decrease with id), reading one row per probe, not the backlog */
        int64_t lo = id; /* known stale */
        if (sqlite3_prepare_v2(s->db, "SELECT MAX(id) FROM frames WHERE ?1 = 0 OR recipe_id = ?1",
                               -1, &st, NULL) != SQLITE_OK ||
            sqlite3_bind_int64(st, 1, recipe_id) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
            rc = fail(s, "stale frames");
        else
            hi = sqlite3_column_int64(st, 0) + 1; /* treated as fresh */
        sqlite3_finalize(st);
        st = NULL;
        while (rc == 1 && hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            rc = frame_at_or_after(s, at, mid, &id, &created);
            if (rc == 0 || (rc == 1 && id >= hi))
                hi = mid, rc = 1; /* no frame in [mid, hi) */
            else if (rc == 1 && created < before_us)
                lo = id;
            else if (rc == 1)
                hi = id;
        }
        /* every frame passed over is counted, whatever its own time */
        if (rc == 1 &&
            sqlite3_prepare_v2(s->db,
                               "SELECT COUNT(*) FROM frames WHERE (?3 = 0 OR recipe_id = ?3) AND "
                               "id > ?1 AND id <= ?2",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, after_id);
            sqlite3_bind_int64(st, 2, lo);
            sqlite3_bind_int64(st, 3, recipe_id);
            if (sqlite3_step(st) == SQLITE_ROW) {
                *count = sqlite3_column_int64(st, 0);
                *last = lo;
            } else {
                rc = fail(s, "stale frames");
            }
        } else if (rc == 1) {
            rc = fail(s, "stale frames");
        }
        sqlite3_finalize(st);
    }
    sqlite3_finalize(at);
    return rc < 0 ? -1 : 0;
}

int scoring_store_model_files(struct scoring_store *s, int keep,
                              void (*fn)(const char *path, bool keep, bool active, void *ctx),
                              void *ctx)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT path, json_extract(meta, '$.bank'), "
                           "status = 'active' OR id IN "
                           "(SELECT id FROM models ORDER BY id DESC LIMIT ?), "
                           "status = 'active' FROM models",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "model files");
    sqlite3_bind_int(st, 1, keep);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool k = sqlite3_column_int(st, 2) != 0, active = sqlite3_column_int(st, 3) != 0;
        for (int col = 0; col < 2; col++) {
            if (sqlite3_column_type(st, col) != SQLITE_TEXT) continue; /* no bank: NULL */
            const char *path = (const char *)sqlite3_column_text(st, col);
            if (path && *path) fn(path, k, active, ctx);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "model files");
}

int scoring_store_frames_since_model(struct scoring_store *s, int64_t recipe_id, int64_t *count)
{
    return count_query(s,
                       "SELECT COUNT(*) FROM frames WHERE recipe_id = ?1 AND created_at > "
                       "COALESCE((SELECT m.created_at FROM recipes r JOIN models m ON m.id = "
                       "r.model_id WHERE r.id = ?1), -1)",
                       recipe_id, count);
}

int scoring_store_frames_of_recipe(struct scoring_store *s, int64_t recipe_id, int64_t *count)
{
    return count_query(s, "SELECT COUNT(*) FROM frames WHERE recipe_id = ?1", recipe_id, count);
}

int scoring_store_has_checkpoint(struct scoring_store *s, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM models WHERE path = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "find checkpoint");
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : fail(s, "find checkpoint");
    sqlite3_finalize(st);
    return found;
}

int scoring_store_confirmed_defects(struct scoring_store *s, int64_t recipe_id, int64_t *ids,
                                    int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT a.frame_id FROM alerts a JOIN frames f ON f.id = a.frame_id "
                           "WHERE a.state = 'defect' AND (?2 = 0 OR f.recipe_id = ?2) "
                           "ORDER BY a.frame_id DESC LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "confirmed defects");
    sqlite3_bind_int(st, 1, max);
    sqlite3_bind_int64(st, 2, recipe_id);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "confirmed defects");
}

int scoring_store_false_positives(struct scoring_store *s, int64_t recipe_id, int64_t *ids, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT a.frame_id FROM alerts a JOIN frames f ON f.id = a.frame_id "
                           "WHERE a.state = 'false_positive' AND (?2 = 0 OR f.recipe_id = ?2) "
                           "ORDER BY a.reviewed_at DESC, a.id DESC LIMIT ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "false positives");
    sqlite3_bind_int(st, 1, max);
    sqlite3_bind_int64(st, 2, recipe_id);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "false positives");
}

int scoring_store_feedback_mark(struct scoring_store *s, int64_t recipe_id, int64_t mark[3])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*), coalesce(max(a.reviewed_at), 0), "
                           "coalesce(sum(a.frame_id), 0) FROM alerts a JOIN frames f ON f.id = "
                           "a.frame_id WHERE a.state = 'false_positive' AND (?1 = 0 OR "
                           "f.recipe_id = ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "feedback");
    sqlite3_bind_int64(st, 1, recipe_id);
    int rc = sqlite3_step(st);
    for (int i = 0; i < 3 && rc == SQLITE_ROW; i++) mark[i] = sqlite3_column_int64(st, i);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "feedback");
}

int scoring_store_pick_recipe(struct scoring_store *s, const char *asked, bool need_model,
                              char *out, size_t outsz, char *why, size_t whysz)
{
    enum { MAX = 256 };
    struct recipe_row *rows = malloc(sizeof *rows * MAX);
    if (!rows) {
        snprintf(s->err, sizeof s->err, "recipes: out of memory");
        return -1;
    }
    int n = scoring_store_recipes(s, rows, MAX);
    if (n < 0) {
        free(rows);
        return -1;
    }
    int found = -1, candidates = 0;
    char list[512] = "";
    for (int i = 0; i < n; i++) {
        if (asked ? strcmp(rows[i].name, asked) != 0 : need_model && !rows[i].has_model) continue;
        found = i;
        candidates++;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", rows[i].name);
    }
    int rc = 0;
    if (asked && found < 0) {
        snprintf(why, whysz, "the database has no recipe named '%s'", asked);
        rc = 1;
    } else if (asked && need_model && !rows[found].has_model) {
        snprintf(why, whysz,
                 "recipe %s has no model yet (inspectd train --db --register "
                 "--recipe %s makes one)",
                 asked, asked);
        rc = 1;
    } else if (!asked && candidates == 0) {
        snprintf(why, whysz, "%s",
                 need_model ? "the database has no model yet (inspectd train "
                              "--db --register makes one)"
                            : "the database has no recipe yet (no frames)");
        rc = 1;
    } else if (!asked && candidates > 1) {
        snprintf(why, whysz, "the database has several recipes (%s): say which with --recipe",
                 list);
        rc = 1;
    } else {
        snprintf(out, outsz, "%s", rows[found].name);
    }
    free(rows);
    return rc;
}

/* The config file's sensitivity of a recipe as text: what an API change is compared with. */
static void sensitivity_text(char *out, size_t n, double rate, double threshold)
{
    snprintf(out, n, "false_alarm_rate=%.9g threshold=%.9g", rate, threshold);
}

/* Binds a positive value, or NULL. */
static void bind_positive(sqlite3_stmt *st, int i, double v)
{
    if (v > 0)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

int scoring_store_file_sensitivity(struct scoring_store *s, const char *recipe, double rate,
                                   double threshold)
{
    char text[96];
    sensitivity_text(text, sizeof text, rate, threshold);
    int64_t rid;
    sqlite3_stmt *st = NULL;
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (!rc) rc = recipe_id(s, recipe, &rid);
    if (!rc && sqlite3_prepare_v2(s->db,
                                  "UPDATE recipes SET false_alarm_rate = ?2, threshold = ?3, "
                                  "sensitivity_file = NULL WHERE id = ?1 AND "
                                  "(sensitivity_file IS NULL OR sensitivity_file <> ?4)",
                                  -1, &st, NULL) != SQLITE_OK)
        rc = fail(s, "sensitivity");
    if (!rc) {
        sqlite3_bind_int64(st, 1, rid);
        bind_positive(st, 2, rate);
        bind_positive(st, 3, threshold);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) rc = fail(s, "sensitivity");
    }
    sqlite3_finalize(st);
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int scoring_store_put_sensitivity(struct scoring_store *s, const char *recipe, double rate,
                                  double threshold, double file_rate, double file_threshold)
{
    char text[96];
    sensitivity_text(text, sizeof text, file_rate, file_threshold);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           rate > 0 ? "UPDATE recipes SET false_alarm_rate = ?2, threshold = NULL, "
                                      "sensitivity_file = ?3 WHERE name = ?1"
                                    : "UPDATE recipes SET threshold = ?2, sensitivity_file = ?3 "
                                      "WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "sensitivity");
    sqlite3_bind_text(st, 1, recipe, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, rate > 0 ? rate : threshold);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->db) > 0 : fail(s, "sensitivity");
    sqlite3_finalize(st);
    return rc;
}

int scoring_store_calibration_frames(struct scoring_store *s, int64_t recipe_id, int64_t model_id,
                                     int64_t *ids, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT f.id FROM frames f JOIN results r ON r.frame_id = f.id AND "
                           "r.model_id = ?2 WHERE f.recipe_id = ?1 AND r.flagged = 0 UNION "
                           "SELECT a.frame_id FROM alerts a JOIN frames f ON f.id = a.frame_id "
                           "WHERE f.recipe_id = ?1 AND a.state = 'false_positive' "
                           "ORDER BY 1 DESC LIMIT ?3",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "calibration frames");
    sqlite3_bind_int64(st, 1, recipe_id);
    sqlite3_bind_int64(st, 2, model_id);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "calibration frames");
}
