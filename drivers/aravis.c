/* aravis.c — the Aravis camera driver: GigE Vision / USB3 Vision streaming, pixel formats,
 * triggers, loss and reconnect (see aravis.h). Aravis's own threads only ever set one atomic flag
 * here. */
#define LOG_TAG "aravis"
#include "array.h"
#include "clock.h"
#include "log.h"

#include "aravis.h"
#include "bayer.h"
#include "parse.h"

#include <arv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
    PROBE_AFTER_MS = 1000,     /* no frame for this long: ask the camera whether it is there */
    TRIGGER_TIMEOUT_MS = 1000, /* a software trigger unanswered this long is counted lost */
    BACKOFF_FIRST_MS = 500,
    BACKOFF_MAX_MS = 30000,
    BUFFERS_MAX = 64
};

struct pixfmt {
    const char *name; /* GenICam name, as in the config */
    ArvPixelFormat arv;
    enum frame_format out;
    int bayer; /* enum bayer_pattern, or -1 */
};

/* In order of preference when the config does not name one. */
static const struct pixfmt pixfmts[] = {
    {"Mono8", ARV_PIXEL_FORMAT_MONO_8, FRAME_MONO8, -1},
    {"RGB8", ARV_PIXEL_FORMAT_RGB_8_PACKED, FRAME_RGB8, -1},
    {"BayerRG8", ARV_PIXEL_FORMAT_BAYER_RG_8, FRAME_RGB8, BAYER_RG},
    {"BayerBG8", ARV_PIXEL_FORMAT_BAYER_BG_8, FRAME_RGB8, BAYER_BG},
    {"BayerGB8", ARV_PIXEL_FORMAT_BAYER_GB_8, FRAME_RGB8, BAYER_GB},
    {"BayerGR8", ARV_PIXEL_FORMAT_BAYER_GR_8, FRAME_RGB8, BAYER_GR},
};
#define N_PIXFMTS ARRAY_LEN(pixfmts)

struct aravis_camera {
    char name[64];
    struct aravis_config cfg;

    /* connection (NULL while lost) */
    ArvCamera *camera;
    ArvStream *stream;
    gulong lost_handler;
    atomic_bool control_lost; /* set by Aravis's heartbeat thread */
    const struct pixfmt *fmt;
    int width, height;
    size_t payload;

    /* capture bookkeeping, capture thread only */
    uint64_t seq;
    uint64_t last_frame_id;
    bool have_frame;         /* in this connection */
    int64_t clock_offset_ns; /* host wall clock minus camera clock, from the first frame */
    bool have_offset;
    int64_t alive_at_us; /* monotonic: last frame or answered probe */
    bool trigger_pending;
    int64_t trigger_at_us;

    /* loss and reconnect, capture thread only */
    pthread_t reaper; /* releases a dead connection (seconds of protocol timeouts) */
    bool reaping;
    int64_t lost_at_us, retry_at_us;
    int backoff_ms;
    char last_reason[160];

    /* statistics, read from any thread */
    atomic_int state;
    atomic_uint_fast64_t frames, incomplete, losses, reconnects;
};

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void sleep_us(int64_t us)
{
    if (us <= 0) return;
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Moves a GError's message into err after `what`. Returns SOURCE_OK when there was no error,
 * SOURCE_EIO when the camera did not answer in time, is busy or is held by another host (worth
 * retrying), SOURCE_EINVAL when it refused what was asked (retrying cannot help). */
static int take_error(GError **e, const char *what, char *err, size_t errsz)
{
    if (*e == NULL) return SOURCE_OK;
    snprintf(err, errsz, "%s: %s", what, (*e)->message);
    bool transient =
        (*e)->domain == ARV_DEVICE_ERROR &&
        ((*e)->code == ARV_DEVICE_ERROR_NOT_CONNECTED ||
         (*e)->code == ARV_DEVICE_ERROR_TRANSFER_ERROR || (*e)->code == ARV_DEVICE_ERROR_TIMEOUT ||
         (*e)->code == ARV_DEVICE_ERROR_NOT_CONTROLLER ||
         (*e)->code == ARV_DEVICE_ERROR_PROTOCOL_ERROR_BUSY);
    g_clear_error(e);
    return transient ? SOURCE_EIO : SOURCE_EINVAL;
}

/* --- configuration ----------------------------------------------------------------------- */

void aravis_config_init(struct aravis_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->offset_x = cfg->offset_y = cfg->width = cfg->height = -1;
    cfg->exposure_us = -1;
    cfg->gain = -1;
    cfg->trigger = ARAVIS_TRIGGER_FREE;
    snprintf(cfg->trigger_source, sizeof cfg->trigger_source, "Line0");
    snprintf(cfg->trigger_activation, sizeof cfg->trigger_activation, "RisingEdge");
    cfg->buffers = 8;
}

static const struct pixfmt *pixfmt_by_name(const char *name)
{
    for (size_t i = 0; i < N_PIXFMTS; i++)
        if (strcasecmp(pixfmts[i].name, name) == 0) return &pixfmts[i];
    return NULL;
}

static const struct pixfmt *pixfmt_by_arv(ArvPixelFormat f)
{
    for (size_t i = 0; i < N_PIXFMTS; i++)
        if (pixfmts[i].arv == f) return &pixfmts[i];
    return NULL;
}

static int copy_name(char *dst, size_t dstsz, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= dstsz) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20) return -1;
    memcpy(dst, value, n + 1);
    return 0;
}

