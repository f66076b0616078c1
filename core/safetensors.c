/* safetensors.c — validated reader and atomic writer of .safetensors files (JSON via jansson). */
#include "safetensors.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER  (100u << 20)
#define ST_MAX_FILE    ((size_t)4 << 30)
#define ST_MAX_TENSORS 100000

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void st_free(struct st_file *f)
{
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static int parse_metadata(struct st_file *f, json_t *meta, char *err, size_t errsz)
{
    if (!json_is_object(meta)) return fail(err, errsz, "__metadata__ is not an object");
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof(char *));
    f->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return fail(err, errsz, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val)
    {
        if (!json_is_string(val)) return fail(err, errsz, "__metadata__.%s is not a string", key);
        f->meta_keys[f->nmeta] = strdup(key);
        f->meta_values[f->nmeta] = strdup(json_string_value(val));
        f->nmeta++;
        if (!f->meta_keys[f->nmeta - 1] || !f->meta_values[f->nmeta - 1])
            return fail(err, errsz, "out of memory");
    }
    return 0;
}

/* Fills t from one header entry; offsets are checked against the data section. */
static int parse_entry(struct st_tensor *t, const char *name, json_t *e, const uint8_t *data,
                       size_t datalen, size_t *begin_out, char *err, size_t errsz)
{
    if (!json_is_object(e)) return fail(err, errsz, "%s: entry is not an object", name);
    json_t *dtype = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offs = json_object_get(e, "data_offsets");
    if (!json_is_string(dtype)) return fail(err, errsz, "%s: dtype missing or not a string", name);
    if (strcmp(json_string_value(dtype), "F32") != 0)
        return fail(err, errsz, "%s: dtype %s is not supported (only F32)", name,
                    json_string_value(dtype));
    if (!json_is_array(shape) || json_array_size(shape) > ST_MAX_DIMS)
        return fail(err, errsz, "%s: shape must be an array of at most %d sizes", name,
                    ST_MAX_DIMS);
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)))
        return fail(err, errsz, "%s: data_offsets must be [begin, end]", name);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t)1 << 40)
            return fail(err, errsz, "%s: bad size in shape", name);
        t->shape[d] = json_integer_value(v);
        if (t->shape[d] > 0 && numel > ((uint64_t)1 << 40) / (uint64_t)t->shape[d])
            return fail(err, errsz, "%s: shape too large", name);
        numel *= (uint64_t)t->shape[d];
    }
    json_int_t b = json_integer_value(json_array_get(offs, 0));
    json_int_t en = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || en < b || (uint64_t)en > datalen)
        return fail(err, errsz, "%s: data_offsets [%lld, %lld] outside the %zu-byte data section",
                    name, (long long)b, (long long)en, datalen);
    if ((uint64_t)(en - b) != numel * 4)
        return fail(err, errsz, "%s: %llu bytes of data for %llu floats", name,
                    (unsigned long long)(en - b), (unsigned long long)numel);
    t->numel = (size_t)numel;
    t->bytes = data + b;
    t->name = strdup(name);
    *begin_out = (size_t)b;
    return t->name ? 0 : fail(err, errsz, "out of memory");
}

