/* adamw.c — gradient clipping, AdamW and the EMA teacher. */
#include "adamw.h"

#include "pool.h"

#include <assert.h>
#include <math.h>
#include <string.h>

double adamw_clip_grads(struct vit_model *m, float clip)
{
    double total = 0.0;
    for (int i = 0; i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        if (!(t->flags & VIT_TRAINABLE)) continue;
        float *g = m->grads + t->offset;
        double ss = 0.0;
        for (size_t j = 0; j < t->numel; j++) ss += (double)g[j] * g[j];
        total += ss;
        float norm = (float)sqrt(ss);
        if (clip <= 0.0f) continue;
        float coef = clip / (norm + 1e-6f);
        if (coef < 1.0f)
            for (size_t j = 0; j < t->numel; j++) g[j] *= coef;
    }
    return sqrt(total);
}

void adamw_freeze_last_layer(struct vit_model *m)
{
    const struct vit_tensor *t = vit_find_tensor(m, "head.last_layer.weight_v");
    if (t) memset(m->grads + t->offset, 0, sizeof(float) * t->numel);
}

void adamw_update_part(struct vit_model *m, const struct adamw_params *p, long step, int part,
                       int nparts)
{
    assert(m->grads && m->adam_m && m->adam_v && step >= 1);
    float bc1 = 1.0f - powf(p->beta1, (float)step);
    float bc2 = 1.0f - powf(p->beta2, (float)step);
    float step_size = p->lr / bc1;
    float bc2_sqrt = sqrtf(bc2);
    for (int i = 0; i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        if (!(t->flags & VIT_TRAINABLE)) continue;
        long begin, end;
        pool_share((long)t->numel, part, nparts, &begin, &end);
        float *w = m->params + t->offset, *g = m->grads + t->offset;
        float *mm = m->adam_m + t->offset, *vv = m->adam_v + t->offset;
        float decay = (t->flags & VIT_DECAY) ? 1.0f - p->lr * p->weight_decay : 1.0f;
        for (long j = begin; j < end; j++) {
            w[j] *= decay;
            mm[j] = p->beta1 * mm[j] + (1.0f - p->beta1) * g[j];
            vv[j] = p->beta2 * vv[j] + (1.0f - p->beta2) * g[j] * g[j];
            float denom = sqrtf(vv[j]) / bc2_sqrt + p->eps;
            w[j] -= step_size * mm[j] / denom;
        }
    }
}

void adamw_step(struct vit_model *m, const struct adamw_params *p)
{
    adamw_update_part(m, p, ++m->adam_step, 0, 1);
}

void ema_update_part(struct vit_model *teacher, const struct vit_model *student, float momentum,
                     int part, int nparts)
{
    assert(teacher->nparams == student->nparams);
    float rest = 1.0f - momentum;
    /* split each tensor as adamw_update_part does, so a worker averages exactly the elements it
     * has just updated and needs no barrier in between */
    for (int i = 0; i < student->ntensors; i++) {
        const struct vit_tensor *t = &student->tensors[i];
        long begin, end;
        pool_share((long)t->numel, part, nparts, &begin, &end);
        float *tp = teacher->params + t->offset;
        const float *sp = student->params + t->offset;
        for (long j = begin; j < end; j++) tp[j] = tp[j] * momentum + rest * sp[j];
    }
}

void ema_update(struct vit_model *teacher, const struct vit_model *student, float momentum)
{
    ema_update_part(teacher, student, momentum, 0, 1);
}
