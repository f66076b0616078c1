/* config.c — reads the INI config with inih, validates every key and reports the first problem as
 * "FILE:LINE: message". inih does not give handlers a line number, so the text is fed to it through
 * a reader that counts lines (and notes where each [section] header is). */
#define LOG_TAG "config"
#include "array.h"
#include "log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"
#include "embedded.h"

#define MAX_KEYS        512
#define MAX_RECIPE_KEYS 32

/* A key of a [recipe.NAME] section, applied once the whole file is read (over [trainer]'s
 * values, wherever that section is). */
struct recipe_key {
    char key[64], value[256];
    int line;
};

struct parser {
    struct config *cfg;
    const char *name; /* file name for messages */

    /* line bookkeeping, updated by the readers */
    int line;         /* line of the text last handed to inih */
    int next_line;    /* line the next chunk starts on */
    int section_line; /* line of the last [section] header */

    /* first error */
    int err_line;
    char err[400];

    /* duplicate detection: "section\nkey" of every key seen */
    char *seen[MAX_KEYS];
    size_t nseen;

    int listen_line;
    int trainer_knob_line; /* the last training knob set in [trainer] */
    int camera_line[CONFIG_MAX_CAMERAS];
    int driver_line[CONFIG_MAX_CAMERAS];
    int param_line[CONFIG_MAX_CAMERAS][CONFIG_MAX_PARAMS];
    int recipe_line[CONFIG_MAX_RECIPES];
    struct recipe_key recipe_keys[CONFIG_MAX_RECIPES][MAX_RECIPE_KEYS];
    size_t nrecipe_keys[CONFIG_MAX_RECIPES];
};

struct string_stream {
    const char *p;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
    if (p->err_line == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->err_line = p->line > 0 ? p->line : -1;
    }
    return 0;
}

static void note_chunk(struct parser *p, const char *chunk)
{
    p->line = p->next_line;
    size_t n = strlen(chunk);
    if (n > 0 && chunk[n - 1] == '\n') p->next_line++;
    const char *s = chunk + strspn(chunk, " \t");
    if (*s == '[') p->section_line = p->line;
}

struct reader_ctx {
    struct parser *parser;
    FILE *file;                 /* either a file */
    struct string_stream *text; /* or a string */
};

static char *read_chunk(char *buf, int num, void *stream)
{
    struct reader_ctx *r = stream;
    if (r->file) {
        if (!fgets(buf, num, r->file)) return NULL;
    } else {
        const char *s = r->text->p;
        if (*s == '\0') return NULL;
        int n = 0;
        while (n < num - 1 && s[n] != '\0') {
            buf[n] = s[n];
            if (s[n++] == '\n') break;
        }
        buf[n] = '\0';
        r->text->p += n;
    }
    note_chunk(r->parser, buf);
    return buf;
}

