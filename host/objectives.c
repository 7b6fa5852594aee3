/* The built-in objectives: adding one is a table entry plus a kernel file. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const struct clopt_objective_type objectives[] = {
    {
        .name = "sphere",
        .suggested_lr = 0.1,
        .file = "obj_sphere.cl",
        .formula = "sum_i theta_i^2",
        .minimum = "0 at theta = 0",
        .n_params = 0,
    },
    {
        .name = "ellipsoid",
        .suggested_lr = 5e-7,
        .file = "obj_ellipsoid.cl",
        .formula = "sum_i cond^(i/(n-1)) theta_i^2",
        .minimum = "0 at theta = 0",
        .params = {{.key = "cond",
                    .default_value = 1e6,
                    .min_value = 1,
                    .max_value = 1e30,
                    .help = "condition number of the Hessian"}},
        .n_params = 1,
        .uses_dim = 1,
    },
    {
        .name = "rastrigin",
        .suggested_lr = 1e-3,
        .file = "obj_rastrigin.cl",
        .formula = "sum_i a + theta_i^2 - a cos(2 pi theta_i)",
        .minimum = "0 at theta = 0 (a local minimum near every integer point)",
        .params = {{.key = "a",
                    .default_value = 10,
                    .min_value = 0,
                    .max_value = 1e6,
                    .help = "amplitude of the cosine term"}},
        .n_params = 1,
    },
    {
        .name = "styblinski_tang",
        .suggested_lr = 1e-2,
        .file = "obj_styblinski_tang.cl",
        .formula = "sum_i (theta_i^4 - 16 theta_i^2 + 5 theta_i) / 2",
        .minimum = "-39.16616570377142 n at theta_i = -2.903534027771178",
        .n_params = 0,
    },
    {
        .name = "double_well",
        .suggested_lr = 1e-2,
        .file = "obj_double_well.cl",
        .formula = "sum_i (theta_i^2 - 1)^2",
        .minimum = "0 at every theta with theta_i = +-1 (non-convex: a saddle where some "
                   "theta_i = 0)",
        .n_params = 0,
    },
    {
        .name = "shifted_sphere",
        .suggested_lr = 0.1,
        .file = "obj_shifted_sphere.cl",
        .formula = "sum_i (theta_i - t_i)^2",
        .minimum = "0 at theta = t",
        .params = {{.key = "target",
                    .help = "FILE.npy of n float32/float64 values: the minimiser t (required)",
                    .is_file = 1}},
        .n_params = 1,
        .data_param = "target",
    },
    {
        .name = "rosenbrock",
        .suggested_lr = 1e-4,
        .file = "obj_rosenbrock.cl",
        .formula = "sum_{i<n-1} 100 (theta_{i+1} - theta_i^2)^2 + (1 - theta_i)^2 (chained; "
                   "stencil radius 1)",
        .minimum = "0 at theta = 1 (n >= 2)",
        .n_params = 0,
        .stencil_radius = 1,
    },
    {
        .name = "laplacian",
        .suggested_lr = 0.1,
        .file = "obj_laplacian.cl",
        .formula = "1/2 sum_{i=0}^{n} (theta_i - theta_{i-1})^2, theta_{-1} = left, theta_n = "
                   "right (stencil radius 1)",
        .minimum = "(right - left)^2 / (2 (n + 1)) at theta_i = left + (right - left) (i + 1) / "
                   "(n + 1)",
        .params = {{.key = "left",
                    .default_value = 0,
                    .min_value = -1e30,
                    .max_value = 1e30,
                    .help = "theta_{-1}, the fixed left end"},
                   {.key = "right",
                    .default_value = 1,
                    .min_value = -1e30,
                    .max_value = 1e30,
                    .help = "theta_n, the fixed right end"}},
        .n_params = 2,
        .stencil_radius = 1,
    },
    {
        .name = "poisson",
        .suggested_lr = 0.1,
        .file = "obj_poisson.cl",
        .formula = "1/2 sum over grid edges (u_p - u_q)^2 - sum_p b_p u_p; edges join each point "
                   "to its +1 neighbour along every axis, and each point on a face to a fixed 0 "
                   "outside it (Dirichlet); grid of options.shape (--shape), radius 1",
        .minimum = "at the solution of A u = b, A the (2d+1)-point Laplacian (2d on the "
                   "diagonal): -1/2 b.u there",
        .params = {{.key = "source",
                    .help = "FILE.npy of n float32/float64 values in the grid's shape: b "
                            "(required)",
                    .is_file = 1}},
        .n_params = 1,
        .data_param = "source",
        .stencil_radius = 1,
        .grid = 1,
    },
    {
        .name = "tv_denoise",
        .suggested_lr = 2e-3, /* below 2 / (1 + 8 lambda / eps) */
        .file = "obj_tv_denoise.cl",
        .formula = "1/2 sum_p (u_p - y_p)^2 + lambda sum_p sqrt(eps^2 + sum_k (u_{p+e_k} - "
                   "u_p)^2); forward differences along every axis, 0 where they would leave "
                   "the grid; grid of options.shape (--shape), radius 1",
        .minimum = "the denoised image (convex: one minimum)",
        .params = {{.key = "image",
                    .help = "FILE.npy of n float32/float64 values in the grid's shape: the noisy "
                            "y (required)",
                    .is_file = 1},
                   {.key = "lambda",
                    .default_value = 0.1,
                    .min_value = 0,
                    .max_value = 1e30,
                    .help = "weight of the total variation"},
                   {.key = "eps",
                    .default_value = 1e-3,
                    .min_value = 1e-30,
                    .max_value = 1e30,
                    .help = "smoothing of the total variation near 0"}},
        .n_params = 3,
        .data_param = "image",
        .stencil_radius = 1,
        .grid = 1,
    },
};

