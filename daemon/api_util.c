/* api_util.c — parsing shared by the API files: times in query strings. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return false;
    return true;
}

int api_parse_time(const char *s, int64_t *us)
{
    if (!s || !*s) return -1;
    if (http_parse_int(s, 0, INT64_MAX, us) == 0) return 0; /* Unix microseconds */
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
    if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2) ||
        s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return -1;
    int y, mo, d, h, mi, sec;
    sscanf(s, "%4d-%2d-%2d", &y, &mo, &d);
    sscanf(s + 11, "%2d:%2d:%2d", &h, &mi, &sec);
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60) return -1;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++, n++)
            if (n < 6) frac = frac * 10 + (*p - '0');
        if (n == 0) return -1;
        for (; n < 6; n++) frac *= 10;
    }
    int64_t offset = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
               p[6] == '\0') {
        int oh = (p[1] - '0') * 10 + (p[2] - '0'), om = (p[4] - '0') * 10 + (p[5] - '0');
        if (oh > 23 || om > 59) return -1;
        offset = (int64_t)(oh * 60 + om) * 60 * (*p == '+' ? 1 : -1);
    } else {
        return -1;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    if (secs < 0) return -1;
    *us = secs * 1000000 + frac;
    return 0;
}
