/* train_cli.c — the table of training knobs (see train_cli.h) and what reads and writes it. */
#include "train_cli.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "gemm.h"
#include "parse.h"
#include "scoring/model.h"

/* What a value is and the field it goes to: INT an int, FLOAT a float, DOUBLE a double (reals have
 * an open lower end when lo_open), SEED a uint64_t, CHANNELS an int that is 1 or 3, READOUT an
 * enum model_readout by its name, GEMM an enum gemm_backend, PRECISION an enum gemm_precision and
 * METHOD an enum ssl_method and INPUT an enum model_input_mode by theirs. */
enum kind { INT, FLOAT, DOUBLE, SEED, CHANNELS, READOUT, GEMM, PRECISION, METHOD, INPUT };

struct knob {
    const char *name; /* --NAME on the command lines */
    const char *key;  /* its key in [trainer] */
    int who;          /* TRAIN_CLI_* that take it */
    enum kind kind;
    size_t offset; /* of the field in struct train_knobs */
    double lo, hi; /* inclusive, but lo when lo_open */
    int lo_open;
    const char *arg;  /* the value's name in --help */
    const char *help; /* NULL: the command describes it (its meaning differs) */
};

#define K(field) offsetof(struct train_knobs, field)
#define ALL      (TRAIN_CLI_TRAIN | TRAIN_CLI_EVAL | TRAIN_CLI_CONFIG)
#define NO_EVAL  (TRAIN_CLI_TRAIN | TRAIN_CLI_CONFIG)
#define ENGINE   (TRAIN_CLI_TRAIN | TRAIN_CLI_EVAL | TRAIN_CLI_ENGINE)

