/* The command line against hostile or careless files and environments (issue 16): values
 * float cannot hold, driver chatter under --quiet, exit codes of I/O errors, an unusable
 * XDG_CACHE_HOME, comments in objective files, CSV quoting, FIFOs where files belong. The
 * bad-input rows for these live in test_cli.c's table. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_USAGE 2

TEMP_DIR_SUITE(cli_files);

/* Validation in the working precision looks at the precision: what float cannot hold,
 * double can (issue 16, item 11). */
Test(cli_files, tiny_values_run_in_double)
{
    SKIP_WITHOUT_FP64();
    const char *args[] = {"run",    "--optimizer", "adam",    "--eps", "1e-40",
                          "--dim",  "10",          "--iters", "2",     "--precision",
                          "double", "--quiet",     NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
}

/* PoCL's compiler writes "1 error generated." to stderr by itself; under --quiet only
 * clopt's own message (which carries the build log) is shown (item 12). */
Test(cli_files, quiet_build_failure_shows_no_driver_chatter)
{
    char *broken = path_in(dir, "broken.cl");
    FILE *f = fopen(broken, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g) { return x +; }\n", f);
    fclose(f);
    const char *args[] = {"run", "--objective", broken, "--dim", "10", "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cr_expect(strncmp(r.err, "clopt: error: kernel build failed", 33) == 0, "%s", r.err);
    cr_expect(strstr(r.err, "broken.cl:1:") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "generated") == NULL, "driver chatter under --quiet:\n%s", r.err);
    cli_result_free(&r);
    free(broken);
}

/* One I/O error (a checkpoint whose temporary name is too long to create) gives one exit
 * status, whatever the objective: it is not bad input because the objective is a file
 * (item 12). */
Test(cli_files, an_io_error_exits_alike_for_built_in_and_user_objectives)
{
    char name[241];
    memset(name, 'c', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *checkpoint = path_in(dir, name);
    const char *built_in[] = {"run",          "--dim",    "10",      "--iters", "3",
                              "--checkpoint", checkpoint, "--quiet", NULL};
    const char *user[] = {"run",
                          "--objective",
                          CLOPT_SOURCE_DIR "/examples/quartic.cl",
                          "--dim",
                          "10",
                          "--iters",
                          "3",
                          "--checkpoint",
                          checkpoint,
                          "--quiet",
                          NULL};
    struct cli_result a = cli_run(built_in), b = cli_run(user);
    cr_expect_neq(a.exit_code, 0, "%s", a.err);
    cr_expect_eq(a.exit_code, b.exit_code, "built-in: %d (%s), user's file: %d (%s)", a.exit_code,
                 a.err, b.exit_code, b.err);
    cli_result_free(&a);
    cli_result_free(&b);
    free(checkpoint);
}

/* PoCL finds no device when XDG_CACHE_HOME is a file, and cannot use a path too long for
 * its cache: the message names the variable (exit 2), not "no OpenCL device found"
 * (item 12). */
Test(cli_files, an_unusable_xdg_cache_home_is_named)
{
    char *file = path_in(dir, "not_a_dir");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    char *long_path = malloc(4200);
    cr_assert_not_null(long_path);
    snprintf(long_path, 4200, "%s/", dir);
    for (size_t k = strlen(long_path); k < 4150; ++k)
        long_path[k] = k % 200 == 0 ? '/' : 'x';
    long_path[4150] = '\0';
    const char *values[] = {file, long_path};
    for (size_t i = 0; i < 2; ++i) {
        const char *args[] = {"run", "--dim", "10", "--iters", "1", "--quiet", NULL};
        struct cli_result r = cli_run_env(args, "XDG_CACHE_HOME", values[i]);
        cr_expect_eq(r.exit_code, EXIT_USAGE, "case %zu: %s", i, r.err);
        cr_expect_eq(count_lines(r.err), 1, "case %zu: %s", i, r.err);
        cr_expect(strstr(r.err, "XDG_CACHE_HOME") != NULL, "case %zu: %s", i, r.err);
        cli_result_free(&r);
    }
    free(file);
    free(long_path);
}

/* A comment that mentions clopt_fdf_stencil does not make a separable objective a stencil
 * one (item 12). */
Test(cli_files, a_comment_does_not_decide_the_objective_kind)
{
    char *path = path_in(dir, "commented.cl"), *out = path_in(dir, "theta.npy");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("/* Separable: unlike a clopt_fdf_stencil objective it needs no\n"
          "   #define CLOPT_STENCIL_RADIUS 1 line. */\n"
          "// nor clopt_fdf_data\n"
          "real clopt_fdf(real x, ulong i, real *g) { *g = 2 * x; return x * x; }\n",
          f);
    fclose(f);
    const char *args[] = {"run",     "--objective", path,   "--dim", "10", "--iters", "1", "--init",
                          "const:1", "--lr",        "0.25", "--out", out,  "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < n; ++i)
        cr_expect_eq(theta[i], 0.5, "theta[%zu] = %g", i, theta[i]); /* 1 - 0.25 * 2 */
    free(theta);
    cli_result_free(&r);
    free(path);
    free(out);
}

/* bench --csv quotes a field that holds a comma (RFC 4180; a quote would be doubled, but
 * kernel file names may not hold one), so an objective file's name cannot shift the
 * columns (item 12). */
Test(cli_files, bench_csv_quotes_fields_as_rfc_4180_says)
{
    char *path = path_in(dir, "a,b.cl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g) { *g = 2 * x; return x * x; }\n", f);
    fclose(f);
    const char *args[] = {"bench",  "--objective", path,    "--dim", "1000",    "--iters", "2",
                          "--reps", "1",           "--csv", "-",     "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const char *row = strchr(r.out, '\n');
    cr_assert_not_null(row, "%s", r.out);
    ++row;
    char expected[1024];
    snprintf(expected, sizeof expected, "\"%s/a,b.cl\",gd,float,1000,", dir);
    cr_expect(strncmp(row, expected, strlen(expected)) == 0, "row: %s\nwanted: %s", row, expected);
    cli_result_free(&r);
    free(path);
}

/* A tuning database that is a FIFO is not waited on: one warning, the built-in knobs, and
 * the run goes on (issue 16, items 6 and 12). */
Test(cli_files, a_fifo_as_tuning_database_does_not_hang_the_run)
{
    char *fifo = path_in(dir, "tuning.json");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *args[] = {"run",         "--dim", "10",      "--iters", "1",
                          "--tuning-db", fifo,    "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect(strstr(r.err, "clopt: warning: tuning database") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "not a regular file") != NULL, "%s", r.err);
    cli_result_free(&r);
    free(fifo);
}
