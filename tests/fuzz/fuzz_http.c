/* fuzz_http.c — libFuzzer target: what the HTTP API makes of a request's text before any
 * database or pipeline work: route matching (every registered table), query-string checks and
 * their parsing by the handlers (frames, alerts, export), parse_i64, times in query
 * strings, JSON bodies, the alert review's body and POST /api/v1/train's, the results list's
 * query, POST /api/v1/parts's body, the live feed's ?types= and what `inspectd model import`
 * prints for POST /api/v1/models.
 *
 * Input layout: the first byte picks the kind of input (byte % number of kinds), the rest is
 * that kind's text. Adding a parser means one function and one line in `kinds` below; existing
 * corpus files keep their meaning as long as new kinds are appended.
 *
 * Invariants checked: every refusal is a 4xx with a JSON {"error": "..."} body, every acceptance
 * leaves no reply; a matched route's {params} are non-empty path segments; parsed values lie in
 * their ranges; a parsed time prints back (api_time) to a string that parses to the same time. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "parse.h"
#include "http/api.h"
#include "export/export.h"
#include "http/http.h"
#include "store/store_alerts.h"
#include "store/store_results.h"

#define MAX_ARGS 64

/* A reply left by a refusal: a 400-class status and {"error": "non-empty string"}. */
static void check_error_reply(const struct http_reply *r)
{
    if (r->status < 400 || r->status > 499 || !r->body) abort();
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (!msg || !msg[0] || json_object_size(j) != 1) abort();
    json_decref(j);
}

/* "METHOD PATH": route matching against every route table. */
static void fuzz_route(char *text, size_t len)
{
    char *sp = strchr(text, ' ');
    const char *method = sp ? text : "GET";
    const char *path = sp ? sp + 1 : text;
    if (sp) *sp = '\0';
    struct http_request req = {.method = method, .path = path, .body = ""};
    char buf[1024], allow[128];
    bool known;
    http_handler h = http_find_route(&req, buf, sizeof buf, allow, sizeof allow, &known);
    if (h) {
        if (req.nparams > HTTP_MAX_PARAMS) abort();
        for (size_t i = 0; i < req.nparams; i++) {
            const char *p = req.params[i];
            if (p < buf || p >= buf + sizeof buf || !p[0] || strchr(p, '/')) abort();
        }
    } else if (known && allow[0] == '\0') {
        abort();
    }
}

/* Splits "k=v&k&k=v" into args the way a decoded query string arrives from libmicrohttpd (a
 * bare key has a NULL value). Returns false when there are more than MAX_ARGS. */
static bool split_query(char *text, struct http_query_arg *args, struct http_request *req)
{
    char *save;
    req->query = args;
    for (char *a = strtok_r(text, "&", &save); a; a = strtok_r(NULL, "&", &save)) {
        if (req->nquery == MAX_ARGS) return false;
        char *eq = strchr(a, '=');
        if (eq) *eq = '\0';
        args[req->nquery++] = (struct http_query_arg){a, eq ? eq + 1 : NULL};
    }
    return true;
}

/* The query string of GET /api/v1/frames. */
static void fuzz_frames_query(char *text, size_t len)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/frames", .body = ""};
    struct http_query_arg args[MAX_ARGS];
    if (!split_query(text, args, &req)) return;
    struct http_reply r = {0};
    struct api_frames_query q;
    if (api_frames_list_query(&req, &r, &q) == 0) {
        if (r.body || q.limit < 1 || q.limit > API_FRAMES_MAX_LIMIT || q.before < 0) abort();
        if (q.camera && (!q.camera[0] || strlen(q.camera) >= CONFIG_NAME_MAX)) abort();
        if (q.camera != http_query(&req, "camera")) abort();
    } else {
        check_error_reply(&r);
    }
    free(r.body);
}

