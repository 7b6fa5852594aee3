/* Launches: kernel arguments, the step, fused and evaluation kernels over every shard, the
 * halo exchange of stencils, the reduction of the loss partials and its read-back. */
#include "solver.h"
#include "kernel_args.h"

#include <math.h>
#include <stdio.h>

_Static_assert(MAX_STATE == STEP_STATE_ARGS, "each state vector is one step kernel argument");

union real_arg clopt_real_value(const struct clopt_solver *s, double x)
{
    union real_arg r;
    if (s->elem_size == sizeof(double))
        r.d = x;
    else
        r.f = (float)x;
    return r;
}

int clopt_set_arg(struct clopt_context *ctx, cl_kernel kernel, cl_uint index, size_t size,
                  const void *value)
{
    cl_int err = clSetKernelArg(kernel, index, size, value);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(ctx, err, "clSetKernelArg");
}

/* Work-groups of the set-up kernels (init.cl) are SET_UP_GROUP items where the kernel allows
 * it: left to the runtime, PoCL picks a size per launch size and compiles the kernel once
 * for each (seconds apiece). */
#define SET_UP_GROUP ((size_t)256)

int clopt_set_up_group(struct clopt_solver *s, cl_kernel kernel, size_t *local)
{
    size_t limit = 0;
    cl_int err = clGetKernelWorkGroupInfo(kernel, s->ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof limit, &limit, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clGetKernelWorkGroupInfo(set-up kernel)");
    *local = limit >= SET_UP_GROUP ? SET_UP_GROUP : 1;
    return CLOPT_OK;
}

/* The zeroing kernel runs one work-item per word, in launches of at most s->launch_items
 * work-items placed by a global offset (some drivers refuse or wrap global sizes past 2^31
 * or 2^32); the kernel adds the offset to its id in 64 bits. */
int clopt_enqueue_zero(struct clopt_solver *s, cl_mem buffer, size_t bytes, const char *what)
{
    struct clopt_context *ctx = s->ctx;
    if (bytes % sizeof(cl_uint)) /* every buffer holds floats or doubles */
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "internal error: %s of %zu bytes is not a whole number of words", what,
                          bytes);
    const cl_ulong words = bytes / sizeof(cl_uint);
    if (!words)
        return CLOPT_OK;
    int status = clopt_set_arg(ctx, s->k_zero, ZERO_ARG_BUFFER, sizeof(cl_mem), &buffer);
    if (!status)
        status = clopt_set_arg(ctx, s->k_zero, ZERO_ARG_WORDS, sizeof words, &words);
    size_t local = 0;
    if (!status)
        status = clopt_set_up_group(s, s->k_zero, &local);
    if (status)
        return status;
    const size_t chunk = clopt_launch_chunk(s, local);
    for (size_t start = 0; start < words; start += chunk) {
        const size_t left = words - start;
        size_t global = (left + local - 1) / local * local;
        if (global > chunk)
            global = chunk;
        cl_int err = clEnqueueNDRangeKernel(ctx->queue, s->k_zero, 1, &start, &global, &local, 0,
                                            NULL, NULL);
        if (err != CL_SUCCESS) {
            char call[96];
            snprintf(call, sizeof call, "clEnqueueNDRangeKernel(clopt_zero, %s)", what);
            return clopt_fail_cl(ctx, err, call);
        }
    }
    return CLOPT_OK;
}

/* Copies the elements next to each shard boundary into the neighbouring shard's halo, on
 * the device. Halos beyond the ends of theta stay zero. */