static int copy_value(struct parser *p, char *dst, size_t dstsz, const char *key, const char *v)
{
    if (strlen(v) >= dstsz) return fail(p, "%s is longer than %zu characters", key, dstsz - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 1;
}

/* "host:port", "[v6]:port" or ":port" (all addresses); host must be numeric. */
static int set_listen(struct parser *p, const char *v)
{
    struct config *c = p->cfg;
    const char *colon = strrchr(v, ':');
    if (!colon) return fail(p, "listen must be ADDRESS:PORT, e.g. 127.0.0.1:8080");
    char host[256];
    size_t hl = (size_t)(colon - v);
    if (hl >= sizeof host) return fail(p, "listen address too long");
    memcpy(host, v, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    unsigned char addr[16];
    if (host[0] == '\0') strcpy(host, "0.0.0.0");
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        return fail(p, "listen address '%s' is not a numeric IPv4 or IPv6 address", host);
    if (parse_int(colon + 1, 0, 65535, &c->http_port) < 0)
        return fail(p, "listen port must be an integer in [0, 65535]");
    strcpy(c->http_host, host);
    p->listen_line = p->line;
    return 1;
}

static int set_http(struct parser *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    if (strcmp(key, "listen") == 0) return set_listen(p, v);
    if (strcmp(key, "token") == 0)
        return copy_value(p, c->http_token, sizeof c->http_token, key, v);
    if (strcmp(key, "token_file") == 0)
        return copy_value(p, c->http_token_file, sizeof c->http_token_file, key, v);
    if (strcmp(key, "threads") == 0)
        return parse_int(v, 1, 64, &c->http_threads) == 0
                   ? 1
                   : fail(p, "threads must be an integer in [1, 64]");
    if (strcmp(key, "max_connections") == 0)
        return parse_int(v, 1, 1024, &c->http_max_connections) == 0
                   ? 1
                   : fail(p, "max_connections must be an integer in [1, 1024]");
    if (strcmp(key, "timeout") == 0)
        return parse_int(v, 1, 3600, &c->http_timeout_s) == 0
                   ? 1
                   : fail(p, "timeout must be an integer number of seconds in [1, 3600]");
    if (strcmp(key, "max_upload") == 0) {
        int kib;
        if (parse_int(v, 1, 262144, &kib) < 0)
            return fail(p, "max_upload must be an integer number of KiB in [1, 262144]");
        c->http_max_upload = (long)kib << 10;
        return 1;
    }
    if (strcmp(key, "tls_cert") == 0)
        return copy_value(p, c->http_tls_cert, sizeof c->http_tls_cert, key, v);
    if (strcmp(key, "tls_key") == 0)
        return copy_value(p, c->http_tls_key, sizeof c->http_tls_key, key, v);
    if (strcmp(key, "public_url") == 0) {
        if (v[0] && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return fail(p, "public_url must start with http:// or https://");
        copy_value(p, c->http_public_url, sizeof c->http_public_url, key, v);
        size_t n = strlen(c->http_public_url);
        while (n && c->http_public_url[n - 1] == '/') c->http_public_url[--n] = '\0';
        return 1;
    }
    return fail(p, "unknown key '%s' in [http]", key);
}

/* [store] retention keys: max_size_mb, min_free_mb, flagged_days. */
static int set_retention(struct parser *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    if (strcmp(key, "max_size_mb") == 0)
        return parse_int(v, 0, 100000000, &c->store_max_size_mb) == 0
                   ? 1
                   : fail(p, "max_size_mb must be an integer in [0, 100000000] (0: no limit)");
    if (strcmp(key, "min_free_mb") == 0)
        return parse_int(v, 0, 100000000, &c->store_min_free_mb) == 0
                   ? 1
                   : fail(p, "min_free_mb must be an integer in [0, 100000000] (0: none)");
    if (strcmp(key, "flagged_days") == 0)
        return parse_double(v, 0, 36500, false, &c->store_flagged_days) == 0
                   ? 1
                   : fail(p, "flagged_days must be a number of days in [0, 36500]");
    return fail(p, "unknown key '%s' in [store]", key);
}

static int set_store(struct parser *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    if (strcmp(key, "path") == 0) {
        if (v[0] == '\0') return fail(p, "path must not be empty");
        return copy_value(p, c->store_path, sizeof c->store_path, key, v);
    }
    if (strcmp(key, "jpeg_quality") == 0)
        return parse_int(v, 1, 100, &c->jpeg_quality) == 0
                   ? 1
                   : fail(p, "jpeg_quality must be an integer in [1, 100]");
    if (strcmp(key, "batch_frames") == 0)
        return parse_int(v, 1, 10000, &c->batch_frames) == 0
                   ? 1
                   : fail(p, "batch_frames must be an integer in [1, 10000]");
    if (strcmp(key, "batch_ms") == 0)
        return parse_int(v, 0, 10000, &c->batch_ms) == 0
                   ? 1
                   : fail(p, "batch_ms must be an integer in [0, 10000]");
    return set_retention(p, key, v);
}

static int set_pipeline(struct parser *p, const char *key, const char *v)
{
    if (strcmp(key, "queue_size") == 0)
        return parse_int(v, 1, 100000, &p->cfg->queue_size) == 0
                   ? 1
                   : fail(p, "queue_size must be an integer in [1, 100000]");
    if (strcmp(key, "max_score_lag_s") == 0)
        return parse_int(v, 0, 86400, &p->cfg->max_score_lag_s) == 0
                   ? 1
                   : fail(p, "max_score_lag_s must be an integer in [0, 86400]");
    return fail(p, "unknown key '%s' in [pipeline]", key);
}

/* Where a section's trainer keys go: [trainer]'s fields, or a recipe's. */
struct trainer_fields {
    const char *section; /* for messages */
    int *enabled, *every, *min_frames;
    int *keep_models; /* NULL: not a key of this section */
    double *first_minutes;
    struct train_knobs *knobs;
    uint64_t *knobs_set;
    char *import;
    size_t importsz;
    double *false_alarm_rate, *threshold;
};

static int set_trainer_key(struct parser *p, const struct trainer_fields *f, const char *key,
                           const char *v)
{
    if (strcmp(key, "enabled") == 0) {
        bool on;
        if (parse_bool(v, &on))
            return fail(p, "enabled must be true or false (yes/no, on/off, 1/0)");
        *f->enabled = on;
        return 1;
    }
    struct {
        const char *key;
        int *dst, lo, hi;
    } ints[] = {{"every_frames", f->every, 10, 100000000},
                {"min_frames", f->min_frames, 2, 100000000},
                {"keep_models", f->keep_models, 1, 1000}};
    for (size_t i = 0; i < ARRAY_LEN(ints); i++)
        if (ints[i].dst && strcmp(key, ints[i].key) == 0)
            return parse_int(v, ints[i].lo, ints[i].hi, ints[i].dst) == 0
                       ? 1
                       : fail(p, "%s must be an integer in [%d, %d]", key, ints[i].lo, ints[i].hi);
    if (strcmp(key, "first_minutes") == 0)
        return parse_double(v, 0, 1e4, 1, f->first_minutes) == 0
                   ? 1
                   : fail(p, "first_minutes must be a number above 0, at most 10000");
    if (strcmp(key, "false_alarm_rate") == 0) {
        double x;
        if (parse_double(v, 0, 1, true, &x) || !(x < 1))
            return fail(p, "false_alarm_rate must be a number above 0 and below 1");
        *f->false_alarm_rate = x;
        return 1;
    }
    if (strcmp(key, "threshold") == 0) {
        if (v[0] == '\0') return *f->threshold = 0, 1;
        return parse_double(v, 0, 1e30, true, f->threshold) == 0
                   ? 1
                   : fail(p, "threshold must be a number above 0 (raw score units), or empty");
    }
    if (strcmp(key, "import") == 0) {
        if (strlen(v) >= f->importsz) return fail(p, "import: path too long");
        snprintf(f->import, f->importsz, "%s", v);
        return 1;
    }
    int knob = train_cli_find_key(key);
    if (knob >= 0) {
        char why[128];
        if (train_cli_set(knob, v, f->knobs, why, sizeof why)) return fail(p, "%s", why);
        *f->knobs_set |= (uint64_t)1 << knob;
        return 1;
    }
    return fail(p, "unknown key '%s' in [%s]", key, f->section);
}

static int set_trainer(struct parser *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    struct trainer_fields f = {.section = "trainer",
                               .enabled = &c->trainer_enabled,
                               .every = &c->trainer_every,
                               .min_frames = &c->trainer_min_frames,
                               .keep_models = &c->trainer_keep_models,
                               .first_minutes = &c->trainer_first_minutes,
                               .knobs = &c->trainer_knobs,
                               .knobs_set = &c->trainer_knobs_set,
                               .import = c->trainer_import,
                               .importsz = sizeof c->trainer_import,
                               .false_alarm_rate = &c->false_alarm_rate,
                               .threshold = &c->threshold};
    if (train_cli_find_key(key) >= 0) p->trainer_knob_line = p->line;
    return set_trainer_key(p, &f, key, v);
}

/* A recipe's settings start as [trainer]'s. */
static void recipe_from_trainer(const struct config *c, const char *name, struct config_recipe *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->number = -1;
    r->enabled = c->trainer_enabled;
    r->every = c->trainer_every;
    r->min_frames = c->trainer_min_frames;
    r->first_minutes = c->trainer_first_minutes;
    r->knobs = c->trainer_knobs;
    r->knobs_set = c->trainer_knobs_set;
    memcpy(r->import, c->trainer_import, sizeof r->import);
    r->false_alarm_rate = c->false_alarm_rate;
    r->threshold = c->threshold;
}

/* [recipe.NAME]: the keys are kept and applied by resolve_recipes() once the file is read. */
static int set_recipe(struct parser *p, const char *name, const char *key, const char *v)
{
    struct config *c = p->cfg;
    if (!config_valid_name(name))
        return fail(p, "recipe name '%s' must be 1-63 letters, digits, '_' or '-'", name);
    size_t i = 0;
    while (i < c->nrecipes && strcmp(c->recipes[i].name, name) != 0) i++;
    if (i == c->nrecipes) {
        if (c->nrecipes == CONFIG_MAX_RECIPES)
            return fail(p, "more than %d [recipe.NAME] sections", CONFIG_MAX_RECIPES);
        c->nrecipes++;
        snprintf(c->recipes[i].name, sizeof c->recipes[i].name, "%s", name);
        p->recipe_line[i] = p->section_line;
    }
    if (p->nrecipe_keys[i] == MAX_RECIPE_KEYS)
        return fail(p, "more than %d keys in [recipe.%s]", MAX_RECIPE_KEYS, name);
    if (strlen(key) >= sizeof p->recipe_keys[i][0].key)
        return fail(p, "unknown key '%s' in [recipe.%s]", key, name);
    struct recipe_key *k = &p->recipe_keys[i][p->nrecipe_keys[i]++];
    snprintf(k->key, sizeof k->key, "%s", key);
    snprintf(k->value, sizeof k->value, "%s", v);
    k->line = p->line;
    return 1;
}

/* Each [recipe.NAME]: [trainer]'s values, then the section's own keys. */
static void resolve_recipes(struct parser *p)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nrecipes && !p->err_line; i++) {
        struct config_recipe *r = &c->recipes[i];
        char name[CONFIG_NAME_MAX], section[CONFIG_NAME_MAX + 8];
        snprintf(name, sizeof name, "%s", r->name);
        snprintf(section, sizeof section, "recipe.%s", name);
        recipe_from_trainer(c, name, r);
        struct trainer_fields f = {.section = section,
                                   .enabled = &r->enabled,
                                   .every = &r->every,
                                   .min_frames = &r->min_frames,
                                   .first_minutes = &r->first_minutes,
                                   .knobs = &r->knobs,
                                   .knobs_set = &r->knobs_set,
                                   .import = r->import,
                                   .importsz = sizeof r->import,
                                   .false_alarm_rate = &r->false_alarm_rate,
                                   .threshold = &r->threshold};
        int knob_line = p->recipe_line[i];
        for (size_t k = 0; k < p->nrecipe_keys[i] && !p->err_line; k++) {
            const struct recipe_key *rk = &p->recipe_keys[i][k];
            p->line = rk->line;
            if (strcmp(rk->key, "number") == 0) {
                if (parse_int(rk->value, 0, 65535, &r->number))
                    fail(p, "number must be an integer in [0, 65535]");
                continue;
            }
            if (train_cli_find_key(rk->key) >= 0) knob_line = rk->line;
            set_trainer_key(p, &f, rk->key, rk->value);
        }
        char why[128];
        if (!p->err_line && train_cli_check(&r->knobs, why, sizeof why)) {
            p->line = knob_line;
            fail(p, "[%s] %s", section, why);
        }
    }
}

/* [engine] gemm, precision: training knobs too, so that the training child computes as the
 * daemon does. */
static int set_engine(struct parser *p, const char *key, const char *v)
{
    struct config *c = p->cfg;
    int knob = train_cli_find_engine_key(key);
    if (knob < 0) return fail(p, "unknown key '%s' in [engine]", key);
    char why[128];
    if (train_cli_set(knob, v, &c->trainer_knobs, why, sizeof why)) return fail(p, "%s", why);
    c->trainer_knobs_set |= (uint64_t)1 << knob;
    return 1;
}

static int set_log(struct parser *p, const char *key, const char *v)
{
    if (strcmp(key, "level") == 0)
        return log_level_parse(v, &p->cfg->log_level) == 0
                   ? 1
                   : fail(p, "level must be one of error, warn, info, debug");
    return fail(p, "unknown key '%s' in [log]", key);
}

bool config_valid_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < CONFIG_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static struct config_camera *find_camera(struct parser *p, const char *name, size_t *index)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->ncameras; i++) {
        if (strcmp(c->cameras[i].name, name) == 0) {
            *index = i;
            return &c->cameras[i];
        }
    }
    if (c->ncameras == CONFIG_MAX_CAMERAS) return NULL;
    *index = c->ncameras++;
    struct config_camera *cam = &c->cameras[*index];
    strcpy(cam->name, name);
    p->camera_line[*index] = p->section_line;
    return cam;
}

