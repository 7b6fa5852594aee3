/* A solver's life: creating it (checks, plan, build, buffers, theta_0, warm-up) and
 * destroying it; and theta_0 itself, drawn on the device by the init kernel. */
#include "solver.h"
#include "qn/qn.h"
#include "kernel_args.h"

#include "abi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Optimizer state starts at zero (velocity, moments). */
static int reset_state(struct clopt_solver *s)
{
    for (size_t i = 0; i < s->n_shards; ++i)
        for (size_t k = 0; k < s->n_state; ++k) {
            int status = clopt_enqueue_zero(s, s->shards[i].state[k],
                                            s->shards[i].count * s->elem_size, "optimizer state");
            if (status != CLOPT_OK)
                return status;
        }
    s->fresh_state = 1;
    return CLOPT_OK;
}

int clopt_init_theta(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    const cl_uint kinds[] = {[CLOPT_INIT_NORMAL] = 0,
                             [CLOPT_INIT_UNIFORM] = 1,
                             [CLOPT_INIT_CONST] = 2,
                             [CLOPT_INIT_NONE] = 2};
    const cl_uint kind = kinds[s->opts.init];
    const union real_arg value =
        clopt_real_value(s, s->opts.init == CLOPT_INIT_NONE ? 0.0 : s->opts.init_value);
    const cl_uint seed_lo = (cl_uint)s->opts.seed, seed_hi = (cl_uint)(s->opts.seed >> 32);
    /* Every shard is written from the first device's queue: the other devices must be idle
     * (a replay comes here after a run). */
    int status = s->n_lanes > 1 ? clopt_sync_lanes(s, 1) : CLOPT_OK;
    size_t local = 0;
    if (status == CLOPT_OK)
        status = clopt_set_up_group(s, s->k_init, &local);
    /* Chunks of at most s->launch_items elements: each launch is told where its chunk starts
     * through its arguments (the first element's global index, and the buffer position of
     * element 0 of the chunk), so no work-item id on the device passes the chunk's size. */
    const size_t chunk = status == CLOPT_OK ? clopt_launch_chunk(s, local) : 1;
    /* The caller's own theta buffer with CLOPT_INIT_NONE is the start point as it is. */
    const int keep = s->external && s->ext.theta && s->opts.init == CLOPT_INIT_NONE;
    for (size_t i = 0; i < s->n_shards && !status && !keep; ++i) {
        struct shard *sh = &s->shards[i];
        for (size_t start = 0; start < sh->count && !status; start += chunk) {
            const cl_ulong count = sh->count - start < chunk ? sh->count - start : chunk;
            const cl_ulong offset = sh->offset + start, skip = s->lead + start;
            status = clopt_set_arg(ctx, s->k_init, INIT_ARG_THETA, sizeof(cl_mem), &sh->theta);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_N_SHARD, sizeof count, &count);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_OFFSET, sizeof offset, &offset);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_KIND, sizeof kind, &kind);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_VALUE, s->elem_size, &value);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_SEED_LO, sizeof seed_lo, &seed_lo);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_SEED_HI, sizeof seed_hi, &seed_hi);
            if (!status)
                status = clopt_set_arg(ctx, s->k_init, INIT_ARG_SKIP, sizeof skip, &skip);
            const size_t global = ((size_t)count + local - 1) / local * local;
            cl_int err = status ? CL_SUCCESS
                                : clEnqueueNDRangeKernel(ctx->queue, s->k_init, 1, NULL, &global,
                                                         &local, 0, NULL, NULL);
            if (err != CL_SUCCESS)
                status = clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_init)");
        }
    }
    if (status != CLOPT_OK)
        return status;
    status = reset_state(s);
    if (status != CLOPT_OK)
        return status;
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clFinish(clopt_init)");
    s->theta_generated = s->opts.init != CLOPT_INIT_NONE;
    return CLOPT_OK;
}

/* LAUNCH_ITEMS_MAX, or less where CLOPT_MAX_LAUNCH_ITEMS says so (tests force many chunks
 * on small problems with it). Not an option: the result never depends on it. */