/* Entry i is getopt_long's value TRAIN_CLI_FIRST + i and bit i of a set. */
static const struct knob knobs[] = {
    {"method", "method", ALL, METHOD, K(t.method), 0, 0, 0, "NAME",
     "self-supervised objective: dino, byol, barlow or simclr"},
    {"minutes", "minutes", ALL, DOUBLE, K(t.minutes), 0, 1e4, 1, "M", NULL},
    {"epochs", "epochs", ALL, INT, K(t.epochs), 1, 100000, 0, "N", NULL},
    {"size", "size", ALL, INT, K(size), 4, 1024, 0, "S", "image size the model sees, pixels"},
    {"channels", "channels", ALL, CHANNELS, K(channels), 1, 3, 0, "C", "1 grey or 3 RGB input"},
    {"max-images", "max_images", NO_EVAL, INT, K(max_images), 2, 1e7, 0, "N",
     "learn from at most N images"},
    {"dim", "dim", ALL, INT, K(t.model.dim), 8, 4096, 0, "D", "ViT width (a multiple of heads)"},
    {"depth", "depth", ALL, INT, K(t.model.depth), 1, 64, 0, "N", "ViT blocks"},
    {"heads", "heads", ALL, INT, K(t.model.heads), 1, 64, 0, "H", "attention heads"},
    {"patch", "patch", ALL, INT, K(t.model.patch), 1, 256, 0, "P", "patch pixels (divides size)"},
    {"batch", "batch", ALL, INT, K(t.batch), 2, 4096, 0, "B", "images per step"},
    {"locals", "locals", ALL, INT, K(t.n_local), 0, 32, 0, "L", "local crops per image"},
    {"lr", "lr", ALL, FLOAT, K(t.lr), 0, 10, 1, "LR", "peak learning rate per 256 images"},
    {"momentum", "momentum", ALL, FLOAT, K(t.momentum_teacher), 0, 1, 1, "M",
     "teacher EMA momentum at the start, to 1 by a cosine"},
    {"teacher-temp", "teacher_temp", ALL, FLOAT, K(t.teacher_temp), 0, 10, 1, "T",
     "teacher temperature after its warm-up"},
    {"koleo", "koleo", ALL, FLOAT, K(t.koleo_weight), 0, 10, 0, "W",
     "weight of the KoLeo spreading term (0: off)"},
    {"head-out", "head_out", ALL, INT, K(t.model.head_out), 16, 65536, 0, "K",
     "DINO head output dimension"},
    {"rotations", "rotations", ALL, INT, K(t.model.aux_classes), 0, 8, 0, "A",
     "predict which of the first A symmetries of the square turned the image (0: off)"},
    {"aux-weight", "aux_weight", ALL, FLOAT, K(t.aux_weight), 0, 10, 0, "W",
     "weight of the transformation prediction beside DINO's loss"},
    {"defects", "defects", ALL, FLOAT, K(t.defect_weight), 0, 10, 0, "W",
     "weight of synthetic-defect prediction on patch tokens (0: off)"},
    {"dense", "dense", ALL, FLOAT, K(t.dense_weight), 0, 10, 0, "W",
     "weight of masked-patch distillation on patch tokens (0: off)"},
    {"mask-ratio", "mask_ratio", ALL, FLOAT, K(t.mask_ratio), 0.1, 0.9, 0, "R",
     "largest share of a crop's patches the masked-patch distillation blanks"},
    {"sinkhorn", "sinkhorn", ALL, INT, K(t.sinkhorn), 0, 20, 0, "N",
     "Sinkhorn-Knopp iterations for the teacher's targets (0: DINO's centring)"},
    {"global-scale", "global_scale", ALL, FLOAT, K(t.aug.global_scale[0]), 0.05, 1, 0, "S",
     "smallest share of the image a global crop keeps"},
    {"readout", "readout", NO_EVAL, READOUT, K(readout), 0, 0, 0, "R",
     "how the registered model scores a frame: patch, aligned or both (README)"},
    {"aggregate", "aggregate", NO_EVAL, INT, K(aggregate), 0, MODEL_AGGREGATE_MAX, 0, "R",
     "the registered model scores each patch as the mean of its (2R+1)x(2R+1) neighbourhood "
     "(0: off)"},
    {"input", "input", NO_EVAL, INPUT, K(input), 0, 0, 0, "I",
     "fit: frames shrunk to size; tiles: cut into size x size tiles at full resolution"},
    {"tile-overlap", "tile_overlap", NO_EVAL, INT, K(tile_overlap), 0, MODEL_TILE_OVERLAP_MAX, 0,
     "P", "tiles: pixels neighbouring tiles share, at least"},
    {"threads", "threads", ALL, INT, K(t.threads), 1, 64, 0, "N", "worker threads"},
    {"seed", "seed", ALL, SEED, K(t.seed), 0, 0, 0, "S",
     "seed for initialisation, augmentation and order"},
    {"gemm", "gemm", ENGINE, GEMM, K(gemm), 0, 0, 0, "B",
     "matrix products (auto: onednn when built with it)"},
    {"precision", "precision", ENGINE, PRECISION, K(precision), 0, 0, 0, "P",
     "matmul inputs (bf16: onednn, on a CPU with AVX-512 BF16 or AMX)"},
};

enum { N_KNOBS = ARRAY_LEN(knobs) };
static_assert(N_KNOBS <= TRAIN_CLI_MAX, "a set of knobs is a uint64_t");

void train_knobs_defaults(struct train_knobs *k)
{
    memset(k, 0, sizeof *k);
    k->size = 64;
    k->channels = 3;
    k->max_images = 20000;
    k->readout = MODEL_READOUT_BOTH;
    k->gemm = GEMM_AUTO;
    k->precision = GEMM_F32;
    train_defaults(&k->t, k->size, k->channels);
}

/* The knob's range as a person reads it: "1 to 64", "above 0, at most 10", "1 or 3". */
static const char *range(const struct knob *o, char *buf, size_t n)
{
    if (o->kind == SEED) return "a whole number from 0";
    if (o->kind == CHANNELS) return "1 or 3";
    if (o->kind == READOUT) return "patch, aligned or both";
    if (o->kind == GEMM) return "auto, onednn or openblas";
    if (o->kind == PRECISION) return "f32 or bf16";
    if (o->kind == METHOD) return "dino, byol, barlow or simclr";
    if (o->kind == INPUT) return "fit or tiles";
    if (o->lo_open)
        snprintf(buf, n, "above %.10g, at most %.10g", o->lo, o->hi);
    else
        snprintf(buf, n, "%.10g to %.10g", o->lo, o->hi);
    return buf;
}

