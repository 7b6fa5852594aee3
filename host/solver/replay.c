/* Divergence: the start point kept on the host, put back, and the run replayed on the device
 * up to its last finite iterate. */
#include "solver.h"

#include <stdlib.h>

/* theta and the optimizer state, one after the other, in the run's precision. */
int clopt_snapshot(struct clopt_solver *s, char **out)
{
    const size_t bytes = s->n * s->elem_size;
    *out = NULL;
    if (s->n_state + 1 > SIZE_MAX / bytes)
        return CLOPT_OK;
    char *copy = malloc(bytes * (s->n_state + 1));
    if (!copy && clopt_ranks_active(s)) /* the reads below are collective: all or none */
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY,
                          "out of host memory for a copy of theta on rank %zu", s->ctx->ranks.rank);
    if (!copy)
        return CLOPT_OK; /* no copy: a divergence then keeps the last theta */
    for (size_t k = 0; k <= s->n_state; ++k) {
        int status = clopt_transfer(s, k, copy + k * bytes, s->opts.precision, 0, s->n, 0);
        if (status != CLOPT_OK) {
            free(copy);
            return status;
        }
    }
    *out = copy;
    return CLOPT_OK;
}

static int restore(struct clopt_solver *s, const char *copy)
{
    const size_t bytes = s->n * s->elem_size;
    for (size_t k = 0; k <= s->n_state; ++k) {
        int status = clopt_transfer(s, k, (void *)(uintptr_t)(copy + k * bytes), s->opts.precision,
                                    0, s->n, 1);
        if (status != CLOPT_OK)
            return status;
    }
    return CLOPT_OK;
}

/* Puts theta back to where the run started and replays `iterations` steps, so that a
 * diverged run ends on its last finite iterate without keeping a copy on the device:
 * the kernels are deterministic, so the replay reproduces it bit for bit. */
int clopt_replay(struct clopt_solver *s, const char *origin, uint64_t start_step, int start_fresh,
                 uint64_t first_t, uint64_t iterations)
{
    int status = origin ? restore(s, origin) : clopt_init_theta(s);
    s->step = start_step;
    s->fresh_state = start_fresh;
    /* The same kernels as the run used, iteration by iteration. */
    for (uint64_t t = 0; t < iterations && status == CLOPT_OK; ++t) {
        status = clopt_enqueue_step(s, (first_t + t) % s->opts.loss_every == 0, NULL);
        if (status == CLOPT_OK && t % THROTTLE_EVERY == 0) {
            status = clopt_sync_lanes(s, 1);
        }
    }
    return status;
}
