/* The tuner and the step benchmark (clopt_tune, clopt_bench_step in clopt.h). */
#include "abi.h"
#include "internal.h"
#include "tune.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TUNE_DEFAULT_REPS 3
#define TUNE_MAX_REPS 1000
#define LOSS_TOLERANCE 1e-5

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall-clock seconds of `reps` runs of the solver's iterations; *last gets the
 * last run's result. */
static int time_runs(struct clopt_context *ctx, struct clopt_solver *solver, unsigned reps,
                     double *median, struct clopt_result *last)
{
    double *seconds = calloc(reps, sizeof *seconds);
    if (!seconds)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    int status = CLOPT_OK;
    for (unsigned k = 0; k < reps && status == CLOPT_OK; ++k) {
        status = clopt_solver_run(solver, last);
        if (status > 0)
            status = CLOPT_OK;
        seconds[k] = last->seconds;
    }
    qsort(seconds, reps, sizeof *seconds, compare_doubles);
    *median = seconds[reps / 2];
    free(seconds);
    return status;
}

static double gbytes_per_second(const struct clopt_result *r, uint64_t iters, double seconds)
{
    return seconds > 0 ? r->bytes_per_iter * (double)iters / seconds / 1e9 : 0;
}

/* The problem as the tuner and the benchmark run it: no callback, checkpoint or stop flag. */
static struct clopt_options timed_problem(const struct clopt_options *problem)
{
    struct clopt_options o = *problem; /* adopted: a complete struct */
    o.progress = NULL;
    o.progress_user = NULL;
    o.checkpoint = NULL;
    o.checkpoint_every = 0;
    o.stop = NULL;
    return o;
}

/* The caller's problem as a complete struct of the current version (see clopt_abi_adopt);
 * *problem then points at it. A NULL problem is left for check_timing_args. */
static int adopt_problem(struct clopt_context *ctx, const struct clopt_options **problem,
                         struct clopt_options *adopted)
{
    if (!ctx || !*problem)
        return CLOPT_OK;
    char err[512];
    if (clopt_options_adopt(*problem, adopted, err, sizeof err) != CLOPT_OK)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", err);
    *problem = adopted;
    return CLOPT_OK;
}

static int check_timing_args(struct clopt_context *ctx, const struct clopt_options *problem,
                             unsigned reps, const void *out, const char *function)
{
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    if (!problem || !out)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s needs a problem and a result", function);
    if (problem->max_iters == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.max_iters must be at least 1 for %s",
                          function);
    if (reps == 0 || reps > TUNE_MAX_REPS)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s: use 1 to %d repetitions", function,
                          TUNE_MAX_REPS);
    return CLOPT_OK;
}

int clopt_bench_step(struct clopt_context *ctx, const struct clopt_options *problem, unsigned reps,
                     struct clopt_step_timing *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct clopt_options adopted;
    int status = adopt_problem(ctx, &problem, &adopted);
    if (status == CLOPT_OK)
        status = check_timing_args(ctx, problem, reps, out, "clopt_bench_step");
    if (status != CLOPT_OK)
        return status;
    const struct clopt_options o = timed_problem(problem);
    struct clopt_solver *solver = NULL;
    struct clopt_result r;
    memset(&r, 0, sizeof r);
    double median = 0;
    status = clopt_solver_create(&solver, ctx, &o);
    /* One untimed run first: first-touch page faults and caches, as STREAM's warm-up. */
    if (status == CLOPT_OK)
        status = time_runs(ctx, solver, 1, &median, &r);
    if (status == CLOPT_OK)
        status = time_runs(ctx, solver, reps, &median, &r);
    clopt_solver_destroy(solver);
    if (status != CLOPT_OK)
        return status;
    out->iterations = o.max_iters;
    out->reps = reps;
    out->seconds = median;
    out->bytes_per_iter = r.bytes_per_iter;
    out->bytes_per_element = r.bytes_per_element;
    out->gbytes_per_second = gbytes_per_second(&r, o.max_iters, median);
    out->element_iterations_per_second =
        median > 0 ? (double)o.dim * (double)o.max_iters / median : 0;
    out->loss = r.loss;
    out->knobs = r.knobs;
    return CLOPT_OK;
}

static void tune_defaults(struct clopt_tune_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->reps = TUNE_DEFAULT_REPS;
}

void clopt_tune_options_init_size(struct clopt_tune_options *opts, size_t size)
{
    struct clopt_tune_options d;
    tune_defaults(&d);
    clopt_abi_init(&d, sizeof d, opts, size);
}

/* Every version of struct clopt_tune_options, oldest first. */
static const struct clopt_abi_version tune_versions[] = {
    {sizeof(struct clopt_tune_options), sizeof(struct clopt_tune_options)},
};

