/* frame_region.h — the regions frames were captured with (schema/0008_regions.sql), as the scorer,
 * the go-live check and the training child read frames through them: the last few regions are kept
 * decoded, so a mask is not decoded again for every frame.
 *
 * Invariant: an entry's region stays valid until frame_region_free (or until it is evicted by a
 * later frame_region_of on the same cache: use the pointer before the next call). */
#ifndef INSPECTD_FRAME_REGION_H
#define INSPECTD_FRAME_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "store/scoring_store.h"

#define FRAME_REGION_CACHE 8

struct frame_region_cache {
    struct {
        int64_t id;
        struct region region;
    } entry[FRAME_REGION_CACHE];
    int n, next;
};

/* The region of frame frame_id into *out (NULL: the whole frame, or a frame gone meanwhile).
 * Returns 0, or -1 with the reason in err. */
int frame_region_of(struct frame_region_cache *c, struct scoring_store *ss, int64_t frame_id,
                    const struct region **out, char *err, size_t errsz);

void frame_region_free(struct frame_region_cache *c);

#endif
