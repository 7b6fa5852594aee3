/* The devices of a run (struct lane in solver.h): the split of the tiles, the buffers of the
 * lanes beyond the first, and the events that order one lane's work against another's. Two
 * devices never use one buffer at the same time: what crosses lanes is copied by one queue
 * while the other waits on an event, so the plan is also correct on devices with memory of
 * their own, not only on PoCL's devices sharing the host's. */
#include "solver.h"

#include <stdio.h>
#include <stdlib.h>

int clopt_plan_lanes(struct clopt_solver *s, size_t tile, size_t tiles_per_shard)
{
    struct clopt_context *ctx = s->ctx;
    const size_t n_tiles = s->n / tile + (s->n % tile != 0);
    /* This rank's tiles (all of them in a single process; ranks.c set s->lo, s->hi). */
    s->local = (struct tile_range){s->lo / tile, s->hi < s->n ? s->hi / tile : n_tiles};
    s->n_lanes = ctx->n_devices > 1 ? ctx->n_devices : 1;
    s->lanes = calloc(s->n_lanes, sizeof *s->lanes);
    if (!s->lanes)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for %zu devices",
                          s->n_lanes);
    /* Even contiguous ranges; with more devices than tiles the last lanes hold none. */
    const size_t span = s->local.end - s->local.first;
    s->n_shards = 0;
    for (size_t d = 0; d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        lane->queue = ctx->n_devices > 1 ? ctx->queues[d] : ctx->queue;
        lane->tiles.first = s->local.first + span * d / s->n_lanes;
        lane->tiles.end = s->local.first + span * (d + 1) / s->n_lanes;
        const size_t tiles = lane->tiles.end - lane->tiles.first;
        lane->first_shard = s->n_shards;
        s->n_shards += (tiles + tiles_per_shard - 1) / tiles_per_shard;
        lane->end_shard = s->n_shards;
    }
    s->shards = calloc(s->n_shards, sizeof *s->shards);
    if (!s->shards)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for %zu shards",
                          s->n_shards);
    const size_t slots_per_tile = s->knobs.group_partials == 2 ? 1 : s->knobs.work_group;
    for (size_t d = 0; d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        lane->first_slot = lane->tiles.first * slots_per_tile;
        lane->n_slots = (lane->tiles.end - lane->tiles.first) * slots_per_tile;
        for (size_t i = lane->first_shard; i < lane->end_shard; ++i) {
            struct shard *sh = &s->shards[i];
            const size_t first = lane->tiles.first + (i - lane->first_shard) * tiles_per_shard;
            sh->offset = first * tile;
            const size_t end = first + tiles_per_shard < lane->tiles.end
                                   ? (first + tiles_per_shard) * tile
                                   : lane->tiles.end * tile;
            sh->count = (end < s->hi ? end : s->hi) - sh->offset;
            sh->lane = d;
        }
    }
    return CLOPT_OK;
}

static int create(struct clopt_solver *s, size_t bytes, const char *what, cl_mem *out)
{
    cl_int err;
    *out = clCreateBuffer(s->ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_SUCCESS)
        return clopt_enqueue_zero(s, *out, bytes, what);
    *out = NULL;
    char call[96];
    snprintf(call, sizeof call, "clCreateBuffer(%s)", what);
    return clopt_fail_cl(s->ctx, err, call);
}

int clopt_allocate_lanes(struct clopt_solver *s)
{
    for (size_t d = 1; d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        if (!lane->n_slots)
            continue; /* holds no tile: never launched on */
        /* Zeroed (on lane 0's queue, which setup finishes before any lane runs): a dry
         * warm-up launch leaves partials unwritten, and the step reads these. */
        int status = create(s, lane->n_slots * 2 * s->acc_size * s->knobs.fuse,
                            "loss partials of a device", &lane->partials);
        if (status == CLOPT_OK)
            status = create(s, 2 * s->acc_size, "result of a device", &lane->result);
        if (status == CLOPT_OK && s->knobs.fuse > 1)
            status = create(s, s->knobs.fuse * CLOPT_HYPER_SLOTS * s->elem_size,
                            "fused hyper-parameters of a device", &lane->fused_hyper);
        if (status != CLOPT_OK)
            return status;
    }
    return CLOPT_OK;
}

void clopt_release_lanes(struct clopt_solver *s)
{
    for (size_t d = 0; s->lanes && d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        cl_mem buffers[] = {lane->partials, lane->fused_hyper, lane->result};
        for (size_t k = 0; k < sizeof buffers / sizeof *buffers; ++k)
            if (buffers[k])
                clReleaseMemObject(buffers[k]);
        if (lane->after_gather)
            clReleaseEvent(lane->after_gather);
        if (lane->after_halo)
            clReleaseEvent(lane->after_halo);
    }
    free(s->lanes);
    s->lanes = NULL;
}

int clopt_sync_lanes(struct clopt_solver *s, int finish)
{
    int status = CLOPT_OK;
    /* Every queue is flushed or finished, even after a failure on one. */
    for (size_t d = 0; d < s->n_lanes; ++d) {
        cl_int err = finish ? clFinish(s->lanes[d].queue) : clFlush(s->lanes[d].queue);
        if (err != CL_SUCCESS && status == CLOPT_OK)
            status = clopt_fail_cl(s->ctx, err, finish ? "clFinish" : "clFlush");
    }
    return status;
}

/* A marker after everything queued on the lane so far, flushed so that another queue may
 * wait for it (the OpenCL specification asks for the flush). */
