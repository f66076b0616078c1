/* line_config.c — [results] keys. */
#include "line_config.h"

#include <stdio.h>
#include <string.h>

void line_config_defaults(struct line_config *c)
{
    memset(c, 0, sizeof *c);
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
    return -1;
}
