/* theta in shards: the plan (how many, how large, which partial slots), the device buffers,
 * copies between host and device, and the public read/write of theta and the state. */
#include "solver.h"
#include "qn/qn.h"
#include "npy.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double gib(double bytes)
{
    return bytes / (1024.0 * 1024.0 * 1024.0);
}

/* Whole tiles per shard: as many as the allocation cap holds with the stencil's halo on each
 * side. */
static int tiles_per_shard_of(struct clopt_solver *s, size_t tile, size_t *out)
{
    struct clopt_context *ctx = s->ctx;
    /* The padding before a stencil's left halo (s->lead - s->halo, under 16 elements) counts
     * against the device's limit; options.max_shard_bytes keeps its meaning, shard and halos,
     * so that the shard counts it gives (tests, scripts) stay as they were. */
    const size_t pad_bytes = (s->lead - s->halo) * s->elem_size;
    size_t cap = (size_t)ctx->info.max_alloc_bytes > pad_bytes
                     ? (size_t)ctx->info.max_alloc_bytes - pad_bytes
                     : 0;
    if (s->opts.max_shard_bytes && s->opts.max_shard_bytes < cap)
        cap = s->opts.max_shard_bytes;
    /* lbfgs/cg keep all their vectors of a shard in one buffer (results do not depend on the
     * shard count, so it may take more shards). */
    if (s->optimizer->qn && (size_t)ctx->info.max_alloc_bytes / clopt_qn_vectors(s) < cap)
        cap = (size_t)ctx->info.max_alloc_bytes / clopt_qn_vectors(s);
    const size_t cap_elems = cap / s->elem_size;
    *out = cap_elems > 2 * s->halo ? (cap_elems - 2 * s->halo) / tile : 0;
    if (*out == 0 && cap_elems >= tile)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "a shard of %zu bytes holds one tile of %zu elements but not with the stencil's "
            "halo of %zu elements on each side (%zu bytes in all): raise "
            "options.max_shard_bytes or lower knobs.work_group/knobs.elems_per_item",
            cap, tile, s->halo, (tile + 2 * s->halo) * s->elem_size);
    if (*out == 0)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "a shard of %zu bytes cannot hold one tile of %zu elements (%zu "
            "bytes): raise options.max_shard_bytes or lower knobs.work_group/knobs.elems_per_item",
            cap, tile, tile * s->elem_size);
    return CLOPT_OK;
}

