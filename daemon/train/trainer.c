/* trainer.c — the retraining policy thread and its `inspectd train` child. */
#define LOG_TAG "trainer"
#include "array.h"
#include "clock.h"
#include "log.h"

#include "trainer.h"
#include "base/metrics.h"
#include "scoring/model_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scoring/model.h"
#include "store/scoring_store.h"

#define POLICY_CHECK_S  5
#define LOCK_CHECK_MS   500 /* an earlier daemon's child holds the lock: look again this soon */
#define LOCK_NAME       ".training.lock"
#define RETRY_BACKOFF_S 600
#define STOP_GRACE_MS   5000 /* a stopping child saves its checkpoint within this, or is killed */
#define RECIPE_SEP      "@"  /* a checkpoint is RECIPE@STAMP.safetensors ('@' is in no name) */
#define MAX_RECIPES     64   /* recipes looked at (as many as the scorer scores) */

struct trainer {
    struct config cfg; /* a copy without the cameras: the store path as started and the [trainer]
                          keys, which trainer_set_policy() replaces (under lock) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    struct scoring_store *db;
    char models_dir[PATH_MAX];
    int64_t retry_after_us;
    char progress_path[PATH_MAX + 176]; /* the running child's --progress file */
    bool lock_busy;                     /* the last start found the lock held (logged once) */
    bool resuming;                      /* the running child resumes an interrupted run */
    bool requested_fresh;               /* the run asked for is to start fresh */
    char requested_recipe[64];      /* the recipe of the run asked for ("": the policy's pick) */
    char child_out[PATH_MAX + 160]; /* its checkpoint */
    char abandoned[PATH_MAX + 160]; /* a checkpoint that failed to resume: not tried again */
    struct trainer_status status;
};

extern char **environ;

/* Everything the child needs, prepared before fork: after fork only async-signal-safe calls. */
struct child_args {
    char out[PATH_MAX + 160];
    char progress[PATH_MAX + 176];
    char knob_text[2 * TRAIN_CLI_MAX][32]; /* "--NAME", "VALUE" of the recipe's knobs */
    char recipe[64];
    char blas_env[48];
    char *argv[16 + 2 * TRAIN_CLI_MAX];
    char **envp;
    bool resume;              /* --resume the run saved in out */
    bool fresh;               /* --fresh: no warm start from the active model */
    struct train_knobs knobs; /* the run's, its budget the first run's before a first model */
    int lock_fd;              /* held by the child for its whole life */
    pid_t parent;             /* the daemon */
};

static int prepare_child(struct child_args *a, const struct config *c,
                         const struct config_recipe *rs, uint64_t knobs_set)
{
    snprintf(a->blas_env, sizeof a->blas_env, "OPENBLAS_NUM_THREADS=%d", a->knobs.t.threads);
    char *const argv[] = {"inspectd",  "train",    "--db",       (char *)c->store_path,
                          "--out",     a->out,     "--register", "--progress",
                          a->progress, "--recipe", a->recipe};
    memcpy(a->argv, argv, sizeof argv);
    int n = (int)ARRAY_LEN(argv);
    if (a->resume) {
        a->argv[n++] = "--resume";
    } else {
        if (a->fresh) a->argv[n++] = "--fresh";
        if (rs->import[0]) {
            a->argv[n++] = "--init";
            a->argv[n++] = (char *)rs->import;
        }
    }
    if (train_cli_argv(&a->knobs, knobs_set, a->knob_text, a->argv, &n,
                       (int)ARRAY_LEN(a->argv) - 1))
        return -1;
    a->argv[n] = NULL;
    size_t nenv = 0;
    while (environ[nenv]) nenv++;
    a->envp = calloc(nenv + 2, sizeof *a->envp);
    if (!a->envp) return -1;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) != 0) a->envp[k++] = environ[i];
    a->envp[k] = a->blas_env;
    return 0;
}

/* In the child: no blocked signals (the daemon blocks its stop signals), SIGTERM when the daemon
 * dies (it saves its checkpoint and exits, so no orphan trains on), the lock kept across exec,
 * nice 19, exec. */
