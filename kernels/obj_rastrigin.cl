/* rastrigin: L(theta) = sum_i a + theta_i^2 - a cos(2 pi theta_i), minimum 0 at theta = 0,
 * with a local minimum near every integer point. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_DOUBLE
#define CLOPT_DOUBLE 0
#endif
#ifndef CLOPT_PARAM_A
#define CLOPT_PARAM_A 10.0
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

/* sin(2 pi x) and cos(2 pi x) in plain arithmetic, with a vector form below doing the same
 * operations lane by lane: PoCL's sinpi/cospi are calls its vectoriser leaves scalar
 * (callgrind, PoCL 3.1 haswell: 10.2 instructions per element against sphere's 1.1). The
 * argument is in turns, so the reduction is exact, as with sinpi: xr = x - round(x) in
 * [-1/2, 1/2], rounding half to even, exact (CLOPT_TURN_ROUND). Then, by precision:
 *  - double, quarter turns: q = round(4 xr) in -2..2, read from the low bits of
 *    4 xr + 1.5 * 2^52, and r = xr - q/4 in [-1/8, 1/8], exact; on |2 pi r| <= pi/4 the
 *    Taylor series of sin and cos (coefficients +-(2 pi)^j / j!) stop where the next term is
 *    below rounding: 1e-19 and 3e-18 after degrees 17 and 16. angle = q pi/2 + 2 pi r: an
 *    odd q swaps sin and cos; sin changes sign for q = 2, 3 (mod 4) and cos for q = 1, 2,
 *    i.e. bit 1 of q, and bit 1 of q xor bit 0 of q, moved to the sign bit. The swap selects
 *    on q << 63, whose sign bit is bit 0 of q: a vector select looks at the sign bit only.
 *  - float, half turns (issue 14 §3): h = round(2 xr) in -1..1, read from the low bit of
 *    2 xr + 1.5 * 2^23, and r = xr - h/2 in [-1/4, 1/4], exact (Sterbenz: h != 0 only for
 *    |xr| >= 1/4). angle = h pi + 2 pi r, so an odd h flips the signs of both sin and cos
 *    and nothing is swapped: one shift and two xors, against 8 operations per vector for
 *    the quarter turn's masks and selects. On |2 pi r| <= pi/2 minimax polynomials (Lawson
 *    iterations on 4000 points of [0, 1/4]) of degree 9 for sin (relative error 5.3e-9)
 *    and 10 for cos (absolute error 2.4e-10), each as many terms as the quarter turn's
 *    Taylor series took. Their coefficients are scaled by the objective's factors 2 pi a
 *    and a, so g = 2 x + sin term and f = a + x^2 - cos term need no multiplication, and the
 *    cos polynomial ends in + a, which keeps f(0) = a + 0 - a = 0 exactly.
 *    Callgrind, PoCL 3.1 haswell, n = 1e6, vw = 16: 7.23 -> 5.48 instructions per element.
 * Every choice is a select or a bit mask, not a branch, so the vector form has none. */

/* x rounded to the nearest whole number, half to even, on scalars and vectors alike. PoCL's
 * rint is a sequence of compares and selects; clang's roundeven builtin is one instruction
 * (vroundps on AVX, vrndscaleps on AVX-512): callgrind, PoCL 3.1 haswell, float, 9.8
 * instructions per element with main's add-and-subtract of 2^23, 10.5 with rint, 7.2 with
 * the builtin. All three give the same whole number. Not on oclgrind (CLOPT_NO_ROUNDEVEN,
 * set by the host), whose interpreter lacks llvm.roundeven. */
#if defined(__has_builtin) && !defined(CLOPT_NO_ROUNDEVEN)
#if __has_builtin(__builtin_elementwise_roundeven)
#define CLOPT_TURN_ROUND(x) __builtin_elementwise_roundeven(x)
#endif
#endif
#ifndef CLOPT_TURN_ROUND
#define CLOPT_TURN_ROUND(x) rint(x)
#endif

#if CLOPT_DOUBLE
#define CLOPT_TURN_MAGIC 6755399441055744.0
#define CLOPT_TURN_SIGN 0x8000000000000000UL

/* sin(2 pi x), and cos(2 pi x) into *cos_out. The + 0 turns the -0 that rounding gives for
 * x in [-1/2, 0] into +0, so that x = -0 keeps xr = -0 (the bits before roundeven). */
