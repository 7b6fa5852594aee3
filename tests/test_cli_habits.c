/* The clopt command line as people expect it: each command's own help, devices as JSON,
 * the trace on stdout, progress and the fuller summary, tune's unquoted spaces, bench's
 * cache note, the objectives' learning rates and the checkpoint command. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_USAGE 2

TEMP_DIR_SUITE(cli_habits);

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
        {"checkpoint", {"usage: clopt checkpoint info", "export", "--state PREFIX", NULL}},
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
    const char *commands[] = {"devices", "objectives", "run",        "check",
                              "tune",    "bench",      "checkpoint", "help"};
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

Test(cli_habits, trace_to_stdout_keeps_the_summary_out_of_it)
{
    const char *args[] = {"run",    "--dim",   "1000",    "--iters", "5",
                          "--init", "const:1", "--trace", "-",       NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(strncmp(r.out, "iteration,loss,grad_norm,lr,seconds\n", 36), 0, "%s", r.out);
    cr_expect_eq(count_lines(r.out), 7, "stdout should be the trace alone:\n%s", r.out);
    cr_expect(strstr(r.out, "\n0,1000,") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "objective") == NULL, "summary in stdout:\n%s", r.out);
    cr_expect(strstr(r.err, "objective   sphere") != NULL, "summary not on stderr:\n%s", r.err);
    cli_result_free(&r);

    const char *both[] = {"run",     "--dim", "1000",   "--iters", "5",
                          "--trace", "-",     "--json", "-",       NULL};
    r = cli_run(both);
    cr_expect_eq(r.exit_code, EXIT_USAGE);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect(strstr(r.err, "--json -") && strstr(r.err, "--trace -"), "%s", r.err);
    cr_expect_eq(r.out[0], '\0');
    cli_result_free(&r);
}

/* The JSON keeps its first keys in their order and appends the run's details. */
Test(cli_habits, run_json_adds_the_details_after_the_existing_keys)
{
    char *json = path_in(dir, "run.json");
    const char *args[] = {"run",         "--dim",  "1000",      "--iters",    "20",
                          "--optimizer", "adam",   "--beta2",   "0.99",       "--seed",
                          "7",           "--init", "uniform:2", "--schedule", "exp:0.9",
                          "--json",      json,     "--quiet",   NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    char *text = read_text(json);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "bad JSON: %s", text);
    const char *order[] = {"objective",
                           "optimizer",
                           "lr",
                           "n",
                           "precision",
                           "device",
                           "platform",
                           "iterations",
                           "loss",
                           "grad_norm",
                           "stop_reason",
                           "seconds",
                           "bytes_per_iteration",
                           "bytes_per_element",
                           "gbytes_per_second",
                           "shards",
                           "devices",
                           "ranks",
                           "knobs",
                           "knobs_source",
                           "program_cache",
                           "initial_loss",
                           "iterations_per_second",
                           "clopt_version",
                           "driver_version",
                           "seed",
                           "init",
                           "schedule",
                           "hyper_parameters"};
    const cJSON *item = root->child;
    for (size_t i = 0; i < sizeof order / sizeof *order; ++i, item = item ? item->next : NULL)
        cr_assert(item && !strcmp(item->string, order[i]), "key %zu: %s, expected %s", i,
                  item ? item->string : "(end)", order[i]);
    const double initial = cJSON_GetObjectItem(root, "initial_loss")->valuedouble;
    cr_expect_gt(initial, cJSON_GetObjectItem(root, "loss")->valuedouble);
    cr_expect_gt(cJSON_GetObjectItem(root, "iterations_per_second")->valuedouble, 0);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "clopt_version")->valuestring, clopt_version());
    cr_expect_gt(strlen(cJSON_GetObjectItem(root, "driver_version")->valuestring), 0);
    cr_expect_eq(cJSON_GetObjectItem(root, "seed")->valuedouble, 7);
    cr_expect_eq(cJSON_GetObjectItem(root, "ranks")->valuedouble, 1);   /* not under mpirun */
    cr_expect_eq(cJSON_GetObjectItem(root, "devices")->valuedouble, 1); /* no --devices */
    cr_expect_str_eq(cJSON_GetObjectItem(root, "init")->valuestring, "uniform:2");
    cr_expect_str_eq(cJSON_GetObjectItem(root, "schedule")->valuestring, "exp:0.9");
    const cJSON *h = cJSON_GetObjectItem(root, "hyper_parameters");
    cr_expect_eq(cJSON_GetObjectItem(h, "lr")->valuedouble, 1e-3);
    cr_expect_eq(cJSON_GetObjectItem(h, "beta1")->valuedouble, 0.9);
    cr_expect_eq(cJSON_GetObjectItem(h, "beta2")->valuedouble, 0.99);
    cr_expect_eq(cJSON_GetObjectItem(h, "eps")->valuedouble, 1e-8);
    cr_expect_eq(cJSON_GetObjectItem(h, "weight_decay")->valuedouble, 0);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(h, "amsgrad")));
    cr_expect_null(cJSON_GetObjectItem(h, "momentum"), "adam does not read momentum");
    cJSON_Delete(root);
    free(text);
    cli_result_free(&r);

    /* gd: the defaults, schedule "constant", no adam fields. */
    const char *gd[] = {"run", "--dim", "1000", "--iters", "3", "--json", "-", NULL};
    r = cli_run(gd);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    h = cJSON_GetObjectItem(root, "hyper_parameters");
    cr_expect_eq(cJSON_GetObjectItem(h, "lr")->valuedouble, 0.1);
    cr_expect_null(cJSON_GetObjectItem(h, "beta1"));
    cr_expect_str_eq(cJSON_GetObjectItem(root, "schedule")->valuestring, "constant");
    cr_expect_str_eq(cJSON_GetObjectItem(root, "init")->valuestring, "normal:1");
    cJSON_Delete(root);
    cli_result_free(&r);
    free(json);
}

