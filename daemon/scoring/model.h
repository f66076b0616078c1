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

/* How a frame's score is read off its patch tokens:
 *   MODEL_READOUT_PATCH   each patch against a coreset of every normal patch, wherever it was (a
 *                         defect is a patch unlike any normal one: scratches, stains, holes);
 *   MODEL_READOUT_ALIGNED the whole grid of patch tokens, standardised per position and channel by
 *                         the normal frames, against the k nearest normal grids (what belongs at
 *                         one place may be wrong at another: a missing or different part); its
 *                         heatmap is each position's distance to the nearest grid's same position;
 *   MODEL_READOUT_BOTH    (the default) both, each in units of its median score on the held-out
 *                         normal frames; a frame scores the larger of the two, so it is flagged
 *                         when either readout finds it unusual. */
enum model_readout { MODEL_READOUT_PATCH = 0, MODEL_READOUT_ALIGNED, MODEL_READOUT_BOTH };
/* How a frame becomes the model's input (region.h): its ROI shrunk to the input size (fit), or cut
 * into input-size tiles at native resolution that overlap by tile_overlap pixels (tiles: small
 * defects in big frames; a frame scores its worst tile). */
enum model_input_mode { MODEL_INPUT_FIT = 0, MODEL_INPUT_TILES };
#define MODEL_TILE_OVERLAP_MAX 256

#define MODEL_ALIGNED_K          5
#define MODEL_ALIGNED_MAX_IMAGES 2048
#define MODEL_AGGREGATE_MAX      3

struct scoring_model {
    struct vit_model vit;          /* the teacher */
    struct knn_bank bank;          /* PATCH, BOTH: (rows, D) patch tokens of normal frames */
    struct knn_bank grid_bank;     /* ALIGNED, BOTH: (rows, gh·gw·D) standardised grids */
    int base_rows, grid_base_rows; /* the bank file's rows come first; operator feedback follows
                                    * (gh·gw patch rows and one grid row per frame) */
    int64_t *feedback; /* the frames whose patches follow, in order (feedback_n of them) */
    int feedback_n;
    int size, channels, layer;
    float mean[3], std[3]; /* the training images' statistics: the model's input normalisation */
    float threshold, top_q;
    int gh, gw; /* patch grid of a frame */
    enum model_readout readout;
    int aggregate; /* 0: each patch token as the backbone gives it; r (1..3): the mean of its
                    * (2r+1)² neighbourhood on the grid, 1 = 3×3 (PatchCore's local aggregation;
                    * the neighbours that exist at an edge) */
    enum model_input_mode input;   /* the bank file's; fit in one of an earlier version */
    int tile_overlap;              /* tiles: pixels two neighbouring tiles share, at least */
    float *grid_mean, *grid_scale; /* ALIGNED, BOTH: (gh·gw·D) standardisation of the grids */
    float patch_unit, grid_unit;   /* BOTH: the readouts' median held-out scores */
    float *calibration;            /* the held-out normal frames' scores the threshold was taken
                                    * from (n_calibration; NULL in a bank file of an earlier
                                    * version), so another false-alarm rate needs no retraining */
    int n_calibration;
    float trained_rate; /* the false-alarm rate the bank file's threshold was calibrated at */
    struct model_scratch *scratch; /* model_score's buffers with one thread, kept between calls
                                    * (NULL until the first) */
};

struct model_build_options {
    int layer;                   /* block whose tokens are scored (default: the middle one) */
    int bank_images;             /* at most this many frames feed a patch bank (128) */
    long aligned_bank_bytes;     /* an aligned bank holds as many grids as fit in this (64 MiB),
                                  * at most MODEL_ALIGNED_MAX_IMAGES */
    int max_patches;             /* coreset size when the bank has more rows (8192) */
    int calib_images;            /* at most this many held-out frames calibrate (512) */
    double false_alarm_rate;     /* share of normal frames allowed above the threshold (0.005) */
    float top_q;                 /* 0: the largest patch; else the mean of this top share */
    enum model_readout readout;  /* BOTH by default */
    int aggregate;               /* scoring_model.aggregate (0) */
    enum model_input_mode input; /* recorded in the bank file for every later use (fit) */
    int tile_overlap;            /* (0) */
    int threads;
};

struct model_build_result {
    int bank_rows, bank_images, calib_images; /* bank_rows: of the patch bank, else the grids */
    float threshold;
    enum model_readout readout;
};

/* What model_fit_input and model_score_input read: n images (n, C, S, S) in [0, 1] at the model's
 * size with their inspect masks (n, S, S: 1 inspected, 0 ignored; NULL: every pixel; region.h),
 * either whole frames (first NULL: each image a frame) or the tiles of frames, frame after frame
 * (frame f is images [first[f], first[f + 1]), first holding frames + 1 entries). A patch with
 * fewer than half of its pixels inspected is left out of the bank, the score and the heatmap (0
 * there); a frame of tiles scores its worst tile. */
struct model_input {
    const float *images;
    const uint8_t *masks;
    int n;
    const int *first;
    int frames;
};

/* "fit" or "tiles", and back. Parse returns 0 or -1. */
const char *model_input_name(enum model_input_mode i);
int model_input_parse(const char *s, enum model_input_mode *out);

/* How m sees a frame captured through region r (NULL: the whole frame): fit or tiles. */
struct image_view model_view(const struct scoring_model *m, const struct region *r);
/* A set's images as model_fit_input and model_score_input read them (its frames' tiles together).
 */
struct model_input model_input_of(const struct image_set *set);

