/* api_health.c — the endpoints that say how the daemon is doing: /healthz (alive), /readyz (the
 * database is open and every camera delivers), /api/v1/status (JSON) and /metrics (Prometheus). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "api.h"
#include "rfc3339.h"
#include "store/store_alerts.h"
#include "base/version.h"
#include "gemm.h"

#define LOG_TAG "api"
#include "log.h"

/* The model state is the scorer's: "learning" until a model exists (of any recipe), then
 * "scoring" (or "error"). */

json_t *api_time(int64_t us)
{
    char buf[RFC3339_LEN];
    return us > 0 ? json_string(rfc3339_format(us, buf, sizeof buf)) : json_null();
}

static void healthz(const struct http_request *req, struct http_reply *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static const char *model_state(struct app *app)
{
    struct scorer_status st;
    scorer_get_status(app->scorer, &st);
    return scorer_state_name(st.state);
}

static json_t *scoring_json(struct app *app)
{
    struct scorer_status st;
    scorer_get_status(app->scorer, &st);
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:f}", "state", scorer_state_name(st.state),
                          "frames_scored", (json_int_t)st.scored, "frames_flagged",
                          (json_int_t)st.flagged, "frames_failed", (json_int_t)st.failed,
                          "last_latency_ms", (double)st.last_latency_us * 1e-3);
    /* the model and threshold shown are the default recipe's; each recipe's are in "recipes" */
    char recipe[64];
    struct scorer_recipe_status rs;
    api_default_recipe(app, recipe, sizeof recipe);
    if (scorer_recipe_status(app->scorer, recipe, &rs) && rs.has_model) {
        json_object_set_new(j, "model", json_string(rs.model_version));
        json_object_set_new(j, "threshold", json_real(rs.threshold));
    }
    json_object_set_new(j, "recipe", json_string(recipe));
    if (st.last_error[0]) json_object_set_new(j, "last_error", json_string(st.last_error));
    json_object_set_new(j, "frames_without_image", json_integer((json_int_t)st.without_image));
    json_object_set_new(j, "frames_skipped", json_integer((json_int_t)st.skipped));
    return j;
}

static json_t *training_json(struct app *app)
{
    struct trainer_status st;
    trainer_get_status(app->trainer, &st);
    json_t *j = json_pack("{s:b, s:b, s:I, s:I, s:I}", "enabled", st.enabled, "running", st.running,
                          "runs", (json_int_t)st.runs, "failures", (json_int_t)st.failures,
                          "frames_since_model", (json_int_t)st.frames_since_model);
    json_object_set_new(j, "resumed", json_integer((json_int_t)st.resumed));
    if (st.running) json_object_set_new(j, "pid", json_integer(st.pid));
    if (st.runs) json_object_set_new(j, "last_started_at", api_time(st.started_us));
    if (st.runs && !st.running) json_object_set_new(j, "last_exit", json_integer(st.last_exit));
    return j;
}

static json_t *camera_json(const struct pipeline_camera_status *st)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:s?}", "name", st->name, "driver",
        st->driver, "recipe", st->recipe, "state", pipeline_state_name(st->state), "fps", st->fps,
        "frames_captured", (json_int_t)st->captured, "frames_stored", (json_int_t)st->stored,
        "frames_dropped", (json_int_t)st->dropped, "frames_failed", (json_int_t)st->failed,
        "source_errors", (json_int_t)st->source_errors, "last_frame_at",
        api_time(st->last_frame_us), "last_error", st->last_error[0] ? st->last_error : NULL);
}

static json_t *cameras_json(struct pipeline *p)
{
    json_t *arr = json_array();
    struct pipeline_camera_status st;
    for (size_t i = 0; arr && pipeline_camera_status(p, i, &st); i++)
        json_array_append_new(arr, camera_json(&st));
    return arr;
}

static void readyz(const struct http_request *req, struct http_reply *r)
{
    struct pipeline *p = api_app(req)->pipeline;
    char why[400];
    const char *storage = api_storage_unready(api_app(req), why, sizeof why);
    if (!storage && api_app(req)->plc && !line_plc_listening(api_app(req)->plc, NULL))
        storage = "the Modbus server ([plc] listen) is not listening";
    bool ready = pipeline_ready(p) && !storage;
    http_reply_json(r, ready ? 200 : 503,
                    json_pack("{s:s, s:b, s:s, s:o, s:s?}", "status", ready ? "ready" : "not ready",
                              "database", 1, "model", model_state(api_app(req)), "cameras",
                              cameras_json(p), "reason", storage));
}

/* The GEMM backend the process selected at start (gemm.h). */
static json_t *engine_json(void)
{
    struct gemm_info gi;
    gemm_get_info(&gi);
    return json_pack("{s:s, s:s, s:s, s:s}", "gemm", gemm_backend_name(gi.backend), "version",
                     gi.version, "isa", gi.isa, "precision", gemm_precision_name(gi.precision));
}

static json_t *webhooks_json(struct app *app)
{
    json_t *arr = json_array();
    struct line_webhook_status st;
    for (int i = 0; arr && app->webhooks && line_webhooks_status(app->webhooks, i, &st); i++)
        json_array_append_new(
            arr,
            json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "name", st.name, "failing", st.failing,
                      "pending", (json_int_t)st.pending, "delivered", (json_int_t)st.delivered,
                      "failures", (json_int_t)st.failures, "dropped", (json_int_t)st.dropped,
                      "last_error", st.last_error[0] ? json_string(st.last_error) : json_null()));
    return arr;
}

