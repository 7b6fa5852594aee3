/* Grid objectives (options.shape, --shape): poisson and tv_denoise against double CPU
 * references on odd 2-D and 3-D shapes, shard invariance, a manufactured Poisson solution
 * solved by L-BFGS, a user grid objective file, and the bad inputs that exit 2. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define PI 3.14159265358979323846

TEMP_DIR_SUITE(grids);

struct grid {
    size_t axes, shape[3], n;
};

static struct grid make_grid(size_t axes, size_t s0, size_t s1, size_t s2)
{
    struct grid g = {axes, {s0, s1, s2}, s0 * (axes > 1 ? s1 : 1) * (axes > 2 ? s2 : 1)};
    return g;
}

/* Coordinates of flat index i, C order. */
static void coords(const struct grid *g, size_t i, size_t *c)
{
    for (size_t k = g->axes; k-- > 0;) {
        c[k] = i % g->shape[k];
        i /= g->shape[k];
    }
}

/* The flat index of c + d e_k, or SIZE_MAX when it leaves the grid. */
static size_t step_index(const struct grid *g, const size_t *c, size_t k, long d)
{
    size_t i = 0;
    for (size_t a = 0; a < g->axes; ++a) {
        long ca = (long)c[a] + (a == k ? d : 0);
        if (ca < 0 || ca >= (long)g->shape[a])
            return SIZE_MAX;
        i = i * g->shape[a] + (size_t)ca;
    }
    return i;
}

static double at(const double *u, size_t i)
{
    return i == SIZE_MAX ? 0.0 : u[i];
}

/* Poisson in double, straight from the definition: the edge sum and A u - b. */
static double poisson_ref(const struct grid *g, const double *u, const double *b, double *grad)
{
    double f = 0;
    for (size_t i = 0; i < g->n; ++i) {
        size_t c[3];
        coords(g, i, c);
        f -= b[i] * u[i];
        grad[i] = -b[i];
        for (size_t k = 0; k < g->axes; ++k) {
            const double up = at(u, step_index(g, c, k, 1)), down = at(u, step_index(g, c, k, -1));
            f += 0.5 * (up - u[i]) * (up - u[i]);
            if (c[k] == 0)
                f += 0.5 * u[i] * u[i];
            grad[i] += 2 * u[i] - up - down;
        }
    }
    return f;
}

/* tv_denoise in double; the gradient by the chain rule over every term. */
static double tv_ref(const struct grid *g, const double *u, const double *y, double lambda,
                     double eps, double *grad)
{
    double f = 0;
    for (size_t i = 0; i < g->n; ++i)
        grad[i] = u[i] - y[i];
    for (size_t i = 0; i < g->n; ++i) {
        size_t c[3];
        coords(g, i, c);
        double diff[3] = {0, 0, 0}, sum = eps * eps;
        for (size_t k = 0; k < g->axes; ++k) {
            const size_t j = step_index(g, c, k, 1);
            diff[k] = j == SIZE_MAX ? 0 : u[j] - u[i];
            sum += diff[k] * diff[k];
        }
        const double t = sqrt(sum);
        f += 0.5 * (u[i] - y[i]) * (u[i] - y[i]) + lambda * t;
        for (size_t k = 0; k < g->axes; ++k) {
            const size_t j = step_index(g, c, k, 1);
            if (j == SIZE_MAX)
                continue;
            grad[j] += lambda * diff[k] / t;
            grad[i] -= lambda * diff[k] / t;
        }
    }
    return f;
}

/* Reproducible values in [-1, 1). */
static double *values(size_t n, unsigned seed)
{
    double *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = (double)(x >> 11) * 0x1p-52 - 1.0;
    }
    return v;
}

struct lib_run {
    const char *objective, *optimizer;
    const char *data_key; /* source, image */
    const char *file;     /* a user objective, instead of objective */
    double lambda;        /* tv_denoise; 0: default */
    double lr;
    uint64_t iters;
    size_t max_shard_bytes;
    size_t work_group, elems_per_item; /* 0: defaults */
    double gtol;
    int no_ftol; /* stop on gtol only (lbfgs's default ftol stops it earlier) */
    int single;  /* float instead of double */
};

