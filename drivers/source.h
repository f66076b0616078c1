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

enum frame_format {
    FRAME_MONO8 = 1, /* raw 8-bit grey, width/height/stride valid */
    FRAME_RGB8,      /* raw interleaved RGB, width/height/stride valid */
    FRAME_JPEG,      /* encoded; width/height filled when known, else 0 */
    FRAME_PNG        /* encoded; width/height filled when known, else 0 */
};

/* Ground truth a synthetic source knows about what it drew (for tests and benchmarks). */
enum defect_kind { DEFECT_NONE = 0, DEFECT_SCRATCH, DEFECT_HOLE, DEFECT_STAIN };

struct frame_truth {
    enum defect_kind defect; /* DEFECT_NONE for a good product */
    int x0, y0, x1, y1;      /* defect bounding box in pixels, [x0,x1) x [y0,y1) */
};

/* What to do with a frame's input file once the frame is stored (folder watch with
 * delete_after_ingest or move_to); opaque, owned by the frame. */
struct frame_origin;

struct frame {
    enum frame_format format;
    int width, height;
    size_t stride;          /* raw formats only */
    uint8_t *data;          /* owned by the receiver of the frame; free with frame_free() */
    size_t size;            /* bytes in data */
    int64_t captured_at_us; /* wall clock (CLOCK_REALTIME) microseconds, camera's when it has one */
    uint64_t seq;           /* per-source sequence number, from 0, gaps mean lost frames */
    bool has_truth;
    struct frame_truth truth;
    struct frame_origin *origin; /* NULL, or the input to dispose of by frame_stored() */
};

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
