/* test_train_start.c — where a training run starts from (train/start.h), for every combination of
 * the facts: resuming an interrupted run comes first, then the warm start from an active model of
 * the same network, then the import, then random; a fresh start skips the first two and a model
 * of another network the warm start, and a run or model of another method what it would have
 * given. The names read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>

#include "train/start.h"

static void every_combination(void **state)
{
    for (int bits = 0; bits < 64; bits++) {
        struct train_start_facts f = {.interrupted = bits & 1,
                                      .fresh = bits & 2,
                                      .active_same = bits & 4,
                                      .import = bits & 8,
                                      .interrupted_other_method = bits & 16,
                                      .active_other_method = bits & 32};
        bool resume = f.interrupted && !f.fresh && !f.interrupted_other_method;
        bool warm = f.active_same && !f.fresh && !f.active_other_method;
        enum train_start want = resume     ? TRAIN_START_RESUME
                                : warm     ? TRAIN_START_WARM
                                : f.import ? TRAIN_START_IMPORT
                                           : TRAIN_START_RANDOM;
        assert_int_equal(train_start_choose(&f), want);
    }
}

static void the_cases_that_matter(void **state)
{
    /* a daemon's later runs: the active model is the same network */
    struct train_start_facts f = {.active_same = true, .import = true};
    assert_int_equal(train_start_choose(&f), TRAIN_START_WARM);
    /* the network was changed in [trainer]: the active model is another one */
    f.active_same = false;
    assert_int_equal(train_start_choose(&f), TRAIN_START_IMPORT);
    f.import = false;
    assert_int_equal(train_start_choose(&f), TRAIN_START_RANDOM);
    /* {"fresh": true} or --fresh: neither the interrupted run nor the active model */
    f = (struct train_start_facts){.interrupted = true, .fresh = true, .active_same = true};
    assert_int_equal(train_start_choose(&f), TRAIN_START_RANDOM);
    /* an interrupted run (a warm one too) is resumed before anything else */
    f.fresh = false;
    assert_int_equal(train_start_choose(&f), TRAIN_START_RESUME);
    /* [trainer] method changed: neither the interrupted run nor the active model of the old one */
    f.interrupted_other_method = f.active_other_method = true;
    assert_int_equal(train_start_choose(&f), TRAIN_START_RANDOM);
    f.import = true;
    assert_int_equal(train_start_choose(&f), TRAIN_START_IMPORT);
    /* an interrupted run of the old method after a model of the new one: the warm start */
    f.active_other_method = false;
    assert_int_equal(train_start_choose(&f), TRAIN_START_WARM);
}

static void names_read_back(void **state)
{
    static const char *const names[] = {"resume", "warm", "import", "random"};
    for (int i = 0; i < 4; i++) {
        enum train_start s;
        assert_string_equal(train_start_name((enum train_start)i), names[i]);
        assert_int_equal(train_start_parse(names[i], &s), 0);
        assert_int_equal(s, i);
    }
    enum train_start s = TRAIN_START_WARM;
    assert_int_equal(train_start_parse("cold", &s), -1);
    assert_int_equal(train_start_parse(NULL, &s), -1);
    assert_int_equal(s, TRAIN_START_WARM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_combination),
        cmocka_unit_test(the_cases_that_matter),
        cmocka_unit_test(names_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
