/* app.h — what the running daemon shares with its HTTP handlers: configuration, pipeline, the
 * read-only store connections. Built by `inspectd run` before the HTTP server starts, torn down
 * after it stops, so a handler may use every pointer here without checks.
 *
 * Invariants while the HTTP server runs: cfg, pipeline, readers, scorer, trainer and feed are
 * non-NULL
 * and stay
 * valid;
 * started_us never changes. */
#ifndef INSPECTD_APP_H
#define INSPECTD_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "capture/pipeline.h"
#include "line/feed.h"
#include "line/mqtt.h"
#include "line/plc.h"
#include "line/window.h"
#include "line/webhook.h"
#include "scoring/scorer.h"
#include "train/trainer.h"
#include "store/store.h"

struct app {
    const struct config *cfg;
    struct pipeline *pipeline;
    struct store_pool *readers;
    struct scorer *scorer;
    struct trainer *trainer;
    struct line_feed *feed;         /* the verdicts as they are reached, to the line outputs */
    struct line_mqtt *mqtt;         /* NULL: no [mqtt] host */
    struct line_webhooks *webhooks; /* NULL: no [webhook.NAME] */
    struct line_plc *plc;           /* NULL: no [plc] listen */
    struct line_window *window;     /* NULL: no [plc] window_ms */
    int64_t started_us;             /* wall clock, Unix microseconds */
    /* The line's commands (MQTT, Modbus) reach the pipeline, the scorer and the trainer only while
     * line_open; the stop closes it first, so the line outputs can outlive those (and publish the
     * last verdicts) without touching them. line_lock guards line_open and plc_seen. */
    pthread_mutex_t line_lock;
    bool line_open;
    struct {
        bool learning, fault;
        int64_t last_frame_id;
    } plc_seen; /* what the PLC was told last, and still is once the line is closed */
};

#endif
