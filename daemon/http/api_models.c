/* api_models.c — model versions, training (progress, start now) and scoring an uploaded image:
 * GET /api/v1/models, GET/POST /api/v1/train, POST /api/v1/score (each of a recipe). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "store/store_alerts.h"

#define LOG_TAG "api"
#include "log.h"

json_t *api_model_json(const struct model_info *m)
{
    json_error_t je;
    json_t *meta = m->meta ? json_loads(m->meta, 0, &je) : NULL;
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)m->id,
                     "version", m->version, "status", m->status, "recipe",
                     m->recipe[0] ? json_string(m->recipe) : json_null(), "created_at",
                     api_time(m->created_at), "activated_at", api_time(m->activated_at),
                     "frames_used", m->has_frames_used ? json_integer(m->frames_used) : json_null(),
                     "loss", m->has_loss ? json_real(m->loss) : json_null(), "threshold",
                     m->has_threshold ? json_real(m->threshold) : json_null(), "meta",
                     meta && json_is_object(meta) ? meta : (json_decref(meta), json_object()));
}

static void list_models(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    struct model_info *models;
    int n = store_list_models(rd, &models);
    if (n < 0) log_error("list models: %s", store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (n < 0) return http_reply_error(r, 500, "cannot read the database");
    /* `active`: the default recipe's model */
    char recipe[64];
    struct scorer_recipe_status rs;
    api_default_recipe(api_app(req), recipe, sizeof recipe);
    bool have = scorer_recipe_status(api_app(req)->scorer, recipe, &rs) && rs.has_model;
    json_t *list = json_array(), *active = have ? json_integer(rs.model_id) : json_null();
    for (int i = 0; i < n; i++) json_array_append_new(list, api_model_json(&models[i]));
    store_models_free(models, n);
    http_reply_json(r, 200, json_pack("{s:o, s:o}", "models", list, "active", active));
}

static json_t *train_json(const struct trainer_status *st)
{
    json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I, s:I}", "state",
                          st->running     ? "training"
                          : st->requested ? "starting"
                                          : "idle",
                          "enabled", st->enabled, "requested", st->requested, "runs",
                          (json_int_t)st->runs, "failures", (json_int_t)st->failures,
                          "frames_since_model", (json_int_t)st->frames_since_model);
    if (!j) return NULL;
    if (st->runs) json_object_set_new(j, "fresh", json_boolean(st->fresh));
    if (st->runs) json_object_set_new(j, "recipe", json_string(st->recipe));
    if (st->running) {
        json_object_set_new(j, "pid", json_integer(st->pid));
        json_object_set_new(j, "started_at", api_time(st->started_us));
    }
    if (st->running && st->has_progress) {
        json_object_set_new(j, "phase", json_string(st->phase));
        json_object_set_new(j, "step", json_integer(st->step));
        json_object_set_new(j, "total_steps", json_integer(st->total_steps));
        json_object_set_new(j, "loss", json_real(st->loss));
        json_object_set_new(j, "eta_s", json_real(st->eta_s));
        json_object_set_new(j, "images_per_s", json_real(st->images_per_s));
    }
    if (st->runs && !st->running) {
        json_object_set_new(j, "last_started_at", api_time(st->started_us));
        json_object_set_new(j, "last_exit", json_integer(st->last_exit));
    }
    return j;
}

static void get_train(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    struct trainer_status st;
    trainer_get_status(api_app(req)->trainer, &st);
    http_reply_json(r, 200, train_json(&st));
}

int api_models_train_body(const json_t *body, struct http_reply *r, bool *fresh,
                          const char **recipe)
{
    const char *key;
    json_t *value;
    *recipe = NULL;
    json_object_foreach((json_t *)body, key, value)
    {
        if (strcmp(key, "fresh") == 0) {
            if (!json_is_boolean(value)) {
                http_reply_error(r, 400, "fresh must be true or false");
                return -1;
            }
        } else if (strcmp(key, "recipe") == 0) {
            if (!json_is_string(value) || !config_valid_name(json_string_value(value))) {
                http_reply_error(r, 400,
                                 "recipe must be a recipe name (1-63 letters, digits, '_', '-')");
                return -1;
            }
            *recipe = json_string_value(value);
        } else {
            http_reply_error(r, 400, "unknown field '%.64s' (fresh and recipe are known)", key);
            return -1;
        }
    }
    *fresh = json_is_true(json_object_get(body, "fresh"));
    return 0;
}

