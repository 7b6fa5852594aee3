/* Vector kernels of lbfgs and cg (host/qn/). Each shard keeps its vectors in one buffer,
 * `vec`, vector k at vec + k * pitch; `extra` is the trial gradient (the step kernel's state
 * 0), named by index `extra_index`. Dot products are summed per tile of CLOPT_QN_TILE
 * elements in element order, and the tiles' partial sums in tile order: tiles start at the
 * same global elements whatever the shard count (every shard but the last holds whole
 * tiles), so the results are bit-identical for one shard and many. */
#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
typedef double acc_t;
void clopt_acc_add(acc_t *s, acc_t *c, acc_t x);
#endif
/* Buffer position of element 0 in a stencil objective's theta (step.cl). */
#ifndef CLOPT_LEAD
#define CLOPT_LEAD 0
#endif
/* Dot products one launch may compute (5 per history pair and a few more). */
#ifndef CLOPT_QN_MAX_PAIRS
#define CLOPT_QN_MAX_PAIRS 330
#endif
/* Elements summed in registers between passes over the pair list, and per work-item of
 * the element-wise kernels: PoCL pays per work-group, so one work-item per element made a
 * three-vector update slower than the whole objective sweep (measured at n = 1e6). Blocks
 * of 256 rather than 64 elements (1 KB of each float vector, the 21 vectors of m = 10 in
 * L1) took lbfgs on ellipsoid n = 1e6 from 2.87 to 1.75 CPU seconds for 30 iterations:
 * longer runs of each vector for the prefetcher; 1024 gave no more. */
#define CLOPT_QN_BLOCK 256
/* Elements per run of the dot products and the combination (a multiple of the block; see
 * the two kernels). */
#ifndef CLOPT_QN_RUN
#define CLOPT_QN_RUN 2048
#endif
#ifndef CLOPT_QN_CRUN
#define CLOPT_QN_CRUN 1024
#endif
#define CLOPT_QN_CHUNK 4096
#define CLOPT_QN_LANES 8 /* the width of clopt_qn_acc8 below */

static inline __global real *clopt_qn_vec(__global real *vec, __global real *extra, ulong pitch,
                                          uint k, uint extra_index)
{
    return k == extra_index ? extra : vec + (ulong)k * pitch;
}

/* theta (with its halo layout) = x + alpha d: the line search's trial point. */
__kernel void clopt_qn_trial(__global real *theta, __global const real *vec, ulong pitch,
                             ulong count, uint x_index, uint d_index, real alpha)
{
    const ulong begin = get_global_id(0) * CLOPT_QN_CHUNK;
    const ulong end = min(begin + CLOPT_QN_CHUNK, count);
    __global const real *x = vec + (ulong)x_index * pitch, *d = vec + (ulong)d_index * pitch;
    __global real *out = theta + CLOPT_LEAD;
    /* clopt_qn_combine's with_trial writes the same expression. */
    for (ulong j = begin; j < end; ++j)
        out[j] = x[j] + alpha * d[j];
}

/* An accepted trial on elements [begin, end): s = theta - x and y = g_trial - g into slots
 * s_index and y_index when with_pair, then x = theta and g = g_trial. */
static inline void clopt_qn_accept_range(__global const real *theta, __global real *vec,
                                         __global const real *extra, ulong pitch, uint x_index,
                                         uint g_index, uint s_index, uint y_index, uint with_pair,
                                         ulong begin, ulong end)
{
    __global real *x = vec + (ulong)x_index * pitch, *g = vec + (ulong)g_index * pitch;
    __global real *s = vec + (ulong)s_index * pitch, *y = vec + (ulong)y_index * pitch;
    for (ulong j = begin; j < end; ++j) {
        const real x_new = theta[CLOPT_LEAD + j], g_new = extra[j];
        if (with_pair) {
            s[j] = x_new - x[j];
            y[j] = g_new - g[j];
        }
        x[j] = x_new;
        g[j] = g_new;
    }
}

