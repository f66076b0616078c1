/* bench_knn.c — inspectd's exact k-NN (knn_search) on a bank and queries read from raw float32
 * files: prints the median search time and writes the neighbours' rows for comparison with
 * another library (tests/bench/knn_compare.py drives it beside FAISS).
 *
 *   bench_knn BANK.f32 N QUERIES.f32 NQ DIM K REPS THREADS OUT_IDX.i32 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "knn.h"

static float *read_floats(const char *path, size_t n)
{
    float *x = malloc(sizeof(float) * n);
    FILE *f = fopen(path, "rb");
    if (!x || !f || fread(x, sizeof(float), n, f) != n) {
        fprintf(stderr, "bench_knn: cannot read %zu floats from %s\n", n, path);
        exit(1);
    }
    fclose(f);
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: bench_knn BANK N QUERIES NQ DIM K REPS THREADS OUT_IDX\n");
        return 64;
    }
    int n = atoi(argv[2]), nq = atoi(argv[4]), dim = atoi(argv[5]), k = atoi(argv[6]);
    int reps = atoi(argv[7]), threads = atoi(argv[8]);
    float *bank = read_floats(argv[1], (size_t)n * dim),
          *q = read_floats(argv[3], (size_t)nq * dim);
    struct knn_bank b;
    float *dist = malloc(sizeof(float) * (size_t)nq * k);
    int *idx = malloc(sizeof(int) * (size_t)nq * k);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!dist || !idx || !t || knn_bank_build(&b, bank, n, dim, KNN_L2)) {
        fprintf(stderr, "bench_knn: out of memory\n");
        return 1;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (knn_search(&b, q, nq, k, false, threads, dist, idx)) {
            fprintf(stderr, "bench_knn: search failed\n");
            return 1;
        }
        t[r] = bench_now() - t0;
    }
    FILE *f = fopen(argv[9], "wb");
    if (!f || fwrite(idx, sizeof(int), (size_t)nq * k, f) != (size_t)nq * k || fclose(f)) {
        fprintf(stderr, "bench_knn: cannot write %s\n", argv[9]);
        return 1;
    }
    printf("%.6f\n", bench_median(t, reps));
    knn_bank_free(&b);
    free(bank), free(q), free(dist), free(idx), free(t);
    return 0;
}
