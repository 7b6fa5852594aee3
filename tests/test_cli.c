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

TEMP_DIR_SUITE(cli);

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
        if (test_skip_double_part(dbl))
            continue;
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
    SKIP_WITHOUT_FP64();
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

/* "epw=V" for the value V of the first "epw" in the tuning database at path. */
static void db_epw(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char text[4096];
    const size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    const char *at = strstr(text, "\"epw\":");
    cr_assert_not_null(at, "no epw in %s: %s", path, text);
    unsigned long value = 0;
    cr_assert_eq(sscanf(at + 6, " %lu", &value), 1, "%s", text);
    snprintf(out, size, "epw=%lu,", value);
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
    /* The run takes the database's knobs, whichever won: the defaults compete with the
     * space and may win on timing (a CI run once saw them do so at n = 1000). */
    char epw[32];
    db_epw(db, epw, sizeof epw);
    cr_expect(strstr(r.out, epw) != NULL, "the database has %s: %s", epw, r.out);
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
