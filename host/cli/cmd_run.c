/* clopt run: minimise an objective; theta, trace, checkpoints and the summary. */
#include "args.h"
#include "commands.h"
#include "outputs.h"
#include "ranks.h"
#include "resume_options.h"
#include "report.h"
#include "setup.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_CHUNK ((size_t)1 << 22)
#define PROGRESS_SECONDS 2.0

struct progress_state {
    FILE *trace;
    int quiet;
    uint64_t max_iters;
    double progress_seconds; /* between progress lines */
    double last_print;
    int started;              /* the first evaluation of this run was seen: */
    uint64_t first_iteration; /* its iteration (not 0 after a resume) */
    double first_seconds, initial_loss;
    int trace_failed;
    int traced;           /* some row was written */
    uint64_t last_traced; /* its iteration */
    /* A resumed run's trace is made ready at its first row, whose iteration says which
     * rows of the earlier runs stay (see open_resumed_trace). */
    const char *resume_trace;
    uint64_t loss_every;
};

/* The trace of a resumed run, at its first row. */
static void open_trace_at(struct progress_state *ps, uint64_t first)
{
    ps->trace = open_resumed_trace(ps->resume_trace, first, ps->loss_every);
    if (ps->trace)
        setvbuf(ps->trace, NULL, _IOLBF, 0); /* whole rows reach the file as they come */
    else
        ps->trace_failed = 1;
    ps->resume_trace = NULL;
}

/* "iteration 1300/20000 (6.5 %), 812 it/s, ETA 21 s, loss ..., |g| ..., lr ..." */
static void print_progress(const struct progress_state *ps, const struct clopt_progress *p)
{
    const double seconds = p->seconds - ps->first_seconds;
    const double rate = seconds > 0 ? (double)(p->iteration - ps->first_iteration) / seconds : 0;
    fprintf(stderr, "clopt: iteration %llu/%llu (%.1f %%), %.0f it/s, ",
            (unsigned long long)p->iteration, (unsigned long long)ps->max_iters,
            ps->max_iters ? 100.0 * (double)p->iteration / (double)ps->max_iters : 100.0, rate);
    if (rate > 0 && ps->max_iters >= p->iteration)
        fprintf(stderr, "ETA %.0f s, ", (double)(ps->max_iters - p->iteration) / rate);
    fprintf(stderr, "loss %.6e, |g| %.6e, lr %.6g\n", p->loss, p->grad_norm, p->lr);
}

static int on_progress(void *user, const struct clopt_progress *p)
{
    struct progress_state *ps = user;
    if (!ps->started) {
        ps->started = 1;
        ps->first_iteration = p->iteration;
        ps->first_seconds = p->seconds;
        ps->initial_loss = p->loss;
    }
    if (ps->resume_trace)
        open_trace_at(ps, p->iteration);
    if (ps->trace &&
        fprintf(ps->trace, "%llu,%.17g,%.17g,%.17g,%.6f\n", (unsigned long long)p->iteration,
                p->loss, p->grad_norm, p->lr, p->seconds) < 0)
        ps->trace_failed = 1;
    ps->traced = 1;
    ps->last_traced = p->iteration;
    if (!ps->quiet && p->seconds - ps->last_print >= ps->progress_seconds) {
        print_progress(ps, p);
        ps->last_print = p->seconds;
    }
    return 0;
}

/* Seconds between progress lines: CLOPT_PROGRESS_SECONDS (0: every evaluation), else 2. */
static double progress_seconds(void)
{
    const char *env = getenv("CLOPT_PROGRESS_SECONDS");
    double v;
    const char *why;
    if (env && *env && clopt_parse_double(env, &v, &why) == 0 && v >= 0)
        return v;
    return PROGRESS_SECONDS;
}

/* "(3, 93, 5)" from a file's shape or an options shape (whichever is not NULL). */
static void shape_text(size_t n_axes, const uint64_t *file, const size_t *opts, char *text,
                       size_t size)
{
    size_t used = 0;
    text[0] = '\0';
    for (size_t k = 0; k < n_axes && used < size; ++k) {
        const int w = snprintf(text + used, size - used, "%s%llu", k ? ", " : "(",
                               (unsigned long long)(file ? file[k] : opts[k]));
        used += w > 0 ? (size_t)w : 0;
    }
    if (used < size)
        snprintf(text + used, size - used, "%s", n_axes == 1 ? ",)" : ")");
}

