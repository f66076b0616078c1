/* parse.h — the one set of parsers for what people type into config files, camera parameters,
 * query strings and command lines: integers and reals in a range, booleans, ages, points in time.
 *
 * Invariant: a string is accepted whole or refused (no empty string, no leading or trailing text,
 * nothing guessed). Every function returns 0 with *out set, or -1 with *out untouched. */
#ifndef INSPECTD_PARSE_H
#define INSPECTD_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Decimal integers (an optional sign, then digits) in [lo, hi]. */
int parse_int(const char *s, int lo, int hi, int *out);
int parse_long(const char *s, long lo, long hi, long *out);
int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Digits only (no sign), any value a uint64_t holds. */
int parse_u64(const char *s, uint64_t *out);

/* A finite number (strtod's forms) in [lo, hi]; in (lo, hi] when lo_open. */
int parse_double(const char *s, double lo, double hi, bool lo_open, double *out);

/* The one vocabulary, case-insensitive: true, yes, on, 1 and false, no, off, 0. */
int parse_bool(const char *s, bool *out);

/* An age: a number of seconds, minutes, hours or days ("90s", "1.5h", "7d"), from 0, as
 * microseconds. */
int parse_age_us(const char *s, int64_t *out);

/* A point in time as Unix microseconds: RFC 3339 (see rfc3339.h) or Unix microseconds (digits
 * only). Never before 1970. */
int parse_time_us(const char *s, int64_t *out);

#endif
