/* http.h — the HTTP API server (libmicrohttpd with its internal thread pool) and the route
 * tables its handlers are registered in.
 *
 * Routes: each API file defines a `const struct http_route name[]` ended by {0} and routes.c lists
 * those tables in http_route_tables[]; adding endpoints means one new table and one line there.
 * A pattern is a path whose segments may be `{name}` (matches one non-empty segment; handlers read
 * them in order from req->params). A path that matches with another method gets 405 with Allow.
 * HEAD is served by GET routes. Unknown paths get 404; every error body is {"error": "..."}.
 *
 * Authentication ([http] token or token_file): every mutation (any method but GET and HEAD) needs
 * "Authorization: Bearer TOKEN" (401 otherwise; 403 when the daemon has no token at all), and so
 * does every request when the server listens on a non-loopback address, except /healthz, /readyz
 * and the review page's static files. GET requests may carry the token as ?access_token=TOKEN
 * instead (browsers cannot set headers on EventSource and <img>). Comparisons take constant time.
 * No CORS: a preflight is a 405 like any unknown method.
 * The server keeps its own copy of the token, which http_set_token() replaces (a reload).
 *
 * Limits ([http]): connections at once, seconds a connection may idle, request body bytes
 * (max_upload, HTTP_MAX_MODEL for an authorised checkpoint upload; JSON bodies are held to
 * HTTP_MAX_JSON by their handlers), query string length
 * (HTTP_MAX_QUERY, 414 beyond).
 *
 * Each connection has its own thread; handlers run concurrently, fill a struct http_reply and
 * must not block for long (a store read is fine). A streamed reply (SSE, a tar export) calls its
 * producer on the connection's thread until it ends; the producer may block briefly, and must
 * watch *req->stopping. */
#ifndef INSPECTD_HTTP_H
#define INSPECTD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <stdatomic.h>
#include <sys/types.h>

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_JSON   (64u << 10) /* a JSON request body */
/* A checkpoint uploaded to POST /api/v1/models may be this large whatever max_upload says, once
 * its request carries the right bearer token (checked before any of the body is read). */
#define HTTP_MAX_MODEL    (1024ul << 20)
#define HTTP_MODEL_UPLOAD "/api/v1/models"
#define HTTP_MAX_QUERY    4096 /* bytes of query string */

struct http_query_arg {
    const char *key;
    const char *value; /* NULL for a bare key ("?flag") */
};

struct http_request {
    void *ctx;  /* what http_start() was given: the handlers' own state */
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS]; /* the {name} segments, in order */
    size_t nparams;
    const struct http_query_arg *query; /* the decoded query arguments, in order */
    size_t nquery;
    const char *body; /* request body (NUL-terminated), "" when none */
    size_t body_len;
    const atomic_bool *stopping; /* true once the server is stopping: streams end */
};

/* A streamed body's producer: writes up to max bytes into buf and returns how many (> 0), or
 * HTTP_STREAM_END when done, HTTP_STREAM_ERROR to cut the connection. It may block briefly (an
 * SSE stream waits for events in short sleeps) but must return when *stopping is set. */
#define HTTP_STREAM_END   (-1)
#define HTTP_STREAM_ERROR (-2)
typedef ssize_t (*http_stream_fn)(void *ctx, char *buf, size_t max);

struct http_reply {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'ed; the server frees it */
    size_t len;
    char etag[96];             /* "" for none; the quoted entity tag */
    const char *cache_control; /* static string or NULL */
    char disposition[160];     /* Content-Disposition, "" for none */
    http_stream_fn stream;     /* when set, the body comes from it (chunked) */
    void (*stream_free)(void *ctx);
    void *stream_ctx;
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

/* What the server is started with ([http] in the config; the strings are copied or read at
 * start, so they need not outlive http_start()). */
struct http_options {
    const char *host; /* numeric IPv4/IPv6 address */
    int port;         /* 0 picks a free port */
    const char *token;
    int max_connections, timeout_s;
    long max_upload;                /* bytes of request body */
    const char *tls_cert, *tls_key; /* PEM files: HTTPS when both are set ("" or NULL: none) */
};

/* Starts listening on o's address; every request carries ctx to its handler (req->ctx).
 * Returns NULL with a reason in err (address in use, ...). */
struct http_server *http_start(const struct http_options *o, void *ctx, char *err, size_t errsz);
/* The port actually bound (differs from the config when it said 0). */
int http_port(const struct http_server *s);
/* Stops accepting, finishes running requests, joins the threads. Safe on NULL. */
void http_stop(struct http_server *s);
/* Replaces the bearer token ("" for none) for the requests that follow (a reload). */
void http_set_token(struct http_server *s, const char *token);

/* ---- for handlers ---- */

/* Sets a JSON reply; takes the reference to obj. An encoding failure becomes a 500. */
void http_reply_json(struct http_reply *r, int status, json_t *obj);
/* Sets {"error": message} with the status. */
void http_reply_error(struct http_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes a malloc'ed body of the given type. */
void http_reply_body(struct http_reply *r, int status, const char *content_type, char *body,
                     size_t len);

/* Streams the body from next(ctx) (see http_stream_fn); free_ctx(ctx) runs when the response is
 * done or could not be sent. Takes ctx. */
void http_reply_stream(struct http_reply *r, int status, const char *content_type,
                       http_stream_fn next, void (*free_ctx)(void *), void *ctx);

/* Parses a JSON object body (at most HTTP_MAX_JSON bytes, Content-Type application/json).
 * Returns a new reference, or NULL after replying 4xx (413, 415, 400 with jansson's reason). */
json_t *http_json_body(const struct http_request *req, struct http_reply *r);
/* The parsing step of http_json_body, without the Content-Type check: len bytes of text as one
 * JSON object (duplicate keys refused). Returns a new reference, or NULL after replying 413/400. */
json_t *http_parse_json(const char *text, size_t len, struct http_reply *r);

/* The handler of req->method on req->path. req->params point into `path` (a copy of req->path
 * split in place, pathsz bytes), which must outlive the handler call. Returns NULL when no route
 * serves the request; *path_known is then true when the path exists with other methods, listed
 * in `allow` ("GET, POST"). */
http_handler http_find_route(struct http_request *req, char *path, size_t pathsz, char *allow,
                             size_t allowsz, bool *path_known);

/* A query-string value (the first when the key repeats), or NULL when absent or bare. */
const char *http_query(const struct http_request *req, const char *key);
/* Replies 400 and returns -1 when the query has a key not in `allowed` (NULL-terminated);
 * access_token is always allowed. */
int http_check_query(const struct http_request *req, const char *const *allowed,
                     struct http_reply *r);
/* A request header, or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* Writes the request counters by status code for /metrics. */
void http_write_metrics(FILE *out);

#endif