/* Runs the library on the grid from theta0 with data file `data`; returns theta, the
 * initial loss (evaluate before the run) and the result. */
static double *run_grid(const struct lib_run *r, const struct grid *g, const double *theta0,
                        const char *data, double *loss0, struct clopt_result *res, size_t *shards)
{
    SKIP_WITHOUT_FP64();
    struct clopt_context *ctx = test_context();
    /* Runs of one program (one shard and many) build it once. */
    char *cache = path_in(dir, "programs");
    cr_assert_eq(clopt_context_set_program_cache(ctx, cache), CLOPT_OK, "%s", clopt_errmsg(ctx));
    free(cache);
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = r->file ? r->file : r->objective;
    o.optimizer = r->optimizer ? r->optimizer : "gd";
    o.dim = g->n;
    o.n_axes = g->axes;
    for (size_t k = 0; k < g->axes; ++k)
        o.shape[k] = g->shape[k];
    o.precision = r->single ? CLOPT_FLOAT : CLOPT_DOUBLE;
    o.init = CLOPT_INIT_NONE;
    o.lr = r->lr;
    o.max_iters = r->iters;
    o.gtol = r->gtol;
    if (r->no_ftol)
        o.ftol = 0;
    o.max_shard_bytes = r->max_shard_bytes;
    o.knobs.work_group = r->work_group;
    o.knobs.elems_per_item = r->elems_per_item;
    if (r->elems_per_item && r->elems_per_item < 16)
        o.knobs.vector_width = r->elems_per_item;
    char path[600], lambda[64];
    struct clopt_param params[2];
    if (data) {
        snprintf(path, sizeof path, "%s", data);
        params[o.n_params++] = (struct clopt_param){r->data_key, path};
    }
    if (r->lambda > 0) {
        snprintf(lambda, sizeof lambda, "%.17g", r->lambda);
        params[o.n_params++] = (struct clopt_param){"lambda", lambda};
    }
    o.params = params;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_write_theta(s, theta0, CLOPT_DOUBLE, 0, g->n), CLOPT_OK, "%s",
                 clopt_errmsg(ctx));
    double gn;
    cr_assert_eq(clopt_solver_evaluate(s, loss0, &gn), CLOPT_OK, "%s", clopt_errmsg(ctx));
    const int st = clopt_solver_run(s, res);
    cr_assert(st >= 0, "run: %s", clopt_errmsg(ctx));
    double *theta = malloc(g->n * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, g->n), CLOPT_OK);
    if (shards)
        *shards = res->shards;
    clopt_solver_destroy(s);
    clopt_context_destroy(ctx);
    return theta;
}

static char *write_grid_npy(const char *name, const struct grid *g, const double *v)
{
    char *p = path_in(dir, name);
    const uint64_t shape[3] = {g->shape[0], g->shape[1], g->shape[2]};
    write_npy_shape(p, v, g->axes, shape, 1);
    return p;
}

/* iters gd steps of the reference from u (in place); the loss of the start. */
static double gd_ref(const struct grid *g, double *u, const double *data, int tv, double lr,
                     uint64_t iters)
{
    double *grad = malloc(g->n * sizeof *grad), f0 = 0;
    cr_assert_not_null(grad);
    for (uint64_t t = 0; t < iters; ++t) {
        const double f = tv ? tv_ref(g, u, data, 0.1, 1e-3, grad) : poisson_ref(g, u, data, grad);
        if (t == 0)
            f0 = f;
        for (size_t i = 0; i < g->n; ++i)
            u[i] -= lr * grad[i];
    }
    free(grad);
    return f0;
}

/* gd from random values against the reference; with max_shard_bytes, small tiles and that
 * cap give several shards, and a second run of the same program in one shard must give the
 * same bits (theta and loss). */
