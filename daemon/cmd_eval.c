/* cmd_eval.c — `inspectd eval`: the one-class anomaly benchmark on Fashion-MNIST. For each class c,
 * pretrain on the training images of class c only (no labels used), embed them as the normal bank,
 * score the 10000 test images by mean distance to their k nearest bank neighbours, and report
 * AUROC of "not class c" — beside raw-pixel k-NN and the untrained network on the same split. */
#define LOG_TAG "eval"
#include "log.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auroc.h"
#include "commands.h"
#include "embedding.h"
#include "idx.h"
#include "knn.h"
#include "train.h"

#define FMNIST_DIR  "/usr/share/datasets/fashion-mnist"
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD  0.3530f
#define PIXEL_K     2

struct eval_options {
    const char *dataset_dir;
    int classes[10], nclasses;
    int train_limit, test_limit;
    int k;
    bool standardize; /* z-score embedding dimensions by the bank's mean and spread */
    enum knn_metric metric;
    enum embedding_kind embed;
    struct train_options train;
};

struct dataset {
    int n, h, w;
    float *pixels; /* (n, h, w) in [0, 1] */
    unsigned char *labels;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd eval --dataset fashion-mnist [options]\n"
            "  --data-dir DIR      IDX files (default " FMNIST_DIR ")\n"
            "  --classes LIST      e.g. 0,6 (default: all ten)\n"
            "  --minutes M         training budget per class (default 10)\n"
            "  --epochs N          upper bound on epochs per class (default 100)\n"
            "  --seed S            seed for initialisation, augmentation and order (default 0)\n"
            "  --k K               neighbours for the embedding scores (default 2)\n"
            "  --metric l2|cosine  distance for the embedding scores (default l2)\n"
            "  --embed KIND        cls | patch-mean | cls+patch | tokens (default tokens)\n"
            "  --momentum M        teacher EMA momentum at the start (default 0.99)\n"
            "  --teacher-temp T    teacher temperature after warm-up from 0.04 (default 0.04)\n"
            "  --raw-features      skip z-scoring embedding dimensions by the normal bank\n"
            "  --dim D --depth N --heads H --patch P --batch B --locals L --lr LR\n"
            "                      model and training settings (defaults: 128 4 4 4 64 6 2e-3)\n"
            "  --threads N         worker threads (default 2)\n"
            "  --train-limit N     use at most N training images per class (default all)\n"
            "  --test-limit N      use the first N test images (default all 10000)\n"
            "Ends with `mean_auroc: X` (percent, the trained model).\n");
}

