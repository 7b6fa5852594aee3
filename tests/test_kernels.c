/* The fused step, reduction and init kernels against double-precision CPU references. */
#include "testutil.h"

#define CL_TARGET_OPENCL_VERSION 120
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LR 0.15
#define ELLIPSOID_COND 1e3
#define RASTRIGIN_A 10.0
#define SEED 20261129ull
/* About 10 float ulp: one step rounds the objective's terms (ellipsoid's weight is a float
 * polynomial 2^t, a few ulp), the product LR * g and the subtraction; the largest error seen
 * on PoCL was between 3e-7 and 4e-7 (it was 1e-5, 170 ulp, before issue 16). */
#define FLOAT_RTOL 6e-7
#define FLOAT_ATOL 1e-6
#define DOUBLE_RTOL 1e-12
#define DOUBLE_ATOL 1e-14
#define LOSS_RTOL_FLOAT 1e-6

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(kernels, .init = setup, .fini = teardown);

struct capture {
    double loss0, gnorm0;
    int calls;
};

static int capture_first(void *user, const struct clopt_progress *p)
{
    struct capture *c = user;
    if (p->iteration == 0) {
        c->loss0 = p->loss;
        c->gnorm0 = p->grad_norm;
    }
    ++c->calls;
    return 0;
}

/* f_i and df_i/dx of the built-in objectives, in double. */
static double reference_fdf(const char *objective, double x, size_t i, size_t n, double *g)
{
    const double two_pi = 6.283185307179586476925;
    if (!strcmp(objective, "rastrigin")) {
        *g = 2 * x + two_pi * RASTRIGIN_A * sin(two_pi * x);
        return RASTRIGIN_A + x * x - RASTRIGIN_A * cos(two_pi * x);
    }
    if (!strcmp(objective, "styblinski_tang")) {
        *g = (4 * x * x * x - 32 * x + 5) / 2;
        return (x * x * x * x - 16 * x * x + 5 * x) / 2;
    }
    double c = 1.0;
    if (!strcmp(objective, "ellipsoid") && n > 1)
        c = pow(ELLIPSOID_COND, (double)i / (double)(n - 1));
    *g = 2.0 * c * x;
    return c * x * x;
}

struct step_case {
    const char *objective;
    size_t n;
    enum clopt_precision precision;
    struct clopt_knobs knobs;
    size_t max_shard_bytes;
    size_t min_shards;
    /* When set, theta_0 cycles through these n_points values instead of random ones. */
    const double *points;
    size_t n_points;
};

/* One step from a random theta_0 (values in [-2, 2)), or from c->points, checked element by
 * element. */