/* The outputs to the line: {mqtt: null (off) or {state, broker, queued, capacity, published,
 * dropped, connects, received, last_error}, webhooks: [{name, failing, pending, delivered,
 * failures, dropped, last_error}]}. */
static json_t *line_json(struct app *app)
{
    json_t *mqtt = json_null();
    if (app->mqtt) {
        struct line_mqtt_status st;
        line_mqtt_get_status(app->mqtt, &st);
        mqtt = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "state",
                         line_mqtt_state_name(st.state), "broker", st.broker, "queued",
                         (json_int_t)st.queued, "capacity", (json_int_t)st.capacity, "published",
                         (json_int_t)st.published, "dropped", (json_int_t)st.dropped, "connects",
                         (json_int_t)st.connects, "received", (json_int_t)st.received, "last_error",
                         st.last_error[0] ? json_string(st.last_error) : json_null());
    }
    json_t *plc = json_null();
    int clients = 0;
    if (app->plc) {
        bool listening = line_plc_listening(app->plc, &clients);
        plc = json_pack("{s:b, s:i, s:s, s:i, s:b}", "listening", listening, "clients", clients,
                        "host", app->cfg->line.plc.host, "port", app->cfg->line.plc.port,
                        "writable", app->cfg->line.plc.writable);
    }
    return json_pack("{s:o, s:o, s:o}", "mqtt", mqtt, "webhooks", webhooks_json(app), "plc", plc);
}

static void status(const struct http_request *req, struct http_reply *r)
{
    struct app *app = api_app(req);
    struct store_reader *rd = store_pool_get(app->readers);
    int64_t frames = 0, bytes = 0;
    int rc = store_stats(rd, &frames, &bytes);
    if (rc < 0) log_error("status: %s", store_reader_errmsg(rd));
    store_pool_put(app->readers, rd);
    if (rc < 0) {
        http_reply_error(r, 500, "cannot read the database");
        return;
    }
    json_t *obj = json_pack("{s:s, s:o, s:f, s:{s:s}, s:o, s:{s:I, s:I}, s:{s:s, s:I, s:I}}",
                            "version", INSPECTD_VERSION, "started_at", api_time(app->started_us),
                            "uptime_s", (double)(clock_wall_us() - app->started_us) * 1e-6, "model",
                            "state", model_state(app), "cameras", cameras_json(app->pipeline),
                            "queue", "depth", (json_int_t)pipeline_queue_depth(app->pipeline),
                            "capacity", (json_int_t)pipeline_queue_capacity(app->pipeline),
                            "database", "path", app->cfg->store_path, "frames_stored",
                            (json_int_t)frames, "size_bytes", (json_int_t)bytes);
    json_object_set_new(obj, "scoring", scoring_json(app));
    json_t *recipes = api_recipes_json(app);
    json_object_set_new(obj, "recipes", recipes ? recipes : json_array());
    json_object_set_new(obj, "training", training_json(app));
    json_object_set_new(obj, "storage", api_storage_json(app));
    json_object_set_new(obj, "engine", engine_json());
    json_object_set_new(obj, "line", line_json(app));
    http_reply_json(r, 200, obj);
}

static void write_metrics(FILE *out, struct app *app)
{
    metrics_write_header(out, "inspectd_build_info", "gauge", "Version of the running inspectd.");
    fprintf(out, "inspectd_build_info{version=\"%s\"} 1\n", INSPECTD_VERSION);
    metrics_write_one(out, "inspectd_uptime_seconds", "gauge", "Seconds since start.", "%.3f",
                      (double)(clock_wall_us() - app->started_us) * 1e-6);
    pipeline_write_metrics(out, app->pipeline);
    scorer_write_metrics(out, app->scorer);
    line_feed_write_metrics(out, app->feed);
    if (app->mqtt) line_mqtt_write_metrics(out, app->mqtt);
    if (app->webhooks) line_webhooks_write_metrics(out, app->webhooks);
    int64_t counts[3];
    struct store_reader *rd = store_pool_get(app->readers);
    int crc = store_alert_counts(rd, counts);
    store_pool_put(app->readers, rd);
    if (crc == 0) {
        metrics_write_header(out, "inspectd_alerts", "gauge", "Alerts by state.");
        fprintf(out, "inspectd_alerts{state=\"new\"} %lld\n", (long long)counts[0]);
        fprintf(out, "inspectd_alerts{state=\"defect\"} %lld\n", (long long)counts[1]);
        fprintf(out, "inspectd_alerts{state=\"false_positive\"} %lld\n", (long long)counts[2]);
    }
    trainer_write_metrics(out, app->trainer);
    http_write_metrics(out);
    api_storage_metrics(out, app);
}

static void metrics(const struct http_request *req, struct http_reply *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        http_reply_error(r, 500, "out of memory");
        return;
    }
    write_metrics(out, api_app(req));
    if (fclose(out) != 0) {
        free(text);
        http_reply_error(r, 500, "out of memory");
        return;
    }
    http_reply_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

const struct http_route api_health_routes[] = {
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
    {"GET", "/metrics", metrics},
    {"GET", "/api/v1/status", status},
    {0},
};
