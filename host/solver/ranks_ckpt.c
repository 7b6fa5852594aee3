/* Checkpoints under several ranks (DESIGN.md §4b "Scale"): one file, the bytes one process
 * writes, from rank 0, without any rank holding the run's image. The file's vector sections
 * are fetched a file chunk (CLOPT_CKPT_CHUNK bytes) at a time; each chunk is every rank's
 * part of it, gathered in rank order (element order), and rank 0 writes it to the temporary
 * file at once (host/checkpoint.c: the CRCs are computed as the bytes go by, then fsync and
 * the atomic rename as for one process). Every rank takes part in every chunk's gather in
 * the same order, whatever happens to rank 0's file: where rank 0 cannot write (a full
 * disk), it still gathers the remaining chunks, and all ranks learn that no file was
 * written. A rank that fails (a device read) stops every rank through the agreement before
 * each gather (ranks.c). Host memory per rank: a chunk of its own part, a chunk gathered,
 * and on rank 0 the writer's chunk. */
#include "solver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct stream {
    struct clopt_solver *s;
    const struct clopt_ckpt_section *sections;
    size_t n_sections;
    const size_t *vec_of;
    size_t check;
    clopt_rank_part part;
    void *user;
    size_t *sizes;   /* bytes per rank of one gather */
    char *mine;      /* this rank's part of a chunk */
    char *spare;     /* a chunk to gather into where the file writer takes none */
    size_t gathered; /* chunks gathered, in the file's order */
    int failed;      /* a gather failed (on every rank): its status */
    int finite;      /* the checked section so far */
};

static int chunk_finite(const struct clopt_solver *s, const void *data, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        if (s->elem_size == sizeof(double) ? !isfinite(((const double *)data)[i])
                                           : !isfinite(((const float *)data)[i]))
            return 0;
    return 1;
}

/* Elements [at, at + count) of one vector, every rank's part in rank order, into dst. */
static int gather_piece(struct stream *st, size_t vector, size_t at, size_t count, char *dst)
{
    struct clopt_solver *s = st->s;
    const struct clopt_ranks *rk = &s->ctx->ranks;
    const size_t e = s->elem_size, end = at + count;
    const size_t my_lo = s->lo > at ? s->lo : at, my_hi = s->hi < end ? s->hi : end;
    int status = CLOPT_OK;
    if (my_hi > my_lo)
        status = st->part(s, st->user, vector, my_lo, my_hi - my_lo, st->mine);
    if (status == CLOPT_OK)
        status = CLOPT_INJECTED(s, "ranks checkpoint");
    status = clopt_ranks_agree(s, status, "before gathering a checkpoint chunk");
    if (status != CLOPT_OK)
        return status;
    for (size_t r = 0; r < rk->size; ++r) {
        size_t lo, hi;
        clopt_ranks_range(s, r, &lo, &hi);
        lo = lo > at ? lo : at;
        hi = hi < end ? hi : end;
        st->sizes[r] = hi > lo ? (hi - lo) * e : 0;
    }
    if (rk->allgatherv(rk->user, st->mine, dst, st->sizes) != 0) {
        return clopt_fail(s->ctx, CLOPT_ERR_IO,
                          "rank %zu of %zu: gathering a checkpoint chunk between ranks failed "
                          "(see the message above)",
                          rk->rank, rk->size);
    }
    return CLOPT_OK;
}

/* Bytes [offset, offset + bytes) of section `section` into dst: in pieces that do not cross
 * from one vector into the next (a section may hold several). */
static int gather_chunk(struct stream *st, size_t section, uint64_t offset, char *dst, size_t bytes)
{
    struct clopt_solver *s = st->s;
    const size_t e = s->elem_size, n = s->n;
    size_t first = (size_t)(offset / e), count = bytes / e;
    while (count) {
        const size_t vector = st->vec_of[section] + first / n, at = first % n;
        const size_t piece = n - at < count ? n - at : count;
        int status = gather_piece(st, vector, at, piece, dst);
        if (status != CLOPT_OK)
            return status;
        if (section == st->check && st->finite)
            st->finite = chunk_finite(s, dst, piece);
        dst += piece * e;
        first += piece;
        count -= piece;
    }
    ++st->gathered;
    return CLOPT_OK;
}

