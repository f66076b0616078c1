/* pipeline.c — capture threads (open, read, encode, enqueue, reopen with back-off) and the wiring
 * of queue and writer around them. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "pipeline.h"
#include "queue.h"
#include "writer.h"

#define LOG_TAG "pipeline"
#include "log.h"

#define NEXT_TIMEOUT_MS  200 /* how often a capture thread looks at the stop flag */
#define STALLED_AFTER_NS 5000000000LL
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   30000

struct capture {
    struct pipeline *p;
    size_t index;
    const struct config_camera *cfg;
    pthread_t thread;
    bool started;
    struct source *src;

    pthread_mutex_t lock; /* guards the fields below */
    enum camera_state state;
    char last_error[256];
    double fps;
    int64_t last_frame_us;

    /* capture thread only */
    int64_t last_frame_ns;
    int64_t window_start_ns;
    uint64_t window_frames;
    char encode_error[256];
};

struct pipeline {
    const struct config *cfg;
    struct frame_queue *queue;
    struct writer *writer;
    struct metrics_histogram commit_latency;
    int64_t camera_ids[CONFIG_MAX_CAMERAS];
    struct metrics_camera counters[CONFIG_MAX_CAMERAS];
    struct capture captures[CONFIG_MAX_CAMERAS];
    size_t ncameras;

    atomic_bool stopping;
    bool stopped; /* threads joined (owner thread only) */
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* CLOCK_MONOTONIC; signalled when stopping */
};

static const double commit_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1,    2.5};