static int parse_classes(const char *s, struct eval_options *o)
{
    o->nclasses = 0;
    for (const char *p = s; *p;) {
        char *end;
        long c = strtol(p, &end, 10);
        if (end == p || c < 0 || c > 9 || o->nclasses == 10) return -1;
        o->classes[o->nclasses++] = (int)c;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return o->nclasses ? 0 : -1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct eval_options *o)
{
    enum {
        O_DATASET = 256,
        O_DIR,
        O_CLASSES,
        O_MINUTES,
        O_EPOCHS,
        O_SEED,
        O_K,
        O_METRIC,
        O_EMBED,
        O_DIM,
        O_DEPTH,
        O_HEADS,
        O_PATCH,
        O_BATCH,
        O_LOCALS,
        O_LR,
        O_THREADS,
        O_TRAIN_LIMIT,
        O_TEST_LIMIT,
        O_MOMENTUM,
        O_TTEMP,
        O_STANDARDIZE
    };
    static const struct option opts[] = {{"dataset", 1, 0, O_DATASET},
                                         {"data-dir", 1, 0, O_DIR},
                                         {"classes", 1, 0, O_CLASSES},
                                         {"minutes", 1, 0, O_MINUTES},
                                         {"epochs", 1, 0, O_EPOCHS},
                                         {"seed", 1, 0, O_SEED},
                                         {"k", 1, 0, O_K},
                                         {"metric", 1, 0, O_METRIC},
                                         {"embed", 1, 0, O_EMBED},
                                         {"dim", 1, 0, O_DIM},
                                         {"depth", 1, 0, O_DEPTH},
                                         {"heads", 1, 0, O_HEADS},
                                         {"patch", 1, 0, O_PATCH},
                                         {"batch", 1, 0, O_BATCH},
                                         {"locals", 1, 0, O_LOCALS},
                                         {"lr", 1, 0, O_LR},
                                         {"threads", 1, 0, O_THREADS},
                                         {"train-limit", 1, 0, O_TRAIN_LIMIT},
                                         {"test-limit", 1, 0, O_TEST_LIMIT},
                                         {"momentum", 1, 0, O_MOMENTUM},
                                         {"teacher-temp", 1, 0, O_TTEMP},
                                         {"raw-features", 0, 0, O_STANDARDIZE},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct train_options *t = &o->train;
    bool have_dataset = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_DATASET:
            bad = strcmp(optarg, "fashion-mnist") != 0, have_dataset = true;
            break;
        case O_DIR:
            o->dataset_dir = optarg;
            break;
        case O_CLASSES:
            bad = parse_classes(optarg, o);
            break;
        case O_MINUTES:
            t->minutes = atof(optarg), bad = !(t->minutes > 0 && t->minutes < 1e4);
            break;
        case O_EPOCHS:
            bad = parse_int(optarg, 1, 100000, &t->epochs);
            break;
        case O_SEED:
            t->seed = strtoull(optarg, NULL, 10);
            break;
        case O_K:
            bad = parse_int(optarg, 1, 1000, &o->k);
            break;
        case O_METRIC:
            bad = knn_metric_parse(optarg, &o->metric);
            break;
        case O_EMBED:
            bad = embedding_kind_parse(optarg, &o->embed);
            break;
        case O_DIM:
            bad = parse_int(optarg, 8, 4096, &t->model.dim);
            break;
        case O_DEPTH:
            bad = parse_int(optarg, 1, 64, &t->model.depth);
            break;
        case O_HEADS:
            bad = parse_int(optarg, 1, 64, &t->model.heads);
            break;
        case O_PATCH:
            bad = parse_int(optarg, 1, 28, &t->model.patch);
            break;
        case O_BATCH:
            bad = parse_int(optarg, 2, 4096, &t->batch);
            break;
        case O_LOCALS:
            bad = parse_int(optarg, 0, 32, &t->n_local);
            break;
        case O_LR:
            t->lr = (float)atof(optarg), bad = !(t->lr > 0);
            break;
        case O_THREADS:
            bad = parse_int(optarg, 1, 64, &t->threads);
            break;
        case O_TRAIN_LIMIT:
            bad = parse_int(optarg, 1, 60000, &o->train_limit);
            break;
        case O_TEST_LIMIT:
            bad = parse_int(optarg, 2, 10000, &o->test_limit);
            break;
        case O_MOMENTUM:
            t->momentum_teacher = (float)atof(optarg);
            bad = !(t->momentum_teacher > 0 && t->momentum_teacher <= 1);
            break;
        case O_TTEMP:
            t->teacher_temp = (float)atof(optarg);
            bad = !(t->teacher_temp > 0 && t->teacher_temp < 10);
            break;
        case O_STANDARDIZE:
            o->standardize = false;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "inspectd eval: bad value '%s' for --%s\n", optarg,
                    opts[c - O_DATASET].name);
            return -1;
        }
    }
    if (!have_dataset || optind != argc) {
        fprintf(stderr, "inspectd eval: --dataset fashion-mnist is required%s\n",
                optind != argc ? " (and takes no positional arguments)" : "");
        return -1;
    }
    return 0;
}

static int load_split(const char *dir, const char *split, int limit, struct dataset *d)
{
    char ipath[512], lpath[512], err[512];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    struct idx_array im, lb;
    if (idx_load(ipath, &im, err, sizeof err)) goto fail;
    if (idx_load(lpath, &lb, err, sizeof err)) {
        idx_free(&im);
        goto fail;
    }
    if (im.ndim != 3 || lb.ndim != 1 || im.dims[0] != lb.dims[0]) {
        snprintf(err, sizeof err, "%s: images and labels do not match", dir);
        idx_free(&im), idx_free(&lb);
        goto fail;
    }
    d->n = limit > 0 && limit < im.dims[0] ? limit : im.dims[0];
    d->h = im.dims[1], d->w = im.dims[2];
    size_t px = (size_t)d->h * d->w;
    d->pixels = malloc(sizeof(float) * px * d->n);
    d->labels = malloc((size_t)d->n);
    if (!d->pixels || !d->labels) {
        snprintf(err, sizeof err, "out of memory for %s", split);
        idx_free(&im), idx_free(&lb);
        goto fail;
    }
    for (size_t i = 0; i < px * d->n; i++) d->pixels[i] = im.data[i] / 255.0f;
    memcpy(d->labels, lb.data, (size_t)d->n);
    idx_free(&im), idx_free(&lb);
    return 0;
fail:
    log_error("%s (install the Debian package dataset-fashion-mnist)", err);
    return -1;
}

