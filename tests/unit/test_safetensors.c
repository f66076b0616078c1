/* test_safetensors.c — safetensors files: round trip, files written by Python (the reference step
 * and a DINO checkpoint exported by tools/torch/export_state_dict.py), hostile files (every
 * truncation, every byte corrupted, bad headers, bad offsets, wrong dtype, duplicates) refused
 * cleanly, a writer that refuses what a reader would; model checkpoints refuse a file of another
 * architecture and leave the weights untouched; a checkpoint's model metadata with a config out
 * of range is refused before anything divides by it or allocates from it; a training state
 * round-trips and needs a whole adam_step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "checkpoint.h"
#include "dino_step.h"
#include "scoring/model.h"
#include "safetensors.h"
#include "../fuzz/tiny_step.h"

static char dir[] = "/tmp/inspectd-st-XXXXXX";

static int setup(void **state)
{
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void round_trip_keeps_tensors_and_metadata(void **state)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[1] = {-7};
    int sa[2] = {2, 3}, sb[1] = {1};
    struct st_out t[2] = {{"layer.weight", 2, sa, a}, {"layer.bias", 1, sb, b}};
    const char *keys[] = {"epoch"}, *vals[] = {"3"};
    assert_int_equal(st_save(path, t, 2, keys, vals, 1, err, sizeof err), 0);
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, sizeof err), 0);
    assert_int_equal(f.ntensors, 2);
    assert_string_equal(st_meta(&f, "epoch"), "3");
    const struct st_tensor *w = st_find(&f, "layer.weight");
    assert_non_null(w);
    assert_int_equal(st_check_shape(w, 2, sa, err, sizeof err), 0);
    int wrong[2] = {3, 2};
    assert_int_equal(st_check_shape(w, 2, wrong, err, sizeof err), -1);
    assert_string_equal(err, "layer.weight: expected (3, 2), file has (2, 3)");
    float back[6];
    st_read_f32(w, back);
    assert_memory_equal(back, a, sizeof a);
    st_free(&f);
    /* no temporary file is left behind */
    snprintf(path, sizeof path, "ls %s | grep -c tmp > /dev/null", dir);
    assert_int_not_equal(system(path), 0);
}

/* 40 tensors written in a shuffled order: each is found by its own name, with its own data,
 * and names that are absent (before the first, after the last, between two, a prefix) are not. */
static void every_tensor_is_found_by_name(void **state)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/many.safetensors", dir);
    enum { N = 40 };
    char names[N][32];
    float vals[N];
    int shape[1] = {1};
    struct st_out t[N];
    for (int i = 0; i < N; i++) {
        int k = (i * 17) % N; /* 17 is prime to 40: a permutation */
        snprintf(names[i], sizeof names[i], "blocks.%d.w", k);
        vals[i] = (float)k;
        t[i] = (struct st_out){names[i], 1, shape, &vals[i]};
    }
    assert_int_equal(st_save(path, t, N, NULL, NULL, 0, err, sizeof err), 0);
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, sizeof err), 0);
    assert_int_equal(f.ntensors, N);
    for (int k = 0; k < N; k++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.w", k);
        const struct st_tensor *x = st_find(&f, name);
        assert_non_null(x);
        assert_string_equal(x->name, name);
        float v;
        st_read_f32(x, &v);
        assert_true(v == (float)k);
    }
    const char *absent[] = {"", "a", "blocks.", "blocks.1", "blocks.40.w", "blocks.9.w.", "z"};
    for (size_t i = 0; i < ARRAY_LEN(absent); i++) assert_null(st_find(&f, absent[i]));
    st_free(&f);
}

static void file_written_by_python_loads(void **state)
{
    struct st_file f;
    char err[256];
    assert_int_equal(st_load("tests/reference/vit_step.safetensors", &f, err, sizeof err), 0);
    assert_non_null(st_find(&f, "param.blocks.1.attn.qkv.weight"));
    assert_string_equal(st_meta(&f, "format"), "inspectd-reference");
    st_free(&f);
}

/* tools/torch/export_state_dict.py's pattern: a hash of the name plus i/1024. */
static float pattern_value(const char *name, size_t i)
{
    int h = 0;
    for (int j = 0; name[j]; j++) h = (h + (j + 1) * (unsigned char)name[j]) % 1000;
    return (float)h + (float)i / 1024.0f;
}

