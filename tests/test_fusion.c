/* Multi-step fusion (--tune fuse=K) and the groups-per-compute-unit knob: K fused
 * iterations must give the bits of K single steps (theta, optimizer state, every loss and
 * gradient norm), against a double CPU reference too; stopping tests act at block ends;
 * checkpoints and resumes never split a block. */
#include "testutil.h"

#define CL_TARGET_OPENCL_VERSION 120
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRACE 256

CONTEXT_TEMP_DIR_SUITE(fusion);

struct trace {
    size_t count;
    uint64_t iteration[MAX_TRACE];
    double loss[MAX_TRACE], grad_norm[MAX_TRACE], lr[MAX_TRACE];
};

static int record(void *user, const struct clopt_progress *p)
{
    struct trace *t = user;
    cr_assert_lt(t->count, MAX_TRACE);
    t->iteration[t->count] = p->iteration;
    t->loss[t->count] = p->loss;
    t->grad_norm[t->count] = p->grad_norm;
    t->lr[t->count] = p->lr;
    ++t->count;
    return 0;
}

/* theta and every state vector in the run's precision, one after the other. */
static void *vectors(struct clopt_solver *s, size_t n, enum clopt_precision precision,
                     size_t *bytes)
{
    const size_t k = clopt_solver_state_count(s);
    const size_t item = precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    char *v = malloc((k + 1) * n * item);
    cr_assert_not_null(v);
    cr_assert_eq(clopt_solver_read_theta(s, v, precision, 0, n), CLOPT_OK);
    for (size_t i = 0; i < k; ++i)
        cr_assert_eq(clopt_solver_read_state(s, i, v + (i + 1) * n * item, precision, 0, n),
                     CLOPT_OK);
    *bytes = (k + 1) * n * item;
    return v;
}

struct fused_case {
    const char *objective, *optimizer, *schedule;
    enum clopt_precision precision;
    size_t n, fuse;
    uint64_t iters, loss_every;
    struct clopt_knobs knobs;
    size_t max_shard_bytes;
    int amsgrad, maximize;
    double clip_value, weight_decay; /* weight_decay 0: the optimizer's default */
};

/* Runs c with its knobs and fuse = c->fuse (fused) or 1; returns theta|state. */
static void *run_case(const struct fused_case *c, size_t fuse, struct trace *t,
                      struct clopt_result *r, size_t *bytes, const char *target_file)
{
    struct clopt_param target = {"target", target_file};
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = c->objective;
    if (target_file) {
        o.params = &target;
        o.n_params = 1;
    }
    o.optimizer = c->optimizer;
    o.schedule = c->schedule;
    o.precision = c->precision;
    o.dim = c->n;
    o.max_iters = c->iters;
    o.loss_every = c->loss_every;
    o.init = CLOPT_INIT_UNIFORM;
    o.init_value = 1.5;
    o.seed = 11;
    o.lr = !strcmp(c->optimizer, "gd") || !strcmp(c->optimizer, "momentum") ||
                   !strcmp(c->optimizer, "nesterov")
               ? 0.01
               : 0.05;
    o.knobs = c->knobs;
    o.knobs.fuse = fuse;
    o.max_shard_bytes = c->max_shard_bytes;
    o.amsgrad = c->amsgrad;
    o.maximize = c->maximize;
    o.clip_value = c->clip_value;
    if (c->weight_decay > 0)
        o.weight_decay = c->weight_decay;
    o.progress = record;
    o.progress_user = t;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    cr_assert_eq(r->iterations, c->iters);
    cr_assert_eq(r->knobs.fuse, fuse);
    void *v = vectors(s, c->n, c->precision, bytes);
    clopt_solver_destroy(s);
    return v;
}

