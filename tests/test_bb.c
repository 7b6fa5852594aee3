/* gd with Barzilai-Borwein steps (options.gd_step, --step bb1|bb2): the first steps against a
 * double reference written here (same quotients, same safeguard); far fewer iterations than
 * fixed-step gd with its best stable lr on an ill-conditioned quadratic; results independent
 * of the shard count; checkpoints and bit-identical resume; an older options struct runs
 * fixed-step gd; bad options exit 2. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 64
#define REF_RTOL 1e-9
#define REF_ATOL 1e-12

CONTEXT_TEMP_DIR_SUITE(bb);

/* ellipsoid: f = sum c_i x_i^2, c_i = cond^(i/(n-1)). */
static double ellipsoid(size_t n, double cond, const double *x, double *g)
{
    double f = 0;
    for (size_t i = 0; i < n; ++i) {
        const double c = n > 1 ? pow(cond, (double)i / (double)(n - 1)) : 1.0;
        f += c * x[i] * x[i];
        g[i] = 2 * c * x[i];
    }
    return f;
}

/* k BB steps from x (in place), with s and y formed as vectors. Returns how many of the
 * quotients were clamped to lr 1e6. */
static uint64_t reference(size_t n, double cond, double lr, double kind, double *x, uint64_t k)
{
    uint64_t clamped = 0;
    double g[MAX_N], xn[MAX_N], gn[MAX_N], alpha = lr;
    ellipsoid(n, cond, x, g);
    for (uint64_t t = 0; t < k; ++t) {
        for (size_t i = 0; i < n; ++i)
            xn[i] = x[i] - alpha * g[i];
        ellipsoid(n, cond, xn, gn);
        double ss = 0, sy = 0, yy = 0;
        for (size_t i = 0; i < n; ++i) {
            const double s = xn[i] - x[i], y = gn[i] - g[i];
            ss += s * s;
            sy += s * y;
            yy += y * y;
        }
        double next = kind == CLOPT_STEP_BB1 ? ss / sy : sy / yy;
        if (!(next > 0) || !isfinite(next) || !(sy > 0))
            next = alpha;
        clamped += t > 0 && next > lr * 1e6;
        alpha = fmin(fmax(next, lr * 1e-6), lr * 1e6);
        memcpy(x, xn, n * sizeof *x);
        memcpy(g, gn, n * sizeof *g);
    }
    return clamped;
}

static struct clopt_param cond_param[1];
static char cond_text[32];

static void options(struct clopt_options *o, size_t n, double cond, double lr, double kind)
{
    clopt_options_init(o);
    o->objective = "ellipsoid";
    o->dim = n;
    o->optimizer = "gd";
    o->precision = CLOPT_DOUBLE;
    o->seed = 11;
    o->lr = lr;
    o->gd_step = kind;
    snprintf(cond_text, sizeof cond_text, "%.17g", cond);
    cond_param[0] = (struct clopt_param){.key = "cond", .value = cond_text};
    o->params = cond_param;
    o->n_params = 1;
}

/* Runs clopt; theta0 and theta (n values each, in o->precision for theta) may be NULL. */
static int run(struct clopt_options *o, double *theta0, void *theta, struct clopt_result *res)
{
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "create: %s", clopt_errmsg(ctx));
    if (theta0)
        cr_assert_eq(clopt_solver_read_theta(s, theta0, CLOPT_DOUBLE, 0, o->dim), CLOPT_OK);
    const int status = clopt_solver_run(s, res);
    cr_assert(status > 0, "run: %d %s", status, clopt_errmsg(ctx));
    if (theta)
        cr_assert_eq(clopt_solver_read_theta(s, theta, o->precision, 0, o->dim), CLOPT_OK);
    clopt_solver_destroy(s);
    return status;
}

/* k = 1..iters steps of clopt against the reference; with expect_clamped, every BB step
 * (all after the first) must be one the reference clamped to lr 1e6. */