static int meta_int(json_t *c, const char *key)
{
    json_t *v = json_object_get(c, key);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

/* The teacher of main_dino.py's checkpoint.pth, exported by the script's few lines: names in
 * state-dict order, no header padding (so the data is unaligned), backbone. prefix removed. */
static void dino_checkpoint_exported_by_python_loads(void **state)
{
    struct st_file f;
    char err[256];
    assert_int_equal(st_load("tests/reference/python_export.safetensors", &f, err, sizeof err), 0);
    uint64_t hlen;
    memcpy(&hlen, f.buf, 8);
    assert_int_not_equal((8 + hlen) % 4, 0);
    json_t *c = json_loads(st_meta(&f, "config"), 0, NULL);
    assert_non_null(c);
    struct vit_config cfg = {.dim = meta_int(c, "dim"),
                             .depth = meta_int(c, "depth"),
                             .heads = meta_int(c, "heads"),
                             .mlp_ratio = meta_int(c, "mlp_ratio"),
                             .patch = meta_int(c, "patch"),
                             .img_size = meta_int(c, "img_size"),
                             .in_chans = meta_int(c, "in_chans"),
                             .head_hidden = meta_int(c, "head_hidden"),
                             .head_bottleneck = meta_int(c, "head_bottleneck"),
                             .head_out = meta_int(c, "head_out")};
    json_decref(c);
    struct vit_model m;
    assert_int_equal(vit_create(&m, &cfg, false, err, sizeof err), 0);
    int rc = checkpoint_load_model(&m, &f, "", err, sizeof err);
    if (rc) printf("  %s\n", err);
    assert_int_equal(rc, 0);
    for (int k = 0; k < m.ntensors; k++) {
        const struct vit_tensor *t = &m.tensors[k];
        for (size_t i = 0; i < t->numel; i++)
            assert_float_equal(m.params[t->offset + i], pattern_value(t->name, i), 0);
    }
    printf("  %d tensors, data at byte %llu\n", m.ntensors, (unsigned long long)(8 + hlen));
    vit_destroy(&m);
    /* a model with the training tasks' heads: the strict load refuses the export, the load for
     * starting a run takes it and leaves the heads it lacks as they were */
    cfg.aux_classes = 8, cfg.defect_head = 1;
    assert_int_equal(vit_create(&m, &cfg, false, err, sizeof err), 0);
    m.w.aux_w[0] = 0.5f, m.w.defect_b[0] = 0.25f;
    assert_int_equal(checkpoint_load_model(&m, &f, "", err, sizeof err), -1);
    assert_non_null(strstr(err, "missing tensor aux_head.weight"));
    rc = checkpoint_load_model_tasks_optional(&m, &f, "", err, sizeof err);
    if (rc) printf("  %s\n", err);
    assert_int_equal(rc, 0);
    assert_float_equal(m.w.aux_w[0], 0.5f, 0);
    assert_float_equal(m.w.defect_b[0], 0.25f, 0);
    const struct vit_tensor *qkv = vit_find_tensor(&m, "blocks.0.attn.qkv.weight");
    assert_float_equal(m.params[qkv->offset + 3], pattern_value(qkv->name, 3), 0);
    vit_destroy(&m);
    st_free(&f);
}

/* Each call must fail with `why` in the message and leave the good file at `path` as it was. */
static void refused_write(const char *path, const struct st_out *t, int n, const char *const *keys,
                          const char *const *values, int nmeta, const char *why)
{
    char err[256];
    assert_int_equal(st_save(path, t, n, keys, values, nmeta, err, sizeof err), -1);
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, why));
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, sizeof err), 0);
    assert_int_equal(f.ntensors, 1);
    assert_non_null(st_find(&f, "good"));
    st_free(&f);
}