/* roi and mask, daemon keys of a camera: the ROI as x,y,w,h, a mask file that must decode. */
static int set_region(struct parser *p, struct config_camera *cam, const char *key, const char *v)
{
    struct region r = {0};
    char why[600];
    if (strcmp(key, "roi") == 0) {
        if (region_parse_roi(v, &r, why, sizeof why)) return fail(p, "%s", why);
        snprintf(cam->roi, sizeof cam->roi, "%d,%d,%d,%d", r.x, r.y, r.w, r.h);
        return 1;
    }
    if (!v[0]) return fail(p, "mask must name a PNG file (white = inspect, black = ignore)");
    int rc = region_read_mask(&r, v, NULL, NULL, why, sizeof why);
    region_free(&r);
    if (rc) return fail(p, "%s", why);
    return copy_value(p, cam->mask, sizeof cam->mask, key, v);
}

static int set_camera(struct parser *p, const char *name, const char *key, const char *v)
{
    if (!config_valid_name(name))
        return fail(p, "camera name '%s' must be 1-63 letters, digits, '_' or '-'", name);
    size_t i;
    struct config_camera *cam = find_camera(p, name, &i);
    if (!cam) return fail(p, "more than %d cameras", CONFIG_MAX_CAMERAS);
    if (strcmp(key, "driver") == 0) {
        p->driver_line[i] = p->line;
        return copy_value(p, cam->driver, sizeof cam->driver, key, v);
    }
    if (strcmp(key, "recipe") == 0) { /* the daemon's, not the driver's */
        if (!config_valid_name(v))
            return fail(p, "recipe '%s' must be 1-63 letters, digits, '_' or '-'", v);
        return copy_value(p, cam->recipe, sizeof cam->recipe, key, v);
    }
    if (strcmp(key, "roi") == 0 || strcmp(key, "mask") == 0) return set_region(p, cam, key, v);
    if (cam->nparams == CONFIG_MAX_PARAMS)
        return fail(p, "more than %d parameters in [camera.%s]", CONFIG_MAX_PARAMS, name);
    char *k = strdup(key), *val = strdup(v);
    if (!k || !val) {
        free(k);
        free(val);
        return fail(p, "out of memory");
    }
    p->param_line[i][cam->nparams] = p->line;
    cam->params[cam->nparams++] = (struct source_param){k, val};
    return 1;
}