static void compare(double kind, size_t n, double cond, double lr, uint64_t iters,
                    bool expect_clamped)
{
    SKIP_WITHOUT_FP64();
    for (uint64_t k = 1; k <= iters; ++k) {
        struct clopt_options o;
        options(&o, n, cond, lr, kind);
        o.max_iters = k;
        double x0[MAX_N], x[MAX_N];
        struct clopt_result res;
        run(&o, x0, x, &res);
        cr_assert_eq(res.iterations, k);
        cr_expect_eq(res.evaluations, k + 1, "one evaluation per step, and the start");
        const uint64_t clamped = reference(n, cond, lr, kind, x0, k);
        if (expect_clamped)
            cr_assert_eq(clamped, k - 1, "k=%llu: %llu of the BB steps clamped",
                         (unsigned long long)k, (unsigned long long)clamped);
        for (size_t i = 0; i < n; ++i)
            cr_assert(close_enough(x[i], x0[i], REF_RTOL, REF_ATOL),
                      "bb%g k=%llu theta[%zu] = %.17g, reference %.17g", kind,
                      (unsigned long long)k, i, x[i], x0[i]);
    }
}

Test(bb, bb1_matches_reference)
{
    compare(CLOPT_STEP_BB1, 50, 1e3, 1e-3, 12, false);
}

Test(bb, bb2_matches_reference)
{
    compare(CLOPT_STEP_BB2, 50, 1e3, 1e-3, 12, false);
}

/* The safeguard: a tiny lr bounds the steps to lr 1e6 (the quotient would be about 1e-3).
 * lr 1e-10, not smaller: clopt forms y.y as ||g_new||^2 - 2 g_new.g_old + ||g_old||^2, and
 * after a first step of 1e-12 that difference (~1e-19 of ||g||^2) is rounding noise, whose
 * sign decided whether clopt clamped or kept its step: the test passed or failed with the
 * last bits of the ellipsoid's coefficients. After 1e-10 it is ~4e-14 of ||g||^2. */
Test(bb, steps_are_clamped_to_lr_times_1e6)
{
    compare(CLOPT_STEP_BB2, 20, 1e3, 1e-10, 4, true);
}

/* Ellipsoid cond 1e3, n = 1000: fixed-step gd's best stable lr is 2 / (L + mu) = 1 / 1001
 * (the Hessian is diag(2 c_i)); BB needs a small fraction of its iterations. Measured: 5242
 * for gd, 333 for bb1, 332 for bb2. */
Test(bb, far_fewer_iterations_than_fixed_gd)
{
    SKIP_WITHOUT_FP64();
    const double lr = 2.0 / (2e3 + 2.0), kinds[] = {NAN, CLOPT_STEP_BB1, CLOPT_STEP_BB2};
    uint64_t iters[3];
    for (size_t k = 0; k < 3; ++k) {
        struct clopt_options o;
        options(&o, 1000, 1e3, lr, kinds[k]);
        o.max_iters = 100000;
        o.target = 1e-8;
        struct clopt_result res;
        cr_expect_eq(run(&o, NULL, NULL, &res), CLOPT_STOP_TARGET, "kind %g", kinds[k]);
        cr_expect_leq(res.loss, 1e-8);
        iters[k] = res.iterations;
    }
    cr_expect_gt(iters[0], 4000, "gd: %llu iterations", (unsigned long long)iters[0]);
    for (size_t k = 1; k < 3; ++k)
        cr_expect_lt(iters[k] * 8, iters[0], "bb%zu: %llu iterations, gd %llu", k,
                     (unsigned long long)iters[k], (unsigned long long)iters[0]);
}

