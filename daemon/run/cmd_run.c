/* cmd_run.c — `inspectd run`: the daemon. Loads the config, opens the store, starts the pipeline
 * and the HTTP API, tells systemd it is ready, pings its watchdog while capture and scoring make
 * progress (watchdog.h), reloads the config on SIGHUP (reload.h), and on SIGTERM/SIGINT stops
 * capture, drains the queue, commits, closes the database and exits 0. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <sysexits.h>

#include "clock.h"
#include "gemm.h"
#include "app.h"
#include "cli/commands.h"
#include "base/config.h"
#include "http/http.h"
#include "capture/pipeline.h"
#include "reload.h"
#include "store/retention.h"
#include "store/store.h"
#include "base/version.h"
#include "watchdog.h"

#define LOG_TAG "main"
#include "log.h"

#define STATUS_EVERY_S 5

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd run [--config FILE]\n"
            "Captures frames from the configured cameras into SQLite and serves the HTTP API\n"
            "until SIGTERM or SIGINT (Ctrl-C), then drains the queue and exits 0.\n"
            "SIGHUP reads the config file again and applies what can change live.\n"
            "  --config FILE  INI configuration (default: the embedded one, which is\n"
            "                 systemd/inspectd.conf: a synthetic camera, ./var/inspectd.db,\n"
            "                 http://127.0.0.1:8080)\n"
            "Exit codes: 0 clean stop, 64 bad usage, 78 bad configuration, 1 start-up failed.\n");
}

/* Creates the directories above the database file (mkdir -p of its dirname). */
static int make_parent_dirs(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* stall: what the watchdog found stuck, "" when all is well. */
static void notify_status(struct pipeline *p, const char *stall)
{
    size_t streaming = 0, n = 0;
    uint64_t stored = 0, dropped = 0;
    struct pipeline_camera_status st;
    for (; pipeline_camera_status(p, n, &st); n++) {
        streaming += st.state == CAMERA_STREAMING;
        stored += st.stored;
        dropped += st.dropped;
    }
    sd_notifyf(0, "STATUS=%s%s%zu/%zu cameras streaming, %llu frames stored, %llu dropped", stall,
               stall[0] ? "; " : "", streaming, n, (unsigned long long)stored,
               (unsigned long long)dropped);
}

/* What the main thread runs between READY=1 and the stop. */
struct run_loop {
    struct app *app;
    struct config *cfg; /* in effect; a reload updates it */
    const char *config_path;
    struct http_server *http;
    struct watchdog watchdog;
    bool pinging; /* systemd asked for WATCHDOG=1 */
    bool stalled;
    char stall[300]; /* "watchdog: ..." while stalled */
};

static void reload(struct run_loop *l)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)clock_mono_us());
    struct reload_targets t = {l->app->pipeline, l->app->trainer, l->http, l->app->scorer};
    char summary[800];
    reload_config(l->cfg, l->config_path, &t, summary, sizeof summary);
    sd_notifyf(0, "READY=1\nSTATUS=%s", summary);
}

/* Pings systemd unless capture or scoring stalled; logs a stall once, and its end. */
static void watch(struct run_loop *l)
{
    struct watchdog_snapshot now;
    watchdog_snapshot_take(&now, l->app->pipeline, l->app->scorer, clock_mono_us());
    char why[256];
    enum watchdog_verdict v = watchdog_check(&l->watchdog, &now, why, sizeof why);
    if (v == WATCHDOG_STALLED && !l->stalled) {
        snprintf(l->stall, sizeof l->stall, "watchdog: %s", why);
        log_error("%s for %.0f s; %s", l->stall,
                  (double)(now.at_us - l->watchdog.last.at_us) * 1e-6,
                  l->pinging ? "no longer telling systemd that inspectd is alive"
                             : "(no systemd watchdog to stop)");
        notify_status(l->app->pipeline, l->stall);
    } else if (v != WATCHDOG_STALLED && l->stalled) {
        log_info("watchdog: capture and scoring make progress again");
        l->stall[0] = '\0';
    }
    l->stalled = v == WATCHDOG_STALLED;
    if (l->pinging && !l->stalled) sd_notify(0, "WATCHDOG=1");
}

/* Waits for SIGTERM/SIGINT (blocked in every thread, like SIGHUP), pinging the watchdog,
 * refreshing STATUS and reloading on SIGHUP meanwhile. Returns the stop signal. */