static void expect_same_trace(const struct trace *a, const struct trace *b, const char *what)
{
    cr_assert_eq(a->count, b->count, "%s: %zu vs %zu losses", what, a->count, b->count);
    for (size_t i = 0; i < a->count; ++i) {
        cr_assert_eq(a->iteration[i], b->iteration[i], "%s row %zu", what, i);
        cr_assert(!memcmp(&a->loss[i], &b->loss[i], sizeof(double)) &&
                      !memcmp(&a->grad_norm[i], &b->grad_norm[i], sizeof(double)) &&
                      !memcmp(&a->lr[i], &b->lr[i], sizeof(double)),
                  "%s: iteration %llu: loss %.17g vs %.17g, |g| %.17g vs %.17g", what,
                  (unsigned long long)a->iteration[i], a->loss[i], b->loss[i], a->grad_norm[i],
                  b->grad_norm[i]);
    }
}

/* Iteration counts that are not multiples of K end with single steps, which must continue
 * the fused blocks seamlessly. */
Test(fusion, k_fused_iterations_equal_k_single_steps_bit_for_bit)
{
    float target[513];
    for (size_t i = 0; i < 513; ++i)
        target[i] = (float)(0.25 * sin((double)i));
    char *target_path = path_in(dir, "target.npy");
    write_npy(target_path, target, 513, 0);
#define CASE(obj, opt, sched, prec, dim, k, it, every)                                             \
    .objective = obj, .optimizer = opt, .schedule = sched, .precision = prec, .n = dim, .fuse = k, \
    .iters = it, .loss_every = every
    const struct fused_case cases[] = {
        {CASE("sphere", "gd", NULL, CLOPT_FLOAT, 93, 8, 2 * 8 + 3, 1)},
        /* GD's iterations go in pairs: an odd K, pairs with loss bits 10, 01 and 00 (the
         * case above has 11) and a schedule */
        {CASE("sphere", "gd", "step:4:0.5", CLOPT_FLOAT, 4096 + 17, 5, 3 * 5 + 2, 3)},
        {CASE("ellipsoid", "adam", "cosine:30", CLOPT_DOUBLE, 4096 + 5, 3, 20, 3)},
        /* momentum's first step (a fresh state) falls inside the first block */
        {CASE("rastrigin", "momentum", NULL, CLOPT_FLOAT, 7, 2, 9, 1),
         .knobs = {.work_group = 2, .elems_per_item = 4, .vector_width = 2}},
        /* the group tree inside the fused kernel's iteration loop and the gpcu tile loop */
        {CASE("styblinski_tang", "adamw", "warmup:5", CLOPT_FLOAT, (1u << 16) + 3, 5, 12, 2),
         .knobs = {.layout = 2,
                   .group_partials = 2,
                   .work_group = 16,
                   .elems_per_item = 8,
                   .vector_width = 1,
                   .groups_per_cu = 2}},
        {CASE("double_well", "rmsprop", NULL, CLOPT_FLOAT, 1001, 4, 10, 1),
         .knobs = {.loss_block = 1, .accumulate = 2}},
        {CASE("shifted_sphere", "adagrad", NULL, CLOPT_FLOAT, 513, 6, 14, 1),
         .knobs = {.vector_width = 4, .prefetch = 16}},
        /* five shards, and a fixed grid of groups striding over the tiles */
        {CASE("sphere", "nesterov", "exp:0.97", CLOPT_FLOAT, (1u << 20) + 3, 8, 17, 4),
         .knobs = {.groups_per_cu = 1}, .max_shard_bytes = 1u << 20},
        /* GD pairs with weight decay, clipping, ascent, a transcendental objective, the
         * strided layout, one term per lane block and compensated float sums */
        {CASE("rastrigin", "gd", NULL, CLOPT_FLOAT, 10007, 7, 2 * 7 + 4, 1), .maximize = 1,
         .clip_value = 0.5, .weight_decay = 0.01,
         .knobs = {.layout = 2, .vector_width = 4, .loss_block = 1, .accumulate = 2}},
        /* three state vectors, clipping, ascent, all 32 mask bits, and the default CPU knobs
         * (full tiles) with a transcendental objective */
        {CASE("rastrigin", "adam", NULL, CLOPT_FLOAT, (1u << 17) + 5, 32, 70, 1), .amsgrad = 1,
         .maximize = 1, .clip_value = 5.0},
        /* Whole chunks run loss masks 0 and 1 group by group (clopt_sweep_direct on CPUs):
         * the loss every 2 K, so blocks alternate between the two; a schedule, so each
         * iteration has its own learning rate; the default CPU knobs, several full chunks
         * and a partial one, then single steps */
        {CASE("sphere", "gd", "step:4:0.5", CLOPT_FLOAT, (2u << 16) + 3 * 4096 + 7, 8, 4 * 8 + 3,
              16)},
        /* ... with a data vector, three state vectors and the loss at iteration 0 only */
        {CASE("shifted_sphere", "adam", "cosine:40", CLOPT_FLOAT, 513, 4, 5 * 4, 4), .amsgrad = 1,
         .knobs = {.work_group = 4, .elems_per_item = 64, .vector_width = 8}},
        /* ... with the strided layout, one term per lane block, compensated sums and shards */
        {CASE("rastrigin", "momentum", NULL, CLOPT_FLOAT, 2500, 3, 6 * 3 + 1, 6),
         .knobs = {.layout = 2,
                   .work_group = 16,
                   .elems_per_item = 16,
                   .vector_width = 4,
                   .loss_block = 1,
                   .accumulate = 2},
         .max_shard_bytes = 4096},
    };
#undef CASE
    for (size_t k = 0; k < sizeof cases / sizeof *cases; ++k) {
        const struct fused_case *c = &cases[k];
        const char *file = !strcmp(c->objective, "shifted_sphere") ? target_path : NULL;
        static struct trace single, fused;
        memset(&single, 0, sizeof single);
        memset(&fused, 0, sizeof fused);
        struct clopt_result r1, rk;
        size_t bytes1, bytesk;
        void *a = run_case(c, 1, &single, &r1, &bytes1, file);
        void *b = run_case(c, c->fuse, &fused, &rk, &bytesk, file);
        char what[96];
        snprintf(what, sizeof what, "%s/%s fuse=%zu", c->objective, c->optimizer, c->fuse);
        cr_assert_eq(bytes1, bytesk);
        cr_expect(!memcmp(a, b, bytes1), "%s: theta or the optimizer state differs", what);
        expect_same_trace(&single, &fused, what);
        cr_expect(!memcmp(&r1.loss, &rk.loss, sizeof(double)), "%s: final loss", what);
        cr_expect_eq(r1.final_lr, rk.final_lr, "%s: final lr", what);
        free(a);
        free(b);
    }
    free(target_path);
}

