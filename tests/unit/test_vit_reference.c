/* test_vit_reference.c — the whole engine against PyTorch: two DINO steps of a small model, with
 * inputs, weights and every intermediate written by tests/reference/make_reference.py into
 * tests/reference/vit_step.safetensors. Checks the forward outputs (embeddings, patch tokens,
 * logits, interpolated position embeddings on 12 px crops), the loss and its gradient, every
 * parameter gradient, the clipped AdamW update, the EMA teacher and the centre; then a second
 * step with new crops and the schedules' next values (Adam's moments carried over).
 * INSPECTD_VIT_STEP=FILE replays another file of the same form (tests/integration/test_torch.py
 * gives it one tools/torch has just computed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dino_step.h"
#include "gemm.h"

#define REF_PATH "tests/reference/vit_step.safetensors"

/* Tolerances (max |a - b| / max |b| of a tensor) of the backend under test: forward outputs; the
 * loss; gradients and updated parameters. float32 holds both backends to the same figures; bf16
 * (8 bits of mantissa in every matmul input, f32 accumulation) has its own: the second step's
 * loss is computed by weights that step 1 updated from bf16 gradients. */
struct tolerance {
    double fwd, loss, grad;
};
static const struct tolerance tol_f32 = {1e-5, 1e-5, 1e-4};
static struct tolerance tol;
static bool no_bf16; /* the CPU lacks bf16: its tests are skipped */

