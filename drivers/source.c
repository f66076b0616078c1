/* source.c — the driver registry and the dispatch behind source.h, plus the parameter parsing
 * and fps pacing that every driver shares (driver.h). */
#include "array.h"
#include "clock.h"
#include "driver.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_TAG "source"
#include "log.h"

struct source {
    const struct source_driver *drv;
    void *state;
    char name[64];
};

static const struct source_driver *const drivers[] = {
    &synthetic_driver,
    &folder_driver,
    &aravis_driver,
#ifdef INSPECTD_WITH_LIBCAMERA
    &libcamera_driver,
#endif
};
#define NDRIVERS ARRAY_LEN(drivers)

const char *const *source_drivers(void)
{
    static const char *names[NDRIVERS + 1];
    for (size_t i = 0; i < NDRIVERS; i++) names[i] = drivers[i]->name;
    names[NDRIVERS] = NULL;
    return names;
}

static const struct source_driver *find_driver(const char *name)
{
    for (size_t i = 0; i < NDRIVERS; i++)
        if (name && strcmp(drivers[i]->name, name) == 0) return drivers[i];
    return NULL;
}

bool source_lists_cameras(const char *driver)
{
    const struct source_driver *d = find_driver(driver);
    return d && d->list;
}

int source_list_cameras(const char *driver, camera_list_fn fn, void *ctx, char *err, size_t errsz)
{
    const struct source_driver *d = find_driver(driver);
    if (!d || !d->list)
        return driver_fail(err, errsz, "driver '%s' lists no cameras", driver ? driver : "(none)");
    return d->list(fn, ctx, err, errsz);
}

int source_check_param(const char *driver, const char *key, const char *value, char *err,
                       size_t errsz)
{
    const struct source_driver *d = find_driver(driver);
    if (!d) return driver_fail(err, errsz, "unknown driver '%s'", driver ? driver : "(none)");
    if (!key || !value) return driver_fail(err, errsz, "missing key or value");
    return d->check_param(key, value, err, errsz);
}

struct source *source_open(const char *name, const char *driver, const struct source_param *params,
                           size_t nparams, int *status, char *err, size_t errsz)
{
    int ignored;
    if (!status) status = &ignored;
    *status = SOURCE_EINVAL;
    const struct source_driver *d = find_driver(driver);
    if (!d) {
        driver_fail(err, errsz, "unknown driver '%s'", driver ? driver : "(none)");
        return NULL;
    }
    for (size_t i = 0; i < nparams; i++) {
        char why[192];
        if (source_check_param(driver, params[i].key, params[i].value, why, sizeof why) != 0) {
            driver_fail(err, errsz, "%s: %s", params[i].key ? params[i].key : "(null)", why);
            return NULL;
        }
    }
    struct source *s = calloc(1, sizeof *s);
    if (!s) {
        *status = SOURCE_ENOMEM;
        driver_fail(err, errsz, "out of memory");
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name ? name : driver);
    s->drv = d;
    s->state = d->open(s->name, params, nparams, status, err, errsz);
    if (!s->state) {
        free(s);
        return NULL;
    }
    *status = SOURCE_OK;
    log_info("%s: opened %s source", s->name, d->name);
    return s;
}

int source_next(struct source *s, struct frame *f, int timeout_ms)
{
    assert(s && f);
    memset(f, 0, sizeof *f);
    int rc = s->drv->next(s->state, f, timeout_ms);
    assert(rc != SOURCE_OK || f->data);
    return rc;
}

void source_close(struct source *s)
{
    if (!s) return;
    s->drv->close(s->state);
    log_info("%s: closed", s->name);
    free(s);
}

const char *source_strerror(int status)
{
    switch (status) {
    case SOURCE_OK:
        return "ok";
    case SOURCE_TIMEOUT:
        return "timeout";
    case SOURCE_END:
        return "end of source";
    case SOURCE_EINVAL:
        return "invalid parameter";
    case SOURCE_ENODEV:
        return "no such device or directory";
    case SOURCE_ELOST:
        return "device lost";
    case SOURCE_EIO:
        return "read error";
    case SOURCE_ENOMEM:
        return "out of memory";
    default:
        return "unknown source status";
    }
}

struct frame_origin {
    char *camera, *dir, *name, *move_to; /* move_to NULL: delete */
};

static void origin_free(struct frame_origin *o)
{
    if (!o) return;
    free(o->camera), free(o->dir), free(o->name), free(o->move_to);
    free(o);
}

void frame_free(struct frame *f)
{
    if (!f) return;
    free(f->data);
    origin_free(f->origin);
    memset(f, 0, sizeof *f);
}

struct frame_origin *frame_origin_file(const char *camera, const char *dir, const char *name,
                                       const char *move_to)
{
    struct frame_origin *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->camera = strdup(camera), o->dir = strdup(dir), o->name = strdup(name);
    o->move_to = move_to ? strdup(move_to) : NULL;
    if (!o->camera || !o->dir || !o->name || (move_to && !o->move_to)) {
        origin_free(o);
        return NULL;
    }
    return o;
}

/* Moves dir/name into move_to without replacing anything there. Returns 0 or -1 (errno set). */
static int move_without_replacing(const struct frame_origin *o, const char *from)
{
    const char *dot = strrchr(o->name, '.');
    int stem = (int)(dot ? (size_t)(dot - o->name) : strlen(o->name));
    for (int k = 0; k < 1000; k++) {
        char to[PATH_MAX];
        if (k == 0)
            snprintf(to, sizeof to, "%s/%s", o->move_to, o->name);
        else
            snprintf(to, sizeof to, "%s/%.*s-%d%s", o->move_to, stem, o->name, k, dot ? dot : "");
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    return -1;
}

void frame_stored(struct frame *f)
{
    struct frame_origin *o = f->origin;
    if (!o) return;
    char from[PATH_MAX];
    snprintf(from, sizeof from, "%s/%s", o->dir, o->name);
    if (o->move_to ? move_without_replacing(o, from) : unlink(from))
        log_warn("%s: stored %s but cannot %s it: %s", o->camera, from,
                 o->move_to ? "move" : "delete", strerror(errno));
    origin_free(o);
    f->origin = NULL;
}

int driver_fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void driver_pacer_start(struct driver_pacer *p, double fps)
{
    p->period_ns = fps > 0 ? (int64_t)llround(1e9 / fps) : 0;
    p->next_ns = clock_mono_ns();
}

static void sleep_until_ns(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) continue;
}

int driver_pacer_wait(struct driver_pacer *p, int timeout_ms)
{
    if (p->period_ns == 0) return SOURCE_OK;
    int64_t now = clock_mono_ns();
    if (timeout_ms >= 0 && p->next_ns > now + (int64_t)timeout_ms * 1000000) {
        sleep_until_ns(now + (int64_t)timeout_ms * 1000000);
        return SOURCE_TIMEOUT;
    }
    sleep_until_ns(p->next_ns);
    p->next_ns += p->period_ns;
    if (p->next_ns < now) p->next_ns = now + p->period_ns;
    return SOURCE_OK;
}
