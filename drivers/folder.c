/* folder.c — a folder of JPEG/PNG files as a camera: replay the files in name order, or watch the
 * folder (inotify) and ingest each new file once, as line software that drops images expects.
 *
 * Parameters: path (required); mode = replay | watch (replay); replay: loop (false), fps (10; 0 =
 * as fast as possible); watch: delete_after_ingest (false) or move_to = DIR (same filesystem).
 *
 * Which files: names ending in .jpg, .jpeg or .png (any case) whose content is a complete JPEG
 * (ends with EOI) or PNG (ends with IEND), at most 64 MiB. Hidden and temporary names (".x",
 * "x.tmp", "x.part", "x~") are passed over silently; any other file is skipped with one log line.
 * Frames are the file's bytes (FRAME_JPEG / FRAME_PNG) with width and height from the header.
 *
 * Replay reads the listing once at open and plays it in natural order (strverscmp: "img9.jpg"
 * before "img10.jpg"); captured_at_us is the time of replay. A missing directory fails the open
 * with SOURCE_ENODEV.
 *
 * Watch starts the inotify watch (IN_CLOSE_WRITE, IN_MOVED_TO) before listing what is already
 * there, so no file slips between the two; files present at start are ingested first, in natural
 * order. A file found incomplete (still being written) is skipped with a log line and ingested
 * when its writer closes it. Each file is ingested once: a second event for an unchanged file
 * (same inode, size and mtime) is ignored. The driver remembers each ingested name (about 100
 * bytes) until the file leaves the folder (IN_DELETE, IN_MOVED_FROM). With delete_after_ingest or
 * move_to, the frame carries an origin and the file is deleted or moved by frame_stored() once
 * the frame is committed, never before: a frame dropped or lost in a crash is read again at the
 * next start. captured_at_us is the file's mtime. If the directory itself is deleted or moved,
 * next() returns SOURCE_ELOST. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "driver.h"
#include "parse.h"
#include "image.h"

#define LOG_TAG "folder"
#include "log.h"

#define FOLDER_MAX_FILE_BYTES (64u << 20)

enum folder_mode { FOLDER_REPLAY = 0, FOLDER_WATCH };

struct folder_config {
    char path[PATH_MAX];
    char move_to[PATH_MAX]; /* "" = leave files */
    enum folder_mode mode;
    bool loop;
    bool delete_after_ingest;
    double fps;
};

