/* frame_region.c — a small cache of decoded regions, looked up by frame. */
#include "frame_region.h"

#include <stdio.h>
#include <string.h>

int frame_region_of(struct frame_region_cache *c, struct scoring_store *ss, int64_t frame_id,
                    const struct region **out, char *err, size_t errsz)
{
    int64_t id = 0;
    *out = NULL;
    int found = scoring_store_frame_region(ss, frame_id, &id);
    if (found < 0) return snprintf(err, errsz, "%s", scoring_store_errmsg(ss)), -1;
    if (found == 0 || id == 0) return 0;
    for (int i = 0; i < c->n; i++)
        if (c->entry[i].id == id) {
            *out = &c->entry[i].region;
            return 0;
        }
    struct region r;
    found = scoring_store_region(ss, id, &r);
    if (found < 0) return snprintf(err, errsz, "%s", scoring_store_errmsg(ss)), -1;
    if (found == 0) return 0;
    int slot = c->n;
    if (c->n < FRAME_REGION_CACHE) {
        c->n++;
    } else { /* the oldest entry goes */
        slot = c->next;
        c->next = (c->next + 1) % FRAME_REGION_CACHE;
        region_free(&c->entry[slot].region);
    }
    c->entry[slot].id = id;
    c->entry[slot].region = r;
    *out = &c->entry[slot].region;
    return 0;
}

void frame_region_free(struct frame_region_cache *c)
{
    for (int i = 0; i < c->n; i++) region_free(&c->entry[i].region);
    memset(c, 0, sizeof *c);
}