int clopt_plan_shards(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    const size_t tile = s->knobs.work_group * s->knobs.elems_per_item;
    size_t tiles_per_shard;
    int status = tiles_per_shard_of(s, tile, &tiles_per_shard);
    if (status != CLOPT_OK)
        return status;
    /* Every shard but the last is whole tiles, so the slots are numbered as for one shard. */
    const size_t tiles = s->n / tile + (s->n % tile != 0);
    const size_t slots_per_tile = s->knobs.group_partials == 2 ? 1 : s->knobs.work_group;
    s->n_partials = tiles * slots_per_tile;
    /* Several ranks: this one's shards cover its tiles [s->lo, s->hi) only (ranks.c). */
    status = clopt_ranks_split(s, tile, slots_per_tile);
    if (status != CLOPT_OK)
        return status;
    const size_t local = s->hi - s->lo;
    /* A fused launch keeps one set of partials per iteration. */
    const double partial_bytes =
        (double)s->n_partials * 2.0 * (double)s->acc_size * (double)s->knobs.fuse;
    /* theta, its ping-pong partner for stencils, the state and a data vector. */
    const double vectors = 1.0 + (s->halo ? 1.0 : 0.0) + (double)s->n_state +
                           (s->data_path || s->external ? 1.0 : 0.0);
    /* With several devices, each holds its share (the partials are gathered on the first). */
    const double devices = ctx->n_devices > 1 ? (double)ctx->n_devices : 1.0;
    const double need = (double)local * (double)s->elem_size * vectors / devices + partial_bytes;
    if (need > (double)ctx->info.global_mem_bytes)
        return clopt_fail(
            ctx, CLOPT_ERR_OUT_OF_MEMORY,
            "needs %.2f GiB, device '%s' has %.2f GiB: lower options.dim%s, or pick a larger "
            "device%s",
            gib(need), ctx->info.name, gib((double)ctx->info.global_mem_bytes),
            s->opts.precision == CLOPT_DOUBLE ? ", use options.precision = CLOPT_FLOAT" : "",
            ctx->info.kind == CLOPT_DEVICE_CPU ? " (PoCL: raise POCL_MEMORY_LIMIT, in GB)" : "");
    if (partial_bytes > (double)ctx->info.max_alloc_bytes)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "the loss partials (%.2f GiB) exceed the device's largest buffer: "
            "raise knobs.elems_per_item or knobs.work_group, or use knobs.group_partials=2",
            gib(partial_bytes));
    /* Which device holds which of this rank's tiles, and the shards' offsets and counts
     * (lanes.c). */
    status = clopt_plan_lanes(s, tile, tiles_per_shard);
    if (status != CLOPT_OK)
        return status;
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        size_t groups = (sh->count + tile - 1) / tile;
        size_t grid = (size_t)ctx->info.compute_units * s->knobs.groups_per_cu;
        /* A fixed grid strides over the tiles in one launch: keep it within one. */
        if (grid > clopt_launch_chunk(s, s->knobs.work_group) / s->knobs.work_group)
            grid = clopt_launch_chunk(s, s->knobs.work_group) / s->knobs.work_group;
        if (s->knobs.groups_per_cu && grid < groups)
            groups = grid ? grid : 1;
        sh->global_size = groups * s->knobs.work_group;
        /* Slots are numbered by tile over all of theta (the partials hold every rank's). */
        sh->partial_base = sh->offset / tile * slots_per_tile;
    }
    /* A halo comes from the one neighbouring shard, so every shard but the last must hold
     * at least a halo (beyond a short last shard lie the zeros past the end of theta). */
    for (size_t i = 0; i + 1 < s->n_shards; ++i) {
        const size_t count = s->shards[i].count;
        if (count < s->halo && s->grid_radius)
            return clopt_fail(
                ctx, CLOPT_ERR_INVALID_ARG,
                "shards of %zu elements are smaller than the grid objective's halo of radius %zu "
                "(%zu elements: %zu planes, rows and points): raise options.max_shard_bytes or the "
                "tile (knobs.work_group x knobs.elems_per_item)%s",
                count, s->grid_radius, s->halo, s->grid_radius,
                s->n_lanes > 1 ? ", or use fewer devices" : "");
        if (count < s->halo)
            return clopt_fail(
                ctx, CLOPT_ERR_INVALID_ARG,
                "shards of %zu elements are smaller than the stencil radius %zu: raise "
                "options.max_shard_bytes or the tile (knobs.work_group x knobs.elems_per_item)%s",
                count, s->halo, s->n_lanes > 1 ? ", or use fewer devices" : "");
    }
    return CLOPT_OK;
}

/* theta (and its stencil partner), the data vector and the state of one shard. */
static int allocate_shard(struct clopt_solver *s, struct shard *sh)
{
    struct clopt_context *ctx = s->ctx;
    if (s->external)
        return clopt_external_allocate(s, sh);
    cl_int err;
    const size_t theta_bytes = clopt_theta_at(s, sh->count + s->halo);
    sh->theta = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, theta_bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        sh->theta = NULL;
        return clopt_fail_cl(ctx, err, "clCreateBuffer(theta)");
    }
    if (s->halo) {
        sh->theta_next = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, theta_bytes, NULL, &err);
        if (err != CL_SUCCESS) {
            sh->theta_next = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(theta, second copy for the stencil)");
        }
        /* The halos beyond both ends of theta are never written: keep them at zero (and the
         * padding before the left halo, which nothing reads). */
        cl_mem both[2] = {sh->theta, sh->theta_next};
        for (size_t k = 0; k < 2; ++k) {
            int status = clopt_enqueue_zero(s, both[k], theta_bytes, "theta halo");
            if (status != CLOPT_OK)
                return status;
        }
    }
    if (s->data_path) {
        sh->data =
            clCreateBuffer(ctx->context, CL_MEM_READ_ONLY, sh->count * s->elem_size, NULL, &err);
        if (err != CL_SUCCESS) {
            sh->data = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(objective data)");
        }
    }
    for (size_t k = 0; k < s->n_state; ++k) {
        sh->state[k] =
            clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, sh->count * s->elem_size, NULL, &err);
        if (err != CL_SUCCESS) {
            sh->state[k] = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(optimizer state)");
        }
    }
    return CLOPT_OK;
}

