/* test_ssl.c — the methods beside DINO (ssl.h, ssl_step.h): BYOL's, Barlow Twins' and SimCLR's
 * losses and BYOL's predictor by central differences and against PyTorch
 * (tests/reference/ssl_loss.safetensors, written by make_ssl_reference.py), the embedding spread;
 * in the training step two workers give the gradients of one for every method, a few steps on a
 * few dozen images lower each method's loss, and a checkpoint of each loads and resumes to the
 * same state; configs a method cannot run are refused; the names read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "gradcheck.h"
#include "ssl.h"
#include "train.h"

/* ---- the losses by central differences ---- */

enum { BB = 3, BT = 2, BS = 4, BK = 6 };

struct byol_ctx {
    float target[BT * BB * BK], pred[BS * BB * BK];
};

static double byol_of(void *p)
{
    struct byol_ctx *c = p;
    float d[BS * BB * BK];
    double loss;
    assert_int_equal(byol_loss(c->target, c->pred, d, BB, BT, BS, BK, &loss), 0);
    return loss;
}

static void byol_gradient_matches_finite_differences(void **state)
{
    struct byol_ctx c;
    struct rng r = rng_seed(1, 0);
    gradcheck_fill(c.target, BT * BB * BK, 1.0f, &r);
    gradcheck_fill(c.pred, BS * BB * BK, 1.0f, &r);
    float d[BS * BB * BK];
    double loss;
    assert_int_equal(byol_loss(c.target, c.pred, d, BB, BT, BS, BK, &loss), 0);
    assert_true(loss > 0.0 && loss < 4.0);
    assert_true(gradcheck("byol.dpred", c.pred, d, BS * BB * BK, byol_of, &c, 1e-3f, 72) < 1e-2);
    /* predictions that point where their targets do: no loss */
    struct byol_ctx same = c;
    for (int i = 0; i < BS; i++)
        for (int b = 0; b < BB; b++)
            for (int k = 0; k < BK; k++)
                same.pred[(i * BB + b) * BK + k] = 2.0f * c.target[b * BK + k];
    memcpy(same.target + BB * BK, c.target, sizeof(float) * BB * BK);
    assert_float_equal(byol_of(&same), 0.0, 1e-6);
}

enum { RB = 5, RK = 4 };

struct barlow_ctx {
    float z[2 * RB * RK];
    float lambda;
};

static double barlow_of(void *p)
{
    struct barlow_ctx *c = p;
    float d[2 * RB * RK];
    double loss;
    assert_int_equal(barlow_loss(c->z, d, RB, RK, c->lambda, &loss), 0);
    return loss;
}

static void barlow_gradient_matches_finite_differences(void **state)
{
    struct barlow_ctx c = {.lambda = 0.4f};
    struct rng r = rng_seed(2, 0);
    gradcheck_fill(c.z, 2 * RB * RK, 1.0f, &r);
    float d[2 * RB * RK];
    double loss;
    assert_int_equal(barlow_loss(c.z, d, RB, RK, c.lambda, &loss), 0);
    assert_true(gradcheck("barlow.dz", c.z, d, 2 * RB * RK, barlow_of, &c, 1e-3f, 40) < 2e-2);
    /* two identical views of decorrelated dimensions: the cross-correlation is the identity */
    static const float eye[4 * 2] = {1, 1, -1, 1, 1, -1, -1, -1};
    float z[2 * 4 * 2], dz[2 * 4 * 2];
    memcpy(z, eye, sizeof eye), memcpy(z + 8, eye, sizeof eye);
    assert_int_equal(barlow_loss(z, dz, 4, 2, 0.5f, &loss), 0);
    assert_float_equal(loss, 0.0, 1e-4);
}

enum { SB = 4, SK = 5 };

struct simclr_ctx {
    float z[2 * SB * SK];
};

