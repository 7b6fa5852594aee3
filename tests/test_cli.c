/* The clopt command line: outputs, exit codes and one-line errors. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_USAGE 2
#define EXIT_DIVERGED 3

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

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, help_lists_the_run_options)
{
    const char *args[] = {"run", "--help", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0);
    const char *needed[] = {"--objective",  "--dim",       "--init",  "--lr",
                            "--iters",      "--gtol",      "--ftol",  "--target",
                            "--loss-every", "--out",       "--trace", "--json",
                            "--device",     "--precision", "--tune",  "--max-shard-bytes",
                            "--kernel-dir", "exit status"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; ++i)
        cr_expect(strstr(r.out, needed[i]) != NULL, "help lacks %s", needed[i]);
    cli_result_free(&r);
    const char *run_help[] = {"run", "--help", NULL};
    r = cli_run(run_help);
    cr_expect_eq(r.exit_code, 0);
    cr_expect(strstr(r.out, "--objective") != NULL);
    cli_result_free(&r);
}

Test(cli, devices_lists_at_least_one_device)
{
    const char *args[] = {"devices", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "fp64") != NULL);
    cr_expect_geq(count_lines(r.out), 2);
    cli_result_free(&r);
}

Test(cli, run_writes_npy_json_and_trace)
{
    char *out = path_in(dir, "theta.npy"), *json = path_in(dir, "run.json"),
         *trace = path_in(dir, "trace.csv");
    const char *args[] = {"run",  "--dim",   "1000",    "--iters", "10", "--lr",
                          "0.25", "--init",  "const:2", "--out",   out,  "--json",
                          json,   "--trace", trace,     "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(r.err[0], '\0', "quiet run printed: %s", r.err);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    cr_assert_eq(n, 1000);
    cr_expect_eq(is_double, 0);
    for (size_t i = 0; i < n; ++i)
        cr_assert_eq(theta[i], 2.0 / 1024.0, "theta[%zu] = %g", i, theta[i]); /* halved 10x */
    free(theta);

    char *text = read_text(json);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "bad JSON: %s", text);
    const char *keys[] = {"objective",        "optimizer", "lr",        "n",           "device",
                          "iterations",       "loss",      "grad_norm", "stop_reason", "seconds",
                          "gbytes_per_second"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; ++i)
        cr_expect_not_null(cJSON_GetObjectItem(root, keys[i]), "JSON lacks %s", keys[i]);
    cr_expect_eq(cJSON_GetObjectItem(root, "iterations")->valuedouble, 10);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "stop_reason")->valuestring, "max_iters");
    cr_expect_eq(cJSON_GetObjectItem(root, "loss")->valuedouble, 1000.0 * pow(2.0 / 1024.0, 2));
    cJSON_Delete(root);
    free(text);

    text = read_text(trace);
    cr_expect_eq(strncmp(text, "iteration,loss,grad_norm,lr,seconds\n", 36), 0);
    /* A row per iteration 0..9 and one for the final theta. */
    cr_expect_eq(count_lines(text), 12, "trace:\n%s", text);
    cr_expect(strstr(text, "\n10,") != NULL, "no final row:\n%s", text);
    cr_expect(strstr(text, "\n0,4000,") != NULL, "first loss should be 1000 * 2^2:\n%s", text);
    free(text);
    cli_result_free(&r);
    free(out);
    free(json);
    free(trace);
}

