/* External gradients (clopt_solver_create_external): a user kernel writing 2 theta gives the
 * bits of the built-in sphere for every first-order optimizer; theta and the state in the
 * caller's own buffers; the caller's loss; stopping, checkpoints and resume; bad input. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct clopt_context *ctx;
static cl_context cl_ctx;
static cl_device_id cl_dev;
static cl_command_queue cl_queue;

/* The caller's kernels: g = 2 theta, and the loss sum theta^2 in one work-item (in double
 * when the solver is; a plain serial sum is all the test needs). */
static const char *user_source =
    "__kernel void twice(__global const float *theta, __global float *g, ulong n)\n"
    "{\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n)\n"
    "        g[i] = 2 * theta[i];\n"
    "}\n"
    "__kernel void sum_sq(__global const float *theta, __global float *loss, ulong n)\n"
    "{\n"
    "    float s = 0;\n"
    "    for (ulong i = 0; i < n; ++i)\n"
    "        s += theta[i] * theta[i];\n"
    "    loss[0] = s;\n"
    "}\n";

struct user {
    cl_program program;
    cl_kernel twice, sum_sq;
    size_t n;
    uint64_t calls;
    uint64_t loss_calls;
    int fail_at; /* > 0: return an error on that call */
};

static struct user user;

static void setup(void)
{
    ctx = test_context();
    cr_assert_eq(clopt_context_cl(ctx, &cl_ctx, &cl_dev, &cl_queue), CLOPT_OK);
    cl_int err;
    memset(&user, 0, sizeof user);
    user.program = clCreateProgramWithSource(cl_ctx, 1, &user_source, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    err = clBuildProgram(user.program, 1, &cl_dev, "-cl-denorms-are-zero", NULL, NULL);
    cr_assert_eq(err, CL_SUCCESS, "user kernel build: %d", err);
    user.twice = clCreateKernel(user.program, "twice", &err);
    cr_assert_eq(err, CL_SUCCESS);
    user.sum_sq = clCreateKernel(user.program, "sum_sq", &err);
    cr_assert_eq(err, CL_SUCCESS);
}

static void teardown(void)
{
    clReleaseKernel(user.twice);
    clReleaseKernel(user.sum_sq);
    clReleaseProgram(user.program);
    clopt_context_destroy(ctx);
}

TestSuite(extgrad, .init = setup, .fini = teardown);

static int gradient(void *p, cl_command_queue queue, const struct clopt_gradient_call *call,
                    cl_event *done)
{
    struct user *u = p;
    (void)done;
    ++u->calls;
    if (u->fail_at > 0 && u->calls == (uint64_t)u->fail_at)
        return 7;
    const cl_ulong n = u->n;
    cl_int err = clSetKernelArg(u->twice, 0, sizeof(cl_mem), &call->theta);
    err |= clSetKernelArg(u->twice, 1, sizeof(cl_mem), &call->grad);
    err |= clSetKernelArg(u->twice, 2, sizeof n, &n);
    const size_t global = (u->n + 63) / 64 * 64;
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(queue, u->twice, 1, NULL, &global, NULL, 0, NULL, NULL);
    if (err == CL_SUCCESS && call->want_loss) {
        ++u->loss_calls;
        const size_t one = 1;
        err = clSetKernelArg(u->sum_sq, 0, sizeof(cl_mem), &call->theta);
        err |= clSetKernelArg(u->sum_sq, 1, sizeof(cl_mem), &call->loss);
        err |= clSetKernelArg(u->sum_sq, 2, sizeof n, &n);
        if (err == CL_SUCCESS)
            err = clEnqueueNDRangeKernel(queue, u->sum_sq, 1, NULL, &one, &one, 0, NULL, NULL);
    }
    return err == CL_SUCCESS ? 0 : 1;
}

static struct clopt_options options(const char *optimizer, size_t n, uint64_t iters)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.optimizer = optimizer;
    o.dim = n;
    o.max_iters = iters;
    o.seed = 7;
    return o;
}

static struct clopt_external_options external(void)
{
    struct clopt_external_options e;
    clopt_external_options_init(&e);
    e.gradient = gradient;
    e.gradient_user = &user;
    return e;
}