static int same_shape(const struct clopt_npy_info *info, const struct clopt_options *o)
{
    if (info->n_axes != o->n_axes)
        return 0;
    for (size_t k = 0; k < o->n_axes; ++k)
        if (info->shape[k] != o->shape[k])
            return 0;
    return 1;
}

/* Opens an .npy and checks it against --dim and --shape (a flat file of the grid's size is
 * taken as the grid in C order); fills the dimension when it was not given. */
static int open_init_file(struct run_args *a, FILE **file, struct clopt_npy_info *info)
{
    char err[256];
    *file = open_input_file(a->init_file, err, sizeof err);
    if (!*file) {
        print_error("cannot open --init file '%s': %s", a->init_file, err);
        return EXIT_USAGE;
    }
    int status = clopt_npy_read_header(*file, info, err, sizeof err);
    if (status != CLOPT_OK) {
        print_error("--init file '%s': %s", a->init_file, err);
        return EXIT_USAGE;
    }
    if (info->count > ((uint64_t)1 << 48)) {
        print_error("--init file '%s': %llu elements is more than clopt supports", a->init_file,
                    (unsigned long long)info->count);
        return EXIT_USAGE;
    }
    if (a->shape_given && info->n_axes > 1 && !same_shape(info, &a->opts)) {
        char file_shape[96], grid_shape[96];
        shape_text(info->n_axes, info->shape, NULL, file_shape, sizeof file_shape);
        shape_text(a->opts.n_axes, NULL, a->opts.shape, grid_shape, sizeof grid_shape);
        print_error("--init file '%s' has shape %s but --shape is %s: save the file in that "
                    "shape (or flat)",
                    a->init_file, file_shape, grid_shape);
        return EXIT_USAGE;
    }
    if (a->dim_given && info->count != a->opts.dim) {
        print_error("--init file '%s' holds %llu elements but %s is %zu", a->init_file,
                    (unsigned long long)info->count, a->shape_given ? "--shape's product" : "--dim",
                    a->opts.dim);
        return EXIT_USAGE;
    }
    a->opts.dim = (size_t)info->count;
    /* --out keeps the file's shape (a grid stays a grid); a vector needs none. */
    if (info->n_axes > 1 && !a->shape_given) {
        a->opts.n_axes = info->n_axes;
        for (size_t k = 0; k < info->n_axes; ++k)
            a->opts.shape[k] = (size_t)info->shape[k];
    }
    return 0;
}

/* Without --dim or an --init file, a data file parameter (shifted_sphere's target) sets n.
 * A file that cannot be read is left for the library to report. */
static void dim_from_data_file(struct run_args *a)
{
    for (size_t i = 0; i < a->opts.n_params; ++i) {
        const char *value = a->params[i].value;
        if (!value || !ends_with(value, ".npy"))
            continue;
        char why[128];
        FILE *f = open_input_file(value, why, sizeof why);
        struct clopt_npy_info info;
        if (f && clopt_npy_read_header(f, &info, NULL, 0) == CLOPT_OK &&
            info.count <= ((uint64_t)1 << 48))
            a->opts.dim = (size_t)info.count;
        if (f)
            fclose(f);
        return;
    }
}

/* Index of the first value that is not finite, or that overflows the run's precision;
 * n when all are fine. */
static size_t first_bad_value(const void *values, enum clopt_precision dtype, size_t n,
                              enum clopt_precision precision)
{
    for (size_t k = 0; k < n; ++k) {
        const double v =
            dtype == CLOPT_DOUBLE ? ((const double *)values)[k] : ((const float *)values)[k];
        if (!isfinite(v) || (precision == CLOPT_FLOAT && fabs(v) > FLT_MAX))
            return k;
    }
    return n;
}

