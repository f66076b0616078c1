/* test_log.c — log level parsing and filtering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"

static void parses_known_levels(void **state)
{
    enum log_level l;
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOGL_DEBUG);
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOGL_ERROR);
    assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void set_level_round_trips(void **state)
{
    log_set_level(LOGL_WARN);
    assert_int_equal(log_get_level(), LOGL_WARN);
    log_set_level(LOGL_INFO);
    assert_int_equal(log_get_level(), LOGL_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_known_levels),
        cmocka_unit_test(set_level_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
