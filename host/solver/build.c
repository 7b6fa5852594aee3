/* From the objective and the knobs to kernels: the objective's shape, the -D text, the
 * program build and the kernels, each checked against the device's work-group limit. */
#include "solver.h"
#include "qn/qn.h"
#include "tune/knobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The objective's shape: stencil radius, and the file of its data vector if it has one. */
/* A grid objective's halo: R times the sum of the axes' strides, the flat distance to the far
 * corner of a point's box (R planes of the slowest axis would miss the corners of a box whose
 * point lies in a shard's first or last plane); a vector theta is a grid of one axis. */
static int grid_halo(struct clopt_solver *s, size_t radius)
{
    if (s->opts.n_axes > 3)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "objective '%s' works on grids of 1 to 3 axes, not options.n_axes = %zu",
                          s->opts.objective, s->opts.n_axes);
    s->grid_radius = radius;
    size_t strides = 0, stride = 1;
    for (size_t k = s->opts.n_axes; k-- > 0; stride *= s->opts.shape[k])
        strides += stride;
    s->halo = radius * (s->opts.n_axes ? strides : 1);
    /* A grid's shape shapes its trajectory: a checkpoint resumes only on the same grid (a
     * "grid=" line, which configurations of other objectives do not have). */
    char shape[80] = "";
    for (size_t k = 0; k < s->opts.n_axes; ++k)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", k ? "," : "",
                 s->opts.shape[k]);
    char *texts[2] = {s->config, s->config_v1};
    for (size_t k = 0; k < 2; ++k) {
        if (!texts[k])
            continue;
        char *grown = clopt_format("%sgrid=%s\n", texts[k], *shape ? shape : "1-D");
        if (!grown)
            return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        free(texts[k]);
        texts[k] = grown;
    }
    s->config = texts[0];
    s->config_v1 = texts[1];
    return CLOPT_OK;
}

int clopt_resolve_objective(struct clopt_solver *s)
{
    const struct clopt_objective_type *obj = s->objective;
    if (!obj) {
        int grid = 0;
        const int status = clopt_inspect_user_objective(s->ctx, s->opts.objective, &s->halo, &grid);
        return status == CLOPT_OK && grid ? grid_halo(s, s->halo) : status;
    }
    s->halo = obj->stencil_radius;
    if (obj->grid && grid_halo(s, obj->stencil_radius) != CLOPT_OK)
        return CLOPT_ERR_INVALID_ARG;
    if (!obj->data_param)
        return CLOPT_OK;
    for (size_t i = 0; i < s->opts.n_params; ++i)
        if (s->opts.params[i].key && !strcmp(s->opts.params[i].key, obj->data_param) &&
            s->opts.params[i].value && *s->opts.params[i].value) {
            s->data_path = clopt_format("%s", s->opts.params[i].value);
            return s->data_path ? CLOPT_OK
                                : clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        }
    return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                      "objective '%s' needs options.params %s=FILE.npy (n float32/float64 values)",
                      obj->name, obj->data_param);
}

/* Whether the vector sweeps of a stencil or grid objective store theta non-temporally
 * (kernels/step.cl's CLOPT_NT_STORE). Those sweeps write a buffer they do not read (ping-pong),
 * and a plain store first reads each line it writes: a non-temporal store saves that read but
 * leaves the line out of cache too, so it helps only when one iteration streams more than the
 * last-level cache (below that, the next iteration finds theta in cache). On CPUs only (not
 * measured on GPUs), and only when the buffers' base alignment covers a vector of lanes, which
 * the store's type promises. CLOPT_NT_STORE=on|off in the environment overrides the size test
 * for experiments and tests, as CLOPT_MAX_LAUNCH_ITEMS does the launch size: the bits stored
 * are the same either way. */
static int resolve_nt_store(const struct clopt_solver *s)
{
    if (!s->halo || s->knobs.layout != 1 || s->knobs.vector_width < 2)
        return 0;
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(s->ctx->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits,
                        &align_bits, NULL) != CL_SUCCESS ||
        align_bits / 8 < s->knobs.vector_width * s->elem_size)
        return 0;
    const char *forced = getenv("CLOPT_NT_STORE");
    if (forced && !strcmp(forced, "on"))
        return 1;
    if ((forced && !strcmp(forced, "off")) || s->ctx->info.kind != CLOPT_DEVICE_CPU)
        return 0;
    /* theta, its ping-pong partner, the state vectors and the data vector of this process. */
    const double vectors = 2.0 + (double)s->n_state + (s->data_path ? 1.0 : 0.0);
    const double streamed = (double)(s->hi - s->lo) * (double)s->elem_size * vectors;
    const uint64_t cache = clopt_context_cache_bytes(s->ctx);
    return cache && streamed > (double)cache;
}

