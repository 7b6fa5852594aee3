/* double_well: L(theta) = sum_i (theta_i^2 - 1)^2, smooth and non-convex: minimum 0 at every
 * theta with theta_i = +-1 (2^n minimisers), a saddle or maximum wherever some theta_i = 0. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real d = x * x - 1;
    *g = 4 * x * d;
    return d * d;
}