Test(cli_habits, summary_has_initial_loss_and_rate_and_progress_lines_have_eta)
{
    const char *args[] = {"run", "--dim", "1e5", "--iters", "50", "--lr", "0.01", NULL};
    /* A progress line at every evaluation instead of every 2 s. */
    struct cli_result r = cli_run_env(args, "CLOPT_PROGRESS_SECONDS", "0");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "iterations  50 (") && strstr(r.out, " per second)"), "%s", r.out);
    cr_expect(strstr(r.out, "\ninitial     ") != NULL, "no initial loss:\n%s", r.out);
    const char *line = strstr(r.err, "clopt: iteration 25/");
    cr_assert_not_null(line, "no progress line for iteration 25:\n%s", r.err);
    unsigned long long it, total;
    double pct, rate;
    cr_expect_eq(sscanf(line, "clopt: iteration %llu/%llu (%lf %%), %lf it/s, ETA", &it, &total,
                        &pct, &rate),
                 4, "%s", line);
    cr_expect_eq(it, 25);
    cr_expect_eq(total, 50);
    cr_expect_eq(pct, 50.0);
    cr_expect_gt(rate, 0);
    cr_expect(strstr(line, ", ETA ") && strstr(line, " s, loss ") && strstr(line, ", lr 0.01\n"),
              "%s", line);
    cli_result_free(&r);
    /* The default: no line in a run this short. */
    r = cli_run(args);
    cr_expect(strstr(r.err, "clopt: iteration ") == NULL, "%s", r.err);
    cli_result_free(&r);
}

/* Runs clopt with stdout a pipe nobody reads (closed before the start), stderr to err_path;
 * the exit status, or minus the signal that ended it. */
static int run_with_closed_stdout(const char *const *args, const char *err_path)
{
    const char *argv[64] = {CLOPT_EXE};
    size_t n = 1;
    while (args[n - 1] && n < 63) {
        argv[n] = args[n - 1];
        ++n;
    }
    argv[n] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL); /* as a shell leaves it */
        dup2(fds[1], STDOUT_FILENO);
        if (!freopen(err_path, "w", stderr))
            _exit(126);
        setenv("CLOPT_PROGRAM_CACHE", "off", 1);
        execv(CLOPT_EXE, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

Test(cli_habits, tune_space_takes_slashes_and_stores_before_printing)
{
    char *db = path_in(dir, "tuning.json"), *json = path_in(dir, "tune.json");
    const char *args[] = {"tune",   "--dim",  "1000",    "--iters", "4",
                          "--reps", "1",      "--space", "wg=4/16", "--tuning-db",
                          db,       "--json", json,      "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    char *text = read_text(json);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "%s", text);
    const char *knobs = cJSON_GetObjectItem(root, "knobs")->valuestring;
    cr_expect(!strncmp(knobs, "wg=4,", 5) || !strncmp(knobs, "wg=16,", 6), "%s", knobs);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "tuning_db")->valuestring, db);
    cJSON_Delete(root);
    free(text);
    /* The table has both work-group sizes, so the list was split at '/'. */
    cr_expect(strstr(r.out, "\nwg=4,") && strstr(r.out, "\nwg=16,"), "%s", r.out);
    cli_result_free(&r);

    /* stdout closed (as after an unquoted 'wg=4|16'): the choice is stored, and clopt says
     * that it could not print instead of dying of SIGPIPE. */
    remove(db);
    char *err = path_in(dir, "err.txt");
    const char *closed[] = {"tune",   "--dim",   "1000",    "--iters", "4",
                            "--reps", "1",       "--space", "wg=4/16", "--tuning-db",
                            db,       "--quiet", NULL};
    const int status = run_with_closed_stdout(closed, err);
    cr_expect_eq(status, 1, "exit %d (negative: killed by a signal)", status);
    text = read_text(db);
    cr_expect(strstr(text, "\"knobs\"") != NULL, "nothing stored:\n%s", text);
    free(text);
    text = read_text(err);
    cr_expect(strstr(text, "standard output") != NULL, "%s", text);
    free(text);
    free(err);
    free(db);
    free(json);
}

