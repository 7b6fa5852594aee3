/* The fused step driver: for each element a work-item owns, compute the objective's value
 * and gradient (never stored), apply the update rule in place, and accumulate f and g^2
 * in private registers; then emit one partial pair per work-item (no barrier: cheap on
 * CPU runtimes such as PoCL, which turn barriers into loops over work-items) or one per
 * work-group after a local tree (GPUs).
 *
 * Partial slots are numbered globally: every shard but the last holds a whole number of
 * tiles of CLOPT_WG * CLOPT_EPW elements, so slot p always covers the same elements
 * whatever the shard count, and the reduction sums them in slot order. That makes the
 * loss bit-identical for one shard and many. */
#ifndef CLOPT_WG
#define CLOPT_WG 64
#endif
#ifndef CLOPT_EPW
#define CLOPT_EPW 1024
#endif
#ifndef CLOPT_VW
#define CLOPT_VW 16
#endif
/* 1: each work-item owns a contiguous chunk (CPU); 2: strided across the group (GPU). */
#ifndef CLOPT_LAYOUT
#define CLOPT_LAYOUT 1
#endif
/* Ascend instead of descend (the update sees -g). */
#ifndef CLOPT_MAXIMIZE
#define CLOPT_MAXIMIZE 0
#endif
/* 0: one partial per work-item; 1: local tree, one partial per work-group. */
#ifndef CLOPT_GROUP_PARTIALS
#define CLOPT_GROUP_PARTIALS 0
#endif
/* Loss terms each lane sums in `real` before adding to its acc_t sum (power of two). */
#ifndef CLOPT_FBLOCK
#define CLOPT_FBLOCK 16
#endif

#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
typedef double acc_t;
void clopt_acc_add(acc_t *s, acc_t *c, acc_t x);
#endif
#ifndef CLOPT_UPDATE_NSTATE
#define CLOPT_UPDATE_NSTATE 0
void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1, real h2, real h3,
                  real h4, real h5, real h6, real h7);
#endif
/* The objective's kind: separable clopt_fdf (the default, so a user file needs no marker),
 * clopt_fdf_data with one value of a data vector per element, or clopt_fdf_stencil. */
#if !defined(CLOPT_OBJECTIVE_SEPARABLE) && !defined(CLOPT_OBJECTIVE_DATA) &&                       \
    !defined(CLOPT_STENCIL_RADIUS)
real clopt_fdf(real x, ulong i, real *g);
#endif
/* A stencil objective reads theta from `src`, which holds CLOPT_HALO neighbours on each
 * side of the shard (from the neighbouring shards, or unused ends), and writes `theta`
 * with the same layout: ping-pong buffers. */
#ifdef CLOPT_STENCIL_RADIUS
#define CLOPT_HALO CLOPT_STENCIL_RADIUS
#if CLOPT_HALO < 1 || CLOPT_HALO > 16
#error "CLOPT_STENCIL_RADIUS must be a whole number from 1 to 16"
#endif
#else
#define CLOPT_HALO 0
#endif
/* The host sizes the halos from the radius it read in the objective file. */
#if defined(CLOPT_HOST_HALO) && CLOPT_HOST_HALO != CLOPT_HALO
#error "CLOPT_STENCIL_RADIUS differs from the radius the host read from the objective file"
#endif

/* The sweep is called twice (with and without bounds checks) and must be inlined into
 * each kernel, or `full` stays a run-time value and the hot loop keeps its checks (seen
 * on PoCL: half the bandwidth). */
#define CLOPT_INLINE __attribute__((always_inline)) inline

#if CLOPT_EPW % CLOPT_VW != 0
#error "CLOPT_EPW must be a multiple of CLOPT_VW"
#endif

/* Per lane: f and g^2 sums in acc_t, with compensation terms when acc_t is float. */
struct clopt_lanes {
    acc_t f[CLOPT_VW], fc[CLOPT_VW], g2[CLOPT_VW], g2c[CLOPT_VW];
};

/* f and g of one element: the objective sees x (separable), x and its data value, or the
 * window of its neighbours (stencil). */
#if CLOPT_HALO > 0
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf_stencil(win[l], index, n_total, &g[l])
#elif defined(CLOPT_OBJECTIVE_DATA)
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf_data(x[l], d[l], index, &g[l])
#else
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf(x[l], index, &g[l])
#endif

