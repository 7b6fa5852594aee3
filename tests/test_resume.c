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

TEMP_DIR_SUITE(resume);

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
    const char *whole[] = {"run", "--dim",   "1000",   "--target", "1e-3", "--out",
                           a,     "--quiet", "--json", "-",        NULL};
    struct cli_result r = cli_run(whole);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const double n_whole = json_number(r.out, "iterations");
    cli_result_free(&r);
    const char *loose[] = {"run", "--dim",   "1000",   "--target", "1", "--checkpoint",
                           ck,    "--quiet", "--json", "-",        NULL};
    r = cli_run(loose);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const double n_loose = json_number(r.out, "iterations");
    cli_result_free(&r);
    cr_assert_lt(n_loose, n_whole);
    const char *strict[] = {"run",   "--dim", "1000",    "--target", "1e-3", "--resume", ck,
                            "--out", b,       "--quiet", "--json",   "-",    NULL};
    r = cli_run(strict);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(json_number(r.out, "iterations"), n_whole, "%s", r.out);
    cr_expect(strstr(r.out, "\"target\"") != NULL, "%s", r.out);
    cli_result_free(&r);
    cr_expect(same_file_bytes(a, b), "the resumed run ends elsewhere");
    const char *again[] = {"run", "--dim",   "1000",   "--target", "1", "--resume",
                           ck,    "--quiet", "--json", "-",        NULL};
    r = cli_run(again);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(json_number(r.out, "iterations"), n_loose, "%s", r.out);
    cli_result_free(&r);
    free(ck);
    free(a);
    free(b);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static int run_status(const char *const *args, char **err)
{
    struct cli_result r = cli_run(args);
    const int rc = r.exit_code;
    if (err)
        *err = strdup(r.err);
    cli_result_free(&r);
    return rc;
}

/* Inputs are compared by content and numbers by value: the same objective file under
 * another name and the same parameter written differently resume; a changed objective or
 * data file is refused, saying which file. */
Test(resume, inputs_are_compared_by_content_and_value)
{
    char *cl = path_in(dir, "my.cl"), *ck = path_in(dir, "ck"), *target = path_in(dir, "t.npy"),
         *ck2 = path_in(dir, "ck2");
    write_text(
        cl, "real clopt_fdf(real x, ulong i, real *g)\n{\n    (void)i;\n"
            "    *g = 2 * x * (real)CLOPT_PARAM_A;\n    return (real)CLOPT_PARAM_A * x * x;\n}\n");
    const char *first[] = {"run",   "--objective", cl,        "--param", "a=1e-1",
                           "--dim", "100",         "--iters", "5",       "--checkpoint",
                           ck,      "--quiet",     NULL};
    char *err;
    cr_assert_eq(run_status(first, &err), 0, "%s", err);
    free(err);
    /* The same file through another path, the same number written another way. */
    char *other_name = malloc(strlen(dir) + 16);
    sprintf(other_name, "%s/./my.cl", dir);
    const char *same[] = {"run",   "--objective", other_name, "--param", "a=0.1",
                          "--dim", "100",         "--iters",  "10",      "--resume",
                          ck,      "--quiet",     NULL};
    cr_expect_eq(run_status(same, &err), 0, "%s", err);
    free(err);
    /* The same name, other content. */
    FILE *f = fopen(cl, "a");
    fputs("/* edited */\n", f);
    fclose(f);
    const char *changed[] = {"run",   "--objective", cl,        "--param", "a=0.1",
                             "--dim", "100",         "--iters", "10",      "--resume",
                             ck,      "--quiet",     NULL};
    cr_expect_eq(run_status(changed, &err), EXIT_USAGE, "%s", err);
    cr_expect(strstr(err, "another objective file") && count_lines(err) == 1, "%s", err);
    free(err);
    /* A data file changed under the same name. */
    float values[100];
    for (size_t i = 0; i < 100; ++i)
        values[i] = (float)i / 100.0f;
    write_npy(target, values, 100, 0);
    const char *data[] = {
        "run",     "--objective", "shifted_sphere", "--param", "target=", "--dim", "100",
        "--iters", "5",           "--checkpoint",   ck2,       "--quiet", NULL};
    char *param = malloc(strlen(target) + 8);
    sprintf(param, "target=%s", target);
    ((const char **)data)[4] = param;
    cr_assert_eq(run_status(data, &err), 0, "%s", err);
    free(err);
    values[7] = 42.0f;
    write_npy(target, values, 100, 0);
    const char *data_again[] = {
        "run",     "--objective", "shifted_sphere", "--param", param,     "--dim", "100",
        "--iters", "10",          "--resume",       ck2,       "--quiet", NULL};
    cr_expect_eq(run_status(data_again, &err), EXIT_USAGE, "%s", err);
    cr_expect(strstr(err, "another param.target file") != NULL, "%s", err);
    free(err);
    free(param);
    free(other_name);
    free(cl);
    free(ck);
    free(ck2);
    free(target);
}

