/* http.c — libmicrohttpd glue: listening, collecting a request, authenticating it, finding its
 * route, and turning a struct http_reply into a response (with ETag revalidation). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http.h"
#include "base/config.h"

#define LOG_TAG "http"
#include "log.h"

#define MAX_SEGMENTS 16

struct http_server {
    struct MHD_Daemon *mhd;
    void *ctx;
    long max_upload;
    int port;
    bool open_reads; /* loopback: GET needs no token */
    atomic_bool stopping;
    char *tls_cert, *tls_key;   /* PEM text, kept while the daemon runs */
    pthread_mutex_t token_lock; /* a reload may change the token while requests run */
    char token[256];
};

/* Per-connection request state, kept in MHD's *con_cls between calls. */
struct pending {
    char *body;
    size_t len;
    size_t max; /* the body's limit for this request */
    bool too_large;
};

static atomic_uint_fast64_t requests_by_code[600];

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    log_warn("%s", line);
}

/* ---- replies ---- */

void http_reply_body(struct http_reply *r, int status, const char *content_type, char *body,
                     size_t len)
{
    free(r->body);
    r->status = status;
    r->content_type = content_type;
    r->body = body;
    r->len = len;
}

void http_reply_stream(struct http_reply *r, int status, const char *content_type,
                       http_stream_fn next, void (*free_ctx)(void *), void *ctx)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = status;
    r->content_type = content_type;
    r->stream = next;
    r->stream_free = free_ctx;
    r->stream_ctx = ctx;
}

void http_reply_json(struct http_reply *r, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        http_reply_error(r, 500, "cannot encode the reply");
        return;
    }
    http_reply_body(r, status, "application/json", text, strlen(text));
}

void http_reply_error(struct http_reply *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *obj = json_pack("{s:s}", "error", msg);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) text = strdup("{\"error\":\"out of memory\"}");
    http_reply_body(r, status, "application/json", text, text ? strlen(text) : 0);
}

/* ---- request helpers ---- */

json_t *http_json_body(const struct http_request *req, struct http_reply *r)
{
    const char *type = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!type || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
        http_reply_error(r, 415, "the body must be JSON (Content-Type: application/json)");
        return NULL;
    }
    return http_parse_json(req->body, req->body_len, r);
}

json_t *http_parse_json(const char *text, size_t len, struct http_reply *r)
{
    if (len > HTTP_MAX_JSON) {
        http_reply_error(r, 413, "JSON body over %u bytes", HTTP_MAX_JSON);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        http_reply_error(r, 400, "bad JSON body: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

const char *http_query(const struct http_request *req, const char *key)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0) return req->query[i].value;
    return NULL;
}

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_check_query(const struct http_request *req, const char *const *allowed,
                     struct http_reply *r)
{
    for (size_t i = 0; i < req->nquery; i++) {
        const char *key = req->query[i].key;
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0) a++;
        if (!*a && strcmp(key, "access_token") != 0) {
            http_reply_error(r, 400, "unknown query parameter '%s'", key);
            return -1;
        }
    }
    return 0;
}

void http_write_metrics(FILE *out)
{
    fprintf(out, "# HELP inspectd_http_requests_total HTTP requests answered, by status code.\n"
                 "# TYPE inspectd_http_requests_total counter\n");
    for (int code = 100; code < 600; code++) {
        uint64_t n = atomic_load(&requests_by_code[code]);
        if (n)
            fprintf(out, "inspectd_http_requests_total{code=\"%d\"} %llu\n", code,
                    (unsigned long long)n);
    }
}

/* ---- routing ---- */

/* Splits "/a/b/c" into segments in place. Returns the count, or -1 when there are too many. */
static int split_path(char *path, char **seg)
{
    int n = 0;
    char *save;
    for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGMENTS) return -1;
        seg[n++] = s;
    }
    return n;
}