static void expect_reference(const char *objective, const struct grid *g, uint64_t iters,
                             size_t max_shard_bytes, size_t min_shards)
{
    const int tv = !strcmp(objective, "tv_denoise");
    double *u0 = values(g->n, 1), *data = values(g->n, 2), *ref = malloc(g->n * sizeof *ref);
    cr_assert_not_null(ref);
    memcpy(ref, u0, g->n * sizeof *ref);
    char *file = write_grid_npy("data.npy", g, data);
    const double lr = 0.05;
    const double f0 = gd_ref(g, ref, data, tv, lr, iters);
    struct lib_run r = {.objective = objective,
                        .data_key = tv ? "image" : "source",
                        .lr = lr,
                        .iters = iters,
                        .max_shard_bytes = max_shard_bytes,
                        .work_group = max_shard_bytes ? 4 : 0,
                        .elems_per_item = max_shard_bytes ? 16 : 0};
    double loss0;
    struct clopt_result res;
    size_t shards;
    double *theta = run_grid(&r, g, u0, file, &loss0, &res, &shards);
    cr_expect(close_enough(loss0, f0, 1e-12, 1e-12), "%s: loss %.17g, reference %.17g", objective,
              loss0, f0);
    cr_expect_geq(shards, min_shards, "shards: %zu", shards);
    size_t bad = 0;
    for (size_t i = 0; i < g->n; ++i)
        if (!close_enough(theta[i], ref[i], 1e-11, 1e-12) && bad++ < 5)
            cr_expect_fail("%s theta[%zu] = %.17g, reference %.17g", objective, i, theta[i],
                           ref[i]);
    cr_expect_eq(bad, 0, "%zu of %zu elements differ", bad, g->n);
    if (max_shard_bytes) {
        r.max_shard_bytes = 0;
        double loss1;
        struct clopt_result res1;
        size_t one;
        double *whole = run_grid(&r, g, u0, file, &loss1, &res1, &one);
        cr_expect_eq(one, 1);
        cr_expect_eq(memcmp(theta, whole, g->n * sizeof *theta), 0,
                     "%s: theta differs between %zu shards and one", objective, shards);
        cr_expect_eq(memcmp(&res.loss, &res1.loss, sizeof res.loss), 0, "%s: loss %.17g vs %.17g",
                     objective, res.loss, res1.loss);
        free(whole);
    }
    free(theta);
    free(file);
    free(u0);
    free(data);
    free(ref);
}

/* 1 x 7 in one shard; 3 x 93 x 5 in shards of 512 elements with halos of 471 (a plane of
 * 465, a row of 5 and a point) on each side, and in one. */
Test(grids, poisson_matches_the_cpu_reference_on_odd_shapes_and_shard_counts)
{
    struct grid a = make_grid(2, 1, 7, 1), b = make_grid(3, 3, 93, 5);
    expect_reference("poisson", &a, 4, 0, 1);
    expect_reference("poisson", &b, 4, (512 + 2 * 471) * sizeof(double), 3);
}

Test(grids, poisson_matches_the_cpu_reference_at_1023x1025_in_several_shards)
{
    struct grid g = make_grid(2, 1023, 1025, 1);
    expect_reference("poisson", &g, 2, ((size_t)1 << 18) * sizeof(double) + 2 * 1025 * 8, 4);
}

/* Grids whose last axis is longer than a vector of lanes plus the box (16 + 2): the groups
 * of points away from the faces take the vectorised sweep (shards of 320 points, tiles of
 * 64, halos of 241: a plane of 200, a row of 40 and a point), the others the checked one. */
Test(grids, the_vectorised_sweep_matches_the_cpu_reference_in_3d_and_several_shards)
{
    struct grid g = make_grid(3, 6, 5, 40);
    expect_reference("poisson", &g, 3, (320 + 2 * 241) * sizeof(double), 4);
    expect_reference("tv_denoise", &g, 3, (320 + 2 * 241) * sizeof(double), 4);
}

/* theta after a few steps is the same bits whether the points away from the faces go through
 * the vectorised sweep (16 lanes) or all through the scalar one (one lane): each point sees
 * the same box and arithmetic either way. (The losses may differ: the lanes sum in another
 * order.) */
