/* Adam and AdamW, as torch.optim.Adam/AdamW: m <- m + (1 - beta1) (g - m),
 * v <- beta2 v + (1 - beta2) g^2, theta <- theta - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps),
 * with bc_k = 1 - beta_k^t computed on the host. Weight decay is added to g (Adam) or, with
 * CLOPT_DECOUPLED, applied as theta <- theta (1 - lr wd) first (AdamW). CLOPT_AMSGRAD keeps
 * vmax = max(vmax, v) and uses it in place of v.
 * s0 = m, s1 = v, s2 = vmax. h0 = wd, h1 = 1 - lr wd, h2 = 1 - beta1, h3 = beta2,
 * h4 = 1 - beta2, h5 = lr / bc1, h6 = 1 / sqrt(bc2), h7 = eps (1 - x computed in double). */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_WD
#define CLOPT_WD 0
#endif
#ifndef CLOPT_DECOUPLED
#define CLOPT_DECOUPLED 0
#endif
#ifndef CLOPT_AMSGRAD
#define CLOPT_AMSGRAD 0
#endif

#if CLOPT_AMSGRAD
#define CLOPT_UPDATE_NSTATE 3
#else
#define CLOPT_UPDATE_NSTATE 2
#endif

static inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1,
                                real h2, real h3, real h4, real h5, real h6, real h7)
{
#if CLOPT_WD && CLOPT_DECOUPLED
    (void)h0;
    *x *= h1;
#elif CLOPT_WD
    (void)h1;
    g += h0 * *x;
#else
    (void)h0, (void)h1;
#endif
    const real m = *s0 + h2 * (g - *s0);
    const real v = h3 * *s1 + h4 * g * g;
    *s0 = m;
    *s1 = v;
#if CLOPT_AMSGRAD
    const real vmax = fmax(*s2, v);
    *s2 = vmax;
#else
    (void)s2;
    const real vmax = v;
#endif
    *x -= h5 * m / (sqrt(vmax) * h6 + h7);
}
