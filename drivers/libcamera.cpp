/* libcamera.cpp — the libcamera driver behind the C header libcam.h: one process-wide camera
 * manager, stream configuration, buffers mapped once and recycled through requests, request
 * completion signalled through a pipe, libcamera's log routed into ours. */
#include <libcamera/libcamera.h>
#include <libcamera/logging.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

extern "C" {
#define LOG_TAG "libcamera"
#include "clock.h"
#include "log.h"

#include "libcam.h"
#include "parse.h"
#include "yuv.h"
}

using namespace libcamera;

namespace
{

constexpr uint32_t UNPLUGGED = 0xffffffffu; /* written into the pipe by the disconnect signal */

/* libcamera's log lines, one per call, go to our log: INFO and DEBUG as debug, WARN as warning,
 * ERROR and FATAL as errors. Lines are gathered per thread, so threads cannot interleave. */
class LogForward : public std::streambuf
{
  protected:
    int overflow(int ch) override
    {
        if (ch == traits_type::eof()) return 0;
        if (ch == '\n') {
            flush_line();
        } else if (line().size() < 1000) {
            line().push_back((char)ch);
        }
        return ch;
    }

  private:
    static std::string &line()
    {
        thread_local std::string buf;
        return buf;
    }

    static void flush_line()
    {
        std::string &l = line();
        enum log_level level = LOGL_DEBUG;
        if (l.find(" WARN ") != std::string::npos)
            level = LOGL_WARN;
        else if (l.find(" ERROR ") != std::string::npos || l.find(" FATAL ") != std::string::npos)
            level = LOGL_ERROR;
        log_msg(level, LOG_TAG, "%s", l.c_str());
        l.clear();
    }
};

LogForward log_forward;
std::ostream log_stream(&log_forward);

/* libcamera allows one CameraManager per process: opened cameras and listings share it. */
std::mutex manager_lock;
std::unique_ptr<CameraManager> manager;
int manager_users;

CameraManager *manager_get(char *err, size_t errsz)
{
    std::lock_guard<std::mutex> hold(manager_lock);
    if (!manager) {
        logSetStream(&log_stream, false);
        auto m = std::make_unique<CameraManager>();
        int r = m->start();
        if (r < 0) {
            snprintf(err, errsz, "libcamera camera manager: %s", strerror(-r));
            return nullptr;
        }
        manager = std::move(m);
    }
    manager_users++;
    return manager.get();
}

void manager_put()
{
    std::lock_guard<std::mutex> hold(manager_lock);
    if (--manager_users == 0) {
        manager->stop();
        manager.reset();
    }
}

/* Holds the manager for one scope (a listing). */
struct ManagerRef {
    CameraManager *m;
    ManagerRef(char *err, size_t errsz) : m(manager_get(err, errsz)) {}
    ~ManagerRef()
    {
        if (m) manager_put();
    }
    ManagerRef(const ManagerRef &) = delete;
    ManagerRef &operator=(const ManagerRef &) = delete;
};

/* "cam0, cam1" or "none". */
std::string camera_ids(CameraManager *m)
{
    std::string ids;
    for (const auto &c : m->cameras()) ids += (ids.empty() ? "" : ", ") + c->id();
    return ids.empty() ? "none" : ids;
}

const char *format_name(const PixelFormat &f)
{
    if (f == formats::YUV420) return "yuv420";
    if (f == formats::MJPEG) return "mjpeg";
    if (f == formats::BGR888 || f == formats::RGB888) return "rgb";
    return nullptr;
}

struct Mapping {
    int fd;
    uint8_t *addr;
    size_t len;
};

} // namespace

struct libcam {
    std::string name;
    libcam_config cfg{};
    CameraManager *mgr = nullptr;
    std::shared_ptr<Camera> camera;
    bool acquired = false, started = false, watching = false;
    std::unique_ptr<CameraConfiguration> config;
    Stream *stream = nullptr;
    std::unique_ptr<FrameBufferAllocator> allocator;
    std::vector<std::unique_ptr<Request>> requests;
    std::vector<Mapping> maps;
    std::vector<std::vector<const uint8_t *>> planes; /* per buffer, per plane */
    std::vector<std::vector<size_t>> plane_room;      /* bytes mapped behind each plane pointer */
    int pipe_rd = -1, pipe_wr = -1;

    PixelFormat format;
    unsigned width = 0, height = 0, stride = 0;
    bool full_range = false;

    bool have_seq = false;
    unsigned first_seq = 0;
    bool have_offset = false;
    int64_t clock_offset_ns = 0;

