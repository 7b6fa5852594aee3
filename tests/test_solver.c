/* The iteration loop: closed forms, determinism, sharding, stopping, divergence, API. */
#include "testutil.h"
#include "solver/kernel_args.h"
#include "solver/solver.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(solver, .init = setup, .fini = teardown);

#define MAX_TRACE 4096

struct trace {
    size_t count;
    uint64_t iteration[MAX_TRACE];
    double loss[MAX_TRACE];
    double grad_norm[MAX_TRACE];
    uint64_t cancel_at; /* 0: never */
};

static int record(void *user, const struct clopt_progress *p)
{
    struct trace *t = user;
    if (t->count < MAX_TRACE) {
        t->iteration[t->count] = p->iteration;
        t->loss[t->count] = p->loss;
        t->grad_norm[t->count] = p->grad_norm;
        ++t->count;
    }
    return t->cancel_at && p->iteration >= t->cancel_at;
}

static struct clopt_options base_options(size_t n, uint64_t iters, double lr)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = n;
    o.max_iters = iters;
    o.lr = lr;
    o.seed = 42;
    return o;
}

/* Runs to completion and returns theta as doubles; *status gets the run's status. */
static double *solve(const struct clopt_options *o, struct clopt_result *r, int *status)
{
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    *status = clopt_solver_run(s, r);
    double *theta = malloc(o->dim * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, o->dim), CLOPT_OK);
    clopt_solver_destroy(s);
    return theta;
}

#define FLOAT_CLOSED_FORM_RTOL 1e-6

Test(solver, sphere_follows_its_closed_form)
{
    /* theta_T = (1 - 2 lr)^T theta_0 for L = sum theta^2. */
    const size_t n = 4097;
    const uint64_t T = 20;
    const double lr = 0.1;
    for (int p = 0; p < 2; ++p) {
        struct clopt_options o = base_options(n, 0, lr);
        o.precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT;
        struct clopt_result r;
        int status;
        double *theta0 = solve(&o, &r, &status);
        cr_assert_eq(status, CLOPT_STOP_MAX_ITERS);
        o.max_iters = T;
        double *thetaT = solve(&o, &r, &status);
        cr_assert_eq(status, CLOPT_STOP_MAX_ITERS);
        cr_assert_eq(r.iterations, T);
        const double factor = pow(1.0 - 2.0 * lr, (double)T);
        /* Float: T = 20 steps, each rounding theta by at most half an ulp (6e-7 in all). */
        const double rtol = p ? 1e-12 : FLOAT_CLOSED_FORM_RTOL;
        double expected_loss = 0;
        for (size_t i = 0; i < n; ++i) {
            const double expected = factor * theta0[i];
            cr_assert(close_enough(thetaT[i], expected, rtol, 1e-30), "theta[%zu] %.17g vs %.17g",
                      i, thetaT[i], expected);
            expected_loss += expected * expected;
        }
        cr_expect(close_enough(r.loss, expected_loss, p ? 1e-12 : FLOAT_CLOSED_FORM_RTOL, 0),
                  "loss %.17g vs %.17g", r.loss, expected_loss);
        free(theta0);
        free(thetaT);
    }
}

/* Ten steps on an ellipsoid of odd size 2^20 + 3, the case the determinism tests share. */
static struct clopt_options odd_ellipsoid_options(void)
{
    static const struct clopt_param cond = {"cond", "10"};
    struct clopt_options o = base_options((1u << 20) + 3, 10, 0.05);
    o.objective = "ellipsoid";
    o.params = &cond;
    o.n_params = 1;
    return o;
}

Test(solver, two_runs_are_bit_identical)
{
    struct clopt_options o = odd_ellipsoid_options();
    struct trace t1 = {0}, t2 = {0};
    struct clopt_result r1, r2;
    int s1, s2;
    o.progress = record;
    o.progress_user = &t1;
    double *a = solve(&o, &r1, &s1);
    o.progress_user = &t2;
    double *b = solve(&o, &r2, &s2);
    cr_assert_eq(s1, s2);
    cr_expect_eq(memcmp(a, b, o.dim * sizeof *a), 0, "theta differs between runs");
    cr_expect_eq(memcmp(&r1.loss, &r2.loss, sizeof r1.loss), 0);
    cr_assert_eq(t1.count, 10);
    cr_expect_eq(memcmp(t1.loss, t2.loss, t1.count * sizeof *t1.loss), 0);
    free(a);
    free(b);
}

