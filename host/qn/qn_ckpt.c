/* lbfgs, cg and gd-BB checkpoints: the run's state at an iteration boundary (before a line
 * search) is x, g, d, the history pairs and the scalars of struct qn_run, so that is what the
 * file holds, in the container of host/checkpoint.c:
 *   config  the solver's configuration text, as for the other optimizers
 *   qnloop  u32 qn kind, u32 element size, u64 n, m, k, t, evaluations; f64 f, gg, gd,
 *           alpha_prev, gd_prev, f_prev; u64 tile; u64 order[k]; f64 sy[m][m], yy[m][m],
 *           sg[m], yg[m]; then for kind CLOPT_QN_BB only, f64 bb_alpha (the next step,
 *           which s and y gave and which nothing else holds; lbfgs/cg files are unchanged)
 *   theta   x (so tools that read theta see the iterate)
 *   qnvec   every vector slot of host/qn/qn.h in slot order, each n elements
 * The other optimizers' files have a "loop" section where this has "qnloop", so neither
 * reader takes the other's file for its own. The loop waits while the file is written: the
 * vectors are 2m + 3 times theta, and a run checkpoints rarely. Under several ranks the
 * vectors are gathered a file chunk at a time in rank order (the scalars are the same on
 * every rank) and rank 0 writes each chunk as it arrives: the one process's bytes, with no
 * rank holding the vectors (host/solver/ranks_ckpt.c). On resume every process streams the
 * file a chunk at a time (checking its checksums) and keeps its own range of each chunk,
 * whatever the rank count that wrote the file: no process holds a whole vector. */
#include "qn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QN_LOOP_HEAD (4 + 4 + 5 * 8 + 6 * 8 + 8)

static void put(unsigned char *b, size_t *at, const void *v, size_t size)
{
    memcpy(b + *at, v, size);
    *at += size;
}

static void get(const unsigned char *b, size_t *at, void *v, size_t size)
{
    memcpy(v, b + *at, size);
    *at += size;
}

static size_t loop_length(uint32_t kind, size_t m, size_t k)
{
    return QN_LOOP_HEAD + 8 * k + 8 * (2 * m * m + 2 * m) + (kind == CLOPT_QN_BB ? 8 : 0);
}

static void encode(const struct clopt_solver *s, const struct qn_run *r, unsigned char *b)
{
    size_t at = 0;
    const uint32_t kind = (uint32_t)s->optimizer->qn, elem = (uint32_t)s->elem_size;
    const uint64_t n = s->n, m = r->m, k = r->k;
    put(b, &at, &kind, 4);
    put(b, &at, &elem, 4);
    put(b, &at, &n, 8);
    put(b, &at, &m, 8);
    put(b, &at, &k, 8);
    put(b, &at, &r->t, 8);
    put(b, &at, &r->evaluations, 8);
    const double scalars[6] = {r->f, r->gg, r->gd, r->alpha_prev, r->gd_prev, r->f_prev};
    put(b, &at, scalars, sizeof scalars);
    const uint64_t tile = s->qn->tile;
    put(b, &at, &tile, 8);
    for (size_t p = 0; p < r->k; ++p) {
        const uint64_t slot = r->order[p];
        put(b, &at, &slot, 8);
    }
    for (size_t i = 0; i < r->m; ++i)
        put(b, &at, r->sy[i], 8 * r->m);
    for (size_t i = 0; i < r->m; ++i)
        put(b, &at, r->yy[i], 8 * r->m);
    put(b, &at, r->sg, 8 * r->m);
    put(b, &at, r->yg, 8 * r->m);
    if (kind == CLOPT_QN_BB)
        put(b, &at, &r->bb_alpha, 8);
}

/* The vector slots of this process's shards into image (slot-major, n elements each, at
 * their global positions): a single process's checkpoint. */