/* What watch mode remembers of a name: queued and not yet read, or read with this identity. */
struct seen {
    char *name; /* NULL: free slot */
    bool pending;
    bool ingested;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

/* Open-addressing hash map, name -> struct seen; capacity a power of two, at most 3/4 full. */
struct seen_map {
    struct seen *slots;
    size_t cap, count;
};

/* A FIFO of owned names. */
struct name_queue {
    char **names;
    size_t head, tail, cap;
};

struct folder_source {
    struct folder_config cfg;
    char name[64];
    int dirfd, movefd, ifd;
    uint64_t seq;
    /* replay */
    char **files; /* sorted; NULL entries were skipped once and are not read again */
    size_t nfiles, next_file;
    bool frame_this_pass;
    struct driver_pacer pacer;
    /* watch */
    struct seen_map seen;
    struct name_queue queue;
    bool lost;
};

/* --- parameters ----------------------------------------------------------------------------- */

static int folder_param_set(struct folder_config *c, const char *key, const char *value, char *err,
                            size_t errsz)
{
    if (strcmp(key, "path") == 0 || strcmp(key, "move_to") == 0) {
        char *dst = key[0] == 'p' ? c->path : c->move_to;
        if (!*value || strlen(value) >= PATH_MAX)
            return driver_fail(err, errsz, "%s must be a directory path", key);
        snprintf(dst, PATH_MAX, "%s", value);
    } else if (strcmp(key, "mode") == 0) {
        if (strcmp(value, "replay") == 0)
            c->mode = FOLDER_REPLAY;
        else if (strcmp(value, "watch") == 0)
            c->mode = FOLDER_WATCH;
        else
            return driver_fail(err, errsz, "mode must be replay or watch");
    } else if (strcmp(key, "loop") == 0 || strcmp(key, "delete_after_ingest") == 0) {
        bool *dst = key[0] == 'l' ? &c->loop : &c->delete_after_ingest;
        if (parse_bool(value, dst)) return driver_fail(err, errsz, "%s must be true or false", key);
    } else if (strcmp(key, "fps") == 0) {
        if (parse_double(value, 0, 1000, false, &c->fps))
            return driver_fail(err, errsz, "fps must be a number in [0, 1000] (0: unpaced)");
    } else {
        return driver_fail(err, errsz, "unknown key '%s' for the folder driver", key);
    }
    return 0;
}

static void folder_config_default(struct folder_config *c)
{
    memset(c, 0, sizeof *c);
    c->mode = FOLDER_REPLAY;
    c->fps = 10;
}

static int folder_check_param(const char *key, const char *value, char *err, size_t errsz)
{
    struct folder_config scratch;
    folder_config_default(&scratch);
    return folder_param_set(&scratch, key, value, err, errsz);
}

/* --- which files ---------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static bool is_temporary_name(const char *name)
{
    return name[0] == '.' || ends_with(name, ".tmp") || ends_with(name, ".part") ||
           ends_with(name, ".partial") || ends_with(name, "~");
}

static bool has_image_extension(const char *name)
{
    return ends_with(name, ".jpg") || ends_with(name, ".jpeg") || ends_with(name, ".png");
}

/* A JPEG ends with its EOI marker, a PNG with its IEND chunk; a few trailing bytes (padding some
 * cameras add) are allowed. A file still being written has neither yet. */
static bool is_complete_image(const uint8_t *buf, size_t len, enum image_codec codec)
{
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    size_t from = len > 64 ? len - 64 : 0;
    for (size_t i = len; i-- > from;) {
        if (codec == IMAGE_CODEC_JPEG && i + 2 <= len && buf[i] == 0xFF && buf[i + 1] == 0xD9)
            return true;
        if (codec == IMAGE_CODEC_PNG && i + 12 <= len && memcmp(buf + i, iend, 12) == 0)
            return true;
    }
    return false;
}

static int read_all(int fd, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Reads dirfd/name into a frame. Returns 0, or -1 with why it was skipped in why; *st is the
 * file's identity as read (valid when the open succeeded). ENOMEM is not a skip: returns -2. */
static int read_image(int dirfd, const char *name, struct frame *f, struct stat *st, char *why,
                      size_t whysz)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return driver_fail(why, whysz, "cannot open: %s", strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return driver_fail(why, whysz, "not a regular file");
    }
    if ((uint64_t)st->st_size > FOLDER_MAX_FILE_BYTES) {
        close(fd);
        return driver_fail(why, whysz, "larger than %u MiB", FOLDER_MAX_FILE_BYTES >> 20);
    }
    size_t len = (size_t)st->st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        driver_fail(why, whysz, "out of memory");
        return -2;
    }
    int rc = read_all(fd, buf, len);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        free(buf);
        return driver_fail(why, whysz, "read error: %s", saved ? strerror(saved) : "short read");
    }
    enum image_codec codec = image_sniff(buf, len);
    int w = 0, h = 0;
    const char *bad = NULL;
    if (codec == IMAGE_CODEC_UNKNOWN)
        bad = "not a JPEG or PNG";
    else if (!is_complete_image(buf, len, codec))
        bad = "incomplete (still being written?)";
    else if (image_probe(buf, len, &w, &h) != IMAGE_OK)
        bad = "corrupt image header";
    if (bad) {
        free(buf);
        return driver_fail(why, whysz, "%s", bad);
    }
    f->format = codec == IMAGE_CODEC_JPEG ? FRAME_JPEG : FRAME_PNG;
    f->width = w, f->height = h;
    f->data = buf, f->size = len;
    return 0;
}

/* --- replay --------------------------------------------------------------------------------- */

static int by_version(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Lists dirfd's candidate names into *out (sorted, owned). Non-image names are logged once here
 * when `log_skips`. Returns the count, or -1 on ENOMEM or a listing error (errno set). */
static ssize_t list_images(const char *cam, int dirfd, bool log_skips, char ***out)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return -1;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type == DT_DIR || is_temporary_name(e->d_name)) continue;
        if (!has_image_extension(e->d_name)) {
            if (log_skips) log_info("%s: skipping %s: not a .jpg/.jpeg/.png name", cam, e->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) goto nomem;
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) goto nomem;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_version);
    *out = names;
    return (ssize_t)n;
nomem:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(d);
    errno = ENOMEM;
    return -1;
}

