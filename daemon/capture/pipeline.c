/* pipeline.c — capture threads (open, read, encode, enqueue, reopen with back-off), the wiring of
 * queue and writer around them, and the camera table a reload changes.
 *
 * Invariants: a capture's `cam` and `run` change only while its thread is not running, under the
 * table lock for writing; order[0..ncameras) lists the slots of the running cameras; a slot index
 * is what the queue carries, so camera_ids[slot] never changes while frames of another camera
 * from that slot could still be queued. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "clock.h"
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
#define CACHE_FRAMES     256 /* images held for the scorer while they are not stored */
#define CACHE_BYTES      (64 << 20)

struct capture {
    struct pipeline *p;
    size_t index;             /* slot */
    struct config_camera cam; /* own copy of the config section */
    uint64_t run;             /* changes at each (re)start */
    pthread_t thread;
    bool started;     /* a thread to join (owner thread only) */
    bool used;        /* the slot held a camera once (owner thread only) */
    atomic_bool stop; /* stop this camera only (a reload) */
    atomic_uint_fast64_t polls;
    struct source *src;

    pthread_mutex_t lock; /* guards the fields below */
    enum camera_state state;
    char last_error[256];
    double fps;
    int64_t last_frame_us;
    char next_part_id[STORE_PART_ID_MAX + 1]; /* rides on the next frame; "" when none */

    /* capture thread only */
    int64_t last_frame_ns;
    int64_t window_start_ns;
    uint64_t window_frames;
    char encode_error[256];
};

struct pipeline {
    atomic_int jpeg_quality;
    struct frame_queue *queue;
    struct writer *writer;
    struct retention *retention;
    struct image_cache *images;
    struct writer_status writer_status;
    struct metrics_histogram commit_latency;
    int64_t camera_ids[CONFIG_MAX_CAMERAS];
    /* each slot's recipe in force (a frame takes it when captured); the name under table_lock */
    _Atomic int64_t recipe_ids[CONFIG_MAX_CAMERAS];
    char recipes[CONFIG_MAX_CAMERAS][CONFIG_NAME_MAX];
    /* each slot's region in force (a frame takes it when captured; 0: the whole frame) */
    _Atomic int64_t region_ids[CONFIG_MAX_CAMERAS];
    struct metrics_camera counters[CONFIG_MAX_CAMERAS];
    struct capture captures[CONFIG_MAX_CAMERAS];