/* simd=512 only lets the compiler put more lanes in one register: theta, the state and every
 * loss must be the bits of simd=256, single and fused, with transcendental objectives, a
 * stencil, three state vectors, double and narrower lane groups. */
Test(fusion, simd_width_changes_no_bits)
{
#define CASE(obj, opt, prec, dim, k, it)                                                           \
    .objective = obj, .optimizer = opt, .precision = prec, .n = dim, .fuse = k, .iters = it,       \
    .loss_every = 1
    const struct fused_case cases[] = {
        {CASE("rastrigin", "adam", CLOPT_FLOAT, (1u << 17) + 5, 8, 19), .amsgrad = 1},
        {CASE("double_well", "momentum", CLOPT_DOUBLE, 4096 + 5, 4, 10)},
        {CASE("styblinski_tang", "rmsprop", CLOPT_FLOAT, 1001, 4, 10),
         .knobs = {.vector_width = 8, .loss_block = 1}},
        {CASE("laplacian", "nesterov", CLOPT_FLOAT, 4096 + 7, 1, 10)},
        {CASE("sphere", "gd", CLOPT_FLOAT, 4096 + 9, 6, 13)},
    };
#undef CASE
    for (size_t k = 0; k < sizeof cases / sizeof *cases; ++k) {
        const size_t fuses[] = {1, cases[k].fuse};
        for (size_t f = 0; f < (cases[k].fuse > 1 ? 2 : 1); ++f) {
            struct fused_case c = cases[k];
            static struct trace narrow, wide;
            memset(&narrow, 0, sizeof narrow);
            memset(&wide, 0, sizeof wide);
            struct clopt_result r256, r512;
            size_t bytes256, bytes512;
            c.knobs.simd_bits = 256;
            void *a = run_case(&c, fuses[f], &narrow, &r256, &bytes256, NULL);
            c.knobs.simd_bits = 512;
            void *b = run_case(&c, fuses[f], &wide, &r512, &bytes512, NULL);
            char what[96];
            snprintf(what, sizeof what, "%s/%s fuse=%zu simd 256 vs 512", c.objective, c.optimizer,
                     fuses[f]);
            cr_assert_eq(r256.knobs.simd_bits, 256);
            cr_assert_eq(r512.knobs.simd_bits, 512);
            cr_assert_eq(bytes256, bytes512);
            cr_expect(!memcmp(a, b, bytes256), "%s: theta or the optimizer state differs", what);
            expect_same_trace(&narrow, &wide, what);
            free(a);
            free(b);
        }
    }
}

