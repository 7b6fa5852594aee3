/* The built-in objectives: adding one is a table entry plus a kernel file. */
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

const struct clopt_objective_type *clopt_find_objective(const char *name)
{
    for (size_t i = 0; i < sizeof objectives / sizeof *objectives; ++i)
        if (strcmp(objectives[i].name, name) == 0)
            return &objectives[i];
    return NULL;
}

const char *const *clopt_objective_names(void)
{
    static const char *const names[] = {"sphere", "ellipsoid", NULL};
    return names;
}
