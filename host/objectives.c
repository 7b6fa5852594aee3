/* The built-in objectives and update rules: adding one is a table entry plus a kernel
 * file. */
#include "internal.h"

#include <string.h>

static const struct clopt_objective_type objectives[] = {
    {
        .name = "sphere",
        .file = "obj_sphere.cl",
        .formula = "sum_i theta_i^2",
        .minimum = "0 at theta = 0",
        .n_params = 0,
    },
    {
        .name = "ellipsoid",
        .file = "obj_ellipsoid.cl",
        .formula = "sum_i cond^(i/(n-1)) theta_i^2",
        .minimum = "0 at theta = 0",
        .params = {{.key = "cond",
                    .default_value = 1e6,
                    .min_value = 1,
                    .max_value = 1e30,
                    .help = "condition number of the Hessian"}},
        .n_params = 1,
    },
};

static const struct clopt_optimizer_type optimizers[] = {
    {
        .name = "gd",
        .file = "upd_gd.cl",
        .n_state = 0,
        .summary = "theta <- theta - lr * g",
    },
};

const struct clopt_objective_type *clopt_find_objective(const char *name)
{
    for (size_t i = 0; i < sizeof objectives / sizeof *objectives; ++i)
        if (strcmp(objectives[i].name, name) == 0)
            return &objectives[i];
    return NULL;
}

const struct clopt_optimizer_type *clopt_find_optimizer(const char *name)
{
    for (size_t i = 0; i < sizeof optimizers / sizeof *optimizers; ++i)
        if (strcmp(optimizers[i].name, name) == 0)
            return &optimizers[i];
    return NULL;
}

const char *const *clopt_objective_names(void)
{
    static const char *const names[] = {"sphere", "ellipsoid", NULL};
    return names;
}

const char *const *clopt_optimizer_names(void)
{
    static const char *const names[] = {"gd", NULL};
    return names;
}