int aravis_config_set(struct aravis_config *cfg, const char *key, const char *value, char *err,
                      size_t errsz)
{
    const char *why = NULL;
    if (strcmp(key, "device") == 0) {
        if (copy_name(cfg->device, sizeof cfg->device, value))
            why = "device must be 1-127 characters";
    } else if (strcmp(key, "pixel_format") == 0) {
        const struct pixfmt *f = pixfmt_by_name(value);
        if (f == NULL)
            why = "pixel_format must be Mono8, RGB8, BayerRG8, BayerBG8, BayerGB8 or BayerGR8";
        else
            snprintf(cfg->pixel_format, sizeof cfg->pixel_format, "%s", f->name);
    } else if (strcmp(key, "offset_x") == 0) {
        if (parse_int(value, 0, 65535, &cfg->offset_x)) why = "offset_x must be 0..65535";
    } else if (strcmp(key, "offset_y") == 0) {
        if (parse_int(value, 0, 65535, &cfg->offset_y)) why = "offset_y must be 0..65535";
    } else if (strcmp(key, "width") == 0) {
        if (parse_int(value, 2, 65535, &cfg->width)) why = "width must be 2..65535";
    } else if (strcmp(key, "height") == 0) {
        if (parse_int(value, 2, 65535, &cfg->height)) why = "height must be 2..65535";
    } else if (strcmp(key, "exposure_us") == 0) {
        cfg->exposure_auto = strcmp(value, "auto") == 0;
        if (!cfg->exposure_auto && parse_double(value, 1, 1e8, false, &cfg->exposure_us))
            why = "exposure_us must be auto or a number of microseconds in [1, 1e8]";
    } else if (strcmp(key, "gain") == 0) {
        cfg->gain_auto = strcmp(value, "auto") == 0;
        if (!cfg->gain_auto && parse_double(value, 0, 1000, false, &cfg->gain))
            why = "gain must be auto or a number in [0, 1000] (camera units, usually dB)";
    } else if (strcmp(key, "fps") == 0) {
        if (parse_double(value, 0.001, 100000, false, &cfg->fps))
            why = "fps must be a number in [0.001, 100000]";
    } else if (strcmp(key, "trigger") == 0) {
        if (strcmp(value, "free") == 0)
            cfg->trigger = ARAVIS_TRIGGER_FREE;
        else if (strcmp(value, "software") == 0)
            cfg->trigger = ARAVIS_TRIGGER_SOFTWARE;
        else if (strcmp(value, "hardware") == 0)
            cfg->trigger = ARAVIS_TRIGGER_HARDWARE;
        else
            why = "trigger must be free, software or hardware";
    } else if (strcmp(key, "trigger_source") == 0) {
        if (copy_name(cfg->trigger_source, sizeof cfg->trigger_source, value))
            why = "trigger_source must be a feature value such as Line0 (1-31 characters)";
    } else if (strcmp(key, "trigger_activation") == 0) {
        if (copy_name(cfg->trigger_activation, sizeof cfg->trigger_activation, value))
            why = "trigger_activation must be a feature value such as RisingEdge (1-31 characters)";
    } else if (strcmp(key, "buffers") == 0) {
        if (parse_int(value, 2, BUFFERS_MAX, &cfg->buffers)) why = "buffers must be 2..64";
    } else {
        why = "unknown key";
    }
    if (why == NULL) return 0;
    snprintf(err, errsz, "%s", why);
    return -1;
}

