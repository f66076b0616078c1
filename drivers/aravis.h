/* aravis.h — GigE Vision and USB3 Vision line cameras through Aravis: configuration, streaming
 * from a pool of buffers, camera timestamps, and riding out the camera going away.
 *
 * Use: aravis_config_init(), aravis_config_set() for each key of the [camera.NAME] section (minus
 * `driver`), aravis_open(), then aravis_next() from one thread. aravis_stats() may be called from
 * any thread. aravis_close() is safe on NULL.
 *
 * Loss and recovery: while streaming, the camera counts as lost when it takes control away (its
 * heartbeat answers that we are no longer the controller, as after a power cycle) or when no frame
 * has come for a second and it does not answer a register read. aravis_next() then returns
 * SOURCE_ELOST, and so do later calls until a reconnect succeeds: they retry after 0.5 s, doubling
 * up to 30 s, and each call waits at most its timeout for the next try (a try itself can take a few
 * seconds: discovery and the dead camera's protocol timeouts). One log line per change of state.
 * A camera that cannot be found at aravis_open() fails the open (SOURCE_ENODEV); its caller
 * retries as it would any source.
 *
 * Triggers: free — the camera runs at its frame rate (`fps` sets it); software — every
 * aravis_next() fires one TriggerSoftware (no sooner than 1/fps after the last when fps is set)
 * and returns that frame; a trigger unanswered for a second is counted lost and fired again;
 * hardware — the camera waits for `trigger_source` (an I/O line), and silence is not a loss as
 * long as the camera answers. */
#ifndef INSPECTD_ARAVIS_H
#define INSPECTD_ARAVIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "camera_list.h"
#include "source.h"

enum aravis_trigger { ARAVIS_TRIGGER_FREE = 0, ARAVIS_TRIGGER_SOFTWARE, ARAVIS_TRIGGER_HARDWARE };

struct aravis_config {
    char device[128];            /* device id ("Aravis-Fake-GV01"), physical id or IP; "" = first */
    char pixel_format[16];       /* Mono8, RGB8, BayerRG8/BG8/GB8/GR8; "" = the camera's own when
                                    inspectd can take it, else the first of these it offers */
    int offset_x, offset_y;      /* region of interest; -1 leaves the camera's value */
    int width, height;           /* -1 leaves the camera's value */
    double exposure_us;          /* < 0 leaves the camera's value */
    bool exposure_auto;          /* `exposure_us = auto` */
    double gain;                 /* camera units (usually dB); < 0 leaves the camera's value */
    bool gain_auto;              /* `gain = auto` */
    double fps;                  /* free: camera frame rate; software: trigger rate; 0 = leave */
    enum aravis_trigger trigger; /* `trigger = free | software | hardware` */
    char trigger_source[32];     /* hardware only; "Line0" */
    char
        trigger_activation[32]; /* hardware only; "RisingEdge" (FallingEdge, AnyEdge, LevelHigh…) */
    int buffers;                /* stream buffer pool, 2..64; 8 */
};

enum aravis_state { ARAVIS_STREAMING = 0, ARAVIS_LOST };

struct aravis_stats {
    enum aravis_state state;
    uint64_t frames;     /* frames handed out by aravis_next() */
    uint64_t incomplete; /* buffers thrown away: missing packets, wrong size, unanswered triggers */
    uint64_t losses;     /* times the camera was declared lost */
    uint64_t reconnects; /* times it came back */
};

struct aravis_camera;

void aravis_config_init(struct aravis_config *cfg);

/* Sets one key from its text value. Returns 0, or -1 with a reason in err ("unknown key", "trigger
 * must be free, software or hardware", …). Only the syntax is checked here; whether the camera
 * offers a format or a trigger line is found out by aravis_open(). */
int aravis_config_set(struct aravis_config *cfg, const char *key, const char *value, char *err,
                      size_t errsz);

/* Connects, configures and starts streaming. `name` is the camera's name for logs. Returns NULL
 * with *status (SOURCE_ENODEV: not found; SOURCE_EINVAL: the camera refuses the configuration;
 * SOURCE_EIO: it failed to start; SOURCE_ENOMEM) and a reason in err. */
struct aravis_camera *aravis_open(const char *name, const struct aravis_config *cfg, int *status,
                                  char *err, size_t errsz);

/* Waits up to timeout_ms (< 0: no limit) for the next frame: SOURCE_OK with *f filled (FRAME_MONO8
 * or FRAME_RGB8, Bayer demosaiced; captured_at_us from the camera's clock anchored to the host's
 * wall clock; seq advances by the camera's frame-id steps, so gaps are frames lost on the way),
 * SOURCE_TIMEOUT, SOURCE_ELOST (see above) or SOURCE_ENOMEM. */
int aravis_next(struct aravis_camera *cam, struct frame *f, int timeout_ms);

void aravis_stats(struct aravis_camera *cam, struct aravis_stats *out);

void aravis_close(struct aravis_camera *cam);

/* Lists the GigE Vision / USB3 Vision cameras reachable from this host (opening each briefly to
 * read its pixel formats). Returns how many, or -1 with a reason in err. */
int aravis_list(camera_list_fn fn, void *ctx, char *err, size_t errsz);

#endif