static void check_one_step(const struct step_case *c)
{
    const int dbl = c->precision == CLOPT_DOUBLE;
    if (test_skip_double_part(dbl))
        return;
    double *theta0 = malloc(c->n * sizeof *theta0);
    double *theta1 = malloc(c->n * sizeof *theta1);
    cr_assert(theta0 && theta1);
    srand(7);
    for (size_t i = 0; i < c->n; ++i) {
        double v = 4.0 * rand() / ((double)RAND_MAX + 1.0) - 2.0;
        if (c->points)
            v = c->points[i % c->n_points];
        theta0[i] = dbl ? v : (double)(float)v; /* what the device will hold */
    }
    struct clopt_param cond = {"cond", "1e3"};
    struct capture cap = {0};
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = c->objective;
    if (!strcmp(c->objective, "ellipsoid")) {
        o.params = &cond;
        o.n_params = 1;
    }
    o.dim = c->n;
    o.precision = c->precision;
    o.lr = LR;
    o.max_iters = 1;
    o.init = CLOPT_INIT_NONE;
    o.knobs = c->knobs;
    o.max_shard_bytes = c->max_shard_bytes;
    o.progress = capture_first;
    o.progress_user = &cap;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_write_theta(s, theta0, CLOPT_DOUBLE, 0, c->n), CLOPT_OK);
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    cr_assert_eq(r.iterations, 1);
    cr_assert_geq(r.shards, c->min_shards, "%zu shards", r.shards);
    /* Poison the host copy: every element must come back from the device. */
    for (size_t i = 0; i < c->n; ++i)
        theta1[i] = NAN;
    cr_assert_eq(clopt_solver_read_theta(s, theta1, CLOPT_DOUBLE, 0, c->n), CLOPT_OK);

    const double rtol = dbl ? DOUBLE_RTOL : FLOAT_RTOL, atol = dbl ? DOUBLE_ATOL : FLOAT_ATOL;
    double loss0 = 0, g2_0 = 0, loss1 = 0, g2_1 = 0;
    size_t bad = 0;
    for (size_t i = 0; i < c->n; ++i) {
        double g;
        loss0 += reference_fdf(c->objective, theta0[i], i, c->n, &g);
        g2_0 += g * g;
        const double expected = theta0[i] - LR * g;
        /* Errors scale with the step's inputs: a large gradient term cancelling x leaves an
         * error relative to LR * g, not to the small result. */
        if (!close_enough(theta1[i], expected, rtol, atol + rtol * fabs(LR * g)) && bad++ < 5)
            cr_log_error("%s n=%zu: theta1[%zu] = %.17g, expected %.17g", c->objective, c->n, i,
                         theta1[i], expected);
        loss1 += reference_fdf(c->objective, theta1[i], i, c->n, &g);
        g2_1 += g * g;
    }
    cr_expect_eq(bad, 0, "%zu of %zu elements differ", bad, c->n);
    /* Compensated float accumulators give float-level sums even for double theta. */
    const double lrtol = dbl && c->knobs.accumulate != 2 ? DOUBLE_RTOL : LOSS_RTOL_FLOAT;
    cr_expect_eq(cap.calls, 1);
    cr_expect(close_enough(cap.loss0, loss0, lrtol, 0), "loss0 %.17g vs %.17g", cap.loss0, loss0);
    cr_expect(close_enough(cap.gnorm0, sqrt(g2_0), lrtol, 0), "|g0| %.17g vs %.17g", cap.gnorm0,
              sqrt(g2_0));
    cr_expect(close_enough(r.loss, loss1, lrtol, 0), "loss1 %.17g vs %.17g", r.loss, loss1);
    cr_expect(close_enough(r.grad_norm, sqrt(g2_1), lrtol, 0), "|g1| %.17g vs %.17g", r.grad_norm,
              sqrt(g2_1));
    clopt_solver_destroy(s);
    free(theta0);
    free(theta1);
}

static const size_t odd_sizes[] = {1, 7, 93, 4096, (1u << 20) + 3};

Test(kernels, sphere_and_ellipsoid_match_reference_at_odd_sizes)
{
    const char *objectives[] = {"sphere", "ellipsoid"};
    for (size_t o = 0; o < 2; ++o)
        for (int p = 0; p < 2; ++p)
            for (size_t k = 0; k < sizeof odd_sizes / sizeof *odd_sizes; ++k) {
                const struct step_case c = {.objective = objectives[o],
                                            .n = odd_sizes[k],
                                            .precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT,
                                            .min_shards = 1};
                check_one_step(&c);
            }
}

Test(kernels, rastrigin_and_styblinski_tang_match_reference)
{
    const char *objectives[] = {"rastrigin", "styblinski_tang"};
    const size_t sizes[] = {7, 4096 + 3};
    for (size_t o = 0; o < 2; ++o)
        for (int p = 0; p < 2; ++p)
            for (size_t k = 0; k < 2; ++k) {
                const struct step_case c = {.objective = objectives[o],
                                            .n = sizes[k],
                                            .precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT,
                                            .min_shards = 1};
                check_one_step(&c);
            }
}

/* Rastrigin's sin and cos reduce theta to a half turn in float and to a quarter turn in double
 * (kernels/obj_rastrigin.cl): points on and next to the edges of those turns, at both signs,
 * at -0 and where theta is so large that it is a whole or half number, on the scalar (n = 7)
 * and vector paths. */
