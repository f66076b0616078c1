/* feed.c — the results feed's thread: poll the verdicts after the last one seen, count, hand on. */
#define LOG_TAG "feed"
#include "log.h"

#include "feed.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/metrics.h"
#include "result_json.h"
#include "store/store_alerts.h"

#define POLL_MS     5
#define BATCH       64
#define MAX_CAMERAS 64 /* cameras counted (the configured ones, and those of older rows) */

struct camera_counts {
    char name[64];
    struct line_counts c;
};

struct line_feed {
    pthread_t thread;
    struct store_pool *pool; /* one connection, the feed's own */
    struct line_output outputs[LINE_FEED_MAX_OUTPUTS];
    int noutputs;
    int64_t last_id;
    int64_t last_event_id; /* of the event log: alerts, reviews, model changes */
    bool failing;          /* the last poll failed: logged once */
    bool stopped;          /* the thread was joined */

    pthread_mutex_t lock; /* guards what follows */
    bool stop;
    struct camera_counts cameras[MAX_CAMERAS];
    int ncameras;
};

/* The counts of camera name (added when new; the last slot takes every camera beyond the limit). */
static struct line_counts *counts_of(struct line_feed *f, const char *name)
{
    for (int i = 0; i < f->ncameras; i++)
        if (strcmp(f->cameras[i].name, name) == 0) return &f->cameras[i].c;
    if (f->ncameras == MAX_CAMERAS) return &f->cameras[MAX_CAMERAS - 1].c;
    struct camera_counts *c = &f->cameras[f->ncameras++];
    snprintf(c->name, sizeof c->name, "%s", name);
    return &c->c;
}

static void count(struct line_feed *f, const char *camera, enum result_verdict v, int reason,
                  uint64_t n)
{
    struct line_counts *c = counts_of(f, camera);
    c->verdicts[v] += n;
    if (v == RESULT_UNSCORED && reason >= 0) c->reasons[reason] += n;
}

/* The counts so far, and where following starts. Returns 0, or -1 with the reason in err. */
static int load_counts(struct line_feed *f, char *err, size_t errsz)
{
    struct store_reader *rd = store_pool_get(f->pool);
    struct result_count *rows = NULL;
    int n = -1;
    if (store_last_result(rd, &f->last_id) == 0 && store_last_event(rd, &f->last_event_id) == 0)
        n = store_result_counts(rd, f->last_id, &rows);
    if (n < 0) snprintf(err, errsz, "results feed: %s", store_reader_errmsg(rd));
    store_pool_put(f->pool, rd);
    for (int i = 0; i < n; i++)
        count(f, rows[i].camera, rows[i].verdict, rows[i].reason, (uint64_t)rows[i].n);
    free(rows);
    return n < 0 ? -1 : 0;
}

static bool stopping(struct line_feed *f)
{
    pthread_mutex_lock(&f->lock);
    bool stop = f->stop;
    pthread_mutex_unlock(&f->lock);
    return stop;
}

/* The alert or model an event names, as compact JSON (malloc'ed), or NULL when it is gone. */
static char *event_json(struct store_reader *rd, const struct event_row *e)
{
    json_t *j = NULL;
    if (strcmp(e->kind, "model") == 0) {
        struct model_info mi;
        if (store_get_model(rd, e->ref, &mi) != 1) return NULL;
        j = line_model_json(&mi);
        store_model_clear(&mi);
    } else {
        struct alert_info a;
        if (store_get_alert(rd, e->ref, &a) != 1) return NULL;
        j = line_alert_json(&a);
    }
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

/* Hands on the events logged after last_event_id. Returns 0 or -1. */
static int poll_events(struct line_feed *f, struct store_reader *rd)
{
    struct event_row ev[BATCH];
    int n = store_events_after(rd, f->last_event_id, ev, BATCH);
    for (int i = 0; i < n; i++) {
        f->last_event_id = ev[i].id;
        char *text = event_json(rd, &ev[i]);
        for (int k = 0; text && k < f->noutputs; k++)
            if (f->outputs[k].event) f->outputs[k].event(f->outputs[k].ctx, ev[i].kind, text);
        free(text);
    }
    return n < 0 ? -1 : 0;
}

/* Reads and hands on the verdicts after last_id. Returns how many there were, or -1. */
static int poll_once(struct line_feed *f, struct result_info *batch)
{
    struct store_reader *rd = store_pool_get(f->pool);
    int n = store_results_after(rd, f->last_id, batch, BATCH);
    if (n >= 0 && poll_events(f, rd) < 0) n = -1;
    if (n < 0 && !f->failing) log_error("cannot read new results: %s", store_reader_errmsg(rd));
    store_pool_put(f->pool, rd);
    if (n >= 0 && f->failing) log_info("reading new results again");
    f->failing = n < 0;
    if (n <= 0) return n;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < n; i++) count(f, batch[i].camera, batch[i].verdict, batch[i].reason, 1);
    pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < f->noutputs; k++) f->outputs[k].result(f->outputs[k].ctx, &batch[i]);
    f->last_id = batch[n - 1].id;
    return n;
}

