/* vit.h — a Vision Transformer with a DINO projection head: parameters, forward, backward.
 *
 * The model is DINO's vision_transformer.py ViT (pre-norm blocks, qkv bias, erf GELU, LayerNorm
 * eps 1e-6) plus DINOHead (3-layer MLP → L2-normalise → weight-normalised linear, weight_g frozen).
 * Tensor names and shapes are DINO's/timm's (`blocks.3.attn.qkv.weight` is (3D, D)), so a state
 * dict exported key-for-key to safetensors loads as is.
 *
 * Memory: parameters, gradients and the two Adam moments are each ONE allocation sliced by the
 * tensor table (same offsets in all four). Activations live in a struct vit_acts, one allocation
 * sized for one (batch, image size) pass; several acts can share one model, so the global crops and
 * the local crops run as two passes whose backward passes both accumulate into the model's grads.
 * Invariant: vit_backward(m, a, …) needs the activations of the last vit_forward(m, a, …) untouched
 * and the model weights unchanged since. */
#ifndef INSPECTD_VIT_H
#define INSPECTD_VIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIT_NAME_MAX 48

struct vit_config {
    int dim;       /* embedding width D */
    int depth;     /* transformer blocks */
    int heads;     /* attention heads; D % heads == 0 */
    int mlp_ratio; /* MLP hidden = mlp_ratio * D */
    int patch;     /* patch size P */
    int img_size;  /* native input size; pos_embed has (img_size/P)^2 + 1 rows */
    int in_chans;  /* 1 or 3 */
    int head_hidden, head_bottleneck, head_out; /* DINO head; head_out 0 = backbone only */
    int aux_classes; /* transformation-prediction head on the class embedding: aux_head.weight
                      * (A, D), aux_head.bias (A); 0 = none (nothing in the forward pass uses it:
                      * the loss that trains it reads the embedding, dino_aux_loss) */
    int defect_head; /* 1: a per-patch synthetic-defect head on the normed patch tokens,
                      * defect_head.weight (1, D), defect_head.bias (1); 0 = none (read only by
                      * the loss that trains it, dino_defect_loss) */
    int pred_hidden; /* BYOL's predictor on the head's output: predictor.fc1 (H, K), GELU,
                      * predictor.fc2 (K, H), H = pred_hidden; 0 = none (read only by the loss
                      * that trains it, ssl_predictor_forward) */
};

enum vit_tensor_flags { VIT_TRAINABLE = 1, VIT_DECAY = 2 };

struct vit_tensor {
    char name[VIT_NAME_MAX];
    int ndim;
    int shape[4];
    size_t offset; /* in floats, into params / grads / adam moments */
    size_t numel;
    unsigned flags;
};

struct vit_block_w {
    float *norm1_w, *norm1_b; /* (D) */
    float *qkv_w, *qkv_b;     /* (3D, D), (3D) */
    float *proj_w, *proj_b;   /* (D, D), (D) */
    float *norm2_w, *norm2_b; /* (D) */
    float *fc1_w, *fc1_b;     /* (M, D), (M) */
    float *fc2_w, *fc2_b;     /* (D, M), (D) */
};

/* Named views into one flat buffer (parameters or gradients). */
struct vit_weights {
    float *cls_token;         /* (1, 1, D) */
    float *pos_embed;         /* (1, 1+N, D) */
    float *patch_w, *patch_b; /* (D, C, P, P), (D) */
    struct vit_block_w *blocks;
    float *norm_w, *norm_b; /* (D) */
    float *head_w[3];       /* (hid, D), (hid, hid), (bott, hid) */
    float *head_b[3];
    float *last_g;                /* (K, 1) */
    float *last_v;                /* (K, bott) */
    float *aux_w;                 /* (A, D), NULL when aux_classes is 0 */
    float *aux_b;                 /* (A) */
    float *defect_w, *defect_b;   /* (1, D), (1); NULL when defect_head is 0 */
    float *pred_w[2], *pred_b[2]; /* (H, K), (K, H); (H), (K); NULL when pred_hidden is 0 */
};

struct vit_model {
    struct vit_config cfg;
    int ntensors;
    struct vit_tensor *tensors;
    size_t nparams;
    float *params;
    float *grads;           /* NULL unless trainable */
    float *adam_m, *adam_v; /* NULL unless trainable */
    long adam_step;
    struct vit_weights w, g;
    float *last_w;      /* (K, bott) weight-normalised last layer, refreshed by each forward */
    float *last_vnorm;  /* (K) */
    bool shares_params; /* a replica: params belong to another model */
};