/* inih keeps ';' comments out of values; "# ..." after a blank is a comment here too. */
static void strip_comment(char *v)
{
    for (char *s = v; *s; s++) {
        if (*s == '#' && s > v && (s[-1] == ' ' || s[-1] == '\t')) {
            *s = '\0';
            break;
        }
    }
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) v[--n] = '\0';
}

static int check_duplicate(struct parser *p, const char *section, const char *key)
{
    char id[512];
    snprintf(id, sizeof id, "%s\n%s", section, key);
    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i], id) == 0) return fail(p, "duplicate key '%s' in [%s]", key, section);
    if (p->nseen == MAX_KEYS) return fail(p, "more than %d keys", MAX_KEYS);
    if (!(p->seen[p->nseen] = strdup(id))) return fail(p, "out of memory");
    p->nseen++;
    return 1;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct parser *p = user;
    if (p->err_line) return 1; /* only the first error is reported */
    char v[256];
    if (strlen(value) >= sizeof v) return fail(p, "value of '%s' is too long", key);
    strcpy(v, value);
    strip_comment(v);
    if (!check_duplicate(p, section, key)) return 0;
    if (strcmp(section, "http") == 0) return set_http(p, key, v);
    if (strcmp(section, "store") == 0) return set_store(p, key, v);
    if (strcmp(section, "pipeline") == 0) return set_pipeline(p, key, v);
    if (strcmp(section, "log") == 0) return set_log(p, key, v);
    if (strcmp(section, "engine") == 0) return set_engine(p, key, v);
    if (strcmp(section, "trainer") == 0) return set_trainer(p, key, v);
    if (strncmp(section, "camera.", 7) == 0) return set_camera(p, section + 7, key, v);
    if (strncmp(section, "recipe.", 7) == 0) return set_recipe(p, section + 7, key, v);
    char why[256];
    int line = line_config_set(&p->cfg->line, section, key, v, why, sizeof why);
    if (line >= 0) return line ? 1 : fail(p, "%s", why);
    if (section[0] == '\0') return fail(p, "key '%s' outside any [section]", key);
    return fail(p, "unknown section [%s]", section);
}