static void *feed_main(void *arg)
{
    struct line_feed *f = arg;
    struct result_info *batch = malloc(sizeof *batch * BATCH);
    if (!batch) {
        log_error("out of memory for the results feed: line outputs and result counts stop");
        return NULL;
    }
    while (!stopping(f)) {
        if (poll_once(f, batch) == BATCH) continue;
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* stopping, once every writer of verdicts has stopped (cmd_run): what was reached since the
     * last poll still goes to the outputs */
    while (poll_once(f, batch) == BATCH) {
    }
    free(batch);
    return NULL;
}

struct line_feed *line_feed_start(const char *db_path, const struct line_output *outputs, int n,
                                  char *err, size_t errsz)
{
    if (n < 0 || n > LINE_FEED_MAX_OUTPUTS) {
        snprintf(err, errsz, "results feed: %d outputs (at most %d)", n, LINE_FEED_MAX_OUTPUTS);
        return NULL;
    }
    struct line_feed *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errsz, "out of memory for the results feed");
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    if (n) memcpy(f->outputs, outputs, sizeof *outputs * (size_t)n);
    f->noutputs = n;
    int rc = !(f->pool = store_pool_open(db_path, 1, err, errsz)) || load_counts(f, err, errsz);
    if (!rc && pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        snprintf(err, errsz, "cannot start the results feed's thread");
        rc = -1;
    }
    if (rc) {
        store_pool_close(f->pool);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
    }
    return f;
}

void line_feed_stop(struct line_feed *f)
{
    if (!f || f->stopped) return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    f->stopped = true;
}

void line_feed_free(struct line_feed *f)
{
    if (!f) return;
    line_feed_stop(f);
    store_pool_close(f->pool);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void line_feed_totals(struct line_feed *f, struct line_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->ncameras; i++) {
        for (int v = 0; v < RESULT_NVERDICTS; v++) out->verdicts[v] += f->cameras[i].c.verdicts[v];
        for (int r = 0; r < RESULT_NREASONS; r++) out->reasons[r] += f->cameras[i].c.reasons[r];
    }
    pthread_mutex_unlock(&f->lock);
}

void line_feed_write_metrics(FILE *out, struct line_feed *f)
{
    char label[160];
    pthread_mutex_lock(&f->lock);
    metrics_write_header(out, "inspectd_results_total", "counter",
                         "Verdicts reached, by camera and verdict (ok, ng, unscored).");
    for (int i = 0; i < f->ncameras; i++)
        for (int v = 0; v < RESULT_NVERDICTS; v++)
            fprintf(out, "inspectd_results_total{camera=\"%s\",verdict=\"%s\"} %llu\n",
                    metrics_label(f->cameras[i].name, label, sizeof label),
                    result_verdict_name((enum result_verdict)v),
                    (unsigned long long)f->cameras[i].c.verdicts[v]);
    metrics_write_header(out, "inspectd_results_unscored_total", "counter",
                         "Unscored verdicts, by camera and reason.");
    for (int i = 0; i < f->ncameras; i++)
        for (int r = 0; r < RESULT_NREASONS; r++)
            fprintf(out, "inspectd_results_unscored_total{camera=\"%s\",reason=\"%s\"} %llu\n",
                    metrics_label(f->cameras[i].name, label, sizeof label),
                    result_reason_name((enum result_reason)r),
                    (unsigned long long)f->cameras[i].c.reasons[r]);
    pthread_mutex_unlock(&f->lock);
}
