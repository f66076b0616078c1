/* api_recipes.c — recipes: GET /api/v1/recipes (each with its cameras, its active model, its state,
 * frames and sensitivity), POST /api/v1/cameras/{name}/recipe (switch a camera's recipe at
 * runtime) and PUT /api/v1/recipes/{name}/sensitivity (a new false-alarm rate or a fixed
 * threshold, without retraining). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "parse.h"
#include "store/scoring_store.h"
#include "store/store_alerts.h"

#define LOG_TAG "api"
#include "log.h"

#define MAX_RECIPES 64

void api_default_recipe(struct app *app, char *out, size_t n)
{
    struct pipeline_camera_status st;
    if (pipeline_camera_status(app->pipeline, 0, &st) && st.recipe[0])
        snprintf(out, n, "%s", st.recipe);
    else
        snprintf(out, n, "%s", app->cfg->cameras[0].recipe);
}

/* The running cameras whose frames are captured for recipe now. */
static json_t *cameras_of(struct app *app, const char *recipe)
{
    json_t *arr = json_array();
    struct pipeline_camera_status st;
    for (size_t i = 0; arr && pipeline_camera_status(app->pipeline, i, &st); i++)
        if (strcmp(st.recipe, recipe) == 0) json_array_append_new(arr, json_string(st.name));
    return arr;
}

static json_t *recipe_json(struct app *app, const char *name, const struct recipe_info *ri,
                           const struct trainer_status *tr)
{
    bool training = tr->running && strcmp(tr->recipe, name) == 0;
    bool scoring = ri && ri->model_id > 0;
    const struct config_recipe *cr = config_recipe_find(app->cfg, name);
    json_t *j =
        json_pack("{s:s, s:o, s:o, s:s, s:I, s:b}", "name", name, "cameras", cameras_of(app, name),
                  "model", scoring ? json_string(ri->model_version) : json_null(), "state",
                  scoring    ? "scoring"
                  : training ? "training"
                             : "learning",
                  "frames", (json_int_t)(ri ? ri->frames : 0), "training", training);
    if (j && cr && cr->number >= 0) json_object_set_new(j, "number", json_integer(cr->number));
    struct scorer_recipe_status rs;
    if (j && scorer_recipe_status(app->scorer, name, &rs) && rs.has_model)
        json_object_set_new(j, "sensitivity",
                            json_pack("{s:f, s:f, s:b}", "false_alarm_rate", rs.false_alarm_rate,
                                      "threshold", (double)rs.threshold, "fixed",
                                      rs.fixed_threshold));
    return j;
}

json_t *api_recipes_json(struct app *app)
{
    struct recipe_info *rows = malloc(sizeof *rows * MAX_RECIPES);
    if (!rows) return NULL;
    struct store_reader *rd = store_pool_get(app->readers);
    int n = store_list_recipes(rd, rows, MAX_RECIPES);
    if (n < 0) log_error("list recipes: %s", store_reader_errmsg(rd));
    store_pool_put(app->readers, rd);
    if (n < 0) {
        free(rows);
        return NULL;
    }
    struct trainer_status tr;
    trainer_get_status(app->trainer, &tr);
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, recipe_json(app, rows[i].name, &rows[i], &tr));
    /* recipes the config names that have no row yet (a [recipe.NAME] no camera used so far) */
    const struct config *c = app->cfg;
    for (size_t k = 0; arr && k < c->nrecipes; k++) {
        bool stored = false;
        for (int i = 0; i < n && !stored; i++)
            stored = strcmp(rows[i].name, c->recipes[k].name) == 0;
        if (!stored) json_array_append_new(arr, recipe_json(app, c->recipes[k].name, NULL, &tr));
    }
    free(rows);
    return arr;
}

static void list_recipes(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    json_t *arr = api_recipes_json(api_app(req));
    if (!arr) return http_reply_error(r, 500, "cannot read the database");
    http_reply_json(r, 200, json_pack("{s:o}", "recipes", arr));
}

int api_recipes_switch_body(const json_t *body, struct http_reply *r, const char **recipe)
{
    const char *key;
    json_t *value;
    *recipe = NULL;
    json_object_foreach((json_t *)body, key, value)
    {
        if (strcmp(key, "recipe") != 0) {
            http_reply_error(r, 400, "unknown field '%.64s' (recipe is known)", key);
            return -1;
        }
        if (!json_is_string(value) || !config_valid_name(json_string_value(value))) {
            http_reply_error(r, 400,
                             "recipe must be a recipe name (1-63 letters, digits, '_', '-')");
            return -1;
        }
        *recipe = json_string_value(value);
    }
    if (!*recipe) {
        http_reply_error(r, 400, "the body must be {\"recipe\": NAME}");
        return -1;
    }
    return 0;
}

static void switch_recipe(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    struct app *app = api_app(req);
    json_t *body = http_json_body(req, r);
    if (!body) return;
    const char *asked = NULL;
    char recipe[64] = "";
    int bad = api_recipes_switch_body(body, r, &asked);
    if (!bad) snprintf(recipe, sizeof recipe, "%s", asked);
    json_decref(body);
    if (bad) return;
    const char *camera = req->params[0];
    if (!config_recipe_known(app->cfg, recipe))
        return http_reply_error(r, 404,
                                "no recipe named '%s' in the config (a [recipe.%s] section, or "
                                "some camera's recipe)",
                                recipe, recipe);
    char err[512];
    int rc = pipeline_switch_recipe(app->pipeline, camera, recipe, err, sizeof err);
    if (rc == 1) return http_reply_error(r, 404, "no camera named '%.64s' runs", camera);
    if (rc < 0) {
        log_error("POST /api/v1/cameras/%s/recipe: %s", camera, err);
        return http_reply_error(r, 500, "cannot store the switch");
    }
    http_reply_json(r, 200, json_pack("{s:s, s:s}", "camera", camera, "recipe", recipe));
}