static void expect_lane_invariance_in(const char *objective, const struct grid *g, int single,
                                      size_t max_shard_bytes)
{
    const int tv = !strcmp(objective, "tv_denoise");
    double *u0 = values(g->n, 3), *data = values(g->n, 4);
    char *file = write_grid_npy("data.npy", g, data);
    struct lib_run r = {.objective = objective,
                        .optimizer = "adam",
                        .data_key = tv ? "image" : "source",
                        .lr = 0.01,
                        .iters = 4,
                        .work_group = 4,
                        .elems_per_item = 16,
                        .max_shard_bytes = max_shard_bytes,
                        .single = single};
    double loss0;
    struct clopt_result res;
    size_t shards;
    double *vec = run_grid(&r, g, u0, file, &loss0, &res, &shards);
    if (max_shard_bytes)
        cr_expect_gt(shards, 1, "%s: %zu shard(s) of at most %zu bytes", objective, shards,
                     max_shard_bytes);
    r.elems_per_item = 1;
    double *scalar = run_grid(&r, g, u0, file, &loss0, &res, &shards);
    size_t first = g->n;
    for (size_t i = g->n; i-- > 0;)
        if (memcmp(&vec[i], &scalar[i], sizeof vec[i]))
            first = i;
    cr_expect_eq(first, g->n,
                 "%s (%s, shards of %zu bytes): theta[%zu] = %.17g with 16 lanes, %.17g with one",
                 objective, single ? "float" : "double", max_shard_bytes, first,
                 first < g->n ? vec[first] : 0.0, first < g->n ? scalar[first] : 0.0);
    free(vec);
    free(scalar);
    free(file);
    free(u0);
    free(data);
}

static void expect_lane_invariance(const char *objective, const struct grid *g)
{
    expect_lane_invariance_in(objective, g, 0, 0);
}

Test(grids, the_vectorised_sweep_gives_the_bits_of_the_scalar_one)
{
    struct grid a = make_grid(2, 9, 37, 1), b = make_grid(3, 6, 5, 40);
    expect_lane_invariance("poisson", &a);
    expect_lane_invariance("tv_denoise", &a);
    expect_lane_invariance("poisson", &b);
    expect_lane_invariance("tv_denoise", &b);
}

/* The objectives' vector forms also take the groups that touch a face or cross a row end
 * (masks per lane): rows of 21 (groups start mid-row, some lie inside) and a 3-D grid with
 * rows shorter than a vector (a group spans several rows and both faces) give the bits of
 * the scalar sweep. */
Test(grids, the_vector_forms_give_the_scalar_bits_where_groups_cross_rows_and_faces)
{
    struct grid b = make_grid(2, 5, 21, 1), c = make_grid(3, 3, 4, 7);
    expect_lane_invariance("poisson", &b);
    expect_lane_invariance("tv_denoise", &b);
    expect_lane_invariance("poisson", &c);
    expect_lane_invariance("tv_denoise", &c);
}

/* The same in float (the masks are int vectors there, long in double), and in several
 * shards: 9 x 37 in shards of one 64-point tile and halos of 38 (a row and a point), whose
 * boundaries fall mid-row. */
Test(grids, the_vector_forms_give_the_scalar_bits_in_float_and_in_shards)
{
    struct grid a = make_grid(2, 9, 37, 1), b = make_grid(2, 5, 21, 1), c = make_grid(3, 3, 4, 7);
    expect_lane_invariance_in("poisson", &b, 1, 0);
    expect_lane_invariance_in("tv_denoise", &c, 1, 0);
    expect_lane_invariance_in("poisson", &a, 1, (64 + 2 * 38) * sizeof(float));
    expect_lane_invariance_in("tv_denoise", &a, 0, (64 + 2 * 38) * sizeof(double));
}

/* 5 x 7 in one shard; 5 x 4 x 5 in shards of 64 with halos of 26 (a plane of 20, a row of 5
 * and a point), and in one. */
Test(grids, tv_denoise_matches_the_cpu_reference_on_shapes_and_shard_counts)
{
    struct grid a = make_grid(2, 5, 7, 1), b = make_grid(3, 5, 4, 5);
    expect_reference("tv_denoise", &a, 3, 0, 1);
    expect_reference("tv_denoise", &b, 3, (64 + 2 * 26) * sizeof(double), 2);
}

/* b = A u* for a known u*: L-BFGS finds u* (the discrete problem's exact solution) to the
 * accuracy the loss allows. */