/* Rank 0's fetch for clopt_ckpt_write. A non-finite checked section or a failed gather ends
 * the file (the temporary file is removed; the checkpoint on disk stays). */
static int fetch(void *user, size_t section, uint64_t offset, void *dst, size_t bytes)
{
    struct stream *st = user;
    const int status = gather_chunk(st, section, offset, dst, bytes);
    if (status != CLOPT_OK) {
        st->failed = status;
        return status;
    }
    return st->finite ? CLOPT_OK : CLOPT_ERR_DIVERGED;
}

/* Gathers the chunks from number st->gathered on, into st->spare: a rank other than 0 takes
 * part in all of them, rank 0 in those its file writer did not take. */
static int follow(struct stream *st)
{
    size_t k = 0;
    for (size_t i = 0; i < st->n_sections; ++i) {
        const struct clopt_ckpt_section *sec = &st->sections[i];
        for (uint64_t at = 0; !sec->data && at < sec->length; at += CLOPT_CKPT_CHUNK, ++k) {
            if (k < st->gathered)
                continue;
            const uint64_t left = sec->length - at;
            const size_t bytes = left < CLOPT_CKPT_CHUNK ? (size_t)left : CLOPT_CKPT_CHUNK;
            const int status = gather_chunk(st, i, at, st->spare, bytes);
            if (status != CLOPT_OK)
                return status;
        }
    }
    return CLOPT_OK;
}

int clopt_ranks_write_checkpoint(struct clopt_solver *s, const char *path,
                                 const struct clopt_ckpt_section *sections, size_t n_sections,
                                 const size_t *vec_of, size_t check, clopt_rank_part part,
                                 void *user, int *written, char *err, size_t errlen)
{
    struct stream st = {.s = s,
                        .sections = sections,
                        .n_sections = n_sections,
                        .vec_of = vec_of,
                        .check = check,
                        .part = part,
                        .user = user,
                        .finite = 1};
    *written = 0;
    st.sizes = calloc(s->ctx->ranks.size, sizeof *st.sizes);
    st.mine = malloc(CLOPT_CKPT_CHUNK);
    st.spare = malloc(CLOPT_CKPT_CHUNK);
    /* Without memory for the chunks there is no checkpoint this time, on every rank. */
    int short_of_memory = !st.sizes || !st.mine || !st.spare;
    int status = clopt_ranks_flag(s, short_of_memory, &short_of_memory);
    if (status == CLOPT_OK && short_of_memory)
        snprintf(err, errlen, "out of host memory for a checkpoint's chunks");
    int file_ok = 0;
    if (status == CLOPT_OK && !short_of_memory && clopt_ranks_is_root(s)) {
        const int wrote = clopt_ckpt_write(path, sections, n_sections, fetch, &st, err, errlen);
        status = st.failed;
        file_ok = wrote == CLOPT_OK;
        if (!st.finite && errlen)
            err[0] = '\0'; /* no failure: the one on disk stays the last good one */
    }
    /* Rank 0's file may have stopped early: the other ranks are still gathering. */
    if (status == CLOPT_OK && !short_of_memory)
        status = follow(&st);
    /* Rank 0 tells whether the file was written: every rank counts what it counts, and
     * the run's last checkpoint is taken on all of them or none. */
    int not_written = !file_ok;
    if (status == CLOPT_OK && !short_of_memory)
        status = clopt_ranks_flag(s, clopt_ranks_is_root(s) && !file_ok, &not_written);
    *written = status == CLOPT_OK && !short_of_memory && !not_written;
    free(st.sizes);
    free(st.mine);
    free(st.spare);
    return status;
}
