/* test_train.c — the DINO training loop on a few dozen generated images: against a fixed teacher
 * the student's loss falls towards the targets' entropy; the full recipe stays finite; two runs
 * with one seed end bit-identical; a run stopped by the callback and continued from its step count
 * ends where an uninterrupted one does; a warm start goes on from the step count with its own
 * schedules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

enum { N = 32, H = 16, STEPS = 100 };

/* Grey images: a bright disc of random centre and radius on a dark, slightly noisy ground. */
static float *make_images(void)
{
    float *img = malloc(sizeof(float) * N * H * H);
    assert_non_null(img);
    struct rng r = rng_seed(21, 0);
    for (int n = 0; n < N; n++) {
        double cx = rng_range(&r, 4, 12), cy = rng_range(&r, 4, 12), rad = rng_range(&r, 2, 5);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++) {
                double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                img[(n * H + y) * H + x] =
                    (float)((d2 < rad * rad ? 0.8 : 0.15) + 0.05 * rng_uniform(&r));
            }
    }
    return img;
}

static struct train_options options(void)
{
    struct train_options o;
    train_defaults(&o, H, 1);
    o.model.dim = 32, o.model.depth = 2, o.model.heads = 2, o.model.mlp_ratio = 2;
    o.model.head_hidden = 64, o.model.head_bottleneck = 32, o.model.head_out = 128;
    augment_defaults(&o.aug, H, 8);
    o.aug.mean[0] = 0.3f, o.aug.std[0] = 0.3f;
    o.batch = 16, o.n_local = 2, o.threads = 2;
    o.lr = 5e-3f;
    o.epochs = 0, o.total_steps = STEPS, o.seed = 4;
    return o;
}

struct record {
    double loss[STEPS];
    double defect_loss[STEPS], defect_acc[STEPS];
    double entropy;  /* of the teacher's targets at the last step */
    long stop_after; /* stop once this many steps ran (0 = never) */
};

static int record_loss(const struct train_progress *p, void *ctx)
{
    struct record *r = ctx;
    assert_true(p->step >= 0 && p->step < STEPS && p->total_steps == STEPS);
    assert_true(isfinite(p->stats.loss) && p->lr >= 0);
    r->loss[p->step] = p->stats.loss;
    r->defect_loss[p->step] = p->stats.defect_loss;
    r->defect_acc[p->step] = p->stats.defect_acc;
    r->entropy = p->stats.teacher_entropy;
    return r->stop_after && p->step + 1 >= r->stop_after;
}

static void run(struct dino_step *s, const struct train_options *o, const float *img,
                struct record *rec, int want_rc)
{
    char err[256];
    int rc = train_run(s, o, img, N, H, H, record_loss, rec, err, sizeof err);
    if (rc != want_rc) fail_msg("train_run returned %d (%s)", rc, err);
}

/* The DINO loss is not a quantity that falls from step 0: student and teacher start equal, and the
 * centring first flattens the targets. With the teacher and centre held (momentum 1), training is
 * plain distillation and the loss must fall towards its floor, the entropy of the targets. */
static void student_learns_a_fixed_teacher(void **state)
{
    float *img = make_images();
    struct train_options o = options();
    o.momentum_teacher = 1.0f, o.center_momentum = 1.0f;
    struct dino_step s;
    char err[256];
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    struct record rec = {0};
    run(&s, &o, img, &rec, 0);
    assert_int_equal(s.student.adam_step, STEPS);
    double first = (rec.loss[0] + rec.loss[1] + rec.loss[2]) / 3;
    double last = (rec.loss[STEPS - 1] + rec.loss[STEPS - 2] + rec.loss[STEPS - 3]) / 3;
    printf("  loss: first 3 steps %.4f, last 3 steps %.4f, target entropy %.4f\n", first, last,
           rec.entropy);
    assert_true(last < first - 0.25);
    assert_true(last > rec.entropy - 1e-3);
    dino_step_destroy(&s);
    free(img);
}

