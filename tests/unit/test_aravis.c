/* test_aravis.c — the Aravis driver against Aravis's own fake GigE Vision camera, run by this test
 * on the loopback interface: frame size and content for Mono8, RGB8 and Bayer, exposure and gain
 * reaching the camera, software triggers giving exactly the triggered frames, a hardware trigger
 * waiting without calling the camera lost, the camera stopped mid-stream (lost) and started again
 * (recovered), open errors, and the camera list.
 *
 * The fake camera binds GVCP port 3956 on 127.0.0.1, so concurrent runs of this test on one host
 * take turns through a lock file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arv.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "aravis.h"

#define SERIAL    "GV01"
#define DEVICE_ID "Aravis-Fake-GV01"

/* What the fake camera's fill callback did (it runs on the fake camera's thread). */
static atomic_uint filled;        /* frames the camera produced */
static atomic_uint last_exposure; /* exposure (us) and gain the camera saw on its last frame */
static atomic_uint last_gain;

static ArvGvFakeCamera *fake;

/* Mono8: pixel (x, y) = 7x + 13y + k, where k counts the frames the camera produced.
 * RGB8: (x, y, k). Bayer: 200 on red sites, 100 on green, 30 on blue (RGGB layout).
 * The fake camera allocates the buffer for the whole image of its current format before calling. */
static void fill(ArvBuffer *buffer, void *data, guint32 exposure_us, guint32 gain,
                 ArvPixelFormat format)
{
    uint8_t *px = (uint8_t *)arv_buffer_get_data(buffer, NULL);
    int w = arv_buffer_get_image_width(buffer), h = arv_buffer_get_image_height(buffer);
    unsigned k = atomic_fetch_add(&filled, 1) + 1;
    atomic_store(&last_exposure, exposure_us);
    atomic_store(&last_gain, gain);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (format == ARV_PIXEL_FORMAT_RGB_8_PACKED) {
                uint8_t *p = px + ((size_t)y * w + x) * 3;
                p[0] = (uint8_t)x;
                p[1] = (uint8_t)y;
                p[2] = (uint8_t)k;
            } else if (format == ARV_PIXEL_FORMAT_BAYER_RG_8) {
                px[(size_t)y * w + x] = (x & 1) != (y & 1) ? 100 : (x & 1) ? 30 : 200;
            } else {
                px[(size_t)y * w + x] = (uint8_t)(7 * x + 13 * y + k);
            }
        }
}

static void start_fake(void)
{
    fake = arv_gv_fake_camera_new("lo", SERIAL);
    assert_non_null(fake);
    assert_true(arv_gv_fake_camera_is_running(fake));
    arv_fake_camera_set_fill_pattern(arv_gv_fake_camera_get_fake_camera(fake), fill, NULL);
}

static void stop_fake(void)
{
    g_clear_object(&fake);
}

static int setup(void **state)
{
    atomic_store(&filled, 0);
    start_fake();
    return 0;
}

static int teardown(void **state)
{
    stop_fake();
    return 0;
}

static struct aravis_camera *open_with(const char *const *kv, int *status, char *err, size_t errsz)
{
    struct aravis_config cfg;
    aravis_config_init(&cfg);
    assert_int_equal(aravis_config_set(&cfg, "device", DEVICE_ID, err, errsz), 0);
    for (; kv && kv[0]; kv += 2) {
        if (aravis_config_set(&cfg, kv[0], kv[1], err, errsz) != 0) fail_msg("%s: %s", kv[0], err);
    }
    return aravis_open("test", &cfg, status, err, errsz);
}

static struct aravis_camera *must_open(const char *const *kv)
{
    char err[256];
    int status;
    struct aravis_camera *cam = open_with(kv, &status, err, sizeof err);
    if (cam == NULL) fail_msg("open: %s", err);
    return cam;
}

