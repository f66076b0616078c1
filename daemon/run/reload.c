/* reload.c — the config reload: compare, refuse or apply, and say which keys wait for a restart. */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "reload"
#include "log.h"

static void note(char *list, size_t size, const char *key)
{
    size_t n = strlen(list);
    snprintf(list + n, size - n, "%s%s", n ? ", " : "", key);
}

/* Clears every field reload_diff() compares by name, so what is left differs only in keys it
 * does not know (added to struct config since). */
static void clear_known(struct config *c)
{
    static const struct config zero;
    memset(c->path, 0, sizeof c->path);
    memset(c->http_host, 0, sizeof c->http_host);
    c->http_port = 0;
    memset(c->http_token, 0, sizeof c->http_token);
    memset(c->http_token_file, 0, sizeof c->http_token_file);
    c->http_threads = c->http_max_connections = c->http_timeout_s = 0;
    c->http_max_upload = 0;
    memset(c->http_tls_cert, 0, sizeof c->http_tls_cert);
    memset(c->http_tls_key, 0, sizeof c->http_tls_key);
    memset(c->store_path, 0, sizeof c->store_path);
    c->jpeg_quality = c->batch_frames = c->batch_ms = 0;
    c->store_max_size_mb = c->store_min_free_mb = 0;
    c->store_flagged_days = 0;
    c->queue_size = c->max_score_lag_s = 0;
    memset(&c->line, 0, sizeof c->line);
    config_copy_trainer(c, &zero);
    c->log_level = LOGL_ERROR;
    memset(c->cameras, 0, sizeof c->cameras);
    c->ncameras = 0;
}

static bool unknown_keys_differ(const struct config *a, const struct config *b)
{
    struct config *x = malloc(sizeof *x), *y = malloc(sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return true; /* cannot tell: say a restart may be needed */
    }
    memcpy(x, a, sizeof *x);
    memcpy(y, b, sizeof *y);
    clear_known(x);
    clear_known(y);
    bool differ = memcmp(x, y, sizeof *x) != 0;
    free(x);
    free(y);
    return differ;
}

void reload_diff(const struct config *running, const struct config *next, struct reload_diff *d)
{
    const struct config *a = running, *b = next;
    memset(d, 0, sizeof *d);
    d->log_level = a->log_level != b->log_level;
    d->trainer = !config_trainer_equal(a, b);
    d->token = strcmp(a->http_token, b->http_token) != 0 ||
               strcmp(a->http_token_file, b->http_token_file) != 0;
    d->jpeg_quality = a->jpeg_quality != b->jpeg_quality;
    char *r = d->restart;
    size_t rs = sizeof d->restart;
    if (strcmp(a->http_host, b->http_host) != 0 || a->http_port != b->http_port)
        note(r, rs, "[http] listen");
    if (a->http_threads != b->http_threads) note(r, rs, "[http] threads");
    if (a->http_max_connections != b->http_max_connections) note(r, rs, "[http] max_connections");
    if (a->http_timeout_s != b->http_timeout_s) note(r, rs, "[http] timeout");
    if (a->http_max_upload != b->http_max_upload) note(r, rs, "[http] max_upload");
    if (strcmp(a->http_tls_cert, b->http_tls_cert) != 0 ||
        strcmp(a->http_tls_key, b->http_tls_key) != 0)
        note(r, rs, "[http] tls_cert/tls_key");
    if (strcmp(a->store_path, b->store_path) != 0) note(r, rs, "[store] path");
    if (a->batch_frames != b->batch_frames) note(r, rs, "[store] batch_frames");
    if (a->batch_ms != b->batch_ms) note(r, rs, "[store] batch_ms");
    if (a->store_max_size_mb != b->store_max_size_mb ||
        a->store_min_free_mb != b->store_min_free_mb ||
        a->store_flagged_days != b->store_flagged_days)
        note(r, rs, "[store] max_size_mb/min_free_mb/flagged_days");
    if (a->queue_size != b->queue_size) note(r, rs, "[pipeline] queue_size");
    if (a->max_score_lag_s != b->max_score_lag_s) note(r, rs, "[pipeline] max_score_lag_s");
    if (memcmp(&a->line, &b->line, sizeof a->line) != 0)
        note(r, rs, "[results]/[mqtt]/[plc]/[webhook.*]");
    if (unknown_keys_differ(a, b)) note(r, rs, "other keys");
}

