/* The kernels' argument positions: the host's copy of the parameter lists in
 * kernels/step_kernels.cl (CLOPT_STEP_PARAMS and clopt_step_fused), reduce.cl and init.cl
 * (clopt_init, clopt_zero, clopt_put_hyper). Each enum ends with the count, which
 * tests/test_solver.c compares with CL_KERNEL_NUM_ARGS of the built kernels, so a parameter added
 * on one side only fails a test. */
#ifndef CLOPT_KERNEL_ARGS_H
#define CLOPT_KERNEL_ARGS_H

#include "internal.h"

/* The state vectors every step kernel takes (s0, s1, s2), used or not. */
#define STEP_STATE_ARGS 3

/* clopt_step, clopt_step_loss and clopt_eval; clopt_step_fused takes these, then its own. */
enum step_arg {
    STEP_ARG_THETA = 0, /* the iterate written (a stencil's ping-pong partner) */
    STEP_ARG_STATE0,    /* STEP_STATE_ARGS state vectors */
    STEP_ARG_N_SHARD = STEP_ARG_STATE0 + STEP_STATE_ARGS,
    STEP_ARG_OFFSET,
    STEP_ARG_PARTIALS,
    STEP_ARG_PARTIAL_BASE,
    STEP_ARG_H0, /* CLOPT_HYPER_SLOTS hyper-parameters h0..h7 */
    STEP_ARG_GRAD_SQ = STEP_ARG_H0 + CLOPT_HYPER_SLOTS,
    STEP_ARG_SRC,
    STEP_ARG_DATA,
    STEP_ARG_N_TOTAL,
    STEP_ARGS
};

enum fused_arg {
    FUSED_ARG_HYPER = STEP_ARGS,
    FUSED_ARG_PARTIAL_STRIDE,
    FUSED_ARG_LOSS_MASK,
    FUSED_ARGS
};

enum reduce_arg {
    REDUCE_ARG_PARTIALS,
    REDUCE_ARG_COUNT,
    REDUCE_ARG_OUT,
    REDUCE_ARG_FIRST,
    REDUCE_ARG_SPAN,
    REDUCE_ARG_GROUP0,
    REDUCE_ARGS
};

enum init_arg {
    INIT_ARG_THETA,
    INIT_ARG_N_SHARD,
    INIT_ARG_OFFSET,
    INIT_ARG_KIND,
    INIT_ARG_VALUE,
    INIT_ARG_SEED_LO,
    INIT_ARG_SEED_HI,
    INIT_ARG_SKIP, /* buffer position of element 0 of the chunk: s->lead + the chunk's start */
    INIT_ARGS
};

enum zero_arg { ZERO_ARG_BUFFER, ZERO_ARG_WORDS, ZERO_ARGS };

enum put_hyper_arg {
    PUT_HYPER_ARG_HYPER,
    PUT_HYPER_ARG_SLOT,
    PUT_HYPER_ARG_H0, /* CLOPT_HYPER_SLOTS values h0..h7 */
    PUT_HYPER_ARGS = PUT_HYPER_ARG_H0 + CLOPT_HYPER_SLOTS
};

#endif /* CLOPT_KERNEL_ARGS_H */