Test(grids, lbfgs_solves_a_manufactured_poisson_problem)
{
    struct grid g = make_grid(2, 31, 33, 1);
    double *ustar = malloc(g.n * sizeof *ustar), *b = malloc(g.n * sizeof *b);
    double *zeros = calloc(g.n, sizeof *zeros);
    cr_assert(ustar && b && zeros);
    for (size_t i = 0; i < g.n; ++i) {
        size_t c[3];
        coords(&g, i, c);
        const double x = (double)(c[0] + 1) / 32, y = (double)(c[1] + 1) / 34;
        ustar[i] = sin(PI * x) * sin(2 * PI * y) + x * y;
    }
    double *grad = malloc(g.n * sizeof *grad);
    cr_assert_not_null(grad);
    memset(b, 0, g.n * sizeof *b);
    poisson_ref(&g, ustar, b, grad); /* A u* with b = 0 */
    memcpy(b, grad, g.n * sizeof *b);
    char *file = write_grid_npy("b.npy", &g, b);
    struct lib_run r = {.objective = "poisson",
                        .data_key = "source",
                        .optimizer = "lbfgs",
                        .lr = 1,
                        .iters = 2000,
                        .gtol = 1e-12,
                        .no_ftol = 1};
    double loss0;
    struct clopt_result res;
    double *u = run_grid(&r, &g, zeros, file, &loss0, &res, NULL);
    double err = 0;
    for (size_t i = 0; i < g.n; ++i)
        err = fmax(err, fabs(u[i] - ustar[i]));
    /* Near u* the loss changes by less than its own rounding (the energy error is ~1e-15
     * at |u - u*| ~ 1e-8), where the line search stops: 1e-7 is the attainable error. */
    cr_expect_lt(err, 1e-7, "max |u - u*| = %g after %llu iterations", err,
                 (unsigned long long)res.iterations);
    free(u);
    free(file);
    free(grad);
    free(ustar);
    free(b);
    free(zeros);
}

/* A user grid file with poisson's arithmetic (kernels/obj_poisson.cl, the same operations in
 * the same order) and b = 1 gives the built-in's bits. */
Test(grids, a_user_grid_objective_matches_the_builtin)
{
    struct grid g = make_grid(2, 9, 11, 1);
    char *cl = path_in(dir, "ones.cl");
    FILE *f = fopen(cl, "w");
    cr_assert_not_null(f);
    fputs("#define CLOPT_GRID_RADIUS 1\n"
          "real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g)\n"
          "{\n"
          "    const real u = w[CLOPT_GRID_CENTER], b = 1;\n"
          "    real s = 0, grad = -b;\n"
          "    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {\n"
          "        const real below = w[CLOPT_GRID_CENTER - CLOPT_GRID_STEP(k, 1)];\n"
          "        const real above = w[CLOPT_GRID_CENTER + CLOPT_GRID_STEP(k, 1)];\n"
          "        const real d = above - u;\n"
          "        s = k == 0 ? d * d : fma(d, d, s);\n"
          "        if (c[k] == 0)\n"
          "            s = fma(u, u, s);\n"
          "        grad += (u - below) - d;\n"
          "    }\n"
          "    *g = grad;\n"
          "    return fma(s, (real)0.5, -(b * u));\n"
          "}\n",
          f);
    fclose(f);
    double *u0 = values(g.n, 5), *ones = malloc(g.n * sizeof *ones);
    cr_assert_not_null(ones);
    for (size_t i = 0; i < g.n; ++i)
        ones[i] = 1;
    char *file = write_grid_npy("ones.npy", &g, ones);
    struct lib_run builtin = {.objective = "poisson", .data_key = "source", .lr = 0.1, .iters = 7};
    struct lib_run user = {.file = cl, .lr = 0.1, .iters = 7};
    double l1, l2;
    struct clopt_result r1, r2;
    double *a = run_grid(&builtin, &g, u0, file, &l1, &r1, NULL);
    double *b = run_grid(&user, &g, u0, NULL, &l2, &r2, NULL);
    cr_expect_eq(memcmp(a, b, g.n * sizeof *a), 0, "theta differs");
    cr_expect_eq(l1, l2, "loss %.17g vs %.17g", l1, l2);
    free(a);
    free(b);
    free(u0);
    free(ones);
    free(file);
    free(cl);
}

