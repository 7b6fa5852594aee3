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

/* The nearest whole number to t, without a library call: rint and floor are branchy
 * scalar routines in PoCL's library (haswell target). For |t| < 2^P (P = 23 in float, 52
 * in double) t + 2^P, or t - 2^P below zero, lies where the spacing of reals is 1, so the
 * sum rounds t to a whole number and the difference is exact; a larger t is whole already.
 * Ties go either way, which the reduction below allows. */
static inline real clopt_round_whole(real t)
{
#if CLOPT_DOUBLE
    const real big = 4503599627370496.0;
#else
    const real big = 8388608.0f;
#endif
    const real shift = t >= 0 ? big : -big;
    return t < big && t > -big ? (t + shift) - shift : t;
}

/* sin(pi y) and cos(pi y) without a library call, so that the step loop stays vectorised:
 * PoCL's sinpi/cospi (haswell target) are branchy and kept the step at a fifth of sphere's
 * bandwidth. The argument is in half-turns, so the reduction is exact, as with sinpi:
 * k = round(2 y) quarter-turns, r = y - k/2 in [-1/4, 1/4] (exact: y and k/2 are close, and
 * a y too large for a fraction is itself a multiple of 1/2), quadrant k mod 4. On |r| <= 1/4
 * the Taylor series of sin(pi r) and cos(pi r) with coefficients (+-) pi^j / j! stop where
 * the next term is below rounding (< 2e-9 in float after degree 11, < 2e-22 in double after
 * degree 19). */
static inline real clopt_sincospi(real y, real *cos_out)
{
    const real k = clopt_round_whole(2 * y);
    const real r = y - k * (real)0.5;
    const real r2 = r * r;
    real s, c;
#if CLOPT_DOUBLE
    s = -2.294842899726987311e-8;
    s = s * r2 + 7.9520540014755127848e-7;
    s = s * r2 - 0.000021915353447830215827;
    s = s * r2 + 0.00046630280576761256442;
    c = -1.3878952462213772114e-7;
    c = c * r2 + 4.3030695870329470073e-6;
    c = c * r2 - 0.00010463810492484570712;
    c = c * r2 + 0.0019295743094039230479;
    c = c * r2 - 0.025806891390014060013;
#else
    s = (real)-0.0073704309457143507773;
    c = (real)-0.025806891390014060013;
#endif
#if CLOPT_DOUBLE
    s = s * r2 - 0.0073704309457143507773;
#endif
    s = s * r2 + (real)0.082145886611128228799;
    s = s * r2 - (real)0.59926452932079207689;
    s = s * r2 + (real)2.5501640398773454439;
    s = s * r2 - (real)5.1677127800499700292;
    s = s * r2 + (real)3.1415926535897932385;
    s = s * r;
    c = c * r2 + (real)0.23533063035889320454;
    c = c * r2 - (real)1.3352627688545894959;
    c = c * r2 + (real)4.0587121264167682182;
    c = c * r2 - (real)4.9348022005446793094;
    c = c * r2 + (real)1;
    /* k mod 4 in real arithmetic (exact for any whole k: k/4 is exact, so is k - 4 m for
     * the whole m nearest to it): no conversion of a huge k. */
    const real q_signed = k - 4 * clopt_round_whole(k * (real)0.25);
    const real q = q_signed < 0 ? q_signed + 4 : q_signed;
    const bool swap = q == 1 || q == 3;
    const real sin_r = swap ? c : s, cos_r = swap ? s : c;
    *cos_out = q == 1 || q == 2 ? -cos_r : cos_r;
    return q >= 2 ? -sin_r : sin_r;
}

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real a = (real)CLOPT_PARAM_A;
    real cos_2x;
    const real sin_2x = clopt_sincospi(2 * x, &cos_2x);
    *g = 2 * x + (real)6.283185307179586 * a * sin_2x;
    return a + x * x - a * cos_2x;
}
