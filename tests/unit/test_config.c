/* test_config.c — the INI config: the embedded default, a file using every key, each kind of bad
 * file reported with its file:line, and `inspectd run` exiting 78 on a bad config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "base/config.h"
#include "gemm.h"
#include "image.h"

/* Parses text as "t.conf"; returns config_parse_string's result and leaves the message in err. */
static int parse(struct config *cfg, const char *text, char *err, size_t errsz)
{
    err[0] = '\0';
    return config_parse_string(cfg, text, "t.conf", err, errsz);
}

/* Asserts that text is refused with a message starting with `where` and containing `what`. */
static void assert_refused(const char *text, const char *where, const char *what)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, text, err, sizeof err), -1);
    if (strncmp(err, where, strlen(where)) != 0 || !strstr(err, what))
        fail_msg("expected '%s ... %s', got '%s'", where, what, err);
}

static void embedded_default_parses(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.http_host, "127.0.0.1");
    assert_int_equal(cfg.http_port, 8080);
    assert_string_equal(cfg.store_path, "./var/inspectd.db");
    assert_int_equal(cfg.ncameras, 1);
    assert_string_equal(cfg.cameras[0].name, "line1");
    assert_string_equal(cfg.cameras[0].driver, "synthetic");
    assert_int_equal(cfg.cameras[0].nparams, 1);
    assert_string_equal(cfg.cameras[0].params[0].key, "fps");
    assert_string_equal(cfg.cameras[0].params[0].value, "20");
    config_free(&cfg);
}

static const char *full = "; every key\n"
                          "[http]\n"
                          "listen = 0.0.0.0:9000\n"
                          "token = s3cret\n"
                          "threads = 2\n"
                          "max_connections = 5\n"
                          "timeout = 7\n"
                          "max_upload = 16\n"
                          "tls_cert = c.pem\n"
                          "tls_key = k.pem\n"
                          "[store]\n"
                          "path = /tmp/x.db\n"
                          "jpeg_quality = 75\n"
                          "batch_frames = 10\n"
                          "batch_ms = 0\n"
                          "[pipeline]\n"
                          "queue_size = 8\n"
                          "max_score_lag_s = 0\n"
                          "[log]\n"
                          "level = debug\n"
                          "[camera.left]\n"
                          "driver = synthetic   # inline comment\n"
                          "fps = 50\n"
                          "seed = 7\n"
                          "[camera.right-2]\n"
                          "driver = synthetic\n";

static void full_file_sets_every_field(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, full, err, sizeof err), 0);
    assert_string_equal(cfg.http_host, "0.0.0.0");
    assert_int_equal(cfg.http_port, 9000);
    assert_string_equal(cfg.http_token, "s3cret");
    assert_int_equal(cfg.http_threads, 2);
    assert_int_equal(cfg.http_max_connections, 5);
    assert_int_equal(cfg.http_timeout_s, 7);
    assert_int_equal(cfg.http_max_upload, 16 << 10);
    assert_string_equal(cfg.http_tls_cert, "c.pem");
    assert_string_equal(cfg.http_tls_key, "k.pem");
    assert_string_equal(cfg.store_path, "/tmp/x.db");
    assert_int_equal(cfg.jpeg_quality, 75);
    assert_int_equal(cfg.batch_frames, 10);
    assert_int_equal(cfg.batch_ms, 0);
    assert_int_equal(cfg.queue_size, 8);
    assert_int_equal(cfg.max_score_lag_s, 0);
    assert_int_equal(cfg.log_level, LOGL_DEBUG);
    assert_int_equal(cfg.ncameras, 2);
    assert_string_equal(cfg.cameras[0].driver, "synthetic");
    assert_int_equal(cfg.cameras[0].nparams, 2);
    assert_string_equal(cfg.cameras[0].params[1].key, "seed");
    assert_string_equal(cfg.cameras[0].params[1].value, "7");
    assert_string_equal(cfg.cameras[1].name, "right-2");
    config_free(&cfg);
}

static void ipv6_listen_parses(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(
        parse(&cfg, "[http]\nlisten = [::1]:0\n[camera.a]\ndriver = synthetic\n", err, sizeof err),
        0);
    assert_string_equal(cfg.http_host, "::1");
    assert_int_equal(cfg.http_port, 0);
    config_free(&cfg);
}

#define CAM "[camera.a]\ndriver = synthetic\n"