    pthread_rwlock_t table_lock; /* guards order, ncameras and the captures' cam and run */
    size_t order[CONFIG_MAX_CAMERAS];
    size_t ncameras;
    uint64_t last_run;

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

/* Records a state; logs only when the state or its reason changes. */
static void set_state(struct capture *c, enum camera_state state, const char *why)
{
    pthread_mutex_lock(&c->lock);
    bool changed = c->state != state || strcmp(c->last_error, why) != 0;
    c->state = state;
    snprintf(c->last_error, sizeof c->last_error, "%s", why);
    pthread_mutex_unlock(&c->lock);
    if (!changed) return;
    const char *name = c->cam.name;
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

static bool stopping(struct capture *c)
{
    return atomic_load(&c->p->stopping) || atomic_load(&c->stop);
}

/* Sleeps up to ms; returns early (true) when the pipeline or this camera is stopping. */
static bool sleep_or_stop(struct capture *c, int ms)
{
    struct pipeline *p = c->p;
    struct timespec ts = clock_timespec(clock_mono_ns() + (int64_t)ms * 1000000);
    pthread_mutex_lock(&p->stop_lock);
    while (!stopping(c))
        if (pthread_cond_timedwait(&p->stop_cond, &p->stop_lock, &ts) != 0) break;
    pthread_mutex_unlock(&p->stop_lock);
    return stopping(c);
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
    int64_t now = clock_mono_ns();
    c->last_frame_ns = now;
    update_fps(c, now);
    struct queue_item item = {.camera = (int)c->index};
    pthread_mutex_lock(&c->lock);
    c->last_frame_us = clock_wall_us();
    memcpy(item.part_id, c->next_part_id, sizeof item.part_id);
    c->next_part_id[0] = '\0';
    pthread_mutex_unlock(&c->lock);
    set_state(c, CAMERA_STREAMING, "");

    char why[256];
    if (prepare_frame(f, atomic_load(&p->jpeg_quality), why, sizeof why) < 0) {
        atomic_fetch_add(&p->counters[c->index].failed, 1);
        if (strcmp(why, c->encode_error) != 0)
            log_warn("camera %s: frame %llu not stored: %s", c->cam.name,
                     (unsigned long long)f->seq, why);
        snprintf(c->encode_error, sizeof c->encode_error, "%s", why);
        frame_free(f);
        return;
    }
    c->encode_error[0] = '\0';
    item.frame = *f;
    item.recipe_id = atomic_load(&p->recipe_ids[c->index]);
    item.region_id = atomic_load(&p->region_ids[c->index]);
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
    while (!stopping(c)) {
        char why[256] = "";
        int status = 0;
        c->src = source_open(c->cam.name, c->cam.driver, c->cam.params, c->cam.nparams, &status,
                             why, sizeof why);
        if (c->src) {
            set_state(c, CAMERA_STARTING, "");
            c->last_frame_ns = clock_mono_ns();
            c->window_start_ns = c->last_frame_ns;
            c->window_frames = 0;
            return true;
        }
        atomic_fetch_add(&p->counters[c->index].source_errors, 1);
        set_state(c, CAMERA_ERROR, why);
        if (status == SOURCE_EINVAL) {
            log_error("camera %s: the driver refuses its parameters; not retrying", c->cam.name);
            return false;
        }
        if (sleep_or_stop(c, *backoff_ms)) return false;
        *backoff_ms = *backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff_ms * 2;
    }
    return false;
}

static void *capture_main(void *arg)
{
    struct capture *c = arg;
    struct pipeline *p = c->p;
    int backoff_ms = BACKOFF_FIRST_MS;
    while (!stopping(c)) {
        if (!c->src && !open_source(c, &backoff_ms)) break;
        struct frame f = {0};
        int rc = source_next(c->src, &f, NEXT_TIMEOUT_MS);
        atomic_fetch_add(&c->polls, 1);
        if (rc == SOURCE_OK) {
            backoff_ms = BACKOFF_FIRST_MS;
            deliver(c, &f);
        } else if (rc == SOURCE_TIMEOUT) {
            if (clock_mono_ns() - c->last_frame_ns > STALLED_AFTER_NS)
                set_state(c, CAMERA_STALLED, "no frame for 5 s");
        } else if (rc == SOURCE_END) {
            set_state(c, CAMERA_ENDED, "the source has no more frames");
            break;
        } else {
            atomic_fetch_add(&p->counters[c->index].source_errors, 1);
            set_state(c, CAMERA_ERROR, source_strerror(rc));
            source_close(c->src);
            c->src = NULL;
            if (sleep_or_stop(c, backoff_ms)) break;
            backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
        }
    }
    source_close(c->src);
    c->src = NULL;
    return NULL;
}

static int start_capture(struct pipeline *p, struct capture *c, char *err, size_t errsz)
{
    atomic_store(&c->stop, false);
    int rc = pthread_create(&c->thread, NULL, capture_main, c);
    if (rc != 0) {
        snprintf(err, errsz, "camera %s: cannot start thread: %s", c->cam.name, strerror(rc));
        return -1;
    }
    c->started = true;
    return 0;
}

/* Asks the captures marked in `which` to stop, then joins them. */
static void stop_captures(struct pipeline *p, const bool *which)
{
    pthread_mutex_lock(&p->stop_lock);
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++)
        if (which[i]) atomic_store(&p->captures[i].stop, true);
    pthread_cond_broadcast(&p->stop_cond);
    pthread_mutex_unlock(&p->stop_lock);
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++) {
        struct capture *c = &p->captures[i];
        if (!which[i] || !c->started) continue;
        pthread_join(c->thread, NULL);
        c->started = false;
    }
}

