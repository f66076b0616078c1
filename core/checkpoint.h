/* checkpoint.h — a model's tensors to and from .safetensors, under DINO/timm names.
 * Loading is all-or-nothing: every tensor of the model must be in the file under the prefix with
 * its exact shape, and the file may hold no other tensor under that prefix; on any error the
 * model's weights are left untouched. */
#ifndef INSPECTD_CHECKPOINT_H
#define INSPECTD_CHECKPOINT_H

#include "dino_step.h"
#include "safetensors.h"
#include "vit.h"

/* Loads m's parameters from a parsed file, names prefixed by `prefix` ("" for a plain export,
 * "teacher." for a training checkpoint). Returns 0, or -1 with the reason in err. */
int checkpoint_load_model(struct vit_model *m, const struct st_file *f, const char *prefix,
                          char *err, size_t errsz);

/* As checkpoint_load_model, but the training tasks' heads (aux_head.*, defect_head.*, BYOL's
 * predictor.*) that the file lacks keep their values: weights made without those tasks (an older
 * model, a PyTorch export) can start a run that has them. */
int checkpoint_load_model_tasks_optional(struct vit_model *m, const struct st_file *f,
                                         const char *prefix, char *err, size_t errsz);

/* Writes one or more models into one file atomically; model i's tensors are named prefixes[i] +
 * name. Metadata: nmeta key/value pairs. Returns 0, or -1 with the reason in err. */
int checkpoint_save_models(const char *path, const struct vit_model *const *models,
                           const char *const *prefixes, int nmodels, const char *const *keys,
                           const char *const *values, int nmeta, char *err, size_t errsz);

/* A whole training state in one file: "student.*" and "teacher.*" weights (DINO/timm names under
 * the prefix; the teacher is what scoring loads), "adam_m.*" / "adam_v.*" moments and
 * "dino.center", plus metadata (the caller's pairs and "adam_step"). Atomic like every save. */
int checkpoint_save_training(const char *path, const struct dino_step *s, const char *const *keys,
                             const char *const *values, int nmeta, char *err, size_t errsz);

/* Restores a state written by checkpoint_save_training into s (same model config). All or
 * nothing. Returns 0, or -1 with the reason in err. */
int checkpoint_load_training(struct dino_step *s, const struct st_file *f, char *err, size_t errsz);

#endif