static void expect_usage(const char *const *args, const char *needle)
{
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s: exit %d: %s", needle, r.exit_code, r.err);
    cr_expect_not_null(strstr(r.err, needle), "wanted '%s' in: %s", needle, r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
}

/* --shape sets n and --out's shape; bad shapes, disagreeing files and a halo larger than a
 * shard exit 2 with one line. */
Test(grids, the_cli_takes_a_shape_and_refuses_bad_ones)
{
    struct grid g = make_grid(2, 3, 7, 1), other = make_grid(2, 7, 3, 1);
    double *b = values(g.n, 6);
    /* A flat file of n values is the grid in C order. */
    char *file = path_in(dir, "b.npy"), *wrong = write_grid_npy("w.npy", &other, b);
    write_npy(file, b, g.n, 1);
    char *out = path_in(dir, "u.npy");
    char param[600], wrong_param[600];
    snprintf(param, sizeof param, "source=%s", file);
    snprintf(wrong_param, sizeof wrong_param, "source=%s", wrong);
    char *ck = path_in(dir, "ck.bin");
    const char *ok[] = {"run",     "--objective",  "poisson", "--shape", "3,7",
                        "--param", param,          "--out",   out,       "--iters",
                        "3",       "--checkpoint", ck,        "--quiet", NULL};
    struct cli_result r = cli_run(ok);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    /* The grid is part of the trajectory: another shape of the same n does not resume. */
    const char *resume[] = {"run", "--shape", "7,3", "--resume", ck, "--iters", "6", NULL};
    expect_usage(resume, "grid=3,7 but this run has grid=7,3");
    free(ck);
    struct clopt_npy_info info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 2);
    cr_expect_eq(info.shape[0], 3);
    cr_expect_eq(info.shape[1], 7);

    static const uint64_t shape4[] = {1, 3, 1, 7};
    char *init4 = path_in(dir, "four.npy");
    write_npy_shape(init4, b, 4, shape4, 1);
    const char *zero[] = {"run", "--shape", "3,0", NULL};
    expect_usage(zero, "--shape");
    const char *empty[] = {"run", "--shape", "3,,4", NULL};
    expect_usage(empty, "--shape '3,,4'");
    const char *four[] = {"run", "--shape", "2,2,2,2", NULL};
    expect_usage(four, "1 to 3 axis lengths");
    const char *grid4[] = {"run", "--objective", "poisson", "--init", init4, "--iters", "1", NULL};
    expect_usage(grid4, "grids of 1 to 3 axes");
    const char *dim[] = {"run", "--shape", "3,7", "--dim", "20", NULL};
    expect_usage(dim, "--shape holds 21 elements but --dim is 20");
    const char *data[] = {"run",     "--objective", "poisson", "--shape", "3,7",
                          "--param", wrong_param,   "--iters", "1",       NULL};
    expect_usage(data, "in another shape than options.shape");
    char init[600];
    snprintf(init, sizeof init, "%s", wrong);
    const char *init_args[] = {"run", "--objective", "poisson", "--shape", "3,7", "--param",
                               param, "--init",      init,      "--iters", "1",   NULL};
    expect_usage(init_args, "has shape (7, 3) but --shape is (3, 7)");
    /* A plane of 7 and a point are the halo; shards of 4 floats (80 bytes with both halos)
     * cannot hold it. */
    const char *halo[] = {
        "run",    "--objective",     "poisson",           "--shape", "3,7",     "--param", param,
        "--tune", "wg=1,epw=4,vw=4", "--max-shard-bytes", "80",      "--iters", "1",       NULL};
    expect_usage(halo, "halo of radius 1");
    free(b);
    free(file);
    free(wrong);
    free(out);
    free(init4);
}

