/* bench_tiles.c — what scoring a frame of tiles costs on one core ([recipe.NAME] input = tiles):
 * the default model (train_defaults: ViT dim 128, depth 4, patch 4 at 64 px RGB), the combined
 * readout, a bank from the tiles of 50 frames, then frames of 1, 4 and 16 tiles (a 64x64,
 * 128x128 and 256x256 ROI) through model_score_input: a frame's tiles go through the backbone in
 * one batch, each tile's patches through the k-NN, the frame scoring its worst tile. Prints
 * `tiles_T_score_ms_p50: X` and `tiles_T_score_ms_p99: X` for T = 1, 4, 16 (--frames frames each,
 * after decoding), and how 16 tiles compare with 16 frames scored one by one. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "scoring/model.h"
#include "train.h"

#define S 64

/* Smooth random tiles in [0, 1]: a few blobs on a grey background. */
static void fill_tiles(float *p, int n, uint64_t seed)
{
    struct rng r = rng_seed(seed, 0);
    for (int i = 0; i < n; i++) {
        double cx = rng_range(&r, 8, 56), cy = rng_range(&r, 8, 56), rad = rng_range(&r, 6, 20);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                    double v = (d2 < rad * rad ? 0.8 : 0.3) + 0.02 * rng_normal(&r);
                    p[(((size_t)i * 3 + c) * S + y) * S + x] = (float)v;
                }
    }
}

static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    int i = (int)(q * n);
    return v[i < n ? i : n - 1];
}

/* Scores `frames` frames of T tiles one at a time: each frame's milliseconds into ms. */
static void score_frames(struct scoring_model *m, const float *tiles, int T, int frames, double *ms)
{
    size_t img = (size_t)3 * S * S;
    int first[2] = {0, T};
    float score, *grids = malloc(sizeof(float) * (size_t)T * m->gh * m->gw);
    char err[256];
    for (int f = 0; f < frames; f++) {
        struct model_input in = {
            .images = tiles + img * (size_t)((f * T) % 64), .n = T, .first = first, .frames = 1};
        double t0 = bench_now();
        if (!grids || model_score_input(m, &in, 1, &score, grids, err, sizeof err)) {
            fprintf(stderr, "bench_tiles: %s\n", grids ? err : "out of memory");
            exit(1);
        }
        ms[f] = (bench_now() - t0) * 1e3;
    }
    free(grids);
}

int main(int argc, char **argv)
{
    int frames = bench_arg_int(argc, argv, "--frames", 100);
    bench_select_gemm(argc, argv, "bench_tiles");
    gemm_set_threads(1);
    struct train_options o;
    train_defaults(&o, S, 3);
    struct vit_model vit;
    char err[256];
    if (vit_create(&vit, &o.model, false, err, sizeof err)) {
        fprintf(stderr, "bench_tiles: %s\n", err);
        return 1;
    }
    vit_init_weights(&vit, 1);
    const float mean[3] = {0.4f, 0.4f, 0.4f}, std[3] = {0.25f, 0.25f, 0.25f};
    enum { BANK_FRAMES = 50, BANK_TILES = 4, POOL = 64 + 16 };
    size_t img = (size_t)3 * S * S;
    float *bank = malloc(sizeof(float) * img * BANK_FRAMES * BANK_TILES);
    float *tiles = malloc(sizeof(float) * img * POOL);
    double *ms = malloc(sizeof(double) * (size_t)frames * 16);
    int first[BANK_FRAMES + 1];
    for (int f = 0; f <= BANK_FRAMES; f++) first[f] = f * BANK_TILES;
    if (!bank || !tiles || !ms) {
        fprintf(stderr, "bench_tiles: out of memory\n");
        return 1;
    }
    fill_tiles(bank, BANK_FRAMES * BANK_TILES, 1);
    fill_tiles(tiles, POOL, 2);
    struct scoring_model m;
    struct model_build_options bo;
    struct model_build_result res;
    model_build_defaults(&bo);
    bo.threads = 1;
    bo.input = MODEL_INPUT_TILES;
    struct model_input in = {
        .images = bank, .n = BANK_FRAMES * BANK_TILES, .first = first, .frames = BANK_FRAMES};
    if (model_from_vit(&m, &vit, mean, std, err, sizeof err) ||
        model_fit_input(&m, &in, &bo, &res, err, sizeof err)) {
        fprintf(stderr, "bench_tiles: %s\n", err);
        return 1;
    }
    printf("model: dim %d depth %d patch %d at %d px tiles, %s readout, bank of %d rows; one "
           "core, %d frames each\n",
           o.model.dim, o.model.depth, o.model.patch, S, model_readout_name(res.readout),
           res.bank_rows, frames);
    score_frames(&m, tiles, 1, 5, ms); /* warm: the scratch buffers, the JIT kernels */
    double p50_16 = 0, p50_1 = 0;
    static const int counts[] = {1, 4, 16};
    for (int k = 0; k < 3; k++) {
        int T = counts[k];
        score_frames(&m, tiles, T, frames, ms);
        double p50 = quantile(ms, frames, 0.5), p99 = quantile(ms, frames, 0.99);
        if (T == 1) p50_1 = p50;
        if (T == 16) p50_16 = p50;
        printf("%2d tile(s) (a %dx%d ROI): p50 %.2f ms, p99 %.2f ms per frame\n", T,
               S * (T == 16  ? 4
                    : T == 4 ? 2
                             : 1),
               S * (T == 16  ? 4
                    : T == 4 ? 2
                             : 1),
               p50, p99);
        printf("tiles_%d_score_ms_p50: %.2f\ntiles_%d_score_ms_p99: %.2f\n", T, p50, T, p99);
        fflush(stdout);
    }
    printf("16 tiles in one batch: %.2f ms, 16 frames of one tile: %.2f ms (%.2fx)\n", p50_16,
           16 * p50_1, 16 * p50_1 / p50_16);
    model_free(&m);
    vit_destroy(&vit);
    free(bank), free(tiles), free(ms);
    return 0;
}
