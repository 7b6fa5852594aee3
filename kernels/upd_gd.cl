/* Plain gradient descent: theta <- theta - lr * g. h0 is the learning rate. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_UPDATE_NSTATE 0

inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1, real h2,
                         real h3)
{
    (void)s0;
    (void)s1;
    (void)s2;
    (void)h1;
    (void)h2;
    (void)h3;
    *x -= h0 * g;
}
