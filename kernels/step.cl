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
/* A built-in grid objective of radius 1 with a data vector may also give a vector form (it
 * defines CLOPT_GRID_VECTOR; clopt_vreal exists: vector width >= 2):
 *   clopt_vreal clopt_fdf_grid_data_vec(const clopt_vreal *w, clopt_vreal d,
 *                                       const clopt_vmask *lo, const clopt_vmask *hi,
 *                                       clopt_vreal *g);
 * lane l is grid point i + l (flat order, so lanes may lie on different rows), w[m] the
 * lanes' box values as in clopt_fdf_grid_data (0 outside the grid), lo[k] and hi[k] the lanes
 * whose coordinate k is 0 and S_k - 1. Each lane must do exactly the scalar form's
 * operations in the same order (a face test becomes a select between the results with and
 * without the term), so the bits do not depend on which form ran. Why: the scalar form,
 * called lane by lane on a transposed window, cost 125 instructions per point (poisson 2-D,
 * callgrind, PoCL 3.1 haswell). */
#if defined(CLOPT_GRID_VECTOR) && (CLOPT_GRID_RADIUS != 1 || !defined(CLOPT_OBJECTIVE_DATA))
#error "CLOPT_GRID_VECTOR is for grid objectives of radius 1 with a data vector"
#endif
#endif
/* A stencil objective reads theta from `src`, which holds CLOPT_HALO neighbours on each
 * side of the shard (from the neighbouring shards, or unused ends), and writes `theta`
 * with the same layout: ping-pong buffers. */
#ifdef CLOPT_GRID_RADIUS
#define CLOPT_HALO                                                                                 \
    (CLOPT_GRID_RADIUS *                                                                           \
     (CLOPT_GRID_S1 * CLOPT_GRID_S2 + (CLOPT_GRID_AXES > 1 ? CLOPT_GRID_S2 : 0) +                  \
      (CLOPT_GRID_AXES > 2 ? 1 : 0)))
#elif defined(CLOPT_STENCIL_RADIUS)
#define CLOPT_HALO CLOPT_STENCIL_RADIUS
#if CLOPT_HALO < 1 || CLOPT_HALO > 16
#error "CLOPT_STENCIL_RADIUS must be a whole number from 1 to 16"
#endif
#else
#define CLOPT_HALO 0
#endif
/* Element 0 of a shard sits at buffer position CLOPT_LEAD of theta and src (the host's
 * s->lead): the halo rounded up to 16 elements, so that lanes j..j+vw-1 of a vector sweep (j
 * a multiple of vw) start on a boundary an aligned vector store needs (CLOPT_STORE_THETA). The
 * left halo lies just before it. The step kernels move both pointers by CLOPT_LEAD -
 * CLOPT_HALO once, so the sweeps index them from the halo's start as before. */
#ifndef CLOPT_LEAD
#define CLOPT_LEAD (CLOPT_HALO > 0 ? (CLOPT_HALO + 15) / 16 * 16 : 0)
#endif
#if CLOPT_LEAD < CLOPT_HALO || CLOPT_LEAD % 16 != 0
#error "CLOPT_LEAD must be a multiple of 16 at least the halo (host s->lead)"
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
#if defined(CLOPT_OBJECTIVE_VECTOR) && CLOPT_HAS_VREAL && CLOPT_HALO == 0 &&                       \
    !defined(CLOPT_OBJECTIVE_DATA)
#define CLOPT_SEPARABLE_VECTOR 1
#else
#define CLOPT_SEPARABLE_VECTOR 0
#endif
/* A vector form may also share work across a block of the sweep (CLOPT_BLOCK elements,
 * below): the objective defines CLOPT_OBJECTIVE_VECTOR_BLOCK and
 *   clopt_vblock clopt_fdf_vec_block(ulong first, ulong stride);
 *   clopt_vreal clopt_fdf_vec_in_block(clopt_vreal x, clopt_vblock block, uint k, ulong first,
 *                                      ulong stride, clopt_vreal *g);
 * with a type clopt_vblock of its own: the first is called once per block with the block's
 * first element, the second replaces clopt_fdf_vec for the block's k-th vector (first: its
 * first element) and gets what the first returned. Same rule: the bits of clopt_fdf. Why:
 * ellipsoid's 2^(a i) needs one polynomial per 16 elements; once per vector, it halved the speed of
 * the CPU sweep (PoCL 3.1, AVX-512 EPYC, theta in L3: 4.2e9 elements/s against 9e9 without it). */