/* Matches the path's segments against a pattern; fills req->params. */
static bool match(const char *pattern, char **seg, int nseg, struct http_request *req)
{
    char pat[256];
    snprintf(pat, sizeof pat, "%s", pattern);
    char *pseg[MAX_SEGMENTS];
    int np = split_path(pat, pseg);
    if (np != nseg) return false;
    size_t nparams = 0;
    for (int i = 0; i < np; i++) {
        if (pseg[i][0] == '{') {
            assert(nparams < HTTP_MAX_PARAMS);
            req->params[nparams++] = seg[i];
        } else if (strcmp(pseg[i], seg[i]) != 0) {
            return false;
        }
    }
    req->nparams = nparams;
    return true;
}

static bool same_method(const char *route, const char *method)
{
    return strcmp(route, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(route, "GET") == 0);
}

http_handler http_find_route(struct http_request *req, char *path, size_t pathsz, char *allow,
                             size_t allowsz, bool *path_known)
{
    char *seg[MAX_SEGMENTS];
    *path_known = false;
    allow[0] = '\0';
    if (strlen(req->path) >= pathsz) return NULL;
    strcpy(path, req->path);
    int nseg = split_path(path, seg);
    if (nseg < 0) return NULL;
    for (const struct http_route *const *t = http_route_tables; *t; t++) {
        for (const struct http_route *r = *t; r->pattern; r++) {
            if (!match(r->pattern, seg, nseg, req)) continue;
            if (same_method(r->method, req->method)) return r->handler;
            *path_known = true;
            snprintf(allow + strlen(allow), allowsz - strlen(allow), "%s%s", allow[0] ? ", " : "",
                     r->method);
        }
    }
    return NULL;
}

static bool same_secret(const char *token, const char *given)
{
    size_t n = strlen(token), m = strlen(given);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)given[i < m ? i : 0];
    return diff == 0;
}

static bool is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Paths anyone may read: probes, and the review page's static files (they hold no data). */
static bool public_path(const char *path)
{
    static const char *const open[] = {"/healthz", "/readyz", "/", "/api/v1/openapi.yaml", NULL};
    for (const char *const *p = open; *p; p++)
        if (strcmp(path, *p) == 0) return true;
    return false;
}

/* Whether the request may go on; replies 401/403 when not. */
static bool authorized(struct http_server *s, const struct http_request *req,
                       struct http_reply *reply)
{
    char token[sizeof s->token];
    pthread_mutex_lock(&s->token_lock);
    memcpy(token, s->token, sizeof token);
    pthread_mutex_unlock(&s->token_lock);
    bool read = is_read(req->method);
    if (read && (s->open_reads || public_path(req->path))) return true;
    if (token[0] == '\0') {
        http_reply_error(reply, 403,
                         "this daemon has no API token, so nothing can be changed over HTTP: "
                         "set [http] token_file");
        return false;
    }
    const char *h = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *q = read ? http_query(req, "access_token") : NULL;
    if ((h && strncmp(h, "Bearer ", 7) == 0 && same_secret(token, h + 7)) ||
        (q && same_secret(token, q)))
        return true;
    http_reply_error(reply, 401, "missing or wrong bearer token");
    return false;
}

/* The query arguments as libmicrohttpd decoded them, gathered into one array. */
struct query_args {
    struct http_query_arg *arg;
    size_t n, cap;
    size_t bytes; /* key=value& of each */
    bool nomem;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct query_args *q = cls;
    q->bytes += strlen(key) + 2 + (value ? strlen(value) : 0);
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 8;
        struct http_query_arg *grown = realloc(q->arg, cap * sizeof *grown);
        if (!grown) {
            q->nomem = true;
            return MHD_NO;
        }
        q->arg = grown, q->cap = cap;
    }
    q->arg[q->n++] = (struct http_query_arg){key, value};
    return MHD_YES;
}

