/* Part of step.cl's program text, continuing it (host/solver/build.c lists the parts in
 * order): the 1-D stencil window and its vectorised sweep, and which vector sweeps apply. */

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
/* A stencil objective may also give a vector form for these chunks (it defines
 * CLOPT_STENCIL_VECTOR):
 *   clopt_vreal clopt_fdf_stencil_vec(const clopt_vreal *w, clopt_vreal *g);
 * w[r] holds the lanes' window entry r; every lane lies inside theta (0 <= i - R,
 * i + R < n), and each must do clopt_fdf_stencil's operations for such an i, in the same
 * order: the same bits. */
#if !CLOPT_STENCIL_STREAM || !defined(CLOPT_STENCIL_VECTOR)
#undef CLOPT_STENCIL_VECTOR
#define CLOPT_STENCIL_VECTOR 0
#endif
/* Grids with a scalar form only: the same for points whose box lies inside the grid
 * (clopt_sweep_grid below), when the box is small enough for every lane's copy to live in
 * registers. (A vector form takes every point: see sweep_grid.cl.) */
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
            /* src[j + r] is theta_{offset + j + r - CLOPT_HALO}. */
#if CLOPT_STENCIL_VECTOR
            (void)offset, (void)n_total;
            clopt_vreal wv[2 * CLOPT_HALO + 1];
#pragma unroll
            for (uint r = 0; r <= 2 * CLOPT_HALO; ++r)
                wv[r] = CLOPT_VLOAD(0, src + j + r);
            {
                union clopt_vlanes xv, fv, gv;
                xv.v = wv[CLOPT_HALO];
                CLOPT_OPAQUE_VREAL(xv.v);
                fv.v = clopt_fdf_stencil_vec(wv, &gv.v);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l) {
                    x[l] = xv.s[l];
                    f[l] = fv.s[l];
                    g[l] = gv.s[l];
                }
            }
#else
            real win[CLOPT_VW][2 * CLOPT_HALO + 1];
            union clopt_vlanes xv;
#pragma unroll
            for (uint r = 0; r <= 2 * CLOPT_HALO; ++r) {
                union clopt_vlanes u;
                u.v = CLOPT_VLOAD(0, src + j + r);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    win[l][r] = u.s[l];
            }
            xv.v = CLOPT_VLOAD(0, src + j + CLOPT_HALO);
            CLOPT_OPAQUE_VREAL(xv.v);
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                const ulong index = offset + j + l;
                CLOPT_ASSUME(index >= CLOPT_HALO);
                CLOPT_ASSUME(index + CLOPT_HALO < n_total);
                x[l] = xv.s[l];
                f[l] = clopt_fdf_stencil(win[l], index, n_total, &g[l]);
            }
#endif
#pragma unroll
            for (uint l = 0; l < CLOPT_VW; ++l) {
                sa[l] = CLOPT_UPDATE_NSTATE > 0 && with_update ? s0[j + l] : 0;
                sb[l] = CLOPT_UPDATE_NSTATE > 1 && with_update ? s1[j + l] : 0;
                sc[l] = CLOPT_UPDATE_NSTATE > 2 && with_update ? s2[j + l] : 0;
            }
            if (with_update) {
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l)
                    clopt_element_update(&x[l], &sa[l], &sb[l], &sc[l], g[l], h0, h1, h2, h3, h4,
                                         h5, h6, h7, gscale);
                clopt_store_theta(theta + CLOPT_HALO + j, x);
#pragma unroll
                for (uint l = 0; l < CLOPT_VW; ++l) {
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
