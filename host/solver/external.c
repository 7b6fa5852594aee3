/* External gradients: a solver whose g comes from the caller's kernel (written into the
 * data vector of the "external" objective kind), on the caller's buffers or clopt's. The
 * step, run loop, stopping tests, divergence replay and checkpoints are the ordinary ones;
 * this file adds the options, the buffer checks, the callback and the caller's loss.
 * lbfgs/cg call the callback from their one evaluation, clopt_qn_eval (host/qn/), after
 * the trial point is queued into theta. */
#include "abi.h"
#include "qn/qn.h"
#include "solver.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Not in the objectives table: it has no meaning without a callback, so `clopt run` and
 * clopt_objective_names() never offer it. */
const struct clopt_objective_type clopt_external_objective = {
    .name = "external",
    .file = "obj_external.cl",
    .formula = "the caller's (gradient from its own kernel)",
    .minimum = "unknown",
    .n_params = 0,
    .suggested_lr = 0.1,
};

static void external_defaults(struct clopt_external_options *ext)
{
    memset(ext, 0, sizeof *ext);
    ext->struct_size = sizeof *ext;
}

void clopt_external_options_init_size(struct clopt_external_options *ext, size_t size)
{
    struct clopt_external_options d;
    external_defaults(&d);
    clopt_abi_init(&d, sizeof d, ext, size);
}

static int external_adopt(const struct clopt_external_options *in,
                          struct clopt_external_options *out, char *err, size_t errlen)
{
    static const struct clopt_abi_version versions[] = {
        /* 1: up to state */
        {CLOPT_ABI_OLD_SIZE(struct clopt_external_options, loss_double),
         offsetof(struct clopt_external_options, loss_double)},
        /* 2: loss_double */
        {sizeof(struct clopt_external_options), sizeof(struct clopt_external_options)},
    };
    static const struct clopt_abi_layout layout = {"external_options",
                                                   "clopt_external_options_init", versions,
                                                   sizeof versions / sizeof *versions};
    external_defaults(out);
    return clopt_abi_adopt(&layout, in, out, err, errlen);
}

/* What can be refused before anything is built. */
static int check_request(struct clopt_context *ctx, const struct clopt_options *opts,
                         const struct clopt_external_options *ext)
{
    const char *optimizer = opts->optimizer ? opts->optimizer : "";
    const struct clopt_optimizer_type *type = clopt_find_optimizer(optimizer);
    if (!ext->gradient)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "external_options.gradient is NULL: give the callback that queues your "
                          "gradient kernel");
    /* lbfgs and cg compare losses at the line search's trial points (host/qn/). */
    if (type && type->qn && !ext->has_loss)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.optimizer '%s' compares losses in its line search, and "
                          "external_options.has_loss is 0: write the loss in the callback and "
                          "set has_loss",
                          optimizer);
    if (opts->knobs.fuse > 1)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.fuse=%zu cannot fuse steps whose gradient comes from the "
                          "caller's kernel (one call per step): use knobs.fuse=1",
                          opts->knobs.fuse);
    if (!ext->has_loss && (!isnan(opts->ftol) || !isnan(opts->target)))
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "options.%s tests a loss, and external_options.has_loss is 0: write the loss "
            "in the callback and set has_loss, or leave options.%s NaN",
            !isnan(opts->ftol) ? "ftol" : "target", !isnan(opts->ftol) ? "ftol" : "target");
    const int some_state = ext->state[0] || ext->state[1] || ext->state[2];
    if (some_state && !ext->theta)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "external_options.state is given without external_options.theta: give theta too, or "
            "no state");
    return CLOPT_OK;
}

int clopt_solver_create_external(struct clopt_solver **out, struct clopt_context *ctx,
                                 const struct clopt_options *opts,
                                 const struct clopt_external_options *ext)
{
    if (out)
        *out = NULL;
    if (!out || !ctx)
        return CLOPT_ERR_INVALID_ARG;
    if (!ext)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "external options are NULL: call clopt_external_options_init() and "
                          "set external_options.gradient");
    struct clopt_external_options adopted;
    char err[512];
    if (external_adopt(ext, &adopted, err, sizeof err) != CLOPT_OK)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", err);
    struct clopt_options o;
    if (!opts)
        clopt_options_init(&o);
    else if (clopt_options_adopt(opts, &o, err, sizeof err) != CLOPT_OK)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", err);
    int status = check_request(ctx, &o, &adopted);
    if (status != CLOPT_OK)
        return status;
    return clopt_solver_create_with(out, ctx, &o, &adopted);
}

