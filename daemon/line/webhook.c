/* webhook.c — webhooks: per receiver, an in-memory queue, the SQLite outbox, and a thread that
 * delivers its oldest event with libcurl until the receiver takes it. */
#define LOG_TAG "webhook"
#include "log.h"

#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "base/metrics.h"
#include "base/version.h"
#include "result_json.h"
#include "store/store_webhooks.h"

#define QUEUE_MAX      4096 /* events waiting to be written to the outbox, at most */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS   (5 * 60 * 1000)
#define TRIM_EVERY_MS  1000

struct pending_event {
    char kind[8];
    char *body;
};

struct hook {
    struct line_webhook_config cfg;
    const char *db_path;
    pthread_t thread;
    bool started;
    atomic_bool *stop; /* the set's */

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    struct pending_event queue[QUEUE_MAX];
    int head, count;
    struct line_webhook_status st;
};

struct line_webhooks {
    atomic_bool stop;
    int n;
    struct hook hooks[LINE_MAX_WEBHOOKS];
};

int line_webhook_signature(const char *secret, const char *body, size_t len, char *out,
                           size_t outsz)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (outsz < 8 + 2 * 32 || !HMAC(EVP_sha256(), secret, (int)strlen(secret),
                                    (const unsigned char *)body, len, mac, &maclen))
        return -1;
    int off = snprintf(out, outsz, "sha256=");
    for (unsigned i = 0; i < maclen && (size_t)off + 3 <= outsz; i++)
        off += snprintf(out + off, outsz - (size_t)off, "%02x", mac[i]);
    return 0;
}

/* ---- the queue the feed fills ---- */

static void enqueue(struct hook *h, const char *kind, char *body)
{
    if (!body) return;
    pthread_mutex_lock(&h->lock);
    if (h->count == QUEUE_MAX) { /* the outbox cannot be written: the oldest goes */
        free(h->queue[h->head].body);
        h->head = (h->head + 1) % QUEUE_MAX;
        h->count--;
        h->st.dropped++;
    }
    struct pending_event *e = &h->queue[(h->head + h->count) % QUEUE_MAX];
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    e->body = body;
    h->count++;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
}

/* {"event": kind, "data": json} as text (malloc'ed). */
static char *envelope(const char *kind, const char *json)
{
    size_t n = strlen(kind) + strlen(json) + 32;
    char *body = malloc(n);
    if (body) snprintf(body, n, "{\"event\":\"%s\",\"data\":%s}", kind, json);
    return body;
}

static unsigned kind_bit(const char *kind)
{
    return strcmp(kind, "alert") == 0    ? LINE_EVENT_ALERT
           : strcmp(kind, "review") == 0 ? LINE_EVENT_REVIEW
           : strcmp(kind, "model") == 0  ? LINE_EVENT_MODEL
           : strcmp(kind, "result") == 0 ? LINE_EVENT_RESULT
                                         : 0;
}

void line_webhooks_event(void *ctx, const char *kind, const char *json)
{
    struct line_webhooks *w = ctx;
    unsigned bit = kind_bit(kind);
    for (int i = 0; i < w->n; i++)
        if (w->hooks[i].cfg.events & bit) enqueue(&w->hooks[i], kind, envelope(kind, json));
}

void line_webhooks_result(void *ctx, const struct result_info *r)
{
    struct line_webhooks *w = ctx;
    char *json = NULL;
    for (int i = 0; i < w->n; i++) {
        if (!(w->hooks[i].cfg.events & LINE_EVENT_RESULT)) continue;
        if (!json) {
            json_t *j = line_result_json(r, NULL);
            json = j ? json_dumps(j, JSON_COMPACT) : NULL;
            json_decref(j);
            if (!json) return;
        }
        enqueue(&w->hooks[i], "result", envelope("result", json));
    }
    free(json);
}

/* ---- the thread ---- */

static void set_error(struct hook *h, bool failing, const char *msg)
{
    pthread_mutex_lock(&h->lock);
    bool changed = h->st.failing != failing;
    h->st.failing = failing;
    snprintf(h->st.last_error, sizeof h->st.last_error, "%.*s", (int)sizeof h->st.last_error - 1,
             failing ? msg : "");
    pthread_mutex_unlock(&h->lock);
    if (changed && failing)
        log_warn("%s: %s (events wait in the outbox and are tried again)", h->cfg.name, msg);
    else if (changed)
        log_info("%s: delivering again", h->cfg.name);
}

