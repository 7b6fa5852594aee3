/* lbfgs and cg on the device: each shard's vector buffer, the kernels of kernels/qn.cl and
 * their launches. */
#include "qn.h"
#include "solver/kernel_args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t clopt_qn_vectors(const struct clopt_solver *s)
{
    /* history is a double (a hyper-parameter); it is resolved before the shards are planned. */
    const size_t m = s->optimizer->qn == CLOPT_QN_LBFGS ? (size_t)s->opts.history : 0;
    return QN_VECTORS(m);
}

size_t clopt_qn_tile(const struct clopt_knobs *k)
{
    /* The smallest multiple EPI x d (d a divisor of WG) of at least QN_MIN_TILE elements: it
     * divides the step kernel's tile WG x EPI, of which every shard but the last is made, so
     * the fold of the partials is the same for every shard count. Tiles of WG x EPI (65536
     * elements by default) left one core idle at n = 1e5, which has two of them. */
    size_t d = 1;
    while (d < k->work_group && (k->work_group % d != 0 || k->elems_per_item * d < QN_MIN_TILE))
        ++d;
    return k->elems_per_item * d;
}

/* The dot-product pairs one pass may need: 5 per history pair, and two after a trial. */
static size_t max_pairs(size_t m)
{
    return 5 * m + 2;
}

/* Device memory of the run: theta (twice for a stencil), the trial gradient, the data
 * vector and the qn vectors; refused with the number of pairs that would fit. */
static int check_memory(struct clopt_solver *s, size_t m)
{
    /* The most elements one device holds: this rank's (all of theta in a single process),
     * or the largest lane's with several devices. */
    size_t most = 0;
    for (size_t d = 0; d < s->n_lanes; ++d) {
        size_t held = 0;
        for (size_t i = s->lanes[d].first_shard; i < s->lanes[d].end_shard; ++i)
            held += s->shards[i].count;
        most = held > most ? held : most;
    }
    const double per_vector = (double)most * (double)s->elem_size;
    const double fixed = (2.0 + (s->halo ? 1.0 : 0.0) + (s->data_path ? 1.0 : 0.0) + 3.0);
    const double need = per_vector * (fixed + 2.0 * (double)m);
    const double have = (double)s->ctx->info.global_mem_bytes;
    if (need <= have)
        return CLOPT_OK;
    const double spare = have / per_vector - fixed;
    if (m == 0 || spare < 2.0)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY,
                          "%s needs %.3g GB of device memory for %zu elements, the device has %.3g "
                          "GB: "
                          "lower options.dim%s",
                          s->optimizer->name, need / 1e9, most, have / 1e9,
                          s->n_lanes > 1 ? " or use more devices" : "");
    return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY,
                      "options.history = %zu pairs need %.3g GB of device memory for %zu elements, "
                      "the device has %.3g GB: at most %.0f pairs fit (set options.history)",
                      m, need / 1e9, most, have / 1e9, floor(spare / 2.0));
}

static int write_lists(struct clopt_solver *s, size_t which, const void *host, size_t bytes,
                       const char *name);

static int make_kernel(struct clopt_solver *s, cl_kernel *k, const char *name)
{
    cl_int err;
    *k = clCreateKernel(s->program, name, &err);
    if (err == CL_SUCCESS)
        return CLOPT_OK;
    *k = NULL;
    return clopt_fail_cl(s->ctx, err, name);
}

static int make_buffer(struct clopt_solver *s, cl_mem *b, size_t bytes)
{
    cl_int err;
    *b = clCreateBuffer(s->ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_SUCCESS)
        return CLOPT_OK;
    *b = NULL;
    return clopt_fail_cl(s->ctx, err, "clCreateBuffer(qn)");
}

