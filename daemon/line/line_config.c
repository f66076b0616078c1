/* line_config.c — [results], [mqtt] and [webhook.NAME] keys. */
#include "line_config.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

void line_config_defaults(struct line_config *c)
{
    memset(c, 0, sizeof *c);
    c->mqtt.port = 1883;
    strcpy(c->mqtt.topic_prefix, "inspectd");
    c->mqtt.qos_results = 0;
    c->mqtt.qos_alerts = 1;
    c->mqtt.max_queued = 10000;
    c->mqtt.keepalive_s = 30;
    c->plc.writable = true;
}

static int copy(char *dst, size_t dstsz, const char *key, const char *v, char *why, size_t whysz)
{
    if (strlen(v) >= dstsz) {
        snprintf(why, whysz, "%s is longer than %zu characters", key, dstsz - 1);
        return 0;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 1;
}

static int int_key(int *dst, const char *key, const char *v, int lo, int hi, char *why,
                   size_t whysz)
{
    if (parse_int(v, lo, hi, dst) == 0) return 1;
    snprintf(why, whysz, "%s must be an integer in [%d, %d]", key, lo, hi);
    return 0;
}

/* A topic level: no wildcards, no '/', not empty. */
static bool valid_prefix(const char *v)
{
    if (!v[0] || v[0] == '/' || v[strlen(v) - 1] == '/') return false;
    return strpbrk(v, "+#") == NULL;
}

static int set_mqtt(struct line_mqtt_config *m, const char *key, const char *v, char *why,
                    size_t whysz)
{
    if (strcmp(key, "host") == 0) return copy(m->host, sizeof m->host, key, v, why, whysz);
    if (strcmp(key, "port") == 0) return int_key(&m->port, key, v, 1, 65535, why, whysz);
    if (strcmp(key, "client_id") == 0)
        return copy(m->client_id, sizeof m->client_id, key, v, why, whysz);
    if (strcmp(key, "username") == 0)
        return copy(m->username, sizeof m->username, key, v, why, whysz);
    if (strcmp(key, "password_file") == 0)
        return copy(m->password_file, sizeof m->password_file, key, v, why, whysz);
    if (strcmp(key, "ca_file") == 0) return copy(m->ca_file, sizeof m->ca_file, key, v, why, whysz);
    if (strcmp(key, "cert_file") == 0)
        return copy(m->cert_file, sizeof m->cert_file, key, v, why, whysz);
    if (strcmp(key, "key_file") == 0)
        return copy(m->key_file, sizeof m->key_file, key, v, why, whysz);
    if (strcmp(key, "topic_prefix") == 0) {
        if (!valid_prefix(v)) {
            snprintf(why, whysz,
                     "topic_prefix must be a topic without wildcards (+, #) or a leading or "
                     "trailing '/'");
            return 0;
        }
        return copy(m->topic_prefix, sizeof m->topic_prefix, key, v, why, whysz);
    }
    if (strcmp(key, "qos_results") == 0) return int_key(&m->qos_results, key, v, 0, 2, why, whysz);
    if (strcmp(key, "qos_alerts") == 0) return int_key(&m->qos_alerts, key, v, 0, 2, why, whysz);
    if (strcmp(key, "max_queued") == 0)
        return int_key(&m->max_queued, key, v, 1, 1000000, why, whysz);
    if (strcmp(key, "keepalive") == 0) return int_key(&m->keepalive_s, key, v, 5, 3600, why, whysz);
    snprintf(why, whysz, "unknown key '%s' in [mqtt]", key);
    return 0;
}

/* "ADDRESS:PORT" or "[v6]:PORT", the address numeric; "" turns the server off. */
static int set_plc_listen(struct line_plc_config *p, const char *v, char *why, size_t whysz)
{
    if (!v[0]) {
        p->host[0] = '\0';
        return 1;
    }
    const char *colon = strrchr(v, ':');
    char host[64];
    size_t hl = colon ? (size_t)(colon - v) : 0;
    if (!colon || hl == 0 || hl >= sizeof host) {
        snprintf(why, whysz, "listen must be ADDRESS:PORT, e.g. 127.0.0.1:1502");
        return 0;
    }
    memcpy(host, v, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1) {
        snprintf(why, whysz, "listen address '%s' is not a numeric IPv4 or IPv6 address", host);
        return 0;
    }
    if (parse_int(colon + 1, 1, 65535, &p->port) < 0) {
        snprintf(why, whysz, "listen port must be an integer in [1, 65535]");
        return 0;
    }
    snprintf(p->host, sizeof p->host, "%s", host);
    return 1;
}

static int bool_key(bool *dst, const char *key, const char *v, char *why, size_t whysz)
{
    if (parse_bool(v, dst) == 0) return 1;
    snprintf(why, whysz, "%s must be true or false (yes/no, on/off, 1/0)", key);
    return 0;
}

static int set_plc(struct line_plc_config *p, const char *key, const char *v, char *why,
                   size_t whysz)
{
    if (strcmp(key, "listen") == 0) return set_plc_listen(p, v, why, whysz);
    if (strcmp(key, "allow_remote") == 0) return bool_key(&p->allow_remote, key, v, why, whysz);
    if (strcmp(key, "writable") == 0) return bool_key(&p->writable, key, v, why, whysz);
    if (strcmp(key, "window_ms") == 0)
        return int_key(&p->window_ms, key, v, 0, 3600000, why, whysz);
    snprintf(why, whysz, "unknown key '%s' in [plc]", key);
    return 0;
}

unsigned line_parse_events(const char *v)
{
    static const char *const names[] = {"alert", "review", "model", "result"};
    unsigned bits = 0;
    const char *p = v;
    for (;;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, ","), trimmed = len;
        while (trimmed && p[trimmed - 1] == ' ') trimmed--;
        unsigned bit = 0;
        for (unsigned i = 0; i < 4; i++)
            if (trimmed == strlen(names[i]) && strncmp(p, names[i], trimmed) == 0) bit = 1u << i;
        if (!bit) return 0;
        bits |= bit;
        if (!p[len]) return bits;
        p += len + 1;
    }
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

/* The webhook of that name, added (with defaults) when new. NULL when there are too many. */
static struct line_webhook_config *webhook(struct line_config *c, const char *name)
{
    for (int i = 0; i < c->nwebhooks; i++)
        if (strcmp(c->webhooks[i].name, name) == 0) return &c->webhooks[i];
    if (c->nwebhooks == LINE_MAX_WEBHOOKS) return NULL;
    struct line_webhook_config *w = &c->webhooks[c->nwebhooks++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->events = LINE_EVENT_ALERT | LINE_EVENT_REVIEW | LINE_EVENT_MODEL;
    w->timeout_ms = 5000;
    w->max_pending = 10000;
    w->max_age_s = 7 * 86400;
    return w;
}

static int set_webhook(struct line_config *c, const char *name, const char *key, const char *v,
                       char *why, size_t whysz)
{
    if (!valid_name(name)) {
        snprintf(why, whysz, "webhook name '%s' must be 1-63 of A-Z a-z 0-9 _ -", name);
        return 0;
    }
    struct line_webhook_config *w = webhook(c, name);
    if (!w) {
        snprintf(why, whysz, "at most %d [webhook.NAME] sections", LINE_MAX_WEBHOOKS);
        return 0;
    }
    if (strcmp(key, "url") == 0) {
        const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
                           : strncmp(v, "https://", 8) == 0 ? v + 8
                                                            : NULL;
        if (!host || !host[0] || host[0] == '/' || strpbrk(v, " \t\r\n")) {
            snprintf(why, whysz, "url must be an http:// or https:// URL with a host");
            return 0;
        }
        return copy(w->url, sizeof w->url, key, v, why, whysz);
    }
    if (strcmp(key, "events") == 0) {
        if (!(w->events = line_parse_events(v))) {
            snprintf(why, whysz,
                     "events must be a comma separated list of alert, review, model and result");
            return 0;
        }
        return 1;
    }
    if (strcmp(key, "secret") == 0) return copy(w->secret, sizeof w->secret, key, v, why, whysz);
    if (strcmp(key, "timeout_ms") == 0)
        return int_key(&w->timeout_ms, key, v, 100, 600000, why, whysz);
    if (strcmp(key, "max_pending") == 0)
        return int_key(&w->max_pending, key, v, 1, 10000000, why, whysz);
    if (strcmp(key, "max_age") == 0)
        return int_key(&w->max_age_s, key, v, 60, 365 * 86400, why, whysz);
    snprintf(why, whysz, "unknown key '%s' in [webhook.%s]", key, name);
    return 0;
}

/* Whether a numeric address is a loopback one. */
static bool loopback(const char *host)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    static const unsigned char one[16] = {[15] = 1};
    return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, one, 16) == 0;
}