static int replay_next(struct folder_source *s, struct frame *f, int timeout_ms)
{
    if (s->next_file == s->nfiles && (!s->cfg.loop || !s->frame_this_pass)) return SOURCE_END;
    int rc = driver_pacer_wait(&s->pacer, timeout_ms);
    if (rc != SOURCE_OK) return rc;
    for (;;) {
        if (s->next_file == s->nfiles) {
            if (!s->cfg.loop || !s->frame_this_pass) return SOURCE_END;
            s->next_file = 0, s->frame_this_pass = false;
        }
        size_t i = s->next_file++;
        if (!s->files[i]) continue;
        char why[160];
        struct stat st;
        rc = read_image(s->dirfd, s->files[i], f, &st, why, sizeof why);
        if (rc == -2) return SOURCE_ENOMEM;
        if (rc == 0) {
            s->frame_this_pass = true;
            f->captured_at_us = clock_wall_us();
            return SOURCE_OK;
        }
        log_warn("%s: skipping %s: %s", s->name, s->files[i], why);
        free(s->files[i]);
        s->files[i] = NULL;
    }
}

/* --- watch: remembered names ---------------------------------------------------------------- */

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static struct seen *seen_slot(const struct seen_map *m, const char *name)
{
    size_t mask = m->cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask)
        if (!m->slots[i].name || strcmp(m->slots[i].name, name) == 0) return &m->slots[i];
}

static struct seen *seen_find(const struct seen_map *m, const char *name)
{
    if (!m->cap) return NULL;
    struct seen *e = seen_slot(m, name);
    return e->name ? e : NULL;
}

static int seen_grow(struct seen_map *m)
{
    struct seen_map bigger = {calloc(m->cap ? 2 * m->cap : 256, sizeof(struct seen)),
                              m->cap ? 2 * m->cap : 256, m->count};
    if (!bigger.slots) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].name) *seen_slot(&bigger, m->slots[i].name) = m->slots[i];
    free(m->slots);
    *m = bigger;
    return 0;
}

/* Returns the entry for name, adding an empty one if needed; NULL on ENOMEM. */
static struct seen *seen_get(struct seen_map *m, const char *name)
{
    if (4 * (m->count + 1) > 3 * m->cap && seen_grow(m)) return NULL;
    struct seen *e = seen_slot(m, name);
    if (!e->name) {
        if (!(e->name = strdup(name))) return NULL;
        m->count++;
    }
    return e;
}

/* Removes e, shifting later entries of its probe run back so lookups stay correct. */
static void seen_remove(struct seen_map *m, struct seen *e)
{
    size_t mask = m->cap - 1, hole = (size_t)(e - m->slots);
    free(e->name);
    m->slots[hole] = (struct seen){0};
    m->count--;
    for (size_t i = (hole + 1) & mask; m->slots[i].name; i = (i + 1) & mask) {
        size_t home = name_hash(m->slots[i].name) & mask;
        bool movable = (i > hole) ? (home <= hole || home > i) : (home <= hole && home > i);
        if (!movable) continue;
        m->slots[hole] = m->slots[i];
        m->slots[i] = (struct seen){0};
        hole = i;
    }
}

static void seen_clear(struct seen_map *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].name);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int names_push(struct name_queue *q, const char *name)
{
    if (q->tail == q->cap) {
        if (q->head > 0) {
            memmove(q->names, q->names + q->head, (q->tail - q->head) * sizeof *q->names);
            q->tail -= q->head, q->head = 0;
        } else {
            size_t cap = q->cap ? 2 * q->cap : 64;
            char **grown = realloc(q->names, cap * sizeof *q->names);
            if (!grown) return -1;
            q->names = grown, q->cap = cap;
        }
    }
    if (!(q->names[q->tail] = strdup(name))) return -1;
    q->tail++;
    return 0;
}

static char *queue_pop(struct name_queue *q)
{
    return q->head < q->tail ? q->names[q->head++] : NULL;
}

static void queue_clear(struct name_queue *q)
{
    for (size_t i = q->head; i < q->tail; i++) free(q->names[i]);
    free(q->names);
    memset(q, 0, sizeof *q);
}

/* --- watch: ingestion ----------------------------------------------------------------------- */

/* Queues a name reported by a listing or an event, once. Returns 0 or -1 on ENOMEM. */
static int watch_offer(struct folder_source *s, const char *name)
{
    if (is_temporary_name(name)) return 0;
    if (!has_image_extension(name)) {
        log_info("%s: skipping %s: not a .jpg/.jpeg/.png name", s->name, name);
        return 0;
    }
    struct seen *e = seen_get(&s->seen, name);
    if (!e) return -1;
    if (e->pending) return 0;
    e->pending = true;
    return names_push(&s->queue, name);
}

/* A file left the folder: forget it unless it is still queued (then its read finds it gone). */
static void watch_forget(struct folder_source *s, const char *name)
{
    struct seen *e = seen_find(&s->seen, name);
    if (e && !e->pending) seen_remove(&s->seen, e);
}

