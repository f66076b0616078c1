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

#define LOG_TAG "api"
#include "log.h"

/* The model state is the scorer's: "learning" until a model exists, then "scoring" (or "error"). */

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
    if (st.state != SCORER_LEARNING) {
        json_object_set_new(j, "model", json_string(st.model_version));
        json_object_set_new(j, "threshold", json_real(st.threshold));
    }
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
    return json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:s?}", "name", st->name,
                     "driver", st->driver, "state", pipeline_state_name(st->state), "fps", st->fps,
                     "frames_captured", (json_int_t)st->captured, "frames_stored",
                     (json_int_t)st->stored, "frames_dropped", (json_int_t)st->dropped,
                     "frames_failed", (json_int_t)st->failed, "source_errors",
                     (json_int_t)st->source_errors, "last_frame_at", api_time(st->last_frame_us),
                     "last_error", st->last_error[0] ? st->last_error : NULL);
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
    struct pipeline *p = req->app->pipeline;
    char why[400];
    const char *storage = api_storage_unready(req->app, why, sizeof why);
    bool ready = pipeline_ready(p) && !storage;
    http_reply_json(r, ready ? 200 : 503,
                    json_pack("{s:s, s:b, s:s, s:o, s:s?}", "status", ready ? "ready" : "not ready",
                              "database", 1, "model", model_state(req->app), "cameras",
                              cameras_json(p), "reason", storage));
}

static void status(const struct http_request *req, struct http_reply *r)
{
    struct app *app = req->app;
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
    json_object_set_new(obj, "training", training_json(app));
    json_object_set_new(obj, "storage", api_storage_json(app));
    http_reply_json(r, 200, obj);
}

static void write_camera_counter(FILE *out, struct pipeline *p, const char *name, const char *help,
                                 size_t offset)
{
    metrics_write_header(out, name, "counter", help);
    struct pipeline_camera_status st;
    for (size_t i = 0; pipeline_camera_status(p, i, &st); i++) {
        char label[2 * CONFIG_NAME_MAX];
        uint64_t v = *(const uint64_t *)((const char *)&st + offset);
        fprintf(out, "%s{camera=\"%s\"} %llu\n", name, metrics_label(st.name, label, sizeof label),
                (unsigned long long)v);
    }
}

