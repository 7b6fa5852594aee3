/* Gradient check: for each sampled element j, the objective's own gradient at j against a
 * fourth-order central difference of the loss terms that depend on theta_j. The host sends
 * each sample's neighbourhood theta_{j-2R..j+2R} (zero outside [0, n)) followed by its data
 * value, so that the kernel needs no theta buffer and any n can be checked. */
#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#endif
#if !defined(CLOPT_OBJECTIVE_SEPARABLE) && !defined(CLOPT_OBJECTIVE_DATA) &&                       \
    !defined(CLOPT_STENCIL_RADIUS)
real clopt_fdf(real x, ulong i, real *g);
#endif
#ifdef CLOPT_STENCIL_RADIUS
#define CLOPT_CHECK_R CLOPT_STENCIL_RADIUS
#else
#define CLOPT_CHECK_R 0
#endif
#if defined(CLOPT_HOST_HALO) && CLOPT_HOST_HALO != CLOPT_CHECK_R
#error "CLOPT_STENCIL_RADIUS differs from the radius the host read from the objective file"
#endif
#define CLOPT_CHECK_WIDTH (4 * CLOPT_CHECK_R + 2)
/* Relative step: h = CLOPT_CHECK_STEP * max(1, |theta_j|), small enough that the h^4
 * truncation error stays below 1e-9 even for rastrigin (fifth derivative ~1e5) while the
 * rounding error (~eps / h) stays near 1e-12. */
#ifndef CLOPT_CHECK_STEP
#define CLOPT_CHECK_STEP 0x1p-13
#endif

/* The sum of the loss terms that depend on the centre w[2R] = theta_j, and the objective's
 * gradient at j in *g. */
static inline real clopt_check_terms(real *w, ulong j, ulong n, real *g)
{
#if CLOPT_CHECK_R > 0
    real sum = 0;
    for (int k = -CLOPT_CHECK_R; k <= CLOPT_CHECK_R; ++k) {
        if ((long)j + k < 0 || (ulong)((long)j + k) >= n)
            continue;
        real gk;
        /* The window of element j + k starts at theta_{j+k-R}, which is w[k + R]. */
        sum += clopt_fdf_stencil(w + k + CLOPT_CHECK_R, (ulong)((long)j + k), n, &gk);
        if (k == 0)
            *g = gk;
    }
    return sum;
#elif defined(CLOPT_OBJECTIVE_DATA)
    (void)n;
    return clopt_fdf_data(w[0], w[1], j, g);
#else
    (void)n;
    return clopt_fdf(w[0], j, g);
#endif
}

/* out[3s .. 3s + 2] = the objective's gradient, the finite difference, and the loss terms
 * at the sample point. */
__kernel void clopt_check(__global const real *windows, __global const ulong *index, ulong count,
                          ulong n_total, __global real *out)
{
    const ulong s = get_global_id(0);
    if (s >= count)
        return;
    real w[CLOPT_CHECK_WIDTH];
    for (int k = 0; k < CLOPT_CHECK_WIDTH; ++k)
        w[k] = windows[s * CLOPT_CHECK_WIDTH + k];
    const ulong j = index[s];
    const int centre = 2 * CLOPT_CHECK_R;
    const real x = w[centre];
    real g = 0, unused;
    const real f = clopt_check_terms(w, j, n_total, &g);
    const real h = (real)CLOPT_CHECK_STEP * fmax((real)1, fabs(x));
    real terms[4];
    for (int k = 0; k < 4; ++k) {
        w[centre] = x + (real)(k < 2 ? k - 2 : k - 1) * h;
        terms[k] = clopt_check_terms(w, j, n_total, &unused);
    }
    out[3 * s] = g;
    out[3 * s + 1] = (8 * (terms[2] - terms[1]) - (terms[3] - terms[0])) / (12 * h);
    out[3 * s + 2] = f;
}