static int watch_scan(struct folder_source *s)
{
    char **names;
    ssize_t n = list_images(s->name, s->dirfd, false, &names);
    if (n < 0) return -1;
    int rc = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (rc == 0) rc = watch_offer(s, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static bool same_file(const struct seen *e, const struct stat *st)
{
    return e->ingested && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* After a successful read: remember the file so it is not read twice, and when the folder is to be
 * emptied, hand the frame an origin that frame_stored() deletes or moves once the frame is stored.
 * Returns 0, or -1 when out of memory. */
static int watch_done(struct folder_source *s, struct seen *e, const struct stat *st,
                      struct frame *f)
{
    if (s->cfg.delete_after_ingest || s->cfg.move_to[0]) {
        f->origin = frame_origin_file(s->name, s->cfg.path, e->name,
                                      s->cfg.move_to[0] ? s->cfg.move_to : NULL);
        if (!f->origin) return -1;
    }
    e->ingested = true;
    e->dev = st->st_dev, e->ino = st->st_ino, e->size = st->st_size, e->mtime = st->st_mtim;
    return 0;
}

/* Tries the queued names in order. Returns SOURCE_OK with a frame, SOURCE_TIMEOUT when the queue
 * ran dry, or SOURCE_ENOMEM. */
static int watch_take(struct folder_source *s, struct frame *f)
{
    char *name;
    while ((name = queue_pop(&s->queue))) {
        struct seen *e = seen_find(&s->seen, name);
        assert(e && e->pending);
        e->pending = false;
        struct stat st;
        char why[160];
        int rc = 0;
        if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            rc = 1; /* gone meanwhile */
        else if (same_file(e, &st))
            rc = 1; /* repeated event */
        else
            rc = read_image(s->dirfd, name, f, &st, why, sizeof why);
        if (rc == -2) {
            free(name);
            return SOURCE_ENOMEM;
        }
        if (rc == -1) log_warn("%s: skipping %s: %s", s->name, name, why);
        if (rc == 0) {
            f->captured_at_us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
            if (watch_done(s, e, &st, f)) {
                frame_free(f);
                free(name);
                return SOURCE_ENOMEM;
            }
        } else if (!e->ingested) {
            seen_remove(&s->seen, e);
        }
        free(name);
        if (rc == 0) return SOURCE_OK;
    }
    return SOURCE_TIMEOUT;
}

/* Reads every pending inotify event. Returns 0, or SOURCE_ELOST / SOURCE_ENOMEM. */
static int watch_read_events(struct folder_source *s)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(s->ifd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
                log_error("%s: directory %s went away", s->name, s->cfg.path);
                s->lost = true;
                return SOURCE_ELOST;
            }
            if (ev->mask & IN_Q_OVERFLOW) {
                log_warn("%s: inotify queue overflowed; listing %s again", s->name, s->cfg.path);
                if (watch_scan(s)) return SOURCE_ENOMEM;
                continue;
            }
            if (!ev->len || (ev->mask & IN_ISDIR)) continue;
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                watch_forget(s, ev->name);
                continue;
            }
            if (watch_offer(s, ev->name)) return SOURCE_ENOMEM;
        }
    }
}

/* A deleted directory we still hold open sends IN_DELETE_SELF only when we close it, so the
 * link count is checked as well. */
static bool directory_gone(struct folder_source *s)
{
    struct stat st;
    if (!s->lost && fstat(s->dirfd, &st) == 0 && st.st_nlink > 0) return false;
    if (!s->lost) log_error("%s: directory %s was deleted", s->name, s->cfg.path);
    s->lost = true;
    return true;
}

static int watch_next(struct folder_source *s, struct frame *f, int timeout_ms)
{
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        if (directory_gone(s)) return SOURCE_ELOST;
        int rc = watch_read_events(s);
        if (rc != 0) return rc;
        rc = watch_take(s, f);
        if (rc != SOURCE_TIMEOUT) return rc;
        int wait_ms = 1000; /* look at the directory at least once a second */
        if (timeout_ms >= 0) {
            int64_t left = deadline - clock_mono_ns();
            if (left <= 0) return SOURCE_TIMEOUT;
            if (left < (int64_t)wait_ms * 1000000) wait_ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd pfd = {.fd = s->ifd, .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
            log_error("%s: poll: %s", s->name, strerror(errno));
            return SOURCE_EIO;
        }
    }
}

/* --- open / next / close -------------------------------------------------------------------- */

