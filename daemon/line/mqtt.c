/* mqtt.c — the MQTT output: a bounded outbox filled by the results feed, and one thread that owns
 * the libmosquitto client (non-threaded interface: connect, loop, publish, reconnect). */
#define LOG_TAG "mqtt"
#include "log.h"

#include "mqtt.h"

#include <errno.h>
#include <jansson.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "base/metrics.h"
#include "result_json.h"

#define MQTT_INFLIGHT    64 /* messages handed to libmosquitto and not yet written, at most */
#define LOOP_MS          5 /* the MQTT thread's wait for the broker: a new message waits no longer */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS   30000
#define FLUSH_MS         3000 /* stopping: how long the outbox may take to go out */
#define TOPIC_MAX        (128 + 64 + 16)

struct message {
    char topic[TOPIC_MAX];
    char *payload;
    int len, qos;
    bool retain;
};

struct line_mqtt {
    struct line_mqtt_config cfg;
    char client_id[256];
    char password[256];
    char public_url[256];
    struct line_mqtt_hooks hooks;
    struct mosquitto *mosq;
    bool lib; /* mosquitto_lib_init() called */
    pthread_t thread;
    int inflight;   /* MQTT thread only */
    bool connected; /* MQTT thread only: CONNACK received on this connection */

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    bool stop;
    struct message *ring; /* (capacity) */
    size_t capacity, head, count;
    bool dropping; /* the outbox is full: logged once until it has room again */
    struct line_mqtt_status st;
};

const char *line_mqtt_state_name(enum line_mqtt_state s)
{
    static const char *const names[] = {"connecting", "connected", "disconnected"};
    return names[s];
}

/* ---- the outbox ---- */

