/* test_vit.c — the assembled model: finite-difference check of every tensor's gradient through a
 * global pass and a local (position-resampled) pass that share one set of weights, the tensor
 * table, inference-mode equivalence, AdamW and EMA arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "gradcheck.h"
#include "vit.h"

static const struct vit_config tiny = {
    .dim = 12,
    .depth = 2,
    .heads = 2,
    .mlp_ratio = 2,
    .patch = 4,
    .img_size = 12,
    .in_chans = 3,
    .head_hidden = 10,
    .head_bottleneck = 6,
    .head_out = 7,
};

struct ctx {
    struct vit_model m;
    struct vit_acts glob, loc;
    float *img_g, *img_l;
    float *Rg, *Rl, *Re; /* loss weights for global logits, local logits, global embeddings */
    float *Rt;           /* and for the global pass's normed tokens (all rows) */
};

static double model_loss(void *p)
{
    struct ctx *c = p;
    vit_forward(&c->m, &c->glob, c->img_g);
    vit_forward(&c->m, &c->loc, c->img_l);
    double l = gradcheck_dot(c->glob.logits, c->Rg, (size_t)c->glob.B * tiny.head_out);
    l += gradcheck_dot(c->loc.logits, c->Rl, (size_t)c->loc.B * tiny.head_out);
    l += gradcheck_dot(c->glob.embed, c->Re, (size_t)c->glob.B * tiny.dim);
    l += gradcheck_dot(c->glob.tokens, c->Rt, (size_t)c->glob.B * c->glob.T * tiny.dim);
    return l;
}

static void setup_ctx(struct ctx *c)
{
    char err[128];
    struct rng r = rng_seed(11, 0);
    assert_int_equal(vit_create(&c->m, &tiny, true, err, sizeof err), 0);
    vit_init_weights(&c->m, 5);
    /* larger weights than DINO's init so every path carries a visible gradient */
    for (int i = 0; i < c->m.ntensors; i++) {
        const struct vit_tensor *t = &c->m.tensors[i];
        if (strstr(t->name, "norm") && !strstr(t->name, "last")) continue;
        if (strcmp(t->name, "head.last_layer.weight_g") == 0) continue;
        gradcheck_fill(c->m.params + t->offset, t->numel, 0.3f, &r);
    }
    assert_int_equal(vit_acts_create(&c->glob, &c->m, 2, 12, 12, true, true, err, sizeof err), 0);
    assert_int_equal(vit_acts_create(&c->loc, &c->m, 3, 8, 8, true, true, err, sizeof err), 0);
    size_t ng = 2 * 3 * 144, nl = 3 * 3 * 64;
    c->img_g = malloc(ng * sizeof(float)), c->img_l = malloc(nl * sizeof(float));
    c->Rg = malloc(2 * 7 * sizeof(float)), c->Rl = malloc(3 * 7 * sizeof(float));
    c->Re = malloc(2 * 12 * sizeof(float));
    c->Rt = malloc(2 * 10 * 12 * sizeof(float));
    gradcheck_fill(c->Rt, 2 * 10 * 12, 1, &r);
    gradcheck_fill(c->img_g, ng, 1, &r), gradcheck_fill(c->img_l, nl, 1, &r);
    gradcheck_fill(c->Rg, 14, 1, &r), gradcheck_fill(c->Rl, 21, 1, &r);
    gradcheck_fill(c->Re, 24, 1, &r);
}

static void teardown_ctx(struct ctx *c)
{
    vit_acts_destroy(&c->glob);
    vit_acts_destroy(&c->loc);
    vit_destroy(&c->m);
    free(c->img_g), free(c->img_l), free(c->Rg), free(c->Rl), free(c->Re), free(c->Rt);
}

static void every_tensor_gradient_matches_finite_differences(void **state)
{
    struct ctx c;
    setup_ctx(&c);
    vit_zero_grad(&c.m);
    vit_forward(&c.m, &c.glob, c.img_g);
    vit_backward(&c.m, &c.glob, c.Rg, c.Re, c.Rt);
    vit_forward(&c.m, &c.loc, c.img_l);
    vit_backward(&c.m, &c.loc, c.Rl, NULL, NULL);
    float *analytic = malloc(c.m.nparams * sizeof(float));
    memcpy(analytic, c.m.grads, c.m.nparams * sizeof(float));
    double worst = 0;
    for (int i = 0; i < c.m.ntensors; i++) {
        const struct vit_tensor *t = &c.m.tensors[i];
        if (!(t->flags & VIT_TRAINABLE)) continue;
        double e = gradcheck(t->name, c.m.params + t->offset, analytic + t->offset, t->numel,
                             model_loss, &c, 1e-2f, 24);
        worst = e > worst ? e : worst;
    }
    printf("  worst relative error over all tensors: %.2e\n", worst);
    assert_true(worst < 2e-2);
    free(analytic);
    teardown_ctx(&c);
}