static double simclr_of(void *p)
{
    struct simclr_ctx *c = p;
    float d[2 * SB * SK];
    double loss;
    assert_int_equal(simclr_loss(c->z, d, SB, SK, 0.3f, &loss, NULL), 0);
    return loss;
}

static void simclr_gradient_matches_finite_differences(void **state)
{
    struct simclr_ctx c;
    struct rng r = rng_seed(3, 0);
    gradcheck_fill(c.z, 2 * SB * SK, 1.0f, &r);
    float d[2 * SB * SK];
    double loss, acc;
    assert_int_equal(simclr_loss(c.z, d, SB, SK, 0.3f, &loss, &acc), 0);
    assert_true(gradcheck("simclr.dz", c.z, d, 2 * SB * SK, simclr_of, &c, 1e-3f, 40) < 1e-2);
    /* the two views of each image identical and the images far apart: every positive found */
    struct simclr_ctx e = {{0}};
    for (int b = 0; b < SB; b++) e.z[b * SK + b] = e.z[(SB + b) * SK + b] = 1.0f;
    assert_int_equal(simclr_loss(e.z, d, SB, SK, 0.3f, &loss, &acc), 0);
    assert_float_equal(acc, 1.0, 0.0);
}

enum { PN = 3, PK = 5, PH = 4 };

struct pred_ctx {
    float z[PN * PK], w1[PH * PK], b1[PH], w2[PK * PH], b2[PK], R[PN * PK];
};

static double pred_of(void *p)
{
    struct pred_ctx *c = p;
    float out[PN * PK], pre[PN * PH], act[PN * PH];
    ssl_predictor_forward(out, pre, act, c->z, c->w1, c->b1, c->w2, c->b2, PN, PK, PH);
    return gradcheck_dot(out, c->R, PN * PK);
}

static void predictor_gradients_match_finite_differences(void **state)
{
    struct pred_ctx c;
    struct rng r = rng_seed(4, 0);
    gradcheck_fill(c.z, PN * PK, 1.0f, &r);
    gradcheck_fill(c.w1, PH * PK, 0.5f, &r);
    gradcheck_fill(c.b1, PH, 0.5f, &r);
    gradcheck_fill(c.w2, PK * PH, 0.5f, &r);
    gradcheck_fill(c.b2, PK, 0.5f, &r);
    gradcheck_fill(c.R, PN * PK, 1.0f, &r);
    float out[PN * PK], pre[PN * PH], act[PN * PH], scratch[2 * PN * PH];
    float dz[PN * PK] = {0}, dw1[PH * PK] = {0}, db1[PH] = {0}, dw2[PK * PH] = {0}, db2[PK] = {0};
    ssl_predictor_forward(out, pre, act, c.z, c.w1, c.b1, c.w2, c.b2, PN, PK, PH);
    ssl_predictor_backward(dz, dw1, db1, dw2, db2, scratch, c.R, c.z, pre, act, c.w1, c.w2, PN, PK,
                           PH);
    assert_true(gradcheck("pred.dz", c.z, dz, PN * PK, pred_of, &c, 1e-3f, 15) < 1e-2);
    assert_true(gradcheck("pred.dw1", c.w1, dw1, PH * PK, pred_of, &c, 1e-3f, 20) < 1e-2);
    assert_true(gradcheck("pred.db1", c.b1, db1, PH, pred_of, &c, 1e-3f, 4) < 1e-2);
    assert_true(gradcheck("pred.dw2", c.w2, dw2, PK * PH, pred_of, &c, 1e-3f, 20) < 1e-2);
    assert_true(gradcheck("pred.db2", c.b2, db2, PK, pred_of, &c, 1e-3f, 5) < 1e-2);
}

/* ---- against PyTorch ---- */

static float *tensor(const struct st_file *f, const char *name, size_t want)
{
    const struct st_tensor *t = st_find(f, name);
    if (!t) fail_msg("no %s in the reference", name);
    assert_int_equal(t->numel, want);
    float *p = malloc(sizeof(float) * t->numel);
    assert_non_null(p);
    st_read_f32(t, p);
    return p;
}