/* Gives slot c a (new) camera: its config copy, a new run, a fresh state. The thread is not
 * running. Returns 0, or -1 when out of memory. */
static int assign_camera(struct pipeline *p, struct capture *c, const struct config_camera *cam)
{
    struct config_camera copy;
    if (config_camera_copy(&copy, cam) < 0) return -1;
    pthread_rwlock_wrlock(&p->table_lock);
    config_camera_free(&c->cam);
    c->cam = copy;
    c->run = ++p->last_run;
    c->used = true;
    pthread_rwlock_unlock(&p->table_lock);
    pthread_mutex_lock(&c->lock);
    c->state = CAMERA_STARTING;
    c->last_error[0] = '\0';
    c->fps = 0;
    c->last_frame_us = 0;
    pthread_mutex_unlock(&c->lock);
    c->encode_error[0] = '\0';
    return 0;
}

static void init_state(struct pipeline *p, const struct config *cfg)
{
    atomic_store(&p->jpeg_quality, cfg->jpeg_quality);
    metrics_histogram_init(&p->commit_latency, commit_bounds, ARRAY_LEN(commit_bounds));
    pthread_mutex_init(&p->stop_lock, NULL);
    pthread_rwlock_init(&p->table_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++) {
        struct capture *c = &p->captures[i];
        c->p = p;
        c->index = i;
        pthread_mutex_init(&c->lock, NULL);
    }
}

/* The region row of camera cam (0 when it has none) into *id: through store before the writer
 * runs, else through the writer. Returns 0, or -1 with the reason in err. */
static int camera_region(struct pipeline *p, const struct config_camera *cam, struct store *store,
                         _Atomic int64_t *id, char *err, size_t errsz)
{
    if (!cam->roi[0] && !cam->mask[0]) {
        atomic_store(id, 0);
        return 0;
    }
    struct region r;
    uint8_t *mask = NULL;
    size_t len = 0;
    int64_t row = 0;
    char why[600] = "";
    int rc = config_camera_region(cam, &r, &mask, &len, why, sizeof why);
    const char *roi = cam->roi[0] ? cam->roi : NULL, *file = cam->mask[0] ? cam->mask : NULL;
    if (!rc && store)
        rc = store_region(store, roi, mask, len, file, &row) < 0
            ? snprintf(why, sizeof why, "region: %s", store_errmsg(store)),
        -1 : 0;
    else if (!rc)
        rc = writer_region(p->writer, roi, mask, len, file, &row, why, sizeof why);
    region_free(&r);
    free(mask);
    if (rc) return snprintf(err, errsz, "camera %s: %s", cam->name, why), -1;
    atomic_store(id, row);
    return 0;
}

/* The region in force for the camera in slot, from its next frame on. Returns 0, or -1 (logged;
 * the region before stays). */