static inline real clopt_sincos_turns(real x, real *cos_out)
{
    const real magic = (real)CLOPT_TURN_MAGIC;
    const real xr = x - (CLOPT_TURN_ROUND(x) + 0);
    /* 4 xr is exact, so an fma here rounds as the plain sum does. */
    const real qm = xr * 4 + magic;
    const ulong q = as_ulong(qm);
    const real r = xr - (qm - magic) * (real)0.25;
    const real r2 = r * r;
    real s, c;
    s = 1.042291622081398411727e-1;
    s = s * r2 - 7.181223017785005122317e-1;
    s = s * r2 + 3.819952584848282127734e+0;
    s = s * r2 - 1.509464257682299039183e+1;
    s = s * r2 + 4.205869394489765314499e+1;
    c = 2.820059684557912150703e-1;
    c = c * r2 - 1.714390711088672065422e+0;
    c = c * r2 + 7.903536371318468804212e+0;
    c = c * r2 - 2.642625678337439745290e+1;
    c = c * r2 + 6.024464137187666036272e+1;
    s = s * r2 - 7.670585975306138584163e+1;
    s = s * r2 + 8.160524927607505420340e+1;
    s = s * r2 - 4.134170224039976023397e+1;
    s = s * r2 + 6.283185307179586476925e+0;
    s = s * r;
    c = c * r2 - 8.545681720669372773602e+1;
    c = c * r2 + 6.493939402266829149096e+1;
    c = c * r2 - 1.973920880217871723767e+1;
    c = c * r2 + 1;
    const ulong sb = as_ulong(s), cb = as_ulong(c);
    const ulong odd = q << 63;
    const ulong sin_sign = (q << 62) & CLOPT_TURN_SIGN;
    const ulong cos_sign = sin_sign ^ odd;
    *cos_out = as_double((odd ? sb : cb) ^ cos_sign);
    return as_double((odd ? cb : sb) ^ sin_sign);
}

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real a = (real)CLOPT_PARAM_A;
    real cos_2pix;
    const real sin_2pix = clopt_sincos_turns(x, &cos_2pix);
    *g = 2 * x + (real)6.283185307179586 * a * sin_2pix;
    return a + x * x - a * cos_2pix;
}
#else
#define CLOPT_TURN_MAGIC 12582912.0f

/* The float polynomials' coefficients times 2 pi a (sin, odd powers 1..9) and a (cos, even
 * powers 2..10), rounded once to float; the compiler folds the products. */
#define CLOPT_RAST_SIN_TERMS(a)                                                                    \
    const real s0 = (real)6.283185273785263 * (real)6.283185307179586 * (a);                       \
    const real s1 = (real)-41.34167747468807 * (real)6.283185307179586 * (a);                      \
    const real s2 = (real)81.60223089456302 * (real)6.283185307179586 * (a);                       \
    const real s3 = (real)-76.5749819899199 * (real)6.283185307179586 * (a);                       \
    const real s4 = (real)39.710826445442116 * (real)6.283185307179586 * (a)
#define CLOPT_RAST_COS_TERMS(a)                                                                    \
    const real c1 = (real)-19.739208624323837 * (a);                                               \
    const real c2 = (real)64.93935359118734 * (a);                                                 \
    const real c3 = (real)-85.45383043448675 * (a);                                                \
    const real c4 = (real)60.14819896794195 * (a);                                                 \
    const real c5 = (real)-25.006752640678787 * (a)

/* 2 pi a sin(2 pi x), and a cos(2 pi x) into *cos_term. */
static inline real clopt_rast_turns(real x, real *cos_term)
{
    const real a = (real)CLOPT_PARAM_A;
    CLOPT_RAST_SIN_TERMS(a);
    CLOPT_RAST_COS_TERMS(a);
    const real magic = CLOPT_TURN_MAGIC;
    const real xr = x - CLOPT_TURN_ROUND(x);
    /* 2 xr is exact, so an fma here rounds as the plain sum does. */
    const real hm = xr * 2 + magic;
    const uint flip = as_uint(hm) << 31;
    const real r = xr - (hm - magic) * (real)0.5;
    const real r2 = r * r;
    real s = s4, c = c5;
    s = s * r2 + s3;
    s = s * r2 + s2;
    s = s * r2 + s1;
    s = s * r2 + s0;
    s = s * r;
    c = c * r2 + c4;
    c = c * r2 + c3;
    c = c * r2 + c2;
    c = c * r2 + c1;
    c = c * r2 + a;
    *cos_term = as_float(as_uint(c) ^ flip);
    return as_float(as_uint(s) ^ flip);
}

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real a = (real)CLOPT_PARAM_A;
    real cos_term;
    const real sin_term = clopt_rast_turns(x, &cos_term);
    *g = 2 * x + sin_term;
    return a + x * x - cos_term;
}
#endif

