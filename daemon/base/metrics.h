/* metrics.h — counters and histograms that threads update without locks and /metrics renders in
 * the Prometheus text format (version 0.0.4).
 *
 * Invariants: counters only grow; a histogram's bucket counts are per bucket (rendering makes them
 * cumulative), bounds are strictly increasing and at most METRICS_MAX_BUCKETS. */
#ifndef INSPECTD_METRICS_H
#define INSPECTD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_MAX_BUCKETS 16

/* What happened to one camera's frames. */
struct metrics_camera {
    atomic_uint_fast64_t captured;      /* frames the source delivered */
    atomic_uint_fast64_t stored;        /* frames committed to the database */
    atomic_uint_fast64_t dropped;       /* dropped from a full queue */
    atomic_uint_fast64_t failed;        /* lost to an encode or database error */
    atomic_uint_fast64_t source_errors; /* open or read failures of the source */
};

struct metrics_histogram {
    size_t nbounds;
    double bounds[METRICS_MAX_BUCKETS];                    /* upper bounds, seconds */
    atomic_uint_fast64_t buckets[METRICS_MAX_BUCKETS + 1]; /* last one is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
};

/* Sets the bucket bounds (n <= METRICS_MAX_BUCKETS, increasing) and zeroes the counts. */
void metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t n);
void metrics_histogram_observe(struct metrics_histogram *h, int64_t ns);

/* Writes "# HELP", "# TYPE histogram" and the _bucket/_sum/_count lines. */
void metrics_write_histogram(FILE *out, const char *name, const char *help,
                             struct metrics_histogram *h);
/* Writes "# HELP" and "# TYPE" lines for a metric family. */
void metrics_write_header(FILE *out, const char *name, const char *type, const char *help);

/* Writes a metric family of one sample without labels: its "# HELP" and "# TYPE" lines, then
 * "NAME VALUE" with VALUE formatted by fmt. */
void metrics_write_one(FILE *out, const char *name, const char *type, const char *help,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Escapes a label value (backslash, quote, newline) into buf. Returns buf. */
const char *metrics_label(const char *value, char *buf, size_t bufsz);

#endif