static void folder_close(void *state)
{
    struct folder_source *s = state;
    if (!s) return;
    if (s->ifd >= 0) close(s->ifd);
    if (s->movefd >= 0) close(s->movefd);
    if (s->dirfd >= 0) close(s->dirfd);
    for (size_t i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    seen_clear(&s->seen);
    queue_clear(&s->queue);
    free(s);
}

static int open_dir(const char *path, const char *what, int *status, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return fd;
    *status = errno == ENOENT || errno == ENOTDIR ? SOURCE_ENODEV : SOURCE_EIO;
    return driver_fail(err, errsz, "%s directory %s: %s", what, path,
                       errno == ENOTDIR ? "not a directory" : strerror(errno));
}

static int check_combination(const struct folder_config *c, char *err, size_t errsz)
{
    if (!c->path[0]) return driver_fail(err, errsz, "the folder driver needs path = DIR");
    if (c->mode == FOLDER_REPLAY && (c->delete_after_ingest || c->move_to[0]))
        return driver_fail(err, errsz, "delete_after_ingest and move_to need mode = watch");
    if (c->delete_after_ingest && c->move_to[0])
        return driver_fail(err, errsz, "delete_after_ingest and move_to exclude each other");
    return 0;
}

static int open_watch(struct folder_source *s, int *status, char *err, size_t errsz)
{
    if (s->cfg.move_to[0]) {
        if ((s->movefd = open_dir(s->cfg.move_to, "move_to", status, err, errsz)) < 0) return -1;
        struct stat a, b;
        if (fstat(s->dirfd, &a) != 0 || fstat(s->movefd, &b) != 0 || a.st_dev != b.st_dev) {
            *status = SOURCE_EINVAL;
            return driver_fail(err, errsz, "move_to must be on the same filesystem as path");
        }
    }
    s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                          IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    if (s->ifd < 0 || inotify_add_watch(s->ifd, s->cfg.path, mask) < 0) {
        *status = SOURCE_EIO;
        return driver_fail(err, errsz, "inotify on %s: %s", s->cfg.path, strerror(errno));
    }
    if (watch_scan(s)) {
        *status = SOURCE_ENOMEM;
        return driver_fail(err, errsz, "listing %s: %s", s->cfg.path, strerror(errno));
    }
    return 0;
}

static int open_replay(struct folder_source *s, int *status, char *err, size_t errsz)
{
    ssize_t n = list_images(s->name, s->dirfd, true, &s->files);
    if (n < 0) {
        *status = errno == ENOMEM ? SOURCE_ENOMEM : SOURCE_EIO;
        return driver_fail(err, errsz, "listing %s: %s", s->cfg.path, strerror(errno));
    }
    s->nfiles = (size_t)n;
    driver_pacer_start(&s->pacer, s->cfg.fps);
    return 0;
}

static void *folder_open(const char *name, const struct source_param *params, size_t nparams,
                         int *status, char *err, size_t errsz)
{
    struct folder_source *s = calloc(1, sizeof *s);
    if (!s) {
        *status = SOURCE_ENOMEM;
        driver_fail(err, errsz, "out of memory");
        return NULL;
    }
    s->dirfd = s->movefd = s->ifd = -1;
    snprintf(s->name, sizeof s->name, "%s", name);
    folder_config_default(&s->cfg);
    *status = SOURCE_EINVAL;
    for (size_t i = 0; i < nparams; i++)
        if (folder_param_set(&s->cfg, params[i].key, params[i].value, err, errsz)) goto fail;
    if (check_combination(&s->cfg, err, errsz)) goto fail;
    if ((s->dirfd = open_dir(s->cfg.path, "image", status, err, errsz)) < 0) goto fail;
    if (s->cfg.mode == FOLDER_WATCH ? open_watch(s, status, err, errsz)
                                    : open_replay(s, status, err, errsz))
        goto fail;
    if (s->cfg.mode == FOLDER_WATCH)
        log_info("%s: watching %s (%zu files already there)", s->name, s->cfg.path,
                 s->queue.tail - s->queue.head);
    else
        log_info("%s: replaying %zu files of %s at %g fps%s", s->name, s->nfiles, s->cfg.path,
                 s->cfg.fps, s->cfg.loop ? ", looping" : "");
    return s;
fail:
    folder_close(s);
    return NULL;
}

static int folder_next(void *state, struct frame *f, int timeout_ms)
{
    struct folder_source *s = state;
    int rc =
        s->cfg.mode == FOLDER_WATCH ? watch_next(s, f, timeout_ms) : replay_next(s, f, timeout_ms);
    if (rc == SOURCE_OK) f->seq = s->seq++;
    return rc;
}

const struct source_driver folder_driver = {
    .name = "folder",
    .check_param = folder_check_param,
    .open = folder_open,
    .next = folder_next,
    .close = folder_close,
};