    /* libcamera's threads: these two only write into the pipe */
    void completed(Request *r)
    {
        uint32_t index = (uint32_t)r->cookie();
        if (write(pipe_wr, &index, sizeof index) < 0) return;
    }
    void unplugged()
    {
        uint32_t index = UNPLUGGED;
        if (write(pipe_wr, &index, sizeof index) < 0) return;
    }
};

namespace
{

/* Picks the pixel format and size, and validates. Returns a SOURCE_ status. */
int configure(libcam *c, char *err, size_t errsz)
{
    c->config = c->camera->generateConfiguration({StreamRole::VideoRecording});
    if (!c->config || c->config->empty()) {
        snprintf(err, errsz, "camera %s has no video stream", c->camera->id().c_str());
        return SOURCE_EINVAL;
    }
    StreamConfiguration &sc = c->config->at(0);
    std::vector<PixelFormat> offered = sc.formats().pixelformats();
    auto offers = [&](const PixelFormat &f) {
        for (const auto &o : offered)
            if (o == f) return true;
        return false;
    };
    PixelFormat want;
    switch (c->cfg.pixel_format) {
    case LIBCAM_YUV420:
        want = formats::YUV420;
        break;
    case LIBCAM_MJPEG:
        want = formats::MJPEG;
        break;
    case LIBCAM_RGB:
        want = offers(formats::BGR888) ? formats::BGR888 : formats::RGB888;
        break;
    }
    if (!offers(want)) {
        std::string list;
        for (const auto &o : offered) list += (list.empty() ? "" : ", ") + o.toString();
        snprintf(err, errsz, "camera %s cannot deliver %s (it offers %s)", c->camera->id().c_str(),
                 want.toString().c_str(), list.empty() ? "nothing" : list.c_str());
        return SOURCE_EINVAL;
    }
    sc.pixelFormat = want;
    if (c->cfg.width > 0) sc.size.width = (unsigned)c->cfg.width;
    if (c->cfg.height > 0) sc.size.height = (unsigned)c->cfg.height;
    sc.bufferCount = (unsigned)c->cfg.buffers;
    CameraConfiguration::Status v = c->config->validate();
    if (v == CameraConfiguration::Invalid || sc.pixelFormat != want) {
        snprintf(err, errsz, "camera %s refuses %s", c->camera->id().c_str(),
                 sc.toString().c_str());
        return SOURCE_EINVAL;
    }
    if (v == CameraConfiguration::Adjusted)
        log_info("camera %s: adjusted to %s", c->name.c_str(), sc.toString().c_str());
    if (c->camera->configure(c->config.get()) < 0) {
        snprintf(err, errsz, "camera %s: configuring %s failed", c->camera->id().c_str(),
                 sc.toString().c_str());
        return SOURCE_EINVAL;
    }
    c->stream = sc.stream();
    c->format = sc.pixelFormat;
    c->width = sc.size.width;
    c->height = sc.size.height;
    c->stride = sc.stride;
    c->full_range = sc.colorSpace && sc.colorSpace->range == ColorSpace::Range::Full;
    return SOURCE_OK;
}

/* Maps a dmabuf once (planes of one buffer often share it). Returns nullptr on failure. */
const Mapping *map_fd(libcam *c, int fd)
{
    for (const auto &m : c->maps)
        if (m.fd == fd) return &m;
    off_t len = lseek(fd, 0, SEEK_END);
    if (len <= 0) return nullptr;
    void *addr = mmap(nullptr, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) return nullptr;
    c->maps.push_back({fd, (uint8_t *)addr, (size_t)len});
    return &c->maps.back();
}

/* Allocates and maps the buffers, makes one request per buffer. Returns a SOURCE_ status. */
int make_requests(libcam *c, char *err, size_t errsz)
{
    c->allocator = std::make_unique<FrameBufferAllocator>(c->camera);
    if (c->allocator->allocate(c->stream) < 0) {
        snprintf(err, errsz, "allocating %d buffers failed", c->cfg.buffers);
        return SOURCE_ENOMEM;
    }
    const auto &buffers = c->allocator->buffers(c->stream);
    for (size_t i = 0; i < buffers.size(); i++) {
        FrameBuffer *fb = buffers[i].get();
        std::vector<const uint8_t *> ptrs;
        std::vector<size_t> room;
        for (const auto &p : fb->planes()) {
            const Mapping *m = map_fd(c, p.fd.get());
            size_t off = p.offset == FrameBuffer::Plane::kInvalidOffset ? 0 : p.offset;
            if (m == nullptr || off + p.length > m->len) {
                snprintf(err, errsz, "mapping buffer %zu: %s", i, strerror(errno));
                return SOURCE_EIO;
            }
            ptrs.push_back(m->addr + off);
            room.push_back(m->len - off);
        }
        c->planes.push_back(ptrs);
        c->plane_room.push_back(room);
        std::unique_ptr<Request> r = c->camera->createRequest(i);
        if (!r || r->addBuffer(c->stream, fb) < 0) {
            snprintf(err, errsz, "making request %zu failed", i);
            return SOURCE_EIO;
        }
        c->requests.push_back(std::move(r));
    }
    return SOURCE_OK;
}

int start(libcam *c, char *err, size_t errsz)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errsz, "pipe: %s", strerror(errno));
        return SOURCE_EIO;
    }
    c->pipe_rd = fds[0];
    c->pipe_wr = fds[1];
    fcntl(c->pipe_wr, F_SETFL, O_NONBLOCK);
    c->camera->requestCompleted.connect(c, &libcam::completed);
    c->camera->disconnected.connect(c, &libcam::unplugged);
    c->watching = true;
    ControlList controls(controls::controls);
    if (c->cfg.fps > 0) {
        int64_t frame_us = (int64_t)(1e6 / c->cfg.fps);
        const std::array<const int64_t, 2> limits{frame_us, frame_us};
        controls.set(controls::FrameDurationLimits, Span<const int64_t, 2>(limits));
    }
    if (c->camera->start(&controls) < 0) {
        snprintf(err, errsz, "starting camera %s failed", c->camera->id().c_str());
        return SOURCE_EIO;
    }
    c->started = true;
    for (auto &r : c->requests)
        if (c->camera->queueRequest(r.get()) < 0) {
            snprintf(err, errsz, "queueing a request failed");
            return SOURCE_EIO;
        }
    return SOURCE_OK;
}