/* Applies the update to one element held in registers and its optimizer state. */
CLOPT_INLINE void clopt_element_update(real *x, real *a, real *b, real *c, real g, real h0, real h1,
                                       real h2, real h3, real h4, real h5, real h6, real h7,
                                       real gscale)
{
    /* The update sees the clipped (and, to maximise, negated) gradient; the loss partials
     * keep the objective's own. */
    real step_g = g * gscale;
#ifdef CLOPT_CLIP_VALUE
    step_g = clamp(step_g, (real)-CLOPT_CLIP_VALUE, (real)CLOPT_CLIP_VALUE);
#endif
#if CLOPT_MAXIMIZE
    step_g = -step_g;
#endif
    clopt_update(x, step_g, a, b, c, h0, h1, h2, h3, h4, h5, h6, h7);
}

/* Elements of one block: each lane sums CLOPT_FBLOCK terms in `real` before adding them to
 * its acc_t sum. Converting every term to double costs as many instructions as the whole
 * update on a CPU, and the instruction count limits how many cache misses a core keeps in
 * flight (measured on PoCL: 20 GB/s per-term, 27 GB/s with blocks of 16, 33 GB/s without
 * any loss). FBLOCK = 1 adds every term straight to acc_t. */
#define CLOPT_BLOCK (CLOPT_VW * CLOPT_FBLOCK < CLOPT_EPW ? CLOPT_VW * CLOPT_FBLOCK : CLOPT_EPW)

/* Visits the work-item's CLOPT_EPW elements base + k * stride in blocks, lane l taking
 * k = l (mod CLOPT_VW). `full` (a constant after inlining) drops the bounds checks. */
CLOPT_INLINE void clopt_sweep(__global real *restrict theta, __global real *restrict s0,
                              __global real *restrict s1, __global real *restrict s2,
                              __global const real *restrict src, __global const real *restrict data,
                              ulong n_shard, ulong offset, ulong n_total, ulong base, ulong stride,
                              struct clopt_lanes *acc, real h0, real h1, real h2, real h3, real h4,
                              real h5, real h6, real h7, real gscale, const bool full,
                              const bool with_loss, const bool with_update)
{
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        /* The lanes unroll into one vector operation each. Vectorising the loops as well
         * would treat the lanes as an interleaved access group and drown them in shuffles
         * (seen on PoCL); when this loop is unrolled away, the outer one would be. */
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = b; k < b + CLOPT_BLOCK; k += CLOPT_VW) {
            /* All loads of a lane group, then the arithmetic, then all stores: in this
             * order the compiler needs no proof that theta and the state buffers do not
             * alias to turn each phase into vector operations (PoCL drops `restrict`, and
             * element-by-element order left every optimizer with state scalar). */
            real x[CLOPT_VW], sa[CLOPT_VW], sb[CLOPT_VW], sc[CLOPT_VW], f[CLOPT_VW], g[CLOPT_VW];
            bool in_range[CLOPT_VW];
#if CLOPT_HALO > 0
            real win[CLOPT_VW][2 * CLOPT_HALO + 1];
#endif
#ifdef CLOPT_OBJECTIVE_DATA
            real d[CLOPT_VW];
#endif
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                in_range[l] = full || j < n_shard;
#if CLOPT_HALO > 0
                /* src[j + r] is theta_{offset + j + r - CLOPT_HALO}. The unrolled copies let
                 * the windows live in registers. */
#pragma unroll
                for (uint r = 0; r <= 2 * CLOPT_HALO; ++r)
                    win[l][r] = in_range[l] ? src[j + r] : 0;
                x[l] = win[l][CLOPT_HALO];
#else
                (void)src;
                x[l] = in_range[l] ? theta[j] : 0;
#endif
#ifdef CLOPT_OBJECTIVE_DATA
                d[l] = in_range[l] ? data[j] : 0;
#else
                (void)data;
#endif
                sa[l] = CLOPT_UPDATE_NSTATE > 0 && with_update && in_range[l] ? s0[j] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 && with_update && in_range[l] ? s1[j] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 && with_update && in_range[l] ? s2[j] : 0;
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l)
                f[l] = CLOPT_OBJECTIVE_AT(l, offset + base + (ulong)(k + l) * stride);
            if (with_update) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], h0, h1, h2, h3, h4,
                                         h5, h6, h7, gscale);
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                if (!in_range[l])
                    continue;
                if (with_update) {
                    theta[CLOPT_HALO + j] = x[l];
                    if (CLOPT_UPDATE_NSTATE > 0)
                        s0[j] = sa[l];
                    if (CLOPT_UPDATE_NSTATE > 1)
                        s1[j] = sb[l];
                    if (CLOPT_UPDATE_NSTATE > 2)
                        s2[j] = sc[l];
                }
                if (!with_loss)
                    continue;