static double worst_rel(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(b[i]));
    return m > 0 ? d / m : d;
}

static void the_losses_match_pytorch(void **state)
{
    struct st_file f;
    char err[256];
    if (st_load("tests/reference/ssl_loss.safetensors", &f, err, sizeof err)) fail_msg("%s", err);
    double loss, e;
    /* BYOL: B 3, 2 target crops, 4 student crops, K 8 */
    float *t = tensor(&f, "byol.target", 2 * 3 * 8), *p = tensor(&f, "byol.pred", 4 * 3 * 8);
    float *want = tensor(&f, "byol.dpred", 4 * 3 * 8), *l = tensor(&f, "byol.loss", 1);
    float d[4 * 3 * 8];
    assert_int_equal(byol_loss(t, p, d, 3, 2, 4, 8, &loss), 0);
    printf("  byol: loss %.6f (torch %.6f), dpred rel err %.2e\n", loss, l[0],
           e = worst_rel(d, want, 96));
    assert_float_equal(loss, l[0], 1e-5), assert_true(e < 1e-5);
    free(t), free(p), free(want), free(l);
    /* Barlow Twins: B 6, K 5, lambda 0.3 */
    float *z = tensor(&f, "barlow.z", 12 * 5), dz[12 * 5];
    want = tensor(&f, "barlow.dz", 12 * 5), l = tensor(&f, "barlow.loss", 1);
    assert_int_equal(barlow_loss(z, dz, 6, 5, 0.3f, &loss), 0);
    printf("  barlow: loss %.6f (torch %.6f), dz rel err %.2e\n", loss, l[0],
           e = worst_rel(dz, want, 60));
    assert_float_equal(loss, l[0], 1e-5 * fabs(l[0])), assert_true(e < 1e-5);
    free(z), free(want), free(l);
    /* SimCLR: B 4, K 6, tau 0.5 */
    z = tensor(&f, "simclr.z", 8 * 6), want = tensor(&f, "simclr.dz", 8 * 6);
    l = tensor(&f, "simclr.loss", 1);
    assert_int_equal(simclr_loss(z, dz, 4, 6, 0.5f, &loss, NULL), 0);
    printf("  simclr: loss %.6f (torch %.6f), dz rel err %.2e\n", loss, l[0],
           e = worst_rel(dz, want, 48));
    assert_float_equal(loss, l[0], 1e-5), assert_true(e < 1e-5);
    free(z), free(want), free(l);
    /* the predictor: N 5, K 6, H 4 */
    float *pz = tensor(&f, "pred.z", 30), *w1 = tensor(&f, "pred.w1", 24);
    float *b1 = tensor(&f, "pred.b1", 4), *w2 = tensor(&f, "pred.w2", 24);
    float *b2 = tensor(&f, "pred.b2", 6), *dp = tensor(&f, "pred.dp", 30);
    float *wp = tensor(&f, "pred.p", 30), *wdz = tensor(&f, "pred.dz", 30);
    float *wdw1 = tensor(&f, "pred.dw1", 24), *wdb1 = tensor(&f, "pred.db1", 4);
    float *wdw2 = tensor(&f, "pred.dw2", 24), *wdb2 = tensor(&f, "pred.db2", 6);
    float out[30], pre[20], act[20], scratch[40], gz[30] = {0}, gw1[24] = {0}, gb1[4] = {0},
                                                  gw2[24] = {0}, gb2[6] = {0};
    ssl_predictor_forward(out, pre, act, pz, w1, b1, w2, b2, 5, 6, 4);
    ssl_predictor_backward(gz, gw1, gb1, gw2, gb2, scratch, dp, pz, pre, act, w1, w2, 5, 6, 4);
    e = fmax(fmax(worst_rel(out, wp, 30), worst_rel(gz, wdz, 30)),
             fmax(fmax(worst_rel(gw1, wdw1, 24), worst_rel(gb1, wdb1, 4)),
                  fmax(worst_rel(gw2, wdw2, 24), worst_rel(gb2, wdb2, 6))));
    printf("  predictor: output and gradients rel err %.2e\n", e);
    assert_true(e < 1e-5);
    free(pz), free(w1), free(b1), free(w2), free(b2), free(dp), free(wp), free(wdz);
    free(wdw1), free(wdb1), free(wdw2), free(wdb2);
    /* the spread of the normalised embeddings: n 7, K 5 */
    z = tensor(&f, "spread.z", 35), l = tensor(&f, "spread.std", 1);
    assert_float_equal(ssl_embed_std(z, 7, 5), l[0], 1e-6);
    free(z), free(l);
    st_free(&f);
}

