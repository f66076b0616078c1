/* bench_train.c — one DINO training step of the bench config, timed: teacher forward on 2 global
 * 64 px crops, student forward + backward on 2 global + 6 local 32 px crops, DINO loss, gradient
 * clipping, AdamW, EMA and centre update. Inputs are random tensors (augmentation is not timed).
 * Prints `c_images_per_s: X` (batch / median step time) and the peak RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "bench_common.h"
#include "dino.h"
#include "rng.h"
#include "vit.h"

static void fill_random(float *p, size_t n, uint64_t seed)
{
    struct rng r = rng_seed(seed, 0);
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_normal(&r);
}

int main(int argc, char **argv)
{
    int B = bench_arg_int(argc, argv, "--batch", 32);
    int steps = bench_arg_int(argc, argv, "--steps", 5);
    int threads = bench_arg_int(argc, argv, "--threads", 2);
    const int NG = 2, NL = 6, G = 64, L = 32;
    struct vit_config cfg = {.dim = 192,
                             .depth = 12,
                             .heads = 3,
                             .mlp_ratio = 4,
                             .patch = 8,
                             .img_size = G,
                             .in_chans = 3,
                             .head_hidden = 2048,
                             .head_bottleneck = 256,
                             .head_out = 4096};
    int K = cfg.head_out;
    char err[256];
    struct vit_model student, teacher;
    struct vit_acts sg, sl, tg;
    if (steps < 1) steps = 1;
    vit_set_threads(threads);
    if (vit_create(&student, &cfg, true, err, sizeof err) ||
        vit_create(&teacher, &cfg, false, err, sizeof err) ||
        vit_acts_create(&sg, &student, NG * B, G, G, true, true, err, sizeof err) ||
        vit_acts_create(&sl, &student, NL * B, L, L, true, true, err, sizeof err) ||
        vit_acts_create(&tg, &teacher, NG * B, G, G, true, false, err, sizeof err)) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 1;
    }
    vit_init_weights(&student, 1);
    vit_copy_params(&teacher, &student);
    size_t ng = (size_t)NG * B * 3 * G * G, nl = (size_t)NL * B * 3 * L * L;
    size_t gk = (size_t)NG * B * K, lk = (size_t)NL * B * K;
    float *img_g = malloc(ng * sizeof(float)), *img_l = malloc(nl * sizeof(float));
    float *logits = malloc(sizeof(float) * (gk + lk));
    float *dlogits = malloc(sizeof(float) * (gk + lk));
    float *center = calloc((size_t)K, sizeof(float));
    double *times = malloc(sizeof(double) * (size_t)steps);
    if (!img_g || !img_l || !logits || !dlogits || !center || !times) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    fill_random(img_g, ng, 2);
    fill_random(img_l, nl, 3);
    struct adamw_params opt = {
        .lr = 1e-4f, .weight_decay = 0.04f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    for (int s = -1; s < steps; s++) {
        double t0 = bench_now();
        vit_forward(&teacher, &tg, img_g);
        vit_forward(&student, &sg, img_g);
        vit_forward(&student, &sl, img_l);
        memcpy(logits, sg.logits, sizeof(float) * gk);
        memcpy(logits + gk, sl.logits, sizeof(float) * lk);
        struct dino_stats st;
        if (dino_loss(tg.logits, logits, center, dlogits, B, NG, NG + NL, K, 0.04f, 0.1f, &st)) {
            fprintf(stderr, "bench_train: out of memory in the loss\n");
            return 1;
        }
        dino_center_update(center, tg.logits, NG * B, K, 0.9f);
        vit_zero_grad(&student);
        vit_backward(&student, &sg, dlogits, NULL);
        vit_backward(&student, &sl, dlogits + gk, NULL);
        adamw_clip_grads(&student, 3.0f);
        adamw_step(&student, &opt);
        ema_update(&teacher, &student, 0.996f);
        double dt = bench_now() - t0;
        if (s >= 0) times[s] = dt;
        printf("step %d: %.3f s, loss %.4f\n", s, dt, st.loss);
        fflush(stdout);
    }
    double med = bench_median(times, steps);
    printf("c_step_seconds: %.4f\n", med);
    printf("c_peak_rss_mib: %.0f\n", bench_peak_rss_mib());
    printf("c_images_per_s: %.3f\n", B / med);
    return 0;
}