/* The lanes' dot-product tiles and, for lanes > 0 that hold tiles, their own buffers. */
static int create_lanes(struct clopt_solver *s)
{
    struct clopt_qn *q = s->qn;
    q->lanes = calloc(s->n_lanes, sizeof *q->lanes);
    if (!q->lanes)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    int status = CLOPT_OK;
    for (size_t d = 0; d < s->n_lanes && status == CLOPT_OK; ++d) {
        const struct lane *lane = &s->lanes[d];
        struct qn_lane *ql = &q->lanes[d];
        if (lane->first_shard < lane->end_shard) {
            /* A lane's shards are consecutive; each starts on a step tile, which the
             * dot-product tile divides. */
            const struct shard *first = &s->shards[lane->first_shard],
                               *last = &s->shards[lane->end_shard - 1];
            ql->first_tile = first->offset / q->tile;
            ql->end_tile = (last->offset + last->count + q->tile - 1) / q->tile;
        }
        if (d == 0) {
            *ql = (struct qn_lane){{q->pairs[0], q->pairs[1]},
                                   q->terms,
                                   q->coef,
                                   q->partials,
                                   ql->first_tile,
                                   ql->end_tile};
            continue;
        }
        if (ql->first_tile == ql->end_tile)
            continue; /* holds no tile: never launched on */
        for (size_t i = 0; status == CLOPT_OK && i < 2; ++i)
            status = make_buffer(s, &ql->pairs[i], sizeof q->pairs_host[i]);
        if (status == CLOPT_OK)
            status = make_buffer(s, &ql->terms, sizeof q->terms_host);
        if (status == CLOPT_OK)
            status = make_buffer(s, &ql->coef, sizeof q->coef_host);
        if (status == CLOPT_OK)
            status = make_buffer(s, &ql->partials,
                                 (ql->end_tile - ql->first_tile) * max_pairs(q->m) * s->acc_size);
    }
    return status;
}

int clopt_qn_create(struct clopt_solver *s)
{
    struct clopt_qn *q = calloc(1, sizeof *q);
    if (!q)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    s->qn = q;
    q->m = clopt_qn_vectors(s) / 2 - 1;
    q->tile = clopt_qn_tile(&s->knobs);
    q->n_tiles = (s->n + q->tile - 1) / q->tile;
    /* After each trial: g_trial . d, and (cg) g_trial . g. */
    const cl_uint after_trial[4] = {QN_EXTRA(q->m), QN_D(q->m), QN_EXTRA(q->m), QN_G(q->m)};
    memcpy(q->pairs_host[1], after_trial, sizeof after_trial);
    int status = check_memory(s, q->m);
    q->vec = status == CLOPT_OK ? calloc(s->n_shards, sizeof *q->vec) : NULL;
    if (status == CLOPT_OK && !q->vec)
        status = clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; status == CLOPT_OK && i < s->n_shards; ++i)
        status = make_buffer(s, &q->vec[i], QN_VECTORS(q->m) * s->shards[i].count * s->elem_size);
    for (size_t i = 0; status == CLOPT_OK && i < 2; ++i)
        status = make_buffer(s, &q->pairs[i], sizeof q->pairs_host[i]);
    if (status == CLOPT_OK)
        status = make_buffer(s, &q->terms, sizeof q->terms_host);
    if (status == CLOPT_OK)
        status = make_buffer(s, &q->coef, sizeof q->coef_host);
    if (status == CLOPT_OK)
        status = make_buffer(s, &q->partials, q->n_tiles * max_pairs(q->m) * s->acc_size);
    if (status == CLOPT_OK)
        status = make_buffer(s, &q->dots, QN_MAX_PAIRS * s->acc_size);
    if (status == CLOPT_OK)
        status = create_lanes(s);
    /* The list after a trial never changes: written once here, not before every trial. */
    if (status == CLOPT_OK)
        status = write_lists(s, 1, q->pairs_host[1], sizeof after_trial,
                             "clEnqueueWriteBuffer(qn pairs)");
    const struct {
        cl_kernel *k;
        const char *name;
    } kernels[] = {
        {&q->k_trial, "clopt_qn_trial"},     {&q->k_accept, "clopt_qn_accept"},
        {&q->k_dots, "clopt_qn_dots"},       {&q->k_dots_reduce, "clopt_qn_dots_reduce"},
        {&q->k_combine, "clopt_qn_combine"}, {&q->k_accept_dots, "clopt_qn_accept_dots"}};
    for (size_t i = 0; status == CLOPT_OK && i < sizeof kernels / sizeof *kernels; ++i)
        status = make_kernel(s, kernels[i].k, kernels[i].name);
    return status;
}

