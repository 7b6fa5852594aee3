/* The hyper-parameters: one row per field of struct clopt_options that an update rule
 * reads. Validation, the optimizer's defaults, the refusal of a value the optimizer ignores
 * and a checkpoint's configuration text are all read from this table, so adding one is a
 * row here, the field in clopt.h and its use in the kernel. */
#include "internal.h"
#include "solver/solver.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define DOUBLE_FIELD(field) .name = #field, .offset = offsetof(struct clopt_options, field)
#define FLAG_FIELD(field)                                                                          \
    .name = #field, .offset = offsetof(struct clopt_options, field), .is_flag = 1
#define OPTIMIZER_DEFAULT(field) .optimizer_default = offsetof(struct clopt_optimizer_type, field)

/* In checkpoint order: a checkpoint's configuration lists them so, and existing checkpoints
 * must keep resuming. */
static const struct clopt_hyper_param rows[] = {
    {DOUBLE_FIELD(lr), .high = INFINITY, .high_open = 1, .nan_is_default = 1,
     OPTIMIZER_DEFAULT(default_lr), .info_only = 1},
    {DOUBLE_FIELD(momentum), .high = 1, .high_open = 1, .nan_is_default = 1,
     OPTIMIZER_DEFAULT(default_momentum), .used_by = {"momentum", "nesterov", "rmsprop"}},
    {DOUBLE_FIELD(dampening), .high = 1, .nan_is_default = 1, .used_by = {"momentum", "nesterov"}},
    {DOUBLE_FIELD(beta1), .high = 1, .high_open = 1, .nan_is_default = 1, .default_value = 0.9,
     .used_by = {"adam", "adamw"}},
    {DOUBLE_FIELD(beta2), .high = 1, .high_open = 1, .nan_is_default = 1, .default_value = 0.999,
     .used_by = {"adam", "adamw"}},
    {DOUBLE_FIELD(eps), .low_open = 1, .high = INFINITY, .high_open = 1, .nan_is_default = 1,
     OPTIMIZER_DEFAULT(default_eps), .used_by = {"adam", "adamw", "rmsprop", "adagrad"}},
    {DOUBLE_FIELD(weight_decay), .high = INFINITY, .high_open = 1, .nan_is_default = 1,
     OPTIMIZER_DEFAULT(default_weight_decay)},
    {DOUBLE_FIELD(alpha), .high = 1, .high_open = 1, .nan_is_default = 1, .default_value = 0.99,
     .used_by = {"rmsprop"}},
    {FLAG_FIELD(amsgrad), .used_by = {"adam", "adamw"}},
    {FLAG_FIELD(maximize)},
    {DOUBLE_FIELD(clip_value), .high = INFINITY, .high_open = 1},
    {DOUBLE_FIELD(clip_norm), .high = INFINITY, .high_open = 1},
    /* lbfgs and cg (host/qn/); whole numbers and c1 < c2 are checked by the optimizer. */
    {DOUBLE_FIELD(history), .low = 1, .high = 64, .nan_is_default = 1, .default_value = 10,
     .used_by = {"lbfgs"}},
    {DOUBLE_FIELD(c1), .low_open = 1, .high = 1, .high_open = 1, .nan_is_default = 1,
     .default_value = 1e-4, .used_by = {"lbfgs", "cg"}},
    {DOUBLE_FIELD(c2), .low_open = 1, .high = 1, .high_open = 1, .nan_is_default = 1,
     OPTIMIZER_DEFAULT(default_c2), .used_by = {"lbfgs", "cg"}},
    {DOUBLE_FIELD(max_ls), .low = 1, .high = 1000, .nan_is_default = 1, .default_value = 20,
     .used_by = {"lbfgs", "cg"}},
    {DOUBLE_FIELD(line_search), .low = CLOPT_LINE_SEARCH_ARMIJO, .high = CLOPT_LINE_SEARCH_WOLFE,
     .nan_is_default = 1, .default_value = CLOPT_LINE_SEARCH_WOLFE, .used_by = {"lbfgs", "cg"}},
    {DOUBLE_FIELD(cg_beta), .low = CLOPT_CG_FR, .high = CLOPT_CG_HS, .nan_is_default = 1,
     .default_value = CLOPT_CG_PR, .used_by = {"cg"}},
    /* 2^53: the largest count a double holds exactly. */
    {DOUBLE_FIELD(max_evals), .high = 9007199254740992.0, .nan_is_default = 1,
     .used_by = {"lbfgs", "cg"}},
};