/* --- connecting ---------------------------------------------------------------------------- */

/* Lists the ids of Aravis's last discovery into buf ("none" when it found nothing). */
static void found_ids(char *buf, size_t bufsz)
{
    unsigned n = arv_get_n_devices();
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < n && used + 1 < bufsz; i++)
        used += (size_t)snprintf(buf + used, bufsz - used, "%s%s", i ? ", " : "",
                                 or_empty(arv_get_device_id(i)));
    if (n == 0) snprintf(buf, bufsz, "none");
}

static int choose_pixel_format(struct aravis_camera *c, char *err, size_t errsz)
{
    GError *e = NULL;
    int st;
    guint n = 0;
    gint64 *offered = arv_camera_dup_available_pixel_formats(c->camera, &n, &e);
    if ((st = take_error(&e, "reading PixelFormat", err, errsz)) != SOURCE_OK) return st;
    const struct pixfmt *want = c->cfg.pixel_format[0] ? pixfmt_by_name(c->cfg.pixel_format) : NULL;
    const struct pixfmt *pick = NULL;
    if (want == NULL) {
        ArvPixelFormat now = arv_camera_get_pixel_format(c->camera, NULL);
        pick = pixfmt_by_arv(now);
    }
    for (size_t k = 0; k < N_PIXFMTS && pick == NULL; k++) {
        const struct pixfmt *f = want ? want : &pixfmts[k];
        for (guint i = 0; i < n && pick == NULL; i++)
            if ((ArvPixelFormat)offered[i] == f->arv) pick = f;
        if (want) break;
    }
    g_free(offered);
    if (pick == NULL) {
        guint ns = 0;
        const char **names =
            arv_camera_dup_available_pixel_formats_as_strings(c->camera, &ns, NULL);
        char list[160] = "";
        for (guint i = 0; names && i < ns; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     names[i]);
        g_free(names);
        snprintf(err, errsz, "camera offers no %s (it offers: %s)",
                 want ? want->name : "Mono8, RGB8 or Bayer 8-bit format", list);
        return SOURCE_EINVAL;
    }
    arv_camera_set_pixel_format(c->camera, pick->arv, &e);
    if ((st = take_error(&e, "setting PixelFormat", err, errsz)) != SOURCE_OK) return st;
    c->fmt = pick;
    return SOURCE_OK;
}

static int set_region(struct aravis_camera *c, char *err, size_t errsz)
{
    const struct aravis_config *cfg = &c->cfg;
    GError *e = NULL;
    int st;
    gint x, y, w, h;
    arv_camera_get_region(c->camera, &x, &y, &w, &h, &e);
    if ((st = take_error(&e, "reading the region", err, errsz)) != SOURCE_OK) return st;
    if (cfg->offset_x >= 0 || cfg->offset_y >= 0 || cfg->width > 0 || cfg->height > 0) {
        arv_camera_set_region(c->camera, cfg->offset_x >= 0 ? cfg->offset_x : x,
                              cfg->offset_y >= 0 ? cfg->offset_y : y,
                              cfg->width > 0 ? cfg->width : w, cfg->height > 0 ? cfg->height : h,
                              &e);
        if ((st = take_error(&e, "setting the region", err, errsz)) != SOURCE_OK) return st;
        arv_camera_get_region(c->camera, &x, &y, &w, &h, &e);
        if ((st = take_error(&e, "reading the region", err, errsz)) != SOURCE_OK) return st;
    }
    if (w < 2 || h < 2) {
        snprintf(err, errsz, "camera region is %dx%d, too small", w, h);
        return SOURCE_EINVAL;
    }
    c->width = w;
    c->height = h;
    return SOURCE_OK;
}

