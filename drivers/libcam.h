/* libcam.h — cameras of embedded boards (Raspberry Pi, i.MX, Rockchip, UVC webcams) through
 * libcamera, from C. The C++ side (libcamera.cpp) sits behind an opaque handle; nothing of
 * libcamera or C++ crosses this header, and every exception is caught at the boundary and turned
 * into an error code.
 *
 * Threads: libcamera completes requests on its own thread; that thread only writes the finished
 * request's index into a pipe. libcam_next() polls the pipe on the caller's thread, converts the
 * buffer into a frame, and queues the request again (the buffers go round through the requests).
 * One thread uses a handle.
 *
 * Pixel formats: yuv420 (converted to FRAME_RGB8 with BT.601), mjpeg (handed on as FRAME_JPEG),
 * rgb (FRAME_RGB8 as it comes). Frame times come from the sensor clock anchored to the host's wall
 * clock; seq follows libcamera's frame sequence, so gaps are dropped frames. If the camera is
 * unplugged, libcam_next() returns SOURCE_ELOST and the caller closes and reopens it later. */
#ifndef INSPECTD_LIBCAM_H
#define INSPECTD_LIBCAM_H

#include <stddef.h>

#include "camera_list.h"
#include "source.h"

#ifdef __cplusplus
extern "C" {
#endif

enum libcam_pixel_format { LIBCAM_YUV420 = 0, LIBCAM_MJPEG, LIBCAM_RGB };

struct libcam_config {
    char device[256];  /* libcamera camera id; "" = the first camera */
    int width, height; /* 0 = the camera's default for video */
    enum libcam_pixel_format pixel_format;
    double fps;  /* 0 = the camera's default */
    int buffers; /* 2..16; 4 */
};

struct libcam;

void libcam_config_init(struct libcam_config *cfg);

/* Sets one key from its text value. Returns 0, or -1 with a reason in err. */
int libcam_config_set(struct libcam_config *cfg, const char *key, const char *value, char *err,
                      size_t errsz);

/* Opens, configures and starts a camera. `name` is the camera's name for logs. Returns NULL with
 * *status (SOURCE_ENODEV: no such camera, the message names the ones found, or "none";
 * SOURCE_EINVAL: the camera cannot take the configuration; SOURCE_EIO; SOURCE_ENOMEM) and a
 * reason in err. */
struct libcam *libcam_open(const char *name, const struct libcam_config *cfg, int *status,
                           char *err, size_t errsz);

/* Waits up to timeout_ms (< 0: no limit) for the next frame: SOURCE_OK with *f filled,
 * SOURCE_TIMEOUT, SOURCE_ELOST (unplugged), SOURCE_EIO or SOURCE_ENOMEM. */
int libcam_next(struct libcam *cam, struct frame *f, int timeout_ms);

/* Stops and releases the camera. Safe on NULL. */
void libcam_close(struct libcam *cam);

/* Lists the cameras libcamera can see. Returns how many, or -1 with a reason in err. */
int libcam_list(camera_list_fn fn, void *ctx, char *err, size_t errsz);

#ifdef __cplusplus
}
#endif

#endif
