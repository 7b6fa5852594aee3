/* The caller's options: their defaults, the checks every run needs before anything is
 * built, and the hyper-parameters resolved from the optimizer's defaults. */
#include "solver.h"

#include <math.h>
#include <string.h>

void clopt_options_init(struct clopt_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->objective = "sphere";
    opts->dim = 1000000;
    opts->precision = CLOPT_FLOAT;
    opts->optimizer = "gd";
    opts->lr = NAN;
    opts->momentum = NAN;
    opts->dampening = 0;
    opts->beta1 = 0.9;
    opts->beta2 = 0.999;
    opts->eps = NAN;
    opts->weight_decay = NAN;
    opts->alpha = 0.99;
    opts->max_iters = 1000;
    opts->gtol = NAN;
    opts->ftol = NAN;
    opts->target = NAN;
    opts->loss_every = 1;
    opts->init = CLOPT_INIT_NORMAL;
    opts->init_value = 1.0;
}

/* A user's objective is a file ending in ".cl"; anything else names a built-in. */
int clopt_is_objective_file(const char *name)
{
    const size_t a = strlen(name), b = strlen(".cl");
    return a >= b && strcmp(name + a - b, ".cl") == 0;
}

int clopt_validate_options(struct clopt_context *ctx, const struct clopt_options *o)
{
    if (!o->objective || !*o->objective)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "no objective given");
    if (!clopt_is_objective_file(o->objective) && !clopt_find_objective(o->objective))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown objective '%s': use sphere, ellipsoid, rastrigin, "
                          "styblinski_tang, double_well, shifted_sphere, rosenbrock, laplacian "
                          "(see clopt objectives) or a file ending in .cl",
                          o->objective);
    if (!o->optimizer || !clopt_find_optimizer(o->optimizer))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown optimizer '%s': use gd, momentum, nesterov, adam, adamw, "
                          "rmsprop or adagrad",
                          o->optimizer ? o->optimizer : "");
    if (o->dim == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--dim must be at least 1");
    /* NaN means "the optimizer's default" where nan_ok; any other value must be in range. */
    const struct {
        const char *flag;
        double value, low, high;
        int low_open, high_open, nan_ok;
    } ranges[] = {
        {"--lr", o->lr, 0, INFINITY, 0, 1, 1},
        {"--momentum", o->momentum, 0, 1, 0, 1, 1},
        {"--dampening", o->dampening, 0, 1, 0, 0, 0},
        {"--beta1", o->beta1, 0, 1, 0, 1, 0},
        {"--beta2", o->beta2, 0, 1, 0, 1, 0},
        {"--eps", o->eps, 0, INFINITY, 1, 1, 1},
        {"--weight-decay", o->weight_decay, 0, INFINITY, 0, 1, 1},
        {"--alpha", o->alpha, 0, 1, 0, 1, 0},
        {"--clip-value", o->clip_value, 0, INFINITY, 0, 1, 0},
        {"--clip-norm", o->clip_norm, 0, INFINITY, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; ++i) {
        const double v = ranges[i].value;
        if (isnan(v) && ranges[i].nan_ok)
            continue;
        const int ok = !isnan(v) && (ranges[i].low_open ? v > ranges[i].low : v >= ranges[i].low) &&
                       (ranges[i].high_open ? v < ranges[i].high : v <= ranges[i].high);
        if (!ok)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "%s %g is out of range: need a value in %c%g, %g%c", ranges[i].flag,
                              v, ranges[i].low_open ? '(' : '[', ranges[i].low, ranges[i].high,
                              ranges[i].high_open ? ')' : ']');
    }
    if (o->precision != CLOPT_FLOAT && o->precision != CLOPT_DOUBLE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "precision must be float or double");
    if (o->precision == CLOPT_DOUBLE && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no double precision (cl_khr_fp64): use "
                          "--precision float or another device",
                          ctx->info.name);
    if (o->loss_every == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--loss-every must be at least 1");
    if (o->gtol < 0 || isinf(o->gtol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--gtol must be a finite number >= 0");
    if (o->ftol < 0 || isinf(o->ftol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--ftol must be a finite number >= 0");
    if (isinf(o->target))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--target must be finite");
    if (o->init != CLOPT_INIT_NORMAL && o->init != CLOPT_INIT_UNIFORM &&
        o->init != CLOPT_INIT_CONST && o->init != CLOPT_INIT_NONE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "unknown init kind");
    if (!isfinite(o->init_value))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "the init value must be finite");
    if (o->n_params && !o->params)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "n_params > 0 but params is NULL");
    if (o->checkpoint && !*o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--checkpoint needs a file name");
    if (o->checkpoint_every && !o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--checkpoint-every needs --checkpoint FILE");
    return CLOPT_OK;
}

/* Fills the optimizer's defaults, checks what only it can, and parses the schedule. */
int clopt_resolve_hyper(struct clopt_solver *s)
{
    struct clopt_options *o = &s->opts;
    const struct clopt_optimizer_type *opt = s->optimizer;
    if (isnan(o->lr))
        o->lr = opt->default_lr;
    if (isnan(o->eps))
        o->eps = opt->default_eps;
    if (isnan(o->weight_decay))
        o->weight_decay = opt->default_weight_decay;
    if (isnan(o->momentum))
        o->momentum = opt->default_momentum;
    const char *problem = opt->check ? opt->check(o) : NULL;
    if (problem)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "%s", problem);
    const char *why = NULL;
    if (clopt_schedule_parse(o->schedule, &s->schedule, &why))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "--schedule '%s': %s", o->schedule, why);
    s->hyper = (struct clopt_hyper_in){.lr = o->lr,
                                       .weight_decay = o->weight_decay,
                                       .momentum = o->momentum,
                                       .dampening = o->dampening,
                                       .beta1 = o->beta1,
                                       .beta2 = o->beta2,
                                       .eps = o->eps,
                                       .alpha = o->alpha};
    s->n_state = opt->n_state(o);
    return CLOPT_OK;
}

/* The kernel's hyper-parameters for global step `step` (0-based). */
void clopt_hyper_for_step(const struct clopt_solver *s, uint64_t step, int fresh_state,
                          double h[CLOPT_HYPER_SLOTS])
{
    struct clopt_hyper_in in = s->hyper;
    in.lr = clopt_schedule_lr(&s->schedule, s->hyper.lr, step);
    in.step = step + 1;
    in.fresh_state = fresh_state;
    for (size_t i = 0; i < CLOPT_HYPER_SLOTS; ++i)
        h[i] = 0;
    s->optimizer->hyper(&in, h);
}
