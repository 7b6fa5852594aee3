/* The lbfgs and cg iteration: direction, line search, acceptance, history and stopping
 * tests. L-BFGS is Nocedal & Wright's Algorithm 7.4 (two-loop recursion) carried out on
 * coefficients: every vector of the recursion is a combination of g and the pairs (s_i,
 * y_i), so it needs only the dot products s_i . y_j, y_i . y_j, s_i . g and y_i . g, which
 * one pass over the history updates after each step; a second pass forms d. */
#include "qn.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The trial at alpha: f and g . d there (the callback of clopt_line_search). */
static int phi_at(void *user, double alpha, double *phi, double *dphi)
{
    struct qn_run *r = user;
    double dots[2], g2;
    const size_t n_pairs = r->s->optimizer->qn != CLOPT_QN_LBFGS ? 2 : 1;
    dots[0] = dots[1] = NAN;
    int status = clopt_qn_eval(r->s, alpha, 1, n_pairs, phi, &g2, dots);
    r->last_alpha = alpha;
    r->last_g2 = g2;
    r->gtd = dots[0];
    r->gtg = n_pairs > 1 ? dots[1] : NAN;
    *dphi = dots[0];
    return status;
}

/* The first trial step of iteration t, from the state at its boundary (d and its g . d
 * known). First steps 1 / ||g|| (liblbfgs); then lbfgs tries 1, cg N&W's (3.60); gd's
 * Barzilai-Borwein run its lr, then its last quotient. */
static double first_alpha(const struct qn_run *r, uint64_t t)
{
    if (r->s->optimizer->qn == CLOPT_QN_BB)
        return t == 0 ? r->s->opts.lr : r->bb_alpha;
    const int fresh = t == 0 || (r->m > 0 ? r->k == 0 : r->gd == -r->gg);
    double alpha0 = fresh ? 1.0 / sqrt(r->gg) : r->m > 0 ? 1.0 : r->alpha_prev * r->gd_prev / r->gd;
    if (!(alpha0 > 0) || !isfinite(alpha0))
        alpha0 = 1.0;
    return alpha0;
}

/* The new direction d from the n_terms terms and coefficients in q's lists, and theta at
 * iteration next_t's first trial in the same pass. */
static int new_direction(struct qn_run *r, size_t n_terms, uint64_t next_t)
{
    return clopt_qn_combine(r->s, n_terms, QN_D(r->m), first_alpha(r, next_t));
}

/* d = -g. */
static int steepest(struct qn_run *r, uint64_t next_t)
{
    r->q->terms_host[0] = QN_G(r->m);
    r->q->coef_host[0] = -1.0;
    r->gd = -r->gg;
    return new_direction(r, 1, next_t);
}

/* d = -H g by the two-loop recursion on coefficients of g, y_i and s_i. */
static int lbfgs_direction(struct qn_run *r, uint64_t next_t)
{
    if (r->k == 0)
        return steepest(r, next_t);
    double cg = 1, cy[QN_MAX_HISTORY] = {0}, cs[QN_MAX_HISTORY] = {0}, a[QN_MAX_HISTORY];
    for (size_t p = r->k; p-- > 0;) {
        const size_t i = r->order[p];
        double sq = cg * r->sg[i];
        for (size_t t = 0; t < r->k; ++t)
            sq += cy[r->order[t]] * r->sy[i][r->order[t]];
        a[i] = sq / r->sy[i][i];
        cy[i] -= a[i];
    }
    const size_t last = r->order[r->k - 1];
    const double gamma = r->sy[last][last] / r->yy[last][last];
    cg *= gamma;
    for (size_t t = 0; t < r->k; ++t)
        cy[r->order[t]] *= gamma;
    for (size_t p = 0; p < r->k; ++p) {
        const size_t i = r->order[p];
        double yr = cg * r->yg[i];
        for (size_t t = 0; t < r->k; ++t) {
            const size_t j = r->order[t];
            yr += cy[j] * r->yy[i][j] + cs[j] * r->sy[j][i];
        }
        cs[i] += a[i] - yr / r->sy[i][i];
    }
    struct clopt_qn *q = r->q;
    double gd = cg * r->gg;
    q->terms_host[0] = QN_G(r->m);
    q->coef_host[0] = -cg;
    for (size_t t = 0; t < r->k; ++t) {
        const size_t j = r->order[t];
        q->terms_host[1 + t] = (cl_uint)(r->m + j);
        q->coef_host[1 + t] = -cy[j];
        q->terms_host[1 + r->k + t] = (cl_uint)j;
        q->coef_host[1 + r->k + t] = -cs[j];
        gd += cy[j] * r->yg[j] + cs[j] * r->sg[j];
    }
    r->gd = -gd;
    if (!(r->gd < 0)) { /* not a descent direction (rounding): start the history again */
        r->k = 0;
        return steepest(r, next_t);
    }
    return new_direction(r, 1 + 2 * r->k, next_t);
}

