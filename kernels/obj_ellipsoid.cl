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

/* 2^t for 0 <= t < 127 without a library call, so that the step loop stays vectorised (a
 * call to exp2 or rint per element made this objective compute-bound at a tenth of the
 * memory bandwidth on PoCL). t = k + f with k the nearest integer and |f| <= 1/2; 2^f from
 * the Taylor series of e^(f ln 2), coefficients (ln 2)^j / j!, whose truncation error
 * (< 4e-9 at degree 7 in float, < 1e-18 at degree 13 in double) is below rounding; 2^k goes
 * straight into the exponent bits. */
static inline real clopt_exp2_nonneg(real t)
{
    const int k = (int)(t + (real)0.5);
    const real f = t - (real)k;
    real p;
#if CLOPT_DOUBLE
    p = 1.3691488853904124e-12;
    p = p * f + 2.5678435993488196e-11;
    p = p * f + 4.44553827187081e-10;
    p = p * f + 7.054911620801121e-09;
    p = p * f + 1.0178086009239696e-07;
    p = p * f + 1.3215486790144305e-06;
#else
    p = (real)1.5252733804059838e-05;
#endif
#if CLOPT_DOUBLE
    p = p * f + (real)1.5252733804059838e-05;
#endif
    p = p * f + (real)0.00015403530393381606;
    p = p * f + (real)0.0013333558146428441;
    p = p * f + (real)0.009618129107628477;
    p = p * f + (real)0.055504108664821576;
    p = p * f + (real)0.2402265069591007;
    p = p * f + (real)0.6931471805599453;
    p = p * f + (real)1;
#if CLOPT_DOUBLE
    return p * as_double((long)(k + 1023) << 52);
#else
    return p * as_float((k + 127) << 23);
#endif
}

static inline real clopt_fdf(real x, ulong i, real *g)
{
    /* Constants folded at build time. */
    const real log2_cond = (real)log2((real)CLOPT_PARAM_COND);
    const real inv_nm1 = CLOPT_N > 1 ? (real)1 / (real)(CLOPT_N - 1) : (real)0;
    /* i < n: where n fits in an int, (real)(int)i is the same rounding of the same integer
     * as (real)i, but AVX2 has no vector conversion from 64-bit integers, so (real)i kept
     * the whole step scalar (seen in PoCL's haswell code: vcvtsi2ss per element, 8.8 GB/s
     * against sphere's 47). */
#if CLOPT_N <= 2147483647
    const real index = (real)(int)i;
#else
    const real index = (real)i;
#endif
    const real c = clopt_exp2_nonneg(log2_cond * (index * inv_nm1));
    *g = (real)2 * c * x;
    return c * x * x;
}

/* The vector form of clopt_fdf (see CLOPT_OBJECTIVE_VECTOR in step.cl): the same operations
 * per lane, in the same order, on vector types, so the bits are those of clopt_fdf. Written
 * as scalar lanes, PoCL left the exp2 polynomial scalar (callgrind, PoCL 3.1 haswell: 5.3
 * instructions per element against sphere's 1.1). Where n does not fit in an int, the index
 * conversion needs 64-bit integers and the scalar form serves. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL && CLOPT_N <= 2147483647
#define CLOPT_OBJECTIVE_VECTOR 1

/* clopt_exp2_nonneg, lane by lane: convert_int rounds toward zero, as (int) does. */
static inline clopt_vreal clopt_exp2_nonneg_vec(clopt_vreal t)
{
    const clopt_vint k = CLOPT_CONVERT_VINT(t + (real)0.5);
    const clopt_vreal f = t - CLOPT_CONVERT_VREAL(k);
    clopt_vreal p;
#if CLOPT_DOUBLE
    p = (clopt_vreal)1.3691488853904124e-12;
    p = p * f + 2.5678435993488196e-11;
    p = p * f + 4.44553827187081e-10;
    p = p * f + 7.054911620801121e-09;
    p = p * f + 1.0178086009239696e-07;
    p = p * f + 1.3215486790144305e-06;
    p = p * f + (real)1.5252733804059838e-05;
#else
    p = (clopt_vreal)((real)1.5252733804059838e-05);
#endif
    p = p * f + (real)0.00015403530393381606;
    p = p * f + (real)0.0013333558146428441;
    p = p * f + (real)0.009618129107628477;
    p = p * f + (real)0.055504108664821576;
    p = p * f + (real)0.2402265069591007;
    p = p * f + (real)0.6931471805599453;
    p = p * f + (real)1;
#if CLOPT_DOUBLE
    return p * CLOPT_AS_VREAL(CLOPT_CONVERT_VBITS(k + 1023) << 52);
#else
    return p * CLOPT_AS_VREAL((k + 127) << 23);
#endif
}

static inline clopt_vreal clopt_fdf_vec(clopt_vreal x, ulong first, ulong stride, clopt_vreal *g)
{
    const real log2_cond = (real)log2((real)CLOPT_PARAM_COND);
    const real inv_nm1 = CLOPT_N > 1 ? (real)1 / (real)(CLOPT_N - 1) : (real)0;
    /* Lane l's index first + l * stride, as clopt_fdf's (real)(int)i: the lanes inside the
     * shard are below n, so the 32-bit sum is the index itself (lanes past the shard may
     * wrap: their results are dropped). */
    const clopt_vint i32 = CLOPT_AS_VINT((uint)first + (uint)stride * CLOPT_VLANE_NUMBERS);
    const clopt_vreal index = CLOPT_CONVERT_VREAL(i32);
    const clopt_vreal c = clopt_exp2_nonneg_vec(log2_cond * (index * inv_nm1));
    *g = (real)2 * c * x;
    return c * x * x;
}
#endif