static int wait_for_stop(struct run_loop *l, const sigset_t *signals)
{
    uint64_t watchdog_us = 0;
    int tick_ms = 1000;
    l->pinging = sd_watchdog_enabled(0, &watchdog_us) > 0;
    if (l->pinging && watchdog_us / 2000 < (uint64_t)tick_ms) tick_ms = (int)(watchdog_us / 2000);
    struct watchdog_snapshot first;
    watchdog_snapshot_take(&first, l->app->pipeline, l->app->scorer, clock_mono_us());
    watchdog_init(&l->watchdog, watchdog_grace_us(watchdog_us, l->cfg->batch_ms), &first);
    int64_t last_status = 0;
    for (;;) {
        struct timespec ts = {.tv_sec = tick_ms / 1000, .tv_nsec = (tick_ms % 1000) * 1000000L};
        int sig = sigtimedwait(signals, NULL, &ts);
        if (sig == SIGHUP)
            reload(l);
        else if (sig > 0)
            return sig;
        watch(l);
        if (clock_wall_us() - last_status >= STATUS_EVERY_S * 1000000LL) {
            notify_status(l->app->pipeline, l->stall);
            last_status = clock_wall_us();
        }
    }
}

static void log_summary(struct pipeline *p)
{
    struct pipeline_camera_status st;
    for (size_t i = 0; pipeline_camera_status(p, i, &st); i++) {
        log_info("camera %s: %llu frames captured, %llu stored, %llu dropped, %llu failed", st.name,
                 (unsigned long long)st.captured, (unsigned long long)st.stored,
                 (unsigned long long)st.dropped, (unsigned long long)st.failed);
    }
}

/* ---- what the line's commands reach (MQTT, Modbus), while the line is open ---- */

static bool line_enter(struct app *app)
{
    pthread_mutex_lock(&app->line_lock);
    if (app->line_open) return true;
    pthread_mutex_unlock(&app->line_lock);
    return false;
}

static void line_leave(struct app *app)
{
    pthread_mutex_unlock(&app->line_lock);
}

/* Stopping: no command of the line reaches the pipeline, the scorer or the trainer after this
 * (one under way is waited for); the PLC keeps what it was told last. */
static void line_close(struct app *app)
{
    pthread_mutex_lock(&app->line_lock);
    app->line_open = false;
    pthread_mutex_unlock(&app->line_lock);
}

/* The pipeline drained: the PLC's Busy bit follows the frames it stored last. */
static void line_note_last_frame(struct app *app)
{
    if (!app->pipeline) return;
    struct pipeline_storage_status st;
    pipeline_storage_status(app->pipeline, &st);
    pthread_mutex_lock(&app->line_lock);
    app->plc_seen.last_frame_id = st.last_frame_id;
    pthread_mutex_unlock(&app->line_lock);
}

static int set_part(void *ctx, const char *camera, const char *part_id)
{
    struct app *app = ctx;
    if (!line_enter(app)) return -1;
    int rc = pipeline_set_part(app->pipeline, camera, part_id);
    line_leave(app);
    return rc;
}

static int switch_recipe_open(struct app *app, const char *camera, const char *recipe)
{
    if (!config_recipe_known(app->cfg, recipe)) return 2;
    char err[512];
    int rc = pipeline_switch_recipe(app->pipeline, camera, recipe, err, sizeof err);
    if (rc < 0) log_error("switching camera %s to recipe %s: %s", camera, recipe, err);
    return rc;
}

static int switch_recipe(void *ctx, const char *camera, const char *recipe)
{
    struct app *app = ctx;
    if (!line_enter(app)) return 1; /* stopping: the camera no longer runs */
    int rc = switch_recipe_open(app, camera, recipe);
    line_leave(app);
    return rc;
}

static int request_training(void *ctx, bool fresh)
{
    struct app *app = ctx;
    if (!line_enter(app)) return 1;
    int rc = trainer_request(app->trainer, fresh, NULL);
    line_leave(app);
    return rc;
}

static void plc_state(void *ctx, bool *learning, bool *fault, int64_t *last_frame_id)
{
    struct app *app = ctx;
    if (line_enter(app)) {
        struct scorer_status sc;
        scorer_get_status(app->scorer, &sc);
        app->plc_seen.learning = sc.state == SCORER_LEARNING;
        app->plc_seen.fault = sc.state == SCORER_ERROR;
        struct pipeline_camera_status cam;
        for (size_t i = 0; pipeline_camera_status(app->pipeline, i, &cam); i++)
            app->plc_seen.fault |= cam.state == CAMERA_ERROR;
        struct pipeline_storage_status st;
        pipeline_storage_status(app->pipeline, &st);
        app->plc_seen.last_frame_id = st.last_frame_id;
    } else {
        pthread_mutex_lock(&app->line_lock);
    }
    *learning = app->plc_seen.learning;
    *fault = app->plc_seen.fault;
    *last_frame_id = app->plc_seen.last_frame_id;
    line_leave(app);
}