/* Undoes whatever open got through; the order matters (stop before freeing buffers). */
void teardown(libcam *c)
{
    if (c->started) c->camera->stop();
    if (c->watching) {
        c->camera->requestCompleted.disconnect(c);
        c->camera->disconnected.disconnect(c);
    }
    c->requests.clear();
    for (const auto &m : c->maps) munmap(m.addr, m.len);
    c->maps.clear();
    if (c->allocator && c->stream) c->allocator->free(c->stream);
    c->allocator.reset();
    c->config.reset();
    if (c->acquired) c->camera->release();
    c->camera.reset();
    if (c->pipe_rd >= 0) close(c->pipe_rd);
    if (c->pipe_wr >= 0) close(c->pipe_wr);
    if (c->mgr) manager_put();
    delete c;
}

int open_steps(libcam *c, char *err, size_t errsz)
{
    c->mgr = manager_get(err, errsz);
    if (c->mgr == nullptr) return SOURCE_EIO;
    auto cams = c->mgr->cameras();
    if (c->cfg.device[0])
        c->camera = c->mgr->get(c->cfg.device);
    else if (!cams.empty())
        c->camera = cams[0];
    if (!c->camera) {
        snprintf(err, errsz, "no libcamera camera %s%s%s (cameras found: %s)",
                 c->cfg.device[0] ? "'" : "", c->cfg.device[0] ? c->cfg.device : "present",
                 c->cfg.device[0] ? "'" : "", camera_ids(c->mgr).c_str());
        return SOURCE_ENODEV;
    }
    int r = c->camera->acquire();
    if (r < 0) {
        snprintf(err, errsz, "camera %s: %s", c->camera->id().c_str(),
                 r == -EBUSY ? "in use by another program" : strerror(-r));
        return SOURCE_EIO;
    }
    c->acquired = true;
    int st = configure(c, err, errsz);
    if (st == SOURCE_OK) st = make_requests(c, err, errsz);
    if (st == SOURCE_OK) st = start(c, err, errsz);
    return st;
}

/* Sensor clock to wall clock: anchored at the first frame, again if it drifts over a second. */
int64_t frame_time_us(libcam *c, uint64_t sensor_ns)
{
    int64_t host = clock_wall_ns();
    if (sensor_ns == 0) return host / 1000;
    int64_t t = (int64_t)sensor_ns + c->clock_offset_ns;
    if (!c->have_offset || llabs(t - host) > 1000000000) {
        c->clock_offset_ns = host - (int64_t)sensor_ns;
        c->have_offset = true;
        t = host;
    }
    return t / 1000;
}

