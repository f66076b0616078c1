/* test_dino.c — the DINO loss: gradient by finite differences, a hand-computed case, the centre,
 * the collapse monitors at both kinds of collapse, and the schedules against hand-computed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "dino.h"
#include "safetensors.h"
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

struct koleo_ctx {
    float x[5 * 4], dx[5 * 4];
};

static double koleo_of(void *p)
{
    struct koleo_ctx *k = p;
    float scratch[5 * 4] = {0};
    double loss;
    assert_int_equal(dino_koleo(k->x, 5, 4, 1.0f, scratch, &loss), 0);
    return loss;
}

/* Nearest neighbours stay the same under the small steps of the finite differences. */
static void koleo_gradient_matches_finite_differences(void **state)
{
    struct koleo_ctx k = {.dx = {0}};
    struct rng r = rng_seed(8, 0);
    gradcheck_fill(k.x, 5 * 4, 1.0f, &r);
    double loss;
    assert_int_equal(dino_koleo(k.x, 5, 4, 1.0f, k.dx, &loss), 0);
    assert_true(gradcheck("koleo.dx", k.x, k.dx, 5 * 4, koleo_of, &k, 1e-3f, 20) < 1e-2);
    /* the weight scales what is added, on top of what dx held */
    float dx2[5 * 4];
    for (int i = 0; i < 5 * 4; i++) dx2[i] = 1.0f;
    assert_int_equal(dino_koleo(k.x, 5, 4, 0.5f, dx2, &loss), 0);
    for (int i = 0; i < 5 * 4; i++) assert_float_equal(dx2[i], 1.0f + 0.5f * k.dx[i], 1e-6);
}

struct aux_ctx {
    float x[6 * 5], w[3 * 5], b[3];
    int target[6];
};

static double aux_of(void *p)
{
    struct aux_ctx *a = p;
    float dx[6 * 5] = {0}, dw[3 * 5] = {0}, db[3] = {0};
    double loss, acc;
    assert_int_equal(
        dino_aux_loss(a->x, 6, 5, a->w, a->b, a->target, 3, 1.0f, dx, dw, db, &loss, &acc), 0);
    return loss;
}

/* The transformation-prediction loss: gradients in x, W and b by central differences, a hand
 * value, the accuracy, and the weight scaling what is added. */
static void aux_loss_gradients_match_finite_differences(void **state)
{
    struct aux_ctx a = {.target = {0, 1, 2, 2, 1, 0}};
    struct rng r = rng_seed(9, 0);
    gradcheck_fill(a.x, 6 * 5, 1.0f, &r);
    gradcheck_fill(a.w, 3 * 5, 0.5f, &r);
    gradcheck_fill(a.b, 3, 0.5f, &r);
    float dx[6 * 5] = {0}, dw[3 * 5] = {0}, db[3] = {0};
    double loss, acc;
    assert_int_equal(dino_aux_loss(a.x, 6, 5, a.w, a.b, a.target, 3, 1.0f, dx, dw, db, &loss, &acc),
                     0);
    assert_true(gradcheck("aux.dx", a.x, dx, 6 * 5, aux_of, &a, 1e-3f, 30) < 1e-2);
    assert_true(gradcheck("aux.dW", a.w, dw, 3 * 5, aux_of, &a, 1e-3f, 15) < 1e-2);
    assert_true(gradcheck("aux.db", a.b, db, 3, aux_of, &a, 1e-3f, 3) < 1e-2);
    assert_true(acc >= 0.0 && acc <= 1.0);
    float dx2[6 * 5];
    for (int i = 0; i < 6 * 5; i++) dx2[i] = 1.0f;
    memset(dw, 0, sizeof dw), memset(db, 0, sizeof db);
    assert_int_equal(
        dino_aux_loss(a.x, 6, 5, a.w, a.b, a.target, 3, 0.5f, dx2, dw, db, &loss, &acc), 0);
    for (int i = 0; i < 6 * 5; i++) assert_float_equal(dx2[i], 1.0f + 0.5f * dx[i], 1e-6);
    /* zero weights and biases: every class equally likely, loss ln 3 */
    struct aux_ctx z = {.target = {0, 1, 2, 0, 1, 2}};
    memcpy(z.x, a.x, sizeof z.x);
    assert_float_equal(aux_of(&z), log(3.0), 1e-6);
}

