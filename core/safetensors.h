/* safetensors.h — reading and writing .safetensors files of float32 tensors.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "value", ...}}, then the data section the offsets index.
 * Reading validates everything before any tensor is used: header length against the file, JSON
 * shape, dtype (F32 only), shape × 4 bytes == the offset span, offsets inside the data section,
 * no overlaps, no duplicate names. A hostile file gets an error message, never an out-of-bounds
 * read. Writing is atomic: a temporary file in the same directory, fsync, rename, fsync of the
 * directory. Data are stored little-endian (this code runs on little-endian hosts only). */
#ifndef INSPECTD_SAFETENSORS_H
#define INSPECTD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

struct st_tensor {
    char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const uint8_t *bytes; /* numel * 4 bytes inside the file buffer, maybe unaligned */
};

struct st_file {
    uint8_t *buf; /* the whole file */
    size_t len;
    int ntensors;
    struct st_tensor *tensors; /* sorted by name (strcmp order) */
    int nmeta;
    char **meta_keys, **meta_values;
};

/* Parses a file already in memory; takes ownership of buf (malloc'ed) even on error. Returns 0, or
 * -1 with the reason in err. */
int st_parse(uint8_t *buf, size_t len, struct st_file *f, char *err, size_t errsz);

/* Reads and parses a file (up to 4 GiB). Returns 0, or -1 with the reason in err. */
int st_load(const char *path, struct st_file *f, char *err, size_t errsz);

void st_free(struct st_file *f);

/* Looks up a tensor by name; NULL when absent. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* The metadata value for key, or NULL. */
const char *st_meta(const struct st_file *f, const char *key);

/* Copies a tensor's data into dst (numel floats). */
void st_read_f32(const struct st_tensor *t, float *dst);

/* Checks that t has exactly the given shape (ndim <= ST_MAX_DIMS). Returns 0, or -1 with
 * "NAME: expected (a, b), file has (c, d)" in err. */
int st_check_shape(const struct st_tensor *t, int ndim, const int *shape, char *err, size_t errsz);

struct st_out {
    const char *name;
    int ndim;
    const int *shape;
    const float *data;
};

/* Writes tensors and metadata (nmeta key/value pairs) atomically to path. Refuses what a reader
 * would: a name that is empty, "__metadata__", not UTF-8 or given twice, more than ST_MAX_DIMS
 * dimensions, a negative or oversized shape, a repeated metadata key. Returns 0, or -1 with the
 * reason in err; the previous file, if any, is then untouched, except when only the final fsync
 * of the directory failed (the new file is in place but may not survive a power cut). */
int st_save(const char *path, const struct st_out *tensors, int ntensors, const char *const *keys,
            const char *const *values, int nmeta, char *err, size_t errsz);

#endif
