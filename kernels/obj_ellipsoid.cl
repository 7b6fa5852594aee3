/* ellipsoid: L(theta) = sum_i c_i theta_i^2 with c_i = cond^(i/(n-1)), minimum 0 at 0.
 * The condition number of the Hessian is cond. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_DOUBLE
#define CLOPT_DOUBLE 0
#endif
#ifndef CLOPT_PARAM_COND
#define CLOPT_PARAM_COND 1e6
#endif
#ifndef CLOPT_N
#define CLOPT_N 2
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

/* c_i = 2^(a i), a = log2(cond)/(n-1), without a library call, so that the step loop stays
 * vectorised (a call to exp2 or rint per element made this objective compute-bound at a
 * tenth of the memory bandwidth on PoCL).
 *
 * 2^t, 0 <= t < 127, as 2^k (1 + e): k the integer nearest t, e = 2^f - 1 for f = t - k in
 * [-1/2, 1/2], from the Taylor series of e^(f ln 2) (coefficients (ln 2)^j / j!, truncation
 * error < 4e-9 at degree 7 in float, < 1e-18 at degree 13 in double: below rounding). e by
 * Estrin's scheme (pairs, then f^2, f^4, f^8): Horner's chain of dependent multiply-adds is
 * long for a CPU's schedulers. Kept apart from the 1, e keeps its low bits until the one
 * rounding of c below. The macro serves the scalar and vector forms (T: real or
 * clopt_vreal), so that both round alike. */
/* Every multiply-add is an explicit fma: the vector forms' low factors are folded at build
 * time, where clang's folder always fuses a contracted a * b + c, while a device without
 * fast fma may run the scalar form's as a multiply and an add; fma is the same everywhere. */
#define CLOPT_FMA(T, a, b, c) fma((T)(a), (T)(b), (T)(c))
#if CLOPT_DOUBLE
#define CLOPT_EXP2M1_POLY(T, f, e)                                                                 \
    do {                                                                                           \
        const T f2 = (f) * (f);                                                                    \
        const T f4 = f2 * f2;                                                                      \
        const T f8 = f4 * f4;                                                                      \
        const T q0 = CLOPT_FMA(T, 0.2402265069591007, f, 0.6931471805599453);                      \
        const T q1 = CLOPT_FMA(T, 0.009618129107628477, f, 0.055504108664821576);                  \
        const T q2 = CLOPT_FMA(T, 0.00015403530393381606, f, 0.0013333558146428441);               \
        const T q3 = CLOPT_FMA(T, 1.3215486790144305e-06, f, 1.5252733804059838e-05);              \
        const T q4 = CLOPT_FMA(T, 7.054911620801121e-09, f, 1.0178086009239696e-07);               \
        const T q5 = CLOPT_FMA(T, 2.5678435993488196e-11, f, 4.44553827187081e-10);                \
        const T q6 = (T)(real)1.3691488853904124e-12;                                              \
        const T low = CLOPT_FMA(T, CLOPT_FMA(T, q3, f2, q2), f4, CLOPT_FMA(T, q1, f2, q0));        \
        const T high = CLOPT_FMA(T, q6, f4, CLOPT_FMA(T, q5, f2, q4));                             \
        (e) = (f)*CLOPT_FMA(T, high, f8, low);                                                     \
    } while (0)
#else
#define CLOPT_EXP2M1_POLY(T, f, e)                                                                 \
    do {                                                                                           \
        const T f2 = (f) * (f);                                                                    \
        const T f4 = f2 * f2;                                                                      \
        const T q0 = CLOPT_FMA(T, (real)0.2402265069591007, f, (real)0.6931471805599453);          \
        const T q1 = CLOPT_FMA(T, (real)0.009618129107628477, f, (real)0.055504108664821576);      \
        const T q2 = CLOPT_FMA(T, (real)0.00015403530393381606, f, (real)0.0013333558146428441);   \
        const T q3 = (T)(real)1.5252733804059838e-05;                                              \
        (e) = (f)*CLOPT_FMA(T, CLOPT_FMA(T, q3, f2, q2), f4, CLOPT_FMA(T, q1, f2, q0));            \
    } while (0)
#endif

