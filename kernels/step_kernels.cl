/* Part of step.cl's program text, continuing sweep_fused.cl and ending it: the tile loops,
 * the kernel parameter lists and the kernels clopt_step, clopt_step_loss, clopt_eval and
 * clopt_step_fused. */

/* The elements of one tile (CLOPT_WG * CLOPT_EPW consecutive elements of the shard, one
 * work-group's share) and its partial slots: iteration s's partial pairs go to the tile's
 * slots plus s * partial_stride. Which work-group runs a tile never changes its arithmetic. */
CLOPT_INLINE void clopt_tile(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                             __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                             __global const real *CLOPT_RESTRICT src,
                             __global const real *CLOPT_RESTRICT data, ulong n_shard, ulong offset,
                             ulong n_total, ulong tile, __global acc_t *partials,
                             ulong partial_base, ulong partial_stride, const real *hyp,
                             __constant real *fused_hyp, real gscale, __local acc_t *local_f,
                             __local acc_t *local_g2, const uint loss_mask, const bool with_update,
                             const uint steps)
{
    /* The loops over iterations run to the compile-time CLOPT_FUSE, skipping those past
     * `steps`: a trip count known before this function is inlined (the compiler simplifies
     * it first) lets CLOPT_FUSE_LOOP unroll them. */
    struct clopt_lanes acc[CLOPT_FUSE];
    CLOPT_FUSE_LOOP
    for (uint s = 0; s < CLOPT_FUSE; ++s)
        for (uint l = 0; l < CLOPT_VW; ++l) {
            acc[s].f[l] = 0;
            acc[s].fc[l] = 0;
            acc[s].g2[l] = 0;
            acc[s].g2c[l] = 0;
        }
    const uint lid = get_local_id(0);
#if CLOPT_LAYOUT == 1
    const ulong base = (tile * CLOPT_WG + lid) * CLOPT_EPW;
    const ulong stride = 1;
    const bool full = base + CLOPT_EPW <= n_shard;
#else
    const ulong block = tile * ((ulong)CLOPT_WG * CLOPT_EPW);
    const ulong base = block + lid;
    const ulong stride = CLOPT_WG;
    const bool full = block + (ulong)CLOPT_WG * CLOPT_EPW <= n_shard;
#endif
    if (steps > 1) {
#if CLOPT_HALO == 0
        if (CLOPT_FUSE_DIRECT && full && loss_mask == 0)
            clopt_sweep_direct(theta, s0, s1, s2, data, offset, base, stride, acc, fused_hyp,
                               gscale, CLOPT_FUSE);
        else if (CLOPT_FUSE_DIRECT && full && loss_mask == 1)
            clopt_sweep_direct(theta, s0, s1, s2, data, offset, base, stride, acc, fused_hyp,
                               gscale, 0);
        else if (full)
            clopt_sweep_fused(theta, s0, s1, s2, data, n_shard, offset, base, stride, acc,
                              fused_hyp, gscale, true, loss_mask);
        else
            clopt_sweep_fused(theta, s0, s1, s2, data, n_shard, offset, base, stride, acc,
                              fused_hyp, gscale, false, loss_mask);
#else
        (void)fused_hyp;
#endif
    }
#if CLOPT_STENCIL_STREAM
    else if (full && clopt_stencil_inside(offset + base, n_total))
        clopt_sweep_stencil(theta, s0, s1, s2, src, offset, n_total, base, acc, hyp[0], hyp[1],
                            hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, loss_mask & 1,
                            with_update);
#elif CLOPT_GRID_STREAM && defined(CLOPT_GRID_VECTOR)
    /* The last chunk too, up to the shard's end: clopt_sweep's gather per point there was
     * the fixed cost of a small grid (poisson 100 x 100: 5 times sphere's iteration). */
    else if (base < n_shard)
        clopt_sweep_grid(theta, s0, s1, s2, src, data, n_shard, offset, base,
                         full ? CLOPT_EPW : (uint)(n_shard - base), acc, hyp[0], hyp[1], hyp[2],
                         hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, loss_mask & 1,
                         with_update);
#elif CLOPT_GRID_STREAM
    else if (full)
        clopt_sweep_grid(theta, s0, s1, s2, src, data, n_shard, offset, base, acc, hyp[0], hyp[1],
                         hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, loss_mask & 1,
                         with_update);
#else
    else if (full)
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, acc,
                    hyp[0], hyp[1], hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, true,
                    loss_mask & 1, with_update);
