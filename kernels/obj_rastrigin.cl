/* rastrigin: L(theta) = sum_i a + theta_i^2 - a cos(2 pi theta_i), minimum 0 at theta = 0,
 * with a local minimum near every integer point. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_PARAM_A
#define CLOPT_PARAM_A 10.0
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real a = (real)CLOPT_PARAM_A;
    /* cospi/sinpi take the argument in half-turns: exact reduction, no 2 pi rounding. */
    *g = 2 * x + (real)6.283185307179586 * a * sinpi(2 * x);
    return a + x * x - a * cospi(2 * x);
}
