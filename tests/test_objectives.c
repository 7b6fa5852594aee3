/* The objectives beyond the separable basics: data (shifted_sphere), non-convex
 * (double_well) and stencil objectives (rosenbrock, laplacian) against double CPU
 * references, their shard independence, and their known minima. */
#include "testutil.h"

#define CL_TARGET_OPENCL_VERSION 120
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LR 0.01
#define LAPLACE_LEFT (-0.5)
#define LAPLACE_RIGHT 2.0

CONTEXT_TEMP_DIR_SUITE(objectives);

/* L(theta) in double with its gradient in g; gabs[i] sums the magnitudes of the terms of
 * g[i], the scale of its rounding error. target is shifted_sphere's. */
static double reference(const char *objective, const double *x, size_t n, const double *target,
                        double *g, double *gabs)
{
    double loss = 0;
    for (size_t i = 0; i < n; ++i) {
        double f = 0, gi = 0, ga = 0;
        if (!strcmp(objective, "rosenbrock")) {
            if (i + 1 < n) {
                const double valley = x[i + 1] - x[i] * x[i], off = 1 - x[i];
                f = 100 * valley * valley + off * off;
                gi = -400 * x[i] * valley - 2 * off;
                ga = 400 * fabs(x[i]) * (fabs(x[i + 1]) + x[i] * x[i]) + 2 * fabs(off);
            }
            if (i > 0) {
                gi += 200 * (x[i] - x[i - 1] * x[i - 1]);
                ga += 200 * (fabs(x[i]) + x[i - 1] * x[i - 1]);
            }
        } else if (!strcmp(objective, "laplacian")) {
            const double before = i > 0 ? x[i - 1] : LAPLACE_LEFT;
            const double after = i + 1 < n ? x[i + 1] : LAPLACE_RIGHT;
            f = (x[i] - before) * (x[i] - before) / 2;
            if (i + 1 == n)
                f += (after - x[i]) * (after - x[i]) / 2;
            gi = 2 * x[i] - before - after;
            ga = 2 * fabs(x[i]) + fabs(before) + fabs(after);
        } else if (!strcmp(objective, "double_well")) {
            const double d = x[i] * x[i] - 1;
            f = d * d;
            gi = 4 * x[i] * d;
            ga = 4 * fabs(x[i]) * (x[i] * x[i] + 1);
        } else if (!strcmp(objective, "shifted_sphere")) {
            f = (x[i] - target[i]) * (x[i] - target[i]);
            gi = 2 * (x[i] - target[i]);
            ga = 2 * (fabs(x[i]) + fabs(target[i]));
        } else {
            cr_assert_fail("no reference for %s", objective);
        }
        loss += f;
        g[i] = gi;
        if (gabs)
            gabs[i] = ga;
    }
    return loss;
}

#define MAX_LOSSES 64

struct losses {
    size_t count;
    double loss[MAX_LOSSES], grad_norm[MAX_LOSSES];
};

static int record(void *user, const struct clopt_progress *p)
{
    struct losses *l = user;
    if (l->count < MAX_LOSSES) {
        l->loss[l->count] = p->loss;
        l->grad_norm[l->count] = p->grad_norm;
        ++l->count;
    }
    return 0;
}

struct problem {
    const char *objective;
    size_t n;
    enum clopt_precision precision;
    const char *optimizer;
    uint64_t iters;
    struct clopt_knobs knobs;
    size_t max_shard_bytes;
};

/* The objective's parameters: laplacian's ends, shifted_sphere's target file. */
static size_t problem_params(const struct problem *p, struct clopt_param params[2], char **path)
{
    *path = NULL;
    if (!strcmp(p->objective, "laplacian")) {
        params[0] = (struct clopt_param){"left", "-0.5"};
        params[1] = (struct clopt_param){"right", "2"};
        return 2;
    }
    if (!strcmp(p->objective, "shifted_sphere")) {
        char name[64];
        snprintf(name, sizeof name, "target_%zu.npy", p->n);
        *path = path_in(dir, name);
        params[0] = (struct clopt_param){"target", *path};
        return 1;
    }
    return 0;
}