/* Many shards give the bits of one (the quotients come from tile-ordered dot products). */
static void same_bits(const char *objective, enum clopt_precision prec, double kind)
{
    const size_t elem = prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    double a[1000], b[1000];
    struct clopt_result ra, rb;
    for (int many = 0; many < 2; ++many) {
        struct clopt_options o;
        options(&o, 1000, 1e3, 1e-3, kind);
        if (strcmp(objective, "ellipsoid") != 0) {
            o.params = NULL;
            o.n_params = 0;
        }
        o.objective = objective;
        o.precision = prec;
        o.max_iters = 40;
        o.knobs.work_group = 4;
        o.knobs.elems_per_item = 8;
        o.max_shard_bytes = many ? 3 * 32 * elem : 0; /* 96 elements per shard */
        run(&o, NULL, many ? b : a, many ? &rb : &ra);
    }
    cr_assert_gt(rb.shards, 10);
    cr_assert_eq(ra.shards, 1);
    cr_expect_eq(ra.iterations, rb.iterations);
    cr_expect(memcmp(&ra.loss, &rb.loss, sizeof ra.loss) == 0, "%s: loss %.17g vs %.17g", objective,
              ra.loss, rb.loss);
    cr_expect(memcmp(a, b, 1000 * elem) == 0, "%s: theta differs across shard counts", objective);
}

Test(bb, shard_count_invariant)
{
    same_bits("ellipsoid", CLOPT_FLOAT, CLOPT_STEP_BB2);
    same_bits("laplacian", CLOPT_FLOAT, CLOPT_STEP_BB1);
    if (test_device_has_fp64())
        same_bits("ellipsoid", CLOPT_DOUBLE, CLOPT_STEP_BB1);
}

/* Theta after the run of options o (100 floats). */
static void theta_after(const struct clopt_options *o, float *theta)
{
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result res;
    cr_expect_gt(clopt_solver_run(s, &res), 0, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_FLOAT, 0, 100), CLOPT_OK);
    clopt_solver_destroy(s);
}

/* A program built before gd_step (options version 4) runs fixed-step gd: the bytes past its
 * struct are not read. */
Test(bb, an_older_struct_runs_fixed_step_gd)
{
    const size_t a = _Alignof(struct clopt_options);
    const size_t v4 = (offsetof(struct clopt_options, gd_step) + a - 1) / a * a;
    cr_assert_lt(v4, sizeof(struct clopt_options));
    struct clopt_options o;
    clopt_options_init_size(&o, v4);
    o.dim = 100;
    o.max_iters = 3;
    o.gd_step = CLOPT_STEP_BB2; /* bytes the older program does not have */
    float old[100], fixed[100], bb[100];
    theta_after(&o, old);
    o.struct_size = sizeof o;
    theta_after(&o, bb);
    o.gd_step = NAN;
    theta_after(&o, fixed);
    cr_expect(memcmp(old, fixed, sizeof old) == 0, "the older struct did not run fixed-step gd");
    cr_expect(memcmp(bb, fixed, sizeof bb) != 0, "gd_step changed nothing");
    o.optimizer = "adam";
    o.gd_step = CLOPT_STEP_BB1;
    struct clopt_solver *s = NULL;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "gd_step"), "%s", clopt_errmsg(ctx));
}

static void expect_usage(const char *const *args, const char *needle)
{
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 2, "%s %s: exit %d, stderr %s", args[3], args[4], r.exit_code, r.err);
    cr_expect(strstr(r.err, needle) != NULL, "stderr lacks '%s': %s", needle, r.err);
    cr_expect_eq(count_lines(r.err), 1, "one line: %s", r.err);
    cli_result_free(&r);
}

Test(bb, bad_options_exit_2)
{
#define RUN(...) ((const char *const[]){"run", "--dim", "100", __VA_ARGS__, NULL})
    expect_usage(RUN("--step", "bb3"), "fixed, bb1 or bb2");
    expect_usage(RUN("--optimizer", "adam", "--step", "bb1"), "'gd' only");
    expect_usage(RUN("--optimizer", "lbfgs", "--step", "bb2"), "'gd' only");
    expect_usage(RUN("--step", "bb1", "--weight-decay", "0.1"), "weight_decay");
    expect_usage(RUN("--step", "bb1", "--schedule", "exp:0.9"), "schedule");
    expect_usage(RUN("--step", "bb1", "--max-evals", "10"), "max_evals");
#undef RUN
}