/* Synthetic-defect prediction: the model gains its defect head, and the head learns to find the
 * pasted defects (the balanced loss falls from ln 2, the balanced accuracy rises above chance; 16
 * px images of 4 × 4 patches make it a hard task, so the margins are small but exact: the run is
 * seeded). */
static void defect_head_learns_the_pasted_defects(void **state)
{
    float *img = make_images();
    struct train_options o = options();
    o.defect_weight = 1.0f;
    o.lr = 2e-2f;
    struct dino_step s;
    char err[256];
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    assert_non_null(vit_find_tensor(&s.student, "defect_head.weight"));
    assert_non_null(vit_find_tensor(&s.teacher, "defect_head.bias"));
    struct record rec = {0};
    run(&s, &o, img, &rec, 0);
    double first = (rec.defect_loss[0] + rec.defect_loss[1]) / 2;
    double last = 0, acc = 0;
    for (int i = STEPS - 5; i < STEPS; i++)
        last += rec.defect_loss[i] / 5, acc += rec.defect_acc[i] / 5;
    printf("  defect loss: first 2 steps %.4f, last 5 %.4f (balanced accuracy %.2f)\n", first, last,
           acc);
    assert_true(fabs(first - log(2.0)) < 0.1);
    assert_true(last < first - 0.02);
    assert_true(acc > 0.55);
    dino_step_destroy(&s);
    /* without the option the model has no defect head */
    o.defect_weight = 0.0f;
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    assert_null(vit_find_tensor(&s.student, "defect_head.weight"));
    dino_step_destroy(&s);
    free(img);
}

static void same_seed_same_teacher_and_resume_continues(void **state)
{
    float *img = make_images();
    struct train_options o = options();
    struct dino_step a, b;
    char err[256];
    assert_int_equal(train_make_step(&a, &o, err, sizeof err), 0);
    assert_int_equal(train_make_step(&b, &o, err, sizeof err), 0);
    struct record ra = {0}, rb = {.stop_after = 13};
    run(&a, &o, img, &ra, 0);
    run(&b, &o, img, &rb, 1); /* stopped by the callback after 13 steps */
    assert_int_equal(b.student.adam_step, 13);
    rb.stop_after = 0;
    run(&b, &o, img, &rb, 0); /* continues at step 13: same batches, crops and schedules */
    assert_int_equal(b.student.adam_step, STEPS);
    assert_memory_equal(ra.loss, rb.loss, sizeof ra.loss);
    assert_memory_equal(a.teacher.params, b.teacher.params, sizeof(float) * a.teacher.nparams);
    assert_memory_equal(a.center, b.center, sizeof(float) * (size_t)o.model.head_out);
    dino_step_destroy(&a);
    dino_step_destroy(&b);
    free(img);
}

struct schedule {
    long first, last, total;
    float lr[64], teacher_temp[64];
    int n;
};

static int record_schedule(const struct train_progress *p, void *ctx)
{
    struct schedule *r = ctx;
    if (r->n == 0) r->first = p->step;
    assert_true(r->n < 64);
    r->lr[r->n] = p->lr, r->teacher_temp[r->n++] = p->teacher_temp;
    r->last = p->step, r->total = p->total_steps;
    return 0;
}

/* A warm start (train_warm_start) goes on from the model's step count, through as many steps as
 * its own budget gives (here epochs, counted from its first step), with its own schedules: the
 * learning rate warms up again and ends at min_lr, the teacher temperature does not warm up
 * again; the weights, centre and moments are those it was given. */