static int set_exposure_and_gain(struct aravis_camera *c, char *err, size_t errsz)
{
    const struct aravis_config *cfg = &c->cfg;
    GError *e = NULL;
    int st;
    if (cfg->exposure_auto) {
        arv_camera_set_exposure_time_auto(c->camera, ARV_AUTO_CONTINUOUS, &e);
        if ((st = take_error(&e, "setting ExposureAuto", err, errsz)) != SOURCE_OK) return st;
    } else if (cfg->exposure_us > 0) {
        if (arv_camera_is_exposure_auto_available(c->camera, NULL))
            arv_camera_set_exposure_time_auto(c->camera, ARV_AUTO_OFF, NULL);
        arv_camera_set_exposure_time(c->camera, cfg->exposure_us, &e);
        if ((st = take_error(&e, "setting the exposure time", err, errsz)) != SOURCE_OK) return st;
    }
    if (cfg->gain_auto) {
        arv_camera_set_gain_auto(c->camera, ARV_AUTO_CONTINUOUS, &e);
        if ((st = take_error(&e, "setting GainAuto", err, errsz)) != SOURCE_OK) return st;
    } else if (cfg->gain >= 0) {
        if (arv_camera_is_gain_auto_available(c->camera, NULL))
            arv_camera_set_gain_auto(c->camera, ARV_AUTO_OFF, NULL);
        arv_camera_set_gain(c->camera, cfg->gain, &e);
        if ((st = take_error(&e, "setting the gain", err, errsz)) != SOURCE_OK) return st;
    }
    return SOURCE_OK;
}

/* Frame rate first: Aravis clears the triggers when it sets one. */
static int set_rate_and_trigger(struct aravis_camera *c, char *err, size_t errsz)
{
    const struct aravis_config *cfg = &c->cfg;
    GError *e = NULL;
    int st;
    switch (cfg->trigger) {
    case ARAVIS_TRIGGER_FREE:
        if (cfg->fps > 0) {
            arv_camera_set_frame_rate(c->camera, cfg->fps, &e);
            if ((st = take_error(&e, "setting the frame rate", err, errsz)) != SOURCE_OK) return st;
        }
        arv_camera_clear_triggers(c->camera, &e);
        if ((st = take_error(&e, "switching triggers off", err, errsz)) != SOURCE_OK) return st;
        break;
    case ARAVIS_TRIGGER_SOFTWARE:
        if (!arv_camera_is_software_trigger_supported(c->camera, NULL)) {
            snprintf(err, errsz, "camera has no software trigger");
            return SOURCE_EINVAL;
        }
        arv_camera_set_trigger(c->camera, "Software", &e);
        if ((st = take_error(&e, "setting the software trigger", err, errsz)) != SOURCE_OK)
            return st;
        break;
    case ARAVIS_TRIGGER_HARDWARE:
        arv_camera_set_trigger(c->camera, cfg->trigger_source, &e);
        if ((st = take_error(&e, "setting TriggerSource", err, errsz)) != SOURCE_OK) return st;
        arv_camera_set_string(c->camera, "TriggerActivation", cfg->trigger_activation, &e);
        if ((st = take_error(&e, "setting TriggerActivation", err, errsz)) != SOURCE_OK) return st;
        break;
    }
    return SOURCE_OK;
}

static void on_control_lost(ArvDevice *device, gpointer data)
{
    struct aravis_camera *c = data;
    atomic_store(&c->control_lost, true);
}

static int start_stream(struct aravis_camera *c, char *err, size_t errsz)
{
    GError *e = NULL;
    int st;
    if (arv_camera_is_gv_device(c->camera)) arv_camera_gv_auto_packet_size(c->camera, NULL);
    c->payload = arv_camera_get_payload(c->camera, &e);
    if ((st = take_error(&e, "reading the payload size", err, errsz)) != SOURCE_OK) return st;
    c->stream = arv_camera_create_stream(c->camera, NULL, NULL, &e);
    if ((st = take_error(&e, "creating the stream", err, errsz)) != SOURCE_OK) return st;
    for (int i = 0; i < c->cfg.buffers; i++) {
        ArvBuffer *b = arv_buffer_new_allocate(c->payload);
        if (b == NULL) {
            snprintf(err, errsz, "out of memory for %d buffers of %zu bytes", c->cfg.buffers,
                     c->payload);
            return SOURCE_ENOMEM;
        }
        arv_stream_push_buffer(c->stream, b);
    }
    atomic_store(&c->control_lost, false);
    c->lost_handler = g_signal_connect(arv_camera_get_device(c->camera), "control-lost",
                                       G_CALLBACK(on_control_lost), c);
    arv_camera_set_acquisition_mode(c->camera, ARV_ACQUISITION_MODE_CONTINUOUS, &e);
    if ((st = take_error(&e, "setting continuous acquisition", err, errsz)) != SOURCE_OK) return st;
    arv_camera_start_acquisition(c->camera, &e);
    if ((st = take_error(&e, "starting acquisition", err, errsz)) != SOURCE_OK) return st;
    c->alive_at_us = clock_mono_us();
    c->trigger_pending = false;
    c->have_offset = false;
    c->have_frame = false;
    return SOURCE_OK;
}

