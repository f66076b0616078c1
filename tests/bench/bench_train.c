/* bench_train.c — one DINO training step of the bench config, timed: teacher forward on 2 global
 * 64 px crops, student forward + backward on 2 global + 6 local 32 px crops, DINO loss, gradient
 * clipping, AdamW, EMA and centre update (core/dino_step). Inputs are random tensors
 * (augmentation is not timed). Prints `c_images_per_s: X` (batch / median step time), the peak
 * RSS, the step's matrix-product rate (its GEMM multiply-adds counted from the shapes, over the
 * median step time) and the backend's rate on a 1024³ sgemm on one thread (the step runs one
 * worker per core, each with single-threaded GEMMs). */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "dino_step.h"

/* Multiply-adds ×2 of the matrix products of one image's forward pass at size px. */
static double forward_flops(const struct vit_config *m, int px)
{
    double T = 1.0 + (double)(px / m->patch) * (px / m->patch), D = m->dim;
    double M = (double)m->mlp_ratio * D, cpp = (double)m->in_chans * m->patch * m->patch;
    double block = 2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D + 2 * 2 * T * D * M;
    double head = 2 * ((double)D * m->head_hidden + (double)m->head_hidden * m->head_hidden +
                       (double)m->head_hidden * m->head_bottleneck +
                       (double)m->head_bottleneck * m->head_out);
    return 2 * (T - 1) * cpp * D + m->depth * block + head;
}

static double gemm_gflops(int n)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) return 0;
    bench_fill_random(a, (size_t)n * n, 4);
    bench_fill_random(b, (size_t)n * n, 5);
    double best = 1e30;
    gemm_set_threads(1);
    for (int r = 0; r < 4; r++) {
        double t0 = bench_now();
        gemm_f32(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = bench_now() - t0;
        best = dt < best ? dt : best;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * n / best * 1e-9;
}

int main(int argc, char **argv)
{
    int steps = bench_arg_int(argc, argv, "--steps", 5);
    if (steps < 1) steps = 1;
    bench_select_gemm(argc, argv, "bench_train");
    struct vit_config model = {.dim = 192,
                               .depth = 12,
                               .heads = 3,
                               .mlp_ratio = 4,
                               .patch = 8,
                               .img_size = 64,
                               .in_chans = 3,
                               .head_hidden = 2048,
                               .head_bottleneck = 256,
                               .head_out = 4096};
    struct dino_step_config cfg = {.batch = bench_arg_int(argc, argv, "--batch", 32),
                                   .n_global = 2,
                                   .n_local = 6,
                                   .global_size = 64,
                                   .local_size = 32,
                                   .student_temp = 0.1f,
                                   .center_momentum = 0.9f,
                                   .clip = 3.0f,
                                   .beta1 = 0.9f,
                                   .beta2 = 0.999f,
                                   .eps = 1e-8f,
                                   .threads = bench_arg_int(argc, argv, "--threads", 2)};
    struct dino_step_params p = {
        .lr = 1e-4f, .weight_decay = 0.04f, .teacher_temp = 0.04f, .teacher_momentum = 0.996f};
    char err[256];
    struct dino_step s;
    if (dino_step_create(&s, &model, &cfg, 1, err, sizeof err)) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 1;
    }
    size_t ng = (size_t)cfg.n_global * cfg.batch * 3 * 64 * 64;
    size_t nl = (size_t)cfg.n_local * cfg.batch * 3 * 32 * 32;
    float *img_g = malloc(ng * sizeof(float)), *img_l = malloc(nl * sizeof(float));
    double *times = malloc(sizeof(double) * (size_t)steps);
    if (!img_g || !img_l || !times) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    bench_fill_random(img_g, ng, 2);
    bench_fill_random(img_l, nl, 3);
    for (int i = -1; i < steps; i++) {
        struct dino_stats st;
        double t0 = bench_now();
        if (dino_step_run(&s, img_g, img_l, &p, &st)) {
            fprintf(stderr, "bench_train: out of memory in the step\n");
            return 1;
        }
        double dt = bench_now() - t0;
        if (i >= 0) times[i] = dt;
        printf("step %d: %.3f s, loss %.4f, teacher entropy %.3f\n", i, dt, st.loss,
               st.teacher_entropy);
        fflush(stdout);
    }
    double med = bench_median(times, steps);
    printf("c_step_seconds: %.4f\n", med);
    printf("c_peak_rss_mib: %.0f\n", bench_peak_rss_mib());
    /* teacher: forward on the global crops; student: forward and (twice its cost) backward on all
     */
    double per_image = 2 * forward_flops(&model, 64) +
                       3 * (2 * forward_flops(&model, 64) + 6 * forward_flops(&model, 32));
    printf("c_step_gflop: %.1f\n", per_image * cfg.batch * 1e-9);
    printf("c_step_gflop_per_s: %.1f\n", per_image * cfg.batch / med * 1e-9);
    printf("c_gemm_1024_gflop_per_s_1thread: %.1f\n", gemm_gflops(1024));
    printf("c_images_per_s: %.3f\n", cfg.batch / med);
    dino_step_destroy(&s);
    free(img_g);
    free(img_l);
    free(times);
    return 0;
}
