/* bench_ingest.c — ingest throughput of the daemon's storage path: 640x480 JPEG frames (rendered
 * by the synthetic camera beforehand, so rendering costs nothing here) pushed by a producer thread
 * through the bounded queue into the writer thread and SQLite, with the daemon's default batching,
 * for --seconds per run, --runs times. Prints each run's frames/s, drops, CPU and database growth,
 * then the median as `ingest_frames_per_s: N`.
 *
 * It also measures what a raw frame costs to JPEG-encode (the capture thread does it, see
 * pipeline.h) and, with --raw-seconds S > 0, one run where the producer pushes raw RGB frames and
 * encodes each, as a capture thread does (ingest limited by one camera's encoding). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_common.h"
#include "image.h"
#include "base/metrics.h"
#include "capture/queue.h"
#include "store/store.h"
#include "synthetic.h"
#include "capture/writer.h"

#define NFRAMES      32 /* distinct frames, pushed round-robin */
#define WIDTH        640
#define HEIGHT       480
#define QUEUE_SIZE   256 /* the daemon's defaults */
#define BATCH_FRAMES 64
#define BATCH_MS     100
#define JPEG_QUALITY 90

struct sample {
    struct image rgb;
    uint8_t *jpeg;
    size_t jpeg_size;
    struct frame_truth truth;
};

struct producer {
    struct frame_queue *queue;
    const struct sample *samples;
    bool raw; /* encode each frame from RGB, as a capture thread does for raw cameras */
    double seconds;
    atomic_bool stop;
    uint64_t pushed, dropped;
};

static void render_samples(struct sample *s)
{
    struct synthetic_params p;
    synthetic_params_default(&p);
    p.width = WIDTH;
    p.height = HEIGHT;
    char err[256];
    for (int i = 0; i < NFRAMES; i++) {
        if (synthetic_render(&p, (uint64_t)i, &s[i].rgb, &s[i].truth) != IMAGE_OK ||
            image_encode_jpeg(&s[i].rgb, JPEG_QUALITY, &s[i].jpeg, &s[i].jpeg_size, err,
                              sizeof err) != IMAGE_OK) {
            fprintf(stderr, "bench_ingest: cannot render frame %d: %s\n", i, err);
            exit(1);
        }
    }
}