/* A caller's buffer: of this context, and exactly `bytes` long. */
static int check_buffer(struct clopt_solver *s, cl_mem mem, const char *field, size_t bytes)
{
    struct clopt_context *ctx = s->ctx;
    cl_context owner = NULL;
    size_t size = 0;
    cl_int err = clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
    if (err == CL_SUCCESS)
        err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err == CL_INVALID_MEM_OBJECT)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "external_options.%s is not a valid cl_mem (CL_INVALID_MEM_OBJECT): pass a "
            "buffer from clCreateBuffer, or NULL",
            field);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetMemObjectInfo(external buffer)");
    if (owner != ctx->context)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "external_options.%s belongs to another cl_context than the solver's: create "
            "the clopt context with clopt_context_create_from_cl() on the "
            "buffer's context and queue",
            field);
    if (size != bytes)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "external_options.%s holds %zu bytes; it must hold options.dim = %zu elements "
            "of %zu bytes (%s), %zu bytes",
            field, size, s->n, s->elem_size, s->elem_size == sizeof(double) ? "double" : "float",
            bytes);
    return CLOPT_OK;
}

/* Elements of one lbfgs/cg shard: all its vectors share one buffer (host/qn/). */
static size_t qn_fit(const struct clopt_solver *s)
{
    return (size_t)(s->ctx->info.max_alloc_bytes / clopt_qn_vectors(s) / s->elem_size);
}

/* Whether that, rather than options.max_shard_bytes, is what split theta. */
static int qn_vectors_bind(const struct clopt_solver *s)
{
    const size_t cap = s->opts.max_shard_bytes;
    return cap == 0 || cap / s->elem_size >= qn_fit(s);
}

int clopt_external_check(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    /* The caller's kernel and buffers live on one device and its queue. */
    if (ctx->n_devices > 1)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "external gradients run on one device (context_options.devices names "
                          "%zu): name one device",
                          ctx->n_devices);
    if (s->n_shards != 1 && s->optimizer->qn && qn_vectors_bind(s))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "external gradients need theta in one buffer, and %s keeps a shard's "
                          "%zu vectors in one buffer of at most %llu bytes (the device's "
                          "largest): about %zu elements fit, options.dim = %zu takes %zu shards; "
                          "lower %soptions.dim",
                          s->optimizer->name, clopt_qn_vectors(s),
                          (unsigned long long)ctx->info.max_alloc_bytes, qn_fit(s), s->n,
                          s->n_shards,
                          s->optimizer->qn == CLOPT_QN_LBFGS ? "options.history or " : "");
    if (s->n_shards != 1)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "external gradients need theta in one buffer, and options.dim = %zu "
                          "takes %zu shards: raise options.max_shard_bytes (0 = the device's "
                          "largest buffer) or lower options.dim",
                          s->n, s->n_shards);
    if (s->knobs.fuse > 1)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.fuse=%zu cannot fuse steps whose gradient comes from the "
                          "caller's kernel: use knobs.fuse=1",
                          s->knobs.fuse);
    if (s->ext.loss_double && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "external_options.loss_double needs a device with fp64, and %s has "
                          "none: write the loss in the solver's precision (loss_double = 0)",
                          ctx->info.name);
    const size_t bytes = s->n * s->elem_size;
    int status = CLOPT_OK;
    if (s->ext.theta)
        status = check_buffer(s, s->ext.theta, "theta", bytes);
    if (status == CLOPT_OK && s->ext.grad)
        status = check_buffer(s, s->ext.grad, "grad", bytes);
    for (size_t k = 0; k < 3 && status == CLOPT_OK; ++k) {
        char field[16];
        snprintf(field, sizeof field, "state[%zu]", k);
        if (k < s->n_state && s->ext.theta && !s->ext.state[k] &&
            (s->ext.state[0] || s->ext.state[1] || s->ext.state[2]))
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "external_options.%s is NULL but other state vectors are given: "
                              "optimizer '%s' keeps %zu; give all of them or none",
                              field, s->optimizer->name, s->n_state);
        if (k >= s->n_state && s->ext.state[k])
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "external_options.%s is given but optimizer '%s' keeps %zu state "
                              "vector%s: leave it NULL",
                              field, s->optimizer->name, s->n_state, s->n_state == 1 ? "" : "s");
        if (k < s->n_state && s->ext.state[k])
            status = check_buffer(s, s->ext.state[k], field, bytes);
    }
    return status;
}

/* The caller's buffer with a reference of clopt's own, or a new one. */
static int adopt_or_create(struct clopt_solver *s, cl_mem given, cl_mem *out, size_t bytes,
                           const char *what)
{
    if (given) {
        cl_int err = clRetainMemObject(given);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clRetainMemObject(external buffer)");
        *out = given;
        return CLOPT_OK;
    }
    cl_int err;
    *out = clCreateBuffer(s->ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return clopt_fail_cl(s->ctx, err, what);
    }
    return CLOPT_OK;
}