/* The whole of s as a value of the knob's kind inside its range, stored in k. */
static int store(const struct knob *o, const char *s, struct train_knobs *k)
{
    char *field = (char *)k + o->offset;
    double v;
    int i;
    switch (o->kind) {
    case SEED:
        return parse_u64(s, (uint64_t *)field);
    case CHANNELS:
        if (parse_int(s, 1, 3, &i) || i == 2) return -1;
        *(int *)field = i;
        return 0;
    case INT:
        return parse_int(s, (int)o->lo, (int)o->hi, (int *)field);
    case FLOAT:
        if (parse_double(s, o->lo, o->hi, o->lo_open, &v)) return -1;
        *(float *)field = (float)v;
        return 0;
    case DOUBLE:
        return parse_double(s, o->lo, o->hi, o->lo_open, (double *)field);
    case READOUT: {
        enum model_readout r;
        if (!s || model_readout_parse(s, &r)) return -1;
        *(int *)field = (int)r;
        return 0;
    }
    case GEMM: {
        enum gemm_backend b;
        if (gemm_backend_parse(s, &b)) return -1;
        *(int *)field = (int)b;
        return 0;
    }
    case PRECISION: {
        enum gemm_precision p;
        if (gemm_precision_parse(s, &p)) return -1;
        *(int *)field = (int)p;
        return 0;
    }
    case METHOD: {
        enum ssl_method m;
        if (ssl_method_parse(s, &m)) return -1;
        *(enum ssl_method *)field = m;
        return 0;
    }
    case INPUT: {
        enum model_input_mode in;
        if (!s || model_input_parse(s, &in)) return -1;
        *(int *)field = (int)in;
        return 0;
    }
    }
    return -1;
}

/* The value of knob o in k as text: exact (store() reads it back to the same value; as short as
 * that allows) or, for a person, short. */
static void format(const struct knob *o, const struct train_knobs *k, bool exact, char *buf,
                   size_t n)
{
    const char *field = (const char *)k + o->offset;
    switch (o->kind) {
    case SEED:
        snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)field);
        break;
    case INT:
    case CHANNELS:
        snprintf(buf, n, "%d", *(const int *)field);
        break;
    case FLOAT: {
        float v = *(const float *)field;
        snprintf(buf, n, "%g", (double)v);
        if (exact && strtof(buf, NULL) != v) snprintf(buf, n, "%.9g", (double)v);
        break;
    }
    case DOUBLE: {
        double v = *(const double *)field;
        snprintf(buf, n, exact ? "%.15g" : "%g", v);
        if (exact && strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
        break;
    }
    case READOUT:
        snprintf(buf, n, "%s", model_readout_name((enum model_readout) * (const int *)field));
        break;
    case GEMM:
        snprintf(buf, n, "%s", gemm_backend_name((enum gemm_backend) * (const int *)field));
        break;
    case PRECISION:
        snprintf(buf, n, "%s", gemm_precision_name((enum gemm_precision) * (const int *)field));
        break;
    case METHOD:
        snprintf(buf, n, "%s", ssl_method_name(*(const enum ssl_method *)field));
        break;
    case INPUT:
        snprintf(buf, n, "%s", model_input_name((enum model_input_mode) * (const int *)field));
        break;
    }
}

int train_cli_options(int who, const struct option *own, int n_own, struct option *out, int cap)
{
    if (n_own < 0 || n_own + N_KNOBS + 1 > cap) return -1;
    memcpy(out, own, sizeof *out * (size_t)n_own);
    int n = n_own;
    for (int i = 0; i < N_KNOBS; i++)
        if (knobs[i].who & who)
            out[n++] = (struct option){knobs[i].name, required_argument, NULL, TRAIN_CLI_FIRST + i};
    out[n] = (struct option){0};
    return 0;
}