/* Objectives with a vector form (clopt_fdf_vec: ellipsoid, rastrigin; clopt_fdf_stencil_vec
 * for the chunks inside theta: rosenbrock, which epw = 8 gives here) compute each lane as
 * clopt_fdf does: theta and the state must be the bits of vw = 1 (the scalar clopt_fdf) for
 * every vector width, float and double, with lanes past the end of theta. Ellipsoid's block
 * form shares work across the 16-element groups of a block: epw = 8 puts half the blocks
 * off a group boundary, where it falls back to the vector form. (The losses are summed per
 * lane, so they may differ with the width in the last bits.) */
Test(fusion, vector_form_gives_the_scalar_bits)
{
#define CASE(obj, prec)                                                                            \
    .objective = obj, .optimizer = "adam", .precision = prec, .n = 4096 + 13, .fuse = 1,           \
    .iters = 9, .loss_every = 1
    const struct fused_case cases[] = {
        {CASE("ellipsoid", CLOPT_FLOAT)},  {CASE("ellipsoid", CLOPT_DOUBLE)},
        {CASE("rastrigin", CLOPT_FLOAT)},  {CASE("rastrigin", CLOPT_DOUBLE)},
        {CASE("rosenbrock", CLOPT_FLOAT)}, {CASE("rosenbrock", CLOPT_DOUBLE)},
    };
#undef CASE
    const struct {
        size_t vw, epw;
    } widths[] = {{2, 0}, {4, 0}, {8, 0}, {16, 0}, {4, 8}, {8, 8}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; ++k) {
        struct fused_case c = cases[k];
        static struct trace scalar, vector;
        memset(&scalar, 0, sizeof scalar);
        struct clopt_result r1, rv;
        size_t bytes1, bytesv;
        c.knobs.vector_width = 1;
        void *a = run_case(&c, 1, &scalar, &r1, &bytes1, NULL);
        for (size_t w = 0; w < sizeof widths / sizeof *widths; ++w) {
            memset(&vector, 0, sizeof vector);
            c.knobs.vector_width = widths[w].vw;
            c.knobs.elems_per_item = widths[w].epw;
            void *b = run_case(&c, 1, &vector, &rv, &bytesv, NULL);
            char what[96];
            snprintf(what, sizeof what, "%s %s vw=%zu epw=%zu against vw=1", c.objective,
                     c.precision == CLOPT_DOUBLE ? "double" : "float", widths[w].vw, widths[w].epw);
            cr_assert_eq(rv.knobs.vector_width, widths[w].vw);
            cr_assert_eq(bytes1, bytesv);
            cr_expect(!memcmp(a, b, bytes1), "%s: theta or the optimizer state differs", what);
            free(b);
        }
        free(a);
    }
}