static void dispatch(struct http_server *s, struct http_request *req, struct http_reply *reply,
                     char *allow, size_t allowsz)
{
    struct query_args q = {0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    req->query = q.arg, req->nquery = q.n;
    bool path_known;
    char path[1024];
    http_handler h = NULL;
    if (q.nomem)
        http_reply_error(reply, 500, "out of memory for the query string");
    else if (q.bytes > HTTP_MAX_QUERY)
        http_reply_error(reply, 414, "query string over %d bytes", HTTP_MAX_QUERY);
    else if ((h = http_find_route(req, path, sizeof path, allow, allowsz, &path_known))) {
        if (authorized(s, req, reply)) h(req, reply);
    } else if (path_known) /* what exists is no secret: 404 and 405 come before authentication */
        http_reply_error(reply, 405, "method %s not allowed on %s", req->method, req->path);
    else
        http_reply_error(reply, 404, "no such path: %s", req->path);
    req->query = NULL, req->nquery = 0;
    free(q.arg);
    assert(reply->status >= 100 && reply->status < 600);
}

static bool etag_matches(const struct http_request *req, const char *etag)
{
    const char *inm = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    return etag[0] && inm && (strstr(inm, etag) || strcmp(inm, "*") == 0);
}

struct stream {
    http_stream_fn next;
    void (*free_ctx)(void *);
    void *ctx;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *st = cls;
    ssize_t n = st->next(st->ctx, buf, max);
    if (n == HTTP_STREAM_END) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n <= 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    if (st->free_ctx) st->free_ctx(st->ctx);
    free(st);
}

static struct MHD_Response *make_response(struct http_reply *reply)
{
    if (!reply->stream)
        return MHD_create_response_from_buffer(reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
    struct stream *st = malloc(sizeof *st);
    if (!st) {
        if (reply->stream_free) reply->stream_free(reply->stream_ctx);
        return NULL;
    }
    *st = (struct stream){reply->stream, reply->stream_free, reply->stream_ctx};
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 << 10, stream_read, st, stream_free);
    if (!resp) stream_free(st);
    return resp;
}

static enum MHD_Result send_reply(struct http_request *req, struct http_reply *reply,
                                  const char *allow)
{
    if (reply->status == 200 && !reply->stream && etag_matches(req, reply->etag)) {
        free(reply->body);
        reply->body = NULL;
        reply->len = 0;
        reply->status = 304;
    }
    struct MHD_Response *resp = make_response(reply);
    if (!resp) {
        if (!reply->stream) free(reply->body);
        return MHD_NO;
    }
    if (reply->disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, reply->disposition);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (reply->content_type && reply->status != 304)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    if (reply->etag[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, reply->etag);
    if (reply->cache_control)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, reply->cache_control);
    else
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (reply->status == 405) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (reply->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    atomic_fetch_add(&requests_by_code[reply->status], 1);
    enum MHD_Result rc = MHD_queue_response(req->conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Collects the body across calls; returns true when the request is complete. */
static bool collect_body(struct pending *p, const char *data, size_t *size, size_t max)
{
    if (*size == 0) return true;
    if (p->too_large || p->len + *size > max) {
        p->too_large = true;
    } else {
        char *grown = realloc(p->body, p->len + *size + 1);
        if (!grown) {
            p->too_large = true;
        } else {
            memcpy(grown + p->len, data, *size);
            p->len += *size;
            grown[p->len] = '\0';
            p->body = grown;
        }
    }
    *size = 0;
    return false;
}

/* Connection threads run at a lower priority than capture, writing and scoring (Linux nice is
 * per thread): a burst of HTTP requests waits rather than slowing the line. */
#define HTTP_NICE 10

static void lower_priority_once(void)
{
    static _Thread_local bool done;
    if (done) return;
    done = true;
    errno = 0;
    int now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), now + HTTP_NICE) != 0)
        log_debug("http: cannot lower the connection thread's priority: %s", strerror(errno));
}

/* The body limit of a request: HTTP_MAX_MODEL for a checkpoint upload whose bearer token is
 * right (nobody else gets to send a gigabyte), else [http] max_upload. */
static size_t upload_limit(struct http_server *s, struct MHD_Connection *conn, const char *method,
                           const char *url)
{
    if (strcmp(method, "POST") != 0 || strcmp(url, HTTP_MODEL_UPLOAD) != 0)
        return (size_t)s->max_upload;
    char token[sizeof s->token];
    pthread_mutex_lock(&s->token_lock);
    memcpy(token, s->token, sizeof token);
    pthread_mutex_unlock(&s->token_lock);
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    bool ok = token[0] && h && strncmp(h, "Bearer ", 7) == 0 && same_secret(token, h + 7);
    size_t max = (size_t)s->max_upload;
    return ok && HTTP_MAX_MODEL > max ? HTTP_MAX_MODEL : max;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct pending *p = *con_cls;
    lower_priority_once();
    if (!p) {
        if (!(p = calloc(1, sizeof *p))) return MHD_NO;
        p->max = upload_limit(s, conn, method, url);
        *con_cls = p;
        return MHD_YES;
    }
    size_t max = p->max;
    if (!collect_body(p, upload_data, upload_size, max)) return MHD_YES;

    struct http_request req = {.ctx = s->ctx,
                               .conn = conn,
                               .method = method,
                               .path = url,
                               .body = p->body ? p->body : "",
                               .body_len = p->len,
                               .stopping = &s->stopping};
    struct http_reply reply = {0};
    char allow[128] = "";
    if (p->too_large)
        http_reply_error(&reply, 413, "request body over %zu bytes ([http] max_upload)", max);
    else
        dispatch(s, &req, &reply, allow, sizeof allow);
    return send_reply(&req, &reply, allow);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct pending *p = *con_cls;
    if (!p) return;
    free(p->body);
    free(p);
    *con_cls = NULL;
}

/* A PEM file's text (malloc'ed), or NULL with the reason in err. */
static char *read_pem(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) &&
        fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = '\0';
    } else {
        snprintf(err, errsz, "%s: cannot read it%s%s", path, f ? "" : ": ",
                 f ? "" : strerror(errno));
        free(text);
        text = NULL;
    }
    if (f) fclose(f);
    return text;
}

