/* cmd_train.c — `inspectd train`: self-supervised pretraining (DINO, or the method of --method) on
 * the frames of the database or on a directory of images, with atomic .safetensors checkpoints
 * (every N steps, at the end, on Ctrl-C), --resume and warm starts from the database's active model
 * (train/start.h). */
#define LOG_TAG "train"
#include "array.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sysexits.h>

#include "checkpoint.h"
#include "cli/commands.h"
#include "imageset.h"
#include "parse.h"
#include "store/store.h"
#include "train.h"
#include "gemm.h"
#include "train_cli.h"
#include "train/register.h"
#include "train/start.h"
#include "store/scoring_store.h"
#include "scoring/model.h"

struct train_cmd {
    const char *images_dir, *out;
    const char *db, *camera, *since; /* frames from the database instead of a directory */
    const char *recipe;              /* --recipe as given (NULL: the database's only one) */
    char recipe_name[64];            /* with --db: the recipe trained, its frames and models */
    int64_t since_us;                /* 0: every frame */
    int every;
    long max_steps;
    bool resume;
    bool register_model;  /* --register: build the bank, calibrate, make it the db's model */
    const char *init;     /* --init FILE: start from these weights instead of a random init */
    const char *warm;     /* --warm FILE: continue that model (default: the --db's active one) */
    bool fresh;           /* --fresh: no warm start */
    const char *progress; /* --progress FILE: the run's progress as JSON, replaced every second */
    struct train_knobs k;
};

static volatile sig_atomic_t stop_requested;

/* The first Ctrl-C or SIGTERM asks for a stop at the end of the step (with a checkpoint); a second
 * one ends the process at once. */
static void on_signal(int sig)
{
    if (stop_requested) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: inspectd train (--images DIR | --db FILE) --out FILE.safetensors "
                 "[options]\n"
                 "  --images DIR        JPEG/PNG files to learn from (others are skipped)\n"
                 "  --db FILE           or the frames stored in inspectd's database, newest first\n"
                 "  --recipe NAME       the recipe's frames, its model to continue and to replace\n"
                 "                      (with --db; default: the database's only recipe)\n"
                 "  --camera NAME       only this camera's frames (with --db)\n"
                 "  --since WHEN        only frames captured since WHEN: RFC 3339, YYYY-MM-DD\n"
                 "                      [THH:MM[:SS]] (UTC) or an age such as 90m, 12h, 7d\n"
                 "                      (with --db)\n"
                 "  --out FILE          checkpoint to write (atomically) and to --resume from\n"
                 "  --resume            continue the run saved in --out\n"
                 "  --warm FILE         continue the model of FILE (a checkpoint of this\n"
                 "                      network: its weights, centre and optimiser state);\n"
                 "                      default with --db: the database's active model\n"
                 "  --fresh             no warm start: begin from --init or random\n"
                 "  --init FILE         start from the weights of FILE (a checkpoint's teacher,\n"
                 "                      or a plain export of the same model) instead of random,\n"
                 "                      when there is no warm start\n"
                 "  --register          then build the normal bank from the same frames,\n"
                 "                      calibrate the threshold and make the model the one\n"
                 "                      that scores the database's frames (with --db)\n"
                 "  --progress FILE     keep FILE replaced (about once a second) with the run's\n"
                 "                      progress as JSON: phase, step, total_steps, loss, eta_s\n"
                 "  --minutes M         time budget, above 0, at most 10000 (default: none)\n"
                 "  --epochs N          epochs, 1 to 100000 (default 100; with --minutes, an\n"
                 "                      upper bound)\n"
                 "  --max-steps N       stop after step N (of the model's steps, a warm start's\n"
                 "                      included), schedules unchanged (train in chunks)\n"
                 "  --every N           checkpoint every N steps (default 100)\n");
    struct train_knobs d;
    train_knobs_defaults(&d);
    train_cli_usage(TRAIN_CLI_TRAIN, &d, out);
    fprintf(out, "Ctrl-C (or SIGTERM) saves a checkpoint and exits after the current step; a\n"
                 "second one exits at once. With --minutes, a --resume gets what is left of\n"
                 "the run's budget. Where a run starts: resuming (--resume), else a warm\n"
                 "start from --warm's model when it is this network, else --init, else random.\n");
}

