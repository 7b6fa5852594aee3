/* Non-temporal stores of theta in the ping-pong sweeps of stencil and grid objectives
 * (kernels/step.cl's CLOPT_NT_STORE, chosen by host/solver/build.c; CLOPT_NT_STORE=on|off in
 * the environment forces it): the vector stores are aligned (element 0 of a shard sits at
 * s->lead, a multiple of 16 elements), so they run without faulting for any radius and
 * vector width, and they store the bits of the plain stores, in one shard and in many. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CONTEXT_TEMP_DIR_SUITE(ntstore);

struct nt_case {
    const char *objective;
    const char *optimizer;
    size_t n_axes, shape[3], n;
    size_t vector_width;
    int dbl;
    size_t halo; /* the objective's halo in elements: R, or R times the sum of the strides */
};

/* theta after a few iterations and the last loss, with non-temporal stores on or off, in
 * one shard or in shards of `shard_bytes`; the data vector (poisson's source) from `data`. */
static double *run_case(const struct nt_case *c, const char *nt, size_t shard_bytes,
                        const char *data, double *loss, size_t *shards)
{
    cr_assert_eq(setenv("CLOPT_NT_STORE", nt, 1), 0);
    char *cache = path_in(dir, "programs");
    cr_assert_eq(clopt_context_set_program_cache(ctx, cache), CLOPT_OK, "%s", clopt_errmsg(ctx));
    free(cache);
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = c->objective;
    o.optimizer = c->optimizer;
    o.dim = c->n;
    o.n_axes = c->n_axes;
    for (size_t k = 0; k < c->n_axes; ++k)
        o.shape[k] = c->shape[k];
    o.precision = c->dbl ? CLOPT_DOUBLE : CLOPT_FLOAT;
    o.init = CLOPT_INIT_UNIFORM;
    o.init_value = 0.5;
    o.lr = 1e-3;
    o.max_iters = 5;
    o.max_shard_bytes = shard_bytes;
    /* Tiles of 64 elements: whole chunks (the vector sweeps) away from the ends of theta. */
    o.knobs.work_group = 4;
    o.knobs.elems_per_item = 16;
    o.knobs.vector_width = c->vector_width;
    struct clopt_param param = {"source", data};
    if (data) {
        o.params = &param;
        o.n_params = 1;
    }
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result res;
    cr_assert(clopt_solver_run(s, &res) >= 0, "run: %s", clopt_errmsg(ctx));
    const size_t elem = c->dbl ? sizeof(double) : sizeof(float);
    double *theta = malloc(c->n * elem);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, o.precision, 0, c->n), CLOPT_OK, "%s",
                 clopt_errmsg(ctx));
    *loss = res.loss;
    *shards = res.shards;
    clopt_solver_destroy(s);
    return theta;
}

/* One shard with plain stores against several with non-temporal ones: the same bits. */
static void check_case(const struct nt_case *c, const char *data)
{
    if (test_skip_double_part(c->dbl))
        return;
    const size_t elem = c->dbl ? sizeof(double) : sizeof(float);
    double loss_off, loss_on;
    size_t shards_off, shards_on;
    double *off = run_case(c, "off", 0, data, &loss_off, &shards_off);
    /* Three tiles of 64 elements per shard (options.max_shard_bytes counts the halos too). */
    double *on = run_case(c, "on", (3 * 64 + 2 * c->halo) * elem, data, &loss_on, &shards_on);
    cr_assert_eq(shards_off, 1);
    cr_assert_gt(shards_on, 1, "%s: %zu shards", c->objective, shards_on);
    cr_assert(memcmp(&loss_off, &loss_on, sizeof loss_on) == 0, "%s vw=%zu: loss %.17g vs %.17g",
              c->objective, c->vector_width, loss_off, loss_on);
    cr_assert(memcmp(off, on, c->n * elem) == 0, "%s vw=%zu %s: theta differs", c->objective,
              c->vector_width, c->dbl ? "double" : "float");
    free(off);
    free(on);
}

Test(ntstore, stencils_same_bits)
{
    /* Radius 1: without the padded lead, element 0 sat at position 1 and the first
     * non-temporal store faulted (the test crashed). Float and double, 4 and 16 lanes (16
     * doubles are four 256-bit stores on AVX2). */
    const struct nt_case cases[] = {
        {"rosenbrock", "gd", 0, {0}, 1001, 4, 0, 1},
        {"laplacian", "adam", 0, {0}, 999, 16, 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; ++k)
        check_case(&cases[k], NULL);
}

Test(ntstore, grids_same_bits)
{
    /* 37 x 41: a halo of 42 elements; shards start mid-row. */
    const size_t n = 37 * 41;
    double *source = malloc(n * sizeof *source);
    cr_assert_not_null(source);
    for (size_t i = 0; i < n; ++i)
        source[i] = (double)(i % 13) / 13.0 - 0.4;
    char *path = path_in(dir, "source.npy");
    const uint64_t shape[2] = {37, 41};
    write_npy_shape(path, source, 2, shape, 1);
    const struct nt_case cases[] = {{"poisson", "momentum", 2, {37, 41}, n, 8, 0, 42}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; ++k)
        check_case(&cases[k], path);
    free(path);
    free(source);
}
