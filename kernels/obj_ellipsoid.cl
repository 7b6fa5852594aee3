/* ellipsoid: L(theta) = sum_i c_i theta_i^2 with c_i = cond^(i/(n-1)), minimum 0 at 0.
 * The condition number of the Hessian is cond. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_PARAM_COND
#define CLOPT_PARAM_COND 1e6
#endif
#ifndef CLOPT_N
#define CLOPT_N 2
#endif

#define CLOPT_OBJECTIVE_SEPARABLE 1

inline real clopt_fdf(real x, ulong i, real *g)
{
    /* c_i = 2^(log2(cond) * i/(n-1)): one exp2 per element, constants folded at build. */
    const real log2_cond = (real)log2((real)CLOPT_PARAM_COND);
    const real inv_nm1 = CLOPT_N > 1 ? (real)1 / (real)(CLOPT_N - 1) : (real)0;
    real c = exp2(log2_cond * ((real)i * inv_nm1));
    *g = (real)2 * c * x;
    return c * x * x;
}