/* A user grid file must declare a radius from 1 to 8. */
Test(grids, a_user_grid_file_without_a_good_radius_is_refused)
{
    const char *radii[] = {"", "#define CLOPT_GRID_RADIUS 0\n", "#define CLOPT_GRID_RADIUS 9\n"};
    for (size_t k = 0; k < 3; ++k) {
        char *cl = path_in(dir, "bad.cl");
        FILE *f = fopen(cl, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "%sreal clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g)\n"
                "{ *g = w[CLOPT_GRID_CENTER]; return 0; }\n",
                radii[k]);
        fclose(f);
        const char *args[] = {"run", "--objective", cl, "--shape", "4,4", "--iters", "1", NULL};
        expect_usage(args, "no line '#define CLOPT_GRID_RADIUS R' with R from 1 to 8");
        free(cl);
    }
}

/* clopt check on grids: the built-ins pass (samples on corners, edges and faces); a user
 * file that leaves out its neighbours' terms of the gradient fails with status 4. */
Test(grids, the_gradient_check_covers_grid_objectives)
{
    const char *poisson[] = {"check",  "--objective", "poisson", "--shape",
                             "3,93,5", "--samples",   "200",     NULL};
    struct cli_result r = cli_run(poisson);
    cr_expect_eq(r.exit_code, 0, "%s%s", r.out, r.err);
    cli_result_free(&r);
    const char *tv[] = {"check", "--objective", "tv_denoise", "--shape", "5,4,5", NULL};
    r = cli_run(tv);
    cr_expect_eq(r.exit_code, 0, "%s%s", r.out, r.err);
    cli_result_free(&r);
    char *cl = path_in(dir, "wrong.cl");
    FILE *f = fopen(cl, "w");
    cr_assert_not_null(f);
    fputs("#define CLOPT_GRID_RADIUS 1\n"
          "real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g)\n"
          "{\n"
          "    const real u = w[CLOPT_GRID_CENTER], right = w[CLOPT_GRID_CENTER + 1];\n"
          "    *g = u - right; /* misses the term of the left neighbour */\n"
          "    return (right - u) * (right - u) / 2;\n"
          "}\n",
          f);
    fclose(f);
    const char *wrong[] = {"check", "--objective", cl, "--shape", "4,5", NULL};
    r = cli_run(wrong);
    cr_expect_eq(r.exit_code, 4, "%s%s", r.out, r.err);
    cli_result_free(&r);
    free(cl);
}

/* Radius 2 in 3-D, with a term that reaches a diagonal neighbour: the check passes (its
 * samples on the faces see the missing terms beyond them), and 3 shards give one shard's
 * bits. */
Test(grids, a_radius_2_user_objective_passes_the_check_and_keeps_its_bits_in_shards)
{
    SKIP_WITHOUT_FP64();
    char *cl = path_in(dir, "r2.cl");
    FILE *f = fopen(cl, "w");
    cr_assert_not_null(f);
    fputs("#define CLOPT_GRID_RADIUS 2\n"
          "real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g)\n"
          "{\n"
          "    const int o = CLOPT_GRID_CENTER;\n"
          "    const real u = w[o];\n"
          "    real f = (u - 1) * (u - 1) / 2, grad = u - 1;\n"
          "    for (int k = 0; k < CLOPT_GRID_AXES; ++k) {\n"
          "        const int next = (k + 1) % CLOPT_GRID_AXES;\n"
          "        const real fwd = w[o + CLOPT_GRID_STEP(k, 2)] - u;\n"
          "        const real diag = w[o + CLOPT_GRID_STEP(k, -2) + CLOPT_GRID_STEP(next, 1)];\n"
          "        f += fwd * fwd / 2 + u * diag / 4;\n"
          "        if (c[k] >= 2)\n"
          "            grad += u - w[o - CLOPT_GRID_STEP(k, 2)];\n"
          "        grad += -fwd + diag / 4 + w[o + CLOPT_GRID_STEP(k, 2) - CLOPT_GRID_STEP(next, "
          "1)] / 4;\n"
          "    }\n"
          "    *g = grad;\n"
          "    return f;\n"
          "}\n",
          f);
    fclose(f);
    const char *check[] = {"check", "--objective", cl,    "--shape",
                           "6,7,5", "--samples",   "210", NULL};
    struct cli_result r = cli_run(check);
    cr_expect_eq(r.exit_code, 0, "%s%s", r.out, r.err);
    cli_result_free(&r);
    char *one = path_in(dir, "one.npy"), *many = path_in(dir, "many.npy");
    char cap[32];
    /* 84 of 210 points, halos of 2 planes, 2 rows and 2 points (2 x (35 + 5 + 1)). */
    snprintf(cap, sizeof cap, "%d", (84 + 2 * 82) * 8);
    const char *run_one[] = {
        "run",  "--objective", cl,       "--shape",         "6,7,5",       "--iters", "20",
        "--lr", "0.05",        "--tune", "wg=1,epw=4,vw=4", "--precision", "double",  "--out",
        one,    "--quiet",     NULL};
    r = cli_run(run_one);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    const char *run_many[] = {"run",
                              "--objective",
                              cl,
                              "--shape",
                              "6,7,5",
                              "--iters",
                              "20",
                              "--lr",
                              "0.05",
                              "--tune",
                              "wg=1,epw=4,vw=4",
                              "--precision",
                              "double",
                              "--out",
                              many,
                              "--max-shard-bytes",
                              cap,
                              "--quiet",
                              NULL};
    r = cli_run(run_many);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    size_t n1, n2;
    int d1, d2;
    double *a = read_npy_as_double(one, &n1, &d1), *b = read_npy_as_double(many, &n2, &d2);
    cr_assert_eq(n1, 210);
    cr_assert_eq(n2, 210);
    cr_expect_eq(memcmp(a, b, n1 * sizeof *a), 0, "theta differs between 3 shards and one");
    free(a);
    free(b);
    free(one);
    free(many);
    free(cl);
}

