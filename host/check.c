/* Gradient check: an objective's in-kernel gradient against finite differences of its own
 * loss terms, at random points, in double where the device has it. */
#include "abi.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Differences below this share of the loss terms' size are rounding, not a wrong gradient. */
#define FLOOR_DOUBLE 1e-4
#define FLOOR_FLOAT 1e-2

static void check_defaults(struct clopt_check_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->objective = "sphere";
    opts->dim = 1000;
    opts->samples = 1000;
    opts->init = CLOPT_INIT_NORMAL;
    opts->init_value = 1.0;
}

void clopt_check_options_init_size(struct clopt_check_options *opts, size_t size)
{
    struct clopt_check_options d;
    check_defaults(&d);
    clopt_abi_init(&d, sizeof d, opts, size);
}

/* Every version of struct clopt_check_options, oldest first. */
static const struct clopt_abi_version check_versions[] = {
    /* 1: up to seed */
    {CLOPT_ABI_OLD_SIZE(struct clopt_check_options, n_axes),
     offsetof(struct clopt_check_options, n_axes)},
    /* 2: n_axes, shape (grid objectives) */
    {sizeof(struct clopt_check_options), sizeof(struct clopt_check_options)},
};

int clopt_check_options_adopt(const struct clopt_check_options *in, struct clopt_check_options *out,
                              char *err, size_t errlen)
{
    static const struct clopt_abi_layout layout = {"check_options", "clopt_check_options_init",
                                                   check_versions,
                                                   sizeof check_versions / sizeof *check_versions};
    check_defaults(out);
    return clopt_abi_adopt(&layout, in, out, err, errlen);
}

/* A counter-based hash (SplitMix64's finaliser): the point at element i does not depend
 * on which elements are sampled. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* (0, 1] from 53 random bits. */
static double unit(uint64_t seed, uint64_t i, uint64_t stream)
{
    const uint64_t r = mix(mix(seed ^ (stream * 0xD1B54A32D192ED03ull)) + i);
    return (double)((r >> 11) + 1) * 0x1p-53;
}

double clopt_check_point(const struct clopt_check_options *o, uint64_t i, uint64_t stream)
{
    const double two_pi = 6.283185307179586476925;
    switch (o->init) {
    case CLOPT_INIT_CONST:
        return o->init_value;
    case CLOPT_INIT_UNIFORM:
        return o->init_value * (2 * unit(o->seed, i, stream) - 1);
    default:
        return o->init_value * sqrt(-2 * log(unit(o->seed, i, stream))) *
               cos(two_pi * unit(o->seed, i, stream + 1));
    }
}

/* Which elements to check: all when samples >= n; otherwise both ends (where stencils
 * handle their boundaries) and evenly spaced ones between. */
static void choose_indices(uint64_t *index, size_t m, size_t n, size_t radius)
{
    size_t k = 0;
    if (m >= n) {
        for (; k < n; ++k)
            index[k] = k;
        return;
    }
    for (size_t i = 0; i <= radius && i < n && k < m; ++i)
        index[k++] = i;
    for (size_t i = 0; i <= radius && i < n && k < m; ++i)
        index[k++] = n - 1 - i;
    const size_t rest = m - k;
    for (size_t r = 0; r < rest; ++r)
        index[k + r] =
            rest > 1 ? (size_t)((double)r * (double)(n - 1) / (double)(rest - 1)) : n / 2;
}

/* The sample windows of a 1-D objective: 4R + 1 points centred on each sample (zeros past
 * the ends) and the sample's data value last. */
static void fill_windows(const struct clopt_check_options *opts, const uint64_t *index, size_t m,
                         size_t radius, int dbl, void *windows)
{
    const size_t width = 4 * radius + 2;
    for (size_t s = 0; s < m; ++s)
        for (size_t k = 0; k < width; ++k) {
            double v;
            if (k + 1 == width) {
                v = clopt_check_point(opts, index[s], 2); /* the data value, e.g. a target */
            } else {
                const int64_t at = (int64_t)index[s] + (int64_t)k - 2 * (int64_t)radius;
                v = at >= 0 && (uint64_t)at < opts->dim ? clopt_check_point(opts, (uint64_t)at, 0)
                                                        : 0;
            }
            if (dbl)
                ((double *)windows)[s * width + k] = v;
            else
                ((float *)windows)[s * width + k] = (float)v;
        }
}

