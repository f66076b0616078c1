/* mqtt.h — the MQTT output (libmosquitto): one JSON line per part's verdict on
 * PREFIX/CAMERA/result (every frame, unscored ones included, from the first frames on), flagged
 * parts on PREFIX/CAMERA/alert, model changes on PREFIX/model, and a retained PREFIX/status
 * ("online"; the broker's last will sets it "offline"); it takes part ids from
 * PREFIX/CAMERA/part/set, recipe switches from PREFIX/CAMERA/recipe/set and training requests
 * from PREFIX/train/set.
 *
 * A broker that is down or slow never slows capture or scoring: the feed's thread only puts
 * messages in a bounded outbox (the oldest dropped when it is full, counted), and the MQTT thread
 * connects, reconnects with back-off (0.5 s doubling to 30 s) and sends from it, at most
 * MQTT_INFLIGHT messages not yet written at a time. Connection changes and drops are logged once
 * per change of state. The broker is never needed to be ready: /readyz ignores it. */
#ifndef INSPECTD_LINE_MQTT_H
#define INSPECTD_LINE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "line_config.h"
#include "store/store_results.h"

struct line_mqtt;

/* What the messages the daemon subscribes to act on; called on the MQTT thread. */
struct line_mqtt_hooks {
    /* the part id of camera's next frame: 0, -1 no such camera, -2 bad id */
    int (*set_part)(void *ctx, const char *camera, const char *part_id);
    /* camera's recipe from its next frame: 0, 1 no such camera, 2 no such recipe, -1 an error */
    int (*switch_recipe)(void *ctx, const char *camera, const char *recipe);
    /* a training run now (fresh: anew): 0 started, 1 one is running */
    int (*train)(void *ctx, bool fresh);
    void *ctx;
};

/* Starts the MQTT thread for c (c->host set); links in messages are absolute under public_url
 * ("" or NULL: relative). Reads the password file now. Returns NULL with the reason in err. */
struct line_mqtt *line_mqtt_start(const struct line_mqtt_config *c, const char *public_url,
                                  const struct line_mqtt_hooks *hooks, char *err, size_t errsz);
/* Publishes what the outbox holds (when connected, for at most 3 s), then status offline,
 * disconnects, stops the thread and frees; what could not be published is logged. NULL is
 * fine. */
void line_mqtt_stop(struct line_mqtt *m);

/* The feed's outputs (line/feed.h): a verdict; an event of the log (model changes are
 * published). */
void line_mqtt_result(void *ctx, const struct result_info *r);
void line_mqtt_event(void *ctx, const char *kind, const char *json);

enum line_mqtt_state { MQTT_CONNECTING = 0, MQTT_CONNECTED, MQTT_DISCONNECTED };

struct line_mqtt_status {
    enum line_mqtt_state state;
    char broker[300]; /* host:port */
    char last_error[256];
    uint64_t published; /* written to the broker */
    uint64_t dropped;   /* from a full outbox */
    uint64_t connects, received;
    size_t queued, capacity;
};

void line_mqtt_get_status(struct line_mqtt *m, struct line_mqtt_status *out);
const char *line_mqtt_state_name(enum line_mqtt_state s);
/* inspectd_mqtt_{connected,published_total,dropped_total,queued,received_total}. */
void line_mqtt_write_metrics(FILE *out, struct line_mqtt *m);

/* ---- parsers of what the daemon receives (fuzzed: tests/fuzz/fuzz_line.c) ---- */

enum line_mqtt_topic { MQTT_TOPIC_OTHER = 0, MQTT_TOPIC_PART, MQTT_TOPIC_RECIPE, MQTT_TOPIC_TRAIN };

/* Which subscription topic is (PREFIX/CAMERA/part/set, PREFIX/CAMERA/recipe/set,
 * PREFIX/train/set), with the camera name (of at most camsz - 1 bytes) into camera. */
enum line_mqtt_topic line_mqtt_parse_topic(const char *prefix, const char *topic, char *camera,
                                           size_t camsz);
/* {"part_id": "1..64 bytes"} and nothing else into part_id (STORE_PART_ID_MAX + 1 bytes).
 * Returns 0, or -1 with the reason in why. */
int line_mqtt_parse_part(const void *payload, size_t len, char *part_id, char *why, size_t whysz);
/* {"recipe": "name"} (a recipe name of 1..63 bytes) and nothing else into recipe (64 bytes).
 * Returns 0, or -1 with the reason in why. */
int line_mqtt_parse_recipe(const void *payload, size_t len, char *recipe, char *why, size_t whysz);
/* {} , {"fresh": true|false} or an empty payload. Returns 0, or -1 with the reason in why. */
int line_mqtt_parse_train(const void *payload, size_t len, bool *fresh, char *why, size_t whysz);

#endif
