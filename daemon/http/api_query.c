/* api_query.c — the query parameters the paged lists of results and alerts share: a camera name,
 * a page (limit and cursor), a time range (since, until), and whether a camera named in the query
 * was ever stored. Each check replies 400 (or 404, 500) itself, with the same words for both
 * lists. */
#include <string.h>

#include "parse.h"
#include "api.h"
#include "store/store.h"

#define LOG_TAG "api"
#include "log.h"

int api_query_camera(const struct http_request *req, struct http_reply *r, const char **camera)
{
    *camera = http_query(req, "camera");
    if (*camera && (!(*camera)[0] || strlen(*camera) >= CONFIG_NAME_MAX)) {
        http_reply_error(r, 400, "camera must be a camera name");
        return -1;
    }
    return 0;
}

int api_query_page(const struct http_request *req, struct http_reply *r, int64_t max_limit,
                   int64_t *limit, int64_t *before)
{
    const char *limit_s = http_query(req, "limit"), *cursor = http_query(req, "cursor");
    if (limit_s && parse_i64(limit_s, 1, max_limit, limit) < 0) {
        http_reply_error(r, 400, "limit must be an integer in [1, %lld]", (long long)max_limit);
        return -1;
    }
    if (cursor && parse_i64(cursor, 1, INT64_MAX, before) < 0) {
        http_reply_error(r, 400, "cursor must be the next_cursor of a previous page");
        return -1;
    }
    return 0;
}

int api_query_range(const struct http_request *req, struct http_reply *r, int64_t *since,
                    int64_t *until)
{
    const char *names[2] = {"since", "until"};
    int64_t *out[2] = {since, until};
    for (int i = 0; i < 2; i++) {
        const char *v = http_query(req, names[i]);
        if (v && parse_time_us(v, out[i]) < 0) {
            http_reply_error(r, 400,
                             "%s must be an RFC 3339 time (2026-11-29T12:00:00Z) or Unix "
                             "microseconds",
                             names[i]);
            return -1;
        }
    }
    if (*since && *until && *since >= *until) {
        http_reply_error(r, 400, "since must be before until");
        return -1;
    }
    return 0;
}

int api_camera_known(struct store_reader *rd, const char *camera, struct http_reply *r)
{
    if (!camera) return 1;
    int known = store_has_camera(rd, camera);
    if (known < 0) {
        log_error("camera lookup: %s", store_reader_errmsg(rd));
        http_reply_error(r, 500, "cannot read the database");
    } else if (known == 0) {
        http_reply_error(r, 404, "no camera named '%s'", camera);
    }
    return known;
}
