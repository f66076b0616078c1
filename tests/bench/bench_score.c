/* bench_score.c — what one core sustains scoring frames with the default model (train_defaults:
 * ViT dim 128, depth 4, patch 4) at 64 px RGB, the combined readout, a bank from 160 frames:
 * model_score on one frame at a time (a scorer that keeps up) and on batches of 16 (a scorer
 * working off a backlog), after decoding. Prints `c_score_b1_frames_per_s: X` and
 * `c_score_b16_frames_per_s: X` (medians of --rounds rounds of 64 frames). */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "scoring/model.h"
#include "train.h"

#define NORMAL 200
#define FRAMES 64

/* Smooth random images in [0, 1]: a few blobs on a grey background. */
static void fill_images(float *p, int n, int size, uint64_t seed)
{
    struct rng r = rng_seed(seed, 0);
    for (int i = 0; i < n; i++) {
        double cx = rng_range(&r, 16, 48), cy = rng_range(&r, 16, 48), rad = rng_range(&r, 6, 14);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                    double v = (d2 < rad * rad ? 0.8 : 0.3) + 0.02 * rng_normal(&r);
                    p[(((size_t)i * 3 + c) * size + y) * size + x] = (float)v;
                }
    }
}

static double frames_per_s(struct scoring_model *m, const float *frames, int batch)
{
    size_t img = (size_t)3 * m->size * m->size;
    float scores[16];
    float *grids = malloc(sizeof(float) * 16 * (size_t)m->gh * m->gw);
    char err[256];
    double t0 = bench_now();
    for (int i = 0; i < FRAMES; i += batch) {
        if (!grids ||
            model_score(m, frames + (size_t)i * img, batch, 1, scores, grids, err, sizeof err)) {
            fprintf(stderr, "bench_score: %s\n", grids ? err : "out of memory");
            exit(1);
        }
    }
    double dt = bench_now() - t0;
    free(grids);
    return FRAMES / dt;
}

int main(int argc, char **argv)
{
    int rounds = bench_arg_int(argc, argv, "--rounds", 5);
    bench_select_gemm(argc, argv, "bench_score");
    gemm_set_threads(1);
    struct train_options o;
    train_defaults(&o, 64, 3);
    struct vit_model vit;
    char err[256];
    if (vit_create(&vit, &o.model, false, err, sizeof err)) {
        fprintf(stderr, "bench_score: %s\n", err);
        return 1;
    }
    vit_init_weights(&vit, 1);
    const float mean[3] = {0.4f, 0.4f, 0.4f}, std[3] = {0.25f, 0.25f, 0.25f};
    struct scoring_model m;
    struct model_build_options bo;
    struct model_build_result res;
    model_build_defaults(&bo);
    bo.threads = 1;
    size_t img = (size_t)3 * 64 * 64;
    float *normal = malloc(sizeof(float) * NORMAL * img),
          *frames = malloc(sizeof(float) * FRAMES * img);
    double *b1 = malloc(sizeof(double) * (size_t)rounds),
           *b16 = malloc(sizeof(double) * (size_t)rounds);
    if (!normal || !frames || !b1 || !b16) {
        fprintf(stderr, "bench_score: out of memory\n");
        return 1;
    }
    fill_images(normal, NORMAL, 64, 1);
    fill_images(frames, FRAMES, 64, 2);
    if (model_from_vit(&m, &vit, mean, std, err, sizeof err) ||
        model_fit(&m, normal, NORMAL, &bo, &res, err, sizeof err)) {
        fprintf(stderr, "bench_score: %s\n", err);
        return 1;
    }
    printf("model: dim %d depth %d patch %d at 64 px, %s readout, bank of %d rows\n", o.model.dim,
           o.model.depth, o.model.patch, model_readout_name(res.readout), res.bank_rows);
    for (int r = -1; r < rounds; r++) {
        double one = frames_per_s(&m, frames, 1), sixteen = frames_per_s(&m, frames, 16);
        if (r >= 0) b1[r] = one, b16[r] = sixteen;
        printf("round %d: %.1f frames/s one by one, %.1f in batches of 16\n", r, one, sixteen);
        fflush(stdout);
    }
    printf("c_score_b1_frames_per_s: %.1f\n", bench_median(b1, rounds));
    printf("c_score_b16_frames_per_s: %.1f\n", bench_median(b16, rounds));
    model_free(&m);
    vit_destroy(&vit);
    free(normal), free(frames), free(b1), free(b16);
    return 0;
}