#if CLOPT_FBLOCK > 1
                block_f[l] += f[l];
                block_g2[l] += g[l] * g[l];
#else
                clopt_acc_add(&acc->f[l], &acc->fc[l], (acc_t)f[l]);
                clopt_acc_add(&acc->g2[l], &acc->g2c[l], (acc_t)g[l] * (acc_t)g[l]);
#endif
            }
        }
#if CLOPT_FBLOCK > 1
        if (with_loss)
            for (uint l = 0; l < CLOPT_VW; ++l) {
                clopt_acc_add(&acc->f[l], &acc->fc[l], (acc_t)block_f[l]);
                clopt_acc_add(&acc->g2[l], &acc->g2c[l], (acc_t)block_g2[l]);
            }
#endif
    }
}

CLOPT_INLINE void clopt_step_body(__global real *restrict theta, __global real *restrict s0,
                                  __global real *restrict s1, __global real *restrict s2,
                                  __global const real *restrict src,
                                  __global const real *restrict data, ulong n_shard, ulong offset,
                                  ulong n_total, __global acc_t *partials, ulong partial_base,
                                  real h0, real h1, real h2, real h3, real h4, real h5, real h6,
                                  real h7, real gscale, __local acc_t *local_f,
                                  __local acc_t *local_g2, const bool with_loss,
                                  const bool with_update)
{
    struct clopt_lanes acc;
    for (uint l = 0; l < CLOPT_VW; ++l) {
        acc.f[l] = 0;
        acc.fc[l] = 0;
        acc.g2[l] = 0;
        acc.g2c[l] = 0;
    }
#if CLOPT_LAYOUT == 1
    const ulong base = (ulong)get_global_id(0) * CLOPT_EPW;
    const ulong stride = 1;
    const bool full = base + CLOPT_EPW <= n_shard;
#else
    const ulong block = (ulong)get_group_id(0) * ((ulong)CLOPT_WG * CLOPT_EPW);
    const ulong base = block + get_local_id(0);
    const ulong stride = CLOPT_WG;
    const bool full = block + (ulong)CLOPT_WG * CLOPT_EPW <= n_shard;
#endif
    if (full)
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, &acc, h0,
                    h1, h2, h3, h4, h5, h6, h7, gscale, true, with_loss, with_update);
    else
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, &acc, h0,
                    h1, h2, h3, h4, h5, h6, h7, gscale, false, with_loss, with_update);
    if (!with_loss)
        return;

    /* Fold the lanes in a fixed order; the compensation terms are applied first. */
    acc_t f = 0, g2 = 0;
    for (uint l = 0; l < CLOPT_VW; ++l) {
        f += acc.f[l] - acc.fc[l];
        g2 += acc.g2[l] - acc.g2c[l];
    }
#if CLOPT_GROUP_PARTIALS
    const uint lid = get_local_id(0);
    local_f[lid] = f;
    local_g2[lid] = g2;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint stride = CLOPT_WG / 2; stride > 0; stride /= 2) {
        if (lid < stride) {
            local_f[lid] += local_f[lid + stride];
            local_g2[lid] += local_g2[lid + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const ulong p = partial_base + get_group_id(0);
        partials[2 * p] = local_f[0];
        partials[2 * p + 1] = local_g2[0];
    }
#else
    (void)local_f;
    (void)local_g2;
    const ulong p = partial_base + get_global_id(0);
    partials[2 * p] = f;
    partials[2 * p + 1] = g2;
#endif
}

#define CLOPT_STEP_PARAMS                                                                          \
    __global real *restrict theta, __global real *restrict s0, __global real *restrict s1,         \
        __global real *restrict s2, ulong n_shard, ulong offset, __global acc_t *partials,         \
        ulong partial_base, real h0, real h1, real h2, real h3, real h4, real h5, real h6,         \
        real h7, __global const acc_t *grad_sq, __global const real *restrict src,                 \
        __global const real *restrict data, ulong n_total

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

/* One update, no loss: the iterations between loss evaluations. */
__kernel void clopt_step(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    h0, h1, h2, h3, h4, h5, h6, h7, gscale, local_f, local_g2, false, true);
}

/* One update with L(theta_t) and ||g_t||^2 partials of the values before the update. */
__kernel void clopt_step_loss(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    h0, h1, h2, h3, h4, h5, h6, h7, gscale, local_f, local_g2, true, true);
}

/* Loss partials only; theta is not written. */
__kernel void clopt_eval(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    h0, h1, h2, h3, h4, h5, h6, h7, gscale, local_f, local_g2, true, false);
}
