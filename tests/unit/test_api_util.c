/* test_api_util.c — api_parse_time: RFC 3339 with and without a fraction, with Z or an offset or
 * a space for the T, and Unix microseconds; every malformed form refused (no date-only form, no
 * local time, no impossible date, nothing trailing), and times before 1970, which microseconds
 * cannot say either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "http/api.h"

static void expect_time(const char *s, int64_t want)
{
    int64_t got = -12345;
    if (api_parse_time(s, &got) != 0) fail_msg("'%s' was refused", s);
    if (got != want) fail_msg("'%s': got %lld, want %lld", s, (long long)got, (long long)want);
}

static void expect_refused(const char *s)
{
    int64_t got = 777;
    if (api_parse_time(s, &got) == 0) fail_msg("'%s' was accepted as %lld", s, (long long)got);
    assert_int_equal(got, 777); /* untouched */
}

static void rfc3339(void **state)
{
    /* 2026-11-29T12:00:00Z = 1795953600 s (date -u -d @1795953600) */
    expect_time("2026-11-29T12:00:00Z", 1795953600LL * 1000000);
    expect_time("2026-11-29t12:00:00z", 1795953600LL * 1000000);
    expect_time("2026-11-29 12:00:00Z", 1795953600LL * 1000000); /* RFC 3339 5.6 allows it */
    expect_time("2026-11-29T12:00:00.5Z", 1795953600LL * 1000000 + 500000);
    expect_time("2026-11-29T12:00:00.123456Z", 1795953600LL * 1000000 + 123456);
    expect_time("2026-11-29T12:00:00.1234569Z", 1795953600LL * 1000000 + 123456); /* truncated */
    expect_time("2026-11-29T13:30:00+01:30", 1795953600LL * 1000000);
    expect_time("2026-11-29T07:00:00-05:00", 1795953600LL * 1000000);
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("2000-02-29T00:00:00Z", 951782400LL * 1000000);      /* a leap year */
    expect_time("2016-12-31T23:59:60Z", 1483228800LL * 1000000);     /* a leap second */
    expect_time("2100-03-01T00:00:00Z", 4107542400LL * 1000000);     /* 2100 is no leap year */
    expect_time("2024-02-29T00:00:00.1234567Z", 1709164800123456LL); /* leap day, 7 digits */
    expect_time("2026-11-29t11:00:00-01:00", 1795953600LL * 1000000);
    expect_time("9999-12-31T23:59:59.999999Z", 253402300799999999LL); /* the last one */
}

static void microseconds(void **state)
{
    expect_time("0", 0);
    expect_time("1795953600000000", 1795953600LL * 1000000);
    expect_time("9223372036854775807", INT64_MAX);
    expect_refused("9223372036854775808");
    expect_refused("-5");
    expect_refused("+5");
    expect_refused("12 ");
    expect_refused(" 12");
    expect_refused("1e6");
}

static void malformed(void **state)
{
    static const char *const bad[] = {"",
                                      "2026-11-29",
                                      "2026-11-29T12:00Z",
                                      "2026-11-29T12:00:00",
                                      "1969-12-31T23:59:59Z", /* before the epoch */
                                      "1970-01-01T00:30:00+01:00",
                                      "2026-11-29T12:00:00ZZ",
                                      "2026-11-29T12:00:00.Z",
                                      "2026-11-29T12:00:00+0100",
                                      "2026-11-29T12:00:00+1:00",
                                      "2026-02-30T00:00:00Z",
                                      "99999999999999999999999",
                                      "2026-11-29T12:00:00+24:00",
                                      "2026-13-01T00:00:00Z",
                                      "2026-00-01T00:00:00Z",
                                      "2026-02-29T00:00:00Z",
                                      "2100-02-29T00:00:00Z",
                                      "2026-04-31T00:00:00Z",
                                      "2026-11-29T24:00:00Z",
                                      "2026-11-29T12:60:00Z",
                                      "2026-11-29T12:00:61Z",
                                      "26-11-29T12:00:00Z",
                                      "2026-1-29T12:00:00Z",
                                      "2026-11-29T12:00:00 Z",
                                      "yesterday",
                                      "2026-11-29T12:00:00Z trailing",
                                      "-2026-11-29T12:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) expect_refused(bad[i]);
    int64_t us;
    assert_int_equal(api_parse_time(NULL, &us), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339),
        cmocka_unit_test(microseconds),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
