/* seeds.c — writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/ with
 * inspectd's own encoders and writers: tiny JPEG and PNG frames, the embedded default config and
 * one using every section, a training checkpoint / plain export / bank file of the tiny model
 * fuzz_safetensors.c loads, and sample requests for fuzz_http.c (first byte = input kind).
 *
 * `make fuzz-seeds` rebuilds and reruns it; the files are committed, so the corpora only change
 * when this program does. Output is deterministic (fixed seeds, no timestamps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "checkpoint.h"
#include "base/config.h"
#include "image.h"
#include "tiny_step.h"

static const char *root = "tests/fuzz/corpus";

static void die(const char *what, const char *why)
{
    fprintf(stderr, "seeds: %s: %s\n", what, why);
    exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(root, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) die(path, "cannot write");
}

static void put_text(const char *target, const char *name, const char *text)
{
    put(target, name, text, strlen(text));
}

/* A gradient with a bright square, w x h x ch. */
static void pattern(struct image *im, int w, int h, int ch)
{
    if (image_alloc(im, w, h, ch)) die("image", "cannot allocate");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                int v = (x * 255 / w + y * 64 / h + c * 80) & 255;
                if (x > w / 4 && x < w / 2 && y > h / 4 && y < h / 2) v = 250;
                im->data[(size_t)y * im->stride + (size_t)x * ch + c] = (uint8_t)v;
            }
}

static void image_seeds(void)
{
    static const struct {
        int w, h, ch;
    } sizes[] = {{8, 8, 1}, {16, 16, 3}, {5, 3, 3}, {33, 17, 1}};
    char err[256], name[64];
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        struct image im;
        uint8_t *out;
        size_t len;
        pattern(&im, sizes[i].w, sizes[i].h, sizes[i].ch);
        if (image_encode_jpeg(&im, 75, &out, &len, err, sizeof err)) die("jpeg", err);
        snprintf(name, sizeof name, "%dx%dx%d.jpg", sizes[i].w, sizes[i].h, sizes[i].ch);
        put("image", name, out, len);
        free(out);
        if (image_encode_png(&im, &out, &len, err, sizeof err)) die("png", err);
        snprintf(name, sizeof name, "%dx%dx%d.png", sizes[i].w, sizes[i].h, sizes[i].ch);
        put("image", name, out, len);
        free(out);
        image_free(&im);
    }
}

static void config_seeds(void)
{
    put_text("config", "default.conf", config_default_text());
    put_text(
        "config", "every-key.conf",
        "; every section\n"
        "[http]\nlisten = 0.0.0.0:9000\ntoken = s3cret\nthreads = 2\nmax_connections = 8\n"
        "timeout = 30\nmax_upload = 4096\n"
        "[store]\npath = /tmp/x.db\njpeg_quality = 75\nbatch_frames = 10\nbatch_ms = 0\n"
        "[pipeline]\nqueue_size = 8\n"
        "[trainer]\nenabled = 0\nevery_frames = 100\nmin_frames = 10\nminutes = 0.5\nsize = 32\n"
        "first_minutes = 0.25\nchannels = 1\nthreads = 2\nmax_images = 50\nkeep_models = 2\n"
        "import = /srv/model.safetensors\n"
        "dim = 64\ndepth = 2\nheads = 2\nbatch = 16\n"
        "[engine]\ngemm = openblas\nprecision = f32\n"
        "[log]\nlevel = debug\n"
        "[recipe.plate]\nnumber = 3\nevery_frames = 500\nminutes = 2\ndim = 32\n"
        "false_alarm_rate = 0.01\nthreshold = 1.5\n"
        "[results]\nshifts = 06:00,14:00,22:00\n"
        "[mqtt]\nhost = 127.0.0.1\nport = 1883\nclient_id = line-pc\nusername = u\n"
        "password_file = /etc/p\nca_file = /ca.pem\ncert_file = /c.pem\nkey_file = /k.pem\n"
        "topic_prefix = plant/inspectd\nqos_results = 1\nqos_alerts = 2\nmax_queued = 50\n"
        "keepalive = 10\n"
        "[webhook.mes]\nurl = https://mes.example/hook\nevents = alert, result\nsecret = k\n"
        "timeout_ms = 2000\nmax_pending = 100\nmax_age = 3600\n"
        "[plc]\nlisten = 127.0.0.1:1502\nallow_remote = false\nwritable = true\n"
        "window_ms = 500\n"
        "[camera.line1]\ndriver = synthetic\nfps = 5\nrecipe = plate\n"
        "[camera.dock-2]\ndriver = folder\npath = /srv/frames ; a comment\n");
}

