/* test_knn.c — AUROC on hand-computed cases, exact k-NN against brute force, IDX reading of
 * the real Fashion-MNIST files and of broken ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auroc.h"
#include "idx.h"
#include "knn.h"
#include "rng.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static void auroc_hand_computed(void **state)
{
    const unsigned char lab[4] = {0, 0, 1, 1};
    const float perfect[4] = {0.1f, 0.2f, 0.8f, 0.9f}, reversed[4] = {0.9f, 0.8f, 0.2f, 0.1f};
    const float ties[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    assert_float_equal(auroc(perfect, lab, 4), 1.0, 1e-12);
    assert_float_equal(auroc(reversed, lab, 4), 0.0, 1e-12);
    assert_float_equal(auroc(ties, lab, 4), 0.5, 1e-12);
    /* positives at 0.4 and 0.6, negatives at 0.5 and 0.6: pairs (0.4,0.5)=0, (0.4,0.6)=0,
     * (0.6,0.5)=1, (0.6,0.6)=½ → 1.5 / 4 */
    const float mixed[4] = {0.5f, 0.6f, 0.4f, 0.6f};
    assert_float_equal(auroc(mixed, lab, 4), 0.375, 1e-12);
    const unsigned char one_class[4] = {1, 1, 1, 1};
    assert_float_equal(auroc(perfect, one_class, 4), -1.0, 0);
}

static void knn_matches_brute_force(void **state)
{
    enum { N = 300, Q = 37, D = 13, K = 3 };
    struct rng r = rng_seed(5, 0);
    float *bank = malloc(sizeof(float) * N * D), *q = malloc(sizeof(float) * Q * D);
    float got[N];
    for (int i = 0; i < N * D; i++) bank[i] = (float)rng_normal(&r);
    for (int i = 0; i < Q * D; i++) q[i] = (float)rng_normal(&r);
    for (int metric = 0; metric < 2; metric++) {
        struct knn_bank b;
        assert_int_equal(knn_bank_build(&b, bank, N, D, (enum knn_metric)metric), 0);
        assert_int_equal(knn_score(&b, q, Q, K, false, got), 0);
        for (int i = 0; i < Q; i++) {
            double best[K] = {INFINITY, INFINITY, INFINITY};
            for (int j = 0; j < N; j++) {
                double d = 0, qq = 0, bb = 0, dot = 0;
                for (int c = 0; c < D; c++) {
                    double x = q[i * D + c], y = bank[j * D + c];
                    d += (x - y) * (x - y), qq += x * x, bb += y * y, dot += x * y;
                }
                d = metric == KNN_L2 ? sqrt(d) : 1.0 - dot / sqrt(qq * bb);
                for (int s = 0; s < K; s++)
                    if (d < best[s]) {
                        for (int t = K - 1; t > s; t--) best[t] = best[t - 1];
                        best[s] = d;
                        break;
                    }
            }
            assert_float_equal(got[i], (best[0] + best[1] + best[2]) / 3, 2e-4);
        }
        /* leave-one-out: a bank row is not its own neighbour */
        assert_int_equal(knn_score(&b, bank, N, 1, true, got), 0);
        assert_true(got[0] > 1e-3);
        assert_int_equal(knn_score(&b, bank, N, 1, false, got), 0);
        assert_true(got[0] < 1e-2);
        assert_int_equal(knn_score(&b, q, Q, N + 1, false, got), -1);
        knn_bank_free(&b);
    }
    free(bank), free(q);
}

/* knn_search's neighbours against a brute-force ranking (double precision), across tiles and
 * workers: 5000 bank rows span three 2048-row tiles and two workers; 70 queries two query tiles. */