/* The same loss and gradients as PyTorch's cross_entropy on a linear head
 * (tests/reference/aux_loss.safetensors, written by make_aux_reference.py). */
static void aux_loss_matches_pytorch(void **state)
{
    struct st_file f;
    char err[256];
    if (st_load("tests/reference/aux_loss.safetensors", &f, err, sizeof err)) fail_msg("%s", err);
    const char *names[] = {"x", "weight", "bias", "target", "loss", "dx", "dweight", "dbias"};
    float *t[8];
    for (int i = 0; i < 8; i++) {
        const struct st_tensor *st = st_find(&f, names[i]);
        assert_non_null(st);
        t[i] = malloc(sizeof(float) * st->numel);
        st_read_f32(st, t[i]);
    }
    enum { N = 12, D = 16, A = 8 };
    int target[N];
    for (int i = 0; i < N; i++) target[i] = (int)t[3][i];
    float dx[N * D] = {0}, dw[A * D] = {0}, db[A] = {0};
    double loss, acc;
    assert_int_equal(
        dino_aux_loss(t[0], N, D, t[1], t[2], target, A, 1.0f, dx, dw, db, &loss, &acc), 0);
    assert_float_equal(loss, t[4][0], 1e-5);
    for (int i = 0; i < N * D; i++) assert_float_equal(dx[i], t[5][i], 1e-6);
    for (int i = 0; i < A * D; i++) assert_float_equal(dw[i], t[6][i], 1e-6);
    for (int i = 0; i < A; i++) assert_float_equal(db[i], t[7][i], 1e-6);
    for (int i = 0; i < 8; i++) free(t[i]);
    st_free(&f);
}

struct defect_ctx {
    float x[3 * 5 * 4], w[4], b[1], target[3 * 4], pw[3 * 4];
};

static double defect_of(void *p)
{
    struct defect_ctx *a = p;
    float dx[3 * 5 * 4] = {0}, dw[4] = {0}, db[1] = {0};
    double loss, acc;
    dino_defect_loss(a->x, 3, 5, 4, a->w, a->b, a->target, a->pw, 1.0f, dx, dw, db, &loss, &acc);
    return loss;
}

/* The synthetic-defect loss: gradients in the tokens, w and b by central differences, class rows
 * and zero-weight patches untouched, the weight scaling what is added, a hand value. */
static void defect_loss_gradients_match_finite_differences(void **state)
{
    struct defect_ctx a;
    struct rng r = rng_seed(10, 0);
    gradcheck_fill(a.x, 3 * 5 * 4, 1.0f, &r);
    gradcheck_fill(a.w, 4, 0.7f, &r);
    gradcheck_fill(a.b, 1, 0.5f, &r);
    for (int i = 0; i < 12; i++) a.target[i] = (float)(i % 3 == 0), a.pw[i] = 1.0f / 11;
    a.pw[5] = 0.0f;
    float dx[3 * 5 * 4] = {0}, dw[4] = {0}, db[1] = {0};
    double loss, acc;
    dino_defect_loss(a.x, 3, 5, 4, a.w, a.b, a.target, a.pw, 1.0f, dx, dw, db, &loss, &acc);
    assert_true(gradcheck("defect.dx", a.x, dx, 3 * 5 * 4, defect_of, &a, 1e-3f, 60) < 1e-2);
    assert_true(gradcheck("defect.dw", a.w, dw, 4, defect_of, &a, 1e-3f, 4) < 1e-2);
    assert_true(gradcheck("defect.db", a.b, db, 1, defect_of, &a, 1e-3f, 1) < 1e-2);
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 4; d++) assert_float_equal(dx[i * 5 * 4 + d], 0.0f, 0.0);
    /* patch 5 is image 1's second patch: token row 1·5 + 2 */
    for (int d = 0; d < 4; d++) assert_float_equal(dx[(1 * 5 + 2) * 4 + d], 0.0f, 0.0);
    assert_true(acc >= 0.0 && acc <= 1.0 + 1e-6);
    float dx2[3 * 5 * 4];
    for (int i = 0; i < 60; i++) dx2[i] = 1.0f;
    memset(dw, 0, sizeof dw), memset(db, 0, sizeof db);
    dino_defect_loss(a.x, 3, 5, 4, a.w, a.b, a.target, a.pw, 0.5f, dx2, dw, db, &loss, &acc);
    for (int i = 0; i < 60; i++) assert_float_equal(dx2[i], 1.0f + 0.5f * dx[i], 1e-6);
    /* a zero head: every logit 0, the loss ln 2 times the total weight */
    memset(a.w, 0, sizeof a.w), a.b[0] = 0;
    assert_float_equal(defect_of(&a), log(2.0), 1e-6);
}