/* Accepts the step (x, g and, with_pair, the new pair in slot c) and, in the same pass,
 * the dot products that involve the new pair and the new g, into the matrices.
 * With double sums, s_j . y_c and y_j . y_c of the older pairs j are not summed but
 * derived: y_c = g_new - g_old, and s_j . g_old, y_j . g_old are the last accept's sg, yg,
 * so s_j . y_c = s_j . g_new - s_j . g_old (likewise for y_j). That drops 2 (k - 1) of the
 * pass's 5k - 1 dot products (perf on poisson 316 x 316: the pass was 43 % of an lbfgs
 * run). The difference is taken of sums exact to ~1e-16 of |s_j . g|; a float Kahan sum is
 * good to ~1e-7 of it only, too coarse where y_c is much smaller than g, so it keeps the
 * direct sums. */
static int lbfgs_update(struct qn_run *r, int with_pair, size_t c)
{
    struct clopt_qn *q = r->q;
    const size_t m = r->m, g = QN_G(m);
    const int derive = with_pair && r->s->acc_size == sizeof(double);
    cl_uint *pairs = q->pairs_host[0];
    size_t n = 0;
#define PAIR(u, v) (pairs[2 * n] = (cl_uint)(u), pairs[2 * n + 1] = (cl_uint)(v), ++n)
    for (size_t t = 0; with_pair && t < r->k; ++t) {
        const size_t j = r->order[t];
        PAIR(c, m + j);
        if (j == c || !derive) {
            if (j != c)
                PAIR(j, m + c);
            PAIR(m + c, m + j);
        }
    }
    for (size_t t = 0; t < r->k; ++t) {
        PAIR(r->order[t], g);
        PAIR(m + r->order[t], g);
    }
#undef PAIR
    double *dots = q->dots_host;
    int status = clopt_qn_accept_dots(r->s, with_pair, c, m + c, n, dots);
    if (status != CLOPT_OK)
        return status;
    double sg_old[QN_MAX_HISTORY], yg_old[QN_MAX_HISTORY];
    memcpy(sg_old, r->sg, sizeof sg_old);
    memcpy(yg_old, r->yg, sizeof yg_old);
    size_t at = 0;
    for (size_t t = 0; with_pair && t < r->k; ++t) {
        const size_t j = r->order[t];
        r->sy[c][j] = dots[at++];
        if (j == c || !derive) {
            if (j != c)
                r->sy[j][c] = dots[at++];
            r->yy[c][j] = r->yy[j][c] = dots[at++];
        }
    }
    for (size_t t = 0; t < r->k; ++t) {
        r->sg[r->order[t]] = dots[at++];
        r->yg[r->order[t]] = dots[at++];
    }
    for (size_t t = 0; derive && t < r->k; ++t) {
        const size_t j = r->order[t];
        if (j != c) {
            r->sy[j][c] = r->sg[j] - sg_old[j];
            r->yy[c][j] = r->yy[j][c] = r->yg[j] - yg_old[j];
        }
    }
    /* A pair without positive curvature (possible after an Armijo step) is dropped. */
    if (with_pair && !(r->sy[c][c] > 0 && r->yy[c][c] > 0))
        --r->k;
    return CLOPT_OK;
}

/* gd's Barzilai-Borwein step after a step alpha along d = -g: with s = -alpha g_old and
 * y = g_new - g_old, every quotient is a function of ||g_old||^2, ||g_new||^2 and
 * g_new . g_old, which the trial's one dot-product pass gave (so no extra pass and no y
 * vector): s.s = alpha^2 gg_old, s.y = alpha (gg_old - g_new.g_old), y.y = gg_new -
 * 2 g_new.g_old + gg_old. BB1 = s.s/s.y, BB2 = s.y/y.y. A quotient that is not positive
 * and finite (no positive curvature along s, or rounding) keeps the last step; the step
 * stays within [lr 1e-6, lr 1e6], so that one bad quotient cannot throw theta far away or
 * stall the run. */
