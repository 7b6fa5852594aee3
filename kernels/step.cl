/* The fused step driver: for each element a work-item owns, compute the objective's value
 * and gradient (never stored), apply the update rule in place, and accumulate f and g^2
 * in private registers; then emit one partial pair per work-item (no barrier: cheap on
 * CPU runtimes such as PoCL, which turn barriers into loops over work-items) or one per
 * work-group after a local tree (GPUs).
 *
 * Partial slots are numbered globally: every shard but the last holds a whole number of
 * tiles of CLOPT_WG * CLOPT_EPW elements, so slot p always covers the same elements
 * whatever the shard count, and the reduction sums them in slot order. That makes the
 * loss bit-identical for one shard and many. */
#ifndef CLOPT_WG
#define CLOPT_WG 64
#endif
#ifndef CLOPT_EPW
#define CLOPT_EPW 1024
#endif
#ifndef CLOPT_VW
#define CLOPT_VW 16
#endif
/* 1: each work-item owns a contiguous chunk (CPU); 2: strided across the group (GPU). */
#ifndef CLOPT_LAYOUT
#define CLOPT_LAYOUT 1
#endif
/* Ascend instead of descend (the update sees -g). */
#ifndef CLOPT_MAXIMIZE
#define CLOPT_MAXIMIZE 0
#endif
/* 0: one partial per work-item; 1: local tree, one partial per work-group. */
#ifndef CLOPT_GROUP_PARTIALS
#define CLOPT_GROUP_PARTIALS 0
#endif
/* Iterations per launch of clopt_step_fused (multi-step fusion). */
#ifndef CLOPT_FUSE
#define CLOPT_FUSE 1
#endif
/* 0: one work-group per tile; G > 0: G groups per compute unit stride over the tiles. */
#ifndef CLOPT_GPCU
#define CLOPT_GPCU 0
#endif
/* Software prefetch this many elements ahead of the block being processed (0: none). */
#ifndef CLOPT_PREFETCH
#define CLOPT_PREFETCH 0
#endif
/* 1 on CPU devices: the host sets it from CL_DEVICE_TYPE. */
#ifndef CLOPT_DEVICE_CPU
#define CLOPT_DEVICE_CPU 0
#endif
/* 1: let the compiler use 512-bit registers on AVX-512 CPUs (see CLOPT_KERNEL_TUNING). */
#ifndef CLOPT_SIMD512
#define CLOPT_SIMD512 0
#endif
/* Loss terms each lane sums in `real` before adding to its acc_t sum (power of two). */
#ifndef CLOPT_FBLOCK
#define CLOPT_FBLOCK 16
#endif

#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
typedef double acc_t;
#define CLOPT_ACC_KAHAN 0
void clopt_acc_add(acc_t *s, acc_t *c, acc_t x);
#define CLOPT_RESTRICT restrict
#endif
#ifndef CLOPT_UPDATE_NSTATE
#define CLOPT_UPDATE_NSTATE 0
void clopt_update(real *x, real g, real *s0, real *s1, real *s2, real h0, real h1, real h2, real h3,
                  real h4, real h5, real h6, real h7);
#endif
/* The objective's kind: separable clopt_fdf (the default, so a user file needs no marker),
 * clopt_fdf_data with one value of a data vector per element, or clopt_fdf_stencil. */
#if !defined(CLOPT_OBJECTIVE_SEPARABLE) && !defined(CLOPT_OBJECTIVE_DATA) &&                       \
    !defined(CLOPT_STENCIL_RADIUS) && !defined(CLOPT_GRID_RADIUS)
real clopt_fdf(real x, ulong i, real *g);
#endif
/* A grid objective (CLOPT_GRID_RADIUS R, 1..8) sees the box of radius R around a point
 * (common.cl). The box's far corner lies R planes, R rows and R points away in the flat
 * order (R times the sum of the axes' strides), and a shard may start inside a plane, so a
 * shard keeps that many elements on each side: CLOPT_HALO, with which the 1-D halo exchange
 * and ping-pong serve grids unchanged. */
#ifdef CLOPT_GRID_RADIUS
#if CLOPT_GRID_RADIUS < 1 || CLOPT_GRID_RADIUS > 8
#error "CLOPT_GRID_RADIUS must be a whole number from 1 to 8"
#endif
#ifndef CLOPT_GRID_AXES
#error "a grid objective needs the host's CLOPT_GRID_AXES and CLOPT_GRID_S0.. (options.shape)"
#endif
#ifdef CLOPT_OBJECTIVE_DATA
#define CLOPT_GRID_FDF(w, d, c, i, g) clopt_fdf_grid_data(w, d, c, i, g)
#else
real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g);
#define CLOPT_GRID_FDF(w, d, c, i, g) clopt_fdf_grid(w, c, i, g)
#endif
#endif
/* A stencil objective reads theta from `src`, which holds CLOPT_HALO neighbours on each
 * side of the shard (from the neighbouring shards, or unused ends), and writes `theta`
 * with the same layout: ping-pong buffers. */
#ifdef CLOPT_GRID_RADIUS
#define CLOPT_HALO                                                                                 \
    (CLOPT_GRID_RADIUS * (CLOPT_GRID_S1 * CLOPT_GRID_S2 + (CLOPT_GRID_AXES > 1 ? CLOPT_GRID_S2 : 0) + \
                          (CLOPT_GRID_AXES > 2 ? 1 : 0)))
#elif defined(CLOPT_STENCIL_RADIUS)
#define CLOPT_HALO CLOPT_STENCIL_RADIUS
#if CLOPT_HALO < 1 || CLOPT_HALO > 16
#error "CLOPT_STENCIL_RADIUS must be a whole number from 1 to 16"
#endif
#else
#define CLOPT_HALO 0
#endif
/* The host sizes the halos from the radius it read in the objective file. */
/* An objective may give, besides clopt_fdf, a vector form of it (it defines
 * CLOPT_OBJECTIVE_VECTOR, and clopt_vreal exists: vector width >= 2):
 *   clopt_vreal clopt_fdf_vec(clopt_vreal x, ulong first, ulong stride, clopt_vreal *g);
 * lane l is element first + l * stride. Each lane must do exactly clopt_fdf's operations in
 * the same order, so that the bits do not depend on the vector width or on the sweep that
 * calls it (the fused sweep and clopt check call clopt_fdf). Why: the separable sweep below
 * hands the lanes to PoCL's SLP vectoriser as unrolled scalar calls, and it leaves a long
 * chain per element scalar (a polynomial exp2, a library cospi): ellipsoid and rastrigin
 * ran at 5.3 and 10.2 instructions per element against sphere's 1.1 (callgrind, PoCL 3.1
 * haswell). Written on vector types, they need no vectoriser. */
#if defined(CLOPT_OBJECTIVE_VECTOR) && CLOPT_HAS_VREAL && CLOPT_HALO == 0 &&                      \
    !defined(CLOPT_OBJECTIVE_DATA)
#define CLOPT_SEPARABLE_VECTOR 1
#else
#define CLOPT_SEPARABLE_VECTOR 0
#endif

#if defined(CLOPT_HOST_HALO) && CLOPT_HOST_HALO != CLOPT_HALO
#error "CLOPT_STENCIL_RADIUS differs from the radius the host read from the objective file"
#endif

