/* dino_step.h — one DINO training step on a student/teacher pair, data-parallel over a few
 * threads: each worker runs a contiguous slice of the stacked crops through its own model replica
 * (shared weights, private gradients) with single-threaded BLAS, so the memory-bound layers use
 * every core too; the loss is computed once on the gathered logits, gradients are summed, then the
 * workers share the AdamW and EMA updates.
 *
 * Inputs are crop-major stacks: globals (n_global·B, C, G, G) with crop 0's batch first, locals
 * (n_local·B, C, L, L). The teacher sees the globals only. Weights: student and teacher start
 * equal (dino_step_create initialises them from a seed, or the caller loads both). */
#ifndef INSPECTD_DINO_STEP_H
#define INSPECTD_DINO_STEP_H

#include <stdint.h>

#include "adamw.h"
#include "dino.h"
#include "ssl.h"
#include "vit.h"

struct dino_step_config {
    int batch;             /* B images per step */
    int n_global;          /* global crops per image (2) */
    int n_local;           /* local crops per image (0 or more) */
    int global_size;       /* pixels; a multiple of the patch size */
    int local_size;        /* pixels; a multiple of the patch size */
    float student_temp;    /* 0.1 */
    float center_momentum; /* 0.9 */
    float clip;            /* per-tensor gradient norm clip, 0 = none (DINO: 3.0) */
    float koleo_weight;    /* weight of DINOv2's KoLeo term on the student's global class
                            * embeddings, per crop and worker; 0 = off (DINO) */
    float aux_weight;      /* weight of the transformation-prediction loss on the student's
                            * global class embeddings (model aux_classes > 0); 0 = off */
    float defect_weight;   /* weight of the synthetic-defect loss on the patch tokens of a third
                            * student pass over defect images (model defect_head); 0 = off */
    float dense_weight;    /* weight of the masked-patch distillation (dino_dense_loss): the
                            * student's global crops have the patches of dino_step_params.mask
                            * blanked and its tokens there match the teacher's of the whole crop;
                            * 0 = off */
    int sinkhorn;          /* Sinkhorn-Knopp iterations for the teacher's targets
                            * (dino_loss_sinkhorn); 0 = DINO's centring */
    float beta1, beta2, eps;
    int threads;            /* workers (cores); BLAS runs single-threaded inside each */
    enum ssl_method method; /* the objective (ssl.h); SSL_DINO (0) is DINO's loss and centre.
                             * The others need n_global 2; Barlow Twins and SimCLR no local crops
                             * and no teacher (it follows the student: EMA momentum 0), BYOL a
                             * model with a predictor (pred_hidden) */
    float barlow_lambda;    /* Barlow Twins' weight of the off-diagonal terms */
    float simclr_temp;      /* SimCLR's temperature */
};

/* What may change from step to step (the schedules). */
struct dino_step_params {
    float lr, weight_decay;
    float teacher_temp;
    float teacher_momentum; /* DINO, BYOL; the methods without a teacher use 0 */
    int freeze_last_layer;  /* zero the last layer's gradient this step (DINO only) */
    const int *aux_target;  /* (batch) the transformation each image's crops were made under,
                             * the auxiliary head's class; NULL = no auxiliary loss this step */
    /* synthetic defects (defect_weight > 0): defects (B, C, G, G) global-size images with a
     * pasted defect, defect_target and defect_pw (B, P) per patch (P the patch grid) the 0/1
     * label and the loss weight (summing to 1 over the batch); NULL = no defect loss this step */
    const float *defects, *defect_target, *defect_pw;
    /* masked-patch distillation (dense_weight > 0): (n_global·B, P) per global crop row and patch,
     * 1 = blanked (set to 0, the normalised mean) in the student's copy; NULL = none this step */
    const unsigned char *mask;
};

struct dino_step_worker;
struct pool;
struct ssl_step;

struct dino_step {
    struct vit_config model;
    struct dino_step_config cfg;
    struct vit_model student, teacher;
    float *center;               /* (K) */
    float *logits_s, *dlogits_s; /* ((n_global+n_local)·B, K) */
    float *logits_t;             /* (n_global·B, K) */
    float *masked;               /* (n_global·B, C, G, G) the student's masked global crops, when
                                  * dense_weight > 0 */
    struct pool *pool;
    int nworkers;
    struct dino_step_worker *workers;
    struct ssl_step *ssl; /* the buffers of the other methods' losses (ssl_step.h) */
};

/* Allocates everything and initialises student = teacher from seed. Returns 0, -1 for a bad
 * config (reason in err), -2 when out of memory or threads cannot start. */
int dino_step_create(struct dino_step *s, const struct vit_config *model,
                     const struct dino_step_config *cfg, uint64_t seed, char *err, size_t errsz);
void dino_step_destroy(struct dino_step *s);

/* One training step. Returns 0 (stats filled when non-NULL) or -2 when out of memory. */
int dino_step_run(struct dino_step *s, const float *globals, const float *locals,
                  const struct dino_step_params *p, struct dino_stats *stats);

#endif