static void stop_watching(struct aravis_camera *c)
{
    if (c->camera && c->lost_handler) {
        g_signal_handler_disconnect(arv_camera_get_device(c->camera), c->lost_handler);
        c->lost_handler = 0;
    }
}

/* Tears down a connection to a camera that answers (or a half-made one). */
static void disconnect_camera(struct aravis_camera *c)
{
    stop_watching(c);
    if (c->camera && c->stream) arv_camera_stop_acquisition(c->camera, NULL);
    g_clear_object(&c->stream);
    g_clear_object(&c->camera);
}

struct dead_connection {
    ArvCamera *camera;
    ArvStream *stream;
};

static void *release_dead(void *arg)
{
    struct dead_connection *d = arg;
    g_clear_object(&d->stream);
    g_clear_object(&d->camera);
    free(d);
    return NULL;
}

/* Releasing a connection to a camera that no longer answers waits out Aravis's protocol timeouts
 * (its heartbeat and the release of control: about 7 s), so a thread does it while the capture
 * thread reports the loss. It must finish before the next connect: the old device would otherwise
 * release control of the camera that came back. */
static void release_dead_connection(struct aravis_camera *c)
{
    stop_watching(c);
    struct dead_connection *d = malloc(sizeof *d);
    if (d != NULL) {
        *d = (struct dead_connection){c->camera, c->stream};
        if (pthread_create(&c->reaper, NULL, release_dead, d) == 0) {
            c->reaping = true;
            c->camera = NULL;
            c->stream = NULL;
            return;
        }
        free(d);
    }
    g_clear_object(&c->stream);
    g_clear_object(&c->camera);
}

/* Returns true when no dead connection is still being released. wait: block until it is. */
static bool reaper_done(struct aravis_camera *c, bool wait)
{
    if (!c->reaping) return true;
    if (wait ? pthread_join(c->reaper, NULL) != 0 : pthread_tryjoin_np(c->reaper, NULL) != 0)
        return false;
    c->reaping = false;
    return true;
}

static int connect_camera(struct aravis_camera *c, char *err, size_t errsz)
{
    GError *e = NULL;
    const char *id = c->cfg.device[0] ? c->cfg.device : NULL;
    /* Discovery first: it records which host interface reaches the camera, and the stream is
     * sent to that interface's address (opening by id alone may pick another one). */
    arv_update_device_list();
    c->camera = arv_camera_new(id, &e);
    if (c->camera == NULL) {
        char ids[200];
        found_ids(ids, sizeof ids);
        snprintf(err, errsz, "no camera %s%s%s (%s; cameras found: %s)", id ? "'" : "",
                 id ? id : "found", id ? "'" : "", e ? e->message : "?", ids);
        g_clear_error(&e);
        return SOURCE_ENODEV;
    }
    int st = choose_pixel_format(c, err, errsz);
    if (st == SOURCE_OK) st = set_region(c, err, errsz);
    if (st == SOURCE_OK) st = set_exposure_and_gain(c, err, errsz);
    if (st == SOURCE_OK) st = set_rate_and_trigger(c, err, errsz);
    if (st == SOURCE_OK) st = start_stream(c, err, errsz);
    if (st != SOURCE_OK) disconnect_camera(c);
    return st;
}

static void log_streaming(struct aravis_camera *c, const char *how)
{
    double fps = arv_camera_get_frame_rate(c->camera, NULL);
    static const char *triggers[] = {"free-running", "software trigger", "hardware trigger"};
    log_info("camera %s: %s %s %s (%s) %dx%d %s, %s, %.1f fps, %d buffers of %zu bytes", c->name,
             how, or_empty(arv_camera_get_vendor_name(c->camera, NULL)),
             or_empty(arv_camera_get_model_name(c->camera, NULL)),
             or_empty(arv_camera_get_device_id(c->camera, NULL)), c->width, c->height, c->fmt->name,
             triggers[c->cfg.trigger], fps, c->cfg.buffers, c->payload);
}

