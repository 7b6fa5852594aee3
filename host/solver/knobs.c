/* Knobs: the defaults for the device type, laid under the caller's choices, and the checks
 * that keep a kernel within what the device and the fused launch can hold. */
#include "solver.h"

static int is_power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

/* The largest power of two <= x (x >= 1). */
static size_t floor_power_of_two(size_t x)
{
    size_t p = 1;
    while (p <= x / 2)
        p *= 2;
    return p;
}

/* CPU runtimes (PoCL) turn barriers into loops over work-items: long contiguous chunks,
 * lane accumulators and per-work-item partials. GPUs want adjacent work-items on adjacent
 * elements and a local tree. See PERF-NOTES.md. */
static void default_shape_knobs(struct clopt_knobs *k, int cpu, size_t group_limit)
{
    if (!k->work_group) {
        k->work_group = cpu ? 16 : 256;
        if (k->work_group > group_limit)
            k->work_group = group_limit;
    }
    if (!k->elems_per_item)
        k->elems_per_item = cpu ? 4096 : 16;
    if (!k->vector_width) {
        k->vector_width = cpu ? 16 : 1;
        if (k->vector_width > k->elems_per_item)
            k->vector_width = k->elems_per_item;
    }
    /* Converting each loss term to double costs a CPU as much as the update itself; blocks
     * of 16 keep the worst-case relative error of a block below 1e-6. */
    if (!k->loss_block)
        k->loss_block = cpu ? 16 : 1;
    if (!k->layout)
        k->layout = cpu ? 1 : 2;
    if (!k->group_partials)
        k->group_partials = cpu ? 1 : 2;
    if (!k->reduce_group) {
        k->reduce_group = cpu ? 1 : 256;
        if (k->reduce_group > group_limit)
            k->reduce_group = group_limit;
    }
}

/* The work-group shape, the loss blocks and the accumulators the caller chose. */
static int check_shape_knobs(struct clopt_context *ctx, const struct clopt_knobs *k,
                             size_t max_group)
{
    const size_t group_limit = floor_power_of_two(max_group);
    if (!is_power_of_two(k->work_group) || k->work_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "work-group size %zu must be a power of two <= %zu (the device's "
                          "maximum)",
                          k->work_group, group_limit);
    if (!is_power_of_two(k->reduce_group) || k->reduce_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "reduction work-group size %zu must be a power of two <= %zu",
                          k->reduce_group, group_limit);
    if (!is_power_of_two(k->elems_per_item) || k->elems_per_item > ((size_t)1 << 20))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "elements per work-item %zu must be a power of two <= 2^20",
                          k->elems_per_item);
    if (!is_power_of_two(k->vector_width) || k->vector_width > 16 ||
        k->vector_width > k->elems_per_item)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "vector width %zu must be 1, 2, 4, 8 or 16 and at most the elements "
                          "per work-item (%zu)",
                          k->vector_width, k->elems_per_item);
    if (!is_power_of_two(k->loss_block) || k->loss_block > 1024)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "loss block %zu must be a power of two <= 1024", k->loss_block);
    if (k->layout != 1 && k->layout != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "layout must be 1 (contiguous) or 2 (strided)");
    if (k->group_partials != 1 && k->group_partials != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "partials must be 1 (per work-item) or 2 (per work-group)");
    if (k->accumulate != 0 && k->accumulate != 1 && k->accumulate != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "accumulate must be 1 (double) or 2 (compensated float)");
    if (k->accumulate == 1 && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no fp64 for double accumulators: use knobs.accumulate=2 "
                          "(compensated float)",
                          ctx->info.name);
    return CLOPT_OK;
}

/* The accumulator, prefetch, vector-register and grid knobs. */
static int resolve_code_knobs(struct clopt_context *ctx, struct clopt_knobs *k, int cpu)
{
    if (!k->accumulate)
        k->accumulate = ctx->info.has_fp64 ? 1 : 2;
    if (!k->fuse)
        k->fuse = 1;
    /* Measured on PoCL at n = 1e8: +40 % for the single step, +60 % for a fused one. */
    if (!k->prefetch)
        k->prefetch = cpu ? 1024 : 1;
    if (k->prefetch > ((size_t)1 << 20) || (k->prefetch > 1 && !is_power_of_two(k->prefetch)))
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "knobs.prefetch=%zu: the prefetch distance must be off or a power of two <= 2^20 "
            "elements",
            k->prefetch);
    /* Measured on PoCL 3.1 (Xeon, AVX-512, n = 1e8): fused GD 1.0e10 -> 1.6e10-1.9e10
     * element-iterations/s; a single step is bandwidth-bound either way. */
    if (!k->simd_bits)
        k->simd_bits = cpu ? 512 : 256;
    if (k->simd_bits != 256 && k->simd_bits != 512)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.simd_bits=%zu: use 256 (the compiler's choice) or 512",
                          k->simd_bits);
    if (k->fuse > FUSE_MAX)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "knobs.fuse=%zu: fuse at most %d iterations",
                          k->fuse, FUSE_MAX);
    if (k->groups_per_cu > 1024)
        return clopt_fail(
            ctx, CLOPT_ERR_INVALID_ARG,
            "knobs.groups_per_cu=%zu: use 0 (one group per tile) or 1..1024 groups per compute "
            "unit",
            k->groups_per_cu);
    return CLOPT_OK;
}

/* What a fused launch needs: private memory for its block, and no global-norm clipping. */
static int check_fused(const struct clopt_solver *s, const struct clopt_knobs *k)
{
    /* The fused kernel keeps a block of vw x fblock elements of theta, the state and a
     * data vector per work-item in private memory: a GPU spills that to slow memory, a CPU
     * runtime to its stack. */
    const size_t block = k->vector_width * k->loss_block < k->elems_per_item
                             ? k->vector_width * k->loss_block
                             : k->elems_per_item;
    const size_t private_bytes = block * (2 + s->n_state) * s->elem_size;
    if (k->fuse > 1 && private_bytes > FUSE_PRIVATE_BYTES)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.fuse=%zu keeps %zu elements (knobs.vector_width x "
                          "knobs.loss_block) of theta and its state per "
                          "work-item in private memory, %zu KiB: lower knobs.vector_width or "
                          "knobs.loss_block to stay "
                          "within %d KiB",
                          k->fuse, block, private_bytes / 1024, FUSE_PRIVATE_BYTES / 1024);
    if (k->fuse > 1 && s->opts.clip_norm > 0)
        return clopt_fail(
            s->ctx, CLOPT_ERR_INVALID_ARG,
            "knobs.fuse=%zu cannot be used with options.clip_norm (every step needs the global "
            "gradient norm first): use knobs.fuse=1",
            k->fuse);
    return CLOPT_OK;
}

int clopt_resolve_knobs(struct clopt_solver *s, size_t max_group)
{
    struct clopt_knobs k = s->opts.knobs;
    const int cpu = s->ctx->info.kind == CLOPT_DEVICE_CPU;
    default_shape_knobs(&k, cpu, floor_power_of_two(max_group));
    int status = check_shape_knobs(s->ctx, &k, max_group);
    if (status == CLOPT_OK)
        status = resolve_code_knobs(s->ctx, &k, cpu);
    if (status == CLOPT_OK)
        status = check_fused(s, &k);
    if (status == CLOPT_OK)
        s->knobs = k;
    return status;
}
