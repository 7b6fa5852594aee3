/* Several processes on one problem (DESIGN.md §4b "Scale"): each rank owns a contiguous
 * range of whole tiles and computes the loss partials of its tiles; the fold of the partials
 * is exactly one process's, so results are bit-identical for any rank count. How much
 * crosses ranks depends on the fold (knobs.reduce_group):
 * - a two-stage fold (reduce_group > 1, the GPU default) folds fixed runs of partials, its
 *   groups, and then the groups' pairs. The runs depend only on the partial count and the
 *   knob, never on the rank count, so ranks own whole runs: each rank runs the first stage
 *   on its own runs and only the groups' pairs (at most REDUCE_GROUPS_MAX in all) are
 *   gathered before the second stage, which every rank runs on the same pairs.
 * - a one-group fold (reduce_group = 1, the CPU default) is one chain over all partials in
 *   slot order, which no rank can start before the rank before it ends: every rank's
 *   partials are gathered into every rank's buffer and folded there (traffic grows with the
 *   tile count; README "Planning for real hardware"). So is a two-stage fold whose runs do
 *   not fall on tile boundaries (per-item partials) or are fewer than the ranks.
 * The ranks talk only through the caller's callbacks (struct clopt_ranks), so the library
 * has no MPI dependency. Which tiles are local is decided here; which shards (buffers) hold
 * the local range is the shard plan's business (shards.c). */
#include "solver.h"

#include <stdlib.h>
#include <string.h>

#define RANK_CHUNK CLOPT_RANK_READ_CHUNK

int clopt_ranks_active(const struct clopt_solver *s)
{
    return s->ctx->ranks.size > 1;
}

int clopt_ranks_is_root(const struct clopt_solver *s)
{
    return !clopt_ranks_active(s) || s->ctx->ranks.rank == 0;
}

static size_t tile_of(const struct clopt_solver *s)
{
    return s->knobs.work_group * s->knobs.elems_per_item;
}

/* The first fold stage's groups [*g_lo, *g_hi) that rank r folds (s->rank_blocks > 0). */
static void blocks_of(const struct clopt_solver *s, size_t r, size_t *g_lo, size_t *g_hi)
{
    const size_t groups = s->rank_blocks, p = s->ctx->ranks.size;
    *g_lo = groups * r / p;
    *g_hi = groups * (r + 1) / p;
}

/* Rank r's elements [*lo, *hi), whole tiles (the last one may end short with theta): the
 * tiles of its fold groups (s->rank_blocks > 0), else tiles r*T/P .. (r+1)*T/P, so ranks
 * differ by one tile at most. */
static void range_of(const struct clopt_solver *s, size_t r, size_t *lo, size_t *hi)
{
    const size_t tile = tile_of(s), tiles = (s->n + tile - 1) / tile, p = s->ctx->ranks.size;
    size_t t_lo, t_hi;
    if (s->rank_blocks) {
        blocks_of(s, r, &t_lo, &t_hi);
        t_lo *= s->rank_block_tiles;
        t_hi *= s->rank_block_tiles;
    } else {
        t_lo = (size_t)((unsigned __int128)tiles * r / p);
        t_hi = (size_t)((unsigned __int128)tiles * (r + 1) / p);
    }
    *lo = t_lo * tile < s->n ? t_lo * tile : s->n;
    *hi = t_hi * tile < s->n ? t_hi * tile : s->n;
}

/* Whether ranks can own whole groups of the fold's first stage: the groups' runs of partials
 * must be whole tiles, and every rank must get tiles. Sets s->rank_blocks and
 * s->rank_block_tiles when they can (left 0 otherwise: an even split of the tiles). */
static void plan_blocks(struct clopt_solver *s, size_t tiles, size_t slots_per_tile)
{
    const size_t p = s->ctx->ranks.size;
    const size_t groups = clopt_reduce_groups(s->n_partials, s->knobs.reduce_group);
    s->rank_blocks = 0;
    s->rank_block_tiles = 0;
    if (s->knobs.reduce_group <= 1 || groups < p)
        return;
    const size_t span = (s->n_partials + groups - 1) / groups; /* as clopt_enqueue_reduce */
    if (span % slots_per_tile)
        return;
    /* The last rank starts latest: its first group must hold tiles. */
    if (groups * (p - 1) / p * (span / slots_per_tile) >= tiles)
        return;
    s->rank_blocks = groups;
    s->rank_block_tiles = span / slots_per_tile;
}

