/* test_pipeline.c — the frame queue (drop-oldest, counted against the right camera, drained after
 * close), the writer's batches into a real SQLite file, and the whole capture pipeline with
 * synthetic cameras delivering raw RGB (encoded to JPEG) and JPEG frames, and a camera that is
 * missing at start and retried until it appears. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "clock.h"
#include "tmpdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "image.h"
#include "capture/pipeline.h"
#include "capture/queue.h"
#include "store/store.h"
#include "capture/writer.h"

static struct queue_item item(int camera, uint64_t seq)
{
    struct queue_item it = {.camera = camera};
    it.frame.format = FRAME_JPEG;
    it.frame.seq = seq;
    it.frame.width = 8;
    it.frame.height = 8;
    it.frame.size = 16;
    it.frame.data = calloc(1, 16);
    it.frame.data[0] = (uint8_t)seq;
    return it;
}

static void queue_drops_oldest(void **state)
{
    struct frame_queue *q = queue_create(3);
    assert_non_null(q);
    for (uint64_t i = 0; i < 3; i++) {
        struct queue_item it = item((int)i, i);
        assert_int_equal(queue_push(q, &it), -1);
        assert_null(it.frame.data); /* moved into the queue */
    }
    struct queue_item it = item(7, 3);
    assert_int_equal(queue_push(q, &it), 0); /* camera 0's frame 0 was the oldest */
    it = item(7, 4);
    assert_int_equal(queue_push(q, &it), 1);
    assert_int_equal(queue_depth(q), 3);

    struct queue_item out;
    assert_int_equal(queue_pop(q, &out, -1), 1);
    assert_int_equal(out.frame.seq, 2);
    frame_free(&out.frame);
    assert_int_equal(queue_pop(q, &out, clock_mono_ns() + 1000000), 1);
    frame_free(&out.frame);
    assert_int_equal(queue_pop(q, &out, clock_mono_ns() + 1000000), 1);
    assert_int_equal(out.frame.seq, 4);
    frame_free(&out.frame);
    int64_t t0 = clock_mono_ns();
    assert_int_equal(queue_pop(q, &out, t0 + 20000000), 0); /* empty: times out */
    assert_true(clock_mono_ns() - t0 >= 20000000);

    it = item(0, 5);
    assert_int_equal(queue_push(q, &it), -1);
    queue_close(q);
    it = item(0, 6);
    assert_int_equal(queue_push(q, &it), -2);    /* refused and freed after close */
    assert_int_equal(queue_pop(q, &out, -1), 1); /* what was queued still drains */
    frame_free(&out.frame);
    assert_int_equal(queue_pop(q, &out, -1), -1);
    queue_destroy(q);
}

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_pipeline_XXXXXX");
}

static int teardown(void **state)
{
    return tmpdb_teardown(state);
}

static int64_t count_frames(const char *path, const char *camera)
{
    char err[256];
    struct store_pool *p = store_pool_open(path, 1, err, sizeof err);
    assert_non_null(p);
    struct store_reader *r = store_pool_get(p);
    struct store_frame_info *list = calloc(1000, sizeof *list);
    int n = store_list_frames(r, camera, 0, list, 1000);
    free(list);
    store_pool_put(p, r);
    store_pool_close(p);
    return n;
}

static void writer_stores_every_frame(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct store *s = store_open(f->path, err, sizeof err);
    assert_non_null(s);
    int64_t ids[2];
    assert_int_equal(store_camera(s, "a", "synthetic", &ids[0]), 0);
    assert_int_equal(store_camera(s, "b", "synthetic", &ids[1]), 0);
    struct frame_queue *q = queue_create(1000);
    struct metrics_camera counters[2] = {0};
    struct metrics_histogram latency;
    const double bounds[] = {0.001, 0.01, 0.1};
    metrics_histogram_init(&latency, bounds, 3);
    struct writer_config wc = {.store = s,
                               .queue = q,
                               .camera_ids = ids,
                               .counters = counters,
                               .ncameras = 2,
                               .batch_frames = 7,
                               .batch_ms = 5,
                               .commit_latency = &latency};
    struct writer *w = writer_start(&wc, err, sizeof err);
    assert_non_null(w);
    for (uint64_t i = 0; i < 300; i++) {
        struct queue_item it = item((int)(i % 2), i);
        assert_int_equal(queue_push(q, &it), -1);
        if (i % 50 == 0) usleep(2000);
    }
    writer_stop(w); /* drains and commits */
    assert_int_equal(atomic_load(&counters[0].stored), 150);
    assert_int_equal(atomic_load(&counters[1].stored), 150);
    assert_int_equal(atomic_load(&counters[0].failed), 0);
    assert_true(atomic_load(&latency.count) >= 300 / 7); /* batches of at most 7 */
    queue_destroy(q);
    store_close(s);
    assert_int_equal(count_frames(f->path, "a"), 150);
    assert_int_equal(count_frames(f->path, NULL), 300);
}

static struct config two_cameras(const char *db, char *err, size_t errsz)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[store]\npath = %s\njpeg_quality = 80\n"
             "[camera.raw]\ndriver = synthetic\nformat = rgb8\nwidth = 96\nheight = 64\n"
             "fps = 0\nframes = 40\n"
             "[camera.jpeg]\ndriver = synthetic\nwidth = 64\nheight = 64\nfps = 200\n",
             db);
    struct config cfg;
    if (config_parse_string(&cfg, text, "test", err, errsz) < 0) fail_msg("%s", err);
    return cfg;
}