void clopt_qn_destroy(struct clopt_solver *s)
{
    struct clopt_qn *q = s->qn;
    if (!q)
        return;
    /* write_lists' copy from q->pairs_host is not waited for where it is queued: a solver
     * destroyed before its first run (a resume that failed) freed q under it (ASan, test
     * ranks_resume_an_lbfgs_checkpoint_in_bounded_host_memory before its fix). Nobody is
     * left to tell of a failure here. */
    for (size_t d = 0; s->lanes && d < s->n_lanes; ++d)
        if (s->lanes[d].queue)
            clFinish(s->lanes[d].queue);
    for (size_t i = 0; q->vec && i < s->n_shards; ++i)
        if (q->vec[i])
            clReleaseMemObject(q->vec[i]);
    free(q->vec);
    /* Lane 0's buffers are q's own, released below. */
    for (size_t d = 1; q->lanes && d < s->n_lanes; ++d) {
        struct qn_lane *ql = &q->lanes[d];
        cl_mem own[] = {ql->pairs[0], ql->pairs[1], ql->terms, ql->coef, ql->partials};
        for (size_t i = 0; i < sizeof own / sizeof *own; ++i)
            if (own[i])
                clReleaseMemObject(own[i]);
    }
    free(q->lanes);
    cl_mem buffers[] = {q->pairs[0], q->pairs[1], q->terms, q->coef, q->partials, q->dots};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; ++i)
        if (buffers[i])
            clReleaseMemObject(buffers[i]);
    cl_kernel kernels[] = {q->k_trial,       q->k_accept,  q->k_dots,
                           q->k_dots_reduce, q->k_combine, q->k_accept_dots};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; ++i)
        if (kernels[i])
            clReleaseKernel(kernels[i]);
    free(q->resume);
    free(q);
    s->qn = NULL;
}

/* Sets arguments in order from a list of (size, pointer). */
struct arg {
    size_t size;
    const void *value;
};

static int set_args(struct clopt_solver *s, cl_kernel k, const struct arg *args, size_t n)
{
    int status = CLOPT_OK;
    for (size_t i = 0; i < n && status == CLOPT_OK; ++i)
        status = clopt_set_arg(s->ctx, k, (cl_uint)i, args[i].size, args[i].value);
    return status;
}

/* Elements per work-item of the element-wise kernels (kernels/qn.cl's CLOPT_QN_CHUNK). */
#define QN_CHUNK 4096

/* One work-item per item, in groups of one; no launch for none. Items are few (chunks of
 * elements, tiles, dot products), and a fixed group size keeps CPU runtimes from compiling
 * the kernel again for each new launch size (PoCL does, per local size: the reduction's
 * size grows with the history, and the first iterations paid a build each). A launch over
 * shard i goes to its device's queue, and the first of a lane's shards waits for what other
 * queues did with the lane's buffers (lanes.c); NO_SHARD is a launch on lane 0's queue. */
#define NO_SHARD SIZE_MAX

static int launch(struct clopt_solver *s, size_t shard, cl_kernel k, size_t items, const char *name)
{
    const size_t global = items, local = 1;
    if (global == 0)
        return CLOPT_OK;
    struct lane *lane = &s->lanes[shard == NO_SHARD ? 0 : s->shards[shard].lane];
    cl_event wait[2];
    cl_uint n_wait = 0;
    if (shard != NO_SHARD && shard == lane->first_shard)
        clopt_lane_take_waits(lane, wait, &n_wait);
    cl_int err = clEnqueueNDRangeKernel(lane->queue, k, 1, NULL, &global, &local, n_wait,
                                        n_wait ? wait : NULL, NULL);
    for (cl_uint i = 0; i < n_wait; ++i)
        clReleaseEvent(wait[i]);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, name);
}

static size_t chunks(size_t count)
{
    return (count + QN_CHUNK - 1) / QN_CHUNK;
}

#define ARG(x)                                                                                     \
    {                                                                                              \
        sizeof(x), &(x)                                                                            \
    }
#define N_ARGS(a) (sizeof(a) / sizeof *(a))

static int enqueue_trial(struct clopt_solver *s, double alpha)
{
    struct clopt_qn *q = s->qn;
    const cl_uint x = QN_X(q->m), d = QN_D(q->m);
    const union real_arg a = clopt_real_value(s, alpha);
    int status = CLOPT_OK;
    for (size_t i = 0; i < s->n_shards && status == CLOPT_OK; ++i) {
        const cl_ulong pitch = s->shards[i].count, count = pitch;
        const struct arg args[] = {
            ARG(s->shards[i].theta), ARG(q->vec[i]), ARG(pitch), ARG(count), ARG(x), ARG(d),
            {s->elem_size, &a}};
        status = set_args(s, q->k_trial, args, N_ARGS(args));
        if (status == CLOPT_OK)
            status = launch(s, i, q->k_trial, chunks(s->shards[i].count),
                            "clEnqueueNDRangeKernel(qn trial)");
    }
    q->theta_ready = status == CLOPT_OK;
    q->theta_alpha = alpha;
    return status;
}