struct span {
    size_t begin, end;
    int idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static int check_overlaps(const struct st_file *f, struct span *spans, char *err, size_t errsz)
{
    qsort(spans, (size_t)f->ntensors, sizeof *spans, cmp_span);
    int far = -1; /* the span reaching furthest so far */
    for (int i = 0; i < f->ntensors; i++) {
        if (spans[i].end == spans[i].begin) continue;
        if (far >= 0 && spans[i].begin < spans[far].end)
            return fail(err, errsz, "%s and %s overlap", f->tensors[spans[far].idx].name,
                        f->tensors[spans[i].idx].name);
        if (far < 0 || spans[i].end > spans[far].end) far = i;
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

static int parse_header(struct st_file *f, json_t *root, const uint8_t *data, size_t datalen,
                        char *err, size_t errsz)
{
    if (!json_is_object(root)) return fail(err, errsz, "header is not a JSON object");
    size_t n = json_object_size(root);
    if (n > ST_MAX_TENSORS) return fail(err, errsz, "too many tensors (%zu)", n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    struct span *spans = calloc(n ? n : 1, sizeof *spans);
    if (!f->tensors || !spans) {
        free(spans);
        return fail(err, errsz, "out of memory");
    }
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(f, val, err, errsz);
        } else {
            struct st_tensor *t = &f->tensors[f->ntensors];
            rc = parse_entry(t, key, val, data, datalen, &spans[f->ntensors].begin, err, errsz);
            if (!rc) {
                spans[f->ntensors].end = spans[f->ntensors].begin + t->numel * 4;
                spans[f->ntensors].idx = f->ntensors;
                f->ntensors++;
            }
        }
        if (rc) break;
    }
    if (!rc) rc = check_overlaps(f, spans, err, errsz);
    free(spans);
    /* by name, for st_find's binary search (a training checkpoint of a full-size model holds
     * hundreds of tensors, each looked up once per load) */
    if (!rc) qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, cmp_tensor_name);
    return rc;
}

int st_parse(uint8_t *buf, size_t len, struct st_file *f, char *err, size_t errsz)
{
    memset(f, 0, sizeof *f);
    f->buf = buf;
    f->len = len;
    if (len < 8) {
        st_free(f);
        return fail(err, errsz, "file too short (%zu bytes) for a safetensors header", len);
    }
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    if (hlen > ST_MAX_HEADER || hlen > len - 8) {
        st_free(f);
        return fail(err, errsz, "header length %llu does not fit the %zu-byte file",
                    (unsigned long long)hlen, len);
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st_free(f);
        return fail(err, errsz, "header is not valid JSON: %s", jerr.text);
    }
    int rc = parse_header(f, root, buf + 8 + hlen, len - 8 - (size_t)hlen, err, errsz);
    json_decref(root);
    if (rc) st_free(f);
    return rc;
}

int st_load(const char *path, struct st_file *f, char *err, size_t errsz)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errsz, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > ST_MAX_FILE) {
        close(fd);
        return fail(err, errsz, "%s: not a regular file of at most 4 GiB", path);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return fail(err, errsz, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            free(buf);
            return fail(err, errsz, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    char inner[256];
    if (st_parse(buf, len, f, inner, sizeof inner)) return fail(err, errsz, "%s: %s", path, inner);
    return 0;
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    int lo = 0, hi = f->ntensors; /* f->tensors is sorted by name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[mid].name, name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *st_meta(const struct st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

void st_read_f32(const struct st_tensor *t, float *dst)
{
    memcpy(dst, t->bytes, t->numel * sizeof(float));
}

static void format_shape(char *out, size_t outsz, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(out, outsz, "(");
    for (int d = 0; d < ndim && used < outsz; d++)
        used +=
            (size_t)snprintf(out + used, outsz - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < outsz) snprintf(out + used, outsz - used, ")");
}

int st_check_shape(const struct st_tensor *t, int ndim, const int *shape, char *err, size_t errsz)
{
    assert(ndim >= 0 && ndim <= ST_MAX_DIMS);
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (same) return 0;
    int64_t want[ST_MAX_DIMS];
    for (int d = 0; d < ndim && d < ST_MAX_DIMS; d++) want[d] = shape[d];
    char a[128], b[128];
    format_shape(a, sizeof a, ndim, want);
    format_shape(b, sizeof b, t->ndim, t->shape);
    return fail(err, errsz, "%s: expected %s, file has %s", t->name, a, b);
}

/* Number of floats of an output tensor; checks what the reader would refuse. */
static int out_numel(const struct st_out *t, size_t *numel, char *err, size_t errsz)
{
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return fail(err, errsz, "tensor name \"%s\" is not allowed", t->name ? t->name : "");
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return fail(err, errsz, "%s: %d dimensions (at most %d)", t->name, t->ndim, ST_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0) return fail(err, errsz, "%s: negative size in shape", t->name);
        if (t->shape[d] > 0 && n > ((uint64_t)1 << 40) / (uint64_t)t->shape[d])
            return fail(err, errsz, "%s: shape too large", t->name);
        n *= (uint64_t)t->shape[d];
    }
    if (n && !t->data) return fail(err, errsz, "%s: no data", t->name);
    *numel = (size_t)n;
    return 0;
}

static json_t *tensor_entry(const struct st_out *t, size_t off, size_t numel)
{
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->ndim; d++)
        if (json_array_append_new(shape, json_integer(t->shape[d]))) {
            json_decref(shape);
            return NULL;
        }
    if (!shape) return NULL;
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape, "data_offsets",
                     (json_int_t)off, (json_int_t)(off + numel * 4));
}

