/* test_train_cli.c — the training options `inspectd train` and `inspectd eval` share: through
 * getopt_long with a command's own options in front, each shared option stores its value, values
 * outside an option's range or not wholly a number are refused (and leave the options as they
 * were), a command's own option is left to the command, and a table too small is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "train/train_cli.h"

enum { O_OWN = 256 };
static const struct option own[] = {{"own", 1, 0, O_OWN}, {"help", 0, 0, 'h'}};

/* Runs getopt_long over "cmd" + args, as a command does. Returns 0 when every option was a
 * shared one and applied, -1 at the first refused value, 1 when an option was the command's. */
static int run(struct train_options *t, int n, const char **args)
{
    struct option opts[40];
    assert_int_equal(train_cli_options(own, 2, opts, 40), 0);
    char *argv[40];
    assert_true(n < 39);
    argv[0] = "inspectd-test";
    for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    argv[n + 1] = NULL;
    optind = 1;
    opterr = 0;
    int c, rc = 0;
    while ((c = getopt_long(n + 1, argv, "h", opts, NULL)) != -1 && rc == 0) {
        int r = train_cli_apply("test", c, optarg, t);
        if (r != 0) rc = r;
    }
    return rc;
}

static int one(struct train_options *t, const char *name, const char *value)
{
    char opt[64];
    snprintf(opt, sizeof opt, "--%s", name);
    const char *args[] = {opt, value};
    return run(t, 2, args);
}

static void every_option_stores_its_value(void **state)
{
    struct train_options t;
    train_defaults(&t, 64, 3);
    const char *args[] = {"--minutes",      "2.5",  "--epochs",   "7",
                          "--dim",          "96",   "--depth",    "3",
                          "--heads",        "6",    "--patch",    "8",
                          "--batch",        "32",   "--locals",   "0",
                          "--lr",           "1e-3", "--momentum", "0.996",
                          "--teacher-temp", "0.07", "--koleo",    "0.1",
                          "--threads",      "1",    "--seed",     "18446744073709551615"};
    assert_int_equal(run(&t, 28, args), 0);
    assert_true(t.minutes == 2.5);
    assert_int_equal(t.epochs, 7);
    assert_int_equal(t.model.dim, 96);
    assert_int_equal(t.model.depth, 3);
    assert_int_equal(t.model.heads, 6);
    assert_int_equal(t.model.patch, 8);
    assert_int_equal(t.batch, 32);
    assert_int_equal(t.n_local, 0);
    assert_true(t.lr == 1e-3f);
    assert_true(t.momentum_teacher == 0.996f);
    assert_true(t.teacher_temp == 0.07f);
    assert_true(t.koleo_weight == 0.1f);
    assert_int_equal(t.threads, 1);
    assert_true(t.seed == 18446744073709551615ull);
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
    };
    struct train_options t, before;
    train_defaults(&t, 64, 3);
    before = t;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (one(&t, bad[i].name, bad[i].value) != -1)
            fail_msg("--%s '%s' was accepted", bad[i].name, bad[i].value);
        if (memcmp(&t, &before, sizeof t) != 0)
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
    struct train_options t;
    train_defaults(&t, 64, 3);
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (one(&t, ok[i].name, ok[i].value) != 0)
            fail_msg("--%s '%s' was refused", ok[i].name, ok[i].value);
}

static void a_commands_own_option_is_left_to_it(void **state)
{
    struct train_options t, before;
    train_defaults(&t, 64, 3);
    before = t;
    const char *args[] = {"--own", "x"};
    assert_int_equal(run(&t, 2, args), 1);
    assert_memory_equal(&t, &before, sizeof t);
    assert_int_equal(train_cli_apply("test", 'h', NULL, &t), 1);
    assert_int_equal(train_cli_apply("test", TRAIN_CLI_FIRST - 1, "1", &t), 1);
    assert_int_equal(train_cli_apply("test", TRAIN_CLI_FIRST + 1000, "1", &t), 1);
}

static void a_table_too_small_is_refused(void **state)
{
    struct option opts[40];
    assert_int_equal(train_cli_options(own, 2, opts, 3), -1);
    assert_int_equal(train_cli_options(own, 2, opts, 40), 0);
    int n = 0;
    while (opts[n].name) n++;
    assert_true(n > 2 && n < 40);
    assert_string_equal(opts[0].name, "own");
    for (int i = 2; i < n; i++) assert_true(opts[i].val >= TRAIN_CLI_FIRST);
    assert_int_equal(train_cli_options(own, 2, opts, n + 1), 0); /* exactly enough */
    assert_int_equal(train_cli_options(own, 2, opts, n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_option_stores_its_value),
        cmocka_unit_test(values_out_of_range_are_refused),
        cmocka_unit_test(the_range_ends_are_accepted),
        cmocka_unit_test(a_commands_own_option_is_left_to_it),
        cmocka_unit_test(a_table_too_small_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
