/* api_events.c — GET /api/v1/events: Server-Sent Events from the database's event log
 * (schema/0003_operator.sql). The stream polls the log every 250 ms through a briefly lent
 * connection, writes one event per row (`id`, `event: alert|review|model`, `data:` the alert or
 * model as JSON), a comment every 15 s when nothing happens (proxies keep the connection, and a
 * client that went away is noticed), and ends when the server stops. A client that reconnects
 * with Last-Event-ID (or ?last_event_id=) gets what it missed, as far as the log goes back.
 * ?types= picks the kinds (alert, review, model by default); `result` adds one event per part's
 * verdict, read from the verdicts table itself, so the results of a busy line never push alerts,
 * reviews and model events out of the log's replay window. A stream with results numbers its
 * events "EVENT:RESULT" (the last event log id and the last verdict id it sent), and takes such
 * an id back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "api.h"
#include "line/result_json.h"
#include "store/store_alerts.h"
#include "store/store_results.h"

#define LOG_TAG "api"
#include "log.h"

#define POLL_MS      250
#define KEEPALIVE_MS 15000
#define BATCH        64

struct sse {
    struct app *app;
    const atomic_bool *stopping;
    int64_t last_id;
    unsigned types;         /* API_EVENT_* */
    int64_t last_result_id; /* with API_EVENT_RESULT */
    char *pending;          /* bytes not yet sent */
    size_t len, off, cap;
    int idle_ms;
};

static void sse_free(void *ctx)
{
    struct sse *s = ctx;
    free(s->pending);
    free(s);
}

static int append(struct sse *s, const char *text, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2;
        char *p = realloc(s->pending, cap);
        if (!p) return -1;
        s->pending = p, s->cap = cap;
    }
    memcpy(s->pending + s->len, text, n);
    s->len += n;
    return 0;
}

/* The event's data: the alert or model as it is now ({"id": N, "deleted": true} when gone). */
static json_t *event_data(struct store_reader *rd, const struct event_row *e)
{
    if (strcmp(e->kind, "model") == 0) {
        struct model_info m;
        if (store_get_model(rd, e->ref, &m) != 1)
            return json_pack("{s:I, s:b}", "id", (json_int_t)e->ref, "deleted", 1);
        json_t *j = api_model_json(&m);
        store_model_clear(&m);
        return j;
    }
    struct alert_info a;
    if (store_get_alert(rd, e->ref, &a) == 1) return api_alert_json(&a);
    return json_pack("{s:I, s:b}", "id", (json_int_t)e->ref, "deleted", 1);
}

static unsigned kind_bit(const char *kind)
{
    if (strcmp(kind, "alert") == 0) return API_EVENT_ALERT;
    if (strcmp(kind, "review") == 0) return API_EVENT_REVIEW;
    if (strcmp(kind, "model") == 0) return API_EVENT_MODEL;
    if (strcmp(kind, "result") == 0) return API_EVENT_RESULT;
    return 0;
}

