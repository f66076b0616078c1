/* test_train_cli.c — the table of training knobs: through getopt_long with a command's own options
 * in front, each knob stores its value, values outside a knob's range or not wholly a number are
 * refused (and leave the knobs as they were), a command's own option is left to the command, a
 * table too small is refused, `inspectd eval` is not offered --max-images; the [trainer] keys find
 * their knob and refuse with the range; the argv given to the child reads back to the same knobs;
 * the cross-knob check; --help states each knob's range and default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "train/train_cli.h"

enum { O_OWN = 256 };
static const struct option own[] = {{"own", 1, 0, O_OWN}, {"help", 0, 0, 'h'}};

/* Runs getopt_long over "cmd" + args, as a command does. Returns 0 when every option was a
 * shared one and applied, -1 at the first refused value, 1 when an option was the command's. */
static int run(struct train_knobs *k, int n, const char **args)
{
    struct option opts[40];
    assert_int_equal(train_cli_options(TRAIN_CLI_TRAIN, own, 2, opts, 40), 0);
    char *argv[40];
    assert_true(n < 39);
    argv[0] = "inspectd-test";
    for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    argv[n + 1] = NULL;
    optind = 1;
    opterr = 0;
    int c, rc = 0;
    while ((c = getopt_long(n + 1, argv, "h", opts, NULL)) != -1 && rc == 0) {
        int r = train_cli_apply("test", c, optarg, k);
        if (r != 0) rc = r;
    }
    return rc;
}

static int one(struct train_knobs *k, const char *name, const char *value)
{
    char opt[64];
    snprintf(opt, sizeof opt, "--%s", name);
    const char *args[] = {opt, value};
    return run(k, 2, args);
}

static void every_option_stores_its_value(void **state)
{
    struct train_knobs k;
    train_knobs_defaults(&k);
    const char *args[] = {"--minutes",      "2.5",  "--epochs",   "7",
                          "--dim",          "96",   "--depth",    "3",
                          "--heads",        "6",    "--patch",    "8",
                          "--batch",        "32",   "--locals",   "0",
                          "--lr",           "1e-3", "--momentum", "0.996",
                          "--teacher-temp", "0.07", "--koleo",    "0.1",
                          "--threads",      "1",    "--seed",     "18446744073709551615",
                          "--method",       "byol"};
    assert_int_equal(run(&k, 30, args), 0);
    assert_int_equal(k.t.method, SSL_BYOL);
    assert_true(k.t.minutes == 2.5);
    assert_int_equal(k.t.epochs, 7);
    assert_int_equal(k.t.model.dim, 96);
    assert_int_equal(k.t.model.depth, 3);
    assert_int_equal(k.t.model.heads, 6);
    assert_int_equal(k.t.model.patch, 8);
    assert_int_equal(k.t.batch, 32);
    assert_int_equal(k.t.n_local, 0);
    assert_true(k.t.lr == 1e-3f);
    assert_true(k.t.momentum_teacher == 0.996f);
    assert_true(k.t.teacher_temp == 0.07f);
    assert_true(k.t.koleo_weight == 0.1f);
    assert_int_equal(k.t.threads, 1);
    assert_true(k.t.seed == 18446744073709551615ull);
}