/* A reproducible target for shifted_sphere: float values in [-1, 1). */
static double *make_target(size_t n, const char *path)
{
    double *t = malloc(n * sizeof *t);
    cr_assert_not_null(t);
    srand(11);
    for (size_t i = 0; i < n; ++i)
        t[i] = (double)(float)(2.0 * rand() / ((double)RAND_MAX + 1.0) - 1.0);
    if (path)
        write_npy(path, t, n, 1);
    return t;
}

/* Runs p from theta0 and returns the final theta as doubles; the losses seen go to l. */
static double *run_problem(const struct problem *p, const double *theta0, struct losses *l,
                           size_t *shards)
{
    struct clopt_param params[2];
    char *path = NULL;
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = p->objective;
    o.n_params = problem_params(p, params, &path);
    o.params = params;
    if (path)
        free(make_target(p->n, path));
    o.dim = p->n;
    o.precision = p->precision;
    o.optimizer = p->optimizer ? p->optimizer : "gd";
    o.lr = LR;
    o.max_iters = p->iters;
    o.init = CLOPT_INIT_NONE;
    o.knobs = p->knobs;
    o.max_shard_bytes = p->max_shard_bytes;
    o.progress = record;
    o.progress_user = l;
    memset(l, 0, sizeof *l);
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_write_theta(s, theta0, CLOPT_DOUBLE, 0, p->n), CLOPT_OK);
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    double *theta = malloc(p->n * sizeof *theta);
    cr_assert_not_null(theta);
    for (size_t i = 0; i < p->n; ++i)
        theta[i] = NAN;
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, p->n), CLOPT_OK);
    if (shards)
        *shards = r.shards;
    clopt_solver_destroy(s);
    free(path);
    return theta;
}

/* Values in [-2, 2) that the run's precision holds exactly. */
static double *random_theta(size_t n, enum clopt_precision precision, unsigned seed)
{
    double *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    srand(seed);
    for (size_t i = 0; i < n; ++i) {
        const double v = 4.0 * rand() / ((double)RAND_MAX + 1.0) - 2.0;
        x[i] = precision == CLOPT_DOUBLE ? v : (double)(float)v;
    }
    return x;
}

/* One gradient step, element by element and in the loss, against the reference. */
static void check_step(const struct problem *p)
{
    const int dbl = p->precision == CLOPT_DOUBLE;
    if (test_skip_double_part(dbl))
        return;
    const double rtol = dbl ? 1e-12 : 2e-6;
    double *x0 = random_theta(p->n, p->precision, 5);
    struct losses l;
    size_t shards;
    struct problem one = *p;
    one.iters = 1;
    double *x1 = run_problem(&one, x0, &l, &shards);
    double *g = malloc(p->n * sizeof *g), *gabs = malloc(p->n * sizeof *gabs);
    cr_assert(g && gabs);
    double *target = !strcmp(p->objective, "shifted_sphere") ? make_target(p->n, NULL) : NULL;
    const double loss0 = reference(p->objective, x0, p->n, target, g, gabs);
    double g2 = 0;
    size_t bad = 0;
    for (size_t i = 0; i < p->n; ++i) {
        g2 += g[i] * g[i];
        const double expected = x0[i] - LR * g[i];
        if (!close_enough(x1[i], expected, rtol, rtol * (fabs(x0[i]) + LR * gabs[i])) && bad++ < 5)
            cr_log_error("%s n=%zu %s: theta1[%zu] = %.17g, expected %.17g", p->objective, p->n,
                         dbl ? "double" : "float", i, x1[i], expected);
    }
    cr_expect_eq(bad, 0, "%s n=%zu: %zu of %zu elements differ", p->objective, p->n, bad, p->n);
    cr_assert_eq(l.count, 1);
    cr_expect(close_enough(l.loss[0], loss0, dbl ? 1e-12 : 1e-6, 1e-12),
              "%s n=%zu: loss %.17g vs %.17g", p->objective, p->n, l.loss[0], loss0);
    cr_expect(close_enough(l.grad_norm[0], sqrt(g2), dbl ? 1e-12 : 1e-6, 1e-12),
              "%s n=%zu: |g| %.17g vs %.17g", p->objective, p->n, l.grad_norm[0], sqrt(g2));
    (void)shards;
    free(x0);
    free(x1);
    free(g);
    free(gabs);
    free(target);
}