const struct clopt_objective_type *clopt_find_objective(const char *name)
{
    for (size_t i = 0; i < sizeof objectives / sizeof *objectives; ++i)
        if (strcmp(objectives[i].name, name) == 0)
            return &objectives[i];
    return NULL;
}

/* The names come from the table, filled in once: a second, hand-kept list would drift. */
#define N_OBJECTIVES (sizeof objectives / sizeof *objectives)
static const char *objective_names[N_OBJECTIVES + 1];
static pthread_once_t objective_names_once = PTHREAD_ONCE_INIT;

static void fill_objective_names(void)
{
    for (size_t i = 0; i < N_OBJECTIVES; ++i)
        objective_names[i] = objectives[i].name;
}

const char *const *clopt_objective_names(void)
{
    pthread_once(&objective_names_once, fill_objective_names);
    return objective_names;
}

void clopt_join_names(const char *const *names, char *text, size_t size)
{
    size_t used = 0, count = 0;
    while (names[count])
        ++count;
    if (size)
        text[0] = '\0';
    for (size_t i = 0; i < count && used < size; ++i) {
        const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
        const int n = snprintf(text + used, size - used, "%s%s", sep, names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

int clopt_objective_describe(const char *name, const char **formula, const char **minimum,
                             char *params, size_t params_size)
{
    const struct clopt_objective_type *o = clopt_find_objective(name);
    if (!o)
        return CLOPT_ERR_INVALID_ARG;
    *formula = o->formula;
    *minimum = o->minimum;
    size_t used = 0;
    params[0] = '\0';
    for (size_t i = 0; i < o->n_params && used < params_size; ++i) {
        const struct clopt_param_spec *p = &o->params[i];
        int n = p->is_file ? snprintf(params + used, params_size - used, "%s%s=%s", i ? "; " : "",
                                      p->key, p->help)
                           : snprintf(params + used, params_size - used,
                                      "%s%s=%g (%s, in [%g, %g])", i ? "; " : "", p->key,
                                      p->default_value, p->help, p->min_value, p->max_value);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return CLOPT_OK;
}

int clopt_objective_suggested_lr(const char *name, double *lr)
{
    const struct clopt_objective_type *o = name ? clopt_find_objective(name) : NULL;
    if (!o || !lr)
        return CLOPT_ERR_INVALID_ARG;
    *lr = o->suggested_lr;
    return CLOPT_OK;
}
