/* Part of step.cl's program text, continuing sweep_stencil.cl: the grid box gather and the
 * vectorised grid sweep. */

#if CLOPT_GRID_STREAM
/* Grids, a work-item's whole chunk (contiguous layout; with a vector form also the shard's
 * last, partial chunk), in groups of CLOPT_VW consecutive points, the coordinates carried
 * along the chunk. Box offset m is one vector load at a
 * constant distance (a shifted load along the last axis, +-stride along the others) in place
 * of CLOPT_VW gathers of (2R+1)^axes checked scalar loads each.
 * - An objective with a vector form (CLOPT_GRID_VECTOR: poisson, tv_denoise) takes every
 *   group as vectors: inside the grid with no face tests, and where a group touches a face
 *   or crosses a row end, with the box zeroed lane by lane outside the grid and the face
 *   terms taken by selects.
 * - Any other (a user's scalar form): a group whose boxes lie inside the grid is transposed
 *   into one window per lane, and the compiler is told the coordinates are inside, so the
 *   objective's face tests fold away; a group that touches a face takes clopt_grid_fdf lane
 *   by lane.
 * Every path gives each point the same window and the same operations, so f, g and the lane
 * sums are the bits of clopt_sweep. */

/* Elements between neighbours along axis k: the product of the later axes' lengths. */
#define CLOPT_GRID_STRIDE(k)                                                                       \
    ((long)((k) + 1 < CLOPT_GRID_AXES ? CLOPT_GRID_SHAPE((k) + 1) : 1UL) *                         \
     (long)((k) + 2 < CLOPT_GRID_AXES ? CLOPT_GRID_SHAPE((k) + 2) : 1UL))

/* The farthest box offset from a point, in elements: R steps along every axis. */
#define CLOPT_GRID_REACH                                                                           \
    (CLOPT_GRID_RADIUS *                                                                           \
     (CLOPT_GRID_STRIDE(0) + (CLOPT_GRID_AXES > 1 ? CLOPT_GRID_STRIDE(1) : 0) +                    \
      (CLOPT_GRID_AXES > 2 ? CLOPT_GRID_STRIDE(2) : 0)))

/* The coordinates of grid point i (C order, the last axis fastest). */
CLOPT_INLINE void clopt_grid_coords(ulong i, ulong *c)
{
    ulong rest = i;
    for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
        c[k] = rest % CLOPT_GRID_SHAPE(k);
        rest /= CLOPT_GRID_SHAPE(k);
    }
}

/* Coordinates c moved `steps` points on in the flat order. The sweep carries each work-item's
 * coordinates along its chunk this way: a 64-bit div/mod per axis for every group of
 * CLOPT_VW points cost more than a 5-point stencil's arithmetic. The division here runs only
 * when a row ends inside the group (every group when the last axis is shorter than it).
 * Returns whether a row ended (the other coordinates changed). */
CLOPT_INLINE bool clopt_grid_advance(ulong *c, ulong steps)
{
    c[CLOPT_GRID_AXES - 1] += steps;
    const bool row_ended = c[CLOPT_GRID_AXES - 1] >= CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1);
    for (int k = CLOPT_GRID_AXES - 1; k > 0; --k)
        if (c[k] >= CLOPT_GRID_SHAPE(k)) {
            const ulong rows = c[k] / CLOPT_GRID_SHAPE(k);
            c[k] -= rows * CLOPT_GRID_SHAPE(k);
            c[k - 1] += rows;
        }
    return row_ended;
}

/* Whether the shard's src buffer holds the boxes of shard elements j .. j + CLOPT_VW - 1: a
 * shard may start or end inside a plane. */
CLOPT_INLINE bool clopt_grid_group_in_buffer(ulong j, ulong n_shard)
{
    return j + CLOPT_HALO >= CLOPT_GRID_REACH &&
           j + CLOPT_VW + CLOPT_GRID_REACH <= n_shard + CLOPT_HALO;
}

/* Whether the boxes of the CLOPT_VW points from coordinates c all lie inside the grid (then
 * those points share every coordinate but the last). */
CLOPT_INLINE bool clopt_grid_group_interior(const ulong *c)
{
    bool inside = c[CLOPT_GRID_AXES - 1] >= CLOPT_GRID_RADIUS &&
                  c[CLOPT_GRID_AXES - 1] + CLOPT_VW + CLOPT_GRID_RADIUS <=
                      CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1);
    for (int k = 0; k + 1 < CLOPT_GRID_AXES; ++k)
        inside =
            inside && c[k] >= CLOPT_GRID_RADIUS && c[k] + CLOPT_GRID_RADIUS < CLOPT_GRID_SHAPE(k);
    return inside;
}