/* Writes the queued events to the outbox. Returns 0, or -1 (they stay queued). */
static int persist(struct hook *h, struct store_webhooks *db)
{
    struct webhook_new rows[64];
    char *bodies[64];
    pthread_mutex_lock(&h->lock);
    int n = h->count < 64 ? h->count : 64;
    for (int i = 0; i < n; i++) {
        struct pending_event *e = &h->queue[(h->head + i) % QUEUE_MAX];
        rows[i] = (struct webhook_new){e->kind, e->body};
        bodies[i] = e->body;
    }
    pthread_mutex_unlock(&h->lock);
    if (n == 0) return 0;
    if (store_webhooks_add(db, h->cfg.name, rows, n)) return -1;
    /* the feed only appends, so the first n are still the ones written */
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < n; i++) {
        if (h->queue[h->head].body == bodies[i]) { /* unless dropped meanwhile */
            free(h->queue[h->head].body);
            h->head = (h->head + 1) % QUEUE_MAX;
            h->count--;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static void wait_ms(struct hook *h, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_mutex_lock(&h->lock);
    if (!atomic_load(h->stop) && h->count == 0) pthread_cond_timedwait(&h->wake, &h->lock, &until);
    pthread_mutex_unlock(&h->lock);
}

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    return size * n;
}

static int abort_when_stopping(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                               curl_off_t un)
{
    struct hook *h = ctx;
    return atomic_load(h->stop) ? 1 : 0;
}

/* POSTs one event. Returns 0 when the receiver took it (2xx), else -1 with the reason in why. */
static int deliver(struct hook *h, CURL *curl, const struct webhook_row *row, char *why,
                   size_t whysz)
{
    char event[64], delivery[64], sig[128];
    snprintf(event, sizeof event, "X-Inspectd-Event: %s", row->kind);
    snprintf(delivery, sizeof delivery, "X-Inspectd-Delivery: %lld", (long long)row->id);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, event);
    headers = curl_slist_append(headers, delivery);
    size_t len = strlen(row->body);
    if (h->cfg.secret[0]) {
        char value[100];
        if (line_webhook_signature(h->cfg.secret, row->body, len, value, sizeof value)) {
            curl_slist_free_all(headers);
            snprintf(why, whysz, "cannot sign the body (libcrypto)");
            return -1;
        }
        snprintf(sig, sizeof sig, "X-Inspectd-Signature: %s", value);
        headers = curl_slist_append(headers, sig);
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, h->cfg.url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, row->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "inspectd/" INSPECTD_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, h);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(why, whysz, "%.200s: %s", h->cfg.url, curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, whysz, "%.200s answered %ld", h->cfg.url, status);
        return -1;
    }
    return 0;
}

static int64_t retry_delay_ms(int attempts)
{
    int64_t ms = RETRY_FIRST_MS;
    for (int i = 0; i < attempts && ms < RETRY_MAX_MS; i++) ms *= 2;
    return ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS;
}

/* Trims the outbox to its bounds and counts what went. */
static void trim(struct hook *h, struct store_webhooks *db)
{
    int n = store_webhooks_trim(db, h->cfg.name, h->cfg.max_pending,
                                clock_wall_us() - (int64_t)h->cfg.max_age_s * 1000000);
    if (n <= 0) return;
    pthread_mutex_lock(&h->lock);
    h->st.dropped += (uint64_t)n;
    pthread_mutex_unlock(&h->lock);
    log_warn("%s: dropped the %d oldest event(s) of the outbox (max_pending %d, max_age %d s)",
             h->cfg.name, n, h->cfg.max_pending, h->cfg.max_age_s);
}

/* One turn: persist, trim now and then, deliver the oldest event when it is due. Returns how
 * long to wait before the next turn (ms). */
static int64_t turn(struct hook *h, struct store_webhooks *db, CURL *curl, int64_t *next_trim)
{
    if (persist(h, db)) {
        set_error(h, true, store_webhooks_errmsg(db));
        return 1000;
    }
    if (clock_mono_us() >= *next_trim) {
        trim(h, db);
        *next_trim = clock_mono_us() + TRIM_EVERY_MS * 1000;
    }
    struct webhook_row row;
    int found = store_webhooks_oldest(db, h->cfg.name, &row);
    int64_t pending = 0;
    if (found >= 0) store_webhooks_pending(db, h->cfg.name, &pending);
    pthread_mutex_lock(&h->lock);
    h->st.pending = pending + h->count;
    pthread_mutex_unlock(&h->lock);
    if (found < 0) {
        set_error(h, true, store_webhooks_errmsg(db));
        return 1000;
    }
    if (found == 0) return 1000;
    int64_t now = clock_wall_us(), wait = 0;
    if (row.next_at > now) {
        wait = (row.next_at - now) / 1000 + 1;
    } else {
        char why[512];
        if (deliver(h, curl, &row, why, sizeof why) == 0) {
            pthread_mutex_lock(&h->lock);
            h->st.delivered++;
            pthread_mutex_unlock(&h->lock);
            if (store_webhooks_done(db, row.id))
                set_error(h, true, store_webhooks_errmsg(db));
            else
                set_error(h, false, "");
        } else if (!atomic_load(h->stop)) {
            pthread_mutex_lock(&h->lock);
            h->st.failures++;
            pthread_mutex_unlock(&h->lock);
            set_error(h, true, why);
            wait = retry_delay_ms(row.attempts);
            if (store_webhooks_retry(db, row.id, now + wait * 1000))
                set_error(h, true, store_webhooks_errmsg(db));
        }
    }
    free(row.body);
    return wait;
}

