/* lbfgs and cg against a double reference written here from Nocedal & Wright (two-loop
 * recursion, Algorithm 7.4; line searches, Algorithms 3.5 and 3.6 with cubic interpolation;
 * nonlinear CG, section 5.2), iteration by iteration; convergence on a quadratic and on
 * Rosenbrock; results independent of the shard count; the options' checks. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 128
#define MAX_M 8
#define REF_RTOL 1e-9
#define REF_ATOL 1e-12

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(lbfgs, .init = setup, .fini = teardown);

/* ---- the reference ---- */

struct problem {
    const char *objective;
    size_t n;
    double cond; /* ellipsoid */
};

static double fdf(const struct problem *p, const double *x, double *g)
{
    double f = 0;
    const size_t n = p->n;
    if (!strcmp(p->objective, "ellipsoid")) {
        for (size_t i = 0; i < n; ++i) {
            const double c = n > 1 ? pow(p->cond, (double)i / (double)(n - 1)) : 1.0;
            f += c * x[i] * x[i];
            g[i] = 2 * c * x[i];
        }
        return f;
    }
    for (size_t i = 0; i < n; ++i)
        g[i] = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
        const double valley = x[i + 1] - x[i] * x[i], off = 1 - x[i];
        f += 100 * valley * valley + off * off;
        g[i] += -400 * x[i] * valley - 2 * off;
        g[i + 1] += 200 * valley;
    }
    return f;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; ++i)
        s += a[i] * b[i];
    return s;
}

struct ref {
    const struct problem *p;
    const struct clopt_options *o;
    double x[MAX_N], g[MAX_N], d[MAX_N], xt[MAX_N], gt[MAX_N];
    double f, gd, gtd, gtg;
    unsigned long evaluations;
};

/* phi(alpha): the trial point and its gradient into xt, gt. */
static void trial(struct ref *r, double alpha, double *phi, double *dphi)
{
    for (size_t i = 0; i < r->p->n; ++i)
        r->xt[i] = r->x[i] + alpha * r->d[i];
    *phi = fdf(r->p, r->xt, r->gt);
    *dphi = dot(r->gt, r->d, r->p->n);
    r->gtd = *dphi;
    r->gtg = dot(r->gt, r->g, r->p->n);
    ++r->evaluations;
}

/* Nocedal & Wright (3.59). */
static double cubic(double a, double fa, double da, double b, double fb, double db)
{
    const double d1 = da + db - 3 * (fa - fb) / (a - b), disc = d1 * d1 - da * db;
    if (!(disc >= 0))
        return NAN;
    const double d2 = copysign(sqrt(disc), b - a), den = db - da + 2 * d2;
    return den == 0 ? NAN : b - (b - a) * (db + d2 - d1) / den;
}

