/* bench_camera.c — sustained frame rate and CPU use of the Aravis driver receiving from Aravis's
 * fake GigE Vision camera over loopback (the camera runs in a child process, so its own CPU use is
 * reported apart). Prints one line per run and the medians.
 *
 *   build/bench/bench_camera [--seconds S] [--runs N] [--fps F] [--size W] [--format Mono8|RGB8]
 */
#include <arv.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aravis.h"

struct opts {
    double seconds, fps;
    int runs, size;
    const char *format;
};

struct result {
    double fps, cpu_pct, camera_cpu_pct;
    unsigned long long frames, incomplete, seq_gaps;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The camera process: serves GigE Vision on lo until killed. */
static void run_fake_camera(void)
{
    ArvGvFakeCamera *fake = arv_gv_fake_camera_new("lo", "GV01");
    if (fake == NULL || !arv_gv_fake_camera_is_running(fake)) _exit(2);
    for (;;) pause();
}

static int measure(const struct opts *o, struct result *r)
{
    struct aravis_config cfg;
    char err[256], value[32];
    int status;
    aravis_config_init(&cfg);
    aravis_config_set(&cfg, "device", "Aravis-Fake-GV01", err, sizeof err);
    aravis_config_set(&cfg, "pixel_format", o->format, err, sizeof err);
    snprintf(value, sizeof value, "%d", o->size);
    aravis_config_set(&cfg, "width", value, err, sizeof err);
    aravis_config_set(&cfg, "height", value, err, sizeof err);
    snprintf(value, sizeof value, "%g", o->fps);
    aravis_config_set(&cfg, "fps", value, err, sizeof err);
    struct aravis_camera *cam = aravis_open("bench", &cfg, &status, err, sizeof err);
    if (cam == NULL) {
        fprintf(stderr, "bench_camera: %s\n", err);
        return -1;
    }
    struct frame f;
    for (int i = 0; i < 10; i++) /* let the stream settle */
        if (aravis_next(cam, &f, 1000) == SOURCE_OK) frame_free(&f);
    struct aravis_stats s0, s1;
    aravis_stats(cam, &s0);
    unsigned long long frames = 0, first_seq = 0, last_seq = 0;
    double t0 = now_s(), c0 = cpu_s(RUSAGE_SELF);
    while (now_s() - t0 < o->seconds) {
        if (aravis_next(cam, &f, 1000) != SOURCE_OK) continue;
        if (frames == 0) first_seq = f.seq;
        last_seq = f.seq;
        frames++;
        frame_free(&f);
    }
    double wall = now_s() - t0, cpu = cpu_s(RUSAGE_SELF) - c0;
    aravis_stats(cam, &s1);
    aravis_close(cam);
    r->frames = frames;
    r->fps = frames / wall;
    r->cpu_pct = 100 * cpu / wall;
    r->incomplete = s1.incomplete - s0.incomplete;
    r->seq_gaps = frames ? last_seq - first_seq + 1 - frames : 0;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    struct opts o = {.seconds = 10, .fps = 1000, .runs = 3, .size = 512, .format = "Mono8"};
    static const struct option lo[] = {
        {"seconds", required_argument, NULL, 's'}, {"runs", required_argument, NULL, 'r'},
        {"fps", required_argument, NULL, 'f'},     {"size", required_argument, NULL, 'w'},
        {"format", required_argument, NULL, 'p'},  {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 's')
            o.seconds = atof(optarg);
        else if (c == 'r')
            o.runs = atoi(optarg);
        else if (c == 'f')
            o.fps = atof(optarg);
        else if (c == 'w')
            o.size = atoi(optarg);
        else if (c == 'p')
            o.format = optarg;
        else
            return 64;
    }
    if (o.runs < 1 || o.runs > 20 || o.seconds <= 0) return 64;
    int lock = open("/tmp/inspectd-test-gvfake.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) return 1;
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) run_fake_camera();
    usleep(300000);

    double fps[20], cpu[20];
    int done = 0;
    for (int i = 0; i < o.runs; i++) {
        struct result r;
        if (measure(&o, &r) != 0) break;
        fps[done] = r.fps;
        cpu[done] = r.cpu_pct;
        done++;
        printf("run %d: %llu frames in %.0f s: %.1f frames/s, driver CPU %.1f%% of one core, "
               "%llu incomplete, %llu seq gaps\n",
               i + 1, r.frames, o.seconds, r.fps, r.cpu_pct, r.incomplete, r.seq_gaps);
        fflush(stdout);
    }
    kill(child, SIGTERM);
    int wstatus;
    waitpid(child, &wstatus, 0);
    double camera_cpu = cpu_s(RUSAGE_CHILDREN);
    if (done == 0) return 1;
    printf("fake camera process: %.1f s CPU in total\n", camera_cpu);
    printf("camera %dx%d %s at up to %g fps over GigE Vision on loopback: median %.1f frames/s, "
           "driver CPU %.1f%% of one core\n",
           o.size, o.size, o.format, o.fps, median(fps, done), median(cpu, done));
    printf("camera_frames_per_s: %.1f\n", median(fps, done));
    return 0;
}