static void values_out_of_range_are_refused(void **state)
{
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"minutes", "0"},     {"minutes", "-1"},
        {"minutes", "1e5"},   {"minutes", "nan"},
        {"minutes", "inf"},   {"epochs", "0"},
        {"epochs", "1.5"},    {"epochs", "100001"},
        {"dim", "7"},         {"dim", "4097"},
        {"dim", "64x"},       {"dim", ""},
        {"depth", "0"},       {"depth", "65"},
        {"heads", "0"},       {"patch", "0"},
        {"patch", "257"},     {"batch", "1"},
        {"locals", "-1"},     {"locals", "33"},
        {"lr", "0"},          {"lr", "-1e-3"},
        {"lr", "11"},         {"momentum", "0"},
        {"momentum", "1.01"}, {"teacher-temp", "0"},
        {"koleo", "-0.1"},    {"koleo", "10.5"},
        {"threads", "0"},     {"threads", "65"},
        {"seed", "-1"},       {"seed", "+1"},
        {"seed", "1e3"},      {"seed", "99999999999999999999"},
        {"epochs", "1e9"},    {"dim", "99999999999999999999"},
        {"method", "moco"},   {"method", ""},
        {"method", "DINO"},
    };
    struct train_knobs k, before;
    train_knobs_defaults(&k);
    before = k;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (one(&k, bad[i].name, bad[i].value) != -1)
            fail_msg("--%s '%s' was accepted", bad[i].name, bad[i].value);
        if (memcmp(&k, &before, sizeof k) != 0)
            fail_msg("--%s '%s' changed the options", bad[i].name, bad[i].value);
    }
}

static void the_range_ends_are_accepted(void **state)
{
    static const struct {
        const char *name, *value;
    } ok[] = {{"minutes", "10000"}, {"epochs", "1"},   {"dim", "8"},      {"dim", "4096"},
              {"depth", "64"},      {"locals", "32"},  {"momentum", "1"}, {"koleo", "0"},
              {"koleo", "10"},      {"threads", "64"}, {"seed", "0"},     {"batch", "2"}};
    struct train_knobs k;
    train_knobs_defaults(&k);
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        if (one(&k, ok[i].name, ok[i].value) != 0)
            fail_msg("--%s '%s' was refused", ok[i].name, ok[i].value);
}

static void a_commands_own_option_is_left_to_it(void **state)
{
    struct train_knobs k, before;
    train_knobs_defaults(&k);
    before = k;
    const char *args[] = {"--own", "x"};
    assert_int_equal(run(&k, 2, args), 1);
    assert_memory_equal(&k, &before, sizeof k);
    assert_int_equal(train_cli_apply("test", 'h', NULL, &k), 1);
    assert_int_equal(train_cli_apply("test", TRAIN_CLI_FIRST - 1, "1", &k), 1);
    assert_int_equal(train_cli_apply("test", TRAIN_CLI_FIRST + 1000, "1", &k), 1);
}

static void a_table_too_small_is_refused(void **state)
{
    struct option opts[40];
    assert_int_equal(train_cli_options(TRAIN_CLI_TRAIN, own, 2, opts, 3), -1);
    assert_int_equal(train_cli_options(TRAIN_CLI_TRAIN, own, 2, opts, 40), 0);
    int n = 0;
    while (opts[n].name) n++;
    assert_true(n > 2 && n < 40);
    assert_string_equal(opts[0].name, "own");
    for (int i = 2; i < n; i++) assert_true(opts[i].val >= TRAIN_CLI_FIRST);
    assert_int_equal(train_cli_options(TRAIN_CLI_TRAIN, own, 2, opts, n + 1),
                     0); /* exactly enough */
    assert_int_equal(train_cli_options(TRAIN_CLI_TRAIN, own, 2, opts, n), -1);
}

static void the_input_knobs(void **state)
{
    struct train_knobs k, before;
    train_knobs_defaults(&k);
    const char *args[] = {"--size", "32", "--channels", "1", "--max-images", "100"};
    assert_int_equal(run(&k, 6, args), 0);
    assert_int_equal(k.size, 32);
    assert_int_equal(k.channels, 1);
    assert_int_equal(k.max_images, 100);
    before = k;
    static const struct {
        const char *name, *value;
    } bad[] = {{"size", "3"},     {"size", "1025"},    {"channels", "0"},   {"channels", "2"},
               {"channels", "4"}, {"max-images", "1"}, {"max-images", "x"}, {"max-images", "1e8"}};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (one(&k, bad[i].name, bad[i].value) != -1)
            fail_msg("--%s '%s' was accepted", bad[i].name, bad[i].value);
        assert_memory_equal(&k, &before, sizeof k);
    }
}

