/* Paths the other suites never take: a user stencil of radius 2, the GPU default knobs
 * (strided layout, work-group partials, a reduction group > 1) on several shards with many
 * partials, and element indices past 2^32. */
#include "testutil.h"

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CONTEXT_TEMP_DIR_SUITE(paths);

/* L = sum_{i+2<n} (theta_{i+2} - theta_i)^2 / 2 + A sum theta_i^2 / 2: each term reaches
 * two elements away, so a shard needs two halo elements on each side. */
#define STENCIL2_A 0.1
static const char stencil2_source[] =
    "#define CLOPT_STENCIL_RADIUS 2\n"
    "real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)\n"
    "{\n"
    "    const real x = w[2];\n"
    "    real f = (real)0.05 * x * x, grad = (real)0.1 * x;\n"
    "    if (i + 2 < n) {\n"
    "        const real d = w[4] - x;\n"
    "        f += d * d / 2;\n"
    "        grad -= d;\n"
    "    }\n"
    "    if (i >= 2)\n"
    "        grad += x - w[0];\n"
    "    *g = grad;\n"
    "    return f;\n"
    "}\n";

static double stencil2_reference(const double *x, size_t n, double *g)
{
    double loss = 0;
    for (size_t i = 0; i < n; ++i) {
        double f = STENCIL2_A / 2 * x[i] * x[i], grad = STENCIL2_A * x[i];
        if (i + 2 < n) {
            f += (x[i + 2] - x[i]) * (x[i + 2] - x[i]) / 2;
            grad -= x[i + 2] - x[i];
        }
        if (i >= 2)
            grad += x[i] - x[i - 2];
        loss += f;
        g[i] = grad;
    }
    return loss;
}

/* Runs gd on the radius-2 file and returns the final theta; the last loss in *loss. */
static double *run_stencil2(const char *path, const double *theta0, size_t n, uint64_t iters,
                            size_t max_shard_bytes, double *loss, size_t *shards)
{
    SKIP_WITHOUT_FP64();
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = path;
    o.dim = n;
    o.precision = CLOPT_DOUBLE;
    o.init = CLOPT_INIT_NONE;
    o.lr = 0.1;
    o.max_iters = iters;
    o.max_shard_bytes = max_shard_bytes;
    /* Tiles of 32 elements (256 bytes), so that 1 KiB shards hold some. */
    o.knobs.work_group = 1;
    o.knobs.elems_per_item = 32;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_write_theta(s, theta0, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    struct clopt_result r;
    cr_assert_geq(clopt_solver_run(s, &r), 0, "%s", clopt_errmsg(ctx));
    double *theta = malloc(n * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    *loss = r.loss;
    *shards = r.shards;
    clopt_solver_destroy(s);
    return theta;
}

Test(paths, stencil_of_radius_2_matches_reference_on_one_shard_and_many)
{
    char *path = path_in(dir, "stencil2.cl");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(stencil2_source, f);
    fclose(f);
    const size_t sizes[] = {5, 4099};
    const uint64_t iters = 7;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; ++k) {
        const size_t n = sizes[k];
        double loss1, loss_many;
        size_t shards1, shards_many;
        double *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g);
        cr_assert(x && g);
        for (size_t i = 0; i < n; ++i)
            x[i] = sin(0.7 * (double)i) + 0.25 * cos(0.013 * (double)(i * i % 1000));
        double *one = run_stencil2(path, x, n, iters, 0, &loss1, &shards1);
        /* Shards of 1 KiB: 128 doubles, so n = 4099 takes some 33 and every shard border
         * (and a last shard shorter than the halo) is crossed. */
        double *many = run_stencil2(path, x, n, iters, 1024, &loss_many, &shards_many);
        cr_expect_eq(shards1, 1);
        if (n > 128)
            cr_expect_gt(shards_many, 2, "n = %zu: %zu shards", n, shards_many);
        for (size_t i = 0; i < n; ++i)
            cr_assert(!memcmp(&one[i], &many[i], sizeof one[i]),
                      "n = %zu: theta[%zu] %.17g on one shard, %.17g on %zu", n, i, one[i], many[i],
                      shards_many);
        cr_expect_eq(loss1, loss_many);
        /* The same iterations in double on the CPU. */
        for (uint64_t t = 0; t < iters; ++t) {
            stencil2_reference(x, n, g);
            for (size_t i = 0; i < n; ++i)
                x[i] -= 0.1 * g[i];
        }
        const double final_loss = stencil2_reference(x, n, g);
        /* A handful of roundings per element and step: 1e-14 relative to the terms. */
        for (size_t i = 0; i < n; ++i)
            cr_assert(close_enough(one[i], x[i], 1e-13, 1e-15),
                      "n = %zu: theta[%zu] %.17g, CPU %.17g", n, i, one[i], x[i]);
        cr_expect(close_enough(loss1, final_loss, 1e-12, 1e-15), "n = %zu: loss %.17g, CPU %.17g",
                  n, loss1, final_loss);
        free(x);
        free(g);
        free(one);
        free(many);
    }
    free(path);
}