static float *run_builtin(const struct clopt_options *o, struct clopt_result *r)
{
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    int status = clopt_solver_run(s, r);
    cr_assert_gt(status, 0, "%s", clopt_errmsg(ctx));
    float *theta = malloc(o->dim * sizeof *theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_FLOAT, 0, o->dim), CLOPT_OK);
    clopt_solver_destroy(s);
    return theta;
}

static float *run_external(const struct clopt_options *o, const struct clopt_external_options *e,
                           struct clopt_result *r)
{
    struct clopt_solver *s = NULL;
    user.n = o->dim;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, o, e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    int status = clopt_solver_run(s, r);
    cr_assert_gt(status, 0, "%s", clopt_errmsg(ctx));
    float *theta = malloc(o->dim * sizeof *theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_FLOAT, 0, o->dim), CLOPT_OK);
    clopt_solver_destroy(s);
    return theta;
}

/* The same options through the built-in sphere and through the caller's 2 theta. */
static void expect_identical(struct clopt_options o, const char *what)
{
    struct clopt_result rb, re;
    float *a = run_builtin(&o, &rb);
    const struct clopt_external_options e = external();
    float *b = run_external(&o, &e, &re);
    for (size_t i = 0; i < o.dim; ++i)
        cr_assert(memcmp(&a[i], &b[i], sizeof a[i]) == 0, "%s: theta[%zu] %.9g (built-in) vs %.9g",
                  what, i, (double)a[i], (double)b[i]);
    cr_assert_eq(re.iterations, rb.iterations, "%s", what);
    cr_assert_eq(re.grad_norm, rb.grad_norm, "%s: ||g|| %.17g vs %.17g", what, re.grad_norm,
                 rb.grad_norm);
    /* One more read per element: g. */
    cr_assert_eq(re.bytes_per_element, rb.bytes_per_element + sizeof(float), "%s", what);
    free(a);
    free(b);
}

Test(extgrad, sphere_identity_every_first_order_optimizer)
{
    const char *const *names = clopt_optimizer_names();
    size_t tested = 0;
    for (size_t k = 0; names[k]; ++k) {
        if (!strcmp(names[k], "lbfgs") || !strcmp(names[k], "cg"))
            continue;
        struct clopt_options o = options(names[k], 1003, 40);
        o.lr = 0.01;
        expect_identical(o, names[k]);
        ++tested;
    }
    cr_assert_geq(tested, 7);
}

/* Weight decay, clipping, a schedule and global-norm clipping (a norm pass that reads g as
 * well) are fused the same way. One optimizer: each variant is two program builds. */
Test(extgrad, sphere_identity_decay_clip_schedule)
{
    struct clopt_options o = options("adamw", 1003, 40);
    o.lr = 0.01;
    o.weight_decay = 0.01;
    o.clip_value = 0.5;
    o.schedule = "cosine:40";
    o.loss_every = 3;
    expect_identical(o, "adamw decay+clip+schedule");
    o = options("nesterov", 777, 30);
    o.lr = 0.05;
    o.clip_norm = 1.0;
    expect_identical(o, "nesterov clip_norm");
}

/* gtol acts on the ||g||^2 of the same pass: the run stops where the built-in one does. */
Test(extgrad, gtol_stops_at_the_same_iteration)
{
    struct clopt_options o = options("momentum", 500, 1000);
    o.lr = 0.05;
    o.gtol = 1e-3;
    struct clopt_result rb, re;
    float *a = run_builtin(&o, &rb);
    const struct clopt_external_options e = external();
    float *b = run_external(&o, &e, &re);
    cr_assert_lt(rb.iterations, 1000);
    cr_assert_eq(re.iterations, rb.iterations);
    cr_assert(memcmp(a, b, o.dim * sizeof *a) == 0);
    free(a);
    free(b);
}

/* The caller's loss reaches the progress callback, the target test and the result. */
static int count_progress(void *p, const struct clopt_progress *progress)
{
    double *last = p;
    *last = progress->loss;
    return 0;
}

