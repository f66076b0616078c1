/* test_embedding.c — backbone inference into embeddings: every kind against the model's own
 * tokens, thread counts agreeing bit for bit, and the layer taps against the tokens of the model
 * and of a copy cut to fewer blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "embedding.h"
#include "layers.h"
#include "rng.h"
#include "vit.h"

#define N 5
#define S 12

static const struct vit_config tiny = {
    .dim = 8,
    .depth = 3,
    .heads = 2,
    .mlp_ratio = 2,
    .patch = 4,
    .img_size = S,
    .in_chans = 1,
};

struct fixture {
    struct vit_model m;
    float images[N * S * S];
};

static int setup(void **state)
{
    char err[128];
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(vit_create(&f->m, &tiny, false, err, sizeof err), 0);
    vit_init_weights(&f->m, 3);
    /* non-trivial norm weights so that taps must use them */
    struct rng r = rng_seed(4, 0);
    for (int d = 0; d < tiny.dim; d++) {
        f->m.w.norm_w[d] = 0.5f + rng_uniform(&r);
        f->m.w.norm_b[d] = rng_uniform(&r) - 0.5f;
    }
    for (int i = 0; i < N * S * S; i++) f->images[i] = 2.0f * rng_uniform(&r) - 1.0f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vit_destroy(&f->m);
    free(f);
    return 0;
}

static float *extract(struct fixture *f, enum embedding_kind kind, int threads)
{
    char err[128];
    float *out = malloc(sizeof(float) * N * (size_t)embedding_dim(&tiny, kind));
    assert_non_null(out);
    assert_int_equal(
        embedding_extract(&f->m, f->images, N, S, S, kind, threads, out, err, sizeof err), 0);
    return out;
}

static float *extract_layers(struct fixture *f, unsigned layers, int threads)
{
    char err[128];
    float *out = malloc(sizeof(float) * N * (size_t)embedding_layers_dim(&tiny, layers));
    assert_non_null(out);
    assert_int_equal(
        embedding_extract_layers(&f->m, f->images, N, S, S, layers, threads, out, err, sizeof err),
        0);
    return out;
}

static void kinds_agree_with_tokens(void **state)
{
    struct fixture *f = *state;
    int D = tiny.dim, T = 1 + (S / 4) * (S / 4);
    float *tok = extract(f, EMBEDDING_TOKENS, 1), *cls = extract(f, EMBEDDING_CLS, 1);
    float *mean = extract(f, EMBEDDING_PATCH_MEAN, 1), *both = extract(f, EMBEDDING_CLS_PATCH, 1);
    for (int n = 0; n < N; n++) {
        const float *t = tok + (size_t)n * T * D;
        for (int d = 0; d < D; d++) {
            double m = 0;
            for (int i = 1; i < T; i++) m += t[i * D + d];
            m /= T - 1;
            assert_true(cls[n * D + d] == t[d]);
            assert_float_equal(mean[n * D + d], m, 1e-5);
            assert_true(both[n * 2 * D + d] == t[d]);
            assert_true(both[n * 2 * D + D + d] == mean[n * D + d]);
        }
    }
    free(tok), free(cls), free(mean), free(both);
}

/* Splitting the batch across workers changes only the GEMM shapes: BLAS may round differently
 * for another M (it does with some kernels), so the agreement is to float precision, not bits. */
static void threads_agree(void **state)
{
    struct fixture *f = *state;
    size_t n = N * (size_t)embedding_dim(&tiny, EMBEDDING_TOKENS);
    float *one = extract(f, EMBEDDING_TOKENS, 1), *two = extract(f, EMBEDDING_TOKENS, 2);
    for (size_t i = 0; i < n; i++) assert_float_equal(one[i], two[i], 1e-5 + 1e-5 * fabsf(one[i]));
    free(one), free(two);
}

/* Taps against what an inference pass exposes: layer 0 is x0 (patch embeddings with positions);
 * the last layer through the final norm is EMBEDDING_TOKENS; layer 2 through the final norm is
 * the tokens of the same model cut to its first two blocks. */
static void taps_match_block_outputs(void **state)
{
    struct fixture *f = *state;
    char err[128];
    int D = tiny.dim, T = 1 + (S / 4) * (S / 4);
    size_t per = (size_t)T * D;
    assert_int_equal(embedding_layers_dim(&tiny, 0x7u), 3 * (int)per);
    float *tap = extract_layers(f, 1u << 0 | 1u << 2 | 1u << tiny.depth, 2);
    float *tok = extract(f, EMBEDDING_TOKENS, 1);
    struct vit_config cut_cfg = tiny;
    cut_cfg.depth = 2;
    struct vit_model cut;
    struct vit_acts a, b;
    assert_int_equal(vit_create(&cut, &cut_cfg, false, err, sizeof err), 0);
    for (int i = 0; i < cut.ntensors; i++) {
        const struct vit_tensor *t = &cut.tensors[i], *src = vit_find_tensor(&f->m, t->name);
        assert_non_null(src);
        memcpy(cut.params + t->offset, f->m.params + src->offset, sizeof(float) * t->numel);
    }
    assert_int_equal(vit_acts_create(&a, &f->m, N, S, S, false, false, err, sizeof err), 0);
    assert_int_equal(vit_acts_create(&b, &cut, N, S, S, false, false, err, sizeof err), 0);
    vit_forward(&f->m, &a, f->images);
    vit_forward(&cut, &b, f->images);
    float *normed = malloc(sizeof(float) * per), *mean = malloc(sizeof(float) * T);
    float *rstd = malloc(sizeof(float) * T);
    assert_non_null(normed), assert_non_null(mean), assert_non_null(rstd);
    for (int n = 0; n < N; n++) {
        const float *got0 = tap + (size_t)n * 3 * per, *got2 = got0 + per, *got3 = got2 + per;
        for (size_t i = 0; i < per; i++) assert_float_equal(got0[i], a.x0[n * per + i], 1e-5);
        layernorm_forward(normed, mean, rstd, got2, f->m.w.norm_w, f->m.w.norm_b, T, D);
        for (size_t i = 0; i < per; i++) assert_float_equal(normed[i], b.tokens[n * per + i], 1e-5);
        layernorm_forward(normed, mean, rstd, got3, f->m.w.norm_w, f->m.w.norm_b, T, D);
        for (size_t i = 0; i < per; i++) assert_float_equal(normed[i], tok[n * per + i], 1e-5);
    }
    free(normed), free(mean), free(rstd), free(tap), free(tok);
    vit_acts_destroy(&a), vit_acts_destroy(&b);
    vit_destroy(&cut);
}

static void layer_lists_parse(void **state)
{
    (void)state;
    unsigned m = 0;
    assert_int_equal(embedding_layers_parse("0,2,4", 4, &m), 0);
    assert_int_equal(m, 0x15u);
    assert_int_equal(embedding_layers_parse("3", 4, &m), 0);
    assert_int_equal(m, 0x8u);
    const char *bad[] = {"", "5", "-1", "1,,2", "1,", "a", "2x"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(embedding_layers_parse(bad[i], 4, &m), -1);
}

static void wrong_size_is_refused(void **state)
{
    struct fixture *f = *state;
    char err[128] = "";
    float out[1];
    assert_int_equal(
        embedding_extract_layers(&f->m, f->images, 1, 8, 8, 1u, 1, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "model's size"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kinds_agree_with_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(threads_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(taps_match_block_outputs, setup, teardown),
        cmocka_unit_test(layer_lists_parse),
        cmocka_unit_test_setup_teardown(wrong_size_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
