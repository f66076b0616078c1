/* test_model.c — a scoring model from a real training checkpoint on a real bank file: built from
 * normal images, loaded back, and operator feedback: a frame marked false positive scores below
 * the threshold once its patches are in the bank; a later set that keeps it reuses its rows
 * (the bank equals one built from scratch); an empty set restores the file's bank. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "gemm.h"
#include "scoring/model.h"
#include "tmpdb.h"
#include "train.h"

#define S 16
#define C 1
#define N 20

/* Normal images: a bright disc at a slightly varying place, with a little noise; odd[] is the first
 * with a bright square in a corner. */
static void make_images(struct image_set *set, float *odd)
{
    set->size = S, set->channels = C, set->n = N, set->cap = N;
    set->pixels = malloc(sizeof(float) * N * S * S);
    assert_non_null(set->pixels);
    for (int i = 0; i < N; i++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float cx = 8 + (float)(i % 3) * 0.3f, dx = x - cx, dy = y - 8;
                unsigned h = (unsigned)(i * 7919 + y * 131 + x * 17) * 2654435761u;
                float noise = (float)(h >> 24) / 255.0f * 0.1f - 0.05f;
                set->pixels[(i * S + y) * S + x] = (dx * dx + dy * dy < 25 ? 0.8f : 0.2f) + noise;
            }
    memcpy(odd, set->pixels, sizeof(float) * S * S);
    for (int y = 2; y < 6; y++)
        for (int x = 2; x < 6; x++) odd[y * S + x] = 1.0f;
}

/* A training checkpoint of an untrained tiny model, with the metadata cmd_train writes. */
static void write_checkpoint(const char *path)
{
    struct train_options o;
    train_defaults(&o, S, C);
    o.model.dim = 16, o.model.depth = 2, o.model.heads = 2, o.model.patch = 4;
    o.model.head_hidden = 16, o.model.head_bottleneck = 8, o.model.head_out = 32;
    o.batch = 4, o.n_local = 0;
    struct dino_step s;
    char err[256], model[512];
    assert_int_equal(train_make_step(&s, &o, err, sizeof err), 0);
    const struct vit_config *m = &o.model;
    snprintf(model, sizeof model,
             "{\"dim\":%d,\"depth\":%d,\"heads\":%d,\"mlp_ratio\":%d,\"patch\":%d,"
             "\"img_size\":%d,\"in_chans\":%d,\"head_hidden\":%d,\"head_bottleneck\":%d,"
             "\"head_out\":%d,\"aux_classes\":%d,\"mean\":[0.4],\"std\":[0.3]}",
             m->dim, m->depth, m->heads, m->mlp_ratio, m->patch, m->img_size, m->in_chans,
             m->head_hidden, m->head_bottleneck, m->head_out, m->aux_classes);
    const char *keys[] = {"format", "version", "model"};
    const char *vals[] = {"inspectd-checkpoint", "1", model};
    if (checkpoint_save_training(path, &s, keys, vals, 3, err, sizeof err)) fail_msg("%s", err);
    dino_step_destroy(&s);
}