static int apply_region(struct pipeline *p, size_t slot, const struct config_camera *cam)
{
    char err[700];
    int64_t before = atomic_load(&p->region_ids[slot]);
    if (camera_region(p, cam, NULL, &p->region_ids[slot], err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (atomic_load(&p->region_ids[slot]) != before)
        log_info("camera %s: roi %s, mask %s from the next frame", cam->name,
                 cam->roi[0] ? cam->roi : "(the whole frame)", cam->mask[0] ? cam->mask : "(none)");
    return 0;
}

/* Slots 0..n-1 get the configured cameras, registered in the store before the writer runs. */
static int assign_cameras(struct pipeline *p, const struct config *cfg, struct store *store,
                          char *err, size_t errsz)
{
    for (size_t i = 0; i < cfg->ncameras; i++) {
        const struct config_camera *cam = &cfg->cameras[i];
        int64_t recipe_id;
        if (store_camera(store, cam->name, cam->driver, &p->camera_ids[i]) < 0 ||
            store_camera_recipe(store, p->camera_ids[i], cam->recipe, p->recipes[i],
                                sizeof p->recipes[i], &recipe_id) < 0) {
            snprintf(err, errsz, "camera %s: %s", cam->name, store_errmsg(store));
            return -1;
        }
        atomic_store(&p->recipe_ids[i], recipe_id);
        if (camera_region(p, cam, store, &p->region_ids[i], err, errsz) < 0) return -1;
        if (strcmp(p->recipes[i], cam->recipe) != 0)
            log_info("camera %s: recipe %s (switched over the API; the file says %s)", cam->name,
                     p->recipes[i], cam->recipe);
        if (assign_camera(p, &p->captures[i], cam) < 0) {
            snprintf(err, errsz, "pipeline: out of memory");
            return -1;
        }
        p->order[i] = i;
    }
    p->ncameras = cfg->ncameras;
    return 0;
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
    if (assign_cameras(p, cfg, store, err, errsz) < 0) goto fail;
    if (!(p->queue = queue_create((size_t)cfg->queue_size)) ||
        !(p->images = image_cache_create(CACHE_FRAMES, CACHE_BYTES))) {
        snprintf(err, errsz, "pipeline: out of memory");
        goto fail;
    }
    struct retention_config rc = {.max_bytes = (int64_t)cfg->store_max_size_mb << 20,
                                  .min_free_bytes = (int64_t)cfg->store_min_free_mb << 20,
                                  .flagged_days = cfg->store_flagged_days};
    if (!(p->retention = retention_create(&rc, store, err, errsz))) goto fail;
    struct writer_config wc = {.store = store,
                               .queue = p->queue,
                               .camera_ids = p->camera_ids,
                               .counters = p->counters,
                               .ncameras = CONFIG_MAX_CAMERAS,
                               .batch_frames = cfg->batch_frames,
                               .batch_ms = cfg->batch_ms,
                               .commit_latency = &p->commit_latency,
                               .retention = p->retention,
                               .images = p->images,
                               .status = &p->writer_status};
    if (!(p->writer = writer_start(&wc, err, errsz))) goto fail;
    for (size_t i = 0; i < p->ncameras; i++)
        if (start_capture(p, &p->captures[i], err, errsz) < 0) goto fail;
    return p;
fail:
    pipeline_free(p);
    return NULL;
}

/* ---- reload ---- */

static const struct config_camera *find_camera(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ncameras; i++)
        if (strcmp(cfg->cameras[i].name, name) == 0) return &cfg->cameras[i];
    return NULL;
}

/* The slot of the running camera called name, or -1 (owner thread: order is not changing). */
static int running_slot(struct pipeline *p, const char *name)
{
    for (size_t k = 0; k < p->ncameras; k++)
        if (strcmp(p->captures[p->order[k]].cam.name, name) == 0) return (int)p->order[k];
    return -1;
}

/* "driver, fps, width": what differs between two versions of a camera section. */
static void changed_keys(const struct config_camera *a, const struct config_camera *b, char *out,
                         size_t outsz)
{
    out[0] = '\0';
    if (strcmp(a->driver, b->driver) != 0) snprintf(out, outsz, "driver");
    for (int pass = 0; pass < 2; pass++) {
        const struct config_camera *x = pass ? b : a, *y = pass ? a : b;
        for (size_t k = 0; k < x->nparams; k++) {
            const char *key = x->params[k].key, *other = NULL;
            for (size_t j = 0; j < y->nparams; j++)
                if (strcmp(y->params[j].key, key) == 0) other = y->params[j].value;
            if (other ? pass == 0 && strcmp(other, x->params[k].value) != 0 : true)
                snprintf(out + strlen(out), outsz - strlen(out), "%s%s", out[0] ? ", " : "", key);
        }
    }
}

/* True when every frame a slot's camera delivered was stored, dropped or failed. */
static bool drained(struct pipeline *p, size_t slot)
{
    struct metrics_camera *m = &p->counters[slot];
    return atomic_load(&m->captured) ==
           atomic_load(&m->stored) + atomic_load(&m->dropped) + atomic_load(&m->failed);
}

/* A slot for a camera that is not running: the one it had before (same database row, frames
 * still queued are its own), else a slot never used, else a stopped and drained one (*reset: its
 * counters start again). -1 when none. */
static int free_slot(struct pipeline *p, const char *name, bool *reset)
{
    *reset = false;
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++)
        if (p->captures[i].used && strcmp(p->captures[i].cam.name, name) == 0) return (int)i;
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++)
        if (!p->captures[i].used) return (int)i;
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++) {
        if (p->captures[i].started || !drained(p, i)) continue;
        *reset = true;
        return (int)i;
    }
    return -1;
}

