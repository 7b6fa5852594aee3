/* SGD with momentum, as torch.optim.SGD: b <- g on the first step, else
 * b <- mu * b + (1 - dampening) * g; the step is b, or g + mu * b with CLOPT_NESTEROV.
 * s0 = b. h0 = lr, h1 = weight decay, h2 = mu, h3 = 1 - dampening, h4 = 1 on the first step. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_WD
#define CLOPT_WD 0
#endif
#ifndef CLOPT_NESTEROV
#define CLOPT_NESTEROV 0
#endif

#define CLOPT_UPDATE_NSTATE 1

static inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1,
                                real h2, real h3, real h4, real h5, real h6, real h7)
{
    (void)s1, (void)s2, (void)h5, (void)h6, (void)h7;
#if CLOPT_WD
    g += h1 * *x;
#else
    (void)h1;
#endif
    /* Both sides computed, then selected: with the load of *s0 inside a branch, the fused
     * kernel's compiler kept a branch per element and scalar code (0.6x of unfused). */
    const real continued = h2 * *s0 + h3 * g;
    const real b = h4 != 0 ? g : continued;
    *s0 = b;
#if CLOPT_NESTEROV
    *x -= h0 * (g + h2 * b);
#else
    *x -= h0 * b;
#endif
}