/* The feed outlives the PLC (line_feed_free() comes after line_plc_stop()). */
static void plc_counts(void *ctx, uint64_t counts[RESULT_NVERDICTS])
{
    struct app *app = ctx;
    struct line_counts c = {0};
    if (app->feed) line_feed_totals(app->feed, &c);
    memcpy(counts, c.verdicts, sizeof c.verdicts);
}

static int recipe_number(void *ctx, const char *recipe)
{
    struct app *app = ctx;
    const struct config_recipe *r = config_recipe_find(app->cfg, recipe);
    return r ? r->number : -1;
}

static int select_recipe(void *ctx, const char *camera, int number)
{
    struct app *app = ctx;
    for (size_t i = 0; i < app->cfg->nrecipes; i++)
        if (app->cfg->recipes[i].number == number)
            return switch_recipe(ctx, camera, app->cfg->recipes[i].name) ? -1 : 0;
    return -1;
}

/* The Modbus server for the configured cameras. Returns 0, or -1 with the reason in err. */
static int start_plc(struct app *app, char *err, size_t errsz)
{
    const struct config *cfg = app->cfg;
    const char *names[CONFIG_MAX_CAMERAS];
    for (size_t i = 0; i < cfg->ncameras; i++) names[i] = cfg->cameras[i].name;
    struct line_plc_hooks hooks = {plc_state,     plc_counts,    set_part,
                                   recipe_number, select_recipe, app};
    app->plc = line_plc_start(&cfg->line.plc, names, (int)cfg->ncameras, &hooks, err, errsz);
    return app->plc ? 0 : -1;
}

/* The outputs to the line ([mqtt], [plc], [webhook.NAME]), the inspection window and the results
 * feed that serves them. Returns
 * 0, or -1 with the reason in err. */
static int start_line_outputs(struct app *app, char *err, size_t errsz)
{
    const struct config *cfg = app->cfg;
    struct line_output outputs[LINE_FEED_MAX_OUTPUTS];
    int n = 0;
    if (cfg->line.mqtt.host[0]) {
        struct line_mqtt_hooks hooks = {set_part, switch_recipe, request_training, app};
        if (!(app->mqtt =
                  line_mqtt_start(&cfg->line.mqtt, cfg->http_public_url, &hooks, err, errsz)))
            return -1;
        outputs[n++] = (struct line_output){line_mqtt_result, line_mqtt_event, app->mqtt};
    }
    if (cfg->line.plc.window_ms > 0 &&
        !(app->window = line_window_start(cfg->store_path, cfg->line.plc.window_ms, err, errsz)))
        return -1;
    if (cfg->line.plc.host[0]) {
        if (start_plc(app, err, errsz)) return -1;
        outputs[n++] = (struct line_output){line_plc_result, NULL, app->plc};
    }
    if (cfg->line.nwebhooks) {
        if (!(app->webhooks = line_webhooks_start(&cfg->line, cfg->store_path, err, errsz)))
            return -1;
        outputs[n++] =
            (struct line_output){line_webhooks_result, line_webhooks_event, app->webhooks};
    }
    return (app->feed = line_feed_start(cfg->store_path, outputs, n, err, errsz)) ? 0 : -1;
}

/* Scoring shares the cores with capture and training: one worker keeps a core for the rest. */
#define SCORER_THREADS 1