static bool offers(int who, const char *name)
{
    struct option opts[40];
    assert_int_equal(train_cli_options(who, own, 2, opts, 40), 0);
    for (int i = 0; opts[i].name; i++)
        if (strcmp(opts[i].name, name) == 0) return true;
    return false;
}

static void each_command_gets_its_knobs(void **state)
{
    assert_true(offers(TRAIN_CLI_TRAIN, "max-images"));
    assert_false(offers(TRAIN_CLI_EVAL, "max-images"));
    assert_true(offers(TRAIN_CLI_EVAL, "size"));
    assert_true(offers(TRAIN_CLI_EVAL, "lr"));
}

static void config_keys(void **state)
{
    assert_true(train_cli_find_key("lr") >= 0);
    assert_true(train_cli_find_key("teacher_temp") >= 0);
    assert_true(train_cli_find_key("max_images") >= 0);
    assert_int_equal(train_cli_find_key("teacher-temp"), -1);
    assert_int_equal(train_cli_find_key("enabled"), -1);
    struct train_knobs k, before;
    train_knobs_defaults(&k);
    before = k;
    char err[128];
    assert_int_equal(train_cli_set(train_cli_find_key("lr"), "0", &k, err, sizeof err), -1);
    assert_string_equal(err, "lr must be above 0, at most 10");
    assert_memory_equal(&k, &before, sizeof k);
    assert_int_equal(train_cli_set(train_cli_find_key("channels"), "2", &k, err, sizeof err), -1);
    assert_string_equal(err, "channels must be 1 or 3");
    assert_int_equal(train_cli_set(train_cli_find_key("lr"), "2e-4", &k, err, sizeof err), 0);
    assert_true(k.t.lr == 2e-4f);
    assert_int_equal(train_cli_set(train_cli_find_key("method"), "sim", &k, err, sizeof err), -1);
    assert_string_equal(err, "method must be dino, byol, barlow or simclr");
    assert_int_equal(k.t.method, SSL_DINO); /* the default */
    assert_int_equal(train_cli_set(train_cli_find_key("method"), "simclr", &k, err, sizeof err), 0);
    assert_int_equal(k.t.method, SSL_SIMCLR);
}

/* Every knob set in [trainer] and [engine] reaches the child as the value it was given. */
static void the_childs_argv_reads_back(void **state)
{
    struct train_knobs k, back;
    train_knobs_defaults(&k);
    static const char *const set[][2] = {
        {"lr", "1e-3"},      {"minutes", "2.5"},       {"seed", "18446744073709551615"},
        {"size", "32"},      {"teacher_temp", "0.07"}, {"max_images", "123"},
        {"koleo", "0.1"},    {"momentum", "0.996"},    {"readout", "aligned"},
        {"rotations", "4"},  {"gemm", "openblas"},     {"precision", "bf16"},
        {"method", "barlow"}};
    uint64_t mask = 0;
    char err[128];
    for (size_t i = 0; i < ARRAY_LEN(set); i++) {
        int knob = train_cli_find_key(set[i][0]);
        if (knob < 0) knob = train_cli_find_engine_key(set[i][0]);
        assert_true(knob >= 0);
        assert_int_equal(train_cli_set(knob, set[i][1], &k, err, sizeof err), 0);
        mask |= (uint64_t)1 << knob;
    }
    char text[2 * TRAIN_CLI_MAX][32];
    char *argv[2 * TRAIN_CLI_MAX];
    int n = 0;
    assert_int_equal(train_cli_argv(&k, mask, text, argv, &n, 3), -1); /* too small */
    n = 0;
    assert_int_equal(train_cli_argv(&k, mask, text, argv, &n, (int)ARRAY_LEN(argv)), 0);
    assert_int_equal(n, 2 * (int)ARRAY_LEN(set));
    train_knobs_defaults(&back);
    assert_int_equal(run(&back, n, (const char **)argv), 0);
    assert_memory_equal(&back, &k, sizeof k);
}

