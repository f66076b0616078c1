/* test_scoring.c — AUROC on hand-computed cases, exact k-NN against brute force, IDX reading of
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
        cmocka_unit_test(idx_reads_fashion_mnist),
        cmocka_unit_test(idx_refuses_broken_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
