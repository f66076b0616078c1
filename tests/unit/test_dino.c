/* test_dino.c — the DINO loss: gradient by finite differences, a hand-computed case, the centre. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>

#include "dino.h"
#include "gradcheck.h"

enum { B = 3, NT = 2, NS = 4, K = 6 };

struct ctx {
    float t[NT * B * K], s[NS * B * K], c[K], ds[NS * B * K];
};

static double loss_of(void *p)
{
    struct ctx *x = p;
    struct dino_stats st;
    float scratch[NS * B * K];
    assert_int_equal(dino_loss(x->t, x->s, x->c, scratch, B, NT, NS, K, 0.04f, 0.1f, &st), 0);
    return st.loss;
}

static void gradient_matches_finite_differences(void **state)
{
    struct ctx x;
    struct rng r = rng_seed(3, 0);
    gradcheck_fill(x.t, NT * B * K, 0.1f, &r);
    gradcheck_fill(x.s, NS * B * K, 0.3f, &r);
    gradcheck_fill(x.c, K, 0.05f, &r);
    struct dino_stats st;
    assert_int_equal(dino_loss(x.t, x.s, x.c, x.ds, B, NT, NS, K, 0.04f, 0.1f, &st), 0);
    assert_true(st.loss > 0);
    assert_true(st.teacher_entropy > 0 && st.teacher_entropy < log(K) + 1e-6);
    assert_true(gradcheck("dino.dstudent", x.s, x.ds, NS * B * K, loss_of, &x, 1e-3f, 72) < 1e-2);
}

static void hand_computed_two_crop_case(void **state)
{
    /* one image, 2 global crops, 2 classes, zero centre, τt = τs = 1:
     * q0 = softmax(0, 0) = (½, ½); q1 = softmax(ln 3, 0) = (¾, ¼);
     * student crops: s0 = (0, 0), s1 = (0, 0) → log p = (−ln 2, −ln 2);
     * pairs (q0, s1) and (q1, s0), each cross-entropy ln 2 → loss ln 2 */
    float t[4] = {0, 0, logf(3.0f), 0}, s[4] = {0, 0, 0, 0}, c[2] = {0, 0}, ds[4];
    struct dino_stats st;
    assert_int_equal(dino_loss(t, s, c, ds, 1, 2, 2, 2, 1.0f, 1.0f, &st), 0);
    assert_float_equal(st.loss, log(2.0), 1e-6);
    /* d/ds1 = (p1 − q0) / 2 = 0; d/ds0 = (p0 − q1) / 2 = (−¼, ¼) / 2 */
    assert_float_equal(ds[0], -0.125f, 1e-6);
    assert_float_equal(ds[1], 0.125f, 1e-6);
    assert_float_equal(ds[2], 0.0f, 1e-6);
}

static void centre_is_an_ema_of_the_batch_mean(void **state)
{
    float c[2] = {1, 0}, t[4] = {2, 4, 4, 8};
    dino_center_update(c, t, 2, 2, 0.9f);
    assert_float_equal(c[0], 0.9f + 0.3f, 1e-6);
    assert_float_equal(c[1], 0.6f, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradient_matches_finite_differences),
        cmocka_unit_test(hand_computed_two_crop_case),
        cmocka_unit_test(centre_is_an_ema_of_the_batch_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