static void knobs_that_must_agree(void **state)
{
    struct train_knobs k;
    train_knobs_defaults(&k);
    char err[128];
    assert_int_equal(train_cli_check(&k, err, sizeof err), 0);
    k.size = 62;
    assert_int_equal(train_cli_check(&k, err, sizeof err), -1);
    assert_string_equal(err, "size 62 is not a multiple of patch 4");
    train_knobs_defaults(&k);
    k.t.model.heads = 3;
    assert_int_equal(train_cli_check(&k, err, sizeof err), -1);
    assert_string_equal(err, "dim 128 is not a multiple of heads 3");
}

static void help_states_ranges_and_defaults(void **state)
{
    struct train_knobs d;
    train_knobs_defaults(&d);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    train_cli_usage(TRAIN_CLI_EVAL, &d, out);
    fclose(out);
    assert_non_null(strstr(text, "--lr LR"));
    assert_non_null(strstr(text, "(above 0, at most 10; default 0.016)"));
    assert_non_null(strstr(text, "--size S"));
    assert_non_null(strstr(text, "(4 to 1024; default 64)"));
    assert_null(strstr(text, "--max-images"));
    assert_null(strstr(text, "--minutes")); /* each command says what its budget means */
    free(text);
}

/* systemd/inspectd.conf documents every knob the config takes, in its section ([trainer] or
 * [engine]), and a commented-out "# key = value" shows the knob's default. */
static void the_shipped_config_documents_every_knob(void **state)
{
    FILE *f = fopen("systemd/inspectd.conf", "r");
    assert_non_null(f);
    static char text[160], lines[512][160], section[512][32];
    int n = 0;
    char cur[32] = "";
    while (n < 512 && fgets(text, sizeof text, f)) {
        text[strcspn(text, "\n")] = 0;
        if (text[0] == '[') {
            snprintf(cur, sizeof cur, "%.*s", (int)strcspn(text + 1, "]"), text + 1);
            continue;
        }
        snprintf(lines[n], sizeof lines[n], "%s", text);
        snprintf(section[n++], sizeof section[0], "%s", cur);
    }
    fclose(f);
    struct train_knobs def;
    train_knobs_defaults(&def);
    for (int i = 0; i < train_cli_count(); i++) {
        int engine;
        const char *key = train_cli_config_key(i, &engine);
        if (!key) continue;
        const char *want = engine ? "engine" : "trainer";
        bool found = false;
        for (int l = 0; l < n && !found; l++) {
            const char *p = lines[l];
            bool commented = p[0] == '#';
            if (commented) p += strspn(p + 1, " ") + 1;
            size_t len = strlen(key);
            if (strcmp(section[l], want) || strncmp(p, key, len) || strncmp(p + len, " = ", 3))
                continue;
            found = true;
            if (!commented) continue; /* a value the shipped config sets */
            struct train_knobs k = def;
            char err[128];
            if (train_cli_set(i, p + len + 3, &k, err, sizeof err))
                fail_msg("[%s] %s: %s", want, key, err);
            if (memcmp(&k, &def, sizeof k))
                fail_msg("[%s] %s: '%s' is not the default", want, key, p);
        }
        if (!found) fail_msg("systemd/inspectd.conf has no '%s' in [%s]", key, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_option_stores_its_value),
        cmocka_unit_test(the_shipped_config_documents_every_knob),
        cmocka_unit_test(values_out_of_range_are_refused),
        cmocka_unit_test(the_range_ends_are_accepted),
        cmocka_unit_test(a_commands_own_option_is_left_to_it),
        cmocka_unit_test(a_table_too_small_is_refused),
        cmocka_unit_test(the_input_knobs),
        cmocka_unit_test(each_command_gets_its_knobs),
        cmocka_unit_test(config_keys),
        cmocka_unit_test(the_childs_argv_reads_back),
        cmocka_unit_test(knobs_that_must_agree),
        cmocka_unit_test(help_states_ranges_and_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
