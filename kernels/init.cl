/* Initial values on the device: theta_0 (clopt_init), zeroed buffers (clopt_zero) and the
 * fused kernel's hyper-parameters (clopt_put_hyper).
 *
 * Initial theta from a counter-based generator: element i draws from Philox4x32-10 with
 * counter (i, 0) and key = seed, so theta_0 does not depend on shards, knobs or launch
 * shape. Uniform values are exact in any precision; normal values go through log and
 * cospi, computed in double where the device has it, so devices agree to rounding. */
#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#define CLOPT_HAS_FP64 0
#define CLOPT_DOUBLE 0
#endif

#define CLOPT_INIT_NORMAL 0
#define CLOPT_INIT_UNIFORM 1
#define CLOPT_INIT_CONST 2

static inline uint4 clopt_philox4x32_10(uint4 ctr, uint2 key)
{
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key.x += 0x9E3779B9u;
            key.y += 0xBB67AE85u;
        }
        const uint hi0 = mul_hi(0xD2511F53u, ctr.x), lo0 = 0xD2511F53u * ctr.x;
        const uint hi1 = mul_hi(0xCD9E8D57u, ctr.z), lo1 = 0xCD9E8D57u * ctr.z;
        ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    }
    return ctr;
}

/* theta[skip + j] is element offset + j, for j < count: stencil objectives keep halo
 * neighbours in front, and the host launches a large shard in chunks of at most 2^30
 * work-items, each told its start through offset and skip, so no work-item id passes 2^30
 * (drivers have been reported to wrap ids at 2^31). The host sets the arguments by the
 * positions in host/solver/kernel_args.h. */
__kernel void clopt_init(__global real *theta, ulong count, ulong offset, uint kind, real value,
                         uint seed_lo, uint seed_hi, ulong skip)
{
    theta += skip;
    const ulong j = get_global_id(0);
    if (j >= count)
        return;
    const ulong i = offset + j;
    if (kind == CLOPT_INIT_CONST) {
        theta[j] = value;
        return;
    }
    const uint4 r =
        clopt_philox4x32_10((uint4)((uint)i, (uint)(i >> 32), 0u, 0u), (uint2)(seed_lo, seed_hi));
    if (kind == CLOPT_INIT_UNIFORM) {
#if CLOPT_DOUBLE
        /* 53 random bits: u in [0, 1), 2u - 1 exact. */
        const double u = (double)(((ulong)r.x << 21) ^ (ulong)(r.y >> 11)) * 0x1p-53;
#else
        const float u = (float)(r.x >> 8) * 0x1p-24f;
#endif
        theta[j] = value * ((real)2 * (real)u - (real)1);
        return;
    }
    /* Box-Muller on (0, 1] x [0, 1). */
#if CLOPT_HAS_FP64
    const double u1 = ((double)r.x + 1.0) * 0x1p-32;
    const double u2 = (double)r.y * 0x1p-32;
    theta[j] = value * (real)(sqrt(-2.0 * log(u1)) * cospi(2.0 * u2));
#else
    const float u1 = ((float)(r.x >> 8) + 1.0f) * 0x1p-24f;
    const float u2 = (float)(r.y >> 8) * 0x1p-24f;
    theta[j] = value * (real)(sqrt(-2.0f * log(u1)) * cospi(2.0f * u2));
#endif
}

/* Zeroes word k < `words` of a buffer (optimizer state, loss partials, stencil halos), one
 * 32-bit word per work-item; the host launches it in chunks of at most 2^30 work-items
 * with a global offset, so no launch grows with the buffer. k is the offset plus the id
 * within the chunk, added in 64 bits rather than taken from get_global_id (see
 * clopt_init). (A fixed grid striding over the buffer added 2-3 s to the set-up of
 * n = 1e8 Adam on PoCL, likely because the loop kept PoCL from vectorising the work-items
 * together.) A kernel rather than clEnqueueFillBuffer: oclgrind cannot follow a fill whose
 * pattern is shorter than the buffer, and then reports every later read of it
 * (tests/oclgrind/host_store_shadow.c), which would bury real reports; and issue 17 counts
 * 1-byte fills among the GPU risks. */
__kernel void clopt_zero(__global uint *buffer, ulong words)
{
    const ulong k =
        get_global_offset(0) + (ulong)get_group_id(0) * get_local_size(0) + get_local_id(0);
    if (k < words)
        buffer[k] = 0;
}

/* hyper[8 slot .. 8 slot + 7] = h0..h7: one fused iteration's hyper-parameters, written by
 * one work-item. Kernel arguments are copied when the launch is queued, so the host keeps
 * no memory alive for it and never waits (a fill at an offset would too, but oclgrind
 * cannot follow one: see clopt_zero). */
__kernel void clopt_put_hyper(__global real *hyper, uint slot, real h0, real h1, real h2, real h3,
                              real h4, real h5, real h6, real h7)
{
    if (get_global_id(0) != 0)
        return;
    __global real *h = hyper + 8 * (ulong)slot;
    h[0] = h0;
    h[1] = h1;
    h[2] = h2;
    h[3] = h3;
    h[4] = h4;
    h[5] = h5;
    h[6] = h6;
    h[7] = h7;
}
