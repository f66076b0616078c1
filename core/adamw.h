/* adamw.h — the optimiser side of training: DINO's per-tensor gradient clipping, AdamW with
 * decoupled weight decay (skipped for biases and 1-D tensors), the EMA teacher update, and freezing
 * of the head's last layer. All act on a trainable struct vit_model. */
#ifndef INSPECTD_ADAMW_H
#define INSPECTD_ADAMW_H

#include "vit.h"

struct adamw_params {
    float lr;           /* learning rate of this step */
    float weight_decay; /* applied to VIT_DECAY tensors only */
    float beta1, beta2, eps;
};

/* Scales each trainable tensor's gradient so its L2 norm is at most `clip`
 * (coef = clip / (norm + 1e-6), applied when < 1). Returns the total gradient norm before
 * clipping (for logging). clip <= 0 only measures. */
double adamw_clip_grads(struct vit_model *m, float clip);

/* Zeroes the gradient of the head's last layer (DINO freezes it for the first epoch). */
void adamw_freeze_last_layer(struct vit_model *m);

/* One AdamW step over every trainable tensor, exactly PyTorch's torch.optim.AdamW update;
 * increments m->adam_step. */
void adamw_step(struct vit_model *m, const struct adamw_params *p);

/* The part `part` of `nparts` of AdamW step number `step` (1-based): each tensor's elements are
 * split evenly, so workers can update disjoint slices at once. The caller sets m->adam_step. */
void adamw_update_part(struct vit_model *m, const struct adamw_params *p, long step, int part,
                       int nparts);

/* teacher = momentum · teacher + (1 − momentum) · student, over every tensor. Same config. */
void ema_update(struct vit_model *teacher, const struct vit_model *student, float momentum);
/* The part `part` of `nparts`, split per tensor exactly like adamw_update_part, so one worker
 * may run its AdamW part and then its EMA part without waiting for the others. */
void ema_update_part(struct vit_model *teacher, const struct vit_model *student, float momentum,
                     int part, int nparts);

#endif