const char *pipeline_state_name(enum camera_state s)
{
    static const char *const names[] = {"starting", "streaming", "stalled", "error", "ended"};
    assert(s >= CAMERA_STARTING && s <= CAMERA_ENDED);
    return names[s];
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Records a state; logs only when the state or its reason changes. */
static void set_state(struct capture *c, enum camera_state state, const char *why)
{
    pthread_mutex_lock(&c->lock);
    bool changed = c->state != state || strcmp(c->last_error, why) != 0;
    c->state = state;
    snprintf(c->last_error, sizeof c->last_error, "%s", why);
    pthread_mutex_unlock(&c->lock);
    if (!changed) return;
    const char *name = c->cfg->name;
    switch (state) {
    case CAMERA_STREAMING:
        log_info("camera %s: streaming", name);
        break;
    case CAMERA_STALLED:
        log_warn("camera %s: no frame for 5 s", name);
        break;
    case CAMERA_ERROR:
        log_warn("camera %s: %s; retrying with back-off", name, why);
        break;
    case CAMERA_ENDED:
        log_info("camera %s: %s", name, why);
        break;
    case CAMERA_STARTING:
        log_info("camera %s: opened again, waiting for frames", name);
        break;
    }
}

/* Sleeps up to ms; returns early (true) when the pipeline is stopping. */
static bool sleep_or_stop(struct pipeline *p, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)ms * 1000000;
    ts = (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    pthread_mutex_lock(&p->stop_lock);
    while (!atomic_load(&p->stopping))
        if (pthread_cond_timedwait(&p->stop_cond, &p->stop_lock, &ts) != 0) break;
    pthread_mutex_unlock(&p->stop_lock);
    return atomic_load(&p->stopping);
}

/* Replaces a raw frame's pixels by their JPEG encoding. Returns 0, or -1 with a reason. */
static int encode_raw(struct frame *f, int quality, char *why, size_t whysz)
{
    struct image im = {.width = f->width,
                       .height = f->height,
                       .channels = f->format == FRAME_MONO8 ? 1 : 3,
                       .stride = f->stride,
                       .data = f->data};
    uint8_t *jpeg;
    size_t len;
    int rc = image_encode_jpeg(&im, quality, &jpeg, &len, why, whysz);
    if (rc != IMAGE_OK) return -1;
    free(f->data);
    f->data = jpeg;
    f->size = len;
    f->stride = 0;
    f->format = FRAME_JPEG;
    return 0;
}

/* Makes a frame storable: encoded, with its size known. Returns 0, or -1 with a reason. */
static int prepare_frame(struct frame *f, int quality, char *why, size_t whysz)
{
    if (f->format == FRAME_MONO8 || f->format == FRAME_RGB8) {
        if (f->width <= 0 || f->height <= 0 || !f->data)
            return snprintf(why, whysz, "raw frame without pixels"), -1;
        return encode_raw(f, quality, why, whysz);
    }
    if (f->width > 0 && f->height > 0) return 0;
    int rc = image_probe(f->data, f->size, &f->width, &f->height);
    if (rc != IMAGE_OK) return snprintf(why, whysz, "%s", image_strerror(rc)), -1;
    return 0;
}

static void update_fps(struct capture *c, int64_t now_ns)
{
    c->window_frames++;
    int64_t dt = now_ns - c->window_start_ns;
    if (dt < 1000000000) return;
    pthread_mutex_lock(&c->lock);
    c->fps = (double)c->window_frames * 1e9 / (double)dt;
    pthread_mutex_unlock(&c->lock);
    c->window_start_ns = now_ns;
    c->window_frames = 0;
}

static void deliver(struct capture *c, struct frame *f)
{
    struct pipeline *p = c->p;
    atomic_fetch_add(&p->counters[c->index].captured, 1);
    int64_t now = queue_now_ns();
    c->last_frame_ns = now;
    update_fps(c, now);
    pthread_mutex_lock(&c->lock);
    c->last_frame_us = wall_us();
    pthread_mutex_unlock(&c->lock);
    set_state(c, CAMERA_STREAMING, "");

    char why[256];
    if (prepare_frame(f, p->cfg->jpeg_quality, why, sizeof why) < 0) {
        atomic_fetch_add(&p->counters[c->index].failed, 1);
        if (strcmp(why, c->encode_error) != 0)
            log_warn("camera %s: frame %llu not stored: %s", c->cfg->name,
                     (unsigned long long)f->seq, why);
        snprintf(c->encode_error, sizeof c->encode_error, "%s", why);
        frame_free(f);
        return;
    }
    c->encode_error[0] = '\0';
    struct queue_item item = {.camera = (int)c->index, .frame = *f};
    int dropped = queue_push(p->queue, &item);
    if (dropped >= 0) atomic_fetch_add(&p->counters[dropped].dropped, 1);
    if (dropped == -2) atomic_fetch_add(&p->counters[c->index].failed, 1);
    f->data = NULL;
}

/* Opens the source, backing off after failures. Returns false when stopping or when the driver
 * refuses the parameters (retrying cannot help). */
static bool open_source(struct capture *c, int *backoff_ms)
{
    struct pipeline *p = c->p;
    while (!atomic_load(&p->stopping)) {
        char why[256] = "";
        int status = 0;
        c->src = source_open(c->cfg->name, c->cfg->driver, c->cfg->params, c->cfg->nparams, &status,
                             why, sizeof why);
        if (c->src) {
            set_state(c, CAMERA_STARTING, "");
            c->last_frame_ns = queue_now_ns();
            c->window_start_ns = c->last_frame_ns;
            c->window_frames = 0;
            return true;
        }
        atomic_fetch_add(&p->counters[c->index].source_errors, 1);
        set_state(c, CAMERA_ERROR, why);
        if (status == SOURCE_EINVAL) {
            log_error("camera %s: the driver refuses its parameters; not retrying", c->cfg->name);
            return false;
        }
        if (sleep_or_stop(p, *backoff_ms)) return false;
        *backoff_ms = *backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff_ms * 2;
    }
    return false;
}

static void *capture_main(void *arg)
{
    struct capture *c = arg;
    struct pipeline *p = c->p;
    int backoff_ms = BACKOFF_FIRST_MS;
    while (!atomic_load(&p->stopping)) {
        if (!c->src && !open_source(c, &backoff_ms)) break;
        struct frame f = {0};
        int rc = source_next(c->src, &f, NEXT_TIMEOUT_MS);
        if (rc == SOURCE_OK) {
            backoff_ms = BACKOFF_FIRST_MS;
            deliver(c, &f);
        } else if (rc == SOURCE_TIMEOUT) {
            if (queue_now_ns() - c->last_frame_ns > STALLED_AFTER_NS)
                set_state(c, CAMERA_STALLED, "no frame for 5 s");
        } else if (rc == SOURCE_END) {
            set_state(c, CAMERA_ENDED, "the source has no more frames");
            break;
        } else {
            atomic_fetch_add(&p->counters[c->index].source_errors, 1);
            set_state(c, CAMERA_ERROR, source_strerror(rc));
            source_close(c->src);
            c->src = NULL;
            if (sleep_or_stop(p, backoff_ms)) break;
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
        }
    }
    source_close(c->src);
    c->src = NULL;
    return NULL;
}

static int register_cameras(struct pipeline *p, struct store *store, char *err, size_t errsz)
{
    for (size_t i = 0; i < p->ncameras; i++) {
        const struct config_camera *cam = &p->cfg->cameras[i];
        if (store_camera(store, cam->name, cam->driver, &p->camera_ids[i]) < 0) {
            snprintf(err, errsz, "camera %s: %s", cam->name, store_errmsg(store));
            return -1;
        }
    }
    return 0;
}

static int start_captures(struct pipeline *p, char *err, size_t errsz)
{
    for (size_t i = 0; i < p->ncameras; i++) {
        struct capture *c = &p->captures[i];
        int rc = pthread_create(&c->thread, NULL, capture_main, c);
        if (rc != 0) {
            snprintf(err, errsz, "camera %s: cannot start thread: %s", c->cfg->name, strerror(rc));
            return -1;
        }
        c->started = true;
    }
    return 0;
}

static void init_state(struct pipeline *p, const struct config *cfg)
{
    p->cfg = cfg;
    p->ncameras = cfg->ncameras;
    metrics_histogram_init(&p->commit_latency, commit_bounds,
                           sizeof commit_bounds / sizeof *commit_bounds);
    pthread_mutex_init(&p->stop_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < p->ncameras; i++) {
        struct capture *c = &p->captures[i];
        c->p = p;
        c->index = i;
        c->cfg = &cfg->cameras[i];
        pthread_mutex_init(&c->lock, NULL);
    }
}

struct pipeline *pipeline_start(const struct config *cfg, struct store *store, char *err,
                                size_t errsz)
{
    assert(cfg->ncameras >= 1 && cfg->ncameras <= CONFIG_MAX_CAMERAS);
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errsz, "pipeline: out of memory");
        return NULL;
    }
    init_state(p, cfg);
    if (register_cameras(p, store, err, errsz) < 0) goto fail;
    if (!(p->queue = queue_create((size_t)cfg->queue_size))) {
        snprintf(err, errsz, "pipeline: out of memory");
        goto fail;
    }
    struct writer_config wc = {.store = store,
                               .queue = p->queue,
                               .camera_ids = p->camera_ids,
                               .counters = p->counters,
                               .ncameras = p->ncameras,
                               .batch_frames = cfg->batch_frames,
                               .batch_ms = cfg->batch_ms,
                               .commit_latency = &p->commit_latency};
    if (!(p->writer = writer_start(&wc, err, errsz))) goto fail;
    if (start_captures(p, err, errsz) < 0) goto fail;
    return p;
