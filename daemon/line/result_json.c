/* result_json.c — one verdict as JSON. */
#include "result_json.h"

#include <stdio.h>

#include "rfc3339.h"
#include "store/store_alerts.h"

static json_t *time_json(int64_t us)
{
    char buf[RFC3339_LEN];
    return us > 0 ? json_string(rfc3339_format(us, buf, sizeof buf)) : json_null();
}

static json_t *links_json(int64_t frame_id, const char *base)
{
    char frame[256], image[300], heatmap[300];
    snprintf(frame, sizeof frame, "%.200s/api/v1/frames/%lld", base ? base : "",
             (long long)frame_id);
    snprintf(image, sizeof image, "%s/image", frame);
    snprintf(heatmap, sizeof heatmap, "%s/heatmap", frame);
    return json_pack("{s:s, s:s, s:s}", "frame", frame, "image", image, "heatmap", heatmap);
}

json_t *line_result_json(const struct result_info *r, const char *base_url)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
    bool unscored = r->verdict == RESULT_UNSCORED;
    json_t *num_or_null[3] = {
        r->has_score ? json_real(r->score) : json_null(),
        r->has_score ? json_real(r->score_norm) : json_null(),
        r->has_score ? json_real(r->threshold) : json_null(),
    };
    return json_pack(
        "{s:I, s:I, s:s, s:I, s:s, s:o, s:o, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o}",
        "id", (json_int_t)r->id, "frame_id", (json_int_t)r->frame_id, "part_id",
        r->part_id[0] ? r->part_id : seq, "seq", (json_int_t)r->seq, "camera", r->camera, "recipe",
        r->recipe[0] ? json_string(r->recipe) : json_null(), "captured_at",
        time_json(r->captured_at), "captured_at_us", (json_int_t)r->captured_at, "verdict",
        result_verdict_name(r->verdict), "reason",
        unscored && r->reason >= 0 ? json_string(result_reason_name((enum result_reason)r->reason))
                                   : json_null(),
        "score", num_or_null[0], "score_norm", num_or_null[1], "threshold", num_or_null[2], "model",
        r->model_id ? json_string(r->model_version) : json_null(), "model_id",
        r->model_id ? json_integer(r->model_id) : json_null(), "created_at",
        time_json(r->created_at), "scored_at", time_json(r->scored_at), "links",
        links_json(r->frame_id, base_url));
}

json_t *line_model_json(const struct model_info *m)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)m->id, "version",
                     m->version, "status", m->status, "created_at", time_json(m->created_at),
                     "activated_at", time_json(m->activated_at), "threshold",
                     m->has_threshold ? json_real(m->threshold) : json_null(), "frames_used",
                     m->has_frames_used ? json_integer(m->frames_used) : json_null());
}

json_t *line_alert_json(const struct alert_info *a)
{
    return json_pack("{s:I, s:I, s:s, s:o, s:o, s:f, s:f, s:f, s:I, s:s, s:s, s:o, s:o, s:o}", "id",
                     (json_int_t)a->id, "frame_id", (json_int_t)a->frame_id, "camera", a->camera,
                     "created_at", time_json(a->created_at), "captured_at",
                     time_json(a->captured_at), "score", a->score, "score_norm", a->score_norm,
                     "threshold", a->threshold, "model_id", (json_int_t)a->model_id,
                     "model_version", a->model_version, "state", a->state, "note",
                     a->has_note ? json_string(a->note) : json_null(), "reviewed_at",
                     time_json(a->reviewed_at), "links", links_json(a->frame_id, NULL));
}