int clopt_allocate(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    cl_int err;
    for (size_t i = 0; i < s->n_shards; ++i) {
        int status = allocate_shard(s, &s->shards[i]);
        if (status != CLOPT_OK)
            return status;
    }
    const size_t partial_bytes = s->n_partials * 2 * s->acc_size * s->knobs.fuse;
    s->partials = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, partial_bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        s->partials = NULL;
        return clopt_fail_cl(ctx, err, "clCreateBuffer(partials)");
    }
    /* Launches with no elements (warm-up) may leave slots unwritten. */
    int status = clopt_enqueue_zero(s, s->partials, partial_bytes, "partials");
    if (status != CLOPT_OK)
        return status;
    if (s->knobs.fuse > 1) {
        /* Read and write: clopt_put_hyper writes it on the device. */
        s->fused_hyper =
            clCreateBuffer(ctx->context, CL_MEM_READ_WRITE,
                           s->knobs.fuse * CLOPT_HYPER_SLOTS * s->elem_size, NULL, &err);
        if (err != CL_SUCCESS) {
            s->fused_hyper = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(fused hyper-parameters)");
        }
        /* The warm-up launch reads it before the first block fills it. */
        status =
            clopt_enqueue_zero(s, s->fused_hyper, s->knobs.fuse * CLOPT_HYPER_SLOTS * s->elem_size,
                               "fused hyper-parameters");
        if (status != CLOPT_OK)
            return status;
    }
    const size_t stage_groups = clopt_reduce_groups(s->n_partials, s->knobs.reduce_group);
    if (stage_groups > 1) {
        /* Every group of the first stage writes its pair before the second reads them. */
        s->reduce_stage = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE,
                                         2 * stage_groups * s->acc_size, NULL, &err);
        if (err != CL_SUCCESS) {
            s->reduce_stage = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(reduction stage)");
        }
    }
    status = clopt_allocate_lanes(s);
    if (status != CLOPT_OK)
        return status;
    s->result = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, 2 * s->acc_size, NULL, &err);
    if (err != CL_SUCCESS) {
        s->result = NULL;
        return clopt_fail_cl(ctx, err, "clCreateBuffer(result)");
    }
    /* With clip-norm the step kernels read ||g||^2 from here, the warm-up's launches too,
     * before any reduction has written it (oclgrind: "Controlflow depends on uninitialized
     * value"; no element used it, as the warm-up has none). */
    return clopt_enqueue_zero(s, s->result, 2 * s->acc_size, "result");
}

static int check_transfer(struct clopt_solver *s, size_t which, const void *host,
                          enum clopt_precision host_prec, size_t offset, size_t count)
{
    if (which > s->n_state && !(which == WHICH_DATA && s->data_path))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", which - 1,
                          s->optimizer->name, s->n_state);
    if (!host && count)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "NULL host buffer");
    if (host_prec != CLOPT_FLOAT && host_prec != CLOPT_DOUBLE)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "unknown precision");
    if (offset > s->n || count > s->n - offset)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "range [%zu, %zu + %zu) lies outside theta of %zu elements", offset,
                          offset, count, s->n);
    return CLOPT_OK;
}

/* n values from one precision to the other; dst_size says which way. */
static void convert_values(void *dst, size_t dst_size, const void *src, size_t n)
{
    for (size_t k = 0; k < n; ++k) {
        if (dst_size == sizeof(float))
            ((float *)dst)[k] = (float)((const double *)src)[k];
        else
            ((double *)dst)[k] = ((const float *)src)[k];
    }
}

/* Copies n elements from global index `at` of one vector, all within shard sh; scratch is
 * the staging buffer when the host's precision differs from the run's (else NULL). */