static void set_defaults(struct config *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", name);
    strcpy(c->http_host, "127.0.0.1");
    c->http_port = 8080;
    c->http_threads = 4;
    c->http_max_connections = 64;
    c->http_timeout_s = 30;
    c->http_max_upload = 8L << 20;
    strcpy(c->store_path, "./var/inspectd.db");
    c->jpeg_quality = 90;
    c->batch_frames = 64;
    c->batch_ms = 20;
    c->store_max_size_mb = 0;
    c->store_min_free_mb = 1024;
    c->store_flagged_days = 30;
    c->queue_size = 256;
    c->max_score_lag_s = 60;
    c->log_level = LOGL_INFO;
    c->trainer_enabled = 1;
    c->trainer_every = 5000;
    c->trainer_min_frames = 100;
    c->trainer_first_minutes = 0.5;
    c->trainer_keep_models = 3;
    c->false_alarm_rate = 0.005;
    c->threshold = 0;
    train_knobs_defaults(&c->trainer_knobs);
    c->trainer_knobs_set = 0;
    line_config_defaults(&c->line);
    static const char *const knobs[][2] = {{"minutes", "10"},
                                           {"size", "64"},
                                           {"channels", "3"},
                                           {"threads", "1"},
                                           {"max_images", "2000"}};
    for (size_t i = 0; i < ARRAY_LEN(knobs); i++) {
        int k = train_cli_find_key(knobs[i][0]);
        char why[128];
        int rc = train_cli_set(k, knobs[i][1], &c->trainer_knobs, why, sizeof why);
        assert(rc == 0);
        (void)rc;
        c->trainer_knobs_set |= (uint64_t)1 << k;
    }
}