static const size_t stencil_sizes[] = {2, 3, 93, (1u << 20) + 3};

Test(objectives, stencil_objectives_match_reference)
{
    const char *names[] = {"rosenbrock", "laplacian"};
    for (size_t k = 0; k < 2; ++k)
        for (size_t i = 0; i < sizeof stencil_sizes / sizeof *stencil_sizes; ++i) {
            check_step(&(struct problem){
                .objective = names[k], .n = stencil_sizes[i], .precision = CLOPT_DOUBLE});
            check_step(&(struct problem){
                .objective = names[k], .n = stencil_sizes[i], .precision = CLOPT_FLOAT});
        }
}

Test(objectives, data_and_non_convex_objectives_match_reference)
{
    const char *names[] = {"shifted_sphere", "double_well"};
    const size_t sizes[] = {1, 93, (1u << 20) + 3};
    for (size_t k = 0; k < 2; ++k)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; ++i) {
            check_step(
                &(struct problem){.objective = names[k], .n = sizes[i], .precision = CLOPT_DOUBLE});
            check_step(
                &(struct problem){.objective = names[k], .n = sizes[i], .precision = CLOPT_FLOAT});
        }
}

/* Several Adam steps on one shard and on about five (halos exchanged at every boundary):
 * theta, every loss and every gradient norm bit for bit. Tiles of one element let even
 * n = 2 and 3 split. */
static void check_shards(const char *objective, size_t n, struct clopt_knobs knobs, size_t tile)
{
    const size_t halo = 1, elem = sizeof(float);
    struct problem p = {objective, n, CLOPT_FLOAT, "adam", 6, knobs, 0};
    double *x0 = random_theta(n, CLOPT_FLOAT, 9);
    struct losses one, many;
    size_t shards_one, shards_many;
    double *a = run_problem(&p, x0, &one, &shards_one);
    const size_t tiles = (n + tile - 1) / tile, per_shard = (tiles + 4) / 5 * tile;
    p.max_shard_bytes = (per_shard + 2 * halo) * elem;
    double *b = run_problem(&p, x0, &many, &shards_many);
    cr_assert_eq(shards_one, 1);
    cr_assert_geq(shards_many, n < 5 ? n : 4, "%s n=%zu: %zu shards", objective, n, shards_many);
    for (size_t i = 0; i < n; ++i)
        cr_assert(!memcmp(&a[i], &b[i], sizeof a[i]),
                  "%s n=%zu (%zu shards): theta[%zu] %.9g vs %.9g", objective, n, shards_many, i,
                  a[i], b[i]);
    cr_assert_eq(one.count, many.count);
    for (size_t t = 0; t < one.count; ++t) {
        cr_assert(!memcmp(&one.loss[t], &many.loss[t], sizeof(double)), "%s n=%zu: loss %zu",
                  objective, n, t);
        cr_assert(!memcmp(&one.grad_norm[t], &many.grad_norm[t], sizeof(double)));
    }
    free(x0);
    free(a);
    free(b);
}

Test(objectives, stencils_are_bit_identical_on_one_shard_and_many)
{
    const struct clopt_knobs unit = {.work_group = 1, .elems_per_item = 1, .vector_width = 1};
    const char *names[] = {"rosenbrock", "laplacian"};
    for (size_t k = 0; k < 2; ++k) {
        for (size_t i = 0; i < sizeof stencil_sizes / sizeof *stencil_sizes; ++i)
            check_shards(names[k], stencil_sizes[i], unit, 1);
        /* The default CPU tile (16 x 4096) as well, at the large size. */
        check_shards(names[k], stencil_sizes[3], (struct clopt_knobs){0}, 16 * 4096);
    }
}

