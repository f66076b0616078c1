/* store_webhooks.c — SQL for the webhooks' outbox. */
#include "store_webhooks.h"

#include "clock.h"
#include "sqlite.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_webhooks {
    sqlite3 *db;
    char err[256];
};

static int fail(struct store_webhooks *s, const char *what)
{
    snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

const char *store_webhooks_errmsg(const struct store_webhooks *s)
{
    return s->err;
}

struct store_webhooks *store_webhooks_open(const char *path, char *err, size_t errsz)
{
    struct store_webhooks *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (!(s->db = store_sqlite_open(path, SQLITE_OPEN_READWRITE, err, errsz))) {
        free(s);
        return NULL;
    }
    return s;
}

void store_webhooks_close(struct store_webhooks *s)
{
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

static int prepare(struct store_webhooks *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : fail(s, "prepare");
}

/* Steps st to its end and finalizes it. Returns 0 or -1. */
static int run(struct store_webhooks *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s, what);
    sqlite3_finalize(st);
    return rc;
}

int store_webhooks_add(struct store_webhooks *s, const char *hook, const struct webhook_new *rows,
                       int n)
{
    sqlite3_stmt *st;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, "begin");
    if (prepare(s, "INSERT INTO webhook_outbox (hook, kind, body, created_at) VALUES (?, ?, ?, ?)",
                &st)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    int rc = 0;
    int64_t now = clock_wall_us();
    for (int i = 0; i < n && !rc; i++) {
        sqlite3_bind_text(st, 1, hook, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rows[i].kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rows[i].body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) != SQLITE_DONE) rc = fail(s, "add webhook event");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (!rc && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = fail(s, "commit");
    if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_webhooks_trim(struct store_webhooks *s, const char *hook, int max_pending,
                        int64_t before_us)
{
    sqlite3_stmt *st;
    if (prepare(s,
                "DELETE FROM webhook_outbox WHERE hook = ?1 AND (created_at < ?2 OR id <= "
                "coalesce((SELECT id FROM webhook_outbox WHERE hook = ?1 ORDER BY id DESC "
                "LIMIT 1 OFFSET ?3), 0))",
                &st))
        return -1;
    sqlite3_bind_text(st, 1, hook, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before_us);
    sqlite3_bind_int(st, 3, max_pending);
    if (run(s, st, "trim the webhook outbox")) return -1;
    return sqlite3_changes(s->db);
}

int store_webhooks_oldest(struct store_webhooks *s, const char *hook, struct webhook_row *out)
{
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT id, kind, body, created_at, attempts, next_at FROM webhook_outbox "
                "WHERE hook = ? ORDER BY id LIMIT 1",
                &st))
        return -1;
    sqlite3_bind_text(st, 1, hook, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->kind, sizeof out->kind, "%s", (const char *)sqlite3_column_text(st, 1));
        const char *body = (const char *)sqlite3_column_text(st, 2);
        out->body = strdup(body ? body : "");
        out->created_at = sqlite3_column_int64(st, 3);
        out->attempts = sqlite3_column_int(st, 4);
        out->next_at = sqlite3_column_int64(st, 5);
        found = out->body ? 1 : -1;
        if (found < 0) snprintf(s->err, sizeof s->err, "oldest webhook event: out of memory");
    } else if (rc != SQLITE_DONE) {
        found = fail(s, "oldest webhook event");
    }
    sqlite3_finalize(st);
    return found;
}

int store_webhooks_pending(struct store_webhooks *s, const char *hook, int64_t *n)
{
    sqlite3_stmt *st;
    if (prepare(s, "SELECT count(*) FROM webhook_outbox WHERE hook = ?", &st)) return -1;
    sqlite3_bind_text(st, 1, hook, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(s, "count webhook events");
}

int store_webhooks_done(struct store_webhooks *s, int64_t id)
{
    sqlite3_stmt *st;
    if (prepare(s, "DELETE FROM webhook_outbox WHERE id = ?", &st)) return -1;
    sqlite3_bind_int64(st, 1, id);
    return run(s, st, "delete a delivered webhook event");
}

int store_webhooks_retry(struct store_webhooks *s, int64_t id, int64_t next_at)
{
    sqlite3_stmt *st;
    if (prepare(s, "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?",
                &st))
        return -1;
    sqlite3_bind_int64(st, 1, next_at);
    sqlite3_bind_int64(st, 2, id);
    return run(s, st, "put off a webhook event");
}
