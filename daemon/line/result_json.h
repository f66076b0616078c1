/* result_json.h — a part's verdict as every output shows it: the API (GET /api/v1/results, the
 * frame, the live feed), MQTT and webhooks all send this one object, so a field means the same
 * everywhere. */
#ifndef INSPECTD_LINE_RESULT_JSON_H
#define INSPECTD_LINE_RESULT_JSON_H

#include <jansson.h>

#include "store/store_results.h"

/* {id, frame_id, part_id, seq, camera, recipe (null when none), captured_at, captured_at_us,
 * verdict, reason, score, score_norm, threshold, model, model_id, created_at, scored_at, links}:
 * part_id is the line's id or else the camera's sequence number (as a string); reason, score,
 * score_norm, threshold, model and model_id are null when they do not apply (an 'unscored' verdict
 * has a score only when one arrived after it: scored_at); links (frame, image, heatmap) are
 * absolute under base_url when it is not NULL or "". Returns a new reference, or NULL when out of
 * memory. */
json_t *line_result_json(const struct result_info *r, const char *base_url);

struct model_info;
struct alert_info;

/* An alert as line messages show it: {id, frame_id, camera, created_at, captured_at, score,
 * score_norm, threshold, model_id, model_version, state, note, reviewed_at, links}, links
 * relative. Returns a new reference, or NULL. */
json_t *line_alert_json(const struct alert_info *a);

/* A model version as line messages show it: {id, version, status, created_at, activated_at,
 * threshold (null when unknown), frames_used}. Returns a new reference, or NULL. */
json_t *line_model_json(const struct model_info *m);

#endif
