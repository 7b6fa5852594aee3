/* shifted_sphere: L(theta) = sum_i (theta_i - t_i)^2 with the target t read from a file
 * (--param target=FILE.npy), minimum 0 at theta = t. An objective with per-element data:
 * the driver streams t alongside theta, one more read per element and iteration. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_OBJECTIVE_DATA 1

static inline real clopt_fdf_data(real x, real t, ulong i, real *g)
{
    (void)i;
    const real d = x - t;
    *g = 2 * d;
    return d * d;
}