Test(cli, summary_names_the_essentials)
{
    const char *args[] = {"run", "--dim", "2^10", "--iters", "3", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const char *needed[] = {"objective",     "sphere", "optimizer", "gd",   "1024",    "device",
                            "iterations  3", "loss",   "grad norm", "stop", "seconds", "GB/s"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; ++i)
        cr_expect(strstr(r.out, needed[i]) != NULL, "summary lacks '%s':\n%s", needed[i], r.out);
    cli_result_free(&r);
}

Test(cli, npy_init_sets_dimension_and_values)
{
    for (int dbl = 0; dbl < 2; ++dbl) {
        const size_t n = 93;
        double values[93];
        float values_f[93];
        for (size_t i = 0; i < n; ++i) {
            values[i] = (double)i - 40.0;
            values_f[i] = (float)values[i];
        }
        char *in = path_in(dir, "init.npy"), *out = path_in(dir, "out.npy");
        write_npy(in, dbl ? (const void *)values : (const void *)values_f, n, dbl);
        const char *args[] = {"run",
                              "--init",
                              in,
                              "--iters",
                              "1",
                              "--lr",
                              "0.25",
                              "--out",
                              out,
                              "--precision",
                              dbl ? "double" : "float",
                              "--quiet",
                              NULL};
        struct cli_result r = cli_run(args);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        size_t got;
        int is_double;
        double *theta = read_npy_as_double(out, &got, &is_double);
        cr_assert_eq(got, n);
        cr_expect_eq(is_double, dbl);
        for (size_t i = 0; i < n; ++i)
            cr_assert_eq(theta[i], 0.5 * values[i]);
        free(theta);
        cli_result_free(&r);
        free(in);
        free(out);
    }
}

Test(cli, divergence_exits_3_and_keeps_finite_theta)
{
    char *out = path_in(dir, "theta.npy");
    const char *args[] = {"run",     "--dim",   "100",  "--lr",  "1.5", "--init",
                          "const:1", "--iters", "1000", "--out", out,   NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_DIVERGED, "%s", r.err);
    cr_expect(strstr(r.err, "NaN/Inf") != NULL, "%s", r.err);
    cr_expect(strstr(r.out, "diverged") != NULL, "%s", r.out);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    for (size_t i = 0; i < n; ++i)
        cr_assert(isfinite(theta[i]) && fabs(theta[i]) > 1e18, "theta[%zu] = %g", i, theta[i]);
    free(theta);
    cli_result_free(&r);
    free(out);
}

struct bad_case {
    const char *args[16];
    const char *pattern;
};

Test(cli, bad_input_exits_2_with_one_line)
{
    char *malformed = path_in(dir, "bad.npy"), *ints = path_in(dir, "ints.npy"),
         *broken = path_in(dir, "broken.cl"), *small = path_in(dir, "small.npy");
    FILE *f = fopen(malformed, "wb");
    cr_assert_not_null(f);
    fputs("not a numpy file at all", f);
    fclose(f);
    f = fopen(ints, "wb");
    cr_assert_not_null(f);
    const char header[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<i4', 'fortran_order': False, "
                          "'shape': (2,), }";
    fwrite(header, 1, sizeof header - 1, f);
    for (size_t i = sizeof header - 1; i < 128 - 1; ++i)
        fputc(' ', f);
    fputc('\n', f);
    fwrite("\0\0\0\0\0\0\0\0", 1, 8, f);
    fclose(f);
    const float two[2] = {1, 2};
    write_npy(small, two, 2, 0);
    char *nan_file = path_in(dir, "nan.npy"), *huge_file = path_in(dir, "huge.npy"),
         *nofdf = path_in(dir, "nofdf.cl");
    const float with_nan[3] = {1, NAN, 2};
    write_npy(nan_file, with_nan, 3, 0);
    const double too_big_for_float[2] = {1, 1e300};
    write_npy(huge_file, too_big_for_float, 2, 1);
    f = fopen(nofdf, "w");
    cr_assert_not_null(f);
    fputs("real f(real x) { return x; }\n", f);
    fclose(f);
    f = fopen(broken, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g) { return x +; }\n", f);
    fclose(f);
    char *noradius = path_in(dir, "noradius.cl"), *missing = path_in(dir, "missing/ck");
    f = fopen(noradius, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)\n"
          "{ *g = 0; return w[1]; }\n",
          f);
    fclose(f);
    /* FIFOs and a directory where files belong: refused at once, never waited on, never
     * replaced. */
    char *fifo_out = path_in(dir, "fifo_out.npy"), *fifo_ck = path_in(dir, "fifo.ckp"),
         *fifo_in = path_in(dir, "fifo_in.npy"), *fifo_cl = path_in(dir, "fifo.cl"),
         *dir_cl = path_in(dir, "dir.cl");
    cr_assert_eq(mkfifo(fifo_out, 0600), 0);
    cr_assert_eq(mkfifo(fifo_ck, 0600), 0);
    cr_assert_eq(mkfifo(fifo_in, 0600), 0);
    cr_assert_eq(mkfifo(fifo_cl, 0600), 0);
    cr_assert_eq(mkdir(dir_cl, 0700), 0);
    char target_small[512], target_malformed[512], target_nan[512], target_fifo[512];
    snprintf(target_fifo, sizeof target_fifo, "target=%s", fifo_in);
    snprintf(target_small, sizeof target_small, "target=%s", small);
    snprintf(target_malformed, sizeof target_malformed, "target=%s", malformed);
    snprintf(target_nan, sizeof target_nan, "target=%s", nan_file);
    const struct bad_case cases[] = {
        {{"run", "--objective", "shifted_sphere"}, "needs --param target=FILE.npy"},
        {{"run", "--objective", "shifted_sphere", "--param", target_small, "--dim", "5"},
         "holds 2 values but theta has 5"},
        {{"run", "--objective", "shifted_sphere", "--param", target_malformed}, "magic"},
        {{"run", "--objective", "shifted_sphere", "--param", target_nan}, "not a finite"},
        {{"run", "--objective", "shifted_sphere", "--param", "target=/nonexistent/t.npy"},
         "cannot open --param target file"},
        {{"run", "--objective", "shifted_sphere", "--param", "target="}, "needs --param target"},
        {{"run", "--objective", "laplacian", "--param", "left=abc"}, "finite number"},
        {{"run", "--objective", noradius}, "CLOPT_STENCIL_RADIUS"},
        {{"check", "--objective", noradius}, "CLOPT_STENCIL_RADIUS"},
        {{"run", "--checkpoint-every", "5"}, "needs --checkpoint FILE"},
        {{"run", "--checkpoint", "/nonexistent/c.ckp"}, "does not exist"},
        {{"run", "--checkpoint", "c.ckp", "--checkpoint-every", "0"}, "at least 1"},
        {{"run", "--resume", "/nonexistent/c.ckp"}, "--resume"},
        {{"run", "--resume", malformed}, "not a clopt checkpoint"},
        {{"bench", "--reps", "0"}, "at least 1"},
        {{"bench", "--reps", "5000"}, "--reps"},
        {{"run", "--reps", "3"}, "option of clopt bench"},
        {{"run", "--csv", "x.csv"}, "option of clopt bench"},
        {{"bench", "--out", "x.npy"}, "options of clopt run"},
        {{"bench", "--iters", "0"}, "at least 1"},
        {{"bench", "--csv", "/nonexistent/b.csv"}, "does not exist"},
        {{"tune", "--space", "foo=1"}, "--space"},
        {{"tune", "--space", "wg=3x"}, "--space"},
        {{"tune", "--space", "wg="}, "no values"},
        {{"tune", "--tune", "wg=4"}, "do not apply"},
        {{"run", "--space", "wg=4"}, "option of clopt tune"},
        {{"bench", "--space", "fuse=2"}, "option of clopt tune"},
        {{"tune", "--quiet", "--dim", "1000", "--iters", "4", "--reps", "1", "--space", "fuse=2",
          "--clip-norm", "1"},
         "no candidate of --space can run"},
        {{"run", "--budget", "-1"}, "--budget"},
        {{"check", "--samples", "0"}, "at least 1"},
        {{"check", "--tol", "-1"}, "--tol"},
        {{"check", "--init", small}, "draws its point"},
        {{"check", "--objective", "nosuch"}, "unknown objective"},
        {{"check", "--objective", "ellipsoid", "--param", "cond=0"}, "out of range"},
        {{"check", "--iters", "5"}, "unknown option"},
        {{"run", "--objective", "nosuch"}, "unknown objective"},
        {{"run", "--dim", "0"}, "at least 1"},
        {{"run", "--dim", "-5"}, "negative"},
        {{"run", "--dim", "1e30"}, "too large"},
        {{"run", "--dim", "12abc"}, "--dim"},
        {{"run", "--lr", "-1"}, ">= 0"},
        {{"run", "--lr", "nan"}, "--lr"},
        {{"run", "--lr", "abc"}, "--lr"},
        {{"run", "--iters", "1.5"}, "whole"},
        {{"run", "--iters"}, "needs a value"},
        {{"run", "--gtol", "-1"}, "--gtol"},
        {{"run", "--target", "inf"}, "--target"},
        {{"run", "--loss-every", "0"}, "at least 1"},
        {{"run", "--precision", "half"}, "float or double"},
        {{"run", "--init", "bogus"}, "--init"},
        {{"run", "--init", "uniform:-1"}, "> 0"},
        {{"run", "--init", malformed}, "magic"},
        {{"run", "--init", ints}, "dtype"},
        {{"run", "--init", small, "--dim", "3"}, "holds 2 elements"},
        {{"run", "--init", "/nonexistent/x.npy"}, "cannot open"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=abc"}, "finite number"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=0.5"}, "out of range"},
        {{"run", "--param", "nosuch=1"}, "no parameter"},
        {{"run", "--param", "noequals"}, "KEY=VALUE"},
        {{"run", "--tune", "wg=3"}, "power of two"},
        {{"run", "--tune", "bogus=1"}, "unknown knob"},
        {{"run", "--tune", "layout=diagonal"}, "contig or strided"},
        {{"run", "--tune", "fuse=0"}, "at least 1"},
        {{"run", "--tune", "fuse=33"}, "<= 32"},
        {{"run", "--tune", "gpcu=1025"}, "<= 1024"},
        {{"run", "--tune", "simd=384"}, "simd=384: use 256 or 512"},
        {{"run", "--tune", "pf=1"}, "at least 2"},
        {{"run", "--tune", "pf=3"}, "power of two"},
        {{"run", "--tune", "fuse=4", "--objective", "rosenbrock"}, "separable objective"},
        {{"run", "--tune", "fuse=4", "--clip-norm", "1"}, "--clip-norm"},
        {{"run", "--max-shard-bytes", "16"}, "tile"},
        {{"run", "--optimizer", "nosuch"}, "unknown optimizer"},
        {{"run", "--device", "no-such-device-name"}, "no OpenCL device matches"},
        {{"run", "--frobnicate"}, "unknown option"},
        {{"run", "stray"}, "unexpected argument"},
        {{"frobnicate"}, "unknown command"},
        {{"devices", "extra"}, "no arguments"},
        {{"run", "--objective", "/nonexistent/obj.cl"}, "cannot open"},
        {{"run", "--objective", nofdf}, "defines no clopt_fdf"},
        {{"run", "--init", nan_file}, "element 1 is nan"},
        {{"run", "--init", huge_file}, "not a finite float"},
        {{"run", "--out", "/nonexistent/x.npy"}, "does not exist"},
        {{"run", "--json", dir}, "not a directory"},
        {{"run", "--trace", "/nonexistent/t.csv"}, "does not exist"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=2", "--param", "cond=3"},
         "given twice"},
        {{"run", "--tune", "epw="}, "--tune"},
        {{"run", "--init", "normal:nan"}, "normal:nan"},
        {{"run", "--lr", "inf"}, "finite"},
        {{"run", "--optimizer", "adam", "--beta1", "1"}, "--beta1 1 is out of range"},
        {{"run", "--optimizer", "adam", "--beta2", "-0.5"}, "--beta2"},
        {{"run", "--optimizer", "adam", "--eps", "0"}, "--eps"},
        {{"run", "--optimizer", "rmsprop", "--alpha", "2"}, "--alpha"},
        {{"run", "--optimizer", "momentum", "--momentum", "0"}, "--momentum must be > 0"},
        {{"run", "--optimizer", "nesterov", "--dampening", "0.5"}, "dampening 0"},
        {{"run", "--weight-decay", "-1"}, "--weight-decay"},
        {{"run", "--clip-norm", "-2"}, "--clip-norm"},
        {{"run", "--optimizer", "gd", "--momentum", "0.9"},
         "--momentum is not used by optimizer 'gd'"},
        {{"run", "--schedule", "cosine"}, "--schedule"},
        {{"run", "--schedule", "step:0:0.5"}, "EVERY"},
        {{"run", "--schedule", "warmup:10+bogus"}, "unknown schedule"},
        /* Renaming over a FIFO or device would replace it (issue 16, item 5). */
        {{"run", "--dim", "10", "--out", fifo_out}, "not a regular file"},
        {{"run", "--dim", "10", "--checkpoint", fifo_ck}, "not a regular file"},
        /* Inputs that are not regular files, opened without blocking (item 12). */
        {{"run", "--init", fifo_in}, "not a regular file"},
        {{"run", "--resume", fifo_in}, "not a regular file"},
        {{"run", "--objective", "shifted_sphere", "--param", target_fifo}, "not a regular file"},
        {{"run", "--objective", fifo_cl}, "not a regular file"},
        {{"run", "--objective", dir_cl}, "a directory"},
        /* Values that float cannot hold as given (item 11). */
        {{"run", "--optimizer", "adam", "--eps", "1e-40"}, "--eps 1e-40 is too small for float"},
        {{"run", "--lr", "1e-46"}, "--lr 1e-46 is too small for float"},
        {{"run", "--lr", "1e39"}, "--lr 1e+39 is too large for float"},
        {{"run", "--weight-decay", "1e-45"}, "--weight-decay 1e-45 is too small for float"},
        {{"run", "--optimizer", "momentum", "--momentum", "0.99999999999"}, "rounds to 1 in float"},
        /* A shard that holds a tile but not its halo names the halo (item 12). */
        {{"run", "--objective", "rosenbrock", "--tune", "wg=4,epw=1", "--max-shard-bytes", "16"},
         "halo of 1 elements"},
        /* Two names for one file (issue 16): refused before anything is written. */
        {{"run", "--init", small, "--trace", small}, "are the same file"},
        {{"run", "--init", small, "--out", small}, "are the same file"},
        {{"run", "--out", nofdf, "--json", nofdf}, "are the same file"},
        {{"run", "--resume", missing}, "--resume"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        struct cli_result r = cli_run(cases[i].args);
        cr_expect_eq(r.exit_code, EXIT_USAGE, "case %zu (%s %s): exit %d, stderr: %s", i,
                     cases[i].args[1], cases[i].args[2] ? cases[i].args[2] : "", r.exit_code,
                     r.err);
        cr_expect_eq(count_lines(r.err), 1, "case %zu: stderr has %zu lines:\n%s", i,
                     count_lines(r.err), r.err);
        cr_expect(strstr(r.err, cases[i].pattern) != NULL, "case %zu: '%s' not in: %s", i,
                  cases[i].pattern, r.err);
        cr_expect(strncmp(r.err, "clopt: error: ", 14) == 0, "case %zu: %s", i, r.err);
        cli_result_free(&r);
    }
    /* A user kernel that does not compile: status 2, and the log names the file. */
    const char *args[] = {"run", "--objective", broken, NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cr_expect(strstr(r.err, "broken.cl:1:") != NULL, "%s", r.err);
    cli_result_free(&r);
    free(malformed);
    free(ints);
    free(broken);
    free(small);
    free(nan_file);
    free(huge_file);
    free(nofdf);
    free(noradius);
    free(fifo_out);
    free(fifo_ck);
    free(fifo_in);
    free(fifo_cl);
    free(dir_cl);
    free(missing);
}

Test(cli, kernel_dir_overrides_the_embedded_kernels)
{
    const char *missing[] = {"run", "--dim", "10", "--kernel-dir", "/nonexistent", NULL};
    struct cli_result r = cli_run(missing);
    cr_expect_neq(r.exit_code, 0);
    cr_expect(strstr(r.err, "kernel directory") != NULL, "%s", r.err);
    cli_result_free(&r);
    const char *good[] = {
        "run",     "--dim", "10", "--iters", "2", "--kernel-dir", CLOPT_SOURCE_DIR "/kernels",
        "--quiet", NULL};
    r = cli_run(good);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
}

Test(cli, user_objective_file_with_a_parameter_runs)
{
    char *out = path_in(dir, "theta.npy");
    const char *args[] = {"run",     "--objective", CLOPT_SOURCE_DIR "/examples/quartic.cl",
                          "--param", "a=3",         "--dim",
                          "100",     "--init",      "const:1",
                          "--lr",    "0.01",        "--iters",
                          "1",       "--out",       out,
                          "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    /* One step from 1 towards 3: 1 - 0.01 * 4 * (1 - 3)^3 = 1.32. */
    for (size_t i = 0; i < n; ++i)
        cr_assert(close_enough(theta[i], 1.32, 1e-6, 0), "theta[%zu] = %.9g", i, theta[i]);
    free(theta);
    cli_result_free(&r);
    free(out);
}

Test(cli, no_opencl_platform_says_how_to_install_pocl)
{
    /* An empty vendor directory leaves the ICD loader with no platform at all. */
    const char *devices[] = {"devices", NULL};
    struct cli_result r = cli_run_env(devices, "OCL_ICD_VENDORS", dir);
    cr_expect_eq(r.exit_code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "pocl-opencl-icd") != NULL, "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
    const char *run[] = {"run", "--dim", "10", NULL};
    r = cli_run_env(run, "OCL_ICD_VENDORS", dir);
    cr_expect_eq(r.exit_code, 1, "%s", r.err);
    cr_expect(strstr(r.err, "pocl-opencl-icd") != NULL, "%s", r.err);
    cli_result_free(&r);
}

Test(cli, params_reach_user_objectives_as_floating_literals)
{
    /* 1 / CLOPT_PARAM_A must not be integer division when a = 2. */
    char *path = path_in(dir, "scaled.cl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g)\n"
          "{\n"
          "    *g = x * (real)(1 / CLOPT_PARAM_A);\n"
          "    return x * x * (real)(1 / CLOPT_PARAM_A);\n"
          "}\n",
          f);
    fclose(f);
    const char *args[] = {"run",   "--objective", path,     "--param", "a=2",
                          "--dim", "10",          "--init", "const:1", "--iters",
                          "0",     "--json",      "-",      "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    cr_expect_eq(cJSON_GetObjectItem(root, "loss")->valuedouble, 5.0);
    cJSON_Delete(root);
    cli_result_free(&r);
    free(path);
}

Test(cli, every_optimizer_runs_and_reports_its_traffic)
{
    const struct {
        const char *name;
        double bytes_per_element;
    } cases[] = {{"gd", 8},     {"momentum", 16}, {"nesterov", 16}, {"adam", 24},
                 {"adamw", 24}, {"rmsprop", 16},  {"adagrad", 16}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        const char *args[] = {"run", "--optimizer", cases[i].name, "--dim",   "1000", "--iters",
                              "20",  "--json",      "-",           "--quiet", NULL};
        struct cli_result r = cli_run(args);
        cr_assert_eq(r.exit_code, 0, "%s: %s", cases[i].name, r.err);
        cJSON *root = cJSON_Parse(r.out);
        cr_assert_not_null(root, "%s", r.out);
        cr_expect_str_eq(cJSON_GetObjectItem(root, "optimizer")->valuestring, cases[i].name);
        cr_expect_eq(cJSON_GetObjectItem(root, "bytes_per_element")->valuedouble,
                     cases[i].bytes_per_element, "%s", cases[i].name);
        cJSON_Delete(root);
        cli_result_free(&r);
    }
}

Test(cli, objectives_lists_formula_minimum_and_parameters)
{
    const char *args[] = {"objectives", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const char *needed[] = {"sphere",          "ellipsoid",          "cond=",  "rastrigin",
                            "styblinski_tang", "-39.16616570377142", "minimum"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; ++i)
        cr_expect(strstr(r.out, needed[i]) != NULL, "no '%s' in:\n%s", needed[i], r.out);
    cli_result_free(&r);
}

/* A user objective with a wrong gradient: what the check is for. */
Test(cli, gradient_check_flags_a_wrong_gradient_and_passes_right_ones)
{
    char *wrong = path_in(dir, "wrong.cl");
    FILE *f = fopen(wrong, "w");
    cr_assert_not_null(f);
    /* d/dx (x - 1)^4 is 4 (x - 1)^3, not 3 (x - 1)^3. */
    fputs("real clopt_fdf(real x, ulong i, real *g)\n"
          "{ real d = x - 1; *g = 3 * d * d * d; return d * d * d * d; }\n",
          f);
    fclose(f);
    const char *bad[] = {"check", "--objective", wrong, "--dim", "50", NULL};
    struct cli_result r = cli_run(bad);
    cr_expect_eq(r.exit_code, 4, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "FAIL") != NULL, "%s", r.out);
    cr_expect(strstr(r.err, "gradient check failed") != NULL, "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
    const char *examples[] = {CLOPT_SOURCE_DIR "/examples/quartic.cl",
                              CLOPT_SOURCE_DIR "/examples/smooth_step.cl",
                              "rosenbrock",
                              "laplacian",
                              "shifted_sphere",
                              "rastrigin"};
    for (size_t i = 0; i < sizeof examples / sizeof *examples; ++i) {
        const char *good[] = {"check",    "--objective", examples[i], "--init",
                              "normal:2", "--json",      "-",         NULL};
        r = cli_run(good);
        cr_expect_eq(r.exit_code, 0, "%s: %s%s", examples[i], r.out, r.err);
        cr_expect(strstr(r.out, "\"passed\":\ttrue") != NULL, "%s: %s", examples[i], r.out);
        cli_result_free(&r);
    }
    free(wrong);
}

/* shifted_sphere takes n from its target file and one step of lr 0.5 lands on it. */
Test(cli, shifted_sphere_reads_its_target_and_reaches_it)
{
    char *target = path_in(dir, "t.npy"), *out = path_in(dir, "theta.npy");
    double t[37];
    for (size_t i = 0; i < 37; ++i)
        t[i] = 0.25 * (double)i - 3;
    write_npy(target, t, 37, 1);
    char param[512];
    snprintf(param, sizeof param, "target=%s", target);
    const char *args[] = {"run",     "--objective", "shifted_sphere", "--param", param,
                          "--lr",    "0.5",         "--iters",        "1",       "--out",
                          out,       "--precision", "double",         "--init",  "zeros",
                          "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    cr_assert_eq(n, 37);
    /* x - 0.5 * 2 (x - t) = t exactly for these values. */
    for (size_t i = 0; i < n; ++i)
        cr_expect_eq(theta[i], t[i], "theta[%zu] = %.17g", i, theta[i]);
    free(theta);
    cli_result_free(&r);
    free(target);
    free(out);
}

/* A user stencil objective through the CLI: halos exchanged between shards give the same
 * bits as one shard. */
Test(cli, user_stencil_objective_is_the_same_on_one_shard_and_many)
{
    char *one = path_in(dir, "one.npy"), *many = path_in(dir, "many.npy");
    const char *paths[] = {one, many};
    const char *caps[] = {"0", "1032"}; /* 256 + 2 halo floats: 4+ shards of 257 elements */
    for (size_t k = 0; k < 2; ++k) {
        const char *args[] = {"run",
                              "--objective",
                              CLOPT_SOURCE_DIR "/examples/smooth_step.cl",
                              "--dim",
                              "1001",
                              "--tune",
                              "wg=1,epw=256,vw=8",
                              "--max-shard-bytes",
                              caps[k],
                              "--iters",
                              "20",
                              "--optimizer",
                              "adam",
                              "--lr",
                              "0.05",
                              "--out",
                              paths[k],
                              "--quiet",
                              NULL};
        struct cli_result r = cli_run(args);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
    }
    size_t n1, n2;
    int d1, d2;
    double *a = read_npy_as_double(one, &n1, &d1), *b = read_npy_as_double(many, &n2, &d2);
    cr_assert_eq(n1, 1001);
    cr_assert_eq(n2, 1001);
    for (size_t i = 0; i < n1; ++i)
        cr_assert(!memcmp(&a[i], &b[i], sizeof a[i]), "theta[%zu]: %.9g vs %.9g", i, a[i], b[i]);
    free(a);
    free(b);
    free(one);
    free(many);
}

/* clopt bench reports the stream bandwidth, the step's, and their ratio, consistently. */
Test(cli, bench_reports_bandwidths_and_their_ratio)
{
    const char *args[] = {"bench", "--dim",  "100000", "--optimizer", "adam", "--iters",
                          "3",     "--reps", "2",      "--json",      "-",    NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    const char *fields[] = {"copy_gbytes_per_second", "scale_gbytes_per_second",
                            "step_gbytes_per_second", "element_iterations_per_second",
                            "ratio_to_scale",         "step_seconds"};
    double v[6];
    for (size_t i = 0; i < 6; ++i) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, fields[i]);
        cr_assert(cJSON_IsNumber(item), "%s missing: %s", fields[i], r.out);
        v[i] = item->valuedouble;
        cr_expect(v[i] > 0 && isfinite(v[i]), "%s = %g", fields[i], v[i]);
    }
    cr_expect(close_enough(v[4], v[2] / v[1], 1e-9, 0), "ratio %g vs %g / %g", v[4], v[2], v[1]);
    /* Adam moves 24 bytes per element and iteration in float. */
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(root, "bytes_per_element");
    cr_expect(cJSON_IsNumber(bytes) && bytes->valuedouble == 24);
    cr_expect(close_enough(v[3] * 24 / 1e9, v[2], 1e-9, 0), "element rate and GB/s disagree");
    cJSON_Delete(root);
    cli_result_free(&r);
    const char *csv[] = {"bench",  "--dim", "1000",  "--iters", "2",
                         "--reps", "1",     "--csv", "-",       NULL};
    r = cli_run(csv);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.out), 2, "%s", r.out);
    cr_expect(strncmp(r.out, "objective,optimizer,precision,n,", 32) == 0, "%s", r.out);
    cli_result_free(&r);
}

/* clopt tune writes the database that the next run uses (and says so); a corrupted
 * database is reported and ignored; --tune wins over the database. */
Test(cli, tuning_database_is_written_by_tune_and_used_by_run)
{
    char *db = path_in(dir, "tuning/db.json");
    const char *tune[] = {"tune",    "--dim",   "1000",   "--space", "wg=1|2,epw=64|128,vw=8",
                          "--iters", "3",       "--reps", "1",       "--tuning-db",
                          db,        "--quiet", NULL};
    struct cli_result r = cli_run(tune);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "best ") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "bit-identical") != NULL, "%s", r.out);
    cli_result_free(&r);
    const char *run[] = {"run", "--dim", "1000", "--iters", "2", "--tuning-db", db, NULL};
    r = cli_run(run);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "tuning database") && strstr(r.out, "exact size class 2^9"), "%s",
              r.out);
    cr_expect(strstr(r.out, "epw=64") || strstr(r.out, "epw=128"), "%s", r.out);
    cli_result_free(&r);
    const char *bigger[] = {"run", "--dim", "5000", "--iters", "2", "--tuning-db", db, NULL};
    r = cli_run(bigger);
    cr_expect(strstr(r.out, "nearest size class 2^9") != NULL, "%s", r.out);
    cli_result_free(&r);
    const char *forced[] = {"run",    "--dim", "1000",        "--iters", "2",
                            "--tune", "wg=4",  "--tuning-db", db,        NULL};
    r = cli_run(forced);
    cr_expect(strstr(r.out, "wg=4,") && strstr(r.out, "(--tune)"), "%s", r.out);
    cli_result_free(&r);
    /* Corrupted: a knob out of range, then not JSON at all. */
    const char *bad_texts[] = {"{\"version\": 1, \"entries\": [{\"size_class\": 9, \"knobs\": "
                               "{\"wg\": 3.5}}]}",
                               "{{{ not json"};
    for (size_t i = 0; i < 2; ++i) {
        FILE *f = fopen(db, "w");
        cr_assert_not_null(f);
        fputs(bad_texts[i], f);
        fclose(f);
        r = cli_run(run);
        cr_expect_eq(r.exit_code, 0, "%s", r.err);
        cr_expect(strstr(r.err, "corrupted") != NULL, "%s", r.err);
        cr_expect(strstr(r.out, "built-in defaults") != NULL, "%s", r.out);
        cli_result_free(&r);
    }
    r = cli_run(tune);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.err, "replaced") != NULL, "%s", r.err);
    cli_result_free(&r);
    r = cli_run(run);
    cr_expect(strstr(r.out, "exact size class") != NULL, "%s", r.out);
    cli_result_free(&r);
    free(db);
}