/* The query string of GET /api/v1/alerts. */
static void fuzz_alerts_query(char *text, size_t len)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/alerts", .body = ""};
    struct http_query_arg args[MAX_ARGS];
    if (!split_query(text, args, &req)) return;
    struct http_reply r = {0};
    struct alert_filter f;
    int64_t limit;
    if (api_alerts_list_query(&req, &r, &f, &limit) == 0) {
        if (r.body || limit < 1 || limit > API_ALERTS_MAX_LIMIT || f.before < 0) abort();
        if (f.since < 0 || f.until < 0 || (f.since && f.until && f.since >= f.until)) abort();
        if (f.state && strcmp(f.state, "new") && strcmp(f.state, "defect") &&
            strcmp(f.state, "false_positive"))
            abort();
    } else {
        check_error_reply(&r);
    }
    free(r.body);
}

/* A time as query strings carry it; what parses must survive printing and parsing again. */
static void fuzz_time(char *text, size_t len)
{
    int64_t us = -1;
    if (parse_time_us(text, &us) != 0) return;
    if (us < 0) abort();
    if (us == 0 || us >= 253402300800000000LL) return; /* api_time: null, or past year 9999 */
    json_t *s = api_time(us);
    int64_t again = -1;
    if (!json_is_string(s) || parse_time_us(json_string_value(s), &again) != 0 || again != us)
        abort();
    json_decref(s);
}

/* "LO HI TEXT" (LO and HI as the fuzzer likes them, TEXT after the second space). */
static void fuzz_parse_int(char *text, size_t len)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX, v;
    char *a = strchr(text, ' '), *b = a ? strchr(a + 1, ' ') : NULL;
    const char *s = text;
    if (b) {
        lo = strtoll(text, NULL, 10);
        hi = strtoll(a + 1, NULL, 10);
        s = b + 1;
    }
    if (parse_i64(s, lo, hi, &v) == 0) {
        if (v < lo || v > hi) abort();
        /* only an optional '-' then digits may be accepted */
        const char *d = s + (s[0] == '-');
        if (!d[0] || strspn(d, "0123456789") != strlen(d)) abort();
    }
}

/* A JSON body as handlers read it (http_json_body after its Content-Type check). */
static void fuzz_json_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (j) {
        if (!json_is_object(j) || r.body) abort();
        json_decref(j);
    } else {
        check_error_reply(&r);
    }
    free(r.body);
}

/* The body of POST /api/v1/alerts/{id}/review. */
static void fuzz_review_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (!j) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    const char *verdict = NULL, *note = NULL;
    if (api_alerts_review_body(j, &r, &verdict, &note) == 0) {
        if (r.body || !verdict || (strcmp(verdict, "defect") && strcmp(verdict, "false_positive")))
            abort();
        if (note && strlen(note) > ALERT_NOTE_MAX) abort();
    } else {
        check_error_reply(&r);
    }
    json_decref(j);
    free(r.body);
}

/* The body of POST /api/v1/train. */
static void fuzz_train_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (!j) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    bool fresh = false;
    const char *recipe = NULL;
    if (api_models_train_body(j, &r, &fresh, &recipe) == 0) {
        json_t *f = json_object_get(j, "fresh"), *n = json_object_get(j, "recipe");
        size_t known = (f != NULL) + (n != NULL);
        if (r.body || json_object_size(j) != known || (f && !json_is_boolean(f)) ||
            fresh != json_is_true(f) || (n != NULL) != (recipe != NULL) ||
            (recipe && !config_valid_name(recipe)))
            abort();
    } else {
        check_error_reply(&r);
    }
    json_decref(j);
    free(r.body);
}

/* The body of POST /api/v1/cameras/{name}/recipe. */
static void fuzz_recipe_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (!j) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    const char *recipe = NULL;
    if (api_recipes_switch_body(j, &r, &recipe) == 0) {
        if (r.body || !recipe || !config_valid_name(recipe) || json_object_size(j) != 1) abort();
    } else {
        check_error_reply(&r);
    }
    json_decref(j);
    free(r.body);
}

/* The body of PUT /api/v1/recipes/{name}/sensitivity. */
static void fuzz_sensitivity_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (!j) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    double rate = -1, threshold = -1;
    if (api_recipes_sensitivity_body(j, &r, &rate, &threshold) == 0) {
        if (r.body || json_object_size(j) != 1 || (rate > 0) == (threshold > 0) ||
            !(rate == 0 || rate < 1) || rate < 0 || threshold < 0)
            abort();
    } else {
        check_error_reply(&r);
    }
    json_decref(j);
    free(r.body);
}

