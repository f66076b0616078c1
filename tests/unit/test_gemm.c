/* test_gemm.c — the GEMM layer: every backend against a double-precision product for all four
 * transpositions, strided operands, alpha and beta; one row (the k-NN's single query); the bf16
 * path within bf16's rounding and on the f32 path of gemm_f32; selection, its refusals and its
 * description. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rng.h"

static float *random_matrix(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    struct rng r = rng_seed(seed, 0);
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_range(&r, -1.0, 1.0);
    return p;
}

/* max |C - (alpha · op(A) · op(B) + beta · C0)| over max |reference|, for one call of fn with
 * operands stored with 3 spare columns (ld = width + 3). */
typedef void gemm_fn(bool, bool, int, int, int, float, const float *, int, const float *, int,
                     float, float *, int);
static double product_error(gemm_fn *fn, bool ta, bool tb, int M, int N, int K, float alpha,
                            float beta)
{
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + 3, ldb = bc + 3, ldc = N + 3;
    float *A = random_matrix((size_t)ar * lda, 1), *B = random_matrix((size_t)br * ldb, 2);
    float *C = random_matrix((size_t)M * ldc, 3), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    assert_non_null(C0);
    memcpy(C0, C, sizeof(float) * (size_t)M * ldc);
    fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0, scale = 1e-30;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            double want = alpha * s + beta * C0[(size_t)i * ldc + j];
            worst = fmax(worst, fabs(C[(size_t)i * ldc + j] - want));
            scale = fmax(scale, fabs(want));
        }
        for (int j = N; j < ldc; j++) /* the spare columns stay as they were */
            assert_true(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
    }
    free(A), free(B), free(C), free(C0);
    return worst / scale;
}

/* Every transposition, with and without alpha and beta, a few shapes including one row. */
static double worst_error(gemm_fn *fn)
{
    static const int shapes[][3] = {{1, 37, 19}, {17, 65, 64}, {65, 64, 65}, {40, 1, 9}};
    static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.125f, 1.0f}, {-2.0f, 0.5f}};
    double worst = 0;
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t a = 0; a < sizeof ab / sizeof ab[0]; a++)
                worst = fmax(worst, product_error(fn, t & 1, t >> 1 & 1, shapes[s][0], shapes[s][1],
                                                  shapes[s][2], ab[a][0], ab[a][1]));
    return worst;
}

static void select_ok(enum gemm_backend b, enum gemm_precision p)
{
    char err[256] = "";
    int rc = gemm_select(b, p, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static void openblas_matches_double(void **state)
{
    select_ok(GEMM_OPENBLAS, GEMM_F32);
    double e = worst_error(gemm);
    printf("  openblas f32: rel err %.2e\n", e);
    assert_true(e < 1e-5);
}

#ifdef INSPECTD_WITH_ONEDNN
static void onednn_matches_double(void **state)
{
    select_ok(GEMM_ONEDNN, GEMM_F32);
    double e = worst_error(gemm);
    printf("  onednn f32: rel err %.2e\n", e);
    assert_true(e < 1e-5);
}

/* bf16 keeps 8 bits of each input: a product of K terms errs by about 2^-8 relative to its
 * terms' sizes; gemm_f32 stays float32 whatever the precision. */
static void bf16_within_its_rounding(void **state)
{
    char err[256];
    if (gemm_select(GEMM_ONEDNN, GEMM_BF16, err, sizeof err)) {
        printf("  %s: skipped\n", err);
        skip();
    }
    double e = worst_error(gemm), e32 = worst_error(gemm_f32);
    printf("  onednn bf16: rel err %.2e; gemm_f32 beside it %.2e\n", e, e32);
    assert_true(e < 2e-2);
    assert_true(e > 1e-5); /* it did round */
    assert_true(e32 < 1e-5);
    struct gemm_info gi;
    gemm_get_info(&gi);
    assert_int_equal(gi.precision, GEMM_BF16);
    select_ok(GEMM_AUTO, GEMM_F32);
}
#endif

static void selection_and_description(void **state)
{
    enum gemm_backend b;
    enum gemm_precision p;
    assert_int_equal(gemm_backend_parse("openblas", &b), 0);
    assert_int_equal(b, GEMM_OPENBLAS);
    assert_int_equal(gemm_backend_parse("mkl", &b), -1);
    assert_int_equal(gemm_precision_parse("bf16", &p), 0);
    assert_int_equal(p, GEMM_BF16);
    assert_int_equal(gemm_precision_parse("fp16", &p), -1);
    assert_string_equal(gemm_backend_name(GEMM_ONEDNN), "onednn");
    assert_string_equal(gemm_precision_name(GEMM_F32), "f32");

    char err[256] = "", what[128];
    assert_int_equal(gemm_select(GEMM_OPENBLAS, GEMM_BF16, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs the onednn"));
    select_ok(GEMM_OPENBLAS, GEMM_F32);
    gemm_describe(what, sizeof what);
    assert_true(strncmp(what, "openblas 0.", 11) == 0);
    select_ok(GEMM_AUTO, GEMM_F32);
    struct gemm_info gi;
    gemm_get_info(&gi);
#ifdef INSPECTD_WITH_ONEDNN
    assert_int_equal(gi.backend, GEMM_ONEDNN); /* auto: oneDNN when built with it */
    gemm_describe(what, sizeof what);
    assert_true(strncmp(what, "onednn ", 7) == 0);
    assert_non_null(strchr(what, '('));
#else
    assert_int_equal(gi.backend, GEMM_OPENBLAS);
    assert_int_equal(gemm_select(GEMM_ONEDNN, GEMM_F32, err, sizeof err), -1);
    assert_non_null(strstr(err, "without oneDNN"));
#endif
    assert_int_equal(gi.precision, GEMM_F32);
    assert_true(gi.version[0] && gi.isa[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(openblas_matches_double),
#ifdef INSPECTD_WITH_ONEDNN
        cmocka_unit_test(onednn_matches_double),
        cmocka_unit_test(bf16_within_its_rounding),
#endif
        cmocka_unit_test(selection_and_description),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