/* Images of class c from the training split (at most limit). */
static float *class_images(const struct dataset *d, int c, int limit, int *n)
{
    size_t px = (size_t)d->h * d->w;
    int count = 0;
    for (int i = 0; i < d->n; i++) count += d->labels[i] == c;
    if (limit > 0 && count > limit) count = limit;
    float *out = malloc(sizeof(float) * px * (count ? count : 1));
    if (!out) return NULL;
    int j = 0;
    for (int i = 0; i < d->n && j < count; i++)
        if (d->labels[i] == c) memcpy(out + px * j++, d->pixels + px * i, sizeof(float) * px);
    *n = count;
    return out;
}

static float *normalised(const float *x, size_t n)
{
    float *y = malloc(sizeof(float) * n);
    if (y)
        for (size_t i = 0; i < n; i++) y[i] = (x[i] - FMNIST_MEAN) / FMNIST_STD;
    return y;
}

/* AUROC (percent) of k-NN scores of queries against a bank; anomalies are label != c. */
static double knn_auroc(const float *bank, int nb, const float *q, const struct dataset *test,
                        int dim, int k, enum knn_metric metric, int c)
{
    struct knn_bank b;
    float *scores = malloc(sizeof(float) * test->n);
    unsigned char *anomal = malloc((size_t)test->n);
    double a = -1;
    if (scores && anomal && !knn_bank_build(&b, bank, nb, dim, metric)) {
        if (!knn_score(&b, q, test->n, k, false, scores)) {
            for (int i = 0; i < test->n; i++) anomal[i] = test->labels[i] != c;
            a = auroc(scores, anomal, (size_t)test->n);
        }
        knn_bank_free(&b);
    }
    free(scores), free(anomal);
    return a < 0 ? -1 : 100.0 * a;
}

/* Rescales every dimension of bank and queries to the bank's zero mean and unit spread. */
static void standardize(float *bank, int nb, float *q, int nq, int dim)
{
    for (int d = 0; d < dim; d++) {
        double s = 0, ss = 0;
        for (int i = 0; i < nb; i++) {
            double v = bank[(size_t)i * dim + d];
            s += v, ss += v * v;
        }
        double mean = s / nb, var = ss / nb - mean * mean;
        float inv = (float)(1.0 / sqrt(var > 1e-12 ? var : 1e-12));
        for (int i = 0; i < nb; i++)
            bank[(size_t)i * dim + d] = (float)(bank[(size_t)i * dim + d] - mean) * inv;
        for (int i = 0; i < nq; i++)
            q[(size_t)i * dim + d] = (float)(q[(size_t)i * dim + d] - mean) * inv;
    }
}

static double model_auroc(const struct vit_model *m, const struct eval_options *o,
                          const float *bank_img, int nb, const float *test_img,
                          const struct dataset *test, int c)
{
    char err[256];
    int dim = embedding_dim(&m->cfg, o->embed), H = test->h, W = test->w;
    float *eb = malloc(sizeof(float) * (size_t)nb * dim);
    float *eq = malloc(sizeof(float) * (size_t)test->n * dim);
    double a = -1;
    if (!eb || !eq)
        log_error("out of memory for embeddings");
    else if (embedding_extract(m, bank_img, nb, H, W, o->embed, o->train.threads, eb, err,
                               sizeof err) ||
             embedding_extract(m, test_img, test->n, H, W, o->embed, o->train.threads, eq, err,
                               sizeof err))
        log_error("%s", err);
    else {
        if (o->standardize) standardize(eb, nb, eq, test->n, dim);
        vit_set_threads(o->train.threads);
        a = knn_auroc(eb, nb, eq, test, dim, o->k, o->metric, c);
    }
    free(eb), free(eq);
    return a;
}

struct progress_ctx {
    int cls;
    double last_log, seconds;
};

static int on_progress(const struct train_progress *p, void *arg)
{
    struct progress_ctx *c = arg;
    c->seconds = p->seconds;
    if (p->seconds - c->last_log >= 15.0 || p->step == 0) {
        c->last_log = p->seconds;
        log_info(
            "class %d: step %ld/%ld epoch %d loss %.4f entropy %.3f kl %.3f lr %.2e %.1f img/s",
            c->cls, p->step + 1, p->total_steps, p->epoch, p->stats.loss, p->stats.teacher_entropy,
            p->stats.teacher_kl, p->lr, p->images_per_s);
    }
    return interrupted;
}