Test(cli_habits, checkpoint_info_and_export)
{
    SKIP_WITHOUT_FP64();
    char *ckpt = path_in(dir, "run.ckpt"), *out = path_in(dir, "theta.npy"),
         *exported = path_in(dir, "exported.npy"), *prefix = path_in(dir, "state"),
         *state1 = path_in(dir, "state1.npy"), *state2 = path_in(dir, "state2.npy");
    const char *run[] = {"run",         "--dim", "1000",        "--iters", "12",
                         "--optimizer", "adam",  "--precision", "double",  "--checkpoint",
                         ckpt,          "--out", out,           "--quiet", NULL};
    struct cli_result r = cli_run(run);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);

    const char *info[] = {"checkpoint", "info", ckpt, NULL};
    r = cli_run(info);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const char *needed[] = {"objective   sphere\n",
                            "optimizer   adam\n",
                            "n           1000 (double)\n",
                            "iteration   12 (12 steps",
                            "theta, state0, state1 (1000 double",
                            "configuration:\n",
                            "  beta2=0.999\n"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; ++i)
        cr_expect(strstr(r.out, needed[i]) != NULL, "info lacks '%s':\n%s", needed[i], r.out);
    cli_result_free(&r);

    const char *json[] = {"checkpoint", "info", ckpt, "--json", "-", NULL};
    r = cli_run(json);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    cr_expect_eq(cJSON_GetObjectItem(root, "iteration")->valuedouble, 12);
    cr_expect_eq(cJSON_GetObjectItem(root, "state_vectors")->valuedouble, 2);
    cr_expect_str_eq(cJSON_GetObjectItem(root, "precision")->valuestring, "double");
    cr_expect_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "optimizer")->valuestring, "adam");
    cJSON_Delete(root);
    cli_result_free(&r);

    const char *export[] = {"checkpoint", "export",  ckpt,   "--out",
                            exported,     "--state", prefix, NULL};
    r = cli_run(export);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    size_t n, m;
    int is_double, state_double;
    double *a = read_npy_as_double(out, &n, &is_double);
    double *b = read_npy_as_double(exported, &m, &state_double);
    cr_assert_eq(n, 1000);
    cr_assert_eq(m, 1000);
    cr_expect(is_double && state_double);
    cr_expect_eq(memcmp(a, b, n * sizeof *a), 0, "exported theta differs from --out");
    free(a);
    free(b);
    /* adam's first moment after 12 steps on a random start is not zero. */
    char *state0 = path_in(dir, "state0.npy");
    double *s0 = read_npy_as_double(state0, &m, &is_double);
    free(state0);
    cr_assert_eq(m, 1000);
    double sum = 0;
    for (size_t i = 0; i < m; ++i)
        sum += fabs(s0[i]);
    cr_expect_gt(sum, 0);
    free(s0);
    double *s1 = read_npy_as_double(state1, &m, &is_double);
    cr_expect_eq(m, 1000);
    free(s1);
    FILE *none = fopen(state2, "rb");
    cr_expect_null(none, "adam has two state vectors, not three");
    if (none)
        fclose(none);
    cli_result_free(&r);

    /* A damaged checkpoint: exit 2, one line naming it. */
    FILE *f = fopen(ckpt, "r+b");
    cr_assert_not_null(f);
    fseek(f, 200, SEEK_SET);
    fputc('X', f);
    fclose(f);
    r = cli_run(info);
    cr_expect_eq(r.exit_code, EXIT_USAGE);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect(strstr(r.err, ckpt) != NULL, "%s", r.err);
    cli_result_free(&r);
    free(ckpt);
    free(out);
    free(exported);
    free(prefix);
    free(state1);
    free(state2);
}