/* f_i and g_i of sphere and rastrigin (A = 10) in double. */
static double reference_fdf(const char *objective, double x, double *g)
{
    if (!strcmp(objective, "rastrigin")) {
        const double two_pi = 6.283185307179586476925;
        *g = 2 * x + two_pi * 10.0 * sin(two_pi * x);
        return 10.0 + x * x - 10.0 * cos(two_pi * x);
    }
    *g = 2 * x;
    return x * x;
}

/* GD in blocks of 4 fused iterations (and 2 single steps after them) from a known theta_0,
 * against double arithmetic: theta after 6 steps and the loss of every iteration. */
Test(fusion, fused_gd_matches_the_double_reference_at_odd_sizes)
{
    const char *objectives[] = {"sphere", "rastrigin"};
    const size_t sizes[] = {1, 7, 93, 4096 + 3};
    /* Rastrigin's curvature reaches 4 pi^2 A: small steps keep the map from amplifying
     * rounding (|1 - lr f''| <= 1.4 per step). */
    const double lrs[] = {0.1, 0.001};
    const uint64_t iters = 6;
    for (size_t o = 0; o < 2; ++o)
        for (int p = 0; p < 2; ++p)
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; ++k) {
                const size_t n = sizes[k];
                const double lr = lrs[o];
                const int dbl = p == 1;
                if (test_skip_double_part(dbl))
                    continue;
                double *theta = malloc(n * sizeof *theta), *got = malloc(n * sizeof *got);
                cr_assert(theta && got);
                srand(5);
                for (size_t i = 0; i < n; ++i) {
                    const double v = 1.6 * rand() / ((double)RAND_MAX + 1.0) - 0.8;
                    theta[i] = dbl ? v : (double)(float)v;
                }
                static struct trace t;
                memset(&t, 0, sizeof t);
                struct clopt_options opts;
                clopt_options_init(&opts);
                opts.objective = objectives[o];
                opts.precision = dbl ? CLOPT_DOUBLE : CLOPT_FLOAT;
                opts.dim = n;
                opts.lr = lr;
                opts.max_iters = iters;
                opts.init = CLOPT_INIT_NONE;
                opts.knobs.fuse = 4;
                opts.progress = record;
                opts.progress_user = &t;
                struct clopt_solver *s = NULL;
                cr_assert_eq(clopt_solver_create(&s, ctx, &opts), CLOPT_OK, "%s",
                             clopt_errmsg(ctx));
                cr_assert_eq(clopt_solver_write_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
                struct clopt_result r;
                cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s",
                             clopt_errmsg(ctx));
                cr_assert_eq(clopt_solver_read_theta(s, got, CLOPT_DOUBLE, 0, n), CLOPT_OK);
                clopt_solver_destroy(s);
                cr_assert_eq(t.count, iters);
                /* Float rounding compounds over the steps; rastrigin's gradient amplifies it. */
                const double rtol = dbl ? 1e-12 : 2e-5;
                for (uint64_t it = 0; it < iters; ++it) {
                    double loss = 0, g2 = 0;
                    for (size_t i = 0; i < n; ++i) {
                        double g;
                        loss += reference_fdf(objectives[o], theta[i], &g);
                        g2 += g * g;
                        theta[i] -= lr * g;
                    }
                    cr_expect(close_enough(t.loss[it], loss, rtol, 1e-12),
                              "%s %s n=%zu: loss of iteration %llu %.17g vs %.17g", objectives[o],
                              dbl ? "double" : "float", n, (unsigned long long)it, t.loss[it],
                              loss);
                    cr_expect(close_enough(t.grad_norm[it], sqrt(g2), rtol, 1e-12),
                              "%s n=%zu: |g| of iteration %llu", objectives[o], n,
                              (unsigned long long)it);
                }
                size_t bad = 0;
                for (size_t i = 0; i < n; ++i)
                    if (!close_enough(got[i], theta[i], rtol, dbl ? 1e-14 : 1e-6) && bad++ < 3)
                        cr_log_error("%s n=%zu: theta[%zu] = %.17g, expected %.17g", objectives[o],
                                     n, i, got[i], theta[i]);
                cr_expect_eq(bad, 0, "%s %s n=%zu: %zu elements differ", objectives[o],
                             dbl ? "double" : "float", n, bad);
                free(theta);
                free(got);
            }
}

