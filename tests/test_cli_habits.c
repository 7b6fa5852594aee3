/* The clopt command line as people expect it: each command's own help, devices as JSON,
 * the trace on stdout, progress and the fuller summary, tune's unquoted spaces, bench's
 * cache note, the objectives' learning rates and the checkpoint command. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

TestSuite(cli_habits, .init = setup, .fini = teardown);

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", path);
    static char buffer[1 << 16];
    size_t n = fread(buffer, 1, sizeof buffer - 1, f);
    buffer[n] = '\0';
    fclose(f);
    return strdup(buffer);
}

/* Each command's help names the command and its own options, through both spellings. */
Test(cli_habits, every_command_has_its_own_help)
{
    static const struct {
        const char *command;
        const char *needed[6];
    } cases[] = {
        {"run", {"usage: clopt run", "--objective", "--lr", "--trace FILE.csv|-", NULL}},
        {"tune", {"usage: clopt tune", "--space", "--budget", "wg=64/128", "--objective", NULL}},
        {"bench", {"usage: clopt bench", "--reps", "--csv", "--json", "--objective", NULL}},
        {"check", {"usage: clopt check", "--samples", "--tol", "--objective", NULL}},
        {"devices", {"usage: clopt devices", "--json", NULL}},
        {"objectives", {"usage: clopt objectives", "gd lr", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        const char *own[] = {cases[i].command, "--help", NULL};
        const char *via_help[] = {"help", cases[i].command, NULL};
        struct cli_result a = cli_run(own), b = cli_run(via_help);
        cr_expect_eq(a.exit_code, 0, "%s --help: %s", cases[i].command, a.err);
        cr_expect_eq(b.exit_code, 0, "help %s: %s", cases[i].command, b.err);
        cr_expect_str_eq(a.out, b.out, "clopt %s --help and clopt help %s differ", cases[i].command,
                         cases[i].command);
        for (const char *const *n = cases[i].needed; *n; ++n)
            cr_expect(strstr(a.out, *n) != NULL, "%s --help lacks '%s':\n%s", cases[i].command, *n,
                      a.out);
        cli_result_free(&a);
        cli_result_free(&b);
    }
    /* Options of one command are not in another's help. */
    const char *check[] = {"check", "--help", NULL};
    struct cli_result r = cli_run(check);
    cr_expect(strstr(r.out, "--optimizer") == NULL, "check's help lists run options");
    cli_result_free(&r);
}

Test(cli_habits, global_help_is_a_summary_and_help_of_nothing_fails)
{
    const char *args[] = {"--help", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0);
    const char *commands[] = {"devices", "objectives", "run", "check", "tune", "bench", "help"};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; ++i)
        cr_expect(strstr(r.out, commands[i]) != NULL, "summary lacks %s", commands[i]);
    cr_expect(strstr(r.out, "--clip-norm") == NULL, "the summary lists every run option");
    cr_expect_lt(count_lines(r.out), 40);
    cli_result_free(&r);
    const char *bad[] = {"help", "frobnicate", NULL};
    r = cli_run(bad);
    cr_expect_eq(r.exit_code, EXIT_USAGE);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect(strstr(r.err, "frobnicate") != NULL);
    cli_result_free(&r);
}

static void expect_device_array(const char *text)
{
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "bad JSON: %s", text);
    cr_assert(cJSON_IsArray(root));
    cr_assert_geq(cJSON_GetArraySize(root), 1);
    const cJSON *d = cJSON_GetArrayItem(root, 0);
    const char *numbers[] = {"index", "global_mem_bytes", "max_alloc_bytes", "compute_units"};
    const char *strings[] = {"platform", "name", "driver_version", "kind"};
    for (size_t i = 0; i < 4; ++i) {
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(d, numbers[i])), "no number %s", numbers[i]);
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(d, strings[i])), "no string %s", strings[i]);
    }
    cr_expect(cJSON_IsBool(cJSON_GetObjectItem(d, "has_fp64")));
    cr_expect_eq(cJSON_GetObjectItem(d, "index")->valuedouble, 0);
    cr_expect_gt(cJSON_GetObjectItem(d, "compute_units")->valuedouble, 0);
    const char *kind = cJSON_GetObjectItem(d, "kind")->valuestring;
    cr_expect(!strcmp(kind, "CPU") || !strcmp(kind, "GPU") || !strcmp(kind, "other"), "%s", kind);
    cJSON_Delete(root);
}

Test(cli_habits, devices_json_to_stdout_and_to_a_file)
{
    const char *args[] = {"devices", "--json", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    expect_device_array(r.out);
    cli_result_free(&r);
    char *path = path_in(dir, "devices.json");
    const char *to_file[] = {"devices", "--json", path, NULL};
    r = cli_run(to_file);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(r.out[0], '\0', "printed with --json FILE: %s", r.out);
    char *text = read_text(path);
    expect_device_array(text);
    free(text);
    cli_result_free(&r);
    free(path);
    const char *bad[] = {"devices", "--frob", NULL};
    r = cli_run(bad);
    cr_expect_eq(r.exit_code, EXIT_USAGE);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
}
