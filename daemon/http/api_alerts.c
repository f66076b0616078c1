/* api_alerts.c — alerts over HTTP: the paged list with its filters, one alert, the summary per
 * state, camera and hour, and the operator's review (which the scorer and the trainer act on: a
 * false positive joins the normal bank, a confirmed defect is kept out of training and validates
 * new models). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "clock.h"
#include "api.h"
#include "store/store_alerts.h"

#define LOG_TAG "api"
#include "log.h"

#define DEFAULT_LIMIT 50
#define DAY_US        (86400LL * 1000000)

json_t *api_alert_json(const struct alert_info *a)
{
    char base[64], frame[64], link[6][96];
    snprintf(base, sizeof base, "/api/v1/alerts/%lld", (long long)a->id);
    snprintf(frame, sizeof frame, "/api/v1/frames/%lld", (long long)a->frame_id);
    snprintf(link[0], sizeof link[0], "%s", base);
    snprintf(link[1], sizeof link[1], "%s/review", base);
    snprintf(link[2], sizeof link[2], "%s", frame);
    snprintf(link[3], sizeof link[3], "%s/image", frame);
    snprintf(link[4], sizeof link[4], "%s/thumbnail", frame);
    snprintf(link[5], sizeof link[5], "%s/heatmap", frame);
    json_t *links =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "self", link[0], "review", link[1], "frame",
                  link[2], "image", link[3], "thumbnail", link[4], "heatmap", link[5]);
    return json_pack("{s:I, s:I, s:s, s:o, s:I, s:o, s:f, s:f, s:f, s:I, s:s, s:s, s:o, s:o, "
                     "s:o, s:o}",
                     "id", (json_int_t)a->id, "frame_id", (json_int_t)a->frame_id, "camera",
                     a->camera, "created_at", api_time(a->created_at), "created_at_us",
                     (json_int_t)a->created_at, "captured_at", api_time(a->captured_at), "score",
                     a->score, "score_norm", a->score_norm, "threshold", a->threshold, "model_id",
                     (json_int_t)a->model_id, "model_version", a->model_version, "state", a->state,
                     "note", a->has_note ? json_string(a->note) : json_null(), "reviewed_at",
                     api_time(a->reviewed_at), "links", links, "recipe",
                     a->recipe[0] ? json_string(a->recipe) : json_null());
}

static bool valid_state(const char *s)
{
    return strcmp(s, "new") == 0 || strcmp(s, "defect") == 0 || strcmp(s, "false_positive") == 0;
}

int api_alerts_list_query(const struct http_request *req, struct http_reply *r,
                          struct alert_filter *f, int64_t *limit)
{
    static const char *const allowed[] = {"state", "camera", "recipe", "since",
                                          "until", "limit",  "cursor", NULL};
    if (http_check_query(req, allowed, r) < 0) return -1;
    *f = (struct alert_filter){.state = http_query(req, "state"),
                               .recipe = http_query(req, "recipe")};
    if (f->recipe && !config_valid_name(f->recipe)) {
        http_reply_error(r, 400, "recipe must be a recipe name");
        return -1;
    }
    *limit = DEFAULT_LIMIT;
    if (f->state && !valid_state(f->state)) {
        http_reply_error(r, 400, "state must be new, defect or false_positive");
        return -1;
    }
    if (api_query_camera(req, r, &f->camera) < 0) return -1;
    if (api_query_page(req, r, API_ALERTS_MAX_LIMIT, limit, &f->before) < 0) return -1;
    return api_query_range(req, r, &f->since, &f->until);
}

static void list_alerts(const struct http_request *req, struct http_reply *r)
{
    struct alert_filter f;
    int64_t limit;
    if (api_alerts_list_query(req, r, &f, &limit) < 0) return;
    struct alert_info *a = malloc(sizeof *a * (size_t)limit);
    if (!a) return http_reply_error(r, 500, "out of memory");
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int known = api_camera_known(rd, f.camera, r), n = 0;
    if (known == 1 && (n = store_list_alerts(rd, &f, a, (int)limit)) < 0) {
        log_error("list alerts: %s", store_reader_errmsg(rd));
        http_reply_error(r, 500, "cannot read the database");
    }
    store_pool_put(api_app(req)->readers, rd);
    if (known == 1 && n >= 0) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, api_alert_json(&a[i]));
        char next[32];
        snprintf(next, sizeof next, "%lld", n ? (long long)a[n - 1].id : 0LL);
        http_reply_json(r, 200,
                        json_pack("{s:o, s:o}", "alerts", arr, "next_cursor",
                                  n == limit ? json_string(next) : json_null()));
    }
    free(a);
}

/* Parses the {id} path segment; replies 400 and returns -1 when it is not an alert id. */
static int alert_id(const struct http_request *req, struct http_reply *r, int64_t *id)
{
    if (parse_i64(req->params[0], 1, INT64_MAX, id) == 0) return 0;
    http_reply_error(r, 400, "alert id must be a positive integer, not '%s'", req->params[0]);
    return -1;
}