static void unknown_section_and_key(void **state)
{
    assert_refused(CAM "[htpp]\nlisten = 1\n", "t.conf:4:", "unknown section [htpp]");
    assert_refused("[http]\nlisten = 127.0.0.1:1\nport = 8\n" CAM,
                   "t.conf:3:", "unknown key 'port' in [http]");
    assert_refused("stray = 1\n" CAM, "t.conf:1:", "outside any [section]");
}

static void bad_values(void **state)
{
    assert_refused("[http]\n\n\nlisten = localhost:80\n" CAM, "t.conf:4:", "numeric");
    assert_refused("[http]\nlisten = 127.0.0.1:70000\n" CAM, "t.conf:2:", "port");
    assert_refused("[http]\nlisten = 127.0.0.1\n" CAM, "t.conf:2:", "ADDRESS:PORT");
    assert_refused("[store]\njpeg_quality = 101\n" CAM, "t.conf:2:", "jpeg_quality");
    assert_refused("[store]\nbatch_frames = 12abc\n" CAM, "t.conf:2:", "batch_frames");
    assert_refused("[store]\npath =\n" CAM, "t.conf:2:", "path");
    assert_refused("[pipeline]\nqueue_size = 0\n" CAM, "t.conf:2:", "queue_size");
    assert_refused("[pipeline]\nmax_score_lag_s = -1\n" CAM, "t.conf:2:", "max_score_lag_s");
    assert_refused("[trainer]\nkeep_models = 0\n" CAM, "t.conf:2:", "keep_models");
    assert_refused("[trainer]\nfirst_minutes = 0\n" CAM,
                   "t.conf:2:", "first_minutes must be a number above 0, at most 10000");
    assert_refused("[trainer]\ndim = 4\n" CAM, "t.conf:2:", "dim must be 8 to 4096");
    assert_refused("[trainer]\nbatch = 1\n" CAM, "t.conf:2:", "batch must be 2 to 4096");
    assert_refused("[trainer]\nlr = 0\n" CAM, "t.conf:2:", "lr must be above 0, at most 10");
    assert_refused("[trainer]\nenabled = maybe\n" CAM,
                   "t.conf:2:", "enabled must be true or false");
    assert_refused("[trainer]\npatch = 8\nsize = 60\n" CAM,
                   "t.conf:3:", "size 60 is not a multiple of patch 8");
    assert_refused("[pipeline]\nmax_score_lag_s = 1d\n" CAM, "t.conf:2:", "max_score_lag_s");
    assert_refused("[log]\nlevel = loud\n" CAM, "t.conf:2:", "level");
    assert_refused("[results]\nshifts = 6:00\n" CAM, "t.conf:2:", "HH:MM");
    assert_refused("[results]\nshifts = 06:00,24:00\n" CAM, "t.conf:2:", "HH:MM");
    assert_refused("[results]\nshifts = 14:00,06:00\n" CAM, "t.conf:2:", "ascending");
    assert_refused("[results]\nshift = 06:00\n" CAM, "t.conf:2:", "unknown key 'shift'");
}

/* [results] shifts: start times into minutes after midnight. */
static void result_shifts(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_int_equal(cfg.line.nshifts, 0);
    assert_int_equal(parse(&cfg, "[results]\nshifts = 06:00, 14:30 ,22:00\n" CAM, err, sizeof err),
                     0);
    assert_int_equal(cfg.line.nshifts, 3);
    assert_int_equal(cfg.line.shifts[0], 360);
    assert_int_equal(cfg.line.shifts[1], 870);
    assert_int_equal(cfg.line.shifts[2], 1320);
    config_free(&cfg);
}

