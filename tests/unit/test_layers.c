/* test_layers.c — finite-difference gradient checks for every layer kernel, plus the exact
 * properties of im2col and the bicubic position resampling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "layers.h"

struct op {
    float *in, *w, *b, *out, *R, *aux1, *aux2;
    int N, IC, OC, B, T, C, H;
};

static float *vec(size_t n)
{
    float *p = calloc(n, sizeof(float));
    assert_non_null(p);
    return p;
}

/* ---- linear ---- */
static double linear_loss(void *ctx)
{
    struct op *o = ctx;
    linear_forward(o->out, o->in, o->w, o->b, o->N, o->IC, o->OC);
    return gradcheck_dot(o->out, o->R, (size_t)o->N * o->OC);
}

static void linear_gradients(void **state)
{
    struct rng r = rng_seed(1, 0);
    struct op o = {.N = 5, .IC = 7, .OC = 4};
    size_t ni = 35, nw = 28, no = 20;
    o.in = vec(ni), o.w = vec(nw), o.b = vec(4), o.out = vec(no), o.R = vec(no);
    float *din = vec(ni), *dw = vec(nw), *db = vec(4);
    gradcheck_fill(o.in, ni, 1, &r), gradcheck_fill(o.w, nw, 0.5f, &r);
    gradcheck_fill(o.b, 4, 0.5f, &r), gradcheck_fill(o.R, no, 1, &r);
    linear_loss(&o);
    linear_backward(din, dw, db, o.R, o.in, o.w, o.N, o.IC, o.OC);
    assert_true(gradcheck("linear.din", o.in, din, ni, linear_loss, &o, 1e-2f, 64) < 1e-3);
    assert_true(gradcheck("linear.dw", o.w, dw, nw, linear_loss, &o, 1e-2f, 64) < 1e-3);
    assert_true(gradcheck("linear.db", o.b, db, 4, linear_loss, &o, 1e-2f, 64) < 1e-3);
    /* backward accumulates: a second call doubles the gradient */
    float before = dw[3];
    linear_backward(din, dw, db, o.R, o.in, o.w, o.N, o.IC, o.OC);
    assert_float_equal(dw[3], 2 * before, 1e-5);
    free(o.in), free(o.w), free(o.b), free(o.out), free(o.R), free(din), free(dw), free(db);
}

/* ---- layernorm ---- */
static double ln_loss(void *ctx)
{
    struct op *o = ctx;
    layernorm_forward(o->out, o->aux1, o->aux2, o->in, o->w, o->b, o->N, o->C);
    return gradcheck_dot(o->out, o->R, (size_t)o->N * o->C);
}

static void layernorm_gradients(void **state)
{
    struct rng r = rng_seed(2, 0);
    struct op o = {.N = 4, .C = 9};
    size_t n = 36;
    o.in = vec(n), o.w = vec(9), o.b = vec(9), o.out = vec(n), o.R = vec(n);
    o.aux1 = vec(4), o.aux2 = vec(4);
    float *din = vec(n), *dw = vec(9), *db = vec(9);
    gradcheck_fill(o.in, n, 2, &r), gradcheck_fill(o.w, 9, 1, &r), gradcheck_fill(o.b, 9, 1, &r);
    gradcheck_fill(o.R, n, 1, &r);
    ln_loss(&o);
    layernorm_backward(din, dw, db, o.R, o.in, o.w, o.aux1, o.aux2, o.N, o.C);
    assert_true(gradcheck("layernorm.din", o.in, din, n, ln_loss, &o, 1e-2f, 64) < 5e-3);
    assert_true(gradcheck("layernorm.dw", o.w, dw, 9, ln_loss, &o, 1e-2f, 64) < 1e-3);
    assert_true(gradcheck("layernorm.db", o.b, db, 9, ln_loss, &o, 1e-2f, 64) < 1e-3);
    /* normalised rows: mean 0 and variance 1 before the affine part */
    float ones[9], zeros[9] = {0};
    for (int i = 0; i < 9; i++) ones[i] = 1;
    layernorm_forward(o.out, o.aux1, o.aux2, o.in, ones, zeros, o.N, o.C);
    double m = 0, v = 0;
    for (int i = 0; i < 9; i++) m += o.out[i];
    for (int i = 0; i < 9; i++) v += o.out[i] * o.out[i];
    assert_true(fabs(m) < 1e-5 && fabs(v / 9 - 1) < 1e-4);
    free(o.in), free(o.w), free(o.b), free(o.out), free(o.R), free(o.aux1), free(o.aux2);
    free(din), free(dw), free(db);
}

