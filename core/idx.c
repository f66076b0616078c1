/* idx.c — IDX reader on zlib's gzread (which also reads uncompressed files as they are). */
#include "idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int read_exact(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r =
            gzread(f, (uint8_t *)buf + got, (unsigned)(n - got > 1u << 30 ? 1u << 30 : n - got));
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int idx_load(const char *path, struct idx_array *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open", path);
        return -1;
    }
    uint8_t head[4];
    const char *why = NULL;
    if (read_exact(f, head, 4))
        why = "truncated header";
    else if (head[0] || head[1] || head[2] != 0x08 || head[3] < 1 || head[3] > 4)
        why = "not an unsigned-byte IDX file (bad magic)";
    size_t count = 1;
    for (int d = 0; !why && d < head[3]; d++) {
        uint8_t b[4];
        if (read_exact(f, b, 4)) {
            why = "truncated header";
            break;
        }
        uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (v == 0 || v > 1u << 30 || count > (1u << 30) / v) {
            why = "dimension out of range";
            break;
        }
        out->dims[d] = (int)v;
        count *= v;
    }
    if (!why) {
        out->ndim = head[3];
        out->count = count;
        out->data = malloc(count);
        if (!out->data)
            why = "out of memory";
        else if (read_exact(f, out->data, count))
            why = "file shorter than its header says";
    }
    gzclose(f);
    if (why) {
        idx_free(out);
        snprintf(err, errsz, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

void idx_free(struct idx_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