#endif
    /* With CLOPT_STENCIL_STREAM, also a full chunk at an end of theta: the checks are right
     * for it too, and one sweep fewer to inline keeps the build short. With a grid's vector
     * form, only chunks wholly past the shard come here (their blocks' zero folds). */
    else
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, acc,
                    hyp[0], hyp[1], hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, false,
                    loss_mask & 1, with_update);
    clopt_store_theta_done();

    CLOPT_FUSE_LOOP
    for (uint s = 0; s < CLOPT_FUSE; ++s) {
        if (s >= steps || !((loss_mask >> s) & 1))
            continue;
        /* Fold the lanes in a fixed order; the compensation terms are applied first. */
        acc_t f = 0, g2 = 0;
        for (uint l = 0; l < CLOPT_VW; ++l) {
            f += acc[s].f[l] - acc[s].fc[l];
            g2 += acc[s].g2[l] - acc[s].g2c[l];
        }
        const ulong slot_base = partial_base + s * partial_stride;
#if CLOPT_GROUP_PARTIALS
        local_f[lid] = f;
        local_g2[lid] = g2;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint width = CLOPT_WG / 2; width > 0; width /= 2) {
            if (lid < width) {
                local_f[lid] += local_f[lid + width];
                local_g2[lid] += local_g2[lid + width];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid == 0) {
            partials[2 * (slot_base + tile)] = local_f[0];
            partials[2 * (slot_base + tile) + 1] = local_g2[0];
        }
        /* The next iteration's tree reuses the scratch. */
        barrier(CLK_LOCAL_MEM_FENCE);
#else
        (void)local_f;
        (void)local_g2;
        const ulong p = slot_base + tile * CLOPT_WG + lid;
        partials[2 * p] = f;
        partials[2 * p + 1] = g2;
#endif
    }
}

/* Runs the tiles of this work-group: its own (one group per tile), or with CLOPT_GPCU > 0
 * a fixed grid of groups (that many per compute unit) striding over the shard's tiles. */
CLOPT_INLINE void
clopt_step_body(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,
                ulong n_shard, ulong offset, ulong n_total, __global acc_t *partials,
                ulong partial_base, ulong partial_stride, const real *hyp,
                __constant real *fused_hyp, real gscale, __local acc_t *local_f,
                __local acc_t *local_g2, const uint loss_mask, const bool with_update,
                const uint steps)
{
    /* From element 0 at CLOPT_LEAD to element 0 at CLOPT_HALO: the sweeps' indexing. */
    theta += CLOPT_LEAD - CLOPT_HALO;
    src += CLOPT_LEAD - CLOPT_HALO;
#if CLOPT_GPCU > 0
    const ulong tile_elems = (ulong)CLOPT_WG * CLOPT_EPW;
    const ulong tiles = (n_shard + tile_elems - 1) / tile_elems;
    for (ulong tile = get_group_id(0); tile < tiles; tile += get_num_groups(0))
        clopt_tile(theta, s0, s1, s2, src, data, n_shard, offset, n_total, tile, partials,
                   partial_base, partial_stride, hyp, fused_hyp, gscale, local_f, local_g2,
                   loss_mask, with_update, steps);
#else
    /* A shard past the host's launch limit (2^30 work-items) comes in chunks placed by a
     * global offset of whole groups. */
    const ulong tile = get_global_offset(0) / CLOPT_WG + get_group_id(0);
    clopt_tile(theta, s0, s1, s2, src, data, n_shard, offset, n_total, tile, partials, partial_base,
               partial_stride, hyp, fused_hyp, gscale, local_f, local_g2, loss_mask, with_update,
               steps);
#endif
}