/* Opens everything in order; on failure closes what was opened. Returns 0 or 1. */
static int serve(struct config *cfg, const char *config_path, const sigset_t *signals)
{
    char err[512];
    struct app app = {.cfg = cfg, .started_us = clock_wall_us(), .line_open = true};
    pthread_mutex_init(&app.line_lock, NULL);
    struct store *store = NULL;
    struct http_server *http = NULL;
    int rc = 1;

    if (make_parent_dirs(cfg->store_path) < 0) {
        log_error("cannot create the directory of %s: %s", cfg->store_path, strerror(errno));
        return 1;
    }
    if (!(store = store_open(cfg->store_path, err, sizeof err)) &&
        retention_release_reserve_file(cfg->store_path)) /* a full disk: that makes room */
        store = store_open(cfg->store_path, err, sizeof err);
    if (!store) goto out;
    if (cfg->http_token_file[0] && make_parent_dirs(cfg->http_token_file) < 0) {
        snprintf(err, sizeof err, "cannot create the directory of %.300s: %s", cfg->http_token_file,
                 strerror(errno));
        goto out;
    }
    if (config_load_token(cfg, err, sizeof err)) goto out;
    log_info("database %s at schema version %d", cfg->store_path, store_schema_version(store));
    if (!(app.readers = store_pool_open(cfg->store_path, cfg->http_threads, err, sizeof err)))
        goto out;
    if (!(app.pipeline = pipeline_start(cfg, store, err, sizeof err))) goto out;
    if (!(app.scorer =
              scorer_start(cfg->store_path, SCORER_THREADS, pipeline_image_cache(app.pipeline),
                           cfg->max_score_lag_s, err, sizeof err)))
        goto out;
    scorer_configure(app.scorer, cfg);
    if (!(app.trainer = trainer_start(cfg, err, sizeof err))) goto out;
    if (start_line_outputs(&app, err, sizeof err)) goto out;
    struct http_options ho = {.host = cfg->http_host,
                              .port = cfg->http_port,
                              .token = cfg->http_token,
                              .max_connections = cfg->http_max_connections,
                              .timeout_s = cfg->http_timeout_s,
                              .max_upload = cfg->http_max_upload,
                              .tls_cert = cfg->http_tls_cert,
                              .tls_key = cfg->http_tls_key};
    if (!(http = http_start(&ho, &app, err, sizeof err))) goto out;

    sd_notifyf(0, "READY=1\nSTATUS=capturing from %zu camera(s)", cfg->ncameras);
    log_info("inspectd %s running (config %s)", INSPECTD_VERSION, cfg->path);
    char engine[128];
    struct gemm_info gi;
    gemm_get_info(&gi);
    gemm_describe(engine, sizeof engine);
    log_info("gemm %s, precision %s", engine, gemm_precision_name(gi.precision));
    struct run_loop loop = {.app = &app, .cfg = cfg, .config_path = config_path, .http = http};
    int sig = wait_for_stop(&loop, signals);
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining the queue");
    log_info("%s: stopping capture, draining the queue", strsignal(sig));
    rc = 0;
out:
    if (rc) log_error("%s", err);
    /* Nothing reached before the stop is lost: the line's commands are shut out first (their
     * threads would call into the pipeline, the scorer and the trainer), every writer of verdicts
     * stops, and only then does the feed hand its last verdicts and events to the line outputs,
     * which publish them (MQTT), show them (Modbus) or keep them in their outbox (webhooks). */
    line_close(&app);
    pipeline_stop(app.pipeline); /* capture stops, the writer drains and commits */
    line_note_last_frame(&app);
    http_stop(http);           /* no request can reach the pipeline or the store after this */
    trainer_stop(app.trainer); /* a running training child is stopped; its model is not used */
    scorer_stop(app.scorer);   /* after its last verdicts */
    line_window_stop(app.window);
    line_feed_stop(app.feed); /* hands on every verdict and event in the database */
    line_mqtt_stop(app.mqtt); /* publishes its outbox, then offline */
    line_plc_stop(app.plc);
    line_webhooks_stop(app.webhooks); /* what they were handed waits in their outbox */
    line_feed_free(app.feed);
    if (app.pipeline && rc == 0) log_summary(app.pipeline);
    pipeline_free(app.pipeline);
    store_pool_close(app.readers);
    store_close(store);
    pthread_mutex_destroy(&app.line_lock);
    if (rc == 0) log_info("database closed; stopped cleanly");
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *config_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
        else if (c == 'h')
            return usage(stdout), 0;
        else
            return usage(stderr), EX_USAGE;
    }
    if (optind != argc) return usage(stderr), EX_USAGE;

    struct config cfg;
    char err[600];
    if (config_load(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "inspectd: %s\n", err);
        return EX_CONFIG;
    }
    log_set_level(cfg.log_level);
    if (gemm_select((enum gemm_backend)cfg.trainer_knobs.gemm,
                    (enum gemm_precision)cfg.trainer_knobs.precision, err, sizeof err)) {
        fprintf(stderr, "inspectd: %s: [engine] %s\n", cfg.path, err);
        config_free(&cfg);
        return EX_CONFIG;
    }

    sigset_t signals; /* stop, and SIGHUP to reload */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    /* blocked since before the libraries' constructors started their threads (main.c); every
     * thread inherits the mask, so only wait_for_stop() takes these signals */
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Image buffers (a decoded 640x480 frame is 900 KiB) come and go all day: every block of
     * 128 KiB or more gets a mapping of its own, given back when freed. glibc would otherwise raise
     * that threshold after the first such free and keep them in its heaps, which fragment: the
     * daemon's memory crept up 15 % in seven minutes of `make soak`, and shrank with this. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);

    int rc = serve(&cfg, config_path, &signals);
    config_free(&cfg);
    return rc;
}
