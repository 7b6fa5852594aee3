/* lbfgs and cg (host/qn/): the vectors each shard keeps, the kernels that work on them, and
 * the line searches. The scalar decisions (accept a trial, the next step, rho, the two-loop
 * coefficients, beta, restarts) are made here on the host in double, from dot products the
 * device folds in tile order: results do not depend on the shard count. Each line-search
 * trial and each iteration's history update reads a few numbers back (a blocking read). */
#ifndef CLOPT_QN_H
#define CLOPT_QN_H

#include "solver/solver.h"

/* Most history pairs (options.history's range in host/hyper.c). */
#define QN_MAX_HISTORY 64
/* Dot products one pass may compute: 5 per pair (kernels/qn.cl's CLOPT_QN_MAX_PAIRS). */
#define QN_MAX_PAIRS (5 * QN_MAX_HISTORY + 10)
#define QN_MAX_TERMS (2 * QN_MAX_HISTORY + 2)

/* Vector slots in each shard's buffer: s_i = i, y_i = m + i, then x, g, d; QN_EXTRA(m)
 * names the trial gradient, kept in the step kernel's state 0. */
#define QN_X(m) (2 * (m))
#define QN_G(m) (2 * (m) + 1)
#define QN_D(m) (2 * (m) + 2)
#define QN_VECTORS(m) (2 * (m) + 3)
#define QN_EXTRA(m) QN_VECTORS(m)

struct qn_run;

/* One device's part (struct lane of solver.h): lbfgs/cg's small buffers are per device, so
 * that no buffer is used by two devices at once. Lane 0's entry names the buffers of struct
 * clopt_qn (not owned); every other lane that holds tiles has its own copies of the pair and
 * term lists and the coefficients, and partials for its own dot-product tiles, which lane
 * 0's queue copies into place before the one fold. */
struct qn_lane {
    cl_mem pairs[2], terms, coef, partials;
    size_t first_tile, end_tile; /* its dot-product tiles, [first, end) */
};

struct clopt_qn {
    size_t m;    /* history pairs (0 for cg) */
    size_t tile; /* elements per dot-product partial */
    size_t n_tiles;
    cl_mem *vec; /* per shard: QN_VECTORS(m) vectors of the shard's count */
    cl_mem pairs[2], terms, coef, partials, dots;
    cl_kernel k_trial, k_accept, k_dots, k_dots_reduce, k_combine, k_accept_dots;
    /* theta holds x + theta_alpha d (for this x and d) when theta_ready: a trial at that step
     * needs no clopt_qn_trial pass. Set by a trial and by a combination that wrote the next
     * first trial; cleared by anything else that changes x, d or theta. */
    int theta_ready;
    double theta_alpha;
    struct qn_lane *lanes; /* s->n_lanes of them */
    /* Host copies the non-blocking writes read from; each is changed only after a blocking
     * read that follows its write in the queue. With several devices each lane's queue
     * writes them too, and that read follows those writes as well: it waits for a copy of
     * partials (loss or dot products) that lane 0's queue makes after each lane's work. */
    cl_uint pairs_host[2][2 * QN_MAX_PAIRS];
    cl_uint terms_host[QN_MAX_TERMS];
    double coef_host[QN_MAX_TERMS]; /* as acc_t: float coefficients use the first half */
    double dots_host[QN_MAX_PAIRS];
    double loss_host[2];   /* a trial's loss and ||g|| (its read does not block) */
    struct qn_run *resume; /* from a checkpoint, for the next run (heap) */
};

/* Elements per dot-product partial: the least multiple of this that divides the step
 * kernel's tile (qn_dev.c's clopt_qn_tile). */
#define QN_MIN_TILE 4096

/* qn_dev.c */
size_t clopt_qn_tile(const struct clopt_knobs *k);
size_t clopt_qn_vectors(const struct clopt_solver *s); /* per element, besides theta */
int clopt_qn_create(struct clopt_solver *s);
void clopt_qn_destroy(struct clopt_solver *s);
/* theta = x + alpha d, then f, ||g||^2 and the dot products of list `which` (pairs of slots)
 * there; the trial gradient lands in state 0. With alpha NaN, theta is evaluated as it is.
 * An external solver's callback is called here, after the trial is queued: the one place
 * lbfgs/cg meet external gradients. */