/* clopt_grid_group_interior in two parts, for the vector sweep: whether the row of
 * coordinates c lies inside (every coordinate but the last R or more from the faces), kept
 * per row, and whether the group from c_last along that row does. */
CLOPT_INLINE bool clopt_grid_row_interior(const ulong *c)
{
    bool inside = true;
    for (int k = 0; k + 1 < CLOPT_GRID_AXES; ++k)
        inside =
            inside && c[k] >= CLOPT_GRID_RADIUS && c[k] + CLOPT_GRID_RADIUS < CLOPT_GRID_SHAPE(k);
    return inside;
}
CLOPT_INLINE bool clopt_grid_span_interior(ulong c_last)
{
    /* R <= c_last <= S - VW - R as one unsigned comparison (c_last < R wraps around). */
    const ulong s = CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1);
    return s >= CLOPT_VW + 2 * CLOPT_GRID_RADIUS &&
           c_last - CLOPT_GRID_RADIUS <= s - CLOPT_VW - 2 * CLOPT_GRID_RADIUS;
}

/* Box offset m's step along axis k (m in base 2R+1, one digit per axis, the last axis
 * fastest, as in clopt_grid_fdf), and its flat distance. */
#define CLOPT_GRID_DIGIT(m, k)                                                                     \
    ((int)(((m) / ((CLOPT_GRID_AXES - 1 - (k) >= 1 ? CLOPT_GRID_W : 1) *                           \
                   (CLOPT_GRID_AXES - 1 - (k) >= 2 ? CLOPT_GRID_W : 1))) %                         \
           CLOPT_GRID_W) -                                                                         \
     CLOPT_GRID_RADIUS)
CLOPT_INLINE long clopt_grid_offset(uint m)
{
    long off = 0;
#pragma unroll
    for (int k = 0; k < CLOPT_GRID_AXES; ++k)
        off += (long)CLOPT_GRID_DIGIT(m, k) * CLOPT_GRID_STRIDE(k);
    return off;
}

#ifdef CLOPT_GRID_VECTOR
#ifndef CLOPT_VSTORE
#define CLOPT_VSTORE CLOPT_CAT(vstore, CLOPT_VW)
#endif
/* f and g of the CLOPT_VW points from shard element j (coordinates c0) through the
 * objective's vector form: one vector load per box offset, no transposition. Inside the grid
 * (`interior`, a constant after inlining) the face masks are constant zeros and fold away;
 * otherwise each lane's coordinates give its masks, and each box vector is zeroed in the
 * lanes where it leaves the grid, as clopt_grid_fdf's gather does. The loads stay inside src
 * (clopt_grid_group_in_buffer). */
CLOPT_INLINE clopt_vreal clopt_grid_group_vec(__global const real *CLOPT_RESTRICT src,
                                              __global const real *CLOPT_RESTRICT data, ulong j,
                                              const ulong *c0, const bool interior, clopt_vreal *g)
{
    clopt_vmask lo[CLOPT_GRID_AXES], hi[CLOPT_GRID_AXES];
    if (interior) {
#pragma unroll
        for (int k = 0; k < CLOPT_GRID_AXES; ++k)
            lo[k] = hi[k] = (clopt_vmask)0;
    } else if (c0[CLOPT_GRID_AXES - 1] + CLOPT_VW <= CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1)) {
        /* One row: the lanes share the other coordinates, and along the row only lane 0 can
         * be on the first face and lane S - 1 - c on the last (CLOPT_VW: none). */
        const ulong last = CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1) - 1 - c0[CLOPT_GRID_AXES - 1];
        const clopt_vmask lanes = CLOPT_CONVERT_VMASK(CLOPT_VLANE_NUMBERS);
