/* api_export.c — GET /api/v1/export: the flagged frames as a tar archive (see export.h), streamed
 * while it is written. The filters are checked and the first page read before the 200 goes out;
 * after that an error can only cut the stream (the client sees a truncated archive, the log says
 * why). The stream ends early, as an error, when the daemon stops. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "export/export.h"

#define LOG_TAG "api"
#include "log.h"

struct export_stream {
    struct export *export;
    const atomic_bool *stopping;
    bool ended; /* the archive went out whole */
};

static void log_counts(const struct export_stream *s, const char *how)
{
    struct export_counts c;
    export_get_counts(s->export, &c);
    log_info("export %s: %lld frames (%lld good, %lld defect, %lld unreviewed), %lld heatmaps, "
             "%llu bytes",
             how, (long long)c.frames, (long long)c.good, (long long)c.defect,
             (long long)c.unreviewed, (long long)c.heatmaps, (unsigned long long)c.bytes);
}

static ssize_t next_bytes(void *ctx, char *buf, size_t max)
{
    struct export_stream *s = ctx;
    if (atomic_load(s->stopping)) return HTTP_STREAM_ERROR;
    ssize_t n = export_read(s->export, buf, max);
    if (n > 0) return n;
    if (n == 0) {
        s->ended = true;
        return HTTP_STREAM_END;
    }
    log_error("export: %s", export_errmsg(s->export));
    return HTTP_STREAM_ERROR;
}

static void free_stream(void *ctx)
{
    struct export_stream *s = ctx;
    log_counts(s, s->ended ? "sent" : "ended early (client gone or daemon stopping)");
    export_close(s->export);
    free(s);
}

static void get_export(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"state", "camera", "recipe", "since", "until", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    struct export_filter f;
    char err[320];
    const char *recipe = http_query(req, "recipe");
    if (export_filter_parse(&f, http_query(req, "state"), http_query(req, "camera"),
                            http_query(req, "since"), http_query(req, "until"), err,
                            sizeof err) < 0) {
        http_reply_error(r, 400, "%s", err);
        return;
    }
    if (recipe && !config_valid_name(recipe))
        return http_reply_error(r, 400, "recipe must be a recipe name");
    if (recipe) snprintf(f.recipe, sizeof f.recipe, "%s", recipe);
    struct export_stream *s = calloc(1, sizeof *s);
    if (!s) snprintf(err, sizeof err, "out of memory");
    int rc = s ? export_open(&s->export, api_app(req)->readers, &f, err, sizeof err) : -1;
    if (rc < 0) {
        free(s);
        if (rc == EXPORT_NO_CAMERA) {
            http_reply_error(r, 404, "no camera named '%s'", f.camera);
        } else {
            log_error("export: %s", err);
            http_reply_error(r, 500, "cannot start the export");
        }
        return;
    }
    s->stopping = req->stopping;
    http_reply_stream(r, 200, "application/x-tar", next_bytes, free_stream, s);
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(r->disposition, sizeof r->disposition,
             "attachment; filename=\"inspectd-export-%s.tar\"", stamp);
}

const struct http_route api_export_routes[] = {
    {"GET", "/api/v1/export", get_export},
    {0},
};