static void exec_child(const struct child_args *a)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != a->parent) _exit(0); /* the daemon died before the line above */
    fcntl(a->lock_fd, F_SETFD, 0);
    setpriority(PRIO_PROCESS, 0, 19);
    execve("/proc/self/exe", a->argv, a->envp);
    static const char msg[] = "inspectd trainer: cannot run /proc/self/exe\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The lock file that a training child holds while it runs, so that a restarted daemon never runs
 * a second one beside the child of its predecessor. Returns the locked fd (close-on-exec), or -1
 * when another process holds it (or it cannot be opened: logged). */
static int take_lock(struct trainer *t)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" LOCK_NAME, t->models_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("cannot open %s: %s; retraining postponed", path, strerror(errno));
        t->retry_after_us = clock_wall_us() + (int64_t)RETRY_BACKOFF_S * 1000000;
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        t->lock_busy = false;
        return fd;
    }
    if (!t->lock_busy)
        log_info("a training run of an earlier inspectd still holds %s: waiting for it to end",
                 path);
    t->lock_busy = true;
    close(fd);
    return -1;
}

/* Looks through the models directory (no child running: the lock is ours): removes what children
 * that were killed left behind (temporary checkpoint files, progress files), and finds the newest
 * checkpoint no model row names — a run interrupted before it registered — to resume. Returns
 * true with its path in out. */