static void bb_next(struct qn_run *r, double alpha, double gg_old)
{
    const double lr = r->s->opts.lr, ss = alpha * alpha * gg_old;
    const double sy = alpha * (gg_old - r->gtg), yy = r->gg - 2 * r->gtg + gg_old;
    double next = r->s->opts.gd_step == CLOPT_STEP_BB1 ? ss / sy : sy / yy;
    if (!(next > 0) || !isfinite(next) || !(sy > 0))
        next = alpha;
    r->bb_alpha = fmin(fmax(next, lr * 1e-6), lr * 1e6);
}

/* Accepts the line search's step: the new pair (lbfgs, when its curvature is positive),
 * x and g, then the next direction. */
static int take_step(struct qn_run *r, const struct clopt_ls_result *ls, double g2_new)
{
    const int lbfgs = r->m > 0;
    /* s . y estimated from the line search: alpha (g_new . d - g . d). */
    const int with_pair = lbfgs && ls->alpha * (r->gtd - r->gd) > 0;
    size_t c = 0;
    if (with_pair) {
        c = r->k < r->m ? r->k : r->order[0];
        if (r->k == r->m)
            memmove(r->order, r->order + 1, (r->m - 1) * sizeof *r->order);
        else
            ++r->k;
        r->order[r->k - 1] = c;
    }
    const double gg_old = r->gg, gd_old = r->gd;
    r->f = ls->phi;
    r->gg = g2_new;
    r->alpha_prev = ls->alpha;
    r->gd_prev = gd_old;
    const uint64_t next_t = r->t + 1;
    if (lbfgs) { /* the accept is part of the dot-product pass */
        int status = lbfgs_update(r, with_pair, c);
        return status == CLOPT_OK ? lbfgs_direction(r, next_t) : status;
    }
    int status = clopt_qn_accept(r->s, 0, 0, 0);
    if (status != CLOPT_OK)
        return status;
    if (r->s->optimizer->qn == CLOPT_QN_BB) {
        bb_next(r, ls->alpha, gg_old);
        return steepest(r, next_t);
    }
    /* cg: beta by the chosen formula, 0 (a restart) by Powell's test or when negative. */
    const double kind = r->s->opts.cg_beta;
    double beta = kind == CLOPT_CG_FR   ? r->gg / gg_old
                  : kind == CLOPT_CG_HS ? (r->gg - r->gtg) / (r->gtd - gd_old)
                                        : (r->gg - r->gtg) / gg_old;
    if (!(beta > 0) || !isfinite(beta) || fabs(r->gtg) >= 0.1 * r->gg)
        beta = 0;
    const double gd = -r->gg + beta * r->gtd;
    if (beta == 0 || !(gd < 0))
        return steepest(r, next_t);
    r->q->terms_host[0] = QN_G(r->m);
    r->q->coef_host[0] = -1.0;
    r->q->terms_host[1] = QN_D(r->m);
    r->q->coef_host[1] = beta;
    r->gd = gd;
    return new_direction(r, 2, next_t);
}

/* The stopping tests of run.c, on an accepted iterate. */
static int stop_test(const struct clopt_solver *s, double prev, double f, double gnorm)
{
    if (gnorm <= s->opts.gtol)
        return CLOPT_STOP_GTOL;
    if (f <= s->opts.target)
        return CLOPT_STOP_TARGET;
    const double scale = fmax(fmax(fabs(prev), fabs(f)), DBL_MIN);
    if (isfinite(prev) && fabs(prev - f) <= s->opts.ftol * scale)
        return CLOPT_STOP_FTOL;
    return 0;
}

/* Reports iteration t to the progress callback; non-zero when it cancels. */
static int report(const struct clopt_solver *s, uint64_t t, double f, double gnorm, double alpha,
                  double start)
{
    if (!s->opts.progress || t % s->opts.loss_every != 0)
        return 0;
    const struct clopt_progress p = {.iteration = t,
                                     .loss = f,
                                     .grad_norm = gnorm,
                                     .lr = alpha,
                                     .seconds = clopt_now_seconds() - start};
    return s->opts.progress(s->opts.progress_user, &p);
}

