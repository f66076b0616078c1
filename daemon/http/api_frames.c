/* api_frames.c — stored frames over HTTP: a paged list (newest first), one frame's metadata, and
 * its image as stored (JPEG or PNG) with an ETag, since a stored frame never changes. A frame
 * stored without its image (storage full) says so: "image" is null, "image_missing" says why, and
 * its image and heatmap answer 404 with that reason. One frame's metadata carries its verdict
 * ("result", null until it has one) and the part id the line gave it. */
#include <stdlib.h>
#include <string.h>

#include "heatmap.h"
#include "parse.h"
#include "api.h"
#include "image.h"
#include "line/result_json.h"
#include "scoring/model.h"
#include "store/store_results.h"

#define LOG_TAG "api"
#include "log.h"

#define DEFAULT_LIMIT 50

static json_t *truth_json(const struct store_frame_info *f)
{
    if (!f->has_truth) return json_null();
    if (f->truth.defect == DEFECT_NONE) return json_pack("{s:s, s:n}", "defect", "none", "bbox");
    return json_pack("{s:s, s:[i,i,i,i]}", "defect", frame_defect_name(f->truth.defect), "bbox",
                     f->truth.x0, f->truth.y0, f->truth.x1, f->truth.y1);
}

static json_t *frame_json(const struct store_frame_info *f)
{
    char image[96];
    snprintf(image, sizeof image, "/api/v1/frames/%lld/image", (long long)f->id);
    json_t *j = json_pack("{s:I, s:s, s:I, s:o, s:o, s:I, s:o, s:i, s:i, s:s, s:I, s:o, s:s}", "id",
                          (json_int_t)f->id, "camera", f->camera, "seq", (json_int_t)f->seq,
                          "part_id", f->part_id[0] ? json_string(f->part_id) : json_null(),
                          "captured_at", api_time(f->captured_at_us), "captured_at_us",
                          (json_int_t)f->captured_at_us, "created_at", api_time(f->created_at_us),
                          "width", f->width, "height", f->height, "format", f->format, "bytes",
                          (json_int_t)f->image_size, "truth", truth_json(f), "image", image);
    if (j) json_object_set_new(j, "recipe", f->recipe[0] ? json_string(f->recipe) : json_null());
    if (j && f->image_missing[0]) {
        json_object_set_new(j, "image", json_null());
        json_object_set_new(j, "image_missing", json_string(f->image_missing));
    }
    return j;
}

static void reply_no_image(struct http_reply *r, int64_t id, const struct store_frame_info *info)
{
    http_reply_error(r, 404, "frame %lld was stored without its image (%s)", (long long)id,
                     info->image_missing);
}

/* Parses the {id} path segment; replies 400 and returns -1 when it is not a frame id. */
static int frame_id(const struct http_request *req, struct http_reply *r, int64_t *id)
{
    if (parse_i64(req->params[0], 1, INT64_MAX, id) == 0) return 0;
    http_reply_error(r, 400, "frame id must be a positive integer, not '%s'", req->params[0]);
    return -1;
}

int api_frames_list_query(const struct http_request *req, struct http_reply *r,
                          struct api_frames_query *q)
{
    static const char *const allowed[] = {"camera", "before", "limit", NULL};
    if (http_check_query(req, allowed, r) < 0) return -1;
    const char *before = http_query(req, "before"), *limit = http_query(req, "limit");
    q->camera = http_query(req, "camera");
    q->before = 0;
    q->limit = DEFAULT_LIMIT;
    if (q->camera && (q->camera[0] == '\0' || strlen(q->camera) >= CONFIG_NAME_MAX)) {
        http_reply_error(r, 400, "camera must be a camera name");
        return -1;
    }
    if (before && parse_i64(before, 1, INT64_MAX, &q->before) < 0) {
        http_reply_error(r, 400, "before must be a positive frame id");
        return -1;
    }
    if (limit && parse_i64(limit, 1, API_FRAMES_MAX_LIMIT, &q->limit) < 0) {
        http_reply_error(r, 400, "limit must be an integer in [1, %d]", API_FRAMES_MAX_LIMIT);
        return -1;
    }
    return 0;
}

