/* api.h — the route tables of the HTTP API files (each ended by an entry with pattern NULL) and
 * small helpers they share. */
#ifndef INSPECTD_API_H
#define INSPECTD_API_H

#include <jansson.h>
#include <stdint.h>

#include "http.h"

extern const struct http_route api_health_routes[];
extern const struct http_route api_frames_routes[];
extern const struct http_route api_page_routes[];

/* Unix microseconds as an RFC 3339 UTC string ("2024-05-01T12:00:00.123456Z"); JSON null for
 * 0 (never). Returns a new reference. */
json_t *api_time(int64_t us);

#endif
