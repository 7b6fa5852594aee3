/* Checkpoints: exact resumes, refusal of other configurations, detection of every damaged
 * byte, and survival of SIGKILL at any moment. */
#include "testutil.h"

#define CL_TARGET_OPENCL_VERSION 120
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

CONTEXT_TEMP_DIR_SUITE(checkpoint);

#define MAX_ROWS 512

struct trace {
    size_t count;
    uint64_t iteration[MAX_ROWS];
    double loss[MAX_ROWS], grad_norm[MAX_ROWS], lr[MAX_ROWS];
};

static int record(void *user, const struct clopt_progress *p)
{
    struct trace *t = user;
    if (t->count < MAX_ROWS) {
        t->iteration[t->count] = p->iteration;
        t->loss[t->count] = p->loss;
        t->grad_norm[t->count] = p->grad_norm;
        t->lr[t->count] = p->lr;
        ++t->count;
    }
    return 0;
}

static struct clopt_options options(const char *optimizer, size_t n, uint64_t iters,
                                    struct trace *t)
{
    struct clopt_options o;
    clopt_options_init(&o);
    static const struct clopt_param cond = {"cond", "10"};
    o.objective = "ellipsoid";
    o.params = &cond;
    o.n_params = 1;
    o.dim = n;
    o.optimizer = optimizer;
    o.lr = 0.05;
    o.schedule = "cosine:40";
    o.max_iters = iters;
    o.loss_every = 3;
    o.seed = 8;
    /* Small tiles, so that a run can be split into shards without changing them. */
    o.knobs = (struct clopt_knobs){.work_group = 1, .elems_per_item = 64};
    o.progress = record;
    o.progress_user = t;
    return o;
}

