/* tiny_step.h — the tiny DINO student/teacher pair (a ViT 8 wide, one block, 8x8 grey input) that
 * the safetensors fuzz target loads into, its seed corpus is written from (tests/fuzz/seeds.c) and
 * the checkpoint unit tests use: one definition, so the seeds always match the target's model. */
#ifndef INSPECTD_TINY_STEP_H
#define INSPECTD_TINY_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "dino_step.h"

/* Returns as dino_step_create. */
static inline int tiny_step_create(struct dino_step *s, uint64_t seed, char *err, size_t errsz)
{
    static const struct vit_config tiny = {.dim = 8,
                                           .depth = 1,
                                           .heads = 2,
                                           .mlp_ratio = 2,
                                           .patch = 4,
                                           .img_size = 8,
                                           .in_chans = 1,
                                           .head_hidden = 8,
                                           .head_bottleneck = 4,
                                           .head_out = 8};
    struct dino_step_config c = {.batch = 1,
                                 .n_global = 2,
                                 .global_size = 8,
                                 .local_size = 4,
                                 .student_temp = 0.1f,
                                 .center_momentum = 0.9f,
                                 .beta1 = 0.9f,
                                 .beta2 = 0.999f,
                                 .eps = 1e-8f,
                                 .threads = 1};
    return dino_step_create(s, &tiny, &c, seed, err, errsz);
}

#endif