static int load_init_file(struct clopt_solver *solver, struct clopt_context *ctx, FILE *file,
                          const struct clopt_npy_info *info, const char *path,
                          enum clopt_precision precision)
{
    const size_t item = info->dtype == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    void *buffer = malloc(IO_CHUNK * item);
    int rc = 0;
    if (!buffer) {
        print_error("out of host memory reading '%s'", path);
        return EXIT_FAILURE;
    }
    for (uint64_t done = 0; done < info->count && !rc;) {
        size_t n = info->count - done < IO_CHUNK ? (size_t)(info->count - done) : IO_CHUNK;
        if (fread(buffer, item, n, file) != n) {
            print_error("--init file '%s': read failed after %llu elements", path,
                        (unsigned long long)done);
            rc = EXIT_USAGE;
            break;
        }
        const size_t bad = first_bad_value(buffer, info->dtype, n, precision);
        if (bad < n) {
            const double v = info->dtype == CLOPT_DOUBLE ? ((const double *)buffer)[bad]
                                                         : ((const float *)buffer)[bad];
            print_error("--init file '%s': element %llu is %g, which is not a finite %s", path,
                        (unsigned long long)(done + bad), v,
                        precision == CLOPT_DOUBLE ? "double" : "float");
            rc = EXIT_USAGE;
            break;
        }
        int status = clopt_solver_write_theta(solver, buffer, info->dtype, (size_t)done, n);
        if (status != CLOPT_OK) {
            print_library_error(NULL, clopt_errmsg(ctx));
            rc = exit_code_for(status, 0);
        }
        done += n;
    }
    free(buffer);
    return rc;
}

/* --out: the library writes it atomically (see clopt_solver_save_theta). */
static int write_theta_file(struct clopt_solver *solver, struct clopt_context *ctx,
                            const char *path, enum clopt_precision precision)
{
    if (clopt_solver_save_theta(solver, path, precision) == CLOPT_OK)
        return 0;
    print_error("--out: %s", clopt_errmsg(ctx));
    return EXIT_FAILURE;
}

/* The signal that asked the run to stop (SIGINT or SIGTERM), 0 while none has. The run
 * loop polls it between iterations; the handler resets itself, so a second signal ends the
 * process at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signo)
{
    stop_signal = signo;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Everything one run holds, released by run_cleanup. */
struct run_state {
    struct run_args a;
    struct clopt_context *ctx;
    struct clopt_solver *solver;
    FILE *init_file;
    struct clopt_npy_info info;
    struct progress_state ps;
    int user_objective; /* files the user named (an objective, a kernel directory) */
};

/* Checks the flags and the files named before any work; 0 or the exit status. */
static int check_run_inputs(struct run_state *st)
{
    struct run_args *a = &st->a;
    int rc;
    if (a->json_path && a->trace_path && !strcmp(a->json_path, "-") &&
        !strcmp(a->trace_path, "-")) {
        print_error("--json - and --trace - would both write to stdout: send one to a file");
        return EXIT_USAGE;
    }
    if (a->reps || a->csv_path) {
        print_error("%s is an option of clopt bench", a->reps ? "--reps" : "--csv");
        return EXIT_USAGE;
    }
    if (a->space || a->budget > 0) {
        print_error("%s is an option of clopt tune", a->space ? "--space" : "--budget");
        return EXIT_USAGE;
    }
    /* A resumed run takes theta from its checkpoint; an --init file only sets n. */
    if (a->init_file && (rc = open_init_file(a, &st->init_file, &st->info)) != 0)
        return rc;
    if (a->resume_path && access(a->resume_path, R_OK) != 0) {
        print_error("--resume '%s': %s", a->resume_path, strerror(errno));
        return EXIT_USAGE;
    }
    if (!a->dim_given && !a->init_file)
        dim_from_data_file(a);
    return check_run_outputs(a);
}

/* Opens the --trace file, once the run is accepted: a refused run leaves it as it was. A
 * resumed run continues the trace of the run it resumes, from its first row on. */
static int open_trace(struct run_state *st)
{
    struct run_args *a = &st->a;
    if (!a->trace_path)
        return 0;
    if (!strcmp(a->trace_path, "-")) {
        if (fprintf(stdout, "iteration,loss,grad_norm,lr,seconds\n") < 0)
            return EXIT_FAILURE;
        st->ps.trace = stdout;
        return 0;
    }
    if (a->resume_path) {
        st->ps.resume_trace = a->trace_path;
        st->ps.loss_every = a->opts.loss_every;
        return 0;
    }
    st->ps.trace = open_fresh_trace(a->trace_path);
    if (!st->ps.trace) {
        print_error("cannot write --trace file '%s': %s", a->trace_path, strerror(errno));
        return EXIT_FAILURE;
    }
    /* Whole rows reach the file as they come: a killed run leaves a usable trace. */
    setvbuf(st->ps.trace, NULL, _IOLBF, 0);
    return 0;
}

/* Creates the solver and gives it theta: from the checkpoint, an --init file or the
 * initialiser. */