/* [mqtt]: off by default, its defaults, and the keys that go together. */
static void mqtt_keys(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_string_equal(cfg.line.mqtt.host, "");
    assert_int_equal(cfg.line.mqtt.port, 1883);
    assert_string_equal(cfg.line.mqtt.topic_prefix, "inspectd");
    assert_int_equal(cfg.line.mqtt.qos_results, 0);
    assert_int_equal(cfg.line.mqtt.qos_alerts, 1);
    config_free(&cfg);
    assert_int_equal(parse(&cfg,
                           "[http]\npublic_url = https://line-pc:8080/\n[mqtt]\nhost = broker\n"
                           "port = 8883\ntopic_prefix = plant/a\nqos_results = 1\n" CAM,
                           err, sizeof err),
                     0);
    assert_string_equal(cfg.http_public_url, "https://line-pc:8080");
    assert_string_equal(cfg.line.mqtt.host, "broker");
    assert_int_equal(cfg.line.mqtt.port, 8883);
    assert_string_equal(cfg.line.mqtt.topic_prefix, "plant/a");
    config_free(&cfg);
    assert_refused("[mqtt]\nport = 0\n" CAM, "t.conf:2:", "port must be an integer");
    assert_refused("[mqtt]\nqos_alerts = 3\n" CAM, "t.conf:2:", "qos_alerts");
    assert_refused("[mqtt]\ntopic_prefix = a/+/b\n" CAM, "t.conf:2:", "wildcards");
    assert_refused("[mqtt]\ncert_file = /c.pem\n" CAM, "t.conf", "go together");
    assert_refused("[http]\npublic_url = line-pc\n" CAM, "t.conf:2:", "http://");
}

/* [plc]: off by default; beyond loopback only with allow_remote. */
static void plc_keys(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_string_equal(cfg.line.plc.host, "");
    assert_true(cfg.line.plc.writable);
    assert_int_equal(cfg.line.plc.window_ms, 0);
    config_free(&cfg);
    assert_int_equal(parse(&cfg,
                           "[plc]\nlisten = [::1]:1502\nwritable = false\nwindow_ms = 250\n" CAM,
                           err, sizeof err),
                     0);
    assert_string_equal(cfg.line.plc.host, "::1");
    assert_int_equal(cfg.line.plc.port, 1502);
    assert_false(cfg.line.plc.writable);
    assert_int_equal(cfg.line.plc.window_ms, 250);
    config_free(&cfg);
    assert_int_equal(
        parse(&cfg, "[plc]\nlisten = 0.0.0.0:1502\nallow_remote = true\n" CAM, err, sizeof err), 0);
    config_free(&cfg);
    assert_refused("[plc]\nlisten = 0.0.0.0:1502\n" CAM, "t.conf", "allow_remote");
    assert_refused("[plc]\nlisten = 127.0.0.1:0\n" CAM, "t.conf:2:", "port");
    assert_refused("[plc]\nlisten = plc:1502\n" CAM, "t.conf:2:", "numeric");
    assert_refused("[plc]\nwindow_ms = 1h\n" CAM, "t.conf:2:", "window_ms");
}

/* Defaults of the keys that bound what an unattended daemon keeps, and a file that sets them. */
static void unattended_defaults_and_values(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_int_equal(cfg.trainer_keep_models, 3);
    assert_int_equal(cfg.max_score_lag_s, 60);
    assert_int_equal(cfg.trainer_min_frames, 100); /* a new line's first model comes quickly */
    assert_true(cfg.trainer_first_minutes == 0.5);
    assert_int_equal(parse(&cfg,
                           "[trainer]\nkeep_models = 1000\nfirst_minutes = 10000\n"
                           "[pipeline]\nmax_score_lag_s = 86400\n" CAM,
                           err, sizeof err),
                     0);
    assert_true(cfg.trainer_first_minutes == 10000);
    assert_int_equal(cfg.trainer_keep_models, 1000);
    assert_int_equal(cfg.max_score_lag_s, 86400);
}

/* Recipes: a camera's recipe is its own name unless it says; [recipe.NAME] keys fall back to
 * [trainer]'s wherever that section is in the file; a recipe without a section has [trainer]'s;
 * `recipe` is the daemon's key, never a driver parameter; bad names and values are refused at
 * their line. */