static void copy_file(const char *from, const char *target, const char *name)
{
    FILE *f = fopen(from, "rb");
    if (!f) die(from, "cannot read");
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    put(target, name, buf, n);
}

static void safetensors_seeds(void)
{
    struct dino_step s;
    char err[256], dir[] = "/tmp/inspectd-seeds-XXXXXX", path[512];
    if (tiny_step_create(&s, 7, err, sizeof err)) die("model", err);
    if (!mkdtemp(dir)) die(dir, "cannot create");

    const char *keys[] = {"format", "model"};
    const char *vals[] = {"inspectd-checkpoint",
                          "{\"depth\":1,\"dim\":8,\"head_bottleneck\":4,\"head_hidden\":8,"
                          "\"head_out\":8,\"heads\":2,\"img_size\":8,\"in_chans\":1,"
                          "\"mean\":[0.5],\"mlp_ratio\":2,\"patch\":4,\"std\":[0.25]}"};
    snprintf(path, sizeof path, "%s/train.safetensors", dir);
    if (checkpoint_save_training(path, &s, keys, vals, 2, err, sizeof err)) die(path, err);
    copy_file(path, "safetensors", "training.safetensors");
    unlink(path);

    /* the metadata alone: small, so mutations land in the model config */
    snprintf(path, sizeof path, "%s/meta.safetensors", dir);
    if (st_save(path, NULL, 0, keys, vals, 2, err, sizeof err)) die(path, err);
    copy_file(path, "safetensors", "metadata-only.safetensors");
    unlink(path);

    const struct vit_model *models[] = {&s.teacher};
    const char *prefixes[] = {""};
    snprintf(path, sizeof path, "%s/export.safetensors", dir);
    if (checkpoint_save_models(path, models, prefixes, 1, NULL, NULL, 0, err, sizeof err))
        die(path, err);
    copy_file(path, "safetensors", "export.safetensors");
    unlink(path);

    float bank[3 * 8];
    for (int i = 0; i < 3 * 8; i++) bank[i] = (float)i * 0.125f;
    int shape[] = {3, 8};
    struct st_out t = {"bank", 2, shape, bank};
    const char *bkeys[] = {"format", "layer", "threshold", "top_q"};
    const char *bvals[] = {"inspectd-bank", "1", "0.75", "0"};
    snprintf(path, sizeof path, "%s/bank.safetensors", dir);
    if (st_save(path, &t, 1, bkeys, bvals, 4, err, sizeof err)) die(path, err);
    copy_file(path, "safetensors", "bank.safetensors");
    unlink(path);

    rmdir(dir);
    dino_step_destroy(&s);
}

/* fuzz_http.c's kinds: 0 route, 1 frames query, 2 parse_int, 3 JSON body, 4 alerts query,
 * 5 review body, 6 query-string time, 7 export query, 8 train body, 9 results query, 10 parts
 * body, 11 event types, 12 recipe switch body, 13 sensitivity body, 14 what `inspectd model
 * import` prints. */
