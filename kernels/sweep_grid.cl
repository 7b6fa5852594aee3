/* Part of step.cl's program text, continuing sweep_stencil.cl: the grid box gather and the
 * vectorised grid sweep. */

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