int config_load_token(struct config *c, char *err, size_t errsz)
{
    if (c->http_token[0] || !c->http_token_file[0]) return 0;
    const char *path = c->http_token_file;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT) {
        unsigned char raw[24];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
            snprintf(err, errsz, "%s: cannot make a token: %s", path, strerror(errno));
            return -1;
        }
        for (size_t i = 0; i < sizeof raw; i++) sprintf(c->http_token + 2 * i, "%02x", raw[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
        bool ok = out && fprintf(out, "%s\n", c->http_token) > 0;
        ok = out ? fclose(out) == 0 && ok : false;
        if (!out && fd >= 0) close(fd);
        if (!ok) {
            snprintf(err, errsz, "%s: cannot create the token file: %s", path, strerror(errno));
            c->http_token[0] = '\0';
            unlink(path);
            return -1;
        }
        log_info("created the API token file %s (mode 0600)", path);
        return 0;
    }
    if (!f) {
        snprintf(err, errsz, "%s: cannot read the token file: %s", path, strerror(errno));
        return -1;
    }
    char line[256] = "";
    bool read = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!read || strlen(line) < 16 || strspn(line, " \t") > 0) {
        snprintf(err, errsz,
                 "%s: the token file must hold a token of 16 to 255 characters on its "
                 "first line",
                 path);
        return -1;
    }
    memcpy(c->http_token, line, strlen(line) + 1);
    return 0;
}

bool config_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

static bool known_driver(const char *driver)
{
    for (const char *const *d = source_drivers(); *d; d++)
        if (strcmp(*d, driver) == 0) return true;
    return false;
}

