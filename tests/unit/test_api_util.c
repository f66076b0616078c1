/* test_api_util.c — query-string times: RFC 3339 in its forms and Unix microseconds; anything
 * else refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api.h"

static void parses_times(void **state)
{
    (void)state;
    int64_t us = -1;
    assert_int_equal(api_parse_time("1764417600000000", &us), 0);
    assert_true(us == 1764417600000000LL);
    assert_int_equal(api_parse_time("2026-11-29T12:00:00Z", &us), 0);
    assert_true(us == 1795953600000000LL);
    assert_int_equal(api_parse_time("2026-11-29T12:00:00.25Z", &us), 0);
    assert_true(us == 1795953600250000LL);
    assert_int_equal(api_parse_time("2026-11-29T13:30:00+01:30", &us), 0);
    assert_true(us == 1795953600000000LL);
    assert_int_equal(api_parse_time("2026-11-29t11:00:00-01:00", &us), 0);
    assert_true(us == 1795953600000000LL);
    assert_int_equal(api_parse_time("1970-01-01T00:00:00Z", &us), 0);
    assert_true(us == 0);
    assert_int_equal(api_parse_time("2024-02-29T00:00:00.1234567Z", &us), 0); /* leap day */
    assert_true(us == 1709164800123456LL);
}

static void refuses_the_rest(void **state)
{
    (void)state;
    int64_t us = 7;
    const char *bad[] = {"",
                         "yesterday",
                         "-5",
                         "2026-11-29",
                         "2026-11-29T12:00:00",
                         "2026-13-01T00:00:00Z",
                         "2026-02-30T00:00:00Z",
                         "2026-11-29T24:00:00Z",
                         "2026-11-29T12:00:00.Z",
                         "2026-11-29T12:00:00+1:00",
                         "2026-11-29T12:00:00Zjunk",
                         "1969-12-31T23:59:59Z",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (api_parse_time(bad[i], &us) != -1) fail_msg("accepted '%s'", bad[i]);
        assert_true(us == 7);
    }
    assert_int_equal(api_parse_time(NULL, &us), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(parses_times),
                                       cmocka_unit_test(refuses_the_rest)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