/* The first rank (if any) holding fewer elements than a stencil halo needs: *r = its index. */
static int short_rank(const struct clopt_solver *s, size_t *r, size_t *count)
{
    /* A halo comes from the neighbouring rank only: every rank but the last holds one. */
    for (*r = 0; *r + 1 < s->ctx->ranks.size; ++*r) {
        size_t lo, hi;
        range_of(s, *r, &lo, &hi);
        *count = hi - lo;
        if (*count < s->halo)
            return 1;
    }
    return 0;
}

void clopt_ranks_range(const struct clopt_solver *s, size_t r, size_t *lo, size_t *hi)
{
    if (!clopt_ranks_active(s)) {
        *lo = 0;
        *hi = s->n;
        return;
    }
    range_of(s, r, lo, hi);
}

int clopt_ranks_split(struct clopt_solver *s, size_t tile, size_t slots_per_tile)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    const size_t tiles = (s->n + tile - 1) / tile;
    if (!clopt_ranks_active(s)) {
        s->lo = 0;
        s->hi = s->n;
        s->slot_lo = 0;
        s->slot_hi = tiles * slots_per_tile;
        return CLOPT_OK;
    }
    if (s->ctx->n_devices > 1)
        return clopt_fail(s->ctx, CLOPT_ERR_UNSUPPORTED,
                          "a rank runs on one device: under mpirun, drop --devices "
                          "(context_options.devices) and give each rank its own device");
    if (s->external)
        return clopt_fail(s->ctx, CLOPT_ERR_UNSUPPORTED,
                          "external gradients run in one process only (the caller's buffers "
                          "hold all of theta): do not set ranks on this context");
    if (tiles < rk->size)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "theta has %zu tile%s of %zu elements, fewer than the %zu ranks: raise "
                          "options.dim, lower knobs.work_group/knobs.elems_per_item, or use "
                          "fewer ranks",
                          tiles, tiles == 1 ? "" : "s", tile, rk->size);
    plan_blocks(s, tiles, slots_per_tile);
    size_t r, count;
    /* Whole fold groups may leave a rank too short for a halo where an even split does not. */
    if (s->rank_blocks && short_rank(s, &r, &count))
        s->rank_blocks = s->rank_block_tiles = 0;
    if (short_rank(s, &r, &count))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "rank %zu holds %zu elements, fewer than the %zu-element halo the "
                          "objective needs: use fewer ranks or a larger options.dim",
                          r, count, s->halo);
    /* The agreement before each collective must work when a rank is out of host memory:
     * its arrays are made here, once. */
    free(s->rank_meet);
    s->rank_meet = calloc(rk->size, sizeof(size_t) + sizeof(int));
    if (!s->rank_meet)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    range_of(s, rk->rank, &s->lo, &s->hi);
    s->slot_lo = s->lo / tile * slots_per_tile;
    s->slot_hi = (s->hi + tile - 1) / tile * slots_per_tile;
    return CLOPT_OK;
}

static int comm_failed(struct clopt_solver *s, const char *what)
{
    /* The messages between ranks are broken: no later agreement can be trusted. */
    s->rank_failed = 1;
    return clopt_fail(s->ctx, CLOPT_ERR_IO,
                      "rank %zu of %zu: %s between ranks failed (see the message above)",
                      s->ctx->ranks.rank, s->ctx->ranks.size, what);
}

/* Bytes of the failing rank's message that the other ranks repeat. */
#define RANK_MESSAGE 480

/* After some rank failed: every rank's status (gathered; `mine` is this rank's), the
 * first failing rank's message to every rank, and that rank's status returned on all. */
static int share_failure(struct clopt_solver *s, int mine, const char *what)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    size_t *bytes = s->rank_meet;
    int *all = (int *)(void *)(bytes + rk->size);
    for (size_t r = 0; r < rk->size; ++r)
        bytes[r] = sizeof(int);
    if (rk->allgatherv(rk->user, &mine, all, bytes) != 0)
        return mine < 0 ? mine : comm_failed(s, what);
    size_t first = 0;
    while (first < rk->size && all[first] >= 0)
        ++first;
    if (first == rk->size)
        return CLOPT_OK; /* nobody failed: a stop was wanted */
    char text[RANK_MESSAGE] = "", own[RANK_MESSAGE] = "";
    if (rk->rank == first)
        snprintf(own, sizeof own, "%s", clopt_errmsg(s->ctx));
    for (size_t r = 0; r < rk->size; ++r)
        bytes[r] = r == first ? RANK_MESSAGE : 0;
    if (rk->allgatherv(rk->user, own, text, bytes) != 0)
        return mine < 0 ? mine : comm_failed(s, what);
    s->rank_failed = 1;
    if (rk->rank == first)
        return mine; /* its own message stays */
    text[RANK_MESSAGE - 1] = '\0';
    return clopt_fail(s->ctx, all[first], "rank %zu of %zu failed %s: %s", first, rk->size, what,
                      text);
}

