/* source.h — one interface for every frame source (camera driver, folder, synthetic).
 *
 * A source is opened by driver name with a list of key=value parameters (the [camera.NAME] section
 * of the config, minus `driver`), then polled with source_next() from one thread (the camera's
 * capture thread). Frames are handed over: the caller owns frame.data and frees it with
 * frame_free(). source_close() is safe at any point, including on a half-opened source and NULL.
 *
 * A driver validates its own parameters: source_check_param() lets the config loader report a bad
 * key or value with file:line before anything is opened. */
#ifndef INSPECTD_SOURCE_H
#define INSPECTD_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "camera_list.h"
#include "frame.h"

struct source_param {
    const char *key;
    const char *value;
};

enum source_status {
    SOURCE_OK = 0,
    SOURCE_TIMEOUT = 1, /* no frame within the timeout; try again */
    SOURCE_END = 2,     /* a finite source (folder replay without loop) has no more frames */
    SOURCE_EINVAL = -1, /* bad parameter */
    SOURCE_ENODEV = -2, /* device or directory not found */
    SOURCE_ELOST = -3,  /* device went away; close and reopen later */
    SOURCE_EIO = -4,    /* read error */
    SOURCE_ENOMEM = -5
};

struct source;

/* Names of the compiled-in drivers, NULL-terminated. */
const char *const *source_drivers(void);

/* Checks one parameter for a driver. Returns 0, or -1 with a reason in err ("unknown key",
 * "fps must be a number in (0, 1000]", or "unknown driver"). */
int source_check_param(const char *driver, const char *key, const char *value, char *err,
                       size_t errsz);

/* Whether the driver lists the cameras it can see (the camera drivers do; synthetic and folder
 * do not). */
bool source_lists_cameras(const char *driver);

/* Calls fn once per camera the driver can see (camera_list.h). Returns how many it saw, or -1 with
 * a reason in err (the driver could not look, or it lists no cameras). */
int source_list_cameras(const char *driver, camera_list_fn fn, void *ctx, char *err, size_t errsz);

/* Opens a source. `name` is the camera's name (for logs). Returns NULL with a reason in err and,
 * when status is not NULL, why in *status: SOURCE_EINVAL (bad parameter: do not retry),
 * SOURCE_ENODEV (device or directory not there: retry later), SOURCE_EIO or SOURCE_ENOMEM. */
struct source *source_open(const char *name, const char *driver, const struct source_param *params,
                           size_t nparams, int *status, char *err, size_t errsz);

/* Waits up to timeout_ms (< 0: no limit) for the next frame. Returns SOURCE_OK with *f filled,
 * SOURCE_TIMEOUT, SOURCE_END, or a negative status (the reason is logged once by the driver). Paced
 * sources (synthetic, folder replay) sleep to keep their configured fps. */
int source_next(struct source *s, struct frame *f, int timeout_ms);

void source_close(struct source *s);

const char *source_strerror(int status);

void frame_free(struct frame *f);

/* The receiver calls this once the frame is durably stored (after its commit): the input the
 * source was told to dispose of (folder watch: delete_after_ingest, move_to) is deleted or moved
 * now, not when it was read, so a frame dropped, failed or lost in a crash before its commit is
 * read again at the next start. A failure is logged; nothing to do without an origin. */
void frame_stored(struct frame *f);

/* An origin for frame_stored: the file `name` in `dir`, deleted, or moved into move_to (when not
 * NULL) under a free name ("a.jpg", else "a-1.jpg", ...). `camera` names the source in logs.
 * Returns NULL when out of memory. */
struct frame_origin *frame_origin_file(const char *camera, const char *dir, const char *name,
                                       const char *move_to);

#endif