/* The heatmap of a width × height frame seen through region r (NULL: whole) as one grid over the
 * whole frame (out: HEATMAP_MAX_GRID² floats; heatmap.h): grids holds one grid per image of the
 * frame (its ROI's, or its tiles' in the order they were cut), laid back in place, 0 outside the
 * ROI. Sets *gh, *gw. Returns 0, or -1 when out of memory or the ROI lies outside the frame. */
int model_frame_grid(const struct scoring_model *m, const struct region *r, int width, int height,
                     const float *grids, float *out, int *gh, int *gw);

/* "patch", "aligned" or "both", and back. Parse returns 0 or -1. */
const char *model_readout_name(enum model_readout r);
int model_readout_parse(const char *s, enum model_readout *out);

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

/* model_build for tiles, without holding every held-out frame: the bank of checkpoint ckpt from
 * every inspected patch of the images of bank (no split), then each frame next() gives (its tiles
 * into *one, which it starts empty; it returns 1, 0 when there are no more, -1 on an error)
 * calibrates the threshold with its worst tile, as model_fit_input does. Writes the bank file.
 * Returns 0, or -1 with the reason in err. */
int model_build_streamed(const char *ckpt, const struct image_set *bank,
                         int (*next)(void *arg, struct image_set *one), void *arg,
                         const struct model_build_options *o, const char *bank_path,
                         struct model_build_result *r, char *err, size_t errsz);

/* The block a model scores: `layer` when >= 0, else the middle one ((depth + 1) / 2). */
int model_scoring_layer(const struct vit_config *c, int layer);

/* A scoring model around an in-memory backbone (a replica sharing vit's weights, so vit must
 * outlive m) with the input normalisation mean, std (in_chans values each); no bank yet.
 * Returns 0, or -1 with the reason in err. */
int model_from_vit(struct scoring_model *m, const struct vit_model *vit, const float *mean,
                   const float *std, char *err, size_t errsz);

/* Which of n normal images feed the bank (bank_idx, *nb of them) and which calibrate (cal_idx,
 * *nc): every fifth (at least one) calibrates, up to o->calib_images; up to o->bank_images of
 * the others feed the bank. Both arrays hold n entries. */
void model_bank_split(int n, const struct model_build_options *o, int *bank_idx, int *nb,
                      int *cal_idx, int *nc);

/* The bank and threshold of m from n normal images (n, C, S, S) in [0, 1] at the model's size,
 * as model_build makes them: every fifth image (at least one) is held out for calibration, at
 * most o->bank_images of the others feed the bank (coreset-reduced to o->max_patches rows), and
 * the threshold is the (1 − false-alarm rate) quantile of the held-out images' scores. This is
 * the function both `inspectd train --register` and `inspectd eval` build banks with. Returns 0,
 * or -1 with the reason in err (m's bank then empty). */
int model_fit(struct scoring_model *m, const float *images, int n,
              const struct model_build_options *o, struct model_build_result *r, char *err,
              size_t errsz);

/* model_fit on in: the frames are split as model_fit splits images (a frame's tiles stay
 * together: the bank takes every inspected patch of its frames' tiles, each held-out frame
 * calibrates with the score of its worst tile). */
int model_fit_input(struct scoring_model *m, const struct model_input *in,
                    const struct model_build_options *o, struct model_build_result *r, char *err,
                    size_t errsz);

/* Reads the model config and input statistics (mean, std; size, channels and patch grid into m)
 * from a training checkpoint's "model" metadata, as cmd_train writes it. Returns 0, or -1 with
 * "PATH: ..." in err. */
int model_read_config(const struct st_file *f, const char *path, struct scoring_model *m,
                      struct vit_config *c, char *err, size_t errsz);

/* The threshold of false-alarm rate `rate` from m's calibration scores (knn_calibrate). Returns 0,
 * or -1 when m has none (or out of memory). */
int model_threshold_at(const struct scoring_model *m, double rate, float *threshold);

/* Sets m's calibration scores to a copy of scores (n of them; a model whose bank file had none,
 * recalibrated on frames taken as normal). Returns 0, or -1 when out of memory. */
int model_set_calibration(struct scoring_model *m, const float *scores, int n);

/* Writes m's calibration scores into its bank file bank_path (atomically; its other tensors and
 * metadata as they are), so a recalibration outlives a restart. Returns 0, or -1 with the reason
 * in err (the file unchanged). */
int model_save_calibration(const struct scoring_model *m, const char *bank_path, char *err,
                           size_t errsz);

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
 * grids (n, gh·gw) of patch distances. The backbone runs once on the n images (the scorer's
 * batches); each image's k-NN runs on its own. An image's score and grid are the same, bit for
 * bit, whatever the batch it is in, on oneDNN in float32 (its products give a row the same value
 * whatever the number of rows); OpenBLAS's kernels for small products (under 10^6 multiply-adds)
 * do not, so with gemm = openblas a small model's batch can differ in the last bits. With one
 * thread the activations are the model's own, kept from call to call (a frame's buffers are not
 * allocated, faulted in and zeroed again for every frame): calls on one model with threads = 1
 * must not overlap (the scorer holds its model lock). Returns 0, or -1 with the reason in err. */
int model_score(struct scoring_model *m, const float *images, int n, int threads, float *scores,
                float *grids, char *err, size_t errsz);
/* model_score on in: scores (one per frame) and, when not NULL, grids (in->n, gh·gw), one grid
 * per image (tile). */
int model_score_input(struct scoring_model *m, const struct model_input *in, int threads,
                      float *scores, float *grids, char *err, size_t errsz);

#endif