/* The sweep is called twice (with and without bounds checks) and must be inlined into
 * each kernel, or `full` stays a run-time value and the hot loop keeps its checks (seen
 * on PoCL: half the bandwidth). */
#define CLOPT_INLINE static inline __attribute__((always_inline))

/* Loops over the fused iterations: unrolled on GPUs, so that acc[s] and iteration s's
 * hyper-parameters have indices known at compile time and stay in registers (a private
 * array indexed at run time goes to scratch memory: the fused kernel had a 512-byte local
 * frame in PTX for sm_80, fuse 8, compiled offline with clang 15); left alone on CPUs,
 * where FUSE copies of the block sweep only lengthen the build (measured PoCL speed and
 * bits unchanged). */
#if CLOPT_DEVICE_CPU
#define CLOPT_FUSE_LOOP
#else
#define CLOPT_FUSE_LOOP _Pragma("unroll")
#endif

#if CLOPT_EPW % CLOPT_VW != 0
#error "CLOPT_EPW must be a multiple of CLOPT_VW"
#endif

/* Per lane: f and g^2 sums in acc_t, with compensation terms when acc_t is float. */
struct clopt_lanes {
    acc_t f[CLOPT_VW], fc[CLOPT_VW], g2[CLOPT_VW], g2c[CLOPT_VW];
};

/* f and g of one element: the objective sees x (separable), x and its data value, or the
 * window of its neighbours (stencil). */
#ifdef CLOPT_GRID_RADIUS
#ifdef CLOPT_OBJECTIVE_DATA
#define CLOPT_GRID_DATA(l) d[l]
#else
#define CLOPT_GRID_DATA(l) (real)0
#endif
#define CLOPT_OBJECTIVE_AT(l, index)                                                               \
    clopt_grid_fdf(src, base + (ulong)(k + l) * stride, index, in_range[l], CLOPT_GRID_DATA(l),    \
                   &g[l])
#elif CLOPT_HALO > 0
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf_stencil(win[l], index, n_total, &g[l])
#elif defined(CLOPT_OBJECTIVE_DATA)
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf_data(x[l], d[l], index, &g[l])
#else
#define CLOPT_OBJECTIVE_AT(l, index) clopt_fdf(x[l], index, &g[l])
#endif

#ifdef CLOPT_GRID_RADIUS
/* f and g of grid point i (element j of the shard): its box of neighbours is gathered here,
 * one point at a time, as (2R+1)^3 values per lane would not fit in registers; neighbours
 * outside the grid are 0, and c holds the point's coordinates. */
CLOPT_INLINE real clopt_grid_fdf(__global const real *src, ulong j, ulong i, bool in_range, real d,
                                 real *g)
{
    ulong c[CLOPT_GRID_AXES];
    long stride[CLOPT_GRID_AXES];
    ulong rest = i;
    long st = 1;
    for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
        c[k] = rest % CLOPT_GRID_SHAPE(k);
        rest /= CLOPT_GRID_SHAPE(k);
        stride[k] = st;
        st *= (long)CLOPT_GRID_SHAPE(k);
    }
    real w[CLOPT_GRID_WINDOW];
    const long at = (long)(CLOPT_HALO + j);
    for (uint m = 0; m < CLOPT_GRID_WINDOW; ++m) {
        /* m in base 2R+1, one digit per axis, the last axis fastest. */
        uint digits = m;
        long pos = at;
        bool inside = in_range;
        for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
            const long off = (long)(digits % CLOPT_GRID_W) - CLOPT_GRID_RADIUS;
            digits /= CLOPT_GRID_W;
            const long ck = (long)c[k] + off;
            inside = inside && ck >= 0 && ck < (long)CLOPT_GRID_SHAPE(k);
            pos += off * stride[k];
        }
        w[m] = inside ? src[pos] : 0;
    }
    (void)d;
    return CLOPT_GRID_FDF(w, d, c, i, g);
}
#endif

#if CLOPT_SEPARABLE_VECTOR
/* f and g of the lanes x[0..CLOPT_VW-1], elements first + l * stride, in one call of the
 * objective's vector form. */
CLOPT_INLINE void clopt_lanes_fdf_vec(const real *x, ulong first, ulong stride, real *f, real *g)
{
    union clopt_vlanes xv, fv, gv;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        xv.s[l] = x[l];
    fv.v = clopt_fdf_vec(xv.v, first, stride, &gv.v);
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l) {
        f[l] = fv.s[l];
        g[l] = gv.s[l];
    }
}
#endif

/* Applies the update to one element held in registers and its optimizer state. */
CLOPT_INLINE void clopt_element_update(real *x, real *a, real *b, real *c, real g, real h0, real h1,
                                       real h2, real h3, real h4, real h5, real h6, real h7,
                                       real gscale)
{
    /* The update sees the clipped (and, to maximise, negated) gradient; the loss partials
     * keep the objective's own. */
    real step_g = g * gscale;
#ifdef CLOPT_CLIP_VALUE
    step_g = clamp(step_g, (real)-CLOPT_CLIP_VALUE, (real)CLOPT_CLIP_VALUE);
#endif
#if CLOPT_MAXIMIZE
    step_g = -step_g;
#endif
    clopt_update(x, step_g, a, b, c, h0, h1, h2, h3, h4, h5, h6, h7);
}

/* Elements of one block: each lane sums CLOPT_FBLOCK terms in `real` before adding them to
 * its acc_t sum. Converting every term to double costs as many instructions as the whole
 * update on a CPU, and the instruction count limits how many cache misses a core keeps in
 * flight (measured on PoCL: 20 GB/s per-term, 27 GB/s with blocks of 16, 33 GB/s without
 * any loss). FBLOCK = 1 adds every term straight to acc_t. */
#define CLOPT_BLOCK (CLOPT_VW * CLOPT_FBLOCK < CLOPT_EPW ? CLOPT_VW * CLOPT_FBLOCK : CLOPT_EPW)

/* One element's loss terms, f and g^2, for lane l: into the lane's block sums, or with
 * CLOPT_FBLOCK = 1 straight into its acc_t sums. The single and the fused sweep both sum
 * through these two, which is what keeps their losses bit for bit the same. */
CLOPT_INLINE void clopt_lane_add(struct clopt_lanes *acc, real *block_f, real *block_g2, uint l,
                                 real f, real g)
{
#if CLOPT_FBLOCK > 1
    (void)acc;
    block_f[l] += f;
    block_g2[l] += g * g;
#else
    (void)block_f, (void)block_g2;
    clopt_acc_add(&acc->f[l], &acc->fc[l], (acc_t)f);
    clopt_acc_add(&acc->g2[l], &acc->g2c[l], (acc_t)g * (acc_t)g);
#endif
}

/* A finished block's lane sums into the acc_t sums. */
CLOPT_INLINE void clopt_block_fold(struct clopt_lanes *acc, const real *block_f,
                                   const real *block_g2)
{
#if CLOPT_FBLOCK > 1
    for (uint l = 0; l < CLOPT_VW; ++l) {
        clopt_acc_add(&acc->f[l], &acc->fc[l], (acc_t)block_f[l]);
        clopt_acc_add(&acc->g2[l], &acc->g2c[l], (acc_t)block_g2[l]);
    }
#else
    (void)acc, (void)block_f, (void)block_g2;
#endif
}