static int select_backend(enum gemm_backend b, enum gemm_precision p, struct tolerance t)
{
    char err[256];
    if (gemm_select(b, p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char what[128];
    gemm_describe(what, sizeof what);
    printf("  gemm %s, %s\n", what, gemm_precision_name(p));
    tol = t;
    return 0;
}

static int on_openblas(void **state)
{
    return select_backend(GEMM_OPENBLAS, GEMM_F32, tol_f32);
}

#ifdef INSPECTD_WITH_ONEDNN
static int on_onednn(void **state)
{
    return select_backend(GEMM_ONEDNN, GEMM_F32, tol_f32);
}

static const struct tolerance tol_bf16 = {1e-2, 5e-2, 5e-2};

static int on_onednn_bf16(void **state)
{
    no_bf16 = select_backend(GEMM_ONEDNN, GEMM_BF16, tol_bf16) != 0;
    return 0;
}

static int back_to_f32(void **state)
{
    no_bf16 = false;
    return select_backend(GEMM_AUTO, GEMM_F32, tol_f32);
}
#endif

struct ref {
    struct st_file f;
    struct vit_config model;
    struct dino_step_config step;
    struct dino_step_params params, params2; /* steps 1 and 2 */
};

static int cfg_int(json_t *c, const char *k)
{
    json_t *v = json_object_get(c, k);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

static float cfg_float(json_t *c, const char *k)
{
    json_t *v = json_object_get(c, k);
    assert_true(json_is_number(v));
    return (float)json_number_value(v);
}

static struct dino_step_params cfg_params(json_t *c)
{
    return (struct dino_step_params){.lr = cfg_float(c, "lr"),
                                     .weight_decay = cfg_float(c, "weight_decay"),
                                     .teacher_temp = cfg_float(c, "tau_t"),
                                     .teacher_momentum = cfg_float(c, "ema_momentum")};
}

static void load_ref(struct ref *r)
{
    char err[512];
    const char *path = getenv("INSPECTD_VIT_STEP") ? getenv("INSPECTD_VIT_STEP") : REF_PATH;
    int rc = st_load(path, &r->f, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(st_meta(&r->f, "format"), "inspectd-reference");
    assert_string_equal(st_meta(&r->f, "version"), "1");
    json_t *c = json_loads(st_meta(&r->f, "config"), 0, NULL);
    assert_non_null(c);
    r->model = (struct vit_config){.dim = cfg_int(c, "dim"),
                                   .depth = cfg_int(c, "depth"),
                                   .heads = cfg_int(c, "heads"),
                                   .mlp_ratio = cfg_int(c, "mlp_ratio"),
                                   .patch = cfg_int(c, "patch"),
                                   .img_size = cfg_int(c, "img_size"),
                                   .in_chans = cfg_int(c, "in_chans"),
                                   .head_hidden = cfg_int(c, "head_hidden"),
                                   .head_bottleneck = cfg_int(c, "head_bottleneck"),
                                   .head_out = cfg_int(c, "head_out")};
    r->step = (struct dino_step_config){.batch = cfg_int(c, "batch"),
                                        .n_global = cfg_int(c, "n_global"),
                                        .n_local = cfg_int(c, "n_local"),
                                        .global_size = cfg_int(c, "img_size"),
                                        .local_size = cfg_int(c, "local_size"),
                                        .student_temp = cfg_float(c, "tau_s"),
                                        .center_momentum = cfg_float(c, "center_momentum"),
                                        .clip = cfg_float(c, "clip"),
                                        .beta1 = cfg_float(c, "beta1"),
                                        .beta2 = cfg_float(c, "beta2"),
                                        .eps = cfg_float(c, "eps"),
                                        .threads = 2};
    r->params = cfg_params(c);
    json_t *c2 = json_object_get(c, "step2");
    assert_true(json_is_object(c2));
    r->params2 = cfg_params(c2);
    json_decref(c);
}

/* max|a − b| / max|b|, printed; the tensor must exist with n floats. */
static double compare(const struct ref *r, const char *name, const float *got, size_t n)
{
    const struct st_tensor *t = st_find(&r->f, name);
    if (!t) fprintf(stderr, "reference lacks %s\n", name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    float *want = malloc(n * sizeof(float));
    assert_non_null(want);
    st_read_f32(t, want);
    double diff = 0, scale = 1e-12;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    free(want);
    double rel = diff / scale;
    printf("  %-42s rel err %.2e\n", name, rel);
    return rel;
}

/* Updated parameters: where the true gradient is zero (the key bias: softmax ignores a constant
 * added to every key) or at rounding-noise level, AdamW moves a weight by up to about ±lr per step
 * along noise that differs between the two sides. Those entries (|g| < 1e-5 · max|g| of the
 * tensor's first-step gradient) are held only to `bound`; every other entry must match. */
static double compare_update(const struct ref *r, const char *name, const char *grad_name,
                             const float *got, size_t n, float bound, int *noisy)
{
    const struct st_tensor *tg = st_find(&r->f, grad_name);
    if (!tg) return compare(r, name, got, n);
    const struct st_tensor *tw = st_find(&r->f, name);
    assert_non_null(tw);
    assert_int_equal(tw->numel, n);
    float *g = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    assert_non_null(g);
    assert_non_null(want);
    st_read_f32(tg, g);
    st_read_f32(tw, want);
    double gmax = 0, scale = 1e-12, diff = 0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(g[i])), scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (fabs(g[i]) < 1e-5 * gmax) {
            (*noisy)++;
            assert_true(d <= bound + 1e-6);
        } else {
            diff = fmax(diff, d);
        }
    }
    free(g), free(want);
    printf("  %-42s rel err %.2e\n", name, diff / scale);
    return diff / scale;
}

static float *read_tensor(const struct ref *r, const char *name, size_t n)
{
    const struct st_tensor *t = st_find(&r->f, name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    st_read_f32(t, p);
    return p;
}

static void load_both(struct ref *r, struct vit_model *m)
{
    char err[512];
    int rc = checkpoint_load_model(m, &r->f, "param.", err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* Forward and backward of the student alone, from the stored loss gradient. */
static void forward_backward_match_pytorch(void **state)
{
    if (no_bf16) skip();
    struct ref r;
    load_ref(&r);
    char err[256];
    struct vit_model m;
    assert_int_equal(vit_create(&m, &r.model, true, err, sizeof err), 0);
    load_both(&r, &m);
    int B = r.step.batch, NG = r.step.n_global, NL = r.step.n_local, G = r.model.img_size;
    int L = r.step.local_size, C = r.model.in_chans, D = r.model.dim, K = r.model.head_out;
    struct vit_acts ag, al;
    assert_int_equal(vit_acts_create(&ag, &m, NG * B, G, G, true, true, err, sizeof err), 0);
    assert_int_equal(vit_acts_create(&al, &m, NL * B, L, L, true, true, err, sizeof err), 0);
    float *glob = read_tensor(&r, "input.global", (size_t)NG * B * C * G * G);
    float *loc = read_tensor(&r, "input.local", (size_t)NL * B * C * L * L);
    float *dlog = read_tensor(&r, "dlogits.student", (size_t)(NG + NL) * B * K);
    vit_forward(&m, &ag, glob);
    vit_forward(&m, &al, loc);
    assert_true(compare(&r, "student.embed.global", ag.embed, (size_t)NG * B * D) < tol.fwd);
    assert_true(compare(&r, "student.embed.local", al.embed, (size_t)NL * B * D) < tol.fwd);
    int T = ag.T;
    float *patch = malloc(sizeof(float) * (size_t)NG * B * (T - 1) * D);
    for (int b = 0; b < NG * B; b++)
        memcpy(patch + (size_t)b * (T - 1) * D, ag.tokens + ((size_t)b * T + 1) * D,
               sizeof(float) * (size_t)(T - 1) * D);
    assert_true(compare(&r, "student.patch.global", patch, (size_t)NG * B * (T - 1) * D) < tol.fwd);
    float *logits = malloc(sizeof(float) * (size_t)(NG + NL) * B * K);
    memcpy(logits, ag.logits, sizeof(float) * (size_t)NG * B * K);
    memcpy(logits + (size_t)NG * B * K, al.logits, sizeof(float) * (size_t)NL * B * K);
    assert_true(compare(&r, "student.logits", logits, (size_t)(NG + NL) * B * K) < tol.fwd);
    vit_zero_grad(&m);
    vit_backward(&m, &ag, dlog, NULL, NULL);
    vit_backward(&m, &al, dlog + (size_t)NG * B * K, NULL, NULL);
    double worst = 0;
    char name[256];
    for (int i = 0; i < m.ntensors; i++) {
        const struct vit_tensor *t = &m.tensors[i];
        if (!(t->flags & VIT_TRAINABLE)) continue;
        snprintf(name, sizeof name, "grad.%s", t->name);
        worst = fmax(worst, compare(&r, name, m.grads + t->offset, t->numel));
    }
    printf("  worst gradient error %.2e\n", worst);
    assert_true(worst < tol.grad);
    free(glob), free(loc), free(dlog), free(patch), free(logits);
    vit_acts_destroy(&ag);
    vit_acts_destroy(&al);
    vit_destroy(&m);
    st_free(&r.f);
}

/* The production step (two workers) from the reference's weights and centre. */
static void start_step(struct ref *r, struct dino_step *s)
{
    char err[256];
    assert_int_equal(dino_step_create(s, &r->model, &r->step, 1, err, sizeof err), 0);
    load_both(r, &s->student);
    load_both(r, &s->teacher);
    float *center = read_tensor(r, "center", (size_t)r->model.head_out);
    memcpy(s->center, center, sizeof(float) * (size_t)r->model.head_out);
    free(center);
}

/* Runs one step on the reference's crops `prefix`input.global / .local; returns the loss. */
static float run_step(struct ref *r, struct dino_step *s, const char *prefix,
                      const struct dino_step_params *p)
{
    int B = r->step.batch, NG = r->step.n_global, NL = r->step.n_local, G = r->model.img_size;
    int L = r->step.local_size, C = r->model.in_chans;
    char name[64];
    snprintf(name, sizeof name, "%sinput.global", prefix);
    float *glob = read_tensor(r, name, (size_t)NG * B * C * G * G);
    snprintf(name, sizeof name, "%sinput.local", prefix);
    float *loc = read_tensor(r, name, (size_t)NL * B * C * L * L);
    struct dino_stats st;
    assert_int_equal(dino_step_run(s, glob, loc, p, &st), 0);
    free(glob), free(loc);
    return (float)st.loss;
}

/* The whole production step (two workers): loss, its gradient, AdamW, EMA, centre. */
static void training_step_matches_pytorch(void **state)
{
    if (no_bf16) skip();
    struct ref r;
    load_ref(&r);
    struct dino_step s;
    start_step(&r, &s);
    int B = r.step.batch, NG = r.step.n_global, NL = r.step.n_local, K = r.model.head_out;
    float loss = run_step(&r, &s, "", &r.params);
    assert_true(compare(&r, "teacher.logits", s.logits_t, (size_t)NG * B * K) < tol.fwd);
    assert_true(compare(&r, "loss", &loss, 1) < tol.loss);
    assert_true(compare(&r, "dlogits.student", s.dlogits_s, (size_t)(NG + NL) * B * K) < tol.grad);
    assert_true(compare(&r, "center.updated", s.center, (size_t)K) < tol.fwd);
    double worst = 0, worst_t = 0;
    int noisy = 0;
    char name[256], gname[256];
    for (int i = 0; i < s.student.ntensors; i++) {
        const struct vit_tensor *t = &s.student.tensors[i];
        snprintf(gname, sizeof gname, "grad.%s", t->name);
        snprintf(name, sizeof name, "updated.%s", t->name);
        worst = fmax(worst, compare_update(&r, name, gname, s.student.params + t->offset, t->numel,
                                           2 * r.params.lr, &noisy));
        snprintf(name, sizeof name, "teacher.updated.%s", t->name);
        worst_t = fmax(worst_t, compare_update(&r, name, gname, s.teacher.params + t->offset,
                                               t->numel, 2 * r.params.lr, &noisy));
    }
    printf("  worst updated-parameter error %.2e, teacher %.2e (%d zero-gradient entries)\n", worst,
           worst_t, noisy);
    assert_true(worst < tol.grad);
    assert_true(worst_t < tol.grad);
    dino_step_destroy(&s);
    st_free(&r.f);
}

/* A second step on new crops with the schedules' next lr, weight decay, teacher temperature and
 * momentum: Adam's moments and step count carry over, the teacher is step 1's EMA, the centre
 * step 1's update. */
static void second_step_matches_pytorch(void **state)
{
    if (no_bf16) skip();
    struct ref r;
    load_ref(&r);
    struct dino_step s;
    start_step(&r, &s);
    int B = r.step.batch, NG = r.step.n_global, K = r.model.head_out;
    run_step(&r, &s, "", &r.params);
    float loss = run_step(&r, &s, "step2.", &r.params2);
    assert_true(compare(&r, "step2.teacher.logits", s.logits_t, (size_t)NG * B * K) < tol.fwd);
    assert_true(compare(&r, "step2.loss", &loss, 1) < tol.loss);
    assert_true(compare(&r, "step2.center.updated", s.center, (size_t)K) < tol.fwd);
    double worst = 0;
    int noisy = 0;
    char name[256], gname[256];
    for (int i = 0; i < s.student.ntensors; i++) {
        const struct vit_tensor *t = &s.student.tensors[i];
        snprintf(gname, sizeof gname, "grad.%s", t->name);
        snprintf(name, sizeof name, "step2.updated.%s", t->name);
        worst = fmax(worst, compare_update(&r, name, gname, s.student.params + t->offset, t->numel,
                                           2 * (r.params.lr + r.params2.lr), &noisy));
    }
    printf("  worst updated-parameter error after step 2 %.2e (%d zero-gradient entries)\n", worst,
           noisy);
    assert_true(worst < tol.grad);
    dino_step_destroy(&s);
    st_free(&r.f);
}

int main(void)
{
#define ON(backend, after)                                                                         \
    cmocka_unit_test_setup_teardown(forward_backward_match_pytorch, on_##backend, after),          \
        cmocka_unit_test_setup_teardown(training_step_matches_pytorch, on_##backend, after),       \
        cmocka_unit_test_setup_teardown(second_step_matches_pytorch, on_##backend, after)
    const struct CMUnitTest tests[] = {
        ON(openblas, NULL),
#ifdef INSPECTD_WITH_ONEDNN
        ON(onednn, NULL),
        ON(onednn_bf16, back_to_f32),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