int clopt_check_launch(struct clopt_context *ctx, cl_program program, const char *name,
                       const void *in, size_t in_bytes, const uint64_t *index, size_t m,
                       const cl_ulong *extra, size_t n_extra, void *out, size_t elem)
{
    char call[96];
    cl_int err;
    cl_kernel kernel = clCreateKernel(program, name, &err);
    if (err != CL_SUCCESS) {
        snprintf(call, sizeof call, "clCreateKernel(%s)", name);
        return clopt_fail_cl(ctx, err, call);
    }
    cl_mem in_buf = NULL, index_buf = NULL, out_buf = NULL;
    const char *what = "clCreateBuffer";
    in_buf = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, in_bytes,
                            (void *)in, &err);
    if (err == CL_SUCCESS)
        index_buf = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                   m * sizeof *index, (void *)index, &err);
    if (err == CL_SUCCESS)
        out_buf = clCreateBuffer(ctx->context, CL_MEM_WRITE_ONLY, m * 3 * elem, NULL, &err);
    /* (input, sample indexes, their count, the kernel's own values, output) */
    const cl_ulong count = m;
    cl_uint arg = 0;
    if (err == CL_SUCCESS) {
        what = "clSetKernelArg";
        err = clSetKernelArg(kernel, arg++, sizeof(cl_mem), &in_buf);
    }
    if (err == CL_SUCCESS)
        err = clSetKernelArg(kernel, arg++, sizeof(cl_mem), &index_buf);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(kernel, arg++, sizeof count, &count);
    for (size_t k = 0; k < n_extra && err == CL_SUCCESS; ++k)
        err = clSetKernelArg(kernel, arg++, sizeof extra[k], &extra[k]);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(kernel, arg++, sizeof(cl_mem), &out_buf);
    const size_t global = m;
    if (err == CL_SUCCESS) {
        what = "clEnqueueNDRangeKernel";
        err = clEnqueueNDRangeKernel(ctx->queue, kernel, 1, NULL, &global, NULL, 0, NULL, NULL);
    }
    if (err == CL_SUCCESS) {
        what = "clEnqueueReadBuffer";
        err =
            clEnqueueReadBuffer(ctx->queue, out_buf, CL_TRUE, 0, m * 3 * elem, out, 0, NULL, NULL);
    }
    int status = CLOPT_OK;
    if (err != CL_SUCCESS) {
        snprintf(call, sizeof call, "%s(%s)", what, name);
        status = clopt_fail_cl(ctx, err, call);
    }
    clReleaseKernel(kernel);
    cl_mem buffers[] = {in_buf, index_buf, out_buf};
    for (size_t k = 0; k < 3; ++k)
        if (buffers[k])
            clReleaseMemObject(buffers[k]);
    return status;
}

void clopt_check_worst(struct clopt_check_result *res, const void *out, const uint64_t *index,
                       size_t m, int dbl)
{
    res->checked = m;
    res->worst_error = -1;
    for (size_t s = 0; s < m; ++s) {
        double v[3];
        for (size_t k = 0; k < 3; ++k)
            v[k] = dbl ? ((const double *)out)[3 * s + k] : ((const float *)out)[3 * s + k];
        const double scale = fmax(fmax(fabs(v[0]), fabs(v[1])), res->floor * (1 + fabs(v[2])));
        double error = fabs(v[0] - v[1]) / scale;
        if (!isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]) || isnan(error))
            error = INFINITY;
        if (error > res->worst_error) {
            res->worst_error = error;
            res->worst_index = index[s];
            res->gradient = v[0];
            res->finite_difference = v[1];
        }
    }
}

/* The sample count, dimension, points and parameters a check can use. */
static int check_sizes(struct clopt_context *ctx, const struct clopt_check_options *opts)
{
    if (opts->dim == 0 || opts->samples == 0 || opts->samples > ((size_t)1 << 24))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.dim must be at least 1 and options.samples from 1 to 2^24");
    if (opts->dim > ((size_t)1 << 62))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.dim %zu is too large", opts->dim);
    if (!isfinite(opts->init_value) ||
        (opts->init != CLOPT_INIT_NORMAL && opts->init != CLOPT_INIT_UNIFORM &&
         opts->init != CLOPT_INIT_CONST))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "the check's points must be normal, uniform or const with a finite "
                          "scale");
    if (opts->n_params && !opts->params)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "n_params > 0 but params is NULL");
    return CLOPT_OK;
}