/* Asks for the cache lines of the block CLOPT_PREFETCH elements ahead of element j of the
 * work-item's contiguous chunk. PoCL measured: the fused step (8 iterations per block)
 * otherwise waits for memory at every block, since the hardware prefetcher runs only a
 * little ahead of the last load and stops at page boundaries; the single step gains too.
 * A prefetch never faults on a CPU, so the last blocks may look past the buffer; clang's
 * builtin because PoCL's OpenCL prefetch() is a no-op. `theta` is the vector read (a
 * stencil's `src`). Contiguous layout only: the strided one is the GPU's, whose memory
 * system hides latency with threads. CPU devices only (CLOPT_DEVICE_CPU, set by the host
 * from the device type): __clang__ alone also admits GPU and SPIR-V compilers, some of
 * which are reported to abort on the builtin. */
CLOPT_INLINE void clopt_prefetch_block(__global const real *theta, __global const real *s0,
                                       __global const real *s1, __global const real *s2,
                                       __global const real *data, ulong j, const bool with_state)
{
#if CLOPT_PREFETCH > 0 && CLOPT_LAYOUT == 1 && CLOPT_DEVICE_CPU && defined(__clang__)
    for (uint k = 0; k < CLOPT_BLOCK; k += 64 / sizeof(real)) {
        __builtin_prefetch(theta + j + CLOPT_PREFETCH + k);
        if (CLOPT_UPDATE_NSTATE > 0 && with_state)
            __builtin_prefetch(s0 + j + CLOPT_PREFETCH + k);
        if (CLOPT_UPDATE_NSTATE > 1 && with_state)
            __builtin_prefetch(s1 + j + CLOPT_PREFETCH + k);
        if (CLOPT_UPDATE_NSTATE > 2 && with_state)
            __builtin_prefetch(s2 + j + CLOPT_PREFETCH + k);
#ifdef CLOPT_OBJECTIVE_DATA
        __builtin_prefetch(data + j + CLOPT_PREFETCH + k);
#endif
    }
#else
    (void)theta, (void)s0, (void)s1, (void)s2, (void)data, (void)j, (void)with_state;
#endif
}

/* Visits the work-item's CLOPT_EPW elements base + k * stride in blocks, lane l taking
 * k = l (mod CLOPT_VW). `full` (a constant after inlining) drops the bounds checks. */
CLOPT_INLINE void clopt_sweep(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                              __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                              __global const real *CLOPT_RESTRICT src,
                              __global const real *CLOPT_RESTRICT data, ulong n_shard, ulong offset,
                              ulong n_total, ulong base, ulong stride, struct clopt_lanes *acc,
                              real h0, real h1, real h2, real h3, real h4, real h5, real h6,
                              real h7, real gscale, const bool full, const bool with_loss,
                              const bool with_update)
{
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        /* A block whose first element lies past the shard has no element in it (j grows
         * with k in both layouts): skip its loads and arithmetic. Sweeping the empty slots
         * of the last tile was the fixed cost of every small problem, measured with
         * callgrind at n = 1e3 (one tile of 65536 slots): 0.53 M instructions per sphere
         * iteration and 1.5 M per laplacian one. Its loss terms are all zero: folding them
         * leaves a double sum unchanged, but a Kahan sum applies its compensation, so it
         * still folds them there to keep the bits. */
        if (!full && base + (ulong)b * stride >= n_shard) {
            if (with_loss && CLOPT_ACC_KAHAN)
                clopt_block_fold(acc, block_f, block_g2);
            continue;
        }
        if (full)
            clopt_prefetch_block(CLOPT_HALO > 0 ? src : theta, s0, s1, s2, data, base + b,
                                 with_update);
            /* The lanes unroll into one vector operation each. Vectorising the loops as well
             * would treat the lanes as an interleaved access group and drown them in shuffles
             * (seen on PoCL); when this loop is unrolled away, the outer one would be. */
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = b; k < b + CLOPT_BLOCK; k += CLOPT_VW) {
            /* All loads of a lane group, then the arithmetic, then all stores: in this
             * order the compiler needs no proof that theta and the state buffers do not
             * alias to turn each phase into vector operations (PoCL drops `restrict`, and
             * element-by-element order left every optimizer with state scalar). */
            real x[CLOPT_VW], sa[CLOPT_VW], sb[CLOPT_VW], sc[CLOPT_VW], f[CLOPT_VW], g[CLOPT_VW];
            bool in_range[CLOPT_VW];
#if CLOPT_HALO > 0 && !defined(CLOPT_GRID_RADIUS)
            real win[CLOPT_VW][2 * CLOPT_HALO + 1];
#endif
#ifdef CLOPT_OBJECTIVE_DATA
            real d[CLOPT_VW];
#endif
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                in_range[l] = full || j < n_shard;
#ifdef CLOPT_GRID_RADIUS
                x[l] = in_range[l] ? src[CLOPT_HALO + j] : 0;
#elif CLOPT_HALO > 0
                /* src[j + r] is theta_{offset + j + r - CLOPT_HALO}. The unrolled copies let
                 * the windows live in registers. */
#pragma unroll
                for (uint r = 0; r <= 2 * CLOPT_HALO; ++r)
                    win[l][r] = in_range[l] ? src[j + r] : 0;
                x[l] = win[l][CLOPT_HALO];
#else
                (void)src;
                x[l] = in_range[l] ? theta[j] : 0;
#endif
#ifdef CLOPT_OBJECTIVE_DATA
                d[l] = in_range[l] ? data[j] : 0;
#else
                (void)data;
#endif
                sa[l] = CLOPT_UPDATE_NSTATE > 0 && with_update && in_range[l] ? s0[j] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 && with_update && in_range[l] ? s1[j] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 && with_update && in_range[l] ? s2[j] : 0;
            }
            /* A grid point's gather and objective are long: unrolled over the lanes, they
             * made PoCL's build of the program take a minute (tv_denoise, 3-D). */
#if CLOPT_SEPARABLE_VECTOR
            clopt_lanes_fdf_vec(x, offset + base + (ulong)k * stride, stride, f, g);
#else
#ifdef CLOPT_GRID_RADIUS
#pragma nounroll
#else
#pragma unroll
#endif
            for (uint l = 0; l < CLOPT_VW; ++l)
                f[l] = CLOPT_OBJECTIVE_AT(l, offset + base + (ulong)(k + l) * stride);
#endif
            if (with_update) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], h0, h1, h2, h3, h4,
                                         h5, h6, h7, gscale);
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                if (!in_range[l])
                    continue;
                if (with_update) {
                    theta[CLOPT_HALO + j] = x[l];
                    if (CLOPT_UPDATE_NSTATE > 0)
                        s0[j] = sa[l];
                    if (CLOPT_UPDATE_NSTATE > 1)
                        s1[j] = sb[l];
                    if (CLOPT_UPDATE_NSTATE > 2)
                        s2[j] = sc[l];
                }
                if (with_loss)
                    clopt_lane_add(acc, block_f, block_g2, l, f[l], g[l]);
            }
        }
        if (with_loss)
            clopt_block_fold(acc, block_f, block_g2);
    }
}

