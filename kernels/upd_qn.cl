/* lbfgs and cg: the step kernel evaluates f and g at theta (the line search's trial point,
 * written by clopt_qn_trial) and this "update" keeps g in state 0 and theta as it is. The
 * direction, the line search and the history are host/qn/'s, with kernels/qn.cl. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif

#define CLOPT_UPDATE_NSTATE 1

static inline void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1,
                                real h2, real h3, real h4, real h5, real h6, real h7)
{
    (void)x, (void)s1, (void)s2, (void)h0, (void)h1, (void)h2, (void)h3, (void)h4, (void)h5;
    (void)h6, (void)h7;
    *s0 = g;
}