static void a_collapsed_batch_has_no_spread(void **state)
{
    float z[6 * 4];
    for (int r = 0; r < 6; r++)
        for (int k = 0; k < 4; k++) z[r * 4 + k] = (float)(k + 1) * (1.0f + (float)r);
    assert_float_equal(ssl_embed_std(z, 6, 4), 0.0, 1e-7);
    /* two opposite rows along each axis: every dimension's deviation is 1/2 of its rows' share */
    float spread[8 * 4] = {0};
    for (int k = 0; k < 4; k++) spread[(2 * k) * 4 + k] = 1, spread[(2 * k + 1) * 4 + k] = -1;
    assert_float_equal(ssl_embed_std(spread, 8, 4), 0.5, 1e-7);
}

/* ---- in the training step ---- */

static const struct vit_config model = {.dim = 24,
                                        .depth = 1,
                                        .heads = 2,
                                        .mlp_ratio = 2,
                                        .patch = 4,
                                        .img_size = 16,
                                        .in_chans = 1,
                                        .head_hidden = 32,
                                        .head_bottleneck = 16,
                                        .head_out = 32};

static struct dino_step_config step_config(enum ssl_method m, int threads)
{
    return (struct dino_step_config){.batch = 4,
                                     .n_global = 2,
                                     .n_local = ssl_method_uses_locals(m) ? 2 : 0,
                                     .global_size = 16,
                                     .local_size = 8,
                                     .student_temp = 0.1f,
                                     .center_momentum = 0.9f,
                                     .clip = 3.0f,
                                     .beta1 = 0.9f,
                                     .beta2 = 0.999f,
                                     .eps = 1e-8f,
                                     .threads = threads,
                                     .method = m,
                                     .barlow_lambda = 0.0051f,
                                     .simclr_temp = 0.2f};
}

static struct vit_config model_for(enum ssl_method m)
{
    struct vit_config c = model;
    c.pred_hidden = m == SSL_BYOL ? 16 : 0;
    return c;
}