/* A box's far corner lies a plane, a row and a point away: with halos of whole planes only,
 * a shard starting inside a plane read its first point's lower corner from outside its
 * buffer (oclgrind: invalid reads), so θ depended on the shard count. */
Test(grids, a_user_objective_reading_box_corners_keeps_its_bits_in_shards_starting_mid_row)
{
    SKIP_WITHOUT_FP64();
    char *cl = path_in(dir, "corner.cl");
    FILE *f = fopen(cl, "w");
    cr_assert_not_null(f);
    fputs("#define CLOPT_GRID_RADIUS 1\n"
          "real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g)\n"
          "{\n"
          "    const int o = CLOPT_GRID_CENTER;\n"
          "    const int d = CLOPT_GRID_STEP(0, -1) + CLOPT_GRID_STEP(1, -1);\n"
          "    const real u = w[o];\n"
          "    *g = (u - 1) + (w[o + d] + w[o - d]) / 4;\n"
          "    return (u - 1) * (u - 1) / 2 + u * w[o + d] / 4;\n"
          "}\n",
          f);
    fclose(f);
    char *one = path_in(dir, "corner1.npy"), *many = path_in(dir, "corner8.npy");
    char cap[32];
    /* Shards of 44 points (11 tiles of 4) with halos of 37 + 1: they start inside rows of 37. */
    snprintf(cap, sizeof cap, "%d", (44 + 2 * 38) * 8);
    const char *shards[] = {"--max-shard-bytes", cap};
    for (int k = 0; k < 2; ++k) {
        const char *args[] = {"run",
                              "--objective",
                              cl,
                              "--shape",
                              "9,37",
                              "--iters",
                              "12",
                              "--lr",
                              "0.3",
                              "--init",
                              "uniform:1",
                              "--tune",
                              "wg=1,epw=4,vw=4",
                              "--precision",
                              "double",
                              "--out",
                              k ? many : one,
                              "--quiet",
                              k ? shards[0] : NULL,
                              shards[1],
                              NULL};
        struct cli_result r = cli_run(args);
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cli_result_free(&r);
    }
    size_t n1, n2;
    int d1, d2;
    double *a = read_npy_as_double(one, &n1, &d1), *b = read_npy_as_double(many, &n2, &d2);
    cr_assert_eq(n1, 333);
    cr_assert_eq(n2, 333);
    cr_expect_eq(memcmp(a, b, n1 * sizeof *a), 0, "theta differs between 8 shards and one");
    free(a);
    free(b);
    free(one);
    free(many);
    free(cl);
}