static int exchange_halos(struct clopt_solver *s)
{
    const size_t width = s->halo * s->elem_size;
    for (size_t i = 0; i + 1 < s->n_shards; ++i) {
        const struct shard *left = &s->shards[i], *right = &s->shards[i + 1];
        if (left->lane != right->lane) { /* on two devices (lanes.c) */
            int status = clopt_exchange_cross_halo(s, i);
            if (status != CLOPT_OK)
                return status;
            continue;
        }
        cl_command_queue queue = s->lanes[left->lane].queue;
        /* After another device's copies into this device's first shard, if any (lanes.c). */
        const cl_event *after =
            s->lanes[left->lane].after_halo ? &s->lanes[left->lane].after_halo : NULL;
        /* The last `halo` elements of left go in front of right's element 0; the first ones
         * of right go behind left's last. */
        cl_int err = clEnqueueCopyBuffer(queue, left->theta, right->theta,
                                         clopt_theta_at(s, left->count - s->halo),
                                         clopt_left_halo_at(s), width, after ? 1 : 0, after, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueCopyBuffer(queue, right->theta, left->theta, clopt_theta_at(s, 0),
                                      clopt_theta_at(s, left->count), width, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(halo)");
    }
    /* Several ranks: the halos at the ends of this rank's range come from its neighbours. */
    return clopt_ranks_active(s) ? clopt_ranks_halos(s) : CLOPT_OK;
}

/* Queues a step kernel over `global` work-items of one shard: in one launch, or where that
 * passes s->launch_items, in chunks of whole work-groups placed by a global offset, from
 * which the kernel numbers its tiles (get_global_offset / CLOPT_WG + get_group_id). A fixed
 * grid (knobs.groups_per_cu) is never cut: plan_shards keeps it within one launch. `last`
 * gets the event of the last chunk; the first waits for `wait` (a lane's cross-queue events). */
static int launch_chunks(struct clopt_solver *s, cl_command_queue queue, cl_kernel kernel,
                         size_t global, const cl_event *wait, cl_uint n_wait, cl_event *last)
{
    const size_t local = s->knobs.work_group;
    const size_t chunk = clopt_launch_chunk(s, local);
    for (size_t start = 0; start < global; start += chunk) {
        const size_t size = global - start < chunk ? global - start : chunk;
        /* The first chunk waits for the events; the in-order queue orders the rest. */
        const cl_uint n = start ? 0 : n_wait;
        cl_int err =
            clEnqueueNDRangeKernel(queue, kernel, 1, start ? &start : NULL, &size, &local, n,
                                   n ? wait : NULL, start + size >= global ? last : NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueNDRangeKernel(step)");
    }
    return CLOPT_OK;
}

/* Queues one step (or evaluation) kernel over every shard. */
static int enqueue_launches(struct clopt_solver *s, cl_kernel kernel,
                            const double hyper[CLOPT_HYPER_SLOTS], cl_event *last, int dry)
{
    struct clopt_context *ctx = s->ctx;
    union real_arg h[CLOPT_HYPER_SLOTS];
    for (size_t k = 0; k < CLOPT_HYPER_SLOTS; ++k)
        h[k] = clopt_real_value(s, hyper ? hyper[k] : 0.0);
    if (s->halo && !dry) {
        int status = exchange_halos(s);
        if (status != CLOPT_OK)
            return status;
    }
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        /* A dry launch has the real shape but no elements: only the partials are written. */
        const cl_ulong count = dry ? 0 : sh->count, offset = sh->offset;
        /* A stencil reads theta and writes its partner; the data argument is unused (any
         * buffer) unless the objective has data. */
        cl_mem destination = s->halo ? sh->theta_next : sh->theta;
        cl_mem data = sh->data ? sh->data : sh->theta;
        /* Lanes beyond the first write partials (numbered from their first slot), read the
         * fused hyper-parameters and the norm from buffers of their own (struct lane). */
        struct lane *lane = &s->lanes[sh->lane];
        const int own = sh->lane > 0;
        cl_mem partials = own ? lane->partials : s->partials;
        cl_mem result = own ? lane->result : s->result;
        const cl_ulong base = sh->partial_base - (own ? lane->first_slot : 0);
        int status = clopt_set_arg(ctx, kernel, STEP_ARG_THETA, sizeof(cl_mem), &destination);
        for (cl_uint k = 0; k < STEP_STATE_ARGS && !status; ++k)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_STATE0 + k, sizeof(cl_mem), &sh->state[k]);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_N_SHARD, sizeof count, &count);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_OFFSET, sizeof offset, &offset);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_PARTIALS, sizeof(cl_mem), &partials);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_PARTIAL_BASE, sizeof base, &base);
        for (cl_uint k = 0; k < CLOPT_HYPER_SLOTS && !status; ++k)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_H0 + k, s->elem_size, &h[k]);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_GRAD_SQ, sizeof(cl_mem), &result);
        if (!status && kernel == s->k_fused && s->n_lanes > 1) {
            const cl_ulong stride = own ? lane->n_slots : s->n_partials;
            cl_mem fused = own ? lane->fused_hyper : s->fused_hyper;
            status = clopt_set_arg(ctx, kernel, FUSED_ARG_HYPER, sizeof(cl_mem), &fused);
            if (!status)
                status =
                    clopt_set_arg(ctx, kernel, FUSED_ARG_PARTIAL_STRIDE, sizeof stride, &stride);
        }
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_SRC, sizeof(cl_mem), &sh->theta);
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_DATA, sizeof(cl_mem), &data);
        const cl_ulong n_total = s->n;
        if (!status)
            status = clopt_set_arg(ctx, kernel, STEP_ARG_N_TOTAL, sizeof n_total, &n_total);
        if (status)
            return status;
        /* A lane's first launch waits for what other queues did with its buffers. */
        cl_event wait[2];
        cl_uint n_wait = 0;
        if (i == lane->first_shard)
            clopt_lane_take_waits(lane, wait, &n_wait);
        cl_event *event = last && s->n_lanes == 1 && i + 1 == s->n_shards ? last : NULL;
        status = launch_chunks(s, lane->queue, kernel, sh->global_size, wait, n_wait, event);
        for (cl_uint k = 0; k < n_wait; ++k)
            clReleaseEvent(wait[k]);
        if (status)
            return status;
    }
    /* With several devices the marker waited for is lane 0's, after every lane's launches. */
    if (last && s->n_lanes > 1) {
        int status = clopt_lanes_marker(s, last);
        if (status != CLOPT_OK)
            return status;
    }
    /* The updated stencil iterate is in the partners now. */
    if (s->halo && !dry && kernel != s->k_eval)
        for (size_t i = 0; i < s->n_shards; ++i) {
            cl_mem t = s->shards[i].theta;
            s->shards[i].theta = s->shards[i].theta_next;
            s->shards[i].theta_next = t;
        }
    return CLOPT_OK;
}

