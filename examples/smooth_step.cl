/* A stencil user objective: denoising a step by smoothed total variation,
 *   L(theta) = sum_i (theta_i - y_i)^2 / 2 + lambda sum_{i<n-1} sqrt(eps^2 + (theta_{i+1} -
 * theta_i)^2) with the noisy step y_i = [i >= n/2] + 0.2 sin(0.37 i). Each term couples a
 * neighbour, so the gradient at i needs theta_{i-1} and theta_{i+1}: radius 1. clopt check
 * --objective examples/smooth_step.cl
 *   clopt run --objective examples/smooth_step.cl --param lambda=0.5 --dim 1e6 --init zeros \
 *             --optimizer adam --lr 0.01 --iters 2000 --out smooth.npy */
#ifndef CLOPT_PARAM_LAMBDA
#define CLOPT_PARAM_LAMBDA 0.5
#endif
#ifndef CLOPT_PARAM_EPS
#define CLOPT_PARAM_EPS 0.01
#endif

#define CLOPT_STENCIL_RADIUS 1

real noisy_step(ulong i, ulong n)
{
    return (i >= n / 2 ? (real)1 : (real)0) + (real)0.2 * sin((real)0.37 * (real)i);
}

/* w[0], w[1], w[2] = theta_{i-1}, theta_i, theta_{i+1}; w[0] is meaningless at i = 0 and
 * w[2] at i = n - 1. Element i is charged its data term and the link to its right. */
real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)
{
    const real lambda = (real)CLOPT_PARAM_LAMBDA, eps2 = (real)(CLOPT_PARAM_EPS * CLOPT_PARAM_EPS);
    const real x = w[1], misfit = x - noisy_step(i, n);
    real f = misfit * misfit / 2, grad = misfit;
    if (i + 1 < n) {
        const real rise = w[2] - x, link = sqrt(eps2 + rise * rise);
        f += lambda * link;
        grad -= lambda * rise / link;
    }
    if (i > 0) {
        const real rise = x - w[0];
        grad += lambda * rise / sqrt(eps2 + rise * rise);
    }
    *g = grad;
    return f;
}
