/* test_prune.c — model_files_prune on a real models directory and SQLite file: the checkpoint
 * and bank of the active model and of the keep_models newest are kept (also when a row names its
 * file through another path), older ones and checkpoints no model names (abandoned runs) are
 * removed, a run to resume, its bank and the import file are spared, files that are not
 * .safetensors, symlinks and model files outside the directory are never touched, a second prune
 * removes nothing, and nothing is removed when a file of the active model cannot be found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "store/store.h"
#include "store/scoring_store.h"
#include "tmpdb.h"
#include "scoring/model_files.h"

static int setup(void **state)
{
    return tmpdb_setup(state, "/tmp/test_prune_XXXXXX");
}

static void write_file(const char *path, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    for (size_t i = 0; i < size; i++) fputc((int)(i & 0xff), f);
    fclose(f);
}

static bool exists(const char *dir, const char *name)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Writes DIR/NAME.safetensors (1000 bytes) and DIR/NAME.bank.safetensors (100 bytes) and
 * registers them as model NAME, active or rejected, under the paths REG/NAME... (REG may name DIR
 * another way). */
static void add_model(struct scoring_store *ss, const char *dir, const char *reg, const char *name,
                      bool active)
{
    char ckpt[PATH_MAX + 64], bank[PATH_MAX + 64];
    snprintf(ckpt, sizeof ckpt, "%s/%s.safetensors", dir, name);
    snprintf(bank, sizeof bank, "%s/%s.bank.safetensors", dir, name);
    write_file(ckpt, 1000);
    write_file(bank, 100);
    snprintf(ckpt, sizeof ckpt, "%s/%s.safetensors", reg, name);
    snprintf(bank, sizeof bank, "%s/%s.bank.safetensors", reg, name);
    assert_int_equal(scoring_store_register_model(ss, "line", name, ckpt, bank, 1.0, 10, 0.5, "{}",
                                                  active, NULL, NULL, 0),
                     0);
}

static int prune(struct scoring_store *ss, const char *models, int keep, const char *const *spare,
                 int nspare, int *files, int64_t *bytes, char *err)
{
    *files = 0, *bytes = 0;
    return model_files_prune(ss, models, keep, spare, nspare, files, bytes, err, 512);
}