/* The check of a separable or 1-D stencil objective of radius R (obj NULL: the user's file
 * opts->objective): windows of 4R + 1 points around each sample. */
static int check_1d(struct clopt_context *ctx, const struct clopt_check_options *opts,
                    struct clopt_check_result *res, const struct clopt_objective_type *obj,
                    size_t radius)
{
    const int user = obj == NULL;
    const char *name = opts->objective;
    /* The parameters as a run would get them; a data file parameter is not needed, since
     * the data values are drawn at random like theta. */
    struct clopt_options run;
    clopt_options_init(&run);
    run.params = opts->params;
    run.n_params = opts->n_params;
    char *defines = NULL, *options = NULL;
    int status = clopt_param_defines(ctx, obj, &run, &defines);
    if (status != CLOPT_OK)
        return status;

    const int dbl = ctx->info.has_fp64;
    const size_t elem = dbl ? sizeof(double) : sizeof(float);
    const size_t m = opts->samples < opts->dim ? opts->samples : opts->dim;
    const size_t width = 4 * radius + 2;
    cl_program program = NULL;
    uint64_t *index = NULL;
    void *windows = NULL, *out = NULL;
    res->precision = dbl ? CLOPT_DOUBLE : CLOPT_FLOAT;
    res->floor = dbl ? FLOOR_DOUBLE : FLOOR_FLOAT;

    char dim_define[48] = "";
    if (user || obj->uses_dim)
        snprintf(dim_define, sizeof dim_define, " -DCLOPT_N=%zuUL", opts->dim);
    options = clopt_format("-cl-std=CL1.2 -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d "
                           "-DCLOPT_CHECK_STEP=%s -DCLOPT_HOST_HALO=%zu%s%s",
                           dbl, dbl, dbl ? "0x1p-13" : "0x1p-6", radius, dim_define, defines);
    index = malloc(m * sizeof *index);
    windows = malloc(m * width * elem);
    out = malloc(m * 3 * elem);
    if (!options || !index || !windows || !out) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for %zu samples", m);
        goto cleanup;
    }
    const struct clopt_program_part parts[] = {
        {"common.cl", 0},
        {user ? name : obj->file, user},
        {"check.cl", 0},
    };
    status = clopt_build_program(ctx, parts, sizeof parts / sizeof *parts, options, &program);
    if (status != CLOPT_OK)
        goto cleanup;

    choose_indices(index, m, opts->dim, radius);
    fill_windows(opts, index, m, radius, dbl, windows);
    const cl_ulong n_total = opts->dim;
    status = clopt_check_launch(ctx, program, "clopt_check", windows, m * width * elem, index, m,
                                &n_total, 1, out, elem);
    if (status == CLOPT_OK)
        clopt_check_worst(res, out, index, m, dbl);
cleanup:
    if (program)
        clReleaseProgram(program);
    free(defines);
    free(options);
    free(index);
    free(windows);
    free(out);
    return status;
}

int clopt_check_gradient(struct clopt_context *ctx, const struct clopt_check_options *opts,
                         struct clopt_check_result *res)
{
    memset(res, 0, sizeof *res);
    if (!ctx || !opts)
        return CLOPT_ERR_INVALID_ARG;
    struct clopt_check_options adopted;
    char abi_err[512];
    if (clopt_check_options_adopt(opts, &adopted, abi_err, sizeof abi_err) != CLOPT_OK)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "%s", abi_err);
    opts = &adopted;
    const char *name = opts->objective;
    const size_t len = name ? strlen(name) : 0;
    const int user = len > 3 && !strcmp(name + len - 3, ".cl");
    const struct clopt_objective_type *obj = user || !name ? NULL : clopt_find_objective(name);
    if (!user && !obj)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown objective '%s': use a built-in (see clopt objectives) or a file "
                          "ending in .cl",
                          name ? name : "");
    int status = check_sizes(ctx, opts);
    if (status != CLOPT_OK)
        return status;

    size_t radius = 0;
    int grid = 0;
    if (user)
        status = clopt_inspect_user_objective(ctx, name, &radius, &grid);
    else
        radius = obj->stencil_radius, grid = obj->grid;
    if (status != CLOPT_OK)
        return status;
    if (grid)
        return clopt_check_grid(ctx, opts, res, obj, radius);
    return check_1d(ctx, opts, res, obj, radius);
}
