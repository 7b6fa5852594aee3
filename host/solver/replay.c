/* Divergence: the start point kept on the host, put back, and the run replayed on the device
 * up to its last finite iterate. */
#include "solver.h"

#include <stdlib.h>

void clopt_snapshot_free(struct snapshot *snap)
{
    if (!snap)
        return;
    for (size_t k = 0; k <= MAX_STATE; ++k)
        free(snap->vec[k]);
    free(snap);
}

/* theta and the optimizer state, this process's range [s->lo, s->hi) of each, in the run's
 * precision, without communication: a rank keeps its own range only (the whole image on
 * every rank was n times the state's size per rank), and puts back its own range. One
 * block per vector, so no single allocation is the size of the whole range's image. */
int clopt_snapshot(struct clopt_solver *s, struct snapshot **out)
{
    const size_t count = s->hi - s->lo, bytes = count * s->elem_size;
    *out = NULL;
    struct snapshot *snap = calloc(1, sizeof *snap);
    int short_of_memory = !snap;
    for (size_t k = 0; k <= s->n_state && !short_of_memory; ++k) {
        snap->vec[k] = malloc(bytes ? bytes : 1);
        short_of_memory = !snap->vec[k];
    }
    if (short_of_memory) {
        clopt_snapshot_free(snap);
        /* Under ranks a replay is collective: every rank needs its copy, so the run stops
         * (the ranks agree on it at their next collective). One process goes on without:
         * a divergence then keeps the last theta. */
        if (clopt_ranks_active(s))
            return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY,
                              "out of host memory for a copy of theta on rank %zu",
                              s->ctx->ranks.rank);
        return CLOPT_OK;
    }
    for (size_t k = 0; k <= s->n_state && count; ++k) {
        int status = clopt_transfer_local(s, k, snap->vec[k], s->opts.precision, s->lo, count, 0);
        if (status != CLOPT_OK) {
            clopt_snapshot_free(snap);
            return status;
        }
    }
    *out = snap;
    return CLOPT_OK;
}

static int restore(struct clopt_solver *s, const struct snapshot *snap)
{
    const size_t count = s->hi - s->lo;
    for (size_t k = 0; k <= s->n_state && count; ++k) {
        int status = clopt_transfer_local(s, k, snap->vec[k], s->opts.precision, s->lo, count, 1);
        if (status != CLOPT_OK)
            return status;
    }
    return CLOPT_OK;
}

/* Puts theta back to where the run started and replays `iterations` steps, so that a
 * diverged run ends on its last finite iterate without keeping a copy on the device:
 * the kernels are deterministic, so the replay reproduces it bit for bit. */
int clopt_replay(struct clopt_solver *s, const struct snapshot *origin, uint64_t start_step,
                 int start_fresh, uint64_t first_t, uint64_t iterations)
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
