/* Knobs: the defaults for the device type, laid under the caller's choices, and the checks
 * that keep a kernel within what the device and the fused launch can hold. */
#include "solver.h"
#include "tune/knobs.h"

#include <stdio.h>
#include <string.h>

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
 * elements and a local tree (measured: a barrier tree per group made PoCL 10x slower than
 * per-work-item partials). */
static void default_shape_knobs(struct clopt_knobs *k, int cpu, size_t group_limit, size_t n_state)
{
    if (!k->work_group) {
        k->work_group = cpu ? 16 : 256;
        if (k->work_group > group_limit)
            k->work_group = group_limit;
    }
    if (!k->elems_per_item)
        k->elems_per_item = cpu ? 4096 : 16;
    /* GPUs: one element per lane leaves an update rule with state (Adam: theta, m, v)
     * three loads in flight per work-item, too few to cover memory latency at full
     * occupancy (issue 17, GPU item 7: read from the kernels, not measured): four lanes give
     * twelve. Stateless rules stay at 1, already bandwidth-bound on few loads. */
    if (!k->vector_width) {
        k->vector_width = cpu ? 16 : n_state > 0 ? 4 : 1;
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

/* Whether the device's vendor is AMD (PoCL names the CPU's: "AuthenticAMD"), into *amd. */
static int query_amd_vendor(struct clopt_context *ctx, int *amd)
{
    char vendor[128] = "";
    const cl_int err = clGetDeviceInfo(ctx->device, CL_DEVICE_VENDOR, sizeof vendor, vendor, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetDeviceInfo(CL_DEVICE_VENDOR)");
    vendor[sizeof vendor - 1] = '\0';
    *amd = strstr(vendor, "AMD") != NULL || strstr(vendor, "Advanced Micro Devices") != NULL;
    return CLOPT_OK;
}

/* The defaults of the code knobs: accumulators, fusion, prefetch and vector registers. */
static void default_code_knobs(struct clopt_knobs *k, int cpu, int amd_cpu, int has_fp64)
{
    if (!k->accumulate)
        k->accumulate = has_fp64 ? 1 : 2;
    if (!k->fuse)
        k->fuse = 1;
    /* Measured on PoCL at n = 1e8. Intel Xeon (AVX-512): +40 % for the single step, +60 % for
     * a fused one. AMD EPYC Zen 4, interleaved rounds of `clopt run --dim 1e8 --tune pf=..`
     * (GB/s, pf=off against pf=1024): the single step is faster without it (GD 53-85 against
     * 46-64, Adam 48-81 against 41-60, 2-D poisson 28-31 against 26-27: the hardware
     * prefetcher keeps up, and the extra instructions and misses in flight only compete with
     * the loads), the fused GD step slower (223-310 against 347-385 equivalent). 1 is off. */
    if (!k->prefetch)
        k->prefetch = !cpu ? 1 : amd_cpu && k->fuse == 1 ? 1 : 1024;
    /* Measured on PoCL 3.1 (Xeon, AVX-512, n = 1e8): fused GD 1.0e10 -> 1.6e10-1.9e10
     * element-iterations/s; a single step is bandwidth-bound either way. */
    if (!k->simd_bits)
        k->simd_bits = cpu ? 512 : 256;
}

/* What the knob table cannot know: the device's limits and the knobs that bound others. */
static int check_device_knobs(struct clopt_context *ctx, const struct clopt_knobs *k,
                              size_t max_group)
{
    const size_t group_limit = floor_power_of_two(max_group);
    if (k->work_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.work_group=%zu must be a power of two <= %zu (the device's "
                          "maximum)",
                          k->work_group, group_limit);
    if (k->reduce_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.reduce_group=%zu must be a power of two <= %zu (the device's "
                          "maximum)",
                          k->reduce_group, group_limit);
    if (k->vector_width > k->elems_per_item)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.vector_width=%zu must be at most knobs.elems_per_item (%zu)",
                          k->vector_width, k->elems_per_item);
    if (k->accumulate == 1 && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no fp64 for double accumulators: use knobs.accumulate=2 "
                          "(compensated float)",
                          ctx->info.name);
    /* The knob table's range stops at FUSE_MAX already; this keeps the two facts (the
     * table's range, the kernel's 32-bit loss mask) from drifting apart silently. */
    if (k->fuse > FUSE_MAX)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "knobs.fuse=%zu: fuse at most %d iterations",
                          k->fuse, FUSE_MAX);
    return CLOPT_OK;
}

size_t clopt_fused_private_cap(const struct clopt_solver *s)
{
    return s->ctx->info.kind == CLOPT_DEVICE_CPU ? FUSE_PRIVATE_BYTES : FUSE_PRIVATE_BYTES_GPU;
}

/* What a fused launch needs: private memory for its block, and no global-norm clipping. */
static int check_fused(const struct clopt_solver *s, const struct clopt_knobs *k)
{
    /* The fused kernel keeps a block of vw x fblock elements of theta, the state and a
     * data vector per work-item in private memory, and per fused iteration the lanes' f
     * and g^2 sums (with their compensation terms when those are float): a GPU spills
     * what its registers cannot hold to slow memory, a CPU runtime to its stack. */
    const size_t block = k->vector_width * k->loss_block < k->elems_per_item
                             ? k->vector_width * k->loss_block
                             : k->elems_per_item;
    const size_t sums = k->fuse * k->vector_width * (k->accumulate == 1 ? 2 * 8 : 4 * 4);
    const size_t private_bytes = block * (2 + s->n_state) * s->elem_size + sums;
    const size_t cap = clopt_fused_private_cap(s);
    if (k->fuse > 1 && private_bytes > cap)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "knobs.fuse=%zu keeps %zu elements (knobs.vector_width x "
                          "knobs.loss_block) of theta and its state and %zu bytes of loss sums "
                          "per work-item in private memory, %zu bytes in all: lower "
                          "knobs.fuse, knobs.vector_width or knobs.loss_block to stay within "
                          "%zu bytes on this device",
                          k->fuse, block, sums, private_bytes, cap);
    if (k->fuse > 1 && s->opts.clip_norm > 0)
        return clopt_fail(
            s->ctx, CLOPT_ERR_INVALID_ARG,
            "knobs.fuse=%zu cannot be used with options.clip_norm (every step needs the global "
            "gradient norm first): use knobs.fuse=1",
            k->fuse);
    return CLOPT_OK;
}

/* Knobs the caller chose that suit CPUs only, on another kind of device: accepted (the
 * results are the same bits), and said once in s->knob_warning for the front end to show. */
static void note_cpu_shaped_knobs(struct clopt_solver *s)
{
    const struct clopt_knobs *asked = &s->opts.knobs;
    const int layout = asked->layout == 1, partials = asked->group_partials == 1;
    if (s->ctx->info.kind == CLOPT_DEVICE_CPU || (!layout && !partials))
        return;
    snprintf(s->knob_warning, sizeof s->knob_warning,
             "%s%s%s %s shaped for CPUs; on device '%.160s', which is not a CPU, the defaults (%s) "
             "run faster and give the same theta",
             layout ? "knobs.layout=1 (contiguous chunks)" : "", layout && partials ? " and " : "",
             partials ? "knobs.group_partials=1 (a partial per work-item)" : "",
             layout && partials ? "are" : "is", s->ctx->info.name,
             layout && partials ? "strided layout, a partial per work-group"
             : layout           ? "strided layout"
                                : "a partial per work-group");
}

const char *clopt_solver_knob_warning(const struct clopt_solver *s)
{
    return s && s->knob_warning[0] ? s->knob_warning : NULL;
}

int clopt_resolve_knobs(struct clopt_solver *s, size_t max_group)
{
    note_cpu_shaped_knobs(s);
    struct clopt_knobs k = s->opts.knobs;
    const int cpu = s->ctx->info.kind == CLOPT_DEVICE_CPU;
    default_shape_knobs(&k, cpu, floor_power_of_two(max_group), s->n_state);
    /* The vendor matters only for the prefetch default on CPUs. */
    int amd_cpu = 0;
    int status = cpu && !k.prefetch ? query_amd_vendor(s->ctx, &amd_cpu) : CLOPT_OK;
    if (status != CLOPT_OK)
        return status;
    default_code_knobs(&k, cpu, amd_cpu, s->ctx->info.has_fp64);
    char why[256];
    status = clopt_knobs_check(&k, why, sizeof why) == CLOPT_OK
                 ? CLOPT_OK
                 : clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "%s", why);
    if (status == CLOPT_OK)
        status = check_device_knobs(s->ctx, &k, max_group);
    if (status == CLOPT_OK)
        status = check_fused(s, &k);
    if (status == CLOPT_OK)
        s->knobs = k;
    return status;
}
