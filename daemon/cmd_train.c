/* cmd_train.c — `inspectd train`: DINO pretraining on a directory of images, with atomic
 * .safetensors checkpoints (every N steps, at the end, on Ctrl-C) and --resume. */
#define LOG_TAG "train"
#include "log.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commands.h"
#include "imageset.h"
#include "train.h"

struct train_cmd {
    const char *images_dir, *out;
    int size, channels, every;
    long max_steps;
    bool resume;
    struct train_options t;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: inspectd train --images DIR --out FILE.safetensors [options]\n"
                 "  --images DIR        JPEG/PNG files to learn from (others are skipped)\n"
                 "  --out FILE          checkpoint to write (atomically) and to --resume from\n"
                 "  --resume            continue the run saved in --out\n"
                 "  --minutes M         time budget (default: none)\n"
                 "  --epochs N          epochs (default 100; with --minutes, an upper bound)\n"
                 "  --max-steps N       stop after step N, schedules unchanged (train in chunks)\n"
                 "  --every N           checkpoint every N steps (default 100)\n"
                 "  --size S            image size the model sees (default 64)\n"
                 "  --channels 1|3      grey or RGB input (default 3)\n"
                 "  --dim D --depth N --heads H --patch P --batch B --locals L --lr LR\n"
                 "  --momentum M --threads N --seed S\n"
                 "Ctrl-C saves a checkpoint and exits.\n");
}

static int parse_args(int argc, char **argv, struct train_cmd *c)
{
    enum {
        O_IMAGES = 256,
        O_OUT,
        O_RESUME,
        O_MINUTES,
        O_EPOCHS,
        O_MAXSTEPS,
        O_EVERY,
        O_SIZE,
        O_CHANNELS,
        O_DIM,
        O_DEPTH,
        O_HEADS,
        O_PATCH,
        O_BATCH,
        O_LOCALS,
        O_LR,
        O_MOMENTUM,
        O_THREADS,
        O_SEED
    };
    static const struct option opts[] = {{"images", 1, 0, O_IMAGES},
                                         {"out", 1, 0, O_OUT},
                                         {"resume", 0, 0, O_RESUME},
                                         {"minutes", 1, 0, O_MINUTES},
                                         {"epochs", 1, 0, O_EPOCHS},
                                         {"max-steps", 1, 0, O_MAXSTEPS},
                                         {"every", 1, 0, O_EVERY},
                                         {"size", 1, 0, O_SIZE},
                                         {"channels", 1, 0, O_CHANNELS},
                                         {"dim", 1, 0, O_DIM},
                                         {"depth", 1, 0, O_DEPTH},
                                         {"heads", 1, 0, O_HEADS},
                                         {"patch", 1, 0, O_PATCH},
                                         {"batch", 1, 0, O_BATCH},
                                         {"locals", 1, 0, O_LOCALS},
                                         {"lr", 1, 0, O_LR},
                                         {"momentum", 1, 0, O_MOMENTUM},
                                         {"threads", 1, 0, O_THREADS},
                                         {"seed", 1, 0, O_SEED},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct train_options *t = &c->t;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        double v = optarg ? strtod(optarg, &end) : 0;
        bool num_ok = optarg && *optarg && end && *end == '\0';
        bool bad = false;
        switch (o) {
        case O_IMAGES:
            c->images_dir = optarg;
            break;
        case O_OUT:
            c->out = optarg;
            break;
        case O_RESUME:
            c->resume = true;
            break;
        case O_MINUTES:
            bad = !num_ok || v <= 0, t->minutes = v;
            break;
        case O_EPOCHS:
            bad = !num_ok || v < 1, t->epochs = (int)v;
            break;
        case O_MAXSTEPS:
            bad = !num_ok || v < 1, c->max_steps = (long)v;
            break;
        case O_EVERY:
            bad = !num_ok || v < 1, c->every = (int)v;
            break;
        case O_SIZE:
            bad = !num_ok || v < 4 || v > 1024, c->size = (int)v;
            break;
        case O_CHANNELS:
            bad = !num_ok || (v != 1 && v != 3), c->channels = (int)v;
            break;
        case O_DIM:
            bad = !num_ok || v < 8, t->model.dim = (int)v;
            break;
        case O_DEPTH:
            bad = !num_ok || v < 1, t->model.depth = (int)v;
            break;
        case O_HEADS:
            bad = !num_ok || v < 1, t->model.heads = (int)v;
            break;
        case O_PATCH:
            bad = !num_ok || v < 1, t->model.patch = (int)v;
            break;
        case O_BATCH:
            bad = !num_ok || v < 2, t->batch = (int)v;
            break;
        case O_LOCALS:
            bad = !num_ok || v < 0 || v > 32, t->n_local = (int)v;
            break;
        case O_LR:
            bad = !num_ok || v <= 0, t->lr = (float)v;
            break;
        case O_MOMENTUM:
            bad = !num_ok || v <= 0 || v > 1, t->momentum_teacher = (float)v;
            break;
        case O_THREADS:
            bad = !num_ok || v < 1 || v > 64, t->threads = (int)v;
            break;
        case O_SEED:
            bad = !num_ok || v < 0, t->seed = (uint64_t)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "inspectd train: bad value '%s' for --%s\n", optarg,
                    opts[o - O_IMAGES].name);
            return -1;
        }
    }
    if (!c->images_dir || !c->out || optind != argc) {
        fprintf(stderr, "inspectd train: --images DIR and --out FILE are required\n");
        return -1;
    }
    return 0;
}