Test(kernels, rastrigin_matches_reference_at_turn_edges)
{
    static const double points[] = {
        0.0,        -0.0,       0.25,       -0.25,      0.24999999, 0.25000001, -0.24999999,
        0.5,        -0.5,       0.49999997, 0.50000003, 0.75,       -0.75,      0.125,
        -0.125,     0.375,      1.0,        -1.0,       1.25,       -2.75,      1.4999999,
        1000000.25, -1000000.5, 4194304.5,  8388608.0,  -8388609.0, 3.0e7,      1e-30,
    };
    const size_t sizes[] = {7, 4096 + 3};
    for (int p = 0; p < 2; ++p)
        for (size_t k = 0; k < 2; ++k) {
            const struct step_case c = {.objective = "rastrigin",
                                        .n = sizes[k],
                                        .precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT,
                                        .min_shards = 1,
                                        .points = points,
                                        .n_points = sizeof points / sizeof *points};
            check_one_step(&c);
        }
}

Test(kernels, many_shards_match_reference)
{
    /* Default CPU tiles are 16 x 4096 floats (256 KiB): a 1 MiB cap gives 5 shards. */
    const struct step_case c = {.objective = "ellipsoid",
                                .n = (1u << 20) + 3,
                                .precision = CLOPT_FLOAT,
                                .max_shard_bytes = 1u << 20,
                                .min_shards = 5};
    check_one_step(&c);
    const struct step_case small = {
        .objective = "sphere",
        .n = 93,
        .precision = CLOPT_DOUBLE,
        .knobs = {.work_group = 2, .elems_per_item = 4, .vector_width = 2},
        .max_shard_bytes = 2 * 4 * sizeof(double) * 2,
        .min_shards = 5};
    check_one_step(&small);
}

Test(kernels, every_layout_and_partial_scheme_matches_reference)
{
    const struct clopt_knobs variants[] = {
        {.layout = 2,
         .group_partials = 2,
         .work_group = 64,
         .elems_per_item = 16,
         .vector_width = 1},
        {.layout = 2, .group_partials = 1, .work_group = 8, .elems_per_item = 4, .vector_width = 4},
        {.layout = 1,
         .group_partials = 2,
         .work_group = 32,
         .elems_per_item = 64,
         .vector_width = 16},
        {.layout = 1, .group_partials = 1, .work_group = 1, .elems_per_item = 1, .vector_width = 1},
        {.layout = 1,
         .group_partials = 1,
         .work_group = 4,
         .elems_per_item = 256,
         .vector_width = 16,
         .loss_block = 1},
        {.layout = 1,
         .group_partials = 1,
         .work_group = 2,
         .elems_per_item = 64,
         .vector_width = 2,
         .loss_block = 1024},
        {.layout = 2,
         .group_partials = 2,
         .work_group = 16,
         .elems_per_item = 32,
         .vector_width = 8,
         .loss_block = 4},
        /* GPU-like reductions and the no-fp64 accumulators, exercised on the CPU. */
        {.layout = 2,
         .group_partials = 2,
         .work_group = 64,
         .elems_per_item = 4,
         .vector_width = 1,
         .loss_block = 1,
         .reduce_group = 256},
        {.layout = 1,
         .group_partials = 1,
         .work_group = 8,
         .elems_per_item = 16,
         .vector_width = 4,
         .reduce_group = 2,
         .accumulate = 2},
        {.layout = 2,
         .group_partials = 2,
         .work_group = 32,
         .elems_per_item = 8,
         .vector_width = 1,
         .reduce_group = 64,
         .accumulate = 2},
        /* A fixed grid of groups striding over the tiles, with either partial scheme. */
        {.layout = 1, .work_group = 2, .elems_per_item = 8, .vector_width = 4, .groups_per_cu = 1},
        /* Prefetching off, and a short distance (the last blocks look past the buffer). */
        {.layout = 1, .work_group = 4, .elems_per_item = 64, .vector_width = 8, .prefetch = 1},
        {.layout = 1, .work_group = 2, .elems_per_item = 32, .vector_width = 4, .prefetch = 8},
        /* The compiler's own vector width (the CPU default lets it use 512-bit registers). */
        {.layout = 1, .work_group = 4, .elems_per_item = 32, .vector_width = 16, .simd_bits = 256},
        {.layout = 2,
         .group_partials = 2,
         .work_group = 8,
         .elems_per_item = 4,
         .vector_width = 1,
         .groups_per_cu = 3},
    };
    const size_t sizes[] = {7, 93, 4096 + 5};
    for (size_t v = 0; v < sizeof variants / sizeof *variants; ++v)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; ++k)
            for (int p = 0; p < 2; ++p) {
                const struct step_case c = {.objective = "ellipsoid",
                                            .n = sizes[k],
                                            .precision = p ? CLOPT_DOUBLE : CLOPT_FLOAT,
                                            .knobs = variants[v],
                                            .min_shards = 1};
                check_one_step(&c);
            }
}

