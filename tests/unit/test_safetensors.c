/* test_safetensors.c — safetensors files: round trip, the file written by Python, and hostile
 * files (every truncation, bad headers, bad offsets, wrong dtype, duplicates) refused cleanly;
 * model checkpoints refuse a file of another architecture and leave the weights untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"

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

static void file_written_by_python_loads(void **state)
{
    struct st_file f;
    char err[256];
    assert_int_equal(st_load("tests/reference/vit_step.safetensors", &f, err, sizeof err), 0);
    assert_non_null(st_find(&f, "param.blocks.1.attn.qkv.weight"));
    assert_string_equal(st_meta(&f, "format"), "inspectd-reference");
    st_free(&f);
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
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_tensors_and_metadata),
        cmocka_unit_test(file_written_by_python_loads),
        cmocka_unit_test(every_truncation_is_refused),
        cmocka_unit_test(hostile_headers_are_refused),
        cmocka_unit_test(checkpoint_of_another_model_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