/* Whether some rank wants to stop (`mine` in a single process): a signal or a progress
 * callback's cancel reaches each rank at another time, and the ranks must leave the loop
 * after the same iteration, or the others would wait in a collective for ever. */
static int agreed(struct clopt_solver *s, int mine, int *status)
{
    int any = mine != 0;
    *status = clopt_ranks_any(s, mine, &any);
    return *status == CLOPT_OK && any;
}

/* x_0: the first evaluation and direction. 0 to go on, or a stop reason, or an error. */
static int begin(struct qn_run *r, double start)
{
    struct clopt_solver *s = r->s;
    double g2, dots[2] = {NAN, NAN};
    int status = clopt_qn_eval(s, NAN, 1, 0, &r->f, &g2, dots);
    if (status == CLOPT_OK)
        status = clopt_qn_accept(s, 0, 0, 0);
    if (status != CLOPT_OK)
        return status;
    r->evaluations = 1;
    r->gg = g2;
    r->f_prev = NAN;
    if (!isfinite(r->f) || !isfinite(g2))
        return clopt_fail(s->ctx, CLOPT_ERR_DIVERGED,
                          "the loss is NaN/Inf at the start point: check the initial theta and "
                          "the objective; theta is the start point");
    if (agreed(s, report(s, 0, r->f, sqrt(g2), 0, start), &status))
        return CLOPT_STOP_CANCELLED;
    if (status != CLOPT_OK)
        return status;
    const int reason = stop_test(s, NAN, r->f, sqrt(g2));
    if (reason)
        return reason;
    status = steepest(r, 0);
    r->boundary = status == CLOPT_OK;
    return status;
}

/* A checkpoint's iteration boundary (clopt_solver_resume put it in q->resume; the vectors
 * are on the device already). The stopping tests the run that wrote it made there are made
 * again, with this run's limits. */
static int begin_resumed(struct qn_run *r)
{
    struct clopt_solver *s = r->s;
    struct clopt_qn *q = r->q;
    *r = *q->resume;
    r->s = s;
    r->q = q;
    free(q->resume);
    q->resume = NULL;
    r->written_t = r->t; /* that checkpoint is this point */
    r->boundary = 1;
    const int reason = stop_test(s, r->f_prev, r->f, sqrt(r->gg));
    if (reason)
        return reason;
    const uint64_t max_evals = (uint64_t)s->opts.max_evals;
    return max_evals > 0 && r->evaluations >= max_evals ? CLOPT_STOP_MAX_EVALS : 0;
}

/* gd's Barzilai-Borwein iteration: one evaluation at the step, always taken (the method is
 * not monotone), unless the loss or gradient there is not finite. */
static int bb_trial(struct qn_run *r, struct clopt_ls_result *ls)
{
    memset(ls, 0, sizeof *ls);
    ls->alpha = first_alpha(r, r->t);
    int status = phi_at(r, ls->alpha, &ls->phi, &ls->dphi);
    if (status != CLOPT_OK)
        return status;
    ls->evaluations = 1;
    if (!isfinite(ls->phi) || !isfinite(r->last_g2))
        return clopt_fail(r->s->ctx, CLOPT_ERR_DIVERGED,
                          "gd's Barzilai-Borwein step %g made the loss NaN/Inf at iteration "
                          "%llu: theta is the last finite iterate; use a smaller lr",
                          ls->alpha, (unsigned long long)r->t);
    ls->found = 1;
    return CLOPT_OK;
}

