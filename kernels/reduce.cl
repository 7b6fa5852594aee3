/* Folds the step kernel's partial pairs (f, g^2) into out[0] = loss, out[1] = ||g||^2.
 * Launched as one work-group of CLOPT_RWG items; each sums a contiguous run of partials in
 * order, then a fixed tree: the same partials always give the same bits. */
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
                           ulong first)
{
    __global const acc_t *partials = all_partials + 2 * first;
    const uint lid = get_local_id(0);
    const ulong per = (count + CLOPT_RWG - 1) / CLOPT_RWG;
    const ulong begin = min((ulong)lid * per, count);
    const ulong end = min(begin + per, count);
    acc_t f = 0, fc = 0, g2 = 0, g2c = 0;
    for (ulong p = begin; p < end; ++p) {
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
        out[0] = f;
        out[1] = g2;
    }
}
