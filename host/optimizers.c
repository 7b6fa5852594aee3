/* The update rules, as torch.optim defines them: each is this table entry plus a kernel
 * file (kernels/upd_*.cl). Step-dependent values (the scheduled learning rate, Adam's bias
 * corrections) are computed here per step and passed as kernel arguments, so a kernel
 * never changes during a run. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static size_t no_state(const struct clopt_options *o)
{
    (void)o;
    return 0;
}

static size_t one_state(const struct clopt_options *o)
{
    (void)o;
    return 1;
}

static size_t adam_state(const struct clopt_options *o)
{
    return o->amsgrad ? 3 : 2;
}

static size_t rmsprop_state(const struct clopt_options *o)
{
    return o->momentum > 0 ? 2 : 1;
}

static const char *no_defines(const struct clopt_options *o)
{
    (void)o;
    return "";
}

static const char *nesterov_defines(const struct clopt_options *o)
{
    (void)o;
    return " -DCLOPT_NESTEROV=1";
}

static const char *adam_defines(const struct clopt_options *o)
{
    return o->amsgrad ? " -DCLOPT_AMSGRAD=1" : "";
}

static const char *adamw_defines(const struct clopt_options *o)
{
    return o->amsgrad ? " -DCLOPT_DECOUPLED=1 -DCLOPT_AMSGRAD=1" : " -DCLOPT_DECOUPLED=1";
}

static const char *rmsprop_defines(const struct clopt_options *o)
{
    return o->momentum > 0 ? " -DCLOPT_RMS_MOMENTUM=1" : "";
}

static void gd_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    h[0] = in->lr;
    h[1] = in->weight_decay;
}

static void momentum_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    h[0] = in->lr;
    h[1] = in->weight_decay;
    h[2] = in->momentum;
    h[3] = 1.0 - in->dampening; /* in double: 1 - x rounds badly once x is a float */
    h[4] = in->fresh_state;     /* torch starts the buffer at g, undamped */
}

static void adam_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    const double bc1 = 1.0 - pow(in->beta1, (double)in->step);
    const double bc2 = 1.0 - pow(in->beta2, (double)in->step);
    /* 1 - beta in double, as torch does: 1 - 0.999f would be off by 1.3e-5. */
    h[0] = in->weight_decay;
    h[1] = 1.0 - in->lr * in->weight_decay; /* AdamW's decoupled decay factor */
    h[2] = 1.0 - in->beta1;
    h[3] = in->beta2;
    h[4] = 1.0 - in->beta2;
    h[5] = in->lr / bc1;
    h[6] = 1.0 / sqrt(bc2);
    h[7] = in->eps;
}

static void rmsprop_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    h[0] = in->lr;
    h[1] = in->weight_decay;
    h[2] = in->alpha;
    h[3] = in->eps;
    h[4] = in->momentum;
    h[5] = 1.0 - in->alpha;
}

static void adagrad_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    h[0] = in->lr;
    h[1] = in->weight_decay;
    h[2] = in->eps;
}

static const char *momentum_check(const struct clopt_options *o)
{
    return o->momentum > 0 ? NULL : "options.momentum must be > 0 for this optimizer";
}

static const char *nesterov_check(const struct clopt_options *o)
{
    if (!(o->momentum > 0))
        return "nesterov needs options.momentum > 0";
    if (o->dampening != 0)
        return "nesterov needs options.dampening 0 (as torch.optim.SGD)";
    return NULL;
}

/* lbfgs and cg: the step kernel only evaluates f and g at the trial point and stores g in
 * state 0 (kernels/upd_qn.cl); host/qn/ does the rest. */
static void qn_hyper(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS])
{
    (void)in, (void)h;
}

static int whole(double x)
{
    return x == floor(x);
}

static const char *qn_common_check(const struct clopt_options *o)
{
    if (!whole(o->max_ls) || !whole(o->line_search) || !whole(o->max_evals))
        return "options.max_ls, options.line_search and options.max_evals must be whole numbers";
    if (o->line_search == CLOPT_LINE_SEARCH_WOLFE && !(o->c2 > o->c1))
        return "the strong Wolfe line search needs options.c2 > options.c1";
    if (o->weight_decay > 0 || o->maximize || o->clip_value > 0 || o->clip_norm > 0 || o->schedule)
        return "lbfgs and cg minimise the objective as it is: weight_decay, maximize, clip_value, "
               "clip_norm and schedule are not available with them";
    return NULL;
}

static const char *lbfgs_check(const struct clopt_options *o)
{
    return whole(o->history) ? qn_common_check(o) : "options.history must be a whole number";
}

static const char *cg_check(const struct clopt_options *o)
{
    return whole(o->cg_beta) ? qn_common_check(o)
                             : "options.cg_beta must be CLOPT_CG_FR, CLOPT_CG_PR or CLOPT_CG_HS";
}

/* gd with Barzilai-Borwein steps: the quotient needs g_k . g_k+1 before any element moves,
 * so it cannot be fused into the step kernel; host/qn/ runs it, without a line search. */
