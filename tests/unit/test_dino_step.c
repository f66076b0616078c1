/* test_dino_step.c — the data-parallel training step: two workers give the same update as one,
 * a student fits a fixed teacher, bad configs are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino_step.h"
#include "rng.h"

static const struct vit_config model = {
    .dim = 24,
    .depth = 2,
    .heads = 2,
    .mlp_ratio = 2,
    .patch = 4,
    .img_size = 16,
    .in_chans = 3,
    .head_hidden = 32,
    .head_bottleneck = 16,
    .head_out = 64,
};

static struct dino_step_config config(int threads)
{
    return (struct dino_step_config){.batch = 4,
                                     .n_global = 2,
                                     .n_local = 3,
                                     .global_size = 16,
                                     .local_size = 8,
                                     .student_temp = 0.1f,
                                     .center_momentum = 0.9f,
                                     .clip = 3.0f,
                                     .beta1 = 0.9f,
                                     .beta2 = 0.999f,
                                     .eps = 1e-8f,
                                     .threads = threads};
}

static const struct dino_step_params params = {
    .lr = 1e-3f, .weight_decay = 0.04f, .teacher_temp = 0.04f, .teacher_momentum = 0.9f};

static void random_crops(float **g, float **l)
{
    struct rng r = rng_seed(9, 0);
    size_t ng = 2 * 4 * 3 * 16 * 16, nl = 3 * 4 * 3 * 8 * 8;
    *g = malloc(ng * sizeof(float));
    *l = malloc(nl * sizeof(float));
    assert_non_null(*g);
    assert_non_null(*l);
    for (size_t i = 0; i < ng; i++) (*g)[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < nl; i++) (*l)[i] = (float)rng_normal(&r);
}

static void two_workers_match_one(void **state)
{
    char err[256];
    struct dino_step a, b;
    struct dino_step_config ca = config(1), cb = config(2);
    assert_int_equal(dino_step_create(&a, &model, &ca, 3, err, sizeof err), 0);
    assert_int_equal(dino_step_create(&b, &model, &cb, 3, err, sizeof err), 0);
    float *g, *l;
    random_crops(&g, &l);
    struct dino_stats sa, sb;
    assert_int_equal(dino_step_run(&a, g, l, &params, &sa), 0);
    assert_int_equal(dino_step_run(&b, g, l, &params, &sb), 0);
    assert_float_equal(sa.loss, sb.loss, 1e-6 * fabs(sa.loss));
    /* summed (and clipped) gradients agree to float rounding; after that, Adam's first steps
     * amplify rounding in near-zero gradients, so parameters are compared on the gradients */
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < a.student.nparams; i++) {
        gmax = fmax(gmax, fabs(a.student.grads[i]));
        worst = fmax(worst, fabs(a.student.grads[i] - b.student.grads[i]));
    }
    printf("  max |gradient difference| %.2e of max |gradient| %.2e\n", worst, gmax);
    assert_true(worst < 1e-5 * gmax);
    /* entries with a zero true gradient (the key bias) take an Adam step of ±lr along rounding
     * noise on both sides, so the teacher may differ there by up to (1 − m) · 2 · lr */
    float bound = (1.0f - params.teacher_momentum) * 2.0f * params.lr + 1e-6f;
    for (size_t i = 0; i < a.teacher.nparams; i++)
        assert_true(fabs(a.teacher.params[i] - b.teacher.params[i]) <= bound);
    free(g), free(l);
    dino_step_destroy(&a);
    dino_step_destroy(&b);
}

static void student_fits_a_fixed_teacher(void **state)
{
    char err[256];
    struct dino_step s;
    struct dino_step_config c = config(2);
    c.center_momentum = 1.0f; /* centre and teacher frozen: the targets stay fixed */
    assert_int_equal(dino_step_create(&s, &model, &c, 4, err, sizeof err), 0);
    float *g, *l;
    random_crops(&g, &l);
    struct dino_step_params p = params;
    p.teacher_momentum = 1.0f;
    p.teacher_temp = 0.2f;
    struct dino_stats st;
    assert_int_equal(dino_step_run(&s, g, l, &p, &st), 0);
    double first = st.loss;
    for (int i = 0; i < 30; i++) assert_int_equal(dino_step_run(&s, g, l, &p, &st), 0);
    printf("  loss %.4f -> %.4f\n", first, st.loss);
    assert_true(st.loss < 0.9 * first);
    free(g), free(l);
    dino_step_destroy(&s);
}

static void bad_configs_are_refused(void **state)
{
    char err[256];
    struct dino_step s;
    struct dino_step_config c = config(2);
    c.local_size = 10; /* not a multiple of the patch */
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiple"));
    c = config(100);
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_workers_match_one),
        cmocka_unit_test(student_fits_a_fixed_teacher),
        cmocka_unit_test(bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