/* WHEN as Unix microseconds: an age "N{s,m,h,d}" before now, a time parse_time_us takes, or the
 * short UTC forms "YYYY-MM-DD" and "YYYY-MM-DDTHH:MM[:SS]". Returns 0 or -1. */
static int parse_since(const char *when, int64_t now, int64_t *out)
{
    int64_t age;
    if (parse_age_us(when, &age) == 0) {
        *out = now - age;
        return 0;
    }
    if (parse_time_us(when, out) == 0) return 0;
    struct tm tm = {0};
    const char *rest = strptime(when, "%Y-%m-%d", &tm);
    if (rest && *rest == 'T') {
        const char *t = strptime(rest + 1, "%H:%M", &tm);
        rest = t && *t == ':' ? strptime(t + 1, "%S", &tm) : t;
    }
    if (!rest || *rest) return -1;
    *out = (int64_t)timegm(&tm) * 1000000;
    return 0;
}

static int parse_args(int argc, char **argv, struct train_cmd *c)
{
    enum {
        O_IMAGES = 256,
        O_OUT,
        O_RESUME,
        O_REGISTER,
        O_INIT,
        O_MAXSTEPS,
        O_EVERY,
        O_DB,
        O_CAMERA,
        O_SINCE,
        O_PROGRESS,
        O_WARM,
        O_FRESH,
        O_RECIPE
    };
    static const struct option own[] = {{"images", 1, 0, O_IMAGES},
                                        {"out", 1, 0, O_OUT},
                                        {"resume", 0, 0, O_RESUME},
                                        {"register", 0, 0, O_REGISTER},
                                        {"init", 1, 0, O_INIT},
                                        {"max-steps", 1, 0, O_MAXSTEPS},
                                        {"every", 1, 0, O_EVERY},
                                        {"db", 1, 0, O_DB},
                                        {"camera", 1, 0, O_CAMERA},
                                        {"since", 1, 0, O_SINCE},
                                        {"progress", 1, 0, O_PROGRESS},
                                        {"warm", 1, 0, O_WARM},
                                        {"fresh", 0, 0, O_FRESH},
                                        {"recipe", 1, 0, O_RECIPE},
                                        {"help", 0, 0, 'h'}};
    enum { N_OWN = ARRAY_LEN(own) };
    struct option opts[N_OWN + TRAIN_CLI_MAX + 1];
    if (train_cli_options(TRAIN_CLI_TRAIN, own, N_OWN, opts, (int)ARRAY_LEN(opts))) return -1;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int shared = train_cli_apply("train", o, optarg, &c->k);
        if (shared <= 0) {
            if (shared < 0) return -1;
            continue;
        }
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
        case O_REGISTER:
            c->register_model = true;
            break;
        case O_INIT:
            c->init = optarg;
            break;
        case O_PROGRESS:
            c->progress = optarg;
            break;
        case O_WARM:
            c->warm = optarg;
            break;
        case O_FRESH:
            c->fresh = true;
            break;
        case O_MAXSTEPS:
            bad = parse_long(optarg, 1, LONG_MAX, &c->max_steps);
            break;
        case O_EVERY:
            bad = parse_int(optarg, 1, INT_MAX, &c->every);
            break;
        case O_DB:
            c->db = optarg;
            break;
        case O_CAMERA:
            c->camera = optarg;
            break;
        case O_RECIPE:
            c->recipe = optarg;
            break;
        case O_SINCE:
            c->since = optarg, bad = parse_since(optarg, clock_wall_us(), &c->since_us);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "inspectd train: bad value '%s' for --%s\n", optarg,
                    own[o - O_IMAGES].name);
            return -1;
        }
    }
    if (!c->images_dir == !c->db || !c->out || optind != argc) {
        fprintf(stderr, "inspectd train: --out FILE and one of --images DIR or --db FILE are "
                        "required\n");
        return -1;
    }
    if (c->register_model && !c->db) {
        fprintf(stderr, "inspectd train: --register makes the model the scoring model of --db\n");
        return -1;
    }
    if (c->fresh && (c->warm || c->resume)) {
        fprintf(stderr, "inspectd train: --fresh starts anew: not with --warm or --resume\n");
        return -1;
    }
    if (!c->db && (c->camera || c->since || c->recipe)) {
        fprintf(stderr, "inspectd train: --recipe, --camera and --since select frames of --db\n");
        return -1;
    }
    return 0;
}

