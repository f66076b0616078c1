/* driver.h — what a frame source driver provides to source.c, and the helpers drivers share
 * (parameter parsing, error text, fps pacing). Internal to drivers/; the daemon uses source.h.
 *
 * A driver is a table of four functions. open() returns the driver's own state (NULL with a
 * SOURCE_E* code in *status and a reason in err on failure) and is only called after every
 * parameter passed check_param();
 * next() and close() receive that state; close() accepts NULL. */
#ifndef INSPECTD_DRIVER_H
#define INSPECTD_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "camera_list.h"
#include "source.h"

struct source_driver {
    const char *name;
    /* Returns 0, or -1 with a reason in err. */
    int (*check_param)(const char *key, const char *value, char *err, size_t errsz);
    void *(*open)(const char *name, const struct source_param *params, size_t nparams, int *status,
                  char *err, size_t errsz);
    /* Same contract as source_next(). */
    int (*next)(void *state, struct frame *f, int timeout_ms);
    void (*close)(void *state);
    /* The cameras it can see, as camera_list.h says; NULL for a source that is not a camera. */
    int (*list)(camera_list_fn fn, void *ctx, char *err, size_t errsz);
};

extern const struct source_driver synthetic_driver;
extern const struct source_driver folder_driver;
extern const struct source_driver aravis_driver;
#ifdef INSPECTD_WITH_LIBCAMERA
extern const struct source_driver libcamera_driver;
#endif

/* Writes a formatted reason into err (if errsz > 0). Returns -1, for `return driver_fail(...)`. */
int driver_fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Paces frames on absolute CLOCK_MONOTONIC deadlines so the rate does not drift. A period of 0
 * means "as fast as possible". */
struct driver_pacer {
    int64_t period_ns;
    int64_t next_ns; /* deadline of the next frame */
};

/* fps 0 disables pacing. The first frame is due immediately. */
void driver_pacer_start(struct driver_pacer *p, double fps);

/* Sleeps until the next frame is due, but at most timeout_ms (< 0: no limit). Returns SOURCE_OK
 * when the deadline is reached (and schedules the following one), SOURCE_TIMEOUT otherwise. A
 * source that fell more than one period behind restarts its schedule from now rather than
 * bursting to catch up. */
int driver_pacer_wait(struct driver_pacer *p, int timeout_ms);

#endif
