/* gd with Barzilai-Borwein steps (options.gd_step, --step bb1|bb2): the first steps against a
 * double reference written here (same quotients, same safeguard); far fewer iterations than
 * fixed-step gd with its best stable lr on an ill-conditioned quadratic; results independent
 * of the shard count; an older options struct runs fixed-step gd; bad options exit 2. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 64
#define REF_RTOL 1e-9
#define REF_ATOL 1e-12

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(bb, .init = setup, .fini = teardown);

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

/* k BB steps from x (in place), with s and y formed as vectors. */
static void reference(size_t n, double cond, double lr, double kind, double *x, uint64_t k)
{
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
        alpha = fmin(fmax(next, lr * 1e-6), lr * 1e6);
        memcpy(x, xn, n * sizeof *x);
        memcpy(g, gn, n * sizeof *g);
    }
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

static void compare(double kind, size_t n, double cond, double lr, uint64_t iters)
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
        reference(n, cond, lr, kind, x0, k);
        for (size_t i = 0; i < n; ++i)
            cr_assert(close_enough(x[i], x0[i], REF_RTOL, REF_ATOL),
                      "bb%g k=%llu theta[%zu] = %.17g, reference %.17g", kind,
                      (unsigned long long)k, i, x[i], x0[i]);
    }
}

Test(bb, bb1_matches_reference)
{
    compare(CLOPT_STEP_BB1, 50, 1e3, 1e-3, 12);
}

Test(bb, bb2_matches_reference)
{
    compare(CLOPT_STEP_BB2, 50, 1e3, 1e-3, 12);
}

/* The safeguard: a tiny lr bounds the steps to lr 1e6 (the quotient would be about 1e-3). */
Test(bb, steps_are_clamped_to_lr_times_1e6)
{
    compare(CLOPT_STEP_BB2, 20, 1e3, 1e-12, 4);
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
    expect_usage(RUN("--step", "bb2", "--checkpoint", "/tmp/clopt-bb-never.ckpt"),
                 "no checkpoints");
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