/* The optimizer x objective matrix (in the manner of GSL's multimin/test.c): every pair
 * runs from a fixed start, with each of a few step sizes, until the loss is within
 * tolerance of the known minimum; the fewest iterations are printed as a table. */
struct matrix_objective {
    const char *name;
    const char *param_key;
    enum clopt_init_kind init;
    double init_value;
    double minimum; /* L* */
};

#define MATRIX_N 100
#define MATRIX_BUDGET 3000
#define MATRIX_TOL 1e-6 /* loss <= L* + MATRIX_TOL max(1, |L*|) */

static const struct matrix_objective matrix_objectives[] = {
    {"sphere", NULL, CLOPT_INIT_NORMAL, 1, 0},
    {"ellipsoid", "cond", CLOPT_INIT_NORMAL, 1, 0},
    {"rastrigin", NULL, CLOPT_INIT_UNIFORM, 0.4, 0},
    {"styblinski_tang", NULL, CLOPT_INIT_CONST, -2, -39.16616570377142 * MATRIX_N},
    {"double_well", NULL, CLOPT_INIT_NORMAL, 1, 0},
    {"shifted_sphere", "target", CLOPT_INIT_CONST, 0, 0},
    {"rosenbrock", NULL, CLOPT_INIT_CONST, 0, 0},
    {"laplacian", NULL, CLOPT_INIT_CONST, 0, 1.0 / (2.0 * (MATRIX_N + 1))},
};

static const char *const matrix_optimizers[] = {"gd", "nesterov", "adam", "rmsprop", "adagrad"};
static const double matrix_lrs[] = {0.003, 0.03, 0.3};

/* Iterations to tolerance (to the next multiple of the loss interval, 10), or 0 when the
 * budget ran out (or the run diverged). */
static uint64_t iterations_to_minimum(const struct matrix_objective *m, const char *optimizer,
                                      double lr, const char *target_path)
{
    SKIP_WITHOUT_FP64();
    struct clopt_param param = {m->param_key, NULL};
    if (m->param_key)
        param.value = !strcmp(m->param_key, "cond") ? "100" : target_path;
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = m->name;
    o.params = &param;
    o.n_params = m->param_key ? 1 : 0;
    o.dim = MATRIX_N;
    o.precision = CLOPT_DOUBLE;
    o.optimizer = optimizer;
    o.lr = lr;
    o.init = m->init;
    o.init_value = m->init_value;
    o.seed = 3;
    o.max_iters = MATRIX_BUDGET;
    o.loss_every = 10;
    o.target = m->minimum + MATRIX_TOL * fmax(1, fabs(m->minimum));
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    const int status = clopt_solver_run(s, &r);
    clopt_solver_destroy(s);
    cr_assert(status > 0 || status == CLOPT_ERR_DIVERGED, "%s/%s lr %g: %s", m->name, optimizer, lr,
              clopt_errmsg(ctx));
    if (status == CLOPT_STOP_TARGET) {
        /* Never below the known minimum (beyond rounding): the minima are right. */
        cr_expect_geq(r.loss, m->minimum - 1e-9 * fmax(1, fabs(m->minimum)), "%s: %.17g < L*",
                      m->name, r.loss);
        return r.iterations;
    }
    return 0;
}

Test(objectives, optimizer_objective_matrix_reaches_known_minima, .timeout = 600)
{
    char *target_path = path_in(dir, "matrix_target.npy");
    free(make_target(MATRIX_N, target_path));
    const size_t n_obj = sizeof matrix_objectives / sizeof *matrix_objectives;
    const size_t n_opt = sizeof matrix_optimizers / sizeof *matrix_optimizers;
    fprintf(stderr,
            "\niterations to L* + %g max(1, |L*|), n = %d, best of lr {0.003, 0.03, 0.3}, "
            "budget %d ('-': not reached)\n%-16s",
            MATRIX_TOL, MATRIX_N, MATRIX_BUDGET, "");
    for (size_t k = 0; k < n_opt; ++k)
        fprintf(stderr, "%10s", matrix_optimizers[k]);
    fputc('\n', stderr);
    for (size_t i = 0; i < n_obj; ++i) {
        size_t solved_by = 0;
        fprintf(stderr, "%-16s", matrix_objectives[i].name);
        for (size_t k = 0; k < n_opt; ++k) {
            uint64_t best = 0;
            for (size_t l = 0; l < sizeof matrix_lrs / sizeof *matrix_lrs; ++l) {
                const uint64_t it = iterations_to_minimum(
                    &matrix_objectives[i], matrix_optimizers[k], matrix_lrs[l], target_path);
                if (it && (!best || it < best))
                    best = it;
            }
            solved_by += best != 0;
            if (best)
                fprintf(stderr, "%10llu", (unsigned long long)best);
            else
                fprintf(stderr, "%10s", "-");
        }
        fputc('\n', stderr);
        cr_expect_geq(solved_by, 1, "no optimizer reached the minimum of %s",
                      matrix_objectives[i].name);
    }
    free(target_path);
}

