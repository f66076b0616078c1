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
};

#endif