#if CLOPT_SEPARABLE_VECTOR && defined(CLOPT_OBJECTIVE_VECTOR_BLOCK)
#define CLOPT_SEPARABLE_VECTOR_BLOCK 1
#else
#define CLOPT_SEPARABLE_VECTOR_BLOCK 0
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

/* Non-temporal stores of theta in the ping-pong sweeps (the host's CLOPT_NT_STORE; used by
 * the vector sweeps of sweep_stencil.cl and sweep_grid.cl). Those sweeps write theta without
 * reading it, and a plain store to a line not in cache first reads the line (write-allocate):
 * a 1-D stencil GD step moved 12 bytes per element where 8 are needed, 2-D poisson 16 where
 * 12 are. A non-temporal vector store writes the line without reading it, and does not keep
 * it in cache either: the host turns it on only where a sweep streams more than the
 * last-level cache. p is theta + CLOPT_HALO + j with j a multiple of CLOPT_VW, which
 * CLOPT_LEAD aligns to the vector's size: the vector pointer's type promises that alignment
 * (vmovntps faults without it). Without the option (or with one lane, or on oclgrind, which
 * has no such instruction: CLOPT_NO_NT_STORE), the lanes are plain stores. Either way the
 * bits stored are the same. */
#ifndef CLOPT_NT_STORE
#define CLOPT_NT_STORE 0
#endif
#if CLOPT_NT_STORE && CLOPT_HAS_VREAL && CLOPT_LAYOUT == 1 && CLOPT_HALO > 0 &&                    \
    defined(__clang__) && !defined(CLOPT_NO_NT_STORE)
#define CLOPT_NT_STORES 1
#else
#define CLOPT_NT_STORES 0
#endif
CLOPT_INLINE void clopt_store_theta(__global real *p, const real *x)
{
#if CLOPT_NT_STORES
    union clopt_vlanes u;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        u.s[l] = x[l];
    __builtin_nontemporal_store(u.v, (__global clopt_vreal *)p);
#else
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        p[l] = x[l];
#endif
}

/* After a work-item's last non-temporal store: x86 orders those stores with no other store,
 * so an sfence makes them visible before anything this work-item does next (the runtime's
 * signal that the kernel is done, after which the next launch reads theta). */
CLOPT_INLINE void clopt_store_theta_done(void)
{
#if CLOPT_NT_STORES && defined(__x86_64__)
    __builtin_ia32_sfence();
#elif CLOPT_NT_STORES
    write_mem_fence(CLK_GLOBAL_MEM_FENCE);
#endif
}

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
#if CLOPT_SEPARABLE_VECTOR_BLOCK
#define CLOPT_BLOCK_ARGS(block, k) , block, k
CLOPT_INLINE void clopt_lanes_fdf_vec(const real *x, ulong first, ulong stride, real *f, real *g,
                                      clopt_vblock block, uint k)
#else
#define CLOPT_BLOCK_ARGS(block, k)
CLOPT_INLINE void clopt_lanes_fdf_vec(const real *x, ulong first, ulong stride, real *f, real *g)
#endif
{
    union clopt_vlanes xv, fv, gv;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        xv.s[l] = x[l];
#if CLOPT_SEPARABLE_VECTOR_BLOCK
    fv.v = clopt_fdf_vec_in_block(xv.v, block, k, first, stride, &gv.v);
#else
    fv.v = clopt_fdf_vec(xv.v, first, stride, &gv.v);
#endif
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
 * stencil's or grid's `src + 2 * CLOPT_HALO`: element j's farthest neighbour, where the
 * vector's new lines enter; for a grid, `src` itself would be the row above, read already).
 * Contiguous layout only: the strided one is the GPU's, whose memory system hides latency with
 * threads. CPU devices only (CLOPT_DEVICE_CPU, set by the host from the device type): __clang__
 * alone also admits GPU and SPIR-V compilers, some of which are reported to abort on the builtin.
 */
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
            clopt_prefetch_block(CLOPT_HALO > 0 ? src + 2 * CLOPT_HALO : theta, s0, s1, s2, data,
                                 base + b, with_update);
#if CLOPT_SEPARABLE_VECTOR_BLOCK
        const clopt_vblock block = clopt_fdf_vec_block(offset + base + (ulong)b * stride, stride);
#endif
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
            clopt_lanes_fdf_vec(x, offset + base + (ulong)k * stride, stride, f,
                                g CLOPT_BLOCK_ARGS(block, (k - b) / CLOPT_VW));
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
