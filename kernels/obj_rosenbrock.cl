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
/* Both terms are computed for every element and the ends pick with selects, in the order of
 * `if (i + 1 < n) ...; if (i > 0) grad += ...`, so the bits are those of the branches. The
 * branches kept PoCL's code scalar, one compare and jump per lane (7.0 GB/s against
 * sphere's 47 at n = 1e7 on an AVX2 EPYC). */
static inline real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)
{
    const real x = w[1];
    const real valley = w[2] - x * x, off = 1 - x;
    const real term = 100 * valley * valley + off * off;
    const real term_grad = -400 * x * valley - 2 * off;
    const bool has_next = i + 1 < n;
    const real grad = has_next ? term_grad : 0;
    /* One expression, as `grad += 200 * (...)` was: the compiler may contract it into a
     * multiply-add, which a separate statement for the product would forbid (other bits). */
    *g = i > 0 ? grad + 200 * (x - w[0] * w[0]) : grad;
    return has_next ? term : 0;
}

/* The vector form for chunks inside theta (see CLOPT_STENCIL_VECTOR in sweep_stencil.cl):
 * there every lane has 0 < i < n - 1, so the selects above pick the full expressions, and
 * each lane does their operations in the same order: the bits of clopt_fdf_stencil. Left to
 * the vectoriser, the lanes' three shifted windows were rebuilt from pairs of elements with
 * permutes (PoCL 3.1 on AVX-512: 2.4e9 elements/s with theta in L3, laplacian 6e9). */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL
#define CLOPT_STENCIL_VECTOR 1
static inline clopt_vreal clopt_fdf_stencil_vec(const clopt_vreal *w, clopt_vreal *g)
{
    const clopt_vreal x = w[1];
    const clopt_vreal valley = w[2] - x * x, off = (real)1 - x;
    const clopt_vreal term = (real)100 * valley * valley + off * off;
    const clopt_vreal term_grad = (real)-400 * x * valley - (real)2 * off;
    *g = term_grad + (real)200 * (x - w[0] * w[0]);
    return term;
}
#endif