Test(bb, help_and_json_name_the_step)
{
    const char *const help[] = {"run", "--help", NULL};
    struct cli_result r = cli_run(help);
    cr_expect_eq(r.exit_code, 0);
    cr_expect(strstr(r.out, "--step fixed|bb1|bb2") != NULL, "help lacks --step");
    cli_result_free(&r);
    const char *const args[] = {"run", "--objective", "ellipsoid", "--dim",  "100", "--step",
                                "bb2", "--iters",     "5",         "--json", "-",   NULL};
    r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cJSON *json = cJSON_Parse(r.out);
    cr_assert_not_null(json, "%s", r.out);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(json, "hyper_parameters");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(h, "gd_step");
    cr_expect(cJSON_IsString(step) && !strcmp(step->valuestring, "bb2"), "%s", r.out);
    const cJSON *evals = cJSON_GetObjectItemCaseSensitive(json, "evaluations");
    cr_expect(cJSON_IsNumber(evals) && evals->valuedouble == 6, "%s", r.out);
    cJSON_Delete(json);
    cli_result_free(&r);
}

/* A step that makes the loss Inf stops the run as diverged, theta the last finite iterate
 * (here the start: BB takes every step, so there is no line search to back off). */
Test(bb, a_non_finite_loss_is_divergence)
{
    SKIP_WITHOUT_FP64();
    struct clopt_options o;
    options(&o, 20, 1e3, 1e200, CLOPT_STEP_BB2);
    o.max_iters = 10;
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "create: %s", clopt_errmsg(ctx));
    double x0[20], x[20];
    cr_assert_eq(clopt_solver_read_theta(s, x0, CLOPT_DOUBLE, 0, 20), CLOPT_OK);
    struct clopt_result res;
    cr_expect_eq(clopt_solver_run(s, &res), CLOPT_ERR_DIVERGED, "%s", clopt_errmsg(ctx));
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "Barzilai-Borwein"), "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_read_theta(s, x, CLOPT_DOUBLE, 0, 20), CLOPT_OK);
    cr_expect(memcmp(x, x0, sizeof x) == 0, "theta is not the last finite iterate");
    clopt_solver_destroy(s);
}

/* Checkpoints: a run stopped at iteration K and resumed to N ends with the bits of one that
 * ran to N at once (theta, loss, evaluations and the last step), whether the checkpoint is
 * the closing one, a periodic one or the one a stop request writes; many shards. The state
 * beyond lbfgs/cg's is the next step s and y gave (bb_alpha). */
#define RESUME_N 1000
#define RESUME_ITERS 25

struct watch {
    uint64_t at;                 /* the iteration it acts at */
    const char *from, *to;       /* renames `from` to `to` there (keeps a periodic checkpoint) */
    volatile sig_atomic_t *stop; /* or sets *stop there, as the CLI's signal handler does */
};

static int on_progress(void *user, const struct clopt_progress *p)
{
    struct watch *w = user;
    if (p->iteration != w->at)
        return 0;
    if (w->from)
        cr_assert_eq(rename(w->from, w->to), 0, "the periodic checkpoint is not on disk");
    if (w->stop)
        *w->stop = 1;
    return 0;
}

static void resume_options(struct clopt_options *o, const char *objective,
                           enum clopt_precision prec, double kind)
{
    options(o, RESUME_N, 1e3, 1e-3, kind);
    if (strcmp(objective, "ellipsoid") != 0) {
        o->params = NULL;
        o->n_params = 0;
    }
    o->objective = objective;
    o->precision = prec;
    o->max_iters = RESUME_ITERS;
    o->knobs.work_group = 4;
    o->knobs.elems_per_item = 8;
    const size_t elem = prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    o->max_shard_bytes = 3 * 32 * elem; /* 96 elements per shard */
}