/* Checks what needs the whole file: every camera's driver and its parameters, the token rule. */
static void validate(struct parser *p)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->ncameras; i++)
        if (!c->cameras[i].recipe[0])
            memcpy(c->cameras[i].recipe, c->cameras[i].name, sizeof c->cameras[i].recipe);
    resolve_recipes(p);
    if (p->err_line) return;
    for (size_t i = 0; i < c->ncameras && !p->err_line; i++) {
        struct config_camera *cam = &c->cameras[i];
        p->line = p->camera_line[i];
        if (cam->driver[0] == '\0') {
            fail(p, "[camera.%s] has no driver", cam->name);
            break;
        }
        p->line = p->driver_line[i];
        if (!known_driver(cam->driver)) {
            char list[256] = "";
            for (const char *const *d = source_drivers(); *d; d++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", *d);
            fail(p, "unknown driver '%s' (built in: %s)", cam->driver, list);
            break;
        }
        for (size_t k = 0; k < cam->nparams; k++) {
            char why[256];
            if (source_check_param(cam->driver, cam->params[k].key, cam->params[k].value, why,
                                   sizeof why) < 0) {
                p->line = p->param_line[i][k];
                fail(p, "[camera.%s] %s: %s", cam->name, cam->params[k].key, why);
                break;
            }
        }
    }
    if (p->err_line) return;
    if (c->ncameras == 0) {
        p->line = 0;
        fail(p, "no [camera.NAME] section: at least one camera is needed");
        return;
    }
    if (!config_is_loopback(c->http_host) && c->http_token[0] == '\0' &&
        c->http_token_file[0] == '\0') {
        p->line = p->listen_line;
        fail(p, "listening on %s (not loopback) needs [http] token or token_file", c->http_host);
        return;
    }
    if (c->http_token[0] && c->http_token_file[0]) {
        p->line = 0;
        fail(p, "[http] token and token_file: set one of them");
        return;
    }
    if (!c->http_tls_cert[0] != !c->http_tls_key[0]) {
        p->line = 0;
        fail(p, "[http] tls_cert and tls_key go together");
        return;
    }
    char why[128];
    if (line_config_check(&c->line, why, sizeof why)) {
        p->line = 0;
        fail(p, "%s", why);
        return;
    }
    if (train_cli_check(&c->trainer_knobs, why, sizeof why)) {
        p->line = p->trainer_knob_line;
        fail(p, "[trainer] %s", why);
    }
}

static int finish(struct parser *p, int rc, char *err, size_t errsz)
{
    for (size_t i = 0; i < p->nseen; i++) free(p->seen[i]);
    if (rc > 0 && !p->err_line) {
        p->line = rc;
        fail(p, "syntax error (expected [section], key = value or a comment)");
    }
    if (rc == 0 && !p->err_line) validate(p);
    if (!p->err_line) return 0;
    if (p->err_line > 0)
        snprintf(err, errsz, "%s:%d: %s", p->name, p->err_line, p->err);
    else
        snprintf(err, errsz, "%s: %s", p->name, p->err);
    config_free(p->cfg);
    return -1;
}

static int parse(struct config *cfg, struct reader_ctx *r, const char *name, char *err,
                 size_t errsz)
{
    struct parser *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errsz, "%s: out of memory", name);
        return -1;
    }
    set_defaults(cfg, name);
    p->cfg = cfg;
    p->name = name;
    p->next_line = 1;
    r->parser = p;
    int rc = ini_parse_stream(read_chunk, r, on_key, p);
    rc = finish(p, rc, err, errsz);
    free(p);
    return rc;
}

int config_parse_string(struct config *cfg, const char *text, const char *name, char *err,
                        size_t errsz)
{
    struct string_stream s = {text};
    struct reader_ctx r = {.text = &s};
    return parse(cfg, &r, name, err, errsz);
}

int config_load(struct config *cfg, const char *path, char *err, size_t errsz)
{
    if (!path)
        return config_parse_string(cfg, config_default_text(), "(embedded default)", err, errsz);
    FILE *f = fopen(path, "r");
    if (!f) {
        memset(cfg, 0, sizeof *cfg);
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct reader_ctx r = {.file = f};
    int rc = parse(cfg, &r, path, err, errsz);
    fclose(f);
    return rc;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->ncameras; i++) {
        struct config_camera *cam = &cfg->cameras[i];
        for (size_t k = 0; k < cam->nparams; k++) {
            free((char *)cam->params[k].key);
            free((char *)cam->params[k].value);
        }
        cam->nparams = 0;
    }
    cfg->ncameras = 0;
}