/* The host sets these (and clopt_step_fused's own) by the positions in
 * host/solver/kernel_args.h; tests/test_solver.c checks the counts. */
#define CLOPT_STEP_PARAMS                                                                          \
    __global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,                         \
        __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2, ulong n_shard,         \
        ulong offset, __global acc_t *partials, ulong partial_base, real h0, real h1, real h2,     \
        real h3, real h4, real h5, real h6, real h7, __global const acc_t *grad_sq,                \
        __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,         \
        ulong n_total

/* OpenCL allows __local variables only at kernel scope: each kernel declares the tree's
 * scratch and hands it down. */
#if CLOPT_GROUP_PARTIALS
#define CLOPT_LOCAL_SCRATCH __local acc_t local_f[CLOPT_WG], local_g2[CLOPT_WG]
#else
#define CLOPT_LOCAL_SCRATCH __local acc_t *local_f = 0, *local_g2 = 0
#endif

/* Global-norm clipping: grad_sq[1] holds ||g||^2 from a pass over theta just before this
 * one; the scale is torch's clip_grad_norm_: min(1, c / (||g|| + 1e-6)). */
#ifdef CLOPT_CLIP_NORM
#define CLOPT_GRAD_SCALE                                                                           \
    const real gscale =                                                                            \
        (real)fmin((acc_t)1, (acc_t)CLOPT_CLIP_NORM / (sqrt(grad_sq[1]) + (acc_t)1e-6))
#else
#define CLOPT_GRAD_SCALE                                                                           \
    const real gscale = 1;                                                                         \
    (void)grad_sq
#endif

/* simd=512: the x86 back end keeps to 256-bit vectors on the AVX-512 Xeons and Cores it
 * knows (older Xeons lowered their clock for 512-bit code), and no OpenCL build option can
 * lift that; the tuning CPU of a target attribute can, while the instruction set stays the
 * device's. Alder Lake's tuning (the Golden Cove core of current Xeons) has no such
 * preference. Measured on PoCL 3.1 (Xeon, AVX-512, n = 1e8): fused GD 1.0e10 -> 1.6e10-1.9e10
 * element-iterations/s. The lanes are independent, so the results are the same bits. */
#if CLOPT_SIMD512 && defined(__clang__) && defined(__x86_64__) && defined(__AVX512F__)
#define CLOPT_KERNEL_TUNING __attribute__((target("tune=alderlake")))
#else
#define CLOPT_KERNEL_TUNING
#endif

#define CLOPT_HYPER_ARRAY const real hyp[8] = {h0, h1, h2, h3, h4, h5, h6, h7}

/* One update, no loss: the iterations between loss evaluations. */
__kernel CLOPT_KERNEL_TUNING void clopt_step(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 0, true, 1);
}

/* One update with L(theta_t) and ||g_t||^2 partials of the values before the update. */
__kernel CLOPT_KERNEL_TUNING void clopt_step_loss(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 1, true, 1);
}

/* Loss partials only; theta is not written. */
__kernel CLOPT_KERNEL_TUNING void clopt_eval(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 1, false, 1);
}

/* CLOPT_FUSE iterations per launch (separable objectives, no global-norm clipping): each
 * element runs them in registers between one read and one write of theta and its state.
 * hyper holds each iteration's 8 hyper-parameters (h0..h7 of the launch are unused), in
 * __constant memory: GPUs serve a value all work-items read from a broadcast cache, and a
 * private copy, indexed by iteration, went to scratch memory (see CLOPT_FUSE_LOOP); the
 * partials of iteration s go to slots partial_base + s * partial_stride + ..., for the
 * iterations whose bit in loss_mask is set. */
#if CLOPT_FUSE > 1 && CLOPT_HALO == 0
__kernel CLOPT_KERNEL_TUNING void clopt_step_fused(CLOPT_STEP_PARAMS, __constant real *hyper,
                                                   ulong partial_stride, uint loss_mask)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    /* Unused (each iteration's values come from hyper), but clopt_tile takes them. */
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    partial_stride, hyp, hyper, gscale, local_f, local_g2, loss_mask, true,
                    CLOPT_FUSE);
}
#endif