Test(extgrad, caller_loss_and_target)
{
    struct clopt_options o = options("gd", 300, 500);
    o.lr = 0.1;
    o.target = 1e-2;
    double last = NAN;
    o.progress = count_progress;
    o.progress_user = &last;
    struct clopt_external_options e = external();
    e.has_loss = 1;
    struct clopt_result r;
    float *b = run_external(&o, &e, &r);
    cr_assert_lt(r.iterations, 500);
    cr_assert_leq(r.loss, 1e-2);
    cr_assert(isfinite(last) && last <= 1e-2, "last loss seen %g", last);
    double sum = 0;
    for (size_t i = 0; i < o.dim; ++i)
        sum += (double)b[i] * b[i];
    cr_assert(close_enough(r.loss, sum, 1e-5, 0), "loss %.9g, sum theta^2 %.9g", r.loss, sum);
    cr_assert_gt(user.loss_calls, 0);
    free(b);
}

/* theta and the state live in the caller's buffers: the results are there, with no copy. */
Test(extgrad, theta_and_state_in_caller_buffers)
{
    const size_t n = 2049;
    struct clopt_options o = options("adam", n, 25);
    o.lr = 0.05;
    o.init = CLOPT_INIT_NONE;
    float *start = malloc(n * sizeof *start);
    for (size_t i = 0; i < n; ++i)
        start[i] = (float)sin((double)i) * 3.0f;

    /* The built-in sphere from the same start. */
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_write_theta(s, start, CLOPT_FLOAT, 0, n), CLOPT_OK);
    struct clopt_result rb;
    cr_assert_gt(clopt_solver_run(s, &rb), 0, "%s", clopt_errmsg(ctx));
    float *want = malloc(n * sizeof *want), *want_m = malloc(n * sizeof *want_m);
    cr_assert_eq(clopt_solver_read_theta(s, want, CLOPT_FLOAT, 0, n), CLOPT_OK);
    cr_assert_eq(clopt_solver_read_state(s, 0, want_m, CLOPT_FLOAT, 0, n), CLOPT_OK);
    clopt_solver_destroy(s);

    /* A clopt context over the caller's own cl_context and queue. */
    struct clopt_context *mine = NULL;
    cr_assert_eq(clopt_context_create_from_cl(&mine, cl_ctx, cl_queue, NULL), CLOPT_OK);
    cl_int err;
    cl_mem theta = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                  n * sizeof(float), start, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_mem state[3];
    for (size_t k = 0; k < 3; ++k) {
        state[k] = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
        cr_assert_eq(err, CL_SUCCESS);
    }
    cl_mem grad = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    struct clopt_external_options e = external();
    e.theta = theta;
    e.grad = grad;
    user.n = n;
    /* adam keeps m and v (and max v only with amsgrad): two state vectors. */
    size_t n_state = 2;
    for (size_t k = 0; k < n_state; ++k)
        e.state[k] = state[k];
    cr_assert_eq(clopt_solver_create_external(&s, mine, &o, &e), CLOPT_OK, "%s",
                 clopt_errmsg(mine));
    cr_assert_eq(clopt_solver_state_count(s), n_state);
    cr_assert_eq(clopt_solver_buffer(s, CLOPT_BUFFER_THETA), theta);
    cr_assert_eq(clopt_solver_buffer(s, CLOPT_BUFFER_GRAD), grad);
    cr_assert_eq(clopt_solver_buffer(s, CLOPT_BUFFER_STATE0), state[0]);
    struct clopt_result re;
    cr_assert_gt(clopt_solver_run(s, &re), 0, "%s", clopt_errmsg(mine));
    clopt_solver_destroy(s);
    /* The caller's references outlive the solver's. */
    float *got = malloc(n * sizeof *got), *got_m = malloc(n * sizeof *got_m);
    cr_assert_eq(
        clEnqueueReadBuffer(cl_queue, theta, CL_TRUE, 0, n * sizeof(float), got, 0, NULL, NULL),
        CL_SUCCESS);
    cr_assert_eq(clEnqueueReadBuffer(cl_queue, state[0], CL_TRUE, 0, n * sizeof(float), got_m, 0,
                                     NULL, NULL),
                 CL_SUCCESS);
    cr_assert(memcmp(got, want, n * sizeof *got) == 0, "theta in the caller's buffer differs");
    cr_assert(memcmp(got_m, want_m, n * sizeof *got) == 0, "m in the caller's buffer differs");
    cr_assert_neq(got[5], start[5]);
    for (size_t k = 0; k < 3; ++k)
        clReleaseMemObject(state[k]);
    clReleaseMemObject(theta);
    clReleaseMemObject(grad);
    clopt_context_destroy(mine);
    free(start);
    free(want);
    free(want_m);
    free(got);
    free(got_m);
}

