/* The STREAM-style in-place scale a[i] = s * a[i], compiled twice by CMake: once with the
 * default flags (a plain C loop) and once with -march=native (the widest vectors this
 * machine has), each under its own name. */
#include <omp.h>
#include <stddef.h>

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
