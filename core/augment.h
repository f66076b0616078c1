/* augment.h — DINO's multi-crop augmentation on float images, seeded and reproducible.
 *
 * Input images are planar float (C, H, W) in [0, 1], C = 1 (grey) or 3 (RGB). A crop is a random
 * resized crop (bilinear), optional horizontal flip, colour jitter (brightness, contrast,
 * saturation, hue, in random order, with probability jitter_p), grey conversion (gray_p),
 * Gaussian blur and solarisation, then per-channel normalisation to the model's input.
 * Three crop kinds follow DINO: global 1 (always blurred), global 2 (rarely blurred, sometimes
 * solarised) and local (small scale, blurred half the time). Every probability is configurable;
 * set them to 0 for lines where flips or colour changes make no sense. */
#ifndef INSPECTD_AUGMENT_H
#define INSPECTD_AUGMENT_H

#include <stddef.h>

#include "rng.h"

enum augment_kind { AUG_GLOBAL1 = 0, AUG_GLOBAL2 = 1, AUG_LOCAL = 2 };

struct augment_config {
    int global_size, local_size;                 /* output sizes in pixels */
    float global_scale[2], local_scale[2];       /* area fraction ranges: 0.4–1, 0.05–0.4 */
    float ratio[2];                              /* aspect ratio range: 3/4–4/3 */
    float flip_p;                                /* 0.5 */
    float jitter_p;                              /* 0.8 */
    float brightness, contrast, saturation, hue; /* 0.4, 0.4, 0.2, 0.1 */
    float gray_p;                                /* 0.2 */
    float blur_p[3];                             /* per kind: 1.0, 0.1, 0.5 */
    float blur_sigma[2];                         /* in output pixels: 0.1–2.0 */
    float solarize_p;                            /* global 2 only: 0.2 */
    float mean[3], std[3];                       /* normalisation */
};

/* DINO's defaults for the given crop sizes, ImageNet normalisation (grey uses the first value). */
void augment_defaults(struct augment_config *c, int global_size, int local_size);

/* Checks ranges (sizes positive, probabilities in [0, 1], scale and ratio ranges ordered).
 * Returns 0, or -1 with a reason in err. */
int augment_check(const struct augment_config *c, char *err, size_t errsz);

/* Writes one crop of img (C, H, W) into out (C, S, S), S the size of this kind. `scratch` holds
 * 2·C·S·S floats. The crop depends only on the rng state. */
void augment_crop(const struct augment_config *c, enum augment_kind kind, const float *img, int C,
                  int H, int W, struct rng *r, float *scratch, float *out);

#endif
