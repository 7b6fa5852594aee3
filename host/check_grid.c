/* The gradient check of a grid objective (clopt_check_gradient hands it over): samples on
 * the corners, edges and faces of the grid and next to them, then spread over the rest;
 * each sample's boxes of theta and data values go to kernels/check_grid.cl. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOOR_DOUBLE 1e-4
#define FLOOR_FLOAT 1e-2

/* The flat index of coordinates c on the grid. */
static size_t flat(const size_t *shape, size_t axes, const size_t *c)
{
    size_t i = 0;
    for (size_t k = 0; k < axes; ++k)
        i = i * shape[k] + c[k];
    return i;
}

/* All points when m >= n; otherwise every point whose coordinates are each one of 0, 1,
 * the middle, S-2, S-1 (corners, edges, faces, the points next to them and the centre), as
 * many as fit, then evenly spread flat indices. Duplicates are harmless. */
static void choose_grid_indices(uint64_t *index, size_t m, size_t n, const size_t *shape,
                                size_t axes)
{
    size_t k = 0;
    if (m >= n) {
        for (; k < n; ++k)
            index[k] = k;
        return;
    }
    size_t combos = 1;
    for (size_t a = 0; a < axes; ++a)
        combos *= 5;
    for (size_t t = 0; t < combos && k < m; ++t) {
        size_t c[3], rest = t;
        for (size_t a = axes; a-- > 0;) {
            const size_t pick = rest % 5, s = shape[a];
            rest /= 5;
            const size_t choice[5] = {0, s > 1 ? 1 : 0, s / 2, s > 1 ? s - 2 : 0, s - 1};
            c[a] = choice[pick];
        }
        index[k++] = flat(shape, axes, c);
    }
    const size_t left = m - k;
    for (size_t r = 0; r < left; ++r)
        index[k + r] =
            left > 1 ? (uint64_t)((double)r * (double)(n - 1) / (double)(left - 1)) : n / 2;
}

/* theta's and the data's values on the box of radius 2R around sample j (zero outside the
 * grid), C order, into boxes[0 .. 2 box). */
static void fill_boxes(const struct clopt_check_options *o, const size_t *shape, size_t axes,
                       size_t radius, uint64_t j, int dbl, void *boxes, size_t box)
{
    size_t c[3], rest = (size_t)j;
    for (size_t a = axes; a-- > 0;) {
        c[a] = rest % shape[a];
        rest /= shape[a];
    }
    const size_t side = 4 * radius + 1;
    for (size_t m = 0; m < box; ++m) {
        size_t q[3], digits = m;
        int inside = 1;
        for (size_t a = axes; a-- > 0;) {
            const long at = (long)c[a] + (long)(digits % side) - 2 * (long)radius;
            digits /= side;
            inside = inside && at >= 0 && at < (long)shape[a];
            q[a] = inside ? (size_t)at : 0;
        }
        const size_t i = inside ? flat(shape, axes, q) : 0;
        const double theta = inside ? clopt_check_point(o, i, 0) : 0;
        const double data = inside ? clopt_check_point(o, i, 2) : 0;
        if (dbl) {
            ((double *)boxes)[m] = theta;
            ((double *)boxes)[box + m] = data;
        } else {
            ((float *)boxes)[m] = (float)theta;
            ((float *)boxes)[box + m] = (float)data;
        }
    }
}

/* Builds and runs clopt_check_grid on the m samples; out gets 3 values per sample. */
static int run_check_kernel(struct clopt_context *ctx, const struct clopt_check_options *opts,
                            const struct clopt_objective_type *obj, const char *options,
                            const void *boxes, size_t boxes_bytes, const uint64_t *index, size_t m,
                            void *out, size_t elem)
{
    cl_program program = NULL;
    const struct clopt_program_part parts[] = {
        {"common.cl", 0},
        {obj ? obj->file : opts->objective, obj == NULL},
        {"check_grid.cl", 0},
    };
    int status = clopt_build_program(ctx, parts, sizeof parts / sizeof *parts, options, &program);
    if (status != CLOPT_OK)
        return status;
    status = clopt_check_launch(ctx, program, "clopt_check_grid", boxes, boxes_bytes, index, m,
                                NULL, 0, out, elem);
    clReleaseProgram(program);
    return status;
}

int clopt_check_grid(struct clopt_context *ctx, const struct clopt_check_options *opts,
                     struct clopt_check_result *res, const struct clopt_objective_type *obj,
                     size_t radius)
{
    size_t shape[3] = {opts->dim, 1, 1}, axes = opts->n_axes ? opts->n_axes : 1, n = 1;
    if (opts->n_axes > 3)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "check_options.n_axes %zu: grid objectives have 1 to 3 axes",
                          opts->n_axes);
    for (size_t k = 0; k < opts->n_axes; ++k)
        shape[k] = opts->shape[k];
    for (size_t k = 0; k < axes; ++k)
        n = shape[k] && n <= SIZE_MAX / shape[k] ? n * shape[k] : 0;
    if (n != opts->dim)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "check_options.shape does not hold check_options.dim = %zu points: "
                          "make the product of the shape equal dim",
                          opts->dim);
    struct clopt_options run;
    clopt_options_init(&run);
    run.params = opts->params;
    run.n_params = opts->n_params;
    char *defines = NULL;
    int status = clopt_param_defines(ctx, obj, &run, &defines);
    if (status != CLOPT_OK)
        return status;
    const int dbl = ctx->info.has_fp64;
    const size_t elem = dbl ? sizeof(double) : sizeof(float);
    const size_t m = opts->samples < opts->dim ? opts->samples : opts->dim;
    size_t box = 1;
    for (size_t k = 0; k < axes; ++k)
        box *= 4 * radius + 1;
    res->precision = dbl ? CLOPT_DOUBLE : CLOPT_FLOAT;
    res->floor = dbl ? FLOOR_DOUBLE : FLOOR_FLOAT;
    char grid[160];
    int used = snprintf(grid, sizeof grid, " -DCLOPT_GRID_AXES=%zu", axes);
    for (size_t k = 0; k < axes && used > 0 && (size_t)used < sizeof grid; ++k)
        used += snprintf(grid + used, sizeof grid - (size_t)used, " -DCLOPT_GRID_S%zu=%zuUL", k,
                         shape[k]);
    char *options = clopt_format("-cl-std=CL1.2 -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d "
                                 "-DCLOPT_CHECK_STEP=%s -DCLOPT_N=%zuUL%s%s",
                                 dbl, dbl, dbl ? "0x1p-13" : "0x1p-6", opts->dim, grid, defines);
    uint64_t *index = malloc(m * sizeof *index);
    void *boxes = malloc(m * 2 * box * elem), *out = malloc(m * 3 * elem);
    if (!options || !index || !boxes || !out) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for %zu samples", m);
        goto cleanup;
    }
    choose_grid_indices(index, m, opts->dim, shape, axes);
    for (size_t s = 0; s < m; ++s)
        fill_boxes(opts, shape, axes, radius, index[s], dbl, (char *)boxes + s * 2 * box * elem,
                   box);
    status =
        run_check_kernel(ctx, opts, obj, options, boxes, m * 2 * box * elem, index, m, out, elem);
    if (status == CLOPT_OK)
        clopt_check_worst(res, out, index, m, dbl);
cleanup:
    free(defines);
    free(options);
    free(index);
    free(boxes);
    free(out);
    return status;
}