static void tensor_table_uses_dino_names(void **state)
{
    struct vit_model m;
    char err[128];
    assert_int_equal(vit_create(&m, &tiny, false, err, sizeof err), 0);
    const struct vit_tensor *t = vit_find_tensor(&m, "blocks.1.attn.qkv.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 36);
    assert_int_equal(t->shape[1], 12);
    assert_true(t->flags & VIT_DECAY);
    t = vit_find_tensor(&m, "pos_embed");
    assert_int_equal(t->shape[1], 10);
    t = vit_find_tensor(&m, "blocks.0.norm1.weight");
    assert_false(t->flags & VIT_DECAY);
    t = vit_find_tensor(&m, "head.mlp.0.bias");
    assert_false(t->flags & VIT_DECAY);
    t = vit_find_tensor(&m, "head.last_layer.weight_g");
    assert_false(t->flags & VIT_TRAINABLE);
    assert_null(vit_find_tensor(&m, "head.last_layer.bias"));
    assert_null(m.grads);
    vit_destroy(&m);
    struct vit_config bad = tiny;
    bad.heads = 5;
    assert_int_equal(vit_create(&m, &bad, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "heads"));
}

static void inference_mode_matches_training_mode(void **state)
{
    struct ctx c;
    setup_ctx(&c);
    struct vit_acts inf;
    char err[128];
    assert_int_equal(vit_acts_create(&inf, &c.m, 2, 12, 12, true, false, err, sizeof err), 0);
    assert_true(inf.nfloats < c.glob.nfloats);
    vit_forward(&c.m, &c.glob, c.img_g);
    vit_forward(&c.m, &inf, c.img_g);
    for (int i = 0; i < 2 * 7; i++) assert_float_equal(inf.logits[i], c.glob.logits[i], 1e-6);
    for (int i = 0; i < 2 * 12; i++) assert_float_equal(inf.embed[i], c.glob.embed[i], 1e-6);
    vit_acts_destroy(&inf);
    teardown_ctx(&c);
}

static void adamw_matches_hand_computed_step(void **state)
{
    struct vit_model m;
    char err[128];
    assert_int_equal(vit_create(&m, &tiny, true, err, sizeof err), 0);
    const struct vit_tensor *w = vit_find_tensor(&m, "blocks.0.mlp.fc1.weight");
    const struct vit_tensor *b = vit_find_tensor(&m, "blocks.0.mlp.fc1.bias");
    m.params[w->offset] = 1.0f, m.grads[w->offset] = 0.5f;
    m.params[b->offset] = 1.0f, m.grads[b->offset] = 0.5f;
    struct adamw_params p = {
        .lr = 0.1f, .weight_decay = 0.5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    adamw_step(&m, &p);
    /* step 1: m̂ = g, v̂ = g², update = lr·g/(|g|+eps) = 0.1; decay multiplies by 1 − lr·wd */
    assert_float_equal(m.params[w->offset], 1.0f * (1 - 0.05f) - 0.1f, 1e-6);
    assert_float_equal(m.params[b->offset], 1.0f - 0.1f, 1e-6);
    /* clipping: a tensor with norm 5 clipped to 1 */
    vit_zero_grad(&m);
    m.grads[w->offset] = 3.0f, m.grads[w->offset + 1] = 4.0f;
    double total = adamw_clip_grads(&m, 1.0f);
    assert_float_equal(total, 5.0, 1e-6);
    assert_float_equal(m.grads[w->offset], 0.6f, 1e-5);
    assert_float_equal(m.grads[w->offset + 1], 0.8f, 1e-5);
    struct vit_model t;
    assert_int_equal(vit_create(&t, &tiny, false, err, sizeof err), 0);
    vit_copy_params(&t, &m);
    m.params[0] += 1.0f;
    ema_update(&t, &m, 0.9f);
    assert_float_equal(t.params[0], m.params[0] - 0.9f, 1e-6);
    vit_destroy(&t);
    vit_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_tensor_gradient_matches_finite_differences),
        cmocka_unit_test(tensor_table_uses_dino_names),
        cmocka_unit_test(inference_mode_matches_training_mode),
        cmocka_unit_test(adamw_matches_hand_computed_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