static int marker(struct clopt_solver *s, struct lane *lane, cl_event *out)
{
    cl_int err = clEnqueueMarkerWithWaitList(lane->queue, 0, NULL, out);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clEnqueueMarkerWithWaitList(device)");
    err = clFlush(lane->queue);
    if (err == CL_SUCCESS)
        return CLOPT_OK;
    clReleaseEvent(*out);
    *out = NULL;
    return clopt_fail_cl(s->ctx, err, "clFlush");
}

int clopt_lanes_marker(struct clopt_solver *s, cl_event *out)
{
    cl_event markers[64];
    cl_uint n = 0;
    int status = CLOPT_OK;
    for (size_t d = 1; d < s->n_lanes && n < 64 && status == CLOPT_OK; ++d)
        if (s->lanes[d].n_slots) {
            status = marker(s, &s->lanes[d], &markers[n]);
            n += status == CLOPT_OK;
        }
    if (status == CLOPT_OK) {
        cl_int err = clEnqueueMarkerWithWaitList(s->lanes[0].queue, n, n ? markers : NULL, out);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(s->ctx, err, "clEnqueueMarkerWithWaitList(all devices)");
    }
    for (cl_uint k = 0; k < n; ++k)
        clReleaseEvent(markers[k]);
    return status;
}

/* Keeps event as what lane's next launch waits for in *slot, releasing an older one. */
static void replace_event(cl_event *slot, cl_event event)
{
    if (*slot)
        clReleaseEvent(*slot);
    *slot = event;
}

int clopt_lane_copy_home(struct clopt_solver *s, size_t d, cl_mem src, size_t src_at, cl_mem dst,
                         size_t dst_at, size_t bytes)
{
    struct lane *home = &s->lanes[0], *lane = &s->lanes[d];
    cl_event ready, done;
    int status = marker(s, lane, &ready);
    if (status != CLOPT_OK)
        return status;
    cl_int err =
        clEnqueueCopyBuffer(home->queue, src, dst, src_at, dst_at, bytes, 1, &ready, &done);
    clReleaseEvent(ready);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(partials of a device)");
    /* Lane 0's queue is in order: the latest copy covers the earlier ones. */
    replace_event(&lane->after_gather, done);
    return CLOPT_OK;
}

int clopt_gather_partials(struct clopt_solver *s, size_t slot)
{
    const size_t pair = 2 * s->acc_size;
    int copied = 0;
    for (size_t d = 1; d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        if (!lane->n_slots)
            continue;
        int status = clopt_lane_copy_home(
            s, d, lane->partials, slot * lane->n_slots * pair, s->partials,
            (slot * s->n_partials + lane->first_slot) * pair, lane->n_slots * pair);
        if (status != CLOPT_OK)
            return status;
        copied = 1;
    }
    /* The lanes wait for these copies before their next launch. */
    cl_int err = copied ? clFlush(s->lanes[0].queue) : CL_SUCCESS;
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clFlush");
}

int clopt_spread_result(struct clopt_solver *s)
{
    struct lane *home = &s->lanes[0];
    int copied = 0;
    for (size_t d = 1; d < s->n_lanes; ++d) {
        struct lane *lane = &s->lanes[d];
        if (!lane->n_slots)
            continue;
        /* After the gather on the same in-order queue, which waited for the lane to finish
         * its last launch, the last to read this buffer. */
        cl_event done;
        cl_int err = clEnqueueCopyBuffer(home->queue, s->result, lane->result, 0, 0,
                                         2 * s->acc_size, 0, NULL, &done);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(gradient norm to a device)");
        replace_event(&lane->after_gather, done);
        copied = 1;
    }
    cl_int err = copied ? clFlush(home->queue) : CL_SUCCESS;
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clFlush");
}

int clopt_exchange_cross_halo(struct clopt_solver *s, size_t i)
{
    const struct shard *left = &s->shards[i], *right = &s->shards[i + 1];
    struct lane *own = &s->lanes[left->lane], *other = &s->lanes[right->lane];
    const size_t width = s->halo * s->elem_size;
    /* Both copies run on the left lane's queue after its last step, once the right lane has
     * finished its own; the right lane's next launch waits for them. So each buffer is used
     * by one device at a time. */
    cl_event ready, done;
    int status = marker(s, other, &ready);
    if (status != CLOPT_OK)
        return status;
    /* A lane of one shard is also the right side of the boundary before: the copies made
     * into it there come first. */
    cl_event wait[2] = {ready, own->after_halo}, copied_in;
    cl_int err = clEnqueueCopyBuffer(
        own->queue, left->theta, right->theta, clopt_theta_at(s, left->count - s->halo),
        clopt_left_halo_at(s), width, wait[1] ? 2 : 1, wait, &copied_in);
    clReleaseEvent(ready);
    if (err == CL_SUCCESS) {
        err = clEnqueueCopyBuffer(own->queue, right->theta, left->theta, clopt_theta_at(s, 0),
                                  clopt_theta_at(s, left->count), width, 1, &copied_in, &done);
        clReleaseEvent(copied_in);
    }
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(halo between devices)");
    /* Kept by the lane (and released with it) whether or not the flush works. */
    replace_event(&other->after_halo, done);
    err = clFlush(own->queue);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clFlush");
}

void clopt_lane_take_waits(struct lane *lane, cl_event wait[2], cl_uint *n)
{
    *n = 0;
    if (lane->after_gather)
        wait[(*n)++] = lane->after_gather;
    if (lane->after_halo)
        wait[(*n)++] = lane->after_halo;
    lane->after_gather = lane->after_halo = NULL;
}