/* The build options: every knob and option the kernels see as a -D define. */
static int build_options(struct clopt_solver *s, char **options)
{
    struct clopt_context *ctx = s->ctx;
    char *defines = NULL;
    int status = clopt_param_defines(ctx, s->objective, &s->opts, &defines);
    if (status != CLOPT_OK)
        return status;
    /* The dimension is a kernel argument; only objectives that fold it into constants get
     * it as a define as well (which costs a build per size). */
    char dim_define[48] = "";
    if (!s->objective || s->objective->uses_dim)
        snprintf(dim_define, sizeof dim_define, " -DCLOPT_N=%zuUL", s->n);
    /* In the C locale: "1,5e+00" is no number to the compiler (host/numparse.c). */
    char clip[128] = "";
    if ((s->opts.clip_value > 0 &&
         clopt_format_c(clip, sizeof clip, " -DCLOPT_CLIP_VALUE=%.17e", s->opts.clip_value) < 0) ||
        (s->opts.clip_norm > 0 &&
         clopt_format_c(clip + strlen(clip), sizeof clip - strlen(clip), " -DCLOPT_CLIP_NORM=%.17e",
                        s->opts.clip_norm) < 0)) {
        free(defines);
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    char tile[80] = "";
    /* lbfgs/cg's combination keeps a run of CLOPT_QN_CRUN elements' sums in private
     * arrays (two acc8 per 8 elements: 16 KiB per work-item in double at the kernel's
     * default of 1024). That default is a CPU figure (a run of each vector for the
     * prefetcher, the sums in L1); on a GPU the arrays would spill to scratch memory and
     * bound the occupancy, so any other device keeps 16 elements in registers. The run
     * length only blocks the loop: each element's sum is in term order either way, so the
     * bits do not change, and CPU builds keep the kernel's default (and their cache keys). */
    if (s->optimizer->qn)
        snprintf(tile, sizeof tile, " -DCLOPT_QN_TILE=%zuUL%s", clopt_qn_tile(&s->knobs),
                 ctx->info.kind == CLOPT_DEVICE_CPU ? "" : " -DCLOPT_QN_CRUN=16");
    /* A grid's shape: its coordinates and neighbours are constants in the kernel. */
    char grid[160] = "";
    if (s->grid_radius) {
        const size_t axes = s->opts.n_axes ? s->opts.n_axes : 1;
        int used = snprintf(grid, sizeof grid, " -DCLOPT_GRID_AXES=%zu", axes);
        for (size_t k = 0; k < axes && used > 0 && (size_t)used < sizeof grid; ++k)
            used += snprintf(grid + used, sizeof grid - (size_t)used, " -DCLOPT_GRID_S%zu=%zuUL", k,
                             s->opts.n_axes ? s->opts.shape[k] : s->n);
    }
    char knobs[512];
    if (clopt_knobs_defines(&s->knobs, knobs, sizeof knobs) != CLOPT_OK) {
        free(defines);
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "the knobs' defines do not fit");
    }
    *options =
        clopt_format("-cl-std=CL1.2 -cl-denorms-are-zero -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d%s%s "
                     "-DCLOPT_WD=%d -DCLOPT_MAXIMIZE=%d -DCLOPT_HOST_HALO=%zu -DCLOPT_LEAD=%zu "
                     "-DCLOPT_NT_STORE=%d%s%s%s%s%s",
                     ctx->info.has_fp64 ? 1 : 0, s->opts.precision == CLOPT_DOUBLE, dim_define,
                     knobs, s->opts.weight_decay > 0, s->opts.maximize != 0, s->halo, s->lead,
                     s->nt_store, s->optimizer->defines(&s->opts), clip, defines, tile, grid);
    free(defines);
    if (!*options)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    return CLOPT_OK;
}

/* The fused kernel's private memory as the compiler reports it, against the cap for the
 * device type (clopt_fused_private_cap): knobs.c's estimate before the build cannot know
 * what a GPU compiler spills to scratch memory. */
