/* feed.h — the results feed: one thread that follows the verdicts table (store_results.h) in the
 * order verdicts are reached and hands each new one to the line outputs registered with it (MQTT,
 * the PLC registers, webhooks), and keeps the counts /metrics shows. It polls every few
 * milliseconds through a read-only connection of its own, so no writer (the scorer, the
 * inspection window) knows of the outputs, and an output that is slow holds up only this thread,
 * never capture or scoring (each output queues what it cannot send at once, bounded).
 *
 * Alerts, reviews and model changes come from the event log (schema/0003_operator.sql) the same
 * way.
 *
 * Invariants: the counts are those of the database (read once at start, then every verdict the
 * feed sees added); outputs see every verdict reached after the feed started and before it was
 * stopped, once, in order. */
#ifndef INSPECTD_LINE_FEED_H
#define INSPECTD_LINE_FEED_H

#include <stdint.h>
#include <stdio.h>

#include "store/store_results.h"

struct line_feed;

/* What an output does with each new verdict, and with each entry of the event log (kind
 * "alert", "review" or "model"; json: the alert or model as compact JSON, line_alert_json or
 * line_model_json); called on the feed's thread, in order. event may be NULL. */
struct line_output {
    void (*result)(void *ctx, const struct result_info *r);
    void (*event)(void *ctx, const char *kind, const char *json);
    void *ctx;
};

#define LINE_FEED_MAX_OUTPUTS 8

/* Opens its connection to the database at path (migrated), reads the counts so far, and starts
 * following from the newest verdict. outputs: n (at most LINE_FEED_MAX_OUTPUTS) outputs, copied.
 * Returns NULL with the reason in err. */
struct line_feed *line_feed_start(const char *db_path, const struct line_output *outputs, int n,
                                  char *err, size_t errsz);
/* Stops the thread once it has handed on every verdict and event in the database (so call it
 * after every writer of verdicts stopped: nothing reached before the stop is left out); the
 * counts stay readable until line_feed_free(). NULL is fine, and so is a second call. */
void line_feed_stop(struct line_feed *f);
/* Stops the thread if it runs, and frees. NULL is fine. */
void line_feed_free(struct line_feed *f);

/* Verdicts counted for one camera. */
struct line_counts {
    uint64_t verdicts[RESULT_NVERDICTS];
    uint64_t reasons[RESULT_NREASONS];
};

/* The counts of all cameras added up. */
void line_feed_totals(struct line_feed *f, struct line_counts *out);

/* /metrics: inspectd_results_total{camera,verdict} and inspectd_results_unscored_total{camera,
 * reason}. */
void line_feed_write_metrics(FILE *out, struct line_feed *f);

#endif