/* Converts a finished buffer into a frame. Returns a SOURCE_ status. */
int to_frame(libcam *c, size_t index, const FrameMetadata &md, struct frame *f)
{
    const std::vector<const uint8_t *> &p = c->planes[index];
    const std::vector<size_t> &room = c->plane_room[index];
    size_t w = c->width, h = c->height, stride = c->stride;
    uint8_t *out = nullptr;
    size_t size = 0;
    enum frame_format fmt = FRAME_RGB8;
    if (c->format == formats::MJPEG) {
        size = md.planes().size() ? md.planes()[0].bytesused : 0;
        if (size == 0 || size > room[0]) return SOURCE_EIO;
        fmt = FRAME_JPEG;
        out = (uint8_t *)malloc(size);
        if (out) memcpy(out, p[0], size);
    } else if (c->format == formats::YUV420) {
        size_t uv_stride = stride / 2, uv_rows = (h + 1) / 2;
        const uint8_t *y = p[0];
        const uint8_t *u = p.size() >= 3 ? p[1] : y + stride * h;
        const uint8_t *v = p.size() >= 3 ? p[2] : u + uv_stride * uv_rows;
        size_t need_u = p.size() >= 3 ? room[1] : room[0] - stride * h;
        if (room[0] < stride * h || need_u < uv_stride * uv_rows) return SOURCE_EIO;
        size = w * h * 3;
        out = (uint8_t *)malloc(size);
        if (out) yuv420_to_rgb(out, y, stride, u, v, uv_stride, (int)w, (int)h, c->full_range);
    } else {
        if (room[0] < stride * (h - 1) + w * 3) return SOURCE_EIO;
        size = w * h * 3;
        out = (uint8_t *)malloc(size);
        bool swap = c->format == formats::RGB888; /* DRM RGB888 is stored B, G, R */
        for (size_t row = 0; out && row < h; row++) {
            const uint8_t *src = p[0] + row * stride;
            uint8_t *dst = out + row * w * 3;
            if (!swap) {
                memcpy(dst, src, w * 3);
                continue;
            }
            for (size_t x = 0; x < w; x++) {
                dst[3 * x] = src[3 * x + 2];
                dst[3 * x + 1] = src[3 * x + 1];
                dst[3 * x + 2] = src[3 * x];
            }
        }
    }
    if (out == nullptr) return SOURCE_ENOMEM;
    if (!c->have_seq) {
        c->first_seq = md.sequence;
        c->have_seq = true;
    }
    *f = {};
    f->format = fmt;
    f->width = (int)w;
    f->height = (int)h;
    f->stride = fmt == FRAME_JPEG ? 0 : w * 3;
    f->data = out;
    f->size = size;
    f->captured_at_us = frame_time_us(c, md.timestamp);
    f->seq = (uint64_t)(md.sequence - c->first_seq);
    return SOURCE_OK;
}

/* Waits for one finished request until deadline_ms (INT64_MAX: no limit); fills f from it and
 * queues it again. */
int next_steps(libcam *c, struct frame *f, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - clock_mono_ns() / 1000000;
        int wait_ms = deadline_ms == INT64_MAX ? -1 : left > 0 ? (int)left : 0;
        struct pollfd pfd = {c->pipe_rd, POLLIN, 0};
        int n = poll(&pfd, 1, wait_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return SOURCE_TIMEOUT;
        uint32_t index;
        if (read(c->pipe_rd, &index, sizeof index) != (ssize_t)sizeof index) return SOURCE_EIO;
        if (index == UNPLUGGED) {
            log_warn("camera %s: unplugged", c->name.c_str());
            return SOURCE_ELOST;
        }
        if (index >= c->requests.size()) return SOURCE_EIO;
        Request *r = c->requests[index].get();
        int st = SOURCE_TIMEOUT;
        if (r->status() == Request::RequestComplete) {
            const FrameMetadata &md = r->findBuffer(c->stream)->metadata();
            if (md.status == FrameMetadata::FrameSuccess) st = to_frame(c, index, md, f);
        }
        r->reuse(Request::ReuseBuffers);
        if (c->camera->queueRequest(r) < 0) {
            if (st == SOURCE_OK) {
                free(f->data);
                f->data = nullptr;
            }
            return SOURCE_EIO;
        }
        if (st != SOURCE_TIMEOUT) return st;
    }
}

} // namespace