static void post_train(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    bool fresh = false;
    const char *recipe = NULL;
    char name[64] = "";
    if (req->body_len) { /* JSON whatever the Content-Type: a bare curl -d is understood too */
        json_t *body = http_parse_json(req->body, req->body_len, r);
        if (!body) return;
        int bad = api_models_train_body(body, r, &fresh, &recipe);
        if (recipe) snprintf(name, sizeof name, "%s", recipe);
        json_decref(body);
        if (bad) return;
    }
    struct scorer_recipe_status rs;
    if (name[0] && !scorer_recipe_status(api_app(req)->scorer, name, &rs))
        return http_reply_error(r, 404, "no recipe named '%s' has frames yet", name);
    int busy = trainer_request(api_app(req)->trainer, fresh, name[0] ? name : NULL);
    struct trainer_status st;
    trainer_get_status(api_app(req)->trainer, &st);
    if (busy) {
        json_t *j = train_json(&st);
        json_object_set_new(j, "error", json_string("a training run is already going on"));
        return http_reply_json(r, 409, j);
    }
    http_reply_json(r, 202, train_json(&st));
}

/* Base64 of n bytes (malloc'ed, NUL-terminated), or NULL. */
static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static void post_score(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"heatmap", "recipe", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    const char *hm = http_query(req, "heatmap"), *asked = http_query(req, "recipe");
    if (asked && !config_valid_name(asked))
        return http_reply_error(r, 400, "recipe must be a recipe name");
    if (hm && strcmp(hm, "0") != 0 && strcmp(hm, "1") != 0)
        return http_reply_error(r, 400, "heatmap must be 0 or 1");
    const char *type = http_header(req, "Content-Type");
    if (type && strncmp(type, "image/jpeg", 10) != 0 && strncmp(type, "image/png", 9) != 0 &&
        strncmp(type, "application/octet-stream", 24) != 0)
        return http_reply_error(r, 415, "send the image's bytes as image/jpeg or image/png");
    if (req->body_len == 0) return http_reply_error(r, 400, "the body must be a JPEG or PNG image");
    struct scorer_verdict v;
    char err[512], recipe[64];
    if (asked)
        snprintf(recipe, sizeof recipe, "%s", asked);
    else
        api_default_recipe(api_app(req), recipe, sizeof recipe);
    int rc = scorer_score_image(api_app(req)->scorer, recipe, req->body, req->body_len,
                                hm && hm[0] == '1', &v, err, sizeof err);
    if (rc == 1) return http_reply_error(r, 503, "%s", err);
    if (rc == -1) return http_reply_error(r, 400, "%s", err);
    if (rc < 0) {
        log_error("POST /api/v1/score: %s", err);
        return http_reply_error(r, 500, "cannot score the image");
    }
    json_t *j = json_pack("{s:f, s:f, s:f, s:b, s:s, s:f}", "score", v.score, "score_norm",
                          v.threshold > 0 ? v.score / v.threshold : 0.0, "threshold", v.threshold,
                          "flagged", v.flagged, "model_version", v.model_version, "latency_ms",
                          v.latency_us / 1000.0);
    if (j) json_object_set_new(j, "recipe", json_string(v.recipe));
    if (j && v.heatmap_jpeg) {
        char *b64 = base64(v.heatmap_jpeg, v.heatmap_len);
        json_object_set_new(j, "heatmap_jpeg", b64 ? json_string(b64) : json_null());
        free(b64);
    }
    free(v.heatmap_jpeg);
    http_reply_json(r, 200, j);
}

const struct http_route api_models_routes[] = {
    {"GET", "/api/v1/models", list_models},
    {"GET", "/api/v1/train", get_train},
    {"POST", "/api/v1/train", post_train},
    {"POST", "/api/v1/score", post_score},
    {0},
};