int train_cli_apply(const char *cmd, int key, const char *arg, struct train_knobs *k)
{
    if (key < TRAIN_CLI_FIRST || key >= TRAIN_CLI_FIRST + N_KNOBS) return 1;
    const struct knob *o = &knobs[key - TRAIN_CLI_FIRST];
    if (store(o, arg, k) == 0) return 0;
    char buf[64];
    fprintf(stderr, "inspectd %s: bad value '%s' for --%s (%s)\n", cmd, arg ? arg : "", o->name,
            range(o, buf, sizeof buf));
    return -1;
}

void train_cli_usage(int who, const struct train_knobs *defaults, FILE *out)
{
    for (int i = 0; i < N_KNOBS; i++) {
        const struct knob *o = &knobs[i];
        if (!(o->who & who) || !o->help) continue;
        char flag[40], value[40], buf[64], tail[160];
        snprintf(flag, sizeof flag, "--%s %s", o->name, o->arg);
        struct train_knobs probe = *defaults;
        format(o, defaults, true, value, sizeof value);
        if (store(o, value, &probe))
            snprintf(value, sizeof value, "none");
        else
            format(o, defaults, false, value, sizeof value);
        snprintf(tail, sizeof tail, "(%s; default %s)", range(o, buf, sizeof buf), value);
        bool one_line = 22 + strlen(o->help) + 1 + strlen(tail) <= 100;
        fprintf(out, "  %-19s %s%s%s\n", flag, o->help, one_line ? " " : "\n                      ",
                tail);
    }
}

int train_cli_count(void)
{
    return N_KNOBS;
}

const char *train_cli_config_key(int i, int *engine)
{
    *engine = (knobs[i].who & TRAIN_CLI_ENGINE) != 0;
    return knobs[i].who & (TRAIN_CLI_CONFIG | TRAIN_CLI_ENGINE) ? knobs[i].key : NULL;
}

int train_cli_find_key(const char *key)
{
    for (int i = 0; i < N_KNOBS; i++)
        if ((knobs[i].who & TRAIN_CLI_CONFIG) && strcmp(knobs[i].key, key) == 0) return i;
    return -1;
}

int train_cli_find_engine_key(const char *key)
{
    for (int i = 0; i < N_KNOBS; i++)
        if ((knobs[i].who & TRAIN_CLI_ENGINE) && strcmp(knobs[i].key, key) == 0) return i;
    return -1;
}

int train_cli_select_gemm(const char *cmd, const struct train_knobs *k)
{
    char err[256];
    if (gemm_select((enum gemm_backend)k->gemm, (enum gemm_precision)k->precision, err,
                    sizeof err) == 0)
        return 0;
    fprintf(stderr, "inspectd %s: %s\n", cmd, err);
    return -1;
}

int train_cli_set(int i, const char *value, struct train_knobs *k, char *err, size_t errsz)
{
    assert(i >= 0 && i < N_KNOBS);
    struct train_knobs v = *k;
    if (store(&knobs[i], value, &v) == 0) {
        memcpy(k, &v, sizeof v);
        return 0;
    }
    char buf[64];
    snprintf(err, errsz, "%s must be %s", knobs[i].key, range(&knobs[i], buf, sizeof buf));
    return -1;
}

int train_cli_check(const struct train_knobs *k, char *err, size_t errsz)
{
    const struct vit_config *m = &k->t.model;
    if (k->size % m->patch) {
        snprintf(err, errsz, "size %d is not a multiple of patch %d", k->size, m->patch);
        return -1;
    }
    if (m->dim % m->heads) {
        snprintf(err, errsz, "dim %d is not a multiple of heads %d", m->dim, m->heads);
        return -1;
    }
    return 0;
}

int train_cli_argv(const struct train_knobs *k, uint64_t set, char text[][32], char **argv, int *n,
                   int cap)
{
    for (int i = 0; i < N_KNOBS; i++) {
        if (!(set >> i & 1)) continue;
        if (*n + 2 > cap) return -1;
        snprintf(text[2 * i], 32, "--%s", knobs[i].name);
        format(&knobs[i], k, true, text[2 * i + 1], 32);
        argv[(*n)++] = text[2 * i];
        argv[(*n)++] = text[2 * i + 1];
    }
    return 0;
}
