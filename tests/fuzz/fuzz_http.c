/* fuzz_http.c — libFuzzer target: what the HTTP API makes of a request's text before any
 * database or pipeline work: route matching (every registered table), query-string checks and
 * their parsing by the handlers, http_parse_int, JSON bodies.
 *
 * Input layout: the first byte picks the kind of input (byte % number of kinds), the rest is
 * that kind's text. Adding a parser means one function and one line in `kinds` below; existing
 * corpus files keep their meaning as long as new kinds are appended.
 *
 * Invariants checked: every reply is a 4xx/5xx with a JSON {"error": "..."} body or none at all;
 * a matched route's {params} are non-empty path segments; parsed values lie in their ranges. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"

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

/* Splits "k=v&k&k=v" into req->query the way a decoded query string arrives from
 * libmicrohttpd (a bare key has a NULL value). Returns false when there are too many. */
static bool split_query(char *text, struct http_request *req)
{
    char *save;
    for (char *a = strtok_r(text, "&", &save); a; a = strtok_r(NULL, "&", &save)) {
        if (req->nquery == HTTP_MAX_QUERY) return false;
        char *eq = strchr(a, '=');
        if (eq) *eq = '\0';
        req->query[req->nquery++] = (struct http_query_arg){a, eq ? eq + 1 : NULL};
    }
    return true;
}

/* The query string of GET /api/v1/frames. */
static void fuzz_frames_query(char *text, size_t len)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/frames", .body = ""};
    if (!split_query(text, &req)) return;
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
    if (http_parse_int(s, lo, hi, &v) == 0) {
        if (v < lo || v > hi) abort();
        /* only an optional '-' then digits may be accepted */
        const char *d = s + (s[0] == '-');
        if (!d[0] || strspn(d, "0123456789") != strlen(d)) abort();
    }
}

/* A JSON body as handlers read it. */
static void fuzz_json_body(char *text, size_t len)
{
    struct http_request req = {.method = "POST", .path = "/", .body = text, .body_len = len};
    struct http_reply r = {0};
    json_t *j;
    if (http_json_body(&req, &r, &j) == 0) {
        if (!json_is_object(j) || r.body) abort();
        json_decref(j);
    } else {
        if (j) abort();
        check_error_reply(&r);
    }
    free(r.body);
}

/* Indexed by the input's first byte modulo the count; append new kinds at the end. */
static void (*const kinds[])(char *text, size_t len) = {
    fuzz_route,        /* 0 */
    fuzz_frames_query, /* 1 */
    fuzz_parse_int,    /* 2 */
    fuzz_json_body,    /* 3 */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    kinds[data[0] % (sizeof kinds / sizeof *kinds)](text, n);
    free(text);
    return 0;
}