/* Returns the accepted step, or 0 when none was found within max_ls trials. */
static double line_search(struct ref *r, double alpha)
{
    const double f0 = r->f, d0 = r->gd, c1 = r->o->c1, c2 = r->o->c2;
    unsigned long left = (unsigned long)r->o->max_ls;
    double phi, dphi;
    if (r->o->line_search == CLOPT_LINE_SEARCH_ARMIJO) {
        for (; left > 0; --left) {
            trial(r, alpha, &phi, &dphi);
            if (isfinite(phi) && phi <= f0 + c1 * alpha * d0)
                return alpha;
            const double q = -d0 * alpha * alpha / (2 * (phi - f0 - d0 * alpha));
            alpha = isfinite(phi) ? fmin(fmax(q, 0.1 * alpha), 0.5 * alpha) : 0.5 * alpha;
        }
        return 0;
    }
    double lo_a = 0, lo_f = f0, lo_d = d0, hi_a = 0, hi_f = 0, hi_d = 0;
    int zooming = 0;
    for (int first = 1; left > 0 && !zooming; first = 0, --left) {
        trial(r, alpha, &phi, &dphi);
        if (!(isfinite(phi) && phi <= f0 + c1 * alpha * d0) || (!first && phi >= lo_f)) {
            hi_a = alpha, hi_f = phi, hi_d = dphi, zooming = 1;
        } else if (fabs(dphi) <= -c2 * d0) {
            return alpha;
        } else if (dphi >= 0) {
            hi_a = lo_a, hi_f = lo_f, hi_d = lo_d;
            lo_a = alpha, lo_f = phi, lo_d = dphi, zooming = 1;
        } else {
            const double low = alpha + 1.1 * (alpha - lo_a), high = alpha + 4 * (alpha - lo_a);
            const double next = cubic(lo_a, lo_f, lo_d, alpha, phi, dphi);
            lo_a = alpha, lo_f = phi, lo_d = dphi;
            alpha = isfinite(next) ? fmin(fmax(next, low), high) : high;
        }
    }
    for (; left > 0; --left) {
        const double a = fmin(lo_a, hi_a), b = fmax(lo_a, hi_a), w = b - a;
        if (!(w > 0) || w <= 1e-16 * b)
            return 0;
        double t = isfinite(hi_f) ? cubic(lo_a, lo_f, lo_d, hi_a, hi_f, hi_d) : NAN;
        if (!isfinite(t))
            t = 0.5 * (a + b);
        t = fmin(fmax(t, a + 0.1 * w), b - 0.1 * w);
        trial(r, t, &phi, &dphi);
        if (!(isfinite(phi) && phi <= f0 + c1 * t * d0) || phi >= lo_f) {
            hi_a = t, hi_f = phi, hi_d = dphi;
            continue;
        }
        if (fabs(dphi) <= -c2 * d0)
            return t;
        if (dphi * (hi_a - lo_a) >= 0)
            hi_a = lo_a, hi_f = lo_f, hi_d = lo_d;
        lo_a = t, lo_f = phi, lo_d = dphi;
    }
    return 0;
}

/* L-BFGS history, oldest first. */
struct history {
    double s[MAX_M][MAX_N], yv[MAX_M][MAX_N];
    size_t k;
};

static void two_loop(struct ref *r, const struct history *h)
{
    const size_t n = r->p->n;
    double q[MAX_N], a[MAX_M];
    memcpy(q, r->g, n * sizeof *q);
    for (size_t i = h->k; i-- > 0;) {
        a[i] = dot(h->s[i], q, n) / dot(h->s[i], h->yv[i], n);
        for (size_t j = 0; j < n; ++j)
            q[j] -= a[i] * h->yv[i][j];
    }
    const double gamma =
        dot(h->s[h->k - 1], h->yv[h->k - 1], n) / dot(h->yv[h->k - 1], h->yv[h->k - 1], n);
    for (size_t j = 0; j < n; ++j)
        q[j] *= gamma;
    for (size_t i = 0; i < h->k; ++i) {
        const double b = dot(h->yv[i], q, n) / dot(h->s[i], h->yv[i], n);
        for (size_t j = 0; j < n; ++j)
            q[j] += h->s[i][j] * (a[i] - b);
    }
    for (size_t j = 0; j < n; ++j)
        r->d[j] = -q[j];
    r->gd = dot(r->g, r->d, n);
}

static void steepest(struct ref *r)
{
    for (size_t j = 0; j < r->p->n; ++j)
        r->d[j] = -r->g[j];
    r->gd = -dot(r->g, r->g, r->p->n);
}