/* Several devices: the partials of lanes > 0 (tile-major from their first tile, n_pairs per
 * tile) into place in q->partials, on lane 0's queue once each lane's dots are done; each
 * lane's next launch waits for its copy (lanes.c). */
static int gather_lanes(struct clopt_solver *s, size_t n_pairs)
{
    struct clopt_qn *q = s->qn;
    const size_t unit = n_pairs * s->acc_size;
    int copied = 0;
    for (size_t d = 1; d < s->n_lanes; ++d) {
        const struct qn_lane *ql = &q->lanes[d];
        if (ql->first_tile == ql->end_tile)
            continue;
        int status = clopt_lane_copy_home(s, d, ql->partials, 0, q->partials, ql->first_tile * unit,
                                          (ql->end_tile - ql->first_tile) * unit);
        if (status != CLOPT_OK)
            return status;
        copied = 1;
    }
    cl_int err = copied ? clFlush(s->ctx->queue) : CL_SUCCESS;
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clFlush");
}

/* Writes `bytes` of host into each device's copy of a list (lanes holding no tile have
 * none); which: 0 and 1 the pair lists, 2 the terms, 3 the coefficients. Non-blocking: see
 * struct clopt_qn for when host may change again. */
static int write_lists(struct clopt_solver *s, size_t which, const void *host, size_t bytes,
                       const char *name)
{
    struct clopt_qn *q = s->qn;
    for (size_t d = 0; d < s->n_lanes; ++d) {
        const struct qn_lane *ql = &q->lanes[d];
        cl_mem buffer = which < 2 ? ql->pairs[which] : which == 2 ? ql->terms : ql->coef;
        if (!buffer)
            continue;
        cl_int err = clEnqueueWriteBuffer(s->lanes[d].queue, buffer, CL_FALSE, 0, bytes, host, 0,
                                          NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, name);
    }
    return CLOPT_OK;
}

int clopt_qn_fold_partials(struct clopt_solver *s, size_t n_pairs)
{
    struct clopt_qn *q = s->qn;
    const cl_ulong tiles = q->n_tiles;
    const cl_uint np = (cl_uint)n_pairs;
    /* Several ranks: each computed its own tiles' partials; with every rank's gathered in
     * tile order, every rank folds the same numbers as one process, so all take the same
     * line-search decisions. */
    int status = s->n_lanes > 1 ? gather_lanes(s, n_pairs) : CLOPT_OK;
    if (status == CLOPT_OK && clopt_ranks_active(s))
        status = clopt_ranks_gather_tiles(s, q->partials, q->tile, n_pairs * s->acc_size);
    const struct arg args[] = {ARG(q->partials), ARG(tiles), ARG(np), ARG(q->dots)};
    if (status == CLOPT_OK)
        status = set_args(s, q->k_dots_reduce, args, N_ARGS(args));
    if (status == CLOPT_OK)
        status = launch(s, NO_SHARD, q->k_dots_reduce, n_pairs,
                        "clEnqueueNDRangeKernel(qn dots reduce)");
    return status;
}

/* An accepted step for clopt_qn_accept_dots: with_pair, the new pair's slots. */
struct accept_args {
    cl_uint with_pair, s_slot, y_slot;
};

/* Queues the dot products of list `which` into q->dots (none when n_pairs is 0), and their
 * read into dots; with `accept`, the accepted step first, in the same launch. */