/* The ranks' agreement before each collective (and at the end of a run): whether every rank
 * is ready for it. A rank that failed on its own (out of host memory for scratch, a failed
 * device read or kernel) would otherwise return and leave the others in the collective for
 * ever. Cheap where all goes well: one OR of a flag. Where `flag` is set or some rank
 * failed, every rank then learns every rank's status, and all return the first failing
 * rank's status, the others with its message; *any = whether a flag was set. Every
 * collective begins with this same step, so a rank that failed anywhere in a run meets the
 * others at their next collective through its end-of-run agreement (clopt_ranks_settle). */
static int agree(struct clopt_solver *s, int status, int flag, int *any, const char *what)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    const int failed = status < 0;
    int some = failed || flag;
    if (any)
        *any = 0;
    if (rk->any(rk->user, some, &some) != 0)
        return failed ? status : comm_failed(s, what);
    if (!some)
        return status;
    /* A stop wanted is 1, a failure its status, else 0. */
    const int mine = failed ? status : flag ? 1 : 0;
    const int agreed = share_failure(s, mine, what);
    if (agreed != CLOPT_OK)
        return agreed;
    if (any)
        *any = 1;
    return status;
}

int clopt_ranks_read(struct clopt_solver *s, size_t which, void *host,
                     enum clopt_precision host_prec, size_t offset, size_t count)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    const size_t item = host_prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    size_t *bytes = calloc(rk->size, sizeof *bytes);
    char *mine = malloc((count < RANK_CHUNK ? count : RANK_CHUNK) * item + 1);
    int status = bytes && mine ? CLOPT_OK
                               : clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    /* Without memory for the chunks, the first chunk's agreement tells the others. */
    if (status != CLOPT_OK && count)
        status = agree(s, status, 0, NULL, "before gathering a vector");
    for (size_t at = offset; status == CLOPT_OK && at < offset + count; at += RANK_CHUNK) {
        const size_t end = offset + count - at < RANK_CHUNK ? offset + count : at + RANK_CHUNK;
        /* Ranks hold consecutive ranges: their parts of [at, end) follow each other. */
        for (size_t r = 0; r < rk->size; ++r) {
            size_t lo, hi;
            range_of(s, r, &lo, &hi);
            lo = lo > at ? lo : at;
            hi = hi < end ? hi : end;
            bytes[r] = hi > lo ? (hi - lo) * item : 0;
        }
        const size_t my_lo = s->lo > at ? s->lo : at;
        if (bytes[rk->rank])
            status =
                clopt_transfer_local(s, which, mine, host_prec, my_lo, bytes[rk->rank] / item, 0);
        if (status == CLOPT_OK)
            status = CLOPT_INJECTED(s, "ranks read");
        status = agree(s, status, 0, NULL, "before gathering a vector");
        if (status == CLOPT_OK &&
            rk->allgatherv(rk->user, mine, (char *)host + (at - offset) * item, bytes) != 0)
            status = comm_failed(s, "gathering theta");
    }
    free(bytes);
    free(mine);
    return status;
}

/* At least `bytes` of the solver's scratch for what crosses ranks (grown, never shrunk). */
static char *rank_scratch(struct clopt_solver *s, size_t bytes)
{
    if (bytes > s->rank_scratch_bytes) {
        char *grown = realloc(s->rank_scratch, bytes);
        if (!grown)
            return NULL;
        s->rank_scratch = grown;
        s->rank_scratch_bytes = bytes;
    }
    return s->rank_scratch;
}

/* The clock of the per-iteration communication (clopt_ranks_clock): time in the callbacks of
 * the loss, halo and dot-product collectives and the agreements before them. */
static double clock_start(const struct clopt_solver *s)
{
    return s->rank_clock ? clopt_now_seconds() : 0;
}

static void clock_stop(struct clopt_solver *s, double start)
{
    if (s->rank_clock)
        s->rank_comm_seconds += clopt_now_seconds() - start;
}

/* Gathers every rank's per-tile records of `buf` (from byte `first`: `unit` bytes per tile of
 * `tile` elements, tile-major) into every rank's copy of it, in tile order. Rank ranges are
 * whole step tiles, so any tile that divides the step tile (lbfgs/cg's) splits them too. */