/* A frame as a driver hands it over: its own copy of the bytes. */
static int make_frame(const struct sample *s, bool raw, uint64_t seq, struct frame *f)
{
    memset(f, 0, sizeof *f);
    f->width = WIDTH;
    f->height = HEIGHT;
    f->seq = seq;
    f->captured_at_us = (int64_t)(bench_now() * 1e6);
    f->has_truth = true;
    f->truth = s->truth;
    f->format = FRAME_JPEG;
    if (!raw) {
        if (!(f->data = malloc(s->jpeg_size))) return -1;
        memcpy(f->data, s->jpeg, s->jpeg_size);
        f->size = s->jpeg_size;
        return 0;
    }
    char err[256];
    return image_encode_jpeg(&s->rgb, JPEG_QUALITY, &f->data, &f->size, err, sizeof err) == IMAGE_OK
               ? 0
               : -1;
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (uint64_t seq = 0; !atomic_load(&p->stop); seq++) {
        while (queue_depth(p->queue) >= QUEUE_SIZE && !atomic_load(&p->stop)) usleep(200);
        if (atomic_load(&p->stop)) break;
        struct queue_item it = {.camera = 0};
        if (make_frame(&p->samples[seq % NFRAMES], p->raw, seq, &it.frame) < 0) {
            fprintf(stderr, "bench_ingest: out of memory\n");
            exit(1);
        }
        if (queue_push(p->queue, &it) >= 0) p->dropped++;
        p->pushed++;
    }
    return NULL;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

struct run_result {
    double frames_per_s;
    double db_mib;
};

static struct run_result run_once(const struct sample *samples, bool raw, double seconds, int n)
{
    char dir[] = "/tmp/bench_ingest_XXXXXX", path[128], wal[160], err[512];
    if (!mkdtemp(dir)) exit(1);
    snprintf(path, sizeof path, "%s/ingest.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct store *store = store_open(path, err, sizeof err);
    int64_t camera;
    if (!store || store_camera(store, "bench", "synthetic", &camera) < 0) {
        fprintf(stderr, "bench_ingest: %s\n", store ? store_errmsg(store) : err);
        exit(1);
    }
    int64_t size0 = file_size(path) + file_size(wal);
    struct frame_queue *queue = queue_create(QUEUE_SIZE);
    struct metrics_camera counters = {0};
    struct metrics_histogram latency;
    const double bounds[] = {0.001, 0.01, 0.1, 1};
    metrics_histogram_init(&latency, bounds, 4);
    struct writer_config wc = {.store = store,
                               .queue = queue,
                               .camera_ids = &camera,
                               .counters = &counters,
                               .ncameras = 1,
                               .batch_frames = BATCH_FRAMES,
                               .batch_ms = BATCH_MS,
                               .commit_latency = &latency};
    struct producer prod = {.queue = queue, .samples = samples, .raw = raw, .seconds = seconds};

    double cpu0 = cpu_seconds(), t0 = bench_now();
    struct writer *w = writer_start(&wc, err, sizeof err);
    pthread_t thread;
    if (!w || pthread_create(&thread, NULL, produce, &prod) != 0) exit(1);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&prod.stop, true);
    pthread_join(thread, NULL);
    writer_stop(w); /* drains and commits what is queued */
    double elapsed = bench_now() - t0, cpu = cpu_seconds() - cpu0;

    uint64_t stored = atomic_load(&counters.stored);
    int64_t growth = file_size(path) + file_size(wal) - size0;
    struct run_result r = {(double)stored / elapsed, (double)growth / (1024.0 * 1024.0)};
    printf("run %d%s: %.1f s, %llu frames stored (%llu dropped, %llu failed), %.0f frames/s, "
           "%.0f commits, CPU %.0f%% of one core, DB grew %.0f MiB (%.1f MiB/s, %.1f KiB/frame)\n",
           n, raw ? " (raw, encoded by the producer)" : "", elapsed, (unsigned long long)stored,
           (unsigned long long)prod.dropped, (unsigned long long)atomic_load(&counters.failed),
           r.frames_per_s, (double)atomic_load(&latency.count), 100.0 * cpu / elapsed, r.db_mib,
           r.db_mib / elapsed, stored ? (double)growth / 1024.0 / (double)stored : 0.0);
    fflush(stdout);
    queue_destroy(queue);
    store_close(store);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_ingest: cannot remove %s\n", dir);
    return r;
}

/* Median time to JPEG-encode one raw 640x480 RGB frame, in ms. */
static double encode_ms(const struct sample *samples)
{
    double t[64];
    char err[256];
    for (int i = 0; i < 64; i++) {
        uint8_t *out;
        size_t len;
        double t0 = bench_now();
        if (image_encode_jpeg(&samples[i % NFRAMES].rgb, JPEG_QUALITY, &out, &len, err,
                              sizeof err) != IMAGE_OK)
            exit(1);
        t[i] = (bench_now() - t0) * 1e3;
        free(out);
    }
    return bench_median(t, 64);
}

int main(int argc, char **argv)
{
    int seconds = bench_arg_int(argc, argv, "--seconds", 20);
    int runs = bench_arg_int(argc, argv, "--runs", 3);
    int raw_seconds = bench_arg_int(argc, argv, "--raw-seconds", 0);
    if (seconds < 1 || runs < 1 || runs > 32) {
        fprintf(stderr, "usage: bench_ingest [--seconds S] [--runs N] [--raw-seconds S]\n");
        return 64;
    }
    struct sample samples[NFRAMES];
    render_samples(samples);
    size_t total = 0;
    for (int i = 0; i < NFRAMES; i++) total += samples[i].jpeg_size;
    printf("bench_ingest: %dx%d JPEG frames (quality %d, mean %.1f KiB), queue %d, batches of "
           "%d frames / %d ms, %d runs of %d s\n",
           WIDTH, HEIGHT, JPEG_QUALITY, (double)total / NFRAMES / 1024.0, QUEUE_SIZE, BATCH_FRAMES,
           BATCH_MS, runs, seconds);
    double enc = encode_ms(samples);
    printf("jpeg_encode_ms_per_frame: %.2f (one core: at most %.0f raw frames/s per camera)\n", enc,
           1e3 / enc);

    double fps[32];
    for (int i = 0; i < runs; i++) fps[i] = run_once(samples, false, seconds, i + 1).frames_per_s;
    if (raw_seconds > 0) run_once(samples, true, raw_seconds, runs + 1);
    for (int i = 0; i < NFRAMES; i++) {
        image_free(&samples[i].rgb);
        free(samples[i].jpeg);
    }
    printf("ingest_frames_per_s: %.0f\n", bench_median(fps, runs));
    return 0;
}
