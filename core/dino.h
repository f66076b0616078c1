/* dino.h — DINO's self-distillation loss: the teacher's centred, sharpened softmax on the global
 * crops is the target for the student's softmax on every crop, over all pairs of different crops.
 *
 * Layout: logits of one resolution are stacked crop-major, as the ViT passes produce them:
 * teacher (n_teacher·B, K) with crop 0's batch first; student (n_student·B, K) whose first
 * n_teacher crops are the same global crops the teacher saw, in the same order. */
#ifndef INSPECTD_DINO_H
#define INSPECTD_DINO_H

#include <stdbool.h>

/* Collapse monitors (both averaged over the n_teacher·B teacher rows r):
 *   teacher_entropy = mean_r H(q_r), q_r = softmax((teacher_r − center)/τt) the loss's target;
 *                     in nats, in [0, ln K];
 *   teacher_kl      = mean_r KL(p_r ‖ p_c), p_r = softmax(teacher_r/τt) the uncentred teacher
 *                     output, p_c = softmax(center/τt) the centre's distribution; >= 0.
 * teacher_kl measures how much the teacher's output varies from image to image: it goes to 0 in
 * either collapse (every image gives the same output, whatever it is). teacher_entropy tells the
 * two apart: ln K when the centring flattened a constant output, near 0 when one dimension
 * dominates. A healthy run keeps the KL clearly above 0 and the entropy clearly below ln K. */
struct dino_stats {
    double loss;
    double teacher_entropy;
    double teacher_kl;
    double koleo;                   /* the KoLeo term (before its weight), 0 when off */
    double aux_loss, aux_acc;       /* transformation prediction: mean cross-entropy (before its
                                     * weight) and share of crops predicted right; 0 when off */
    double defect_loss, defect_acc; /* synthetic-defect prediction: the weighted cross-entropy
                                     * (before its weight) and weighted share of patches right */
    double dense_loss;              /* masked-patch distillation: mean 1 − cos over the masked
                                     * patches (before its weight); 0 when off */
    double embed_std; /* BYOL, Barlow Twins, SimCLR (ssl.h): the mean per-dimension standard
                       * deviation of the student's L2-normalised global projections
                       * (ssl_embed_std); 0 for DINO, whose monitors are the teacher's */
};

/* Computes the loss and writes d loss / d student logits into dstudent (same shape as student).
 * q = softmax((teacher − center) / tau_t) per row; student rows use log_softmax(s / tau_s).
 * Returns 0, or -1 when out of memory (dstudent untouched). stats may be NULL. */
int dino_loss(const float *teacher, /* (n_teacher*B, K) */
              const float *student, /* (n_student*B, K) */
              const float *center,  /* (K) */
              float *dstudent,      /* (n_student*B, K) */
              int B, int n_teacher, int n_student, int K, float tau_t, float tau_s,
              struct dino_stats *stats);

/* Sinkhorn-Knopp targets (SwAV, DINOv2) in place of centring: q = exp(teacher / tau) over the
 * rows (rows, K) of a batch, then `iters` rounds of giving every prototype the same share of the
 * batch and every row a total of 1; q (rows, K) rows sum to 1. */
void dino_sinkhorn(const float *teacher, int rows, int K, float tau, int iters, float *q);

/* dino_loss with Sinkhorn-Knopp targets (dino_sinkhorn over the n_teacher·B teacher rows) instead
 * of the centred softmax; teacher_kl is each target's KL to the batch's mean target. */
int dino_loss_sinkhorn(const float *teacher, const float *student, float *dstudent, int B,
                       int n_teacher, int n_student, int K, float tau_t, float tau_s, int iters,
                       struct dino_stats *stats);

/* The KoLeo spreading term of DINOv2 on n embeddings x (n, D), n >= 2: each row is L2-normalised,
 * paired with its nearest other row (largest dot product), and the loss is −mean log(distance +
 * 1e-8). Adds weight · d loss / dx into dx (n, D) and sets *loss (unweighted). Returns 0, or -1
 * when out of memory (dx untouched). */
int dino_koleo(const float *x, int n, int D, float weight, float *dx, double *loss);

