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
        "SELECT id, version, path, json_extract(meta, '$.bank'), threshold, created_at "
        "FROM models WHERE status = 'active'",
        "SELECT f.id FROM frames f WHERE f.id > ?2 AND NOT EXISTS (SELECT 1 FROM results r "
        "WHERE r.frame_id = f.id AND r.model_id = ?1) ORDER BY f.id LIMIT ?3",
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
        "WHERE id > ?1 AND id <= ?2 ORDER BY id"};
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

int scoring_store_active_model(struct scoring_store *s, struct model_row *out)
{
    sqlite3_stmt *st = s->active;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        store_column_text(out->version, sizeof out->version, st, 1);
        store_column_text(out->path, sizeof out->path, st, 2);
        store_column_text(out->bank, sizeof out->bank, st, 3);
        out->threshold = sqlite3_column_double(st, 4);
        out->created_at = sqlite3_column_int64(st, 5);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : fail(s, "active model");
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

int scoring_store_register_model(struct scoring_store *s, const char *version, const char *ckpt,
                                 const char *bank, double threshold, int frames_used, double loss,
                                 const char *meta, bool active, int64_t *id, char *used,
                                 size_t usedsz)
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
    if (!rc) rc = free_version(s, version, unique, sizeof unique);
    if (!rc && active) rc = exec(s, "UPDATE models SET status = 'retired' WHERE status = 'active'");
    if (!rc && sqlite3_prepare_v2(s->db,
                                  "INSERT INTO models (version, path, created_at, threshold, "
                                  "meta, status, frames_used, loss, activated_at) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        if (sqlite3_step(st) != SQLITE_DONE) rc = fail(s, "register model");
    }
    sqlite3_finalize(st);
    if (!rc && id) *id = sqlite3_last_insert_rowid(s->db);
    if (!rc) rc = exec(s, "COMMIT");
    if (!rc && used) snprintf(used, usedsz, "%s", unique);
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    free(text);
    return rc;
}

int scoring_store_unscored(struct scoring_store *s, int64_t model_id, int64_t after_id,
                           int64_t *ids, int max)
{
    sqlite3_stmt *st = s->unscored;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? n : fail(s, "unscored frames");
}

int scoring_store_resume_point(struct scoring_store *s, int64_t model_id, int64_t *after_id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT max(COALESCE((SELECT MAX(frame_id) FROM results WHERE "
                           "model_id = ?), 0), COALESCE((SELECT MAX(frame_id) FROM verdicts), 0), "
                           "COALESCE((SELECT frame_id FROM verdicts_start), 0))",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "resume point");
    sqlite3_bind_int64(st, 1, model_id);
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

int scoring_store_unscored_verdicts(struct scoring_store *s, int64_t after_id, int64_t last_id,
                                    const char *reason)
{
    sqlite3_stmt *st = s->unscored_range;
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

int scoring_store_frames_after(struct scoring_store *s, int64_t after_id, int max, int64_t *last)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT max(id) FROM (SELECT id FROM frames WHERE id > ?1 ORDER BY id "
                           "LIMIT ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "frames after");
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

int scoring_store_stale(struct scoring_store *s, int64_t after_id, int64_t before_us, int64_t *last,
                        int64_t *count)
{
    *last = after_id, *count = 0;
    sqlite3_stmt *at = NULL, *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, created_at FROM frames WHERE id >= ? ORDER BY id LIMIT 1",
                           -1, &at, NULL) != SQLITE_OK)
        return fail(s, "stale frames");
    /* the next frame to score: mostly fresh, and then that is all this costs */
    int64_t id = 0, created = 0, hi = 0;
    int rc = frame_at_or_after(s, at, after_id + 1, &id, &created);
    if (rc == 1 && created < before_us) {
        /* stale: find the last stale frame by bisection on id (frames are stored in id order, so
         * created_at does not decrease with id), reading one row per probe, not the backlog */
        int64_t lo = id; /* known stale */
        if (sqlite3_prepare_v2(s->db, "SELECT MAX(id) FROM frames", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
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
            sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM frames WHERE id > ? AND id <= ?", -1,
                               &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, after_id);
            sqlite3_bind_int64(st, 2, lo);
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
                           "status IN ('active', 'training', 'validating') OR id IN "
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

int scoring_store_frames_since_model(struct scoring_store *s, int64_t *count)
{
    return count_query(s,
                       "SELECT COUNT(*) FROM frames WHERE created_at > COALESCE((SELECT "
                       "created_at FROM models WHERE status = 'active'), ?)",
                       -1, count);
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

int scoring_store_confirmed_defects(struct scoring_store *s, int64_t *ids, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT frame_id FROM alerts WHERE state = 'defect' "
                           "ORDER BY frame_id DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "confirmed defects");
    sqlite3_bind_int(st, 1, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "confirmed defects");
}

int scoring_store_false_positives(struct scoring_store *s, int64_t *ids, int max)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT frame_id FROM alerts WHERE state = 'false_positive' "
                           "ORDER BY reviewed_at DESC, id DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "false positives");
    sqlite3_bind_int(st, 1, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : fail(s, "false positives");
}

int scoring_store_feedback_mark(struct scoring_store *s, int64_t mark[3])
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*), coalesce(max(reviewed_at), 0), "
                           "coalesce(sum(frame_id), 0) FROM alerts WHERE state = 'false_positive'",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "feedback");
    int rc = sqlite3_step(st);
    for (int i = 0; i < 3 && rc == SQLITE_ROW; i++) mark[i] = sqlite3_column_int64(st, i);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "feedback");
}