static void two_workers_match_one_for_every_method(void **state)
{
    struct rng r = rng_seed(5, 0);
    float glob[2 * 4 * 16 * 16], loc[2 * 4 * 8 * 8];
    gradcheck_fill(glob, sizeof glob / sizeof *glob, 1.0f, &r);
    gradcheck_fill(loc, sizeof loc / sizeof *loc, 1.0f, &r);
    struct dino_step_params p = {.lr = 1e-3f, .weight_decay = 0.04f, .teacher_momentum = 0.9f};
    for (int m = SSL_BYOL; m < SSL_METHODS; m++) {
        struct dino_step a, b;
        struct vit_config mc = model_for((enum ssl_method)m);
        struct dino_step_config ca = step_config((enum ssl_method)m, 1),
                                cb = step_config((enum ssl_method)m, 2);
        char err[256];
        assert_int_equal(dino_step_create(&a, &mc, &ca, 7, err, sizeof err), 0);
        assert_int_equal(dino_step_create(&b, &mc, &cb, 7, err, sizeof err), 0);
        struct dino_stats sa, sb;
        assert_int_equal(dino_step_run(&a, glob, loc, &p, &sa), 0);
        assert_int_equal(dino_step_run(&b, glob, loc, &p, &sb), 0);
        double gmax = 0, worst = 0;
        for (size_t i = 0; i < a.student.nparams; i++) {
            gmax = fmax(gmax, fabs(a.student.grads[i]));
            worst = fmax(worst, fabs(a.student.grads[i] - b.student.grads[i]));
        }
        printf("  %s: loss %.5f, embed_std %.4f; max |gradient difference| %.2e of %.2e\n",
               ssl_method_name((enum ssl_method)m), sa.loss, sa.embed_std, worst, gmax);
        assert_float_equal(sa.loss, sb.loss, 1e-5 * fabs(sa.loss));
        assert_true(gmax > 0 && worst <= 1e-4 * gmax);
        assert_true(sa.embed_std > 0);
        if (m == SSL_BYOL) { /* the predictor learns */
            const struct vit_tensor *t = vit_find_tensor(&a.student, "predictor.fc2.weight");
            double g = 0;
            for (size_t i = 0; i < t->numel; i++) g += fabs(a.student.grads[t->offset + i]);
            assert_true(g > 0);
        } else { /* no teacher: it is the student */
            assert_memory_equal(a.teacher.params, a.student.params,
                                sizeof(float) * a.student.nparams);
        }
        dino_step_destroy(&a);
        dino_step_destroy(&b);
    }
}

/* A few dozen 16 px grey images, each its own pattern: two plane waves of random direction and
 * frequency, which any crop of the image shows again and another image does not. */
static float *wave_images(int n)
{
    float *img = malloc(sizeof(float) * (size_t)n * 16 * 16);
    assert_non_null(img);
    struct rng r = rng_seed(11, 0);
    for (int i = 0; i < n; i++) {
        double f[2][3];
        for (int w = 0; w < 2; w++) {
            double a = 3.14159265 * rng_uniform(&r), k = 0.4 + 1.2 * rng_uniform(&r);
            f[w][0] = k * cos(a), f[w][1] = k * sin(a), f[w][2] = 6.2831853 * rng_uniform(&r);
        }
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
                img[(size_t)i * 256 + y * 16 + x] =
                    (float)(0.5 + 0.25 * sin(f[0][0] * x + f[0][1] * y + f[0][2]) +
                            0.25 * sin(f[1][0] * x + f[1][1] * y + f[1][2]));
    }
    return img;
}

struct losses {
    double v[64];
    int n;
};

static int record(const struct train_progress *p, void *ctx)
{
    struct losses *l = ctx;
    if (l->n < 64) l->v[l->n++] = p->stats.loss;
    return 0;
}

static struct train_options options_for(enum ssl_method m)
{
    struct train_options o;
    train_defaults(&o, 16, 1);
    o.method = m;
    o.model.dim = 24, o.model.depth = 1, o.model.heads = 2, o.model.patch = 4;
    o.model.head_hidden = 32, o.model.head_bottleneck = 16, o.model.head_out = 32;
    o.batch = 16, o.n_local = 2, o.threads = 2, o.seed = 3;
    o.lr = 0.016f; /* per 256 images: 1e-3 */
    o.aug.mean[0] = 0.3f, o.aug.std[0] = 0.3f;
    train_set_size(&o, 16);
    /* gentle views (no colour change, blur, solarisation or flips; large global crops), so a
     * 16 px task with a one-block ViT is learnt within a few dozen steps */
    o.aug.jitter_p = 0, o.aug.solarize_p = 0, o.aug.flip_p = 0;
    o.aug.blur_p[0] = o.aug.blur_p[1] = o.aug.blur_p[2] = 0;
    o.aug.global_scale[0] = 0.8f;
    return o;
}

