/* The caller's options: their defaults, the checks every run needs before anything is
 * built, and the hyper-parameters resolved from the optimizer's defaults. */
#include "abi.h"
#include "solver.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The current version's defaults. */
static void options_defaults(struct clopt_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->objective = "sphere";
    opts->dim = 1000000;
    opts->precision = CLOPT_FLOAT;
    opts->optimizer = "gd";
    /* NaN: the optimizer's default (see host/hyper.c); a value the caller sets must be one
     * the optimizer uses. */
    opts->lr = NAN;
    opts->momentum = NAN;
    opts->dampening = NAN;
    opts->beta1 = NAN;
    opts->beta2 = NAN;
    opts->eps = NAN;
    opts->weight_decay = NAN;
    opts->alpha = NAN;
    opts->history = NAN;
    opts->c1 = NAN;
    opts->c2 = NAN;
    opts->max_ls = NAN;
    opts->line_search = NAN;
    opts->cg_beta = NAN;
    opts->max_evals = NAN;
    opts->gd_step = NAN;
    opts->max_iters = 1000;
    opts->gtol = NAN;
    opts->ftol = NAN;
    opts->target = NAN;
    opts->loss_every = 1;
    opts->init = CLOPT_INIT_NORMAL;
    opts->init_value = 1.0;
}

void clopt_options_init_size(struct clopt_options *opts, size_t size)
{
    struct clopt_options d;
    options_defaults(&d);
    clopt_abi_init(&d, sizeof d, opts, size);
}

/* Every version of struct clopt_options, oldest first. */
static const struct clopt_abi_version options_versions[] = {
    /* 1: up to `stop` */
    {CLOPT_ABI_OLD_SIZE(struct clopt_options, n_axes), offsetof(struct clopt_options, n_axes)},
    /* 2: n_axes, shape */
    {CLOPT_ABI_OLD_SIZE(struct clopt_options, history), offsetof(struct clopt_options, history)},
    /* 3: history, c1, c2, max_ls, line_search, cg_beta (lbfgs, cg) */
    {CLOPT_ABI_OLD_SIZE(struct clopt_options, max_evals),
     offsetof(struct clopt_options, max_evals)},
    /* 4: max_evals */
    {CLOPT_ABI_OLD_SIZE(struct clopt_options, gd_step), offsetof(struct clopt_options, gd_step)},
    /* 5: gd_step */
    {sizeof(struct clopt_options), sizeof(struct clopt_options)},
};
_Static_assert(CLOPT_ABI_OLD_SIZE(struct clopt_options, n_axes) <
                       CLOPT_ABI_OLD_SIZE(struct clopt_options, history) &&
                   CLOPT_ABI_OLD_SIZE(struct clopt_options, history) <
                       CLOPT_ABI_OLD_SIZE(struct clopt_options, max_evals) &&
                   CLOPT_ABI_OLD_SIZE(struct clopt_options, max_evals) <
                       CLOPT_ABI_OLD_SIZE(struct clopt_options, gd_step) &&
                   CLOPT_ABI_OLD_SIZE(struct clopt_options, gd_step) < sizeof(struct clopt_options),
               "each version of struct clopt_options must be larger than the one before");

int clopt_options_adopt(const struct clopt_options *in, struct clopt_options *out, char *err,
                        size_t errlen)
{
    static const struct clopt_abi_layout layout = {
        "options", "clopt_options_init", options_versions,
        sizeof options_versions / sizeof *options_versions};
    options_defaults(out);
    return clopt_abi_adopt(&layout, in, out, err, errlen);
}

/* A user's objective is a file ending in ".cl"; anything else names a built-in. */
int clopt_is_objective_file(const char *name)
{
    const size_t a = strlen(name), b = strlen(".cl");
    return a >= b && strcmp(name + a - b, ".cl") == 0;
}