static int gather_tiles(struct clopt_solver *s, cl_mem buf, size_t first, size_t tile, size_t unit,
                        const char *what, const char *fault)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    struct clopt_context *ctx = s->ctx;
    const size_t total = (s->n + tile - 1) / tile * unit;
    size_t my_lo, my_hi;
    range_of(s, rk->rank, &my_lo, &my_hi);
    const size_t my_bytes = ((my_hi + tile - 1) / tile - my_lo / tile) * unit;
    /* The byte counts, every rank's records, and this rank's part in a copy of its own (MPI
     * forbids overlapping send and receive buffers). */
    const size_t counts = rk->size * sizeof(size_t);
    const size_t aligned = (total + sizeof(size_t) - 1) / sizeof(size_t) * sizeof(size_t);
    char *block = rank_scratch(s, counts + aligned + my_bytes);
    int status = block ? CLOPT_INJECTED(s, fault)
                       : clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t *bytes = (size_t *)block;
    char *all = block ? block + counts : NULL, *mine = block ? all + aligned : NULL;
    for (size_t r = 0; status == CLOPT_OK && r < rk->size; ++r) {
        size_t lo, hi;
        range_of(s, r, &lo, &hi);
        bytes[r] = ((hi + tile - 1) / tile - lo / tile) * unit;
    }
    const size_t my_at = s->lo / tile * unit;
    if (status == CLOPT_OK && my_bytes) {
        cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, first + my_at, my_bytes, mine, 0,
                                         NULL, NULL);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(ctx, err, "clEnqueueReadBuffer(partials to gather)");
    }
    const double start = clock_start(s);
    status = agree(s, status, 0, NULL, what);
    if (status == CLOPT_OK && rk->allgatherv(rk->user, mine, all, bytes) != 0)
        status = comm_failed(s, what);
    clock_stop(s, start);
    if (status == CLOPT_OK) {
        cl_int err =
            clEnqueueWriteBuffer(ctx->queue, buf, CL_TRUE, first, total, all, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(ctx, err, "clEnqueueWriteBuffer(gathered partials)");
    }
    return status;
}

int clopt_ranks_gather_partials(struct clopt_solver *s, size_t slot)
{
    const size_t pair = 2 * s->acc_size, tile = tile_of(s);
    const size_t spt = s->n_partials / ((s->n + tile - 1) / tile);
    return gather_tiles(s, s->partials, slot * s->n_partials * pair, tile, spt * pair,
                        "gathering the loss partials", "ranks partials");
}

int clopt_ranks_fold_groups(struct clopt_solver *s, size_t first)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    struct clopt_context *ctx = s->ctx;
    const size_t groups = s->rank_blocks, pair = 2 * s->acc_size;
    const size_t span = (s->n_partials + groups - 1) / groups;
    const char *what = "gathering the loss fold's groups";
    size_t g_lo, g_hi;
    blocks_of(s, rk->rank, &g_lo, &g_hi);
    /* The counts, then this rank's pairs (a copy of its own: MPI forbids overlapping send and
     * receive buffers), then every rank's. */
    const size_t counts = rk->size * sizeof(size_t);
    char *block = rank_scratch(s, counts + (g_hi - g_lo) * pair + groups * pair);
    int status = block ? CLOPT_INJECTED(s, "ranks groups")
                       : clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t *bytes = (size_t *)block;
    char *mine = block ? block + counts : NULL, *all = block ? mine + (g_hi - g_lo) * pair : NULL;
    for (size_t r = 0; status == CLOPT_OK && r < rk->size; ++r) {
        size_t lo, hi;
        blocks_of(s, r, &lo, &hi);
        bytes[r] = (hi - lo) * pair;
    }
    if (status == CLOPT_OK)
        status = clopt_reduce_launch(s, s->partials, s->n_partials, s->reduce_stage, first, span,
                                     g_lo, g_hi - g_lo);
    if (status == CLOPT_OK) {
        cl_int err = clEnqueueReadBuffer(ctx->queue, s->reduce_stage, CL_TRUE, g_lo * pair,
                                         (g_hi - g_lo) * pair, mine, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(ctx, err, "clEnqueueReadBuffer(the fold's groups to gather)");
    }
    const double start = clock_start(s);
    status = agree(s, status, 0, NULL, what);
    if (status == CLOPT_OK && rk->allgatherv(rk->user, mine, all, bytes) != 0)
        status = comm_failed(s, what);
    clock_stop(s, start);
    if (status != CLOPT_OK)
        return status;
    cl_int err = clEnqueueWriteBuffer(ctx->queue, s->reduce_stage, CL_TRUE, 0, groups * pair, all,
                                      0, NULL, NULL);
    return err == CL_SUCCESS ? CLOPT_OK
                             : clopt_fail_cl(ctx, err, "clEnqueueWriteBuffer(gathered groups)");
}