/* The method's loss on a fixed batch of the first 16 images, measured by a step that changes
 * no weight (learning rate 0, the teacher's momentum 1): the two global views are the image and
 * the image a little darker, the local ones its top-left and bottom-right quarters. */
static double fixed_batch_loss(struct dino_step *s, const float *images)
{
    enum { B = 16 };
    static float glob[2 * B * 256], loc[2 * B * 64];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 256; i++) {
            glob[b * 256 + i] = (images[b * 256 + i] - 0.5f) / 0.3f;
            glob[(B + b) * 256 + i] = (0.9f * images[b * 256 + i] - 0.5f) / 0.3f;
        }
    for (int l = 0; l < 2; l++)
        for (int b = 0; b < B; b++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    loc[(l * B + b) * 64 + y * 8 + x] =
                        (images[b * 256 + (8 * l + y) * 16 + 8 * l + x] - 0.5f) / 0.3f;
    struct dino_step_params p = {.teacher_momentum = 1.0f, .teacher_temp = 0.04f};
    struct dino_stats st;
    assert_int_equal(dino_step_run(s, glob, loc, &p, &st), 0);
    return st.loss;
}

static void a_few_steps_lower_each_loss_and_the_checkpoint_resumes(void **state)
{
    enum { N = 32 };
    float *images = wave_images(N);
    for (int m = SSL_BYOL; m < SSL_METHODS; m++) {
        struct train_options o = options_for((enum ssl_method)m);
        o.epochs = 20; /* 40 steps */
        struct dino_step s;
        char err[256];
        assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
        double before = fixed_batch_loss(&s, images);
        struct losses l = {.n = 0};
        assert_int_equal(train_run(&s, &o, images, N, 16, 16, record, &l, err, sizeof err), 0);
        assert_int_equal(l.n, 39);
        double after = fixed_batch_loss(&s, images);
        printf("  %s: loss on a fixed batch %.4f before 39 steps, %.4f after\n",
               ssl_method_name((enum ssl_method)m), before, after);
        assert_true(after < before);
        /* the state written, loaded into a new step and run on: the same as going on */
        char path[] = "/tmp/inspectd-test-ssl-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        const char *keys[] = {"method"}, *vals[] = {ssl_method_name((enum ssl_method)m)};
        assert_int_equal(checkpoint_save_training(path, &s, keys, vals, 1, err, sizeof err), 0);
        struct st_file f;
        assert_int_equal(st_load(path, &f, err, sizeof err), 0);
        assert_string_equal(st_meta(&f, "method"), ssl_method_name((enum ssl_method)m));
        struct dino_step back;
        assert_int_equal(train_make_step(&back, &o, err, sizeof err), 0);
        if (checkpoint_load_training(&back, &f, err, sizeof err)) fail_msg("%s", err);
        struct vit_model scorer; /* what scoring loads: the teacher of the file */
        struct vit_config mc = train_model_config(&o);
        assert_int_equal(vit_create(&scorer, &mc, false, err, sizeof err), 0);
        if (checkpoint_load_model(&scorer, &f, "teacher.", err, sizeof err)) fail_msg("%s", err);
        assert_memory_equal(scorer.params, s.teacher.params, sizeof(float) * s.teacher.nparams);
        vit_destroy(&scorer);
        st_free(&f);
        unlink(path);
        o.epochs = 22;
        struct losses la = {.n = 0}, lb = {.n = 0};
        assert_int_equal(train_run(&s, &o, images, N, 16, 16, record, &la, err, sizeof err), 0);
        assert_int_equal(train_run(&back, &o, images, N, 16, 16, record, &lb, err, sizeof err), 0);
        assert_int_equal(la.n, 3); /* to step 44 from the 39 and the two measuring steps */
        assert_int_equal(lb.n, 3);
        for (int i = 0; i < 3; i++) assert_true(la.v[i] == lb.v[i]);
        assert_memory_equal(s.teacher.params, back.teacher.params,
                            sizeof(float) * s.teacher.nparams);
        dino_step_destroy(&back);
        dino_step_destroy(&s);
    }
    free(images);
}