/* theta and every state vector, one after the other. */
static double *vectors(struct clopt_solver *s, size_t n)
{
    const size_t k = clopt_solver_state_count(s);
    double *v = malloc((k + 1) * n * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(clopt_solver_read_theta(s, v, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    for (size_t i = 0; i < k; ++i)
        cr_assert_eq(clopt_solver_read_state(s, i, v + (i + 1) * n, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    return v;
}

/* 40 iterations straight, and 17 + a resume to 40 (on five shards the second time):
 * theta, the state and every reported loss bit for bit. */
Test(checkpoint, a_resumed_run_continues_bit_for_bit)
{
    /* "amsgrad" is adam with three state vectors: the most sections a checkpoint has. */
    const char *optimizers[] = {"gd", "momentum", "adam", "amsgrad"};
    const size_t n = 1000 + 7;
    char *path = path_in(dir, "run.ckp");
    for (size_t k = 0; k < sizeof optimizers / sizeof *optimizers; ++k) {
        static struct trace whole, first, second;
        memset(&whole, 0, sizeof whole);
        memset(&first, 0, sizeof first);
        memset(&second, 0, sizeof second);
        const int amsgrad = !strcmp(optimizers[k], "amsgrad");
        const char *name = amsgrad ? "adam" : optimizers[k];
        struct clopt_options o = options(name, n, 40, &whole);
        o.amsgrad = amsgrad;
        struct clopt_solver *s = NULL;
        struct clopt_result r;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
        double *expected = vectors(s, n);
        clopt_solver_destroy(s);

        o = options(name, n, 17, &first);
        o.amsgrad = amsgrad;
        o.checkpoint = path;
        o.checkpoint_every = 5;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
        cr_assert_eq(r.iterations, 17);
        clopt_solver_destroy(s);

        o = options(name, n, 40, &second);
        o.amsgrad = amsgrad;
        o.max_shard_bytes = 256 * sizeof(float);
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
        cr_assert_eq(r.iterations, 40);
        cr_assert_geq(r.shards, 4);
        double *got = vectors(s, n);
        const size_t count = (clopt_solver_state_count(s) + 1) * n;
        clopt_solver_destroy(s);
        for (size_t i = 0; i < count; ++i)
            cr_assert(!memcmp(&got[i], &expected[i], sizeof got[i]),
                      "%s: element %zu of theta|state: %.17g vs %.17g", optimizers[k], i, got[i],
                      expected[i]);
        /* The two traces together are the whole one. */
        cr_assert_eq(first.count + second.count, whole.count, "%s: %zu + %zu rows vs %zu",
                     optimizers[k], first.count, second.count, whole.count);
        for (size_t i = 0; i < whole.count; ++i) {
            const struct trace *t = i < first.count ? &first : &second;
            const size_t j = i < first.count ? i : i - first.count;
            cr_assert_eq(t->iteration[j], whole.iteration[i], "%s row %zu", optimizers[k], i);
            cr_assert(!memcmp(&t->loss[j], &whole.loss[i], sizeof(double)) &&
                          !memcmp(&t->grad_norm[j], &whole.grad_norm[i], sizeof(double)) &&
                          !memcmp(&t->lr[j], &whole.lr[i], sizeof(double)),
                      "%s row %zu (iteration %llu) differs", optimizers[k], i,
                      (unsigned long long)whole.iteration[i]);
        }
        free(expected);
        free(got);
    }
    free(path);
}

Test(checkpoint, another_configuration_is_refused_naming_the_difference)
{
    char *path = path_in(dir, "adam.ckp");
    struct trace t = {0};
    struct clopt_options o = options("adam", 100, 4, &t);
    o.checkpoint = path;
    struct clopt_solver *s = NULL;
    struct clopt_result r;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    struct {
        const char *optimizer;
        size_t n;
        double beta2;
        const char *pattern;
    } cases[] = {
        /* gd takes no beta2: NAN leaves it unset, as it must be. */
        {"gd", 100, NAN, "optimizer=adam but this run has optimizer=gd"},
        {"adam", 101, 0.999, "dim=100 but this run has dim=101"},
        {"adam", 100, 0.99, "beta2=0.999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        o = options(cases[i].optimizer, cases[i].n, 4, &t);
        o.beta2 = cases[i].beta2;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_expect_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG);
        cr_expect(strstr(clopt_errmsg(ctx), cases[i].pattern) != NULL, "case %zu: %s", i,
                  clopt_errmsg(ctx));
        clopt_solver_destroy(s);
    }
    /* The learning rate may change: a diverged run goes on more carefully. */
    o = options("adam", 100, 8, &t);
    o.lr = 0.001;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    free(path);
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    unsigned char *data = malloc(*size);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

static void spill(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

Test(checkpoint, every_changed_byte_and_every_truncation_is_detected)
{
    char *path = path_in(dir, "small.ckp"), *bad = path_in(dir, "bad.ckp");
    struct trace t = {0};
    struct clopt_options o = options("adam", 5, 6, &t);
    o.checkpoint = path;
    struct clopt_solver *s = NULL;
    struct clopt_result r;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    size_t size;
    unsigned char *data = slurp(path, &size);
    o.checkpoint = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    const unsigned char flips[] = {0x01, 0x80, 0xFF};
    size_t missed = 0;
    for (size_t i = 0; i < size; ++i)
        for (size_t k = 0; k < sizeof flips; ++k) {
            data[i] ^= flips[k];
            spill(bad, data, size);
            data[i] ^= flips[k];
            const int status = clopt_solver_resume(s, bad);
            if (status != CLOPT_ERR_BAD_FILE && missed++ < 5)
                cr_log_error("byte %zu ^ 0x%02x: status %d (%s)", i, flips[k], status,
                             clopt_errmsg(ctx));
        }
    for (size_t length = 0; length < size; ++length) {
        spill(bad, data, length);
        const int status = clopt_solver_resume(s, bad);
        if (status != CLOPT_ERR_BAD_FILE && missed++ < 5)
            cr_log_error("truncated to %zu bytes: status %d", length, status);
    }
    cr_expect_eq(missed, 0, "%zu damaged files were not refused (of %zu bytes)", missed, size);
    /* One byte appended is damage too. */
    unsigned char *longer = malloc(size + 1);
    cr_assert_not_null(longer);
    memcpy(longer, data, size);
    longer[size] = 0;
    spill(bad, longer, size + 1);
    cr_expect_eq(clopt_solver_resume(s, bad), CLOPT_ERR_BAD_FILE);
    clopt_solver_destroy(s);
    free(longer);
    free(data);
    free(path);
    free(bad);
}

/* The iteration of the checkpoint at path; UINT64_MAX when there is none. */
static uint64_t checkpoint_iteration(const char *path)
{
    static struct clopt_checkpoint_info info;
    return clopt_checkpoint_info(path, &info, NULL, 0) == CLOPT_OK ? info.iteration : UINT64_MAX;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The identity of the file at path (a new checkpoint is renamed in: a new inode). */
static int file_changed(const char *path, struct stat *last)
{
    struct stat now;
    if (stat(path, &now) != 0)
        return 0;
    const int changed = now.st_ino != last->st_ino || now.st_mtim.tv_sec != last->st_mtim.tv_sec ||
                        now.st_mtim.tv_nsec != last->st_mtim.tv_nsec ||
                        now.st_size != last->st_size;
    *last = now;
    return changed;
}

#define SIGKILL_LANDED 40 /* kills after the run had made progress */
#define SIGKILL_EARLY 10  /* kills at a random moment of start-up or the resume's reading */
#define SIGKILL_RESUMES (SIGKILL_LANDED + SIGKILL_EARLY)

/* SIGKILL at random moments of a run with frequent checkpoints: every time, --resume from
 * what is on disk continues from a later iteration than the resume before it (never from
 * scratch, never from a vanished checkpoint), the checkpoint it continues from holds the
 * uninterrupted run's theta at that iteration, and the run finally ends on the theta of
 * the uninterrupted one.
 * Kills are timed by the run's progress, not the clock: most land a random moment after
 * the resumed run has written a checkpoint of its own, so every one of them moves the run
 * on however slow the machine is (kills timed from the start once landed before the
 * first checkpoint whenever start-up took longer than under an idle machine, and the run
 * never got anywhere). */
Test(checkpoint, sigkill_at_random_moments_loses_nothing, .timeout = 900)
{
    char *ckpt = path_in(dir, "kill.ckp"), *full = path_in(dir, "full.npy"),
         *out = path_in(dir, "out.npy"), *prev = path_in(dir, "kill.ckp.prev");
    char iters_text[32];
    const char *base[] = {"run",  "--dim",   "20000", "--optimizer",  "adam", "--lr",
                          "0.01", "--iters", "40000", "--loss-every", "7",    "--quiet"};
    const size_t n_base = sizeof base / sizeof *base, iters_at = 8;
    const char *args[32];
    memcpy(args, base, sizeof base);
    args[n_base] = "--out";
    args[n_base + 1] = full;
    args[n_base + 2] = NULL;
    struct cli_result whole = cli_run(args);
    cr_assert_eq(whole.exit_code, 0, "%s", whole.err);
    cli_result_free(&whole);

    uint64_t resumed_at[SIGKILL_RESUMES + 1];
    char *resumed_theta[SIGKILL_RESUMES + 1];
    size_t resumes = 0, landed = 0, early = 0;
    uint64_t last = 0; /* the iteration the last resume started from */
    srand(77);
    int completed = 0;
    double to_progress = 0.5; /* seconds from a start to its first checkpoint, last seen */
    for (int attempt = 0; attempt < 400 && !completed; ++attempt) {
        const int have = access(ckpt, F_OK) == 0;
        cr_assert(have || resumes == 0, "the checkpoint vanished after %zu resumes", resumes);
        size_t k = n_base;
        args[k++] = "--checkpoint";
        args[k++] = ckpt;
        args[k++] = "--checkpoint-every";
        args[k++] = "50";
        args[k++] = "--out";
        args[k++] = out;
        uint64_t from = 0;
        if (have) {
            from = checkpoint_iteration(ckpt);
            cr_assert_neq(from, UINT64_MAX, "the checkpoint left by a kill is unreadable");
            /* A kill after progress must have moved the run on; an early one may not. */
            cr_assert(resumes == 0 || from >= last, "resume %zu starts at %llu, before %llu",
                      resumes, (unsigned long long)from, (unsigned long long)last);
            args[k++] = "--resume";
            args[k++] = ckpt;
            if (resumes == 0 || from > last) {
                char name[32];
                snprintf(name, sizeof name, "at%zu.npy", resumes);
                resumed_theta[resumes] = path_in(dir, name);
                char why[256];
                cr_assert_eq(
                    clopt_checkpoint_export(ckpt, resumed_theta[resumes], NULL, why, sizeof why),
                    CLOPT_OK, "%s", why);
                resumed_at[resumes++] = from;
                cr_assert_leq(resumes, SIGKILL_RESUMES);
            }
            last = from;
        }
        args[k] = NULL;
        const int kill_early = early < SIGKILL_EARLY && attempt % 5 == 4;
        const int kill_late = !kill_early && landed < SIGKILL_LANDED;
        const pid_t pid = cli_spawn(args);
        struct stat seen = {0};
        file_changed(ckpt, &seen);
        int rc = CLI_RUNNING;
        const double started = now_seconds();
        if (kill_early) {
            /* Anywhere in start-up, the reading of the checkpoint or the first steps: up
             * to the time the last run took to write its first checkpoint, whatever the
             * machine's load made that. */
            sleep_seconds(to_progress * rand() / ((double)RAND_MAX + 1.0));
            kill(pid, SIGKILL);
        } else if (kill_late) {
            /* Wait until the run has written a checkpoint past its start, then kill it a
             * random moment later (up to a few checkpoints on, mid-write included). */
            while ((rc = cli_wait(pid, 0)) == CLI_RUNNING) {
                if (file_changed(ckpt, &seen)) {
                    const uint64_t now = checkpoint_iteration(ckpt);
                    cr_assert(now == UINT64_MAX || !have || now >= from,
                              "a resumed run wrote iteration %llu, before its start %llu: it "
                              "started from scratch",
                              (unsigned long long)now, (unsigned long long)from);
                    if (now != UINT64_MAX && (!have || now > from)) {
                        to_progress = now_seconds() - started;
                        sleep_seconds(0.02 * rand() / ((double)RAND_MAX + 1.0));
                        kill(pid, SIGKILL);
                        break;
                    }
                }
                sleep_seconds(0.0005);
            }
        }
        if (rc == CLI_RUNNING)
            rc = cli_wait(pid, 1);
        if (rc == -SIGKILL) {
            landed += kill_late;
            early += kill_early;
            continue;
        }
        cr_assert_eq(rc, 0, "attempt %d ended with %d", attempt, rc);
        completed = 1;
    }
    cr_assert(completed, "the run never completed (%zu kills after progress, %zu early)", landed,
              early);
    cr_expect_eq(landed, SIGKILL_LANDED, "only %zu kills after progress landed", landed);
    cr_expect_eq(early, SIGKILL_EARLY, "only %zu early kills landed", early);
    cr_expect_geq(resumes, SIGKILL_LANDED, "only %zu resumes moved on", resumes);
    size_t n1, n2;
    int d1, d2;
    double *a = read_npy_as_double(full, &n1, &d1), *b = read_npy_as_double(out, &n2, &d2);
    cr_assert_eq(n1, n2);
    for (size_t i = 0; i < n1; ++i)
        cr_assert(!memcmp(&a[i], &b[i], sizeof a[i]), "theta[%zu]: %.9g vs %.9g at the end", i,
                  a[i], b[i]);
    free(b);
    /* Each point a resume continued from is the uninterrupted run's theta at that
     * iteration: the run stopped there by its iteration limit instead. */
    args[n_base] = "--out";
    args[n_base + 1] = out;
    args[n_base + 2] = NULL;
    args[iters_at] = iters_text;
    for (size_t r = 0; r < resumes; ++r) {
        snprintf(iters_text, sizeof iters_text, "%llu", (unsigned long long)resumed_at[r]);
        struct cli_result ref = cli_run(args);
        cr_assert_eq(ref.exit_code, 0, "%s", ref.err);
        cli_result_free(&ref);
        double *c = read_npy_as_double(resumed_theta[r], &n1, &d1);
        b = read_npy_as_double(out, &n2, &d2);
        cr_assert_eq(n1, n2);
        for (size_t i = 0; i < n1; ++i)
            cr_assert(!memcmp(&c[i], &b[i], sizeof c[i]),
                      "resume %zu from iteration %llu: theta[%zu] %.9g, uninterrupted %.9g", r,
                      (unsigned long long)resumed_at[r], i, c[i], b[i]);
        free(b);
        free(c);
        free(resumed_theta[r]);
    }
    free(a);
    free(prev);
    free(ckpt);
    free(full);
    free(out);
}

/* SIGINT and SIGTERM: a checkpoint, the summary, and the shell's status. */
Test(checkpoint, sigint_and_sigterm_checkpoint_and_exit_130_and_143)
{
    char *ckpt = path_in(dir, "sig.ckp");
    const int signals[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < 2; ++i) {
        remove(ckpt);
        const char *args[] = {"run",          "--dim", "100000",  "--iters", "100000000",
                              "--checkpoint", ckpt,    "--quiet", NULL};
        const int rc = cli_run_and_signal(args, 1.0, signals[i]);
        cr_expect_eq(rc, 128 + signals[i], "signal %d: exit %d", signals[i], rc);
        cr_expect_eq(access(ckpt, F_OK), 0, "signal %d: no checkpoint", signals[i]);
    }
    free(ckpt);
}

/* A diverged run's checkpoint holds the last finite iterate, from which a run with a
 * smaller learning rate can go on. */
Test(checkpoint, a_diverged_run_checkpoints_its_last_finite_theta)
{
    char *path = path_in(dir, "diverged.ckp");
    struct trace t = {0};
    struct clopt_options o = options("gd", 100, 200, &t);
    o.lr = 0.3; /* above 2 / (2 cond) = 0.1: the ellipsoid blows up */
    o.loss_every = 1;
    o.checkpoint = path;
    o.checkpoint_every = 4;
    struct clopt_solver *s = NULL;
    struct clopt_result r;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_ERR_DIVERGED);
    cr_assert(isfinite(r.loss));
    double *kept = vectors(s, 100);
    clopt_solver_destroy(s);
    o.lr = 0.01;
    o.checkpoint = NULL;
    o.checkpoint_every = 0;
    o.max_iters = r.iterations;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    double *loaded = vectors(s, 100);
    for (size_t i = 0; i < 100; ++i)
        cr_assert(!memcmp(&kept[i], &loaded[i], sizeof kept[i]), "theta[%zu]", i);
    /* Nothing left to do at the same iteration limit; with more, it goes on, finite. */
    struct clopt_result again;
    cr_assert_eq(clopt_solver_run(s, &again), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    cr_expect_eq(again.iterations, r.iterations);
    clopt_solver_destroy(s);
    free(kept);
    free(loaded);
    free(path);
}

/* The first four columns of a trace file (the last is wall time). */
static char *trace_columns(const char *path)
{
    size_t size;
    unsigned char *data = slurp(path, &size);
    char *out = malloc(size + 1);
    cr_assert_not_null(out);
    size_t o = 0;
    int comma = 0;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == '\n')
            comma = 0;
        else if (data[i] == ',' && ++comma == 4)
            continue;
        if (comma < 4)
            out[o++] = (char)data[i];
    }
    out[o] = '\0';
    free(data);
    return out;
}

/* Through the CLI: the trace of a run stopped at N and resumed to 2N is the trace of a run
 * to 2N, whether N is on the --loss-every grid or not. */
Test(checkpoint, cli_trace_of_a_resumed_run_is_the_whole_trace)
{
    char *whole = path_in(dir, "whole.csv"), *parts = path_in(dir, "parts.csv"),
         *ckpt = path_in(dir, "cli.ckp");
    const char *halves[] = {"20", "21"};
    for (size_t k = 0; k < 2; ++k) {
        remove(parts);
        remove(ckpt);
        const char *full[] = {"run",  "--dim",      "5000",      "--optimizer",  "adam", "--lr",
                              "0.05", "--schedule", "cosine:42", "--loss-every", "3",    "--iters",
                              "42",   "--trace",    whole,       "--quiet",      NULL};
        struct cli_result r = cli_run(full);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
        const char *first[] = {"run",       "--dim",        "5000", "--optimizer",
                               "adam",      "--lr",         "0.05", "--schedule",
                               "cosine:42", "--loss-every", "3",    "--iters",
                               halves[k],   "--trace",      parts,  "--checkpoint",
                               ckpt,        "--quiet",      NULL};
        r = cli_run(first);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
        const char *second[] = {"run",      "--dim",   "5000",       "--optimizer", "adam",
                                "--lr",     "0.05",    "--schedule", "cosine:42",   "--loss-every",
                                "3",        "--iters", "42",         "--trace",     parts,
                                "--resume", ckpt,      "--quiet",    NULL};
        r = cli_run(second);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
        char *a = trace_columns(whole), *b = trace_columns(parts);
        cr_expect_str_eq(b, a, "stopped at %s", halves[k]);
        free(a);
        free(b);
    }
    free(whole);
    free(parts);
    free(ckpt);
}
