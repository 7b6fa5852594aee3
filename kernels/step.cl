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
#define CLOPT_VW 8
#endif
/* 1: each work-item owns a contiguous chunk (CPU); 2: strided across the group (GPU). */
#ifndef CLOPT_LAYOUT
#define CLOPT_LAYOUT 1
#endif
/* 0: one partial per work-item; 1: local tree, one partial per work-group. */
#ifndef CLOPT_GROUP_PARTIALS
#define CLOPT_GROUP_PARTIALS 0
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
void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1, real h2,
                  real h3);
#endif
#ifndef CLOPT_OBJECTIVE_SEPARABLE
real clopt_fdf(real x, ulong i, real *g);
#endif

#if CLOPT_EPW % CLOPT_VW != 0
#error "CLOPT_EPW must be a multiple of CLOPT_VW"
#endif

struct clopt_lanes {
    acc_t f[CLOPT_VW], fc[CLOPT_VW], g2[CLOPT_VW], g2c[CLOPT_VW];
};

inline void clopt_element(__global real *theta, __global real *s0, __global real *s1,
                          __global real *s2, ulong j, ulong global_index,
                          struct clopt_lanes *acc, uint lane, const bool with_loss,
                          const bool with_update, real h0, real h1, real h2, real h3)
{
    real x = theta[j];
    real g;
    real f = clopt_fdf(x, global_index, &g);
    if (with_update) {
        real a = 0, b = 0, c = 0;
#if CLOPT_UPDATE_NSTATE > 0
        a = s0[j];
#endif
#if CLOPT_UPDATE_NSTATE > 1
        b = s1[j];
#endif
#if CLOPT_UPDATE_NSTATE > 2
        c = s2[j];
#endif
        clopt_update(&x, g, &a, &b, &c, h0, h1, h2, h3);
        theta[j] = x;
#if CLOPT_UPDATE_NSTATE > 0
        s0[j] = a;
#endif
#if CLOPT_UPDATE_NSTATE > 1
        s1[j] = b;
#endif
#if CLOPT_UPDATE_NSTATE > 2
        s2[j] = c;
#endif
    }
    if (with_loss) {
        clopt_acc_add(&acc->f[lane], &acc->fc[lane], (acc_t)f);
        clopt_acc_add(&acc->g2[lane], &acc->g2c[lane], (acc_t)g * (acc_t)g);
    }
}

inline void clopt_step_body(__global real *theta, __global real *s0, __global real *s1,
                            __global real *s2, ulong n_shard, ulong offset,
                            __global acc_t *partials, ulong partial_base, real h0, real h1,
                            real h2, real h3, __local acc_t *local_f,
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
    const ulong begin = (ulong)get_global_id(0) * CLOPT_EPW;
    if (begin + CLOPT_EPW <= n_shard) {
        /* The hot path: no bounds checks, the lanes unrolled into one vector operation
         * each. Vectorising the outer loop as well would treat the lanes as an
         * interleaved access group and drown the loop in shuffles (seen on PoCL). */
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = 0; k < CLOPT_EPW; k += CLOPT_VW) {
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l)
                clopt_element(theta, s0, s1, s2, begin + k + l, offset + begin + k + l, &acc,
                              l, with_loss, with_update, h0, h1, h2, h3);
        }
    } else {
        /* Lanes stay compile-time indices here too, so the accumulators live in
         * registers rather than in a stack array. */
        for (uint k = 0; k < CLOPT_EPW; k += CLOPT_VW) {
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l)
                if (begin + k + l < n_shard)
                    clopt_element(theta, s0, s1, s2, begin + k + l, offset + begin + k + l,
                                  &acc, l, with_loss, with_update, h0, h1, h2, h3);
        }
    }
#else
    const ulong block = (ulong)get_group_id(0) * ((ulong)CLOPT_WG * CLOPT_EPW);
    const ulong first = block + get_local_id(0);
    if (block + (ulong)CLOPT_WG * CLOPT_EPW <= n_shard) {
        for (uint k = 0; k < CLOPT_EPW; k += CLOPT_VW) {
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = first + (ulong)(k + l) * CLOPT_WG;
                clopt_element(theta, s0, s1, s2, j, offset + j, &acc, l, with_loss,
                              with_update, h0, h1, h2, h3);
            }
        }
    } else {
        for (uint k = 0; k < CLOPT_EPW; k += CLOPT_VW) {
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = first + (ulong)(k + l) * CLOPT_WG;
                if (j < n_shard)
                    clopt_element(theta, s0, s1, s2, j, offset + j, &acc, l, with_loss,
                                  with_update, h0, h1, h2, h3);
            }
        }
    }
#endif
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

#define CLOPT_STEP_PARAMS                                                                    \
    __global real *theta, __global real *s0, __global real *s1, __global real *s2,           \
        ulong n_shard, ulong offset, __global acc_t *partials, ulong partial_base, real h0,  \
        real h1, real h2, real h3

/* OpenCL allows __local variables only at kernel scope: each kernel declares the tree's
 * scratch and hands it down. */
#if CLOPT_GROUP_PARTIALS
#define CLOPT_LOCAL_SCRATCH __local acc_t local_f[CLOPT_WG], local_g2[CLOPT_WG]
#else
#define CLOPT_LOCAL_SCRATCH __local acc_t *local_f = 0, *local_g2 = 0
#endif

/* One update, no loss: the iterations between loss evaluations. */
__kernel void clopt_step(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    clopt_step_body(theta, s0, s1, s2, n_shard, offset, partials, partial_base, h0, h1, h2,
                    h3, local_f, local_g2, false, true);
}

/* One update with L(theta_t) and ||g_t||^2 partials of the values before the update. */
__kernel void clopt_step_loss(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    clopt_step_body(theta, s0, s1, s2, n_shard, offset, partials, partial_base, h0, h1, h2,
                    h3, local_f, local_g2, true, true);
}

/* Loss partials only; theta is not written. */
__kernel void clopt_eval(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    clopt_step_body(theta, s0, s1, s2, n_shard, offset, partials, partial_base, h0, h1, h2,
                    h3, local_f, local_g2, true, false);
}
