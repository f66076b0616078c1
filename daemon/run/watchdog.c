/* watchdog.c — progress between two snapshots of the daemon's counters, and the grace before no
 * progress counts as a stall. */
#include "watchdog.h"

#include <stdio.h>
#include <string.h>

void watchdog_snapshot_take(struct watchdog_snapshot *s, struct pipeline *p, struct scorer *sc,
                            int64_t now_us)
{
    memset(s, 0, sizeof *s);
    s->at_us = now_us;
    struct pipeline_camera_status st;
    while (s->ncameras < CONFIG_MAX_CAMERAS && pipeline_camera_status(p, s->ncameras, &st)) {
        struct watchdog_camera *c = &s->cameras[s->ncameras++];
        snprintf(c->name, sizeof c->name, "%s", st.name);
        c->run = st.run;
        c->state = st.state;
        c->captured = st.captured;
        c->written = st.stored + st.failed;
        c->polls = st.polls;
    }
    struct pipeline_storage_status ps;
    pipeline_storage_status(p, &ps);
    s->writer_retries = ps.full_retries;
    struct scorer_status ss;
    scorer_get_status(sc, &ss);
    s->scorer_done = ss.scored + ss.failed;
    s->scorer_idle = ss.idle;
}

static const struct watchdog_camera *same_run(const struct watchdog_snapshot *s, uint64_t run)
{
    for (size_t i = 0; i < s->ncameras; i++)
        if (s->cameras[i].run == run) return &s->cameras[i];
    return NULL;
}

/* One camera: true when it progressed or had no reason to (writer_waits: the writer retried a
 * batch on a full disk meanwhile). */
static bool camera_progress(const struct watchdog_camera *was, const struct watchdog_camera *now,
                            bool writer_waits, char *why, size_t whysz)
{
    if (!was) return true; /* (re)started since: nothing to compare with */
    if (now->state == CAMERA_STREAMING) {
        if (now->captured == was->captured) {
            snprintf(why, whysz, "camera %s: streaming, but no frame captured", now->name);
            return false;
        }
        if (now->written == was->written && !writer_waits) {
            snprintf(why, whysz, "camera %s: frames captured, but none written", now->name);
            return false;
        }
    } else if (now->state == CAMERA_STALLED && now->polls == was->polls) {
        snprintf(why, whysz, "camera %s: stalled, and its capture loop did not turn", now->name);
        return false;
    }
    return true;
}

bool watchdog_progress(const struct watchdog_snapshot *prev, const struct watchdog_snapshot *cur,
                       char *why, size_t whysz)
{
    bool writer_waits = cur->writer_retries != prev->writer_retries;
    for (size_t i = 0; i < cur->ncameras; i++)
        if (!camera_progress(same_run(prev, cur->cameras[i].run), &cur->cameras[i], writer_waits,
                             why, whysz))
            return false;
    if (cur->scorer_done == prev->scorer_done && cur->scorer_idle == prev->scorer_idle) {
        snprintf(why, whysz, "scorer: no frame scored, and not idle");
        return false;
    }
    return true;
}

int64_t watchdog_grace_us(uint64_t watchdog_usec, int batch_ms)
{
    int64_t floor = WATCHDOG_GRACE_MIN_US + (int64_t)batch_ms * 1000;
    int64_t half = (int64_t)(watchdog_usec / 2);
    return half > floor ? half : floor;
}

void watchdog_init(struct watchdog *w, int64_t grace_us, const struct watchdog_snapshot *first)
{
    w->grace_us = grace_us;
    w->last = *first;
}

enum watchdog_verdict watchdog_check(struct watchdog *w, const struct watchdog_snapshot *cur,
                                     char *why, size_t whysz)
{
    if (watchdog_progress(&w->last, cur, why, whysz)) {
        w->last = *cur;
        return WATCHDOG_PROGRESS;
    }
    return cur->at_us - w->last.at_us < w->grace_us ? WATCHDOG_WAITING : WATCHDOG_STALLED;
}
