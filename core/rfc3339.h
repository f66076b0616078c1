/* rfc3339.h — points in time as RFC 3339 text, both ways, in Unix microseconds.
 *
 * Parsing accepts "2026-11-29T12:00:00Z" and "2026-11-29T13:00:00.25+01:00": the fraction is
 * optional, digits past microseconds are dropped, a space may stand for the 'T' (RFC 3339 section
 * 5.6 allows it) and the letters may be lower case. Nothing is guessed: no date-only form, no local
 * time, no trailing text, nothing before 1970. Formatting writes UTC with six fraction digits
 * ("2024-05-01T12:00:00.123456Z"). */
#ifndef INSPECTD_RFC3339_H
#define INSPECTD_RFC3339_H

#include <stddef.h>
#include <stdint.h>

/* Sets *us and returns 0, or returns -1 (with *us untouched). */
int rfc3339_parse(const char *s, int64_t *us);

/* Writes us (>= 0) into buf; RFC3339_LEN bytes always suffice. Returns buf. */
#define RFC3339_LEN 40
char *rfc3339_format(int64_t us, char *buf, size_t n);

#endif