/* ---- gelu ---- */
static double gelu_loss(void *ctx)
{
    struct op *o = ctx;
    gelu_forward(o->out, o->in, (size_t)o->N);
    return gradcheck_dot(o->out, o->R, (size_t)o->N);
}

static void gelu_gradients(void **state)
{
    struct rng r = rng_seed(3, 0);
    struct op o = {.N = 60};
    o.in = vec(60), o.out = vec(60), o.R = vec(60);
    float *din = vec(60);
    gradcheck_fill(o.in, 60, 2, &r), gradcheck_fill(o.R, 60, 1, &r);
    gelu_backward(din, o.in, o.R, 60);
    assert_true(gradcheck("gelu", o.in, din, 60, gelu_loss, &o, 1e-2f, 60) < 1e-3);
    float x[3] = {-1, 0, 1}, y[3];
    gelu_forward(y, x, 3);
    assert_float_equal(y[0], -0.15865525f, 1e-6); /* x·Φ(x) at -1 */
    assert_float_equal(y[1], 0.0f, 1e-7);
    assert_float_equal(y[2], 0.84134475f, 1e-6);
    free(o.in), free(o.out), free(o.R), free(din);
}

/* ---- attention ---- */
static double attn_loss(void *ctx)
{
    struct op *o = ctx;
    attention_forward(o->out, o->aux1, o->in, o->B, o->T, o->C, o->H);
    return gradcheck_dot(o->out, o->R, (size_t)o->B * o->T * o->C);
}