const char *reload_refusal(const struct config *running, const struct config *next)
{
    if (!config_is_loopback(running->http_host) && next->http_token[0] == '\0')
        return "[http] token (or token_file) cannot be removed while listening on a non-loopback "
               "address (change listen and restart)";
    return NULL;
}

/* Moves next's cameras into running (running's are freed; next has none left). */
static void take_cameras(struct config *running, struct config *next)
{
    for (size_t i = 0; i < running->ncameras; i++) config_camera_free(&running->cameras[i]);
    memcpy(running->cameras, next->cameras, sizeof running->cameras);
    running->ncameras = next->ncameras;
    memset(next->cameras, 0, sizeof next->cameras);
    next->ncameras = 0;
}

/* Applies the live part of next; returns the list of what changed in applied. */
static int apply(struct config *running, struct config *next, const struct reload_diff *d,
                 const struct reload_targets *t, char *applied, size_t appliedsz)
{
    if (d->log_level) {
        log_set_level(next->log_level);
        running->log_level = next->log_level;
        note(applied, appliedsz, "[log] level");
    }
    if (d->trainer) {
        trainer_set_policy(t->trainer, next);
        if (t->scorer) scorer_configure(t->scorer, next);
        config_copy_trainer(running, next);
        note(applied, appliedsz, "[trainer]");
    }
    if (d->token) {
        http_set_token(t->http, next->http_token);
        memcpy(running->http_token, next->http_token, sizeof running->http_token);
        memcpy(running->http_token_file, next->http_token_file, sizeof running->http_token_file);
        note(applied, appliedsz, "[http] token");
    }
    if (d->jpeg_quality) note(applied, appliedsz, "[store] jpeg_quality");
    running->jpeg_quality = next->jpeg_quality;
    int changed = pipeline_reconfigure(t->pipeline, next);
    if (changed > 0) note(applied, appliedsz, "cameras");
    take_cameras(running, next);
    return changed < 0 ? -1 : 0;
}

int reload_config(struct config *running, const char *path, const struct reload_targets *t,
                  char *summary, size_t summarysz)
{
    struct config *next = malloc(sizeof *next);
    char err[600];
    if (!next) {
        log_error("reload refused: out of memory; the running configuration stays");
        snprintf(summary, summarysz, "reload refused: out of memory");
        return -1;
    }
    if (config_load(next, path, err, sizeof err) < 0) {
        log_error("reload refused: %s; the running configuration stays", err);
        snprintf(summary, summarysz, "reload refused: %s", err);
        free(next);
        return -1;
    }
    if (config_load_token(next, err, sizeof err) < 0) {
        log_error("reload refused: %s; the running configuration stays", err);
        snprintf(summary, summarysz, "reload refused: %s", err);
        config_free(next);
        free(next);
        return -1;
    }
    const char *refusal = reload_refusal(running, next);
    if (refusal) {
        log_error("reload refused: %s: %s; the running configuration stays", next->path, refusal);
        snprintf(summary, summarysz, "reload refused: %s", refusal);
        config_free(next);
        free(next);
        return -1;
    }
    struct reload_diff d;
    reload_diff(running, next, &d);
    char applied[256] = "";
    int rc = apply(running, next, &d, t, applied, sizeof applied);
    log_info("reloaded %s: %s%s", next->path, applied[0] ? "applied " : "no change to apply",
             applied);
    if (d.restart[0])
        log_warn("%s changed, which needs a restart of inspectd; running with the values loaded "
                 "at start",
                 d.restart);
    snprintf(summary, summarysz, "reloaded: %s%s%s%s", applied[0] ? applied : "no change",
             rc < 0 ? " (a camera failed to start)" : "",
             d.restart[0] ? "; restart needed for " : "", d.restart);
    config_free(next);
    free(next);
    return 0;
}
