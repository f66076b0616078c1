/* store_webhooks.h — the webhooks' outbox (schema/0006_webhooks.sql) on a connection of its own
 * per webhook: rows are added in batches, the oldest is read, delivered rows deleted, failed ones
 * put off, and the outbox kept within its bounds. Every function returns -1 on an error with the
 * reason in store_webhooks_errmsg(). The database must exist with its schema. */
#ifndef INSPECTD_STORE_WEBHOOKS_H
#define INSPECTD_STORE_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_webhooks;

struct webhook_row {
    int64_t id;
    char kind[8];
    char *body; /* malloc'ed */
    int64_t created_at;
    int attempts;
    int64_t next_at;
};

struct webhook_new {
    const char *kind;
    const char *body;
};

/* Opens a read-write connection. Returns NULL with the reason in err. */
struct store_webhooks *store_webhooks_open(const char *path, char *err, size_t errsz);
void store_webhooks_close(struct store_webhooks *s);
const char *store_webhooks_errmsg(const struct store_webhooks *s);

/* Adds n rows of hook in one transaction. Returns 0 or -1. */
int store_webhooks_add(struct store_webhooks *s, const char *hook, const struct webhook_new *rows,
                       int n);
/* Deletes hook's rows beyond the newest max_pending and those created before before_us. Returns
 * how many were deleted, or -1. */
int store_webhooks_trim(struct store_webhooks *s, const char *hook, int max_pending,
                        int64_t before_us);
/* hook's oldest row into *out (free out->body). Returns 1, 0 when there is none, or -1. */
int store_webhooks_oldest(struct store_webhooks *s, const char *hook, struct webhook_row *out);
/* How many rows hook has waiting. Returns 0 or -1. */
int store_webhooks_pending(struct store_webhooks *s, const char *hook, int64_t *n);
/* A delivered row goes. Returns 0 or -1. */
int store_webhooks_done(struct store_webhooks *s, int64_t id);
/* A failed attempt: attempts + 1, not tried again before next_at. Returns 0 or -1. */
int store_webhooks_retry(struct store_webhooks *s, int64_t id, int64_t next_at);

#endif