static void knn_search_finds_exact_neighbours(void **state)
{
    enum { N = 5000, Q = 70, D = 24, K = 5 };
    struct rng r = rng_seed(9, 0);
    float *bank = malloc(sizeof(float) * N * D), *q = malloc(sizeof(float) * Q * D);
    float *dist[2] = {malloc(sizeof(float) * Q * K), malloc(sizeof(float) * Q * K)};
    int *idx[2] = {malloc(sizeof(int) * Q * K), malloc(sizeof(int) * Q * K)};
    double *want = malloc(sizeof(double) * N);
    for (int i = 0; i < N * D; i++) bank[i] = (float)rng_normal(&r);
    for (int i = 0; i < Q * D; i++) q[i] = (float)rng_normal(&r);
    struct knn_bank b;
    assert_int_equal(knn_bank_build(&b, bank, N, D, KNN_L2), 0);
    for (int t = 0; t < 2; t++)
        assert_int_equal(knn_search(&b, q, Q, K, false, t + 1, dist[t], idx[t]), 0);
    assert_memory_equal(idx[0], idx[1], sizeof(int) * Q * K); /* one worker or two: same */
    for (int i = 0; i < Q; i++) {
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int c = 0; c < D; c++) {
                double x = (double)q[i * D + c] - bank[j * D + c];
                d += x * x;
            }
            want[j] = d;
        }
        for (int s = 0; s < K; s++) {
            int best = -1;
            for (int j = 0; j < N; j++) {
                bool taken = false;
                for (int u = 0; u < s; u++) taken |= idx[0][i * K + u] == j;
                if (!taken && (best < 0 || want[j] < want[best])) best = j;
            }
            /* the same row, or a row at the same distance within float rounding */
            assert_true(idx[0][i * K + s] == best ||
                        fabs(want[idx[0][i * K + s]] - want[best]) < 1e-3 * want[best]);
            assert_float_equal(dist[0][i * K + s], want[best], 1e-3 * want[best] + 1e-4);
        }
    }
    /* single query (the matrix-vector path) agrees with the batched one */
    float d1[K];
    int i1[K];
    assert_int_equal(knn_search(&b, q + 3 * D, 1, K, false, 2, d1, i1), 0);
    assert_memory_equal(i1, idx[0] + 3 * K, sizeof i1);
    /* leave-one-out never returns the query's own row; without it, the row finds itself */
    float *self_d = malloc(sizeof(float) * N);
    int *self_i = malloc(sizeof(int) * N);
    assert_int_equal(knn_search(&b, bank, N, 1, true, 2, self_d, self_i), 0);
    for (int i = 0; i < N; i++) assert_true(self_i[i] != i && self_d[i] > 0.0f);
    assert_int_equal(knn_search(&b, bank, N, 1, false, 2, self_d, self_i), 0);
    for (int i = 0; i < N; i++) assert_int_equal(self_i[i], i);
    free(self_d), free(self_i);
    knn_bank_free(&b);
    free(bank), free(q), free(dist[0]), free(dist[1]), free(idx[0]), free(idx[1]), free(want);
}

/* Equal distances keep the lower bank row first, whichever worker saw it. */
static void knn_search_ties_go_to_the_lower_row(void **state)
{
    enum { N = 4100, D = 2 };
    float *bank = calloc(N * D, sizeof(float)), q[D] = {0, 0};
    for (int i = 0; i < N; i++) bank[i * D] = 1.0f; /* every row at distance 1 */
    struct knn_bank b;
    assert_int_equal(knn_bank_build(&b, bank, N, D, KNN_L2), 0);
    float dist[3];
    int idx[3];
    for (int t = 1; t <= 2; t++) {
        assert_int_equal(knn_search(&b, q, 1, 3, false, t, dist, idx), 0);
        assert_int_equal(idx[0], 0), assert_int_equal(idx[1], 1), assert_int_equal(idx[2], 2);
    }
    assert_int_equal(knn_search(&b, q, 1, N + 1, false, 2, dist, idx), -1);
    knn_bank_free(&b);
    free(bank);
}

/* Patch scores are each patch's nearest-bank distance; image score max or top-q mean. */
static void patch_scores_by_brute_force(void **state)
{
    enum { N = 400, Q = 3, T = 10, D = 6 };
    struct rng r = rng_seed(13, 0);
    float bank[N * D], tok[Q * T * D], img[Q], patch[Q * T], img_q[Q];
    for (int i = 0; i < N * D; i++) bank[i] = (float)rng_normal(&r);
    for (int i = 0; i < Q * T * D; i++) tok[i] = (float)rng_normal(&r);
    struct knn_bank b;
    assert_int_equal(knn_bank_build(&b, bank, N, D, KNN_L2), 0);
    assert_int_equal(knn_patch_score(&b, tok, Q, T, 0.0f, 2, img, patch), 0);
    assert_int_equal(knn_patch_score(&b, tok, Q, T, 0.3f, 1, img_q, NULL), 0);
    for (int i = 0; i < Q; i++) {
        double want[T], mx = 0;
        for (int t = 0; t < T; t++) {
            want[t] = INFINITY;
            for (int j = 0; j < N; j++) {
                double d = 0;
                for (int c = 0; c < D; c++) {
                    double x = (double)tok[(i * T + t) * D + c] - bank[j * D + c];
                    d += x * x;
                }
                if (d < want[t]) want[t] = d;
            }
            want[t] = sqrt(want[t]);
            assert_float_equal(patch[i * T + t], want[t], 1e-4);
            if (want[t] > mx) mx = want[t];
        }
        assert_float_equal(img[i], mx, 1e-4);
        /* top 30 % of 10 patches: the mean of the 3 largest */
        for (int a = 0; a < T; a++)
            for (int c = a + 1; c < T; c++)
                if (want[c] > want[a]) {
                    double t = want[a];
                    want[a] = want[c], want[c] = t;
                }
        assert_float_equal(img_q[i], (want[0] + want[1] + want[2]) / 3, 1e-4);
    }
    knn_bank_free(&b);
}

/* Greedy k-centre: each pick is the row farthest from those chosen before, and the covering
 * radius is within twice the optimum (brute force over every pair of centres on a small set). */