static int start_solver(struct run_state *st)
{
    struct run_args *a = &st->a;
    struct muted muted = mute_driver_output(a->quiet);
    int status = clopt_solver_create(&st->solver, st->ctx, &a->opts);
    restore_driver_output(muted);
    if (status == CLOPT_ERR_INVALID_ARG && !a->knobs_given &&
        strncmp(a->knob_source, "tuning", 6) == 0) {
        /* Knobs this build no longer accepts: the defaults still run. */
        char *why = cli_flag_names(clopt_errmsg(st->ctx));
        fprintf(stderr,
                "clopt: warning: the tuning database's knobs were refused (%s); using "
                "the built-in knobs\n",
                why ? why : clopt_errmsg(st->ctx));
        free(why);
        memset(&a->opts.knobs, 0, sizeof a->opts.knobs);
        snprintf(a->knob_source, sizeof a->knob_source, "built-in defaults");
        muted = mute_driver_output(a->quiet);
        status = clopt_solver_create(&st->solver, st->ctx, &a->opts);
        restore_driver_output(muted);
    }
    const char *knob_warning = status == CLOPT_OK ? clopt_solver_knob_warning(st->solver) : NULL;
    if (knob_warning) {
        char *text = cli_flag_names(knob_warning);
        fprintf(stderr, "clopt: warning: %s\n", text ? text : knob_warning);
        free(text);
    }
    if (status != CLOPT_OK) {
        print_library_error(NULL, clopt_errmsg(st->ctx));
        return exit_code_for(status, st->user_objective);
    }
    if (a->resume_path) {
        status = clopt_solver_resume(st->solver, a->resume_path);
        if (status != CLOPT_OK) {
            print_library_error(NULL, clopt_errmsg(st->ctx));
            return exit_code_for(status, 1);
        }
    } else if (st->init_file) {
        return load_init_file(st->solver, st->ctx, st->init_file, &st->info, a->init_file,
                              a->opts.precision);
    }
    return 0;
}

/* The trace ends with the final theta, as the summary does. */
static int close_trace(struct run_state *st, const struct clopt_result *result)
{
    if (!st->ps.traced || st->ps.last_traced != result->iterations) {
        const struct clopt_progress last = {.iteration = result->iterations,
                                            .loss = result->loss,
                                            .grad_norm = result->grad_norm,
                                            .lr = result->final_lr,
                                            .seconds = result->seconds};
        st->ps.quiet = 1;
        on_progress(&st->ps, &last);
    }
    FILE *trace = st->ps.trace;
    int failed = st->ps.trace_failed ||
                 (trace && (trace == stdout ? fflush(stdout) != 0 : fclose(trace) != 0));
    st->ps.trace = NULL;
    if (failed) {
        print_error("writing --trace file '%s' failed", st->a.trace_path);
        return EXIT_FAILURE;
    }
    return 0;
}

/* The initial loss (the first evaluation of this run; after a resume, at the resumed
 * iteration) and the iterations per second of this run. */
static struct run_stats run_stats(const struct run_state *st, const struct clopt_result *r)
{
    struct run_stats stats = {.initial_loss = NAN};
    if (st->ps.started) {
        stats.initial_loss = st->ps.initial_loss;
        if (r->seconds > 0 && r->iterations >= st->ps.first_iteration)
            stats.iterations_per_second =
                (double)(r->iterations - st->ps.first_iteration) / r->seconds;
    }
    return stats;
}

/* After the run: theta, the trace, the JSON and the summary; rc is the run's status so far. */
static int finish_run(struct run_state *st, const struct clopt_result *result, int status, int rc)
{
    struct run_args *a = &st->a;
    /* Output files first: a full disk must not be hidden behind a printed summary. */
    if (a->out_path) {
        int out_rc = write_theta_file(st->solver, st->ctx, a->out_path, a->opts.precision);
        if (out_rc)
            rc = out_rc;
    }
    if (st->ps.trace || st->ps.resume_trace) {
        int trace_rc = close_trace(st, result);
        if (trace_rc)
            rc = trace_rc;
    }
    const struct run_stats stats = run_stats(st, result);
    if (a->json_path) {
        int json_rc = write_run_json(a->json_path, a, st->ctx, st->solver, result, &stats, status);
        if (json_rc)
            rc = json_rc;
    }
    /* stdout holds the JSON or the trace when either goes there: the text goes to stderr. */
    const int trace_out = a->trace_path && !strcmp(a->trace_path, "-");
    if (!a->quiet && !(a->json_path && !strcmp(a->json_path, "-")))
        print_run_summary(trace_out ? stderr : stdout, a, clopt_context_device(st->ctx), result,
                          &stats, status);
    return rc;
}