#pragma unroll
        for (int k = 0; k + 1 < CLOPT_GRID_AXES; ++k) {
            lo[k] = (clopt_vmask)(c0[k] == 0 ? -1 : 0);
            hi[k] = (clopt_vmask)(c0[k] + 1 == CLOPT_GRID_SHAPE(k) ? -1 : 0);
        }
        lo[CLOPT_GRID_AXES - 1] =
            lanes == (clopt_vmask)(c0[CLOPT_GRID_AXES - 1] == 0 ? 0 : CLOPT_VW);
        hi[CLOPT_GRID_AXES - 1] = lanes == (clopt_vmask)(last < CLOPT_VW ? (int)last : CLOPT_VW);
    } else {
        /* The group crosses a row end: each lane's coordinates. */
        union clopt_vmasks ml[CLOPT_GRID_AXES], mh[CLOPT_GRID_AXES];
        ulong c[CLOPT_GRID_AXES];
#pragma unroll
        for (int k = 0; k < CLOPT_GRID_AXES; ++k)
            c[k] = c0[k];
        for (uint l = 0; l < CLOPT_VW; ++l) {
#pragma unroll
            for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
                ml[k].s[l] = c[k] == 0 ? -1 : 0;
                mh[k].s[l] = c[k] + 1 == CLOPT_GRID_SHAPE(k) ? -1 : 0;
            }
            clopt_grid_advance(c, 1);
        }
#pragma unroll
        for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
            lo[k] = ml[k].v;
            hi[k] = mh[k].v;
        }
    }
    clopt_vreal w[CLOPT_GRID_WINDOW];
    __global const real *at = src + CLOPT_HALO + j;
#pragma unroll
    for (uint m = 0; m < CLOPT_GRID_WINDOW; ++m) {
        clopt_vreal v = CLOPT_VLOAD(0, at + clopt_grid_offset(m));
        if (!interior) {
            clopt_vmask out = (clopt_vmask)0;
#pragma unroll
            for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
                if (CLOPT_GRID_DIGIT(m, k) < 0)
                    out |= lo[k];
                if (CLOPT_GRID_DIGIT(m, k) > 0)
                    out |= hi[k];
            }
            v = select(v, (clopt_vreal)0, out);
        }
        w[m] = v;
    }
    return clopt_fdf_grid_data_vec(w, CLOPT_VLOAD(0, data + j), lo, hi, g);
}
#endif

/* f and g of the CLOPT_VW points from shard element j (grid point i, coordinates c), all of
 * whose boxes lie inside the grid. */
