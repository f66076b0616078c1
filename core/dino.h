/* dino.h — DINO's self-distillation loss: the teacher's centred, sharpened softmax on the global
 * crops is the target for the student's softmax on every crop, over all pairs of different crops.
 *
 * Layout: logits of one resolution are stacked crop-major, as the ViT passes produce them:
 * teacher (n_teacher·B, K) with crop 0's batch first; student (n_student·B, K) whose first
 * n_teacher crops are the same global crops the teacher saw, in the same order. */
#ifndef INSPECTD_DINO_H
#define INSPECTD_DINO_H

struct dino_stats {
    double loss;
    double teacher_entropy; /* mean entropy (nats) of the teacher's target distributions */
    double teacher_kl; /* mean KL(target ‖ softmax(−center/τt)), "how far from the centre" */
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

/* center ← center·momentum + mean over rows of teacher · (1 − momentum). */
void dino_center_update(float *center,        /* (K) */
                        const float *teacher, /* (rows, K) */
                        int rows, int K, float momentum);

#endif