static int enqueue_dots(struct clopt_solver *s, size_t which, size_t n_pairs,
                        const struct accept_args *accept)
{
    struct clopt_qn *q = s->qn;
    const cl_uint extra = QN_EXTRA(q->m), np = (cl_uint)n_pairs, x = QN_X(q->m), g = QN_G(q->m);
    /* List 1 (after a trial) is on the device since clopt_qn_create. */
    int status = n_pairs && which != 1
                     ? write_lists(s, which, q->pairs_host[which], 2 * n_pairs * sizeof(cl_uint),
                                   "clEnqueueWriteBuffer(qn pairs)")
                     : CLOPT_OK;
    cl_kernel k = accept ? q->k_accept_dots : q->k_dots;
    for (size_t i = 0; i < s->n_shards && status == CLOPT_OK; ++i) {
        const struct shard *sh = &s->shards[i];
        /* Lane 0 writes into q->partials at the tile's global index, the other lanes into
         * their own partials from their first tile. */
        const struct qn_lane *ql = &q->lanes[sh->lane];
        const cl_ulong pitch = sh->count, count = sh->count,
                       first = sh->offset / q->tile - (sh->lane ? ql->first_tile : 0);
        if (accept) {
            const struct arg args[] = {ARG(sh->theta),
                                       ARG(q->vec[i]),
                                       ARG(sh->state[0]),
                                       ARG(pitch),
                                       ARG(count),
                                       ARG(extra),
                                       ARG(x),
                                       ARG(g),
                                       ARG(accept->s_slot),
                                       ARG(accept->y_slot),
                                       ARG(accept->with_pair),
                                       ARG(ql->pairs[which]),
                                       ARG(np),
                                       ARG(ql->partials),
                                       ARG(first)};
            status = set_args(s, k, args, N_ARGS(args));
        } else {
            const struct arg args[] = {ARG(q->vec[i]), ARG(sh->state[0]), ARG(pitch),
                                       ARG(count),     ARG(extra),        ARG(ql->pairs[which]),
                                       ARG(np),        ARG(ql->partials), ARG(first)};
            status = set_args(s, k, args, N_ARGS(args));
        }
        if (status == CLOPT_OK)
            status = launch(s, i, k, (sh->count + q->tile - 1) / q->tile,
                            "clEnqueueNDRangeKernel(qn dots)");
    }
    return status == CLOPT_OK && n_pairs ? clopt_qn_fold_partials(s, n_pairs) : status;
}