/* With --db: the recipe trained (--recipe, or the database's only one). Returns 0 or -1 (logged).
 */
static int pick_recipe(struct train_cmd *c)
{
    char err[512], why[600];
    struct scoring_store *ss = scoring_store_open(c->db, err, sizeof err);
    if (!ss) {
        log_error("%s", err);
        return -1;
    }
    int rc = scoring_store_pick_recipe(ss, c->recipe, false, c->recipe_name, sizeof c->recipe_name,
                                       why, sizeof why);
    if (rc) log_error("%s: %s", c->db, rc < 0 ? scoring_store_errmsg(ss) : why);
    scoring_store_close(ss);
    return rc ? -1 : 0;
}

/* The training images, from the directory or the database (q, whose frames it records). Returns
 * 0 or -1 (logged). */
static int load_images(const struct train_cmd *c, struct train_frames *q, struct image_set *set)
{
    *q = (struct train_frames){.db = c->db,
                               .recipe = c->recipe_name,
                               .camera = c->camera,
                               .since_us = c->since_us,
                               .input = (enum model_input_mode)c->k.input,
                               .tile_overlap = c->k.tile_overlap,
                               .seed = c->k.t.seed};
    if (c->db) return train_load_frames(q, set);
    return image_set_add_dir(set, c->images_dir) < 0 ? -1 : 0;
}

static const char *source_name(const struct train_cmd *c, char *buf, size_t n)
{
    if (!c->db) return c->images_dir;
    snprintf(buf, n, "%s (recipe %s, camera %s, since %s)", c->db, c->recipe_name,
             c->camera ? c->camera : "any", c->since ? c->since : "the first frame");
    return buf;
}

static char *config_json(const struct train_cmd *c, const struct image_set *set)
{
    struct vit_config mc = train_model_config(&c->k.t);
    const struct vit_config *m = &mc;
    json_t *j =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "dim", m->dim, "depth",
                  m->depth, "heads", m->heads, "mlp_ratio", m->mlp_ratio, "patch", m->patch,
                  "img_size", m->img_size, "in_chans", m->in_chans, "head_hidden", m->head_hidden,
                  "head_bottleneck", m->head_bottleneck, "head_out", m->head_out);
    if (m->aux_classes > 0) json_object_set_new(j, "aux_classes", json_integer(m->aux_classes));
    if (m->defect_head) json_object_set_new(j, "defect_head", json_integer(m->defect_head));
    if (m->pred_hidden > 0) json_object_set_new(j, "predictor", json_integer(m->pred_hidden));
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
    double loss;            /* the last step's */
    bool reached_max_steps; /* stopped at --max-steps, as planned */
    struct train_cmd *c;
    struct dino_step *s;
    const struct image_set *set;
    const char *source;
    char *model_json;
    long total;
    double seconds_before; /* training time of the run before this --resume */
    double seconds;        /* training time of the run so far, the above included */
    bool budget_spent;     /* the resumed run had used its --minutes already */
    double last_log, last_progress;
    bool tty;
    enum train_start start;   /* where the run started (a resumed run: where it first did) */
    char warm_path[PATH_MAX]; /* the model a warm start continues */
};

/* Replaces c->progress with {phase, step, total_steps, epoch, loss, images_per_s, seconds, eta_s}
 * (write to a temporary file, then rename: a reader never sees half of it); step and total_steps
 * (the model's) are shown as this run's, a warm start's counted from its first step. Failures
 * are logged once: progress is for watching, never a reason to stop. */