static void *hook_main(void *arg)
{
    struct hook *h = arg;
    char err[512];
    struct store_webhooks *db = NULL;
    CURL *curl = curl_easy_init();
    int64_t next_trim = 0;
    while (!atomic_load(h->stop) && !db) {
        if (!(db = store_webhooks_open(h->db_path, err, sizeof err))) {
            set_error(h, true, err);
            wait_ms(h, 1000);
        }
    }
    while (db && curl && !atomic_load(h->stop)) {
        int64_t wait = turn(h, db, curl, &next_trim);
        if (wait > 0) wait_ms(h, wait > 1000 ? 1000 : wait);
    }
    if (db) persist(h, db); /* what the feed handed over last goes to the outbox */
    if (!curl) log_error("%s: cannot create a libcurl handle", h->cfg.name);
    curl_easy_cleanup(curl);
    store_webhooks_close(db);
    return NULL;
}

struct line_webhooks *line_webhooks_start(const struct line_config *c, const char *db_path,
                                          char *err, size_t errsz)
{
    struct line_webhooks *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errsz, "out of memory for the webhooks");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errsz, "cannot initialise libcurl");
        free(w);
        return NULL;
    }
    atomic_init(&w->stop, false);
    for (int i = 0; i < c->nwebhooks; i++) {
        struct hook *h = &w->hooks[i];
        h->cfg = c->webhooks[i];
        h->db_path = db_path;
        h->stop = &w->stop;
        memcpy(h->st.name, h->cfg.name, sizeof h->st.name); /* both names of 64 bytes */
        pthread_mutex_init(&h->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->wake, &ca);
        pthread_condattr_destroy(&ca);
        w->n = i + 1;
        if (pthread_create(&h->thread, NULL, hook_main, h) != 0) {
            snprintf(err, errsz, "cannot start the thread of [webhook.%s]", h->cfg.name);
            line_webhooks_stop(w);
            return NULL;
        }
        h->started = true;
        log_info("%s: events%s%s%s%s to %s%s", h->cfg.name,
                 h->cfg.events & LINE_EVENT_ALERT ? " alert" : "",
                 h->cfg.events & LINE_EVENT_REVIEW ? " review" : "",
                 h->cfg.events & LINE_EVENT_MODEL ? " model" : "",
                 h->cfg.events & LINE_EVENT_RESULT ? " result" : "", h->cfg.url,
                 h->cfg.secret[0] ? ", signed" : "");
    }
    return w;
}

void line_webhooks_stop(struct line_webhooks *w)
{
    if (!w) return;
    atomic_store(&w->stop, true);
    for (int i = 0; i < w->n; i++) {
        struct hook *h = &w->hooks[i];
        pthread_mutex_lock(&h->lock);
        pthread_cond_broadcast(&h->wake);
        pthread_mutex_unlock(&h->lock);
    }
    for (int i = 0; i < w->n; i++) {
        struct hook *h = &w->hooks[i];
        if (h->started) pthread_join(h->thread, NULL);
        for (int k = 0; k < h->count; k++) free(h->queue[(h->head + k) % QUEUE_MAX].body);
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
    }
    curl_global_cleanup();
    free(w);
}

bool line_webhooks_status(struct line_webhooks *w, int i, struct line_webhook_status *out)
{
    if (i < 0 || i >= w->n) return false;
    struct hook *h = &w->hooks[i];
    pthread_mutex_lock(&h->lock);
    *out = h->st;
    pthread_mutex_unlock(&h->lock);
    return true;
}

void line_webhooks_write_metrics(FILE *out, struct line_webhooks *w)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"inspectd_webhook_delivered_total", "counter", "Events a webhook's receiver took."},
        {"inspectd_webhook_failures_total", "counter", "Deliveries that failed (tried again)."},
        {"inspectd_webhook_dropped_total", "counter",
         "Events dropped from a full or too old outbox."},
        {"inspectd_webhook_pending", "gauge", "Events waiting for a webhook's receiver."},
    };
    char label[160];
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        metrics_write_header(out, m[k].name, m[k].type, m[k].help);
        for (int i = 0; i < w->n; i++) {
            struct line_webhook_status st;
            line_webhooks_status(w, i, &st);
            unsigned long long v = k == 0   ? st.delivered
                                   : k == 1 ? st.failures
                                   : k == 2 ? st.dropped
                                            : (unsigned long long)st.pending;
            fprintf(out, "%s{webhook=\"%s\"} %llu\n", m[k].name,
                    metrics_label(st.name, label, sizeof label), v);
        }
    }
}