/* Runs `iters` iterations of lbfgs (history m) or cg (m == 0) from x; x is the result. */
static unsigned long reference(const struct problem *p, const struct clopt_options *o, size_t m,
                               double *x, uint64_t iters)
{
    static struct ref r;
    static struct history h;
    memset(&r, 0, sizeof r);
    memset(&h, 0, sizeof h);
    const size_t n = p->n;
    r.p = p;
    r.o = o;
    memcpy(r.x, x, n * sizeof *x);
    r.f = fdf(p, r.x, r.g);
    r.evaluations = 1;
    steepest(&r);
    double alpha_prev = 0, gd_prev = 0;
    for (uint64_t t = 0; t < iters; ++t) {
        const double gg = dot(r.g, r.g, n);
        const int fresh = t == 0 || (m ? h.k == 0 : r.gd == -gg);
        double alpha0 = fresh ? 1 / sqrt(gg) : m ? 1.0 : alpha_prev * gd_prev / r.gd;
        const double alpha = line_search(&r, alpha0);
        if (alpha == 0)
            break;
        const int pair = m && alpha * (r.gtd - r.gd) > 0;
        if (pair) {
            if (h.k == m) {
                memmove(h.s[0], h.s[1], (m - 1) * sizeof h.s[0]);
                memmove(h.yv[0], h.yv[1], (m - 1) * sizeof h.yv[0]);
                --h.k;
            }
            for (size_t j = 0; j < n; ++j) {
                h.s[h.k][j] = r.xt[j] - r.x[j];
                h.yv[h.k][j] = r.gt[j] - r.g[j];
            }
            ++h.k;
            if (!(dot(h.s[h.k - 1], h.yv[h.k - 1], n) > 0))
                --h.k;
        }
        alpha_prev = alpha;
        gd_prev = r.gd;
        const double gtg = r.gtg, gtd = r.gtd, gg_old = gg;
        memcpy(r.x, r.xt, n * sizeof *x);
        memcpy(r.g, r.gt, n * sizeof *x);
        r.f = fdf(p, r.x, r.gt);
        const double gg_new = dot(r.g, r.g, n);
        if (m) {
            if (h.k == 0)
                steepest(&r);
            else
                two_loop(&r, &h);
            if (!(r.gd < 0)) {
                h.k = 0;
                steepest(&r);
            }
            continue;
        }
        double beta = o->cg_beta == CLOPT_CG_FR   ? gg_new / gg_old
                      : o->cg_beta == CLOPT_CG_HS ? (gg_new - gtg) / (gtd - gd_prev)
                                                  : (gg_new - gtg) / gg_old;
        if (!(beta > 0) || !isfinite(beta) || fabs(gtg) >= 0.1 * gg_new)
            beta = 0;
        const double gd = -gg_new + beta * gtd;
        if (beta == 0 || !(gd < 0)) {
            steepest(&r);
            continue;
        }
        for (size_t j = 0; j < n; ++j)
            r.d[j] = -r.g[j] + beta * r.d[j];
        r.gd = gd;
    }
    memcpy(x, r.x, n * sizeof *x);
    return r.evaluations;
}

/* ---- clopt runs ---- */

static void base_options(struct clopt_options *o, const struct problem *p, const char *optimizer)
{
    SKIP_WITHOUT_FP64();
    clopt_options_init(o);
    o->objective = p->objective;
    o->dim = p->n;
    o->optimizer = optimizer;
    o->precision = CLOPT_DOUBLE;
    o->seed = 7;
    o->init_value = 0.5;
}

static struct clopt_param cond_param[1];

/* Runs clopt; theta0 and theta (n doubles each) get the start and the end point. */
static int run(const struct problem *p, struct clopt_options *o, double *theta0, double *theta,
               struct clopt_result *res)
{
    char cond[32];
    if (!strcmp(p->objective, "ellipsoid")) {
        snprintf(cond, sizeof cond, "%.17g", p->cond);
        cond_param[0] = (struct clopt_param){.key = "cond", .value = cond};
        o->params = cond_param;
        o->n_params = 1;
    }
    struct clopt_solver *s;
    int status = clopt_solver_create(&s, ctx, o);
    cr_assert_eq(status, CLOPT_OK, "create: %s", clopt_errmsg(ctx));
    if (theta0)
        cr_assert_eq(clopt_solver_read_theta(s, theta0, CLOPT_DOUBLE, 0, p->n), CLOPT_OK);
    status = clopt_solver_run(s, res);
    cr_assert(status > 0, "run: %d %s", status, clopt_errmsg(ctx));
    if (theta)
        cr_assert_eq(clopt_solver_read_theta(s, theta, o->precision, 0, p->n), CLOPT_OK);
    clopt_solver_destroy(s);
    return status;
}