static void write_progress(const struct train_cmd *c, const char *phase, long step, long total,
                           int epoch, double loss, double images_per_s, double seconds, double eta)
{
    static bool warned;
    if (!c->progress) return;
    step -= c->k.t.run_first;
    if (total > 0) total -= c->k.t.run_first;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->progress);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f,
                           "{\"phase\":\"%s\",\"step\":%ld,\"total_steps\":%ld,\"epoch\":%d,"
                           "\"loss\":%.6g,\"images_per_s\":%.3g,\"seconds\":%.1f,"
                           "\"eta_s\":%.0f,\"pid\":%d}\n",
                           phase, step, total, epoch, isfinite(loss) ? loss : 0.0, images_per_s,
                           seconds, eta, (int)getpid()) > 0;
    if (f) ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, c->progress) == 0;
    if (!ok && !warned) {
        log_warn("cannot write progress to %s: %s", c->progress, strerror(errno));
        warned = true;
    }
}

static int save(struct run *r)
{
    char total[32], images[32], err[512], train[256], seconds[32], run_first[32];
    snprintf(total, sizeof total, "%ld", r->total);
    snprintf(run_first, sizeof run_first, "%ld", r->c->k.t.run_first);
    snprintf(seconds, sizeof seconds, "%.3f", r->seconds);
    snprintf(images, sizeof images, "%d", r->set->n);
    snprintf(train, sizeof train,
             "{\"method\":\"%s\",\"batch\":%d,\"locals\":%d,\"lr\":%g,\"momentum\":%g,"
             "\"teacher_temp\":%g,\"koleo\":%g,\"seed\":%llu,\"epochs\":%d}",
             ssl_method_name(r->c->k.t.method), r->c->k.t.batch, r->c->k.t.n_local, r->c->k.t.lr,
             r->c->k.t.momentum_teacher, r->c->k.t.teacher_temp, r->c->k.t.koleo_weight,
             (unsigned long long)r->c->k.t.seed, r->c->k.t.epochs);
    const char *keys[] = {"format", "version", "model",     "train", "total_steps", "images",
                          "source", "seconds", "run_first", "start", "method"};
    const char *vals[] = {"inspectd-checkpoint",
                          "1",
                          r->model_json,
                          train,
                          total,
                          images,
                          r->source,
                          seconds,
                          run_first,
                          train_start_name(r->start),
                          ssl_method_name(r->c->k.t.method)};
    if (checkpoint_save_training(r->c->out, r->s, keys, vals, (int)ARRAY_LEN(keys), err,
                                 sizeof err)) {
        log_error("checkpoint not written: %s", err);
        return -1;
    }
    return 0;
}

static int on_progress(const struct train_progress *p, void *arg)
{
    struct run *r = arg;
    r->total = p->total_steps;
    r->loss = p->stats.loss;
    r->seconds = r->seconds_before + p->seconds;
    long done = p->step + 1;
    double steps_per_s = p->images_per_s / r->c->k.t.batch;
    double eta = p->total_steps && steps_per_s > 0 ? (p->total_steps - done) / steps_per_s : 0;
    /* what tells a healthy run: DINO's teacher entropy and KL, the others' embedding spread */
    char monitor[64];
    if (r->c->k.t.method == SSL_DINO)
        snprintf(monitor, sizeof monitor, "entropy %.3f kl %.3f", p->stats.teacher_entropy,
                 p->stats.teacher_kl);
    else
        snprintf(monitor, sizeof monitor, "embed_std %.4f%s", p->stats.embed_std,
                 p->collapsed ? " (collapsed)" : "");
    if (r->tty) {
        fprintf(stderr, "\repoch %d step %ld/%ld loss %.4f %s %.1f img/s ETA %.0f s   ", p->epoch,
                done, p->total_steps, p->stats.loss, monitor, p->images_per_s, eta);
    } else if (p->seconds - r->last_log >= 15.0 || done == 1) {
        r->last_log = p->seconds;
        log_info("epoch %d step %ld/%ld loss %.4f %s lr %.2e %.1f img/s ETA %.0f s", p->epoch, done,
                 p->total_steps, p->stats.loss, monitor, p->lr, p->images_per_s, eta);
    }
    if (p->seconds - r->last_progress >= 1.0 || done == 1 || done == p->total_steps) {
        r->last_progress = p->seconds;
        write_progress(r->c, "training", done, p->total_steps, p->epoch, p->stats.loss,
                       p->images_per_s, p->seconds, eta);
    }
    if (done % r->c->every == 0 && save(r)) return 1;
    r->reached_max_steps = r->c->max_steps > 0 && done >= r->c->max_steps;
    return stop_requested || r->reached_max_steps;
}