static int read_vectors(struct clopt_solver *s, unsigned char *image)
{
    struct clopt_qn *q = s->qn;
    const size_t slots = QN_VECTORS(q->m), e = s->elem_size;
    /* The copies go through lane 0's queue: with several devices, the others must be idle. */
    int status = s->n_lanes > 1 ? clopt_sync_lanes(s, 1) : CLOPT_OK;
    if (status != CLOPT_OK)
        return status;
    for (size_t i = 0; i < s->n_shards && status == CLOPT_OK; ++i) {
        const struct shard *sh = &s->shards[i];
        for (size_t v = 0; v < slots && status == CLOPT_OK; ++v) {
            cl_int err = clEnqueueReadBuffer(s->ctx->queue, q->vec[i], CL_FALSE, v * sh->count * e,
                                             sh->count * e, image + (v * s->n + sh->offset) * e, 0,
                                             NULL, NULL);
            if (err != CL_SUCCESS)
                status = clopt_fail_cl(s->ctx, err, "clEnqueueReadBuffer(qn checkpoint)");
        }
    }
    /* Also after a failed enqueue: the copies queued before it write image, which the
     * caller frees on return. */
    cl_int err = clFinish(s->ctx->queue);
    if (status == CLOPT_OK && err != CL_SUCCESS)
        status = clopt_fail_cl(s->ctx, err, "clFinish(qn checkpoint)");
    return status;
}

/* This rank's elements [at, at + count) of vector slot `slot` (ranks_ckpt.c's reader): from
 * the shards that hold them, in lane 0's queue order (after the kernels that wrote them). */