static size_t launch_items(void)
{
    const char *text = getenv("CLOPT_MAX_LAUNCH_ITEMS");
    if (!text || !*text)
        return LAUNCH_ITEMS_MAX;
    char *end = NULL;
    const unsigned long long v = strtoull(text, &end, 10);
    return *end || v == 0 || v > LAUNCH_ITEMS_MAX ? LAUNCH_ITEMS_MAX : (size_t)v;
}

/* The largest multiple of `group` within s->launch_items, and at least one group. */
size_t clopt_launch_chunk(const struct clopt_solver *s, size_t group)
{
    const size_t chunk = s->launch_items / group * group;
    return chunk ? chunk : group;
}

/* Everything decided before the device does any work: hyper-parameters, the checkpoint
 * configuration, the loss lag, the knobs and the objective's shape. */
static int configure(struct clopt_solver *s, const struct clopt_options *opts)
{
    struct clopt_context *ctx = s->ctx;
    s->launch_items = launch_items();
    int status = clopt_resolve_hyper(s);
    if (status == CLOPT_OK)
        status = clopt_build_config(s, opts);
    if (status != CLOPT_OK)
        return status;
    size_t lag = (LAG_ELEMS + s->n - 1) / s->n;
    s->lag = lag < LAG_MIN ? LAG_MIN : lag > LAG_MAX ? LAG_MAX : lag;

    size_t max_group = 0;
    cl_int err = clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group,
                                 &max_group, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetDeviceInfo(CL_DEVICE_MAX_WORK_GROUP_SIZE)");
    status = clopt_resolve_knobs(s, max_group);
    /* A fused run looks at losses between blocks: those of the block just queued must not
     * be due yet, or the host would wait for the device after every block. */
    if (s->knobs.fuse > 1 && s->lag < s->knobs.fuse + 1)
        s->lag = s->knobs.fuse + 1;
    s->acc_size = s->knobs.accumulate == 1 ? sizeof(double) : sizeof(float);
    if (status == CLOPT_OK)
        status = clopt_resolve_objective(s);
    /* Element 0 of a stencil's shard sits on an aligned position after its left halo. */
    s->lead = s->halo ? (s->halo + CLOPT_LEAD_ALIGN - 1) / CLOPT_LEAD_ALIGN * CLOPT_LEAD_ALIGN : 0;
    if (status == CLOPT_OK && s->knobs.fuse > 1 && s->halo)
        status =
            clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                       "knobs.fuse=%zu needs a separable objective; '%s' is a stencil objective "
                       "(each step needs its neighbours' updated values): use knobs.fuse=1",
                       s->knobs.fuse, opts->objective);
    return status;
}

/* Shards, kernels, buffers, the data vector, theta_0, and a first launch of each kernel. */
static int set_up_device(struct clopt_solver *s)
{
    int status = clopt_plan_shards(s);
    if (status == CLOPT_OK && s->external)
        status = clopt_external_check(s);
    if (status == CLOPT_OK)
        status = clopt_build_kernels(s);
    if (status == CLOPT_OK)
        status = clopt_allocate(s);
    if (status == CLOPT_OK && s->data_path)
        status = clopt_load_data(s);
    if (status == CLOPT_OK)
        status = clopt_init_theta(s);
    if (status == CLOPT_OK)
        status = clopt_warm_up(s);
    if (status == CLOPT_OK && s->optimizer->qn)
        status = clopt_qn_create(s);
    return status;
}

int clopt_solver_create(struct clopt_solver **out, struct clopt_context *ctx,
                        const struct clopt_options *opts)
{
    *out = NULL;
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    /* The caller's struct may be of an older version: the library reads a complete one. */
    struct clopt_options adopted;
    if (!opts) {
        clopt_options_init(&adopted);
    } else {
        char err[512];
        if (clopt_options_adopt(opts, &adopted, err, sizeof err) != CLOPT_OK)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", err);
    }
    return clopt_solver_create_with(out, ctx, &adopted, NULL);
}

/* options.gd_step: gd with Barzilai-Borwein steps runs in host/qn/ (clopt_gd_bb_optimizer),
 * which checkpoints it as it does lbfgs/cg (host/qn/qn_ckpt.c) but has no external-gradient
 * path for it. */
