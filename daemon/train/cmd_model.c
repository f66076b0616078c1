/* cmd_model.c — `inspectd model import FILE --db DB [--recipe NAME]`: an outside checkpoint (from
 * tools/torch/train.py, tools/torch/export_state_dict.py --model, or another daemon's `inspectd
 * train`) registered as a recipe's model without training: copied into the models directory beside
 * the database (models/imported/, which pruning never touches), its bank built from the recipe's
 * recent frames, calibrated, checked against the confirmed defects and made active, as `inspectd
 * train --register` does (train/register.h). POST /api/v1/models runs it as a child. Prints one
 * JSON line: the model registered.
 * `inspectd model tokens CKPT --out FILE IMAGE...`: the scoring readout's patch tokens of images
 * (the teacher's block the daemon banks, before any norm) with the normalised input they came
 * from, as .safetensors, for checking another runtime against inspectd
 * (tools/torch/export_onnx.py's ONNX graph in test_onnx.py). */
#define LOG_TAG "model"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/config.h"
#include "checkpoint.h"
#include "cli/commands.h"
#include "embedding.h"
#include "parse.h"
#include "safetensors.h"
#include "scoring/model.h"
#include "store/scoring_store.h"
#include "train/register.h"

/* Frames an import reads: enough for the bank (128) and the calibration (512). */
#define IMPORT_FRAMES 640

struct import_cmd {
    const char *file, *db, *recipe;
    int threads;
    bool move; /* rename FILE into place instead of copying it (an upload already beside it) */
    enum model_readout readout;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd model import FILE --db DB [--recipe NAME] [--threads N]\n"
            "                             [--readout patch|aligned|both]\n"
            "Registers the checkpoint FILE as the recipe's model without training: FILE is copied\n"
            "to DB's models directory (models/imported/), its bank built from the recipe's %d\n"
            "most recent frames (confirmed defects left out), its threshold calibrated on the\n"
            "held-out fifth, and it becomes active unless it misses the recipe's confirmed\n"
            "defects (then it is registered as rejected and the active model keeps scoring).\n"
            "FILE is a checkpoint of inspectd train or tools/torch/train.py, or a state dict\n"
            "written by tools/torch/export_state_dict.py --model (teacher.* tensors, \"model\"\n"
            "metadata). Prints the model as one JSON line.\n"
            "Exit codes: 0 active, 2 registered as rejected, 1 failed, 64 bad usage,\n"
            "65 FILE is not such a checkpoint.\n",
            IMPORT_FRAMES);
}

static int parse_args(int argc, char **argv, struct import_cmd *c)
{
    static const struct option opts[] = {{"db", 1, 0, 'd'},
                                         {"recipe", 1, 0, 'r'},
                                         {"threads", 1, 0, 't'},
                                         {"readout", 1, 0, 'o'},
                                         {"move", 0, 0, 'm'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'd')
            c->db = optarg;
        else if (ch == 'r')
            c->recipe = optarg;
        else if (ch == 'm')
            c->move = true;
        else if (ch == 't' && parse_int(optarg, 1, 64, &c->threads) == 0)
            continue;
        else if (ch == 'o' && model_readout_parse(optarg, &c->readout) == 0)
            continue;
        else if (ch == 'h') {
            usage(stdout);
            exit(0);
        } else {
            if (ch == 't' || ch == 'o')
                fprintf(stderr, "inspectd model: bad value '%s' for --%s\n", optarg,
                        ch == 't' ? "threads (1 to 64)" : "readout (patch, aligned or both)");
            return -1;
        }
    }
    if (optind + 1 != argc || !c->db) {
        fprintf(stderr, "inspectd model import: give FILE and --db DB\n");
        return -1;
    }
    if (c->recipe && !config_valid_name(c->recipe)) {
        fprintf(stderr, "inspectd model import: --recipe must be a recipe name\n");
        return -1;
    }
    c->file = argv[optind];
    return 0;
}

/* The model FILE holds: its config and input statistics, and its teacher's tensors. Returns 0,
 * or -1 (logged). */
static int check_checkpoint(const char *path, struct scoring_model *m, struct vit_config *cfg)
{
    struct st_file f;
    char err[512];
    if (st_load(path, &f, err, sizeof err)) {
        log_error("%s", err);
        return -1;
    }
    int rc = model_read_config(&f, path, m, cfg, err, sizeof err);
    if (rc) log_error("%s", err);
    st_free(&f);
    return rc;
}

/* Copies src to dst through a temporary file (fsync, rename). Returns 0 or -1 (logged). */
static int copy_file(const char *src, const char *dst)
{
    char tmp[PATH_MAX + 400];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", dst);
    int in = open(src, O_RDONLY), out = in >= 0 ? mkstemp(tmp) : -1;
    bool ok = in >= 0 && out >= 0;
    static char buf[1 << 16];
    ssize_t n = 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0) ok = write(out, buf, (size_t)n) == n;
    ok = ok && n == 0 && fchmod(out, 0640) == 0 && fsync(out) == 0;
    if (out >= 0) ok = close(out) == 0 && ok;
    if (in >= 0) close(in);
    ok = ok && rename(tmp, dst) == 0;
    if (!ok) {
        log_error("cannot copy %s to %s: %s", src, dst, strerror(errno));
        if (out >= 0) unlink(tmp);
    }
    return ok ? 0 : -1;
}