struct vit_acts {
    int B, H, W; /* batch and image size of this pass */
    int B_max;   /* batch the buffers were sized for */
    int gh, gw;  /* patch grid */
    int T;       /* tokens: 1 + gh*gw */
    bool head;   /* runs the DINO head */
    bool train;  /* keeps every block's activations for backward */
    float *mem;
    size_t nfloats;
    /* outputs, valid after vit_forward */
    float *embed;  /* (B, D) normed CLS token: the backbone output */
    float *tokens; /* (B, T, D) normed tokens; patch tokens are rows 1..T-1 of each image */
    float *logits; /* (B, K) when head */
    /* Optional taps, inference passes only (not train), owned by the caller: when taps is set,
     * vit_forward also copies the tokens of every layer l whose bit is set in tap_mask (l = 0:
     * patch embeddings with positions; l = 1..depth: output of block l) as they are in the
     * residual stream, before any norm, into taps (B, ntaps, T, D), layers in increasing order. */
    unsigned tap_mask;
    float *taps;
    /* internals, see vit.c */
    float *cols, *pos, *wy, *wx, *x0;
    struct vit_block_acts *blk;
    float *norm_mean, *norm_rstd;
    float *h_pre[3], *h_act[2], *zn, *znorm;
    float *d_res[2], *d_tmp, *d_qkv, *d_probs, *d_fc, *d_fc2, *d_embed, *d_h[3], *d_zn, *d_lastw;
};

/* Checks a config. Returns 0, or -1 with a reason in err. */
int vit_config_check(const struct vit_config *cfg, char *err, size_t errsz);

/* Builds the tensor table and allocates parameters (and, when trainable, gradients and Adam
 * moments, zeroed). Weights are zero until vit_init_weights or a load. Returns 0, -1 for a bad
 * config (reason in err), -2 when out of memory. */
int vit_create(struct vit_model *m, const struct vit_config *cfg, bool trainable, char *err,
               size_t errsz);
void vit_destroy(struct vit_model *m);

/* A replica for data parallelism: shares m's parameters (read-only while replicas run) but has
 * its own forward scratch and, when with_grads, its own zeroed gradients. Destroy replicas before
 * their model. Returns 0 or -2 when out of memory. */
int vit_replica_create(struct vit_model *r, const struct vit_model *m, bool with_grads, char *err,
                       size_t errsz);

/* DINO's initialisation: trunc-normal(0.02) linear weights and tokens, zero biases, unit
 * LayerNorms, PyTorch's default for the patch conv and the last layer's v, weight_g = 1. */
void vit_init_weights(struct vit_model *m, uint64_t seed);

/* Copies parameters between two models of the same config. */
void vit_copy_params(struct vit_model *dst, const struct vit_model *src);

void vit_zero_grad(struct vit_model *m);

/* Looks up a tensor by name; NULL when absent. */
const struct vit_tensor *vit_find_tensor(const struct vit_model *m, const char *name);

/* Allocates activations for batches of B images of H x W (multiples of the patch size).
 * `train` keeps what backward needs; without it every block reuses one set of buffers.
 * Returns 0, -1 for bad sizes (reason in err), -2 when out of memory. */
int vit_acts_create(struct vit_acts *a, const struct vit_model *m, int B, int H, int W, bool head,
                    bool train, char *err, size_t errsz);
void vit_acts_destroy(struct vit_acts *a);

/* Runs later passes on the first B images only (1 <= B <= a->B_max), e.g. a last partial batch. */
void vit_acts_set_batch(struct vit_acts *a, int B);

/* Forward pass on images (B, C, H, W), already normalised. Fills a->embed, a->tokens and, when
 * the acts have a head, a->logits. */
void vit_forward(struct vit_model *m, struct vit_acts *a, const float *images);

/* Backward pass: adds the gradients of the loss into m->grads, given dlogits (B, K) (NULL when
 * the loss does not use the head), dembed (B, D) (NULL when the loss does not use the embedding
 * directly) and/or dtokens (B, T, D) on the normed tokens a->tokens (NULL when the loss does not
 * read them; its class-token rows add to dembed). Needs acts created with train = true. */
void vit_backward(struct vit_model *m, struct vit_acts *a, const float *dlogits,
                  const float *dembed, const float *dtokens);

#endif