int line_config_check(const struct line_config *c, char *why, size_t whysz)
{
    if (c->plc.host[0] && !loopback(c->plc.host) && !c->plc.allow_remote) {
        snprintf(why, whysz,
                 "[plc] listen on %s (not loopback) needs allow_remote = true: Modbus has no "
                 "authentication",
                 c->plc.host);
        return -1;
    }
    for (int i = 0; i < c->nwebhooks; i++)
        if (!c->webhooks[i].url[0]) {
            snprintf(why, whysz, "[webhook.%s] has no url", c->webhooks[i].name);
            return -1;
        }
    const struct line_mqtt_config *m = &c->mqtt;
    if (!m->cert_file[0] != !m->key_file[0]) {
        snprintf(why, whysz, "[mqtt] cert_file and key_file go together");
        return -1;
    }
    if (m->cert_file[0] && !m->ca_file[0]) {
        snprintf(why, whysz, "[mqtt] cert_file needs ca_file (TLS)");
        return -1;
    }
    return 0;
}

/* "HH:MM" at s (two digits each) into minutes after midnight. Returns 0 or -1. */
static int parse_hhmm(const char *s, size_t len, int *minutes)
{
    if (len != 5 || s[2] != ':') return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59) return -1;
    *minutes = h * 60 + m;
    return 0;
}

