/* api_page.c — the files the daemon serves as they are compiled in: the review page at / and the
 * API description at /api/v1/openapi.yaml. Both change only with the binary, so their ETag is the
 * build's version and a revalidation costs nothing. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/embedded.h"
#include "base/version.h"

static void serve_embedded(struct http_reply *r, const char *path, const char *type)
{
    for (const struct embed_file *e = embed_files; e->path; e++) {
        if (strcmp(e->path, path) != 0) continue;
        char *copy = malloc(e->len ? e->len : 1);
        if (!copy) {
            http_reply_error(r, 500, "out of memory");
            return;
        }
        memcpy(copy, e->data, e->len);
        http_reply_body(r, 200, type, copy, e->len);
        snprintf(r->etag, sizeof r->etag, "\"%s-%zu\"", INSPECTD_VERSION, e->len);
        r->cache_control = "no-cache";
        return;
    }
    http_reply_error(r, 404, "%s is not built into this binary", path);
}

static void get_page(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    serve_embedded(r, "daemon/http/review.html", "text/html; charset=utf-8");
}

static void get_openapi(const struct http_request *req, struct http_reply *r)
{
    serve_embedded(r, "daemon/http/openapi.yaml", "application/yaml");
}

const struct http_route api_page_routes[] = {
    {"GET", "/", get_page},
    {"GET", "/api/v1/openapi.yaml", get_openapi},
    {0},
};