const struct clopt_hyper_param *clopt_hyper_params(size_t *count)
{
    *count = sizeof rows / sizeof *rows;
    return rows;
}

double clopt_hyper_get(const struct clopt_hyper_param *p, const struct clopt_options *o)
{
    const char *field = (const char *)o + p->offset;
    return p->is_flag ? (double)(*(const int *)(const void *)field != 0)
                      : *(const double *)(const void *)field;
}

int clopt_hyper_is_set(const struct clopt_hyper_param *p, const struct clopt_options *o)
{
    const double value = clopt_hyper_get(p, o);
    return p->is_flag ? value != 0 : !isnan(value);
}

int clopt_hyper_used_by(const struct clopt_hyper_param *p, const char *optimizer)
{
    if (!p->used_by[0])
        return 1;
    for (size_t i = 0; i < CLOPT_MAX_OPTIMIZERS && p->used_by[i]; ++i)
        if (strcmp(p->used_by[i], optimizer) == 0)
            return 1;
    return 0;
}

void clopt_hyper_set_default(const struct clopt_hyper_param *p,
                             const struct clopt_optimizer_type *opt, struct clopt_options *o)
{
    if (p->is_flag || !p->nan_is_default)
        return;
    double *field = (double *)(void *)((char *)o + p->offset);
    if (!isnan(*field))
        return;
    *field = p->optimizer_default
                 ? *(const double *)(const void *)((const char *)opt + p->optimizer_default)
                 : p->default_value;
}

int clopt_solver_hyper(const struct clopt_solver *s, size_t k, const char **name, double *value,
                       int *is_flag)
{
    if (!s)
        return CLOPT_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; ++i) {
        if (!clopt_hyper_used_by(&rows[i], s->optimizer->name) || k-- > 0)
            continue;
        if (name)
            *name = rows[i].name;
        if (value)
            *value = clopt_hyper_get(&rows[i], &s->opts);
        if (is_flag)
            *is_flag = rows[i].is_flag;
        return CLOPT_OK;
    }
    /* gd with Barzilai-Borwein steps: options.gd_step, after the rows (not a row: only these
     * runs' checkpoint configurations hold it, host/solver/resume.c). */
    if (s->optimizer->qn == CLOPT_QN_BB && k == 0) {
        if (name)
            *name = "gd_step";
        if (value)
            *value = s->opts.gd_step;
        if (is_flag)
            *is_flag = 0;
        return CLOPT_OK;
    }
    return CLOPT_ERR_INVALID_ARG;
}

int clopt_hyper_default(const char *optimizer, const char *name, double *value)
{
    const struct clopt_optimizer_type *opt = optimizer ? clopt_find_optimizer(optimizer) : NULL;
    if (!opt || !name || !value)
        return CLOPT_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; ++i) {
        const struct clopt_hyper_param *p = &rows[i];
        if (strcmp(p->name, name) != 0)
            continue;
        if (!clopt_hyper_used_by(p, opt->name))
            return CLOPT_ERR_INVALID_ARG;
        struct clopt_options o;
        clopt_options_init(&o);
        clopt_hyper_set_default(p, opt, &o);
        *value = clopt_hyper_get(p, &o);
        return CLOPT_OK;
    }
    return CLOPT_ERR_INVALID_ARG;
}

const char *clopt_hyper_name(size_t index)
{
    return index < sizeof rows / sizeof *rows ? rows[index].name : NULL;
}

int clopt_options_set_hyper(struct clopt_options *opts, const char *name, double value)
{
    if (!opts || !name)
        return CLOPT_ERR_INVALID_ARG;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; ++i) {
        if (strcmp(rows[i].name, name) != 0)
            continue;
        char *field = (char *)opts + rows[i].offset;
        if (rows[i].is_flag)
            *(int *)(void *)field = value != 0;
        else
            *(double *)(void *)field = value;
        return CLOPT_OK;
    }
    return CLOPT_ERR_INVALID_ARG;
}