/* 1-D stencils, a work-item's chunk away from both ends of theta (contiguous layout, the
 * CPUs' default): the same arithmetic and lane sums as clopt_sweep, vectorised. Each
 * offset of the window is one vector load of the lanes' neighbours (as scalar loads, the
 * lanes share them and the vectoriser gathered one offset element by element), and no
 * lane tests its index: the compiler is told the chunk lies inside, so the objective's
 * tests for the ends of theta fold away (they were 64-bit compares and selects per lane:
 * callgrind, laplacian, 14 instructions per element against sphere's 1.7). Chunks that
 * touch an end go through clopt_sweep. */
#if CLOPT_HALO > 0 && !defined(CLOPT_GRID_RADIUS) && CLOPT_LAYOUT == 1 && CLOPT_VW >= 2
#define CLOPT_STENCIL_STREAM 1
#else
#define CLOPT_STENCIL_STREAM 0
#endif
/* Grids: the same for points whose box lies inside the grid (clopt_sweep_grid below), when
 * the box is small enough for every lane's copy to live in registers. */
#ifndef CLOPT_GRID_VEC_WINDOW
#define CLOPT_GRID_VEC_WINDOW 27
#endif
#if defined(CLOPT_GRID_RADIUS) && CLOPT_LAYOUT == 1 && CLOPT_VW >= 2
#if CLOPT_GRID_WINDOW <= CLOPT_GRID_VEC_WINDOW
#define CLOPT_GRID_STREAM 1
#endif
#endif
#ifndef CLOPT_GRID_STREAM
#define CLOPT_GRID_STREAM 0
#endif

#if CLOPT_STENCIL_STREAM || CLOPT_GRID_STREAM
/* clopt_vreal and union clopt_vlanes (the lanes of one vector, as scalars for the
 * objective) come from common.cl. */
#define CLOPT_VLOAD CLOPT_CAT(vload, CLOPT_VW)
/* Not on oclgrind (CLOPT_NO_ASSUME, set by the host), whose interpreter cannot run the
 * llvm.assume calls clang emits for it. */
#if defined(__clang__) && !defined(CLOPT_NO_ASSUME)
#define CLOPT_ASSUME(c) __builtin_assume(c)
#else
#define CLOPT_ASSUME(c)
#endif
#endif

#if CLOPT_STENCIL_STREAM
/* Whether the chunk of CLOPT_EPW elements from theta index `first` keeps every window
 * inside theta: the path without tests for the ends. */
CLOPT_INLINE bool clopt_stencil_inside(ulong first, ulong n_total)
{
    return first >= CLOPT_HALO && first + CLOPT_EPW + CLOPT_HALO <= n_total;
}

CLOPT_INLINE void clopt_sweep_stencil(__global real *CLOPT_RESTRICT theta,
                                      __global real *CLOPT_RESTRICT s0,
                                      __global real *CLOPT_RESTRICT s1,
                                      __global real *CLOPT_RESTRICT s2,
                                      __global const real *CLOPT_RESTRICT src, ulong offset,
                                      ulong n_total, ulong base, struct clopt_lanes *acc, real h0,
                                      real h1, real h2, real h3, real h4, real h5, real h6, real h7,
                                      real gscale, const bool with_loss, const bool with_update)
{
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        clopt_prefetch_block(src, s0, s1, s2, src, base + b, with_update);
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = b; k < b + CLOPT_BLOCK; k += CLOPT_VW) {
            const ulong j = base + k;
            real x[CLOPT_VW], sa[CLOPT_VW], sb[CLOPT_VW], sc[CLOPT_VW], f[CLOPT_VW], g[CLOPT_VW];
            real win[CLOPT_VW][2 * CLOPT_HALO + 1];
            /* src[j + r] is theta_{offset + j + r - CLOPT_HALO}. */
#pragma unroll
            for (uint r = 0; r <= 2 * CLOPT_HALO; ++r) {
                union clopt_vlanes u;
                u.v = CLOPT_VLOAD(0, src + j + r);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    win[l][r] = u.s[l];
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                x[l] = win[l][CLOPT_HALO];
                sa[l] = CLOPT_UPDATE_NSTATE > 0 && with_update ? s0[j + l] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 && with_update ? s1[j + l] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 && with_update ? s2[j + l] : 0;
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong index = offset + j + l;
                CLOPT_ASSUME(index >= CLOPT_HALO);
                CLOPT_ASSUME(index + CLOPT_HALO < n_total);
                f[l] = clopt_fdf_stencil(win[l], index, n_total, &g[l]);
            }
            if (with_update) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], h0, h1, h2, h3, h4,
                                         h5, h6, h7, gscale);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l) {
                    theta[CLOPT_HALO + j + l] = x[l];
                    if (CLOPT_UPDATE_NSTATE > 0)
                        s0[j + l] = sa[l];
                    if (CLOPT_UPDATE_NSTATE > 1)
                        s1[j + l] = sb[l];
                    if (CLOPT_UPDATE_NSTATE > 2)
                        s2[j + l] = sc[l];
                }
            }
            if (with_loss) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_lane_add(acc, block_f, block_g2, l, f[l], g[l]);
            }
        }
        if (with_loss)
            clopt_block_fold(acc, block_f, block_g2);
    }
}
#endif

#if CLOPT_GRID_STREAM
/* Grids, a work-item's whole chunk (contiguous layout): as clopt_sweep_stencil for each group
 * of CLOPT_VW points along the last axis whose boxes all lie inside the grid. Box offset m is
 * one vector load at a constant distance (a shifted load along the last axis, +-stride along
 * the others) in place of CLOPT_VW gathers of (2R+1)^axes checked scalar loads each, and the
 * compiler is told the coordinates are inside, so the objective's face tests fold away. A
 * group that touches a face takes clopt_grid_fdf lane by lane; both give each point the same
 * window, so f, g and the lane sums are the bits of clopt_sweep. */

/* Elements between neighbours along axis k: the product of the later axes' lengths. */
#define CLOPT_GRID_STRIDE(k)                                                                       \
    ((long)((k) + 1 < CLOPT_GRID_AXES ? CLOPT_GRID_SHAPE((k) + 1) : 1UL) *                         \
     (long)((k) + 2 < CLOPT_GRID_AXES ? CLOPT_GRID_SHAPE((k) + 2) : 1UL))

/* The farthest box offset from a point, in elements: R steps along every axis. */
#define CLOPT_GRID_REACH                                                                           \
    (CLOPT_GRID_RADIUS *                                                                           \
     (CLOPT_GRID_STRIDE(0) + (CLOPT_GRID_AXES > 1 ? CLOPT_GRID_STRIDE(1) : 0) +                    \
      (CLOPT_GRID_AXES > 2 ? CLOPT_GRID_STRIDE(2) : 0)))

/* Coordinates of grid point i (shard element j), and whether the boxes of i .. i +
 * CLOPT_VW - 1 all lie inside the grid (then those points share every coordinate but the
 * last) and inside the shard's src buffer: a shard may start or end inside a plane, and its
 * halos (R planes) then miss the far corners of the boxes next to its ends. */
