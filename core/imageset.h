/* imageset.h — the JPEG/PNG files of directories as one float array, for training and evaluation.
 *
 * Invariant: pixels holds n images (n, channels, size, size) in [0, 1], each decoded, converted to
 * `channels` and shrunk to size × size by area averaging (no crop: the aspect ratio is not kept).
 * A set starts as {.size = S, .channels = C[, .max = M]} and grows by image_set_add_dir,
 * image_set_add_encoded and image_set_add_region, never beyond max images when max > 0. Images
 * seen through a region (region.h) are the ROI shrunk to S × S, or its tiles at native resolution;
 * masks then holds which of their pixels are inspected (NULL while every pixel of every image is).
 */
#ifndef INSPECTD_IMAGESET_H
#define INSPECTD_IMAGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

struct image_set {
    int n, size, channels;
    int max;        /* adding stops at this many images; 0 = no limit */
    float *pixels;  /* (n, channels, size, size) */
    uint8_t *masks; /* (n, size, size): 1 inspected, 0 ignored; NULL: all inspected */
    int frames;     /* the frames the images came from: frame f is images [first[f],
                     * first[f + 1]) (one each, or a frame's tiles) */
    int *first;     /* (frames + 1) */
    size_t first_cap;
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

/* How image_set_add_region sees a frame: the ROI shrunk to the set's size, or cut into tiles of
 * that size at native resolution (overlapping by `overlap` pixels). */
struct image_view {
    const struct region *region; /* NULL: the whole frame */
    bool tiles;
    int overlap;
};

/* Appends one encoded JPEG/PNG frame seen through v (NULL: as image_set_add_encoded): one image,
 * or with tiles every tile of its ROI (row by row), stopping at max. Returns how many images were
 * appended (0 when skipped: not decodable, the ROI outside the frame, or the set full; logged as
 * skipping `what`), or -1 when out of memory (logged). */
int image_set_add_region(struct image_set *set, const void *buf, size_t len, const char *what,
                         const struct image_view *v);

/* The tile grid image_set_add_region uses on a width × height frame: tiles per row and column
 * (at most 64 each) and where they start in the frame (x0 (nx), y0 (ny)). Returns 0, or -1 with
 * the reason in err (the ROI outside the frame). */
int image_view_tiles(const struct image_view *v, int size, int width, int height, int *nx, int *ny,
                     int *x0, int *y0, char *err, size_t errsz);
#define IMAGE_VIEW_MAX_TILES 64

/* Appends images idx (n of them) of from (same size and channels), with their masks, as one frame
 * (tiles sampled from a frame). Returns n, 0 when the set is full (max), or -1 when out of memory
 * (logged). */
int image_set_add_images(struct image_set *set, const struct image_set *from, const int *idx,
                         int n);

/* Appends one JPEG/PNG file; as image_set_add_encoded (an unreadable file is skipped, logged). */
int image_set_add_file(struct image_set *set, const char *path);

/* Fills mean and std per channel (0.5 and 0.25 for an empty or flat set). */
void image_set_stats(struct image_set *set);

void image_set_free(struct image_set *set);

#endif