static void a_warm_start_runs_its_own_schedules(void **state)
{
    float *img = make_images();
    struct train_options o = options();
    o.total_steps = 20, o.warmup_teacher_temp = 0.02f, o.teacher_temp = 0.04f;
    struct dino_step s;
    char err[256];
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    struct schedule first = {0};
    assert_int_equal(train_run(&s, &o, img, N, H, H, record_schedule, &first, err, sizeof err), 0);
    assert_int_equal(s.student.adam_step, 20);
    assert_true(first.lr[0] == 0.0f && first.teacher_temp[0] == 0.02f); /* warm-ups */
    float *center = malloc(sizeof(float) * (size_t)o.model.head_out);
    assert_non_null(center);
    memcpy(center, s.center, sizeof(float) * (size_t)o.model.head_out);

    o.epochs = 10; /* 10 epochs of N / batch = 2 steps: 20 steps, whatever the count before */
    train_warm_start(&o, &s);
    assert_int_equal(o.run_first, 20);
    assert_int_equal(o.total_steps, 0);
    struct schedule warm = {0};
    assert_int_equal(train_run(&s, &o, img, N, H, H, record_schedule, &warm, err, sizeof err), 0);
    assert_int_equal(warm.first, 20);
    assert_int_equal(warm.last, 39);
    assert_int_equal(warm.total, 40);
    assert_int_equal(s.student.adam_step, 40);
    assert_true(warm.lr[0] == 0.0f); /* the learning rate warms up again */
    float peak = o.lr * o.batch / 256.0f;
    assert_true(warm.lr[2] > 0.9f * peak);   /* after 10 % of the run's steps */
    assert_true(warm.lr[19] < 0.05f * peak); /* and ends near min_lr */
    for (int i = 0; i < warm.n; i++) assert_true(warm.teacher_temp[i] == 0.04f);
    /* the centre went on from where the first run left it */
    double moved = 0;
    for (int k = 0; k < o.model.head_out; k++) moved += fabs(s.center[k] - center[k]);
    assert_true(moved > 0);
    free(center);
    dino_step_destroy(&s);
    free(img);
}

/* The collapse guard fires on a constructed uniform teacher (every image's logits the same, so
 * centring leaves a flat target: entropy ln K, KL 0) after TRAIN_GUARD_STEPS steps, halving the
 * temperature each time up to its limit, and never on a teacher that tells images apart. */
static void collapse_guard_fires_on_a_uniform_teacher(void **state)
{
    enum { B = 4, K = 64 };
    float t[2 * B * K], st[2 * B * K], center[K], ds[2 * B * K];
    for (int i = 0; i < 2 * B * K; i++) t[i] = st[i] = (float)(i % K) * 0.01f;
    for (int k = 0; k < K; k++) center[k] = t[k];
    struct dino_stats uniform, healthy;
    assert_int_equal(dino_loss(t, st, center, ds, B, 2, 2, K, 0.04f, 0.1f, &uniform), 0);
    assert_true(uniform.teacher_entropy > TRAIN_GUARD_ENTROPY * log(K));
    for (int r = 0; r < 2 * B; r++) t[r * K + r % K] += 2.0f; /* each image its own peak */
    memset(center, 0, sizeof center);
    assert_int_equal(dino_loss(t, st, center, ds, B, 2, 2, K, 0.04f, 0.1f, &healthy), 0);
    struct train_guard g;
    train_guard_init(&g);
    for (int i = 0; i < 100; i++) assert_int_equal(train_guard_step(&g, &healthy, K), 0);
    int fired = 0;
    for (int i = 1; i <= TRAIN_GUARD_STEPS * (TRAIN_GUARD_MAX_FIRES + 2); i++) {
        int f = train_guard_step(&g, &uniform, K);
        assert_int_equal(f, i % TRAIN_GUARD_STEPS == 0 &&
                                i / TRAIN_GUARD_STEPS <= TRAIN_GUARD_MAX_FIRES);
        fired += f;
    }
    assert_int_equal(fired, TRAIN_GUARD_MAX_FIRES);
    assert_float_equal(g.temp_scale, 1.0 / (1 << TRAIN_GUARD_MAX_FIRES), 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(collapse_guard_fires_on_a_uniform_teacher),
        cmocka_unit_test(student_learns_a_fixed_teacher),
        cmocka_unit_test(same_seed_same_teacher_and_resume_continues),
        cmocka_unit_test(defect_head_learns_the_pasted_defects),
        cmocka_unit_test(a_warm_start_runs_its_own_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
