/* train_cli.h — the training knobs: one table of every option a DINO training run takes (model
 * shape, input, batch, crops, learning rate, teacher, budget, threads, seed, images), each with one
 * range. The table drives the command lines of `inspectd train` and `inspectd eval`, the [trainer]
 * section of the config, the argv the trainer gives its `inspectd train` child, and their --help.
 * Adding a knob is one table entry in train_cli.c (and its field). */
#ifndef INSPECTD_TRAIN_CLI_H
#define INSPECTD_TRAIN_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "train.h"

/* A training run's knobs: core's options and what the command feeds them. */
struct train_knobs {
    struct train_options t; /* model, schedules, augmentation */
    int size;               /* model input in pixels (square) */
    int channels;           /* 1 grey, 3 RGB */
    int max_images;         /* a run learns from at most this many images */
    int readout;            /* enum model_readout of the model --register makes */
    int aggregate;          /* its scoring_model.aggregate */
    int input;              /* enum model_input_mode: frames shrunk to size (fit) or cut in tiles */
    int tile_overlap;       /* tiles: pixels neighbouring tiles share, at least */
    int gemm;               /* enum gemm_backend the run computes with */
    int precision;          /* enum gemm_precision */
};

/* Who takes a knob: `inspectd train`, `inspectd eval`, the [trainer] section, the [engine]
 * section (whose keys reach the training child as the knobs of [trainer] do). */
enum { TRAIN_CLI_TRAIN = 1, TRAIN_CLI_EVAL = 2, TRAIN_CLI_CONFIG = 4, TRAIN_CLI_ENGINE = 8 };

/* getopt_long returns values from here on for the knobs; a command's own start lower. */
enum { TRAIN_CLI_FIRST = 0x1000 };

/* At most this many knobs (a set of them is a uint64_t, bit i for knob i). */
#define TRAIN_CLI_MAX 64

/* train_defaults for a 64 px RGB input, and 20000 images. */
void train_knobs_defaults(struct train_knobs *k);

/* Writes the n_own entries of own (without a terminating null entry), then the knobs `who` (one of
 * TRAIN_CLI_TRAIN, TRAIN_CLI_EVAL) takes, then the null entry into out (cap entries). Returns 0, or
 * -1 when out is too small. */
int train_cli_options(int who, const struct option *own, int n_own, struct option *out, int cap);

/* Applies a value getopt_long returned: 1 when key is not a knob (the command handles it); 0 when
 * arg was stored in k; -1 when arg is not a number in the knob's range, after printing
 * "inspectd CMD: bad value 'ARG' for --NAME (RANGE)" to stderr. */
int train_cli_apply(const char *cmd, int key, const char *arg, struct train_knobs *k);

/* Prints the usage lines of the knobs `who` takes, with their ranges and the values in defaults
 * (a value outside its range, such as 0 minutes, shows as "none"). */
void train_cli_usage(int who, const struct train_knobs *defaults, FILE *out);

/* How many knobs there are, and the config key of knob i: its [trainer] key, its [engine] key
 * (*engine set), or NULL when the config does not take it. */
int train_cli_count(void);
const char *train_cli_config_key(int i, int *engine);

/* The knob whose [trainer] key is key: its index, or -1. */
int train_cli_find_key(const char *key);
/* The knob whose [engine] key is key: its index, or -1. */
int train_cli_find_engine_key(const char *key);

/* Selects the knobs' GEMM backend and precision for the process (gemm_select). Returns 0, or -1
 * after printing "inspectd CMD: REASON" to stderr. */
int train_cli_select_gemm(const char *cmd, const struct train_knobs *k);

/* Stores value for knob i. Returns 0, or -1 with "KEY must be RANGE" in err (k unchanged). */
int train_cli_set(int i, const char *value, struct train_knobs *k, char *err, size_t errsz);

/* What the knobs of one run must agree on (the input a multiple of the patch, the width a multiple
 * of the heads). Returns 0, or -1 with the reason in err. */
int train_cli_check(const struct train_knobs *k, char *err, size_t errsz);

/* The command-line form of the knobs in `set` (bit i: knob i): "--NAME", "VALUE" pairs appended to
 * argv from *n on (at most cap entries in all), written into text (2 * TRAIN_CLI_MAX rows), which
 * argv then points into. Returns 0, or -1 when argv is too small. */
int train_cli_argv(const struct train_knobs *k, uint64_t set, char text[][32], char **argv, int *n,
                   int cap);

#endif
