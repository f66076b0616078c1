/* test_folder.c — the folder driver on files this test writes into a temporary directory: replay
 * order, looping and skips; watch mode ingesting every file exactly once (files present at start,
 * half-written files, renamed-into-place files, non-images), delete/move after ingest, and the
 * directory going away. Each image's width tells which file a frame came from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "source.h"

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob encode(int width, bool png)
{
    struct image im;
    assert_int_equal(image_alloc(&im, width, 16, 3), IMAGE_OK);
    for (size_t i = 0; i < im.stride * 16; i++) im.data[i] = (uint8_t)(i * 7);
    struct blob b;
    char err[128];
    int rc = png ? image_encode_png(&im, &b.data, &b.len, err, sizeof err)
                 : image_encode_jpeg(&im, 80, &b.data, &b.len, err, sizeof err);
    assert_int_equal(rc, IMAGE_OK);
    image_free(&im);
    return b;
}

static void write_bytes(const char *dir, const char *name, const void *buf, size_t len, int flags)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* Writes an image `width` pixels wide as dir/name. */
static void write_image(const char *dir, const char *name, int width)
{
    struct blob b = encode(width, strstr(name, ".png") != NULL);
    write_bytes(dir, name, b.data, b.len, O_TRUNC);
    free(b.data);
}

