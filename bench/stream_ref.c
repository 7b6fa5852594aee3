/* The STREAM-style in-place scale a[i] = s * a[i], compiled twice by CMake: once with the
 * default flags (a plain C loop) and once with -march=native (the widest vectors this
 * machine has), each under its own name. */
#include <omp.h>
#include <stddef.h>
#include <string.h>

#ifndef STREAM_SCALE_NAME
#define STREAM_SCALE_NAME stream_scale_portable
#endif

#define STREAM_REPEATS 5

/* Best of STREAM_REPEATS in-place scales over n elements, in GB/s (8 or 16 bytes moved per
 * element: one read, one write). */
double STREAM_SCALE_NAME(void *data, size_t n, int is_double);

double STREAM_SCALE_NAME(void *data, size_t n, int is_double)
{
    double best = 0;
    for (int r = 0; r < STREAM_REPEATS; ++r) {
        const double start = omp_get_wtime();
        if (is_double) {
            double *a = data;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; ++i)
                a[i] = 0.999 * a[i];
        } else {
            float *a = data;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; ++i)
                a[i] = 0.999f * a[i];
        }
        const double seconds = omp_get_wtime() - start;
        const double gbs = 2.0 * (double)n * (is_double ? 8 : 4) / seconds / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

#ifndef FUSED_GD_NAME
#define FUSED_GD_NAME fused_gd_portable
#endif

/* The compute ceiling of a fused step on this machine: gradient descent on sphere with the
 * loss every iteration, `fuse` iterations per block of FUSED_BLOCK elements held in
 * registers, each iteration's loss terms summed by FUSED_LANES lanes in working precision
 * and folded into double per block: clopt's CPU defaults (vw 16, fblock 16) written with
 * GCC/clang vector types, so that the lanes are one vector whatever the compiler's cost
 * model or preferred width says. A ceiling rather than a twin: built with
 * -ffp-contract=fast it also fuses x * x into its sum (4 vector operations per lane where
 * clopt's kernel does 5) and widens f and g^2 into one double sum per iteration. Best
 * element-iterations per second of FUSED_REPEATS passes over n elements
 * (1 <= fuse <= 32; the tail block is padded with zeros). */
#define FUSED_LANES 16
#define FUSED_GROUPS 16
#define FUSED_BLOCK (FUSED_LANES * FUSED_GROUPS)
#define FUSED_REPEATS 3

typedef float fused_vf __attribute__((vector_size(FUSED_LANES * sizeof(float))));
typedef double fused_vd __attribute__((vector_size(FUSED_LANES * sizeof(double))));
/* The lane sums widened to double. */
typedef double fused_wf __attribute__((vector_size(FUSED_LANES * sizeof(double))));

double FUSED_GD_NAME(void *data, size_t n, int is_double, unsigned fuse);

/* One block: x in registers for all `fuse` iterations; each iteration's lane sums are
 * widened into its per-lane double sums (vector conversions, as clopt's kernel does). */
#define FUSED_GD_BLOCK(real, vec, dvec, src, dst)                                                  \
    do {                                                                                           \
        vec x[FUSED_GROUPS];                                                                       \
        _Pragma("GCC unroll 16") for (int q = 0; q < FUSED_GROUPS; ++q)                            \
            memcpy(&x[q], (src) + q * FUSED_LANES, sizeof(vec));                                   \
        for (unsigned s = 0; s < fuse; ++s) {                                                      \
            vec sum_f = {0}, sum_g2 = {0};                                                         \
            _Pragma("GCC unroll 16") for (int q = 0; q < FUSED_GROUPS; ++q)                        \
            {                                                                                      \
                const vec g = x[q] + x[q];                                                         \
                sum_f += x[q] * x[q];                                                              \
                sum_g2 += g * g;                                                                   \
                x[q] -= lr * g;                                                                    \
            }                                                                                      \
            acc[s] += __builtin_convertvector(sum_f, dvec);                                        \
            acc[s] += __builtin_convertvector(sum_g2, dvec);                                       \
        }                                                                                          \
        _Pragma("GCC unroll 16") for (int q = 0; q < FUSED_GROUPS; ++q)                            \
            memcpy((dst) + q * FUSED_LANES, &x[q], sizeof(vec));                                   \
    } while (0)

