/* laplacian: L(theta) = 1/2 sum_{i=0}^{n} (theta_i - theta_{i-1})^2 with the ends held at
 * theta_{-1} = left and theta_n = right: the Dirichlet energy of a 1-D string, whose
 * gradient is the discrete Laplacian -(theta_{i-1} - 2 theta_i + theta_{i+1}). Minimum
 * (right - left)^2 / (2 (n + 1)) on the straight line theta_i = left + (right - left)
 * (i + 1) / (n + 1). Its Hessian's condition number grows like n^2, so it is slow for
 * first-order methods at large n: a test of momentum. Stencil radius 1. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_PARAM_LEFT
#define CLOPT_PARAM_LEFT 0.0
#endif
#ifndef CLOPT_PARAM_RIGHT
#define CLOPT_PARAM_RIGHT 1.0
#endif

#define CLOPT_STENCIL_RADIUS 1

static inline real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)
{
    const real x = w[1];
    const real before = i > 0 ? w[0] : (real)CLOPT_PARAM_LEFT;
    const real after = i + 1 < n ? w[2] : (real)CLOPT_PARAM_RIGHT;
    /* Element i is charged the spring to its left, and the last one the spring to the
     * right end as well. */
    const real f = (x - before) * (x - before) / 2;
    const real right_end = (after - x) * (after - x) / 2;
    *g = (x - before) - (after - x);
    /* A select rather than `if (i + 1 == n) f += ...`: the branch kept PoCL's code scalar
     * (11.5 GB/s against sphere's 47 at n = 1e7 on an AVX2 EPYC). Same bits. */
    return i + 1 == n ? f + right_end : f;
}