Test(solver, one_shard_and_five_shards_are_bit_identical)
{
    for (int p = 0; p < 2; ++p) {
        struct clopt_options o = odd_ellipsoid_options();
        o.precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT;
        struct trace t1 = {0}, t5 = {0};
        struct clopt_result r1, r5;
        int s1, s5;
        o.progress = record;
        o.progress_user = &t1;
        double *a = solve(&o, &r1, &s1);
        o.progress_user = &t5;
        /* CPU tiles are 16 x 4096 elements; a cap of 4 tiles gives 5 shards. */
        o.max_shard_bytes = 4 * 16 * 4096 * (p ? sizeof(double) : sizeof(float));
        double *b = solve(&o, &r5, &s5);
        cr_assert_eq(r1.shards, 1);
        cr_assert_eq(r5.shards, 5);
        cr_expect_eq(memcmp(a, b, o.dim * sizeof *a), 0, "theta differs");
        cr_expect_eq(memcmp(&r1.loss, &r5.loss, sizeof r1.loss), 0, "%.17g vs %.17g", r1.loss,
                     r5.loss);
        cr_assert_eq(t1.count, t5.count);
        cr_expect_eq(memcmp(t1.loss, t5.loss, t1.count * sizeof *t1.loss), 0);
        cr_expect_eq(memcmp(t1.grad_norm, t5.grad_norm, t1.count * sizeof *t1.grad_norm), 0);
        free(a);
        free(b);
    }
}

Test(solver, loss_of_1e8_ones_is_exact_in_float)
{
    struct clopt_options o = base_options(100000000, 0, 0.1);
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    double loss, grad_norm;
    cr_assert_eq(clopt_solver_evaluate(s, &loss, &grad_norm), CLOPT_OK);
    cr_expect_eq(loss, 1e8, "loss %.17g", loss);
    cr_expect_eq(grad_norm, 2e4, "|g| %.17g", grad_norm); /* sqrt(4 * 1e8) */
    clopt_solver_destroy(s);
}

Test(solver, divergence_keeps_the_last_finite_theta)
{
    /* lr = 1.5 on the sphere multiplies theta by exactly -2 each step: theta_t = (-2)^t,
     * whose float square overflows near t = 64. */
    struct clopt_options o = base_options(1000, 1000, 1.5);
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    struct clopt_result r;
    int status;
    double *theta = solve(&o, &r, &status);
    cr_assert_eq(status, CLOPT_ERR_DIVERGED);
    cr_expect(strstr(clopt_errmsg(ctx), "NaN/Inf") != NULL, "%s", clopt_errmsg(ctx));
    cr_assert_gt(r.diverged_at, r.iterations);
    cr_assert_gt(r.iterations, 50);
    cr_expect(isfinite(r.loss));
    const double expected = ldexp(r.iterations % 2 ? -1.0 : 1.0, (int)r.iterations);
    for (size_t i = 0; i < o.dim; ++i)
        cr_assert_eq(theta[i], expected, "theta[%zu] = %g, expected %g", i, theta[i], expected);
    free(theta);
}

Test(solver, divergence_after_the_last_loss_evaluation_is_caught)
{
    /* The loss is looked at only at iteration 0; theta overflows near iteration 128. */
    struct clopt_options o = base_options(100, 140, 1.5);
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    o.loss_every = 1000;
    struct clopt_result r;
    int status;
    double *theta = solve(&o, &r, &status);
    cr_assert_eq(status, CLOPT_ERR_DIVERGED);
    cr_expect_eq(r.iterations, 0, "theta should be the start point, the last one seen finite");
    cr_expect_eq(r.diverged_at, 140);
    for (size_t i = 0; i < o.dim; ++i)
        cr_assert_eq(theta[i], 1.0);
    cr_expect(isfinite(r.loss));
    free(theta);
}

