/* camera_sources.c — the line-camera drivers (Aravis, and libcamera when built in) plugged into
 * the source registry: each key of the camera's section goes to the driver's own config setter. */
#include "aravis.h"
#include "driver.h"
#ifdef INSPECTD_WITH_LIBCAMERA
#include "libcam.h"
#endif

static int aravis_check_param(const char *key, const char *value, char *err, size_t errsz)
{
    struct aravis_config scratch;
    aravis_config_init(&scratch);
    return aravis_config_set(&scratch, key, value, err, errsz);
}

static void *aravis_source_open(const char *name, const struct source_param *params, size_t nparams,
                                int *status, char *err, size_t errsz)
{
    struct aravis_config cfg;
    aravis_config_init(&cfg);
    for (size_t i = 0; i < nparams; i++) {
        if (aravis_config_set(&cfg, params[i].key, params[i].value, err, errsz)) {
            *status = SOURCE_EINVAL;
            return NULL;
        }
    }
    return aravis_open(name, &cfg, status, err, errsz);
}

static int aravis_source_next(void *state, struct frame *f, int timeout_ms)
{
    return aravis_next(state, f, timeout_ms);
}

static void aravis_source_close(void *state)
{
    aravis_close(state);
}

const struct source_driver aravis_driver = {
    .name = "aravis",
    .check_param = aravis_check_param,
    .open = aravis_source_open,
    .next = aravis_source_next,
    .close = aravis_source_close,
    .list = aravis_list,
};

#ifdef INSPECTD_WITH_LIBCAMERA
static int libcamera_check_param(const char *key, const char *value, char *err, size_t errsz)
{
    struct libcam_config scratch;
    libcam_config_init(&scratch);
    return libcam_config_set(&scratch, key, value, err, errsz);
}

static void *libcamera_source_open(const char *name, const struct source_param *params,
                                   size_t nparams, int *status, char *err, size_t errsz)
{
    struct libcam_config cfg;
    libcam_config_init(&cfg);
    for (size_t i = 0; i < nparams; i++) {
        if (libcam_config_set(&cfg, params[i].key, params[i].value, err, errsz)) {
            *status = SOURCE_EINVAL;
            return NULL;
        }
    }
    return libcam_open(name, &cfg, status, err, errsz);
}

static int libcamera_source_next(void *state, struct frame *f, int timeout_ms)
{
    return libcam_next(state, f, timeout_ms);
}

static void libcamera_source_close(void *state)
{
    libcam_close(state);
}

const struct source_driver libcamera_driver = {
    .name = "libcamera",
    .check_param = libcamera_check_param,
    .open = libcamera_source_open,
    .next = libcamera_source_next,
    .close = libcamera_source_close,
    .list = libcam_list,
};
#endif