static const char *gd_bb_check(const struct clopt_options *o)
{
    if (o->gd_step != CLOPT_STEP_BB1 && o->gd_step != CLOPT_STEP_BB2)
        return "options.gd_step must be CLOPT_STEP_BB1 or CLOPT_STEP_BB2 (NaN: the fixed step lr)";
    if (o->weight_decay > 0 || o->maximize || o->clip_value > 0 || o->clip_norm > 0 || o->schedule)
        return "gd with Barzilai-Borwein steps minimises the objective as it is: weight_decay, "
               "maximize, clip_value, clip_norm and schedule are not available with it";
    return NULL;
}

static const struct clopt_optimizer_type gd_bb = {
    .name = "gd",
    .file = "upd_qn.cl",
    .summary = "theta -= alpha_k g, alpha_k the Barzilai-Borwein step",
    .default_lr = 0.1,
    .default_eps = 1e-8,
    .default_weight_decay = 0,
    .default_momentum = 0,
    .qn = CLOPT_QN_BB,
    .n_state = one_state,
    .defines = no_defines,
    .hyper = qn_hyper,
    .check = gd_bb_check};

const struct clopt_optimizer_type *clopt_gd_bb_optimizer(void)
{
    return &gd_bb;
}

static const struct clopt_optimizer_type optimizers[] = {
    {.name = "gd",
     .file = "upd_gd.cl",
     .summary = "theta -= lr g",
     .default_lr = 0.1,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .n_state = no_state,
     .defines = no_defines,
     .hyper = gd_hyper},
    {.name = "momentum",
     .file = "upd_momentum.cl",
     .summary = "b = mu b + (1 - dampening) g; theta -= lr b",
     .default_lr = 0.1,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0.9,
     .n_state = one_state,
     .defines = no_defines,
     .hyper = momentum_hyper,
     .check = momentum_check},
    {.name = "nesterov",
     .file = "upd_momentum.cl",
     .summary = "b = mu b + g; theta -= lr (g + mu b)",
     .default_lr = 0.1,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0.9,
     .n_state = one_state,
     .defines = nesterov_defines,
     .hyper = momentum_hyper,
     .check = nesterov_check},
    {.name = "adam",
     .file = "upd_adam.cl",
     .summary = "Adam (L2 weight decay added to g)",
     .default_lr = 1e-3,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .n_state = adam_state,
     .defines = adam_defines,
     .hyper = adam_hyper},
    {.name = "adamw",
     .file = "upd_adam.cl",
     .summary = "Adam with decoupled weight decay",
     .default_lr = 1e-3,
     .default_eps = 1e-8,
     .default_weight_decay = 1e-2,
     .default_momentum = 0,
     .n_state = adam_state,
     .defines = adamw_defines,
     .hyper = adam_hyper},
    {.name = "rmsprop",
     .file = "upd_rmsprop.cl",
     .summary = "v = alpha v + (1 - alpha) g^2; theta -= lr g / (sqrt(v) + eps)",
     .default_lr = 1e-2,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .n_state = rmsprop_state,
     .defines = rmsprop_defines,
     .hyper = rmsprop_hyper},
    {.name = "adagrad",
     .file = "upd_adagrad.cl",
     .summary = "sum += g^2; theta -= lr g / (sqrt(sum) + eps)",
     .default_lr = 1e-2,
     .default_eps = 1e-10,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .n_state = one_state,
     .defines = no_defines,
     .hyper = adagrad_hyper},
    {.name = "lbfgs",
     .file = "upd_qn.cl",
     .summary = "L-BFGS (two-loop recursion over --history pairs) with a line search",
     .default_lr = 1,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .default_c2 = 0.9,
     .qn = CLOPT_QN_LBFGS,
     .n_state = one_state,
     .defines = no_defines,
     .hyper = qn_hyper,
     .check = lbfgs_check},
    {.name = "cg",
     .file = "upd_qn.cl",
     .summary = "nonlinear conjugate gradient (PR+, FR or HS) with restarts and a line search",
     .default_lr = 1,
     .default_eps = 1e-8,
     .default_weight_decay = 0,
     .default_momentum = 0,
     .default_c2 = 0.1,
     .qn = CLOPT_QN_CG,
     .n_state = one_state,
     .defines = no_defines,
     .hyper = qn_hyper,
     .check = cg_check},
};

const struct clopt_optimizer_type *clopt_find_optimizer(const char *name)
{
    for (size_t i = 0; i < sizeof optimizers / sizeof *optimizers; ++i)
        if (strcmp(optimizers[i].name, name) == 0)
            return &optimizers[i];
    return NULL;
}

/* The names come from the table, filled in once: a second, hand-kept list would drift. */
#define N_OPTIMIZERS (sizeof optimizers / sizeof *optimizers)
static const char *optimizer_names[N_OPTIMIZERS + 1];
static pthread_once_t optimizer_names_once = PTHREAD_ONCE_INIT;

static void fill_optimizer_names(void)
{
    for (size_t i = 0; i < N_OPTIMIZERS; ++i)
        optimizer_names[i] = optimizers[i].name;
}

const char *const *clopt_optimizer_names(void)
{
    pthread_once(&optimizer_names_once, fill_optimizer_names);
    return optimizer_names;
}
