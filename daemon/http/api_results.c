/* api_results.c — the verdict of every part over HTTP: the paged list with its filters, the
 * summary (OK / NG / unscored and yield per camera, by hour or by shift), and the part id the line
 * gives the next frame of a camera (POST /api/v1/parts). Results name the recipe their frame was
 * captured for. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "api.h"
#include "line/result_json.h"
#include "store/store_results.h"

#define LOG_TAG "api"
#include "log.h"

#define DEFAULT_LIMIT  50
#define HOUR_US        (3600LL * 1000000)
#define DAY_US         (24 * HOUR_US)
#define SUMMARY_MAX_US (31 * DAY_US)

int api_results_list_query(const struct http_request *req, struct http_reply *r,
                           struct result_filter *f, int64_t *limit)
{
    static const char *const allowed[] = {"camera", "recipe", "verdict", "since",
                                          "until",  "limit",  "cursor",  NULL};
    if (http_check_query(req, allowed, r) < 0) return -1;
    *f = (struct result_filter){.verdict = -1};
    const char *verdict = http_query(req, "verdict");
    *limit = DEFAULT_LIMIT;
    if (api_query_camera(req, r, &f->camera) < 0) return -1;
    f->recipe = http_query(req, "recipe");
    if (f->recipe && (!f->recipe[0] || strlen(f->recipe) >= CONFIG_NAME_MAX)) {
        http_reply_error(r, 400, "recipe must be a recipe name");
        return -1;
    }
    if (verdict && (f->verdict = result_verdict_code(verdict)) < 0) {
        http_reply_error(r, 400, "verdict must be ok, ng or unscored");
        return -1;
    }
    if (api_query_page(req, r, API_RESULTS_MAX_LIMIT, limit, &f->before) < 0) return -1;
    return api_query_range(req, r, &f->since, &f->until);
}

static void list_results(const struct http_request *req, struct http_reply *r)
{
    struct result_filter f;
    int64_t limit;
    if (api_results_list_query(req, r, &f, &limit) < 0) return;
    struct result_info *rows = malloc(sizeof *rows * (size_t)limit);
    if (!rows) return http_reply_error(r, 500, "out of memory");
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int known = api_camera_known(rd, f.camera, r), n = 0;
    if (known == 1 && (n = store_list_results(rd, &f, rows, (int)limit)) < 0) {
        log_error("list results: %s", store_reader_errmsg(rd));
        http_reply_error(r, 500, "cannot read the database");
    }
    store_pool_put(api_app(req)->readers, rd);
    if (known == 1 && n >= 0) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, line_result_json(&rows[i], NULL));
        char next[32];
        snprintf(next, sizeof next, "%lld", n ? (long long)rows[n - 1].id : 0LL);
        http_reply_json(r, 200,
                        json_pack("{s:o, s:o}", "results", arr, "next_cursor",
                                  n == limit ? json_string(next) : json_null()));
    }
    free(rows);
}

/* ---- summary ---- */

static json_t *zero_counts(void)
{
    return json_pack("{s:i, s:i, s:i}", "ok", 0, "ng", 0, "unscored", 0);
}

static void add_count(json_t *obj, enum result_verdict v, json_int_t n)
{
    json_t *c = json_object_get(obj, result_verdict_name(v));
    if (c) json_integer_set(c, json_integer_value(c) + n);
}

/* Adds total and yield (ok / total; null when there is none) to a counts object. */
static void finish_counts(json_t *obj)
{
    json_int_t total = 0;
    for (int v = 0; v < RESULT_NVERDICTS; v++)
        total += json_integer_value(json_object_get(obj, result_verdict_name(v)));
    json_int_t ok = json_integer_value(json_object_get(obj, "ok"));
    json_object_set_new(obj, "total", json_integer(total));
    json_object_set_new(obj, "yield", total ? json_real((double)ok / (double)total) : json_null());
}

static void finish_cameras(json_t *cameras)
{
    const char *name;
    json_t *c;
    json_object_foreach(cameras, name, c) finish_counts(c);
}

/* The start (Unix seconds) of the bucket minute falls into, and its shift's index (-1: by hour). */
static time_t bucket_of(int64_t minute, const struct line_config *lc, bool by_shift, int *shift)
{
    time_t t = (time_t)(minute * 60);
    *shift = -1;
    if (!by_shift) return t - t % 3600;
    struct tm tm;
    localtime_r(&t, &tm);
    int mod = tm.tm_hour * 60 + tm.tm_min, k = lc->nshifts - 1;
    while (k >= 0 && lc->shifts[k] > mod) k--;
    if (k < 0) { /* before the day's first shift: the previous day's last one */
        k = lc->nshifts - 1;
        tm.tm_mday -= 1;
    }
    tm.tm_hour = lc->shifts[k] / 60;
    tm.tm_min = lc->shifts[k] % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *shift = k;
    return mktime(&tm);
}