/* A checkpoint of format 1 (written by clopt before format 2; tests/data/v1-ellipsoid.ckp:
 * ellipsoid cond=10, n = 8, gd lr 0.01, 5 iterations) still resumes, and the run ends
 * where an uninterrupted one does. */
Test(resume, format_1_checkpoints_still_resume)
{
    char *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy");
    const char *whole[] = {"run",   "--objective", "ellipsoid", "--param", "cond=10",
                           "--dim", "8",           "--lr",      "0.01",    "--iters",
                           "9",     "--out",       a,           "--quiet", NULL};
    char *err;
    cr_assert_eq(run_status(whole, &err), 0, "%s", err);
    free(err);
    const char *rest[] = {"run",     "--objective", "ellipsoid",
                          "--param", "cond=10",     "--dim",
                          "8",       "--lr",        "0.01",
                          "--iters", "9",           "--out",
                          b,         "--resume",    CLOPT_SOURCE_DIR "/tests/data/v1-ellipsoid.ckp",
                          "--quiet", NULL};
    cr_assert_eq(run_status(rest, &err), 0, "%s", err);
    free(err);
    cr_expect(same_file_bytes(a, b), "the resumed run ends elsewhere");
    free(a);
    free(b);
}

/* The trace of a run resumed from PATH.prev: the rows the abandoned run wrote after that
 * checkpoint are replaced by the new run's (here with another learning rate). */
Test(resume, resuming_from_prev_drops_the_abandoned_rows)
{
    char *ck = path_in(dir, "ck"), *prev = path_in(dir, "ck.prev"), *trace = path_in(dir, "t.csv");
    const char *first[] = {"run",     "--dim",   "100",          "--lr",    "0.05",
                           "--iters", "30",      "--checkpoint", ck,        "--checkpoint-every",
                           "10",      "--trace", trace,          "--quiet", NULL};
    char *err;
    cr_assert_eq(run_status(first, &err), 0, "%s", err);
    free(err);
    const char *again[] = {"run",      "--dim", "100",     "--lr", "0.02",    "--iters", "30",
                           "--resume", prev,    "--trace", trace,  "--quiet", NULL};
    cr_assert_eq(run_status(again, &err), 0, "%s", err);
    free(err);
    struct clopt_checkpoint_info info;
    char why[256];
    cr_assert_eq(clopt_checkpoint_info(prev, &info, why, sizeof why), CLOPT_OK, "%s", why);
    cr_assert_lt(info.iteration, 30);
    char *text = read_text(trace);
    /* One row per iteration 0..30, in order; those after the checkpoint with the new rate. */
    cr_expect_eq(count_lines(text), 32, "%s", text);
    const char *line = strchr(text, '\n') + 1;
    for (unsigned long expect = 0; expect <= 30 && *line; ++expect) {
        unsigned long it;
        double loss, g, lr;
        cr_assert_eq(sscanf(line, "%lu,%lf,%lf,%lf", &it, &loss, &g, &lr), 4, "%s", line);
        cr_expect_eq(it, expect, "%s", text);
        /* (Losses still pending at the checkpoint, before its iteration, are reported by
         * the new run, with its rate.) */
        if (it > info.iteration)
            cr_expect(lr == 0.02, "row %lu has lr %g:\n%s", it, lr, text);
        line = strchr(line, '\n') + 1;
    }
    free(text);
    free(ck);
    free(prev);
    free(trace);
}

/* The library's CRC-32C (host/crc32c.c), to forge checkpoints whose checksums match. */
uint32_t clopt_crc32c(uint32_t crc, const void *data, size_t length);

