/* Resuming through the CLI: a resumed run decides again with its own stopping limits, the
 * trace of a run resumed from PATH.prev drops the abandoned run's rows, forged checkpoints
 * are refused, inputs are compared by content and numbers by value, and --resume F alone
 * takes the run's options from F. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

static char *dir;

static void setup(void)
{
    dir = temp_dir();
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

TestSuite(resume, .init = setup, .fini = teardown);

/* The value of a number key in a JSON summary. */
static double json_number(const char *text, const char *key)
{
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "not JSON: %s", text);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    cr_assert(cJSON_IsNumber(item), "no number %s in %s", key, text);
    const double v = item->valuedouble;
    cJSON_Delete(root);
    return v;
}

static int same_file_bytes(const char *a, const char *b)
{
    size_t na, nb;
    int da, db;
    double *x = read_npy_as_double(a, &na, &da), *y = read_npy_as_double(b, &nb, &db);
    const int same = na == nb && da == db && !memcmp(x, y, na * sizeof *x);
    free(x);
    free(y);
    return same;
}

/* A run stopped by a loose --target and resumed with a stricter one goes on to where an
 * uninterrupted run with the stricter one stops, bit for bit; resumed with the loose one,
 * it stops at once. */
Test(resume, a_stricter_target_goes_on)
{
    char *ck = path_in(dir, "ck"), *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy");
    const char *whole[] = {"run", "--dim", "1000", "--target", "1e-3", "--out", a, "--quiet",
                           "--json", "-", NULL};
    struct cli_result r = cli_run(whole);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const double n_whole = json_number(r.out, "iterations");
    cli_result_free(&r);
    const char *loose[] = {"run", "--dim", "1000", "--target", "1", "--checkpoint", ck,
                           "--quiet", "--json", "-", NULL};
    r = cli_run(loose);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const double n_loose = json_number(r.out, "iterations");
    cli_result_free(&r);
    cr_assert_lt(n_loose, n_whole);
    const char *strict[] = {"run", "--dim", "1000", "--target", "1e-3", "--resume", ck,
                            "--out", b, "--quiet", "--json", "-", NULL};
    r = cli_run(strict);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(json_number(r.out, "iterations"), n_whole, "%s", r.out);
    cr_expect(strstr(r.out, "\"target\"") != NULL, "%s", r.out);
    cli_result_free(&r);
    cr_expect(same_file_bytes(a, b), "the resumed run ends elsewhere");
    const char *again[] = {"run", "--dim", "1000", "--target", "1", "--resume", ck, "--quiet",
                           "--json", "-", NULL};
    r = cli_run(again);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(json_number(r.out, "iterations"), n_loose, "%s", r.out);
    cli_result_free(&r);
    free(ck);
    free(a);
    free(b);
}