/* Runs o, resuming from `resume` when given; theta into out. */
static void run_from(struct clopt_options *o, const char *resume, void *out,
                     struct clopt_result *res, struct clopt_checkpoint_report *report)
{
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "create: %s", clopt_errmsg(ctx));
    if (resume)
        cr_assert_eq(clopt_solver_resume(s, resume), CLOPT_OK, "resume: %s", clopt_errmsg(ctx));
    const int status = clopt_solver_run(s, res);
    cr_assert(status > 0, "run: %d %s", status, clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_read_theta(s, out, o->precision, 0, o->dim), CLOPT_OK);
    if (report)
        cr_assert_eq(clopt_solver_checkpoint_report(s, report), CLOPT_OK);
    clopt_solver_destroy(s);
}

static void same_run(const char *what, const struct clopt_options *o, const double *a,
                     const struct clopt_result *ra, const double *b, const struct clopt_result *rb)
{
    const size_t elem = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    cr_expect_gt(rb->shards, 10);
    cr_expect_eq(ra->iterations, rb->iterations, "%s %s: iterations", what, o->objective);
    cr_expect_eq(ra->evaluations, rb->evaluations, "%s %s: evaluations", what, o->objective);
    cr_expect(memcmp(&ra->loss, &rb->loss, sizeof ra->loss) == 0, "%s %s: loss %.17g vs %.17g",
              what, o->objective, ra->loss, rb->loss);
    cr_expect(memcmp(&ra->final_lr, &rb->final_lr, sizeof ra->final_lr) == 0,
              "%s %s: last step %.17g vs %.17g", what, o->objective, ra->final_lr, rb->final_lr);
    cr_expect(memcmp(a, b, o->dim * elem) == 0,
              "%s %s (%zu-byte): theta differs from the run without a stop", what, o->objective,
              elem);
}

static void resume_bits(const char *objective, enum clopt_precision prec, double kind)
{
    double full[RESUME_N], part[RESUME_N];
    struct clopt_result rf, rp;
    struct clopt_options o;
    resume_options(&o, objective, prec, kind);
    run_from(&o, NULL, full, &rf, NULL);
    cr_assert_eq(rf.iterations, RESUME_ITERS, "%s: the run should reach the iteration limit",
                 objective);

    /* The closing checkpoint of a run with a lower limit. */
    char *path = path_in(dir, "closing.ckpt");
    resume_options(&o, objective, prec, kind);
    o.max_iters = 10;
    o.checkpoint = path;
    struct clopt_checkpoint_report report;
    run_from(&o, NULL, part, &rp, &report);
    cr_expect_eq(report.written, 1);
    cr_expect(report.final_written);
    resume_options(&o, objective, prec, kind);
    run_from(&o, path, part, &rp, NULL);
    same_run("closing checkpoint", &o, full, &rf, part, &rp);

    /* Periodic checkpoints (7, 14, 21, then the closing one at 25): 14 is kept and resumed. */
    char *kept = path_in(dir, "periodic.ckpt");
    struct watch w = {.at = 15, .from = path, .to = kept};
    resume_options(&o, objective, prec, kind);
    o.checkpoint = path;
    o.checkpoint_every = 7;
    o.progress = on_progress;
    o.progress_user = &w;
    run_from(&o, NULL, part, &rp, &report);
    cr_expect_eq(report.written, 4, "%s: checkpoints written", objective);
    cr_expect_eq(report.last_written, RESUME_ITERS);
    same_run("checkpoint-every run", &o, full, &rf, part, &rp);
    resume_options(&o, objective, prec, kind);
    run_from(&o, kept, part, &rp, NULL);
    same_run("periodic checkpoint", &o, full, &rf, part, &rp);

    /* A stop request (the flag the CLI's SIGINT/SIGTERM handler sets) at iteration 12. */
    volatile sig_atomic_t stop = 0;
    struct watch ws = {.at = 12, .stop = &stop};
    resume_options(&o, objective, prec, kind);
    o.checkpoint = path;
    o.progress = on_progress;
    o.progress_user = &ws;
    o.stop = &stop;
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_run(s, &rp), CLOPT_STOP_CANCELLED);
    cr_expect_eq(rp.iterations, 12);
    cr_assert_eq(clopt_solver_checkpoint_report(s, &report), CLOPT_OK);
    cr_expect(report.final_written && report.last_written == 12);
    clopt_solver_destroy(s);
    resume_options(&o, objective, prec, kind);
    run_from(&o, path, part, &rp, NULL);
    same_run("stop request", &o, full, &rf, part, &rp);
    free(kept);
    free(path);
}

