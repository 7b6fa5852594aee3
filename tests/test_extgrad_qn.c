/* lbfgs and cg with external gradients (clopt_solver_create_external): the caller's kernel
 * writes g at each line-search trial clopt puts in theta, and the runs give the bits of the
 * same problem as a built-in objective (sphere, and a weighted quadratic whose weights the
 * caller's kernel writes into a data buffer of its own); checkpoint and resume; refusals.
 *
 * The line search interpolates losses, so identical bits need the built-in loss's bits:
 * the test's callback gets the loss by evaluating a built-in solver of the same objective
 * at the trial point (copied into that solver's theta), which waits on the host; that is
 * allowed (only slower), and what is under test here is the path of theta, g and the loss
 * through clopt, not how a caller sums its loss. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct clopt_context *ctx;
static cl_context cl_ctx;
static cl_device_id cl_dev;
static char *dir;

/* The caller's kernels, built once per precision: weights w_i = 1 + i % period (all 1 for
 * sphere) and g = 2 w theta, the expression of the comparison objective below. */
static const char *user_source =
    "__kernel void weights(__global real *w, ulong n, ulong period)\n"
    "{\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n)\n"
    "        w[i] = (real)(1 + i % period);\n"
    "}\n"
    "__kernel void grad(__global const real *theta, __global const real *w, __global real *g,\n"
    "                   ulong n)\n"
    "{\n"
    "    const ulong i = get_global_id(0);\n"
    "    if (i < n)\n"
    "        g[i] = (real)2 * w[i] * theta[i];\n"
    "}\n";

/* The built-in twin of the weighted quadratic, as a user objective file. */
static const char *weighted_source = "#ifndef CLOPT_REAL_DEFINED\n"
                                     "#define CLOPT_REAL_DEFINED\n"
                                     "typedef float real;\n"
                                     "#endif\n"
                                     "static inline real clopt_fdf(real x, ulong i, real *g)\n"
                                     "{\n"
                                     "    const real w = (real)(1 + i % 5);\n"
                                     "    *g = (real)2 * w * x;\n"
                                     "    return w * x * x;\n"
                                     "}\n";

struct user {
    cl_program program;
    cl_kernel weights, grad;
    cl_mem w;                 /* the caller's data vector */
    struct clopt_solver *ref; /* the built-in objective, for the loss */
    size_t n, elem;
    uint64_t calls;
    cl_mem theta_seen; /* call->theta of the last call */
    int bad_call;      /* a call without want_loss, or a failed OpenCL call */
    int loss_double;   /* the loss buffer holds a double (external_options.loss_double) */
};

static struct user user;

static void setup(void)
{
    ctx = test_context();
    cl_command_queue q;
    cr_assert_eq(clopt_context_cl(ctx, &cl_ctx, &cl_dev, &q), CLOPT_OK);
    memset(&user, 0, sizeof user);
    dir = temp_dir();
}

static void release_user(void)
{
    if (user.weights)
        clReleaseKernel(user.weights);
    if (user.grad)
        clReleaseKernel(user.grad);
    if (user.program)
        clReleaseProgram(user.program);
    if (user.w)
        clReleaseMemObject(user.w);
    clopt_solver_destroy(user.ref);
    memset(&user, 0, sizeof user);
}

static void teardown(void)
{
    release_user();
    clopt_context_destroy(ctx);
    remove_tree(dir);
    free(dir);
}

TestSuite(extgrad_qn, .init = setup, .fini = teardown);

/* The objective of options o: "sphere" or the weighted file. */
static const char *weighted_path(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/weighted.cl", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(weighted_source, f);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static struct clopt_options options(const char *optimizer, const char *objective,
                                    enum clopt_precision prec, uint64_t iters)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.optimizer = optimizer;
    o.objective = objective;
    o.precision = prec;
    o.dim = 1003;
    o.max_iters = iters;
    o.seed = 7;
    o.loss_every = 1;
    return o;
}

/* The caller's program in o's precision, its weights (period 1: sphere) and the built-in
 * solver that gives the loss. */
