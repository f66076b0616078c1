/* idx.h — reading IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain:
 * a big-endian header (magic 0x0000 08 NDIM, then NDIM sizes) followed by unsigned bytes. */
#ifndef INSPECTD_IDX_H
#define INSPECTD_IDX_H

#include <stddef.h>
#include <stdint.h>

struct idx_array {
    int ndim;
    int dims[4];
    size_t count; /* product of dims */
    uint8_t *data;
};

/* Reads path (gzip or plain). Only unsigned-byte IDX files with 1 to 4 dimensions and at most
 * 1 GiB of data. Returns 0, or -1 with the reason in err. */
int idx_load(const char *path, struct idx_array *out, char *err, size_t errsz);
void idx_free(struct idx_array *a);

#endif