int clopt_qn_eval(struct clopt_solver *s, double alpha, size_t which, size_t n_pairs, double *f,
                  double *g2, double *dots);
int clopt_qn_accept(struct clopt_solver *s, int with_pair, size_t s_slot, size_t y_slot);
/* clopt_qn_accept and then the dot products of list 0 (n_pairs pairs) into dots, in one
 * pass over the vectors and one launch per shard: lbfgs's accepted step. */
int clopt_qn_accept_dots(struct clopt_solver *s, int with_pair, size_t s_slot, size_t y_slot,
                         size_t n_pairs, double *dots);
/* The one fold of the dot products' per-tile partials (q->partials, tile-major, n_pairs
 * per tile) into q->dots, in tile order for each pair (kernels/qn.cl's
 * clopt_qn_dots_reduce): the order that makes the sums independent of the shard count.
 * Devices or ranks that each hold a tile range must fold their partials here, in the
 * same order. */
int clopt_qn_fold_partials(struct clopt_solver *s, size_t n_pairs);
/* Dot products of list `which` (pairs_host[which], n_pairs pairs) into dots. */
int clopt_qn_dots(struct clopt_solver *s, size_t which, size_t n_pairs, double *dots);
/* vector out = sum_k coef_host[k] vector terms_host[k]; with trial_alpha not NaN (out must
 * then be d), theta = x + trial_alpha d as well, in the same pass: the next line search's
 * first trial, which clopt_qn_eval then does not queue again. */
int clopt_qn_combine(struct clopt_solver *s, size_t n_terms, size_t out, double trial_alpha);
/* x into theta (the result), or theta into x (the start). */
int clopt_qn_copy_x(struct clopt_solver *s, int to_theta);

/* linesearch.c: phi(alpha) = f(x + alpha d), dphi its derivative g(x + alpha d) . d. */
typedef int (*clopt_qn_phi)(void *user, double alpha, double *phi, double *dphi);
struct clopt_ls_result {
    int found;    /* an acceptable step was found */
    double alpha; /* it, and phi and dphi there */
    double phi, dphi;
    uint64_t evaluations;
};
/* At most max_trials evaluations (options.max_ls, or fewer where options.max_evals leaves
 * fewer). */
int clopt_line_search(const struct clopt_options *o, uint64_t max_trials, clopt_qn_phi eval,
                      void *user, double phi0, double dphi0, double alpha0,
                      struct clopt_ls_result *out);

/* The iteration's state (qn_run.c). At an iteration boundary (before a line search) the
 * scalars here, x, g, d and the pairs are all there is to a run: what a checkpoint holds. */
struct qn_run {
    struct clopt_solver *s;
    struct clopt_qn *q;
    size_t m, k;                               /* history size, pairs held */
    size_t order[QN_MAX_HISTORY];              /* their slots, oldest first */
    double sy[QN_MAX_HISTORY][QN_MAX_HISTORY]; /* s_i . y_j */
    double yy[QN_MAX_HISTORY][QN_MAX_HISTORY];
    double sg[QN_MAX_HISTORY], yg[QN_MAX_HISTORY];
    double f, gg, gd; /* at x: loss, ||g||^2, g . d */
    double alpha_prev, gd_prev;
    double gtd, gtg;            /* after a trial: g_trial . d, g_trial . g */
    double last_alpha, last_g2; /* the last trial: theta and g_trial are its */
    double bb_alpha;            /* gd's Barzilai-Borwein run: the next step */
    uint64_t evaluations;
    /* Checkpoints (qn_ckpt.c): the next iteration, the loss before the last step, and
     * the last iteration a checkpoint was written at (UINT64_MAX: none). */
    uint64_t t;
    double f_prev;
    uint64_t written_t;
    int boundary; /* the state is at an iteration boundary (not saved) */
};

/* qn_ckpt.c: a checkpoint at an iteration boundary, written at once (the loop waits), in
 * the checkpoint format of host/checkpoint.c with sections config, qnloop, theta (x) and
 * qnvec (every vector slot); and reading one back into s->qn->resume. */
int clopt_qn_checkpoint(struct clopt_solver *s, struct qn_run *r);
int clopt_qn_read_checkpoint(struct clopt_solver *s, struct clopt_ckpt_reader *rd,
                             const char *path);

/* qn_run.c */
int clopt_qn_run(struct clopt_solver *s, struct clopt_result *res);

#endif /* CLOPT_QN_H */
