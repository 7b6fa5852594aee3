/* Types and helpers shared by every clopt kernel. The host puts this file first in each
 * program; the knobs below are overridden with -D. */
#ifndef CLOPT_COMMON_CL
#define CLOPT_COMMON_CL

#ifndef CLOPT_HAS_FP64
#define CLOPT_HAS_FP64 0
#endif
#ifndef CLOPT_DOUBLE
#define CLOPT_DOUBLE 0
#endif
#if CLOPT_HAS_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* Floating-point contraction: a * b + c may become one fma inside one expression, never
 * across statements (OpenCL C's default, stated so that no driver default changes it). The
 * bit-for-bit claims across code shapes (K fused steps = K launches, the tuner's check
 * against the default knobs, any shard count) rest on this: every shape evaluates the same
 * expressions through the same inline functions, so each contracts the same way. PoCL 3.1
 * was checked to do exactly this (x * y + z fused, t = x * y; t + z not); turning it OFF
 * instead would change today's results on every device. A GPU compiler that fused across
 * statements, or differently per shape, would break those claims: scripts/gpu-check.sh
 * runs the identity tests on the GPU to find out (issue 17, GPU item 6). */
#pragma OPENCL FP_CONTRACT ON

/* Buffers that never alias are declared CLOPT_RESTRICT: `restrict`, except where the host
 * sets CLOPT_NO_RESTRICT (on oclgrind, which cannot run the
 * llvm.experimental.noalias.scope.decl calls clang emits when it inlines restrict pointers:
 * "Undefined external function" in oclgrind 21.10). */
#ifndef CLOPT_NO_RESTRICT
#define CLOPT_NO_RESTRICT 0
#endif
#if CLOPT_NO_RESTRICT
#define CLOPT_RESTRICT
#else
#define CLOPT_RESTRICT restrict
#endif

#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
#if CLOPT_DOUBLE
typedef double real;
#else
typedef float real;
#endif
#endif

/* Loss partials: double wherever the device has it, because float sums of 1e8 terms
 * stall; otherwise float with a compensation term (Kahan). */
#ifndef CLOPT_ACC_KAHAN
#define CLOPT_ACC_KAHAN (!CLOPT_HAS_FP64)
#endif
#if CLOPT_ACC_KAHAN
typedef float acc_t;
#else
typedef double acc_t;
#endif

/* Adds x to the running sum *s with compensation *c (unused when acc_t is double).
 * Kernel helpers are `static inline`: a plain C99 `inline` definition gives no external
 * definition, so a compiler that does not inline a call finds no body (NVIDIA's, with
 * optimisation off: ptxas "Unresolved extern function"). */
static inline void clopt_acc_add(acc_t *s, acc_t *c, acc_t x)
{
#if CLOPT_ACC_KAHAN
    acc_t y = x - *c;
    acc_t t = *s + y;
    *c = (t - *s) - y;
    *s = t;
#else
    (void)c;
    *s += x;
#endif
}

/* Grid objectives (host -D: CLOPT_GRID_AXES 1..3 and the axis lengths CLOPT_GRID_S0..S2, C
 * order, the last axis fastest; the objective file sets CLOPT_GRID_RADIUS R). A point's
 * neighbourhood w holds the (2R+1)^axes values of theta on the box around it, in C order:
 * w[CLOPT_GRID_CENTER] is the point, w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, d)] its
 * neighbour d along axis k (steps along several axes add up). Values outside the grid are 0.
 * The macros expand where they are used, after the objective has defined R. */
#ifdef CLOPT_GRID_AXES
#ifndef CLOPT_GRID_S1
#define CLOPT_GRID_S1 1UL
#endif
#ifndef CLOPT_GRID_S2
#define CLOPT_GRID_S2 1UL
#endif
#define CLOPT_GRID_SHAPE(k) ((k) == 0 ? CLOPT_GRID_S0 : (k) == 1 ? CLOPT_GRID_S1 : CLOPT_GRID_S2)
#define CLOPT_GRID_W (2 * CLOPT_GRID_RADIUS + 1)
#define CLOPT_GRID_WINDOW                                                                          \
    (CLOPT_GRID_W * (CLOPT_GRID_AXES > 1 ? CLOPT_GRID_W : 1) *                                     \
     (CLOPT_GRID_AXES > 2 ? CLOPT_GRID_W : 1))
#define CLOPT_GRID_CENTER ((CLOPT_GRID_WINDOW - 1) / 2)
#define CLOPT_GRID_STEP(k, d)                                                                      \
    ((int)(d) * (CLOPT_GRID_AXES - 1 - (k) >= 1 ? CLOPT_GRID_W : 1) *                              \
     (CLOPT_GRID_AXES - 1 - (k) >= 2 ? CLOPT_GRID_W : 1))
#endif

/* Vector lanes (CLOPT_VW >= 2, the host's vector-width knob): clopt_vreal is real with
 * CLOPT_VW lanes, clopt_vint and clopt_vuint int and uint with as many, clopt_vbits the
 * unsigned integers of real's width (uint or ulong) with as many, clopt_vlanes the
 * lanes of one as scalars. The 1-D stencil stream loads windows with them, and an objective
 * may give a vector form of its clopt_fdf (see CLOPT_OBJECTIVE_VECTOR in step.cl). */
#if defined(CLOPT_VW) && CLOPT_VW >= 2
/* vload16 returns 16 floats, which clang says AVX2 targets pass otherwise than AVX-512 ones
 * (-Wpsabi). Nothing here crosses a call boundary (the helpers are inlined), and PoCL prints
 * "1 warning generated." on stderr, which would break the CLI's one-line errors. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif
#define CLOPT_CAT2(a, b) a##b
#define CLOPT_CAT(a, b) CLOPT_CAT2(a, b)
#if CLOPT_DOUBLE
typedef CLOPT_CAT(double, CLOPT_VW) clopt_vreal;
typedef CLOPT_CAT(ulong, CLOPT_VW) clopt_vbits;
#define CLOPT_CONVERT_VREAL CLOPT_CAT(convert_double, CLOPT_VW)
#define CLOPT_AS_VREAL CLOPT_CAT(as_double, CLOPT_VW)
#define CLOPT_AS_VBITS CLOPT_CAT(as_ulong, CLOPT_VW)
#define CLOPT_CONVERT_VBITS CLOPT_CAT(convert_ulong, CLOPT_VW)
#else
typedef CLOPT_CAT(float, CLOPT_VW) clopt_vreal;
typedef CLOPT_CAT(uint, CLOPT_VW) clopt_vbits;
#define CLOPT_CONVERT_VREAL CLOPT_CAT(convert_float, CLOPT_VW)
#define CLOPT_AS_VREAL CLOPT_CAT(as_float, CLOPT_VW)
#define CLOPT_AS_VBITS CLOPT_CAT(as_uint, CLOPT_VW)
#define CLOPT_CONVERT_VBITS CLOPT_CAT(convert_uint, CLOPT_VW)
#endif
/* A lane mask for select() on clopt_vreal: integers of real's width, all ones where true
 * (what a comparison of two clopt_vreal gives). The grid objectives' vector forms take their
 * face tests as such masks (see CLOPT_GRID_VECTOR in step.cl). */
#if CLOPT_DOUBLE
typedef CLOPT_CAT(long, CLOPT_VW) clopt_vmask;
#define CLOPT_CONVERT_VMASK CLOPT_CAT(convert_long, CLOPT_VW)
#else
typedef CLOPT_CAT(int, CLOPT_VW) clopt_vmask;
#define CLOPT_CONVERT_VMASK CLOPT_CAT(convert_int, CLOPT_VW)
#endif
typedef CLOPT_CAT(int, CLOPT_VW) clopt_vint;
typedef CLOPT_CAT(uint, CLOPT_VW) clopt_vuint;
#define CLOPT_CONVERT_VINT CLOPT_CAT(convert_int, CLOPT_VW)
#define CLOPT_AS_VINT CLOPT_CAT(as_int, CLOPT_VW)
/* 0, 1, .., CLOPT_VW - 1: a constant (built with a loop, it was a loop at run time). */
#if CLOPT_VW == 2
#define CLOPT_VLANE_NUMBERS ((clopt_vuint)(0, 1))
#elif CLOPT_VW == 4
#define CLOPT_VLANE_NUMBERS ((clopt_vuint)(0, 1, 2, 3))
#elif CLOPT_VW == 8
#define CLOPT_VLANE_NUMBERS ((clopt_vuint)(0, 1, 2, 3, 4, 5, 6, 7))
#else
#define CLOPT_VLANE_NUMBERS ((clopt_vuint)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#endif
/* An empty asm that takes a vector in a register and gives it back: the compiler no longer
 * sees that the value is a plain load. The sweeps update theta lane by lane, and a vector
 * load whose only uses are single lanes is split into scalar loads, which the vectoriser
 * then put back together from 8-byte pairs with permutes (PoCL 3.1, 512-bit: 16 of the 32
 * instructions of laplacian's loop per group, 16 of poisson's 45; with the barrier, none).
 * x86 only, for a vector that fits one register, which the constraint needs (64 bytes with
 * 512-bit registers: AVX-512 without clang 18's 256-bit-only AVX10 mode; 32 with AVX; 16),
 * and fills at least an xmm one (two floats came back wrong through it, PoCL 3.1);
 * elsewhere (oclgrind, GPUs) nothing. The bits do not change. */
#define CLOPT_VBYTES (CLOPT_VW * (CLOPT_DOUBLE ? 8 : 4))
#if defined(__AVX512F__) && (defined(__EVEX512__) || __clang_major__ < 18)
#define CLOPT_X86_VREG_BYTES 64
#elif defined(__AVX__)
#define CLOPT_X86_VREG_BYTES 32
#else
#define CLOPT_X86_VREG_BYTES 16
#endif
#if defined(__clang__) && defined(__x86_64__) && CLOPT_VBYTES >= 16 &&                             \
    CLOPT_VBYTES <= CLOPT_X86_VREG_BYTES
#define CLOPT_OPAQUE_VREAL(v) __asm__("" : "+v"(v))
#else
#define CLOPT_OPAQUE_VREAL(v) (void)0
#endif
#define CLOPT_HAS_VREAL 1
union clopt_vlanes {
    clopt_vreal v;
    real s[CLOPT_VW];
};
union clopt_vmasks {
    clopt_vmask v;
#if CLOPT_DOUBLE
    long s[CLOPT_VW];
#else
    int s[CLOPT_VW];
#endif
};
#else
#define CLOPT_HAS_VREAL 0
#endif

#endif /* CLOPT_COMMON_CL */