/* clopt_qn_accept_range over the work-item's chunk (cg, and lbfgs before it holds pairs). */
__kernel void clopt_qn_accept(__global const real *theta, __global real *vec,
                              __global const real *extra, ulong pitch, ulong count, uint x_index,
                              uint g_index, uint s_index, uint y_index, uint with_pair)
{
    const ulong begin = get_global_id(0) * CLOPT_QN_CHUNK;
    clopt_qn_accept_range(theta, vec, extra, pitch, x_index, g_index, s_index, y_index, with_pair,
                          begin, min(begin + CLOPT_QN_CHUNK, count));
}

/* Vectors of CLOPT_QN_LANES accumulators and reals: explicit vector types, because PoCL's
 * compiler left the scalar lane loop unvectorised (the pass ran 3.5x slower per byte than
 * the step kernel; perf at n = 1e5 put 68 % of an lbfgs run in it). */
#if CLOPT_ACC_KAHAN
typedef float8 clopt_qn_acc8;
#define clopt_qn_convert_acc8 convert_float8
#else
typedef double8 clopt_qn_acc8;
#define clopt_qn_convert_acc8 convert_double8
#endif

/* The sum of lane l, 0 <= l < LANES, of u[j] * v[j] over the j = l mod LANES of [0, len):
 * whole blocks with vector loads, a partial block (the tile's last) element by element.
 * Both add the same products in the same order (a product is its own statement, so it is
 * never contracted into an fma with the add: the two paths give the same bits). */
static inline clopt_qn_acc8 clopt_qn_lane_sums(__global const real *u, __global const real *v,
                                               uint len)
{
    clopt_qn_acc8 lane = 0;
    if (len == CLOPT_QN_BLOCK) {
        for (uint j = 0; j < CLOPT_QN_BLOCK; j += CLOPT_QN_LANES) {
            const clopt_qn_acc8 prod =
                clopt_qn_convert_acc8(vload8(0, u + j)) * clopt_qn_convert_acc8(vload8(0, v + j));
            lane += prod;
        }
        return lane;
    }
    acc_t part[CLOPT_QN_LANES];
    for (uint l = 0; l < CLOPT_QN_LANES; ++l)
        part[l] = 0;
    for (uint j = 0; j < len; ++j) {
        const acc_t prod = (acc_t)u[j] * (acc_t)v[j];
        part[j % CLOPT_QN_LANES] += prod;
    }
    return vload8(0, part);
}

/* Pairs summed together over a whole block: each pair's lane vector is one chain of
 * additions (two AVX2 registers), so one pair at a time waited on the add latency (perf at
 * n = 1e5: the adds and loads of one pair took 43 % of an lbfgs run); four give the core
 * eight independent chains. */
#define CLOPT_QN_GROUP 4

/* The lane sums of four pairs over one whole block: the operations of clopt_qn_lane_sums on
 * each pair, interleaved (so each pair's bits are those of clopt_qn_lane_sums). */
static inline void clopt_qn_lane_sums4(__global const real *const *u, __global const real *const *v,
                                       ulong b, clopt_qn_acc8 *lane)
{
    clopt_qn_acc8 l0 = 0, l1 = 0, l2 = 0, l3 = 0;
    /* Not unrolled: with a tile of a few blocks (a constant) the compiler unrolled the
     * whole tile, and LLVM's SLP vectorizer then took minutes over the block (PoCL 3.1,
     * tile 1024). */
#pragma unroll 1
    for (uint j = 0; j < CLOPT_QN_BLOCK; j += CLOPT_QN_LANES) {
        const ulong at = b + j;
        const clopt_qn_acc8 p0 = clopt_qn_convert_acc8(vload8(0, u[0] + at)) *
                                 clopt_qn_convert_acc8(vload8(0, v[0] + at));
        const clopt_qn_acc8 p1 = clopt_qn_convert_acc8(vload8(0, u[1] + at)) *
                                 clopt_qn_convert_acc8(vload8(0, v[1] + at));
        const clopt_qn_acc8 p2 = clopt_qn_convert_acc8(vload8(0, u[2] + at)) *
                                 clopt_qn_convert_acc8(vload8(0, v[2] + at));
        const clopt_qn_acc8 p3 = clopt_qn_convert_acc8(vload8(0, u[3] + at)) *
                                 clopt_qn_convert_acc8(vload8(0, v[3] + at));
        l0 += p0;
        l1 += p1;
        l2 += p2;
        l3 += p3;
    }
    lane[0] = l0;
    lane[1] = l1;
    lane[2] = l2;
    lane[3] = l3;
}