static void old_models_and_abandoned_runs_go(void **state)
{
    struct fixture *f = *state;
    char err[512], models[PATH_MAX], outside[PATH_MAX], alias[PATH_MAX];
    struct store *s = store_open(f->path, err, sizeof err);
    if (!s) fail_msg("store_open: %s", err);
    struct scoring_store *ss = scoring_store_open(f->path, err, sizeof err);
    if (!ss) fail_msg("scoring_store_open: %s", err);
    snprintf(models, sizeof models, "%s/models", f->dir);
    snprintf(outside, sizeof outside, "%s/elsewhere", f->dir);
    snprintf(alias, sizeof alias, "%s/alias", f->dir); /* the models directory by another path */
    assert_int_equal(mkdir(models, 0750), 0);
    assert_int_equal(mkdir(outside, 0750), 0);
    assert_int_equal(symlink(models, alias), 0);

    add_model(ss, outside, outside, "o0", true); /* oldest of all, outside the directory */
    add_model(ss, models, models, "m1", true);   /* retired by m2 */
    add_model(ss, models, models, "m2", true);   /* retired by m3 */
    add_model(ss, models, models, "m3", true);   /* stays active: kept though old */
    add_model(ss, models, models, "m4", false);  /* rejected */
    add_model(ss, models, alias, "m5", false);   /* second newest, registered via the alias */
    add_model(ss, models, models, "m6", false);  /* newest */
    char path[PATH_MAX + 64], resume[PATH_MAX + 64], import[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/abandoned.safetensors", models);
    write_file(path, 500);
    snprintf(resume, sizeof resume, "%s/resume.safetensors", models);
    write_file(resume, 700);
    snprintf(path, sizeof path, "%s/resume.bank.safetensors", models);
    write_file(path, 70);
    snprintf(import, sizeof import, "%s/import.safetensors", alias); /* named through the alias */
    write_file(import, 300);
    static const char *const others[] = {".training.lock", "notes.txt", "m1.safetensors.progress",
                                         "x.safetensors.tmp.123"};
    for (size_t i = 0; i < ARRAY_LEN(others); i++) {
        snprintf(path, sizeof path, "%s/%s", models, others[i]);
        write_file(path, 10);
    }
    char target[PATH_MAX + 64];
    snprintf(target, sizeof target, "%s/m1.safetensors", models);
    snprintf(path, sizeof path, "%s/link.safetensors", models);
    assert_int_equal(symlink(target, path), 0);

    const char *spares[] = {resume, import};
    int files;
    int64_t bytes;
    assert_int_equal(prune(ss, models, 2, spares, 2, &files, &bytes, err), 0);
    /* m1, m2, m4: checkpoint and bank each; abandoned */
    assert_int_equal(files, 7);
    assert_int_equal(bytes, 3 * 1100 + 500);
    static const char *const gone[] = {
        "m1.safetensors", "m1.bank.safetensors", "m2.safetensors",       "m2.bank.safetensors",
        "m4.safetensors", "m4.bank.safetensors", "abandoned.safetensors"};
    for (size_t i = 0; i < ARRAY_LEN(gone); i++)
        if (exists(models, gone[i])) fail_msg("%s is still there", gone[i]);
    static const char *const kept[] = {"m3.safetensors",
                                       "m3.bank.safetensors",
                                       "m5.safetensors",
                                       "m5.bank.safetensors",
                                       "m6.safetensors",
                                       "m6.bank.safetensors",
                                       "resume.safetensors",
                                       "resume.bank.safetensors",
                                       "import.safetensors",
                                       ".training.lock",
                                       "notes.txt",
                                       "m1.safetensors.progress",
                                       "x.safetensors.tmp.123",
                                       "link.safetensors"};
    for (size_t i = 0; i < ARRAY_LEN(kept); i++)
        if (!exists(models, kept[i])) fail_msg("%s was removed", kept[i]);
    assert_true(exists(outside, "o0.safetensors") && exists(outside, "o0.bank.safetensors"));

    /* again: nothing left to remove; without a run to resume or an import, those go too */
    assert_int_equal(prune(ss, models, 2, spares, 2, &files, &bytes, err), 0);
    assert_int_equal(files, 0);
    assert_int_equal(prune(ss, models, 2, NULL, 0, &files, &bytes, err), 0);
    assert_int_equal(files, 3);
    assert_int_equal(bytes, 770 + 300);

    /* keep = 1: the active model (old) and the newest */
    assert_int_equal(prune(ss, models, 1, NULL, 0, &files, &bytes, err), 0);
    assert_int_equal(files, 2);
    assert_false(exists(models, "m5.safetensors"));
    assert_true(exists(models, "m3.safetensors") && exists(models, "m6.bank.safetensors"));

    /* a file of the active model is missing: an error, and nothing is removed */
    snprintf(path, sizeof path, "%s/abandoned.safetensors", models);
    write_file(path, 500);
    snprintf(path, sizeof path, "%s/m3.bank.safetensors", models);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(prune(ss, models, 1, NULL, 0, &files, &bytes, err), -1);
    assert_non_null(strstr(err, "m3.bank.safetensors cannot be found"));
    assert_int_equal(files, 0);
    assert_true(exists(models, "abandoned.safetensors") && exists(models, "m6.safetensors"));

    /* a directory that cannot be read: an error */
    write_file(path, 100);
    snprintf(path, sizeof path, "%s/missing", f->dir);
    assert_int_equal(prune(ss, path, 1, NULL, 0, &files, &bytes, err), -1);
    assert_non_null(strstr(err, "missing"));
    scoring_store_close(ss);
    store_close(s);
}

/* Two models registered within the same second (the same version stamp) both register: the second
 * gets a suffix, and the caller learns the version stored. */
static void a_version_taken_gets_a_suffix(void **state)
{
    struct fixture *f = *state;
    char err[512], used[64];
    struct store *s = store_open(f->path, err, sizeof err); /* creates the schema */
    if (!s) fail_msg("store_open: %s", err);
    struct scoring_store *ss = scoring_store_open(f->path, err, sizeof err);
    if (!ss) fail_msg("scoring_store_open: %s", err);
    const char *v = "20261203T123938Z";
    /* versions are unique across recipes: the two recipes take turns */
    for (int i = 1; i <= 3; i++) {
        int64_t id = 0;
        assert_int_equal(scoring_store_register_model(ss, i % 2 ? "top" : "side", v,
                                                      "/m.safetensors", "/m.bank", 1.0, 10, 0.5,
                                                      "{}", true, &id, used, sizeof used),
                         0);
        char want[64];
        if (i == 1)
            snprintf(want, sizeof want, "%s", v);
        else
            snprintf(want, sizeof want, "%s-%d", v, i);
        assert_string_equal(used, want);
        assert_true(id > 0);
    }
    struct model_row m;
    assert_int_equal(scoring_store_active_model(ss, "top", &m), 1);
    assert_string_equal(m.version, "20261203T123938Z-3");
    assert_string_equal(m.recipe, "top");
    assert_int_equal(scoring_store_active_model(ss, "side", &m), 1);
    assert_string_equal(m.version, "20261203T123938Z-2");
    assert_int_equal(scoring_store_active_model(ss, "nobody", &m), 0);
    scoring_store_close(ss);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(old_models_and_abandoned_runs_go, setup, tmpdb_teardown),
        cmocka_unit_test_setup_teardown(a_version_taken_gets_a_suffix, setup, tmpdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