/* A run checkpointed half-way and resumed in a new solver ends on the uninterrupted bits. */
Test(extgrad, checkpoint_and_resume)
{
    char *dir = temp_dir();
    char *path = path_in(dir, "ck.bin");
    struct clopt_options o = options("rmsprop", 1500, 30);
    o.lr = 0.01;
    struct clopt_result r;
    const struct clopt_external_options e = external();
    float *whole = run_external(&o, &e, &r);
    cr_assert_eq(r.iterations, 30);

    o.max_iters = 12;
    o.checkpoint = path;
    float *first = run_external(&o, &e, &r);
    cr_assert_eq(r.iterations, 12);
    free(first);

    struct clopt_solver *s = NULL;
    o.max_iters = 30;
    o.checkpoint = NULL;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_gt(clopt_solver_run(s, &r), 0, "%s", clopt_errmsg(ctx));
    cr_assert_eq(r.iterations, 30);
    float *resumed = malloc(o.dim * sizeof *resumed);
    cr_assert_eq(clopt_solver_read_theta(s, resumed, CLOPT_FLOAT, 0, o.dim), CLOPT_OK);
    clopt_solver_destroy(s);
    cr_assert(memcmp(whole, resumed, o.dim * sizeof *whole) == 0, "resumed run differs");
    /* A built-in objective's solver refuses the external checkpoint. */
    struct clopt_options b = o;
    b.objective = "sphere";
    cr_assert_eq(clopt_solver_create(&s, ctx, &b), CLOPT_OK);
    cr_assert_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG);
    clopt_solver_destroy(s);
    free(whole);
    free(resumed);
    free(path);
    remove_tree(dir);
    free(dir);
}

/* A diverging run keeps the last finite iterate, replayed through the callback: the bits
 * and the status of the built-in sphere's run. */
Test(extgrad, divergence_keeps_the_last_finite_iterate)
{
    struct clopt_options o = options("gd", 257, 400);
    o.lr = 1.5; /* theta_t = (-2)^t theta_0 overflows float after about 128 steps */
    struct clopt_solver *s = NULL;
    struct clopt_result rb, re;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &rb), CLOPT_ERR_DIVERGED);
    float *a = malloc(o.dim * sizeof *a), *b = malloc(o.dim * sizeof *b);
    cr_assert_eq(clopt_solver_read_theta(s, a, CLOPT_FLOAT, 0, o.dim), CLOPT_OK);
    clopt_solver_destroy(s);
    const struct clopt_external_options e = external();
    user.n = o.dim;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &re), CLOPT_ERR_DIVERGED);
    cr_assert_eq(clopt_solver_read_theta(s, b, CLOPT_FLOAT, 0, o.dim), CLOPT_OK);
    clopt_solver_destroy(s);
    cr_assert_eq(re.iterations, rb.iterations);
    cr_assert_eq(re.diverged_at, rb.diverged_at);
    cr_assert_lt(re.iterations, 400);
    for (size_t i = 0; i < o.dim; ++i)
        cr_assert(isfinite(b[i]) && memcmp(&a[i], &b[i], sizeof *a) == 0, "theta[%zu]", i);
    free(a);
    free(b);
}

/* A callback that works on a queue of its own hands back an event; the step waits for it
 * on the device. */
static cl_command_queue side_queue;