/* Transformation prediction on n class embeddings x (n, D): logits = x Wᵀ + b over A classes,
 * loss = mean_i cross-entropy(logits_i, target_i). Adds weight · d loss / d x into dx (n, D) and
 * weight · d loss / d W, d b into dW (A, D), db (A); sets *loss (unweighted) and *acc (share of
 * rows whose largest logit is the target). Returns 0, or -1 when out of memory (nothing added). */
int dino_aux_loss(const float *x, int n, int D, const float *W, const float *b, const int *target,
                  int A, float weight, float *dx, float *dW, float *db, double *loss, double *acc);

/* Synthetic-defect prediction on the patch tokens of n images x (n, T, D) (row 0 of each image,
 * the class token, is not read): logit z = x·w + b per patch, loss = Σ pw · BCE(z, target) over
 * the n·(T − 1) patches, target and pw (n, T − 1) the 0/1 labels and the weights (0 for a patch
 * that is neither clean nor defective; the caller normalises them, e.g. to a balanced mean).
 * Adds weight · d loss / d x into dx (n, T, D) (class rows untouched), weight · d loss / d w, d b
 * into dw (D), db (1); sets *loss (unweighted) and *acc = Σ pw · [(z > 0) = target]. */
void dino_defect_loss(const float *x, int n, int T, int D, const float *w, const float *b,
                      const float *target, const float *pw, float weight, float *dx, float *dw,
                      float *db, double *loss, double *acc);

/* Masked-patch self-distillation (iBOT's idea with a cosine target, as data2vec): the student saw
 * images whose masked patches were blanked, the teacher the whole images; for every masked patch
 * p of the n images (mask (n, T − 1), 1 = masked; the class row 0 of each image is not read),
 * loss_p = 1 − cos(s_p, t_p) between the student's tokens s (n, T, D) and the teacher's t. Adds
 * weight · d Σ_p loss_p / d s into ds (n, T, D) and sets *loss = Σ_p loss_p (unweighted, summed:
 * the caller divides by the masked patches of the whole batch, in weight too). */
void dino_dense_loss(const float *s, const float *t, const unsigned char *mask, int n, int T, int D,
                     float weight, float *ds, double *loss);

/* center ← center·momentum + mean over rows of teacher · (1 − momentum). */
void dino_center_update(float *center,        /* (K) */
                        const float *teacher, /* (rows, K) */
                        int rows, int K, float momentum);

/* DINO's schedules (main_dino.py's cosine_scheduler and teacher-temperature warm-up), laid out
 * per step over `total` steps:
 *   lr:    linear warm-up from 0 to lr over lr_warmup steps (np.linspace, so the last warm-up
 *          step reaches lr), then cosine from lr to min_lr over the remaining steps;
 *   weight decay: cosine from weight_decay to weight_decay_end;
 *   teacher momentum: cosine from momentum to 1;
 *   teacher temperature: linear from warmup_teacher_temp to teacher_temp over
 *          teacher_temp_warmup steps (np.linspace), then constant;
 *   last layer frozen while step < freeze_last_layer.
 * Cosine: value(s) = end + ½(start − end)(1 + cos(π (s − w) / (total − w))), w the warm-up;
 * steps at or past `total` keep the final value. */
struct dino_schedule {
    long total;
    double lr, min_lr; /* lr already scaled by batch / 256 */
    long lr_warmup;
    double weight_decay, weight_decay_end;
    double momentum;
    double teacher_temp, warmup_teacher_temp;
    long teacher_temp_warmup;
    long freeze_last_layer;
};

/* The values of every schedule at one step. */
struct dino_schedule_point {
    float lr, weight_decay, teacher_momentum, teacher_temp;
    bool freeze_last_layer;
};

/* DINO's cosine_scheduler at step `step`: linear from 0 to base over `warmup` steps, then cosine
 * from base to final up to `total`; final at and after total. Requires 0 <= warmup <= total. */
double dino_cosine(double base, double final, long step, long total, long warmup);

/* Every schedule at step `step` (>= 0). */
struct dino_schedule_point dino_schedule_at(const struct dino_schedule *s, long step);

#endif