/* Adds the metadata object; refuses duplicate keys and strings that are not UTF-8. */
static int add_metadata(json_t *root, const char *const *keys, const char *const *values, int nmeta,
                        char *err, size_t errsz)
{
    json_t *meta = json_object();
    if (!meta || json_object_set_new(root, "__metadata__", meta))
        return fail(err, errsz, "out of memory");
    for (int i = 0; i < nmeta; i++) {
        if (!keys[i] || !values[i]) return fail(err, errsz, "metadata %d is NULL", i);
        if (json_object_get(meta, keys[i]))
            return fail(err, errsz, "metadata key %s given twice", keys[i]);
        json_t *v = json_string(values[i]);
        if (!v || json_object_set_new(meta, keys[i], v))
            return fail(err, errsz, "metadata %s: key or value is not UTF-8", keys[i]);
    }
    return 0;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes (so the data section starts
 * aligned). Returns NULL with the reason in err. */
static char *build_header(const struct st_out *t, int n, const char *const *keys,
                          const char *const *values, int nmeta, size_t *hlen, char *err,
                          size_t errsz)
{
    json_t *root = json_object();
    if (!root) {
        fail(err, errsz, "out of memory");
        return NULL;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 0;
        json_t *e = NULL;
        int rc = out_numel(&t[i], &numel, err, errsz);
        if (!rc && json_object_get(root, t[i].name))
            rc = fail(err, errsz, "tensor %s given twice", t[i].name);
        if (!rc && !(e = tensor_entry(&t[i], off, numel))) rc = fail(err, errsz, "out of memory");
        if (!rc && json_object_set_new(root, t[i].name, e))
            rc = fail(err, errsz, "tensor name %s is not UTF-8", t[i].name);
        if (rc) {
            json_decref(root);
            return NULL;
        }
        off += numel * 4;
    }
    if (nmeta > 0 && add_metadata(root, keys, values, nmeta, err, errsz)) {
        json_decref(root);
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s) {
        fail(err, errsz, "out of memory");
        return NULL;
    }
    /* pad with spaces so the data section starts 8-byte aligned */
    size_t len = strlen(s), padded = (len + 7) & ~(size_t)7;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        fail(err, errsz, "out of memory");
        return NULL;
    }
    memset(p + len, ' ', padded - len);
    p[padded] = '\0';
    *hlen = padded;
    return p;
}

/* Returns 0, or -1 with errno set. */
static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = EIO;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Returns 0, or -1 with errno set. */
static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd), e = errno;
    close(fd);
    errno = e;
    return rc;
}

int st_save(const char *path, const struct st_out *tensors, int ntensors, const char *const *keys,
            const char *const *values, int nmeta, char *err, size_t errsz)
{
    size_t hlen = 0;
    char why[256];
    char *header = build_header(tensors, ntensors, keys, values, nmeta, &hlen, why, sizeof why);
    if (!header) return fail(err, errsz, "%s: %s", path, why);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(header);
        return fail(err, errsz, "%s: out of memory", path);
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(header);
        free(tmp);
        return fail(err, errsz, "%s: cannot create a temporary file: %s", path, strerror(e));
    }
    uint64_t h = hlen;
    int rc = write_all(fd, &h, 8) || write_all(fd, header, hlen);
    for (int i = 0; !rc && i < ntensors; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (size_t)tensors[i].shape[d];
        rc = write_all(fd, tensors[i].data, numel * sizeof(float));
    }
    int e = rc ? errno : 0;
    if (!rc && fsync(fd)) rc = -1, e = errno;
    if (close(fd) && !rc) rc = -1, e = errno;
    if (!rc && rename(tmp, path)) rc = -1, e = errno;
    if (rc) unlink(tmp);
    free(header);
    free(tmp);
    if (rc) return fail(err, errsz, "%s: write failed: %s", path, strerror(e));
    if (fsync_dir_of(path))
        return fail(err, errsz, "%s: written, but syncing its directory failed: %s", path,
                    strerror(errno));
    return 0;
}