/* A target met inside a block stops the run at the end of a block: a multiple of K
 * iterations, fewer than K past where single steps stop, on the same trajectory. */
Test(fusion, stopping_tests_act_at_the_end_of_a_block)
{
    const size_t n = 1000, fuse = 8;
    double stopped_at[2];
    float *theta[2];
    for (int fused = 0; fused < 2; ++fused) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.dim = n;
        o.lr = 0.05;
        o.max_iters = 100000;
        o.target = 1e-3;
        o.init = CLOPT_INIT_CONST;
        o.init_value = 1.0;
        o.knobs.fuse = fused ? fuse : 1;
        struct clopt_solver *s = NULL;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        struct clopt_result r;
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_TARGET, "%s", clopt_errmsg(ctx));
        stopped_at[fused] = (double)r.iterations;
        if (fused)
            cr_expect_eq(r.iterations % fuse, 0, "stopped after %llu iterations",
                         (unsigned long long)r.iterations);
        theta[fused] = malloc(n * sizeof(float));
        cr_assert_not_null(theta[fused]);
        cr_assert_eq(clopt_solver_read_theta(s, theta[fused], CLOPT_FLOAT, 0, n), CLOPT_OK);
        clopt_solver_destroy(s);
    }
    cr_expect(stopped_at[1] >= stopped_at[0] && stopped_at[1] < stopped_at[0] + (double)fuse,
              "fused run stopped at %g, single steps at %g", stopped_at[1], stopped_at[0]);
    /* The same number of single steps lands on the same theta. */
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = n;
    o.lr = 0.05;
    o.max_iters = (uint64_t)stopped_at[1];
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    float *expected = malloc(n * sizeof(float));
    cr_assert_not_null(expected);
    cr_assert_eq(clopt_solver_read_theta(s, expected, CLOPT_FLOAT, 0, n), CLOPT_OK);
    clopt_solver_destroy(s);
    cr_expect(!memcmp(expected, theta[1], n * sizeof(float)));
    free(expected);
    free(theta[0]);
    free(theta[1]);
}

/* Checkpoints every 10 iterations with blocks of 4: blocks stop short of each checkpoint,
 * and a resume (on other shards) continues bit for bit. */
Test(fusion, checkpoints_fall_between_blocks_and_resume_bit_for_bit)
{
    const size_t n = 2000 + 11;
    char *path = path_in(dir, "fused.ckp");
    const struct fused_case c = {.objective = "ellipsoid",
                                 .optimizer = "adam",
                                 .precision = CLOPT_FLOAT,
                                 .n = n,
                                 .fuse = 4,
                                 .iters = 40,
                                 .loss_every = 3,
                                 .knobs = {.work_group = 1, .elems_per_item = 64}};
    static struct trace whole, first, second;
    memset(&whole, 0, sizeof whole);
    struct clopt_result r;
    size_t bytes;
    void *expected = run_case(&c, 1, &whole, &r, &bytes, NULL);
    for (int part = 0; part < 2; ++part) {
        struct trace *t = part ? &second : &first;
        memset(t, 0, sizeof *t);
        struct clopt_options o;
        clopt_options_init(&o);
        o.objective = c.objective;
        o.optimizer = c.optimizer;
        o.dim = n;
        o.max_iters = part ? 40 : 23;
        o.loss_every = 3;
        o.init = CLOPT_INIT_UNIFORM;
        o.init_value = 1.5;
        o.seed = 11;
        o.lr = 0.05;
        o.knobs = c.knobs;
        o.knobs.fuse = 4;
        o.checkpoint = path;
        o.checkpoint_every = 10;
        o.max_shard_bytes = part ? 256 * sizeof(float) : 0;
        o.progress = record;
        o.progress_user = t;
        struct clopt_solver *s = NULL;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        if (part)
            cr_assert_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
        cr_assert_eq(r.iterations, o.max_iters);
        if (part) {
            size_t got_bytes;
            void *got = vectors(s, n, CLOPT_FLOAT, &got_bytes);
            cr_assert_eq(got_bytes, bytes);
            cr_expect(!memcmp(got, expected, bytes), "resumed fused run differs");
            free(got);
        }
        clopt_solver_destroy(s);
    }
    cr_assert_eq(first.count + second.count, whole.count);
    for (size_t i = 0; i < whole.count; ++i) {
        const struct trace *t = i < first.count ? &first : &second;
        const size_t j = i < first.count ? i : i - first.count;
        cr_expect(t->iteration[j] == whole.iteration[i] &&
                      !memcmp(&t->loss[j], &whole.loss[i], sizeof(double)),
                  "row %zu", i);
    }
    free(expected);
    free(path);
}