fail:
    pipeline_free(p);
    return NULL;
}

void pipeline_stop(struct pipeline *p)
{
    if (!p || p->stopped) return;
    pthread_mutex_lock(&p->stop_lock);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->stop_cond);
    pthread_mutex_unlock(&p->stop_lock);
    for (size_t i = 0; i < p->ncameras; i++)
        if (p->captures[i].started) pthread_join(p->captures[i].thread, NULL);
    writer_stop(p->writer); /* closes the queue, drains it, commits */
    p->writer = NULL;
    p->stopped = true;
}

void pipeline_free(struct pipeline *p)
{
    if (!p) return;
    pipeline_stop(p);
    queue_destroy(p->queue);
    for (size_t i = 0; i < p->ncameras; i++) pthread_mutex_destroy(&p->captures[i].lock);
    pthread_mutex_destroy(&p->stop_lock);
    pthread_cond_destroy(&p->stop_cond);
    free(p);
}

size_t pipeline_ncameras(const struct pipeline *p)
{
    return p->ncameras;
}

void pipeline_camera_status(struct pipeline *p, size_t i, struct pipeline_camera_status *out)
{
    assert(i < p->ncameras);
    struct capture *c = &p->captures[i];
    struct metrics_camera *m = &p->counters[i];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->cfg->name);
    snprintf(out->driver, sizeof out->driver, "%s", c->cfg->driver);
    pthread_mutex_lock(&c->lock);
    out->state = c->state;
    out->fps = c->fps;
    out->last_frame_us = c->last_frame_us;
    snprintf(out->last_error, sizeof out->last_error, "%s", c->last_error);
    pthread_mutex_unlock(&c->lock);
    out->captured = atomic_load(&m->captured);
    out->stored = atomic_load(&m->stored);
    out->dropped = atomic_load(&m->dropped);
    out->failed = atomic_load(&m->failed);
    out->source_errors = atomic_load(&m->source_errors);
}

size_t pipeline_queue_depth(struct pipeline *p)
{
    return queue_depth(p->queue);
}

size_t pipeline_queue_capacity(const struct pipeline *p)
{
    return queue_capacity(p->queue);
}

bool pipeline_ready(struct pipeline *p)
{
    for (size_t i = 0; i < p->ncameras; i++) {
        struct pipeline_camera_status st;
        pipeline_camera_status(p, i, &st);
        if (st.captured == 0 || st.state == CAMERA_ERROR || st.state == CAMERA_STALLED)
            return false;
    }
    return true;
}

struct metrics_histogram *pipeline_commit_latency(struct pipeline *p)
{
    return &p->commit_latency;
}