Test(kernels, philox_reference_matches_known_answer)
{
    /* Random123's known-answer vector for philox4x32-10 with zero counter and key. */
    const uint32_t zero_ctr[4] = {0, 0, 0, 0}, zero_key[2] = {0, 0};
    const uint32_t expected[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    uint32_t out[4];
    philox4x32_10(zero_ctr, zero_key, out);
    for (int i = 0; i < 4; ++i)
        cr_expect_eq(out[i], expected[i], "word %d: %08x", i, out[i]);
}

static double *init_theta(enum clopt_init_kind kind, enum clopt_precision precision, size_t n,
                          size_t max_shard_bytes, struct clopt_knobs knobs)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = n;
    o.init = kind;
    o.init_value = 1.0;
    o.seed = SEED;
    o.precision = precision;
    o.max_shard_bytes = max_shard_bytes;
    o.knobs = knobs;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    double *theta = malloc(n * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    clopt_solver_destroy(s);
    return theta;
}

Test(kernels, uniform_init_is_bit_exact_against_host_philox)
{
    const size_t n = 4099;
    const struct clopt_knobs none = {0};
    double *f = init_theta(CLOPT_INIT_UNIFORM, CLOPT_FLOAT, n, 0, none);
    double *d = init_theta(CLOPT_INIT_UNIFORM, CLOPT_DOUBLE, n, 0, none);
    const uint32_t key[2] = {(uint32_t)SEED, (uint32_t)(SEED >> 32)};
    for (size_t i = 0; i < n; ++i) {
        const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), 0, 0};
        uint32_t r[4];
        philox4x32_10(ctr, key, r);
        const float uf = (float)(r[0] >> 8) * 0x1p-24f;
        const double ud = (double)(((uint64_t)r[0] << 21) ^ (r[1] >> 11)) * 0x1p-53;
        cr_assert_eq(f[i], (double)(2.0f * uf - 1.0f), "float theta0[%zu] = %.9g", i, f[i]);
        cr_assert_eq(d[i], 2.0 * ud - 1.0, "double theta0[%zu] = %.17g", i, d[i]);
        cr_assert(f[i] >= -1.0 && f[i] < 1.0);
    }
    free(f);
    free(d);
}

Test(kernels, normal_init_matches_box_muller_and_has_unit_variance)
{
    const size_t n = 1u << 16;
    const struct clopt_knobs none = {0};
    double *theta = init_theta(CLOPT_INIT_NORMAL, CLOPT_FLOAT, n, 0, none);
    const uint32_t key[2] = {(uint32_t)SEED, (uint32_t)(SEED >> 32)};
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t ctr[4] = {(uint32_t)i, 0, 0, 0};
        uint32_t r[4];
        philox4x32_10(ctr, key, r);
        const double u1 = ((double)r[0] + 1.0) * 0x1p-32, u2 = (double)r[1] * 0x1p-32;
        const double expected = sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
        cr_assert(close_enough(theta[i], expected, 1e-6, 1e-6), "theta0[%zu] = %.9g vs %.9g", i,
                  theta[i], expected);
        sum += theta[i];
        sum2 += theta[i] * theta[i];
    }
    /* Mean and variance of 65536 N(0,1) draws: 6 standard errors of slack. */
    const double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    cr_expect(fabs(mean) < 6.0 / sqrt((double)n), "mean %g", mean);
    cr_expect(fabs(var - 1.0) < 6.0 * sqrt(2.0 / (double)n), "variance %g", var);
    free(theta);
}

