/* image_cache.h — the images of frames stored without them, held in memory for the scorer.
 *
 * When storage is full and only protected frames are left to delete, the writer stores a frame's
 * metadata without its image (store.h: image_missing). It hands the image here, keyed by frame id,
 * so that the scorer can still score the frame and store its result; the scorer takes it out.
 *
 * Invariants: at most max_frames entries and max_bytes of images; putting past either drops the
 * oldest entries first (their frames then stay unscored); every image put is either taken or freed
 * exactly once (by a drop or by image_cache_free). Every function is thread-safe. */
#ifndef INSPECTD_IMAGE_CACHE_H
#define INSPECTD_IMAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct image_cache;

/* Returns NULL when out of memory. */
struct image_cache *image_cache_create(size_t max_frames, size_t max_bytes);
/* Frees the images still held. Safe on NULL. */
void image_cache_free(struct image_cache *c);

/* Takes ownership of data (malloc'ed) as the image of frame id. An image larger than max_bytes is
 * freed at once. Safe on a NULL cache (the image is freed). */
void image_cache_put(struct image_cache *c, int64_t id, void *data, size_t size);

/* Removes the image of frame id and gives it to the caller (who frees it). Returns false when it
 * is not held (never put, taken already, or dropped). Safe on a NULL cache. */
bool image_cache_take(struct image_cache *c, int64_t id, void **data, size_t *size);

/* Images dropped for room since creation. */
uint64_t image_cache_dropped(struct image_cache *c);

#endif
