/* line_config.h — the keys of the sections that concern the line's outputs ([results], [mqtt],
 * [plc], [webhook.NAME]),
 * parsed for config.c (which owns the file, its lines and its errors) and checked here. */
#ifndef INSPECTD_LINE_CONFIG_H
#define INSPECTD_LINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define LINE_MAX_SHIFTS 12

/* [mqtt]: the MQTT output (line/mqtt.h); off while host is "". */
struct line_mqtt_config {
    char host[256];
    int port;                /* 1..65535 (1883) */
    char client_id[128];     /* "" : inspectd-HOSTNAME */
    char username[128];      /* "" : none */
    char password_file[512]; /* its first line is the password; "" : none */
    char ca_file[512];       /* TLS when set: the broker's CA (PEM) */
    char cert_file[512];     /* with key_file: the client's certificate */
    char key_file[512];
    char topic_prefix[128]; /* "inspectd" */
    int qos_results;        /* 0..2 (0) */
    int qos_alerts;         /* 0..2 (1) */
    int max_queued;         /* messages waiting for the broker, at most (10000) */
    int keepalive_s;        /* 5..3600 (30) */
};

/* [plc]: the Modbus TCP server (line/plc.h); off while host is "". */
struct line_plc_config {
    char host[64];     /* numeric IPv4 or IPv6 address */
    int port;          /* 1..65535 */
    bool allow_remote; /* a non-loopback host needs it */
    bool writable;     /* false: every register is read-only */
    int window_ms;     /* a part without a verdict this long after it was stored is unscored
                          (late); 0: no window */
};

/* What a webhook is sent. */
enum { LINE_EVENT_ALERT = 1, LINE_EVENT_REVIEW = 2, LINE_EVENT_MODEL = 4, LINE_EVENT_RESULT = 8 };

#define LINE_MAX_WEBHOOKS 8

/* [webhook.NAME]: one receiver of events (line/webhook.h). */
struct line_webhook_config {
    char name[64];    /* [A-Za-z0-9_-]{1,63} */
    char url[1024];   /* http:// or https:// */
    unsigned events;  /* LINE_EVENT_* (alert, review, model) */
    char secret[256]; /* "" : unsigned */
    int timeout_ms;   /* 100..600000 (5000) */
    int max_pending;  /* rows waiting, at most (10000) */
    int max_age_s;    /* rows older than this are dropped (7 days) */
};

struct line_config {
    /* [results] shifts: the local times of day (minutes after midnight, ascending) at which a
     * shift starts; nshifts 0: none (the summary is by hour only) */
    int shifts[LINE_MAX_SHIFTS];
    int nshifts;
    struct line_mqtt_config mqtt;
    struct line_plc_config plc;
    struct line_webhook_config webhooks[LINE_MAX_WEBHOOKS];
    int nwebhooks;
};

/* "alert,review,result": event kinds into LINE_EVENT_* bits. Returns the bits, or 0 when a name
 * is unknown or the list empty. */
unsigned line_parse_events(const char *v);

void line_config_defaults(struct line_config *c);

/* Cross-key checks after the whole file was read (TLS files that go together). Returns 0, or -1
 * with the reason in why. */
int line_config_check(const struct line_config *c, char *why, size_t whysz);

/* Applies key = value of [section]. Returns 1 when applied, 0 when the key is unknown or its
 * value bad (why says so), -1 when the section is not one of the line's. */
int line_config_set(struct line_config *c, const char *section, const char *key, const char *value,
                    char *why, size_t whysz);

/* "06:00,14:00,22:00": up to LINE_MAX_SHIFTS times HH:MM, ascending, into minutes after midnight
 * ("" or blanks: none). Returns the count, or -1 with the reason in why. */
int line_parse_shifts(const char *v, int *minutes, char *why, size_t whysz);

#endif