int line_parse_shifts(const char *v, int *minutes, char *why, size_t whysz)
{
    int n = 0;
    const char *p = v;
    while (*p == ' ') p++;
    if (*p == '\0') return 0; /* no shifts */
    for (;;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && p[trimmed - 1] == ' ') trimmed--;
        if (n == LINE_MAX_SHIFTS) {
            snprintf(why, whysz, "shifts: at most %d start times", LINE_MAX_SHIFTS);
            return -1;
        }
        if (parse_hhmm(p, trimmed, &minutes[n]) < 0) {
            snprintf(why, whysz,
                     "shifts must be start times HH:MM separated by commas, e.g. "
                     "06:00,14:00,22:00");
            return -1;
        }
        if (n && minutes[n] <= minutes[n - 1]) {
            snprintf(why, whysz, "shifts must be in ascending order within the day");
            return -1;
        }
        n++;
        if (p[len] == '\0') return n;
        p += len + 1;
    }
}

static int set_results(struct line_config *c, const char *key, const char *v, char *why,
                       size_t whysz)
{
    if (strcmp(key, "shifts") == 0) {
        int n = line_parse_shifts(v, c->shifts, why, whysz);
        if (n < 0) return 0;
        c->nshifts = n;
        return 1;
    }
    snprintf(why, whysz, "unknown key '%s' in [results]", key);
    return 0;
}

int line_config_set(struct line_config *c, const char *section, const char *key, const char *value,
                    char *why, size_t whysz)
{
    if (strcmp(section, "results") == 0) return set_results(c, key, value, why, whysz);
    if (strcmp(section, "mqtt") == 0) return set_mqtt(&c->mqtt, key, value, why, whysz);
    if (strcmp(section, "plc") == 0) return set_plc(&c->plc, key, value, why, whysz);
    if (strncmp(section, "webhook.", 8) == 0)
        return set_webhook(c, section + 8, key, value, why, whysz);
    return -1;
}