/* Student and teacher start from the weights in c->init: a training checkpoint's teacher, or a
 * plain state dict of the same model. Returns 0 or -1 (logged). */
static int init_weights(const struct train_cmd *c, struct dino_step *s)
{
    struct st_file f;
    char err[512], err2[512];
    if (st_load(c->init, &f, err, sizeof err)) {
        log_error("--init: %s", err);
        return -1;
    }
    int rc = checkpoint_load_model_tasks_optional(&s->student, &f, "teacher.", err, sizeof err);
    if (rc) rc = checkpoint_load_model_tasks_optional(&s->student, &f, "", err2, sizeof err2);
    st_free(&f);
    if (rc) {
        log_error("--init %s: not a checkpoint of this model (%s; as a plain export: %s)", c->init,
                  err, err2);
        return -1;
    }
    vit_copy_params(&s->teacher, &s->student);
    log_info("starting from the weights of %s", c->init);
    return 0;
}

/* Whether two model descriptions (config_json) name the same network, whatever their image
 * statistics. When they do, the run's statistics (saved's mean and std) replace the current
 * ones in *current and in the augmentation, so a resumed run normalises as it started. */
static bool same_model(const char *saved, char **current, struct augment_config *aug)
{
    json_t *a = json_loads(saved, 0, NULL), *b = json_loads(*current, 0, NULL);
    json_t *mean = json_incref(json_object_get(a, "mean")),
           *std = json_incref(json_object_get(a, "std"));
    json_object_del(a, "mean"), json_object_del(a, "std");
    json_object_del(b, "mean"), json_object_del(b, "std");
    bool same = a && b && json_equal(a, b) && json_is_array(mean) && json_is_array(std) &&
                json_array_size(mean) == json_array_size(std) && json_array_size(mean) <= 3;
    char *copy = same ? strdup(saved) : NULL;
    if (copy) {
        for (size_t i = 0; i < json_array_size(mean); i++) {
            aug->mean[i] = (float)json_number_value(json_array_get(mean, i));
            aug->std[i] = (float)json_number_value(json_array_get(std, i));
        }
        free(*current);
        *current = copy;
    }
    json_decref(a), json_decref(b), json_decref(mean), json_decref(std);
    return copy != NULL;
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
    const char *seconds = st_meta(&f, "seconds"), *run_first = st_meta(&f, "run_first");
    const char *start = st_meta(&f, "start");
    int rc = -1;
    if (!model || !same_model(model, &r->model_json, &r->c->k.t.aug))
        log_error("cannot resume %s: it holds another model (%s)", r->c->out,
                  model ? model : "no model metadata");
    else if (checkpoint_load_training(r->s, &f, err, sizeof err))
        log_error("cannot resume %s: %s", r->c->out, err);
    else {
        r->c->k.t.total_steps = r->total = total ? strtol(total, NULL, 10) : 0;
        r->seconds_before = r->seconds = seconds ? strtod(seconds, NULL) : 0;
        r->c->k.t.run_first = run_first ? strtol(run_first, NULL, 10) : 0;
        if (!start || train_start_parse(start, &r->start)) r->start = TRAIN_START_RANDOM;
        log_info("resuming %s at step %ld of %ld, after %.1f s of training", r->c->out,
                 r->s->student.adam_step, r->c->k.t.total_steps, r->seconds_before);
        /* --minutes is the run's budget: a resumed run gets what is left of it */
        if (r->c->k.t.minutes > 0) {
            r->c->k.t.minutes -= r->seconds_before / 60;
            r->budget_spent = r->c->k.t.minutes <= 0;
        }
        rc = 0;
    }
    st_free(&f);
    return rc;
}