/* n = 1000 fits any last-level cache: the ratio is marked; the JSON says why. */
Test(cli_habits, bench_marks_a_ratio_measured_in_cache)
{
    const char *small[] = {"bench", "--dim", "1000", "--reps", "1", "--iters", "2", NULL};
    struct cli_result r = cli_run(small);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    const int known =
        strstr(r.out, "(working set fits in cache: not a memory-bandwidth figure)") != NULL;
    cli_result_free(&r);
    const char *json[] = {"bench",   "--dim", "1000",   "--reps", "1",
                          "--iters", "2",     "--json", "-",      NULL};
    r = cli_run(json);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    const double cache = cJSON_GetObjectItem(root, "cache_bytes")->valuedouble;
    const double ws = cJSON_GetObjectItem(root, "working_set_bytes")->valuedouble;
    cr_expect_eq(ws, 8000, "gd in float moves 8 bytes per element");
    const cJSON *meaningful = cJSON_GetObjectItem(root, "ratio_meaningful");
    cr_assert(cJSON_IsBool(meaningful));
    /* Where the cache size is known (sysfs on this CPU, or the GPU's), it is marked. */
    cr_expect_eq(cJSON_IsFalse(meaningful), cache > 0, "cache %g, meaningful %d", cache,
                 cJSON_IsTrue(meaningful));
    cr_expect_eq(known, cache > 0, "the text note and the JSON disagree");
    cJSON_Delete(root);
    cli_result_free(&r);
    const char *csv[] = {"bench",   "--dim", "1000",  "--reps", "1",
                         "--iters", "2",     "--csv", "-",      NULL};
    r = cli_run(csv);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_expect(strstr(r.out, ",ratio_meaningful\n") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, cache > 0 ? "\",false\n" : "\",true\n") != NULL, "%s", r.out);
    cli_result_free(&r);
}

/* A working set over twice the cache gives a meaningful ratio. */
Test(cli_habits, bench_ratio_is_meaningful_beyond_the_cache)
{
    const char *json[] = {"bench",   "--dim", "2e7",    "--reps", "1",
                          "--iters", "2",     "--json", "-",      NULL};
    struct cli_result r = cli_run(json);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    const double cache = cJSON_GetObjectItem(root, "cache_bytes")->valuedouble;
    const double ws = cJSON_GetObjectItem(root, "working_set_bytes")->valuedouble;
    cr_expect_eq(ws, 1.6e8);
    cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(root, "ratio_meaningful")),
                 !(cache > 0 && ws <= 2 * cache), "cache %g", cache);
    cJSON_Delete(root);
    cli_result_free(&r);
}

/* Every objective's printed gd learning rate converges: 100 iterations at n = 1000 lower the
 * loss and end normally. */
Test(cli_habits, objectives_print_a_gd_lr_that_converges, .timeout = 120)
{
    const char *list[] = {"objectives", NULL};
    struct cli_result r = cli_run(list);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    char *target = path_in(dir, "target.npy");
    float t[1000];
    for (size_t i = 0; i < 1000; ++i)
        t[i] = (float)i / 500.0f - 1.0f;
    write_npy(target, t, 1000, 0);
    size_t checked = 0;
    /* An objective's name starts a line; its details are indented below it. */
    for (const char *line = r.out; line && *line;) {
        const char *end = strchr(line, '\n');
        char name[64], lr[32];
        if (*line != ' ' && sscanf(line, "%63s", name) == 1) {
            const char *at = strstr(line, "  gd lr: "); /* the first after the name: its own */
            cr_assert_not_null(at, "no 'gd lr' for %s", name);
            cr_assert_eq(sscanf(at, "  gd lr: %31s", lr), 1);
            /* The objectives with a data vector read the same 1000 values. */
            const char *key = !strcmp(name, "shifted_sphere") ? "target"
                              : !strcmp(name, "poisson")      ? "source"
                              : !strcmp(name, "tv_denoise")   ? "image"
                                                              : NULL;
            const int shifted = key != NULL;
            char param[600];
            snprintf(param, sizeof param, "%s=%s", key ? key : "", target);
            const char *args[] = {"run",  "--objective", name,  "--dim",
                                  "1000", "--iters",     "100", "--lr",
                                  lr,     "--json",      "-",   shifted ? "--param" : NULL,
                                  param,  NULL};
            struct cli_result run = cli_run(args);
            cr_expect_eq(run.exit_code, 0, "%s at lr %s: exit %d: %s", name, lr, run.exit_code,
                         run.err);
            cJSON *root = cJSON_Parse(run.out);
            cr_assert_not_null(root, "%s: %s", name, run.out);
            const double first = cJSON_GetObjectItem(root, "initial_loss")->valuedouble,
                         last = cJSON_GetObjectItem(root, "loss")->valuedouble;
            cr_expect_lt(last, first, "%s at lr %s: loss %g -> %g", name, lr, first, last);
            cJSON_Delete(root);
            cli_result_free(&run);
            ++checked;
        }
        line = end ? end + 1 : NULL;
    }
    cr_expect_eq(checked, 10, "objectives checked: %zu", checked);
    cli_result_free(&r);
    free(target);
}