int api_recipes_sensitivity_body(const json_t *body, struct http_reply *r, double *rate,
                                 double *threshold)
{
    *rate = *threshold = 0;
    if (json_object_size(body) != 1) {
        http_reply_error(r, 400,
                         "the body must be {\"false_alarm_rate\": F} or {\"threshold\": T}");
        return -1;
    }
    json_t *f = json_object_get(body, "false_alarm_rate"), *t = json_object_get(body, "threshold");
    double v = json_number_value(f ? f : t);
    if (!f && !t) {
        const char *key = json_object_iter_key(json_object_iter((json_t *)body));
        http_reply_error(r, 400, "unknown field '%.64s' (false_alarm_rate or threshold)", key);
        return -1;
    }
    if (f && (!json_is_number(f) || !(v > 0 && v < 1))) {
        http_reply_error(r, 400, "false_alarm_rate must be a number above 0 and below 1");
        return -1;
    }
    if (t && (!json_is_number(t) || !(v > 0) || !isfinite(v))) {
        http_reply_error(r, 400, "threshold must be a number above 0 (raw score units)");
        return -1;
    }
    *(f ? rate : threshold) = v;
    return 0;
}

static void put_sensitivity(const struct http_request *req, struct http_reply *r)
{
    static const char *const none[] = {NULL};
    if (http_check_query(req, none, r) < 0) return;
    struct app *app = api_app(req);
    json_t *body = http_json_body(req, r);
    if (!body) return;
    double rate, threshold;
    int bad = api_recipes_sensitivity_body(body, r, &rate, &threshold);
    json_decref(body);
    if (bad) return;
    const char *recipe = req->params[0];
    if (!config_valid_name(recipe)) return http_reply_error(r, 404, "no such recipe");
    struct config_recipe file;
    config_recipe_settings(app->cfg, recipe, &file);
    char err[512];
    struct scoring_store *ss = scoring_store_open(app->cfg->store_path, err, sizeof err);
    int rc = ss ? scoring_store_put_sensitivity(ss, recipe, rate, threshold, file.false_alarm_rate,
                                                file.threshold)
                : -1;
    if (rc < 0) log_error("PUT sensitivity of %s: %s", recipe, ss ? scoring_store_errmsg(ss) : err);
    scoring_store_close(ss);
    if (rc < 0) return http_reply_error(r, 500, "cannot store the sensitivity");
    if (rc == 0) return http_reply_error(r, 404, "no recipe named '%s' has frames yet", recipe);
    log_info("recipe %s: %s %g set over the API (until the config's changes)", recipe,
             rate > 0 ? "false-alarm rate" : "threshold", rate > 0 ? rate : threshold);
    json_t *j = json_pack("{s:s}", "recipe", recipe);
    json_object_set_new(j, rate > 0 ? "false_alarm_rate" : "threshold",
                        json_real(rate > 0 ? rate : threshold));
    http_reply_json(r, 200, j);
}

#define SCORES_DEFAULT 500
#define SCORES_MAX     5000

/* GET /api/v1/recipes/{name}/scores?limit=N: what a sensitivity change would flag, the scores of
 * the recipe's newest frames (its model's; confirmed defects left out) and of its calibration set
 * beside the threshold in use. */
static void get_scores(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"limit", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    struct app *app = api_app(req);
    const char *recipe = req->params[0], *limit_s = http_query(req, "limit");
    int64_t limit = SCORES_DEFAULT;
    if (limit_s && parse_i64(limit_s, 1, SCORES_MAX, &limit) < 0)
        return http_reply_error(r, 400, "limit must be an integer in [1, %d]", SCORES_MAX);
    struct scorer_recipe_status rs;
    if (!config_valid_name(recipe) || !scorer_recipe_status(app->scorer, recipe, &rs))
        return http_reply_error(r, 404, "no recipe named '%.64s' has frames yet", recipe);
    if (!rs.has_model)
        return http_reply_error(r, 404, "recipe %s has no model yet: nothing is scored", recipe);
    float *cal = NULL;
    int nc = scorer_recipe_calibration(app->scorer, recipe, &cal);
    double *recent = malloc(sizeof(double) * (size_t)limit);
    if (!recent) {
        free(cal);
        return http_reply_error(r, 500, "out of memory");
    }
    struct store_reader *rd = store_pool_get(app->readers);
    int n = store_recent_scores(rd, recipe, rs.model_id, recent, (int)limit);
    if (n < 0) log_error("recent scores: %s", store_reader_errmsg(rd));
    store_pool_put(app->readers, rd);
    if (n < 0) {
        free(cal), free(recent);
        return http_reply_error(r, 500, "cannot read the database");
    }
    json_t *jr = json_array(), *jc = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(jr, json_real(recent[i]));
    for (int i = 0; i < nc; i++) json_array_append_new(jc, json_real(cal[i]));
    free(cal), free(recent);
    http_reply_json(r, 200,
                    json_pack("{s:s, s:s, s:f, s:f, s:b, s:o, s:o}", "recipe", recipe, "model",
                              rs.model_version, "threshold", (double)rs.threshold,
                              "false_alarm_rate", rs.false_alarm_rate, "fixed", rs.fixed_threshold,
                              "recent", jr, "calibration", jc));
}

const struct http_route api_recipes_routes[] = {
    {"GET", "/api/v1/recipes/{name}/scores", get_scores},
    {"GET", "/api/v1/recipes", list_recipes},
    {"POST", "/api/v1/cameras/{name}/recipe", switch_recipe},
    {"PUT", "/api/v1/recipes/{name}/sensitivity", put_sensitivity},
    {0},
};