/* Fills a socket address from the configured numeric host and port. Returns its length or 0. */
static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss, bool *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return sizeof *a4;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return sizeof *a6;
    }
    return 0;
}

struct http_server *http_start(const struct http_options *o, void *ctx, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    bool v6;
    if (!make_addr(o->host, o->port, &ss, &v6)) {
        snprintf(err, errsz, "bad listen address %s", o->host);
        return NULL;
    }
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "http: out of memory");
        return NULL;
    }
    s->ctx = ctx;
    s->max_upload = o->max_upload;
    s->open_reads = config_is_loopback(o->host);
    atomic_init(&s->stopping, false);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (v6) flags |= MHD_USE_IPv6;
    bool tls = o->tls_cert && o->tls_cert[0] != '\0';
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errsz, "[http] tls_cert: this libmicrohttpd has no TLS support");
            free(s);
            return NULL;
        }
        if (!(s->tls_cert = read_pem(o->tls_cert, err, errsz)) ||
            !(s->tls_key = read_pem(o->tls_key, err, errsz))) {
            free(s->tls_cert), free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    pthread_mutex_init(&s->token_lock, NULL);
    snprintf(s->token, sizeof s->token, "%s", o->token ? o->token : "");
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_END, 0, NULL}};
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errsz, "cannot listen on %s:%d (address in use or not available%s)", o->host,
                 o->port, tls ? ", or a bad TLS certificate or key" : "");
        pthread_mutex_destroy(&s->token_lock);
        free(s->tls_cert), free(s->tls_key), free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info && info->port ? info->port : o->port;
    log_info("listening on http%s://%s%s%s:%d", tls ? "s" : "", v6 ? "[" : "", o->host,
             v6 ? "]" : "", s->port);
    return s;
}

int http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s) return;
    atomic_store(&s->stopping, true); /* streams end within their next wait */
    MHD_stop_daemon(s->mhd);
    pthread_mutex_destroy(&s->token_lock);
    free(s->tls_cert), free(s->tls_key);
    free(s);
}

void http_set_token(struct http_server *s, const char *token)
{
    pthread_mutex_lock(&s->token_lock);
    snprintf(s->token, sizeof s->token, "%s", token);
    pthread_mutex_unlock(&s->token_lock);
}