static int copy_piece(struct clopt_solver *s, size_t which, const struct shard *sh, char *host,
                      size_t host_size, size_t at, size_t n, void *scratch, int to_device)
{
    struct clopt_context *ctx = s->ctx;
    /* theta of a stencil objective starts after its halo, at s->lead. */
    const size_t dev_off =
        which == 0 ? clopt_theta_at(s, at - sh->offset) : (at - sh->offset) * s->elem_size;
    cl_mem buffer = which == 0 ? sh->theta : which == WHICH_DATA ? sh->data : sh->state[which - 1];
    void *staging = scratch ? scratch : host;
    if (to_device && scratch)
        convert_values(scratch, s->elem_size, host, n);
    cl_int err = to_device ? clEnqueueWriteBuffer(ctx->queue, buffer, CL_TRUE, dev_off,
                                                  n * s->elem_size, staging, 0, NULL, NULL)
                           : clEnqueueReadBuffer(ctx->queue, buffer, CL_TRUE, dev_off,
                                                 n * s->elem_size, staging, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(
            ctx, err, to_device ? "clEnqueueWriteBuffer(theta)" : "clEnqueueReadBuffer(theta)");
    if (!to_device && scratch)
        convert_values(host, host_size, scratch, n);
    return CLOPT_OK;
}

int clopt_transfer(struct clopt_solver *s, size_t which, void *host, enum clopt_precision host_prec,
                   size_t offset, size_t count, int to_device)
{
    int status = check_transfer(s, which, host, host_prec, offset, count);
    if (status == CLOPT_OK && !clopt_ranks_active(s))
        return clopt_transfer_local(s, which, host, host_prec, offset, count, to_device);
    if (status != CLOPT_OK)
        return status;
    /* Several ranks: a read gathers every rank's part; a write takes this rank's part of
     * the host values (every rank passes all of them). */
    if (!to_device)
        return clopt_ranks_read(s, which, host, host_prec, offset, count);
    const size_t lo = offset > s->lo ? offset : s->lo;
    const size_t hi = offset + count < s->hi ? offset + count : s->hi;
    const size_t item = host_prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    return hi > lo ? clopt_transfer_local(s, which, (char *)host + (lo - offset) * item, host_prec,
                                          lo, hi - lo, 1)
                   : CLOPT_OK;
}

int clopt_transfer_local(struct clopt_solver *s, size_t which, void *host,
                         enum clopt_precision host_prec, size_t offset, size_t count, int to_device)
{
    int status = CLOPT_OK;
    /* The copies go through the first device's queue: the others must be idle (a checkpoint
     * reads theta in the middle of a run). */
    if (s->n_lanes > 1)
        status = clopt_sync_lanes(s, 1);
    if (status != CLOPT_OK)
        return status;
    const size_t host_size = host_prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    const int convert = host_size != s->elem_size;
    void *scratch = NULL;
    if (convert) {
        /* A chunk at most: no more than the count (a short read stays small). */
        scratch = malloc((count < CONVERT_CHUNK ? count : CONVERT_CHUNK) * s->elem_size + 1);
        if (!scratch)
            return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < s->n_shards && count && status == CLOPT_OK; ++i) {
        const struct shard *sh = &s->shards[i];
        if (offset >= sh->offset + sh->count || offset + count <= sh->offset)
            continue;
        size_t done = 0;
        while (offset + done < sh->offset + sh->count && done < count && status == CLOPT_OK) {
            size_t in_shard = sh->offset + sh->count - (offset + done);
            size_t n = count - done < in_shard ? count - done : in_shard;
            if (convert && n > CONVERT_CHUNK)
                n = CONVERT_CHUNK;
            status = copy_piece(s, which, sh, (char *)host + done * host_size, host_size,
                                offset + done, n, scratch, to_device);
            done += n;
        }
        offset += done;
        count -= done;
        host = (char *)host + done * host_size;
    }
    free(scratch);
    return status;
}

/* A data file of several axes must have theta's grid shape (options.shape); a flat one of n
 * values is the grid in C order. */
static int data_shape_fits(const struct clopt_solver *s, const struct clopt_npy_info *info)
{
    if (info->n_axes < 2)
        return 1;
    if (info->n_axes != s->opts.n_axes)
        return s->opts.n_axes < 2 && !s->grid_radius; /* a vector theta takes any shape */
    for (size_t k = 0; k < info->n_axes; ++k)
        if (info->shape[k] != s->opts.shape[k])
            return 0;
    return 1;
}

/* Reads the objective's data vector from its .npy file into the data shards. */
int clopt_load_data(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    char err[256];
    struct clopt_npy_info info;
    void *buffer = NULL;
    FILE *f = clopt_open_input(s->data_path, err, sizeof err);
    if (!f)
        return clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "cannot open options.params %s file '%s': %s",
                          s->objective->data_param, s->data_path, err);
    int status = clopt_npy_read_header(f, &info, err, sizeof err);
    if (status != CLOPT_OK) {
        status = clopt_fail(ctx, status == CLOPT_ERR_IO ? CLOPT_ERR_IO : CLOPT_ERR_BAD_FILE,
                            "options.params %s file '%s': %s", s->objective->data_param,
                            s->data_path, err);
        goto cleanup;
    }
    if (info.count != s->n) {
        status = clopt_fail(
            ctx, CLOPT_ERR_BAD_FILE,
            "options.params %s file '%s' holds %llu values but theta has %zu (options.dim)",
            s->objective->data_param, s->data_path, (unsigned long long)info.count, s->n);
        goto cleanup;
    }
    if (!data_shape_fits(s, &info)) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "options.params %s file '%s' has %zu axes in another shape than "
                            "options.shape (%zu axes): give theta's grid in options.shape "
                            "(--shape) and save the file in it, or flat",
                            s->objective->data_param, s->data_path, info.n_axes, s->opts.n_axes);
        goto cleanup;
    }
    const size_t item = info.dtype == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    buffer = malloc(CONVERT_CHUNK * item);
    if (!buffer) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        goto cleanup;
    }
    for (size_t done = 0; done < s->n;) {
        const size_t chunk = s->n - done < CONVERT_CHUNK ? s->n - done : CONVERT_CHUNK;
        if (fread(buffer, item, chunk, f) != chunk) {
            status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "options.params %s file '%s': read failed",
                                s->objective->data_param, s->data_path);
            goto cleanup;
        }
        for (size_t k = 0; k < chunk; ++k) {
            const double v = info.dtype == CLOPT_DOUBLE ? ((const double *)buffer)[k]
                                                        : ((const float *)buffer)[k];
            if (!isfinite(v) || (s->elem_size == sizeof(float) && fabs(v) > FLT_MAX)) {
                status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                                    "options.params %s file '%s': value %zu is %g, not a finite %s",
                                    s->objective->data_param, s->data_path, done + k, v,
                                    s->elem_size == sizeof(float) ? "float" : "double");
                goto cleanup;
            }
        }
        status = clopt_transfer(s, WHICH_DATA, buffer, info.dtype, done, chunk, 1);
        if (status != CLOPT_OK)
            goto cleanup;
        done += chunk;
    }
