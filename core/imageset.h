/* imageset.h — the JPEG/PNG files of directories as one float array, for training and evaluation.
 *
 * Invariant: pixels holds n images (n, channels, size, size) in [0, 1], each decoded, converted to
 * `channels` and shrunk to size × size by area averaging (no crop: the aspect ratio is not kept).
 * A set starts as {.size = S, .channels = C[, .max = M]} and grows by image_set_add_dir and
 * image_set_add_encoded, never beyond max images when max > 0. */
#ifndef INSPECTD_IMAGESET_H
#define INSPECTD_IMAGESET_H

#include <stddef.h>

struct image_set {
    int n, size, channels;
    int max;                /* adding stops at this many images; 0 = no limit */
    float *pixels;          /* (n, channels, size, size) */
    size_t cap;             /* images pixels has room for */
    double mean[3], std[3]; /* per channel over every pixel, set by image_set_stats */
};

/* Appends the regular files of dir in name order (until the set holds max images); files that are
 * not decodable JPEG/PNG (hidden ones are ignored) are skipped with a warning naming them. Returns
 * how many were appended, or -1 (logged) when dir cannot be read or memory runs out. */
int image_set_add_dir(struct image_set *set, const char *dir);

/* Appends one encoded JPEG/PNG image; `what` names it in the warning when it is skipped.
 * Returns 1 when appended, 0 when skipped (not decodable, or the set is full; logged), -1 when out
 * of memory (logged). */
int image_set_add_encoded(struct image_set *set, const void *buf, size_t len, const char *what);

/* Appends one JPEG/PNG file; as image_set_add_encoded (an unreadable file is skipped, logged). */
int image_set_add_file(struct image_set *set, const char *path);

/* Fills mean and std per channel (0.5 and 0.25 for an empty or flat set). */
void image_set_stats(struct image_set *set);

void image_set_free(struct image_set *set);

#endif