static json_t *summary_json(const struct result_minute *rows, int n, const struct line_config *lc,
                            bool by_shift)
{
    json_t *totals = zero_counts(), *cameras = json_object(), *recipes = json_object(),
           *buckets = json_array();
    json_t *bucket = NULL;
    time_t bucket_start = 0;
    for (int i = 0; i < n && totals && cameras && recipes && buckets; i++) {
        const struct result_minute *m = &rows[i];
        int shift;
        time_t start = bucket_of(m->minute, lc, by_shift, &shift);
        if (!bucket || start != bucket_start) {
            bucket = zero_counts();
            json_object_set_new(bucket, "start", api_time((int64_t)start * 1000000));
            if (shift >= 0) {
                char name[16];
                snprintf(name, sizeof name, "%02d:%02d", lc->shifts[shift] / 60,
                         lc->shifts[shift] % 60);
                json_object_set_new(bucket, "shift", json_string(name));
            }
            json_object_set_new(bucket, "cameras", json_object());
            json_object_set_new(bucket, "recipes", json_object());
            json_array_append_new(buckets, bucket);
            bucket_start = start;
        }
        add_count(totals, m->verdict, m->n);
        add_count(bucket, m->verdict, m->n);
        json_t *per[4] = {cameras, json_object_get(bucket, "cameras"), recipes,
                          json_object_get(bucket, "recipes")};
        for (int k = 0; k < 4; k++) {
            const char *key = k < 2 ? m->camera : m->recipe;
            if (k >= 2 && !key[0]) continue; /* captured before recipes */
            json_t *c = json_object_get(per[k], key);
            if (!c) json_object_set_new(per[k], key, c = zero_counts());
            add_count(c, m->verdict, m->n);
        }
    }
    if (!totals || !cameras || !recipes || !buckets) {
        json_decref(totals), json_decref(cameras), json_decref(recipes), json_decref(buckets);
        return NULL;
    }
    finish_counts(totals);
    finish_cameras(cameras);
    finish_cameras(recipes);
    size_t i;
    json_t *b;
    json_array_foreach(buckets, i, b)
    {
        finish_counts(b);
        finish_cameras(json_object_get(b, "cameras"));
        finish_cameras(json_object_get(b, "recipes"));
    }
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "by", by_shift ? "shift" : "hour", "totals",
                     totals, "cameras", cameras, "recipes", recipes, "buckets", buckets);
}

static void result_summary(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"since", "until", "by", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    int64_t since = 0, until = 0;
    if (api_query_range(req, r, &since, &until) < 0) return;
    const char *by = http_query(req, "by");
    const struct line_config *lc = &api_app(req)->cfg->line;
    bool by_shift = false;
    if (by && strcmp(by, "shift") == 0)
        by_shift = true;
    else if (by && strcmp(by, "hour") != 0)
        return http_reply_error(r, 400, "by must be hour or shift");
    if (by_shift && lc->nshifts == 0)
        return http_reply_error(r, 400, "no shifts are configured ([results] shifts)");
    if (!until) until = since ? since + DAY_US : clock_wall_us() + 1;
    if (!since) since = until - DAY_US;
    if (since >= until) return http_reply_error(r, 400, "since must be before until");
    if (until - since > SUMMARY_MAX_US)
        return http_reply_error(r, 400, "the summary covers at most 31 days at a time");
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    struct result_minute *rows;
    int n = store_result_minutes(rd, since, until, &rows);
    if (n < 0) log_error("result summary: %s", store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (n < 0) return http_reply_error(r, 500, "cannot read the database");
    json_t *j = summary_json(rows, n, lc, by_shift);
    free(rows);
    if (!j) return http_reply_error(r, 500, "out of memory");
    json_object_set_new(j, "since", api_time(since));
    json_object_set_new(j, "until", api_time(until));
    http_reply_json(r, 200, j);
}

/* ---- part ids ---- */

int api_parts_body(const json_t *body, struct http_reply *r, const char **camera,
                   const char **part_id)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)body, key, value)
    {
        if (strcmp(key, "camera") != 0 && strcmp(key, "part_id") != 0) {
            http_reply_error(r, 400, "unknown field '%.64s' (camera and part_id are known)", key);
            return -1;
        }
    }
    json_t *cam = json_object_get(body, "camera"), *part = json_object_get(body, "part_id");
    if (!json_is_string(cam) || !json_string_length(cam) ||
        json_string_length(cam) >= CONFIG_NAME_MAX ||
        strlen(json_string_value(cam)) != json_string_length(cam)) {
        http_reply_error(r, 400, "camera must be a camera name");
        return -1;
    }
    if (!json_is_string(part) || !json_string_length(part) ||
        json_string_length(part) > STORE_PART_ID_MAX ||
        strlen(json_string_value(part)) != json_string_length(part)) {
        http_reply_error(r, 400, "part_id must be a string of 1 to %d bytes (no NUL)",
                         STORE_PART_ID_MAX);
        return -1;
    }
    *camera = json_string_value(cam);
    *part_id = json_string_value(part);
    return 0;
}

static void post_part(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    json_t *body = http_json_body(req, r);
    if (!body) return;
    const char *camera, *part_id;
    if (api_parts_body(body, r, &camera, &part_id) == 0) {
        if (pipeline_set_part(api_app(req)->pipeline, camera, part_id) == 0)
            http_reply_json(r, 202, json_pack("{s:s, s:s}", "camera", camera, "part_id", part_id));
        else
            http_reply_error(r, 404, "no camera named '%s' is capturing", camera);
    }
    json_decref(body);
}

const struct http_route api_results_routes[] = {
    {"GET", "/api/v1/results", list_results},
    {"GET", "/api/v1/results/summary", result_summary},
    {"POST", "/api/v1/parts", post_part},
    {0},
};