static void recipes(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg,
                           "[recipe.plate]\nnumber = 7\nminutes = 3\nfalse_alarm_rate = 0.02\n"
                           "[trainer]\nevery_frames = 400\ndim = 32\nthreshold = 2.5\n"
                           "[camera.top]\ndriver = synthetic\nrecipe = plate\nfps = 5\n"
                           "[camera.side]\ndriver = synthetic\n",
                           err, sizeof err),
                     0);
    assert_string_equal(cfg.cameras[0].recipe, "plate");
    assert_string_equal(cfg.cameras[1].recipe, "side");
    assert_int_equal(cfg.cameras[0].nparams, 1); /* fps: recipe is not the driver's */
    assert_int_equal(cfg.nrecipes, 1);
    struct config_recipe r;
    config_recipe_settings(&cfg, "plate", &r);
    assert_int_equal(r.number, 7);
    assert_true(r.knobs.t.minutes == 3);
    assert_int_equal(r.every, 400); /* from [trainer], below the section */
    assert_int_equal(r.knobs.t.model.dim, 32);
    assert_true(r.false_alarm_rate == 0.02 && r.threshold == 2.5);
    config_recipe_settings(&cfg, "side", &r);
    assert_int_equal(r.number, -1);
    assert_true(r.knobs.t.minutes == 10 && r.every == 400 && r.false_alarm_rate == 0.005);
    assert_true(config_recipe_known(&cfg, "plate") && config_recipe_known(&cfg, "side"));
    assert_false(config_recipe_known(&cfg, "top"));
    config_free(&cfg);
    assert_refused("[recipe.a b]\nnumber = 1\n" CAM, "t.conf:2:", "recipe name 'a b'");
    assert_refused("[recipe.x]\nnumber = -1\n" CAM, "t.conf:2:", "number must be");
    assert_refused("[recipe.x]\n\nkeep_models = 2\n" CAM,
                   "t.conf:3:", "unknown key 'keep_models' in [recipe.x]");
    assert_refused("[recipe.x]\nfalse_alarm_rate = 1\n" CAM, "t.conf:2:", "false_alarm_rate");
    assert_refused("[recipe.x]\nthreshold = -3\n" CAM, "t.conf:2:", "threshold must be");
    assert_refused("[recipe.x]\npatch = 8\nsize = 60\n" CAM,
                   "t.conf:3:", "[recipe.x] size 60 is not a multiple of patch 8");
    assert_refused(CAM "recipe = ../x\n", "t.conf:3:", "recipe '../x'");
}

/* Regions: roi and mask are the daemon's keys (never driver parameters), normalised and checked
 * when the file loads: a bad roi, a missing or undecodable mask is refused with the line. */
static void regions(void **state)
{
    char dir[] = "/tmp/inspectd-config-XXXXXX", png[64], bad[64], text[512], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(png, sizeof png, "%s/m.png", dir);
    snprintf(bad, sizeof bad, "%s/bad.png", dir);
    struct image im;
    uint8_t *bytes;
    size_t len;
    assert_int_equal(image_alloc(&im, 4, 2, 1), 0);
    memset(im.data, 255, 8);
    assert_int_equal(image_encode_png(&im, &bytes, &len, err, sizeof err), 0);
    FILE *f = fopen(png, "wb");
    assert_true(f && fwrite(bytes, 1, len, f) == len && fclose(f) == 0);
    f = fopen(bad, "w");
    assert_true(f && fputs("no image", f) >= 0 && fclose(f) == 0);
    free(bytes);
    image_free(&im);
    struct config cfg;
    snprintf(text, sizeof text, CAM "roi = 1, 2,30,40\nmask = %s\nfps = 5\n", png);
    assert_int_equal(config_parse_string(&cfg, text, "t.conf", err, sizeof err), 0);
    assert_string_equal(cfg.cameras[0].roi, "1,2,30,40");
    assert_string_equal(cfg.cameras[0].mask, png);
    assert_int_equal(cfg.cameras[0].nparams, 1); /* fps only */
    struct region r;
    assert_int_equal(config_camera_region(&cfg.cameras[0], &r, &bytes, &len, err, sizeof err), 0);
    assert_true(r.x == 1 && r.w == 30 && r.mask.width == 4 && r.mask.height == 2 && len > 0);
    region_free(&r);
    free(bytes);
    config_free(&cfg);
    assert_refused(CAM "roi = 1,2,3\n", "t.conf:3:", "roi must be x,y,w,h");
    assert_refused(CAM "roi = 0,0,0,4\n", "t.conf:3:", "roi must be x,y,w,h");
    snprintf(text, sizeof text, CAM "mask = %s/none.png\n", dir);
    assert_refused(text, "t.conf:3:", "none.png: No such file or directory");
    snprintf(text, sizeof text, CAM "mask = %s\n", bad);
    assert_refused(text, "t.conf:3:", "bad.png: ");
    assert_refused(CAM "mask = /dev/null\n", "t.conf:3:", "not a regular file");
    remove(png), remove(bad), rmdir(dir);
}

/* [trainer] takes every training knob of `inspectd train` under its config key, and the one
 * boolean vocabulary. */