/* a as the pair RATE_HI + RATE_LO, from a in double where the device has it: a float a is
 * off by up to ~1e-7 of itself, and t = a i by ~1e-6 at t = 12, which would be the error of
 * c. In double precision, and without fp64, RATE_LO is 0. */
#if CLOPT_N > 1
#define CLOPT_ELLIPSOID_RATE_REAL                                                                  \
    ((real)log2((real)CLOPT_PARAM_COND) * ((real)1 / (real)(CLOPT_N - 1)))
#else
#define CLOPT_ELLIPSOID_RATE_REAL ((real)0)
#endif
#if !CLOPT_DOUBLE && defined(CLOPT_HAS_FP64) && CLOPT_HAS_FP64 && CLOPT_N > 1
#define CLOPT_ELLIPSOID_RATE_D (log2((double)CLOPT_PARAM_COND) / (double)(CLOPT_N - 1))
#define CLOPT_ELLIPSOID_RATE_HI ((real)CLOPT_ELLIPSOID_RATE_D)
#define CLOPT_ELLIPSOID_RATE_LO ((real)(CLOPT_ELLIPSOID_RATE_D - (double)CLOPT_ELLIPSOID_RATE_HI))
#else
#define CLOPT_ELLIPSOID_RATE_HI CLOPT_ELLIPSOID_RATE_REAL
#define CLOPT_ELLIPSOID_RATE_LO ((real)0)
#endif

/* c_i = 2^(16 a h) 2^(a l) with i = 16 h + l. The vector forms need the first factor once
 * per group, or once per block of groups, and take the second from 16 constants: one 2^t per
 * element made this objective compute-bound (PoCL 3.1 on a 2-core AVX-512 EPYC, theta in L3:
 * 4.2e9 elements/s, against 13e9 for sphere). c = 2^k_h (L + L e_h) with L = 2^(a l): one
 * rounding after the product besides L's own, so c is within about 1.5 ulp (a float c
 * within 1.7e-7 of itself, emulated, while h fits the mantissa: n <= 2^28 in float; beyond,
 * (real)h is rounded and the error grows to a few 1e-6, as the single 2^t had at every n).
 * 16 a is 16 times a, exactly. */
#define CLOPT_ELLIPSOID_GROUP 16
#define CLOPT_ELLIPSOID_GROUP_RATE_HI (CLOPT_ELLIPSOID_RATE_HI * (real)CLOPT_ELLIPSOID_GROUP)
#define CLOPT_ELLIPSOID_GROUP_RATE_LO (CLOPT_ELLIPSOID_RATE_LO * (real)CLOPT_ELLIPSOID_GROUP)

/* 2^(m (r_hi + r_lo)) = 2^k (1 + e) for a whole number m >= 0: returns e, *scale = 2^k. m r_hi
 * to twice the working precision: its rounding error (exact from fma) plus m r_lo join the
 * reduced argument, where their bits count. */
static inline real clopt_ellipsoid_exp2m1(real m, real r_hi, real r_lo, real *scale)
{
    const real t_hi = m * r_hi;
    const real t_lo = fma(m, r_lo, fma(m, r_hi, -t_hi));
    const int k = (int)(t_hi + (real)0.5);
    const real f = (t_hi - (real)k) + t_lo;
    real e;
    CLOPT_EXP2M1_POLY(real, f, e);
#if CLOPT_DOUBLE
    *scale = as_double((long)(k + 1023) << 52);
#else
    *scale = as_float((k + 127) << 23);
#endif
    return e;
}

/* L = 2^(a l) for the index l within its group. */
static inline real clopt_ellipsoid_low(uint l)
{
    real scale;
    const real e = clopt_ellipsoid_exp2m1((real)(int)l, CLOPT_ELLIPSOID_RATE_HI,
                                          CLOPT_ELLIPSOID_RATE_LO, &scale);
    return ((real)1 + e) * scale;
}

/* The group's number as a real: where n fits in an int, (real)(int)h is the same rounding
 * of the same integer as (real)h, but AVX2 has no vector conversion from 64-bit integers
 * (seen in PoCL's haswell code: a scalar vcvtsi2ss per element). */
static inline real clopt_ellipsoid_group_real(ulong h)
{
#if CLOPT_N <= 2147483647
    return (real)(int)h;
#else
    return (real)h;
#endif
}