static char *config_json(const struct train_cmd *c, const struct image_set *set)
{
    const struct vit_config *m = &c->t.model;
    json_t *j =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "dim", m->dim, "depth",
                  m->depth, "heads", m->heads, "mlp_ratio", m->mlp_ratio, "patch", m->patch,
                  "img_size", m->img_size, "in_chans", m->in_chans, "head_hidden", m->head_hidden,
                  "head_bottleneck", m->head_bottleneck, "head_out", m->head_out);
    json_t *mean = json_array(), *std = json_array();
    for (int i = 0; i < set->channels; i++) {
        json_array_append_new(mean, json_real(set->mean[i]));
        json_array_append_new(std, json_real(set->std[i]));
    }
    json_object_set_new(j, "mean", mean);
    json_object_set_new(j, "std", std);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

struct run {
    struct train_cmd *c;
    struct dino_step *s;
    const struct image_set *set;
    char *model_json;
    long total;
    double last_log;
    bool tty;
};

static int save(struct run *r)
{
    char total[32], images[32], err[512], train[256];
    snprintf(total, sizeof total, "%ld", r->total);
    snprintf(images, sizeof images, "%d", r->set->n);
    snprintf(train, sizeof train,
             "{\"batch\":%d,\"locals\":%d,\"lr\":%g,\"momentum\":%g,\"seed\":%llu,\"epochs\":%d}",
             r->c->t.batch, r->c->t.n_local, r->c->t.lr, r->c->t.momentum_teacher,
             (unsigned long long)r->c->t.seed, r->c->t.epochs);
    const char *keys[] = {"format", "version", "model", "train", "total_steps", "images", "source"};
    const char *vals[] = {"inspectd-checkpoint", "1", r->model_json, train, total, images,
                          r->c->images_dir};
    if (checkpoint_save_training(r->c->out, r->s, keys, vals, 7, err, sizeof err)) {
        log_error("checkpoint not written: %s", err);
        return -1;
    }
    return 0;
}

