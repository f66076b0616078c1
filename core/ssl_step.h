/* ssl_step.h — the objectives of ssl.h inside the data-parallel training step (dino_step.h): the
 * workers' ViT passes and gradient reduction stay the step's; the loss of BYOL, Barlow Twins or
 * SimCLR runs once on the gathered head outputs, as DINO's does, and BYOL's predictor (model
 * pred_hidden) runs there too, its gradient added to the student's after the reduction. */
#ifndef INSPECTD_SSL_STEP_H
#define INSPECTD_SSL_STEP_H

#include <stddef.h>

struct dino_step;
struct dino_stats;

/* Allocates the buffers of s's method (none for DINO) into s->ssl. Returns 0 or -2 when out of
 * memory (reason in err). */
int ssl_step_create(struct dino_step *s, char *err, size_t errsz);
void ssl_step_destroy(struct dino_step *s);

/* The method's loss on s->logits_s (and s->logits_t for BYOL's targets): writes s->dlogits_s and
 * st->loss, st->embed_std (the spread of the student's global projections). Returns 0 or -1 when
 * out of memory. */
int ssl_step_loss(struct dino_step *s, struct dino_stats *st);

/* Adds the predictor's gradient of the last ssl_step_loss into s->student's (after the workers'
 * gradients were reduced there). */
void ssl_step_add_grads(struct dino_step *s);

#endif