int clopt_tune_options_adopt(const struct clopt_tune_options *in, struct clopt_tune_options *out,
                             char *err, size_t errlen)
{
    static const struct clopt_abi_layout layout = {"tune_options", "clopt_tune_options_init",
                                                   tune_versions,
                                                   sizeof tune_versions / sizeof *tune_versions};
    tune_defaults(out);
    return clopt_abi_adopt(&layout, in, out, err, errlen);
}

void clopt_tune_result_free(struct clopt_tune_result *result)
{
    if (!result)
        return;
    free(result->candidates);
    result->candidates = NULL;
}

/* Reads theta in the run's precision (the comparison is of bits). */
static void *read_theta_bits(struct clopt_solver *solver, const struct clopt_options *o)
{
    const size_t item = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    void *theta = malloc(o->dim * item);
    if (theta && clopt_solver_read_theta(solver, theta, o->precision, 0, o->dim) != CLOPT_OK) {
        free(theta);
        theta = NULL;
    }
    return theta;
}

/* What the candidates are checked against: the default knobs' theta and loss, from the
 * same theta_0, and their speed. */
struct reference {
    void *theta;
    double loss;
    double gbytes_per_second;
    struct clopt_knobs knobs;
};

static int run_reference(struct clopt_context *ctx, struct clopt_options *o, unsigned reps,
                         struct reference *ref)
{
    struct clopt_solver *solver = NULL;
    struct clopt_result r;
    memset(&r, 0, sizeof r);
    double median = 0;
    memset(&o->knobs, 0, sizeof o->knobs);
    int status = clopt_solver_create(&solver, ctx, o);
    if (status == CLOPT_OK)
        status = time_runs(ctx, solver, 1, &median, &r);
    if (status == CLOPT_OK && !(ref->theta = read_theta_bits(solver, o)))
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for theta");
    ref->loss = r.loss;
    if (status == CLOPT_OK)
        status = time_runs(ctx, solver, reps, &median, &r);
    clopt_solver_destroy(solver);
    if (status != CLOPT_OK)
        return clopt_fail(ctx, status, "the default knobs do not run: %s", clopt_errmsg(ctx));
    ref->gbytes_per_second = gbytes_per_second(&r, o->max_iters, median);
    ref->knobs = r.knobs;
    return CLOPT_OK;
}

/* Compares a finished candidate's theta and loss with the reference's; times it when they
 * match. */
static void verify_and_time(struct clopt_context *ctx, struct clopt_solver *solver,
                            const struct clopt_options *o, unsigned reps,
                            const struct reference *ref, const struct clopt_result *first,
                            struct clopt_tune_candidate *t)
{
    void *theta = read_theta_bits(solver, o);
    if (!theta) {
        snprintf(t->note, sizeof t->note, "not checked: theta could not be read");
        return;
    }
    const size_t item = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    size_t differ = 0;
    for (size_t i = 0; i < o->dim; ++i)
        differ += memcmp((char *)theta + i * item, (char *)ref->theta + i * item, item) != 0;
    free(theta);
    const double loss_error = fabs(first->loss - ref->loss) / fmax(fabs(ref->loss), DBL_MIN);
    if (differ && o->clip_norm <= 0) {
        snprintf(t->note, sizeof t->note, "WRONG: %zu elements of theta differ", differ);
        return;
    }
    if (!(loss_error <= LOSS_TOLERANCE)) {
        snprintf(t->note, sizeof t->note, "WRONG: loss off by %.2g (relative)", loss_error);
        return;
    }
    struct clopt_result r = *first;
    double median = 0;
    if (time_runs(ctx, solver, reps, &median, &r) != CLOPT_OK) {
        snprintf(t->note, sizeof t->note, "not timed: %s", clopt_errmsg(ctx));
        return;
    }
    t->ok = 1;
    t->gbytes_per_second = gbytes_per_second(&r, o->max_iters, median);
    t->knobs = r.knobs;
    snprintf(t->note, sizeof t->note, "theta %s, loss within %.1g",
             differ ? "within clip-norm rounding" : "bit-identical", loss_error);
}

/* Runs one candidate from theta_0, checks it and times it; t->note says how it went. */
static void try_candidate(struct clopt_context *ctx, struct clopt_options *o, unsigned reps,
                          const struct reference *ref, struct clopt_tune_candidate *t)
{
    o->knobs = t->knobs;
    /* A fused candidate must run at least one block to be checked and timed. */
    const int too_few = t->knobs.fuse > o->max_iters;
    struct clopt_solver *solver = NULL;
    struct clopt_result r;
    memset(&r, 0, sizeof r);
    double median = 0;
    int status = too_few ? CLOPT_ERR_INVALID_ARG : clopt_solver_create(&solver, ctx, o);
    if (status == CLOPT_OK)
        status = time_runs(ctx, solver, 1, &median, &r);
    t->refused = too_few || status == CLOPT_ERR_INVALID_ARG;
    if (too_few)
        snprintf(t->note, sizeof t->note, "not run: fuse=%zu needs options.max_iters >= %zu",
                 t->knobs.fuse, t->knobs.fuse);
    else if (status != CLOPT_OK)
        snprintf(t->note, sizeof t->note, "not run: %s", clopt_errmsg(ctx));
    else
        verify_and_time(ctx, solver, o, reps, ref, &r, t);
    clopt_solver_destroy(solver);
}

