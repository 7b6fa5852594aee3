/* clopt's external-gradient API: a solver whose gradient comes from the caller's own
 * kernel, on the caller's buffers if wanted. clopt.h includes this header; it is kept apart
 * only so that each header stays readable. Conventions are clopt.h's. */
#ifndef CLOPT_EXTERNAL_H
#define CLOPT_EXTERNAL_H

#include "clopt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* External gradients: the caller's own kernel computes g, clopt applies the fused update.
 *
 * A solver made by clopt_solver_create_external() has no objective of its own: before each
 * step, clopt_solver_run() calls ext->gradient, which queues the caller's kernels that read
 * theta_t and write g into call->grad (and, when call->want_loss, L(theta_t) into call->loss)
 * on the context's in-order queue, and returns at once. The step kernel, queued behind them,
 * reads g once per element and applies the optimizer's fused update with clipping, weight
 * decay and the schedule, summing ||g||^2 in the same pass. Everything else is as for a
 * built-in objective: loss_every, gtol/ftol/target, divergence (theta goes back to the last
 * iterate seen finite, replayed through the callback), checkpoints and clopt_solver_resume,
 * clopt_solver_evaluate (one more call). The host never waits for the device per step.
 * result.bytes_per_element counts the read of g (gd in float: 12).
 *
 * The buffers may be the caller's, with no copy (on the clopt context's cl_context: the
 * caller's own with clopt_context_create_from_cl(), or clopt's from clopt_context_cl();
 * clopt keeps a reference of its own and writes theta and the state in place), or clopt's
 * (clopt_solver_buffer hands them out). Restrictions: knobs.fuse 1, and theta in one buffer
 * (one shard): dim times the element size at most the device's largest buffer
 * (clopt_device_info.max_alloc_bytes) and options.max_shard_bytes when set; for lbfgs and
 * cg, which keep all their vectors of a shard in one buffer, (2 history + 3) times that
 * (3 for cg).
 *
 * lbfgs and cg (external_options.has_loss must be non-zero: their line search compares
 * losses) call ext->gradient once per function+gradient evaluation, i.e. for the start
 * point and for every line-search trial (result.evaluations calls, plus one for the final
 * clopt_solver_evaluate). clopt writes each trial point x + alpha d into the solver's theta
 * buffer before the call, so call->theta is always that buffer (the caller's
 * external_options.theta when given), but during the run it holds the point to evaluate,
 * which the line search may refuse; the accepted iterate is there once clopt_solver_run
 * returns. call->want_loss is always 1, and call->step stays clopt_solver_steps() (lbfgs
 * and cg take no steps of the first-order kind): the callback must depend on theta only.
 * Their history vectors are clopt's own buffers; state[0] holds the last trial's g. In
 * float the loss is a float unless external_options.loss_double is set: the line search
 * then sees it rounded to float (the built-in objectives sum it in double), and may stop
 * with CLOPT_STOP_LINE_SEARCH earlier. The evaluations are queued and their results read back
 * exactly as for a built-in objective's lbfgs/cg run (the line search chooses each trial
 * from the results of the last). */

/* What one call of the gradient callback must produce. */
struct clopt_gradient_call {
    uint64_t step; /* optimizer steps applied before this one (clopt_solver_steps) */
    cl_mem theta;  /* theta_t: n elements of the solver's precision; read only */
    cl_mem grad;   /* write g = grad L(theta_t) here: n elements of the solver's precision */
    cl_mem loss;   /* when want_loss: write L(theta_t) here, one element of the solver's
                      precision, or one double with external_options.loss_double */
    int want_loss; /* the loss of this step is read (loss_every, evaluate); 0 when the
                      external options say has_loss = 0 */
};

/* Queues the kernels that write call->grad (and call->loss) on queue, the context's queue,
 * without waiting for them. *done is NULL on entry: a callback that works on another queue
 * sets it to an event of its last command (clopt's step waits for it and releases it).
 * Return 0, or non-zero to fail the run (CLOPT_ERR_OPENCL, naming the value returned). */
typedef int (*clopt_gradient_fn)(void *user, cl_command_queue queue,
                                 const struct clopt_gradient_call *call, cl_event *done);

struct clopt_external_options {
    size_t struct_size;         /* set by clopt_external_options_init(); see "Option
                                   structs" above */
    clopt_gradient_fn gradient; /* required */
    void *gradient_user;        /* handed to gradient as is */
    int has_loss;               /* non-zero: the callback writes the loss when asked;
                                   0 (default): the loss reads 0 and options.ftol,
                                   options.target, lbfgs and cg are refused */
    cl_mem theta;               /* the caller's theta: exactly dim * sizeof(real) bytes on the
                                   context's cl_context, read-write. options.init =
                                   CLOPT_INIT_NONE keeps its contents as the start point;
                                   another kind writes theta_0 into it. NULL (default): clopt
                                   allocates theta */
    cl_mem grad;                /* the caller's gradient buffer, same size and context; NULL
                                   (default): clopt allocates one (clopt_solver_buffer) */
    cl_mem state[3];            /* the caller's optimizer state vectors (clopt_solver_state_count
                                   of them, same size and context; zeroed at creation); NULL
                                   (default): clopt allocates them. Give all or none */
    /* (Version 2.) */
    int loss_double; /* non-zero: call->loss holds one double whatever the solver's
                        precision, so that a float solver's lbfgs/cg line search and stopping
                        tests see the loss as precisely as the built-in objectives' (which
                        sum it in double); needs a device with fp64 (CLOPT_ERR_UNSUPPORTED
                        otherwise). 0 (default): one element of the solver's precision */
};

/* Defaults for a struct of `size` bytes (the library's part of clopt_external_options_init). */
CLOPT_API void clopt_external_options_init_size(struct clopt_external_options *ext, size_t size);
static inline void clopt_external_options_init(struct clopt_external_options *ext)
{
    clopt_external_options_init_size(ext, sizeof *ext);
}

/* As clopt_solver_create, with the gradient from ext->gradient (opts->objective and
 * opts->params are not used). A buffer of the wrong size or of another context, a missing
 * callback, lbfgs/cg with has_loss 0, knobs.fuse > 1, or a theta that needs several shards
 * is CLOPT_ERR_INVALID_ARG with a message naming the field. */
CLOPT_API int clopt_solver_create_external(struct clopt_solver **out, struct clopt_context *ctx,
                                           const struct clopt_options *opts,
                                           const struct clopt_external_options *ext);

enum clopt_buffer {
    CLOPT_BUFFER_THETA = 0,  /* theta (the caller's when given) */
    CLOPT_BUFFER_GRAD = 1,   /* the gradient the callback writes (external solvers only) */
    CLOPT_BUFFER_LOSS = 2,   /* the one-element loss the callback writes (external solvers;
                                a double with external_options.loss_double) */
    CLOPT_BUFFER_STATE0 = 3, /* optimizer state vector 0; STATE0 + k for vector k */
};

/* The solver's buffer `which` (no new reference: valid until clopt_solver_destroy), for a
 * solver whose theta is one buffer (one shard, no stencil halo). NULL when there is no such
 * buffer; clopt_errmsg then says why. */
CLOPT_API cl_mem clopt_solver_buffer(struct clopt_solver *solver, enum clopt_buffer which);

#ifdef __cplusplus
}
#endif

#endif /* CLOPT_EXTERNAL_H */