/* A value checked in double but used by a float kernel: it must survive the conversion.
 * Beyond FLT_MAX it becomes Inf; below FLT_MIN it is subnormal, and the kernels are built
 * with -cl-denorms-are-zero, so it acts as 0 (an eps of 1e-40 divides by zero); and
 * rounding may put it on an open bound (a momentum of 1 - 1e-9 becomes 1). */
static int check_in_float(struct clopt_context *ctx, const struct clopt_hyper_param *p, double v)
{
    if (fabs(v) > FLT_MAX)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.%s %g is too large for float (largest %g): use a smaller "
                          "value or options.precision = CLOPT_DOUBLE",
                          p->name, v, (double)FLT_MAX);
    const double f = (double)(float)v;
    if (v != 0 && fabs(f) < FLT_MIN)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.%s %g is too small for float: the kernels treat values below "
                          "%g as 0; use 0, a value of at least %g, or options.precision = "
                          "CLOPT_DOUBLE",
                          p->name, v, (double)FLT_MIN, (double)FLT_MIN);
    const int ok =
        (p->low_open ? f > p->low : f >= p->low) && (p->high_open ? f < p->high : f <= p->high);
    if (!ok)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.%s %.15g rounds to %.9g in float, out of range %c%g, %g%c: use "
                          "a value further inside or options.precision = CLOPT_DOUBLE",
                          p->name, v, f, p->low_open ? '(' : '[', p->low, p->high,
                          p->high_open ? ')' : ']');
    return CLOPT_OK;
}

/* Each hyper-parameter within its row's range (NaN, where it means the default, aside), in
 * the precision the kernels use. */
static int check_hyper_ranges(struct clopt_context *ctx, const struct clopt_options *o)
{
    size_t count;
    const struct clopt_hyper_param *rows = clopt_hyper_params(&count);
    for (size_t i = 0; i < count; ++i) {
        const struct clopt_hyper_param *p = &rows[i];
        const double v = clopt_hyper_get(p, o);
        if (p->is_flag || (isnan(v) && p->nan_is_default))
            continue;
        const int ok = !isnan(v) && (p->low_open ? v > p->low : v >= p->low) &&
                       (p->high_open ? v < p->high : v <= p->high);
        if (!ok)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "options.%s %g is out of range: need a value in %c%g, %g%c", p->name,
                              v, p->low_open ? '(' : '[', p->low, p->high,
                              p->high_open ? ')' : ']');
        if (o->precision == CLOPT_FLOAT) {
            const int status = check_in_float(ctx, p, v);
            if (status != CLOPT_OK)
                return status;
        }
    }
    return CLOPT_OK;
}

/* options.shape: 0 axes, or axes of at least 1 whose product is options.dim. */
static int check_shape(struct clopt_context *ctx, const struct clopt_options *o)
{
    if (o->n_axes > CLOPT_MAX_AXES)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.n_axes %zu is more than CLOPT_MAX_AXES (%d)", o->n_axes,
                          CLOPT_MAX_AXES);
    size_t count = 1;
    int overflow = 0;
    char text[CLOPT_MAX_AXES * 22 + 8] = "(";
    for (size_t a = 0; a < o->n_axes; ++a) {
        if (o->shape[a] == 0)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "options.shape[%zu] is 0: every axis needs at least 1 element", a);
        if (count > SIZE_MAX / o->shape[a])
            overflow = 1;
        else
            count *= o->shape[a];
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%zu", a ? ", " : "",
                 o->shape[a]);
    }
    if (o->n_axes && (overflow || count != o->dim))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.shape %s%s does not hold options.dim = %zu elements: make the "
                          "product of the shape equal dim",
                          text, o->n_axes == 1 ? ",)" : ")", o->dim);
    return CLOPT_OK;
}

