/* api_storage.c — what the daemon says about its storage: the "storage" object of /api/v1/status
 * (the newest frame committed, retention's limits and work, whether images are stored), the
 * reason /readyz fails while new frames are stored without their images, and the matching
 * /metrics lines. */
#include <stdio.h>
#include <sys/statvfs.h>

#include "api.h"

json_t *api_storage_json(struct app *app)
{
    const struct config *c = app->cfg;
    struct pipeline_storage_status st;
    pipeline_storage_status(app->pipeline, &st);
    struct statvfs fs;
    json_t *free_bytes = statvfs(c->store_path, &fs) == 0
                             ? json_integer((json_int_t)fs.f_bavail * (json_int_t)fs.f_frsize)
                             : json_null();
    json_t *j = json_pack(
        "{s:I, s:b, s:o, s:o, s:f, s:o, s:I, s:I, s:I, s:I, s:I}", "last_frame_id",
        (json_int_t)st.last_frame_id, "images_stored", !st.retention.images_off, "max_size_bytes",
        c->store_max_size_mb ? json_integer((json_int_t)c->store_max_size_mb << 20) : json_null(),
        "min_free_bytes",
        c->store_min_free_mb ? json_integer((json_int_t)c->store_min_free_mb << 20) : json_null(),
        "flagged_days", c->store_flagged_days, "filesystem_free_bytes", free_bytes,
        "frames_deleted", (json_int_t)st.retention.frames_deleted, "image_bytes_deleted",
        (json_int_t)st.retention.image_bytes_deleted, "webhook_events_deleted",
        (json_int_t)st.retention.outbox_events_deleted, "frames_without_image",
        (json_int_t)st.frames_without_image, "full_retries", (json_int_t)st.full_retries);
    if (j && st.retention.images_off)
        json_object_set_new(j, "reason", json_string(st.retention.reason));
    return j;
}

const char *api_storage_unready(struct app *app, char *buf, size_t n)
{
    struct pipeline_storage_status st;
    pipeline_storage_status(app->pipeline, &st);
    if (!st.retention.images_off) return NULL;
    snprintf(buf, n, "%s", st.retention.reason);
    return buf;
}

void api_storage_metrics(FILE *out, struct app *app)
{
    struct pipeline_storage_status st;
    pipeline_storage_status(app->pipeline, &st);
    metrics_write_header(out, "inspectd_last_frame_id", "gauge",
                         "Id of the newest frame committed to the database.");
    fprintf(out, "inspectd_last_frame_id %lld\n", (long long)st.last_frame_id);
    metrics_write_header(out, "inspectd_images_stored", "gauge",
                         "1 while new frames are stored with their images, 0 while storage is "
                         "full of protected frames.");
    fprintf(out, "inspectd_images_stored %d\n", st.retention.images_off ? 0 : 1);
    metrics_write_header(out, "inspectd_retention_frames_deleted_total", "counter",
                         "Oldest frames deleted to keep the database within its limits.");
    fprintf(out, "inspectd_retention_frames_deleted_total %llu\n",
            (unsigned long long)st.retention.frames_deleted);
    metrics_write_header(out, "inspectd_retention_webhook_events_deleted_total", "counter",
                         "Webhook events deleted from the outbox to keep the database within its "
                         "limits.");
    fprintf(out, "inspectd_retention_webhook_events_deleted_total %llu\n",
            (unsigned long long)st.retention.outbox_events_deleted);
    metrics_write_header(out, "inspectd_frames_without_image_total", "counter",
                         "Frames stored without their image because storage was full.");
    fprintf(out, "inspectd_frames_without_image_total %llu\n",
            (unsigned long long)st.frames_without_image);
    metrics_write_header(out, "inspectd_store_full_total", "counter",
                         "Batch writes that failed on a full disk or database and were retried.");
    fprintf(out, "inspectd_store_full_total %llu\n", (unsigned long long)st.full_retries);
}
