/* rosenbrock (extended, chained): L(theta) = sum_{i<n-1} 100 (theta_{i+1} - theta_i^2)^2 +
 * (1 - theta_i)^2, minimum 0 at theta = 1 (n >= 2). A stencil objective of radius 1: term i
 * is charged to element i, and the gradient at i also needs term i-1. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_STENCIL_RADIUS 1

/* w[0], w[1], w[2] = theta_{i-1}, theta_i, theta_{i+1}; entries outside [0, n) are not
 * read for their value. */
static inline real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)
{
    const real x = w[1];
    real f = 0, grad = 0;
    if (i + 1 < n) {
        const real valley = w[2] - x * x, off = 1 - x;
        f = 100 * valley * valley + off * off;
        grad = -400 * x * valley - 2 * off;
    }
    if (i > 0)
        grad += 200 * (x - w[0] * w[0]);
    *g = grad;
    return f;
}