CLOPT_INLINE void clopt_grid_group_fdf(__global const real *CLOPT_RESTRICT src, ulong j, ulong i,
                                       const ulong *c0, const real *d, real *f, real *g)
{
    real win[CLOPT_VW][CLOPT_GRID_WINDOW];
    __global const real *at = src + CLOPT_HALO + j;
#pragma unroll
    for (uint m = 0; m < CLOPT_GRID_WINDOW; ++m) {
        union clopt_vlanes u;
        u.v = CLOPT_VLOAD(0, at + clopt_grid_offset(m));
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

#ifndef CLOPT_GRID_VECTOR
CLOPT_INLINE void
clopt_sweep_grid(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                 __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                 __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,
                 ulong n_shard, ulong offset, ulong base, struct clopt_lanes *acc, real h0, real h1,
                 real h2, real h3, real h4, real h5, real h6, real h7, real gscale,
                 const bool with_loss, const bool with_update)
{
    ulong c[CLOPT_GRID_AXES];
    clopt_grid_coords(offset + base, c);
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        real block_f[CLOPT_VW], block_g2[CLOPT_VW];
        for (uint l = 0; l < CLOPT_VW; ++l) {
            block_f[l] = 0;
            block_g2[l] = 0;
        }
        /* theta's new lines enter at the box's far corner (the row or plane ahead,
         * CLOPT_GRID_REACH = CLOPT_HALO away): the point's own row was read as that corner a
         * row or plane earlier. */
        clopt_prefetch_block(src + 2 * CLOPT_HALO, s0, s1, s2, data, base + b, with_update);
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
            if (clopt_grid_group_in_buffer(j, n_shard) && clopt_grid_group_interior(c))
                clopt_grid_group_fdf(src, j, offset + j, c, d, f, g);
            else {
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
            clopt_grid_advance(c, CLOPT_VW);
        }
        if (with_loss)
            clopt_block_fold(acc, block_f, block_g2);
    }
}
#else
/* f and g of the CLOPT_VW points from shard element j whose boxes the shard's src buffer
 * does not hold (a shard's first and last points): clopt_grid_fdf lane by lane. Long and rare,
 * so not unrolled, as in clopt_sweep. */
CLOPT_INLINE clopt_vreal clopt_grid_group_lanes(__global const real *CLOPT_RESTRICT src,
                                                __global const real *CLOPT_RESTRICT data, ulong j,
                                                ulong offset, clopt_vreal *g)
{
    union clopt_vlanes fl, gl;
#pragma nounroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        fl.s[l] = clopt_grid_fdf(src, j + l, offset + j + l, true, data[j + l], &gl.s[l]);
    *g = gl.v;
    return fl.v;
}

/* f and g of a group that touches a face, crosses a row end or lies where the src buffer
 * does not hold its boxes. Out of line: inlined, its paths shared the hot path's values
 * and the compiler kept them in 8-byte pieces on the stack for all three. */
__attribute__((noinline)) static void
clopt_grid_group_edge(__global const real *CLOPT_RESTRICT src,
                      __global const real *CLOPT_RESTRICT data, ulong j, ulong n_shard,
                      ulong offset, const ulong *c, clopt_vreal *f, clopt_vreal *g)
{
    if (clopt_grid_group_in_buffer(j, n_shard))
        *f = clopt_grid_group_vec(src, data, j, c, false, g);
    else
        *f = clopt_grid_group_lanes(src, data, j, offset, g);
}

/* The update of the CLOPT_VW elements in x and their state: clopt_element_update lane by
 * lane, the same code for every lane, which the compiler turns back into vector operations
 * (one rule per optimizer, no vector copy of it to keep in step). */
CLOPT_INLINE void clopt_lanes_update(clopt_vreal *x, clopt_vreal *a, clopt_vreal *b, clopt_vreal *c,
                                     clopt_vreal g, real h0, real h1, real h2, real h3, real h4,
                                     real h5, real h6, real h7, real gscale)
{
    union clopt_vlanes xl, al, bl, cl, gl;
    xl.v = *x;
    al.v = *a;
    bl.v = *b;
    cl.v = *c;
    gl.v = g;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        clopt_element_update(&xl.s[l], &al.s[l], &bl.s[l], &cl.s[l], gl.s[l], h0, h1, h2, h3, h4,
                             h5, h6, h7, gscale);
    *x = xl.v;
    *a = al.v;
    *b = bl.v;
    *c = cl.v;
}

/* clopt_lane_add of every lane: the lanes' block sums as vectors, or with CLOPT_FBLOCK = 1
 * each term straight into its acc_t sum. */
CLOPT_INLINE void clopt_lanes_add(struct clopt_lanes *acc, clopt_vreal *block_f,
                                  clopt_vreal *block_g2, clopt_vreal f, clopt_vreal g)
{
#if CLOPT_FBLOCK > 1
    (void)acc;
    *block_f += f;
    *block_g2 += g * g;
#else
    union clopt_vlanes fl, gl;
    fl.v = f;
    gl.v = g;
#pragma unroll
    for (uint l = 0; l < CLOPT_VW; ++l)
        clopt_lane_add(acc, 0, 0, l, fl.s[l], gl.s[l]);
    (void)block_f, (void)block_g2;
#endif
}

/* One group's step from its f and g: the update of theta and the state, their stores, and
 * the lane sums. */
CLOPT_INLINE void
clopt_grid_group_step(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                      __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                      __global const real *CLOPT_RESTRICT src, ulong j, clopt_vreal f,
                      clopt_vreal g, struct clopt_lanes *acc, clopt_vreal *block_f,
                      clopt_vreal *block_g2, real h0, real h1, real h2, real h3, real h4, real h5,
                      real h6, real h7, real gscale, const bool with_loss, const bool with_update)
{
    if (with_update) {
        clopt_vreal xv = CLOPT_VLOAD(0, src + CLOPT_HALO + j);
        clopt_vreal sa = CLOPT_UPDATE_NSTATE > 0 ? CLOPT_VLOAD(0, s0 + j) : (clopt_vreal)0;
        clopt_vreal sb = CLOPT_UPDATE_NSTATE > 1 ? CLOPT_VLOAD(0, s1 + j) : (clopt_vreal)0;
        clopt_vreal sc = CLOPT_UPDATE_NSTATE > 2 ? CLOPT_VLOAD(0, s2 + j) : (clopt_vreal)0;
        /* Each is read lane by lane below (see CLOPT_OPAQUE_VREAL). */
        CLOPT_OPAQUE_VREAL(xv);
        if (CLOPT_UPDATE_NSTATE > 0)
            CLOPT_OPAQUE_VREAL(sa);
        if (CLOPT_UPDATE_NSTATE > 1)
            CLOPT_OPAQUE_VREAL(sb);
        if (CLOPT_UPDATE_NSTATE > 2)
            CLOPT_OPAQUE_VREAL(sc);
        clopt_lanes_update(&xv, &sa, &sb, &sc, g, h0, h1, h2, h3, h4, h5, h6, h7, gscale);
        /* Lane by lane (one vector store after compiling), or one non-temporal store. */
        union clopt_vlanes x;
        x.v = xv;
        clopt_store_theta(theta + CLOPT_HALO + j, x.s);
        if (CLOPT_UPDATE_NSTATE > 0)
            CLOPT_VSTORE(sa, 0, s0 + j);
        if (CLOPT_UPDATE_NSTATE > 1)
            CLOPT_VSTORE(sb, 0, s1 + j);
        if (CLOPT_UPDATE_NSTATE > 2)
            CLOPT_VSTORE(sc, 0, s2 + j);
    }
    if (with_loss)
        clopt_lanes_add(acc, block_f, block_g2, f, g);
}

/* The group from shard element j whose last lanes lie past the shard (the shard's last
 * group, when its length is not a multiple of CLOPT_VW): clopt_grid_fdf, the update, the
 * stores and the loss terms of the lanes inside only, as clopt_sweep does with its bounds
 * checks. Out of line: rare, and long. */
__attribute__((noinline)) static void
clopt_grid_group_tail(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                      __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                      __global const real *CLOPT_RESTRICT src,
                      __global const real *CLOPT_RESTRICT data, ulong j, ulong n_shard,
                      ulong offset, struct clopt_lanes *acc, clopt_vreal *block_f,
                      clopt_vreal *block_g2, real h0, real h1, real h2, real h3, real h4, real h5,
                      real h6, real h7, real gscale, const bool with_loss, const bool with_update)
{
    union clopt_vlanes bf, bg2;
    bf.v = *block_f;
    bg2.v = *block_g2;
#pragma nounroll
    for (uint l = 0; l < CLOPT_VW && j + l < n_shard; ++l) {
        real g;
#ifdef CLOPT_OBJECTIVE_DATA
        const real d = data[j + l];
#else
        const real d = 0;
#endif
        const real f = clopt_grid_fdf(src, j + l, offset + j + l, true, d, &g);
        if (with_update) {
            real x = src[CLOPT_HALO + j + l];
            real sa = CLOPT_UPDATE_NSTATE > 0 ? s0[j + l] : 0;
            real sb = CLOPT_UPDATE_NSTATE > 1 ? s1[j + l] : 0;
            real sc = CLOPT_UPDATE_NSTATE > 2 ? s2[j + l] : 0;
            clopt_element_update(&x, &sa, &sb, &sc, g, h0, h1, h2, h3, h4, h5, h6, h7, gscale);
            theta[CLOPT_HALO + j + l] = x;
            if (CLOPT_UPDATE_NSTATE > 0)
                s0[j + l] = sa;
            if (CLOPT_UPDATE_NSTATE > 1)
                s1[j + l] = sb;
            if (CLOPT_UPDATE_NSTATE > 2)
                s2[j + l] = sc;
        }
        if (with_loss)
            clopt_lane_add(acc, bf.s, bg2.s, l, f, g);
    }
    *block_f = bf.v;
    *block_g2 = bg2.v;
}

/* How many groups from coordinates c (the row interior or not) lie inside the grid, one after
 * the other along the row: 0 when the group at c does not. */
CLOPT_INLINE ulong clopt_grid_interior_run(const ulong *c, const bool row_interior)
{
    const ulong s = CLOPT_GRID_SHAPE(CLOPT_GRID_AXES - 1);
    const ulong c_last = c[CLOPT_GRID_AXES - 1];
    if (!row_interior || !clopt_grid_span_interior(c_last))
        return 0;
    return (s - CLOPT_VW - CLOPT_GRID_RADIUS - c_last) / CLOPT_VW + 1;
}

/* The grid sweep of an objective with a vector form: every group of CLOPT_VW points as
 * vectors from the box loads through the update, the stores and the lane sums. The groups
 * inside the grid come in runs along a row, swept with no test; the others (faces, row ends,
 * shard ends) one at a time, out of line. */
CLOPT_INLINE void
clopt_sweep_grid(__global real *CLOPT_RESTRICT theta, __global real *CLOPT_RESTRICT s0,
                 __global real *CLOPT_RESTRICT s1, __global real *CLOPT_RESTRICT s2,
                 __global const real *CLOPT_RESTRICT src, __global const real *CLOPT_RESTRICT data,
                 ulong n_shard, ulong offset, ulong base, uint limit, struct clopt_lanes *acc,
                 real h0, real h1, real h2, real h3, real h4, real h5, real h6, real h7,
                 real gscale, const bool with_loss, const bool with_update)
{
    ulong c[CLOPT_GRID_AXES];
    clopt_grid_coords(offset + base, c);
    /* Whether the src buffer holds the boxes is an interval of j
     * (clopt_grid_group_in_buffer): the chunk's first and last whole groups answer for all. */
    const uint whole = limit / CLOPT_VW * CLOPT_VW;
    const bool chunk_in_buffer = whole > 0 && clopt_grid_group_in_buffer(base, n_shard) &&
                                 clopt_grid_group_in_buffer(base + whole - CLOPT_VW, n_shard);
    bool row_interior = chunk_in_buffer && clopt_grid_row_interior(c);
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
    for (uint b = 0; b < CLOPT_EPW; b += CLOPT_BLOCK) {
        clopt_vreal block_f = (clopt_vreal)0, block_g2 = (clopt_vreal)0;
        /* Past the shard (the last chunk): no elements, and the zero loss terms clopt_sweep
         * folds to keep a Kahan sum's bits. */
        if (b >= limit) {
            if (with_loss && CLOPT_ACC_KAHAN) {
                union clopt_vlanes zero;
                zero.v = block_f;
                clopt_block_fold(acc, zero.s, zero.s);
            }
            continue;
        }
        /* theta's new lines enter at the box's far corner (the row or plane ahead,
         * CLOPT_GRID_REACH = CLOPT_HALO away): the point's own row was read as that corner a
         * row or plane earlier. */
        clopt_prefetch_block(src + 2 * CLOPT_HALO, s0, s1, s2, data, base + b, with_update);
        uint k = b;
        while (k < b + CLOPT_BLOCK && k < limit) {
            /* A run of groups inside the grid, within this block, this row and the shard. */
            const ulong inside = clopt_grid_interior_run(c, row_interior);
            const uint run = (uint)min(
                inside, (ulong)((min(b + CLOPT_BLOCK, whole) - min(k, whole)) / CLOPT_VW));
            const uint end = k + run * CLOPT_VW;
#ifdef __clang__
#pragma clang loop vectorize(disable)
#endif
            for (; k < end; k += CLOPT_VW) {
                clopt_vreal g;
                const clopt_vreal f = clopt_grid_group_vec(src, data, base + k, c, true, &g);
                clopt_grid_group_step(theta, s0, s1, s2, src, base + k, f, g, acc, &block_f,
                                      &block_g2, h0, h1, h2, h3, h4, h5, h6, h7, gscale, with_loss,
                                      with_update);
            }
            c[CLOPT_GRID_AXES - 1] += run * CLOPT_VW;
            if (k < b + CLOPT_BLOCK && k >= whole && k < limit) {
                clopt_grid_group_tail(theta, s0, s1, s2, src, data, base + k, n_shard, offset, acc,
                                      &block_f, &block_g2, h0, h1, h2, h3, h4, h5, h6, h7, gscale,
                                      with_loss, with_update);
                k += CLOPT_VW;
            } else if (k < b + CLOPT_BLOCK && k < limit) {
                clopt_vreal f, g;
                clopt_grid_group_edge(src, data, base + k, n_shard, offset, c, &f, &g);
                clopt_grid_group_step(theta, s0, s1, s2, src, base + k, f, g, acc, &block_f,
                                      &block_g2, h0, h1, h2, h3, h4, h5, h6, h7, gscale, with_loss,
                                      with_update);
                k += CLOPT_VW;
                if (clopt_grid_advance(c, CLOPT_VW))
                    row_interior = chunk_in_buffer && clopt_grid_row_interior(c);
            }
        }
        if (with_loss) {
            union clopt_vlanes bf, bg2;
            bf.v = block_f;
            bg2.v = block_g2;
            clopt_block_fold(acc, bf.s, bg2.s);
        }
    }
}
#endif
#endif