static json_t *page_json(const struct store_frame_info *frames, int n, int64_t limit)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) json_array_append_new(arr, frame_json(&frames[i]));
    json_t *next = n == limit ? json_integer(frames[n - 1].id) : json_null();
    return json_pack("{s:o, s:o}", "frames", arr, "next_before", next);
}

static void list_frames(const struct http_request *req, struct http_reply *r)
{
    struct api_frames_query q;
    if (api_frames_list_query(req, r, &q) < 0) return;
    struct store_frame_info *frames = malloc((size_t)q.limit * sizeof *frames);
    if (!frames) {
        http_reply_error(r, 500, "out of memory");
        return;
    }
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int known = q.camera ? store_has_camera(rd, q.camera) : 1;
    int n = known == 1 ? store_list_frames(rd, q.camera, q.before, frames, (int)q.limit) : 0;
    if (known < 0 || n < 0) log_error("list frames: %s", store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (known < 0 || n < 0)
        http_reply_error(r, 500, "cannot read the database");
    else if (known == 0)
        http_reply_error(r, 404, "no camera named '%s'", q.camera);
    else
        http_reply_json(r, 200, page_json(frames, n, q.limit));
    free(frames);
}

static void get_frame(const struct http_request *req, struct http_reply *r)
{
    int64_t id;
    if (frame_id(req, r, &id) < 0) return;
    struct store_frame_info info;
    struct result_info res;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int found = store_get_frame(rd, id, &info);
    int judged = found == 1 ? store_get_result(rd, id, &res) : 0;
    if (found < 0 || judged < 0)
        log_error("get frame %lld: %s", (long long)id, store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (found < 0 || judged < 0) {
        http_reply_error(r, 500, "cannot read the database");
    } else if (found == 0) {
        http_reply_error(r, 404, "no frame %lld", (long long)id);
    } else {
        json_t *j = frame_json(&info);
        if (j)
            json_object_set_new(j, "result", judged ? line_result_json(&res, NULL) : json_null());
        http_reply_json(r, 200, j);
    }
}

static void get_image(const struct http_request *req, struct http_reply *r)
{
    int64_t id;
    if (frame_id(req, r, &id) < 0) return;
    struct store_frame_info info;
    void *data = NULL;
    size_t size = 0;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int found = store_get_image(rd, id, &data, &size, &info);
    if (found < 0) log_error("get image %lld: %s", (long long)id, store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (found < 0) {
        http_reply_error(r, 500, "cannot read the database");
    } else if (found == 0) {
        http_reply_error(r, 404, "no frame %lld", (long long)id);
    } else if (found == STORE_NO_IMAGE) {
        reply_no_image(r, id, &info);
    } else {
        bool jpeg = strcmp(info.format, "jpeg") == 0;
        http_reply_body(r, 200, jpeg ? "image/jpeg" : "image/png", data, size);
        /* A frame id with its creation time names the bytes even across a recreated database. */
        snprintf(r->etag, sizeof r->etag, "\"%lld-%lld\"", (long long)id,
                 (long long)info.created_at_us);
        r->cache_control = "private, max-age=31536000, immutable";
    }
}

#define THUMB_DEFAULT 192

/* A small JPEG of the frame: the longest side `size` pixels (never enlarged), aspect kept. */
static void get_thumbnail(const struct http_request *req, struct http_reply *r)
{
    static const char *const allowed[] = {"size", NULL};
    int64_t id, size = THUMB_DEFAULT;
    if (http_check_query(req, allowed, r) < 0 || frame_id(req, r, &id) < 0) return;
    const char *size_s = http_query(req, "size");
    if (size_s && parse_i64(size_s, 16, 1024, &size) < 0)
        return http_reply_error(r, 400, "size must be an integer in [16, 1024]");
    struct store_frame_info info;
    void *data = NULL;
    size_t len = 0;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int found = store_get_image(rd, id, &data, &len, &info);
    if (found < 0) log_error("get image %lld: %s", (long long)id, store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    if (found < 0) return http_reply_error(r, 500, "cannot read the database");
    if (found == 0) return http_reply_error(r, 404, "no frame %lld", (long long)id);
    if (found == STORE_NO_IMAGE) return reply_no_image(r, id, &info);
    char err[256];
    struct image im = {0}, small = {0};
    struct image_decode_opts o = {.channels = 3, .min_width = (int)size, .min_height = (int)size};
    uint8_t *jpeg = NULL;
    size_t jlen = 0;
    int rc = image_decode(data, len, &o, &im, err, sizeof err);
    free(data);
    if (rc == 0) {
        int W = im.width, H = im.height, longest = W > H ? W : H;
        if (longest > size)
            W = (int)((int64_t)W * size / longest), H = (int)((int64_t)H * size / longest);
        W = W < 1 ? 1 : W, H = H < 1 ? 1 : H;
        rc = image_alloc(&small, W, H, 3) || image_resize(&im, &small, IMAGE_FILTER_AREA) ||
                     image_encode_jpeg(&small, 80, &jpeg, &jlen, err, sizeof err) < 0
                 ? -1
                 : 0;
    }
    image_free(&im), image_free(&small);
    if (rc) {
        free(jpeg);
        log_error("thumbnail of frame %lld: %s", (long long)id, err);
        return http_reply_error(r, 500, "cannot make the thumbnail");
    }
    http_reply_body(r, 200, "image/jpeg", (char *)jpeg, jlen);
    snprintf(r->etag, sizeof r->etag, "\"%lld-%lld-t%lld\"", (long long)id,
             (long long)info.created_at_us, (long long)size);
    r->cache_control = "private, max-age=31536000, immutable";
}

/* The frame with its heatmap laid over it (flagged frames have one), as a JPEG. */
static void get_heatmap(const struct http_request *req, struct http_reply *r)
{
    int64_t id;
    if (frame_id(req, r, &id) < 0) return;
    struct store_frame_info info;
    void *data = NULL;
    size_t size = 0;
    float *grid = NULL;
    int gw = 0, gh = 0;
    double threshold = 0;
    struct store_reader *rd = store_pool_get(api_app(req)->readers);
    int found = store_get_image(rd, id, &data, &size, &info);
    int has_map = found == 1 ? store_get_heatmap(rd, id, &grid, &gw, &gh, &threshold) : 0;
    if (found < 0 || has_map < 0)
        log_error("get heatmap %lld: %s", (long long)id, store_reader_errmsg(rd));
    store_pool_put(api_app(req)->readers, rd);
    uint8_t *jpeg = NULL;
    size_t len = 0;
    char err[256];
    if (found < 0 || has_map < 0)
        http_reply_error(r, 500, "cannot read the database");
    else if (found == 0)
        http_reply_error(r, 404, "no frame %lld", (long long)id);
    else if (found == STORE_NO_IMAGE)
        reply_no_image(r, id, &info);
    else if (has_map == 0)
        http_reply_error(r, 404, "frame %lld has no heatmap (not flagged, or not scored)",
                         (long long)id);
    else if (heatmap_jpeg(data, size, grid, gh, gw, (float)threshold, &jpeg, &len, err,
                          sizeof err)) {
        log_error("heatmap of frame %lld: %s", (long long)id, err);
        http_reply_error(r, 500, "cannot draw the heatmap");
    } else {
        http_reply_body(r, 200, "image/jpeg", (char *)jpeg, len);
        r->cache_control = "private, max-age=60";
    }
    free(data), free(grid);
}

const struct http_route api_frames_routes[] = {
    {"GET", "/api/v1/frames", list_frames},
    {"GET", "/api/v1/frames/{id}", get_frame},
    {"GET", "/api/v1/frames/{id}/image", get_image},
    {"GET", "/api/v1/frames/{id}/heatmap", get_heatmap},
    {"GET", "/api/v1/frames/{id}/thumbnail", get_thumbnail},
    {0},
};