/* The same loss and gradients as PyTorch's binary_cross_entropy_with_logits with weights
 * (tests/reference/defect_loss.safetensors, written by make_defect_reference.py). */
static void defect_loss_matches_pytorch(void **state)
{
    struct st_file f;
    char err[256];
    if (st_load("tests/reference/defect_loss.safetensors", &f, err, sizeof err))
        fail_msg("%s", err);
    const char *names[] = {"x", "weight", "bias", "target", "pw", "loss", "dx", "dweight", "dbias"};
    float *t[9];
    for (int i = 0; i < 9; i++) {
        const struct st_tensor *st = st_find(&f, names[i]);
        assert_non_null(st);
        t[i] = malloc(sizeof(float) * st->numel);
        st_read_f32(st, t[i]);
    }
    enum { N = 3, T = 10, D = 16 };
    float dx[N * T * D] = {0}, dw[D] = {0}, db[1] = {0};
    double loss, acc;
    dino_defect_loss(t[0], N, T, D, t[1], t[2], t[3], t[4], 1.0f, dx, dw, db, &loss, &acc);
    assert_float_equal(loss, t[5][0], 1e-5);
    for (int i = 0; i < N * T * D; i++) assert_float_equal(dx[i], t[6][i], 1e-6);
    for (int i = 0; i < D; i++) assert_float_equal(dw[i], t[7][i], 1e-6);
    assert_float_equal(db[0], t[8][0], 1e-6);
    for (int i = 0; i < 9; i++) free(t[i]);
    st_free(&f);
}

struct dense_ctx {
    float s[3 * 5 * 4], t[3 * 5 * 4];
    unsigned char mask[3 * 4];
};

static double dense_of(void *p)
{
    struct dense_ctx *a = p;
    float ds[3 * 5 * 4] = {0};
    double loss;
    dino_dense_loss(a->s, a->t, a->mask, 3, 5, 4, 1.0f, ds, &loss);
    return loss;
}

/* The masked-patch distillation: the gradient in the student's tokens by central differences,
 * class rows and unmasked patches untouched, the weight scaling what is added, equal tokens
 * giving 0 and opposite ones 2 per patch. */
