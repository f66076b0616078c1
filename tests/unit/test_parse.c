/* test_parse.c — the parse helpers. parse_time_us: RFC 3339 with and without a fraction, with Z or
 * an offset or a space for the T, and Unix microseconds; every malformed form refused (no
 * date-only form, no local time, no impossible date, nothing trailing), and times before 1970,
 * which microseconds cannot say either; rfc3339_format back. Integers at their edges, reals with
 * open and closed ranges, the one boolean vocabulary, ages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "array.h"
#include "parse.h"
#include "rfc3339.h"

static void expect_time(const char *s, int64_t want)
{
    int64_t got = -12345;
    if (parse_time_us(s, &got) != 0) fail_msg("'%s' was refused", s);
    if (got != want) fail_msg("'%s': got %lld, want %lld", s, (long long)got, (long long)want);
}

static void expect_refused(const char *s)
{
    int64_t got = 777;
    if (parse_time_us(s, &got) == 0) fail_msg("'%s' was accepted as %lld", s, (long long)got);
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
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) expect_refused(bad[i]);
    int64_t us;
    assert_int_equal(parse_time_us(NULL, &us), -1);
}

static void parse_int_edges(void **state)
{
    int64_t v = 12345;
    assert_int_equal(parse_i64("9223372036854775807", 1, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse_i64("-9223372036854775808", INT64_MIN, 0, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(parse_i64("007", 1, 10, &v), 0);
    assert_int_equal(v, 7);
    v = 12345;
    static const char *const bad[] = {"",    "-",    "+1",  " 1", "1 ", "1-2",
                                      "--1", "0x10", "1e3", "11", "-1", "9223372036854775808",
                                      NULL};
    for (const char *const *s = bad; *s; s++)
        if (parse_i64(*s, 0, 10, &v) != -1) fail_msg("'%s' accepted", *s);
    assert_int_equal(parse_i64(NULL, 0, 10, &v), -1);
    assert_int_equal(v, 12345); /* untouched on refusal */
}

static void reals(void **state)
{
    double v = 7;
    assert_int_equal(parse_double("0.5", 0, 1, false, &v), 0);
    assert_true(v == 0.5);
    assert_int_equal(parse_double("0", 0, 1, false, &v), 0);
    assert_true(v == 0);
    assert_int_equal(parse_double("1e-3", 0, 1, true, &v), 0);
    assert_true(v == 1e-3);
    v = 7;
    static const char *const bad[] = {"", "0", " 1", "1 ", "1.5", "nan", "inf", "-0.1", "x", NULL};
    for (const char *const *s = bad; *s; s++)
        if (parse_double(*s, 0, 1, true, &v) != -1) fail_msg("'%s' accepted", *s);
    assert_int_equal(parse_double(NULL, 0, 1, false, &v), -1);
    assert_true(v == 7); /* untouched */
}

static void booleans(void **state)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "On"};
    static const char *const no[] = {"false", "no", "off", "0", "FALSE", "No", "OFF"};
    bool b;
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        b = false;
        assert_int_equal(parse_bool(yes[i], &b), 0);
        assert_true(b);
        b = true;
        assert_int_equal(parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    static const char *const bad[] = {"", "y", "n", "2", "truee", " true", "enabled", NULL};
    for (const char *const *s = bad; *s; s++)
        if (parse_bool(*s, &b) != -1) fail_msg("'%s' accepted", *s);
}

static void ages(void **state)
{
    int64_t us = 5;
    assert_int_equal(parse_age_us("90s", &us), 0);
    assert_true(us == 90000000LL);
    assert_int_equal(parse_age_us("1.5h", &us), 0);
    assert_true(us == 5400000000LL);
    assert_int_equal(parse_age_us("7d", &us), 0);
    assert_true(us == 7 * 86400000000LL);
    assert_int_equal(parse_age_us("0m", &us), 0);
    assert_true(us == 0);
    us = 5;
    static const char *const bad[] = {"", "s", "5", "5x", "-1h", "5 h", " 5h", "1e30d", NULL};
    for (const char *const *s = bad; *s; s++)
        if (parse_age_us(*s, &us) != -1) fail_msg("'%s' accepted", *s);
    assert_true(us == 5);
}

static void format_back(void **state)
{
    char buf[RFC3339_LEN];
    assert_string_equal(rfc3339_format(1795953600LL * 1000000 + 123456, buf, sizeof buf),
                        "2026-11-29T12:00:00.123456Z");
    assert_string_equal(rfc3339_format(0, buf, sizeof buf), "1970-01-01T00:00:00.000000Z");
    int64_t us;
    assert_int_equal(rfc3339_parse(rfc3339_format(253402300799999999LL, buf, sizeof buf), &us), 0);
    assert_true(us == 253402300799999999LL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339),         cmocka_unit_test(microseconds),
        cmocka_unit_test(malformed),       cmocka_unit_test(format_back),
        cmocka_unit_test(parse_int_edges), cmocka_unit_test(reals),
        cmocka_unit_test(booleans),        cmocka_unit_test(ages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
