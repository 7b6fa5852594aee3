/* clopt run's outputs: a checkpoint that cannot be written costs only the checkpoint, a
 * refused run leaves every file as it was, two names for one file are refused, outputs that
 * could not be written at the end are refused at the start, and a checkpoint is never
 * claimed that was not written. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_USAGE 2

static char *dir;
static char *mounted; /* a small tmpfs, when a test made one */

static void setup(void)
{
    dir = temp_dir();
    mounted = NULL;
}

static void teardown(void)
{
    if (mounted) {
        umount(mounted);
        free(mounted);
    }
    remove_tree(dir);
    free(dir);
}

TestSuite(run_outputs, .init = setup, .fini = teardown);

/* A 256 KiB tmpfs under dir: too small for the checkpoint of 10^5 adam parameters (1.2 MB),
 * so every checkpoint write fails with ENOSPC. Skips the test where mounting is not
 * permitted (not root). */
static char *small_filesystem(void)
{
    char *full = path_in(dir, "full");
    cr_assert_eq(mkdir(full, 0700), 0);
    if (mount("tmpfs", full, "tmpfs", 0, "size=256k") != 0) {
        free(full);
        cr_skip_test("cannot mount a tmpfs here (needs root)");
    }
    mounted = full;
    return path_in(full, "ck");
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

Test(run_outputs, a_failed_checkpoint_is_one_line_and_the_outputs_are_written)
{
    char *ck = small_filesystem();
    char *theta = path_in(dir, "theta.npy"), *json = path_in(dir, "res.json"),
         *trace = path_in(dir, "t.csv");
    const char *args[] = {"run",  "--dim",
                          "1e5",  "--iters",
                          "50",   "--optimizer",
                          "adam", "--checkpoint",
                          ck,     "--checkpoint-every",
                          "20",   "--out",
                          theta,  "--json",
                          json,   "--trace",
                          trace,  NULL};
    struct cli_result r = cli_run(args);
    /* Outputs first, then the status says what was lost. */
    cr_expect_eq(r.exit_code, 1, "exit %d: %s", r.exit_code, r.err);
    cr_expect(file_exists(theta), "no --out");
    cr_expect(file_exists(json), "no --json");
    char *rows = read_text(trace);
    cr_expect(strstr(rows, "\n50,") != NULL, "the trace has no row for iteration 50:\n%s", rows);
    cr_expect(strstr(r.out, "iterations  50") != NULL, "no summary: %s", r.out);
    /* One line (the start line aside) that names the cause and says the run went on. */
    const char *line = strstr(r.err, "clopt: error: ");
    cr_expect(line && strstr(line, "No space left on device") && strstr(line, "the run went on") &&
                  !strstr(line + 1, "clopt: error: "),
              "%s", r.err);
    cr_expect_eq(count_lines(r.err), 2, "%s", r.err);
    free(rows);
    cli_result_free(&r);
    free(ck);
    free(theta);
    free(json);
    free(trace);
}

Test(run_outputs, sigterm_with_a_failing_checkpoint_still_exits_143_and_claims_nothing)
{
    char *ck = small_filesystem();
    char *theta = path_in(dir, "theta.npy"), *err = path_in(dir, "err.txt");
    char command[4096];
    snprintf(command, sizeof command,
             "%s run --dim 1e5 --iters 1e9 --optimizer adam --checkpoint %s --out %s "
             "--quiet 2>%s & pid=$!; sleep 1.5; kill -TERM $pid; wait $pid",
             CLOPT_EXE, ck, theta, err);
    const int status = system(command);
    cr_assert(WIFEXITED(status));
    cr_expect_eq(WEXITSTATUS(status), 143);
    cr_expect(file_exists(theta), "no --out after SIGTERM");
    char *text = read_text(err);
    cr_expect(strstr(text, "stopped by SIGTERM") && !strstr(text, "checkpoint written"), "%s",
              text);
    cr_expect(strstr(text, "the run went on") != NULL, "%s", text);
    free(text);
    free(ck);
    free(theta);
    free(err);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* A run refused for a bad option or a checkpoint of another run leaves the trace, --out
 * and --json as they were. */
Test(run_outputs, a_refused_run_leaves_existing_outputs_alone)
{
    char *trace = path_in(dir, "precious.csv"), *out = path_in(dir, "theta.npy"),
         *json = path_in(dir, "res.json"), *ck = path_in(dir, "ck");
    const char *precious = "iteration,loss,grad_norm,lr,seconds\n0,1,1,0.1,0\n1,0.5,1,0.1,0\n";
    write_text(trace, precious);
    write_text(out, "old theta");
    write_text(json, "old json");
    const char *bad[] = {"run",    "--trace", trace,         "--out", out,
                         "--json", json,      "--optimizer", "adamm", NULL};
    struct cli_result r = cli_run(bad);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cli_result_free(&r);
    const char *first[] = {"run",          "--dim", "100",     "--iters", "3",
                           "--checkpoint", ck,      "--quiet", NULL};
    r = cli_run(first);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    const char *other[] = {"run",  "--dim",    "100", "--iters", "6",   "--optimizer",
                           "adam", "--resume", ck,    "--trace", trace, "--out",
                           out,    "--json",   json,  "--quiet", NULL};
    r = cli_run(other);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cli_result_free(&r);
    char *t = read_text(trace), *o = read_text(out), *j = read_text(json);
    cr_expect_str_eq(t, precious);
    cr_expect_str_eq(o, "old theta");
    cr_expect_str_eq(j, "old json");
    free(t);
    free(o);
    free(j);
    free(trace);
    free(out);
    free(json);
    free(ck);
}

/* Two names for one file, among inputs and outputs or two outputs: refused, one line,
 * nothing written. */
Test(run_outputs, aliased_inputs_and_outputs_are_refused)
{
    char *x = path_in(dir, "x.npy"), *link = path_in(dir, "link.npy"), *ck = path_in(dir, "ck"),
         *fresh = path_in(dir, "new.out");
    const float values[4] = {1, 2, 3, 4};
    write_npy(x, values, 4, 0);
    cr_assert_eq(symlink(x, link), 0);
    const char *first[] = {"run",          "--dim", "4",       "--iters", "2",
                           "--checkpoint", ck,      "--quiet", NULL};
    struct cli_result r = cli_run(first);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    char *before = read_text(ck);
    free(before);
    const char *cases[][12] = {
        {"run", "--init", x, "--trace", x, NULL},
        {"run", "--init", x, "--out", link, NULL},
        {"run", "--dim", "4", "--resume", ck, "--trace", ck, NULL},
        {"run", "--dim", "4", "--out", fresh, "--json", fresh, NULL},
        {"run", "--dim", "4", "--checkpoint", fresh, "--trace", fresh, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        r = cli_run(cases[i]);
        cr_expect_eq(r.exit_code, EXIT_USAGE, "case %zu: exit %d: %s", i, r.exit_code, r.err);
        cr_expect_eq(count_lines(r.err), 1, "case %zu: %s", i, r.err);
        cr_expect(strstr(r.err, "same file") != NULL, "case %zu: %s", i, r.err);
        cli_result_free(&r);
    }
    size_t count;
    int is_double;
    double *kept = read_npy_as_double(x, &count, &is_double);
    cr_expect_eq(count, 4);
    cr_expect(kept[3] == 4.0);
    free(kept);
    cr_expect(!file_exists(fresh));
    /* Resuming from and checkpointing to one file is how a run goes on. */
    const char *again[] = {"run", "--dim",        "4", "--iters", "4", "--resume",
                           ck,    "--checkpoint", ck,  "--quiet", NULL};
    r = cli_run(again);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    free(x);
    free(link);
    free(ck);
    free(fresh);
}

/* What would make the write at the end fail makes the run fail at the start. */
Test(run_outputs, outputs_that_cannot_be_written_are_refused_before_the_run)
{
    char name[300];
    memset(name, 'a', 250);
    strcpy(name + 250, ".npy"); /* fits NAME_MAX; with the temporary suffix it does not */
    char *longname = path_in(dir, name);
    const char *flags[] = {"--out", "--checkpoint"};
    for (size_t i = 0; i < 2; ++i) {
        const char *args[] = {"run", "--dim", "10", "--iters", "2", flags[i], longname, NULL};
        struct cli_result r = cli_run(args);
        cr_expect_eq(r.exit_code, EXIT_USAGE, "%s: exit %d: %s", flags[i], r.exit_code, r.err);
        cr_expect(strstr(r.out, "iterations") == NULL, "%s: the run ran: %s", flags[i], r.out);
        cr_expect(strstr(r.err, "too long") != NULL, "%s: %s", flags[i], r.err);
        cli_result_free(&r);
    }
    /* /proc takes no new files, whoever runs this. */
    const char *proc[] = {"run", "--dim", "10", "--iters", "2", "--out", "/proc/clopt.npy", NULL};
    struct cli_result r = cli_run(proc);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cr_expect(strstr(r.out, "iterations") == NULL, "%s", r.out);
    cli_result_free(&r);
    /* Nothing is left behind by the check. */
    char *listing = NULL;
    size_t size = 0;
    FILE *ls = open_memstream(&listing, &size);
    char command[4096];
    snprintf(command, sizeof command, "ls -A %s", dir);
    FILE *p = popen(command, "r");
    int c;
    while ((c = fgetc(p)) != EOF)
        fputc(c, ls);
    pclose(p);
    fclose(ls);
    cr_expect_str_eq(listing, "");
    free(listing);
    free(longname);
}

/* Float adagrad from 1e18: its sum of squared gradients (4e36 a step) passes FLT_MAX after
 * ~85 steps while theta and the loss stay finite. That is not divergence (the run is the
 * same with and without checkpoints), so the checkpoint is written, with +Inf in the state,
 * and a run resumed from it ends where the uninterrupted one does, bit for bit. */
Test(run_outputs, an_overflowed_optimizer_state_is_checkpointed_and_resumes_exactly)
{
    char *ck = path_in(dir, "ck"), *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy");
    const char *whole[] = {"run",     "--dim",  "1000",       "--iters", "200", "--optimizer",
                           "adagrad", "--init", "const:1e18", "--out",   a,     "--quiet",
                           NULL};
    struct cli_result r = cli_run(whole);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    const char *part[] = {"run",     "--dim",  "1000",       "--iters",      "150", "--optimizer",
                          "adagrad", "--init", "const:1e18", "--checkpoint", ck,    "--quiet",
                          NULL};
    r = cli_run(part);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    cr_assert(file_exists(ck), "no checkpoint was written");
    struct clopt_checkpoint_info info;
    char err[256];
    cr_assert_eq(clopt_checkpoint_info(ck, &info, err, sizeof err), CLOPT_OK, "%s", err);
    cr_expect_eq(info.iteration, 150);
    const char *rest[] = {"run",     "--dim",   "1000",       "--iters",  "200", "--optimizer",
                          "adagrad", "--init",  "const:1e18", "--resume", ck,    "--out",
                          b,         "--quiet", NULL};
    r = cli_run(rest);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    size_t na, nb;
    int da, db;
    double *ta = read_npy_as_double(a, &na, &da), *tb = read_npy_as_double(b, &nb, &db);
    cr_assert_eq(na, nb);
    cr_expect(!memcmp(ta, tb, na * sizeof *ta), "the resumed run ends elsewhere");
    free(ta);
    free(tb);
    free(ck);
    free(a);
    free(b);
}

/* Checkpoints are written through a unique temporary name (PATH.tmp-RANDOM, O_EXCL), so
 * two runs sharing a checkpoint path do not write into one temporary file, and a file
 * planted at the old fixed name PATH.tmp is neither used nor harmed. Their races on
 * PATH.prev (a link to a file another run just replaced; two links to one file) neither
 * fail a write nor leave names behind. */
Test(run_outputs, two_runs_sharing_a_checkpoint_path_do_not_collide)
{
    char *ck = path_in(dir, "ck"), *planted = path_in(dir, "ck.tmp"), *err = path_in(dir, "e");
    write_text(planted, "planted");
    char command[4096];
    snprintf(command, sizeof command,
             "pids=; for i in 1 2 3 4; do %s run --dim 1e4 --iters 200 --optimizer adam "
             "--checkpoint %s --checkpoint-every 1 --quiet 2>>%s & pids=\"$pids $!\"; done; "
             "fail=0; for p in $pids; do wait $p || fail=1; done; exit $fail",
             CLOPT_EXE, ck, err);
    const int status = system(command);
    char *text = read_text(err);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", text);
    cr_expect_str_eq(text, "");
    free(text);
    struct clopt_checkpoint_info info;
    char why[256];
    cr_expect_eq(clopt_checkpoint_info(ck, &info, why, sizeof why), CLOPT_OK, "%s", why);
    cr_expect_eq(info.iteration, 200);
    char *p = read_text(planted);
    cr_expect_str_eq(p, "planted");
    free(p);
    /* Nothing but the checkpoint, its previous version, the planted file and the error
     * log is left: no temporary name survives the races. */
    DIR *listing = opendir(dir);
    cr_assert(listing);
    for (struct dirent *entry; (entry = readdir(listing));) {
        const char *name = entry->d_name;
        cr_expect(!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "ck") ||
                      !strcmp(name, "ck.prev") || !strcmp(name, "ck.tmp") || !strcmp(name, "e"),
                  "a file was left behind: %s", name);
    }
    closedir(listing);
    free(ck);
    free(planted);
    free(err);
}
