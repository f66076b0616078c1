/* eval.h — `inspectd eval`, shared by its datasets: the options, and one one-class case (a normal
 * set to pretrain on and to use as the k-NN bank, a test set with anomaly flags) scored three ways
 * on the same split — raw-pixel k-NN, the untrained network, the DINO-pretrained network. */
#ifndef INSPECTD_EVAL_H
#define INSPECTD_EVAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "embedding.h"
#include "knn.h"
#include "scoring/model.h"
#include "train.h"

#define EVAL_PIXEL_K 2 /* raw-pixel baseline: k = 2, L2, as the literature's anchor */

/* How an image's score is read off the backbone: `patch` is the daemon's (a coreset bank of the
 * scoring layer's patch tokens of normal images, the worst patch against it, model_fit and
 * model_score); `grid` compares whole images' token grids (--embed, --layers, --k, --metric). */
enum eval_readout { EVAL_READOUT_PATCH = 0, EVAL_READOUT_GRID };

struct eval_options {
    const char *dataset_dir; /* Fashion-MNIST IDX files */
    const char *mvtec_dir;   /* MVTec AD layout; NULL for Fashion-MNIST */
    const char *categories;  /* MVTec: comma-separated subset, NULL for all */
    int classes[10], nclasses;
    int train_limit, test_limit;
    int size, channels; /* MVTec: model input size and channels */
    int k;
    bool standardize; /* z-score embedding dimensions by the bank's mean and spread */
    enum knn_metric metric;
    enum embedding_kind embed;
    unsigned layers;      /* nonzero: concatenated tokens of these layers instead of embed */
    const char *save_dir; /* write each case's trained teacher as DIR/<case>.safetensors */
    int runs;             /* successive training runs of `minutes` each, each from the last */
    const char *load_dir; /* score teachers saved there instead of training */
    enum eval_readout readout;
    struct model_build_options bank; /* the patch readout's bank, as the daemon builds it */
    struct train_options train;      /* model, augmentation (with normalisation), schedules */
};

/* One case. Images are (n, C, S, S): `bank`/`test` in [0, 1] (what augmentation and the pixel
 * baseline see), `bank_norm`/`test_norm` normalised as the model's input. */
struct eval_case {
    const char *name;
    int size, channels;
    const float *bank, *bank_norm;
    int nb;
    const float *test, *test_norm;
    int nq;
    const unsigned char *anomalous; /* (nq) 1 = should score high */
    const unsigned char *masks;     /* (nq, S, S) 1 = defect pixel; NULL: no pixel-level score */
};

struct eval_result {
    double pixel, untrained, trained; /* AUROC in percent */
    /* with masks: pixel-level AUROC of the heatmaps (patch k-NN against the normal set's patches,
     * upsampled and smoothed as the daemon's), of raw-pixel patches, the untrained and the
     * pretrained network's tokens of the scoring layer; NAN without masks */
    double px_pixel, px_untrained, px_trained;
    double minutes;
    long steps;
    double pixel_patch;     /* raw-pixel patches through the patch readout (AUROC, percent) */
    double entropy;         /* the collapse monitor at the last step: DINO's teacher entropy
                             * (nats); the other methods' embed_std · √K (about 1 while the
                             * projections spread, 0 collapsed) */
    double flagged, caught; /* patch readout, trained: percent of normal / anomalous test images
                             * above the threshold calibrated as the daemon does; NAN for grid */
};

/* What the embeddings are: the kind's name, or "tokens of layers 0,2,4". */
void eval_embedding_name(const struct eval_options *o, char *out, size_t size);

/* Set by SIGINT: training stops after the current step and the table ends early. */
extern volatile sig_atomic_t eval_interrupted;

/* Scores c three ways; `train` overrides o->train (it carries this case's normalisation and
 * sizes). Returns 0, 1 when interrupted (trained score still computed), -1 on failure (logged). */
int eval_case_run(const struct eval_options *o, const struct train_options *train,
                  const struct eval_case *c, struct eval_result *r);

/* The table: a header, one row per case, then the means and the `mean_auroc: X` lines; with
 * pixel_level, three more columns (the heatmaps' pixel AUROC) and `mean_pixel_auroc: X` lines over
 * the rows that have masks. */
struct eval_table {
    int width, done, px_done;
    bool pixel_level;
    double sum[3], px_sum[3];
    double extra_sum[4]; /* pixels-patch, entropy, flagged, caught */
    int extra_done[4];
};
void eval_table_header(struct eval_table *t, const char *first_column, int width, bool pixel_level,
                       enum ssl_method method);
void eval_table_row(struct eval_table *t, const char *name, const struct eval_result *r);
/* Returns 0, or 1 when no row was printed. */
int eval_table_end(struct eval_table *t);

/* `inspectd eval --mvtec DIR`: every category of an MVTec AD tree. Returns the exit code. */
int eval_mvtec(const struct eval_options *o);

#endif