static int slot_part(struct clopt_solver *s, void *user, size_t slot, size_t at, size_t count,
                     void *dst)
{
    (void)user;
    struct clopt_qn *q = s->qn;
    const size_t e = s->elem_size, end = at + count;
    for (size_t i = 0; i < s->n_shards; ++i) {
        const struct shard *sh = &s->shards[i];
        const size_t lo = sh->offset > at ? sh->offset : at;
        const size_t hi = sh->offset + sh->count < end ? sh->offset + sh->count : end;
        if (hi <= lo)
            continue;
        cl_int err = clEnqueueReadBuffer(s->ctx->queue, q->vec[i], CL_TRUE,
                                         (slot * sh->count + lo - sh->offset) * e, (hi - lo) * e,
                                         (char *)dst + (lo - at) * e, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueReadBuffer(qn checkpoint)");
    }
    return CLOPT_OK;
}

static void note(struct clopt_solver *s, const char *why)
{
    struct clopt_checkpoint_report *rep = &s->ck_report;
    if (!rep->failed++)
        snprintf(rep->error, sizeof rep->error, "%s", why);
}

static void tag(struct clopt_ckpt_section *sec, const char *name, uint64_t length, const void *data)
{
    memset(sec->tag, 0, sizeof sec->tag);
    memcpy(sec->tag, name, strlen(name));
    sec->length = length;
    sec->data = data;
}

/* The sections of the file: config, qnloop, theta (x), qnvec (every slot). image NULL:
 * the vectors are gathered between ranks instead. */
static void describe(struct clopt_solver *s, const struct qn_run *r, const unsigned char *loop,
                     const unsigned char *image, struct clopt_ckpt_section sec[4])
{
    const size_t slots = QN_VECTORS(r->m), vec_bytes = s->n * s->elem_size;
    tag(&sec[0], "config", strlen(s->config), s->config);
    tag(&sec[1], "qnloop", loop_length((uint32_t)s->optimizer->qn, r->m, r->k), loop);
    tag(&sec[2], "theta", vec_bytes, image ? image + QN_X(r->m) * vec_bytes : NULL);
    tag(&sec[3], "qnvec", slots * vec_bytes, image);
}

static void count_written(struct clopt_solver *s, struct qn_run *r)
{
    ++s->ck_report.written;
    s->ck_report.last_written = r->t;
    r->written_t = r->t;
}

/* Several ranks: every rank takes part in the gathers of the file's vector chunks, which
 * rank 0 writes as they arrive (ranks_ckpt.c): no rank holds the vectors' image. */
static int checkpoint_across_ranks(struct clopt_solver *s, struct qn_run *r)
{
    unsigned char *loop = malloc(loop_length((uint32_t)s->optimizer->qn, r->m, r->k));
    /* The run itself needs none of this: no checkpoint this time, on every rank. */
    int short_of_memory = !loop;
    int status = clopt_ranks_flag(s, short_of_memory, &short_of_memory);
    if (status == CLOPT_OK && short_of_memory)
        note(s, "out of host memory for a checkpoint of the lbfgs/cg vectors");
    /* The copies go through lane 0's queue: with several devices, the others must be idle. */
    if (status == CLOPT_OK && !short_of_memory && s->n_lanes > 1)
        status = clopt_sync_lanes(s, 1);
    if (status == CLOPT_OK && !short_of_memory) {
        encode(s, r, loop);
        struct clopt_ckpt_section sec[4];
        describe(s, r, loop, NULL, sec);
        const size_t vec_of[4] = {0, 0, QN_X(r->m), 0};
        char err[512] = "";
        int written = 0;
        status = clopt_ranks_write_checkpoint(s, s->checkpoint_path, sec, 4, vec_of, SIZE_MAX,
                                              slot_part, NULL, &written, err, sizeof err);
        if (status == CLOPT_OK && written)
            count_written(s, r);
        else if (status == CLOPT_OK && err[0])
            note(s, err);
    }
    free(loop);
    return status;
}

int clopt_qn_checkpoint(struct clopt_solver *s, struct qn_run *r)
{
    if (clopt_ranks_active(s))
        return checkpoint_across_ranks(s, r);
    const size_t slots = QN_VECTORS(r->m), vec_bytes = s->n * s->elem_size;
    unsigned char *loop = malloc(loop_length((uint32_t)s->optimizer->qn, r->m, r->k));
    unsigned char *image = slots <= SIZE_MAX / vec_bytes ? malloc(slots * vec_bytes) : NULL;
    int status = CLOPT_OK;
    /* The run itself needs none of this: no checkpoint this time. */
    if (!loop || !image)
        note(s, "out of host memory for a checkpoint of the lbfgs/cg vectors");
    else
        status = read_vectors(s, image);
    if (status == CLOPT_OK && loop && image) {
        encode(s, r, loop);
        struct clopt_ckpt_section sec[4];
        describe(s, r, loop, image, sec);
        char err[512];
        /* A file that cannot be written does not stop the run (as for the other optimizers). */
        if (clopt_ckpt_write(s->checkpoint_path, sec, 4, NULL, NULL, err, sizeof err) == CLOPT_OK)
            count_written(s, r);
        else
            note(s, err);
    }
    free(loop);
    free(image);
    return status;
}

/* What in a decoded qnloop section no run could have written; NULL when nothing. */
static const char *impossible(const struct clopt_solver *s, const struct qn_run *r, uint32_t kind,
                              uint32_t elem, uint64_t n, uint64_t m, uint64_t k)
{
    if (kind != (uint32_t)s->optimizer->qn || m != s->qn->m)
        return "its lbfgs/cg section is for another optimizer or history";
    if (elem != s->elem_size || n != s->n)
        return "its lbfgs/cg section is for another precision or dimension";
    if (k > m || r->evaluations == 0 || !isfinite(r->f) || !isfinite(r->gg))
        return "its lbfgs/cg section holds an impossible state";
    /* After the first step the next BB step is a clamped positive quotient. */
    if (kind == CLOPT_QN_BB && r->t > 0 && !(r->bb_alpha > 0 && isfinite(r->bb_alpha)))
        return "its gd Barzilai-Borwein section holds an impossible next step";
    int seen[QN_MAX_HISTORY] = {0};
    for (size_t p = 0; p < k; ++p)
        if (r->order[p] >= m || seen[r->order[p]]++)
            return "its lbfgs/cg section holds an impossible history order";
    return NULL;
}

static int decode(const struct clopt_solver *s, const unsigned char *b, uint64_t length,
                  struct qn_run *r, char *err, size_t errlen)
{
    size_t at = 0;
    uint32_t kind, elem;
    uint64_t n, m, k;
    get(b, &at, &kind, 4);
    get(b, &at, &elem, 4);
    get(b, &at, &n, 8);
    get(b, &at, &m, 8);
    get(b, &at, &k, 8);
    if (m > QN_MAX_HISTORY || k > QN_MAX_HISTORY || length != loop_length(kind, m, k)) {
        snprintf(err, errlen, "its lbfgs/cg section has an impossible size");
        return CLOPT_ERR_BAD_FILE;
    }
    get(b, &at, &r->t, 8);
    get(b, &at, &r->evaluations, 8);
    double scalars[6];
    get(b, &at, scalars, sizeof scalars);
    r->f = scalars[0], r->gg = scalars[1], r->gd = scalars[2];
    r->alpha_prev = scalars[3], r->gd_prev = scalars[4], r->f_prev = scalars[5];
    uint64_t tile;
    get(b, &at, &tile, 8);
    if (tile != s->qn->tile) {
        /* The dot products are folded per tile: another tile gives other bits. */
        snprintf(err, errlen,
                 "it was written with %llu-element dot-product tiles, this run has %llu (the "
                 "knobs wg and epw set them): resume with the --tune knobs of the run that "
                 "wrote it",
                 (unsigned long long)tile, (unsigned long long)s->qn->tile);
        return CLOPT_ERR_INVALID_ARG;
    }
    r->m = m;
    r->k = k;
    for (size_t p = 0; p < k; ++p) {
        uint64_t slot;
        get(b, &at, &slot, 8);
        r->order[p] = slot < QN_MAX_HISTORY ? (size_t)slot : QN_MAX_HISTORY;
    }
    for (size_t i = 0; i < m; ++i)
        get(b, &at, r->sy[i], 8 * m);
    for (size_t i = 0; i < m; ++i)
        get(b, &at, r->yy[i], 8 * m);
    get(b, &at, r->sg, 8 * m);
    get(b, &at, r->yg, 8 * m);
    if (kind == CLOPT_QN_BB)
        get(b, &at, &r->bb_alpha, 8);
    const char *why = impossible(s, r, kind, elem, n, m, k);
    if (why) {
        snprintf(err, errlen, "%s", why);
        return CLOPT_ERR_BAD_FILE;
    }
    return CLOPT_OK;
}

/* Reads the next section, tagged name, of exactly `length` bytes (0: any up to `most`). */
static int read_section(struct clopt_ckpt_reader *rd, const char *name, uint64_t length,
                        uint64_t most, unsigned char **out, uint64_t *got, char *err, size_t errlen)
{
    uint64_t have;
    int status = clopt_ckpt_next(rd, name, &have, err, errlen);
    if (status == CLOPT_OK && (length ? have != length : have > most)) {
        snprintf(err, errlen, "section '%s' has the wrong size", name);
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK) {
        *out = malloc(have ? (size_t)have : 1);
        status =
            *out ? clopt_ckpt_read(rd, *out, (size_t)have, err, errlen) : CLOPT_ERR_OUT_OF_MEMORY;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(rd, name, err, errlen);
    *got = have;
    return status;
}

/* Whether the first `count` elements of x are finite. */
static int x_finite(const struct clopt_solver *s, const unsigned char *x, size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        double v;
        if (s->elem_size == sizeof(double)) {
            memcpy(&v, x + i * sizeof v, sizeof v);
        } else {
            float f;
            memcpy(&f, x + i * sizeof f, sizeof f);
            v = f;
        }
        if (!isfinite(v))
            return 0;
    }
    return 1;
}

/* The part in this process's shards of elements [at, at + count) of vector slot `slot`
 * from src (slot_part's way back): a rank writes its own range only. Blocking, as src is
 * the next chunk's buffer. */
static int slot_part_to_device(struct clopt_solver *s, size_t slot, size_t at, size_t count,
                               const unsigned char *src)
{
    struct clopt_qn *q = s->qn;
    const size_t e = s->elem_size, end = at + count;
    for (size_t i = 0; i < s->n_shards; ++i) {
        const struct shard *sh = &s->shards[i];
        const size_t lo = sh->offset > at ? sh->offset : at;
        const size_t hi = sh->offset + sh->count < end ? sh->offset + sh->count : end;
        if (hi <= lo)
            continue;
        cl_int err = clEnqueueWriteBuffer(s->ctx->queue, q->vec[i], CL_TRUE,
                                          (slot * sh->count + lo - sh->offset) * e, (hi - lo) * e,
                                          src + (lo - at) * e, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueWriteBuffer(qn resume)");
    }
    return CLOPT_OK;
}

/* One n-element vector of the file, from the reader's position, a file chunk at a time
 * (never the whole vector: at 1e10 parameters it is 40 GB, and there are 2m + 4 of them):
 * into theta (slot SIZE_MAX; it must be finite) or vector slot `slot`, each rank keeping
 * only its own range of each chunk. *crc accumulates the vector's bytes. Every rank reads
 * every byte, so the section checksums are checked on each, and each comes to the same
 * verdict on the same file. A fault of the file is in err; one of the device sets
 * *in_file = 0 and is on the context. */
static int stream_vector(struct clopt_solver *s, struct clopt_ckpt_reader *rd, size_t slot,
                         unsigned char *chunk, uint32_t *crc, char *err, size_t errlen,
                         int *in_file)
{
    const size_t e = s->elem_size, most = CLOPT_CKPT_CHUNK / e;
    int status = CLOPT_OK;
    for (size_t done = 0; done < s->n && status == CLOPT_OK;) {
        const size_t m = s->n - done < most ? s->n - done : most;
        status = clopt_ckpt_read(rd, chunk, m * e, err, errlen);
        if (status != CLOPT_OK)
            return status;
        *crc = clopt_crc32c(*crc, chunk, m * e);
        if (slot == SIZE_MAX && !x_finite(s, chunk, m)) {
            snprintf(err, errlen, "theta is not finite, which no run checkpoints");
            return CLOPT_ERR_BAD_FILE;
        }
        status = slot == SIZE_MAX ? clopt_transfer(s, 0, chunk, s->opts.precision, done, m, 1)
                                  : slot_part_to_device(s, slot, done, m, chunk);
        if (status != CLOPT_OK)
            *in_file = 0;
        done += m;
    }
    return status;
}

/* The sections after config, into *r and the device; err describes a fault of the file.
 * Host memory: one file chunk, whatever n (the vectors stream to the device). */
static int read_state(struct clopt_solver *s, struct clopt_ckpt_reader *rd, struct qn_run *r,
                      char *err, size_t errlen, int *in_file)
{
    const size_t slots = QN_VECTORS(s->qn->m), vec_bytes = s->n * s->elem_size;
    unsigned char *loop = NULL, *chunk = NULL;
    uint64_t got;
    int status =
        read_section(rd, "qnloop", 0, loop_length(CLOPT_QN_LBFGS, QN_MAX_HISTORY, QN_MAX_HISTORY),
                     &loop, &got, err, errlen);
    if (status == CLOPT_OK)
        status = decode(s, loop, got, r, err, errlen);
    if (status == CLOPT_OK) {
        chunk = malloc(CLOPT_CKPT_CHUNK);
        status = chunk ? CLOPT_OK : CLOPT_ERR_OUT_OF_MEMORY;
    }
    /* The vectors go through lane 0's queue: with several devices, the others must be idle. */
    if (status == CLOPT_OK && s->n_lanes > 1) {
        status = clopt_sync_lanes(s, 1);
        *in_file = status == CLOPT_OK;
    }
    uint32_t theta_crc = 0, x_crc = 0, other_crc = 0;
    if (status == CLOPT_OK)
        status = clopt_ckpt_next(rd, "theta", &got, err, errlen);
    if (status == CLOPT_OK && got != vec_bytes) {
        snprintf(err, errlen, "section 'theta' has the wrong size");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK)
        status = stream_vector(s, rd, SIZE_MAX, chunk, &theta_crc, err, errlen, in_file);
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(rd, "theta", err, errlen);
    if (status == CLOPT_OK)
        status = clopt_ckpt_next(rd, "qnvec", &got, err, errlen);
    if (status == CLOPT_OK && got != slots * vec_bytes) {
        snprintf(err, errlen, "section 'qnvec' has the wrong size");
        status = CLOPT_ERR_BAD_FILE;
    }
    for (size_t v = 0; v < slots && status == CLOPT_OK; ++v)
        status = stream_vector(s, rd, v, chunk, v == QN_X(s->qn->m) ? &x_crc : &other_crc, err,
                               errlen, in_file);
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(rd, "qnvec", err, errlen);
    if (status == CLOPT_OK)
        status = clopt_ckpt_close(rd, 1, err, errlen);
    /* Both sections' checksums held, so the bytes are the writer's; a writer that was not
     * clopt could still have put another theta than x. Neither is held whole any more to
     * compare them byte for byte: their CRC32Cs of equal lengths are compared instead, which
     * any difference short of one built to collide shows. */
    if (status == CLOPT_OK && theta_crc != x_crc) {
        snprintf(err, errlen, "its theta is not the x of its lbfgs/cg vectors");
        status = CLOPT_ERR_BAD_FILE;
    }
    free(loop);
    free(chunk);
    return status;
}

int clopt_qn_read_checkpoint(struct clopt_solver *s, struct clopt_ckpt_reader *rd, const char *path)
{
    struct qn_run *r = calloc(1, sizeof *r);
    if (!r)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    char err[512] = "";
    int in_file = 1;
    int status = read_state(s, rd, r, err, sizeof err, &in_file);
    if (status != CLOPT_OK) {
        free(r);
        if (!in_file)
            return status; /* the device's message is on the context */
        return clopt_fail(s->ctx, status, "checkpoint '%s': %s", path,
                          status == CLOPT_ERR_OUT_OF_MEMORY ? "out of host memory" : err);
    }
    free(s->qn->resume);
    s->qn->resume = r;
    s->theta_generated = 0;
    return CLOPT_OK;
}
