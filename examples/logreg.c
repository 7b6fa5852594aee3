/* L2-regularised logistic regression with the gradient from this program's own OpenCL
 * kernels and the Adam steps from clopt (clopt_solver_create_external):
 *
 *   L(w) = (1/m) sum_i [log(1 + exp(x_i . w)) - y_i x_i . w] + (lambda/2) |w|^2
 *
 * on a synthetic dense data set made here (m samples, d features, the first feature 1).
 * The weights live in a buffer this program owns; clopt updates it in place.
 *
 *   logreg [OUTDIR]    with OUTDIR, writes X.npy (m x d), y.npy (m) and w.npy (d), float32,
 *                      for tests/test_logreg.c to check against a double reference. */
#include "clopt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M 10000
#define D 32
#define LAMBDA 1e-2
#define ITERS 400

static const char *source =
    "__kernel void margins(__global const float *X, __global const float *y,\n"
    "                      __global const float *w, __global float *r, __global float *terms)\n"
    "{\n"
    "    const size_t i = get_global_id(0);\n"
    "    if (i >= M) return;\n"
    "    float z = 0;\n"
    "    for (int j = 0; j < D; ++j) z += X[i * D + j] * w[j];\n"
    "    r[i] = (1 / (1 + exp(-z)) - y[i]) / M;\n"
    "    terms[i] = (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y[i] * z;\n"
    "}\n"
    "__kernel void gradient(__global const float *X, __global const float *r,\n"
    "                       __global const float *w, __global float *g)\n"
    "{\n"
    "    const size_t j = get_global_id(0);\n"
    "    if (j >= D) return;\n"
    "    float s = 0;\n"
    "    for (int i = 0; i < M; ++i) s += r[i] * X[i * D + j];\n"
    "    g[j] = s + LAMBDA * w[j];\n"
    "}\n"
    "__kernel void loss(__global const float *terms, __global const float *w,\n"
    "                   __global float *out)\n"
    "{\n"
    "    float s = 0, q = 0;\n"
    "    for (int i = 0; i < M; ++i) s += terms[i];\n"
    "    for (int j = 0; j < D; ++j) q += w[j] * w[j];\n"
    "    out[0] = s / M + 0.5f * LAMBDA * q;\n"
    "}\n";

struct model {
    cl_mem X, y, r, terms;
    cl_kernel margins, gradient, loss;
};

/* clopt calls this before every step: queue the gradient of theta (= w) into call->grad,
 * and the loss when asked, on clopt's queue; no waiting. */
static int logreg_gradient(void *user, cl_command_queue queue,
                           const struct clopt_gradient_call *call, cl_event *done)
{
    struct model *md = user;
    (void)done;
    const size_t m = (M + 63) / 64 * 64, d = D;
    cl_int err = clSetKernelArg(md->margins, 2, sizeof(cl_mem), &call->theta);
    err |= clSetKernelArg(md->gradient, 2, sizeof(cl_mem), &call->theta);
    err |= clSetKernelArg(md->gradient, 3, sizeof(cl_mem), &call->grad);
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(queue, md->margins, 1, NULL, &m, NULL, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(queue, md->gradient, 1, NULL, &d, NULL, 0, NULL, NULL);
    if (err == CL_SUCCESS && call->want_loss) {
        const size_t one = 1;
        err = clSetKernelArg(md->loss, 1, sizeof(cl_mem), &call->theta);
        err |= clSetKernelArg(md->loss, 2, sizeof(cl_mem), &call->loss);
        if (err == CL_SUCCESS)
            err = clEnqueueNDRangeKernel(queue, md->loss, 1, NULL, &one, &one, 0, NULL, NULL);
    }
    return err == CL_SUCCESS ? 0 : (int)err;
}

/* The data: x_i0 = 1, the other features uniform in [-1, 1); y_i ~ Bernoulli(sigma(x_i .
 * w_true)) with w_true_j = sin(j + 1). A fixed xorshift generator, so every run is the same. */
static float uniform(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((double)(*state >> 11) / 9007199254740992.0);
}

static void make_data(float *X, float *y)
{
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < M; ++i) {
        double z = 0;
        for (size_t j = 0; j < D; ++j) {
            X[i * D + j] = j == 0 ? 1.0f : 2.0f * uniform(&state) - 1.0f;
            z += X[i * D + j] * sin((double)j + 1);
        }
        y[i] = uniform(&state) < 1 / (1 + exp(-z)) ? 1.0f : 0.0f;
    }
}

static int save(const char *dir, const char *name, const float *data, size_t n_axes,
                const uint64_t *shape)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t count = 1;
    for (size_t k = 0; k < n_axes; ++k)
        count *= shape[k];
    int ok =
        f &&
        clopt_npy_write_header_shape(f, CLOPT_FLOAT, n_axes, shape, err, sizeof err) == CLOPT_OK &&
        fwrite(data, sizeof *data, count, f) == count;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "logreg: cannot write %s\n", path);
    return ok ? 0 : 1;
}

static cl_mem buffer(cl_context cl, size_t floats, const float *init)
{
    cl_int err;
    cl_mem b = clCreateBuffer(cl, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0),
                              floats * sizeof(float), (void *)(uintptr_t)init, &err);
    return err == CL_SUCCESS ? b : NULL;
}