int clopt_ranks_gather_tiles(struct clopt_solver *s, cl_mem buf, size_t tile, size_t unit)
{
    return gather_tiles(s, buf, 0, tile, unit, "gathering the dot-product partials", "ranks dots");
}

int clopt_ranks_halos(struct clopt_solver *s)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    struct clopt_context *ctx = s->ctx;
    const size_t width = s->halo * s->elem_size;
    const struct shard *first = &s->shards[0], *last = &s->shards[s->n_shards - 1];
    const char *what = "the stencil halo exchange";
    char *buf = rank_scratch(s, 4 * width);
    int status = buf ? CLOPT_INJECTED(s, "ranks halo")
                     : clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    char *to_prev = buf, *to_next = buf ? buf + width : NULL,
         *from_prev = buf ? buf + 2 * width : NULL, *from_next = buf ? buf + 3 * width : NULL;
    const int has_prev = rk->rank > 0, has_next = rk->rank + 1 < rk->size;
    /* The first `halo` elements of this range go to the rank before, the last ones to the
     * rank after; the halos beyond both ends of theta are zeros from the neighbour that is
     * not there. */
    cl_int err = CL_SUCCESS;
    if (status == CLOPT_OK) {
        memset(buf, 0, 4 * width);
        if (has_prev)
            err = clEnqueueReadBuffer(ctx->queue, first->theta, CL_TRUE, clopt_theta_at(s, 0),
                                      width, to_prev, 0, NULL, NULL);
        if (err == CL_SUCCESS && has_next)
            err = clEnqueueReadBuffer(ctx->queue, last->theta, CL_TRUE,
                                      clopt_theta_at(s, last->count - s->halo), width, to_next, 0,
                                      NULL, NULL);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(ctx, err, "clEnqueueReadBuffer(halo)");
    }
    /* A neighbour exchange alone would leave the ranks beyond a failed one waiting for it
     * elsewhere: all ranks agree first. */
    const double start = clock_start(s);
    status = agree(s, status, 0, NULL, "before the stencil halo exchange");
    if (status == CLOPT_OK &&
        rk->neighbours(rk->user, to_prev, from_prev, to_next, from_next, width) != 0)
        status = comm_failed(s, what);
    clock_stop(s, start);
    if (status == CLOPT_OK && has_prev)
        err = clEnqueueWriteBuffer(ctx->queue, first->theta, CL_TRUE, clopt_left_halo_at(s), width,
                                   from_prev, 0, NULL, NULL);
    if (status == CLOPT_OK && err == CL_SUCCESS && has_next)
        err = clEnqueueWriteBuffer(ctx->queue, last->theta, CL_TRUE, clopt_theta_at(s, last->count),
                                   width, from_next, 0, NULL, NULL);
    if (status == CLOPT_OK && err != CL_SUCCESS)
        status = clopt_fail_cl(ctx, err, "clEnqueueWriteBuffer(halo)");
    return status;
}

int clopt_ranks_any(struct clopt_solver *s, int flag, int *any)
{
    *any = flag != 0;
    if (!clopt_ranks_active(s))
        return CLOPT_OK;
    const double start = clock_start(s);
    const int status = agree(s, CLOPT_OK, flag != 0, any, "while agreeing to stop");
    clock_stop(s, start);
    return status;
}

int clopt_ranks_flag(struct clopt_solver *s, int flag, int *any)
{
    *any = flag != 0;
    return clopt_ranks_active(s)
               ? agree(s, CLOPT_OK, flag != 0, any, "while agreeing on a checkpoint")
               : CLOPT_OK;
}

int clopt_ranks_agree(struct clopt_solver *s, int status, const char *what)
{
    return clopt_ranks_active(s) ? agree(s, status, 0, NULL, what) : status;
}

int clopt_ranks_settle(struct clopt_solver *s, int status)
{
    if (!clopt_ranks_active(s) || s->rank_failed)
        return status;
    /* A diverged run diverged on every rank (they fold the same losses): no failure. */
    const int failed = status < 0 && status != CLOPT_ERR_DIVERGED;
    const int agreed = agree(s, failed ? status : CLOPT_OK, 0, NULL, "during the run");
    return agreed != CLOPT_OK ? agreed : status;
}

void clopt_ranks_clock(struct clopt_solver *s, int on)
{
    if (on)
        s->rank_comm_seconds = 0;
    s->rank_clock = on && clopt_ranks_active(s);
}

int clopt_solver_communication_seconds(const struct clopt_solver *s, double *seconds)
{
    if (!s || !seconds)
        return CLOPT_ERR_INVALID_ARG;
    *seconds = s->rank_comm_seconds;
    return CLOPT_OK;
}