static int choose_gd_step(struct clopt_solver *s, const struct clopt_options *o)
{
    if (isnan(o->gd_step))
        return CLOPT_OK;
    if (strcmp(s->optimizer->name, "gd") != 0)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "options.gd_step (Barzilai-Borwein steps) is used by optimizer 'gd' "
                          "only, not '%s'",
                          s->optimizer->name);
    if (s->external)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "options.gd_step (Barzilai-Borwein steps) is not available with "
                          "external gradients: use gd's fixed step, lbfgs or cg");
    s->optimizer = clopt_gd_bb_optimizer();
    return CLOPT_OK;
}

int clopt_solver_create_with(struct clopt_solver **out, struct clopt_context *ctx,
                             const struct clopt_options *complete,
                             const struct clopt_external_options *ext)
{
    struct clopt_options adopted = *complete;
    const struct clopt_options *opts = &adopted;
    /* An external solver's objective is the caller's: its name and parameters are not
     * looked at, and the checkpoint configuration records "external". */
    if (ext) {
        /* One callback per step: never the device's default fusion, should it become > 1. */
        if (adopted.knobs.fuse == 0)
            adopted.knobs.fuse = 1;
        adopted.objective = "sphere";
        adopted.params = NULL;
        adopted.n_params = 0;
    }
    int status = clopt_validate_options(ctx, opts);
    if (status != CLOPT_OK)
        return status;
    if (ext)
        adopted.objective = clopt_external_objective.name;
    struct clopt_solver *s = calloc(1, sizeof *s);
    if (!s)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    s->ctx = ctx;
    s->opts = *opts;
    if (ext) {
        s->external = 1;
        s->ext = *ext;
    }
    s->objective = ext ? &clopt_external_objective
                   : clopt_is_objective_file(opts->objective)
                       ? NULL
                       : clopt_find_objective(opts->objective);
    s->optimizer = clopt_find_optimizer(opts->optimizer);
    status = choose_gd_step(s, opts);
    s->n = opts->dim;
    s->elem_size = opts->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    if (status == CLOPT_OK)
        status = configure(s, opts);
    if (status == CLOPT_OK)
        status = set_up_device(s);
    /* Pointers into the caller's memory are not kept past this call. */
    s->opts.params = NULL;
    s->opts.n_params = 0;
    s->opts.objective = NULL;
    s->opts.optimizer = NULL;
    s->opts.schedule = NULL;
    s->opts.checkpoint = NULL;
    if (status != CLOPT_OK) {
        clopt_solver_destroy(s);
        return status;
    }
    *out = s;
    return CLOPT_OK;
}

void clopt_solver_destroy(struct clopt_solver *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->shards && i < s->n_shards; ++i) {
        cl_mem vectors[] = {s->shards[i].theta, s->shards[i].theta_next, s->shards[i].data};
        for (size_t k = 0; k < sizeof vectors / sizeof *vectors; ++k)
            if (vectors[k])
                clReleaseMemObject(vectors[k]);
        for (size_t k = 0; k < MAX_STATE; ++k)
            if (s->shards[i].state[k])
                clReleaseMemObject(s->shards[i].state[k]);
    }
    clopt_qn_destroy(s); /* before the shards: it walks them */
    clopt_release_lanes(s);
    free(s->rank_scratch);
    free(s->rank_meet);
    free(s->shards);
    free(s->data_path);
    clopt_finish_checkpoint(s); /* a failure here has nobody left to tell */
    free(s->config);
    free(s->config_v1);
    free(s->checkpoint_path);
    free(s->resume);
    if (s->partials)
        clReleaseMemObject(s->partials);
    if (s->result)
        clReleaseMemObject(s->result);
    if (s->reduce_stage)
        clReleaseMemObject(s->reduce_stage);
    if (s->fused_hyper)
        clReleaseMemObject(s->fused_hyper);
    if (s->ext_loss)
        clReleaseMemObject(s->ext_loss);
    cl_kernel kernels[] = {s->k_step, s->k_step_loss, s->k_eval,  s->k_reduce,  s->k_init,
                           s->k_zero, s->k_put_hyper, s->k_fused, s->k_ext_loss};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; ++i)
        if (kernels[i])
            clReleaseKernel(kernels[i]);
    if (s->program)
        clReleaseProgram(s->program);
    free(s);
}