/* Replies with alert id as it is now (200), 404, or 500. */
static void reply_alert(const struct http_request *req, struct http_reply *r, int64_t id)
{
    struct alert_info a;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int found = store_get_alert(rd, id, &a);
    if (found < 0) log_error("get alert %lld: %s", (long long)id, store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (found < 0)
        http_reply_error(r, 500, "cannot read the database");
    else if (found == 0)
        http_reply_error(r, 404, "no alert %lld", (long long)id);
    else
        http_reply_json(r, 200, api_alert_json(&a));
}

static void get_alert(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    int64_t id;
    if (http_check_query(req, none, r) < 0 || alert_id(req, r, &id) < 0) return;
    reply_alert(req, r, id);
}

int api_alerts_review_body(const json_t *body, struct http_reply *r, const char **verdict,
                           const char **note_text)
{
    const char *key;
    json_t *value, *verdict_j = json_object_get(body, "verdict"),
                   *note = json_object_get(body, "note");
    json_object_foreach((json_t *)body, key, value)
    {
        if (strcmp(key, "verdict") != 0 && strcmp(key, "note") != 0) {
            http_reply_error(r, 400, "unknown field '%.64s' (verdict and note are known)", key);
            return -1;
        }
    }
    const char *v = json_string_value(verdict_j);
    if (!v || (strcmp(v, "defect") != 0 && strcmp(v, "false_positive") != 0)) {
        http_reply_error(r, 400, "verdict must be \"defect\" or \"false_positive\"");
    } else if (note && !json_is_null(note) && !json_is_string(note)) {
        http_reply_error(r, 400, "note must be a string");
    } else if (note && json_is_string(note) && json_string_length(note) > ALERT_NOTE_MAX) {
        http_reply_error(r, 400, "note is longer than %d bytes", ALERT_NOTE_MAX);
    } else if (note && json_is_string(note) &&
               strlen(json_string_value(note)) != json_string_length(note)) {
        http_reply_error(r, 400, "note must not contain NUL characters");
    } else {
        *verdict = v;
        *note_text = note ? json_string_value(note) : NULL;
        return 0;
    }
    return -1;
}

static void review_alert(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    int64_t id;
    if (http_check_query(req, none, r) < 0 || alert_id(req, r, &id) < 0) return;
    json_t *body = http_json_body(req, r);
    if (!body) return;
    const char *v, *note;
    if (api_alerts_review_body(body, r, &v, &note) == 0) {
        char err[512];
        int found = store_review_alert(api_app(req)->cfg->store_path, id, v, note, err, sizeof err);
        if (found < 0) {
            log_error("%s", err);
            http_reply_error(r, 500, "cannot record the review");
        } else if (found == 0) {
            http_reply_error(r, 404, "no alert %lld", (long long)id);
        } else {
            log_info("alert %lld reviewed: %s", (long long)id, v);
            reply_alert(req, r, id);
        }
    }
    json_decref(body);
}

static json_t *zero_counts(void)
{
    return json_pack("{s:i, s:i, s:i}", "new", 0, "defect", 0, "false_positive", 0);
}

static void add_count(json_t *obj, int state, json_int_t n)
{
    static const char *const names[] = {"new", "defect", "false_positive"};
    json_t *v = json_object_get(obj, names[state]);
    if (v) json_integer_set(v, json_integer_value(v) + n);
}

/* {total, by_state, by_camera, by_hour} of the summary's rows (by hour, oldest first). */
static json_t *summary_json(const struct alert_count *rows, int n)
{
    json_t *by_state = zero_counts(), *by_camera = json_object(), *by_hour = json_array();
    json_t *hour = NULL;
    int64_t hour_no = -1, total = 0;
    for (int i = 0; i < n && by_state && by_camera && by_hour; i++) {
        const struct alert_count *c = &rows[i];
        total += c->n;
        add_count(by_state, c->state, c->n);
        json_t *cam = json_object_get(by_camera, c->camera);
        if (!cam) json_object_set_new(by_camera, c->camera, cam = zero_counts());
        add_count(cam, c->state, c->n);
        if (c->hour != hour_no) {
            char stamp[32];
            time_t secs = (time_t)(c->hour * 3600);
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:00:00Z", &tm);
            hour = zero_counts();
            json_object_set_new(hour, "hour", json_string(stamp));
            json_array_append_new(by_hour, hour);
            hour_no = c->hour;
        }
        add_count(hour, c->state, c->n);
    }
    return json_pack("{s:I, s:o, s:o, s:o}", "total", (json_int_t)total, "by_state", by_state,
                     "by_camera", by_camera, "by_hour", by_hour);
}

static void alert_summary(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"since", "until", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    int64_t since = 0, until = 0;
    if (api_query_range(req, r, &since, &until) < 0) return;
    if (!until) until = since ? since + DAY_US : clock_wall_us() + 1;
    if (!since) since = until - DAY_US;
    if (since >= until) return http_reply_error(r, 400, "since must be before until");
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    struct alert_count *rows;
    int n = store_alert_summary(rd, since, until, &rows);
    if (n < 0) log_error("alert summary: %s", store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (n < 0) return http_reply_error(r, 500, "cannot read the database");
    json_t *j = summary_json(rows, n);
    free(rows);
    if (!j) return http_reply_error(r, 500, "out of memory");
    json_object_set_new(j, "since", api_time(since));
    json_object_set_new(j, "until", api_time(until));
    http_reply_json(r, 200, j);
}

const struct http_route api_alerts_routes[] = {
    {"GET", "/api/v1/alerts", list_alerts},
    {"GET", "/api/v1/alerts/summary", alert_summary},
    {"GET", "/api/v1/alerts/{id}", get_alert},
    {"POST", "/api/v1/alerts/{id}/review", review_alert},
    {0},
};