static inline real clopt_fdf(real x, ulong i, real *g)
{
    real scale;
    const real e = clopt_ellipsoid_exp2m1(clopt_ellipsoid_group_real(i / CLOPT_ELLIPSOID_GROUP),
                                          CLOPT_ELLIPSOID_GROUP_RATE_HI,
                                          CLOPT_ELLIPSOID_GROUP_RATE_LO, &scale);
    const real low = clopt_ellipsoid_low((uint)(i % CLOPT_ELLIPSOID_GROUP));
    const real c = fma(low, e, low) * scale;
    /* 2 (c x) is (2 c) x exactly: one product fewer. */
    const real cx = c * x;
    *g = cx + cx;
    return cx * x;
}

/* The vector form of clopt_fdf (see CLOPT_OBJECTIVE_VECTOR in step.cl): the same operations
 * per lane, in the same order, on vector types, so the bits are those of clopt_fdf. Where n
 * does not fit in an int, the index conversion needs 64-bit integers and the scalar form
 * serves. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL && CLOPT_N <= 2147483647 &&                        \
    CLOPT_ELLIPSOID_GROUP % CLOPT_VW == 0
#define CLOPT_OBJECTIVE_VECTOR 1

/* clopt_ellipsoid_exp2m1, lane by lane (convert_int rounds toward zero, as (int) does). */
static inline clopt_vreal clopt_ellipsoid_exp2m1_vec(clopt_vreal m, real r_hi, real r_lo,
                                                     clopt_vreal *scale)
{
    const clopt_vreal t_hi = m * r_hi;
    const clopt_vreal t_lo = fma(m, (clopt_vreal)r_lo, fma(m, (clopt_vreal)r_hi, -t_hi));
    const clopt_vint k = CLOPT_CONVERT_VINT(t_hi + (real)0.5);
    const clopt_vreal f = (t_hi - CLOPT_CONVERT_VREAL(k)) + t_lo;
    clopt_vreal e;
    CLOPT_EXP2M1_POLY(clopt_vreal, f, e);
#if CLOPT_DOUBLE
    *scale = CLOPT_AS_VREAL(CLOPT_CONVERT_VBITS(k + 1023) << 52);
#else
    *scale = CLOPT_AS_VREAL((k + 127) << 23);
#endif
    return e;
}

/* clopt_ellipsoid_low of the lanes l = offset + lane, for a vector that starts offset (a
 * multiple of the vector width) into its group: constants at build time, chosen by
 * comparison (a private array indexed instead went through the stack on every call). */
static inline clopt_vreal clopt_ellipsoid_lane_low(uint offset)
{
    clopt_vreal lane_low = (clopt_vreal)0;
#pragma unroll
    for (uint place = 0; place < CLOPT_ELLIPSOID_GROUP; place += CLOPT_VW) {
        clopt_vreal scale;
        const clopt_vreal e = clopt_ellipsoid_exp2m1_vec(
            CLOPT_CONVERT_VREAL(CLOPT_AS_VINT(place + CLOPT_VLANE_NUMBERS)),
            CLOPT_ELLIPSOID_RATE_HI, CLOPT_ELLIPSOID_RATE_LO, &scale);
        lane_low = offset == place ? ((real)1 + e) * scale : lane_low;
    }
    return lane_low;
}

static inline clopt_vreal clopt_ellipsoid_fg(clopt_vreal x, clopt_vreal c, clopt_vreal *g)
{
    const clopt_vreal cx = c * x;
    *g = cx + cx;
    return cx * x;
}

