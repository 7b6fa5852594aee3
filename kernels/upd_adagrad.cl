/* Adagrad, as torch.optim.Adagrad (initial accumulator 0, no lr decay):
 * sum <- sum + g^2, theta <- theta - lr g / (sqrt(sum) + eps).
 * s0 = sum. h0 = lr, h1 = wd, h2 = eps. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_WD
#define CLOPT_WD 0
#endif

#define CLOPT_UPDATE_NSTATE 1

static inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1,
                                real h2, real h3, real h4, real h5, real h6, real h7)
{
    (void)s1, (void)s2, (void)h3, (void)h4, (void)h5, (void)h6, (void)h7;
#if CLOPT_WD
    g += h1 * *x;
#else
    (void)h1;
#endif
    const real sum = *s0 + g * g;
    *s0 = sum;
    *x -= h0 * g / (sqrt(sum) + h2);
}