/* Divergence when theta_0 came from the caller (clopt_solver_write_theta), not from the
 * generator: the last finite theta is found again by replaying from the caller's theta_0,
 * which must be kept, not generated. lr = 1.5 on the sphere multiplies theta by exactly -2
 * per step, so theta_t = theta_0 * (-2)^t for any theta_0, exactly in float. */
Test(solver, divergence_from_a_caller_theta0_keeps_the_last_finite_theta)
{
    const size_t n = 1000;
    float *theta0 = malloc(n * sizeof *theta0);
    cr_assert_not_null(theta0);
    for (size_t i = 0; i < n; ++i)
        theta0[i] = (float)((double)(i % 7 + 1) * (i % 2 ? -0.25 : 0.125));
    /* Seen every 7 iterations, and only at the start (the replay then goes back to it). */
    const uint64_t every[] = {7, 1000};
    for (size_t e = 0; e < sizeof every / sizeof *every; ++e) {
        struct clopt_options o = base_options(n, 1000, 1.5);
        o.loss_every = every[e];
        struct clopt_solver *s = NULL;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_write_theta(s, theta0, CLOPT_FLOAT, 0, n), CLOPT_OK);
        struct clopt_result r;
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_ERR_DIVERGED, "%s", clopt_errmsg(ctx));
        cr_assert_gt(r.diverged_at, r.iterations);
        cr_expect_eq(r.iterations % every[e], 0);
        if (every[e] == 1000)
            cr_expect_eq(r.iterations, 0, "theta should be the caller's start point");
        else
            cr_expect_gt(r.iterations, 50);
        cr_expect(isfinite(r.loss));
        double *theta = malloc(n * sizeof *theta);
        cr_assert_not_null(theta);
        cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        const double factor = ldexp(r.iterations % 2 ? -1.0 : 1.0, (int)r.iterations);
        for (size_t i = 0; i < n; ++i)
            cr_assert_eq(theta[i], (double)theta0[i] * factor,
                         "loss every %llu: theta[%zu] = %g, expected %g at iteration %llu",
                         (unsigned long long)every[e], i, theta[i], (double)theta0[i] * factor,
                         (unsigned long long)r.iterations);
        free(theta);
        clopt_solver_destroy(s);
    }
    free(theta0);
}

Test(solver, stopping_tests_stop)
{
    struct clopt_result r;
    int status;
    struct clopt_options o = base_options(1000, 100000, 0.1);
    o.target = 1e-6;
    free(solve(&o, &r, &status));
    cr_expect_eq(status, CLOPT_STOP_TARGET);
    cr_expect_leq(r.loss, 1e-6);
    cr_expect_lt(r.iterations, 1000);

    o = base_options(1000, 100000, 0.1);
    o.gtol = 1e-3;
    free(solve(&o, &r, &status));
    cr_expect_eq(status, CLOPT_STOP_GTOL);
    cr_expect_leq(r.grad_norm, 1e-3);

    o = base_options(1000, 100000, 1e-9);
    o.ftol = 1e-6;
    free(solve(&o, &r, &status));
    cr_expect_eq(status, CLOPT_STOP_FTOL);
    cr_expect_lt(r.iterations, 1000);
}

Test(solver, progress_can_cancel_and_loss_every_is_honoured)
{
    struct trace t = {.cancel_at = 6};
    struct clopt_options o = base_options(100, 1000, 0.01);
    o.loss_every = 3;
    o.progress = record;
    o.progress_user = &t;
    struct clopt_result r;
    int status;
    free(solve(&o, &r, &status));
    cr_assert_eq(status, CLOPT_STOP_CANCELLED);
    cr_assert_geq(t.count, 3);
    for (size_t i = 0; i < t.count; ++i)
        cr_expect_eq(t.iteration[i], 3 * i, "evaluation %zu at iteration %llu", i,
                     (unsigned long long)t.iteration[i]);
    cr_expect_lt(r.iterations, 1000);
}