static void coreset_is_greedy_k_centre(void **state)
{
    enum { N = 40, D = 3, M = 2 };
    struct rng r = rng_seed(21, 0);
    float x[N * D];
    for (int i = 0; i < N * D; i++) x[i] = (float)rng_normal(&r);
    int idx[N];
    float radius;
    assert_int_equal(knn_coreset(x, N, D, M, 0, 7, 2, idx, &radius), 0);
#define DIST(a, b)                                                                                 \
    sqrt(((double)x[(a)*D] - x[(b)*D]) * ((double)x[(a)*D] - x[(b)*D]) +                           \
         ((double)x[(a)*D + 1] - x[(b)*D + 1]) * ((double)x[(a)*D + 1] - x[(b)*D + 1]) +           \
         ((double)x[(a)*D + 2] - x[(b)*D + 2]) * ((double)x[(a)*D + 2] - x[(b)*D + 2]))
    /* the second pick is the row farthest from the first */
    for (int i = 0; i < N; i++) assert_true(DIST(i, idx[0]) <= DIST(idx[1], idx[0]) + 1e-5);
    double cover = 0, best = INFINITY;
    for (int i = 0; i < N; i++) {
        double d = fmin(DIST(i, idx[0]), DIST(i, idx[1]));
        cover = fmax(cover, d);
    }
    assert_float_equal(radius, cover, 1e-4);
    for (int a = 0; a < N; a++)
        for (int c = a + 1; c < N; c++) {
            double rad = 0;
            for (int i = 0; i < N; i++) rad = fmax(rad, fmin(DIST(i, a), DIST(i, c)));
            best = fmin(best, rad);
        }
    assert_true(cover <= 2 * best + 1e-5);
#undef DIST
    /* all n: every row once; projected to fewer dimensions still picks distinct rows */
    assert_int_equal(knn_coreset(x, N, D, N, 0, 7, 1, idx, NULL), 0);
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[idx[i]]++;
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    assert_int_equal(knn_coreset(x, N, D, 10, 2, 7, 2, idx, NULL), 0);
    for (int i = 0; i < 10; i++)
        for (int j = i + 1; j < 10; j++) assert_true(idx[i] != idx[j]);
    assert_int_equal(knn_coreset(x, N, D, N + 1, 0, 7, 1, idx, NULL), -1);
}

/* A threshold from normal scores flags about the requested share of fresh normal scores. */
static void calibration_hits_the_false_alarm_rate(void **state)
{
    enum { N = 20000 };
    struct rng r = rng_seed(31, 0);
    float *cal = malloc(sizeof(float) * N), *fresh = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) cal[i] = (float)fabs(rng_normal(&r));
    for (int i = 0; i < N; i++) fresh[i] = (float)fabs(rng_normal(&r));
    const double rates[3] = {0.005, 0.01, 0.05};
    for (int k = 0; k < 3; k++) {
        float t;
        assert_int_equal(knn_calibrate(cal, N, rates[k], &t), 0);
        int above = 0;
        for (int i = 0; i < N; i++) above += fresh[i] > t;
        double got = (double)above / N;
        assert_true(fabs(got - rates[k]) < 0.25 * rates[k] + 0.001);
    }
    float one = 3.0f, t;
    assert_int_equal(knn_calibrate(&one, 1, 0.005, &t), 0);
    assert_float_equal(t, 3.0f, 0);
    free(cal), free(fresh);
}

static void idx_reads_fashion_mnist(void **state)
{
    struct idx_array a;
    char err[256];
    assert_int_equal(idx_load(FMNIST "t10k-images-idx3-ubyte.gz", &a, err, sizeof err), 0);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.dims[0], 10000);
    assert_int_equal(a.dims[1], 28);
    assert_int_equal(a.dims[2], 28);
    idx_free(&a);
    assert_int_equal(idx_load(FMNIST "t10k-labels-idx1-ubyte.gz", &a, err, sizeof err), 0);
    assert_int_equal(a.count, 10000);
    for (size_t i = 0; i < a.count; i++) assert_true(a.data[i] < 10);
    idx_free(&a);
}

static void idx_refuses_broken_files(void **state)
{
    char path[] = "/tmp/inspectd-idx-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const unsigned char bad_magic[8] = {0, 0, 0x0d, 1, 0, 0, 0, 4};
    assert_int_equal(write(fd, bad_magic, 8), 8);
    close(fd);
    struct idx_array a;
    char err[256];
    assert_int_equal(idx_load(path, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "magic"));
    FILE *f = fopen(path, "wb");
    const unsigned char short_data[10] = {0, 0, 8, 1, 0, 0, 0, 100, 1, 2};
    fwrite(short_data, 1, 10, f);
    fclose(f);
    assert_int_equal(idx_load(path, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "shorter"));
    unlink(path);
    assert_int_equal(idx_load("/nonexistent.gz", &a, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auroc_hand_computed),
        cmocka_unit_test(knn_matches_brute_force),
        cmocka_unit_test(knn_search_finds_exact_neighbours),
        cmocka_unit_test(knn_search_ties_go_to_the_lower_row),
        cmocka_unit_test(patch_scores_by_brute_force),
        cmocka_unit_test(coreset_is_greedy_k_centre),
        cmocka_unit_test(calibration_hits_the_false_alarm_rate),
        cmocka_unit_test(idx_reads_fashion_mnist),
        cmocka_unit_test(idx_refuses_broken_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
