/* bench_embed.c — backbone inference (forward only, no head) of the bench model at batch 1 and 32,
 * timed. Prints `c_embed_b1_images_per_s: X` and `c_embed_b32_images_per_s: X` (medians). */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"
#include "vit.h"

static double images_per_s(struct vit_model *m, int B, int iters)
{
    char err[256];
    struct vit_acts a;
    if (vit_acts_create(&a, m, B, 64, 64, false, false, err, sizeof err)) {
        fprintf(stderr, "bench_embed: %s\n", err);
        exit(1);
    }
    size_t n = (size_t)B * 3 * 64 * 64;
    float *img = malloc(n * sizeof(float));
    double *times = malloc(sizeof(double) * (size_t)iters);
    if (!img || !times) {
        fprintf(stderr, "bench_embed: out of memory\n");
        exit(1);
    }
    bench_fill_random(img, n, 7);
    for (int i = -2; i < iters; i++) {
        double t0 = bench_now();
        vit_forward(m, &a, img);
        if (i >= 0) times[i] = bench_now() - t0;
    }
    double med = bench_median(times, iters);
    free(img);
    free(times);
    vit_acts_destroy(&a);
    return B / med;
}

int main(int argc, char **argv)
{
    int iters = bench_arg_int(argc, argv, "--iters", 50);
    bench_select_gemm(argc, argv, "bench_embed");
    gemm_set_threads(bench_arg_int(argc, argv, "--threads", 2));
    struct vit_config cfg = {.dim = 192,
                             .depth = 12,
                             .heads = 3,
                             .mlp_ratio = 4,
                             .patch = 8,
                             .img_size = 64,
                             .in_chans = 3};
    struct vit_model m;
    char err[256];
    if (vit_create(&m, &cfg, false, err, sizeof err)) {
        fprintf(stderr, "bench_embed: %s\n", err);
        return 1;
    }
    vit_init_weights(&m, 1);
    printf("c_embed_b1_images_per_s: %.2f\n", images_per_s(&m, 1, iters));
    printf("c_embed_b32_images_per_s: %.2f\n", images_per_s(&m, 32, iters > 8 ? iters / 8 : 3));
    vit_destroy(&m);
    return 0;
}
