#include "numparse.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>

#define LIMIT_2_48 ((uint64_t)1 << 48)

struct count_case {
    const char *text;
    uint64_t expected;
};

Test(numparse, counts_in_every_accepted_form)
{
    const struct count_case cases[] = {
        {"0", 0},         {"1", 1},          {"1000000", 1000000}, {"1e6", 1000000},
        {"1E6", 1000000}, {"1e+6", 1000000}, {"2^20", 1048576},    {"3*2^20", 3145728},
        {"2.5e3", 2500},  {"1.50e2", 150},   {"120e-1", 12},       {"2^0", 1},
        {"1e0", 1},       {"0^0", 1},        {"2^48", LIMIT_2_48}, {"1048576*1", 1048576},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        uint64_t v = 12345;
        const char *why = NULL;
        cr_expect_eq(clopt_parse_count(cases[i].text, LIMIT_2_48, &v, &why), 0, "'%s': %s",
                     cases[i].text, why);
        cr_expect_eq(v, cases[i].expected, "'%s' gave %llu", cases[i].text, (unsigned long long)v);
    }
}

struct reject_case {
    const char *text;
    const char *why;
};

Test(numparse, the_whole_uint64_range_parses)
{
    uint64_t v = 0;
    const char *why = NULL;
    cr_expect_eq(clopt_parse_count("18446744073709551615", UINT64_MAX, &v, &why), 0, "%s", why);
    cr_expect_eq(v, UINT64_MAX);
    cr_expect_eq(clopt_parse_count("18446744073709551616", UINT64_MAX, &v, &why), -1);
    cr_expect_eq(clopt_parse_count("1844674407370955161e1", UINT64_MAX, &v, &why), 0);
    cr_expect_eq(v, 18446744073709551610ull);
}

Test(numparse, counts_rejected_with_a_reason)
{
    const struct reject_case cases[] = {
        {"", "not a number"},
        {"-5", "negative"},
        {"1e30", "too large"},
        {"2^49", "too large"},
        {"1.5", "whole"},
        {"1e-1", "whole"},
        {"12abc", "unexpected"},
        {" 12", "not a number"},
        {"12 ", "unexpected"},
        {"0x10", "unexpected"},
        {"99999999999999999999999", "too large"},
        {"2^", "exponent"},
        {"1e", "exponent"},
        {"nan", "not a number"},
        {"inf", "not a number"},
        {"3*", "not a number"},
        {"2^20*2^20*2^20", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        uint64_t v = 0;
        const char *why = NULL;
        cr_expect_eq(clopt_parse_count(cases[i].text, LIMIT_2_48, &v, &why), -1,
                     "'%s' was accepted as %llu", cases[i].text, (unsigned long long)v);
        cr_expect(why && strstr(why, cases[i].why), "'%s': reason '%s', wanted '%s'", cases[i].text,
                  why ? why : "(null)", cases[i].why);
    }
}

Test(numparse, doubles_in_decimal_notation_only)
{
    double v = 0;
    const char *why;
    cr_expect_eq(clopt_parse_double("0.25", &v, &why), 0);
    cr_expect_eq(v, 0.25);
    cr_expect_eq(clopt_parse_double("-1e-3", &v, &why), 0);
    cr_expect_eq(v, -1e-3);
    cr_expect_eq(clopt_parse_double("3", &v, &why), 0);
    cr_expect_eq(v, 3.0);
    const char *bad[] = {"",   "nan", "inf", "-inf", "0x1p3", "1,5",  "1e999",
                         " 1", "1 ",  "abc", "1e",   "--1",   "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i)
        cr_expect_eq(clopt_parse_double(bad[i], &v, &why), -1, "'%s' was accepted as %g", bad[i],
                     v);
}

/* The tests' own tolerance check: NaN never passes, and an infinite reference is met only
 * by the same infinity (its relative bound is infinite, which once let any finite value
 * through). */
Test(testutil, close_enough_accepts_no_finite_value_for_an_infinity)
{
    cr_expect(close_enough(1.0, 1.0 + 1e-12, 1e-9, 0));
    cr_expect_not(close_enough(1.0, 1.1, 1e-9, 0));
    cr_expect_not(close_enough(NAN, NAN, 1, 1));
    cr_expect_not(close_enough(1e300, INFINITY, 1e-6, 0));
    cr_expect_not(close_enough(-1e300, -INFINITY, 1e-6, 1e-6));
    cr_expect_not(close_enough(INFINITY, 1e300, 1e-6, 0));
    cr_expect_not(close_enough(-INFINITY, INFINITY, 1e-6, 0));
    cr_expect(close_enough(INFINITY, INFINITY, 1e-6, 0));
    cr_expect(close_enough(-INFINITY, -INFINITY, 0, 0));
}