int clopt_enqueue_eval_store(struct clopt_solver *s)
{
    const double zero[CLOPT_HYPER_SLOTS] = {0};
    return enqueue_launches(s, s->k_step_loss, zero, NULL, 0);
}

/* Reads the result buffer's loss and ||g||^2 into host (non-blocking when done is given). */
int clopt_enqueue_read_result(struct clopt_solver *s, void *host, cl_event *done)
{
    cl_int err = clEnqueueReadBuffer(s->ctx->queue, s->result, done ? CL_FALSE : CL_TRUE, 0,
                                     2 * s->acc_size, host, 0, NULL, done);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clEnqueueReadBuffer(loss)");
}

int clopt_reduce_launch(struct clopt_solver *s, cl_mem in, cl_ulong count, cl_mem out,
                        cl_ulong first, cl_ulong span, size_t group0, size_t groups)
{
    struct clopt_context *ctx = s->ctx;
    const cl_ulong group0_arg = group0;
    int status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_PARTIALS, sizeof(cl_mem), &in);
    if (!status)
        status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_COUNT, sizeof count, &count);
    if (!status)
        status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_OUT, sizeof(cl_mem), &out);
    if (!status)
        status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_FIRST, sizeof first, &first);
    if (!status)
        status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_SPAN, sizeof span, &span);
    if (!status)
        status = clopt_set_arg(ctx, s->k_reduce, REDUCE_ARG_GROUP0, sizeof group0_arg, &group0_arg);
    if (status)
        return status;
    const size_t local = s->knobs.reduce_group, global = groups * local;
    cl_int err =
        clEnqueueNDRangeKernel(ctx->queue, s->k_reduce, 1, NULL, &global, &local, 0, NULL, NULL);
    return err == CL_SUCCESS ? CLOPT_OK
                             : clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_reduce)");
}

/* A fold of `count` pairs from pair `first` of `in` in `groups` equal runs, into `out`. */
static int reduce_launch(struct clopt_solver *s, cl_mem in, cl_ulong count, cl_mem out,
                         cl_ulong first, size_t groups)
{
    const cl_ulong span = (count + groups - 1) / groups;
    return clopt_reduce_launch(s, in, count, out, first, span, 0, groups);
}

size_t clopt_reduce_groups(size_t n_partials, size_t reduce_group)
{
    if (reduce_group <= 1)
        return 1;
    const size_t per_group = reduce_group * REDUCE_PAIRS_PER_ITEM;
    const size_t groups = (n_partials + per_group - 1) / per_group;
    return groups < 1 ? 1 : groups > REDUCE_GROUPS_MAX ? REDUCE_GROUPS_MAX : groups;
}