/* Runs the iterations and reports; the exit status. */
static int run_and_report(struct run_state *st)
{
    struct run_args *a = &st->a;
    if (!a->quiet)
        fprintf(stderr, "clopt: %s, %s, n = %zu on %s\n", a->opts.objective, a->opts.optimizer,
                a->opts.dim, clopt_context_device(st->ctx)->name);
    struct clopt_result result;
    const int status = clopt_solver_run(st->solver, &result);
    if (status < 0 && status != CLOPT_ERR_DIVERGED) {
        print_library_error(NULL, clopt_errmsg(st->ctx));
        return exit_code_for(status, st->user_objective);
    }
    if (status == CLOPT_ERR_DIVERGED)
        print_library_error(NULL, clopt_errmsg(st->ctx));
    int rc = exit_code_for(status, st->user_objective);
    struct clopt_checkpoint_report ck;
    clopt_solver_checkpoint_report(st->solver, &ck);
    if (status == CLOPT_STOP_CANCELLED && stop_signal) {
        /* The shell's convention for a process ended by a signal. */
        rc = 128 + (int)stop_signal;
        const int written = a->opts.checkpoint && ck.final_written;
        fprintf(stderr, "clopt: stopped by %s after iteration %llu%s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)result.iterations,
                written ? "; checkpoint written to " : "", written ? a->opts.checkpoint : "");
    }
    rc = finish_run(st, &result, status, rc);
    /* Only now, with theta, the trace and the JSON safe: what the checkpoints lost. One
     * line, an error line since the status says it (1, or the signal's). */
    if (ck.failed) {
        char last[64] = "none was written";
        if (ck.written)
            snprintf(last, sizeof last, "the last one written is of iteration %llu",
                     (unsigned long long)ck.last_written);
        print_error("%llu checkpoint write%s to '%s' failed (%s); the run went on and its "
                    "outputs are written; %s",
                    (unsigned long long)ck.failed, ck.failed == 1 ? "" : "s", a->opts.checkpoint,
                    ck.error, last);
        if (rc == 0)
            rc = EXIT_FAILURE;
    }
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static struct run_state st; /* the run's arguments hold 4 KiB buffers */
    memset(&st, 0, sizeof st);
    struct run_args *a = &st.a;
    int rc = parse_run_args(argc, argv, a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if (cli_rank() != 0) {
        /* Several ranks: rank 0 alone prints and writes the trace and the JSON (theta's
         * --out is gathered by every rank and written by rank 0 in the library). */
        a->quiet = 1;
        a->trace_path = NULL;
        a->json_path = NULL;
    }
    if (!a->device || !*a->device) {
        /* Several ranks on a node with several devices: one device per local rank. */
        const char *device = cli_rank_device(&rc);
        if (rc)
            return rc;
        if (device)
            a->device = device;
    }
    st.ps.quiet = a->quiet;
    st.ps.max_iters = a->opts.max_iters;
    st.ps.progress_seconds = progress_seconds();
    if ((rc = options_from_checkpoint(a)) != 0)
        goto cleanup;
    st.ps.max_iters = a->opts.max_iters;
    st.user_objective = ends_with(a->opts.objective, ".cl") || a->kernel_dir;
    if ((rc = check_run_inputs(&st)) != 0 ||
        (rc = open_context(a->device, a->devices, a->kernel_dir, a->program_cache, &st.ctx)) != 0 ||
        (rc = cli_ranks_attach(st.ctx)) != 0)
        goto cleanup;
    knobs_from_database(a, st.ctx);
    a->opts.progress = on_progress;
    a->opts.progress_user = &st.ps;
    stop_signal = 0;
    a->opts.stop = &stop_signal;
    catch_stop_signals();
    /* Outputs are touched only once the solver exists and any resume was accepted. */
    if ((rc = start_solver(&st)) == 0 && (rc = open_trace(&st)) == 0)
        rc = run_and_report(&st);
cleanup:
    if (st.init_file)
        fclose(st.init_file);
    if (st.ps.trace && st.ps.trace != stdout)
        fclose(st.ps.trace);
    clopt_solver_destroy(st.solver);
    close_context(st.ctx, a->program_cache);
    free(a->from_checkpoint);
    return rc;
}