/* The vector form (see CLOPT_OBJECTIVE_VECTOR in step.cl): the scalar functions above lane by
 * lane, the same operations in the same order. A vector comparison gives -1 (all bits) where
 * true, so `? :` on vectors is a per-lane select as on scalars. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL
#define CLOPT_OBJECTIVE_VECTOR 1

#if CLOPT_DOUBLE
static inline clopt_vreal clopt_sincos_turns_vec(clopt_vreal x, clopt_vreal *cos_out)
{
    const real magic = (real)CLOPT_TURN_MAGIC;
    const clopt_vreal xr = x - (CLOPT_TURN_ROUND(x) + 0);
    const clopt_vreal qm = xr * 4 + magic;
    const clopt_vbits q = CLOPT_AS_VBITS(qm);
    const clopt_vreal r = xr - (qm - magic) * (real)0.25;
    const clopt_vreal r2 = r * r;
    clopt_vreal s, c;
    s = (clopt_vreal)1.042291622081398411727e-1;
    s = s * r2 - 7.181223017785005122317e-1;
    s = s * r2 + 3.819952584848282127734e+0;
    s = s * r2 - 1.509464257682299039183e+1;
    s = s * r2 + 4.205869394489765314499e+1;
    c = (clopt_vreal)2.820059684557912150703e-1;
    c = c * r2 - 1.714390711088672065422e+0;
    c = c * r2 + 7.903536371318468804212e+0;
    c = c * r2 - 2.642625678337439745290e+1;
    c = c * r2 + 6.024464137187666036272e+1;
    s = s * r2 - 7.670585975306138584163e+1;
    s = s * r2 + 8.160524927607505420340e+1;
    s = s * r2 - 4.134170224039976023397e+1;
    s = s * r2 + 6.283185307179586476925e+0;
    s = s * r;
    c = c * r2 - 8.545681720669372773602e+1;
    c = c * r2 + 6.493939402266829149096e+1;
    c = c * r2 - 1.973920880217871723767e+1;
    c = c * r2 + 1;
    const clopt_vbits sb = CLOPT_AS_VBITS(s), cb = CLOPT_AS_VBITS(c);
    const clopt_vbits odd = q << 63;
    const clopt_vbits sin_sign = (q << 62) & CLOPT_TURN_SIGN;
    const clopt_vbits cos_sign = sin_sign ^ odd;
    *cos_out = CLOPT_AS_VREAL(select(cb, sb, odd) ^ cos_sign);
    return CLOPT_AS_VREAL(select(sb, cb, odd) ^ sin_sign);
}

static inline clopt_vreal clopt_fdf_vec(clopt_vreal x, ulong first, ulong stride, clopt_vreal *g)
{
    (void)first, (void)stride;
    const real a = (real)CLOPT_PARAM_A;
    clopt_vreal cos_2pix;
    const clopt_vreal sin_2pix = clopt_sincos_turns_vec(x, &cos_2pix);
    *g = 2 * x + (real)6.283185307179586 * a * sin_2pix;
    return a + x * x - a * cos_2pix;
}
#else
static inline clopt_vreal clopt_rast_turns_vec(clopt_vreal x, clopt_vreal *cos_term)
{
    const real a = (real)CLOPT_PARAM_A;
    CLOPT_RAST_SIN_TERMS(a);
    CLOPT_RAST_COS_TERMS(a);
    const real magic = CLOPT_TURN_MAGIC;
    const clopt_vreal xr = x - CLOPT_TURN_ROUND(x);
    const clopt_vreal hm = xr * 2 + magic;
    const clopt_vbits flip = CLOPT_AS_VBITS(hm) << 31;
    const clopt_vreal r = xr - (hm - magic) * (real)0.5;
    const clopt_vreal r2 = r * r;
    clopt_vreal s = (clopt_vreal)s4, c = (clopt_vreal)c5;
    s = s * r2 + s3;
    s = s * r2 + s2;
    s = s * r2 + s1;
    s = s * r2 + s0;
    s = s * r;
    c = c * r2 + c4;
    c = c * r2 + c3;
    c = c * r2 + c2;
    c = c * r2 + c1;
    c = c * r2 + a;
    *cos_term = CLOPT_AS_VREAL(CLOPT_AS_VBITS(c) ^ flip);
    return CLOPT_AS_VREAL(CLOPT_AS_VBITS(s) ^ flip);
}

static inline clopt_vreal clopt_fdf_vec(clopt_vreal x, ulong first, ulong stride, clopt_vreal *g)
{
    (void)first, (void)stride;
    const real a = (real)CLOPT_PARAM_A;
    clopt_vreal cos_term;
    const clopt_vreal sin_term = clopt_rast_turns_vec(x, &cos_term);
    *g = 2 * x + sin_term;
    return a + x * x - cos_term;
}
#endif
#endif