/* Folds a block's lane sums, in lane order, into a pair's sum. */
static inline void clopt_qn_fold_lanes(acc_t *su, acc_t *co, clopt_qn_acc8 lanes)
{
    acc_t lane[CLOPT_QN_LANES];
    vstore8(lanes, 0, lane);
    for (uint l = 0; l < CLOPT_QN_LANES; ++l)
        clopt_acc_add(su, co, lane[l]);
}

/* The dot products of the listed pairs (a, b) over elements [r, r_end) of a tile, added
 * into sum and comp (clopt_qn_dots and clopt_qn_accept_dots below give each work-item one
 * tile, whose partials land in partials[(first_tile + t) * n_pairs + p]). A tile is taken
 * in runs of CLOPT_QN_RUN elements, each run pair by pair (CLOPT_QN_GROUP pairs at once): every
 * vector is read in runs of 8 KB (float) that the prefetchers follow, and a run of all the vectors
 * stays in L2 for the pairs that share them. Pair by pair over 256-element blocks (every vector
 * visited for 1 KB at a time, 21 to 43 streams at once) took 9 % more CPU time for lbfgs on
 * ellipsoid n = 1e6 (30 iterations, medians of 6 rounds); n = 1e5, which fits in L3, ran
 * the same. Converting each vector once per 64 elements into a private acc_t buffer (4x
 * fewer conversions) was 35 % slower at n = 1e5: short runs again. Each pair's sums keep
 * their order (lanes within a block, blocks in element order, lanes folded in lane order at
 * the end of each block), so the bits are those of the block-major loop. */
static inline void clopt_qn_dots_run(__global real *vec, __global real *extra, ulong pitch,
                                     uint extra_index, __global const uint *pairs, uint n_pairs,
                                     ulong r, ulong r_end, acc_t *sum, acc_t *comp)
{
    uint p = 0;
    /* Whole groups over the run's whole blocks; a run ends on a block unless it is the tile's
     * last, whose partial block goes pair by pair. */
    const ulong whole_end = r + (r_end - r) / CLOPT_QN_BLOCK * CLOPT_QN_BLOCK;
    for (; p + CLOPT_QN_GROUP <= n_pairs; p += CLOPT_QN_GROUP) {
        __global const real *u[CLOPT_QN_GROUP], *v[CLOPT_QN_GROUP];
        for (uint q = 0; q < CLOPT_QN_GROUP; ++q) {
            u[q] = clopt_qn_vec(vec, extra, pitch, pairs[2 * (p + q)], extra_index);
            v[q] = clopt_qn_vec(vec, extra, pitch, pairs[2 * (p + q) + 1], extra_index);
        }
        for (ulong b = r; b < whole_end; b += CLOPT_QN_BLOCK) {
            clopt_qn_acc8 lanes[CLOPT_QN_GROUP];
            clopt_qn_lane_sums4(u, v, b, lanes);
            for (uint q = 0; q < CLOPT_QN_GROUP; ++q)
                clopt_qn_fold_lanes(&sum[p + q], &comp[p + q], lanes[q]);
        }
        if (whole_end < r_end)
            for (uint q = 0; q < CLOPT_QN_GROUP; ++q)
                clopt_qn_fold_lanes(&sum[p + q], &comp[p + q],
                                    clopt_qn_lane_sums(u[q] + whole_end, v[q] + whole_end,
                                                       (uint)(r_end - whole_end)));
    }
    for (; p < n_pairs; ++p) {
        __global const real *u = clopt_qn_vec(vec, extra, pitch, pairs[2 * p], extra_index);
        __global const real *v = clopt_qn_vec(vec, extra, pitch, pairs[2 * p + 1], extra_index);
        acc_t su = sum[p], co = comp[p];
        for (ulong b = r; b < r_end; b += CLOPT_QN_BLOCK) {
            const uint len = (uint)min((ulong)CLOPT_QN_BLOCK, r_end - b);
            /* CLOPT_QN_LANES independent sums (lane l takes j = l mod LANES) folded in lane
             * order into the pair's sum at the end of the block: one chain of additions made
             * the pass latency-bound (measured at n = 1e6). */
            clopt_qn_fold_lanes(&su, &co, clopt_qn_lane_sums(u + b, v + b, len));
        }
        sum[p] = su;
        comp[p] = co;
    }
}