CLOPT_INLINE bool clopt_grid_group_inside(ulong i, ulong j, ulong n_shard, ulong *c)
{
    if (j + CLOPT_HALO < CLOPT_GRID_REACH || j + CLOPT_VW + CLOPT_GRID_REACH > n_shard + CLOPT_HALO)
        return false;
    ulong rest = i;
    for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
        c[k] = rest % CLOPT_GRID_SHAPE(k);
        rest /= CLOPT_GRID_SHAPE(k);
    }
    bool inside = c[CLOPT_GRID_AXES - 1] >= CLOPT_GRID_RADIUS &&
                  c[CLOPT_GRID_AXES - 1] + CLOPT_VW + CLOPT_GRID_RADIUS <=
                      CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1);
    for (int k = 0; k + 1 < CLOPT_GRID_AXES; ++k)
        inside =
            inside && c[k] >= CLOPT_GRID_RADIUS && c[k] + CLOPT_GRID_RADIUS < CLOPT_GRID_SHAPE(k);
    return inside;
}

/* f and g of the CLOPT_VW points from shard element j (grid point i, coordinates c), all of
 * whose boxes lie inside the grid. */
CLOPT_INLINE void clopt_grid_group_fdf(__global const real *CLOPT_RESTRICT src, ulong j, ulong i,
                                       const ulong *c0, const real *d, real *f, real *g)
{
    real win[CLOPT_VW][CLOPT_GRID_WINDOW];
    __global const real *at = src + CLOPT_HALO + j;
#pragma unroll
    for (uint m = 0; m < CLOPT_GRID_WINDOW; ++m) {
        /* m in base 2R+1, one digit per axis, the last axis fastest (as clopt_grid_fdf). */
        uint digits = m;
        long off = 0;
#pragma unroll
        for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
            off += ((long)(digits % CLOPT_GRID_W) - CLOPT_GRID_RADIUS) * CLOPT_GRID_STRIDE(k);
            digits /= CLOPT_GRID_W;
        }
        union clopt_vlanes u;
        u.v = CLOPT_VLOAD(0, at + off);
#pragma unroll
        for (uint l = 0; l < CLOPT_VW; ++l)
            win[l][m] = u.s[l];
    }
    (void)d;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l) {
        ulong c[CLOPT_GRID_AXES];
#pragma unroll
        for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
            c[k] = c0[k] + (k == CLOPT_GRID_AXES - 1 ? l : 0);
            CLOPT_ASSUME(c[k] >= CLOPT_GRID_RADIUS);
            CLOPT_ASSUME(c[k] + CLOPT_GRID_RADIUS < CLOPT_GRID_SHAPE(k));
        }
        f[l] = CLOPT_GRID_FDF(win[l], CLOPT_GRID_DATA(l), c, i + l, &g[l]);
    }
}

CLOPT_INLINE void
clopt_sweep_grid(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                 __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                 __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,
                 ulong n_shard, ulong offset, ulong base, struct clopt_lanes *acc, real h0, real h1,
                 real h2, real h3, real h4, real h5, real h6, real h7, real gscale,
                 const bool with_loss, const bool with_update)
{
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        clopt_prefetch_block(src, s0, s1, s2, data, base + b, with_update);
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = b; k < b + CLOPT_BLOCK; k += CLOPT_VW) {
            const ulong j = base + k;
            real x[CLOPT_VW], sa[CLOPT_VW], sb[CLOPT_VW], sc[CLOPT_VW], f[CLOPT_VW], g[CLOPT_VW];
#ifdef CLOPT_OBJECTIVE_DATA
            real d[CLOPT_VW];
#else
            const real *d = 0;
            (void)data;
#endif
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                x[l] = src[CLOPT_HALO + j + l];
#ifdef CLOPT_OBJECTIVE_DATA
                d[l] = data[j + l];
#endif
                sa[l] = CLOPT_UPDATE_NSTATE > 0 && with_update ? s0[j + l] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 && with_update ? s1[j + l] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 && with_update ? s2[j + l] : 0;
            }
            ulong c0[CLOPT_GRID_AXES];
            if (clopt_grid_group_inside(offset + j, j, n_shard, c0)) {
                clopt_grid_group_fdf(src, j, offset + j, c0, d, f, g);
            } else {
                /* Long and rare (faces): not unrolled, as in clopt_sweep. */
#pragma nounroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    f[l] =
                        clopt_grid_fdf(src, j + l, offset + j + l, true, CLOPT_GRID_DATA(l), &g[l]);
            }
            if (with_update) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], h0, h1, h2, h3, h4,
                                         h5, h6, h7, gscale);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l) {
                    theta[CLOPT_HALO + j + l] = x[l];
                    if (CLOPT_UPDATE_NSTATE > 0)
                        s0[j + l] = sa[l];
                    if (CLOPT_UPDATE_NSTATE > 1)
                        s1[j + l] = sb[l];
                    if (CLOPT_UPDATE_NSTATE > 2)
                        s2[j + l] = sc[l];
                }
            }
            if (with_loss) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_lane_add(acc, block_f, block_g2, l, f[l], g[l]);
            }
        }
        if (with_loss)
            clopt_block_fold(acc, block_f, block_g2);
    }
}
#endif

/* Multi-step fusion: `steps` iterations on each element between one load and one store.
 * The work-item's elements go block by block into private arrays; every iteration then
 * sweeps the block in the order of a single step, lane l summing the loss terms of the
 * elements k = l (mod CLOPT_VW), so each iteration's arithmetic and summation order are
 * exactly those of clopt_sweep: K fused steps give the bits of K launches. (Keeping all K
 * iterations' lane sums live at once instead spilled registers and left PoCL's code half
 * scalar.) Iteration s uses hyp[8 s .. 8 s + 7] and adds its loss terms to acc[s]. */
#if CLOPT_HALO == 0
#ifdef CLOPT_OBJECTIVE_DATA
#define CLOPT_DATA_BLOCK d
#else
#define CLOPT_DATA_BLOCK 0
#endif

/* Two iterations per sweep where the update has no state: measured on PoCL (512-bit,
 * n = 1e8, fuse 8, alternating runs) GD gained 10 %; momentum and Nesterov, whose update
 * already gives each sweep enough independent work, lost 5-8 %; Adam did not move. */
#ifndef CLOPT_FUSE_PAIRS
#define CLOPT_FUSE_PAIRS (CLOPT_UPDATE_NSTATE == 0)
#endif

/* One element group's iteration inside a fused pass: loss terms (when wanted) into the
 * iteration's block sums, then the update, as clopt_sweep does it. */
CLOPT_INLINE void clopt_fused_group(real *x, real *sa, real *sb, real *sc, const real *d,
                                    ulong n_shard, ulong offset, ulong base, ulong stride, uint b,
                                    uint k, struct clopt_lanes *acc, real *block_f, real *block_g2,
                                    __constant real *h, real gscale, const bool full,
                                    const bool with_loss)
{
    (void)d;
    real f[CLOPT_VW], g[CLOPT_VW];
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l) {
        const ulong index = offset + base + (ulong)(b + k + l) * stride;
#ifdef CLOPT_OBJECTIVE_DATA
        f[l] = clopt_fdf_data(x[k + l], d[k + l], index, &g[l]);
#else
        f[l] = clopt_fdf(x[k + l], index, &g[l]);
#endif
    }
    if (with_loss) {
#pragma unroll
        for (uint l = 0; l < CLOPT_VW; ++l) {
            const bool in_range = full || base + (ulong)(b + k + l) * stride < n_shard;
            if (in_range)
                clopt_lane_add(acc, block_f, block_g2, l, f[l], g[l]);
        }
    }
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        clopt_element_update(&x[k + l], &sa[k + l], &sb[k + l], &sc[k + l], g[l], h[0], h[1], h[2],
                             h[3], h[4], h[5], h[6], h[7], gscale);
}