/* Chained Rosenbrock from theta_0 = 0: the solution front advances about one element per
 * 7-10 Adam iterations, so n = 1000 needs some 7000 (n = 1e5 needs ~1e6; see README). */
Test(objectives, rosenbrock_from_zero_reaches_its_minimum_with_adam)
{
    SKIP_WITHOUT_FP64();
    const size_t n = 1000;
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = "rosenbrock";
    o.dim = n;
    o.precision = CLOPT_DOUBLE;
    o.optimizer = "adam";
    o.lr = 0.03;
    o.schedule = "cosine:10000";
    o.max_iters = 10000;
    o.loss_every = 10;
    o.init = CLOPT_INIT_CONST;
    o.init_value = 0;
    o.target = 1e-6;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_TARGET, "loss %g after %llu iterations",
                 r.loss, (unsigned long long)r.iterations);
    cr_expect_leq(r.loss, 1e-6);
    double *theta = malloc(n * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    for (size_t i = 0; i < n; ++i)
        cr_expect(fabs(theta[i] - 1) < 1e-3, "theta[%zu] = %.9g", i, theta[i]);
    fprintf(stderr, "rosenbrock n = %zu: loss %.3g after %llu Adam iterations\n", n, r.loss,
            (unsigned long long)r.iterations);
    free(theta);
    clopt_solver_destroy(s);
}

/* The README's table of objectives, row by row: each row's "minimum" column, as the README
 * states it, and a solver that reaches that value from a start in its basin (double, n =
 * 10). A row added to the table without a line here, or a minimum changed on one side
 * only, fails. */
struct readme_row {
    const char *name;
    const char *minimum; /* the README's text */
    double value;        /* the minimum for n = README_N with the parameters below */
    struct clopt_param param;
    enum clopt_init_kind init;
    double init_value;
    const char *optimizer;
    double lr;
    uint64_t iters;
};

#define README_N 10

static const struct readme_row readme_rows[] = {
    {"sphere", "0 at 0", 0, {NULL, NULL}, CLOPT_INIT_NORMAL, 1, "gd", 0.1, 300},
    {"ellipsoid", "0 at 0", 0, {"cond", "10"}, CLOPT_INIT_NORMAL, 1, "gd", 0.05, 3000},
    {"rastrigin",
     "0 at 0; a local minimum near every integer point",
     0,
     {NULL, NULL},
     CLOPT_INIT_UNIFORM,
     0.3,
     "gd",
     0.002,
     1000},
    {"styblinski_tang",
     "−39.16616570377142·n at θᵢ = −2.903534027771178",
     -39.16616570377142 * README_N,
     {NULL, NULL},
     CLOPT_INIT_CONST,
     -2,
     "gd",
     0.01,
     1000},
    {"double_well",
     "0 at every θ with θᵢ = ±1",
     0,
     {NULL, NULL},
     CLOPT_INIT_CONST,
     0.5,
     "gd",
     0.05,
     1000},
    {"shifted_sphere", "0 at θ = t", 0, {"target", NULL}, CLOPT_INIT_NORMAL, 1, "gd", 0.1, 300},
    {"rosenbrock", "0 at θ = 1", 0, {NULL, NULL}, CLOPT_INIT_CONST, 0.9, "adam", 0.01, 20000},
    {"laplacian",
     "(right − left)²/(2(n+1)) on the straight line",
     1.0 / (2 * (README_N + 1)),
     {"right", "1"},
     CLOPT_INIT_NORMAL,
     1,
     "gd",
     0.25,
     3000},
};

