/* augment.h — DINO's multi-crop augmentation on float images, seeded and reproducible.
 *
 * Input images are planar float (C, H, W) in [0, 1], C = 1 (grey) or 3 (RGB). A crop is a random
 * resized crop (torchvision's RandomResizedCrop box, resampled with an antialiased bilinear
 * filter like PIL's), optional horizontal flip, colour jitter (brightness, contrast, saturation,
 * hue, in random order, with probability jitter_p), grey conversion (gray_p), Gaussian blur and
 * solarisation, then per-channel normalisation to the model's input (C, S, S).
 * Three crop kinds follow DINO: global 1 (always blurred), global 2 (rarely blurred, sometimes
 * solarised) and local (small scale, blurred half the time). Every probability is configurable;
 * set them to 0 for lines where flips or colour changes make no sense.
 *
 * Grey input stays one channel (the model then has in_chans 1): brightness and contrast apply,
 * saturation, hue and grey conversion leave it unchanged. Nothing is replicated to 3 channels,
 * which would cost 3x the patch-embedding work for the same information.
 *
 * Determinism: a crop depends only on the config, the image and the rng state, so giving each
 * image its own stream (rng_seed(seed, image_step)) makes results independent of threading. */
#ifndef INSPECTD_AUGMENT_H
#define INSPECTD_AUGMENT_H

#include <stdbool.h>
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

/* Floats of scratch augment_crop needs for C-channel images of H×W pixels under config c. */
size_t augment_scratch_floats(const struct augment_config *c, int C, int H, int W);

/* Writes one crop of img (C, H, W) into out (C, S, S), S the size of this kind. `scratch` holds
 * augment_scratch_floats(c, C, H, W) floats. */
void augment_crop(const struct augment_config *c, enum augment_kind kind, const float *img, int C,
                  int H, int W, struct rng *r, float *scratch, float *out);

/* The single operations, as torchvision's functional ones on float tensors; x is planar
 * (C, S, S) in [0, 1] and stays there (results are clamped). */

/* out (C, S, S) ← img (C, S, S) turned t mod 4 quarter turns counter-clockwise, then mirrored left
 * to right when t >= 4 (t in [0, 8): the eight symmetries of the square). out != img. */
void augment_dihedral(const float *img, int C, int S, int t, float *out);

/* A synthetic defect for training a per-patch defect head (never the benchmarks' defects): pastes
 * into dst (C, S, S) a region of src (C, S, S) (another crop, of this image or another one) taken
 * from elsewhere, with its brightness and offset changed, in one of three shapes: a rectangle, a
 * thin bar at any angle, or an ellipse with a soft edge. Writes the blend weight of every pixel
 * into alpha (S, S): 0 where dst is unchanged, up to 1 inside the shape. Works on normalised or
 * raw crops alike (the content change is relative to src's own values). */
void augment_paste_defect(float *dst, const float *src, int C, int S, struct rng *r, float *alpha);

/* torchvision's RandomResizedCrop.get_params: box = (x, y, w, h) in whole source pixels. */
void augment_random_box(const float scale[2], const float ratio[2], int H, int W, struct rng *r,
                        int box[4]);

/* Resamples box (x, y, w, h) of img (C, H, W) to out (C, S, S), mirrored when flip, with PIL's
 * antialiased bilinear filter (a triangle widened by the scale when shrinking). scratch holds
 * C·box_h·S floats. */
void augment_resize_box(const float *img, int C, int H, int W, const int box[4], int S, bool flip,
                        float *scratch, float *out);

/* x ← clamp(f·x) */
void augment_brightness(float *x, int C, int S, float f);
/* x ← clamp(f·x + (1 − f)·mean grey level of x) */
void augment_contrast(float *x, int C, int S, float f);
/* x ← clamp(f·x + (1 − f)·grey(x)) per pixel; C = 3 only */
void augment_saturation(float *x, int C, int S, float f);
/* hue ← (hue + shift) mod 1 in HSV, shift in [−0.5, 0.5]; C = 3 only */
void augment_hue(float *x, int C, int S, float shift);
/* every channel ← 0.2989 R + 0.587 G + 0.114 B; C = 3 only */
void augment_grayscale(float *x, int C, int S);
/* separable Gaussian, radius ceil(3σ) (1..32), borders replicated; tmp holds S·S floats */
void augment_blur(float *x, int C, int S, float sigma, float *tmp);
/* x ← 1 − x where x >= threshold */
void augment_solarize(float *x, int C, int S, float threshold);

#endif
