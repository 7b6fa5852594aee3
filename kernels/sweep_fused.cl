/* Part of step.cl's program text, continuing sweep_grid.cl: multi-step fusion, the block
 * sweep (clopt_sweep_fused) and the group-by-group one (clopt_sweep_direct). */

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
