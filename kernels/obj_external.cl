/* external: the gradient comes from the caller's own kernel (clopt_solver_create_external),
 * which wrote g_i into the data vector before this step; the driver streams it alongside
 * theta as it streams shifted_sphere's target, so the update, clipping, weight decay and
 * the ||g||^2 partials are the fused ones of every other objective. The loss terms are 0:
 * the caller's loss, when it gives one, is put in the result by clopt_ext_loss. */
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#ifndef CLOPT_COMMON_CL
typedef double acc_t;
#endif

#define CLOPT_OBJECTIVE_DATA 1

static inline real clopt_fdf_data(real x, real g, ulong i, real *g_out)
{
    (void)x, (void)i;
    *g_out = g;
    return 0;
}

/* After the reduction of a step's partials: L(theta_t) as the caller wrote it replaces the
 * sum of the (zero) loss terms; ||g||^2 stays. One work-item. */
__kernel void clopt_ext_loss(__global acc_t *result, __global const real *loss)
{
    result[0] = (acc_t)loss[0];
}

/* The same with the caller's loss in double (external_options.loss_double), for float
 * solvers whose line search or stopping tests need the loss more precisely than a float. */
#if !defined(CLOPT_HAS_FP64) || CLOPT_HAS_FP64
__kernel void clopt_ext_loss_double(__global acc_t *result, __global const double *loss)
{
    result[0] = (acc_t)loss[0];
}
#endif
