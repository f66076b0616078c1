/* api_models.c — model versions, training (progress, start now), scoring an uploaded image and
 * registering an uploaded checkpoint: GET/POST /api/v1/models, GET/POST /api/v1/train,
 * POST /api/v1/score (each of a recipe). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ---- POST /api/v1/models: `inspectd model import` on an uploaded checkpoint ---- */

/* Writes the upload to DB's models/imported/upload-XXXXXX.safetensors. Returns 0 with the path in
 * out, or -1 (logged). */
static int save_upload(const struct app *a, const struct http_request *req, char *out, size_t n)
{
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s", a->cfg->store_path);
    int len = snprintf(out, n, "%s/models", dirname(db));
    int fd = -1;
    if (len > 0 && (size_t)len + 40 < n && (mkdir(out, 0750) == 0 || errno == EEXIST) &&
        (strcat(out, "/imported"), mkdir(out, 0750) == 0 || errno == EEXIST)) {
        strcat(out, "/upload-XXXXXX.safetensors");
        fd = mkstemps(out, 12);
    }
    bool ok = fd >= 0;
    for (size_t off = 0; ok && off < req->body_len;) {
        ssize_t w = write(fd, req->body + off, req->body_len - off);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0) ok = close(fd) == 0 && ok;
    if (!ok) {
        log_error("POST /api/v1/models: cannot store the upload at %s: %s", out, strerror(errno));
        if (fd >= 0) unlink(out);
    }
    return ok ? 0 : -1;
}

/* Runs `inspectd model import PATH --db DB [--recipe R]` and collects its output (stdout and
 * stderr together) into out. Returns its exit status, 128 + N when killed by signal N (the daemon
 * stopping ends it), or -1 (logged). */
static int run_import(const struct app *a, const struct http_request *req, const char *path,
                      const char *recipe, char *out, size_t n)
{
    char *argv[] = {"inspectd",
                    "model",
                    "import",
                    (char *)path,
                    "--db",
                    (char *)a->cfg->store_path,
                    recipe ? "--recipe" : NULL,
                    (char *)recipe,
                    NULL};
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    pid_t pid;
    extern char **environ;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc) {
        close(pipefd[0]);
        log_error("POST /api/v1/models: cannot run /proc/self/exe: %s", strerror(rc));
        return -1;
    }
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    size_t len = 0;
    int status = 0;
    bool killed = false;
    for (;;) {
        ssize_t got = read(pipefd[0], out + len, n - 1 - len);
        if (got > 0) len += (size_t)got;
        if (len == n - 1) len = 0; /* keep the end: the JSON line and the last error come last */
        if (got > 0) continue;
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        if (*req->stopping && !killed) kill(pid, SIGTERM), killed = true;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    ssize_t got;
    while (len < n - 1 && (got = read(pipefd[0], out + len, n - 1 - len)) > 0) len += (size_t)got;
    out[len] = '\0';
    close(pipefd[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

json_t *api_models_import_output(const char *out, char *msg, size_t n)
{
    json_t *model = NULL;
    snprintf(msg, n, "the import failed");
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        if (*p == '{' && !model) model = json_loadb(p, (size_t)(end - p), 0, NULL);
        const char *e = strstr(p, " E ");
        if (e && e < end) { /* "TIME E TAG: message": the message */
            const char *text = e + 3, *colon = strstr(text, ": ");
            if (colon && colon < end) text = colon + 2;
            if (end > text) snprintf(msg, n, "%.*s", (int)(end - text), text);
        }
        p = nl ? nl + 1 : end;
    }
    if (model && !json_is_object(model)) json_decref(model), model = NULL;
    return model;
}

static void post_models(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"recipe", NULL};
    if (http_check_query(req, allowed, r) < 0) return;
    const char *recipe = http_query(req, "recipe");
    if (recipe && !config_valid_name(recipe))
        return http_reply_error(r, 400, "recipe must be a recipe name");
    const char *type = http_header(req, "Content-Type");
    if (type && strncmp(type, "application/octet-stream", 24) != 0)
        return http_reply_error(r, 415, "send the checkpoint's bytes as application/octet-stream");
    if (req->body_len < 8) return http_reply_error(r, 400, "the body must be a .safetensors file");
    char path[PATH_MAX + 64], out[16384], msg[512];
    struct app *a = api_app(req);
    if (save_upload(a, req, path, sizeof path)) return http_reply_error(r, 507, "cannot store it");
    int rc = run_import(a, req, path, recipe, out, sizeof out);
    json_t *model = api_models_import_output(out, msg, sizeof msg);
    if (rc != 0 && rc != 2) json_decref(model), model = NULL;
    if (!model) unlink(path);
    if (model) {
        log_info("POST /api/v1/models: model %s registered for recipe %s (%s)",
                 json_string_value(json_object_get(model, "version")),
                 json_string_value(json_object_get(model, "recipe")),
                 json_string_value(json_object_get(model, "status")));
        return http_reply_json(r, rc == 0 ? 201 : 422, model);
    }
    if (rc == 65) return http_reply_error(r, 400, "%s", msg);
    if (rc == 1) return http_reply_error(r, strstr(msg, "no recipe named") ? 404 : 409, "%s", msg);
    if (rc > 128) return http_reply_error(r, 503, "the daemon is stopping");
    log_error("POST /api/v1/models: import exit %d: %s", rc, msg);
    return http_reply_error(r, 500, "%s", msg);
}

const struct http_route api_models_routes[] = {
    {"GET", "/api/v1/models", list_models}, {"POST", HTTP_MODEL_UPLOAD, post_models},
    {"GET", "/api/v1/train", get_train},    {"POST", "/api/v1/train", post_train},
    {"POST", "/api/v1/score", post_score},  {0},
};