static bool find_unfinished(struct trainer *t, const char *recipe, const char *import, char *out,
                            size_t outsz, bool *db_error)
{
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s" RECIPE_SEP, recipe);
    DIR *d = opendir(t->models_dir);
    if (!d) return false;
    struct stat imp;
    bool have_import = import && import[0] && stat(import, &imp) == 0;
    struct timespec best = {0, 0};
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[PATH_MAX + 256], real[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", t->models_dir, e->d_name);
        if (strstr(e->d_name, ".safetensors.tmp.") || has_suffix(e->d_name, ".progress")) {
            unlink(path);
            continue;
        }
        if (!has_suffix(e->d_name, ".safetensors") || has_suffix(e->d_name, ".bank.safetensors") ||
            strncmp(e->d_name, prefix, strlen(prefix)) != 0 || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode) || !realpath(path, real) || strcmp(real, t->abandoned) == 0 ||
            (have_import && st.st_dev == imp.st_dev && st.st_ino == imp.st_ino))
            continue;
        int named = scoring_store_has_checkpoint(t->db, real);
        if (named < 0) *db_error = true;
        if (named != 0) continue;
        if (!found || st.st_mtim.tv_sec > best.tv_sec ||
            (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec > best.tv_nsec)) {
            best = st.st_mtim;
            snprintf(out, outsz, "%s", real);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* The interrupted runs of the database's recipes other than `recipe` (at most max): each one's
 * checkpoint to resume (find_unfinished) into paths, spare pointing at them, so that pruning
 * before this run leaves them for that recipe's next one. Returns how many there are, or -1 when
 * the database cannot be read. */
static int others_unfinished(struct trainer *t, const struct config *cfg, const char *recipe,
                             char (*paths)[PATH_MAX], const char **spare, int max, bool *db_error)
{
    struct recipe_row rows[MAX_RECIPES];
    int nr = scoring_store_recipes(t->db, rows, MAX_RECIPES), n = 0;
    if (nr < 0) return *db_error = true, -1;
    for (int i = 0; i < nr && n < max; i++) {
        if (strcmp(rows[i].name, recipe) == 0) continue;
        struct config_recipe rs;
        config_recipe_settings(cfg, rows[i].name, &rs);
        if (find_unfinished(t, rows[i].name, rs.import, paths[n], PATH_MAX, db_error))
            spare[n] = paths[n], n++;
    }
    return n;
}

/* Starts a run of recipe (its settings rs; its new frames since its model `since`, with a model
 * when has_model): fresh, asked for, skips resuming and the warm start. Returns false to look
 * again soon (the lock is busy), true otherwise. */
static bool start_child(struct trainer *t, const struct config *cfg, const struct config_recipe *rs,
                        bool has_model, int64_t since, bool fresh)
{
    struct child_args a = {.parent = getpid(), .fresh = fresh, .knobs = rs->knobs};
    uint64_t knobs_set = rs->knobs_set;
    snprintf(a.recipe, sizeof a.recipe, "%s", rs->name);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    if (mkdir(t->models_dir, 0750) != 0 && errno != EEXIST) {
        log_error("cannot create %s: %s; retraining postponed", t->models_dir, strerror(errno));
        t->retry_after_us = clock_wall_us() + (int64_t)RETRY_BACKOFF_S * 1000000;
        return true;
    }
    if ((a.lock_fd = take_lock(t)) < 0) return !t->lock_busy;
    bool db_error = false;
    a.resume = find_unfinished(t, rs->name, rs->import, a.out, sizeof a.out, &db_error) && !fresh;
    if (!has_model) { /* a new recipe: the first model comes quickly, later runs get the budget */
        int minutes = train_cli_find_key("minutes");
        a.knobs.t.minutes = rs->first_minutes;
        knobs_set |= (uint64_t)1 << minutes;
    }
    int pruned = 0;
    int64_t pruned_bytes = 0;
    char perr[PATH_MAX + 128];
    const char *spare[2 + MAX_RECIPES] = {a.resume ? a.out : NULL, rs->import};
    char(*others)[PATH_MAX] = malloc(sizeof *others * MAX_RECIPES);
    int n_others =
        others ? others_unfinished(t, cfg, rs->name, others, spare + 2, MAX_RECIPES, &db_error) : 0;
    int nspare = 2 + (n_others > 0 ? n_others : 0);
    if (db_error || !others)
        log_warn("old model files not removed: %s",
                 others ? scoring_store_errmsg(t->db) : "out of memory");
    else if (model_files_prune(t->db, t->models_dir, cfg->trainer_keep_models, spare, nspare,
                               &pruned, &pruned_bytes, perr, sizeof perr))
        log_warn("old model files not removed: %s", perr);
    free(others);
    if (pruned)
        log_info("removed %d model file(s) no longer kept (%.1f MiB; keep_models = %d)", pruned,
                 (double)pruned_bytes / (1024.0 * 1024.0), cfg->trainer_keep_models);
    if (!a.resume)
        snprintf(a.out, sizeof a.out, "%s/%.63s" RECIPE_SEP "%.31s.safetensors", t->models_dir,
                 rs->name, stamp);
    snprintf(a.progress, sizeof a.progress, "%s.progress", a.out);
    if (prepare_child(&a, cfg, rs, knobs_set)) {
        log_error("out of memory starting training");
        close(a.lock_fd);
        return true;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) exec_child(&a);
    free(a.envp);
    close(a.lock_fd); /* the child's copy keeps the lock */
    if (pid < 0) {
        log_error("cannot start training: %s", strerror(errno));
        t->retry_after_us = clock_wall_us() + (int64_t)RETRY_BACKOFF_S * 1000000;
        return true;
    }
    if (a.resume)
        log_info("training of recipe %s resumed (pid %d, %g min): the interrupted run %s", rs->name,
                 (int)pid, a.knobs.t.minutes, a.out);
    else
        log_info("training of recipe %s started (pid %d, %g min, %lld new frames%s%s): %s",
                 rs->name, (int)pid, a.knobs.t.minutes, (long long)since,
                 has_model ? "" : ", its first model", fresh ? ", fresh as asked" : "", a.out);
    t->resuming = a.resume;
    snprintf(t->child_out, sizeof t->child_out, "%s", a.out);
    pthread_mutex_lock(&t->lock);
    snprintf(t->progress_path, sizeof t->progress_path, "%s", a.progress);
    snprintf(t->status.recipe, sizeof t->status.recipe, "%s", rs->name);
    t->status.running = true;
    t->status.requested = false;
    t->status.fresh = fresh;
    t->status.pid = pid;
    t->status.started_us = clock_wall_us();
    t->status.runs++;
    t->status.resumed += a.resume;
    pthread_mutex_unlock(&t->lock);
    return true;
}

/* Reaps the child if it ended. */
static void reap(struct trainer *t, bool wait, bool stopping)
{
    if (!t->status.running) return;
    int st;
    pid_t r = waitpid(t->status.pid, &st, wait ? 0 : WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    int code = r < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    pthread_mutex_lock(&t->lock);
    unlink(t->progress_path);
    t->progress_path[0] = '\0';
    t->status.running = false;
    t->status.pid = 0;
    t->status.last_exit = code;
    if (code != 0) t->status.failures++;
    pthread_mutex_unlock(&t->lock);
    if (code == 0 && !stopping) {
        log_info("training of recipe %s finished; its new model scores from now on",
                 t->status.recipe);
    } else if (stopping) {
        log_info("training stopped with the daemon (%s %d); an unregistered run is resumed by the "
                 "next one",
                 code < 0 ? "signal" : "exit code", code < 0 ? -code : code);
    } else if (t->resuming && code > 0) {
        log_warn("the interrupted run %s could not be resumed (exit code %d); the next run starts "
                 "afresh",
                 t->child_out, code);
        snprintf(t->abandoned, sizeof t->abandoned, "%s", t->child_out);
    } else {
        log_warn("training ended with %s %d; the model in use (if any) keeps scoring, next try "
                 "in %d s",
                 code < 0 ? "signal" : "exit code", code < 0 ? -code : code, RETRY_BACKOFF_S);
        t->retry_after_us = clock_wall_us() + (int64_t)RETRY_BACKOFF_S * 1000000;
    }
}

/* The recipe to train next: the one asked for (`asked`, "" for any), else, of those the policy
 * says are due (or of all when a run was asked for), the one with the most new frames since its
 * model. Fills rs, *has_model and *since. Returns true when there is one. */
static bool pick(struct trainer *t, const struct config *cfg, const char *asked, bool requested,
                 struct config_recipe *rs, bool *has_model, int64_t *since)
{
    struct recipe_row rows[MAX_RECIPES];
    int n = scoring_store_recipes(t->db, rows, MAX_RECIPES);
    if (n < 0) {
        log_error("%s", scoring_store_errmsg(t->db));
        return false;
    }
    int best = -1;
    int64_t best_since = -1, shown = 0;
    for (int i = 0; i < n; i++) {
        if (asked[0] && strcmp(rows[i].name, asked) != 0) continue;
        int64_t count = 0;
        if (scoring_store_frames_since_model(t->db, rows[i].id, &count)) {
            log_error("%s", scoring_store_errmsg(t->db));
            return false;
        }
        struct config_recipe r;
        config_recipe_settings(cfg, rows[i].name, &r);
        if (count > shown) shown = count;
        bool due = r.enabled && count >= (rows[i].has_model ? r.every : r.min_frames);
        if ((due || requested) && count > best_since) best = i, best_since = count;
    }
    pthread_mutex_lock(&t->lock);
    t->status.frames_since_model = shown;
    pthread_mutex_unlock(&t->lock);
    if (best < 0) {
        if (asked[0])
            log_warn("a run of recipe %s was asked for: the database has no such "
                     "recipe (no frames)",
                     asked);
        return false;
    }
    if (!requested && clock_wall_us() < t->retry_after_us) return false;
    config_recipe_settings(cfg, rows[best].name, rs);
    *has_model = rows[best].has_model;
    *since = best_since;
    return true;
}

static void *trainer_main(void *arg)
{
    struct trainer *t = arg;
    struct config cfg; /* this turn's policy */
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        pthread_mutex_unlock(&t->lock);
        reap(t, false, false);
        pthread_mutex_lock(&t->lock);
        bool requested = t->status.requested, fresh = requested && t->requested_fresh;
        char asked[64];
        snprintf(asked, sizeof asked, "%s", requested ? t->requested_recipe : "");
        memcpy(&cfg, &t->cfg, sizeof cfg);
        pthread_mutex_unlock(&t->lock);
        bool started = true;
        struct config_recipe rs;
        bool has_model = false;
        int64_t since = 0;
        if (!t->status.running && pick(t, &cfg, asked, requested, &rs, &has_model, &since))
            started = start_child(t, &cfg, &rs, has_model, since, fresh);
        else if (requested && !t->status.running) {
            pthread_mutex_lock(&t->lock);
            t->status.requested = false; /* nothing to train: the request is dropped */
            pthread_mutex_unlock(&t->lock);
        }
        pthread_mutex_lock(&t->lock);
        struct timespec until =
            clock_timespec(clock_wall_ns() +
                           (started ? POLICY_CHECK_S * 1000000000LL : LOCK_CHECK_MS * 1000000LL));
        if (!t->stop) pthread_cond_timedwait(&t->wake, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    if (t->status.running) {
        log_info("stopping the training child (pid %d)", (int)t->status.pid);
        kill(t->status.pid, SIGTERM);
        for (int i = 0; i < STOP_GRACE_MS / 50 && t->status.running; i++) {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
            reap(t, false, true);
        }
        if (t->status.running) {
            log_warn("the training child did not stop within %d ms: killing it", STOP_GRACE_MS);
            kill(t->status.pid, SIGKILL);
            reap(t, true, true);
        }
    }
    return NULL;
}

struct trainer *trainer_start(const struct config *cfg, char *err, size_t errsz)
{
    struct trainer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errsz, "out of memory for the trainer");
        return NULL;
    }
    memcpy(&t->cfg, cfg, sizeof t->cfg);
    memset(t->cfg.cameras, 0, sizeof t->cfg.cameras); /* their strings belong to cfg */
    t->cfg.ncameras = 0;
    t->status.enabled = cfg->trainer_enabled;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cfg->store_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    snprintf(t->models_dir, sizeof t->models_dir, "%.*s/models", PATH_MAX - 8, dir);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (!(t->db = scoring_store_open(cfg->store_path, err, errsz)) ||
        pthread_create(&t->thread, NULL, trainer_main, t) != 0) {
        if (t->db) snprintf(err, errsz, "cannot start the trainer thread");
        scoring_store_close(t->db);
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    return t;
}

void trainer_stop(struct trainer *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    scoring_store_close(t->db);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Reads the child's progress file into st (has_progress stays false when it is not there yet). */
static void read_progress(const char *path, struct trainer_status *st)
{
    json_error_t je;
    json_t *j = path[0] ? json_load_file(path, 0, &je) : NULL;
    const char *phase = NULL;
    json_int_t step = 0, total = 0;
    double loss = 0, eta = 0, ips = 0;
    if (j && json_unpack(j, "{s:s, s:I, s:I, s:F, s:F, s:F}", "phase", &phase, "step", &step,
                         "total_steps", &total, "loss", &loss, "eta_s", &eta, "images_per_s",
                         &ips) == 0) {
        st->has_progress = true;
        snprintf(st->phase, sizeof st->phase, "%s", phase);
        st->step = (long)step, st->total_steps = (long)total;
        st->loss = loss, st->eta_s = eta, st->images_per_s = ips;
    }
    json_decref(j);
}

void trainer_get_status(struct trainer *t, struct trainer_status *out)
{
    char path[sizeof t->progress_path];
    pthread_mutex_lock(&t->lock);
    *out = t->status;
    snprintf(path, sizeof path, "%s", t->status.running ? t->progress_path : "");
    pthread_mutex_unlock(&t->lock);
    read_progress(path, out);
}

int trainer_request(struct trainer *t, bool fresh, const char *recipe)
{
    pthread_mutex_lock(&t->lock);
    int busy = t->status.running;
    if (!busy) {
        t->status.requested = true;
        t->requested_fresh = fresh;
        snprintf(t->requested_recipe, sizeof t->requested_recipe, "%s", recipe ? recipe : "");
        pthread_cond_signal(&t->wake);
    }
    pthread_mutex_unlock(&t->lock);
    if (!busy)
        log_info("a%s training run%s%s was asked for over the API", fresh ? " fresh" : "",
                 recipe ? " of recipe " : "", recipe ? recipe : "");
    return busy;
}

void trainer_set_policy(struct trainer *t, const struct config *cfg)
{
    pthread_mutex_lock(&t->lock);
    config_copy_trainer(&t->cfg, cfg);
    t->status.enabled = cfg->trainer_enabled;
    pthread_cond_signal(&t->wake); /* look at the new policy now */
    pthread_mutex_unlock(&t->lock);
}

void trainer_write_metrics(FILE *out, struct trainer *t)
{
    struct trainer_status tr;
    trainer_get_status(t, &tr);
    metrics_write_one(out, "inspectd_training_running", "gauge", "1 while a training child runs.",
                      "%d", tr.running ? 1 : 0);
    if (tr.running && tr.has_progress) {
        metrics_write_one(out, "inspectd_training_progress_ratio", "gauge",
                          "Share of the running training's steps done.", "%.4f",
                          tr.total_steps > 0 ? (double)tr.step / tr.total_steps : 0.0);
        metrics_write_one(out, "inspectd_training_loss", "gauge",
                          "The running training's last loss.", "%g", tr.loss);
    }
    metrics_write_one(out, "inspectd_training_runs_total", "counter", "Training runs started.",
                      "%llu", (unsigned long long)tr.runs);
    metrics_write_one(out, "inspectd_training_failures_total", "counter",
                      "Training runs that failed or were killed (the old model kept scoring).",
                      "%llu", (unsigned long long)tr.failures);
}
