/* model.h — a scoring model: the teacher backbone of a training checkpoint, a memory bank of the
 * patch tokens of normal frames, and the threshold calibrated on normal frames held out of it.
 *
 * Patch features are the tokens of one block's output before any norm (they keep each patch's
 * brightness and contrast; see embedding.h). A frame's score is its largest patch distance to the
 * bank (or the mean of its top share of patches); it is flagged when the score exceeds the
 * threshold, the (1 − false-alarm rate) quantile of held-out normal frames' scores. The bank file
 * is a .safetensors with one tensor "bank" (rows, D) and the metadata below. */
#ifndef INSPECTD_MODEL_H
#define INSPECTD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imageset.h"
#include "knn.h"
#include "safetensors.h"
#include "vit.h"

struct scoring_model {
    struct vit_model vit; /* the teacher */
    struct knn_bank bank; /* (rows, D) patch tokens of normal frames */
    int base_rows;        /* the bank file's rows come first; operator feedback follows */
    int64_t *feedback;    /* the frames whose patches follow, in order (feedback_n of them) */
    int feedback_n;
    int size, channels, layer;
    float mean[3], std[3]; /* the training images' statistics: the model's input normalisation */
    float threshold, top_q;
    int gh, gw; /* patch grid of a frame */
};

struct model_build_options {
    int layer;               /* block whose tokens are scored (default: the middle one) */
    int bank_images;         /* at most this many frames feed the bank (128) */
    int max_patches;         /* coreset size when the bank has more rows (8192) */
    int calib_images;        /* at most this many held-out frames calibrate (512) */
    double false_alarm_rate; /* share of normal frames allowed above the threshold (0.005) */
    float top_q;             /* 0: the largest patch; else the mean of this top share */
    int threads;
};

struct model_build_result {
    int bank_rows, bank_images, calib_images;
    float threshold;
};

void model_build_defaults(struct model_build_options *o);

/* The bank file beside checkpoint ckpt: FILE.safetensors → FILE.bank.safetensors (any other name
 * gets .bank.safetensors appended). */
void model_bank_path(const char *ckpt, char *out, size_t outsz);

/* Builds the bank and threshold of checkpoint ckpt from normal images (their set as loaded for
 * training: (n, C, S, S) in [0, 1] at the model's size) and writes the bank file to bank_path
 * atomically. Every fifth image (at least one) is held out for calibration. Returns 0, or -1
 * with the reason in err. */
int model_build(const char *ckpt, const struct image_set *normal,
                const struct model_build_options *o, const char *bank_path,
                struct model_build_result *r, char *err, size_t errsz);

/* Reads the model config and input statistics (mean, std; size, channels and patch grid into m)
 * from a training checkpoint's "model" metadata, as cmd_train writes it. Returns 0, or -1 with
 * "PATH: ..." in err. */
int model_read_config(const struct st_file *f, const char *path, struct scoring_model *m,
                      struct vit_config *c, char *err, size_t errsz);

/* Loads a checkpoint's teacher and its bank file. Returns 0, or -1 with the reason in err. */
int model_load(struct scoring_model *m, const char *ckpt, const char *bank_path, char *err,
               size_t errsz);
void model_free(struct scoring_model *m);

/* Operator feedback: the bank becomes the bank file's rows plus every patch token of the frames
 * ids (n; frames an operator marked as false positives), so they and frames like them score low
 * from then on; n = 0 restores the file's bank. A frame already in the bank keeps its rows;
 * `fresh` holds the images ((C, S, S) in [0, 1]) of the others, in the order of ids, and only
 * those are embedded. Returns 0, or -1 with the reason in err (the bank unchanged). */
int model_set_feedback(struct scoring_model *m, const int64_t *ids, int n, const float *fresh,
                       int threads, char *err, size_t errsz);
/* Whether frame id's patches are in the bank as operator feedback. */
bool model_has_feedback(const struct scoring_model *m, int64_t id);

/* Scores n images (n, C, S, S) in [0, 1] at the model's size: scores (n) and, when not NULL,
 * grids (n, gh·gw) of patch distances. Returns 0, or -1 with the reason in err. */
int model_score(const struct scoring_model *m, const float *images, int n, int threads,
                float *scores, float *grids, char *err, size_t errsz);

/* The heatmap of a scored frame as a JPEG: the patch grid (gh, gw) upsampled to the frame's size,
 * smoothed (sigma 4 px at 256 px, scaled with the frame), coloured on the threshold's scale and
 * laid over the frame (encoded JPEG/PNG bytes). *jpeg is malloc'ed. Returns 0, or -1 with the
 * reason in err. */
int model_heatmap_jpeg(const void *frame, size_t len, const float *grid, int gh, int gw,
                       float threshold, uint8_t **jpeg, size_t *jpeg_len, char *err, size_t errsz);

#endif