/* The GPU defaults (strided layout, one partial per work-group from a local tree, a
 * reduction group of 64) on several shards with many partials (196 work-groups): theta is
 * bit for bit that of the CPU schemes on the same tiles (each element's update does not depend on
 * where it sits), and the loss, summed in another order, is within float rounding of theirs. */
static double *run_knobs_sharded(const char *objective, size_t n, const struct clopt_knobs *knobs,
                                 size_t shard_bytes, double *loss, size_t *shards);

static double *run_knobs(const char *objective, size_t n, const struct clopt_knobs *knobs,
                         double *loss, size_t *shards)
{
    return run_knobs_sharded(objective, n, knobs, 128 * 1024, loss, shards);
}

static double *run_knobs_sharded(const char *objective, size_t n, const struct clopt_knobs *knobs,
                                 size_t shard_bytes, double *loss, size_t *shards)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.objective = objective;
    o.dim = n;
    o.optimizer = "adam";
    o.lr = 0.01;
    o.seed = 9;
    o.max_iters = 5;
    o.loss_every = 2;
    o.max_shard_bytes = shard_bytes; /* 128 KiB: 32768 floats, 4 shards */
    o.knobs = *knobs;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_geq(clopt_solver_run(s, &r), 0, "%s", clopt_errmsg(ctx));
    double *theta = malloc(n * sizeof *theta);
    cr_assert_not_null(theta);
    cr_assert_eq(clopt_solver_read_theta(s, theta, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    *loss = r.loss;
    *shards = r.shards;
    clopt_solver_destroy(s);
    return theta;
}

Test(paths, gpu_default_knobs_on_several_shards_match_the_cpu_defaults, .timeout = 600)
{
    const char *objectives[] = {"sphere", "rosenbrock"};
    const size_t n = 100003;
    struct clopt_knobs gpu;
    memset(&gpu, 0, sizeof gpu);
    gpu.work_group = 64;
    gpu.elems_per_item = 8;
    gpu.vector_width = 4;
    gpu.layout = 2;
    gpu.group_partials = 2;
    gpu.reduce_group = 64;
    /* The CPU schemes on the same tiles: contiguous chunks, a partial per work-item. */
    struct clopt_knobs cpu = gpu;
    cpu.layout = 1;
    cpu.group_partials = 1;
    cpu.reduce_group = 1;
    for (size_t k = 0; k < sizeof objectives / sizeof *objectives; ++k) {
        double loss_cpu, loss_gpu;
        size_t shards_cpu, shards_gpu;
        double *a = run_knobs(objectives[k], n, &cpu, &loss_cpu, &shards_cpu);
        double *b = run_knobs(objectives[k], n, &gpu, &loss_gpu, &shards_gpu);
        cr_expect_geq(shards_gpu, 4, "%s: %zu shards", objectives[k], shards_gpu);
        for (size_t i = 0; i < n; ++i)
            cr_assert(!memcmp(&a[i], &b[i], sizeof a[i]),
                      "%s: theta[%zu] %.9g with the CPU defaults, %.9g with the GPU knobs",
                      objectives[k], i, a[i], b[i]);
        /* Float terms summed in blocks of 16 before the double sums: the blocks differ
         * with the layout, each rounding to about 6e-8 relative. */
        cr_expect(close_enough(loss_gpu, loss_cpu, 1e-6, 0), "%s: loss %.17g, CPU defaults %.17g",
                  objectives[k], loss_gpu, loss_cpu);
        free(a);
        free(b);
    }
}

/* The two-stage reduction (knobs.reduce_group > 1 with partials enough: 25000 partials in
 * 782 groups of 4 items, then one group): its loss has the same bits on one shard and on
 * four, and agrees with the one-item, one-group sum in slot order to rounding. */
Test(paths, two_stage_reduction_is_the_same_for_any_shard_count, .timeout = 600)
{
    struct clopt_knobs k;
    memset(&k, 0, sizeof k);
    k.work_group = 4;
    k.elems_per_item = 4;
    k.vector_width = 4;
    k.layout = 2;
    k.group_partials = 1;
    k.reduce_group = 4;
    const size_t n = 100003;
    double loss_one, loss_four, loss_serial;
    size_t shards_one, shards_four, shards;
    double *a = run_knobs_sharded("sphere", n, &k, 1 << 20, &loss_one, &shards_one);
    double *b = run_knobs_sharded("sphere", n, &k, 128 * 1024, &loss_four, &shards_four);
    k.reduce_group = 1;
    double *c = run_knobs_sharded("sphere", n, &k, 1 << 20, &loss_serial, &shards);
    cr_expect_eq(shards_one, 1);
    cr_expect_geq(shards_four, 4);
    cr_expect(!memcmp(&loss_one, &loss_four, sizeof loss_one),
              "loss %.17g on one shard, %.17g on %zu", loss_one, loss_four, shards_four);
    /* Double sums of 25000 partials in another order: a few ulps apart at most. */
    cr_expect(close_enough(loss_one, loss_serial, 1e-13, 0),
              "loss %.17g in two stages, %.17g in one", loss_one, loss_serial);
    cr_expect(!memcmp(a, b, n * sizeof *a) && !memcmp(a, c, n * sizeof *a),
              "theta does not depend on the reduction");
    free(a);
    free(b);
    free(c);
}

/* Launches cut into chunks (issue 17, GPU item 1): CLOPT_MAX_LAUNCH_ITEMS forces chunks of
 * 512 work-items where the library otherwise launches up to 2^30 at once, so theta_0 (the
 * init kernel, normal draws), the zeroed state and partials, the step, loss and fused
 * kernels all run in many launches placed by global offsets and start arguments. theta
 * and the loss must keep their bits. */
static double *run_launch_cap(const struct clopt_knobs *knobs, const char *cap, double *loss)
{
    cr_assert_eq(
        cap ? setenv("CLOPT_MAX_LAUNCH_ITEMS", cap, 1) : unsetenv("CLOPT_MAX_LAUNCH_ITEMS"), 0);
    size_t shards = 0;
    double *theta = run_knobs("sphere", 100003, knobs, loss, &shards);
    cr_expect_geq(shards, 4, "%zu shards", shards);
    return theta;
}

Test(paths, launches_in_chunks_keep_the_bits, .timeout = 600)
{
    struct clopt_knobs variants[3];
    memset(variants, 0, sizeof variants);
    /* Contiguous chunks, a partial per work-item: 16 x 8 elements per group. */
    variants[0].work_group = 16;
    variants[0].elems_per_item = 8;
    variants[0].vector_width = 4;
    variants[0].layout = 1;
    variants[0].group_partials = 1;
    /* The GPU schemes, and fused steps. */
    variants[1].work_group = 64;
    variants[1].elems_per_item = 4;
    variants[1].vector_width = 4;
    variants[1].layout = 2;
    variants[1].group_partials = 2;
    variants[1].reduce_group = 64;
    variants[2] = variants[0];
    variants[2].fuse = 4;
    for (size_t v = 0; v < sizeof variants / sizeof *variants; ++v) {
        double loss_one, loss_chunks;
        double *a = run_launch_cap(&variants[v], NULL, &loss_one);
        double *b = run_launch_cap(&variants[v], "512", &loss_chunks);
        for (size_t i = 0; i < 100003; ++i)
            cr_assert(!memcmp(&a[i], &b[i], sizeof a[i]),
                      "variant %zu: theta[%zu] %.9g in whole launches, %.9g in chunks", v, i, a[i],
                      b[i]);
        cr_assert(!memcmp(&loss_one, &loss_chunks, sizeof loss_one),
                  "variant %zu: loss %.17g in whole launches, %.17g in chunks", v, loss_one,
                  loss_chunks);
        free(a);
        free(b);
    }
}

/* Element indices past 2^31 and 2^32 without 8 GB of theta: kernels/init.cl built on its
 * own (float and double) and launched on a window of WINDOW elements whose first global
 * index is `offset`, as the shard at that offset launches it; each value must be the host
 * Philox reference's for that global index (a 32-bit index would wrap, or reuse the
 * counters of element offset mod 2^32). */
#define WINDOW 64
static void init_window(cl_context cl, cl_device_id device, cl_command_queue queue,
                        const char *source, int dbl, uint64_t offset, double *out)
{
    const char *texts[] = {source};
    cl_int err;
    cl_program program = clCreateProgramWithSource(cl, 1, texts, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    err = clBuildProgram(program, 1, &device,
                         dbl ? "-DCLOPT_DOUBLE=1 -DCLOPT_HAS_FP64=1" : "-DCLOPT_DOUBLE=0", NULL,
                         NULL);
    cr_assert_eq(err, CL_SUCCESS, "building init.cl: %d", err);
    cl_kernel kernel = clCreateKernel(program, "clopt_init", &err);
    cr_assert_eq(err, CL_SUCCESS);
    const size_t item = dbl ? sizeof(double) : sizeof(float);
    cl_mem theta = clCreateBuffer(cl, CL_MEM_READ_WRITE, WINDOW * item, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    const cl_ulong n_shard = WINDOW, at = offset, skip = 0;
    const cl_uint kind = 1 /* CLOPT_INIT_UNIFORM */, seed_lo = 7, seed_hi = 1;
    const float value_f = 1.0f;
    const double value_d = 1.0;
    cr_assert_eq(clSetKernelArg(kernel, 0, sizeof theta, &theta), CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 1, sizeof n_shard, &n_shard), CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 2, sizeof at, &at), CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 3, sizeof kind, &kind), CL_SUCCESS);
    cr_assert_eq(dbl ? clSetKernelArg(kernel, 4, sizeof value_d, &value_d)
                     : clSetKernelArg(kernel, 4, sizeof value_f, &value_f),
                 CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 5, sizeof seed_lo, &seed_lo), CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 6, sizeof seed_hi, &seed_hi), CL_SUCCESS);
    cr_assert_eq(clSetKernelArg(kernel, 7, sizeof skip, &skip), CL_SUCCESS);
    const size_t global = WINDOW;
    cr_assert_eq(clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, NULL),
                 CL_SUCCESS);
    unsigned char raw[WINDOW * sizeof(double)];
    cr_assert_eq(clEnqueueReadBuffer(queue, theta, CL_TRUE, 0, WINDOW * item, raw, 0, NULL, NULL),
                 CL_SUCCESS);
    for (size_t j = 0; j < WINDOW; ++j) {
        if (dbl) {
            memcpy(&out[j], raw + j * item, item);
        } else {
            float v;
            memcpy(&v, raw + j * item, item);
            out[j] = v;
        }
    }
    clReleaseMemObject(theta);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
}