/* The loop from an iteration boundary; returns a stop reason, or an error. */
static int iterate(struct qn_run *r, struct clopt_result *res, double start)
{
    struct clopt_solver *s = r->s;
    const int resumed = r->q->resume != NULL;
    int status = resumed ? begin_resumed(r) : begin(r, start);
    if (status != CLOPT_OK)
        return status;
    const uint64_t t0 = r->t, every = s->opts.checkpoint_every;
    for (uint64_t t = t0; status == CLOPT_OK; ++t) {
        r->t = t;
        res->iterations = t;
        if (s->checkpoint_path && every && t > t0 && t % every == 0) {
            status = clopt_qn_checkpoint(s, r);
            if (status != CLOPT_OK)
                return status;
        }
        if (t >= s->opts.max_iters)
            return CLOPT_STOP_MAX_ITERS;
        if (agreed(s, s->opts.stop && *s->opts.stop, &status))
            return CLOPT_STOP_CANCELLED;
        if (status != CLOPT_OK)
            return status;
        const double alpha0 = first_alpha(r, t);
        /* options.max_evals (0: none) caps the trials, so the count never passes it. */
        const uint64_t max_evals = (uint64_t)s->opts.max_evals;
        uint64_t trials = (uint64_t)s->opts.max_ls;
        if (max_evals > 0 && max_evals - r->evaluations < trials)
            trials = max_evals - r->evaluations;
        struct clopt_ls_result ls;
        const double f_prev = r->f;
        r->boundary = 0;
        status = s->optimizer->qn == CLOPT_QN_BB
                     ? bb_trial(r, &ls)
                     : clopt_line_search(&s->opts, trials, phi_at, r, r->f, r->gd, alpha0, &ls);
        r->evaluations += ls.evaluations;
        if (status != CLOPT_OK)
            return status;
        if (!ls.found)
            return ls.evaluations == trials && trials < (uint64_t)s->opts.max_ls
                       ? CLOPT_STOP_MAX_EVALS
                       : CLOPT_STOP_LINE_SEARCH;
        /* The accepted step is the last trial (theta and g_trial are its). */
        if (ls.alpha != r->last_alpha)
            return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "internal: accepted step not last");
        status = take_step(r, &ls, r->last_g2);
        if (status != CLOPT_OK)
            return status;
        r->t = t + 1;
        r->f_prev = f_prev;
        r->boundary = 1;
        res->iterations = t + 1;
        if (agreed(s, report(s, t + 1, r->f, sqrt(r->gg), ls.alpha, start), &status))
            return CLOPT_STOP_CANCELLED;
        if (status != CLOPT_OK)
            return status;
        const int reason = stop_test(s, f_prev, r->f, sqrt(r->gg));
        if (reason)
            return reason;
        if (max_evals > 0 && r->evaluations >= max_evals)
            return CLOPT_STOP_MAX_EVALS;
    }
    return status;
}

int clopt_qn_run(struct clopt_solver *s, struct clopt_result *res)
{
    memset(res, 0, sizeof *res);
    res->shards = s->n_shards;
    res->knobs = s->knobs;
    res->lr = res->final_lr = NAN;
    res->bytes_per_element = (double)s->elem_size * (double)clopt_qn_vectors(s);
    res->bytes_per_iter = (double)s->n * res->bytes_per_element;
    struct qn_run r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.q = s->qn;
    r.m = s->qn->m;
    r.written_t = UINT64_MAX;
    /* A run that ended in an error, or a resume since, may have left theta other than the
     * combine's trial: the first trial is computed again (the same expression, the same bits). */
    s->qn->theta_ready = 0;
    memset(&s->ck_report, 0, sizeof s->ck_report);
    const double start = clopt_now_seconds();
    clopt_ranks_clock(s, 1);
    int reason = iterate(&r, res, start);
    res->evaluations = r.evaluations;
    if (s->optimizer->qn == CLOPT_QN_BB) { /* lr is the first step; final_lr the last */
        res->lr = s->opts.lr;
        res->final_lr = r.t > 0 ? r.alpha_prev : s->opts.lr;
    }
    if (reason < 0 && reason != CLOPT_ERR_DIVERGED) {
        /* Queued writes still read the host lists, which clopt_solver_destroy frees. */
        clopt_sync_lanes(s, 1);
        return reason;
    }
    /* The last checkpoint is where the run stopped, when that is an iteration boundary (a
     * line search that stopped the run leaves the one before). */
    if (reason > 0 && r.boundary && s->checkpoint_path) {
        int status = r.written_t != r.t ? clopt_qn_checkpoint(s, &r) : CLOPT_OK;
        if (status != CLOPT_OK)
            return status;
        s->ck_report.final_written = r.written_t == r.t;
    }
    /* theta is x: the last trial may have been refused. */
    int status = clopt_qn_copy_x(s, 1);
    if (status == CLOPT_OK)
        status = clopt_sync_lanes(s, 1);
    res->seconds = clopt_now_seconds() - start;
    clopt_ranks_clock(s, 0); /* the final evaluation is outside the loop's seconds */
    if (status == CLOPT_OK)
        status = clopt_solver_evaluate(s, &res->loss, &res->grad_norm);
    s->theta_generated = 0;
    return status == CLOPT_OK ? reason : status;
}