/* One sweep over a block held in private arrays doing iteration s (acc[0], h[0..7]) and,
 * with `two`, iteration s + 1 (acc[1], h[8..15]) right after it on each element group.
 * Each iteration's lane sums stay in the order of clopt_sweep; two iterations per sweep
 * give each lane two independent chains of additions where one iteration per sweep was
 * bound by the latency of its one chain (PoCL, 512-bit: the block's 16 groups add into
 * one register per sum). */
CLOPT_INLINE void clopt_fused_pass(real *x, real *sa, real *sb, real *sc, const real *d,
                                   ulong n_shard, ulong offset, ulong base, ulong stride, uint b,
                                   struct clopt_lanes *acc, __constant real *h, real gscale,
                                   const bool full, const bool loss0, const bool two,
                                   const bool loss1)
{
    real block_f[2][CLOPT_VW], block_g2[2][CLOPT_VW];
    for (uint l = 0; l < CLOPT_VW; ++l) {
        block_f[0][l] = block_f[1][l] = 0;
        block_g2[0][l] = block_g2[1][l] = 0;
    }
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint k = 0; k < CLOPT_BLOCK; k += CLOPT_VW) {
        clopt_fused_group(x, sa, sb, sc, d, n_shard, offset, base, stride, b, k, &acc[0],
                          block_f[0], block_g2[0], h, gscale, full, loss0);
        if (two)
            clopt_fused_group(x, sa, sb, sc, d, n_shard, offset, base, stride, b, k, &acc[1],
                              block_f[1], block_g2[1], h + 8, gscale, full, loss1);
    }
    if (loss0)
        clopt_block_fold(&acc[0], block_f[0], block_g2[0]);
    if (two && loss1)
        clopt_block_fold(&acc[1], block_f[1], block_g2[1]);
}

CLOPT_INLINE void
clopt_sweep_fused(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                  __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                  __global const real *CLOPT_RESTRICT data, ulong n_shard, ulong offset, ulong base,
                  ulong stride, struct clopt_lanes *acc, __constant real *hyp, real gscale,
                  const bool full, const uint loss_mask)
{
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        /* A block past the shard has no element in it: skipped as clopt_sweep skips it,
         * Kahan sums folding its zero loss terms to keep the bits. callgrind at n = 1e6
         * (fuse 8, sphere): the last tile's empty blocks were a third of the fused GD
         * kernel's instructions once the whole chunks went group by group. */
        if (!full && base + (ulong)b * stride >= n_shard) {
            if (CLOPT_ACC_KAHAN) {
                real zero[CLOPT_VW];
                for (uint l = 0; l < CLOPT_VW; ++l)
                    zero[l] = 0;
                for (uint s = 0; s < CLOPT_FUSE; ++s)
                    if ((loss_mask >> s) & 1)
                        clopt_block_fold(&acc[s], zero, zero);
            }
            continue;
        }
        real x[CLOPT_BLOCK], sa[CLOPT_BLOCK], sb[CLOPT_BLOCK], sc[CLOPT_BLOCK];
#ifdef CLOPT_OBJECTIVE_DATA
        real d[CLOPT_BLOCK];
#else
        (void)data;
#endif
        for (uint k = 0; k < CLOPT_BLOCK; ++k) {
            const ulong j = base + (ulong)(b + k) * stride;
            const bool in_range = full || j < n_shard;
            x[k] = in_range ? theta[j] : 0;
#ifdef CLOPT_OBJECTIVE_DATA
            d[k] = in_range ? data[j] : 0;
#endif
            sa[k] = CLOPT_UPDATE_NSTATE > 0 && in_range ? s0[j] : 0;
            sb[k] = CLOPT_UPDATE_NSTATE > 1 && in_range ? s1[j] : 0;
            sc[k] = CLOPT_UPDATE_NSTATE > 2 && in_range ? s2[j] : 0;
        }
        if (full)
            clopt_prefetch_block(theta, s0, s1, s2, data, base + b, true);
        /* Only the fused kernel comes here: steps == CLOPT_FUSE. With pairs, each pair's
         * two mask bits choose one of four inlined sweeps: mask tests per pair (or
         * iteration) and block, not per element (a run-time test in the hot loop cost a
         * third of the kernel's speed on PoCL). */
        uint s = 0;
#if CLOPT_FUSE_PAIRS
        CLOPT_FUSE_LOOP
        for (; s + 1 < CLOPT_FUSE; s += 2) {
            const bool loss0 = (loss_mask >> s) & 1, loss1 = (loss_mask >> (s + 1)) & 1;
            if (loss0 && loss1)
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, true, true, true);
            else if (loss0)
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, true, true, false);
            else if (loss1)
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, false, true, true);
            else
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, false, true, false);
        }
#endif
        CLOPT_FUSE_LOOP
        for (; s < CLOPT_FUSE; ++s) {
            if ((loss_mask >> s) & 1)
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, true, false, false);
            else
                clopt_fused_pass(x, sa, sb, sc, CLOPT_DATA_BLOCK, n_shard, offset, base, stride, b,
                                 &acc[s], hyp + 8 * s, gscale, full, false, false, false);
        }
        for (uint k = 0; k < CLOPT_BLOCK; ++k) {
            const ulong j = base + (ulong)(b + k) * stride;
            if (!(full || j < n_shard))
                continue;
            theta[j] = x[k];
            if (CLOPT_UPDATE_NSTATE > 0)
                s0[j] = sa[k];
            if (CLOPT_UPDATE_NSTATE > 1)
                s1[j] = sb[k];
            if (CLOPT_UPDATE_NSTATE > 2)
                s2[j] = sc[k];
        }
    }
}
/* Fused iterations group by group: each group of CLOPT_VW elements comes from global memory
 * into registers, runs all CLOPT_FUSE iterations there and goes back, where
 * clopt_sweep_fused copies a block (CLOPT_BLOCK values, more than the registers hold) into a
 * private array and sweeps it once per iteration or pair, a stack load and store of every
 * element each time. callgrind (PoCL 3.1, haswell, sphere, n = 1e6, fuse 8, loss every 8):
 * those stack copies were half of the fused GD kernel's instructions. It serves the loss
 * masks whose lane sums fit in registers: none (loss_at = CLOPT_FUSE) and iteration 0 only
 * (loss_at = 0: --loss-every a multiple of the fuse count, the runs fusion is for). Each
 * element's arithmetic is the same sequence as in one launch per iteration, and iteration
 * loss_at's lane sums add in the order of clopt_sweep (lane l takes k = l mod CLOPT_VW,
 * folded block by block), so the bits are those of K launches. Whole chunks only (`full`):
 * the last tile's partial chunks keep clopt_sweep_fused and its bounds checks. */
/* Only for optimizers without state: with Adam's three vectors in registers the direct path
 * ran at 0.6 of clopt_sweep_fused's element-iterations per second (clopt_bench_step, n = 1e7,
 * fuse 8, loss every 8, two interleaved runs each on an AMD EPYC: 1.77e9 and 1.81e9 against
 * 3.18e9 and 3.08e9), where GD went from 1.11e10-1.35e10 to 1.60e10-1.87e10. */