int clopt_validate_options(struct clopt_context *ctx, const struct clopt_options *o)
{
    if (!o->objective || !*o->objective)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "no objective given");
    char names[256];
    if (!clopt_is_objective_file(o->objective) && !clopt_find_objective(o->objective)) {
        clopt_join_names(clopt_objective_names(), names, sizeof names);
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown objective '%s': use %s (see clopt objectives) or a file "
                          "ending in .cl",
                          o->objective, names);
    }
    if (!o->optimizer || !clopt_find_optimizer(o->optimizer)) {
        clopt_join_names(clopt_optimizer_names(), names, sizeof names);
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "unknown optimizer '%s': use %s",
                          o->optimizer ? o->optimizer : "", names);
    }
    if (o->dim == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.dim must be at least 1");
    int status = check_shape(ctx, o);
    if (status != CLOPT_OK)
        return status;
    status = check_hyper_ranges(ctx, o);
    if (status != CLOPT_OK)
        return status;
    if (o->precision != CLOPT_FLOAT && o->precision != CLOPT_DOUBLE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "precision must be float or double");
    if (o->precision == CLOPT_DOUBLE && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no double precision (cl_khr_fp64): use "
                          "options.precision = CLOPT_FLOAT or another device",
                          ctx->info.name);
    if (o->loss_every == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.loss_every must be at least 1");
    if (o->gtol < 0 || isinf(o->gtol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.gtol must be a finite number >= 0");
    if (o->ftol < 0 || isinf(o->ftol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.ftol must be a finite number >= 0");
    if (isinf(o->target))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.target must be finite");
    if (o->init != CLOPT_INIT_NORMAL && o->init != CLOPT_INIT_UNIFORM &&
        o->init != CLOPT_INIT_CONST && o->init != CLOPT_INIT_NONE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "unknown init kind");
    if (!isfinite(o->init_value))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "the init value must be finite");
    if (o->n_params && !o->params)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "n_params > 0 but params is NULL");
    if (o->checkpoint && !*o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.checkpoint needs a file name");
    if (o->checkpoint_every && !o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.checkpoint_every needs options.checkpoint");
    return CLOPT_OK;
}

/* A value the caller set for a hyper-parameter the optimizer ignores would silently do
 * nothing: refuse it, naming the optimizers that do use it. */
static int refuse_unused(struct clopt_context *ctx, const struct clopt_optimizer_type *opt,
                         const struct clopt_options *o)
{
    size_t count;
    const struct clopt_hyper_param *rows = clopt_hyper_params(&count);
    for (size_t i = 0; i < count; ++i) {
        const struct clopt_hyper_param *p = &rows[i];
        if (!clopt_hyper_is_set(p, o) || clopt_hyper_used_by(p, opt->name))
            continue;
        char users[128] = "";
        for (size_t k = 0; k < CLOPT_MAX_OPTIMIZERS && p->used_by[k]; ++k)
            snprintf(users + strlen(users), sizeof users - strlen(users), "%s%s", k ? ", " : "",
                     p->used_by[k]);
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.%s is not used by optimizer '%s'; it is used by %s", p->name,
                          opt->name, users);
    }
    return CLOPT_OK;
}

/* Refuses what the optimizer ignores, fills its defaults, checks what only it can, and
 * parses the schedule. */
int clopt_resolve_hyper(struct clopt_solver *s)
{
    struct clopt_options *o = &s->opts;
    const struct clopt_optimizer_type *opt = s->optimizer;
    int status = refuse_unused(s->ctx, opt, o);
    if (status != CLOPT_OK)
        return status;
    size_t count;
    const struct clopt_hyper_param *rows = clopt_hyper_params(&count);
    for (size_t i = 0; i < count; ++i)
        clopt_hyper_set_default(&rows[i], opt, o);
    const char *problem = opt->check ? opt->check(o) : NULL;
    if (problem)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "%s", problem);
    const char *why = NULL;
    if (clopt_schedule_parse(o->schedule, &s->schedule, &why))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "options.schedule '%s': %s", o->schedule,
                          why);
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
