/* train_cli.c — the training options shared by `inspectd train` and `inspectd eval`. */
#include "train_cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { INT, REAL, SEED };

struct shared {
    const char *name;
    enum kind kind;
    double lo, hi; /* inclusive for INT; for REAL, lo is exclusive when lo_open */
    int lo_open;
    const char *range; /* as printed in an error */
};

/* In the order of the keys TRAIN_CLI_FIRST + i. */
enum {
    K_MINUTES,
    K_EPOCHS,
    K_DIM,
    K_DEPTH,
    K_HEADS,
    K_PATCH,
    K_BATCH,
    K_LOCALS,
    K_LR,
    K_MOMENTUM,
    K_TEACHER_TEMP,
    K_KOLEO,
    K_THREADS,
    K_SEED,
    K_COUNT
};

static const struct shared shared[K_COUNT] = {
    [K_MINUTES] = {"minutes", REAL, 0, 1e4, 1, "above 0, at most 10000"},
    [K_EPOCHS] = {"epochs", INT, 1, 100000, 0, "1 to 100000"},
    [K_DIM] = {"dim", INT, 8, 4096, 0, "8 to 4096"},
    [K_DEPTH] = {"depth", INT, 1, 64, 0, "1 to 64"},
    [K_HEADS] = {"heads", INT, 1, 64, 0, "1 to 64"},
    [K_PATCH] = {"patch", INT, 1, 256, 0, "1 to 256"},
    [K_BATCH] = {"batch", INT, 2, 4096, 0, "2 to 4096"},
    [K_LOCALS] = {"locals", INT, 0, 32, 0, "0 to 32"},
    [K_LR] = {"lr", REAL, 0, 10, 1, "above 0, at most 10"},
    [K_MOMENTUM] = {"momentum", REAL, 0, 1, 1, "above 0, at most 1"},
    [K_TEACHER_TEMP] = {"teacher-temp", REAL, 0, 10, 1, "above 0, at most 10"},
    [K_KOLEO] = {"koleo", REAL, 0, 10, 0, "0 to 10"},
    [K_THREADS] = {"threads", INT, 1, 64, 0, "1 to 64"},
    [K_SEED] = {"seed", SEED, 0, 0, 0, "a whole number from 0"},
};

void train_cli_usage(FILE *out)
{
    struct train_options d;
    train_defaults(&d, 64, 3);
    fprintf(
        out,
        "  --dim D --depth N --heads H --patch P\n"
        "                      the ViT: width, blocks, heads, patch pixels (default %d %d %d %d)\n"
        "  --batch B           images per step (default %d)\n"
        "  --locals L          local crops per image, 0 to 32 (default %d)\n"
        "  --lr LR             peak learning rate per 256 images (default %g)\n"
        "  --momentum M        teacher EMA momentum at the start, to 1 by a cosine (default %g)\n"
        "  --teacher-temp T    teacher temperature after its warm-up from %g (default %g)\n"
        "  --koleo W           weight of the KoLeo spreading term (default 0: off)\n"
        "  --threads N         worker threads (default %d)\n"
        "  --seed S            seed for initialisation, augmentation and order (default %llu)\n",
        d.model.dim, d.model.depth, d.model.heads, d.model.patch, d.batch, d.n_local, (double)d.lr,
        (double)d.momentum_teacher, (double)d.warmup_teacher_temp, (double)d.teacher_temp,
        d.threads, (unsigned long long)d.seed);
}

int train_cli_options(const struct option *own, int n_own, struct option *out, int cap)
{
    if (n_own < 0 || n_own + K_COUNT + 1 > cap) return -1;
    memcpy(out, own, sizeof *out * (size_t)n_own);
    for (int i = 0; i < K_COUNT; i++)
        out[n_own + i] =
            (struct option){shared[i].name, required_argument, NULL, TRAIN_CLI_FIRST + i};
    out[n_own + K_COUNT] = (struct option){0};
    return 0;
}

/* The whole of s as a number of the option's kind inside its range. */
static int parse(const struct shared *o, const char *s, double *out, unsigned long long *seed)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    if (o->kind == SEED) {
        if (*s == '-' || *s == '+') return -1;
        *seed = strtoull(s, &end, 10);
        return *end || errno ? -1 : 0;
    }
    double v;
    if (o->kind == INT) {
        long long i = strtoll(s, &end, 10);
        v = (double)i;
    } else {
        v = strtod(s, &end);
    }
    if (*end || errno || !isfinite(v) || v > o->hi) return -1;
    if (o->lo_open ? !(v > o->lo) : !(v >= o->lo)) return -1;
    *out = v;
    return 0;
}

int train_cli_apply(const char *cmd, int key, const char *arg, struct train_options *t)
{
    if (key < TRAIN_CLI_FIRST || key >= TRAIN_CLI_FIRST + K_COUNT) return 1;
    int k = key - TRAIN_CLI_FIRST;
    double v = 0;
    unsigned long long seed = 0;
    if (parse(&shared[k], arg, &v, &seed)) {
        fprintf(stderr, "inspectd %s: bad value '%s' for --%s (%s)\n", cmd, arg ? arg : "",
                shared[k].name, shared[k].range);
        return -1;
    }
    switch (k) {
    case K_MINUTES:
        t->minutes = v;
        break;
    case K_EPOCHS:
        t->epochs = (int)v;
        break;
    case K_DIM:
        t->model.dim = (int)v;
        break;
    case K_DEPTH:
        t->model.depth = (int)v;
        break;
    case K_HEADS:
        t->model.heads = (int)v;
        break;
    case K_PATCH:
        t->model.patch = (int)v;
        break;
    case K_BATCH:
        t->batch = (int)v;
        break;
    case K_LOCALS:
        t->n_local = (int)v;
        break;
    case K_LR:
        t->lr = (float)v;
        break;
    case K_MOMENTUM:
        t->momentum_teacher = (float)v;
        break;
    case K_TEACHER_TEMP:
        t->teacher_temp = (float)v;
        break;
    case K_KOLEO:
        t->koleo_weight = (float)v;
        break;
    case K_THREADS:
        t->threads = (int)v;
        break;
    case K_SEED:
        t->seed = (uint64_t)seed;
        break;
    }
    return 0;
}