static void prepare_user(const struct clopt_options *o, cl_ulong period)
{
    release_user();
    user.n = o->dim;
    user.elem = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    cl_int err;
    user.program = clCreateProgramWithSource(cl_ctx, 1, &user_source, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    const char *flags = o->precision == CLOPT_DOUBLE ? "-Dreal=double -cl-denorms-are-zero"
                                                     : "-Dreal=float -cl-denorms-are-zero";
    cr_assert_eq(clBuildProgram(user.program, 1, &cl_dev, flags, NULL, NULL), CL_SUCCESS);
    user.weights = clCreateKernel(user.program, "weights", &err);
    cr_assert_eq(err, CL_SUCCESS);
    user.grad = clCreateKernel(user.program, "grad", &err);
    cr_assert_eq(err, CL_SUCCESS);
    user.w = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, user.n * user.elem, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    struct clopt_options r = *o;
    r.optimizer = "gd";
    r.max_iters = 0;
    r.checkpoint = NULL;
    r.progress = NULL;
    cr_assert_eq(clopt_solver_create(&user.ref, ctx, &r), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cl_command_queue q;
    cr_assert_eq(clopt_context_cl(ctx, NULL, NULL, &q), CLOPT_OK);
    const cl_ulong n = user.n;
    err = clSetKernelArg(user.weights, 0, sizeof(cl_mem), &user.w);
    err |= clSetKernelArg(user.weights, 1, sizeof n, &n);
    err |= clSetKernelArg(user.weights, 2, sizeof period, &period);
    const size_t global = (user.n + 63) / 64 * 64;
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(q, user.weights, 1, NULL, &global, NULL, 0, NULL, NULL);
    cr_assert_eq(err, CL_SUCCESS);
}

static int gradient(void *p, cl_command_queue queue, const struct clopt_gradient_call *call,
                    cl_event *done)
{
    struct user *u = p;
    (void)done;
    ++u->calls;
    u->theta_seen = call->theta;
    if (!call->want_loss)
        u->bad_call = 1;
    const cl_ulong n = u->n;
    cl_int err = clSetKernelArg(u->grad, 0, sizeof(cl_mem), &call->theta);
    err |= clSetKernelArg(u->grad, 1, sizeof(cl_mem), &u->w);
    err |= clSetKernelArg(u->grad, 2, sizeof(cl_mem), &call->grad);
    err |= clSetKernelArg(u->grad, 3, sizeof n, &n);
    const size_t global = (u->n + 63) / 64 * 64;
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(queue, u->grad, 1, NULL, &global, NULL, 0, NULL, NULL);
    /* The loss: the built-in objective's at the same point (the queue is in order). */
    cl_mem ref_theta = clopt_solver_buffer(u->ref, CLOPT_BUFFER_THETA);
    if (err == CL_SUCCESS && ref_theta)
        err =
            clEnqueueCopyBuffer(queue, call->theta, ref_theta, 0, 0, u->n * u->elem, 0, NULL, NULL);
    double f = NAN, gnorm;
    if (err != CL_SUCCESS || !ref_theta || clopt_solver_evaluate(u->ref, &f, &gnorm) != CLOPT_OK) {
        u->bad_call = 1;
        return 1;
    }
    const float ff = (float)f;
    const int wide = u->loss_double || u->elem == sizeof f;
    err = clEnqueueWriteBuffer(queue, call->loss, CL_TRUE, 0, wide ? sizeof f : sizeof ff,
                               wide ? (const void *)&f : (const void *)&ff, 0, NULL, NULL);
    return err == CL_SUCCESS ? 0 : 1;
}

static struct clopt_external_options external(void)
{
    struct clopt_external_options e;
    clopt_external_options_init(&e);
    e.gradient = gradient;
    e.gradient_user = &user;
    e.has_loss = 1;
    return e;
}

/* The losses the progress callback saw, one per iteration. */
struct trace {
    double loss[64];
    size_t n;
};

static int record(void *p, const struct clopt_progress *progress)
{
    struct trace *t = p;
    if (t->n < sizeof t->loss / sizeof *t->loss)
        t->loss[t->n++] = progress->loss;
    return 0;
}

/* Runs o on solver s (made already); theta in the solver's precision (heap). */
static void *run(struct clopt_solver *s, const struct clopt_options *o, struct clopt_result *r,
                 int *reason)
{
    *reason = clopt_solver_run(s, r);
    cr_assert_gt(*reason, 0, "%s", clopt_errmsg(ctx));
    const size_t elem = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    void *theta = malloc(o->dim * elem);
    cr_assert_eq(clopt_solver_read_theta(s, theta, o->precision, 0, o->dim), CLOPT_OK);
    return theta;
}

static void expect_identical(const char *optimizer, const char *objective,
                             enum clopt_precision prec)
{
    const cl_ulong period = strcmp(objective, "sphere") == 0 ? 1 : 5;
    const char *what_prec = prec == CLOPT_DOUBLE ? "double" : "float";
    struct trace tb = {0}, te = {0};
    struct clopt_options o = options(optimizer, objective, prec, 25);
    o.progress = record;
    o.progress_user = &tb;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result rb, re;
    int why_b, why_e;
    void *a = run(s, &o, &rb, &why_b);
    clopt_solver_destroy(s);

    prepare_user(&o, period);
    o.progress_user = &te;
    /* In float the built-in loss is summed in double: the caller's must be as precise. */
    struct clopt_external_options e = external();
    e.loss_double = prec == CLOPT_FLOAT;
    user.loss_double = e.loss_double;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    void *b = run(s, &o, &re, &why_e);
    /* call->theta is the solver's theta buffer; one call per evaluation and one for the
     * closing evaluation, each asking for the loss. */
    cr_assert_eq(user.theta_seen, clopt_solver_buffer(s, CLOPT_BUFFER_THETA));
    clopt_solver_destroy(s);
    cr_assert_eq(user.bad_call, 0);
    cr_assert_eq(user.calls, re.evaluations + 1, "%s %s: %llu calls, %llu evaluations", optimizer,
                 what_prec, (unsigned long long)user.calls, (unsigned long long)re.evaluations);

    cr_assert_geq(rb.iterations, 3, "%s %s: too short to compare", optimizer, what_prec);
    cr_assert_eq(why_e, why_b, "%s %s %s: stop %d vs %d", optimizer, objective, what_prec, why_e,
                 why_b);
    cr_assert_eq(re.iterations, rb.iterations);
    cr_assert_eq(re.evaluations, rb.evaluations, "%s %s %s: %llu vs %llu evaluations", optimizer,
                 objective, what_prec, (unsigned long long)re.evaluations,
                 (unsigned long long)rb.evaluations);
    cr_assert_eq(te.n, tb.n);
    for (size_t k = 0; k < tb.n; ++k)
        cr_assert(memcmp(&te.loss[k], &tb.loss[k], sizeof te.loss[k]) == 0,
                  "%s %s %s: loss at %zu %.17g vs %.17g", optimizer, objective, what_prec, k,
                  te.loss[k], tb.loss[k]);
    const size_t bytes = o.dim * (prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float));
    cr_assert(memcmp(a, b, bytes) == 0, "%s %s %s: theta differs", optimizer, objective, what_prec);
    cr_assert_eq(re.grad_norm, rb.grad_norm);
    free(a);
    free(b);
}

Test(extgrad_qn, lbfgs_sphere_double)
{
    expect_identical("lbfgs", "sphere", CLOPT_DOUBLE);
}

Test(extgrad_qn, cg_sphere_double)
{
    expect_identical("cg", "sphere", CLOPT_DOUBLE);
}

Test(extgrad_qn, lbfgs_weighted_double)
{
    expect_identical("lbfgs", weighted_path(), CLOPT_DOUBLE);
}

Test(extgrad_qn, cg_weighted_double)
{
    expect_identical("cg", weighted_path(), CLOPT_DOUBLE);
}

/* A run checkpointed at iteration 5 and resumed in a new external solver ends on the bits of
 * the uninterrupted run (float: the caller's loss rounded to float, the same in both). */
static void expect_resumed(const char *optimizer)
{
    char *path = path_in(dir, "ck.bin");
    struct clopt_options o = options(optimizer, weighted_path(), CLOPT_FLOAT, 12);
    prepare_user(&o, 5);
    const struct clopt_external_options e = external();
    struct clopt_solver *s = NULL;
    struct clopt_result r;
    int why;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    void *whole = run(s, &o, &r, &why);
    clopt_solver_destroy(s);
    cr_assert_eq(r.iterations, 12, "%s: %llu iterations (stop %d)", optimizer,
                 (unsigned long long)r.iterations, why);
    const uint64_t evals = r.evaluations;

    o.max_iters = 5;
    o.checkpoint = path;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    free(run(s, &o, &r, &why));
    clopt_solver_destroy(s);
    cr_assert_eq(r.iterations, 5);

    o.max_iters = 12;
    o.checkpoint = NULL;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    void *resumed = run(s, &o, &r, &why);
    clopt_solver_destroy(s);
    cr_assert_eq(r.iterations, 12);
    cr_assert_eq(r.evaluations, evals);
    cr_assert(memcmp(whole, resumed, o.dim * sizeof(float)) == 0, "%s: resumed run differs",
              optimizer);
    free(whole);
    free(resumed);
    free(path);
}

Test(extgrad_qn, lbfgs_checkpoint_and_resume)
{
    expect_resumed("lbfgs");
}

Test(extgrad_qn, cg_checkpoint_and_resume)
{
    expect_resumed("cg");
}

Test(extgrad_qn, lbfgs_sphere_float)
{
    expect_identical("lbfgs", "sphere", CLOPT_FLOAT);
}

Test(extgrad_qn, cg_weighted_float)
{
    expect_identical("cg", weighted_path(), CLOPT_FLOAT);
}

/* A caller built against the first version of clopt_external_options (no loss_double) is
 * read as it was: its loss is in the solver's precision. */
Test(extgrad_qn, first_version_of_the_external_options)
{
    struct clopt_options o = options("lbfgs", "sphere", CLOPT_FLOAT, 3);
    prepare_user(&o, 1);
    struct clopt_external_options e = external();
    const size_t align = _Alignof(struct clopt_external_options);
    e.struct_size =
        (offsetof(struct clopt_external_options, loss_double) + align - 1) / align * align;
    cr_assert_lt(e.struct_size, sizeof e);
    e.loss_double = 1; /* past the caller's struct: not read */
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_OK, "%s", clopt_errmsg(ctx));
    size_t bytes = 0;
    cr_assert_eq(clGetMemObjectInfo(clopt_solver_buffer(s, CLOPT_BUFFER_LOSS), CL_MEM_SIZE,
                                    sizeof bytes, &bytes, NULL),
                 CL_SUCCESS);
    cr_assert_eq(bytes, sizeof(float));
    struct clopt_result r;
    int why;
    free(run(s, &o, &r, &why));
    cr_assert_eq(r.iterations, 3);
    clopt_solver_destroy(s);
}

/* lbfgs keeps a shard's 2 history + 3 vectors in one buffer: a dimension whose vectors do
 * not fit the device's largest buffer takes two shards, which external gradients refuse with
 * the number that fits and the option to lower (nothing is allocated before the check). */
Test(extgrad_qn, history_too_large_for_one_buffer)
{
    struct clopt_options o = options("lbfgs", "sphere", CLOPT_DOUBLE, 3);
    o.history = 64;
    const uint64_t max_alloc = clopt_context_device(ctx)->max_alloc_bytes;
    o.dim = (size_t)(max_alloc / (131 * sizeof(double))) + 100000;
    const struct clopt_external_options e = external();
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_ERR_INVALID_ARG);
    cr_assert_null(s);
    const char *msg = clopt_errmsg(ctx);
    cr_assert(strstr(msg, "keeps a shard's 131 vectors"), "%s", msg);
    cr_assert(strstr(msg, "lower options.history or options.dim"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'), "%s", msg);
}