Test(bb, resume_is_bit_identical_float)
{
    resume_bits("ellipsoid", CLOPT_FLOAT, CLOPT_STEP_BB1);
    resume_bits("laplacian", CLOPT_FLOAT, CLOPT_STEP_BB2); /* a stencil: halos between shards */
}

Test(bb, resume_is_bit_identical_double)
{
    SKIP_WITHOUT_FP64();
    resume_bits("ellipsoid", CLOPT_DOUBLE, CLOPT_STEP_BB2);
    resume_bits("laplacian", CLOPT_DOUBLE, CLOPT_STEP_BB1);
}

/* Resumes `path` with gd_step `kind`; expects a refusal that names gd_step. */
static void expect_refused(const char *path, double kind)
{
    struct clopt_options o;
    resume_options(&o, "ellipsoid", CLOPT_FLOAT, kind);
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG, "gd_step %g", kind);
    cr_expect(strstr(clopt_errmsg(ctx), "gd_step") != NULL, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
}

/* A bb1 checkpoint does not resume as bb2 or as fixed-step gd, nor a fixed-step one as BB:
 * each would continue another trajectory. */
Test(bb, another_step_rule_is_refused)
{
    char *bb1 = path_in(dir, "bb1.ckpt"), *fixed = path_in(dir, "fixed.ckpt");
    float theta[RESUME_N];
    struct clopt_result res;
    struct clopt_options o;
    resume_options(&o, "ellipsoid", CLOPT_FLOAT, CLOPT_STEP_BB1);
    o.max_iters = 3;
    o.checkpoint = bb1;
    run_from(&o, NULL, theta, &res, NULL);
    resume_options(&o, "ellipsoid", CLOPT_FLOAT, NAN);
    o.max_iters = 3;
    o.checkpoint = fixed;
    run_from(&o, NULL, theta, &res, NULL);
    expect_refused(bb1, CLOPT_STEP_BB2);
    expect_refused(bb1, NAN);
    expect_refused(fixed, CLOPT_STEP_BB1);
    free(bb1);
    free(fixed);
}

/* The CLI: --resume takes --step from the checkpoint, and the resumed run's --out has the
 * bits of the run that went on at once. */
Test(bb, cli_resume_takes_the_step_from_the_checkpoint)
{
    char *ck = path_in(dir, "cli.ckpt"), *a = path_in(dir, "a.npy"), *b = path_in(dir, "b.npy");
    const char *const once[] = {"run",    "--objective", "laplacian", "--dim",   "500",
                                "--step", "bb2",         "--lr",      "0.1",     "--iters",
                                "30",     "--out",       a,           "--quiet", NULL};
    const char *const first[] = {"run",    "--objective",  "laplacian", "--dim",   "500",
                                 "--step", "bb2",          "--lr",      "0.1",     "--iters",
                                 "12",     "--checkpoint", ck,          "--quiet", NULL};
    const char *const rest[] = {"run",   "--resume", ck,        "--iters", "30",
                                "--out", b,          "--quiet", NULL};
    const char *const *runs[] = {once, first, rest};
    for (size_t i = 0; i < 3; ++i) {
        struct cli_result r = cli_run(runs[i]);
        cr_assert_eq(r.exit_code, 0, "run %zu: %s", i, r.err);
        cli_result_free(&r);
    }
    size_t na, nb;
    unsigned char *da = read_binary(a, &na), *db = read_binary(b, &nb);
    cr_assert(da && db);
    cr_expect(na == nb && memcmp(da, db, na) == 0, "the resumed run's theta differs");
    free(da);
    free(db);
    free(ck);
    free(a);
    free(b);
}
