/* Line searches along d from x, on phi(alpha) = f(x + alpha d) (Nocedal & Wright, ch. 3):
 * backtracking with the sufficient-decrease (Armijo) test, and the strong Wolfe search of
 * Algorithm 3.5 with zoom (Algorithm 3.6), trial steps from cubic interpolation (3.59).
 * Host code only: each trial is one evaluation through the callback. */
#include "qn.h"

#include <math.h>

/* The minimiser of the cubic through (a, fa, da) and (b, fb, db) (N&W 3.59); NaN when it
 * has none. Exact on a quadratic. */
static double cubic_min(double a, double fa, double da, double b, double fb, double db)
{
    const double d1 = da + db - 3.0 * (fa - fb) / (a - b);
    const double disc = d1 * d1 - da * db;
    if (!(disc >= 0))
        return NAN;
    const double d2 = copysign(sqrt(disc), b - a);
    const double denom = db - da + 2.0 * d2;
    if (denom == 0)
        return NAN;
    return b - (b - a) * (db + d2 - d1) / denom;
}

struct ls {
    const struct clopt_options *o;
    clopt_qn_phi eval;
    void *user;
    double phi0, dphi0;
    struct clopt_ls_result *out;
    uint64_t max_trials;
};

/* One trial; counts it. */
static int trial(struct ls *ls, double alpha, double *phi, double *dphi)
{
    ++ls->out->evaluations;
    return ls->eval(ls->user, alpha, phi, dphi);
}

static int armijo_ok(const struct ls *ls, double alpha, double phi)
{
    return isfinite(phi) && phi <= ls->phi0 + ls->o->c1 * alpha * ls->dphi0;
}

static void accept(struct ls *ls, double alpha, double phi, double dphi)
{
    ls->out->found = 1;
    ls->out->alpha = alpha;
    ls->out->phi = phi;
    ls->out->dphi = dphi;
}

/* Backtracking: the minimiser of the quadratic through phi(0), phi'(0) and phi(alpha), kept
 * within [0.1, 0.5] alpha; halving when phi(alpha) is not finite. */
static int backtrack(struct ls *ls, double alpha)
{
    const uint64_t max = ls->max_trials;
    while (ls->out->evaluations < max) {
        double phi, dphi;
        int status = trial(ls, alpha, &phi, &dphi);
        if (status != CLOPT_OK)
            return status;
        if (armijo_ok(ls, alpha, phi)) {
            accept(ls, alpha, phi, dphi);
            return CLOPT_OK;
        }
        double next = 0.5 * alpha;
        if (isfinite(phi)) {
            const double q =
                -ls->dphi0 * alpha * alpha / (2.0 * (phi - ls->phi0 - ls->dphi0 * alpha));
            next = fmin(fmax(q, 0.1 * alpha), 0.5 * alpha);
        }
        alpha = next;
    }
    return CLOPT_OK;
}

/* A bracket end: step, phi, phi'. */
struct point {
    double a, f, d;
};

static int curvature_ok(const struct ls *ls, double dphi)
{
    return fabs(dphi) <= -ls->o->c2 * ls->dphi0;
}

/* N&W Algorithm 3.6: lo satisfies sufficient decrease with the lowest phi so far; the
 * minimiser lies between lo and hi. Trials are the cubic's minimiser kept 10 % inside the
 * bracket (the middle when the cubic has none or hi is not finite). */
static int zoom(struct ls *ls, struct point lo, struct point hi)
{
    const uint64_t max = ls->max_trials;
    while (ls->out->evaluations < max) {
        const double left = fmin(lo.a, hi.a), right = fmax(lo.a, hi.a), width = right - left;
        if (!(width > 0) || width <= 1e-16 * right)
            return CLOPT_OK; /* the bracket has shrunk to rounding */
        double a = isfinite(hi.f) ? cubic_min(lo.a, lo.f, lo.d, hi.a, hi.f, hi.d) : NAN;
        if (!isfinite(a))
            a = 0.5 * (left + right);
        a = fmin(fmax(a, left + 0.1 * width), right - 0.1 * width);
        double phi, dphi;
        int status = trial(ls, a, &phi, &dphi);
        if (status != CLOPT_OK)
            return status;
        if (!armijo_ok(ls, a, phi) || phi >= lo.f) {
            hi = (struct point){a, phi, dphi};
            continue;
        }
        if (curvature_ok(ls, dphi)) {
            accept(ls, a, phi, dphi);
            return CLOPT_OK;
        }
        if (dphi * (hi.a - lo.a) >= 0)
            hi = lo;
        lo = (struct point){a, phi, dphi};
    }
    return CLOPT_OK;
}

/* N&W Algorithm 3.5: steps grow (by the cubic through the last two points, kept within 1.1
 * to 4 times the last increase past the current step) until one is acceptable or a bracket
 * is found. */
static int strong_wolfe(struct ls *ls, double alpha)
{
    const uint64_t max = ls->max_trials;
    struct point prev = {0, ls->phi0, ls->dphi0};
    for (int first = 1; ls->out->evaluations < max; first = 0) {
        double phi, dphi;
        int status = trial(ls, alpha, &phi, &dphi);
        if (status != CLOPT_OK)
            return status;
        const struct point cur = {alpha, phi, dphi};
        if (!armijo_ok(ls, alpha, phi) || (!first && phi >= prev.f))
            return zoom(ls, prev, cur);
        if (curvature_ok(ls, dphi)) {
            accept(ls, alpha, phi, dphi);
            return CLOPT_OK;
        }
        if (dphi >= 0)
            return zoom(ls, cur, prev);
        const double low = alpha + 1.1 * (alpha - prev.a), high = alpha + 4.0 * (alpha - prev.a);
        double next = cubic_min(prev.a, prev.f, prev.d, alpha, phi, dphi);
        next = isfinite(next) ? fmin(fmax(next, low), high) : high;
        prev = cur;
        alpha = next;
    }
    return CLOPT_OK;
}

int clopt_line_search(const struct clopt_options *o, uint64_t max_trials, clopt_qn_phi eval,
                      void *user, double phi0, double dphi0, double alpha0,
                      struct clopt_ls_result *out)
{
    *out = (struct clopt_ls_result){.alpha = 0, .phi = phi0, .dphi = dphi0};
    struct ls ls = {o, eval, user, phi0, dphi0, out, max_trials};
    return o->line_search == CLOPT_LINE_SEARCH_ARMIJO ? backtrack(&ls, alpha0)
                                                      : strong_wolfe(&ls, alpha0);
}
