/* rfc3339.c — RFC 3339 times to and from Unix microseconds (see rfc3339.h). */
#include "rfc3339.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Reads exactly n decimal digits at *p and advances it. Returns the value, or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static bool expect(const char **p, const char *any)
{
    if (**p == '\0' || !strchr(any, **p)) return false;
    (*p)++;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to a proleptic Gregorian date (negative before it). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The fraction after the seconds' '.', as microseconds (digits past the sixth are dropped). */
static int fraction_us(const char **p)
{
    const char *s = *p;
    size_t n = strspn(s, "0123456789");
    if (n == 0) return -1;
    int us = 0;
    for (size_t i = 0; i < 6; i++) us = us * 10 + (i < n ? s[i] - '0' : 0);
    *p += n;
    return us;
}

/* The zone: 'Z' or ±HH:MM, as seconds east of UTC. Returns 0, or -1. */
static int zone_offset(const char **p, int *offset_s)
{
    if (expect(p, "Zz")) {
        *offset_s = 0;
        return 0;
    }
    char sign = **p;
    if (!expect(p, "+-")) return -1;
    int hh = digits(p, 2);
    if (hh < 0 || hh > 23 || !expect(p, ":")) return -1;
    int mm = digits(p, 2);
    if (mm < 0 || mm > 59) return -1;
    *offset_s = (sign == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

int rfc3339_parse(const char *s, int64_t *us)
{
    const char *p = s;
    int year = digits(&p, 4);
    if (year < 0 || !expect(&p, "-")) return -1;
    int month = digits(&p, 2);
    if (month < 1 || month > 12 || !expect(&p, "-")) return -1;
    int day = digits(&p, 2);
    if (day < 1 || day > days_in_month(year, month) || !expect(&p, "Tt ")) return -1;
    int hour = digits(&p, 2);
    if (hour < 0 || hour > 23 || !expect(&p, ":")) return -1;
    int minute = digits(&p, 2);
    if (minute < 0 || minute > 59 || !expect(&p, ":")) return -1;
    int second = digits(&p, 2); /* 60: a leap second, counted as the next one */
    if (second < 0 || second > 60) return -1;
    int frac = 0, offset = 0;
    if (*p == '.' && (p++, (frac = fraction_us(&p)) < 0)) return -1;
    if (zone_offset(&p, &offset) < 0 || *p != '\0') return -1;
    int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    if (secs - offset < 0) return -1; /* before 1970: no Unix microseconds either */
    *us = (secs - offset) * 1000000 + frac;
    return 0;
}

char *rfc3339_format(int64_t us, char *buf, size_t n)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t len = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + len, n - len, ".%06lldZ", (long long)(us % 1000000));
    return buf;
}
