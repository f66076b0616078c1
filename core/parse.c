/* parse.c — integers, reals, booleans, ages and times from text (see parse.h). */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "array.h"
#include "rfc3339.h"

/* s is an optional '-' and then one or more digits, nothing else. */
static bool integer_text(const char *s)
{
    if (!s) return false;
    if (*s == '-') s++;
    return *s && strspn(s, "0123456789") == strlen(s);
}

int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!integer_text(s)) return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int parse_long(const char *s, long lo, long hi, long *out)
{
    int64_t v;
    if (parse_i64(s, lo, hi, &v)) return -1;
    *out = (long)v;
    return 0;
}

int parse_int(const char *s, int lo, int hi, int *out)
{
    int64_t v;
    if (parse_i64(s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
    if (!integer_text(s) || *s == '-') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return -1;
    *out = v;
    return 0;
}

int parse_double(const char *s, double lo, double hi, bool lo_open, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v > hi || (lo_open ? !(v > lo) : !(v >= lo))) return -1;
    *out = v;
    return 0;
}

int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (!s) return -1;
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
    }
    return -1;
}

int parse_age_us(const char *s, int64_t *out)
{
    static const char units[] = "smhd";
    static const double seconds[] = {1, 60, 3600, 86400};
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || isspace((unsigned char)*s)) return -1;
    const char *u = strchr(units, s[n - 1]);
    char *end;
    errno = 0;
    double age = strtod(s, &end);
    if (!u || end != s + n - 1 || errno || !isfinite(age) || age < 0) return -1;
    double us = age * seconds[u - units] * 1e6;
    if (!(us < 9.2e18)) return -1;
    *out = (int64_t)us;
    return 0;
}

int parse_time_us(const char *s, int64_t *out)
{
    if (s && *s && strspn(s, "0123456789") == strlen(s)) return parse_i64(s, 0, INT64_MAX, out);
    return rfc3339_parse(s ? s : "", out);
}