/* The checkpoint of c->db's active model into path. Returns 1, 0 when there is no active model,
 * or -1 (logged). */
static int active_checkpoint(const struct train_cmd *c, char *path, size_t n)
{
    char err[512];
    struct scoring_store *ss = scoring_store_open(c->db, err, sizeof err);
    if (!ss) {
        log_error("%s", err);
        return -1;
    }
    struct model_row row;
    int have = scoring_store_active_model(ss, c->recipe_name, &row);
    if (have < 0)
        log_error("%s: %s", c->db, scoring_store_errmsg(ss));
    else if (have)
        snprintf(path, n, "%s", row.path);
    scoring_store_close(ss);
    return have;
}

/* Opens the model a warm start would continue (--warm FILE, or with --db the database's active
 * model) into *f when it is the network this run trains; its image statistics then replace the
 * run's, as a resumed run's do. Returns 1 (the caller frees f), 0 when there is none (a model of
 * another network is logged), or -1 when --warm cannot be read (logged). */
static int warm_candidate(struct run *r, struct st_file *f)
{
    const struct train_cmd *c = r->c;
    char err[512];
    if (c->fresh || (!c->warm && !c->db)) return 0;
    if (c->warm)
        snprintf(r->warm_path, sizeof r->warm_path, "%s", c->warm);
    else if (active_checkpoint(c, r->warm_path, sizeof r->warm_path) <= 0)
        return 0; /* no active model yet; a database error was logged and shows again */
    if (st_load(r->warm_path, f, err, sizeof err)) {
        if (c->warm) {
            log_error("--warm: %s", err);
            return -1;
        }
        log_warn("no warm start from the active model: %s", err);
        return 0;
    }
    const char *model = st_meta(f, "model");
    if (!model || !same_model(model, &r->model_json, &r->c->k.t.aug)) {
        log_info("no warm start: %s is another network (%s); this run starts anew", r->warm_path,
                 model ? model : "no model metadata");
        st_free(f);
        return 0;
    }
    return 1;
}

/* A warm start from f (warm_candidate's): its student, teacher, centre, optimiser state and step
 * count when it holds a training state, else its teacher's (or plain) weights alone. Returns 0,
 * or -1 (logged; s unchanged). */
static int warm_start(struct run *r, const struct st_file *f)
{
    char err[512], err2[512];
    struct dino_step *s = r->s;
    if (checkpoint_load_training(s, f, err, sizeof err) == 0) {
        train_warm_start(&r->c->k.t, s);
        log_info("warm start from %s: its weights, DINO centre and optimiser state, going on "
                 "from step %ld",
                 r->warm_path, s->student.adam_step);
        return 0;
    }
    int rc = checkpoint_load_model(&s->student, f, "teacher.", err2, sizeof err2);
    if (rc) rc = checkpoint_load_model(&s->student, f, "", err2, sizeof err2);
    if (rc) {
        log_warn("no warm start from %s: %s", r->warm_path, err2);
        return -1;
    }
    vit_copy_params(&s->teacher, &s->student);
    log_info("warm start from the weights of %s (%s: the centre and optimiser state start anew)",
             r->warm_path, err);
    return 0;
}

/* Whether f was trained with another method than m (a file without "method" is DINO's). */
static bool other_method(const struct st_file *f, enum ssl_method m)
{
    const char *name = st_meta(f, "method");
    return strcmp(name ? name : "dino", ssl_method_name(m)) != 0;
}

/* Whether the interrupted run in c->out trained with another method than this run's (then it is
 * not resumed: this run starts anew, logged). A file that cannot be read is left to restore(). */