static void writer_refuses_what_a_reader_would(void **state)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float a[4] = {1, 2, 3, 4};
    int s4[1] = {4}, neg[1] = {-4}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    int huge[2] = {1 << 30, 1 << 30};
    struct st_out good = {"good", 1, s4, a};
    assert_int_equal(st_save(path, &good, 1, NULL, NULL, 0, err, sizeof err), 0);
    struct st_out twice[2] = {{"x", 1, s4, a}, {"x", 1, s4, a}};
    refused_write(path, twice, 2, NULL, NULL, 0, "given twice");
    refused_write(path, &(struct st_out){"__metadata__", 1, s4, a}, 1, NULL, NULL, 0,
                  "not allowed");
    refused_write(path, &(struct st_out){"", 1, s4, a}, 1, NULL, NULL, 0, "not allowed");
    refused_write(path, &(struct st_out){"bad\xff", 1, s4, a}, 1, NULL, NULL, 0, "UTF-8");
    refused_write(path, &(struct st_out){"x", 1, neg, a}, 1, NULL, NULL, 0, "negative");
    refused_write(path, &(struct st_out){"x", 9, nine, a}, 1, NULL, NULL, 0, "dimensions");
    refused_write(path, &(struct st_out){"x", 2, huge, a}, 1, NULL, NULL, 0, "too large");
    const char *keys[] = {"k", "k"}, *values[] = {"1", "2"}, *bad[] = {"\xc3\x28"};
    refused_write(path, &good, 1, keys, values, 2, "twice");
    refused_write(path, &good, 1, keys, bad, 1, "UTF-8");
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    assert_int_equal(st_save(missing, &good, 1, NULL, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "temporary file"));
}

static uint8_t *small_file(size_t *len)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/small.safetensors", dir);
    float a[4] = {1, 2, 3, 4};
    int sa[1] = {4};
    struct st_out t[2] = {{"a", 1, sa, a}, {"b", 1, sa, a}};
    assert_int_equal(st_save(path, t, 2, NULL, NULL, 0, err, sizeof err), 0);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *buf = malloc(4096);
    *len = fread(buf, 1, 4096, fp);
    fclose(fp);
    return buf;
}

static int parse_copy(const uint8_t *src, size_t len, char *err)
{
    uint8_t *b = malloc(len ? len : 1);
    memcpy(b, src, len);
    struct st_file f;
    int rc = st_parse(b, len, &f, err, 256);
    if (!rc) st_free(&f);
    return rc;
}

/* Every byte of a small file set to each of a few values: parsing either fails with a message or
 * yields tensors that lie inside the file (ASan checks every read in the sanitizer build). */
static void every_corrupted_byte_is_handled(void **state)
{
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '"', '{', '}', '[',
                                     ']',  ',',  ':',  '-',  '0',  '9', ' ', 'e', '\\'};
    size_t len;
    uint8_t *orig = small_file(&len);
    int refused = 0, accepted = 0;
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            if (orig[pos] == values[v]) continue;
            uint8_t *b = malloc(len);
            assert_non_null(b);
            memcpy(b, orig, len);
            b[pos] = values[v];
            struct st_file f;
            char err[256] = "";
            if (st_parse(b, len, &f, err, sizeof err)) {
                assert_true(err[0] != '\0');
                refused++;
                continue;
            }
            accepted++;
            for (int i = 0; i < f.ntensors; i++) {
                const struct st_tensor *t = &f.tensors[i];
                assert_true(t->bytes >= f.buf + 8 && t->bytes + t->numel * 4 <= f.buf + f.len);
                float *dst = malloc(t->numel * sizeof(float) + 1);
                assert_non_null(dst);
                st_read_f32(t, dst);
                free(dst);
            }
            st_free(&f);
        }
    }
    printf("  %d corrupted files refused, %d accepted (data bytes or harmless JSON)\n", refused,
           accepted);
    assert_true(refused > 0 && accepted > 0);
    free(orig);
}

static void every_truncation_is_refused(void **state)
{
    size_t len;
    uint8_t *buf = small_file(&len);
    char err[256];
    assert_int_equal(parse_copy(buf, len, err), 0);
    for (size_t cut = 0; cut < len; cut++) assert_int_equal(parse_copy(buf, cut, err), -1);
    free(buf);
}

static int parse_text(const char *header, size_t datalen, char *err)
{
    size_t hl = strlen(header), len = 8 + hl + datalen;
    uint8_t *b = calloc(1, len);
    uint64_t h = hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, header, hl);
    struct st_file f;
    int rc = st_parse(b, len, &f, err, 256);
    if (!rc) st_free(&f);
    return rc;
}