static inline clopt_vreal clopt_fdf_vec(clopt_vreal x, ulong first, ulong stride, clopt_vreal *g)
{
    clopt_vreal low, e, scale;
    if (stride == 1 && first % CLOPT_VW == 0) {
        /* The lanes share their group. */
        real scale_h;
        const real e_h = clopt_ellipsoid_exp2m1(
            clopt_ellipsoid_group_real(first / CLOPT_ELLIPSOID_GROUP),
            CLOPT_ELLIPSOID_GROUP_RATE_HI, CLOPT_ELLIPSOID_GROUP_RATE_LO, &scale_h);
        e = (clopt_vreal)e_h;
        scale = (clopt_vreal)scale_h;
        low = clopt_ellipsoid_lane_low((uint)(first % CLOPT_ELLIPSOID_GROUP));
    } else {
        /* Lane l's index first + l * stride: the lanes inside the shard are below n, so the
         * 32-bit sum is the index itself (lanes past the shard may wrap: their results are
         * dropped). */
        const clopt_vuint i32 = (uint)first + (uint)stride * CLOPT_VLANE_NUMBERS;
        e = clopt_ellipsoid_exp2m1_vec(
            CLOPT_CONVERT_VREAL(CLOPT_AS_VINT(i32 / (uint)CLOPT_ELLIPSOID_GROUP)),
            CLOPT_ELLIPSOID_GROUP_RATE_HI, CLOPT_ELLIPSOID_GROUP_RATE_LO, &scale);
        clopt_vreal scale_l;
        const clopt_vreal e_l = clopt_ellipsoid_exp2m1_vec(
            CLOPT_CONVERT_VREAL(CLOPT_AS_VINT(i32 % (uint)CLOPT_ELLIPSOID_GROUP)),
            CLOPT_ELLIPSOID_RATE_HI, CLOPT_ELLIPSOID_RATE_LO, &scale_l);
        low = ((real)1 + e_l) * scale_l;
    }
    return clopt_ellipsoid_fg(x, fma(low, e, low) * scale, g);
}

/* The block form (see CLOPT_OBJECTIVE_VECTOR_BLOCK in step.cl): where the block is
 * consecutive elements from a group boundary (the CPU sweeps), one vector evaluation gives
 * the e_h and 2^k_h of all its groups, at most CLOPT_VW of them while CLOPT_FBLOCK <= 16,
 * and each vector takes its group's lane: lane by lane the same operations as
 * clopt_ellipsoid_exp2m1, so the same bits. */
#if defined(CLOPT_FBLOCK) && CLOPT_FBLOCK <= 16
#define CLOPT_OBJECTIVE_VECTOR_BLOCK 1

typedef struct {
    clopt_vreal e, scale;
} clopt_vblock;

/* shuffle's mask has the width of the vector's elements. */
#if CLOPT_DOUBLE
typedef CLOPT_CAT(ulong, CLOPT_VW) clopt_ellipsoid_vmask;
#else
typedef clopt_vuint clopt_ellipsoid_vmask;
#endif

static inline bool clopt_ellipsoid_block_aligned(ulong block_first, ulong stride)
{
    return stride == 1 && block_first % CLOPT_ELLIPSOID_GROUP == 0;
}

static inline clopt_vblock clopt_fdf_vec_block(ulong block_first, ulong stride)
{
    clopt_vblock block;
    if (!clopt_ellipsoid_block_aligned(block_first, stride)) {
        block.e = block.scale = (clopt_vreal)0;
        return block;
    }
    const clopt_vuint groups = (uint)(block_first / CLOPT_ELLIPSOID_GROUP) + CLOPT_VLANE_NUMBERS;
    block.e = clopt_ellipsoid_exp2m1_vec(CLOPT_CONVERT_VREAL(CLOPT_AS_VINT(groups)),
                                         CLOPT_ELLIPSOID_GROUP_RATE_HI,
                                         CLOPT_ELLIPSOID_GROUP_RATE_LO, &block.scale);
    return block;
}

static inline clopt_vreal clopt_fdf_vec_in_block(clopt_vreal x, clopt_vblock block, uint k,
                                                 ulong first, ulong stride, clopt_vreal *g)
{
    const uint into_block = k * CLOPT_VW;
    if (!clopt_ellipsoid_block_aligned(first - into_block, stride))
        return clopt_fdf_vec(x, first, stride, g);
    const clopt_ellipsoid_vmask lane = (clopt_ellipsoid_vmask)(into_block / CLOPT_ELLIPSOID_GROUP);
    const clopt_vreal e = shuffle(block.e, lane);
    const clopt_vreal low = clopt_ellipsoid_lane_low(into_block % CLOPT_ELLIPSOID_GROUP);
    return clopt_ellipsoid_fg(x, fma(low, e, low) * shuffle(block.scale, lane), g);
}
#endif
#endif