/* clopt after k = 1..iters iterations against the reference after k. */
static void compare(const struct problem *p, const char *optimizer, double history,
                    double line_search, double cg_beta, int init_zero, uint64_t iters)
{
    for (uint64_t k = 1; k <= iters; ++k) {
        struct clopt_options o;
        base_options(&o, p, optimizer);
        if (init_zero) {
            o.init = CLOPT_INIT_CONST;
            o.init_value = 0;
        }
        o.max_iters = k;
        o.history = history;
        o.line_search = line_search;
        o.cg_beta = cg_beta;
        double x0[MAX_N], x[MAX_N];
        struct clopt_result res;
        run(p, &o, x0, x, &res);
        cr_assert_eq(res.iterations, k, "%s: stopped after %llu iterations", optimizer,
                     (unsigned long long)res.iterations);
        /* The reference reads the defaults the library filled in. */
        o.history = isnan(history) ? 10 : history;
        o.c1 = 1e-4;
        o.c2 = !strcmp(optimizer, "cg") ? 0.1 : 0.9;
        o.max_ls = 20;
        o.line_search = isnan(line_search) ? CLOPT_LINE_SEARCH_WOLFE : line_search;
        o.cg_beta = isnan(cg_beta) ? CLOPT_CG_PR : cg_beta;
        const size_t m = !strcmp(optimizer, "cg") ? 0 : (size_t)o.history;
        const unsigned long evals = reference(p, &o, m, x0, k);
        cr_expect_eq(res.evaluations, evals, "%s %s k=%llu: %llu evaluations, reference %lu",
                     optimizer, p->objective, (unsigned long long)k,
                     (unsigned long long)res.evaluations, evals);
        for (size_t i = 0; i < p->n; ++i)
            cr_assert(close_enough(x[i], x0[i], REF_RTOL, REF_ATOL),
                      "%s %s k=%llu theta[%zu] = %.17g, reference %.17g", optimizer, p->objective,
                      (unsigned long long)k, i, x[i], x0[i]);
    }
}

Test(lbfgs, lbfgs_matches_reference)
{
    const struct problem rosen = {"rosenbrock", 7, 0}, ell = {"ellipsoid", 93, 100};
    compare(&rosen, "lbfgs", NAN, NAN, NAN, 1, 8);
    compare(&rosen, "lbfgs", 3, CLOPT_LINE_SEARCH_ARMIJO, NAN, 1, 8);
    compare(&ell, "lbfgs", 2, NAN, NAN, 0, 6);
    compare(&ell, "lbfgs", NAN, CLOPT_LINE_SEARCH_ARMIJO, NAN, 0, 6);
}

Test(lbfgs, cg_matches_reference)
{
    const struct problem rosen = {"rosenbrock", 7, 0}, ell = {"ellipsoid", 93, 100};
    compare(&rosen, "cg", NAN, NAN, NAN, 1, 8);
    compare(&rosen, "cg", NAN, NAN, CLOPT_CG_FR, 1, 8);
    compare(&rosen, "cg", NAN, NAN, CLOPT_CG_HS, 1, 8);
    compare(&ell, "cg", NAN, NAN, NAN, 0, 6);
    compare(&ell, "cg", NAN, CLOPT_LINE_SEARCH_ARMIJO, NAN, 0, 6);
}

/* A convex quadratic in n dimensions: with a line search that is exact on a quadratic (the
 * cubic through two points with their slopes is the parabola itself, and a curvature
 * constant of 1e-6 accepts only its minimiser) cg is the conjugate gradient method, done in
 * n steps. In floating point that holds while the spectrum is narrow: ellipsoid's geometric
 * spectrum is the classic case of delayed convergence (measured: cond 100, n = 50 took 60
 * iterations, as the reference does), so cond is 10 here. */