static void pipeline_captures_encodes_and_drains(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct config cfg = two_cameras(f->path, err, sizeof err);
    struct store *s = store_open(f->path, err, sizeof err);
    assert_non_null(s);
    struct pipeline *p = pipeline_start(&cfg, s, err, sizeof err);
    assert_non_null(p);
    struct pipeline_camera_status st;
    for (int i = 0; i < 200; i++) { /* up to 2 s for the finite camera to end */
        pipeline_camera_status(p, 0, &st);
        if (st.state == CAMERA_ENDED) break;
        usleep(10000);
    }
    assert_int_equal(st.state, CAMERA_ENDED);
    assert_int_equal(st.captured, 40);
    assert_true(pipeline_ready(p));
    pipeline_stop(p);
    pipeline_camera_status(p, 1, &st); /* still readable after the stop */
    assert_true(st.stored > 0 && st.stored == st.captured - st.dropped - st.failed);
    pipeline_free(p);
    store_close(s);
    assert_int_equal(count_frames(f->path, "raw"), 40);
    assert_true(count_frames(f->path, "jpeg") > 0);

    /* The raw frames were encoded: each stored image decodes to 96 x 64. */
    struct store_pool *pool = store_pool_open(f->path, 1, err, sizeof err);
    struct store_reader *r = store_pool_get(pool);
    struct store_frame_info list[40];
    assert_int_equal(store_list_frames(r, "raw", 0, list, 40), 40);
    for (int i = 0; i < 40; i++) {
        void *data;
        size_t size;
        struct store_frame_info info;
        assert_int_equal(store_get_image(r, list[i].id, &data, &size, &info), 1);
        assert_string_equal(info.format, "jpeg");
        struct image im = {0};
        assert_int_equal(image_decode(data, size, NULL, &im, err, sizeof err), IMAGE_OK);
        assert_int_equal(im.width, 96);
        assert_int_equal(im.height, 64);
        assert_int_equal(info.seq, 39 - (uint64_t)i);
        image_free(&im);
        free(data);
    }
    store_pool_put(pool, r);
    store_pool_close(pool);
    config_free(&cfg);
}

static void write_png(const char *path)
{
    struct image im = {0};
    uint8_t *png;
    size_t len;
    char err[256];
    assert_int_equal(image_alloc(&im, 32, 24, 3), IMAGE_OK);
    memset(im.data, 128, im.stride * 24);
    assert_int_equal(image_encode_png(&im, &png, &len, err, sizeof err), IMAGE_OK);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(png, 1, len, f), len);
    fclose(f);
    free(png);
    image_free(&im);
}

/* A camera whose folder does not exist yet: in error (not ready), retried with back-off, then
 * streaming once the folder appears. */
static void missing_source_is_retried(void **state)
{
    struct fixture *f = *state;
    char text[1024], err[256], images[128], png[160];
    snprintf(images, sizeof images, "%s/images", f->dir);
    snprintf(text, sizeof text,
             "[store]\npath = %s\n[camera.late]\ndriver = folder\npath = %s\nmode = watch\n",
             f->path, images);
    struct config cfg;
    if (config_parse_string(&cfg, text, "test", err, sizeof err) < 0) fail_msg("%s", err);
    struct store *s = store_open(f->path, err, sizeof err);
    struct pipeline *p = pipeline_start(&cfg, s, err, sizeof err);
    assert_non_null(p);
    struct pipeline_camera_status st;
    usleep(200000);
    pipeline_camera_status(p, 0, &st);
    assert_int_equal(st.state, CAMERA_ERROR);
    assert_true(st.source_errors >= 1);
    assert_true(st.last_error[0] != '\0');
    assert_false(pipeline_ready(p));

    assert_int_equal(mkdir(images, 0755), 0);
    snprintf(png, sizeof png, "%s/a.png", images);
    write_png(png);
    for (int i = 0; i < 400 && st.captured == 0; i++) { /* back-off: 0.5 s, then 1 s */
        usleep(10000);
        pipeline_camera_status(p, 0, &st);
    }
    assert_int_equal(st.captured, 1);
    assert_int_equal(st.state, CAMERA_STREAMING);
    assert_true(pipeline_ready(p));
    pipeline_free(p);
    store_close(s);
    assert_int_equal(count_frames(f->path, "late"), 1);
    config_free(&cfg);
}

/* delete_after_ingest through the whole pipeline: each file leaves the folder once its frame is
 * committed, and every file is in the database. */
static void watched_files_go_once_stored(void **state)
{
    struct fixture *f = *state;
    char text[1024], err[256], images[128], png[160];
    snprintf(images, sizeof images, "%s/drop", f->dir);
    assert_int_equal(mkdir(images, 0755), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(png, sizeof png, "%s/p%d.png", images, i);
        write_png(png);
    }
    snprintf(text, sizeof text,
             "[store]\npath = %s\n[camera.drop]\ndriver = folder\npath = %s\nmode = watch\n"
             "delete_after_ingest = true\n",
             f->path, images);
    struct config cfg;
    if (config_parse_string(&cfg, text, "test", err, sizeof err) < 0) fail_msg("%s", err);
    struct store *s = store_open(f->path, err, sizeof err);
    struct pipeline *p = pipeline_start(&cfg, s, err, sizeof err);
    assert_non_null(p);
    int left = 5;
    for (int i = 0; i < 500 && left; i++) {
        usleep(10000);
        left = 0;
        for (int k = 0; k < 5; k++) {
            snprintf(png, sizeof png, "%s/p%d.png", images, k);
            left += access(png, F_OK) == 0;
        }
    }
    assert_int_equal(left, 0);
    pipeline_free(p);
    store_close(s);
    assert_int_equal(count_frames(f->path, "drop"), 5);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_drops_oldest),
        cmocka_unit_test_setup_teardown(writer_stores_every_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(pipeline_captures_encodes_and_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_source_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(watched_files_go_once_stored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
