/* train.h — DINO pretraining on an in-memory image set: multi-crop augmentation, the schedules of
 * DINO's main_dino.py (learning-rate warm-up then cosine, weight decay cosine, teacher temperature
 * warm-up, teacher momentum cosine to 1, last layer frozen at first), time or epoch budget.
 * Schedules are laid out over the planned number of steps; with a time budget that number is
 * estimated from the first steps' speed. */
#ifndef INSPECTD_TRAIN_H
#define INSPECTD_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "augment.h"
#include "dino_step.h"

struct train_options {
    enum ssl_method method; /* the objective (ssl.h): DINO by default */
    struct vit_config model;
    struct augment_config aug;
    int batch, n_local, threads;
    float lr; /* base learning rate per 256 images (scaled by batch / 256) */
    float min_lr;
    float weight_decay, weight_decay_end;
    float momentum_teacher; /* start of the cosine schedule to 1 */
    float teacher_temp, warmup_teacher_temp;
    float student_temp;    /* 0.1 */
    float center_momentum; /* 0.9; 1 keeps the centre where it started (zero) */
    float clip;
    float koleo_weight;  /* DINOv2's KoLeo term on the class embeddings; 0 = off */
    float aux_weight;    /* transformation prediction (model.aux_classes 4: quarter turns, 8: and
                          * mirrors): each image is turned before its crops are cut and the student
                          * predicts how from its global class embeddings; 0 = off */
    float defect_weight; /* synthetic-defect prediction: a defect (augment_paste_defect) is pasted
                          * into a copy of each image's second global crop and a linear head on the
                          * student's patch tokens learns which patches it covers (balanced
                          * cross-entropy); the model then has a defect head. 0 = off */
    float dense_weight;  /* masked-patch distillation: in half of the student's global crops a
                          * share of the patches (blocks of them, up to mask_ratio) is blanked and
                          * the student's tokens there learn the teacher's of the whole crop, so
                          * patch tokens are trained too (dino_dense_loss); 0 = off */
    float mask_ratio;    /* the largest share of a crop's patches blanked (0.1 .. 0.9) */
    int sinkhorn;        /* Sinkhorn-Knopp iterations for the teacher's targets; 0 = centring */
    float barlow_lambda; /* Barlow Twins' off-diagonal weight (0.0051, the paper's) */
    float simclr_temp;   /* SimCLR's NT-Xent temperature (0.2) */
    float warmup_frac;   /* share of the steps for the learning-rate warm-up */
    float teacher_temp_warmup_frac;
    float freeze_last_layer_frac;
    int epochs;       /* upper bound on the run's (from run_first); 0 = time budget only */
    double minutes;   /* time budget (no step starts that would end beyond it, at the mean step
                       * time; one step at least); 0 = epochs only */
    long total_steps; /* schedule length when known (a resumed run); 0 = derive it */
    long run_first;   /* the step this run began at: 0 for a run from scratch, the steps the model
                       * had done for a warm start (train_warm_start); the schedules are laid over
                       * the steps from here to total_steps */
    uint64_t seed;
};

struct train_progress {
    long step, total_steps;
    int epoch;
    double seconds, images_per_s;
    struct dino_stats stats;
    float lr;
    float teacher_temp; /* this step's, after the collapse guard */
    int guard_fires;    /* times the collapse guard has fired in this run */
    bool collapsed;     /* BYOL, Barlow Twins, SimCLR: the collapse report says collapsed */
};

/* The collapse guard: a teacher whose centred output is uniform (entropy above
 * TRAIN_GUARD_ENTROPY · ln K) and no longer tells one image from another (KL to the centre below
 * TRAIN_GUARD_KL) for TRAIN_GUARD_STEPS steps in a row teaches nothing; the guard then halves the
 * teacher's temperature (down to TRAIN_GUARD_MIN_TEMP), sharpening small differences between
 * images into targets, at most TRAIN_GUARD_MAX_FIRES times a run. */