extern "C" {

void libcam_config_init(struct libcam_config *cfg)
{
    *cfg = {};
    cfg->pixel_format = LIBCAM_YUV420;
    cfg->buffers = 4;
}

int libcam_config_set(struct libcam_config *cfg, const char *key, const char *value, char *err,
                      size_t errsz)
{
    const char *why = nullptr;
    if (strcmp(key, "device") == 0) {
        size_t n = strlen(value);
        if (n == 0 || n >= sizeof cfg->device)
            why = "device must be a libcamera camera id of 1-255 characters";
        else
            memcpy(cfg->device, value, n + 1);
    } else if (strcmp(key, "width") == 0) {
        if (parse_int(value, 2, 16384, &cfg->width)) why = "width must be 2..16384";
    } else if (strcmp(key, "height") == 0) {
        if (parse_int(value, 2, 16384, &cfg->height)) why = "height must be 2..16384";
    } else if (strcmp(key, "pixel_format") == 0) {
        if (strcmp(value, "yuv420") == 0)
            cfg->pixel_format = LIBCAM_YUV420;
        else if (strcmp(value, "mjpeg") == 0)
            cfg->pixel_format = LIBCAM_MJPEG;
        else if (strcmp(value, "rgb") == 0)
            cfg->pixel_format = LIBCAM_RGB;
        else
            why = "pixel_format must be yuv420, mjpeg or rgb";
    } else if (strcmp(key, "fps") == 0) {
        if (parse_double(value, 0.1, 1000, false, &cfg->fps))
            why = "fps must be a number in [0.1, 1000]";
    } else if (strcmp(key, "buffers") == 0) {
        if (parse_int(value, 2, 16, &cfg->buffers)) why = "buffers must be 2..16";
    } else {
        why = "unknown key";
    }
    if (why == nullptr) return 0;
    snprintf(err, errsz, "%s", why);
    return -1;
}

struct libcam *libcam_open(const char *name, const struct libcam_config *cfg, int *status,
                           char *err, size_t errsz)
{
    libcam *c = nullptr;
    try {
        c = new libcam;
        c->name = name;
        c->cfg = *cfg;
        *status = open_steps(c, err, errsz);
    } catch (const std::bad_alloc &) {
        snprintf(err, errsz, "out of memory");
        *status = SOURCE_ENOMEM;
    } catch (const std::exception &e) {
        snprintf(err, errsz, "libcamera: %s", e.what());
        *status = SOURCE_EIO;
    } catch (...) {
        snprintf(err, errsz, "libcamera: unexpected exception");
        *status = SOURCE_EIO;
    }
    if (*status == SOURCE_OK) {
        log_info("camera %s: streaming from %s, %ux%u %s", name, c->camera->id().c_str(), c->width,
                 c->height, c->format.toString().c_str());
        return c;
    }
    if (c) libcam_close(c);
    return nullptr;
}

int libcam_next(struct libcam *c, struct frame *f, int timeout_ms)
{
    try {
        return next_steps(c, f,
                          timeout_ms < 0 ? INT64_MAX : clock_mono_ns() / 1000000 + timeout_ms);
    } catch (const std::bad_alloc &) {
        return SOURCE_ENOMEM;
    } catch (...) {
        return SOURCE_EIO;
    }
}

void libcam_close(struct libcam *c)
{
    if (c == nullptr) return;
    try {
        teardown(c);
    } catch (...) {
        log_error("camera %s: error while closing", c->name.c_str());
    }
}

int libcam_list(camera_list_fn fn, void *ctx, char *err, size_t errsz)
{
    try {
        ManagerRef ref(err, errsz);
        if (ref.m == nullptr) return -1;
        auto cams = ref.m->cameras();
        for (const auto &cam : cams) {
            struct camera_info ci = {};
            ci.driver = "libcamera";
            snprintf(ci.id, sizeof ci.id, "%s", cam->id().c_str());
            std::optional<std::string> model = cam->properties().get(properties::Model);
            snprintf(ci.model, sizeof ci.model, "%s", model ? model->c_str() : "");
            std::unique_ptr<CameraConfiguration> cc =
                cam->generateConfiguration({StreamRole::VideoRecording});
            std::string seen;
            for (const auto &f : cc && !cc->empty() ? cc->at(0).formats().pixelformats()
                                                    : std::vector<PixelFormat>{}) {
                const char *n = format_name(f);
                if (n && seen.find(n) == std::string::npos)
                    seen += (seen.empty() ? "" : ",") + std::string(n);
            }
            snprintf(ci.formats, sizeof ci.formats, "%s", seen.c_str());
            if (seen.empty()) snprintf(ci.note, sizeof ci.note, "no yuv420, mjpeg or rgb stream");
            fn(&ci, ctx);
        }
        return (int)cams.size();
    } catch (const std::exception &e) {
        snprintf(err, errsz, "libcamera: %s", e.what());
    } catch (...) {
        snprintf(err, errsz, "libcamera: unexpected exception");
    }
    return -1;
}

} // extern "C"