__kernel void clopt_qn_dots(__global real *vec, __global real *extra, ulong pitch, ulong count,
                            uint extra_index, __global const uint *pairs, uint n_pairs,
                            __global acc_t *partials, ulong first_tile)
{
    const ulong t = get_global_id(0);
    const ulong begin = t * CLOPT_QN_TILE;
    if (begin >= count)
        return;
    const ulong end = min(begin + CLOPT_QN_TILE, count);
    acc_t sum[CLOPT_QN_MAX_PAIRS], comp[CLOPT_QN_MAX_PAIRS];
    for (uint p = 0; p < n_pairs; ++p)
        sum[p] = comp[p] = 0;
    for (ulong r = begin; r < end; r += CLOPT_QN_RUN)
        clopt_qn_dots_run(vec, extra, pitch, extra_index, pairs, n_pairs, r,
                          min(r + CLOPT_QN_RUN, end), sum, comp);
    for (uint p = 0; p < n_pairs; ++p)
        partials[(first_tile + t) * n_pairs + p] = sum[p] - comp[p];
}

/* clopt_qn_accept and then clopt_qn_dots in one pass, run by run: each run of the new
 * vectors (s, y, g) is still in L1/L2 when its dot products read it. An accepted step of
 * lbfgs was a pass of its own over theta, the trial gradient, x and g, then a launch that
 * read s, y and g again; this is one launch. The accept writes are this work-item's own
 * elements, which its reads that follow see. */
__kernel void clopt_qn_accept_dots(__global const real *theta, __global real *vec,
                                   __global real *extra, ulong pitch, ulong count, uint extra_index,
                                   uint x_index, uint g_index, uint s_index, uint y_index,
                                   uint with_pair, __global const uint *pairs, uint n_pairs,
                                   __global acc_t *partials, ulong first_tile)
{
    const ulong t = get_global_id(0);
    const ulong begin = t * CLOPT_QN_TILE;
    if (begin >= count)
        return;
    const ulong end = min(begin + CLOPT_QN_TILE, count);
    acc_t sum[CLOPT_QN_MAX_PAIRS], comp[CLOPT_QN_MAX_PAIRS];
    for (uint p = 0; p < n_pairs; ++p)
        sum[p] = comp[p] = 0;
    for (ulong r = begin; r < end; r += CLOPT_QN_RUN) {
        const ulong r_end = min(r + CLOPT_QN_RUN, end);
        clopt_qn_accept_range(theta, vec, extra, pitch, x_index, g_index, s_index, y_index,
                              with_pair, r, r_end);
        clopt_qn_dots_run(vec, extra, pitch, extra_index, pairs, n_pairs, r, r_end, sum, comp);
    }
    for (uint p = 0; p < n_pairs; ++p)
        partials[(first_tile + t) * n_pairs + p] = sum[p] - comp[p];
}

/* out[p] = the tiles' partials of pair p, summed in tile order. */
__kernel void clopt_qn_dots_reduce(__global const acc_t *partials, ulong tiles, uint n_pairs,
                                   __global acc_t *out)
{
    const uint p = get_global_id(0);
    if (p >= n_pairs)
        return;
    acc_t sum = 0, comp = 0;
    for (ulong t = 0; t < tiles; ++t)
        clopt_acc_add(&sum, &comp, partials[t * n_pairs + p]);
    out[p] = sum - comp;
}

/* clopt_acc_add on CLOPT_QN_LANES elements at once (the same operations, element-wise). */
static inline void clopt_qn_acc_add8(clopt_qn_acc8 *s, clopt_qn_acc8 *c, clopt_qn_acc8 x)
{
#if CLOPT_ACC_KAHAN
    const clopt_qn_acc8 y = x - *c;
    const clopt_qn_acc8 t = *s + y;
    *c = (t - *s) - y;
    *s = t;
#else
    (void)c;
    *s += x;
#endif
}

