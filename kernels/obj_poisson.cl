/* poisson: L(u) = 1/2 sum over grid edges (u_p - u_q)^2 - sum_p b_p u_p. The edges join each
 * point to its +1 neighbour along every axis, and every point on a face of the grid has an
 * edge to a fixed zero outside it (Dirichlet), so the gradient is A u - b with A the
 * (2d+1)-point Laplacian, 2d on the diagonal and -1 for each neighbour: the minimiser solves
 * A u = b. b is the data vector (--param source=FILE.npy). A grid objective of radius 1. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_GRID_AXES /* so that the file compiles on its own */
#define CLOPT_GRID_AXES 1
#define CLOPT_GRID_S0 1UL
#define CLOPT_GRID_W 3
#define CLOPT_GRID_CENTER 1
#define CLOPT_GRID_STEP(k, d) (d)
#endif

#define CLOPT_GRID_RADIUS 1
#define CLOPT_OBJECTIVE_DATA 1

/* The sum of squares in s, halved once at the end, and u - above taken as -(above - u):
 * the same terms as one halving and one difference per edge, in fewer operations (the sweep
 * of a 2-D grid is bound by them as much as by memory: tests/test_grids.c checks the values
 * against a double reference). */
static inline real clopt_fdf_grid_data(const real *w, real b, const ulong *c, ulong i, real *g)
{
    (void)i;
    const real u = w[CLOPT_GRID_CENTER];
    real s = 0, grad = -b;
    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
        const real below = w[CLOPT_GRID_CENTER - CLOPT_GRID_STEP(k, 1)];
        const real above = w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, 1)];
        /* The point is charged its edge to the +1 neighbour (the zero outside on the last
         * face), and on the first face also the edge to the zero before it. */
        const real d = above - u;
        s = k == 0 ? d * d : fma(d, d, s);
        if (c[k] == 0)
            s = fma(u, u, s);
        grad += (u - below) - d;
    }
    *g = grad;
    return fma(s, (real)0.5, -(b * u));
}

/* The vector form (see CLOPT_GRID_VECTOR in step.cl): lane l is point i + l, w[m] holds the
 * lanes' box values, lo[k] marks the lanes on the first face of axis k. The same operations
 * per lane as above, the face term taken by a select, so the bits are the scalar form's. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL
#define CLOPT_GRID_VECTOR 1
static inline clopt_vreal clopt_fdf_grid_data_vec(const clopt_vreal *w, clopt_vreal b,
                                                  const clopt_vmask *lo, const clopt_vmask *hi,
                                                  clopt_vreal *g)
{
    (void)hi;
    const clopt_vreal u = w[CLOPT_GRID_CENTER];
    clopt_vreal s = (clopt_vreal)0, grad = -b;
#pragma unroll
    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
        const clopt_vreal below = w[CLOPT_GRID_CENTER - CLOPT_GRID_STEP(k, 1)];
        const clopt_vreal above = w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, 1)];
        const clopt_vreal d = above - u;
        s = k == 0 ? d * d : fma(d, d, s);
        s = select(s, fma(u, u, s), lo[k]);
        grad += (u - below) - d;
    }
    *g = grad;
    return fma(s, (clopt_vreal)(real)0.5, -(b * u));
}
#endif
