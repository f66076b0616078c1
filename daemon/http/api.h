/* api.h — the route tables of the HTTP API files (each ended by an entry with pattern NULL) and
 * small helpers they share. */
#ifndef INSPECTD_API_H
#define INSPECTD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "http.h"
#include "run/app.h"

extern const struct http_route api_health_routes[];
extern const struct http_route api_frames_routes[];
extern const struct http_route api_page_routes[];
extern const struct http_route api_alerts_routes[];
extern const struct http_route api_events_routes[];
extern const struct http_route api_models_routes[];
extern const struct http_route api_export_routes[];
extern const struct http_route api_results_routes[];
extern const struct http_route api_recipes_routes[];

/* The daemon's state every handler reads (http_start()'s ctx). */
static inline struct app *api_app(const struct http_request *req)
{
    return req->ctx;
}

#define API_FRAMES_MAX_LIMIT 1000

/* GET /api/v1/frames?camera=&before=&limit= */
struct api_frames_query {
    const char *camera; /* NULL: every camera; else 1..CONFIG_NAME_MAX-1 bytes */
    int64_t before;     /* 0: newest */
    int64_t limit;      /* 1..API_FRAMES_MAX_LIMIT */
};

/* Reads and checks the frame list's query string. Returns 0, or -1 after replying 400. */
int api_frames_list_query(const struct http_request *req, struct http_reply *r,
                          struct api_frames_query *q);

/* Unix microseconds as an RFC 3339 UTC string ("2024-05-01T12:00:00.123456Z"); JSON null for
 * 0 (never). Returns a new reference. */
json_t *api_time(int64_t us);

/* ---- api_query.c: the query parameters the lists of results and alerts share; each returns
 * 0, or -1 after replying 400 ---- */

/* camera=: NULL when absent, else 1..CONFIG_NAME_MAX-1 bytes (points into the request). */
int api_query_camera(const struct http_request *req, struct http_reply *r, const char **camera);

/* limit= (1..max_limit) into *limit and cursor= (a previous page's next_cursor, >= 1) into
 * *before; each left as it was when absent. */
int api_query_page(const struct http_request *req, struct http_reply *r, int64_t max_limit,
                   int64_t *limit, int64_t *before);

/* since= and until= (RFC 3339 or Unix microseconds) into *since and *until, each left as it was
 * when absent (0: open); when both are set, since must be before until. */
int api_query_range(const struct http_request *req, struct http_reply *r, int64_t *since,
                    int64_t *until);

struct store_reader;

/* Whether camera (NULL: none asked for, 1) was ever stored: 1; 0 after replying 404; -1 after
 * replying 500 on a database error (logged). */
int api_camera_known(struct store_reader *rd, const char *camera, struct http_reply *r);

struct alert_info;
struct alert_filter;

#define API_ALERTS_MAX_LIMIT 500

/* GET /api/v1/alerts?state=&camera=&since=&until=&limit=&cursor=: the filter (its strings point
 * into the request) and the page size. Returns 0, or -1 after replying 400. */
int api_alerts_list_query(const struct http_request *req, struct http_reply *r,
                          struct alert_filter *f, int64_t *limit);

/* The body of POST /api/v1/alerts/{id}/review, {"verdict": "defect"|"false_positive", "note":
 * string|null} and nothing else: *verdict and *note (NULL when absent or null) point into body.
 * Returns 0, or -1 after replying 400. */
int api_alerts_review_body(const json_t *body, struct http_reply *r, const char **verdict,
                           const char **note);

/* The body of POST /api/v1/train, {"fresh": true|false, "recipe": NAME}, both optional (an empty
 * body is {}): *fresh, *recipe (NULL when absent; points into body). Returns 0, or -1 after
 * replying 400. */
/* What `inspectd model import` printed, stdout and stderr together (POST /api/v1/models runs it):
 * its model, the first line that is a JSON object (NULL when none; the caller decrefs), and into
 * msg (n bytes) the message of its last error line ("TIME E TAG: message"), or "the import
 * failed" when it logged none. */
json_t *api_models_import_output(const char *out, char *msg, size_t n);
int api_models_train_body(const json_t *body, struct http_reply *r, bool *fresh,
                          const char **recipe);

/* The body of POST /api/v1/cameras/{name}/recipe, {"recipe": NAME} and nothing else: *recipe
 * points into body. Returns 0, or -1 after replying 400. */
int api_recipes_switch_body(const json_t *body, struct http_reply *r, const char **recipe);

/* The body of PUT /api/v1/recipes/{name}/sensitivity: {"false_alarm_rate": F} (0 < F < 1) or
 * {"threshold": T} (T > 0), one of them and nothing else: *rate or *threshold set, the other 0.
 * Returns 0, or -1 after replying 400. */
int api_recipes_sensitivity_body(const json_t *body, struct http_reply *r, double *rate,
                                 double *threshold);

/* The default recipe (the first camera's, as it is now) into out. */
void api_default_recipe(struct app *app, char *out, size_t n);

/* The recipes as GET /api/v1/recipes lists them (a JSON array, new reference), or NULL after a
 * database error (logged). */
json_t *api_recipes_json(struct app *app);

/* An alert as the API shows it (with links). Returns a new reference. */
json_t *api_alert_json(const struct alert_info *a);

struct result_filter;

#define API_RESULTS_MAX_LIMIT 1000

/* GET /api/v1/results?camera=&recipe=&verdict=&since=&until=&limit=&cursor=: the filter (its
 * strings point into the request) and the page size. Returns 0, or -1 after replying 400. */
int api_results_list_query(const struct http_request *req, struct http_reply *r,
                           struct result_filter *f, int64_t *limit);

/* The body of POST /api/v1/parts, {"camera": name, "part_id": 1..64 bytes} and nothing else:
 * *camera and *part_id point into body. Returns 0, or -1 after replying 400. */
int api_parts_body(const json_t *body, struct http_reply *r, const char **camera,
                   const char **part_id);

/* GET /api/v1/events?types=: which kinds the stream carries (bit EVENT_* set), from a comma
 * separated list of alert, review, model, result (default: alert, review and model). Returns 0,
 * or -1 after replying 400. */
enum { API_EVENT_ALERT = 1, API_EVENT_REVIEW = 2, API_EVENT_MODEL = 4, API_EVENT_RESULT = 8 };
int api_events_types(const char *types, struct http_reply *r, unsigned *mask);

struct model_info;

/* A model as the API shows it: {id, version, status, created_at, activated_at (RFC 3339, null for
 * never), frames_used, loss, threshold (null when unknown), meta (an object)}. Returns a new
 * reference, or NULL when out of memory. */
json_t *api_model_json(const struct model_info *m);

/* api_storage.c: the "storage" object of /api/v1/status (a new reference); why the daemon is not
 * ready on account of storage (NULL when it is; else buf, filled); its /metrics lines. */
json_t *api_storage_json(struct app *app);
const char *api_storage_unready(struct app *app, char *buf, size_t n);
void api_storage_metrics(FILE *out, struct app *app);

#endif