static bool interrupted_other_method(const struct train_cmd *c)
{
    struct st_file f;
    char err[512];
    if (st_load(c->out, &f, err, sizeof err)) return false;
    bool other = other_method(&f, c->k.t.method);
    if (other)
        log_info("not resuming %s: it was trained with %s, this run with %s; it starts anew",
                 c->out, st_meta(&f, "method") ? st_meta(&f, "method") : "dino",
                 ssl_method_name(c->k.t.method));
    st_free(&f);
    return other;
}

/* Where the run starts (train/start.h), and its state from there. Returns 0, or -1 (logged). */
static int start_run(struct run *r, const struct image_set *set)
{
    struct train_cmd *c = r->c;
    struct st_file warm;
    bool resuming = c->resume && access(c->out, F_OK) == 0;
    int have_warm = resuming ? 0 : warm_candidate(r, &warm);
    if (have_warm < 0) return -1;
    struct train_start_facts facts = {.interrupted = resuming,
                                      .fresh = c->fresh,
                                      .active_same = have_warm == 1,
                                      .import = c->init != NULL};
    facts.interrupted_other_method = resuming && interrupted_other_method(c);
    facts.active_other_method = have_warm == 1 && other_method(&warm, c->k.t.method);
    if (facts.active_other_method)
        log_info("no warm start: %s was trained with %s, this run uses %s; it starts anew",
                 r->warm_path, st_meta(&warm, "method") ? st_meta(&warm, "method") : "dino",
                 ssl_method_name(c->k.t.method));
    r->start = train_start_choose(&facts);
    int rc = 0;
    if (have_warm == 1 && r->start != TRAIN_START_WARM) {
        /* warm_candidate took the model's image statistics: the run's own again */
        free(r->model_json);
        r->model_json = config_json(c, set);
        for (int i = 0; i < set->channels; i++)
            c->k.t.aug.mean[i] = (float)set->mean[i], c->k.t.aug.std[i] = (float)set->std[i];
        if (!r->model_json) rc = -1;
    }
    if (!rc && r->start == TRAIN_START_WARM && warm_start(r, &warm)) {
        /* the run's own image statistics again, then the next start in the order */
        free(r->model_json);
        r->model_json = config_json(c, set);
        for (int i = 0; i < set->channels; i++)
            c->k.t.aug.mean[i] = (float)set->mean[i], c->k.t.aug.std[i] = (float)set->std[i];
        facts.active_same = false;
        r->start = train_start_choose(&facts);
        if (!r->model_json) rc = -1;
    }
    if (have_warm == 1) st_free(&warm);
    if (!rc && r->start == TRAIN_START_RESUME) rc = restore(r);
    if (!rc && r->start == TRAIN_START_IMPORT) rc = init_weights(c, r->s);
    if (!rc && r->start == TRAIN_START_RANDOM) log_info("starting from random weights");
    return rc;
}

/* Builds the bank beside the checkpoint, calibrates and registers the model as the database's
 * active one (train/register.h). Returns 0 or -1 (logged). */
static int register_model(const struct run *r, const struct train_frames *q,
                          const struct image_set *set)
{
    const struct train_cmd *c = r->c;
    char ckpt[PATH_MAX], meta[256];
    if (!realpath(c->out, ckpt)) {
        log_error("%s: %s", c->out, strerror(errno));
        return -1;
    }
    snprintf(meta, sizeof meta,
             "\"steps\":%ld,\"run_steps\":%ld,\"start\":\"%s\",\"method\":\"%s\"",
             r->s->student.adam_step, r->s->student.adam_step - c->k.t.run_first,
             train_start_name(r->start), ssl_method_name(c->k.t.method));
    struct train_register a = {.db = c->db,
                               .recipe = c->recipe_name,
                               .ckpt = ckpt,
                               .threads = c->k.t.threads,
                               .readout = (enum model_readout)c->k.readout,
                               .aggregate = c->k.aggregate,
                               .input = (enum model_input_mode)c->k.input,
                               .tile_overlap = c->k.tile_overlap,
                               .frames = q,
                               .loss = r->loss,
                               .meta = meta};
    struct train_registered out;
    return train_register_model(&a, set, &out) == 0 ? 0 : -1;
}

