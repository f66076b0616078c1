/* http.h — the HTTP API server (libmicrohttpd with its internal thread pool) and the route
 * tables its handlers are registered in.
 *
 * Routes: each API file defines a `const struct http_route name[]` ended by {0} and routes.c lists
 * those tables in http_route_tables[]; adding endpoints means one new table and one line there.
 * A pattern is a path whose segments may be `{name}` (matches one non-empty segment; handlers read
 * them in order from req->params). A path that matches with another method gets 405 with Allow.
 * HEAD is served by GET routes. Unknown paths get 404; every error body is {"error": "..."}.
 *
 * Authentication: with [http] token set, every request except /healthz and /readyz needs
 * "Authorization: Bearer TOKEN" (401 otherwise).
 *
 * Handlers run on the server's pool threads, concurrently; they fill a struct http_reply and
 * must not block for long (a store read is fine). */
#ifndef INSPECTD_HTTP_H
#define INSPECTD_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app.h"

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_BODY   (1u << 20)

struct http_request {
    struct app *app;
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS]; /* the {name} segments, in order */
    size_t nparams;
    const char *body; /* request body (NUL-terminated), "" when none */
    size_t body_len;
};

struct http_reply {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'ed; the server frees it */
    size_t len;
    char etag[96];             /* "" for none; the quoted entity tag */
    const char *cache_control; /* static string or NULL */
};

typedef void (*http_handler)(const struct http_request *req, struct http_reply *reply);

struct http_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/v1/frames/{id}" */
    http_handler handler;
};

/* Every route table, NULL-terminated (routes.c). */
extern const struct http_route *const http_route_tables[];

struct http_server;

/* Starts listening on cfg's [http] address with cfg->http_threads threads. Returns NULL with a
 * reason in err (address in use, ...). */
struct http_server *http_start(struct app *app, char *err, size_t errsz);
/* The port actually bound (differs from the config when it said 0). */
int http_port(const struct http_server *s);
/* Stops accepting, finishes running requests, joins the threads. Safe on NULL. */
void http_stop(struct http_server *s);

/* ---- for handlers ---- */

/* Sets a JSON reply; takes the reference to obj. An encoding failure becomes a 500. */
void http_reply_json(struct http_reply *r, int status, json_t *obj);
/* Sets {"error": message} with the status. */
void http_reply_error(struct http_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes a malloc'ed body of the given type. */
void http_reply_body(struct http_reply *r, int status, const char *content_type, char *body,
                     size_t len);

/* A query-string value, or NULL when absent. */
const char *http_query(const struct http_request *req, const char *key);
/* Replies 400 and returns -1 when the query has a key not in `allowed` (NULL-terminated). */
int http_check_query(const struct http_request *req, const char *const *allowed,
                     struct http_reply *r);
/* A request header, or NULL. */
const char *http_header(const struct http_request *req, const char *name);
/* Parses a whole decimal integer in [lo, hi]. Returns 0 or -1. */
int http_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Writes the request counters by status code for /metrics. */
void http_write_metrics(FILE *out);

#endif