struct aravis_camera *aravis_open(const char *name, const struct aravis_config *cfg, int *status,
                                  char *err, size_t errsz)
{
    if (cfg->trigger == ARAVIS_TRIGGER_HARDWARE && cfg->fps > 0) {
        snprintf(err, errsz, "fps applies to trigger = free or software, not hardware");
        *status = SOURCE_EINVAL;
        return NULL;
    }
    struct aravis_camera *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errsz, "out of memory");
        *status = SOURCE_ENOMEM;
        return NULL;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->cfg = *cfg;
    *status = connect_camera(c, err, errsz);
    if (*status != SOURCE_OK) {
        free(c);
        return NULL;
    }
    log_streaming(c, "streaming from");
    return c;
}

void aravis_close(struct aravis_camera *c)
{
    if (c == NULL) return;
    disconnect_camera(c);
    reaper_done(c, true);
    free(c);
}

void aravis_stats(struct aravis_camera *c, struct aravis_stats *out)
{
    out->state = (enum aravis_state)atomic_load(&c->state);
    out->frames = atomic_load(&c->frames);
    out->incomplete = atomic_load(&c->incomplete);
    out->losses = atomic_load(&c->losses);
    out->reconnects = atomic_load(&c->reconnects);
}

/* --- loss and reconnect -------------------------------------------------------------------- */

static void declare_lost(struct aravis_camera *c, const char *why)
{
    log_warn("camera %s: lost (%s); reconnecting", c->name, why);
    release_dead_connection(c);
    atomic_store(&c->state, ARAVIS_LOST);
    atomic_fetch_add(&c->losses, 1);
    c->lost_at_us = clock_mono_us();
    c->backoff_ms = BACKOFF_FIRST_MS;
    c->retry_at_us = c->lost_at_us + c->backoff_ms * 1000;
    c->last_reason[0] = '\0';
}

static void try_reconnect(struct aravis_camera *c)
{
    char why[sizeof c->last_reason];
    if (!reaper_done(c, false)) {
        c->retry_at_us = clock_mono_us() + BACKOFF_FIRST_MS * 1000;
        return;
    }
    if (connect_camera(c, why, sizeof why) == SOURCE_OK) {
        char how[64];
        snprintf(how, sizeof how, "back after %.1f s, streaming from",
                 (clock_mono_us() - c->lost_at_us) / 1e6);
        log_streaming(c, how);
        atomic_store(&c->state, ARAVIS_STREAMING);
        atomic_fetch_add(&c->reconnects, 1);
        return;
    }
    if (strcmp(why, c->last_reason) != 0) {
        log_info("camera %s: still lost: %s", c->name, why);
        memcpy(c->last_reason, why, sizeof why);
    }
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    c->retry_at_us = clock_mono_us() + (int64_t)c->backoff_ms * 1000;
}

/* While lost: waits until the next try or the deadline, tries when it is time. */
static int wait_lost(struct aravis_camera *c, int64_t deadline_us)
{
    int64_t now = clock_mono_us();
    if (now < c->retry_at_us) {
        sleep_us((c->retry_at_us < deadline_us ? c->retry_at_us : deadline_us) - now);
        if (clock_mono_us() < c->retry_at_us) return SOURCE_ELOST;
    }
    try_reconnect(c);
    return atomic_load(&c->state) == ARAVIS_STREAMING ? SOURCE_TIMEOUT : SOURCE_ELOST;
}

/* After a silence: does the camera still answer? A register read works for GigE Vision and USB3
 * Vision alike (address 0 is the bootstrap version register of both). */
static bool camera_answers(struct aravis_camera *c)
{
    guint32 value;
    GError *e = NULL;
    bool ok = arv_device_read_register(arv_camera_get_device(c->camera), 0, &value, &e);
    g_clear_error(&e);
    if (ok) c->alive_at_us = clock_mono_us();
    return ok;
}

/* --- frames -------------------------------------------------------------------------------- */

/* Camera timestamps run on the camera's clock; they are anchored to the host's wall clock at the
 * first frame (and again if they drift more than a second, e.g. after a camera reset). */
