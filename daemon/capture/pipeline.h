/* pipeline.h — the capture side of the daemon: one thread per configured camera reading its
 * source, JPEG-encoding raw frames, and pushing them onto the bounded queue that the writer
 * (writer.h) drains into the store.
 *
 * A capture thread opens its source and reads it until stopped. A source that fails to open or
 * breaks is closed and reopened after a back-off (0.5 s doubling to 30 s); the state change is
 * logged once, not every try. A finite source (folder replay without loop) ends its thread.
 * JPEG and PNG frames are stored as received; Mono8/RGB8 frames are encoded in the capture thread
 * (so cameras encode in parallel and the single writer only writes) at [store] jpeg_quality.
 *
 * pipeline_stop() stops the capture threads, then the writer drains the queue and commits.
 * The pipeline also owns retention (retention.h: [store] max_size_mb, min_free_mb, flagged_days),
 * which the writer applies between batches, and the image cache through which the images of
 * frames stored without them reach the scorer.
 * The status functions may be called from any thread until pipeline_free().
 *
 * pipeline_reconfigure() (a config reload) restarts only the cameras whose driver or parameters
 * changed, stops removed ones and starts added ones; every other camera keeps capturing and no
 * queued frame is lost. Each camera holds a copy of its config section, so the config it came
 * from may be freed after pipeline_start() or pipeline_reconfigure() returns. A camera keeps its
 * slot (the index its frames carry through the queue) for as long as it is configured; a removed
 * camera's slot is given to a new one only once all its frames are accounted for. */
#ifndef INSPECTD_PIPELINE_H
#define INSPECTD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "image_cache.h"
#include "base/metrics.h"
#include "store/retention.h"
#include "store/store.h"

enum camera_state {
    CAMERA_STARTING = 0, /* opening, no frame yet */
    CAMERA_STREAMING,    /* frames arriving */
    CAMERA_STALLED,      /* open, but no frame for a while */
    CAMERA_ERROR,        /* open failed or the source broke; retrying */
    CAMERA_ENDED         /* a finite source delivered its last frame */
};

struct pipeline_camera_status {
    char name[CONFIG_NAME_MAX];
    char driver[CONFIG_NAME_MAX];
    char recipe[CONFIG_NAME_MAX]; /* the recipe its frames are captured for now */
    enum camera_state state;
    double fps;            /* frames per second over the last second or so */
    int64_t last_frame_us; /* wall-clock time a frame last arrived; 0 = none yet */
    char last_error[256];  /* "" when none */
    uint64_t captured, stored, dropped, failed, source_errors;
    uint64_t run;   /* which capture thread: a new number each time the camera is (re)started */
    uint64_t polls; /* turns of the capture loop (each waits at most 200 ms for a frame) */
};

/* The writer's side of things: what it committed last, and retention. */
struct pipeline_storage_status {
    int64_t last_frame_id;         /* the newest frame committed; 0: none yet */
    uint64_t frames_without_image; /* committed without their image (storage full) */
    uint64_t full_retries;         /* batch writes retried after a full disk */
    struct retention_status retention;
};

struct pipeline;

/* Registers the cameras in the store, starts the writer (which takes over `store`) and one
 * capture thread per camera. Returns NULL with a reason in err. */
struct pipeline *pipeline_start(const struct config *cfg, struct store *store, char *err,
                                size_t errsz);
/* Stops capture, drains the queue, commits the last batch and joins every thread. The status
 * functions keep working (the counters are final); the store stays open (the caller closes it).
 * Safe on NULL and when already stopped. */
void pipeline_stop(struct pipeline *p);
/* Stops if still running, then frees. Safe on NULL. */
void pipeline_free(struct pipeline *p);

/* Restarts, stops and starts cameras to match cfg's [camera.*] sections and applies [store]
 * jpeg_quality to the next frames (see above; cfg was validated by config_load()). Logs each
 * change. Returns the number of cameras stopped, restarted or started, or -1 when a camera could
 * not be started (logged; the others run). */
int pipeline_reconfigure(struct pipeline *p, const struct config *cfg);

/* Switches the running camera of that name to recipe, from its next frame; the switch is stored
 * (it outlives a restart until the file's recipe for the camera changes). Returns 0, 1 when no
 * camera of that name runs, or -1 with the reason in err. */
int pipeline_switch_recipe(struct pipeline *p, const char *camera, const char *recipe, char *err,
                           size_t errsz);

/* The cameras running, in config order. A status call with i out of range (a reload removed a
 * camera meanwhile) returns false with *out zeroed. */
size_t pipeline_ncameras(struct pipeline *p);
bool pipeline_camera_status(struct pipeline *p, size_t i, struct pipeline_camera_status *out);
/* Gives the next frame camera captures the line's part id (1..STORE_PART_ID_MAX bytes; a later
 * call before that frame replaces it). Returns 0, -1 when no camera of that name runs, -2 when the
 * id is empty or too long. */
int pipeline_set_part(struct pipeline *p, const char *camera, const char *part_id);
/* "starting", "streaming", "stalled", "error", "ended". */
const char *pipeline_state_name(enum camera_state s);
size_t pipeline_queue_depth(struct pipeline *p);
size_t pipeline_queue_capacity(const struct pipeline *p);
/* True when every camera has delivered a frame and none is in error or stalled. */
bool pipeline_ready(struct pipeline *p);
/* Duration of each batch's inserts and commit. */
struct metrics_histogram *pipeline_commit_latency(struct pipeline *p);

/* The capture side's /metrics lines: frames per camera (captured, stored, dropped, failed, source
 * errors), the queue, the commit latency. */
void pipeline_write_metrics(FILE *out, struct pipeline *p);
void pipeline_storage_status(struct pipeline *p, struct pipeline_storage_status *out);
/* Where the scorer finds the images of frames stored without them. Valid until pipeline_free(). */
struct image_cache *pipeline_image_cache(struct pipeline *p);

#endif