int main(int argc, char **argv)
{
    float *X = malloc(sizeof(float) * M * D), *y = malloc(sizeof(float) * M), w[D] = {0};
    struct model md = {0};
    struct clopt_context *ctx = NULL;
    struct clopt_solver *solver = NULL;
    cl_program program = NULL;
    cl_mem theta = NULL;
    int rc = 1;
    if (!X || !y)
        goto cleanup;
    make_data(X, y);
    if (clopt_context_create(&ctx, NULL) != CLOPT_OK) {
        fprintf(stderr, "logreg: %s\n", clopt_errmsg(ctx));
        goto cleanup;
    }
    cl_context cl;
    cl_device_id device;
    clopt_context_cl(ctx, &cl, &device, NULL);
    cl_int err;
    program = clCreateProgramWithSource(cl, 1, &source, NULL, &err);
    char defines[96];
    snprintf(defines, sizeof defines, "-DM=%d -DD=%d -DLAMBDA=%.9gf", M, D, LAMBDA);
    if (err != CL_SUCCESS || clBuildProgram(program, 1, &device, defines, NULL, NULL)) {
        fprintf(stderr, "logreg: the gradient kernels did not build\n");
        goto cleanup;
    }
    md.margins = clCreateKernel(program, "margins", &err);
    md.gradient = clCreateKernel(program, "gradient", &err);
    md.loss = clCreateKernel(program, "loss", &err);
    md.X = buffer(cl, (size_t)M * D, X);
    md.y = buffer(cl, M, y);
    md.r = buffer(cl, M, NULL);
    md.terms = buffer(cl, M, NULL);
    theta = buffer(cl, D, w); /* our weights, w = 0 to start; clopt updates them in place */
    if (!md.margins || !md.gradient || !md.loss || !md.X || !md.y || !md.r || !md.terms || !theta) {
        fprintf(stderr, "logreg: OpenCL set-up failed\n");
        goto cleanup;
    }
    clSetKernelArg(md.margins, 0, sizeof(cl_mem), &md.X);
    clSetKernelArg(md.margins, 1, sizeof(cl_mem), &md.y);
    clSetKernelArg(md.margins, 3, sizeof(cl_mem), &md.r);
    clSetKernelArg(md.margins, 4, sizeof(cl_mem), &md.terms);
    clSetKernelArg(md.gradient, 0, sizeof(cl_mem), &md.X);
    clSetKernelArg(md.gradient, 1, sizeof(cl_mem), &md.r);
    clSetKernelArg(md.loss, 0, sizeof(cl_mem), &md.terms);

    struct clopt_options opts;
    clopt_options_init(&opts);
    opts.dim = D;
    opts.optimizer = "adam";
    opts.lr = 0.05;
    opts.schedule = "cosine:400";
    opts.max_iters = ITERS;
    opts.loss_every = 50;
    opts.init = CLOPT_INIT_NONE; /* start from the buffer's contents */
    struct clopt_external_options ext;
    clopt_external_options_init(&ext);
    ext.gradient = logreg_gradient;
    ext.gradient_user = &md;
    ext.has_loss = 1;
    ext.theta = theta;
    struct clopt_result result;
    int status = clopt_solver_create_external(&solver, ctx, &opts, &ext);
    if (status == CLOPT_OK)
        status = clopt_solver_run(solver, &result);
    if (status < 0) {
        fprintf(stderr, "logreg: %s\n", clopt_errmsg(ctx));
        goto cleanup;
    }
    cl_command_queue queue;
    clopt_context_cl(ctx, NULL, NULL, &queue);
    if (clEnqueueReadBuffer(queue, theta, CL_TRUE, 0, sizeof w, w, 0, NULL, NULL) != CL_SUCCESS)
        goto cleanup;
    printf("logreg: m=%d d=%d adam, %llu iterations: loss %.6f, |grad| %.3g, w[0..3] = %.4f %.4f "
           "%.4f %.4f\n",
           M, D, (unsigned long long)result.iterations, result.loss, result.grad_norm, w[0], w[1],
           w[2], w[3]);
    rc = 0;
    if (argc > 1) {
        const uint64_t xs[2] = {M, D}, ys[1] = {M}, ws[1] = {D};
        rc = save(argv[1], "X.npy", X, 2, xs) || save(argv[1], "y.npy", y, 1, ys) ||
             save(argv[1], "w.npy", w, 1, ws);
    }
cleanup:
    clopt_solver_destroy(solver);
    cl_mem mems[] = {md.X, md.y, md.r, md.terms, theta};
    for (size_t k = 0; k < sizeof mems / sizeof *mems; ++k)
        if (mems[k])
            clReleaseMemObject(mems[k]);
    cl_kernel kernels[] = {md.margins, md.gradient, md.loss};
    for (size_t k = 0; k < 3; ++k)
        if (kernels[k])
            clReleaseKernel(kernels[k]);
    if (program)
        clReleaseProgram(program);
    clopt_context_destroy(ctx);
    free(X);
    free(y);
    return rc;
}