static void trainer_knobs(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_true(cfg.trainer_knobs.t.minutes == 10);
    assert_int_equal(cfg.trainer_knobs.max_images, 2000);
    assert_int_equal(cfg.trainer_knobs.t.threads, 1);
    uint64_t defaults = cfg.trainer_knobs_set;
    assert_int_equal(parse(&cfg,
                           "[trainer]\nenabled = off\nlr = 2e-4\nteacher_temp = 0.05\nlocals = 2\n"
                           "seed = 7\n" CAM,
                           err, sizeof err),
                     0);
    assert_int_equal(cfg.trainer_enabled, 0);
    assert_true(cfg.trainer_knobs.t.lr == 2e-4f);
    assert_true(cfg.trainer_knobs.t.teacher_temp == 0.05f);
    assert_int_equal(cfg.trainer_knobs.t.n_local, 2);
    assert_true(cfg.trainer_knobs.t.seed == 7);
    assert_true((cfg.trainer_knobs_set & defaults) == defaults);
    assert_int_equal(__builtin_popcountll(cfg.trainer_knobs_set & ~defaults), 4);
    config_free(&cfg);
}

/* [engine] gemm and precision: validated, kept as training knobs (so the child gets them), and
 * not [trainer] keys. */
static void engine_keys(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_int_equal(cfg.trainer_knobs.gemm, GEMM_AUTO);
    assert_int_equal(cfg.trainer_knobs.precision, GEMM_F32);
    uint64_t defaults = cfg.trainer_knobs_set;
    config_free(&cfg);
    assert_int_equal(
        parse(&cfg, "[engine]\ngemm = openblas\nprecision = bf16\n" CAM, err, sizeof err), 0);
    assert_int_equal(cfg.trainer_knobs.gemm, GEMM_OPENBLAS);
    assert_int_equal(cfg.trainer_knobs.precision, GEMM_BF16);
    assert_int_equal(__builtin_popcountll(cfg.trainer_knobs_set & ~defaults), 2);
    config_free(&cfg);
    assert_refused("[engine]\ngemm = mkl\n" CAM,
                   "t.conf:2:", "gemm must be auto, onednn or openblas");
    assert_refused("[engine]\nprecision = fp16\n" CAM,
                   "t.conf:2:", "precision must be f32 or bf16");
    assert_refused("[engine]\nthreads = 2\n" CAM, "t.conf:2:", "unknown key 'threads' in [engine]");
    assert_refused("[trainer]\ngemm = onednn\n" CAM,
                   "t.conf:2:", "unknown key 'gemm' in [trainer]");
}

static void duplicate_key(void **state)
{
    assert_refused(CAM "fps = 10\nfps = 20\n", "t.conf:4:", "duplicate key 'fps'");
}

static void syntax_error(void **state)
{
    assert_refused(CAM "this line has no equals sign\n", "t.conf:3:", "syntax error");
    assert_refused(CAM "[camera.b\n", "t.conf:3:", "syntax error");
}

static void camera_problems(void **state)
{
    assert_refused("[http]\nthreads = 2\n\n[camera.a]\nfps = 10\n",
                   "t.conf:4:", "[camera.a] has no driver");
    assert_refused("[camera.a]\nfps = 10\ndriver = webcam\n",
                   "t.conf:3:", "unknown driver 'webcam'");
    assert_refused(CAM "fps = fast\n", "t.conf:3:", "[camera.a] fps");
    assert_refused(CAM "colour = red\n", "t.conf:3:", "colour");
    assert_refused("[camera.bad name]\ndriver = synthetic\n", "t.conf:2:", "camera name");
    assert_refused("[http]\nthreads = 2\n", "t.conf:", "no [camera.NAME] section");
}

static void public_listen_needs_token(void **state)
{
    assert_refused("[http]\nlisten = 0.0.0.0:8080\n" CAM, "t.conf:2:", "token");
    assert_refused("[http]\ntoken = abc\ntoken_file = /tmp/t\n" CAM, "t.conf", "one of them");
    assert_refused("[http]\ntls_cert = c.pem\n" CAM, "t.conf", "go together");
    assert_refused("[http]\nmax_upload = 0\n" CAM, "t.conf:2:", "max_upload");
    assert_refused("[http]\ntimeout = 0\n" CAM, "t.conf:2:", "timeout");
    struct config cfg;
    char err[512];
    assert_int_equal(
        parse(&cfg, "[http]\nlisten = 0.0.0.0:8080\ntoken_file = t\n" CAM, err, sizeof err), 0);
    config_free(&cfg);
}