Test(lbfgs, cg_solves_quadratic_in_n_iterations)
{
    const double betas[] = {CLOPT_CG_PR, CLOPT_CG_FR, CLOPT_CG_HS};
    const size_t dims[] = {16, 24, 50};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; ++k)
        for (size_t b = 0; b < sizeof betas / sizeof *betas; ++b) {
            const struct problem ell = {"ellipsoid", dims[k], 10};
            struct clopt_options o;
            base_options(&o, &ell, "cg");
            o.cg_beta = betas[b];
            o.c2 = 1e-6;
            o.c1 = 1e-7;
            o.max_iters = 1000;
            o.gtol = 1e-8; /* ||g_0|| is about 10 */
            struct clopt_result res;
            const int status = run(&ell, &o, NULL, NULL, &res);
            cr_expect_eq(status, CLOPT_STOP_GTOL, "beta %g: stop %d", betas[b], status);
            cr_expect_leq(res.iterations, ell.n, "beta %g: %llu iterations for n = %zu", betas[b],
                          (unsigned long long)res.iterations, ell.n);
        }
}

Test(lbfgs, rosenbrock_100_from_zeros)
{
    const struct problem rosen = {"rosenbrock", 100, 0};
    struct clopt_options o;
    base_options(&o, &rosen, "lbfgs");
    o.init = CLOPT_INIT_CONST;
    o.init_value = 0;
    o.max_iters = 5000;
    o.target = 1e-10;
    struct clopt_result res;
    const int status = run(&rosen, &o, NULL, NULL, &res);
    cr_expect_eq(status, CLOPT_STOP_TARGET, "stop %d after %llu iterations, loss %g", status,
                 (unsigned long long)res.iterations, res.loss);
    cr_expect_leq(res.loss, 1e-10);
    cr_expect_gt(res.evaluations, res.iterations);
}

/* Many shards (and a stencil's halos between them) give the bits of one. */
static void same_bits(const char *objective, const char *optimizer, enum clopt_precision prec)
{
    const struct problem p = {objective, 1000, 1e4};
    const size_t elem = prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    double a[1000], b[1000];
    struct clopt_result ra, rb;
    for (int many = 0; many < 2; ++many) {
        struct clopt_options o;
        base_options(&o, &p, optimizer);
        o.precision = prec;
        o.max_iters = 40;
        o.knobs.work_group = 4;
        o.knobs.elems_per_item = 8;
        o.max_shard_bytes = many ? 3 * 32 * elem : 0; /* 96 elements per shard */
        run(&p, &o, NULL, many ? b : a, many ? &rb : &ra);
    }
    cr_assert_gt(rb.shards, 10);
    cr_assert_eq(ra.shards, 1);
    cr_expect_eq(ra.iterations, rb.iterations);
    cr_expect_eq(ra.evaluations, rb.evaluations);
    cr_expect(memcmp(&ra.loss, &rb.loss, sizeof ra.loss) == 0, "%s %s: loss %.17g vs %.17g",
              objective, optimizer, ra.loss, rb.loss);
    cr_expect(memcmp(a, b, 1000 * elem) == 0, "%s %s: theta differs across shard counts", objective,
              optimizer);
}

Test(lbfgs, shard_count_invariant)
{
    same_bits("rosenbrock", "lbfgs", CLOPT_DOUBLE);
    same_bits("rosenbrock", "lbfgs", CLOPT_FLOAT);
    same_bits("ellipsoid", "lbfgs", CLOPT_FLOAT);
    same_bits("rosenbrock", "cg", CLOPT_FLOAT);
    same_bits("ellipsoid", "cg", CLOPT_DOUBLE);
}