/* Overwrites `size` bytes at `offset` of section `tag`'s payload and fixes its checksum. */
static void forge(const char *path, const char *out, const char *tag, size_t offset,
                  const void *bytes, size_t size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    unsigned char data[1 << 16];
    const size_t total = fread(data, 1, sizeof data, f);
    fclose(f);
    int done = 0;
    for (size_t at = 20; at + 20 <= total && !done;) {
        uint64_t length;
        memcpy(&length, data + at + 8, 8);
        unsigned char *payload = data + at + 20;
        if (!strncmp((const char *)data + at, tag, 8)) {
            memcpy(payload + offset, bytes, size);
            const uint32_t crc = clopt_crc32c(0, payload, (size_t)length);
            memcpy(payload + length, &crc, 4);
            done = 1;
        }
        at += 20 + (size_t)length + 4;
    }
    cr_assert(done, "no section %s", tag);
    f = fopen(out, "wb");
    fwrite(data, 1, total, f);
    fclose(f);
}

/* Checkpoints whose checksums match but whose fields no run writes are refused: a flag
 * that is neither 0 nor 1, a stop reason clopt does not have, a theta that is not finite. */
Test(resume, forged_checkpoints_with_valid_checksums_are_refused)
{
    char *ck = path_in(dir, "ck"), *bad = path_in(dir, "bad");
    const char *first[] = {"run",          "--dim", "8",       "--iters", "5",
                           "--checkpoint", ck,      "--quiet", NULL};
    char *err;
    cr_assert_eq(run_status(first, &err), 0, "%s", err);
    free(err);
    const uint32_t seven = 7, one = 1;
    const int32_t reason = 99;
    const float nan_value = NAN;
    const char *resume[] = {"run", "--dim", "8", "--iters", "10", "--resume", bad, "--quiet", NULL};
    /* The loop section: u32 decided at byte 40, i32 reason at 44 (host/solver/solver.h). */
    forge(ck, bad, "loop", 40, &seven, 4);
    cr_expect_eq(run_status(resume, &err), EXIT_USAGE, "decided=7: %s", err);
    cr_expect(strstr(err, "neither 0 nor 1") && count_lines(err) == 1, "%s", err);
    free(err);
    forge(ck, bad, "loop", 40, &one, 4);
    forge(bad, bad, "loop", 44, &reason, 4);
    cr_expect_eq(run_status(resume, &err), EXIT_USAGE, "reason=99: %s", err);
    cr_expect(strstr(err, "stop reason") && count_lines(err) == 1, "%s", err);
    free(err);
    forge(ck, bad, "theta", 3 * sizeof(float), &nan_value, sizeof nan_value);
    cr_expect_eq(run_status(resume, &err), EXIT_USAGE, "NaN theta: %s", err);
    cr_expect(strstr(err, "theta[3] is not finite") && count_lines(err) == 1, "%s", err);
    free(err);
    free(ck);
    free(bad);
}

/* --resume F alone takes the run's options from F and continues it exactly; an option given
 * again must agree with F (exit 2 naming it), except those that may change (--lr here). */
Test(resume, resume_alone_takes_the_options_from_the_checkpoint)
{
    char *ck = path_in(dir, "ck"), *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy");
    const char *whole[] = {"run",   "--objective",  "ellipsoid", "--param",    "cond=1e2", "--dim",
                           "500",   "--optimizer",  "momentum",  "--momentum", "0.5",      "--lr",
                           "0.001", "--loss-every", "2",         "--iters",    "40",       "--out",
                           a,       "--quiet",      NULL};
    char *err;
    cr_assert_eq(run_status(whole, &err), 0, "%s", err);
    free(err);
    const char *first[] = {
        "run",   "--objective",  "ellipsoid", "--param",    "cond=1e2", "--dim",
        "500",   "--optimizer",  "momentum",  "--momentum", "0.5",      "--lr",
        "0.001", "--loss-every", "2",         "--iters",    "20",       "--checkpoint",
        ck,      "--quiet",      NULL};
    cr_assert_eq(run_status(first, &err), 0, "%s", err);
    free(err);
    const char *rest[] = {"run", "--resume", ck, "--iters", "40", "--out", b, "--quiet", NULL};
    cr_assert_eq(run_status(rest, &err), 0, "%s", err);
    free(err);
    cr_expect(same_file_bytes(a, b), "the resumed run ends elsewhere");
    const char *differs[] = {"run",        "--resume", ck,        "--iters", "40",
                             "--momentum", "0.6",      "--quiet", NULL};
    cr_expect_eq(run_status(differs, &err), EXIT_USAGE, "%s", err);
    cr_expect(strstr(err, "momentum") && count_lines(err) == 1, "%s", err);
    free(err);
    const char *may_change[] = {"run",  "--resume", ck,        "--iters", "30",
                                "--lr", "0.0005",   "--quiet", NULL};
    cr_expect_eq(run_status(may_change, &err), 0, "%s", err);
    free(err);
    free(ck);
    free(a);
    free(b);
}
