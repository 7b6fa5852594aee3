/* STREAM-style reference kernels: the bandwidth the fused step is measured against, on the
 * same device, in the same run. Each work-item moves CLOPT_EPW elements: a contiguous chunk
 * (layout 1, CPUs) or every CLOPT_WG-th element of its group's tile (layout 2, GPUs), as
 * the step kernel does. */
#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#define CLOPT_RESTRICT restrict
#endif
#ifndef CLOPT_WG
#define CLOPT_WG 64
#endif
#ifndef CLOPT_EPW
#define CLOPT_EPW 1024
#endif
#ifndef CLOPT_LAYOUT
#define CLOPT_LAYOUT 1
#endif

/* Whole chunks move as explicit 16-wide vectors: the reference must not be held back by
 * a compiler that leaves a plain loop scalar. */
#define CLOPT_STREAM_VW 16
#if CLOPT_EPW % CLOPT_STREAM_VW != 0
#error "CLOPT_EPW must be a multiple of 16 for the stream kernels"
#endif
#define CLOPT_VLOAD vload16
#define CLOPT_VSTORE vstore16

#if CLOPT_LAYOUT == 1
#define CLOPT_STREAM_INDEX(k) ((ulong)get_global_id(0) * CLOPT_EPW + (k))
#else
#define CLOPT_STREAM_INDEX(k)                                                                      \
    ((ulong)get_group_id(0) * ((ulong)CLOPT_WG * CLOPT_EPW) + get_local_id(0) + (ulong)(k)*CLOPT_WG)
#endif

/* b = a: one read and one write per element. */
__kernel void clopt_stream_copy(__global const real *CLOPT_RESTRICT a,
                                __global real *CLOPT_RESTRICT b, ulong n)
{
#if CLOPT_LAYOUT == 1
    /* Whole chunks without bounds checks, so the loop vectorises. */
    const ulong base = (ulong)get_global_id(0) * CLOPT_EPW;
    if (base + CLOPT_EPW <= n) {
        for (uint k = 0; k < CLOPT_EPW / CLOPT_STREAM_VW; ++k)
            CLOPT_VSTORE(CLOPT_VLOAD(k, a + base), k, b + base);
        return;
    }
#endif
    for (uint k = 0; k < CLOPT_EPW; ++k) {
        const ulong i = CLOPT_STREAM_INDEX(k);
        if (i < n)
            b[i] = a[i];
    }
}

/* a = s a in place: the access pattern of a gradient step on theta alone. */
__kernel void clopt_stream_scale(__global real *a, real s, ulong n)
{
#if CLOPT_LAYOUT == 1
    const ulong base = (ulong)get_global_id(0) * CLOPT_EPW;
    if (base + CLOPT_EPW <= n) {
        for (uint k = 0; k < CLOPT_EPW / CLOPT_STREAM_VW; ++k)
            CLOPT_VSTORE(s * CLOPT_VLOAD(k, a + base), k, a + base);
        return;
    }
#endif
    for (uint k = 0; k < CLOPT_EPW; ++k) {
        const ulong i = CLOPT_STREAM_INDEX(k);
        if (i < n)
            a[i] = s * a[i];
    }
}