static void dense_loss_gradients_match_finite_differences(void **state)
{
    struct dense_ctx a;
    struct rng r = rng_seed(12, 0);
    gradcheck_fill(a.s, 3 * 5 * 4, 1.0f, &r);
    gradcheck_fill(a.t, 3 * 5 * 4, 1.0f, &r);
    for (int i = 0; i < 12; i++) a.mask[i] = i % 3 != 1;
    float ds[3 * 5 * 4] = {0};
    double loss;
    dino_dense_loss(a.s, a.t, a.mask, 3, 5, 4, 1.0f, ds, &loss);
    assert_true(gradcheck("dense.ds", a.s, ds, 3 * 5 * 4, dense_of, &a, 1e-3f, 60) < 1e-2);
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 4; d++) assert_float_equal(ds[i * 5 * 4 + d], 0.0f, 0.0);
    /* mask[1] is image 0's second patch: token row 2 */
    for (int d = 0; d < 4; d++) assert_float_equal(ds[2 * 4 + d], 0.0f, 0.0);
    float ds2[3 * 5 * 4];
    for (int i = 0; i < 60; i++) ds2[i] = 1.0f;
    dino_dense_loss(a.s, a.t, a.mask, 3, 5, 4, 0.5f, ds2, &loss);
    for (int i = 0; i < 60; i++) assert_float_equal(ds2[i], 1.0f + 0.5f * ds[i], 1e-6);
    int masked = 0;
    for (int i = 0; i < 12; i++) masked += a.mask[i];
    memcpy(a.t, a.s, sizeof a.s);
    assert_float_equal(dense_of(&a), 0.0, 1e-6);
    for (int i = 0; i < 60; i++) a.t[i] = -2.0f * a.s[i];
    assert_float_equal(dense_of(&a), 2.0 * masked, 1e-5);
}

/* The same loss and gradient as PyTorch's cosine_similarity
 * (tests/reference/dense_loss.safetensors, written by make_dense_reference.py). */
static void dense_loss_matches_pytorch(void **state)
{
    struct st_file f;
    char err[256];
    if (st_load("tests/reference/dense_loss.safetensors", &f, err, sizeof err)) fail_msg("%s", err);
    const char *names[] = {"student", "teacher", "mask", "loss", "dstudent"};
    float *t[5];
    for (int i = 0; i < 5; i++) {
        const struct st_tensor *st = st_find(&f, names[i]);
        assert_non_null(st);
        t[i] = malloc(sizeof(float) * st->numel);
        st_read_f32(st, t[i]);
    }
    enum { N = 3, T = 10, D = 16 };
    unsigned char mask[N * (T - 1)];
    for (int i = 0; i < N * (T - 1); i++) mask[i] = t[2][i] > 0.5f;
    float ds[N * T * D] = {0};
    double loss;
    dino_dense_loss(t[0], t[1], mask, N, T, D, 1.0f, ds, &loss);
    assert_float_equal(loss, t[3][0], 1e-5);
    for (int i = 0; i < N * T * D; i++) assert_float_equal(ds[i], t[4][i], 1e-6);
    for (int i = 0; i < 5; i++) free(t[i]);
    st_free(&f);
}

/* Sinkhorn-Knopp targets and the loss on them as PyTorch computes them with DINOv2's
 * sinkhorn_knopp_teacher (tests/reference/sinkhorn_loss.safetensors, written by
 * make_sinkhorn_reference.py); rows of the targets sum to 1, prototypes share the batch evenly. */
static void sinkhorn_loss_matches_pytorch(void **state)
{
    struct st_file f;
    char err[256];
    if (st_load("tests/reference/sinkhorn_loss.safetensors", &f, err, sizeof err))
        fail_msg("%s", err);
    const char *names[] = {"teacher", "student", "targets", "loss", "dstudent"};
    float *t[5];
    for (int i = 0; i < 5; i++) {
        const struct st_tensor *st = st_find(&f, names[i]);
        assert_non_null(st);
        t[i] = malloc(sizeof(float) * st->numel);
        st_read_f32(st, t[i]);
    }
    enum { B = 3, NT = 2, NS = 4, K = 12 };
    float q[NT * B * K], ds[NS * B * K];
    dino_sinkhorn(t[0], NT * B, K, 0.07f, 3, q);
    for (int i = 0; i < NT * B * K; i++) assert_float_equal(q[i], t[2][i], 1e-5);
    for (int r = 0; r < NT * B; r++) {
        double sum = 0;
        for (int k = 0; k < K; k++) sum += q[r * K + k];
        assert_float_equal(sum, 1.0, 1e-5);
    }
    struct dino_stats st;
    assert_int_equal(dino_loss_sinkhorn(t[0], t[1], ds, B, NT, NS, K, 0.07f, 0.1f, 3, &st), 0);
    assert_float_equal(st.loss, t[3][0], 1e-5);
    for (int i = 0; i < NS * B * K; i++) assert_float_equal(ds[i], t[4][i], 1e-6);
    assert_true(st.teacher_kl > 0.0 && st.teacher_entropy < log((double)K));
    /* one target for every row: its KL to the batch mean is 0 */
    float same[NT * B * K];
    for (int i = 0; i < NT * B * K; i++) same[i] = t[0][i % K];
    assert_int_equal(dino_loss_sinkhorn(same, t[1], ds, B, NT, NS, K, 0.07f, 0.1f, 3, &st), 0);
    assert_true(st.teacher_kl < 1e-6);
    for (int i = 0; i < 5; i++) free(t[i]);
    st_free(&f);
}