/* The minimum column of the README row of `name`, or NULL when the table has no row. */
static char *readme_minimum(const char *readme, const char *name)
{
    char head[64];
    snprintf(head, sizeof head, "| `%s` | ", name);
    const char *row = strstr(readme, head);
    if (!row)
        return NULL;
    /* Columns: name | L | minimum | parameters. The formula may hold an escaped '|'. */
    const char *cell = row + 1;
    for (int column = 0; column < 2; ++column) {
        do
            cell = strchr(cell + 1, '|');
        while (cell && cell[-1] == '\\');
        if (!cell)
            return NULL;
    }
    const char *end = strchr(cell + 1, '|');
    if (!end)
        return NULL;
    while (*++cell == ' ')
        ;
    while (end > cell && end[-1] == ' ')
        --end;
    return strndup(cell, (size_t)(end - cell));
}

Test(objectives, readme_objective_table_minima_are_reached, .timeout = 600)
{
    SKIP_WITHOUT_FP64();
    char *readme = read_text(CLOPT_SOURCE_DIR "/README.md");
    const char *table = strstr(readme, "## Objectives");
    cr_assert_not_null(table, "README.md has no '## Objectives' section");
    /* Every row of the table has a line here. */
    size_t rows = 0;
    for (const char *p = strstr(table, "\n| `"); p && p[1] == '|'; p = strchr(p + 1, '\n')) {
        char name[64] = "";
        cr_assert_eq(sscanf(p, "\n| `%63[a-z_]`", name), 1);
        size_t k = 0;
        while (k < sizeof readme_rows / sizeof *readme_rows && strcmp(readme_rows[k].name, name))
            ++k;
        cr_expect_lt(k, sizeof readme_rows / sizeof *readme_rows,
                     "the README's objective '%s' has no row in this test", name);
        ++rows;
    }
    cr_expect_eq(rows, sizeof readme_rows / sizeof *readme_rows);
    char *target_path = path_in(dir, "readme_target.npy");
    free(make_target(README_N, target_path));
    for (size_t k = 0; k < sizeof readme_rows / sizeof *readme_rows; ++k) {
        const struct readme_row *row = &readme_rows[k];
        char *minimum = readme_minimum(table, row->name);
        cr_assert_not_null(minimum, "README.md has no row for '%s'", row->name);
        cr_expect_str_eq(minimum, row->minimum, "README minimum of %s", row->name);
        free(minimum);
        struct clopt_options o;
        clopt_options_init(&o);
        struct clopt_param param = row->param;
        if (param.key && !strcmp(param.key, "target"))
            param.value = target_path;
        o.objective = row->name;
        o.params = param.key ? &param : NULL;
        o.n_params = param.key ? 1 : 0;
        o.dim = README_N;
        o.precision = CLOPT_DOUBLE;
        o.init = row->init;
        o.init_value = row->init_value;
        o.seed = 5;
        o.optimizer = row->optimizer;
        o.lr = row->lr;
        o.max_iters = row->iters;
        o.loss_every = 50;
        struct clopt_solver *s = NULL;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s: %s", row->name,
                     clopt_errmsg(ctx));
        struct clopt_result r;
        const int status = clopt_solver_run(s, &r);
        cr_expect_geq(status, 0, "%s: %s", row->name, clopt_errmsg(ctx));
        /* The solvers converge far below these bounds (sphere to 1e-58, rosenbrock to
         * 4e-12); the bounds only leave room for the last iterations' rounding. */
        cr_expect(close_enough(r.loss, row->value, 1e-12, 1e-9), "%s: loss %.17g, README %.17g",
                  row->name, r.loss, row->value);
        clopt_solver_destroy(s);
    }
    free(target_path);
    free(readme);
}