int clopt_external_allocate(struct clopt_solver *s, struct shard *sh)
{
    const size_t bytes = sh->count * s->elem_size;
    int status = adopt_or_create(s, s->ext.theta, &sh->theta, bytes, "clCreateBuffer(theta)");
    if (status == CLOPT_OK)
        status = adopt_or_create(s, s->ext.grad, &sh->data, bytes, "clCreateBuffer(gradient)");
    for (size_t k = 0; k < s->n_state && status == CLOPT_OK; ++k)
        status = adopt_or_create(s, s->ext.state[k], &sh->state[k], bytes,
                                 "clCreateBuffer(optimizer state)");
    const size_t loss_bytes = s->ext.loss_double ? sizeof(double) : s->elem_size;
    if (status == CLOPT_OK)
        status = adopt_or_create(s, NULL, &s->ext_loss, loss_bytes, "clCreateBuffer(loss)");
    /* A loss never written reads 0 (has_loss = 0, or a callback that skips it); the
     * gradient of the warm-up launch (no elements) is never read. */
    if (status == CLOPT_OK)
        status = clopt_enqueue_zero(s, s->ext_loss, loss_bytes, "loss");
    return status;
}

int clopt_external_gradient(struct clopt_solver *s, int want_loss)
{
    struct clopt_context *ctx = s->ctx;
    const struct clopt_gradient_call call = {
        .step = s->step,
        .theta = s->shards[0].theta,
        .grad = s->shards[0].data,
        .loss = s->ext_loss,
        .want_loss = want_loss && s->ext.has_loss,
    };
    cl_event done = NULL;
    const int rc = s->ext.gradient(s->ext.gradient_user, ctx->queue, &call, &done);
#ifdef CLOPT_FAULT_H
    /* The caller's event becomes clopt's to release: count it as one clopt holds. */
    if (done)
        clopt_fault_live(CLOPT_FAULT_EVENT, 1);
#endif
    if (rc != 0) {
        if (done)
            clReleaseEvent(done);
        return clopt_fail(ctx, CLOPT_ERR_OPENCL,
                          "the gradient callback returned %d at step %llu: see its own report", rc,
                          (unsigned long long)s->step);
    }
    if (!done)
        return CLOPT_OK;
    /* Work on another queue: the step waits for it on the device, not on the host. */
    cl_int err = clEnqueueBarrierWithWaitList(ctx->queue, 1, &done, NULL);
    clReleaseEvent(done);
    return err == CL_SUCCESS ? CLOPT_OK
                             : clopt_fail_cl(ctx, err, "clEnqueueBarrierWithWaitList(gradient)");
}

int clopt_external_fold_loss(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    int status = clopt_set_arg(ctx, s->k_ext_loss, 0, sizeof(cl_mem), &s->result);
    if (status == CLOPT_OK)
        status = clopt_set_arg(ctx, s->k_ext_loss, 1, sizeof(cl_mem), &s->ext_loss);
    if (status != CLOPT_OK)
        return status;
    const size_t one = 1;
    cl_int err =
        clEnqueueNDRangeKernel(ctx->queue, s->k_ext_loss, 1, NULL, &one, &one, 0, NULL, NULL);
    return err == CL_SUCCESS ? CLOPT_OK
                             : clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_ext_loss)");
}

cl_mem clopt_solver_buffer(struct clopt_solver *s, enum clopt_buffer which)
{
    if (!s)
        return NULL;
    struct clopt_context *ctx = s->ctx;
    if (s->n_shards != 1 || s->halo) {
        clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                   "theta is split into %zu shards%s: clopt_solver_buffer needs one buffer "
                   "(raise options.max_shard_bytes)",
                   s->n_shards, s->halo ? " with stencil halos" : "");
        return NULL;
    }
    const struct shard *sh = &s->shards[0];
    if (which == CLOPT_BUFFER_THETA)
        return sh->theta;
    if ((which == CLOPT_BUFFER_GRAD || which == CLOPT_BUFFER_LOSS) && !s->external) {
        clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                   "the gradient and loss buffers exist for solvers of "
                   "clopt_solver_create_external only");
        return NULL;
    }
    if (which == CLOPT_BUFFER_GRAD)
        return sh->data;
    if (which == CLOPT_BUFFER_LOSS)
        return s->ext_loss;
    if (which >= CLOPT_BUFFER_STATE0 && (size_t)(which - CLOPT_BUFFER_STATE0) < s->n_state)
        return sh->state[which - CLOPT_BUFFER_STATE0];
    clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
               "no buffer %d: optimizer '%s' keeps %zu state vectors (CLOPT_BUFFER_STATE0 + k)",
               (int)which, s->optimizer->name, s->n_state);
    return NULL;
}