/* The query string of GET /api/v1/export, checked as its handler does. */
static void fuzz_export_query(char *text, size_t len)
{
    static const char *const allowed[] = {"state", "camera", "since", "until", NULL};
    struct http_request req = {.method = "GET", .path = "/api/v1/export", .body = ""};
    struct http_query_arg args[MAX_ARGS];
    if (!split_query(text, args, &req)) return;
    struct http_reply r = {0};
    if (http_check_query(&req, allowed, &r) < 0) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    struct export_filter f;
    char err[320] = "";
    if (export_filter_parse(&f, http_query(&req, "state"), http_query(&req, "camera"),
                            http_query(&req, "since"), http_query(&req, "until"), err,
                            sizeof err) == 0) {
        if (f.since_us >= f.until_us) abort();
        if (f.state[0] && strcmp(f.state, "new") && strcmp(f.state, "defect") &&
            strcmp(f.state, "false_positive"))
            abort();
    } else if (err[0] == '\0') {
        abort();
    }
}

/* Indexed by the input's first byte modulo the count; append new kinds at the end. */
/* The query string of GET /api/v1/results. */
static void fuzz_results_query(char *text, size_t len)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/results", .body = ""};
    struct http_query_arg args[MAX_ARGS];
    if (!split_query(text, args, &req)) return;
    struct http_reply r = {0};
    struct result_filter f;
    int64_t limit;
    if (api_results_list_query(&req, &r, &f, &limit) == 0) {
        if (r.body || limit < 1 || limit > API_RESULTS_MAX_LIMIT || f.before < 0) abort();
        if (f.since < 0 || f.until < 0 || (f.since && f.until && f.since >= f.until)) abort();
        if (f.verdict < -1 || f.verdict >= RESULT_NVERDICTS) abort();
        if (f.camera && (!f.camera[0] || strlen(f.camera) >= 64)) abort();
    } else {
        check_error_reply(&r);
    }
    free(r.body);
}

/* The body of POST /api/v1/parts. */
static void fuzz_parts_body(char *text, size_t len)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json(text, len, &r);
    if (!j) {
        check_error_reply(&r);
        free(r.body);
        return;
    }
    const char *camera = NULL, *part = NULL;
    if (api_parts_body(j, &r, &camera, &part) == 0) {
        if (r.body || !camera || !part || !camera[0] || !part[0] || strlen(camera) >= 64 ||
            strlen(part) > STORE_PART_ID_MAX || json_object_size(j) != 2)
            abort();
    } else {
        check_error_reply(&r);
    }
    json_decref(j);
    free(r.body);
}

/* ?types= of GET /api/v1/events. */
static void fuzz_event_types(char *text, size_t len)
{
    struct http_reply r = {0};
    unsigned mask = 0;
    if (api_events_types(text, &r, &mask) == 0) {
        if (r.body || mask == 0 || mask > 15) abort();
    } else {
        check_error_reply(&r);
    }
    free(r.body);
}

/* The output of `inspectd model import` that POST /api/v1/models reads. */
static void fuzz_import_output(char *text, size_t len)
{
    char msg[64];
    memset(msg, 'x', sizeof msg);
    json_t *model = api_models_import_output(text, msg, sizeof msg);
    if (model && !json_is_object(model)) abort();
    if (!memchr(msg, '\0', sizeof msg) || !msg[0]) abort();
    json_decref(model);
}

static void (*const kinds[])(char *text, size_t len) = {
    fuzz_route,            /* 0 */
    fuzz_frames_query,     /* 1 */
    fuzz_parse_int,        /* 2 */
    fuzz_json_body,        /* 3 */
    fuzz_alerts_query,     /* 4 */
    fuzz_review_body,      /* 5 */
    fuzz_time,             /* 6 */
    fuzz_export_query,     /* 7 */
    fuzz_train_body,       /* 8 */
    fuzz_results_query,    /* 9 */
    fuzz_parts_body,       /* 10 */
    fuzz_event_types,      /* 11 */
    fuzz_recipe_body,      /* 12 */
    fuzz_sensitivity_body, /* 13 */
    fuzz_import_output,    /* 14 */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    kinds[data[0] % ARRAY_LEN(kinds)](text, n);
    free(text);
    return 0;
}