static int frame_width(const struct frame *f)
{
    int w, h;
    assert_int_equal(image_probe(f->data, f->size, &w, &h), IMAGE_OK);
    assert_int_equal(w, f->width);
    assert_int_equal(h, f->height);
    return w;
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/inspectd-folder-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static struct source *open_folder(const char *dir, const char *mode, const char *k1, const char *v1)
{
    struct source_param p[] = {{"path", dir}, {"mode", mode}, {"fps", "0"}, {k1, v1}};
    char err[256];
    int status;
    struct source *s = source_open("cam", "folder", p, k1 ? 4 : 3, &status, err, sizeof err);
    if (!s) fail_msg("open failed: %s", err);
    return s;
}

static int next_width(struct source *s, int timeout_ms)
{
    struct frame f;
    int rc = source_next(s, &f, timeout_ms);
    if (rc != SOURCE_OK) return rc == SOURCE_TIMEOUT ? 0 : rc;
    int w = frame_width(&f);
    frame_free(&f);
    return w;
}

static char *replay_dir(void)
{
    char *dir = make_dir();
    write_image(dir, "img10.jpg", 60);
    write_image(dir, "img9.png", 50);
    write_image(dir, "img1.JPG", 40);
    write_bytes(dir, "notes.txt", "hello", 5, 0);
    write_bytes(dir, "bad.jpg", "not a jpeg at all", 17, 0);
    struct blob b = encode(70, false);
    write_bytes(dir, "cut.jpg", b.data, b.len / 2, 0);
    free(b.data);
    write_image(dir, ".hidden.jpg", 80);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub.png", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    return dir;
}

static void replay_plays_images_in_natural_order_and_skips_the_rest(void **state)
{
    char *dir = replay_dir();
    struct source *s = open_folder(dir, "replay", NULL, NULL);
    const int widths[] = {40, 50, 60};
    const enum frame_format formats[] = {FRAME_JPEG, FRAME_PNG, FRAME_JPEG};
    for (int i = 0; i < 3; i++) {
        struct frame f;
        assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
        assert_int_equal(frame_width(&f), widths[i]);
        assert_int_equal(f.format, formats[i]);
        assert_int_equal(f.seq, i);
        assert_false(f.has_truth);
        frame_free(&f);
    }
    struct frame f;
    assert_int_equal(source_next(s, &f, 1000), SOURCE_END);
    assert_int_equal(source_next(s, &f, 1000), SOURCE_END);
    source_close(s);
    remove_dir(dir);
}

static void replay_loops_at_its_pace(void **state)
{
    char *dir = replay_dir();
    struct source_param p[] = {{"path", dir}, {"loop", "true"}, {"fps", "50"}};
    char err[256];
    struct source *s = source_open("cam", "folder", p, 3, NULL, err, sizeof err);
    assert_non_null(s);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int widths[] = {40, 50, 60, 40, 50, 60, 40};
    for (int i = 0; i < 7; i++) assert_int_equal(next_width(s, 1000), widths[i]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms > 110 && ms < 250); /* six periods of 20 ms after the first frame */
    source_close(s);
    remove_dir(dir);
}

static void bad_folders_and_parameters_are_refused(void **state)
{
    char err[256];
    int status;
    struct source_param missing[] = {{"path", "/nonexistent/inspectd-images"}};
    assert_null(source_open("cam", "folder", missing, 1, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_ENODEV);
    assert_non_null(strstr(err, "/nonexistent/inspectd-images"));

    char *dir = make_dir();
    write_image(dir, "a.jpg", 20);
    char file[512];
    snprintf(file, sizeof file, "%s/a.jpg", dir);
    struct source_param not_dir[] = {{"path", file}};
    assert_null(source_open("cam", "folder", not_dir, 1, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_ENODEV);
    assert_non_null(strstr(err, "not a directory"));

    struct source_param replay_delete[] = {{"path", dir}, {"delete_after_ingest", "yes"}};
    assert_null(source_open("cam", "folder", replay_delete, 2, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_EINVAL);
    assert_null(source_open("cam", "folder", NULL, 0, &status, err, sizeof err));
    assert_int_equal(status, SOURCE_EINVAL);
    assert_non_null(strstr(err, "path"));

    assert_int_equal(source_check_param("folder", "mode", "watch", err, sizeof err), 0);
    assert_int_equal(source_check_param("folder", "mode", "poll", err, sizeof err), -1);
    assert_int_equal(source_check_param("folder", "loop", "maybe", err, sizeof err), -1);
    assert_int_equal(source_check_param("folder", "fps", "-2", err, sizeof err), -1);
    assert_int_equal(source_check_param("folder", "width", "10", err, sizeof err), -1);
    remove_dir(dir);
}

/* Collects frames until the source is quiet for quiet_ms; counts each width seen. */
static int drain(struct source *s, int *count, int ncount, int quiet_ms)
{
    int n = 0, w;
    while ((w = next_width(s, quiet_ms)) > 0) {
        assert_in_range(w, 0, ncount - 1);
        count[w]++;
        n++;
    }
    assert_int_equal(w, 0); /* timeout, not an error */
    return n;
}

static void watch_ingests_every_file_exactly_once(void **state)
{
    char *dir = make_dir();
    write_image(dir, "a1.jpg", 21);
    write_image(dir, "a0.png", 20);
    struct source *s = open_folder(dir, "watch", NULL, NULL);
    /* files present at start come first, in name order */
    assert_int_equal(next_width(s, 1000), 20);
    assert_int_equal(next_width(s, 1000), 21);

    write_image(dir, "b.jpg", 22);
    write_bytes(dir, "c.txt", "text", 4, 0);
    write_bytes(dir, "f.jpg", "garbage", 7, 0);
    char tmp[512], final[512];
    write_image(dir, ".e.jpg.tmp", 24);
    snprintf(tmp, sizeof tmp, "%s/.e.jpg.tmp", dir);
    snprintf(final, sizeof final, "%s/e.jpg", dir);
    assert_int_equal(rename(tmp, final), 0);
    /* a1.jpg opened for writing and closed unchanged: an event, but the same file */
    write_bytes(dir, "a1.jpg", "", 0, O_APPEND);

    struct blob d = encode(23, false);
    write_bytes(dir, "d.jpg", d.data, d.len / 2, 0); /* the writer closes half-way */
    int count[64] = {0};
    assert_int_equal(drain(s, count, 64, 300), 2);
    assert_int_equal(count[22], 1);
    assert_int_equal(count[24], 1);
    write_bytes(dir, "d.jpg", d.data + d.len / 2, d.len - d.len / 2, O_APPEND);
    free(d.data);
    assert_int_equal(drain(s, count, 64, 300), 1);
    assert_int_equal(count[23], 1);

    /* many files arriving while frames are taken: each once */
    for (int i = 0; i < 30; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%02d.png", i);
        write_image(dir, name, 30 + i);
        if (i % 3 == 0) count[next_width(s, 1000)]++;
    }
    drain(s, count, 64, 300);
    for (int i = 30; i < 60; i++) assert_int_equal(count[i], 1);
    source_close(s);
    remove_dir(dir);
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Reads the next frame (its width), checks its input is still there, then reports it stored. */
static int next_stored(struct source *s, const char *dir, const char *name)
{
    struct frame f = {0};
    int rc = source_next(s, &f, 1000);
    assert_int_equal(rc, SOURCE_OK);
    assert_non_null(f.origin);
    assert_true(exists(dir, name)); /* nothing is disposed of before the frame is stored */
    int width = frame_width(&f);
    frame_stored(&f);
    assert_null(f.origin);
    frame_free(&f);
    return width;
}

static void watch_deletes_or_moves_what_it_ingested(void **state)
{
    char *dir = make_dir(), *done = make_dir();
    write_image(dir, "x.jpg", 20);
    struct source *s = open_folder(dir, "watch", "delete_after_ingest", "true");
    assert_int_equal(next_stored(s, dir, "x.jpg"), 20);
    assert_false(exists(dir, "x.jpg"));
    write_image(dir, "x.jpg", 21); /* the same name again is a new file */
    assert_int_equal(next_stored(s, dir, "x.jpg"), 21);
    assert_false(exists(dir, "x.jpg"));
    source_close(s);

    s = open_folder(dir, "watch", "move_to", done);
    write_image(dir, "y.png", 22);
    assert_int_equal(next_stored(s, dir, "y.png"), 22);
    write_image(dir, "y.png", 23);
    assert_int_equal(next_stored(s, dir, "y.png"), 23);
    assert_false(exists(dir, "y.png"));
    assert_true(exists(done, "y.png"));
    assert_true(exists(done, "y-1.png"));
    source_close(s);
    remove_dir(dir), remove_dir(done);
}

/* A frame that is never stored (dropped, failed, or the daemon killed before its commit) leaves
 * its file in the folder, and the next start reads it again. */
static void watch_keeps_what_was_not_stored(void **state)
{
    char *dir = make_dir();
    write_image(dir, "z.jpg", 24);
    struct source *s = open_folder(dir, "watch", "delete_after_ingest", "true");
    struct frame f = {0};
    assert_int_equal(source_next(s, &f, 1000), SOURCE_OK);
    frame_free(&f);
    assert_int_equal(next_width(s, 100), 0); /* read once per run */
    source_close(s);
    assert_true(exists(dir, "z.jpg"));
    s = open_folder(dir, "watch", "delete_after_ingest", "true");
    assert_int_equal(next_stored(s, dir, "z.jpg"), 24);
    assert_false(exists(dir, "z.jpg"));
    source_close(s);
    remove_dir(dir);
}

static void watch_reports_a_vanished_directory(void **state)
{
    char *dir = make_dir();
    struct source *s = open_folder(dir, "watch", NULL, NULL);
    assert_int_equal(next_width(s, 50), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(next_width(s, 1000), SOURCE_ELOST);
    assert_int_equal(next_width(s, 10), SOURCE_ELOST);
    source_close(s);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_plays_images_in_natural_order_and_skips_the_rest),
        cmocka_unit_test(replay_loops_at_its_pace),
        cmocka_unit_test(bad_folders_and_parameters_are_refused),
        cmocka_unit_test(watch_ingests_every_file_exactly_once),
        cmocka_unit_test(watch_deletes_or_moves_what_it_ingested),
        cmocka_unit_test(watch_keeps_what_was_not_stored),
        cmocka_unit_test(watch_reports_a_vanished_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
