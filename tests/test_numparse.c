#include "numparse.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

/* LC_NUMERIC of a comma-decimal locale (de_DE.UTF-8) for this test's process: Criterion
 * runs each test in a process of its own. When the system has not compiled that locale,
 * it is compiled into a temporary directory that LOCPATH then names (localedef needs the
 * locale sources of Debian's `locales` package, which scripts/deps.sh installs). */
static void switch_to_comma_locale(char **locale_dir)
{
    *locale_dir = NULL;
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
        *locale_dir = temp_dir();
        char command[1024];
        snprintf(command, sizeof command,
                 "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", *locale_dir);
        const int rc = system(command);
        setenv("LOCPATH", *locale_dir, 1);
        cr_assert_not_null(setlocale(LC_NUMERIC, "de_DE.UTF-8"),
                           "no de_DE.UTF-8 locale and localedef failed (status %d): install "
                           "Debian's locales package (scripts/deps.sh)",
                           rc);
    }
    cr_assert_str_eq(localeconv()->decimal_point, ",", "the locale switch did not take");
}

Test(numparse, decimals_parse_under_a_comma_locale)
{
    char *locale_dir;
    switch_to_comma_locale(&locale_dir);
    double v = 0;
    const char *why = NULL;
    cr_expect_eq(clopt_parse_double("0.5", &v, &why), 0, "'0.5': %s", why);
    cr_expect_eq(v, 0.5);
    cr_expect_eq(clopt_parse_double("2.5e-3", &v, &why), 0, "'2.5e-3': %s", why);
    cr_expect_eq(v, 2.5e-3);
    /* The caller's locale is left as it was. */
    cr_expect_str_eq(localeconv()->decimal_point, ",");
    if (locale_dir) {
        remove_tree(locale_dir);
        free(locale_dir);
    }
}

/* The loss after one step of gd with lr 0 (theta stays at its initial value). */
static double loss_at_start(struct clopt_context *ctx, const char *objective,
                            const struct clopt_param *params, size_t n_params, size_t dim,
                            double clip_norm)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = objective;
    o.params = params;
    o.n_params = n_params;
    o.dim = dim;
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1;
    o.lr = 0;
    o.max_iters = 1;
    o.clip_norm = clip_norm;
    struct clopt_solver *s = NULL;
    int status = clopt_solver_create(&s, ctx, &o);
    cr_assert_eq(status, CLOPT_OK, "%s: %s", objective, clopt_errmsg(ctx));
    struct clopt_result r;
    status = clopt_solver_run(s, &r);
    cr_assert_geq(status, 0, "%s: %s", objective, clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    return r.loss;
}

Test(numparse, kernels_build_and_params_read_under_a_comma_locale)
{
    struct clopt_context *ctx = test_context();
    /* A built-in kernel with a parameter and clipping: both reach the compiler as -D
     * values, which must read "1.00000000000000000e+03", not "1,000...", and give the
     * bits they give in the "C" locale. */
    const struct clopt_param cond[] = {{"cond", "1e3"}};
    const double in_c = loss_at_start(ctx, "ellipsoid", cond, 1, 1000, 1.5);
    char *locale_dir;
    switch_to_comma_locale(&locale_dir);
    cr_expect_eq(loss_at_start(ctx, "ellipsoid", cond, 1, 1000, 1.5), in_c);
    /* A user's parameter written with a '.' is 0.5, not 0 or an error. */
    char *dir = temp_dir(), *path = path_in(dir, "scaled.cl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g)\n"
          "{\n"
          "    const real s = (real)CLOPT_PARAM_SCALE;\n"
          "    *g = 2 * s * x;\n"
          "    return s * x * x;\n"
          "}\n",
          f);
    fclose(f);
    const struct clopt_param scale[] = {{"scale", "0.5"}};
    cr_expect_eq(loss_at_start(ctx, path, scale, 1, 64, 0), 32.0);
    clopt_context_destroy(ctx);
    remove_tree(dir);
    free(dir);
    free(path);
    if (locale_dir) {
        remove_tree(locale_dir);
        free(locale_dir);
    }
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