/* The fastest verified candidate, with the defaults competing; the status of the search. */
static int choose(struct clopt_context *ctx, const struct reference *ref,
                  struct clopt_tune_result *result)
{
    size_t best = result->tried, refused = 0;
    for (size_t c = 0; c < result->tried; ++c) {
        const struct clopt_tune_candidate *t = &result->candidates[c];
        refused += t->refused;
        if (t->ok && (best == result->tried ||
                      t->gbytes_per_second > result->candidates[best].gbytes_per_second))
            best = c;
    }
    if (best == result->tried && result->tried > 0 && refused == result->tried)
        /* Knobs this problem cannot take (fuse with a stencil, ...): bad input. */
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "no candidate of tune_options.space can run this problem (%s)",
                          result->candidates[0].note);
    if (best == result->tried)
        return clopt_fail(ctx, CLOPT_ERR_NO_CANDIDATE,
                          "no candidate ran correctly (%zu tried); the defaults stay",
                          result->tried);
    /* The default knobs, timed in this run, compete too: a narrow space may hold nothing
     * faster, and then the defaults are the choice. */
    result->defaults_won = ref->gbytes_per_second > result->candidates[best].gbytes_per_second;
    result->knobs = result->defaults_won ? ref->knobs : result->candidates[best].knobs;
    result->gbytes_per_second =
        result->defaults_won ? ref->gbytes_per_second : result->candidates[best].gbytes_per_second;
    return CLOPT_OK;
}

/* Tries the candidates in order until the budget or the caller ends the search. */
static void search(struct clopt_context *ctx, struct clopt_options *o,
                   const struct clopt_tune_options *topts, const struct reference *ref,
                   struct clopt_tune_result *result)
{
    const double start = now_seconds();
    for (size_t c = 0; c < result->count; ++c) {
        if (topts->budget_seconds > 0 && now_seconds() - start > topts->budget_seconds)
            break;
        ++result->tried;
        try_candidate(ctx, o, topts->reps, ref, &result->candidates[c]);
        const struct clopt_tune_progress p = {c + 1, result->count, &result->candidates[c],
                                              &ref->knobs, ref->gbytes_per_second};
        if (topts->progress && topts->progress(topts->progress_user, &p))
            break;
    }
}

int clopt_tune(struct clopt_context *ctx, const struct clopt_options *problem,
               const struct clopt_tune_options *topts, struct clopt_tune_result *result)
{
    if (result)
        memset(result, 0, sizeof *result);
    struct clopt_tune_options tune_adopted;
    char err[512];
    if (!topts) {
        clopt_tune_options_init(&tune_adopted);
    } else if (clopt_tune_options_adopt(topts, &tune_adopted, err, sizeof err) != CLOPT_OK) {
        return ctx ? clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", err) : CLOPT_ERR_INVALID_ARG;
    }
    topts = &tune_adopted;
    struct clopt_options adopted;
    int status = adopt_problem(ctx, &problem, &adopted);
    if (status == CLOPT_OK)
        status = check_timing_args(ctx, problem, topts->reps, result, "clopt_tune");
    if (status != CLOPT_OK)
        return status;
    if (!(topts->budget_seconds >= 0))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "tune_options.budget_seconds must be >= 0");
    /* 16 x 8 knob sets: too large for the stack's taste; on the heap, not in a static, so
     * that two threads may tune at once. */
    struct clopt_space *space = malloc(sizeof *space);
    if (!space)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for the tuning space");
    status = clopt_space_parse(topts->space, space, err, sizeof err);
    if (status == CLOPT_OK)
        status = clopt_space_candidates(space, ctx->info.kind == CLOPT_DEVICE_CPU,
                                        &result->candidates, &result->count, err, sizeof err);
    free(space);
    if (status != CLOPT_OK)
        return clopt_fail(ctx, status, "%s", err);
    /* With a budget, a random order: the time may end before the list. */
    if (topts->budget_seconds > 0)
        clopt_space_shuffle(result->candidates, result->count, problem->seed);
    struct clopt_options o = timed_problem(problem);
    struct reference ref = {0};
    status = run_reference(ctx, &o, topts->reps, &ref);
    if (status == CLOPT_OK) {
        result->default_knobs = ref.knobs;
        result->default_gbytes_per_second = ref.gbytes_per_second;
        const struct clopt_tune_progress p = {0, result->count, NULL, &ref.knobs,
                                              ref.gbytes_per_second};
        if (!topts->progress || !topts->progress(topts->progress_user, &p))
            search(ctx, &o, topts, &ref, result);
        status = choose(ctx, &ref, result);
    }
    free(ref.theta);
    return status;
}