static void attention_gradients(void **state)
{
    struct rng r = rng_seed(4, 0);
    struct op o = {.B = 2, .T = 5, .C = 6, .H = 2};
    size_t nq = 2 * 5 * 18, no = 2 * 5 * 6;
    o.in = vec(nq), o.out = vec(no), o.R = vec(no), o.aux1 = vec(2 * 2 * 25);
    float *dq = vec(nq), *dp = vec(25);
    gradcheck_fill(o.in, nq, 1, &r), gradcheck_fill(o.R, no, 1, &r);
    attn_loss(&o);
    attention_backward(dq, dp, o.R, o.in, o.aux1, o.B, o.T, o.C, o.H);
    assert_true(gradcheck("attention.dqkv", o.in, dq, nq, attn_loss, &o, 1e-2f, 180) < 5e-3);
    /* probabilities: each row sums to 1 */
    for (int row = 0; row < 2 * 2 * 5; row++) {
        double s = 0;
        for (int j = 0; j < 5; j++) s += o.aux1[row * 5 + j];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    free(o.in), free(o.out), free(o.R), free(o.aux1), free(dq), free(dp);
}

/* ---- l2 normalisation ---- */
static double l2_loss(void *ctx)
{
    struct op *o = ctx;
    l2norm_forward(o->out, o->aux1, o->in, o->N, o->C);
    return gradcheck_dot(o->out, o->R, (size_t)o->N * o->C);
}

static void l2norm_gradients(void **state)
{
    struct rng r = rng_seed(5, 0);
    struct op o = {.N = 3, .C = 5};
    o.in = vec(15), o.out = vec(15), o.R = vec(15), o.aux1 = vec(3);
    float *din = vec(15);
    gradcheck_fill(o.in, 15, 1, &r), gradcheck_fill(o.R, 15, 1, &r);
    l2_loss(&o);
    l2norm_backward(din, o.R, o.out, o.aux1, o.N, o.C);
    assert_true(gradcheck("l2norm", o.in, din, 15, l2_loss, &o, 1e-3f, 15) < 5e-3);
    free(o.in), free(o.out), free(o.R), free(o.aux1), free(din);
}

/* ---- weight norm ---- */
static double wn_loss(void *ctx)
{
    struct op *o = ctx;
    weightnorm_forward(o->out, o->aux1, o->in, o->w, o->N, o->C);
    return gradcheck_dot(o->out, o->R, (size_t)o->N * o->C);
}

static void weightnorm_gradients(void **state)
{
    struct rng r = rng_seed(6, 0);
    struct op o = {.N = 4, .C = 5};
    o.in = vec(20), o.w = vec(4), o.out = vec(20), o.R = vec(20), o.aux1 = vec(4);
    float *dv = vec(20), *dg = vec(4);
    gradcheck_fill(o.in, 20, 1, &r), gradcheck_fill(o.w, 4, 1, &r), gradcheck_fill(o.R, 20, 1, &r);
    wn_loss(&o);
    weightnorm_backward(dv, dg, o.R, o.in, o.w, o.aux1, o.N, o.C);
    assert_true(gradcheck("weightnorm.dv", o.in, dv, 20, wn_loss, &o, 1e-3f, 20) < 5e-3);
    assert_true(gradcheck("weightnorm.dg", o.w, dg, 4, wn_loss, &o, 1e-3f, 4) < 5e-3);
    free(o.in), free(o.w), free(o.out), free(o.R), free(o.aux1), free(dv), free(dg);
}

/* ---- im2col and position resampling ---- */
static void im2col_layout(void **state)
{
    /* 1 image, 2 channels, 4x4, patch 2: value = c*100 + y*10 + x */
    float img[2 * 16], cols[4 * 8];
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) img[c * 16 + y * 4 + x] = (float)(c * 100 + y * 10 + x);
    im2col_patches(cols, img, 1, 2, 4, 4, 2);
    /* token 3 = grid (1,1): rows y 2..3, x 2..3; column (c, ky, kx) */
    const float want[8] = {22, 23, 32, 33, 122, 123, 132, 133};
    for (int i = 0; i < 8; i++) assert_float_equal(cols[3 * 8 + i], want[i], 0);
}

static void bicubic_is_exact_adjoint(void **state)
{
    struct rng r = rng_seed(7, 0);
    int n = 4, g = 3, D = 5;
    float wy[3 * 4], wx[3 * 4];
    bicubic_weights(wy, g, n, (g + 0.1) / n);
    bicubic_weights(wx, g, n, (g + 0.1) / n);
    for (int o = 0; o < g; o++) { /* the cubic kernel is a partition of unity */
        double s = 0;
        for (int i = 0; i < n; i++) s += wy[o * n + i];
        assert_true(fabs(s - 1.0) < 1e-6);
    }
    float x[16 * 5], y[9 * 5], fx[9 * 5], by[16 * 5] = {0};
    gradcheck_fill(x, 80, 1, &r), gradcheck_fill(y, 45, 1, &r);
    pos_resample_forward(fx, x, wy, wx, n, g, g, D);
    pos_resample_backward(by, y, wy, wx, n, g, g, D);
    double a = gradcheck_dot(fx, y, 45), b = gradcheck_dot(x, by, 80);
    assert_true(fabs(a - b) < 1e-4 * (fabs(a) + 1));
    /* resampling a constant grid keeps it constant */
    for (int i = 0; i < 80; i++) x[i] = 3.0f;
    pos_resample_forward(fx, x, wy, wx, n, g, g, D);
    for (int i = 0; i < 45; i++) assert_float_equal(fx[i], 3.0f, 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_gradients), cmocka_unit_test(layernorm_gradients),
        cmocka_unit_test(gelu_gradients),   cmocka_unit_test(attention_gradients),
        cmocka_unit_test(l2norm_gradients), cmocka_unit_test(weightnorm_gradients),
        cmocka_unit_test(im2col_layout),    cmocka_unit_test(bicubic_is_exact_adjoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