/* Asks for the cache lines of the CLOPT_QN_CRUN elements from v (the next run of a term
 * while this one is summed). perf at n = 1e5 put two thirds of the combination's samples on
 * its term loads: the hardware prefetcher follows a stream only within a page and only a
 * little ahead, and each run switches between 21 streams. A prefetch never faults on a
 * CPU, so the last run may look past the buffer; clang's builtin because PoCL's OpenCL
 * prefetch() is a no-op; CPU devices only (as kernels/step.cl's clopt_prefetch_block). */
static inline void clopt_qn_prefetch_run(__global const real *v)
{
#if CLOPT_DEVICE_CPU && defined(__clang__)
    for (uint o = 0; o < CLOPT_QN_CRUN; o += 64 / sizeof(real))
        __builtin_prefetch(v + o);
#else
    (void)v;
#endif
}

/* vec[out_index] = sum_k coef[k] vec[terms[k]], summed in term order (in acc_t). The output
 * may be one of the terms: each element is read before it is written. The chunk is taken in
 * runs of CLOPT_QN_CRUN elements, term by term over the run (4 KB of each float vector, the
 * run's sums 8 KB in L1) rather than 256-element blocks that visit 21 vectors for 1 KB
 * each (perf put 76 % of the kernel's samples on the term loads). Whole
 * lanes use vector loads, the run's last few elements scalar ones; the products are
 * statements of their own in both paths, so neither contracts them into an fma and the two
 * give the same bits. With with_trial, theta = x + alpha d as well, clopt_qn_trial's
 * expression on the same values (the same bits): the line search's first trial, which is
 * accepted most of the time, then needs no pass of its own over x and d. */
__kernel void clopt_qn_combine(__global real *vec, __global real *extra, ulong pitch, ulong count,
                               uint extra_index, __global const uint *terms,
                               __global const acc_t *coef, uint n_terms, uint out_index,
                               __global real *theta, uint x_index, uint with_trial, real alpha)
{
    const ulong begin = get_global_id(0) * CLOPT_QN_CHUNK;
    const ulong end = min(begin + CLOPT_QN_CHUNK, count);
    __global real *out = vec + (ulong)out_index * pitch;
    __global const real *x = vec + (ulong)x_index * pitch;
    __global real *trial = theta + CLOPT_LEAD;
    clopt_qn_acc8 sum[CLOPT_QN_CRUN / CLOPT_QN_LANES], comp[CLOPT_QN_CRUN / CLOPT_QN_LANES];
    for (ulong b = begin; b < end; b += CLOPT_QN_CRUN) {
        const uint len = (uint)min((ulong)CLOPT_QN_CRUN, end - b);
        const uint whole = len / CLOPT_QN_LANES;
        for (uint e = 0; e < whole; ++e)
            sum[e] = comp[e] = 0;
        for (uint k = 0; k < n_terms; ++k) {
            __global const real *v = clopt_qn_vec(vec, extra, pitch, terms[k], extra_index) + b;
            const acc_t c = coef[k];
            clopt_qn_prefetch_run(v + CLOPT_QN_CRUN);
            for (uint e = 0; e < whole; ++e) {
                const clopt_qn_acc8 prod = c * clopt_qn_convert_acc8(vload8(e, v));
                clopt_qn_acc_add8(&sum[e], &comp[e], prod);
            }
        }
        for (uint e = 0; e < whole; ++e) {
#if CLOPT_DOUBLE
            const double8 d = convert_double8(sum[e] - comp[e]);
#else
            const float8 d = convert_float8(sum[e] - comp[e]);
#endif
            vstore8(d, e, out + b);
            if (with_trial)
                vstore8(vload8(e, x + b) + alpha * d, e, trial + b);
        }
        for (uint j = whole * CLOPT_QN_LANES; j < len; ++j) {
            acc_t su = 0, co = 0;
            for (uint k = 0; k < n_terms; ++k) {
                const acc_t prod =
                    coef[k] * (acc_t)clopt_qn_vec(vec, extra, pitch, terms[k], extra_index)[b + j];
                clopt_acc_add(&su, &co, prod);
            }
            const real d = (real)(su - co);
            out[b + j] = d;
            if (with_trial)
                trial[b + j] = x[b + j] + alpha * d;
        }
    }
}