/* shifted_sphere's data vector: the minimum is the target, reached in a couple of steps. */
Test(lbfgs, data_objective)
{
    SKIP_WITHOUT_FP64();
    char *dir = temp_dir();
    char *path = path_in(dir, "target.npy");
    double target[300];
    for (size_t i = 0; i < 300; ++i)
        target[i] = sin((double)i);
    write_npy(path, target, 300, 1);
    const char *optimizers[] = {"lbfgs", "cg"};
    for (size_t k = 0; k < 2; ++k) {
        struct clopt_options o;
        clopt_options_init(&o);
        struct clopt_param param = {.key = "target", .value = path};
        o.objective = "shifted_sphere";
        o.params = &param;
        o.n_params = 1;
        o.dim = 300;
        o.optimizer = optimizers[k];
        o.precision = CLOPT_DOUBLE;
        o.gtol = 1e-9;
        o.max_iters = 50;
        struct clopt_solver *s;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        struct clopt_result res;
        cr_expect_eq(clopt_solver_run(s, &res), CLOPT_STOP_GTOL, "%s", optimizers[k]);
        cr_expect_leq(res.iterations, 3, "%s: %llu iterations", optimizers[k],
                      (unsigned long long)res.iterations);
        double x[300];
        cr_assert_eq(clopt_solver_read_theta(s, x, CLOPT_DOUBLE, 0, 300), CLOPT_OK);
        for (size_t i = 0; i < 300; ++i)
            cr_expect(close_enough(x[i], target[i], 1e-9, 1e-9), "%s theta[%zu]", optimizers[k], i);
        clopt_solver_destroy(s);
    }
    remove_tree(dir);
    free(path);
    free(dir);
}

/* Runs rosenbrock n = 100 in double from zeros; returns the stop status, res and theta. */
static int run_rosenbrock(const char *optimizer, double max_evals, uint64_t max_iters,
                          struct clopt_result *res, double *theta)
{
    SKIP_WITHOUT_FP64();
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = "rosenbrock";
    o.dim = 100;
    o.init = CLOPT_INIT_CONST;
    o.init_value = 0;
    o.optimizer = optimizer;
    o.precision = CLOPT_DOUBLE;
    o.max_evals = max_evals;
    o.max_iters = max_iters;
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    const int status = clopt_solver_run(s, res);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, 100), CLOPT_OK);
    clopt_solver_destroy(s);
    return status;
}

/* options.max_evals stops the run at exactly that many evaluations (the line search's trials
 * are capped, 23 falls inside one), with theta the last accepted point: the theta of a run
 * stopped by the iteration limit after the same number of iterations. */
Test(lbfgs, evaluation_limit)
{
    const char *optimizers[] = {"lbfgs", "cg"};
    const double limit = 23;
    for (size_t k = 0; k < 2; ++k) {
        struct clopt_result limited, counted;
        double a[100], b[100];
        cr_expect_eq(run_rosenbrock(optimizers[k], limit, 1000, &limited, a), CLOPT_STOP_MAX_EVALS,
                     "%s", optimizers[k]);
        cr_expect_eq(limited.evaluations, (uint64_t)limit, "%s: %llu evaluations", optimizers[k],
                     (unsigned long long)limited.evaluations);
        cr_assert_gt(limited.iterations, 0, "%s", optimizers[k]);
        cr_expect_eq(run_rosenbrock(optimizers[k], NAN, limited.iterations, &counted, b),
                     CLOPT_STOP_MAX_ITERS, "%s", optimizers[k]);
        cr_expect_leq(counted.evaluations, limited.evaluations, "%s", optimizers[k]);
        cr_expect(memcmp(a, b, sizeof a) == 0, "%s: theta differs from the run of %llu iterations",
                  optimizers[k], (unsigned long long)limited.iterations);
    }
}