/* FILE in place under DB's models/imported/ as NAME (FILE's name, made unique). Returns 0 with
 * the path in out, or -1 (logged). */
static int place(const struct import_cmd *c, char *out, size_t n)
{
    char db[PATH_MAX], file[PATH_MAX], dir[PATH_MAX + 32];
    if (!realpath(c->db, db) || !realpath(c->file, file)) {
        log_error("%s: %s", realpath(c->db, db) ? c->file : c->db, strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/models", dirname(db));
    if ((mkdir(dir, 0750) && errno != EEXIST) ||
        (strcat(dir, "/imported"), mkdir(dir, 0750) && errno != EEXIST)) {
        log_error("cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char name[256];
    snprintf(name, sizeof name, "%s", basename(file));
    char *dot = strstr(name, ".safetensors");
    if (dot) *dot = '\0';
    for (int i = 1;; i++) {
        if (i == 1)
            snprintf(out, n, "%s/%.200s.safetensors", dir, name);
        else
            snprintf(out, n, "%s/%.200s-%d.safetensors", dir, name, i);
        if (access(out, F_OK) != 0) break;
        if (strcmp(out, file) == 0) return 0; /* already there */
    }
    if (c->move) {
        if (rename(file, out) == 0) return 0;
        log_error("cannot move %s to %s: %s", file, out, strerror(errno));
        return -1;
    }
    return copy_file(file, out);
}

static void print_result(const struct train_registered *r, const char *recipe, const char *path)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:f, s:i, s:i, s:i, s:s}", "id",
                          (json_int_t)r->id, "version", r->version, "recipe", recipe, "status",
                          r->active ? "active" : "rejected", "path", path, "threshold",
                          (double)r->res.threshold, "bank_rows", r->res.bank_rows, "bank_images",
                          r->res.bank_images, "calibration_images", r->res.calib_images, "readout",
                          model_readout_name(r->res.readout));
    if (j && !r->active) json_object_set_new(j, "rejected", json_string(r->why));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) printf("%s\n", s);
    free(s);
    json_decref(j);
}

static int import(struct import_cmd *c)
{
    struct scoring_model m = {0};
    struct vit_config cfg;
    if (check_checkpoint(c->file, &m, &cfg)) return EX_DATAERR;
    char err[512], why[600], recipe[64];
    struct scoring_store *ss = scoring_store_open(c->db, err, sizeof err);
    if (!ss) {
        log_error("%s", err);
        return 1;
    }
    int rc =
        scoring_store_pick_recipe(ss, c->recipe, false, recipe, sizeof recipe, why, sizeof why);
    if (rc) log_error("%s: %s", c->db, rc < 0 ? scoring_store_errmsg(ss) : why);
    scoring_store_close(ss);
    if (rc) return 1;
    struct image_set set = {.size = m.size, .channels = m.channels, .max = IMPORT_FRAMES};
    struct train_frames q = {.db = c->db, .recipe = recipe};
    char path[PATH_MAX + 300];
    int loaded = train_load_frames(&q, &set);
    free(q.ids); /* a fit model's bank comes from set */
    if (loaded || place(c, path, sizeof path)) {
        image_set_free(&set);
        return 1;
    }
    if (set.n < 2) {
        log_error("%s: recipe %s has %d usable frames; a bank needs at least 2", c->db, recipe,
                  set.n);
        image_set_free(&set);
        return 1;
    }
    log_info("%s: %s model (dim %d, depth %d, patch %d, %d px) on %d recent frames of recipe %s",
             path, c->move ? "uploaded" : "imported", cfg.dim, cfg.depth, cfg.patch, cfg.img_size,
             set.n, recipe);
    struct train_register a = {.db = c->db,
                               .recipe = recipe,
                               .ckpt = path,
                               .threads = c->threads,
                               .readout = c->readout,
                               .loss = NAN,
                               .meta = "\"start\":\"import\""};
    struct train_registered r;
    rc = train_register_model(&a, &set, &r);
    image_set_free(&set);
    if (rc >= 0) print_result(&r, recipe, path);
    return rc < 0 ? 1 : rc == 1 ? 2 : 0;
}

static void tokens_usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd model tokens CKPT --out FILE.safetensors [--layer L] IMAGE...\n"
            "Writes the patch tokens the daemon scores for each image: the images shrunk to the\n"
            "model's size, normalised by its mean and std (tensor \"input\", (N, C, S, S)), and\n"
            "the tokens of block L's output before any norm (default: the scoring block), class\n"
            "token left out (tensor \"tokens\", (N, gh*gw, D)).\n");
}