static int on_progress(const struct train_progress *p, void *arg)
{
    struct run *r = arg;
    r->total = p->total_steps;
    long done = p->step + 1;
    double steps_per_s = p->images_per_s / r->c->t.batch;
    double eta = p->total_steps && steps_per_s > 0 ? (p->total_steps - done) / steps_per_s : 0;
    if (r->tty) {
        fprintf(stderr, "\repoch %d step %ld/%ld loss %.4f entropy %.3f %.1f img/s ETA %.0f s   ",
                p->epoch, done, p->total_steps, p->stats.loss, p->stats.teacher_entropy,
                p->images_per_s, eta);
    } else if (p->seconds - r->last_log >= 15.0 || done == 1) {
        r->last_log = p->seconds;
        log_info(
            "epoch %d step %ld/%ld loss %.4f entropy %.3f kl %.3f lr %.2e %.1f img/s ETA %.0f s",
            p->epoch, done, p->total_steps, p->stats.loss, p->stats.teacher_entropy,
            p->stats.teacher_kl, p->lr, p->images_per_s, eta);
    }
    if (done % r->c->every == 0 && save(r)) return 1;
    return stop_requested || (r->c->max_steps > 0 && done >= r->c->max_steps);
}

static int restore(struct run *r)
{
    struct st_file f;
    char err[512];
    if (st_load(r->c->out, &f, err, sizeof err)) {
        log_error("cannot resume: %s", err);
        return -1;
    }
    const char *model = st_meta(&f, "model"), *total = st_meta(&f, "total_steps");
    int rc = -1;
    if (!model || strcmp(model, r->model_json) != 0)
        log_error("cannot resume %s: it holds another model or image statistics (%s)", r->c->out,
                  model ? model : "no model metadata");
    else if (checkpoint_load_training(r->s, &f, err, sizeof err))
        log_error("cannot resume %s: %s", r->c->out, err);
    else {
        r->c->t.total_steps = total ? strtol(total, NULL, 10) : 0;
        log_info("resuming %s at step %ld of %ld", r->c->out, r->s->student.adam_step,
                 r->c->t.total_steps);
        rc = 0;
    }
    st_free(&f);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    struct train_cmd c = {.size = 64, .channels = 3, .every = 100};
    train_defaults(&c.t, 64, 3);
    if (parse_args(argc, argv, &c)) {
        usage(stderr);
        return 64;
    }
    c.t.model.img_size = c.size;
    c.t.model.in_chans = c.channels;
    int local = c.size * 3 / 7 / c.t.model.patch * c.t.model.patch;
    augment_defaults(&c.t.aug, c.size, local < c.t.model.patch ? c.t.model.patch : local);
    struct image_set set = {.size = c.size, .channels = c.channels};
    if (image_set_add_dir(&set, c.images_dir) < 0) return 1;
    if (set.n < 2) {
        log_error("%s: %d usable images; need at least 2", c.images_dir, set.n);
        image_set_free(&set);
        return 1;
    }
    image_set_stats(&set);
    if (c.t.batch > set.n) c.t.batch = set.n;
    for (int i = 0; i < c.channels; i++)
        c.t.aug.mean[i] = (float)set.mean[i], c.t.aug.std[i] = (float)set.std[i];
    log_info("%d images from %s at %dx%d, %d channel(s)", set.n, c.images_dir, c.size, c.size,
             c.channels);
    struct dino_step s;
    char err[512];
    int rc = train_make_step(&s, &c.t, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        image_set_free(&set);
        return rc == -1 ? 78 : 1;
    }
    struct run r = {.c = &c,
                    .s = &s,
                    .set = &set,
                    .model_json = config_json(&c, &set),
                    .tty = isatty(STDERR_FILENO)};
    if (!r.model_json || (c.resume && access(c.out, F_OK) == 0 && restore(&r))) {
        dino_step_destroy(&s);
        image_set_free(&set);
        free(r.model_json);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = train_run(&s, &c.t, set.pixels, set.n, c.size, c.size, on_progress, &r, err, sizeof err);
    if (r.tty) fputc('\n', stderr);
    if (rc < 0) log_error("%s", err);
    int saved = save(&r);
    if (!saved) log_info("checkpoint %s at step %ld", c.out, s.student.adam_step);
    dino_step_destroy(&s);
    image_set_free(&set);
    free(r.model_json);
    return rc < 0 || saved ? 1 : 0;
}