/* token_file: created with a random token (mode 0600) when missing, read back the same after. */
static void token_file_created_then_read(void **state)
{
    char dir[] = "/tmp/inspectd-token-XXXXXX", path[64], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/token", dir);
    struct config a = {0}, b = {0};
    snprintf(a.http_token_file, sizeof a.http_token_file, "%s", path);
    snprintf(b.http_token_file, sizeof b.http_token_file, "%s", path);
    assert_int_equal(config_load_token(&a, err, sizeof err), 0);
    assert_int_equal(strlen(a.http_token), 48);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(config_load_token(&b, err, sizeof err), 0);
    assert_string_equal(a.http_token, b.http_token);
    FILE *f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    struct config c = {0};
    snprintf(c.http_token_file, sizeof c.http_token_file, "%s", path);
    assert_int_equal(config_load_token(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "16 to 255 characters"));
    unlink(path);
    rmdir(dir);
}

static void missing_file(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(config_load(&cfg, "/nonexistent/inspectd.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/inspectd.conf: cannot open"));
}

static void file_errors_name_the_file(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = CAM "\n[store]\njpeg_quality = high\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config cfg;
    char err[512], want[600];
    assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:5: jpeg_quality", path);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    unlink(path);
}

/* `inspectd run` stops before opening anything: exit code 78 (EX_CONFIG) or 64 (usage). */
static void run_exits_78_on_bad_config(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[http]\nlisten = nowhere\n" CAM;
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *bad[] = {"run", "--config", path, NULL};
    assert_int_equal(cmd_run(3, bad), EX_CONFIG);
    unlink(path);
    char *missing[] = {"run", "--config", "/nonexistent/x.conf", NULL};
    assert_int_equal(cmd_run(3, missing), EX_CONFIG);
    char *usage[] = {"run", "--frobnicate", NULL};
    assert_int_equal(cmd_run(2, usage), 64);
}

/* [store] retention keys: defaults, values, refusals. */
static void retention_keys(void **state)
{
    struct config cfg;
    char err[512];
    assert_int_equal(parse(&cfg, CAM, err, sizeof err), 0);
    assert_int_equal(cfg.store_max_size_mb, 0);
    assert_int_equal(cfg.store_min_free_mb, 1024);
    assert_true(cfg.store_flagged_days == 30);
    config_free(&cfg);
    assert_int_equal(
        parse(&cfg, "[store]\nmax_size_mb = 500\nmin_free_mb = 1024\nflagged_days = 7.5\n" CAM, err,
              sizeof err),
        0);
    assert_int_equal(cfg.store_max_size_mb, 500);
    assert_int_equal(cfg.store_min_free_mb, 1024);
    assert_true(cfg.store_flagged_days == 7.5);
    config_free(&cfg);
    assert_refused("[store]\nmax_size_mb = -1\n" CAM, "t.conf:2:", "max_size_mb must be");
    assert_refused("[store]\nmin_free_mb = 1G\n" CAM, "t.conf:2:", "min_free_mb must be");
    assert_refused("[store]\n\nflagged_days = soon\n" CAM, "t.conf:3:", "flagged_days must be");
    assert_refused("[store]\nmax_size = 5\n" CAM, "t.conf:2:", "unknown key 'max_size' in [store]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(embedded_default_parses),
        cmocka_unit_test(full_file_sets_every_field),
        cmocka_unit_test(ipv6_listen_parses),
        cmocka_unit_test(unknown_section_and_key),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(unattended_defaults_and_values),
        cmocka_unit_test(result_shifts),
        cmocka_unit_test(mqtt_keys),
        cmocka_unit_test(plc_keys),
        cmocka_unit_test(trainer_knobs),
        cmocka_unit_test(recipes),
        cmocka_unit_test(regions),
        cmocka_unit_test(engine_keys),
        cmocka_unit_test(duplicate_key),
        cmocka_unit_test(syntax_error),
        cmocka_unit_test(camera_problems),
        cmocka_unit_test(public_listen_needs_token),
        cmocka_unit_test(token_file_created_then_read),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(file_errors_name_the_file),
        cmocka_unit_test(run_exits_78_on_bad_config),
        cmocka_unit_test(retention_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
