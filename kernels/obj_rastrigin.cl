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
 * argument is in turns, so the reduction is exact, as with sinpi:
 *  - xr = x - round(x) in [-1/2, 1/2], rounding half to even, exact (CLOPT_TURN_ROUND);
 *  - q = round(4 xr) in -2..2 quarter turns, read from the low bits of 4 xr + 1.5 * 2^23
 *    (1.5 * 2^52), and r = xr - q/4 in [-1/8, 1/8], exact;
 *  - on |2 pi r| <= pi/4, the Taylor series of sin and cos (coefficients +-(2 pi)^j / j!)
 *    stop where the next term is below rounding: relative 2.2e-9 (sin) and 1.6e-10 (cos)
 *    after degrees 9 and 10 in float, 1e-19 and 3e-18 after 17 and 16 in double;
 *  - angle = q pi/2 + 2 pi r: an odd q swaps sin and cos; sin changes sign for q = 2, 3
 *    (mod 4) and cos for q = 1, 2, i.e. bit 1 of q, and bit 1 of q xor bit 0 of q, moved
 *    to the sign bit. The swap selects on q << 31, whose sign bit is bit 0 of q: a vector
 *    select looks at the sign bit only, so it is one blend (the masks built with and/andnot/
 *    or, and q + 1 for cos's sign, cost 5 more instructions per vector).
 * Every choice is a select or a bit mask, not a branch, so the vector form has none. */
#if CLOPT_DOUBLE
#define CLOPT_TURN_MAGIC 6755399441055744.0
#define CLOPT_TURN_SIGN_SHIFT 62
#define CLOPT_TURN_ODD_SHIFT 63
#define CLOPT_TURN_SIGN 0x8000000000000000UL
typedef ulong clopt_turn_bits;
#define CLOPT_TURN_AS_BITS as_ulong
#define CLOPT_TURN_AS_REAL as_double
#else
#define CLOPT_TURN_MAGIC 12582912.0f
#define CLOPT_TURN_SIGN_SHIFT 30
#define CLOPT_TURN_ODD_SHIFT 31
#define CLOPT_TURN_SIGN 0x80000000U
typedef uint clopt_turn_bits;
#define CLOPT_TURN_AS_BITS as_uint
#define CLOPT_TURN_AS_REAL as_float
#endif

/* x rounded to the nearest whole number, half to even, on scalars and vectors alike. PoCL's
 * rint is a sequence of compares and selects; clang's roundeven builtin is one instruction
 * (vroundps on AVX, vrndscaleps on AVX-512): callgrind, PoCL 3.1 haswell, float, 9.8
 * instructions per element with main's add-and-subtract of 2^23, 10.5 with rint, 7.2 with
 * the builtin. All three give the same whole number; the + 0 where it is used turns the
 * -0 that rounding gives for x in [-1/2, 0] into the +0 that adding and subtracting 2^23
 * gave, so that x = -0 keeps xr = -0 and the bits of main. Not on oclgrind
 * (CLOPT_NO_ROUNDEVEN, set by the host), whose interpreter lacks llvm.roundeven. */
#if defined(__has_builtin) && !defined(CLOPT_NO_ROUNDEVEN)
#if __has_builtin(__builtin_elementwise_roundeven)
#define CLOPT_TURN_ROUND(x) __builtin_elementwise_roundeven(x)
#endif
#endif
#ifndef CLOPT_TURN_ROUND
#define CLOPT_TURN_ROUND(x) rint(x)
#endif

/* sin(2 pi x), and cos(2 pi x) into *cos_out. */
static inline real clopt_sincos_turns(real x, real *cos_out)
{
    const real magic = (real)CLOPT_TURN_MAGIC;
    const real xr = x - (CLOPT_TURN_ROUND(x) + 0);
    /* 4 xr is exact, so an fma here rounds as the plain sum does. */
    const real qm = xr * 4 + magic;
    const clopt_turn_bits q = CLOPT_TURN_AS_BITS(qm);
    const real r = xr - (qm - magic) * (real)0.25;
    const real r2 = r * r;
    real s, c;
#if CLOPT_DOUBLE
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
#else
    s = (real)4.205869394489765314499e+1;
    c = (real)-2.642625678337439745290e+1;
    c = c * r2 + (real)6.024464137187666036272e+1;
#endif
    s = s * r2 - (real)7.670585975306138584163e+1;
    s = s * r2 + (real)8.160524927607505420340e+1;
    s = s * r2 - (real)4.134170224039976023397e+1;
    s = s * r2 + (real)6.283185307179586476925e+0;
    s = s * r;
    c = c * r2 - (real)8.545681720669372773602e+1;
    c = c * r2 + (real)6.493939402266829149096e+1;
    c = c * r2 - (real)1.973920880217871723767e+1;
    c = c * r2 + (real)1;
    const clopt_turn_bits sb = CLOPT_TURN_AS_BITS(s), cb = CLOPT_TURN_AS_BITS(c);
    const clopt_turn_bits odd = q << CLOPT_TURN_ODD_SHIFT;
    const clopt_turn_bits sin_sign = (q << CLOPT_TURN_SIGN_SHIFT) & CLOPT_TURN_SIGN;
    const clopt_turn_bits cos_sign = sin_sign ^ odd;
    *cos_out = CLOPT_TURN_AS_REAL((odd ? sb : cb) ^ cos_sign);
    return CLOPT_TURN_AS_REAL((odd ? cb : sb) ^ sin_sign);
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

/* The vector form (see CLOPT_OBJECTIVE_VECTOR in step.cl): clopt_sincos_turns and clopt_fdf
 * lane by lane, the same operations in the same order. A vector comparison gives -1 (all
 * bits) where true, so `? :` on vectors is a per-lane select as on scalars. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL
#define CLOPT_OBJECTIVE_VECTOR 1

static inline clopt_vreal clopt_sincos_turns_vec(clopt_vreal x, clopt_vreal *cos_out)
{
    const real magic = (real)CLOPT_TURN_MAGIC;
    const clopt_vreal xr = x - (CLOPT_TURN_ROUND(x) + 0);
    const clopt_vreal qm = xr * 4 + magic;
    const clopt_vbits q = CLOPT_AS_VBITS(qm);
    const clopt_vreal r = xr - (qm - magic) * (real)0.25;
    const clopt_vreal r2 = r * r;
    clopt_vreal s, c;
#if CLOPT_DOUBLE
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
#else
    s = (clopt_vreal)((real)4.205869394489765314499e+1);
    c = (clopt_vreal)((real)-2.642625678337439745290e+1);
    c = c * r2 + (real)6.024464137187666036272e+1;
#endif
    s = s * r2 - (real)7.670585975306138584163e+1;
    s = s * r2 + (real)8.160524927607505420340e+1;
    s = s * r2 - (real)4.134170224039976023397e+1;
    s = s * r2 + (real)6.283185307179586476925e+0;
    s = s * r;
    c = c * r2 - (real)8.545681720669372773602e+1;
    c = c * r2 + (real)6.493939402266829149096e+1;
    c = c * r2 - (real)1.973920880217871723767e+1;
    c = c * r2 + (real)1;
    const clopt_vbits sb = CLOPT_AS_VBITS(s), cb = CLOPT_AS_VBITS(c);
    const clopt_vbits odd = q << CLOPT_TURN_ODD_SHIFT;
    const clopt_vbits sin_sign = (q << CLOPT_TURN_SIGN_SHIFT) & CLOPT_TURN_SIGN;
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
#endif