static void configs_a_method_cannot_run_are_refused(void **state)
{
    char err[256];
    struct dino_step s;
    struct dino_step_config c = step_config(SSL_BYOL, 1);
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "predictor"));
    struct vit_config byol = model_for(SSL_BYOL);
    c = step_config(SSL_BARLOW, 1);
    assert_int_equal(dino_step_create(&s, &byol, &c, 1, err, sizeof err), -1);
    c = step_config(SSL_SIMCLR, 1);
    c.n_local = 2;
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no local crops"));
    c = step_config(SSL_BARLOW, 1);
    c.n_global = 3;
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    c = step_config(SSL_SIMCLR, 1);
    c.simclr_temp = 0;
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    c = step_config(SSL_DINO, 1);
    c.method = (enum ssl_method)SSL_METHODS;
    assert_int_equal(dino_step_create(&s, &model, &c, 1, err, sizeof err), -1);
    /* train_make_step leaves the local crops out where the method takes none */
    struct train_options o = options_for(SSL_SIMCLR);
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    assert_int_equal(s.cfg.n_local, 0);
    assert_int_equal(s.model.pred_hidden, 0);
    dino_step_destroy(&s);
    o = options_for(SSL_BYOL);
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    assert_int_equal(s.cfg.n_local, 2);
    assert_int_equal(s.model.pred_hidden, 16);
    dino_step_destroy(&s);
}

static void the_collapse_report(void **state)
{
    struct train_guard g;
    train_guard_init(&g);
    bool collapsed = false;
    double healthy = 1.0 / sqrt(64.0), low = 0.5 * TRAIN_COLLAPSE_STD / sqrt(64.0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(train_collapse_step(&g, healthy, 64, &collapsed), 0);
    for (int i = 1; i < TRAIN_GUARD_STEPS; i++)
        assert_int_equal(train_collapse_step(&g, low, 64, &collapsed), 0);
    assert_int_equal(train_collapse_step(&g, low, 64, &collapsed), 1);
    assert_true(collapsed);
    assert_int_equal(train_collapse_step(&g, low, 64, &collapsed), 0);
    assert_int_equal(train_collapse_step(&g, healthy, 64, &collapsed), 1);
    assert_false(collapsed);
}

static void the_names_read_back(void **state)
{
    static const char *const names[] = {"dino", "byol", "barlow", "simclr"};
    for (int i = 0; i < SSL_METHODS; i++) {
        enum ssl_method m;
        assert_string_equal(ssl_method_name((enum ssl_method)i), names[i]);
        assert_int_equal(ssl_method_parse(names[i], &m), 0);
        assert_int_equal(m, i);
    }
    enum ssl_method m = SSL_BARLOW;
    assert_int_equal(ssl_method_parse("moco", &m), -1);
    assert_int_equal(ssl_method_parse(NULL, &m), -1);
    assert_int_equal(m, SSL_BARLOW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(byol_gradient_matches_finite_differences),
        cmocka_unit_test(barlow_gradient_matches_finite_differences),
        cmocka_unit_test(simclr_gradient_matches_finite_differences),
        cmocka_unit_test(predictor_gradients_match_finite_differences),
        cmocka_unit_test(the_losses_match_pytorch),
        cmocka_unit_test(a_collapsed_batch_has_no_spread),
        cmocka_unit_test(two_workers_match_one_for_every_method),
        cmocka_unit_test(a_few_steps_lower_each_loss_and_the_checkpoint_resumes),
        cmocka_unit_test(configs_a_method_cannot_run_are_refused),
        cmocka_unit_test(the_collapse_report),
        cmocka_unit_test(the_names_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
