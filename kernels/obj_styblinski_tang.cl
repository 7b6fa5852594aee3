/* styblinski_tang: L(theta) = sum_i (theta_i^4 - 16 theta_i^2 + 5 theta_i) / 2, minimum
 * -39.16616570377142 n at theta_i = -2.903534027771178; a second, higher minimum near 2.75. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

static inline real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    const real x2 = x * x;
    *g = (4 * x2 * x - 32 * x + 5) / 2;
    return (x2 * x2 - 16 * x2 + 5 * x) / 2;
}