static void reset_counters(struct metrics_camera *m)
{
    atomic_store(&m->captured, 0);
    atomic_store(&m->stored, 0);
    atomic_store(&m->dropped, 0);
    atomic_store(&m->failed, 0);
    atomic_store(&m->source_errors, 0);
}

/* The recipe in force for the camera in slot, whose file says cam->recipe: from the next frame on.
 * Returns 0, or -1 (logged). */
static int apply_recipe(struct pipeline *p, size_t slot, const struct config_camera *cam)
{
    char err[512], recipe[CONFIG_NAME_MAX];
    int64_t id;
    if (writer_camera_recipe(p->writer, p->camera_ids[slot], cam->recipe, recipe, sizeof recipe,
                             &id, err, sizeof err) < 0) {
        log_error("camera %s: %s", cam->name, err);
        return -1;
    }
    pthread_rwlock_wrlock(&p->table_lock);
    bool changed = strcmp(p->recipes[slot], recipe) != 0;
    snprintf(p->recipes[slot], sizeof p->recipes[slot], "%s", recipe);
    pthread_rwlock_unlock(&p->table_lock);
    atomic_store(&p->recipe_ids[slot], id);
    if (changed) log_info("camera %s: recipe %s from the next frame", cam->name, recipe);
    return 0;
}