static int64_t frame_time_us(struct aravis_camera *c, ArvBuffer *b)
{
    int64_t host = (int64_t)arv_buffer_get_system_timestamp(b);
    if (host == 0) host = clock_wall_ns();
    int64_t cam = (int64_t)arv_buffer_get_timestamp(b);
    if (cam == 0) return host / 1000;
    int64_t t = cam + c->clock_offset_ns;
    if (!c->have_offset || llabs(t - host) > 1000000000) {
        c->clock_offset_ns = host - cam;
        c->have_offset = true;
        t = host;
    }
    return t / 1000;
}

/* Advances seq by the camera's frame-id step (GigE Vision ids are 16-bit and skip 0), so that a
 * gap in seq is a frame lost on the way. After a reconnect the camera's ids start again; seq goes
 * on from where it was. */
static void advance_seq(struct aravis_camera *c, uint64_t id)
{
    if (c->have_frame) {
        uint64_t step = 1;
        if (id > c->last_frame_id)
            step = id - c->last_frame_id;
        else if (c->last_frame_id <= 0xffff && id > 0)
            step = id + 0xffff - c->last_frame_id;
        c->seq += step;
    } else if (atomic_load(&c->frames) > 0) {
        c->seq += 1;
    }
    c->have_frame = true;
    c->last_frame_id = id;
}

/* Copies (or demosaics) one buffer into a frame. Returns SOURCE_OK, SOURCE_EIO for a buffer that
 * does not hold what was configured, or SOURCE_ENOMEM. */
static int buffer_to_frame(struct aravis_camera *c, ArvBuffer *b, struct frame *f)
{
    size_t size;
    const uint8_t *data = arv_buffer_get_image_data(b, &size);
    int w = arv_buffer_get_image_width(b), h = arv_buffer_get_image_height(b);
    gint xpad = 0, ypad = 0;
    arv_buffer_get_image_padding(b, &xpad, &ypad);
    int bpp = c->fmt->arv == ARV_PIXEL_FORMAT_RGB_8_PACKED ? 3 : 1;
    size_t src_stride = (size_t)w * bpp + (size_t)(xpad > 0 ? xpad : 0);
    if (data == NULL || arv_buffer_get_image_pixel_format(b) != c->fmt->arv || w < 2 || h < 2 ||
        size < src_stride * (size_t)(h - 1) + (size_t)w * bpp)
        return SOURCE_EIO;
    int channels = c->fmt->out == FRAME_RGB8 ? 3 : 1;
    size_t stride = (size_t)w * channels;
    uint8_t *out = malloc(stride * (size_t)h);
    if (out == NULL) return SOURCE_ENOMEM;
    if (c->fmt->bayer >= 0)
        bayer_to_rgb(out, data, src_stride, w, h, (enum bayer_pattern)c->fmt->bayer);
    else
        for (int y = 0; y < h; y++) memcpy(out + y * stride, data + y * src_stride, stride);
    advance_seq(c, arv_buffer_get_frame_id(b));
    *f = (struct frame){.format = c->fmt->out,
                        .width = w,
                        .height = h,
                        .stride = stride,
                        .data = out,
                        .size = stride * (size_t)h,
                        .captured_at_us = frame_time_us(c, b),
                        .seq = c->seq};
    return SOURCE_OK;
}

/* Software trigger: fires one unless one is still unanswered; gives up on an unanswered one after
 * TRIGGER_TIMEOUT_MS. Waits for the 1/fps pacing, but not past the deadline. Returns false when the
 * deadline came first. */
static bool fire_trigger(struct aravis_camera *c, int64_t deadline_us)
{
    int64_t now = clock_mono_us();
    if (c->trigger_pending) {
        if (now - c->trigger_at_us < TRIGGER_TIMEOUT_MS * 1000) return true;
        atomic_fetch_add(&c->incomplete, 1);
        c->trigger_pending = false;
    }
    if (c->cfg.fps > 0 && c->trigger_at_us != 0) {
        int64_t due = c->trigger_at_us + (int64_t)(1e6 / c->cfg.fps);
        if (due > deadline_us) {
            sleep_us(deadline_us - now);
            return false;
        }
        sleep_us(due - now);
    }
    GError *e = NULL;
    arv_camera_software_trigger(c->camera, &e);
    if (e != NULL) {
        log_debug("camera %s: TriggerSoftware: %s", c->name, e->message);
        g_clear_error(&e);
    }
    c->trigger_pending = true;
    c->trigger_at_us = clock_mono_us();
    return true;
}

