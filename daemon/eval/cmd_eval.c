/* cmd_eval.c — `inspectd eval`: the one-class anomaly benchmark. On Fashion-MNIST, for each class
 * c, pretrain on the training images of class c only (no labels used), embed them as the normal
 * bank, score the 10000 test images by mean distance to their k nearest bank neighbours, and report
 * AUROC of "not class c" — beside raw-pixel k-NN and the untrained network on the same split.
 * `--mvtec DIR` runs the same protocol on an MVTec AD tree (eval_mvtec.c). */
#define LOG_TAG "eval"
#include "array.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/commands.h"
#include "eval.h"
#include "idx.h"
#include "parse.h"
#include "train/train_cli.h"

#define FMNIST_DIR  "/usr/share/datasets/fashion-mnist"
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD  0.3530f

struct dataset {
    int n, h, w;
    float *pixels; /* (n, h, w) in [0, 1] */
    unsigned char *labels;
};

static void on_sigint(int sig)
{
    (void)sig;
    eval_interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd eval --dataset fashion-mnist [options]\n"
            "       inspectd eval --mvtec DIR [options]\n"
            "  --data-dir DIR      IDX files (default " FMNIST_DIR ")\n"
            "  --classes LIST      e.g. 0,6 (default: all ten)\n"
            "  --mvtec DIR         MVTec AD layout: CATEGORY/train/good, CATEGORY/test/<kind>\n"
            "  --categories LIST   MVTec categories, e.g. bottle,screw (default: all in DIR)\n"
            "  --minutes M         training budget per class or category, above 0, at most\n"
            "                      10000 (default 10)\n"
            "  --epochs N          upper bound on epochs per class, 1 to 100000 (default 100)\n"
            "  --readout R         both (default), patch or aligned: the daemon's scoring of\n"
            "                      the scoring layer's patch tokens (see inspectd train\n"
            "                      --readout); grid: whole images' tokens (--embed, --layers,\n"
            "                      --k, --metric, --raw-features), the readout of earlier\n"
            "                      versions\n"
            "  --bank-images N     patch readout: normal images in the bank (default 128)\n"
            "  --coreset N         patch readout: bank rows kept by the coreset (default 8192)\n"
            "  --runs R            R successive training runs of --minutes each, each going on\n"
            "                      from the last (as the daemon's runs do), the trained AUROC\n"
            "                      printed after each (default 1)\n"
            "  --top-q Q           patch readout: score = mean of the top share Q of patches\n"
            "                      (default 0: the worst patch)\n"
            "  --aggregate R       patch and aligned readouts: each patch token as the mean of\n"
            "                      its (2R+1)x(2R+1) neighbourhood (0 to 3; default 0: off)\n"
            "  --k K               neighbours for the embedding scores (default 5)\n"
            "  --metric l2|cosine  distance for the embedding scores (default l2)\n"
            "  --embed KIND        cls | patch-mean | cls+patch | tokens (default: --layers)\n"
            "  --raw-features      skip z-scoring embedding dimensions by the normal bank\n"
            "  --layers LIST       instead of --embed, the tokens of these layers before any\n"
            "                      norm: 0 = patch embeddings, N = output of block N (default:\n"
            "                      the middle block, 2 of 4); with the product's readouts one\n"
            "                      layer, the one its patch tokens come from\n"
            "  --save DIR          keep each trained teacher as DIR/<class>.safetensors\n"
            "  --load DIR          score the teachers saved by --save instead of training\n"
            "  --train-limit N     use at most N training images per class (default all)\n"
            "  --test-limit N      use the first N test images (default all 10000)\n");
    struct train_knobs d;
    train_knobs_defaults(&d);
    train_cli_usage(TRAIN_CLI_EVAL, &d, out);
    fprintf(out, "(--size and --channels apply to MVTec; Fashion-MNIST is 28 px grey.)\n");
    fprintf(out, "Ends with `mean_auroc: X` (percent, the trained model).\n");
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