/* Registers and starts a camera in slot (stopped). Returns 0, or -1 (logged). */
static int start_in_slot(struct pipeline *p, size_t slot, const struct config_camera *cam,
                         bool reset)
{
    struct capture *c = &p->captures[slot];
    char err[512];
    int64_t id;
    if (writer_register_camera(p->writer, cam->name, cam->driver, &id, err, sizeof err) < 0) {
        log_error("%s; the camera is not started", err);
        return -1;
    }
    if (reset) reset_counters(&p->counters[slot]);
    /* the same camera keeps its row; a new one's slot has no frame queued */
    if (p->camera_ids[slot] != id) p->camera_ids[slot] = id;
    if (apply_recipe(p, slot, cam) < 0 || apply_region(p, slot, cam) < 0) return -1;
    if (assign_camera(p, c, cam) < 0) {
        log_error("camera %s: out of memory; the camera is not started", cam->name);
        return -1;
    }
    if (start_capture(p, c, err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

int pipeline_reconfigure(struct pipeline *p, const struct config *cfg)
{
    atomic_store(&p->jpeg_quality, cfg->jpeg_quality);
    bool stop[CONFIG_MAX_CAMERAS] = {0}, restart[CONFIG_MAX_CAMERAS] = {0};
    int changed = 0;
    for (size_t k = 0; k < p->ncameras; k++) {
        struct capture *c = &p->captures[p->order[k]];
        const struct config_camera *want = find_camera(cfg, c->cam.name);
        char keys[512];
        if (!want) {
            log_info("camera %s: no longer in the config; stopping it", c->cam.name);
            stop[c->index] = true;
            changed++;
        } else if (!config_camera_equal(want, &c->cam)) {
            changed_keys(&c->cam, want, keys, sizeof keys);
            log_info("camera %s: %s changed; restarting this camera", c->cam.name, keys);
            stop[c->index] = restart[c->index] = true;
        }
    }
    stop_captures(p, stop);

    size_t order[CONFIG_MAX_CAMERAS], n = 0;
    int rc = 0;
    for (size_t j = 0; j < cfg->ncameras; j++) {
        const struct config_camera *cam = &cfg->cameras[j];
        int slot = running_slot(p, cam->name);
        bool reset = false;
        if (slot >= 0 && !stop[slot]) {
            order[n++] = (size_t)slot; /* unchanged: it never stopped */
            struct capture *c = &p->captures[slot];
            if (strcmp(c->cam.recipe, cam->recipe) != 0) {
                pthread_rwlock_wrlock(&p->table_lock);
                memcpy(c->cam.recipe, cam->recipe, sizeof c->cam.recipe);
                pthread_rwlock_unlock(&p->table_lock);
                if (apply_recipe(p, (size_t)slot, cam) < 0) rc = -1;
                changed++;
            }
            if (strcmp(c->cam.roi, cam->roi) != 0 || strcmp(c->cam.mask, cam->mask) != 0 ||
                cam->mask[0]) {
                /* a mask file edited in place counts too: the region row is its bytes */
                if (apply_region(p, (size_t)slot, cam) < 0) rc = -1;
                pthread_rwlock_wrlock(&p->table_lock);
                memcpy(c->cam.roi, cam->roi, sizeof c->cam.roi);
                memcpy(c->cam.mask, cam->mask, sizeof c->cam.mask);
                pthread_rwlock_unlock(&p->table_lock);
            }
            continue;
        }
        if (slot < 0 && (slot = free_slot(p, cam->name, &reset)) < 0) {
            log_error("camera %s: not started: every slot holds a camera or frames not yet "
                      "written; reload again in a moment or restart inspectd",
                      cam->name);
            rc = -1;
            continue;
        }
        if (start_in_slot(p, (size_t)slot, cam, reset) < 0) {
            rc = -1;
            continue;
        }
        if (!restart[slot]) log_info("camera %s: added (driver %s)", cam->name, cam->driver);
        order[n++] = (size_t)slot;
        changed++;
    }
    pthread_rwlock_wrlock(&p->table_lock);
    memcpy(p->order, order, n * sizeof *order);
    p->ncameras = n;
    pthread_rwlock_unlock(&p->table_lock);
    return rc < 0 ? -1 : changed;
}

void pipeline_stop(struct pipeline *p)
{
    if (!p || p->stopped) return;
    pthread_mutex_lock(&p->stop_lock);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->stop_cond);
    pthread_mutex_unlock(&p->stop_lock);
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++) {
        if (!p->captures[i].started) continue;
        pthread_join(p->captures[i].thread, NULL);
        p->captures[i].started = false;
    }
    writer_stop(p->writer); /* closes the queue, drains it, commits */
    p->writer = NULL;
    p->stopped = true;
}

void pipeline_free(struct pipeline *p)
{
    if (!p) return;
    pipeline_stop(p);
    queue_destroy(p->queue);
    retention_free(p->retention);
    image_cache_free(p->images);
    for (size_t i = 0; i < CONFIG_MAX_CAMERAS; i++) {
        config_camera_free(&p->captures[i].cam);
        pthread_mutex_destroy(&p->captures[i].lock);
    }
    pthread_rwlock_destroy(&p->table_lock);
    pthread_mutex_destroy(&p->stop_lock);
    pthread_cond_destroy(&p->stop_cond);
    free(p);
}

size_t pipeline_ncameras(struct pipeline *p)
{
    pthread_rwlock_rdlock(&p->table_lock);
    size_t n = p->ncameras;
    pthread_rwlock_unlock(&p->table_lock);
    return n;
}

int pipeline_set_part(struct pipeline *p, const char *camera, const char *part_id)
{
    size_t len = strlen(part_id);
    if (len == 0 || len > STORE_PART_ID_MAX) return -2;
    int rc = -1;
    pthread_rwlock_rdlock(&p->table_lock);
    for (size_t i = 0; i < p->ncameras && rc; i++) {
        struct capture *c = &p->captures[p->order[i]];
        if (strcmp(c->cam.name, camera) != 0) continue;
        pthread_mutex_lock(&c->lock);
        memcpy(c->next_part_id, part_id, len + 1);
        pthread_mutex_unlock(&c->lock);
        rc = 0;
    }
    pthread_rwlock_unlock(&p->table_lock);
    return rc;
}

bool pipeline_camera_status(struct pipeline *p, size_t i, struct pipeline_camera_status *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&p->table_lock);
    if (i >= p->ncameras) {
        pthread_rwlock_unlock(&p->table_lock);
        return false;
    }
    struct capture *c = &p->captures[p->order[i]];
    struct metrics_camera *m = &p->counters[c->index];
    snprintf(out->name, sizeof out->name, "%s", c->cam.name);
    snprintf(out->driver, sizeof out->driver, "%s", c->cam.driver);
    snprintf(out->recipe, sizeof out->recipe, "%s", p->recipes[c->index]);
    out->run = c->run;
    pthread_mutex_lock(&c->lock);
    out->state = c->state;
    out->fps = c->fps;
    out->last_frame_us = c->last_frame_us;
    snprintf(out->last_error, sizeof out->last_error, "%s", c->last_error);
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_unlock(&p->table_lock);
    out->captured = atomic_load(&m->captured);
    out->stored = atomic_load(&m->stored);
    out->dropped = atomic_load(&m->dropped);
    out->failed = atomic_load(&m->failed);
    out->source_errors = atomic_load(&m->source_errors);
    out->polls = atomic_load(&c->polls);
    return true;
}

