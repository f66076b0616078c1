/* metrics.c — lock-free histogram updates and Prometheus text rendering. */
#include <assert.h>
#include <string.h>

#include "metrics.h"

#include <stdarg.h>

void metrics_histogram_init(struct metrics_histogram *h, const double *bounds, size_t n)
{
    assert(n <= METRICS_MAX_BUCKETS);
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || bounds[i] > bounds[i - 1]);
        h->bounds[i] = bounds[i];
    }
    h->nbounds = n;
}

void metrics_histogram_observe(struct metrics_histogram *h, int64_t ns)
{
    double s = (double)ns * 1e-9;
    size_t b = 0;
    while (b < h->nbounds && s > h->bounds[b]) b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)(ns > 0 ? ns : 0), memory_order_relaxed);
}

void metrics_write_header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_write_one(FILE *out, const char *name, const char *type, const char *help,
                       const char *fmt, ...)
{
    metrics_write_header(out, name, type, help);
    fprintf(out, "%s ", name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

void metrics_write_histogram(FILE *out, const char *name, const char *help,
                             struct metrics_histogram *h)
{
    metrics_write_header(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= h->nbounds; b++) {
        cumulative += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        if (b < h->nbounds)
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[b],
                    (unsigned long long)cumulative);
        else
            fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    }
    fprintf(out, "%s_sum %.9f\n", name, (double)atomic_load(&h->sum_ns) * 1e-9);
    fprintf(out, "%s_count %llu\n", name, (unsigned long long)atomic_load(&h->count));
}

const char *metrics_label(const char *value, char *buf, size_t bufsz)
{
    assert(bufsz > 0);
    size_t n = 0;
    for (const char *s = value; *s && n + 2 < bufsz; s++) {
        if (*s == '\\' || *s == '"') {
            buf[n++] = '\\';
            buf[n++] = *s;
        } else if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
    return buf;
}