static void hostile_headers_are_refused(void **state)
{
    char err[256];
    assert_int_equal(
        parse_text("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, err), 0);
    static const char *bad[] = {
        "[1,2]",
        "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"__metadata__\":{\"k\":1}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}",
        "{\"a\":",
        "{\"a\":[]}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}",
        "{\"__metadata__\":[]}",
        "{} trailing",
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(parse_text(bad[i], 8, err), -1);
        printf("  refused: %s\n", err);
    }
    assert_int_equal(parse_text(bad[6], 8, err), -1);
    assert_non_null(strstr(err, "too large"));
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(parse_copy(huge, sizeof huge, err), -1);
    assert_non_null(strstr(err, "header length"));
    assert_int_equal(st_load("/nonexistent/x.safetensors", &(struct st_file){0}, err, 256), -1);
}

static void checkpoint_of_another_model_is_refused(void **state)
{
    struct vit_config small = {.dim = 12,
                               .depth = 1,
                               .heads = 2,
                               .mlp_ratio = 2,
                               .patch = 4,
                               .img_size = 8,
                               .in_chans = 1};
    struct vit_config deeper = small;
    deeper.depth = 2;
    struct vit_model a, b;
    char err[256], path[256];
    assert_int_equal(vit_create(&a, &small, false, err, sizeof err), 0);
    assert_int_equal(vit_create(&b, &deeper, false, err, sizeof err), 0);
    vit_init_weights(&a, 1);
    vit_init_weights(&b, 2);
    snprintf(path, sizeof path, "%s/deep.safetensors", dir);
    const struct vit_model *models[] = {&b};
    const char *prefixes[] = {"teacher."};
    assert_int_equal(
        checkpoint_save_models(path, models, prefixes, 1, NULL, NULL, 0, err, sizeof err), 0);
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, sizeof err), 0);
    float before = a.params[0];
    assert_int_equal(checkpoint_load_model(&a, &f, "teacher.", err, sizeof err), -1);
    assert_non_null(strstr(err, "unexpected tensor teacher.blocks.1"));
    assert_float_equal(a.params[0], before, 0);
    struct vit_model c;
    assert_int_equal(vit_create(&c, &deeper, false, err, sizeof err), 0);
    assert_int_equal(checkpoint_load_model(&c, &f, "teacher.", err, sizeof err), 0);
    assert_memory_equal(c.params, b.params, b.nparams * sizeof(float));
    assert_int_equal(checkpoint_load_model(&c, &f, "student.", err, sizeof err), -1);
    assert_non_null(strstr(err, "missing tensor student.cls_token"));
    st_free(&f);
    vit_destroy(&a), vit_destroy(&b), vit_destroy(&c);
}

static void load_tiny_step(struct dino_step *s, uint64_t seed)
{
    char err[256];
    assert_int_equal(tiny_step_create(s, seed, err, sizeof err), 0);
}

/* A training state round-trips; an adam_step that is not a whole number in range is refused
 * (it used to read "" as step 0 and an overflowing number as LONG_MAX) and changes nothing. */
static void training_checkpoint_needs_a_valid_step(void **state)
{
    struct dino_step a, b;
    load_tiny_step(&a, 1);
    load_tiny_step(&b, 2);
    a.student.adam_step = 17;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/train.safetensors", dir);
    assert_int_equal(checkpoint_save_training(path, &a, NULL, NULL, 0, err, sizeof err), 0);
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, sizeof err), 0);
    int step_meta = -1;
    for (int i = 0; i < f.nmeta; i++)
        if (strcmp(f.meta_keys[i], "adam_step") == 0) step_meta = i;
    assert_true(step_meta >= 0);

    float before = b.student.params[0];
    static const char *const bad[] = {"", "-1", "12x", "99999999999999999999999", "x"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        free(f.meta_values[step_meta]);
        f.meta_values[step_meta] = strdup(bad[i]);
        if (checkpoint_load_training(&b, &f, err, sizeof err) != -1)
            fail_msg("adam_step '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "centre/step"));
        assert_float_equal(b.student.params[0], before, 0);
    }
    free(f.meta_values[step_meta]);
    f.meta_values[step_meta] = strdup("17");
    assert_int_equal(checkpoint_load_training(&b, &f, err, sizeof err), 0);
    assert_int_equal(b.student.adam_step, 17);
    assert_memory_equal(b.teacher.params, a.teacher.params, a.teacher.nparams * sizeof(float));
    st_free(&f);
    dino_step_destroy(&a), dino_step_destroy(&b);
}