int api_events_types(const char *types, struct http_reply *r, unsigned *mask)
{
    *mask = API_EVENT_ALERT | API_EVENT_REVIEW | API_EVENT_MODEL;
    if (!types) return 0;
    *mask = 0;
    const char *p = types;
    for (;;) {
        size_t len = strcspn(p, ",");
        char kind[8];
        unsigned bit = 0;
        if (len < sizeof kind) {
            memcpy(kind, p, len);
            kind[len] = '\0';
            bit = kind_bit(kind);
        }
        if (!bit) {
            http_reply_error(r, 400,
                             "types must be a comma separated list of alert, review, model and "
                             "result");
            return -1;
        }
        *mask |= bit;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* Appends one event to pending. Returns 0, or -1 when out of memory. */
static int append_event(struct sse *s, const char *kind, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    char head[128];
    int hn =
        s->types & API_EVENT_RESULT
            ? snprintf(head, sizeof head, "id: %lld:%lld\nevent: %s\ndata: ", (long long)s->last_id,
                       (long long)s->last_result_id, kind)
            : snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ", (long long)s->last_id,
                       kind);
    int rc = !text || append(s, head, (size_t)hn) || append(s, text, strlen(text)) ||
                     append(s, "\n\n", 2)
                 ? -1
                 : 0;
    free(text);
    return rc;
}

/* Reads new events (and verdicts, when asked for) into pending. Returns 0, or -1 on a database
 * error (logged). */
static int poll_events(struct sse *s)
{
    struct event_row ev[BATCH];
    struct store_reader *rd = store_pool_get(s->app->readers);
    int n = store_events_after(rd, s->last_id, ev, BATCH), rc = 0;
    if (n < 0) {
        log_error("events: %s", store_reader_errmsg(rd));
        rc = -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        s->last_id = ev[i].id;
        if (s->types & kind_bit(ev[i].kind))
            rc = append_event(s, ev[i].kind, event_data(rd, &ev[i]));
    }
    if (rc == 0 && (s->types & API_EVENT_RESULT)) {
        struct result_info *res = malloc(sizeof *res * BATCH);
        n = res ? store_results_after(rd, s->last_result_id, res, BATCH) : -1;
        if (n < 0) {
            log_error("events: %s", res ? store_reader_errmsg(rd) : "out of memory");
            rc = -1;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            s->last_result_id = res[i].id;
            rc = append_event(s, "result", line_result_json(&res[i], NULL));
        }
        free(res);
    }
    store_pool_put(s->app->readers, rd);
    return rc;
}

static ssize_t sse_next(void *ctx, char *buf, size_t max)
{
    struct sse *s = ctx;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->pending + s->off, n);
            s->off += n;
            if (s->off == s->len) s->off = s->len = 0;
            return (ssize_t)n;
        }
        if (atomic_load(s->stopping)) return HTTP_STREAM_END;
        if (poll_events(s) < 0) return HTTP_STREAM_ERROR;
        if (s->len) {
            s->idle_ms = 0;
            continue;
        }
        if (s->idle_ms >= KEEPALIVE_MS) {
            s->idle_ms = 0;
            if (append(s, ": keep-alive\n\n", 14)) return HTTP_STREAM_ERROR;
            continue;
        }
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        s->idle_ms += POLL_MS;
    }
}

/* "N" or "N:R" (a stream with results): the last event log id and verdict id seen (R -1 when
 * not given). Returns 0 or -1. */
static int parse_last_id(const char *v, int64_t *event, int64_t *result)
{
    char buf[64];
    const char *colon = strchr(v, ':');
    *result = -1;
    if (!colon) return parse_i64(v, 0, INT64_MAX, event);
    size_t len = (size_t)(colon - v);
    if (len >= sizeof buf) return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return parse_i64(buf, 0, INT64_MAX, event) || parse_i64(colon + 1, 0, INT64_MAX, result) ? -1
                                                                                             : 0;
}

/* Where a stream starts: after the ids the client last saw, else after the newest. Returns 0 or
 * -1 (logged). */
static int start_point(struct sse *s, int64_t last_id, int64_t last_result)
{
    struct store_reader *rd = store_pool_get(s->app->readers);
    int rc = 0;
    s->last_id = last_id;
    s->last_result_id = last_result;
    if (last_id < 0) rc = store_last_event(rd, &s->last_id);
    if (!rc && last_result < 0 && (s->types & API_EVENT_RESULT))
        rc = store_last_result(rd, &s->last_result_id);
    if (rc < 0) log_error("events: %s", store_reader_errmsg(rd));
    store_pool_put(s->app->readers, rd);
    return rc;
}

static void get_events(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"last_event_id", "types", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    unsigned types;
    if (api_events_types(http_query(req, "types"), r, &types) < 0) return;
    const char *last = http_header(req, "Last-Event-ID");
    if (!last) last = http_query(req, "last_event_id");
    int64_t last_id = -1, last_result = -1;
    if (last && parse_last_id(last, &last_id, &last_result) < 0)
        return http_reply_error(r, 400, "Last-Event-ID must be an event id");
    struct sse *s = calloc(1, sizeof *s);
    if (!s) return http_reply_error(r, 500, "out of memory");
    s->app = api_app(req);
    s->stopping = req->stopping;
    s->types = types;
    if (start_point(s, last_id, last_result) < 0) {
        sse_free(s);
        return http_reply_error(r, 500, "cannot read the database");
    }
    static const char hello[] = "retry: 3000\n: inspectd events\n\n";
    if (append(s, hello, sizeof hello - 1)) {
        sse_free(s);
        return http_reply_error(r, 500, "out of memory");
    }
    http_reply_stream(r, 200, "text/event-stream", sse_next, sse_free, s);
}

const struct http_route api_events_routes[] = {
    {"GET", "/api/v1/events", get_events},
    {0},
};