/* Reduces the partials of iteration `iteration_slot` of the last launch (0 unless fused):
 * in one group, or, with knobs.reduce_group > 1 and partials enough, in many groups whose
 * pairs one group then folds (clopt_reduce_groups). */
int clopt_enqueue_reduce(struct clopt_solver *s, size_t iteration_slot, void *host, cl_event *done)
{
    const cl_ulong count = s->n_partials, first = iteration_slot * s->n_partials;
    const size_t groups = clopt_reduce_groups(s->n_partials, s->knobs.reduce_group);
    /* The other devices' partials join the first's, in tile order, and then every rank's,
     * so the fold below is one device's in one process; or, where ranks own whole groups of
     * the first stage, each rank runs its groups and their pairs are gathered (ranks.c). */
    const int rank_groups = clopt_ranks_active(s) && s->rank_blocks;
    int status = s->n_lanes > 1 ? clopt_gather_partials(s, iteration_slot) : CLOPT_OK;
    if (!status && clopt_ranks_active(s) && !rank_groups)
        status = clopt_ranks_gather_partials(s, iteration_slot);
    if (!status)
        status = rank_groups ? clopt_ranks_fold_groups(s, first)
                 : groups == 1
                     ? reduce_launch(s, s->partials, count, s->result, first, 1)
                     : reduce_launch(s, s->partials, count, s->reduce_stage, first, groups);
    if (status == CLOPT_OK && groups > 1)
        status = reduce_launch(s, s->reduce_stage, groups, s->result, 0, 1);
    if (status == CLOPT_OK && s->external)
        status = clopt_external_fold_loss(s);
    if (status != CLOPT_OK)
        return status;
    /* Without host the result stays on the device (clip-norm reads it there). */
    return host ? clopt_enqueue_read_result(s, host, done) : CLOPT_OK;
}

/* Sets the fused kernel's own arguments: the hyper-parameter buffer, the distance between
 * one iteration's partials and the next's, and which iterations produce partials. */
static int set_fused_args(struct clopt_solver *s, cl_uint loss_mask)
{
    const cl_ulong stride = s->n_partials;
    int status =
        clopt_set_arg(s->ctx, s->k_fused, FUSED_ARG_HYPER, sizeof(cl_mem), &s->fused_hyper);
    if (!status)
        status =
            clopt_set_arg(s->ctx, s->k_fused, FUSED_ARG_PARTIAL_STRIDE, sizeof stride, &stride);
    if (!status)
        status =
            clopt_set_arg(s->ctx, s->k_fused, FUSED_ARG_LOSS_MASK, sizeof loss_mask, &loss_mask);
    return status;
}

/* Queues the one-work-item launch that writes iteration `slot`'s hyper-parameters into
 * the fused kernel's buffer. */
static int put_hyper(struct clopt_solver *s, const struct lane *lane, cl_uint slot,
                     const double h[CLOPT_HYPER_SLOTS])
{
    struct clopt_context *ctx = s->ctx;
    cl_mem buffer = lane->fused_hyper ? lane->fused_hyper : s->fused_hyper;
    int status = clopt_set_arg(ctx, s->k_put_hyper, PUT_HYPER_ARG_HYPER, sizeof(cl_mem), &buffer);
    if (!status)
        status = clopt_set_arg(ctx, s->k_put_hyper, PUT_HYPER_ARG_SLOT, sizeof slot, &slot);
    for (cl_uint k = 0; k < CLOPT_HYPER_SLOTS && !status; ++k) {
        const union real_arg value = clopt_real_value(s, h[k]);
        status = clopt_set_arg(ctx, s->k_put_hyper, PUT_HYPER_ARG_H0 + k, s->elem_size, &value);
    }
    if (status)
        return status;
    const size_t one = 1;
    cl_int err =
        clEnqueueNDRangeKernel(lane->queue, s->k_put_hyper, 1, NULL, &one, &one, 0, NULL, NULL);
    return err == CL_SUCCESS ? CLOPT_OK
                             : clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_put_hyper)");
}

/* Queues knobs.fuse global steps s->step, s->step + 1, ... as one launch; iteration j of
 * the block writes loss partials to its own slots when bit j of loss_mask is set. Each
 * iteration's hyper-parameters are computed exactly as for a single step and written to
 * the device by a small kernel, whose arguments the runtime copies at once (no host memory
 * to keep alive, no wait). */