/* Writes a file holding only the "model" metadata and reads its config back. */
static int read_model_meta(const char *model_json, struct scoring_model *m, struct vit_config *c,
                           char *err)
{
    char path[256];
    snprintf(path, sizeof path, "%s/meta.safetensors", dir);
    const char *keys[] = {"format", "model"}, *vals[] = {"inspectd-checkpoint", model_json};
    assert_int_equal(st_save(path, NULL, 0, keys, vals, 2, err, 256), 0);
    struct st_file f;
    assert_int_equal(st_load(path, &f, err, 256), 0);
    memset(m, 0, sizeof *m);
    err[0] = '\0';
    int rc = model_read_config(&f, "meta", m, c, err, 256);
    st_free(&f);
    return rc;
}

static void model_metadata_out_of_range_is_refused(void **state)
{
    char json[512], err[256];
    struct scoring_model m;
    struct vit_config c;
    const char *fmt = "{\"depth\":%s,\"dim\":8,\"head_bottleneck\":4,\"head_hidden\":8,"
                      "\"head_out\":8,\"heads\":2,\"img_size\":%s,\"in_chans\":1,"
                      "\"mean\":[%s],\"mlp_ratio\":2,\"patch\":%s,\"std\":[%s]}";
    snprintf(json, sizeof json, fmt, "1", "8", "0.5", "4", "0.25");
    assert_int_equal(read_model_meta(json, &m, &c, err), 0);
    assert_int_equal(c.patch, 4);
    assert_int_equal(m.gh, 2);
    assert_int_equal(m.size, 8);
    assert_float_equal(m.std[0], 0.25, 0);
    static const struct {
        const char *depth, *img_size, *mean, *patch, *std, *why;
    } bad[] = {
        /* found by fuzz_safetensors: patch 0 divided img_size by zero (SIGFPE in the daemon) */
        {"1", "8", "0.5", "0", "0.25", "multiple of patch"},
        {"1", "0", "0.5", "4", "0.25", "multiple of patch"},
        {"1", "8", "0.5", "-4", "0.25", "multiple of patch"},
        {"1", "8", "0.5", "3", "0.25", "multiple of patch"},
        {"0", "8", "0.5", "4", "0.25", "must be positive"},
        {"100000", "8", "0.5", "4", "0.25", "out of range"},
        {"1", "8", "1e300", "4", "0.25", "model metadata"}, /* beyond float */
        {"1", "8", "\"x\"", "4", "0.25", "model metadata"},
        {"1", "8", "0.5", "4", "0", "model metadata"},
        {"1", "8", "0.5", "4", "-1", "model metadata"},
        {"1", "8", "0.5", "4", "1e-300", "model metadata"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        snprintf(json, sizeof json, fmt, bad[i].depth, bad[i].img_size, bad[i].mean, bad[i].patch,
                 bad[i].std);
        assert_int_equal(read_model_meta(json, &m, &c, err), -1);
        if (strncmp(err, "meta: ", 6) != 0 || !strstr(err, bad[i].why))
            fail_msg("case %zu: expected '%s', got '%s'", i, bad[i].why, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_tensors_and_metadata),
        cmocka_unit_test(every_tensor_is_found_by_name),
        cmocka_unit_test(file_written_by_python_loads),
        cmocka_unit_test(dino_checkpoint_exported_by_python_loads),
        cmocka_unit_test(writer_refuses_what_a_reader_would),
        cmocka_unit_test(every_corrupted_byte_is_handled),
        cmocka_unit_test(every_truncation_is_refused),
        cmocka_unit_test(hostile_headers_are_refused),
        cmocka_unit_test(checkpoint_of_another_model_is_refused),
        cmocka_unit_test(model_metadata_out_of_range_is_refused),
        cmocka_unit_test(training_checkpoint_needs_a_valid_step),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