/* A fused run that blows up keeps the same last finite iterate as single steps (the replay
 * that recovers it uses single steps). */
Test(fusion, a_diverging_fused_run_keeps_the_same_last_finite_theta)
{
    const size_t n = 301;
    float *theta[2];
    uint64_t kept[2];
    for (int fused = 0; fused < 2; ++fused) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.dim = n;
        o.lr = 1.5; /* theta <- -2 theta: overflows float after ~128 iterations */
        o.max_iters = 1000;
        o.init = CLOPT_INIT_CONST;
        o.init_value = 1.0;
        o.knobs.fuse = fused ? 8 : 1;
        struct clopt_solver *s = NULL;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        struct clopt_result r;
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_ERR_DIVERGED);
        kept[fused] = r.iterations;
        theta[fused] = malloc(n * sizeof(float));
        cr_assert_not_null(theta[fused]);
        cr_assert_eq(clopt_solver_read_theta(s, theta[fused], CLOPT_FLOAT, 0, n), CLOPT_OK);
        clopt_solver_destroy(s);
        for (size_t i = 0; i < n; ++i)
            cr_assert(isfinite(theta[fused][i]));
    }
    cr_expect_eq(kept[0], kept[1], "kept iteration %llu vs %llu", (unsigned long long)kept[0],
                 (unsigned long long)kept[1]);
    cr_expect(!memcmp(theta[0], theta[1], n * sizeof(float)));
    free(theta[0]);
    free(theta[1]);
}

/* Which knobs the solver refuses before building anything. */
Test(fusion, invalid_combinations_are_refused_with_a_clear_message)
{
    struct {
        const char *objective;
        double clip_norm;
        struct clopt_knobs knobs;
        const char *pattern;
    } bad[] = {
        {"rosenbrock", 0, {.fuse = 2}, "separable objective"},
        {"laplacian", 0, {.fuse = 8}, "separable objective"},
        {"sphere", 1.0, {.fuse = 2}, "options.clip_norm"},
        {"sphere", 0, {.fuse = 33}, "knobs.fuse=33 is out of range"},
        {"sphere", 0, {.groups_per_cu = 5000}, "knobs.groups_per_cu"},
        {"sphere", 0, {.fuse = 2, .elems_per_item = 16384, .loss_block = 1024}, "private memory"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.objective = bad[i].objective;
        o.dim = 100;
        o.clip_norm = bad[i].clip_norm;
        o.knobs = bad[i].knobs;
        struct clopt_solver *s = NULL;
        cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG, "case %zu", i);
        cr_expect_null(s);
        cr_expect(strstr(clopt_errmsg(ctx), bad[i].pattern), "case %zu: %s", i, clopt_errmsg(ctx));
    }
}
