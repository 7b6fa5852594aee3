/* sphere: L(theta) = sum_i theta_i^2, minimum 0 at theta = 0. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    *g = (real)2 * x;
    return x * x;
}
