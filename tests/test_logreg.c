/* examples/logreg.c (external gradients, Adam) against a double reference: Newton's method
 * on the same L2-regularised logistic loss, on the data the example wrote. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAMBDA 1e-2 /* the example's */
#define MAX_D 64

/* Solves H v = g in place (H symmetric positive definite, d x d) by Cholesky. */
static void cholesky_solve(double *H, double *g, size_t d)
{
    for (size_t j = 0; j < d; ++j) {
        double s = H[j * d + j];
        for (size_t k = 0; k < j; ++k)
            s -= H[j * d + k] * H[j * d + k];
        cr_assert_gt(s, 0);
        H[j * d + j] = sqrt(s);
        for (size_t i = j + 1; i < d; ++i) {
            double t = H[i * d + j];
            for (size_t k = 0; k < j; ++k)
                t -= H[i * d + k] * H[j * d + k];
            H[i * d + j] = t / H[j * d + j];
        }
    }
    for (size_t i = 0; i < d; ++i) {
        for (size_t k = 0; k < i; ++k)
            g[i] -= H[i * d + k] * g[k];
        g[i] /= H[i * d + i];
    }
    for (size_t i = d; i-- > 0;) {
        for (size_t k = i + 1; k < d; ++k)
            g[i] -= H[k * d + i] * g[k];
        g[i] /= H[i * d + i];
    }
}

/* The minimiser of (1/m) sum_i [softplus(x_i . v) - y_i x_i . v] + (lambda/2)|v|^2. */
static void newton(const double *X, const double *y, size_t m, size_t d, double *v)
{
    double g[MAX_D], H[MAX_D * MAX_D];
    memset(v, 0, d * sizeof *v);
    for (int it = 0; it < 30; ++it) {
        for (size_t j = 0; j < d; ++j) {
            g[j] = LAMBDA * v[j];
            for (size_t k = 0; k < d; ++k)
                H[j * d + k] = j == k ? LAMBDA : 0;
        }
        for (size_t i = 0; i < m; ++i) {
            double z = 0;
            for (size_t j = 0; j < d; ++j)
                z += X[i * d + j] * v[j];
            const double p = 1 / (1 + exp(-z)), r = (p - y[i]) / (double)m,
                         c = p * (1 - p) / (double)m;
            for (size_t j = 0; j < d; ++j) {
                g[j] += r * X[i * d + j];
                for (size_t k = 0; k <= j; ++k)
                    H[j * d + k] += c * X[i * d + j] * X[i * d + k];
            }
        }
        for (size_t j = 0; j < d; ++j)
            for (size_t k = j + 1; k < d; ++k)
                H[j * d + k] = H[k * d + j];
        cholesky_solve(H, g, d);
        for (size_t j = 0; j < d; ++j)
            v[j] -= g[j];
    }
}

Test(logreg, example_matches_newton_reference)
{
    char *dir = temp_dir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' > /dev/null", CLOPT_EXAMPLE_LOGREG, dir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    char *xp = path_in(dir, "X.npy"), *yp = path_in(dir, "y.npy"), *wp = path_in(dir, "w.npy");
    size_t nx, ny, nw;
    int is_double;
    double *X = read_npy_as_double(xp, &nx, &is_double);
    double *y = read_npy_as_double(yp, &ny, &is_double);
    double *w = read_npy_as_double(wp, &nw, &is_double);
    cr_assert(nw > 0 && nw <= MAX_D && nx == ny * nw, "shapes %zu %zu %zu", nx, ny, nw);
    double v[MAX_D];
    newton(X, y, ny, nw, v);
    /* Adam with a cosine schedule to 0 ends within float rounding of the minimiser (seen:
     * 7e-7); 1e-4 leaves room for other devices' exp and summation order. */
    for (size_t j = 0; j < nw; ++j)
        cr_assert(close_enough(w[j], v[j], 0, 1e-4), "w[%zu] = %.9g, reference %.9g", j, w[j],
                  v[j]);
    free(X);
    free(y);
    free(w);
    free(xp);
    free(yp);
    free(wp);
    remove_tree(dir);
    free(dir);
}