/* The teacher of ckpt into m (created here), with its config in m's scoring model. */
static int load_backbone(const char *ckpt, struct scoring_model *sm, struct vit_model *m)
{
    struct st_file f;
    struct vit_config cfg;
    char err[512];
    if (st_load(ckpt, &f, err, sizeof err)) {
        log_error("%s", err);
        return -1;
    }
    int rc = model_read_config(&f, ckpt, sm, &cfg, err, sizeof err);
    if (!rc && (rc = vit_create(m, &cfg, false, err, sizeof err)) == 0 &&
        (rc = checkpoint_load_model(m, &f, "teacher.", err, sizeof err)) != 0)
        vit_destroy(m);
    if (rc) log_error("%s: %s", ckpt, err);
    st_free(&f);
    return rc ? -1 : 0;
}

/* Writes input (n, C, S, S) and the patch rows of tok (n, T, D) to out. */
static int write_tokens(const char *out, const float *input, const float *tok, int n,
                        const struct vit_config *c, int layer, const char *ckpt)
{
    int T = (c->img_size / c->patch) * (c->img_size / c->patch) + 1, D = c->dim;
    float *patches = malloc(sizeof(float) * (size_t)n * (T - 1) * D);
    if (!patches) return -1;
    for (int i = 0; i < n; i++)
        memcpy(patches + (size_t)i * (T - 1) * D, tok + ((size_t)i * T + 1) * D,
               sizeof(float) * (size_t)(T - 1) * D);
    int ishape[4] = {n, c->in_chans, c->img_size, c->img_size}, tshape[3] = {n, T - 1, D};
    struct st_out t[] = {{"input", 4, ishape, input}, {"tokens", 3, tshape, patches}};
    char layer_text[16], err[512];
    snprintf(layer_text, sizeof layer_text, "%d", layer);
    const char *keys[] = {"format", "layer", "checkpoint"};
    const char *vals[] = {"inspectd-tokens", layer_text, ckpt};
    int rc = st_save(out, t, 2, keys, vals, 3, err, sizeof err);
    if (rc) log_error("%s", err);
    free(patches);
    return rc;
}

static int tokens(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", 1, 0, 'o'}, {"layer", 1, 0, 'l'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int layer = -1, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'o')
            out = optarg;
        else if (ch == 'l' && parse_int(optarg, 0, 64, &layer) == 0)
            continue;
        else if (ch == 'h')
            return tokens_usage(stdout), 0;
        else
            return tokens_usage(stderr), EX_USAGE;
    }
    if (!out || optind + 2 > argc) return tokens_usage(stderr), EX_USAGE;
    const char *ckpt = argv[optind];
    struct scoring_model sm = {0};
    struct vit_model m;
    if (load_backbone(ckpt, &sm, &m)) return EX_DATAERR;
    if (layer < 0) layer = model_scoring_layer(&m.cfg, -1);
    if (layer > m.cfg.depth) {
        fprintf(stderr, "inspectd model tokens: --layer must be 0 to %d\n", m.cfg.depth);
        vit_destroy(&m);
        return EX_USAGE;
    }
    struct image_set set = {.size = sm.size, .channels = sm.channels};
    int rc = 0;
    for (int i = optind + 1; i < argc && rc == 0; i++)
        if (image_set_add_file(&set, argv[i]) != 1) rc = -1;
    size_t plane = (size_t)sm.size * sm.size, img = plane * sm.channels;
    for (int i = 0; rc == 0 && i < set.n; i++)
        for (int c = 0; c < sm.channels; c++)
            for (size_t p = 0; p < plane; p++) {
                float *v = &set.pixels[(size_t)i * img + c * plane + p];
                *v = (*v - sm.mean[c]) / sm.std[c];
            }
    int T = embedding_layers_dim(&m.cfg, 1u << layer) / m.cfg.dim;
    float *tok = rc ? NULL : malloc(sizeof(float) * (size_t)set.n * T * m.cfg.dim);
    char err[512];
    if (rc == 0 && (!tok || embedding_extract_layers(&m, set.pixels, set.n, sm.size, sm.size,
                                                     1u << layer, 2, tok, err, sizeof err))) {
        log_error("%s", tok ? err : "out of memory");
        rc = -1;
    }
    if (rc == 0) rc = write_tokens(out, set.pixels, tok, set.n, &m.cfg, layer, ckpt);
    if (rc == 0)
        printf("%d images, layer %d: tokens (%d, %d, %d) -> %s\n", set.n, layer, set.n, T - 1,
               m.cfg.dim, out);
    free(tok);
    image_set_free(&set);
    vit_destroy(&m);
    return rc ? 1 : 0;
}

int cmd_model(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "tokens") == 0) return tokens(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "import") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            tokens_usage(stdout);
            return 0;
        }
        fprintf(stderr, "inspectd model: the commands are `inspectd model import FILE --db DB` "
                        "and `inspectd model tokens CKPT --out FILE IMAGE...`\n");
        return EX_USAGE;
    }
    struct import_cmd c = {.threads = 2, .readout = MODEL_READOUT_BOTH};
    if (parse_args(argc - 1, argv + 1, &c)) {
        usage(stderr);
        return EX_USAGE;
    }
    return import(&c);
}