const char *config_default_text(void)
{
    for (const struct embed_file *e = embed_files; e->path; e++)
        if (strcmp(e->path, "systemd/inspectd.conf") == 0) return (const char *)e->data;
    assert(!"systemd/inspectd.conf is embedded by the Makefile");
    return "";
}

int config_camera_copy(struct config_camera *dst, const struct config_camera *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->name, src->name, sizeof dst->name);
    memcpy(dst->driver, src->driver, sizeof dst->driver);
    memcpy(dst->recipe, src->recipe, sizeof dst->recipe);
    memcpy(dst->roi, src->roi, sizeof dst->roi);
    memcpy(dst->mask, src->mask, sizeof dst->mask);
    for (size_t k = 0; k < src->nparams; k++) {
        char *key = strdup(src->params[k].key), *value = strdup(src->params[k].value);
        if (!key || !value) {
            free(key);
            free(value);
            config_camera_free(dst);
            return -1;
        }
        dst->params[dst->nparams++] = (struct source_param){key, value};
    }
    return 0;
}

void config_camera_free(struct config_camera *cam)
{
    for (size_t k = 0; k < cam->nparams; k++) {
        free((char *)cam->params[k].key);
        free((char *)cam->params[k].value);
    }
    cam->nparams = 0;
}

static const char *camera_param(const struct config_camera *cam, const char *key)
{
    for (size_t k = 0; k < cam->nparams; k++)
        if (strcmp(cam->params[k].key, key) == 0) return cam->params[k].value;
    return NULL;
}

bool config_camera_equal(const struct config_camera *a, const struct config_camera *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->driver, b->driver) != 0 ||
        a->nparams != b->nparams)
        return false;
    for (size_t k = 0; k < a->nparams; k++) { /* keys are unique within a section */
        const char *v = camera_param(b, a->params[k].key);
        if (!v || strcmp(v, a->params[k].value) != 0) return false;
    }
    return true;
}

void config_copy_trainer(struct config *dst, const struct config *src)
{
    dst->trainer_enabled = src->trainer_enabled;
    dst->trainer_every = src->trainer_every;
    dst->trainer_min_frames = src->trainer_min_frames;
    dst->trainer_keep_models = src->trainer_keep_models;
    dst->trainer_first_minutes = src->trainer_first_minutes;
    memcpy(&dst->trainer_knobs, &src->trainer_knobs, sizeof dst->trainer_knobs);
    dst->trainer_knobs_set = src->trainer_knobs_set;
    memcpy(dst->trainer_import, src->trainer_import, sizeof dst->trainer_import);
    memcpy(dst->recipes, src->recipes, sizeof dst->recipes);
    dst->nrecipes = src->nrecipes;
    dst->false_alarm_rate = src->false_alarm_rate;
    dst->threshold = src->threshold;
}

int config_camera_region(const struct config_camera *cam, struct region *r, uint8_t **mask_bytes,
                         size_t *mask_len, char *err, size_t errsz)
{
    memset(r, 0, sizeof *r);
    *mask_bytes = NULL, *mask_len = 0;
    if (cam->roi[0] && region_parse_roi(cam->roi, r, err, errsz)) return -1;
    if (cam->mask[0] && region_read_mask(r, cam->mask, mask_bytes, mask_len, err, errsz)) return -1;
    return 0;
}

const struct config_recipe *config_recipe_find(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nrecipes; i++)
        if (strcmp(c->recipes[i].name, name) == 0) return &c->recipes[i];
    return NULL;
}

void config_recipe_settings(const struct config *c, const char *name, struct config_recipe *out)
{
    const struct config_recipe *r = config_recipe_find(c, name);
    if (r)
        *out = *r;
    else
        recipe_from_trainer(c, name, out);
}

bool config_recipe_known(const struct config *c, const char *name)
{
    if (config_recipe_find(c, name)) return true;
    for (size_t i = 0; i < c->ncameras; i++)
        if (strcmp(c->cameras[i].recipe, name) == 0) return true;
    return false;
}

bool config_trainer_equal(const struct config *a, const struct config *b)
{
    struct config *x = malloc(sizeof *x);
    if (!x) return false;
    memcpy(x, a, sizeof *x);
    config_copy_trainer(x, b); /* a with b's [trainer]: equal to a only if those keys are */
    bool same = memcmp(x, a, sizeof *x) == 0;
    free(x);
    return same;
}