static int parse_args(int argc, char **argv, struct eval_options *o)
{
    enum {
        O_DATASET = 256,
        O_DIR,
        O_CLASSES,
        O_K,
        O_METRIC,
        O_EMBED,
        O_TRAIN_LIMIT,
        O_TEST_LIMIT,
        O_RAW_FEATURES,
        O_MVTEC,
        O_CATEGORIES,
        O_LAYERS,
        O_SAVE,
        O_LOAD,
        O_READOUT,
        O_BANK_IMAGES,
        O_CORESET,
        O_TOP_Q,
        O_AGGREGATE,
        O_RUNS
    };
    static const struct option own[] = {{"dataset", 1, 0, O_DATASET},
                                        {"data-dir", 1, 0, O_DIR},
                                        {"classes", 1, 0, O_CLASSES},
                                        {"k", 1, 0, O_K},
                                        {"metric", 1, 0, O_METRIC},
                                        {"embed", 1, 0, O_EMBED},
                                        {"train-limit", 1, 0, O_TRAIN_LIMIT},
                                        {"test-limit", 1, 0, O_TEST_LIMIT},
                                        {"raw-features", 0, 0, O_RAW_FEATURES},
                                        {"mvtec", 1, 0, O_MVTEC},
                                        {"categories", 1, 0, O_CATEGORIES},
                                        {"layers", 1, 0, O_LAYERS},
                                        {"save", 1, 0, O_SAVE},
                                        {"load", 1, 0, O_LOAD},
                                        {"readout", 1, 0, O_READOUT},
                                        {"bank-images", 1, 0, O_BANK_IMAGES},
                                        {"coreset", 1, 0, O_CORESET},
                                        {"top-q", 1, 0, O_TOP_Q},
                                        {"aggregate", 1, 0, O_AGGREGATE},
                                        {"runs", 1, 0, O_RUNS},
                                        {"help", 0, 0, 'h'}};
    enum { N_OWN = ARRAY_LEN(own) };
    struct option opts[N_OWN + TRAIN_CLI_MAX + 1];
    if (train_cli_options(TRAIN_CLI_EVAL, own, N_OWN, opts, (int)ARRAY_LEN(opts))) return -1;
    struct train_knobs k = {.t = o->train, .size = o->size, .channels = o->channels};
    struct train_options *t = &k.t;
    bool have_dataset = false;
    const char *layers = NULL;
    bool embed_given = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int shared = train_cli_apply("eval", c, optarg, &k);
        if (shared <= 0) {
            if (shared < 0) return -1;
            continue;
        }
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
        case O_K:
            bad = parse_int(optarg, 1, 1000, &o->k);
            break;
        case O_METRIC:
            bad = knn_metric_parse(optarg, &o->metric);
            break;
        case O_LAYERS:
            layers = optarg;
            break;
        case O_SAVE:
            o->save_dir = optarg;
            break;
        case O_LOAD:
            o->load_dir = optarg;
            break;
        case O_READOUT:
            o->readout = strcmp(optarg, "grid") == 0 ? EVAL_READOUT_GRID : EVAL_READOUT_PATCH;
            bad = o->readout == EVAL_READOUT_PATCH && model_readout_parse(optarg, &o->bank.readout);
            break;
        case O_BANK_IMAGES:
            bad = parse_int(optarg, 1, 60000, &o->bank.bank_images);
            break;
        case O_CORESET:
            bad = parse_int(optarg, 1, 1 << 24, &o->bank.max_patches);
            break;
        case O_RUNS:
            bad = parse_int(optarg, 1, 1000, &o->runs);
            break;
        case O_AGGREGATE:
            bad = parse_int(optarg, 0, MODEL_AGGREGATE_MAX, &o->bank.aggregate);
            break;
        case O_TOP_Q: {
            double q = 0;
            bad = parse_double(optarg, 0, 1, false, &q) != 0;
            o->bank.top_q = (float)q;
            break;
        }
        case O_EMBED:
            bad = embedding_kind_parse(optarg, &o->embed), embed_given = true;
            break;
        case O_TRAIN_LIMIT:
            bad = parse_int(optarg, 1, 60000, &o->train_limit);
            break;
        case O_TEST_LIMIT:
            bad = parse_int(optarg, 2, 10000, &o->test_limit);
            break;
        case O_RAW_FEATURES:
            o->standardize = false;
            break;
        case O_MVTEC:
            o->mvtec_dir = optarg;
            break;
        case O_CATEGORIES:
            o->categories = optarg, bad = !*optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "inspectd eval: bad value '%s' for --%s\n", optarg,
                    own[c - O_DATASET].name);
            return -1;
        }
    }
    o->train = k.t;
    o->size = k.size;
    o->channels = k.channels;
    if (train_cli_select_gemm("eval", &k)) return -2;
    if (layers && embedding_layers_parse(layers, t->model.depth, &o->layers)) {
        fprintf(stderr, "inspectd eval: bad value '%s' for --layers (numbers 0..%d)\n", layers,
                t->model.depth);
        return -1;
    }
    if (!layers && !embed_given) o->layers = 1u << model_scoring_layer(&t->model, -1);
    if (layers && o->readout == EVAL_READOUT_PATCH) {
        /* the product's readouts score one layer: the one given */
        if (o->layers & (o->layers - 1)) {
            fprintf(stderr, "inspectd eval: --readout %s scores one layer, not '%s'\n",
                    model_readout_name(o->bank.readout), layers);
            return -1;
        }
        for (int l = 0; l <= t->model.depth; l++)
            if (o->layers == 1u << l) o->bank.layer = l;
    }
    if (o->load_dir && o->runs > 1) {
        fprintf(stderr, "inspectd eval: --runs trains, --load does not\n");
        return -1;
    }
    if (o->save_dir && o->load_dir) {
        fprintf(stderr, "inspectd eval: --save and --load exclude each other\n");
        return -1;
    }
    /* the teachers are written after each training run: an unwritable place is said now, not
     * after the first run's minutes are spent */
    if (o->save_dir && mkdir(o->save_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "inspectd eval: --save %s: %s\n", o->save_dir, strerror(errno));
        return -1;
    }
    if (o->save_dir && access(o->save_dir, W_OK | X_OK) < 0) {
        fprintf(stderr, "inspectd eval: --save %s: %s\n", o->save_dir, strerror(errno));
        return -1;
    }
    if (have_dataset == (o->mvtec_dir != NULL) || optind != argc) {
        fprintf(stderr,
                "inspectd eval: one of --dataset fashion-mnist or --mvtec DIR is required%s\n",
                optind != argc ? " (and no positional arguments)" : "");
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

/* Class c against the test split: bank = class c's training images, anomalies = other labels. */
static int eval_class(const struct eval_options *o, const struct dataset *train,
                      const struct dataset *test, const float *test_norm, int c,
                      struct eval_result *r)
{
    int nb = 0;
    size_t px = (size_t)test->h * test->w;
    float *bank = class_images(train, c, o->train_limit, &nb);
    float *bank_norm = bank ? normalised(bank, px * nb) : NULL;
    unsigned char *anomalous = malloc((size_t)test->n);
    int rc = -1;
    char name[16];
    snprintf(name, sizeof name, "class %d", c);
    if (!bank || !bank_norm || !anomalous) {
        log_error("%s: out of memory", name);
    } else {
        for (int i = 0; i < test->n; i++) anomalous[i] = test->labels[i] != c;
        struct eval_case ec = {.name = name,
                               .size = test->h,
                               .channels = 1,
                               .bank = bank,
                               .bank_norm = bank_norm,
                               .nb = nb,
                               .test = test->pixels,
                               .test_norm = test_norm,
                               .nq = test->n,
                               .anomalous = anomalous};
        rc = eval_case_run(o, &o->train, &ec, r);
    }
    free(bank), free(bank_norm), free(anomalous);
    return rc;
}

static int eval_fmnist(const struct eval_options *o)
{
    struct dataset train = {0}, test = {0};
    if (load_split(o->dataset_dir, "train", 0, &train) ||
        load_split(o->dataset_dir, "t10k", o->test_limit, &test))
        return 1;
    float *test_norm = normalised(test.pixels, (size_t)test.n * test.h * test.w);
    if (!test_norm) {
        log_error("out of memory");
        return 1;
    }
    const struct vit_config *mc = &o->train.model;
    char what[64];
    eval_embedding_name(o, what, sizeof what);
    printf("one-class Fashion-MNIST (%s): ViT dim %d depth %d heads %d patch %d, batch %d, %d "
           "local crops, %.1f min/class, k=%d %s on %s%s; pixels: k=%d l2\n",
           ssl_method_name(o->train.method), mc->dim, mc->depth, mc->heads, mc->patch,
           o->train.batch, ssl_method_uses_locals(o->train.method) ? o->train.n_local : 0,
           o->train.minutes, o->k, o->metric == KNN_L2 ? "l2" : "cosine", what,
           o->standardize ? " (standardised)" : "", EVAL_PIXEL_K);
    struct eval_table table;
    eval_table_header(&table, "class", 6, false, o->train.method);
    int status = 0;
    for (int i = 0; i < o->nclasses && !eval_interrupted && !status; i++) {
        struct eval_result r;
        char name[8];
        int rc = eval_class(o, &train, &test, test_norm, o->classes[i], &r);
        snprintf(name, sizeof name, "%d", o->classes[i]);
        if (rc >= 0) eval_table_row(&table, name, &r);
        status = rc < 0;
    }
    free(test_norm);
    free(train.pixels), free(train.labels), free(test.pixels), free(test.labels);
    if (eval_table_end(&table)) return 1;
    return status ? 1 : (eval_interrupted ? 130 : 0);
}

int cmd_eval(int argc, char **argv)
{
    struct eval_options o = {.dataset_dir = FMNIST_DIR,
                             .size = 64,
                             .channels = 3,
                             .k = 5,
                             .metric = KNN_L2,
                             .embed = EMBEDDING_TOKENS,
                             .standardize = true};
    model_build_defaults(&o.bank);
    train_defaults(&o.train, 28, 1);
    o.train.minutes = 10;
    for (int i = 0; i < 10; i++) o.classes[i] = i;
    o.nclasses = 10;
    int bad = parse_args(argc, argv, &o);
    if (bad) {
        if (bad == -2) return EX_CONFIG;
        usage(stderr);
        return EX_USAGE;
    }
    signal(SIGINT, on_sigint);
    if (o.mvtec_dir) {
        struct vit_config *m = &o.train.model;
        m->img_size = o.size, m->in_chans = o.channels;
        if (o.size % m->patch) {
            fprintf(stderr, "inspectd eval: --size %d is not a multiple of the patch size %d\n",
                    o.size, m->patch);
            return EX_USAGE;
        }
        train_set_size(&o.train, o.size);
        return eval_mvtec(&o);
    }
    o.train.aug.mean[0] = FMNIST_MEAN;
    o.train.aug.std[0] = FMNIST_STD;
    o.train.model.img_size = 28;
    return eval_fmnist(&o);
}