#ifndef CLOPT_FUSE_DIRECT
#define CLOPT_FUSE_DIRECT (CLOPT_DEVICE_CPU && CLOPT_UPDATE_NSTATE == 0)
#endif
CLOPT_INLINE void
clopt_sweep_direct(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                   __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                   __global const real *CLOPT_RESTRICT data, ulong offset, ulong base, ulong stride,
                   struct clopt_lanes *acc, __constant real *hyp, real gscale, const uint loss_at)
{
    /* Read once: the compiler cannot tell that the stores to theta leave hyp alone, and
     * would otherwise load each iteration's values again for every group. */
    real hv[8 * CLOPT_FUSE];
#pragma unroll
    for (uint i = 0; i < 8 * CLOPT_FUSE; ++i)
        hv[i] = hyp[i];
#ifndef CLOPT_OBJECTIVE_DATA
    (void)data;
#endif
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        clopt_prefetch_block(theta, s0, s1, s2, data, base + b, true);
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
        for (uint k = b; k < b + CLOPT_BLOCK; k += CLOPT_VW) {
            /* Loads, the iterations, then stores, as in clopt_sweep: no alias proofs needed
             * to vectorise each phase. */
            real x[CLOPT_VW], sa[CLOPT_VW], sb[CLOPT_VW], sc[CLOPT_VW];
#ifdef CLOPT_OBJECTIVE_DATA
            real d[CLOPT_VW];
#endif
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                x[l] = theta[j];
#ifdef CLOPT_OBJECTIVE_DATA
                d[l] = data[j];
#endif
                sa[l] = CLOPT_UPDATE_NSTATE > 0 ? s0[j] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 ? s1[j] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 ? s2[j] : 0;
            }
#pragma unroll
            for (uint s = 0; s < CLOPT_FUSE; ++s) {
                real f[CLOPT_VW], g[CLOPT_VW];
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l) {
                    const ulong index = offset + base + (ulong)(k + l) * stride;
#ifdef CLOPT_OBJECTIVE_DATA
                    f[l] = clopt_fdf_data(x[l], d[l], index, &g[l]);
#else
                    f[l] = clopt_fdf(x[l], index, &g[l]);
#endif
                }
                if (s == loss_at) {
#pragma unroll
                    for (uint l = 0; l < CLOPT_VW; ++l)
                        clopt_lane_add(&acc[s], block_f, block_g2, l, f[l], g[l]);
                }
                const uint o = 8 * s;
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], hv[o], hv[o + 1],
                                         hv[o + 2], hv[o + 3], hv[o + 4], hv[o + 5], hv[o + 6],
                                         hv[o + 7], gscale);
            }
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong j = base + (ulong)(k + l) * stride;
                theta[j] = x[l];
                if (CLOPT_UPDATE_NSTATE > 0)
                    s0[j] = sa[l];
                if (CLOPT_UPDATE_NSTATE > 1)
                    s1[j] = sb[l];
                if (CLOPT_UPDATE_NSTATE > 2)
                    s2[j] = sc[l];
            }
        }
        if (loss_at < CLOPT_FUSE)
            clopt_block_fold(&acc[loss_at], block_f, block_g2);
    }
}
#endif

/* The elements of one tile (CLOPT_WG * CLOPT_EPW consecutive elements of the shard, one
 * work-group's share) and its partial slots: iteration s's partial pairs go to the tile's
 * slots plus s * partial_stride. Which work-group runs a tile never changes its arithmetic. */
CLOPT_INLINE void clopt_tile(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                             __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                             __global const real *CLOPT_RESTRICT src,
                             __global const real *CLOPT_RESTRICT data, ulong n_shard, ulong offset,
                             ulong n_total, ulong tile, __global acc_t *partials,
                             ulong partial_base, ulong partial_stride, const real *hyp,
                             __constant real *fused_hyp, real gscale, __local acc_t *local_f,
                             __local acc_t *local_g2, const uint loss_mask, const bool with_update,
                             const uint steps)
{
    /* The loops over iterations run to the compile-time CLOPT_FUSE, skipping those past
     * `steps`: a trip count known before this function is inlined (the compiler simplifies
     * it first) lets CLOPT_FUSE_LOOP unroll them. */
    struct clopt_lanes acc[CLOPT_FUSE];
    CLOPT_FUSE_LOOP
    for (uint s = 0; s < CLOPT_FUSE; ++s)
        for (uint l = 0; l < CLOPT_VW; ++l) {
            acc[s].f[l] = 0;
            acc[s].fc[l] = 0;
            acc[s].g2[l] = 0;
            acc[s].g2c[l] = 0;
        }
    const uint lid = get_local_id(0);
#if CLOPT_LAYOUT == 1
    const ulong base = (tile * CLOPT_WG + lid) * CLOPT_EPW;
    const ulong stride = 1;
    const bool full = base + CLOPT_EPW <= n_shard;
#else
    const ulong block = tile * ((ulong)CLOPT_WG * CLOPT_EPW);
    const ulong base = block + lid;
    const ulong stride = CLOPT_WG;
    const bool full = block + (ulong)CLOPT_WG * CLOPT_EPW <= n_shard;
#endif
    if (steps > 1) {
#if CLOPT_HALO == 0
        if (CLOPT_FUSE_DIRECT && full && loss_mask == 0)
            clopt_sweep_direct(theta, s0, s1, s2, data, offset, base, stride, acc, fused_hyp,
                               gscale, CLOPT_FUSE);
        else if (CLOPT_FUSE_DIRECT && full && loss_mask == 1)
            clopt_sweep_direct(theta, s0, s1, s2, data, offset, base, stride, acc, fused_hyp,
                               gscale, 0);
        else if (full)
            clopt_sweep_fused(theta, s0, s1, s2, data, n_shard, offset, base, stride, acc,
                              fused_hyp, gscale, true, loss_mask);
        else
            clopt_sweep_fused(theta, s0, s1, s2, data, n_shard, offset, base, stride, acc,
                              fused_hyp, gscale, false, loss_mask);
#else
        (void)fused_hyp;
#endif
    }
#if CLOPT_STENCIL_STREAM
    else if (full && clopt_stencil_inside(offset + base, n_total))
        clopt_sweep_stencil(theta, s0, s1, s2, src, offset, n_total, base, acc, hyp[0], hyp[1],
                            hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, loss_mask & 1,
                            with_update);
#elif CLOPT_GRID_STREAM
    else if (full)
        clopt_sweep_grid(theta, s0, s1, s2, src, data, n_shard, offset, base, acc, hyp[0], hyp[1],
                         hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, loss_mask & 1,
                         with_update);
#else
    else if (full)
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, acc,
                    hyp[0], hyp[1], hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, true,
                    loss_mask & 1, with_update);