#define FUSED_GD_BODY(real, vec, dvec)                                                             \
    do {                                                                                           \
        real *theta = data;                                                                        \
        const real lr = (real)1e-4;                                                                \
        _Pragma("omp parallel")                                                                    \
        {                                                                                          \
            dvec acc[32];                                                                          \
            memset(acc, 0, sizeof acc);                                                            \
            _Pragma("omp for schedule(static)") for (size_t b = 0; b < n; b += FUSED_BLOCK)        \
            {                                                                                      \
                if (n - b >= FUSED_BLOCK) {                                                        \
                    FUSED_GD_BLOCK(real, vec, dvec, theta + b, theta + b);                         \
                } else {                                                                           \
                    real tail[FUSED_BLOCK] = {0};                                                  \
                    memcpy(tail, theta + b, (n - b) * sizeof(real));                               \
                    FUSED_GD_BLOCK(real, vec, dvec, tail, tail);                                   \
                    memcpy(theta + b, tail, (n - b) * sizeof(real));                               \
                }                                                                                  \
            }                                                                                      \
            double mine = 0;                                                                       \
            for (unsigned s = 0; s < fuse; ++s)                                                    \
                for (int l = 0; l < FUSED_LANES; ++l)                                              \
                    mine += acc[s][l];                                                             \
            _Pragma("omp atomic") total += mine;                                                   \
        }                                                                                          \
    } while (0)

double FUSED_GD_NAME(void *data, size_t n, int is_double, unsigned fuse)
{
    double best = 0, total = 0;
    if (fuse < 1 || fuse > 32)
        return 0;
    for (int r = 0; r < FUSED_REPEATS; ++r) {
        const double start = omp_get_wtime();
        if (is_double)
            FUSED_GD_BODY(double, fused_vd, fused_vd);
        else
            FUSED_GD_BODY(float, fused_vf, fused_wf);
        const double rate = (double)n * fuse / (omp_get_wtime() - start);
        if (rate > best)
            best = rate;
    }
    /* A use of the sums, so that no compiler drops them. */
    return total >= 0 ? best : -best;
}

#ifndef FMA_PEAK_NAME
#define FMA_PEAK_NAME fma_peak_portable
#endif

/* Vector arithmetic peak: float lane-operations per second over all threads of a
 * register-only loop of FMA_CHAINS independent multiply-add chains on FUSED_LANES-wide
 * vectors (a multiply-add counts as one operation, as one instruction does it). No chain
 * may start at 1, the fixed point of x * 0.999 + 0.001 in float: GCC proves such a chain
 * constant and drops it. */
#define FMA_CHAINS 12
#define FMA_STEPS 20000000L

double FMA_PEAK_NAME(void);

double FMA_PEAK_NAME(void)
{
    double sink = 0;
    int threads = 1;
    const double start = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
    {
#pragma omp single
        threads = omp_get_num_threads();
        fused_vf a[FMA_CHAINS];
        const fused_vf m = (fused_vf){0} + 0.999f, c = (fused_vf){0} + 0.001f;
        for (int k = 0; k < FMA_CHAINS; ++k)
            a[k] = (fused_vf){0} + (float)(k + 2);
        for (long i = 0; i < FMA_STEPS; ++i) {
#pragma GCC unroll 12
            for (int k = 0; k < FMA_CHAINS; ++k)
                a[k] = a[k] * m + c;
        }
        for (int k = 0; k < FMA_CHAINS; ++k)
            sink += a[k][0];
    }
    const double seconds = omp_get_wtime() - start;
    const double ops = (double)FMA_STEPS * FMA_CHAINS * FUSED_LANES * threads;
    return sink >= 0 ? ops / seconds : -ops / seconds;
}
