/* RMSprop, as torch.optim.RMSprop (not centered): v <- alpha v + (1 - alpha) g^2,
 * theta <- theta - lr g / (sqrt(v) + eps); with CLOPT_RMS_MOMENTUM,
 * b <- mu b + g / (sqrt(v) + eps) and theta <- theta - lr b.
 * s0 = v, s1 = b. h0 = lr, h1 = wd, h2 = alpha, h3 = eps, h4 = mu, h5 = 1 - alpha. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_WD
#define CLOPT_WD 0
#endif
#ifndef CLOPT_RMS_MOMENTUM
#define CLOPT_RMS_MOMENTUM 0
#endif

#if CLOPT_RMS_MOMENTUM
#define CLOPT_UPDATE_NSTATE 2
#else
#define CLOPT_UPDATE_NSTATE 1
#endif

static inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1,
                                real h2, real h3, real h4, real h5, real h6, real h7)
{
    (void)s2, (void)h6, (void)h7;
#if CLOPT_WD
    g += h1 * *x;
#else
    (void)h1;
#endif
    const real v = h2 * *s0 + h5 * g * g;
    *s0 = v;
    const real avg = sqrt(v) + h3;
#if CLOPT_RMS_MOMENTUM
    const real b = h4 * *s1 + g / avg;
    *s1 = b;
    *x -= h0 * b;
#else
    (void)s1, (void)h4;
    *x -= h0 * g / avg;
#endif
}