static void expect_usage(const char *const *args, const char *needle)
{
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 2, "%s %s: exit %d, stderr %s", args[1], args[2], r.exit_code, r.err);
    cr_expect(strstr(r.err, needle) != NULL, "stderr lacks '%s': %s", needle, r.err);
    cr_expect_eq(count_lines(r.err), 1, "one line: %s", r.err);
    cli_result_free(&r);
}

Test(lbfgs, bad_options_exit_2)
{
#define RUN(...) ((const char *const[]){"run", "--dim", "100", __VA_ARGS__, NULL})
    expect_usage(RUN("--optimizer", "lbfgs", "--history", "0"), "history");
    expect_usage(RUN("--optimizer", "lbfgs", "--history", "2.5"), "history");
    expect_usage(RUN("--optimizer", "lbfgs", "--history", "65"), "history");
    expect_usage(RUN("--optimizer", "lbfgs", "--c1", "0.5", "--c2", "0.5"), "c2");
    expect_usage(RUN("--optimizer", "cg", "--c2", "0"), "c2");
    expect_usage(RUN("--optimizer", "lbfgs", "--line-search", "foo"), "armijo or wolfe");
    expect_usage(RUN("--optimizer", "cg", "--cg-beta", "dy"), "fr, pr or hs");
    expect_usage(RUN("--optimizer", "lbfgs", "--max-ls", "0"), "max_ls");
    expect_usage(RUN("--optimizer", "lbfgs", "--max-evals", "2.5"), "max_evals");
    expect_usage(RUN("--optimizer", "cg", "--max-evals", "-1"), "max_evals");
    expect_usage(RUN("--optimizer", "gd", "--max-evals", "10"), "max_evals");
    expect_usage(RUN("--optimizer", "gd", "--history", "5"), "history");
    expect_usage(RUN("--optimizer", "cg", "--history", "5"), "history");
    expect_usage(RUN("--optimizer", "adam", "--c1", "0.1"), "c1");
    expect_usage(RUN("--optimizer", "lbfgs", "--weight-decay", "0.1"), "weight_decay");
#undef RUN
}

/* `clopt run --help` names every lbfgs/cg option (it listed none of them before). */
Test(lbfgs, help_lists_the_options)
{
    const char *const args[] = {"run", "--help", NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0);
    const char *needed[] = {"lbfgs", "--history", "--line-search", "--c1",
                            "--c2",  "--max-ls",  "--cg-beta",     "--max-evals"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; ++i)
        cr_expect(strstr(r.out, needed[i]) != NULL, "help lacks %s", needed[i]);
    cli_result_free(&r);
}

/* A line search that cannot find a step ends the run with its own reason, exit 0. */
Test(lbfgs, line_search_failure_is_a_stop_reason)
{
    const char *const args[] = {
        "run",    "--objective", "rosenbrock", "--dim",    "100", "--init",
        "zeros",  "--optimizer", "lbfgs",      "--max-ls", "1",   "--line-search",
        "armijo", "--json",      "-",          "--quiet",  NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "exit %d: %s", r.exit_code, r.err);
    cJSON *json = cJSON_Parse(r.out);
    cr_assert(json, "%s", r.out);
    const cJSON *reason = cJSON_GetObjectItem(json, "stop_reason");
    cr_expect(cJSON_IsString(reason) && !strcmp(reason->valuestring, "line_search"), "%s", r.out);
    /* theta_0, then the one trial the search may use. */
    const cJSON *evaluations = cJSON_GetObjectItem(json, "evaluations");
    cr_expect(cJSON_IsNumber(evaluations) && evaluations->valuedouble == 2, "%s", r.out);
    /* Word-valued options are reported as the words they were given as. */
    const cJSON *hyper = cJSON_GetObjectItem(json, "hyper_parameters");
    const cJSON *search = cJSON_GetObjectItem(hyper, "line_search");
    cr_expect(cJSON_IsString(search) && !strcmp(search->valuestring, "armijo"), "%s", r.out);
    cJSON_Delete(json);
    cli_result_free(&r);
}