/* Waits for a frame, allowing a few timeouts on the way. */
static void next_frame(struct aravis_camera *cam, struct frame *f)
{
    for (int i = 0; i < 20; i++) {
        int st = aravis_next(cam, f, 200);
        if (st == SOURCE_OK) return;
        assert_int_equal(st, SOURCE_TIMEOUT);
    }
    fail_msg("no frame in 4 s");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void config_rejects_bad_values(void **state)
{
    struct aravis_config cfg;
    char err[128];
    aravis_config_init(&cfg);
    assert_int_equal(aravis_config_set(&cfg, "pixel_format", "YUV422", err, sizeof err), -1);
    assert_non_null(strstr(err, "Mono8"));
    assert_int_equal(aravis_config_set(&cfg, "width", "1", err, sizeof err), -1);
    assert_int_equal(aravis_config_set(&cfg, "fps", "fast", err, sizeof err), -1);
    assert_int_equal(aravis_config_set(&cfg, "trigger", "line", err, sizeof err), -1);
    assert_int_equal(aravis_config_set(&cfg, "buffers", "1000", err, sizeof err), -1);
    assert_int_equal(aravis_config_set(&cfg, "exposure_us", "-5", err, sizeof err), -1);
    assert_int_equal(aravis_config_set(&cfg, "colour", "red", err, sizeof err), -1);
    assert_string_equal(err, "unknown key");
    assert_int_equal(aravis_config_set(&cfg, "pixel_format", "bayerrg8", err, sizeof err), 0);
    assert_string_equal(cfg.pixel_format, "BayerRG8");
    assert_int_equal(aravis_config_set(&cfg, "gain", "auto", err, sizeof err), 0);
    assert_true(cfg.gain_auto);
}

static void mono8_frames_have_the_region_and_the_camera_pixels(void **state)
{
    const char *kv[] = {"pixel_format", "Mono8", "width",    "320", "height", "240",
                        "offset_x",     "16",    "offset_y", "8",   "fps",    "50",
                        "exposure_us",  "20000", "gain",     "3",   NULL};
    struct aravis_camera *cam = must_open(kv);
    struct frame prev = {0};
    for (int n = 0; n < 5; n++) {
        struct frame f;
        next_frame(cam, &f);
        assert_int_equal(f.format, FRAME_MONO8);
        assert_int_equal(f.width, 320);
        assert_int_equal(f.height, 240);
        assert_int_equal(f.stride, 320);
        assert_int_equal(f.size, 320 * 240);
        uint8_t k = f.data[0];
        for (int y = 0; y < f.height; y++)
            for (int x = 0; x < f.width; x++)
                assert_int_equal(f.data[y * f.stride + x], (uint8_t)(7 * x + 13 * y + k));
        /* the camera stamped k = its frame count; seq follows the camera's frame ids */
        if (prev.data) {
            assert_int_equal((uint8_t)(k - prev.data[0]), (uint8_t)(f.seq - prev.seq));
            assert_true(f.captured_at_us > prev.captured_at_us);
        }
        frame_free(&prev);
        prev = f;
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    assert_true(llabs(prev.captured_at_us - (wall.tv_sec * 1000000LL + wall.tv_nsec / 1000)) <
                2000000);
    frame_free(&prev);
    assert_int_equal(atomic_load(&last_exposure), 20000);
    assert_int_equal(atomic_load(&last_gain), 3);
    struct aravis_stats st;
    aravis_stats(cam, &st);
    assert_int_equal(st.state, ARAVIS_STREAMING);
    assert_int_equal(st.frames, 5);
    aravis_close(cam);
}

static void rgb8_and_bayer_frames_come_out_rgb(void **state)
{
    const char *rgb[] = {"pixel_format", "RGB8", "width", "64", "height", "48", NULL};
    struct aravis_camera *cam = must_open(rgb);
    struct frame f;
    next_frame(cam, &f);
    assert_int_equal(f.format, FRAME_RGB8);
    assert_int_equal(f.width, 64);
    assert_int_equal(f.stride, 64 * 3);
    for (int y = 0; y < f.height; y++)
        for (int x = 0; x < f.width; x++) {
            assert_int_equal(f.data[y * f.stride + x * 3], x);
            assert_int_equal(f.data[y * f.stride + x * 3 + 1], y);
        }
    frame_free(&f);
    aravis_close(cam);

    const char *bayer[] = {"pixel_format", "BayerRG8", "width", "64", "height", "48", NULL};
    cam = must_open(bayer);
    next_frame(cam, &f);
    assert_int_equal(f.format, FRAME_RGB8);
    assert_int_equal(f.size, 64 * 48 * 3);
    for (size_t i = 0; i < f.size; i += 3) {
        assert_int_equal(f.data[i], 200);
        assert_int_equal(f.data[i + 1], 100);
        assert_int_equal(f.data[i + 2], 30);
    }
    frame_free(&f);
    aravis_close(cam);
}

static void software_trigger_gives_exactly_the_triggered_frames(void **state)
{
    const char *kv[] = {"trigger", "software", "width", "128", "height", "128", NULL};
    struct aravis_camera *cam = must_open(kv);
    usleep(300000);
    assert_int_equal(atomic_load(&filled), 0); /* nothing until triggered */
    for (uint64_t n = 0; n < 6; n++) {
        struct frame f;
        next_frame(cam, &f);
        assert_int_equal(f.seq, n);
        assert_int_equal(f.data[0], (uint8_t)(n + 1));
        frame_free(&f);
    }
    usleep(300000);
    assert_int_equal(atomic_load(&filled), 6);
    struct aravis_stats st;
    aravis_stats(cam, &st);
    assert_int_equal(st.frames, 6);
    assert_int_equal(st.incomplete, 0);
    aravis_close(cam);
}

static void hardware_trigger_waits_without_calling_the_camera_lost(void **state)
{
    const char *kv[] = {"trigger", "hardware", "trigger_source", "Line0", NULL};
    struct aravis_camera *cam = must_open(kv);
    struct frame f;
    /* longer than the silence after which the driver checks that the camera answers */
    for (int i = 0; i < 3; i++) assert_int_equal(aravis_next(cam, &f, 600), SOURCE_TIMEOUT);
    struct aravis_stats st;
    aravis_stats(cam, &st);
    assert_int_equal(st.state, ARAVIS_STREAMING);
    assert_int_equal(st.losses, 0);
    assert_int_equal(atomic_load(&filled), 0);
    aravis_close(cam);

    char err[256];
    int status;
    const char *bad_line[] = {"trigger", "hardware", "trigger_source", "Line7", NULL};
    assert_null(open_with(bad_line, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_EINVAL);
    assert_non_null(strstr(err, "TriggerSource"));
    const char *fps_with_hw[] = {"trigger", "hardware", "fps", "10", NULL};
    assert_null(open_with(fps_with_hw, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_EINVAL);
}

/* Calls aravis_next until it returns `want` or `seconds` pass; frees any frame on the way. */
static double until_status(struct aravis_camera *cam, int want, double seconds)
{
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        struct frame f;
        int st = aravis_next(cam, &f, 200);
        if (st == SOURCE_OK) frame_free(&f);
        if (st == want) return now_s() - t0;
    }
    fail_msg("status %d not seen in %.0f s", want, seconds);
    return 0;
}

static void camera_stopped_is_lost_and_recovers_when_restarted(void **state)
{
    const char *kv[] = {"fps", "50", "width", "128", "height", "96", NULL};
    struct aravis_camera *cam = must_open(kv);
    struct frame f;
    next_frame(cam, &f);
    uint64_t seq_before = f.seq;
    frame_free(&f);

    stop_fake();
    double t_lost = until_status(cam, SOURCE_ELOST, 10);
    struct aravis_stats st;
    aravis_stats(cam, &st);
    assert_int_equal(st.state, ARAVIS_LOST);
    assert_int_equal(st.losses, 1);
    print_message("lost after %.1f s\n", t_lost);
    /* still lost a while later: the reconnect tries fail without a camera */
    until_status(cam, SOURCE_ELOST, 2);

    start_fake();
    double t_back = until_status(cam, SOURCE_OK, 20);
    print_message("frames again %.1f s after the restart\n", t_back);
    aravis_stats(cam, &st);
    assert_int_equal(st.state, ARAVIS_STREAMING);
    assert_int_equal(st.reconnects, 1);
    next_frame(cam, &f);
    assert_true(f.seq > seq_before && f.seq < seq_before + 100); /* goes on, no jump */
    assert_int_equal(f.width, 128);
    assert_int_equal(f.data[1], (uint8_t)(f.data[0] + 7));
    frame_free(&f);
    aravis_close(cam);
}

static void open_names_the_cameras_it_found(void **state)
{
    struct aravis_config cfg;
    char err[256];
    int status;
    aravis_config_init(&cfg);
    assert_int_equal(aravis_config_set(&cfg, "device", "Nobody-Nothing-0", err, sizeof err), 0);
    assert_null(aravis_open("test", &cfg, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_ENODEV);
    assert_non_null(strstr(err, "Nobody-Nothing-0"));
    assert_non_null(strstr(err, DEVICE_ID));
}

static void collect(const struct camera_info *ci, void *ctx)
{
    if (strcmp(ci->id, DEVICE_ID) == 0) *(struct camera_info *)ctx = *ci;
}

static void list_shows_the_fake_camera_and_its_formats(void **state)
{
    struct camera_info ci = {0};
    char err[128];
    assert_true(aravis_list(collect, &ci, err, sizeof err) >= 1);
    assert_string_equal(ci.id, DEVICE_ID);
    assert_string_equal(ci.driver, "aravis");
    assert_string_equal(ci.vendor, "Aravis");
    assert_string_equal(ci.serial, SERIAL);
    assert_string_equal(ci.address, "127.0.0.1");
    assert_string_equal(ci.formats, "Mono8,RGB8,BayerRG8,BayerBG8,BayerGB8,BayerGR8");
}

int main(void)
{
    int lock = open("/tmp/inspectd-test-gvfake.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        perror("/tmp/inspectd-test-gvfake.lock");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_rejects_bad_values),
        cmocka_unit_test_setup_teardown(mono8_frames_have_the_region_and_the_camera_pixels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rgb8_and_bayer_frames_come_out_rgb, setup, teardown),
        cmocka_unit_test_setup_teardown(software_trigger_gives_exactly_the_triggered_frames, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(hardware_trigger_waits_without_calling_the_camera_lost,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(camera_stopped_is_lost_and_recovers_when_restarted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(open_names_the_cameras_it_found, setup, teardown),
        cmocka_unit_test_setup_teardown(list_shows_the_fake_camera_and_its_formats, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    arv_shutdown();
    close(lock);
    return failed;
}
