/* Several processes on one problem (DESIGN.md §4b "Scale"): each rank owns a contiguous
 * range of whole tiles, computes the loss partials of its tiles, and the partials of every
 * rank are gathered into every rank's partial buffer before the usual reduction, which then
 * folds them in tile order exactly as one process does: results are bit-identical for any
 * rank count. The ranks talk only through the caller's callbacks (struct clopt_ranks), so
 * the library has no MPI dependency. Which tiles are local is decided here; which shards
 * (buffers) hold the local range is the shard plan's business (shards.c). */
#include "solver.h"

#include <stdlib.h>
#include <string.h>

/* Elements per gather of a collective read: bounded host memory and message sizes. */
#define RANK_CHUNK ((size_t)1 << 20)

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

/* Rank r's elements [*lo, *hi): tiles r*T/P .. (r+1)*T/P, so ranks differ by one tile at
 * most and every rank's range is whole tiles (the last one may end short with theta). */
static void range_of(const struct clopt_solver *s, size_t r, size_t *lo, size_t *hi)
{
    const size_t tile = tile_of(s), tiles = (s->n + tile - 1) / tile, p = s->ctx->ranks.size;
    const size_t t_lo = (size_t)((unsigned __int128)tiles * r / p);
    const size_t t_hi = (size_t)((unsigned __int128)tiles * (r + 1) / p);
    *lo = t_lo * tile < s->n ? t_lo * tile : s->n;
    *hi = t_hi * tile < s->n ? t_hi * tile : s->n;
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
    range_of(s, rk->rank, &s->lo, &s->hi);
    s->slot_lo = s->lo / tile * slots_per_tile;
    s->slot_hi = (s->hi + tile - 1) / tile * slots_per_tile;
    /* A halo comes from the neighbouring rank only: every rank but the last holds one. */
    for (size_t r = 0; r + 1 < rk->size; ++r) {
        size_t lo, hi;
        range_of(s, r, &lo, &hi);
        if (hi - lo < s->halo)
            return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                              "rank %zu holds %zu elements, fewer than the stencil radius %zu: "
                              "use fewer ranks or a larger options.dim",
                              r, hi - lo, s->halo);
    }
    return CLOPT_OK;
}

static int comm_failed(struct clopt_solver *s, const char *what)
{
    return clopt_fail(s->ctx, CLOPT_ERR_IO,
                      "rank %zu of %zu: %s between ranks failed (see the message above)",
                      s->ctx->ranks.rank, s->ctx->ranks.size, what);
}

int clopt_ranks_read(struct clopt_solver *s, size_t which, void *host,
                     enum clopt_precision host_prec, size_t offset, size_t count)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    const size_t item = host_prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    size_t *bytes = calloc(rk->size, sizeof *bytes);
    char *mine = malloc(RANK_CHUNK * item);
    int status = bytes && mine ? CLOPT_OK
                               : clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
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

/* Gathers every rank's per-tile records of `buf` (from byte `first`: `unit` bytes per tile of
 * `tile` elements, tile-major) into every rank's copy of it, in tile order. Rank ranges are
 * whole step tiles, so any tile that divides the step tile (lbfgs/cg's) splits them too. */
static int gather_tiles(struct clopt_solver *s, cl_mem buf, size_t first, size_t tile, size_t unit,
                        const char *what)
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
    if (!block)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t *bytes = (size_t *)block;
    char *all = block + counts, *mine = all + aligned;
    for (size_t r = 0; r < rk->size; ++r) {
        size_t lo, hi;
        range_of(s, r, &lo, &hi);
        bytes[r] = ((hi + tile - 1) / tile - lo / tile) * unit;
    }
    const size_t my_at = s->lo / tile * unit;
    int status = CLOPT_OK;
    if (my_bytes) {
        cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, first + my_at, my_bytes, mine, 0,
                                         NULL, NULL);
        if (err != CL_SUCCESS)
            status = clopt_fail_cl(ctx, err, "clEnqueueReadBuffer(partials to gather)");
    }
    if (status == CLOPT_OK && rk->allgatherv(rk->user, mine, all, bytes) != 0)
        status = comm_failed(s, what);
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
                        "gathering the loss partials");
}

int clopt_ranks_gather_tiles(struct clopt_solver *s, cl_mem buf, size_t tile, size_t unit)
{
    return gather_tiles(s, buf, 0, tile, unit, "gathering the dot-product partials");
}

int clopt_ranks_halos(struct clopt_solver *s)
{
    const struct clopt_ranks *rk = &s->ctx->ranks;
    struct clopt_context *ctx = s->ctx;
    const size_t width = s->halo * s->elem_size;
    const struct shard *first = &s->shards[0], *last = &s->shards[s->n_shards - 1];
    char *buf = rank_scratch(s, 4 * width);
    if (!buf)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    /* The halos beyond both ends of theta are zeros from the neighbour that is not there. */
    memset(buf, 0, 4 * width);
    char *to_prev = buf, *to_next = buf + width, *from_prev = buf + 2 * width,
         *from_next = buf + 3 * width;
    const int has_prev = rk->rank > 0, has_next = rk->rank + 1 < rk->size;
    /* The first `halo` elements of this range go to the rank before, the last ones to the
     * rank after; the halos beyond both ends of theta stay zero. */
    cl_int err = CL_SUCCESS;
    if (has_prev)
        err = clEnqueueReadBuffer(ctx->queue, first->theta, CL_TRUE, width, width, to_prev, 0, NULL,
                                  NULL);
    if (err == CL_SUCCESS && has_next)
        err = clEnqueueReadBuffer(ctx->queue, last->theta, CL_TRUE, last->count * s->elem_size,
                                  width, to_next, 0, NULL, NULL);
    int status =
        err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(ctx, err, "clEnqueueReadBuffer(halo)");
    if (status == CLOPT_OK &&
        rk->neighbours(rk->user, to_prev, from_prev, to_next, from_next, width) != 0)
        status = comm_failed(s, "the stencil halo exchange");
    if (status == CLOPT_OK && has_prev)
        err = clEnqueueWriteBuffer(ctx->queue, first->theta, CL_TRUE, 0, width, from_prev, 0, NULL,
                                   NULL);
    if (status == CLOPT_OK && err == CL_SUCCESS && has_next)
        err = clEnqueueWriteBuffer(ctx->queue, last->theta, CL_TRUE,
                                   (s->halo + last->count) * s->elem_size, width, from_next, 0,
                                   NULL, NULL);
    if (status == CLOPT_OK && err != CL_SUCCESS)
        status = clopt_fail_cl(ctx, err, "clEnqueueWriteBuffer(halo)");
    return status;
}

int clopt_ranks_any(struct clopt_solver *s, int flag, int *any)
{
    *any = flag != 0;
    if (!clopt_ranks_active(s))
        return CLOPT_OK;
    const struct clopt_ranks *rk = &s->ctx->ranks;
    return rk->any(rk->user, flag != 0, any) == 0 ? CLOPT_OK : comm_failed(s, "agreeing to stop");
}