/* Reads n acc_t values back (blocking) as doubles. */
static int read_dots(struct clopt_solver *s, size_t n, double *out)
{
    struct clopt_qn *q = s->qn;
    double raw[QN_MAX_PAIRS];
    cl_int err = clEnqueueReadBuffer(s->ctx->queue, q->dots, CL_TRUE, 0, n * s->acc_size, raw, 0,
                                     NULL, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clEnqueueReadBuffer(qn dots)");
    for (size_t i = 0; i < n; ++i)
        out[i] = s->acc_size == sizeof(double) ? raw[i] : (double)((const float *)raw)[i];
    return CLOPT_OK;
}

int clopt_qn_dots(struct clopt_solver *s, size_t which, size_t n_pairs, double *dots)
{
    if (n_pairs == 0)
        return CLOPT_OK;
    int status = enqueue_dots(s, which, n_pairs, NULL);
    return status == CLOPT_OK ? read_dots(s, n_pairs, dots) : status;
}

int clopt_qn_accept_dots(struct clopt_solver *s, int with_pair, size_t s_slot, size_t y_slot,
                         size_t n_pairs, double *dots)
{
    const struct accept_args accept = {with_pair != 0, (cl_uint)s_slot, (cl_uint)y_slot};
    s->qn->theta_ready = 0; /* x moves */
    int status = enqueue_dots(s, 0, n_pairs, &accept);
    return status == CLOPT_OK && n_pairs ? read_dots(s, n_pairs, dots) : status;
}

int clopt_qn_eval(struct clopt_solver *s, double alpha, size_t which, size_t n_pairs, double *f,
                  double *g2, double *dots)
{
    /* The first trial of a line search is usually in theta already (clopt_qn_combine). */
    const int ready = s->qn->theta_ready && alpha == s->qn->theta_alpha;
    int status = isnan(alpha) || ready ? CLOPT_OK : enqueue_trial(s, alpha);
    /* External gradients: the caller's kernels, queued behind the trial, read it in theta
     * and write g and the loss there; the step kernel then copies g into state 0. */
    if (status == CLOPT_OK && s->external)
        status = clopt_external_gradient(s, 1);
    if (status == CLOPT_OK)
        status = clopt_enqueue_eval_store(s);
    if (status == CLOPT_OK)
        status = clopt_enqueue_reduce(s, 0, NULL, NULL);
    if (status == CLOPT_OK && n_pairs)
        status = enqueue_dots(s, which, n_pairs, NULL);
    /* With dot products, the loss is read without blocking and the dots' blocking read,
     * queued behind it on the in-order queue, is the trial's one host wait: two blocking
     * reads made each trial wait for the device twice. */
    double *pair = s->qn->loss_host;
    cl_event loss_read = NULL;
    if (status == CLOPT_OK)
        status = clopt_enqueue_read_result(s, pair, n_pairs ? &loss_read : NULL);
    if (status == CLOPT_OK && n_pairs)
        status = read_dots(s, n_pairs, dots);
    /* The read lands in the solver's memory, not this stack: on a failed path it may still
     * be in flight when this returns. */
    if (loss_read) {
        cl_int err = clWaitForEvents(1, &loss_read);
        clReleaseEvent(loss_read);
        if (err != CL_SUCCESS && status == CLOPT_OK)
            status = clopt_fail_cl(s->ctx, err, "clWaitForEvents(qn loss)");
    }
    if (status == CLOPT_OK) {
        double norm;
        clopt_read_pair(s, pair, f, &norm);
        *g2 = norm * norm;
    }
    return status;
}

int clopt_qn_accept(struct clopt_solver *s, int with_pair, size_t s_slot, size_t y_slot)
{
    struct clopt_qn *q = s->qn;
    const cl_uint x = QN_X(q->m), g = QN_G(q->m), si = (cl_uint)s_slot, yi = (cl_uint)y_slot,
                  wp = with_pair != 0;
    int status = CLOPT_OK;
    q->theta_ready = 0; /* x moves */
    for (size_t i = 0; i < s->n_shards && status == CLOPT_OK; ++i) {
        const struct shard *sh = &s->shards[i];
        const cl_ulong pitch = sh->count, count = sh->count;
        const struct arg args[] = {
            ARG(sh->theta), ARG(q->vec[i]), ARG(sh->state[0]), ARG(pitch), ARG(count),
            ARG(x),         ARG(g),         ARG(si),           ARG(yi),    ARG(wp)};
        status = set_args(s, q->k_accept, args, N_ARGS(args));
        if (status == CLOPT_OK)
            status =
                launch(s, i, q->k_accept, chunks(sh->count), "clEnqueueNDRangeKernel(qn accept)");
    }
    return status;
}

int clopt_qn_combine(struct clopt_solver *s, size_t n_terms, size_t out, double trial_alpha)
{
    struct clopt_qn *q = s->qn;
    /* The coefficients go as acc_t: float ones packed into the front of the same memory. */
    if (s->acc_size == sizeof(float)) {
        float packed[QN_MAX_TERMS];
        for (size_t k = 0; k < n_terms; ++k)
            packed[k] = (float)q->coef_host[k];
        memcpy(q->coef_host, packed, n_terms * sizeof(float));
    }
    int status = write_lists(s, 2, q->terms_host, n_terms * sizeof(cl_uint),
                             "clEnqueueWriteBuffer(qn combine)");
    if (status == CLOPT_OK)
        status = write_lists(s, 3, q->coef_host, n_terms * s->acc_size,
                             "clEnqueueWriteBuffer(qn combine)");
    const cl_uint extra = QN_EXTRA(q->m), nt = (cl_uint)n_terms, o = (cl_uint)out, x = QN_X(q->m),
                  with_trial = !isnan(trial_alpha);
    const union real_arg a = clopt_real_value(s, with_trial ? trial_alpha : 0.0);
    for (size_t i = 0; i < s->n_shards && status == CLOPT_OK; ++i) {
        const struct shard *sh = &s->shards[i];
        const struct qn_lane *ql = &q->lanes[sh->lane];
        const cl_ulong pitch = sh->count, count = sh->count;
        const struct arg args[] = {
            ARG(q->vec[i]), ARG(sh->state[0]), ARG(pitch),        ARG(count), ARG(extra),
            ARG(ql->terms), ARG(ql->coef),     ARG(nt),           ARG(o),     ARG(sh->theta),
            ARG(x),         ARG(with_trial),   {s->elem_size, &a}};
        status = set_args(s, q->k_combine, args, N_ARGS(args));
        if (status == CLOPT_OK)
            status =
                launch(s, i, q->k_combine, chunks(sh->count), "clEnqueueNDRangeKernel(qn combine)");
    }
    q->theta_ready = status == CLOPT_OK && with_trial;
    q->theta_alpha = trial_alpha;
    return status;
}

int clopt_qn_copy_x(struct clopt_solver *s, int to_theta)
{
    struct clopt_qn *q = s->qn;
    q->theta_ready = 0;
    for (size_t i = 0; i < s->n_shards; ++i) {
        const struct shard *sh = &s->shards[i];
        const size_t x_at = QN_X(q->m) * sh->count * s->elem_size, theta_at = clopt_theta_at(s, 0);
        const size_t bytes = sh->count * s->elem_size;
        cl_command_queue queue = s->lanes[sh->lane].queue;
        cl_int err = to_theta ? clEnqueueCopyBuffer(queue, q->vec[i], sh->theta, x_at, theta_at,
                                                    bytes, 0, NULL, NULL)
                              : clEnqueueCopyBuffer(queue, sh->theta, q->vec[i], theta_at, x_at,
                                                    bytes, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(qn x)");
    }
    return CLOPT_OK;
}