Test(solver, theta_round_trips_across_shards_and_precisions)
{
    const size_t n = 1000;
    struct clopt_options o = base_options(n, 0, 0.1);
    o.knobs.work_group = 4;
    o.knobs.elems_per_item = 8;
    o.knobs.vector_width = 1;
    o.max_shard_bytes = 4 * 8 * sizeof(float) * 3; /* 96 elements per shard */
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    double in[300];
    float out_f[300];
    double out_d[300];
    for (size_t i = 0; i < 300; ++i)
        in[i] = 0.5 * (double)i - 7.25; /* exact in float */
    cr_assert_eq(clopt_solver_write_theta(s, in, CLOPT_DOUBLE, 50, 300), CLOPT_OK);
    cr_assert_eq(clopt_solver_read_theta(s, out_f, CLOPT_FLOAT, 50, 300), CLOPT_OK);
    cr_assert_eq(clopt_solver_read_theta(s, out_d, CLOPT_DOUBLE, 50, 300), CLOPT_OK);
    for (size_t i = 0; i < 300; ++i) {
        cr_assert_eq(out_f[i], (float)in[i]);
        cr_assert_eq(out_d[i], in[i]);
    }
    cr_expect_eq(clopt_solver_read_theta(s, out_d, CLOPT_DOUBLE, n - 10, 11),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(clopt_errmsg(ctx), "outside") != NULL);
    clopt_solver_destroy(s);
}

Test(solver, runs_on_the_callers_context_and_leaves_it_alive)
{
    cl_platform_id platform;
    cl_device_id device;
    cl_int err;
    cr_assert_eq(clGetPlatformIDs(1, &platform, NULL), CL_SUCCESS);
    cr_assert_eq(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), CL_SUCCESS);
    cl_context cl = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_command_queue queue = clCreateCommandQueue(cl, device, 0, &err);
    cr_assert_eq(err, CL_SUCCESS);
    struct clopt_context *mine = NULL;
    cr_assert_eq(clopt_context_create_from_cl(&mine, cl, queue, NULL), CLOPT_OK);
    struct clopt_options o = base_options(777, 5, 0.25);
    o.init = CLOPT_INIT_CONST;
    o.init_value = 2.0;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, mine, &o), CLOPT_OK, "%s", clopt_errmsg(mine));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS);
    float theta[777];
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_FLOAT, 0, 777), CLOPT_OK);
    for (size_t i = 0; i < 777; ++i)
        cr_assert_eq(theta[i], 2.0f / 32.0f); /* halved 5 times */
    clopt_solver_destroy(s);
    clopt_context_destroy(mine);
    /* Reference counts are only a debugging aid in OpenCL (runtimes keep transient ones),
     * so the test shows the caller's objects still work after clopt is gone. */
    const cl_uint pattern = 0x5eed5eedu;
    cl_uint back[4] = {0};
    cl_mem probe = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof back, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cr_assert_eq(
        clEnqueueFillBuffer(queue, probe, &pattern, sizeof pattern, 0, sizeof back, 0, NULL, NULL),
        CL_SUCCESS);
    cr_assert_eq(clEnqueueReadBuffer(queue, probe, CL_TRUE, 0, sizeof back, back, 0, NULL, NULL),
                 CL_SUCCESS);
    for (int i = 0; i < 4; ++i)
        cr_expect_eq(back[i], pattern);
    clReleaseMemObject(probe);
    clReleaseCommandQueue(queue);
    clReleaseContext(cl);
}

struct bad_option {
    const char *what;
    int status;
    const char *message;
};

