/* embedding.h — batched, multi-threaded backbone inference: images to embedding vectors. */
#ifndef INSPECTD_EMBEDDING_H
#define INSPECTD_EMBEDDING_H

#include <stddef.h>

#include "vit.h"

enum embedding_kind {
    EMBEDDING_CLS = 0,    /* the normed class token (D) */
    EMBEDDING_PATCH_MEAN, /* mean of the normed patch tokens (D) */
    EMBEDDING_CLS_PATCH,  /* both, concatenated (2D) */
    EMBEDDING_TOKENS      /* every normed token in grid order, concatenated (T·D): keeps layout */
};

/* Floats per embedding of this kind for images of the model's native size. */
int embedding_dim(const struct vit_config *c, enum embedding_kind kind);

/* The name embedding_kind_parse accepts for kind. */
const char *embedding_kind_name(enum embedding_kind kind);

/* Parses "cls", "patch-mean", "cls+patch" or "tokens". Returns 0 or -1. */
int embedding_kind_parse(const char *s, enum embedding_kind *out);

/* Embeds N images (N, C, H, W), already normalised, into out (N, embed_dim) using `threads`
 * workers, each with its own replica of m and single-threaded BLAS. Returns 0, or -1/-2 with the
 * reason in err (bad size / out of memory). */
int embedding_extract(const struct vit_model *m, const float *images, int N, int H, int W,
                      enum embedding_kind kind, int threads, float *out, char *err, size_t errsz);

/* Floats per image of embedding_extract_layers: popcount(layers) · T · D (T with the class token).
 */
int embedding_layers_dim(const struct vit_config *c, unsigned layers);

/* Parses a comma-separated list of layer numbers in [0, depth] ("0,2,4") into a bit mask.
 * Returns 0, or -1 when empty or out of range. */
int embedding_layers_parse(const char *s, int depth, unsigned *out);

/* Every token of each layer in `layers` (bit 0: patch embeddings with positions; bit l: output of
 * block l) as it is in the residual stream, before any norm, layers in increasing order,
 * concatenated per image: out (N, embedding_layers_dim). Unlike EMBEDDING_TOKENS (which passes
 * the last layer through the final norm), the tokens keep their scale: a per-token norm removes
 * each patch's brightness and contrast, which is much of what tells a product from another.
 * Images must be of the model's size. Returns as embedding_extract. */
int embedding_extract_layers(const struct vit_model *m, const float *images, int N, int H, int W,
                             unsigned layers, int threads, float *out, char *err, size_t errsz);

#endif