struct class_result {
    double pixel, untrained, trained, minutes;
    long steps;
};

static int eval_class(const struct eval_options *o, const struct dataset *train,
                      const struct dataset *test, const float *test_norm, int c,
                      struct class_result *r)
{
    char err[256];
    int nb;
    size_t px = (size_t)test->h * test->w;
    float *bank = class_images(train, c, o->train_limit, &nb);
    float *bank_norm = bank ? normalised(bank, px * nb) : NULL;
    int rc = -1;
    struct dino_step s;
    memset(&s, 0, sizeof s);
    if (!bank || !bank_norm || nb < o->train.batch) {
        log_error("class %d: %s", c, !bank || !bank_norm ? "out of memory" : "too few images");
        goto done;
    }
    vit_set_threads(o->train.threads);
    r->pixel = knn_auroc(bank, nb, test->pixels, test, (int)px, PIXEL_K, KNN_L2, c);
    if (train_make_step(&s, &o->train, err, sizeof err)) {
        log_error("%s", err);
        goto done;
    }
    r->untrained = model_auroc(&s.teacher, o, bank_norm, nb, test_norm, test, c);
    struct progress_ctx pc = {c, 0, 0};
    int trc =
        train_run(&s, &o->train, bank, nb, test->h, test->w, on_progress, &pc, err, sizeof err);
    if (trc < 0) {
        log_error("%s", err);
        goto done;
    }
    r->steps = s.student.adam_step;
    r->minutes = pc.seconds / 60.0;
    r->trained = model_auroc(&s.teacher, o, bank_norm, nb, test_norm, test, c);
    rc = trc;
done:
    dino_step_destroy(&s);
    free(bank), free(bank_norm);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    struct eval_options o = {.dataset_dir = FMNIST_DIR,
                             .k = 2,
                             .metric = KNN_L2,
                             .embed = EMBEDDING_TOKENS,
                             .standardize = true};
    train_defaults(&o.train, 28, 1);
    o.train.minutes = 10;
    for (int i = 0; i < 10; i++) o.classes[i] = i;
    o.nclasses = 10;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 64;
    }
    o.train.aug.mean[0] = FMNIST_MEAN;
    o.train.aug.std[0] = FMNIST_STD;
    o.train.model.img_size = 28;
    struct dataset train = {0}, test = {0};
    if (load_split(o.dataset_dir, "train", 0, &train) ||
        load_split(o.dataset_dir, "t10k", o.test_limit, &test))
        return 1;
    float *test_norm = normalised(test.pixels, (size_t)test.n * test.h * test.w);
    if (!test_norm) {
        log_error("out of memory");
        return 1;
    }
    signal(SIGINT, on_sigint);
    const struct vit_config *mc = &o.train.model;
    printf("one-class Fashion-MNIST: ViT dim %d depth %d heads %d patch %d, batch %d, %d local "
           "crops, %.1f min/class, k=%d %s on %s%s; pixels: k=%d l2\n",
           mc->dim, mc->depth, mc->heads, mc->patch, o.train.batch, o.train.n_local,
           o.train.minutes, o.k, o.metric == KNN_L2 ? "l2" : "cosine", embedding_kind_name(o.embed),
           o.standardize ? " (standardised)" : "", PIXEL_K);
    printf("%-6s %8s %10s %8s %7s %8s\n", "class", "pixels", "untrained", "trained", "steps",
           "minutes");
    double sum[3] = {0, 0, 0};
    int done = 0;
    for (int i = 0; i < o.nclasses && !interrupted; i++) {
        struct class_result r = {0};
        int rc = eval_class(&o, &train, &test, test_norm, o.classes[i], &r);
        if (rc < 0) break;
        printf("%-6d %8.2f %10.2f %8.2f %7ld %8.2f\n", o.classes[i], r.pixel, r.untrained,
               r.trained, r.steps, r.minutes);
        fflush(stdout);
        sum[0] += r.pixel, sum[1] += r.untrained, sum[2] += r.trained;
        done++;
        if (rc == 1) break;
    }
    free(test_norm);
    free(train.pixels), free(train.labels), free(test.pixels), free(test.labels);
    if (!done) return 1;
    printf("%-6s %8.2f %10.2f %8.2f\n", "mean", sum[0] / done, sum[1] / done, sum[2] / done);
    printf("mean_auroc_pixels: %.2f\n", sum[0] / done);
    printf("mean_auroc_untrained: %.2f\n", sum[1] / done);
    printf("mean_auroc: %.2f\n", sum[2] / done);
    return interrupted ? 130 : 0;
}
