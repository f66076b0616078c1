/* bench_common.h — timing helpers shared by the benchmark programs. */
#ifndef INSPECTD_BENCH_COMMON_H
#define INSPECTD_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gemm.h"
#include "rng.h"

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Peak resident set size of this process in MiB. */
static inline double bench_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Value of `--name N` on the command line, or def. */
static inline int bench_arg_int(int argc, char **argv, const char *name, int def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return atoi(argv[i + 1]);
    return def;
}

/* Value of `--name WORD` on the command line, or def. */
static inline const char *bench_arg_str(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return def;
}

/* Selects the GEMM backend and precision of `--gemm B` and `--precision P` (auto and f32 by
 * default) and prints `gemm: BACKEND VERSION (ISA) precision P`, and OpenBLAS's core beside it
 * (`openblas: 0.3.21 (Cooperlake)`); exits with 2 on a bad value or one this build or CPU cannot
 * run. */
static inline void bench_select_gemm(int argc, char **argv, const char *prog)
{
    enum gemm_backend b;
    enum gemm_precision p;
    const char *bs = bench_arg_str(argc, argv, "--gemm", "auto");
    const char *ps = bench_arg_str(argc, argv, "--precision", "f32");
    char err[256], what[128];
    if (gemm_backend_parse(bs, &b) || gemm_precision_parse(ps, &p)) {
        fprintf(stderr, "%s: --gemm auto|onednn|openblas, --precision f32|bf16\n", prog);
        exit(2);
    }
    struct gemm_info blas;
    if (gemm_select(GEMM_OPENBLAS, GEMM_F32, err, sizeof err) == 0) {
        gemm_get_info(&blas);
        printf("openblas: %s (%s)\n", blas.version, blas.isa);
    }
    if (gemm_select(b, p, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        exit(2);
    }
    gemm_describe(what, sizeof what);
    printf("gemm: %s precision %s\n", what, gemm_precision_name(p));
}

/* Fills p with standard normal values from a seed. */
static inline void bench_fill_random(float *p, size_t n, uint64_t seed)
{
    struct rng r = rng_seed(seed, 0);
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_normal(&r);
}

#endif