static int check_private_memory(struct clopt_solver *s, cl_kernel kernel, const char *name)
{
    cl_ulong bytes = 0;
    cl_int err = clGetKernelWorkGroupInfo(kernel, s->ctx->device, CL_KERNEL_PRIVATE_MEM_SIZE,
                                          sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(s->ctx, err, "clGetKernelWorkGroupInfo(CL_KERNEL_PRIVATE_MEM_SIZE)");
    const size_t cap = clopt_fused_private_cap(s);
    if (bytes > cap)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "kernel %s needs %llu bytes of private memory per work-item on this "
                          "device, more than the %zu it may use: lower knobs.fuse, "
                          "knobs.vector_width or knobs.loss_block",
                          name, (unsigned long long)bytes, cap);
    return CLOPT_OK;
}

/* Creates one kernel and checks that the device runs it with the work-group it will get: a
 * kernel's own limit (registers, local memory) can be below the device's. */
static int create_kernel(struct clopt_solver *s, cl_kernel *kernel, const char *name)
{
    struct clopt_context *ctx = s->ctx;
    cl_int err;
    *kernel = clCreateKernel(s->program, name, &err);
    if (err != CL_SUCCESS) {
        *kernel = NULL;
        return clopt_fail_cl(ctx, err, name);
    }
    size_t limit = 0;
    err = clGetKernelWorkGroupInfo(*kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof limit,
                                   &limit, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetKernelWorkGroupInfo");
    const int is_reduce = kernel == &s->k_reduce;
    const int set_up = kernel == &s->k_init || kernel == &s->k_zero || kernel == &s->k_put_hyper ||
                       kernel == &s->k_ext_loss;
    const size_t wanted = is_reduce ? s->knobs.reduce_group : set_up ? 1 : s->knobs.work_group;
    if (wanted > limit)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "kernel %s allows work-groups of at most %zu on this device, not "
                          "%zu: set a smaller knobs.%s",
                          name, limit, wanted, is_reduce ? "reduce_group" : "work_group");
    return kernel == &s->k_fused ? check_private_memory(s, *kernel, name) : CLOPT_OK;
}

int clopt_build_kernels(struct clopt_solver *s)
{
    char *options = NULL;
    s->nt_store = resolve_nt_store(s);
    int status = build_options(s, &options);
    if (status != CLOPT_OK)
        return status;
    const struct clopt_program_part parts[] = {
        {"common.cl", 0},
        {s->objective ? s->objective->file : s->opts.objective, s->objective == NULL},
        {s->optimizer->file, 0},
        /* step.cl's program text in five rooms, in this order (each continues the one
         * before). */
        {"step.cl", 0},
        {"sweep_stencil.cl", 0},
        {"sweep_grid.cl", 0},
        {"sweep_fused.cl", 0},
        {"step_kernels.cl", 0},
        {"reduce.cl", 0},
        {"init.cl", 0},
        {"qn.cl", 0}, /* lbfgs and cg only: the parts count below leaves it out otherwise */
    };
    const size_t n_parts = sizeof parts / sizeof *parts - (s->optimizer->qn ? 0 : 1);
    status = clopt_build_program(s->ctx, parts, n_parts, options, &s->program);
    free(options);
    if (status != CLOPT_OK)
        return status;
    struct {
        cl_kernel *kernel;
        const char *name;
    } kernels[] = {{&s->k_step, "clopt_step"},           {&s->k_step_loss, "clopt_step_loss"},
                   {&s->k_eval, "clopt_eval"},           {&s->k_reduce, "clopt_reduce"},
                   {&s->k_init, "clopt_init"},           {&s->k_zero, "clopt_zero"},
                   {&s->k_put_hyper, "clopt_put_hyper"}, {&s->k_fused, "clopt_step_fused"}};
    const size_t n_kernels = sizeof kernels / sizeof *kernels - (s->knobs.fuse > 1 ? 0 : 1);
    for (size_t i = 0; i < n_kernels && status == CLOPT_OK; ++i)
        status = create_kernel(s, kernels[i].kernel, kernels[i].name);
    /* The external objective's file also holds the kernel that puts the caller's loss in
     * the result. */
    if (status == CLOPT_OK && s->external)
        status = create_kernel(s, &s->k_ext_loss,
                               s->ext.loss_double ? "clopt_ext_loss_double" : "clopt_ext_loss");
    return status;
}