/* Puts a message in the outbox (taking payload), dropping the oldest when it is full. */
static void enqueue(struct line_mqtt *m, const char *topic, char *payload, int qos, bool retain)
{
    if (!payload) return;
    pthread_mutex_lock(&m->lock);
    if (m->count == m->capacity) {
        struct message *old = &m->ring[m->head];
        free(old->payload);
        m->head = (m->head + 1) % m->capacity;
        m->count--;
        m->st.dropped++;
        if (!m->dropping)
            log_warn("the outbox is full (%zu messages: the broker is down or slow): dropping the "
                     "oldest, counted in inspectd_mqtt_dropped_total",
                     m->capacity);
        m->dropping = true;
    }
    struct message *msg = &m->ring[(m->head + m->count) % m->capacity];
    snprintf(msg->topic, sizeof msg->topic, "%s", topic);
    msg->payload = payload;
    msg->len = (int)strlen(payload);
    msg->qos = qos;
    msg->retain = retain;
    m->count++;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

/* Takes the oldest message. Returns false when the outbox is empty. */
static bool dequeue(struct line_mqtt *m, struct message *out)
{
    pthread_mutex_lock(&m->lock);
    bool any = m->count > 0;
    if (any) {
        *out = m->ring[m->head];
        m->head = (m->head + 1) % m->capacity;
        m->count--;
        if (m->dropping && m->count < m->capacity / 2) {
            log_info("the outbox has room again");
            m->dropping = false;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return any;
}

static char *dump(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

void line_mqtt_result(void *ctx, const struct result_info *r)
{
    struct line_mqtt *m = ctx;
    char topic[TOPIC_MAX];
    json_t *j = line_result_json(r, m->public_url);
    if (j && r->verdict == RESULT_UNSCORED) { /* what the line is told, not a score beside it */
        json_object_set_new(j, "score", json_null());
        json_object_set_new(j, "score_norm", json_null());
    }
    bool flagged = r->verdict == RESULT_NG;
    char *alert = flagged && j ? json_dumps(j, JSON_COMPACT) : NULL;
    snprintf(topic, sizeof topic, "%s/%s/result", m->cfg.topic_prefix, r->camera);
    enqueue(m, topic, dump(j), m->cfg.qos_results, false);
    if (flagged) {
        snprintf(topic, sizeof topic, "%s/%s/alert", m->cfg.topic_prefix, r->camera);
        enqueue(m, topic, alert, m->cfg.qos_alerts, false);
    }
}

void line_mqtt_event(void *ctx, const char *kind, const char *model_json)
{
    struct line_mqtt *m = ctx;
    if (strcmp(kind, "model") != 0) return;
    char topic[TOPIC_MAX];
    snprintf(topic, sizeof topic, "%s/model", m->cfg.topic_prefix);
    enqueue(m, topic, strdup(model_json), m->cfg.qos_alerts, true);
}

/* ---- parsers ---- */

enum line_mqtt_topic line_mqtt_parse_topic(const char *prefix, const char *topic, char *camera,
                                           size_t camsz)
{
    size_t pl = strlen(prefix);
    if (strncmp(topic, prefix, pl) != 0 || topic[pl] != '/') return MQTT_TOPIC_OTHER;
    const char *rest = topic + pl + 1;
    if (strcmp(rest, "train/set") == 0) return MQTT_TOPIC_TRAIN;
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) >= camsz) return MQTT_TOPIC_OTHER;
    enum line_mqtt_topic kind = strcmp(slash, "/part/set") == 0     ? MQTT_TOPIC_PART
                                : strcmp(slash, "/recipe/set") == 0 ? MQTT_TOPIC_RECIPE
                                                                    : MQTT_TOPIC_OTHER;
    if (kind != MQTT_TOPIC_OTHER) {
        memcpy(camera, rest, (size_t)(slash - rest));
        camera[slash - rest] = '\0';
    }
    return kind;
}

/* A JSON object payload. Returns a new reference, or NULL with the reason in why. */
static json_t *payload_object(const void *payload, size_t len, char *why, size_t whysz)
{
    json_error_t e;
    json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        snprintf(why, whysz, "the payload must be a JSON object%s%s", j ? "" : ": ",
                 j ? "" : e.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool only_key(json_t *j, const char *name, char *why, size_t whysz)
{
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, name) != 0) {
            snprintf(why, whysz, "unknown field '%.64s' (%s is known)", key, name);
            return false;
        }
    }
    return true;
}

int line_mqtt_parse_part(const void *payload, size_t len, char *part_id, char *why, size_t whysz)
{
    json_t *j = payload_object(payload, len, why, whysz);
    if (!j) return -1;
    json_t *p = json_object_get(j, "part_id");
    int rc = -1;
    if (!only_key(j, "part_id", why, whysz)) {
    } else if (!json_is_string(p) || !json_string_length(p) ||
               json_string_length(p) > STORE_PART_ID_MAX ||
               strlen(json_string_value(p)) != json_string_length(p)) {
        snprintf(why, whysz, "part_id must be a string of 1 to %d bytes (no NUL)",
                 STORE_PART_ID_MAX);
    } else {
        memcpy(part_id, json_string_value(p), json_string_length(p) + 1);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int line_mqtt_parse_recipe(const void *payload, size_t len, char *recipe, char *why, size_t whysz)
{
    json_t *j = payload_object(payload, len, why, whysz);
    if (!j) return -1;
    json_t *v = json_object_get(j, "recipe");
    int rc = -1;
    if (!only_key(j, "recipe", why, whysz)) {
    } else if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 63 ||
               strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, whysz, "recipe must be a recipe name (1 to 63 bytes)");
    } else {
        memcpy(recipe, json_string_value(v), json_string_length(v) + 1);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

int line_mqtt_parse_train(const void *payload, size_t len, bool *fresh, char *why, size_t whysz)
{
    *fresh = false;
    if (len == 0) return 0;
    json_t *j = payload_object(payload, len, why, whysz);
    if (!j) return -1;
    json_t *f = json_object_get(j, "fresh");
    int rc = -1;
    if (!only_key(j, "fresh", why, whysz)) {
    } else if (f && !json_is_boolean(f)) {
        snprintf(why, whysz, "fresh must be true or false");
    } else {
        *fresh = json_is_true(f);
        rc = 0;
    }
    json_decref(j);
    return rc;
}

/* ---- the client ---- */

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    struct line_mqtt *m = obj;
    char camera[64], part[STORE_PART_ID_MAX + 1], why[256];
    bool fresh;
    pthread_mutex_lock(&m->lock);
    m->st.received++;
    pthread_mutex_unlock(&m->lock);
    switch (line_mqtt_parse_topic(m->cfg.topic_prefix, msg->topic, camera, sizeof camera)) {
    case MQTT_TOPIC_PART:
        if (line_mqtt_parse_part(msg->payload, (size_t)msg->payloadlen, part, why, sizeof why))
            log_warn("%s: %s", msg->topic, why);
        else if (m->hooks.set_part(m->hooks.ctx, camera, part))
            log_warn("%s: no camera named '%s' is capturing", msg->topic, camera);
        break;
    case MQTT_TOPIC_TRAIN:
        if (line_mqtt_parse_train(msg->payload, (size_t)msg->payloadlen, &fresh, why, sizeof why))
            log_warn("%s: %s", msg->topic, why);
        else if (m->hooks.train(m->hooks.ctx, fresh) == 0)
            log_info("%s: a training run starts", msg->topic);
        else
            log_info("%s: a training run is already running", msg->topic);
        break;
    case MQTT_TOPIC_RECIPE: {
        char recipe[64];
        int rc =
            line_mqtt_parse_recipe(msg->payload, (size_t)msg->payloadlen, recipe, why, sizeof why)
                ? -2
                : m->hooks.switch_recipe(m->hooks.ctx, camera, recipe);
        if (rc == -2)
            log_warn("%s: %s", msg->topic, why);
        else if (rc == 1)
            log_warn("%s: no camera named '%s' runs", msg->topic, camera);
        else if (rc == 2)
            log_warn("%s: no recipe named '%s' in the config", msg->topic, recipe);
        else if (rc == 0)
            log_info("%s: camera %s inspects recipe %s from its next frame", msg->topic, camera,
                     recipe);
        break;
    }
    case MQTT_TOPIC_OTHER:
        break;
    }
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    struct line_mqtt *m = obj;
    if (m->inflight > 0) m->inflight--;
    pthread_mutex_lock(&m->lock);
    m->st.published++;
    pthread_mutex_unlock(&m->lock);
}

static void set_state(struct line_mqtt *m, enum line_mqtt_state state, const char *why)
{
    pthread_mutex_lock(&m->lock);
    bool changed = m->st.state != state || strcmp(m->st.last_error, why) != 0;
    m->st.state = state;
    snprintf(m->st.last_error, sizeof m->st.last_error, "%s", why);
    if (state == MQTT_CONNECTED) m->st.connects++;
    pthread_mutex_unlock(&m->lock);
    if (!changed) return;
    if (state == MQTT_CONNECTED)
        log_info("connected to %s as %s", m->st.broker, m->client_id);
    else
        log_warn("broker %s: %s (retrying with back-off; results wait in the outbox)", m->st.broker,
                 why);
}

static bool stopping(struct line_mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    bool stop = m->stop;
    pthread_mutex_unlock(&m->lock);
    return stop;
}

/* Waits up to ms, or until stopped. */
static void pause_ms(struct line_mqtt *m, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_mutex_lock(&m->lock);
    while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&m->lock);
}

static char *status_payload(const char *state)
{
    return dump(json_pack("{s:s}", "state", state));
}

/* Subscribes and says online (retained). Returns a MOSQ_ERR_* code. */
static int announce(struct line_mqtt *m)
{
    char topic[TOPIC_MAX];
    snprintf(topic, sizeof topic, "%s/+/part/set", m->cfg.topic_prefix);
    int rc = mosquitto_subscribe(m->mosq, NULL, topic, 1);
    snprintf(topic, sizeof topic, "%s/+/recipe/set", m->cfg.topic_prefix);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_subscribe(m->mosq, NULL, topic, 1);
    snprintf(topic, sizeof topic, "%s/train/set", m->cfg.topic_prefix);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_subscribe(m->mosq, NULL, topic, 1);
    char *online = status_payload("online");
    snprintf(topic, sizeof topic, "%s/status", m->cfg.topic_prefix);
    if (rc == MOSQ_ERR_SUCCESS && online)
        rc = mosquitto_publish(m->mosq, NULL, topic, (int)strlen(online), online, 1, true);
    free(online);
    return rc;
}

/* Hands waiting messages to libmosquitto while fewer than MQTT_INFLIGHT are unwritten. Returns a
 * MOSQ_ERR_* code (a message that could not be handed over goes back to the front). */
static int send_some(struct line_mqtt *m)
{
    struct message msg;
    while (m->inflight < MQTT_INFLIGHT && dequeue(m, &msg)) {
        int rc =
            mosquitto_publish(m->mosq, NULL, msg.topic, msg.len, msg.payload, msg.qos, msg.retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            pthread_mutex_lock(&m->lock);
            if (m->count < m->capacity) { /* back to the front, to go first after a reconnect */
                m->head = (m->head + m->capacity - 1) % m->capacity;
                m->ring[m->head] = msg;
                m->count++;
            } else { /* the feed filled the outbox meanwhile: this one is the oldest */
                free(msg.payload);
                m->st.dropped++;
            }
            pthread_mutex_unlock(&m->lock);
            return rc;
        }
        free(msg.payload);
        m->inflight++;
    }
    return MOSQ_ERR_SUCCESS;
}

static const char *error_text(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static size_t queued(struct line_mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* Stopping while connected: what the outbox holds (the feed's last verdicts among it) is
 * published and written, QoS 1 messages acknowledged, within FLUSH_MS. */
static void flush(struct line_mqtt *m)
{
    int64_t deadline = clock_mono_us() + FLUSH_MS * 1000LL;
    int rc = MOSQ_ERR_SUCCESS;
    while (rc == MOSQ_ERR_SUCCESS && clock_mono_us() < deadline &&
           (queued(m) > 0 || m->inflight > 0 || mosquitto_want_write(m->mosq))) {
        rc = send_some(m);
        if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop(m->mosq, LOOP_MS, 1);
    }
}

/* Connected: loop, publish; returns when the connection is lost or the thread stops. */
static void serve_connection(struct line_mqtt *m)
{
    int rc = MOSQ_ERR_SUCCESS;
    m->connected = false;
    while (!stopping(m) && rc == MOSQ_ERR_SUCCESS) {
        /* messages that can go now do not wait for the broker's next packet */
        bool ready = m->connected && m->inflight < MQTT_INFLIGHT && queued(m) > 0;
        rc = mosquitto_loop(m->mosq, ready ? 0 : LOOP_MS, 1);
        if (rc == MOSQ_ERR_SUCCESS && m->connected) rc = send_some(m);
    }
    if (rc == MOSQ_ERR_SUCCESS && m->connected) flush(m);
    m->connected = false;
    if (stopping(m)) return;
    set_state(m, MQTT_DISCONNECTED, error_text(rc));
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct line_mqtt *m = obj;
    if (rc == 0) {
        m->inflight = 0; /* what was unwritten on the old connection is gone or resent */
        m->connected = true;
        set_state(m, MQTT_CONNECTED, "");
        int arc = announce(m);
        if (arc != MOSQ_ERR_SUCCESS) log_warn("cannot subscribe: %s", error_text(arc));
    } else {
        set_state(m, MQTT_DISCONNECTED, mosquitto_connack_string(rc));
    }
}

static void *mqtt_main(void *arg)
{
    struct line_mqtt *m = arg;
    int backoff = BACKOFF_FIRST_MS;
    bool first = true;
    while (!stopping(m)) {
        int rc = first ? mosquitto_connect(m->mosq, m->cfg.host, m->cfg.port, m->cfg.keepalive_s)
                       : mosquitto_reconnect(m->mosq);
        if (rc == MOSQ_ERR_SUCCESS) {
            first = false;
            int64_t since = clock_mono_us();
            serve_connection(m);
            if (clock_mono_us() - since > 10 * 1000000LL) backoff = BACKOFF_FIRST_MS;
        } else {
            set_state(m, MQTT_DISCONNECTED, error_text(rc));
        }
        if (stopping(m)) break;
        pause_ms(m, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    size_t left = queued(m);
    if (left)
        log_warn("stopping: %zu message(s) of the outbox not published (the broker %s was not "
                 "reachable); their results are in the database",
                 left, m->st.broker);
    if (mosquitto_socket(m->mosq) >= 0) { /* a clean goodbye: offline, then disconnect */
        char topic[TOPIC_MAX], *offline = status_payload("offline");
        snprintf(topic, sizeof topic, "%s/status", m->cfg.topic_prefix);
        if (offline)
            mosquitto_publish(m->mosq, NULL, topic, (int)strlen(offline), offline, 1, true);
        free(offline);
        for (int i = 0; i < 10 && mosquitto_want_write(m->mosq); i++)
            mosquitto_loop(m->mosq, LOOP_MS, 1);
        mosquitto_disconnect(m->mosq);
        mosquitto_loop(m->mosq, LOOP_MS, 1);
    }
    return NULL;
}

/* The first line of path into buf. Returns 0, or -1 with the reason in err. */
static int read_password(const char *path, char *buf, size_t n, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "[mqtt] password_file %s: %s", path, strerror(errno));
        return -1;
    }
    bool got = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    buf[got ? strcspn(buf, "\r\n") : 0] = '\0';
    if (!buf[0]) {
        snprintf(err, errsz, "[mqtt] password_file %s is empty", path);
        return -1;
    }
    return 0;
}

/* Client id, credentials, TLS, last will, callbacks. Returns 0, or -1 with the reason in err. */
static int make_client(struct line_mqtt *m, char *err, size_t errsz)
{
    const struct line_mqtt_config *c = &m->cfg;
    if (c->client_id[0]) {
        snprintf(m->client_id, sizeof m->client_id, "%s", c->client_id);
    } else {
        char host[128] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(m->client_id, sizeof m->client_id, "inspectd-%s", host);
    }
    if (c->password_file[0] &&
        read_password(c->password_file, m->password, sizeof m->password, err, errsz))
        return -1;
    mosquitto_lib_init();
    m->lib = true;
    if (!(m->mosq = mosquitto_new(m->client_id, true, m))) {
        snprintf(err, errsz, "[mqtt] cannot create the client: %s", strerror(errno));
        return -1;
    }
    char topic[TOPIC_MAX], *offline = status_payload("offline");
    snprintf(topic, sizeof topic, "%s/status", c->topic_prefix);
    int rc = offline ? mosquitto_will_set(m->mosq, topic, (int)strlen(offline), offline, 1, true)
                     : MOSQ_ERR_NOMEM;
    free(offline);
    if (rc == MOSQ_ERR_SUCCESS && (c->username[0] || m->password[0]))
        rc = mosquitto_username_pw_set(m->mosq, c->username[0] ? c->username : NULL,
                                       m->password[0] ? m->password : NULL);
    if (rc == MOSQ_ERR_SUCCESS && c->ca_file[0])
        rc = mosquitto_tls_set(m->mosq, c->ca_file, NULL, c->cert_file[0] ? c->cert_file : NULL,
                               c->key_file[0] ? c->key_file : NULL, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(err, errsz, "[mqtt] %s", error_text(rc));
        return -1;
    }
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_message_callback_set(m->mosq, on_message);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    return 0;
}

static void free_mqtt(struct line_mqtt *m)
{
    for (size_t i = 0; m->ring && i < m->count; i++)
        free(m->ring[(m->head + i) % m->capacity].payload);
    free(m->ring);
    if (m->mosq) mosquitto_destroy(m->mosq);
    if (m->lib) mosquitto_lib_cleanup();
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    explicit_bzero(m->password, sizeof m->password);
    free(m);
}

struct line_mqtt *line_mqtt_start(const struct line_mqtt_config *c, const char *public_url,
                                  const struct line_mqtt_hooks *hooks, char *err, size_t errsz)
{
    struct line_mqtt *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errsz, "out of memory for MQTT");
        return NULL;
    }
    m->cfg = *c;
    m->hooks = *hooks;
    snprintf(m->public_url, sizeof m->public_url, "%s", public_url ? public_url : "");
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &ca);
    pthread_condattr_destroy(&ca);
    m->capacity = (size_t)c->max_queued;
    m->st.capacity = m->capacity;
    snprintf(m->st.broker, sizeof m->st.broker, "%s:%d", c->host, c->port);
    if (!(m->ring = calloc(m->capacity, sizeof *m->ring))) {
        snprintf(err, errsz, "out of memory for the MQTT outbox");
        free_mqtt(m);
        return NULL;
    }
    if (make_client(m, err, errsz)) {
        free_mqtt(m);
        return NULL;
    }
    if (pthread_create(&m->thread, NULL, mqtt_main, m) != 0) {
        snprintf(err, errsz, "cannot start the MQTT thread");
        free_mqtt(m);
        return NULL;
    }
    log_info("publishing to %s under %s/ (results QoS %d, alerts QoS %d)", m->st.broker,
             c->topic_prefix, c->qos_results, c->qos_alerts);
    return m;
}

void line_mqtt_stop(struct line_mqtt *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    free_mqtt(m);
}

void line_mqtt_get_status(struct line_mqtt *m, struct line_mqtt_status *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    out->queued = m->count;
    pthread_mutex_unlock(&m->lock);
}

void line_mqtt_write_metrics(FILE *out, struct line_mqtt *m)
{
    struct line_mqtt_status st;
    line_mqtt_get_status(m, &st);
    metrics_write_one(out, "inspectd_mqtt_connected", "gauge",
                      "1 while connected to the MQTT broker.", "%d", st.state == MQTT_CONNECTED);
    metrics_write_one(out, "inspectd_mqtt_published_total", "counter",
                      "MQTT messages written to the broker.", "%llu",
                      (unsigned long long)st.published);
    metrics_write_one(out, "inspectd_mqtt_dropped_total", "counter",
                      "MQTT messages dropped from a full outbox (the broker down or slow).", "%llu",
                      (unsigned long long)st.dropped);
    metrics_write_one(out, "inspectd_mqtt_queued", "gauge", "MQTT messages waiting in the outbox.",
                      "%zu", st.queued);
    metrics_write_one(out, "inspectd_mqtt_received_total", "counter",
                      "MQTT messages received on the subscribed topics.", "%llu",
                      (unsigned long long)st.received);
    metrics_write_one(out, "inspectd_mqtt_connects_total", "counter",
                      "Connections made to the MQTT broker.", "%llu",
                      (unsigned long long)st.connects);
}