int aravis_next(struct aravis_camera *c, struct frame *f, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (atomic_load(&c->state) == ARAVIS_LOST) {
            int st = wait_lost(c, deadline);
            if (st != SOURCE_TIMEOUT || clock_mono_us() >= deadline) return st;
        }
        if (atomic_load(&c->control_lost)) {
            declare_lost(c, "control taken over, the camera restarted or another host took it");
            return SOURCE_ELOST;
        }
        if (c->cfg.trigger == ARAVIS_TRIGGER_SOFTWARE && !fire_trigger(c, deadline))
            return SOURCE_TIMEOUT;
        /* wait in slices no longer than the silence that makes us ask whether the camera is there
         */
        int64_t left = deadline - clock_mono_us();
        int64_t slice = left < PROBE_AFTER_MS * 1000 ? left : PROBE_AFTER_MS * 1000;
        ArvBuffer *b = arv_stream_timeout_pop_buffer(c->stream, slice > 0 ? (guint64)slice : 0);
        if (b == NULL) {
            if (clock_mono_us() - c->alive_at_us >= PROBE_AFTER_MS * 1000 && !camera_answers(c)) {
                declare_lost(c, "no frames and no answer to a register read");
                return SOURCE_ELOST;
            }
            if (clock_mono_us() >= deadline) return SOURCE_TIMEOUT;
            continue;
        }
        int st = arv_buffer_get_status(b) == ARV_BUFFER_STATUS_SUCCESS ? buffer_to_frame(c, b, f)
                                                                       : SOURCE_EIO;
        arv_stream_push_buffer(c->stream, b);
        c->alive_at_us = clock_mono_us();
        c->trigger_pending = false;
        if (st == SOURCE_OK) {
            atomic_fetch_add(&c->frames, 1);
            return SOURCE_OK;
        }
        if (st == SOURCE_ENOMEM) return st;
        atomic_fetch_add(&c->incomplete, 1);
        if (clock_mono_us() >= deadline) return SOURCE_TIMEOUT;
    }
}

/* --- listing ------------------------------------------------------------------------------- */

static void read_formats(struct camera_info *ci, unsigned index)
{
    GError *e = NULL;
    ArvCamera *cam = arv_camera_new(arv_get_device_id(index), &e);
    if (cam == NULL) {
        snprintf(ci->note, sizeof ci->note, "cannot open: %s", e ? e->message : "?");
        g_clear_error(&e);
        return;
    }
    guint n = 0;
    gint64 *offered = arv_camera_dup_available_pixel_formats(cam, &n, &e);
    if (e != NULL) {
        snprintf(ci->note, sizeof ci->note, "cannot read PixelFormat: %s", e->message);
        g_clear_error(&e);
    }
    for (size_t k = 0; k < N_PIXFMTS; k++)
        for (guint i = 0; i < n; i++)
            if ((ArvPixelFormat)offered[i] == pixfmts[k].arv) {
                size_t used = strlen(ci->formats);
                snprintf(ci->formats + used, sizeof ci->formats - used, "%s%s", used ? "," : "",
                         pixfmts[k].name);
            }
    if (n > 0 && ci->formats[0] == '\0')
        snprintf(ci->note, sizeof ci->note, "offers no Mono8, RGB8 or Bayer 8-bit format");
    g_free(offered);
    g_object_unref(cam);
}

int aravis_list(camera_list_fn fn, void *ctx, char *err, size_t errsz)
{
    arv_update_device_list();
    unsigned n = arv_get_n_devices();
    for (unsigned i = 0; i < n; i++) {
        struct camera_info ci = {.driver = "aravis"};
        const char *address = arv_get_device_address(i);
        snprintf(ci.id, sizeof ci.id, "%s", or_empty(arv_get_device_id(i)));
        snprintf(ci.vendor, sizeof ci.vendor, "%s", or_empty(arv_get_device_vendor(i)));
        snprintf(ci.model, sizeof ci.model, "%s", or_empty(arv_get_device_model(i)));
        snprintf(ci.serial, sizeof ci.serial, "%s", or_empty(arv_get_device_serial_nbr(i)));
        snprintf(ci.address, sizeof ci.address, "%s", or_empty(address));
        read_formats(&ci, i);
        fn(&ci, ctx);
    }
    return (int)n;
}