int cmd_train(int argc, char **argv)
{
    struct train_cmd c = {.every = 100};
    train_knobs_defaults(&c.k);
    if (parse_args(argc, argv, &c)) {
        usage(stderr);
        return EX_USAGE;
    }
    if (c.k.input == MODEL_INPUT_TILES && !c.db) {
        fprintf(stderr, "inspectd train: --input tiles takes its frames from --db\n");
        return EX_USAGE;
    }
    if (train_cli_select_gemm("train", &c.k)) return EX_CONFIG;
    char engine[128];
    gemm_describe(engine, sizeof engine);
    log_info("gemm %s, precision %s", engine,
             gemm_precision_name((enum gemm_precision)c.k.precision));
    /* from here on a stop is remembered: the run gets to its first step (or resumes) and saves,
     * so that a run stopped while it loads its images still leaves something to resume */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (c.db && pick_recipe(&c)) return 1;
    c.k.t.model.img_size = c.k.size;
    c.k.t.model.in_chans = c.k.channels;
    train_set_size(&c.k.t, c.k.size);
    char source_buf[1024];
    const char *source = source_name(&c, source_buf, sizeof source_buf);
    struct image_set set = {.size = c.k.size, .channels = c.k.channels, .max = c.k.max_images};
    write_progress(&c, "loading", 0, 0, 0, 0, 0, 0, 0);
    struct train_frames q;
    if (load_images(&c, &q, &set)) {
        free(q.ids);
        image_set_free(&set);
        return 1;
    }
    if (set.n < 2) {
        log_error("%s: %d usable images; need at least 2", source, set.n);
        image_set_free(&set);
        free(q.ids);
        return 1;
    }
    image_set_stats(&set);
    if (c.k.t.batch > set.n) c.k.t.batch = set.n;
    for (int i = 0; i < c.k.channels; i++)
        c.k.t.aug.mean[i] = (float)set.mean[i], c.k.t.aug.std[i] = (float)set.std[i];
    log_info("%d images from %s at %dx%d, %d channel(s); method %s", set.n, source, c.k.size,
             c.k.size, c.k.channels, ssl_method_name(c.k.t.method));
    struct dino_step s;
    char err[512];
    int rc = train_make_step(&s, &c.k.t, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        image_set_free(&set);
        free(q.ids);
        return rc == -1 ? EX_CONFIG : 1;
    }
    struct run r = {.c = &c,
                    .s = &s,
                    .set = &set,
                    .source = source,
                    .model_json = config_json(&c, &set),
                    .tty = isatty(STDERR_FILENO)};
    if (!r.model_json || start_run(&r, &set)) {
        dino_step_destroy(&s);
        image_set_free(&set);
        free(r.model_json);
        free(q.ids);
        return 1;
    }
    if (r.budget_spent)
        log_info("the run had used its --minutes budget before it stopped: no more steps");
    else
        rc = train_run(&s, &c.k.t, set.pixels, set.n, c.k.size, c.k.size, on_progress, &r, err,
                       sizeof err);
    if (r.tty) fputc('\n', stderr);
    if (rc < 0) log_error("%s", err);
    int saved = save(&r);
    if (!saved) log_info("checkpoint %s at step %ld", c.out, s.student.adam_step);
    bool finished = rc == 0 || (rc == 1 && r.reached_max_steps && !stop_requested);
    if (!saved && finished && c.register_model) {
        write_progress(&c, "registering", s.student.adam_step, r.total, 0, r.loss, 0, 0, 0);
        if (register_model(&r, &q, &set)) saved = -1;
    }
    dino_step_destroy(&s);
    image_set_free(&set);
    free(r.model_json);
    free(q.ids);
    return rc < 0 || saved ? 1 : 0;
}
