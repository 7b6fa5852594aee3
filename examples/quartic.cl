/* A user objective: L(theta) = sum_i (theta_i - a)^4, minimum 0 at theta_i = a.
 * clopt run --objective examples/quartic.cl --param a=3 --lr 0.01 */
#ifndef CLOPT_PARAM_A
#define CLOPT_PARAM_A 1.0
#endif

real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    real d = x - (real)CLOPT_PARAM_A;
    *g = 4 * d * d * d;
    return d * d * d * d;
}