Test(kernels, init_does_not_depend_on_shards_or_knobs)
{
    const size_t n = (1u << 20) + 3;
    const struct clopt_knobs none = {0};
    const struct clopt_knobs gpu_like = {.layout = 2,
                                         .group_partials = 2,
                                         .work_group = 64,
                                         .elems_per_item = 16,
                                         .vector_width = 1};
    double *a = init_theta(CLOPT_INIT_NORMAL, CLOPT_FLOAT, n, 0, none);
    double *b = init_theta(CLOPT_INIT_NORMAL, CLOPT_FLOAT, n, 1u << 20, none);
    double *c = init_theta(CLOPT_INIT_NORMAL, CLOPT_FLOAT, n, 0, gpu_like);
    cr_expect_eq(memcmp(a, b, n * sizeof *a), 0, "1 shard and 5 shards differ");
    cr_expect_eq(memcmp(a, c, n * sizeof *a), 0, "CPU and GPU knobs differ");
    free(a);
    free(b);
    free(c);
}

Test(kernels, each_kernel_file_compiles_on_its_own)
{
    const char *files[] = {"common.cl",
                           "obj_sphere.cl",
                           "obj_ellipsoid.cl",
                           "obj_rastrigin.cl",
                           "obj_styblinski_tang.cl",
                           "upd_gd.cl",
                           "upd_momentum.cl",
                           "upd_adam.cl",
                           "upd_rmsprop.cl",
                           "upd_adagrad.cl",
                           "step.cl",
                           "reduce.cl",
                           "init.cl"};
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    cl_platform_id platform = NULL;
    cl_uint n_platforms = 0;
    cr_assert_eq(clGetPlatformIDs(1, &platform, &n_platforms), CL_SUCCESS);
    cl_device_id device;
    cr_assert_eq(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), CL_SUCCESS);
    cl_int err;
    cl_context cl = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    (void)dev;
    for (size_t i = 0; i < sizeof files / sizeof *files; ++i) {
        char path[1024];
        snprintf(path, sizeof path, "%s/kernels/%s", CLOPT_SOURCE_DIR, files[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        static char text[1 << 16];
        size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = '\0';
        const char *src = text;
        cl_program program = clCreateProgramWithSource(cl, 1, &src, NULL, &err);
        cr_assert_eq(err, CL_SUCCESS);
        err = clCompileProgram(program, 1, &device, "-cl-std=CL1.2", 0, NULL, NULL, NULL, NULL);
        if (err != CL_SUCCESS) {
            char log[8192] = "";
            clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
            cr_expect_fail("%s does not compile alone: %s", files[i], log);
        }
        clReleaseProgram(program);
    }
    clReleaseContext(cl);
}

Test(kernels, build_failure_names_the_users_file_and_line)
{
    char *dir = temp_dir();
    char *path = path_in(dir, "broken.cl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("/* line 1 */\n"
          "real clopt_fdf(real x, ulong i, real *g)\n"
          "{\n"
          "    *g = 2 * x\n" /* line 4: missing semicolon */
          "    return x * x;\n"
          "}\n",
          f);
    fclose(f);
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = path;
    o.dim = 10;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_BUILD);
    cr_assert_null(s);
    const char *msg = clopt_errmsg(ctx);
    char expected[1100];
    snprintf(expected, sizeof expected, "%s:4:", path);
    cr_expect(strstr(msg, expected) != NULL, "message lacks '%s':\n%s", expected, msg);
    remove_tree(dir);
    free(path);
    free(dir);
}