Test(solver, bad_options_are_refused_with_a_message)
{
    const struct bad_option cases[] = {
        {"dim", CLOPT_ERR_INVALID_ARG, "options.dim"},
        {"lr", CLOPT_ERR_INVALID_ARG, "options.lr"},
        {"objective", CLOPT_ERR_INVALID_ARG, "unknown objective"},
        {"optimizer", CLOPT_ERR_INVALID_ARG, "unknown optimizer"},
        {"loss_every", CLOPT_ERR_INVALID_ARG, "options.loss_every"},
        {"memory", CLOPT_ERR_OUT_OF_MEMORY, "needs"},
        {"param", CLOPT_ERR_INVALID_ARG, "out of range"},
        {"wg", CLOPT_ERR_INVALID_ARG, "power of two"},
        {"shard", CLOPT_ERR_INVALID_ARG, "cannot hold one tile"},
        {"partials", CLOPT_ERR_INVALID_ARG, "partials"},
        {"rwg", CLOPT_ERR_INVALID_ARG, "power of two"},
        {"accumulate", CLOPT_ERR_INVALID_ARG, "accumulate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        struct clopt_options o = base_options(100, 1, 0.1);
        struct clopt_param cond = {"cond", "0.5"};
        const char *w = cases[i].what;
        if (!strcmp(w, "dim"))
            o.dim = 0;
        else if (!strcmp(w, "lr"))
            o.lr = -1;
        else if (!strcmp(w, "objective"))
            o.objective = "nosuch";
        else if (!strcmp(w, "optimizer"))
            o.optimizer = "nosuch";
        else if (!strcmp(w, "loss_every"))
            o.loss_every = 0;
        else if (!strcmp(w, "memory"))
            o.dim = (size_t)1 << 44;
        else if (!strcmp(w, "param")) {
            o.objective = "ellipsoid";
            o.params = &cond;
            o.n_params = 1;
        } else if (!strcmp(w, "wg"))
            o.knobs.work_group = 3;
        else if (!strcmp(w, "shard"))
            o.max_shard_bytes = 16;
        else if (!strcmp(w, "partials")) {
            /* One 16-byte slot per element: just over the device's largest buffer. */
            o.dim = (size_t)(clopt_context_device(ctx)->max_alloc_bytes / 16 * 1.1);
            o.knobs.work_group = 1;
            o.knobs.elems_per_item = 1;
        } else if (!strcmp(w, "rwg"))
            o.knobs.reduce_group = 6;
        else if (!strcmp(w, "accumulate"))
            o.knobs.accumulate = 7;
        struct clopt_solver *s = (struct clopt_solver *)&o; /* must be reset to NULL */
        cr_expect_eq(clopt_solver_create(&s, ctx, &o), cases[i].status, "%s", w);
        cr_expect_null(s, "%s", w);
        cr_expect(strstr(clopt_errmsg(ctx), cases[i].message) != NULL, "%s: '%s'", w,
                  clopt_errmsg(ctx));
    }
}

Test(solver, vector_width_default_follows_a_small_epw)
{
    struct clopt_options o = base_options(93, 3, 0.1);
    o.knobs.elems_per_item = 4;
    struct clopt_solver *s = NULL;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
}

static cl_uint kernel_args(cl_kernel kernel)
{
    cl_uint count = 0;
    cr_assert_eq(clGetKernelInfo(kernel, CL_KERNEL_NUM_ARGS, sizeof count, &count, NULL),
                 CL_SUCCESS);
    return count;
}

/* The host sets arguments by the positions in kernel_args.h; the kernels declare them in
 * kernels/ (step_kernels.cl, reduce.cl, init.cl). A parameter added on one side only must fail
 * here, not run shifted. */
Test(solver, kernel_argument_layout_matches_the_kernels)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 1000;
    o.knobs.fuse = 2; /* builds clopt_step_fused too */
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(kernel_args(s->k_step), STEP_ARGS);
    cr_expect_eq(kernel_args(s->k_step_loss), STEP_ARGS);
    cr_expect_eq(kernel_args(s->k_eval), STEP_ARGS);
    cr_expect_eq(kernel_args(s->k_fused), FUSED_ARGS);
    cr_expect_eq(kernel_args(s->k_reduce), REDUCE_ARGS);
    cr_expect_eq(kernel_args(s->k_init), INIT_ARGS);
    cr_expect_eq(kernel_args(s->k_zero), ZERO_ARGS);
    cr_expect_eq(kernel_args(s->k_put_hyper), PUT_HYPER_ARGS);
    clopt_solver_destroy(s);
}