static int gradient_on_side_queue(void *p, cl_command_queue queue,
                                  const struct clopt_gradient_call *call, cl_event *done)
{
    struct user *u = p;
    ++u->calls;
    const cl_ulong n = u->n;
    cl_int err = clSetKernelArg(u->twice, 0, sizeof(cl_mem), &call->theta);
    err |= clSetKernelArg(u->twice, 1, sizeof(cl_mem), &call->grad);
    err |= clSetKernelArg(u->twice, 2, sizeof n, &n);
    const size_t global = (u->n + 63) / 64 * 64;
    /* The side queue starts after clopt's last step wrote theta: a marker on clopt's queue
     * (flushed, so that the other queue's wait can see it run), no host wait. */
    cl_event ready = NULL;
    if (err == CL_SUCCESS)
        err = clEnqueueMarkerWithWaitList(queue, 0, NULL, &ready);
    if (err == CL_SUCCESS)
        err = clFlush(queue);
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(side_queue, u->twice, 1, NULL, &global, NULL, 1, &ready, done);
    if (ready)
        clReleaseEvent(ready);
    if (err == CL_SUCCESS)
        err = clFlush(side_queue);
    return err == CL_SUCCESS ? 0 : 1;
}

Test(extgrad, callback_event_from_another_queue)
{
    cl_int err;
    side_queue = clCreateCommandQueue(cl_ctx, cl_dev, 0, &err);
    cr_assert_eq(err, CL_SUCCESS);
    struct clopt_options o = options("momentum", 513, 30);
    o.lr = 0.05;
    struct clopt_result rb, re;
    float *a = run_builtin(&o, &rb);
    struct clopt_external_options e = external();
    e.gradient = gradient_on_side_queue;
    float *b = run_external(&o, &e, &re);
    cr_assert(memcmp(a, b, o.dim * sizeof *a) == 0);
    clReleaseCommandQueue(side_queue);
    free(a);
    free(b);
}

/* A callback's failure fails the run with its value in the message. */
Test(extgrad, callback_failure)
{
    struct clopt_options o = options("gd", 100, 20);
    struct clopt_external_options e = external();
    user.n = 100;
    user.fail_at = 5;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_ERR_OPENCL);
    cr_assert(strstr(clopt_errmsg(ctx), "returned 7"), "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
}

static void expect_refused(const struct clopt_options *o, const struct clopt_external_options *e,
                           const char *needle)
{
    struct clopt_solver *s = (struct clopt_solver *)&user; /* must be reset to NULL */
    cr_assert_eq(clopt_solver_create_external(&s, ctx, o, e), CLOPT_ERR_INVALID_ARG,
                 "expected a refusal mentioning '%s'", needle);
    cr_assert_null(s);
    const char *msg = clopt_errmsg(ctx);
    cr_assert(strstr(msg, needle), "message '%s' lacks '%s'", msg, needle);
    cr_assert_null(strchr(msg, '\n'), "one line: '%s'", msg);
}

Test(extgrad, bad_input)
{
    const size_t n = 100;
    struct clopt_options o = options("adam", n, 10);
    cl_int err;
    cl_mem small = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, (n - 1) * sizeof(float), NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_mem wide = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, n * sizeof(double), NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_context other = clCreateContext(NULL, 1, &cl_dev, NULL, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_mem foreign = clCreateBuffer(other, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);

    struct clopt_external_options e = external();
    e.theta = small;
    expect_refused(&o, &e, "external_options.theta holds 396 bytes");
    e.theta = wide;
    expect_refused(&o, &e, "400 bytes");
    e.theta = NULL;
    e.grad = foreign;
    expect_refused(&o, &e, "external_options.grad belongs to another cl_context");
    e = external();
    e.gradient = NULL;
    expect_refused(&o, &e, "external_options.gradient is NULL");
    e = external();
    /* lbfgs and cg need the caller's loss (their line search compares losses). */
    struct clopt_options q = options("lbfgs", n, 10);
    expect_refused(&q, &e, "external_options.has_loss is 0");
    q = options("cg", n, 10);
    expect_refused(&q, &e, "external_options.has_loss is 0");
    q = options("gd", n, 10);
    q.knobs.fuse = 4;
    expect_refused(&q, &e, "knobs.fuse=4");
    q = options("gd", n, 10);
    q.ftol = 1e-6;
    expect_refused(&q, &e, "has_loss");
    e.state[0] = small;
    expect_refused(&o, &e, "without external_options.theta");
    struct clopt_external_options zero;
    memset(&zero, 0, sizeof zero);
    zero.gradient = gradient;
    expect_refused(&o, &zero, "clopt_external_options_init");
    clReleaseMemObject(small);
    clReleaseMemObject(wide);
    clReleaseMemObject(foreign);
    clReleaseContext(other);
}
