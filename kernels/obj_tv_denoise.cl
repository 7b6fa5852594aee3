/* tv_denoise: L(u) = 1/2 sum_p (u_p - y_p)^2 + lambda sum_p sqrt(eps^2 + sum_k (u_{p+e_k} -
 * u_p)^2), forward differences along every axis k, a difference that would leave the grid
 * counting as 0 (isotropic smoothed total variation). y is the data vector (--param
 * image=FILE.npy). The gradient at p needs the terms of p - e_k, whose differences reach the
 * diagonal neighbours p - e_k + e_j: a grid objective of radius 1 on the whole box. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_GRID_AXES /* so that the file compiles on its own */
#define CLOPT_GRID_AXES 1
#define CLOPT_GRID_S0 1UL
#define CLOPT_GRID_SHAPE(k) CLOPT_GRID_S0
#define CLOPT_GRID_W 3
#define CLOPT_GRID_CENTER 1
#define CLOPT_GRID_STEP(k, d) (d)
#endif
#ifndef CLOPT_PARAM_LAMBDA
#define CLOPT_PARAM_LAMBDA 0.1
#endif
#ifndef CLOPT_PARAM_EPS
#define CLOPT_PARAM_EPS 1e-3
#endif

#define CLOPT_GRID_RADIUS 1
#define CLOPT_OBJECTIVE_DATA 1

/* sqrt(eps^2 + sum_j D_j^2) at the box position `at`, whose coordinates are c with axis
 * `moved` lowered by one (moved < 0: c itself); D_j is 0 where q + e_j leaves the grid. */
static inline real clopt_tv_link(const real *w, const ulong *c, int at, int moved, real eps2)
{
    real sum = eps2;
    for (int j = 0; j < CLOPT_GRID_AXES; ++j) {
        const ulong qj = c[j] - (j == moved ? 1 : 0);
        if (qj + 1 < CLOPT_GRID_SHAPE(j)) {
            const real diff = w[at + CLOPT_GRID_STEP(j, 1)] - w[at];
            sum += diff * diff;
        }
    }
    return sqrt(sum);
}

static inline real clopt_fdf_grid_data(const real *w, real y, const ulong *c, ulong i, real *g)
{
    (void)i;
    const real lambda = (real)CLOPT_PARAM_LAMBDA;
    const real eps2 = (real)CLOPT_PARAM_EPS * (real)CLOPT_PARAM_EPS;
    const real u = w[CLOPT_GRID_CENTER];
    const real own = clopt_tv_link(w, c, CLOPT_GRID_CENTER, -1, eps2);
    real grad = u - y;
    /* The point's own term: each forward difference falls as u_p rises. */
    for (int k = 0; k < CLOPT_GRID_AXES; ++k)
        if (c[k] + 1 < CLOPT_GRID_SHAPE(k))
            grad -= lambda * (w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, 1)] - u) / own;
    /* The term of p - e_k, whose difference along k ends at p. */
    for (int k = 0; k < CLOPT_GRID_AXES; ++k)
        if (c[k] > 0) {
            const int at = CLOPT_GRID_CENTER - CLOPT_GRID_STEP(k, 1);
            grad += lambda * (u - w[at]) / clopt_tv_link(w, c, at, k, eps2);
        }
    *g = grad;
    return (u - y) * (u - y) / 2 + lambda * own;
}

/* The vector form (see CLOPT_GRID_VECTOR in step.cl): lane l is point i + l, w[m] holds the
 * lanes' box values, lo[k] and hi[k] mark the lanes on the first and last face of axis k.
 * The same operations per lane as above, each face test a select between the value with
 * and without the term, so the bits are the scalar form's. */
#if defined(CLOPT_HAS_VREAL) && CLOPT_HAS_VREAL
#define CLOPT_GRID_VECTOR 1
/* clopt_tv_link: along the moved axis q + e_k is p, inside the grid, so that difference
 * always counts (the lanes on the first face, where q lies outside, are not used). */
static inline clopt_vreal clopt_tv_link_vec(const clopt_vreal *w, const clopt_vmask *hi, int at,
                                            int moved, real eps2)
{
    clopt_vreal sum = (clopt_vreal)eps2;
#pragma unroll
    for (int j = 0; j < CLOPT_GRID_AXES; ++j) {
        const clopt_vreal diff = w[at + CLOPT_GRID_STEP(j, 1)] - w[at];
        const clopt_vreal with = sum + diff * diff;
        sum = j == moved ? with : select(with, sum, hi[j]);
    }
    return sqrt(sum);
}

static inline clopt_vreal clopt_fdf_grid_data_vec(const clopt_vreal *w, clopt_vreal y,
                                                  const clopt_vmask *lo, const clopt_vmask *hi,
                                                  clopt_vreal *g)
{
    const real lambda = (real)CLOPT_PARAM_LAMBDA;
    const real eps2 = (real)CLOPT_PARAM_EPS * (real)CLOPT_PARAM_EPS;
    const clopt_vreal u = w[CLOPT_GRID_CENTER];
    const clopt_vreal own = clopt_tv_link_vec(w, hi, CLOPT_GRID_CENTER, -1, eps2);
    clopt_vreal grad = u - y;
#pragma unroll
    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
        const clopt_vreal with =
            grad - lambda * (w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, 1)] - u) / own;
        grad = select(with, grad, hi[k]);
    }
#pragma unroll
    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
        const int at = CLOPT_GRID_CENTER - CLOPT_GRID_STEP(k, 1);
        const clopt_vreal with =
            grad + lambda * (u - w[at]) / clopt_tv_link_vec(w, hi, at, k, eps2);
        grad = select(with, grad, lo[k]);
    }
    *g = grad;
    return (u - y) * (u - y) / (real)2 + lambda * own;
}
#endif