int clopt_enqueue_fused(struct clopt_solver *s, uint64_t loss_mask, cl_event *last)
{
    const size_t steps = s->knobs.fuse;
    for (size_t j = 0; j < steps; ++j) {
        double h[CLOPT_HYPER_SLOTS];
        /* Only a block's first iteration can see a fresh (never stepped) state. */
        clopt_hyper_for_step(s, s->step + j, j == 0 && s->fresh_state, h);
        /* Each device reads its own copy (lanes without tiles launch nothing). */
        for (size_t d = 0; d < s->n_lanes; ++d) {
            if (d > 0 && !s->lanes[d].n_slots)
                continue;
            int status = put_hyper(s, &s->lanes[d], (cl_uint)j, h);
            if (status != CLOPT_OK)
                return status;
        }
    }
    int status = set_fused_args(s, (cl_uint)loss_mask);
    if (status == CLOPT_OK)
        status = enqueue_launches(s, s->k_fused, NULL, last, 0);
    if (status == CLOPT_OK) {
        s->step += steps;
        s->fresh_state = 0;
    }
    return status;
}

/* Queues global step s->step (with the loss partials when with_loss) and counts it. With
 * global-norm clipping the step needs ||g|| first: a pass that only reads theta reduces the
 * loss and ||g||^2 into the result buffer, and the update pass reads the norm from there,
 * all on the device. That pass also serves as the iteration's loss evaluation. */
int clopt_enqueue_step(struct clopt_solver *s, int with_loss, cl_event *last)
{
    double h[CLOPT_HYPER_SLOTS];
    clopt_hyper_for_step(s, s->step, s->fresh_state, h);
    if (s->external) {
        /* The caller's kernel writes g of the current theta first (the norm pass of
         * clip-norm reads it as well; its loss is wanted whenever this step's is). */
        int status = clopt_external_gradient(s, with_loss || s->opts.clip_norm > 0);
        if (status != CLOPT_OK)
            return status;
    }
    if (s->opts.clip_norm > 0) {
        int status = enqueue_launches(s, s->k_eval, NULL, NULL, 0);
        if (status == CLOPT_OK)
            status = clopt_enqueue_reduce(s, 0, NULL, NULL);
        if (status == CLOPT_OK && s->n_lanes > 1)
            status = clopt_spread_result(s);
        if (status == CLOPT_OK)
            status = enqueue_launches(s, s->k_step, h, last, 0);
        if (status == CLOPT_OK) {
            ++s->step;
            s->fresh_state = 0;
        }
        return status;
    }
    int status = enqueue_launches(s, with_loss ? s->k_step_loss : s->k_step, h, last, 0);
    if (status == CLOPT_OK) {
        ++s->step;
        s->fresh_state = 0;
    }
    return status;
}

void clopt_read_pair(const struct clopt_solver *s, const void *host, double *loss,
                     double *grad_norm)
{
    double f, g2;
    if (s->acc_size == sizeof(double)) {
        f = ((const double *)host)[0];
        g2 = ((const double *)host)[1];
    } else {
        f = ((const float *)host)[0];
        g2 = ((const float *)host)[1];
    }
    *loss = f;
    *grad_norm = sqrt(g2);
}

/* CPU runtimes (PoCL) compile each kernel for its launch shape on the first launch; doing
 * that here keeps it out of the first run's timing. */
int clopt_warm_up(struct clopt_solver *s)
{
    double host[2];
    const cl_kernel kernels[] = {s->k_step, s->k_step_loss, s->k_eval, s->k_fused};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; ++i) {
        if (!kernels[i])
            continue;
        int status = kernels[i] == s->k_fused ? set_fused_args(s, 0) : CLOPT_OK;
        if (status == CLOPT_OK)
            status = enqueue_launches(s, kernels[i], NULL, NULL, 1);
        if (status != CLOPT_OK)
            return status;
    }
    return clopt_enqueue_reduce(s, 0, host, NULL);
}

int clopt_solver_evaluate(struct clopt_solver *s, double *loss, double *grad_norm)
{
    double host[2];
    int status = s->external ? clopt_external_gradient(s, 1) : CLOPT_OK;
    if (status == CLOPT_OK)
        status = enqueue_launches(s, s->k_eval, NULL, NULL, 0);
    if (status == CLOPT_OK)
        status = clopt_enqueue_reduce(s, 0, host, NULL);
    if (status != CLOPT_OK)
        return status;
    clopt_read_pair(s, host, loss, grad_norm);
    return CLOPT_OK;
}