Test(paths, init_indices_past_2_to_the_32_match_host_philox)
{
    /* common.cl (which picks real from CLOPT_DOUBLE) then init.cl, as the library builds it. */
    static char source[1 << 17];
    size_t used = 0;
    const char *files[] = {CLOPT_SOURCE_DIR "/kernels/common.cl",
                           CLOPT_SOURCE_DIR "/kernels/init.cl"};
    for (size_t k = 0; k < 2; ++k) {
        FILE *f = fopen(files[k], "rb");
        cr_assert_not_null(f, "%s", files[k]);
        used += fread(source + used, 1, sizeof source - 1 - used, f);
        fclose(f);
        source[used++] = '\n';
    }
    source[used] = '\0';
    cl_platform_id platform;
    cl_device_id device;
    cr_assert_eq(clGetPlatformIDs(1, &platform, NULL), CL_SUCCESS);
    cr_assert_eq(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), CL_SUCCESS);
    cl_int err;
    cl_context cl = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    cr_assert_eq(err, CL_SUCCESS);
    cl_command_queue queue = clCreateCommandQueue(cl, device, 0, &err);
    cr_assert_eq(err, CL_SUCCESS);
    const uint64_t offsets[] = {((uint64_t)1 << 31) - WINDOW / 2, ((uint64_t)1 << 32) - WINDOW / 2,
                                ((uint64_t)1 << 40) + 12345};
    const uint32_t key[2] = {7, 1};
    double got[WINDOW];
    for (int dbl = 0; dbl < 2 && !test_skip_double_part(dbl); ++dbl)
        for (size_t k = 0; k < sizeof offsets / sizeof *offsets; ++k) {
            init_window(cl, device, queue, source, dbl, offsets[k], got);
            for (size_t j = 0; j < WINDOW; ++j) {
                const uint64_t i = offsets[k] + j;
                const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), 0, 0};
                uint32_t r[4];
                philox4x32_10(ctr, key, r);
                const double expected =
                    dbl ? 2.0 * ((double)(((uint64_t)r[0] << 21) ^ (r[1] >> 11)) * 0x1p-53) - 1.0
                        : (double)(2.0f * ((float)(r[0] >> 8) * 0x1p-24f) - 1.0f);
                cr_assert_eq(got[j], expected, "%s element %llu: %.17g, host Philox %.17g",
                             dbl ? "double" : "float", (unsigned long long)i, got[j], expected);
            }
        }
    clReleaseCommandQueue(queue);
    clReleaseContext(cl);
}
