/* region.h — the part of a frame that is inspected: a rectangle (the ROI, in pixels of the frame as
 * the camera delivers it) and a mask over it (white = inspect, black = ignore; any size, scaled to
 * the ROI). Training, scoring and heatmaps see a frame through its region; the stored image stays
 * whole.
 *
 * A region is applied in one of two ways. Fit: the ROI is shrunk to the model's input (S × S, area
 * averaging). Tiles: the ROI is cut, at its native resolution, into S × S tiles that overlap by a
 * few pixels, the last tile of a row or column flush with the ROI's edge (a ROI smaller than a tile
 * is padded, the padding ignored). Either way the ignored pixels are set to mid-grey, so the
 * backbone never sees what lies there, and an inspect mask (S × S bytes, 1 inspect / 0 ignore)
 * comes with each input; the model leaves a patch out of its bank, score and heatmap when fewer
 * than half of its pixels are inspected (model.h).
 *
 * Invariants: w == 0 means the whole frame (x, y then 0); else w, h >= 1. mask is grey or empty. */
#ifndef INSPECTD_REGION_H
#define INSPECTD_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define REGION_IGNORED_VALUE 0.5f /* what an ignored pixel reads as, in [0, 1] */

struct region {
    int x, y, w, h;    /* the ROI; w == 0: the whole frame */
    struct image mask; /* grey, any size; data NULL: every pixel is inspected */
};

/* Parses "x,y,w,h" (x, y >= 0; w, h >= 1, each at most 65535) into r's ROI. Returns 0, or -1 with
 * the reason in err. */
int region_parse_roi(const char *s, struct region *r, char *err, size_t errsz);

/* Decodes an encoded PNG (or JPEG) mask into r->mask as grey. Returns 0, or -1 with the reason in
 * err (r->mask then empty). */
int region_set_mask(struct region *r, const void *buf, size_t len, char *err, size_t errsz);

/* Reads the mask file at path (at most 16 MiB) and decodes it into r->mask. Its bytes go to *bytes
 * (malloc'ed, *len of them) when bytes is not NULL. Returns 0, or -1 with "mask FILE: reason" in
 * err (r->mask then empty). */
int region_read_mask(struct region *r, const char *path, uint8_t **bytes, size_t *len, char *err,
                     size_t errsz);

/* Whether r restricts anything (a ROI or a mask). */
bool region_is_set(const struct region *r);

/* The ROI of r on a width × height frame: r's own, or the whole frame. Returns 0, or -1 with
 * "roi X,Y,W,H lies outside the WxH frame" in err. */
int region_rect(const struct region *r, int width, int height, int rect[4], char *err,
                size_t errsz);

/* Fit: the ROI of frame im (NULL r: the whole frame) shrunk to S × S with C channels into dst
 * (C, S, S) in [0, 1], ignored pixels at REGION_IGNORED_VALUE; mask (S·S), when not NULL, gets 1
 * for an inspected pixel, 0 for an ignored one. Returns 0, or -1 with the reason in err. */
int region_fit(const struct image *im, const struct region *r, int S, int C, float *dst,
               uint8_t *mask, char *err, size_t errsz);

/* Tiles: where the tiles of length S with overlap `overlap` start along a side of length len (at
 * most max of them). Returns the count (1 when len <= S, the tile then starting at 0). */
int region_tile_starts(int len, int S, int overlap, int *starts, int max);

/* Tiles: the tile at (tx, ty) of the ROI (offsets inside it, native resolution) as region_fit
 * fills dst and mask; pixels beyond the ROI are padding, ignored. Returns 0, or -1 with the reason
 * in err. */
int region_tile(const struct image *im, const struct region *r, int tx, int ty, int S, int C,
                float *dst, uint8_t *mask, char *err, size_t errsz);

void region_free(struct region *r);

#endif
