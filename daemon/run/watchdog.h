/* watchdog.h — whether inspectd may tell systemd it is alive (WATCHDOG=1): only while capture and
 * scoring make progress, so that a hung thread gets the daemon restarted (WatchdogSec=).
 *
 * A snapshot holds counters that each part advances as it works. From one snapshot to a later one
 * the daemon made progress when
 *   - every camera streaming in the later one captured frames and had frames written (stored, or
 *     given up by the writer: a database error is logged and survived, not a hang), or the writer
 *     retried a batch on a full disk (waiting for room is not a hang either);
 *   - every camera stalled in the later one (open, but no frame for 5 s) polled its source again;
 *   - the scorer finished a frame (scored or failed) or found nothing to do (no model yet, no new
 *     frame, or a result waiting for room on a full disk).
 * Cameras starting, in error (reconnecting with back-off), ended, or (re)started by a reload in
 * between need nothing: those are states the daemon handles itself.
 *
 * The monitor keeps the snapshot of the last progress. Until `grace` has passed since then, no
 * progress yet is not a stall (a camera at 0.5 fps, a batch waiting batch_ms, a slow frame);
 * after it the verdict is "stalled" and pings stop until progress is seen again.
 *
 * watchdog_progress(), watchdog_grace_us() and watchdog_check() are pure (no clock, no I/O). */
#ifndef INSPECTD_WATCHDOG_H
#define INSPECTD_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "capture/pipeline.h"
#include "scoring/scorer.h"

/* No progress for this long is still not a stall: a streaming camera may go 5 s without a frame
 * before it is "stalled", then its frame waits for a commit; a frame may take seconds to score. */
#define WATCHDOG_GRACE_MIN_US 10000000LL

struct watchdog_camera {
    char name[CONFIG_NAME_MAX];
    uint64_t run; /* the capture thread's number: another run is another camera here */
    enum camera_state state;
    uint64_t captured; /* frames the source delivered */
    uint64_t written;  /* frames stored or failed */
    uint64_t polls;    /* turns of the capture loop */
};

struct watchdog_snapshot {
    int64_t at_us; /* monotonic clock */
    struct watchdog_camera cameras[CONFIG_MAX_CAMERAS];
    size_t ncameras;
    uint64_t writer_retries; /* batch writes retried on a full disk */
    uint64_t scorer_done;    /* frames scored or failed */
    uint64_t scorer_idle;    /* turns that found nothing to score */
};

enum watchdog_verdict {
    WATCHDOG_PROGRESS, /* every part progressed since the last progress: ping */
    WATCHDOG_WAITING,  /* not yet, but within the grace: ping */
    WATCHDOG_STALLED   /* no progress for longer than the grace: do not ping */
};

struct watchdog {
    int64_t grace_us;
    struct watchdog_snapshot last; /* at the last progress */
};

/* Fills a snapshot from the running daemon's counters, taken at now_us (monotonic). */
void watchdog_snapshot_take(struct watchdog_snapshot *s, struct pipeline *p, struct scorer *sc,
                            int64_t now_us);

/* True when every part progressed from prev to cur or had no reason to (see above); otherwise
 * false with the first part that did not in why ("camera line1: streaming, but no frame
 * captured"). */
bool watchdog_progress(const struct watchdog_snapshot *prev, const struct watchdog_snapshot *cur,
                       char *why, size_t whysz);

/* The grace: half the systemd watchdog interval (0 when none), at least WATCHDOG_GRACE_MIN_US
 * plus the writer's batch_ms. */
int64_t watchdog_grace_us(uint64_t watchdog_usec, int batch_ms);

void watchdog_init(struct watchdog *w, int64_t grace_us, const struct watchdog_snapshot *first);
/* Compares cur with the last progress; on progress cur becomes the last. why as for
 * watchdog_progress() when the verdict is not WATCHDOG_PROGRESS. */
enum watchdog_verdict watchdog_check(struct watchdog *w, const struct watchdog_snapshot *cur,
                                     char *why, size_t whysz);

#endif