static void feedback_joins_and_leaves_the_bank(void **state)
{
    struct fixture *f = *state;
    char ckpt[160], bank[160], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", f->dir);
    snprintf(bank, sizeof bank, "%s/bank.safetensors", f->dir);
    write_checkpoint(ckpt);
    struct image_set normal = {0};
    float odd[S * S], both[2 * S * S];
    make_images(&normal, odd);
    struct model_build_options o;
    model_build_defaults(&o);
    o.readout = MODEL_READOUT_PATCH;
    struct model_build_result r;
    if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
    struct scoring_model m;
    if (model_load(&m, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(m.readout, MODEL_READOUT_PATCH);
    int base = m.bank.n;
    assert_int_equal(base, m.base_rows);

    float before, after, again;
    assert_int_equal(model_score(&m, odd, 1, 1, &before, NULL, err, sizeof err), 0);
    assert_true(before > m.threshold);

    /* the odd frame marked false positive: its patches join, it scores (about) zero */
    int64_t ids[2] = {7, 9};
    assert_int_equal(model_set_feedback(&m, ids, 1, odd, 1, err, sizeof err), 0);
    int P = m.gh * m.gw;
    assert_int_equal(m.bank.n, base + P);
    assert_true(model_has_feedback(&m, 7) && !model_has_feedback(&m, 9));
    assert_int_equal(model_score(&m, odd, 1, 1, &after, NULL, err, sizeof err), 0);
    print_message("odd frame: %g before, %g after, threshold %g\n", before, after, m.threshold);
    assert_true(after < m.threshold && after < 0.1f * before);

    /* a second one: only it is embedded (fresh holds just its image); frame 7 keeps its rows */
    float *rows7 = malloc(sizeof(float) * P * m.bank.dim);
    memcpy(rows7, m.bank.x + (size_t)base * m.bank.dim, sizeof(float) * P * m.bank.dim);
    memcpy(both, normal.pixels, sizeof(float) * S * S);
    int64_t order[2] = {9, 7};
    assert_int_equal(model_set_feedback(&m, order, 2, both, 1, err, sizeof err), 0);
    assert_int_equal(m.bank.n, base + 2 * P);
    assert_memory_equal(m.bank.x + (size_t)(base + P) * m.bank.dim, rows7,
                        sizeof(float) * P * m.bank.dim);
    assert_int_equal(model_score(&m, odd, 1, 1, &again, NULL, err, sizeof err), 0);
    assert_true(again == after);

    /* the same set built from scratch on a fresh load gives the same bank */
    struct scoring_model fresh;
    if (model_load(&fresh, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
    memcpy(both + S * S, odd, sizeof(float) * S * S);
    assert_int_equal(model_set_feedback(&fresh, order, 2, both, 1, err, sizeof err), 0);
    assert_int_equal(fresh.bank.n, m.bank.n);
    for (size_t i = 0; i < (size_t)m.bank.n * m.bank.dim; i++)
        assert_float_equal(fresh.bank.x[i], m.bank.x[i], 1e-5);

    /* no false positives left (a verdict changed to defect): the file's bank again */
    assert_int_equal(model_set_feedback(&m, NULL, 0, NULL, 1, err, sizeof err), 0);
    assert_int_equal(m.bank.n, base);
    assert_false(model_has_feedback(&m, 7));
    assert_int_equal(model_score(&m, odd, 1, 1, &again, NULL, err, sizeof err), 0);
    assert_float_equal(again, before, 1e-5 * before);

    free(rows7);
    model_free(&fresh);
    model_free(&m);
    image_set_free(&normal);
}

/* The aligned and the combined readouts: saved and loaded with their standardisation (and units),
 * a frame with a bright corner flagged, its grid joins the bank as feedback and it then scores
 * (about) 0, and the heatmap peaks at the corner. */
static void aligned_readout_round_trip(void **state)
{
    struct fixture *f = *state;
    char ckpt[160], bank[160], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/a.safetensors", f->dir);
    snprintf(bank, sizeof bank, "%s/a.bank.safetensors", f->dir);
    write_checkpoint(ckpt);
    struct image_set normal = {0};
    float odd[S * S];
    make_images(&normal, odd);
    for (int readout = MODEL_READOUT_ALIGNED; readout <= MODEL_READOUT_BOTH; readout++) {
        struct model_build_options o;
        model_build_defaults(&o);
        o.readout = (enum model_readout)readout;
        struct model_build_result r;
        if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(r.readout, readout);
        struct scoring_model m;
        if (model_load(&m, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(m.readout, readout);
        assert_int_equal(m.grid_bank.n, r.bank_images);
        assert_int_equal(m.grid_bank.dim, m.gh * m.gw * m.vit.cfg.dim);
        assert_int_equal(m.bank.n, readout == MODEL_READOUT_BOTH ? r.bank_rows : 0);
        float before, after, grid[16];
        assert_int_equal(model_score(&m, odd, 1, 1, &before, grid, err, sizeof err), 0);
        assert_true(before > m.threshold);
        int worst = 0;
        for (int t = 1; t < m.gh * m.gw; t++)
            if (grid[t] > grid[worst]) worst = t;
        /* the square (pixels 2..5) covers patches (0, 0), (0, 1), (1, 0) and (1, 1) */
        assert_true(worst == 0 || worst == 1 || worst == m.gw || worst == m.gw + 1);
        int64_t id = 3;
        assert_int_equal(model_set_feedback(&m, &id, 1, odd, 1, err, sizeof err), 0);
        assert_int_equal(m.grid_bank.n, r.bank_images + 1);
        assert_int_equal(model_score(&m, odd, 1, 1, &after, NULL, err, sizeof err), 0);
        print_message("%s: odd frame %g before, %g after, threshold %g\n",
                      model_readout_name(m.readout), before, after, m.threshold);
        assert_true(after < 1e-2f * before);
        model_free(&m);
    }
    image_set_free(&normal);
}

/* What inspectd eval scores with (a model around the in-memory teacher, model_fit) equals what
 * the daemon loads after inspectd train --register (model_build's file, model_load), bit for bit:
 * the same threshold and the same scores, in every readout, with and without local aggregation
 * (which the bank file records). */
static void eval_scores_as_the_daemon(void **state)
{
    struct fixture *f = *state;
    char ckpt[160], bank[160], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/e.safetensors", f->dir);
    snprintf(bank, sizeof bank, "%s/e.bank.safetensors", f->dir);
    write_checkpoint(ckpt);
    struct image_set normal = {0};
    float odd[S * S];
    make_images(&normal, odd);
    for (int run = 0; run < 6; run++) {
        int readout = MODEL_READOUT_PATCH + run % 3, agg = run / 3;
        struct model_build_options o;
        model_build_defaults(&o);
        o.readout = (enum model_readout)readout;
        o.aggregate = agg;
        struct model_build_result r, r2;
        if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
        struct scoring_model daemon, eval;
        if (model_load(&daemon, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
        const float mean[1] = {0.4f}, std[1] = {0.3f};
        assert_int_equal(model_from_vit(&eval, &daemon.vit, mean, std, err, sizeof err), 0);
        if (model_fit(&eval, normal.pixels, normal.n, &o, &r2, err, sizeof err))
            fail_msg("%s", err);
        assert_true(r2.threshold == daemon.threshold && r2.readout == daemon.readout);
        assert_int_equal(daemon.aggregate, agg);
        float a[N + 1], b[N + 1];
        float *all = malloc(sizeof(float) * (N + 1) * S * S);
        memcpy(all, normal.pixels, sizeof(float) * N * S * S);
        memcpy(all + N * S * S, odd, sizeof(float) * S * S);
        assert_int_equal(model_score(&daemon, all, N + 1, 2, a, NULL, err, sizeof err), 0);
        assert_int_equal(model_score(&eval, all, N + 1, 2, b, NULL, err, sizeof err), 0);
        assert_memory_equal(a, b, sizeof a);
        /* aggregated or not, the odd frame stands out; aggregation changes its score */
        static float odd_plain[3];
        if (agg == 0) odd_plain[readout] = a[N];
        if (agg == 1) assert_true(a[N] != odd_plain[readout]);
        assert_true(a[N] > daemon.threshold);
        free(all);
        model_free(&eval);
        model_free(&daemon);
    }
    image_set_free(&normal);
}

/* The scorer scores the frames waiting in its queue in one batch: every score and patch grid equals
 * the frame's scored alone, bit for bit, in every readout (on the default GEMM backend, oneDNN,
 * whose products give a row the same value whatever the number of rows; model.h). */
static void batch_scores_as_one_by_one(void **state)
{
#ifndef INSPECTD_WITH_ONEDNN
    skip(); /* OpenBLAS's small-product kernels depend on the row count (model.h) */
#endif
    struct fixture *f = *state;
    char ckpt[160], bank[160], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/b.safetensors", f->dir);
    snprintf(bank, sizeof bank, "%s/b.bank.safetensors", f->dir);
    write_checkpoint(ckpt);
    struct image_set normal = {0};
    float odd[S * S];
    make_images(&normal, odd);
    memcpy(normal.pixels + (N - 1) * S * S, odd, sizeof odd); /* one of them flagged */
    assert_int_equal(gemm_select(GEMM_AUTO, GEMM_F32, err, sizeof err), 0);
    for (int readout = MODEL_READOUT_PATCH; readout <= MODEL_READOUT_BOTH; readout++) {
        struct model_build_options o;
        model_build_defaults(&o);
        o.readout = (enum model_readout)readout;
        struct model_build_result r;
        if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
        struct scoring_model m;
        if (model_load(&m, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
        int P = m.gh * m.gw;
        float batch[N], alone[N];
        float *grids = malloc(sizeof(float) * N * P), *grid = malloc(sizeof(float) * P);
        assert_int_equal(model_score(&m, normal.pixels, N, 1, batch, grids, err, sizeof err), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(
                model_score(&m, normal.pixels + i * S * S, 1, 1, &alone[i], grid, err, sizeof err),
                0);
            assert_memory_equal(grid, grids + (size_t)i * P, sizeof(float) * P);
        }
        assert_memory_equal(batch, alone, sizeof batch);
        free(grids), free(grid);
        model_free(&m);
    }
    image_set_free(&normal);
}

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_model_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdb_teardown(state);
}

/* A recalibration kept in the bank file (model_save_calibration): a reload finds the new scores,
 * every other tensor and the metadata as they were, the scores the same. Then a model that cuts
 * frames into tiles records it in the bank file, and a frame of tiles scores its worst tile. */
static void calibration_kept_and_tiles(void **state)
{
    struct fixture *f = *state;
    char ckpt[160], bank[160], err[512];
    snprintf(ckpt, sizeof ckpt, "%s/c.safetensors", f->dir);
    snprintf(bank, sizeof bank, "%s/c.bank.safetensors", f->dir);
    write_checkpoint(ckpt);
    struct image_set normal = {0};
    float odd[S * S];
    make_images(&normal, odd);
    struct model_build_options o;
    model_build_defaults(&o);
    struct model_build_result r;
    if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
    struct scoring_model m, again;
    if (model_load(&m, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
    float before, after, fresh[3] = {0.5f, 0.25f, 0.75f};
    assert_int_equal(model_score(&m, odd, 1, 1, &before, NULL, err, sizeof err), 0);
    assert_int_equal(model_set_calibration(&m, fresh, 3), 0);
    assert_int_equal(model_save_calibration(&m, bank, err, sizeof err), 0);
    if (model_load(&again, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(again.n_calibration, 3);
    for (int i = 0; i < 3; i++) assert_float_equal(again.calibration[i], fresh[i], 0);
    assert_float_equal(again.threshold, m.threshold, 0);
    assert_int_equal(again.bank.n, m.bank.n);
    assert_int_equal(model_score(&again, odd, 1, 1, &after, NULL, err, sizeof err), 0);
    assert_float_equal(after, before, 0);
    assert_int_equal(again.input, MODEL_INPUT_FIT);
    model_free(&again);
    /* tiles: recorded, and a frame of two tiles (a normal one and the odd one) scores the odd */
    o.input = MODEL_INPUT_TILES, o.tile_overlap = 2;
    if (model_build(ckpt, &normal, &o, bank, &r, err, sizeof err)) fail_msg("%s", err);
    if (model_load(&again, ckpt, bank, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(again.input, MODEL_INPUT_TILES);
    assert_int_equal(again.tile_overlap, 2);
    float two[2 * S * S], alone, worst;
    memcpy(two, normal.pixels, sizeof(float) * S * S);
    memcpy(two + S * S, odd, sizeof(float) * S * S);
    int first[2] = {0, 2};
    struct model_input in = {.images = two, .n = 2, .first = first, .frames = 1};
    assert_int_equal(model_score(&again, odd, 1, 1, &alone, NULL, err, sizeof err), 0);
    assert_int_equal(model_score_input(&again, &in, 1, &worst, NULL, err, sizeof err), 0);
    assert_float_equal(worst, alone, 0);
    model_free(&again);
    model_free(&m);
    image_set_free(&normal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(feedback_joins_and_leaves_the_bank, setup, teardown),
        cmocka_unit_test_setup_teardown(aligned_readout_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_scores_as_the_daemon, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_scores_as_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(calibration_kept_and_tiles, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