#endif
    /* With CLOPT_STENCIL_STREAM, also a full chunk at an end of theta: the checks are right
     * for it too, and one sweep fewer to inline keeps the build short. */
    else
        clopt_sweep(theta, s0, s1, s2, src, data, n_shard, offset, n_total, base, stride, acc,
                    hyp[0], hyp[1], hyp[2], hyp[3], hyp[4], hyp[5], hyp[6], hyp[7], gscale, false,
                    loss_mask & 1, with_update);

    CLOPT_FUSE_LOOP
    for (uint s = 0; s < CLOPT_FUSE; ++s) {
        if (s >= steps || !((loss_mask >> s) & 1))
            continue;
        /* Fold the lanes in a fixed order; the compensation terms are applied first. */
        acc_t f = 0, g2 = 0;
        for (uint l = 0; l < CLOPT_VW; ++l) {
            f += acc[s].f[l] - acc[s].fc[l];
            g2 += acc[s].g2[l] - acc[s].g2c[l];
        }
        const ulong slot_base = partial_base + s * partial_stride;
#if CLOPT_GROUP_PARTIALS
        local_f[lid] = f;
        local_g2[lid] = g2;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint width = CLOPT_WG / 2; width > 0; width /= 2) {
            if (lid < width) {
                local_f[lid] += local_f[lid + width];
                local_g2[lid] += local_g2[lid + width];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid == 0) {
            partials[2 * (slot_base + tile)] = local_f[0];
            partials[2 * (slot_base + tile) + 1] = local_g2[0];
        }
        /* The next iteration's tree reuses the scratch. */
        barrier(CLK_LOCAL_MEM_FENCE);
#else
        (void)local_f;
        (void)local_g2;
        const ulong p = slot_base + tile * CLOPT_WG + lid;
        partials[2 * p] = f;
        partials[2 * p + 1] = g2;
#endif
    }
}

/* Runs the tiles of this work-group: its own (one group per tile), or with CLOPT_GPCU > 0
 * a fixed grid of groups (that many per compute unit) striding over the shard's tiles. */
CLOPT_INLINE void
clopt_step_body(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,
                ulong n_shard, ulong offset, ulong n_total, __global acc_t *partials,
                ulong partial_base, ulong partial_stride, const real *hyp,
                __constant real *fused_hyp, real gscale, __local acc_t *local_f,
                __local acc_t *local_g2, const uint loss_mask, const bool with_update,
                const uint steps)
{
#if CLOPT_GPCU > 0
    const ulong tile_elems = (ulong)CLOPT_WG * CLOPT_EPW;
    const ulong tiles = (n_shard + tile_elems - 1) / tile_elems;
    for (ulong tile = get_group_id(0); tile < tiles; tile += get_num_groups(0))
        clopt_tile(theta, s0, s1, s2, src, data, n_shard, offset, n_total, tile, partials,
                   partial_base, partial_stride, hyp, fused_hyp, gscale, local_f, local_g2,
                   loss_mask, with_update, steps);
#else
    /* A shard past the host's launch limit (2^30 work-items) comes in chunks placed by a
     * global offset of whole groups. */
    const ulong tile = get_global_offset(0) / CLOPT_WG + get_group_id(0);
    clopt_tile(theta, s0, s1, s2, src, data, n_shard, offset, n_total, tile, partials, partial_base,
               partial_stride, hyp, fused_hyp, gscale, local_f, local_g2, loss_mask, with_update,
               steps);
#endif
}

/* The host sets these (and clopt_step_fused's own) by the positions in
 * host/solver/kernel_args.h; tests/test_solver.c checks the counts. */
#define CLOPT_STEP_PARAMS                                                                          \
    __global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,                         \
        __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2, ulong n_shard,         \
        ulong offset, __global acc_t *partials, ulong partial_base, real h0, real h1, real h2,     \
        real h3, real h4, real h5, real h6, real h7, __global const acc_t *grad_sq,                \
        __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,         \
        ulong n_total

/* OpenCL allows __local variables only at kernel scope: each kernel declares the tree's
 * scratch and hands it down. */
#if CLOPT_GROUP_PARTIALS
#define CLOPT_LOCAL_SCRATCH __local acc_t local_f[CLOPT_WG], local_g2[CLOPT_WG]
#else
#define CLOPT_LOCAL_SCRATCH __local acc_t *local_f = 0, *local_g2 = 0
#endif

/* Global-norm clipping: grad_sq[1] holds ||g||^2 from a pass over theta just before this
 * one; the scale is torch's clip_grad_norm_: min(1, c / (||g|| + 1e-6)). */
#ifdef CLOPT_CLIP_NORM
#define CLOPT_GRAD_SCALE                                                                           \
    const real gscale =                                                                            \
        (real)fmin((acc_t)1, (acc_t)CLOPT_CLIP_NORM / (sqrt(grad_sq[1]) + (acc_t)1e-6))
#else
#define CLOPT_GRAD_SCALE                                                                           \
    const real gscale = 1;                                                                         \
    (void)grad_sq
#endif

/* simd=512: the x86 back end keeps to 256-bit vectors on the AVX-512 Xeons and Cores it
 * knows (older Xeons lowered their clock for 512-bit code), and no OpenCL build option can
 * lift that; the tuning CPU of a target attribute can, while the instruction set stays the
 * device's. Alder Lake's tuning (the Golden Cove core of current Xeons) has no such
 * preference. Measured on PoCL 3.1 (Xeon, AVX-512, n = 1e8): fused GD 1.0e10 -> 1.6e10-1.9e10
 * element-iterations/s. The lanes are independent, so the results are the same bits. */
#if CLOPT_SIMD512 && defined(__clang__) && defined(__x86_64__) && defined(__AVX512F__)
#define CLOPT_KERNEL_TUNING __attribute__((target("tune=alderlake")))
#else
#define CLOPT_KERNEL_TUNING
#endif

#define CLOPT_HYPER_ARRAY const real hyp[8] = {h0, h1, h2, h3, h4, h5, h6, h7}

/* One update, no loss: the iterations between loss evaluations. */
__kernel CLOPT_KERNEL_TUNING void clopt_step(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 0, true, 1);
}

/* One update with L(theta_t) and ||g_t||^2 partials of the values before the update. */
__kernel CLOPT_KERNEL_TUNING void clopt_step_loss(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 1, true, 1);
}

/* Loss partials only; theta is not written. */
__kernel CLOPT_KERNEL_TUNING void clopt_eval(CLOPT_STEP_PARAMS)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    0, hyp, (__constant real *)0, gscale, local_f, local_g2, 1, false, 1);
}

/* CLOPT_FUSE iterations per launch (separable objectives, no global-norm clipping): each
 * element runs them in registers between one read and one write of theta and its state.
 * hyper holds each iteration's 8 hyper-parameters (h0..h7 of the launch are unused), in
 * __constant memory: GPUs serve a value all work-items read from a broadcast cache, and a
 * private copy, indexed by iteration, went to scratch memory (see CLOPT_FUSE_LOOP); the
 * partials of iteration s go to slots partial_base + s * partial_stride + ..., for the
 * iterations whose bit in loss_mask is set. */
#if CLOPT_FUSE > 1 && CLOPT_HALO == 0
__kernel CLOPT_KERNEL_TUNING void clopt_step_fused(CLOPT_STEP_PARAMS, __constant real *hyper,
                                                   ulong partial_stride, uint loss_mask)
{
    CLOPT_LOCAL_SCRATCH;
    CLOPT_GRAD_SCALE;
    /* Unused (each iteration's values come from hyper), but clopt_tile takes them. */
    CLOPT_HYPER_ARRAY;
    clopt_step_body(theta, s0, s1, s2, src, data, n_shard, offset, n_total, partials, partial_base,
                    partial_stride, hyp, hyper, gscale, local_f, local_g2, loss_mask, true,
                    CLOPT_FUSE);
}
#endif