cleanup:
    free(buffer);
    fclose(f);
    return status;
}

int clopt_solver_write_theta(struct clopt_solver *s, const void *src,
                             enum clopt_precision src_precision, size_t offset, size_t count)
{
    int status = clopt_transfer(s, 0, (void *)(uintptr_t)src, src_precision, offset, count, 1);
    if (status == CLOPT_OK)
        s->theta_generated = 0;
    return status;
}

size_t clopt_solver_state_count(const struct clopt_solver *s)
{
    return s->n_state;
}

uint64_t clopt_solver_steps(const struct clopt_solver *s)
{
    return s->step;
}

int clopt_solver_read_state(struct clopt_solver *s, size_t index, void *dst,
                            enum clopt_precision dst_precision, size_t offset, size_t count)
{
    if (index >= s->n_state)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", index,
                          s->optimizer->name, s->n_state);
    return clopt_transfer(s, index + 1, dst, dst_precision, offset, count, 0);
}

int clopt_solver_write_state(struct clopt_solver *s, size_t index, const void *src,
                             enum clopt_precision src_precision, size_t offset, size_t count)
{
    if (index >= s->n_state)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", index,
                          s->optimizer->name, s->n_state);
    int status =
        clopt_transfer(s, index + 1, (void *)(uintptr_t)src, src_precision, offset, count, 1);
    if (status == CLOPT_OK) {
        s->theta_generated = 0; /* a replay must start from this state, not from zero */
        s->fresh_state = 0;     /* a written velocity is history to continue from */
    }
    return status;
}

void clopt_solver_set_steps(struct clopt_solver *s, uint64_t steps)
{
    s->step = steps;
}

int clopt_solver_read_theta(struct clopt_solver *s, void *dst, enum clopt_precision dst_precision,
                            size_t offset, size_t count)
{
    return clopt_transfer(s, 0, dst, dst_precision, offset, count, 0);
}