static void write_metrics(FILE *out, struct app *app)
{
    struct pipeline *p = app->pipeline;
    metrics_write_header(out, "inspectd_build_info", "gauge", "Version of the running inspectd.");
    fprintf(out, "inspectd_build_info{version=\"%s\"} 1\n", INSPECTD_VERSION);
    metrics_write_header(out, "inspectd_uptime_seconds", "gauge", "Seconds since start.");
    fprintf(out, "inspectd_uptime_seconds %.3f\n",
            (double)(clock_wall_us() - app->started_us) * 1e-6);
    write_camera_counter(out, p, "inspectd_frames_captured_total", "Frames delivered by a camera.",
                         offsetof(struct pipeline_camera_status, captured));
    write_camera_counter(out, p, "inspectd_frames_stored_total",
                         "Frames committed to the database.",
                         offsetof(struct pipeline_camera_status, stored));
    write_camera_counter(out, p, "inspectd_frames_dropped_total",
                         "Frames dropped because the queue was full.",
                         offsetof(struct pipeline_camera_status, dropped));
    write_camera_counter(out, p, "inspectd_frames_failed_total",
                         "Frames lost to an encoding or database error.",
                         offsetof(struct pipeline_camera_status, failed));
    write_camera_counter(out, p, "inspectd_source_errors_total",
                         "Failures to open or read a camera.",
                         offsetof(struct pipeline_camera_status, source_errors));
    metrics_write_header(out, "inspectd_queue_depth", "gauge", "Frames waiting for the writer.");
    fprintf(out, "inspectd_queue_depth %zu\n", pipeline_queue_depth(p));
    metrics_write_header(out, "inspectd_queue_capacity", "gauge", "Size of the frame queue.");
    fprintf(out, "inspectd_queue_capacity %zu\n", pipeline_queue_capacity(p));
    struct scorer_status sc;
    scorer_get_status(app->scorer, &sc);
    metrics_write_header(out, "inspectd_frames_scored_total", "counter",
                         "Frames scored against the active model.");
    fprintf(out, "inspectd_frames_scored_total %llu\n", (unsigned long long)sc.scored);
    metrics_write_header(out, "inspectd_frames_flagged_total", "counter",
                         "Frames whose score crossed the threshold.");
    fprintf(out, "inspectd_frames_flagged_total %llu\n", (unsigned long long)sc.flagged);
    metrics_write_header(out, "inspectd_frames_score_failed_total", "counter",
                         "Frames that could not be scored (undecodable, database error).");
    fprintf(out, "inspectd_frames_score_failed_total %llu\n", (unsigned long long)sc.failed);
    metrics_write_header(
        out, "inspectd_frames_skipped_total", "counter",
        "Frames not scored: stored longer than max_score_lag_s before their turn.");
    fprintf(out, "inspectd_frames_skipped_total %llu\n", (unsigned long long)sc.skipped);
    metrics_write_header(out, "inspectd_model_id", "gauge", "Id of the active model (0: none).");
    fprintf(out, "inspectd_model_id %lld\n", (long long)sc.model_id);
    char label[160];
    metrics_write_header(out, "inspectd_model_info", "gauge",
                         "The active model's version (1 while one scores).");
    if (sc.model_id)
        fprintf(out, "inspectd_model_info{version=\"%s\"} 1\n",
                metrics_label(sc.model_version, label, sizeof label));
    metrics_write_header(out, "inspectd_model_age_seconds", "gauge",
                         "Seconds since the active model was created (0: none).");
    fprintf(out, "inspectd_model_age_seconds %.0f\n",
            sc.model_id ? (double)(clock_wall_us() - sc.model_created_us) * 1e-6 : 0.0);
    metrics_write_header(out, "inspectd_model_threshold", "gauge",
                         "The active model's flagging threshold (raw score units).");
    fprintf(out, "inspectd_model_threshold %g\n", sc.model_id ? sc.threshold : 0.0);
    metrics_write_header(out, "inspectd_feedback_frames", "gauge",
                         "Frames marked false positive whose patches are in the bank.");
    fprintf(out, "inspectd_feedback_frames %d\n", sc.feedback_frames);
    metrics_write_histogram(out, "inspectd_scoring_seconds",
                            "Time to score one frame: decode, embed, k-NN, store the result.",
                            scorer_latency(app->scorer));
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
    struct trainer_status tr;
    trainer_get_status(app->trainer, &tr);
    metrics_write_header(out, "inspectd_training_running", "gauge",
                         "1 while a training child runs.");
    fprintf(out, "inspectd_training_running %d\n", tr.running ? 1 : 0);
    if (tr.running && tr.has_progress) {
        metrics_write_header(out, "inspectd_training_progress_ratio", "gauge",
                             "Share of the running training's steps done.");
        fprintf(out, "inspectd_training_progress_ratio %.4f\n",
                tr.total_steps > 0 ? (double)tr.step / tr.total_steps : 0.0);
        metrics_write_header(out, "inspectd_training_loss", "gauge",
                             "The running training's last loss.");
        fprintf(out, "inspectd_training_loss %g\n", tr.loss);
    }
    metrics_write_header(out, "inspectd_training_runs_total", "counter", "Training runs started.");
    fprintf(out, "inspectd_training_runs_total %llu\n", (unsigned long long)tr.runs);
    metrics_write_header(out, "inspectd_training_failures_total", "counter",
                         "Training runs that failed or were killed (the old model kept scoring).");
    fprintf(out, "inspectd_training_failures_total %llu\n", (unsigned long long)tr.failures);
    http_write_metrics(out);
    metrics_write_histogram(out, "inspectd_store_commit_seconds",
                            "Time to insert and commit one batch of frames.",
                            pipeline_commit_latency(p));
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
    write_metrics(out, req->app);
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