static void http_seeds(void)
{
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"route-health", "\x00GET /healthz"},
        {"route-frames", "\x00GET /api/v1/frames"},
        {"route-image", "\x00HEAD /api/v1/frames/42/image"},
        {"route-heatmap", "\x00GET /api/v1/frames/7/heatmap"},
        {"route-405", "\x00POST /api/v1/status"},
        {"route-404", "\x00GET /api/v1/frames/1/2/3"},
        {"route-review", "\x00POST /api/v1/alerts/12/review"},
        {"query-all", "\x01"
                      "camera=line1&before=100&limit=10"},
        {"query-unknown", "\x01limit=5&color=red"},
        {"query-bare", "\x01"
                       "camera&limit"},
        {"int-range", "\x02"
                      "1 1000 50"},
        {"int-negative", "\x02-5 5 -3"},
        {"int-big", "\x02"
                    "9223372036854775807"},
        {"json-review", "\x03{\"verdict\":\"defect\",\"note\":\"scratch near the edge\"}"},
        {"json-nested", "\x03{\"a\":[1,2.5,{\"b\":null}],\"c\":true}"},
        {"json-array", "\x03[1,2,3]"},
        {"alerts-query", "\x04state=new&camera=line1&since=2025-11-29T12:00:00Z"
                         "&until=1764460800000000&limit=20&cursor=7"},
        {"alerts-query-token", "\x04state=defect&access_token=abc"},
        {"review-defect", "\x05{\"verdict\":\"defect\",\"note\":\"scratch near the edge\"}"},
        {"review-fp", "\x05{\"verdict\":\"false_positive\",\"note\":null}"},
        {"review-unknown", "\x05{\"verdict\":\"defect\",\"colour\":1}"},
        {"time-rfc3339", "\x06"
                         "2026-11-29T13:00:00.5+01:00"},
        {"time-us", "\x06"
                    "1764417600000000"},
        {"export-query", "\x07state=defect&camera=line1&since=2025-11-29 12:00:00Z"
                         "&until=1764460800000000"},
        {"train-fresh", "\x08{\"fresh\":true}"},
        {"train-bad", "\x08{\"fresh\":1,\"minutes\":3}"},
        {"results-query", "\x09"
                          "camera=line1&verdict=unscored&since=2026-12-03T06:00:00Z&limit=100"
                          "&cursor=77"},
        {"parts-body", "\x0a{\"camera\":\"line1\",\"part_id\":\"SN-2026-000042\"}"},
        {"parts-bad", "\x0a{\"camera\":\"line1\",\"part_id\":7}"},
        {"event-types", "\x0b"
                        "result,alert"},
        {"event-types-bad", "\x0b"
                            "alert,,results"},
        {"train-recipe", "\x08{\"recipe\":\"plate\",\"fresh\":false}"},
        {"route-recipe", "\x00POST /api/v1/cameras/top/recipe"},
        {"recipe-switch", "\x0c{\"recipe\":\"plate\"}"},
        {"recipe-bad", "\x0c{\"recipe\":\"a b\",\"camera\":1}"},
        {"sensitivity-rate", "\x0d{\"false_alarm_rate\":0.01}"},
        {"sensitivity-threshold", "\x0d{\"threshold\":1.25}"},
        {"sensitivity-bad", "\x0d{\"false_alarm_rate\":1,\"threshold\":-2}"},
        {"import-ok", "\x0e"
                      "2026-12-04T18:51:26.766Z I model: m.safetensors: imported model\n"
                      "{\"id\":1,\"version\":\"20261204T185126Z\",\"status\":\"active\"}\n"},
        {"import-error", "\x0e"
                         "2026-12-04T18:51:27.522Z E model: line.db: the database has no "
                         "recipe named 'nope'\n"},
        {"route-models", "\x00POST /api/v1/models"},
    };
    for (size_t i = 0; i < ARRAY_LEN(seeds); i++)
        put("http", seeds[i].name, seeds[i].text, 1 + strlen(seeds[i].text + 1));
}

/* fuzz_mqtt.c's kinds: 0 topic, 1 part/set payload, 2 train/set payload, 3 recipe/set payload. */
static void mqtt_seeds(void)
{
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"topic-part", "\x00inspectd/line1/part/set"},
        {"topic-train", "\x00inspectd/train/set"},
        {"topic-recipe", "\x00inspectd/dock-2/recipe/set"},
        {"part", "\x01{\"part_id\":\"SN-2026-000042\"}"},
        {"part-bad", "\x01{\"part_id\":\"x\",\"extra\":1}"},
        {"train-fresh", "\x02{\"fresh\":true}"},
        {"train-empty", "\x02"},
        {"recipe", "\x03{\"recipe\":\"bolt-m8\"}"},
    };
    for (size_t i = 0; i < ARRAY_LEN(seeds); i++)
        put("mqtt", seeds[i].name, seeds[i].text, 1 + strlen(seeds[i].text + 1));
}

/* fuzz_plc.c's inputs: a byte whose low bit says writable, then a Modbus TCP request. */
static void plc_seeds(void)
{
    static const struct {
        const char *name;
        unsigned char bytes[24];
        size_t len;
    } seeds[] = {
        {"read-head", {1, 0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 12}, 13},
        {"write-reset", {1, 0, 2, 0, 0, 0, 6, 1, 6, 0, 20, 0, 1}, 13},
        {"write-part", {1, 0, 3, 0, 0, 0, 11, 1, 16, 0, 150, 0, 2, 4, 'P', 'L', '-', '1'}, 18},
        {"write-readonly", {0, 0, 4, 0, 0, 0, 6, 1, 6, 0, 5, 0, 1}, 13},
        {"write-coil", {1, 0, 5, 0, 0, 0, 6, 1, 5, 0, 0, 255, 0}, 13},
        {"write-recipe", {1, 0, 6, 0, 0, 0, 6, 1, 6, 0, 182, 0, 7}, 13},
    };
    for (size_t i = 0; i < ARRAY_LEN(seeds); i++)
        put("plc", seeds[i].name, seeds[i].bytes, seeds[i].len);
}

int main(void)
{
    image_seeds();
    config_seeds();
    safetensors_seeds();
    http_seeds();
    mqtt_seeds();
    plc_seeds();
    return 0;
}