#define TRAIN_GUARD_ENTROPY   0.98
#define TRAIN_GUARD_KL        0.02
#define TRAIN_GUARD_STEPS     10
#define TRAIN_GUARD_MAX_FIRES 3
#define TRAIN_GUARD_MIN_TEMP  0.01f

struct train_guard {
    int streak, fires;
    bool collapsed;   /* the collapse report's state (train_collapse_step) */
    float temp_scale; /* multiplies the scheduled teacher temperature; 1 until it fires */
};

void train_guard_init(struct train_guard *g);

/* The collapse report of the methods without DINO's teacher statistics (BYOL, Barlow Twins,
 * SimCLR): embed_std (dino_stats) is about 1/√K while the projections spread over the sphere and
 * goes to 0 when every image gives the same. Below TRAIN_COLLAPSE_STD / √K for TRAIN_GUARD_STEPS
 * steps in a row the run counts as collapsed (a warning is logged, and a line again when it
 * recovers); nothing in the recipe changes (these methods have no temperature to sharpen). */
#define TRAIN_COLLAPSE_STD 0.01

/* Feeds one step's embed_std (K the head's output dimension). Returns 1 when the state changes
 * (*collapsed then tells which way), else 0. */
int train_collapse_step(struct train_guard *g, double embed_std, int K, bool *collapsed);

/* Feeds one step's statistics (K the head's output dimension). Returns 1 when the guard fires at
 * this step (temp_scale halved), else 0. */
int train_guard_step(struct train_guard *g, const struct dino_stats *st, int K);

/* Called after each step; a nonzero return stops training (e.g. on Ctrl-C). */
typedef int (*train_progress_fn)(const struct train_progress *p, void *ctx);

/* Defaults for small grey images (Fashion-MNIST-like), the ones `inspectd eval` uses. */
void train_defaults(struct train_options *o, int img_size, int in_chans);

/* The model o trains: o->model with the heads its losses need (defect_head when defect_weight
 * is on). */
struct vit_config train_model_config(const struct train_options *o);

/* Trains s (created from o by the caller with train_make_step) on N images (N, C, H, W) in [0, 1]
 * (not normalised: augmentation normalises), starting after the s->student.adam_step steps already
 * done, so a run restored from a checkpoint continues where it stopped: the data order and the
 * crops depend only on the seed and the step number. Returns 0, 1 when stopped by the callback,
 * -1 when the images do not suit the options (transformation prediction needs square ones), or
 * -2 when out of memory (reason in err). */
int train_run(struct dino_step *s, const struct train_options *o, const float *images, int N, int H,
              int W, train_progress_fn cb, void *ctx, char *err, size_t errsz);

/* Makes the next train_run of s a warm start: a run that continues s's weights, DINO centre and
 * optimiser state (restored from an earlier run, or left by one in memory), with its step count
 * going on from s->student.adam_step and its schedules laid over its own steps (the length planned
 * from the time budget again). On a warm start the learning rate warms up again (the first
 * warmup_frac of the run's steps, then the cosine to min_lr at its end), and so does the weight
 * decay's cosine; the teacher momentum follows its cosine from momentum_teacher to 1 over the run,
 * as in a first run (carried on across runs it would sit at 1 after a few, the teacher, which
 * scores, frozen); the teacher temperature starts at teacher_temp (no warm-up) and the last layer
 * is not frozen again: both protect a model's first steps only. */
void train_warm_start(struct train_options *o, const struct dino_step *s);

/* Sets the crop sizes for images of `size` pixels (global crops of the whole size, local crops
 * of 3/7 of it, both multiples of the model's patch) with DINO's other augmentation defaults,
 * keeping the configured smallest global-crop scale. */
void train_set_size(struct train_options *o, int size);

/* Creates the student/teacher step for these options. Returns as dino_step_create. */
int train_make_step(struct dino_step *s, const struct train_options *o, char *err, size_t errsz);

#endif