int pipeline_switch_recipe(struct pipeline *p, const char *camera, const char *recipe, char *err,
                           size_t errsz)
{
    pthread_rwlock_rdlock(&p->table_lock);
    int slot = -1;
    for (size_t k = 0; k < p->ncameras && slot < 0; k++)
        if (strcmp(p->captures[p->order[k]].cam.name, camera) == 0) slot = (int)p->order[k];
    char file_recipe[CONFIG_NAME_MAX] = "";
    int64_t camera_id = 0;
    if (slot >= 0) {
        memcpy(file_recipe, p->captures[slot].cam.recipe, sizeof file_recipe);
        camera_id = p->camera_ids[slot];
    }
    pthread_rwlock_unlock(&p->table_lock);
    if (slot < 0) return 1;
    int64_t id;
    if (writer_switch_recipe(p->writer, camera_id, recipe, file_recipe, &id, err, errsz) < 0)
        return -1;
    pthread_rwlock_wrlock(&p->table_lock);
    /* a reload may have moved the camera meanwhile: the switch is stored, and applies to the slot
     * it still holds */
    if (p->camera_ids[slot] == camera_id) {
        snprintf(p->recipes[slot], sizeof p->recipes[slot], "%s", recipe);
        atomic_store(&p->recipe_ids[slot], id);
    }
    pthread_rwlock_unlock(&p->table_lock);
    log_info("camera %s: switched to recipe %s from the next frame", camera, recipe);
    return 0;
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
    struct pipeline_camera_status st;
    for (size_t i = 0; pipeline_camera_status(p, i, &st); i++) {
        if (st.captured == 0 || st.state == CAMERA_ERROR || st.state == CAMERA_STALLED)
            return false;
    }
    return true;
}

struct metrics_histogram *pipeline_commit_latency(struct pipeline *p)
{
    return &p->commit_latency;
}

void pipeline_storage_status(struct pipeline *p, struct pipeline_storage_status *out)
{
    memset(out, 0, sizeof *out);
    out->last_frame_id = atomic_load(&p->writer_status.last_frame_id);
    out->frames_without_image = atomic_load(&p->writer_status.without_image);
    out->full_retries = atomic_load(&p->writer_status.full_retries);
    if (p->retention) retention_get_status(p->retention, &out->retention);
}

struct image_cache *pipeline_image_cache(struct pipeline *p)
{
    return p->images;
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

void pipeline_write_metrics(FILE *out, struct pipeline *p)
{
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
    metrics_write_one(out, "inspectd_queue_depth", "gauge", "Frames waiting for the writer.", "%zu",
                      pipeline_queue_depth(p));
    metrics_write_one(out, "inspectd_queue_capacity", "gauge", "Size of the frame queue.", "%zu",
                      pipeline_queue_capacity(p));
    metrics_write_histogram(out, "inspectd_store_commit_seconds",
                            "Time to insert and commit one batch of frames.",
                            pipeline_commit_latency(p));
}
