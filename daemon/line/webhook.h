/* webhook.h — webhooks ([webhook.NAME], libcurl): each event a receiver asked for (alert, review,
 * model; result only when asked) is POSTed to its url as {"event": KIND, "data": {...}}, signed
 * with X-Inspectd-Signature: sha256=HEX (HMAC-SHA256 of the body with its secret, OpenSSL's
 * libcrypto) when it has one.
 *
 * Every event goes through a persistent outbox in SQLite (store_webhooks.h): a receiver that is
 * down for an hour, or a daemon restarted meanwhile, gets every event afterwards, in order (each
 * webhook's events are sent one at a time, the oldest first; a failed one is tried again after
 * 1 s doubling to 5 minutes, and the later ones wait behind it). The outbox is bounded by
 * max_pending rows and max_age: the oldest are dropped first and counted; the writer's retention
 * deletes its events as the frames' derived rows (retention.h). Each webhook has a
 * thread and a connection of its own, so one that never answers (each try ends after
 * timeout_ms) holds up neither the others nor the line; the feed only hands events to an
 * in-memory queue (bounded, the oldest dropped and counted) that the thread writes to the
 * outbox. */
#ifndef INSPECTD_LINE_WEBHOOK_H
#define INSPECTD_LINE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "line_config.h"
#include "store/store_results.h"

struct line_webhooks;

/* Starts a thread per webhook of c (c->nwebhooks >= 1) on the database at db_path. Returns NULL
 * with the reason in err. */
struct line_webhooks *line_webhooks_start(const struct line_config *c, const char *db_path,
                                          char *err, size_t errsz);
/* Stops the threads (a request under way is abandoned; its event stays in the outbox). NULL is
 * fine. */
void line_webhooks_stop(struct line_webhooks *w);

/* The feed's outputs (line/feed.h). */
void line_webhooks_result(void *ctx, const struct result_info *r);
void line_webhooks_event(void *ctx, const char *kind, const char *json);

struct line_webhook_status {
    char name[64];
    bool failing;    /* the last try failed */
    int64_t pending; /* events in the outbox and the queue */
    uint64_t delivered, failures, dropped;
    char last_error[256];
};

/* Webhook i's status (0 <= i < count). Returns false when i is out of range. */
bool line_webhooks_status(struct line_webhooks *w, int i, struct line_webhook_status *out);
/* inspectd_webhook_{delivered_total,failures_total,dropped_total,pending}{webhook}. */
void line_webhooks_write_metrics(FILE *out, struct line_webhooks *w);

/* "sha256=" and the HMAC-SHA256 of body under secret in lower-case hex into out (at least 72
 * bytes). Returns 0, or -1 when libcrypto fails. */
int line_webhook_signature(const char *secret, const char *body, size_t len, char *out,
                           size_t outsz);

#endif