/* Two orthogonal unit vectors and a third at 45° between them: hand-computed nearest distances. */
static void koleo_by_hand(void **state)
{
    const float s = (float)sqrt(0.5);
    float x[3 * 2] = {2, 0, 0, 3, s, s}, dx[3 * 2] = {0};
    double loss;
    assert_int_equal(dino_koleo(x, 3, 2, 1.0f, dx, &loss), 0);
    /* rows 0 and 1 both have row 2 nearest at distance sqrt(2 - sqrt 2); row 2 has row 0 (first
     * of a tie) at the same distance */
    double d = sqrt(2 - sqrt(2));
    assert_float_equal(loss, -log(d + 1e-8), 1e-6);
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

static void monitors_by_hand(void **state)
{
    enum { K4 = 4 };
    float t[2 * K4] = {0}, s[2 * K4] = {0}, c[K4] = {0}, ds[2 * K4];
    struct dino_stats st;
    /* every image gives the centre: uniform target (entropy ln K), no variation (KL 0) */
    assert_int_equal(dino_loss(t, s, c, ds, 1, 2, 2, K4, 0.04f, 0.1f, &st), 0);
    assert_float_equal(st.teacher_entropy, log(4.0), 1e-6);
    assert_float_equal(st.teacher_kl, 0.0, 1e-6);
    /* one dimension dominates, not yet in the centre: entropy 0, KL(one-hot ‖ uniform) = ln 4 */
    t[1] = t[K4 + 1] = 10.0f;
    assert_int_equal(dino_loss(t, s, c, ds, 1, 2, 2, K4, 0.04f, 0.1f, &st), 0);
    assert_true(st.teacher_entropy < 1e-6);
    assert_float_equal(st.teacher_kl, log(4.0), 1e-5);
    /* the centre has caught up with that constant output: centring flattens it, KL 0 */
    c[1] = 10.0f;
    assert_int_equal(dino_loss(t, s, c, ds, 1, 2, 2, K4, 0.04f, 0.1f, &st), 0);
    assert_float_equal(st.teacher_entropy, log(4.0), 1e-5);
    assert_float_equal(st.teacher_kl, 0.0, 1e-5);
    /* healthy: two images pick different dimensions, the centre their mean (5, 5, 0, 0):
     * sharp targets (entropy 0), each one-hot against the centre's (½, ½, 0, 0): KL ln 2 */
    float t2[2 * K4] = {10, 0, 0, 0, 0, 10, 0, 0}, c2[K4] = {5, 5, 0, 0};
    assert_int_equal(dino_loss(t2, s, c2, ds, 2, 1, 1, K4, 0.04f, 0.1f, &st), 0);
    assert_true(st.teacher_entropy < 1e-6);
    assert_float_equal(st.teacher_kl, log(2.0), 1e-5);
}

static void cosine_with_warmup_by_hand(void **state)
{
    /* base 0.1 → 0 over 10 steps, 5 of warm-up: np.linspace(0, 0.1, 5), then
     * 0.05 (1 + cos(π i / 5)) for i = 0..4 */
    const double want[10] = {0.0, 0.025,       0.05,       0.075,      0.1,
                             0.1, 0.090450850, 0.06545085, 0.03454915, 0.009549150};
    for (int i = 0; i < 10; i++) assert_float_equal(dino_cosine(0.1, 0.0, i, 10, 5), want[i], 1e-8);
    assert_float_equal(dino_cosine(0.1, 0.0, 10, 10, 5), 0.0, 0);
    assert_float_equal(dino_cosine(0.1, 0.0, 99, 10, 5), 0.0, 0);
}

static void every_schedule_by_hand(void **state)
{
    struct dino_schedule s = {.total = 4,
                              .lr = 0.002,
                              .min_lr = 1e-6,
                              .lr_warmup = 2,
                              .weight_decay = 0.04,
                              .weight_decay_end = 0.4,
                              .momentum = 0.996,
                              .teacher_temp = 0.07,
                              .warmup_teacher_temp = 0.04,
                              .teacher_temp_warmup = 3,
                              .freeze_last_layer = 1};
    struct dino_schedule_point p0 = dino_schedule_at(&s, 0), p1 = dino_schedule_at(&s, 1);
    struct dino_schedule_point p2 = dino_schedule_at(&s, 2), p3 = dino_schedule_at(&s, 3);
    assert_float_equal(p0.lr, 0.0f, 0);
    assert_float_equal(p1.lr, 0.002f, 1e-9);
    assert_float_equal(p2.lr, 0.002f, 1e-9);
    assert_float_equal(p3.lr, 1e-6 + 0.5 * (0.002 - 1e-6), 1e-9); /* cos(π/2) = 0 */
    /* weight decay: 0.4 − 0.18 (1 + cos(π s / 4)) */
    assert_float_equal(p0.weight_decay, 0.04f, 1e-7);
    assert_float_equal(p1.weight_decay, 0.4 - 0.18 * (1 + M_SQRT1_2), 1e-7);
    assert_float_equal(p2.weight_decay, 0.22f, 1e-7);
    assert_float_equal(p3.weight_decay, 0.4 - 0.18 * (1 - M_SQRT1_2), 1e-7);
    /* momentum: 1 − 0.002 (1 + cos(π s / 4)) */
    assert_float_equal(p0.teacher_momentum, 0.996f, 1e-7);
    assert_float_equal(p2.teacher_momentum, 0.998f, 1e-7);
    assert_float_equal(p3.teacher_momentum, 1 - 0.002 * (1 - M_SQRT1_2), 1e-7);
    /* teacher temperature: np.linspace(0.04, 0.07, 3) then 0.07 */
    assert_float_equal(p0.teacher_temp, 0.04f, 1e-7);
    assert_float_equal(p1.teacher_temp, 0.055f, 1e-7);
    assert_float_equal(p2.teacher_temp, 0.07f, 1e-7);
    assert_float_equal(p3.teacher_temp, 0.07f, 1e-7);
    assert_true(p0.freeze_last_layer && !p1.freeze_last_layer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gradient_matches_finite_differences),
        cmocka_unit_test(hand_computed_two_crop_case),
        cmocka_unit_test(koleo_gradient_matches_finite_differences),
        cmocka_unit_test(koleo_by_hand),
        cmocka_unit_test(aux_loss_gradients_match_finite_differences),
        cmocka_unit_test(aux_loss_matches_pytorch),
        cmocka_unit_test(defect_loss_gradients_match_finite_differences),
        cmocka_unit_test(defect_loss_matches_pytorch),
        cmocka_unit_test(dense_loss_gradients_match_finite_differences),
        cmocka_unit_test(dense_loss_matches_pytorch),
        cmocka_unit_test(sinkhorn_loss_matches_pytorch),
        cmocka_unit_test(centre_is_an_ema_of_the_batch_mean),
        cmocka_unit_test(monitors_by_hand),
        cmocka_unit_test(cosine_with_warmup_by_hand),
        cmocka_unit_test(every_schedule_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
