/* train_cli.c — the training options shared by `inspectd train` and `inspectd eval`. */
#include "train_cli.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a value is and the field it goes to: INT an int, FLOAT a float, DOUBLE a double (ranges
 * with an open lower end for FLOAT and DOUBLE when lo_open), SEED a uint64_t. */
enum kind { INT, FLOAT, DOUBLE, SEED };

struct shared {
    const char *name;
    enum kind kind;
    size_t offset; /* of the field in struct train_options */
    double lo, hi; /* inclusive, but lo when lo_open */
    int lo_open;
    const char *range; /* as printed in an error */
};

#define F(field) offsetof(struct train_options, field)

/* Entry i is getopt_long's value TRAIN_CLI_FIRST + i. */
static const struct shared shared[] = {
    {"minutes", DOUBLE, F(minutes), 0, 1e4, 1, "above 0, at most 10000"},
    {"epochs", INT, F(epochs), 1, 100000, 0, "1 to 100000"},
    {"dim", INT, F(model.dim), 8, 4096, 0, "8 to 4096"},
    {"depth", INT, F(model.depth), 1, 64, 0, "1 to 64"},
    {"heads", INT, F(model.heads), 1, 64, 0, "1 to 64"},
    {"patch", INT, F(model.patch), 1, 256, 0, "1 to 256"},
    {"batch", INT, F(batch), 2, 4096, 0, "2 to 4096"},
    {"locals", INT, F(n_local), 0, 32, 0, "0 to 32"},
    {"lr", FLOAT, F(lr), 0, 10, 1, "above 0, at most 10"},
    {"momentum", FLOAT, F(momentum_teacher), 0, 1, 1, "above 0, at most 1"},
    {"teacher-temp", FLOAT, F(teacher_temp), 0, 10, 1, "above 0, at most 10"},
    {"koleo", FLOAT, F(koleo_weight), 0, 10, 0, "0 to 10"},
    {"threads", INT, F(threads), 1, 64, 0, "1 to 64"},
    {"seed", SEED, F(seed), 0, 0, 0, "a whole number from 0"},
};

enum { K_COUNT = sizeof shared / sizeof *shared };

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
    char *field = (char *)t + shared[k].offset;
    switch (shared[k].kind) {
    case INT:
        *(int *)field = (int)v;
        break;
    case FLOAT:
        *(float *)field = (float)v;
        break;
    case DOUBLE:
        *(double *)field = v;
        break;
    case SEED:
        *(uint64_t *)field = (uint64_t)seed;
        break;
    }
    return 0;
}
