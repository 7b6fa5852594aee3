/* Folds the step kernel's partial pairs (f, g^2) into pairs of sums: group k of the fold
 * folds pairs [k span, (k + 1) span) (cut at count) into out[2 k], out[2 k + 1]; a launch
 * runs groups group0, group0 + 1, ... (MPI ranks each run the groups of their own pairs,
 * host/solver/ranks.c). The host sets span = ceil(count / groups) for a fold of `groups`.
 * Within a group, work-item l sums the pairs l, l + CLOPT_RWG, l + 2 CLOPT_RWG, ... of the
 * run in that order (adjacent work-items read adjacent pairs: coalesced on GPUs), then a
 * fixed tree adds the items' sums. The host runs it once with one group (out = loss and
 * ||g||^2), or twice: many groups, then one group over their pairs. The grouping depends
 * only on the number of partials and knobs.reduce_group, so the same partials always give
 * the same bits, for any shard count. With CLOPT_RWG = 1 and one group (the CPU default)
 * the partials are summed one after the other in slot order. */
#ifndef CLOPT_RWG
#define CLOPT_RWG 1
#endif
#ifndef CLOPT_COMMON_CL
typedef double acc_t;
void clopt_acc_add(acc_t *s, acc_t *c, acc_t x);
#endif

/* partials[2 first ..] are the pairs of one iteration (a fused launch writes several). The
 * host sets the arguments by the positions in host/solver/kernel_args.h. */
__kernel void clopt_reduce(__global const acc_t *all_partials, ulong count, __global acc_t *out,
                           ulong first, ulong span, ulong group0)
{
    __global const acc_t *partials = all_partials + 2 * first;
    const uint lid = get_local_id(0);
    const ulong group = group0 + get_group_id(0);
    const ulong begin = min(group * span, count);
    const ulong end = min(begin + span, count);
    acc_t f = 0, fc = 0, g2 = 0, g2c = 0;
    for (ulong p = begin + lid; p < end; p += CLOPT_RWG) {
        clopt_acc_add(&f, &fc, partials[2 * p]);
        clopt_acc_add(&g2, &g2c, partials[2 * p + 1]);
    }
    f -= fc;
    g2 -= g2c;
#if CLOPT_RWG > 1
    __local acc_t local_f[CLOPT_RWG], local_g2[CLOPT_RWG];
    local_f[lid] = f;
    local_g2[lid] = g2;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint stride = CLOPT_RWG / 2; stride > 0; stride /= 2) {
        if (lid < stride) {
            local_f[lid] += local_f[lid + stride];
            local_g2[lid] += local_g2[lid + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    f = local_f[0];
    g2 = local_g2[0];
#endif
    if (lid == 0) {
        out[2 * group] = f;
        out[2 * group + 1] = g2;
    }
}
