/* Device discovery and the clopt context (device, OpenCL context, in-order queue). */
#include "abi.h"
#include "internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string property of the device (or, with is_platform, of its platform), cut to fit dst:
 * a name longer than the field is still that device's name. The call's error when the
 * device does not answer. */
static cl_int copy_info_string(cl_device_id device, cl_platform_id platform, cl_uint what,
                               int is_platform, char *dst, size_t size)
{
    dst[0] = '\0';
    size_t needed = 0;
    cl_int err = is_platform ? clGetPlatformInfo(platform, what, 0, NULL, &needed)
                             : clGetDeviceInfo(device, what, 0, NULL, &needed);
    if (err != CL_SUCCESS)
        return err;
    char *whole = needed > size ? malloc(needed) : dst;
    if (!whole)
        return CL_OUT_OF_HOST_MEMORY;
    const size_t room = needed > size ? needed : size;
    err = is_platform ? clGetPlatformInfo(platform, what, room, whole, NULL)
                      : clGetDeviceInfo(device, what, room, whole, NULL);
    if (whole != dst) {
        if (err == CL_SUCCESS)
            memcpy(dst, whole, size);
        free(whole);
    }
    dst[size - 1] = '\0';
    return err;
}

int clopt_device_query(cl_device_id device, struct clopt_device_info *info,
                       struct clopt_device_query_error *error)
{
    memset(info, 0, sizeof *info);
    info->index = SIZE_MAX;
    cl_platform_id platform;
    cl_device_type type;
    cl_ulong global_mem, max_alloc;
    cl_uint units;
    cl_device_fp_config fp64 = 0;
    /* Every answer decides something (the device picked, the kernels' precision paths, the
     * cache and database keys), so a query that fails is an error, never a guess: a failed
     * fp64 query once switched runs silently to the float paths, and a failed name query
     * put "?" into keys. */
    const char *what = "clGetDeviceInfo(CL_DEVICE_PLATFORM)";
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_TYPE)";
        err = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)";
        err = clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global_mem, &global_mem,
                              NULL);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_MAX_MEM_ALLOC_SIZE)";
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc,
                              NULL);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_MAX_COMPUTE_UNITS)";
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_DOUBLE_FP_CONFIG)";
        err = clGetDeviceInfo(device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL);
        /* OpenCL 1.2 answers 0 for a device without doubles; a 1.0/1.1 device without
         * cl_khr_fp64 may not know the name at all, which it says with CL_INVALID_VALUE
         * and only with that. */
        if (err == CL_INVALID_VALUE) {
            fp64 = 0;
            err = CL_SUCCESS;
        }
    }
    if (err == CL_SUCCESS) {
        what = "clGetPlatformInfo(CL_PLATFORM_NAME)";
        err = copy_info_string(device, platform, CL_PLATFORM_NAME, 1, info->platform,
                               sizeof info->platform);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DEVICE_NAME)";
        err = copy_info_string(device, platform, CL_DEVICE_NAME, 0, info->name, sizeof info->name);
    }
    if (err == CL_SUCCESS) {
        what = "clGetDeviceInfo(CL_DRIVER_VERSION)";
        err = copy_info_string(device, platform, CL_DRIVER_VERSION, 0, info->driver_version,
                               sizeof info->driver_version);
    }
    if (err != CL_SUCCESS) {
        if (error) {
            error->call = what;
            error->err = err;
        }
        return CLOPT_ERR_OPENCL;
    }
    info->kind = (type & CL_DEVICE_TYPE_GPU)   ? CLOPT_DEVICE_GPU
                 : (type & CL_DEVICE_TYPE_CPU) ? CLOPT_DEVICE_CPU
                                               : CLOPT_DEVICE_OTHER;
    info->global_mem_bytes = global_mem;
    info->max_alloc_bytes = max_alloc;
    info->compute_units = units;
    info->has_fp64 = fp64 != 0;
    return CLOPT_OK;
}

/* Every device id of every platform, in platform order. */
static int enumerate(cl_device_id **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    cl_uint n_platforms = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n_platforms);
    if (err != CL_SUCCESS || n_platforms == 0)
        return CLOPT_ERR_NO_DEVICE;
    int status = CLOPT_OK;
    cl_platform_id *platforms = calloc(n_platforms, sizeof *platforms);
    cl_device_id *devices = NULL;
    size_t total = 0;
    if (!platforms) {
        status = CLOPT_ERR_OUT_OF_MEMORY;
        goto cleanup;
    }
    if (clGetPlatformIDs(n_platforms, platforms, NULL) != CL_SUCCESS) {
        status = CLOPT_ERR_NO_DEVICE;
        goto cleanup;
    }
    for (cl_uint p = 0; p < n_platforms; ++p) {
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n) != CL_SUCCESS || !n)
            continue;
        cl_device_id *grown = realloc(devices, (total + n) * sizeof *devices);
        if (!grown) {
            status = CLOPT_ERR_OUT_OF_MEMORY;
            goto cleanup;
        }
        devices = grown;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, n, devices + total, NULL) ==
            CL_SUCCESS)
            total += n;
    }
    if (total == 0)
        status = CLOPT_ERR_NO_DEVICE;
cleanup:
    free(platforms);
    if (status != CLOPT_OK) {
        free(devices);
        return status;
    }
    *out = devices;
    *count = total;
    return CLOPT_OK;
}

int clopt_list_devices(struct clopt_device_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    cl_device_id *ids = NULL;
    size_t n = 0;
    int status = enumerate(&ids, &n);
    if (status != CLOPT_OK)
        return status;
    struct clopt_device_info *infos = calloc(n, sizeof *infos);
    if (!infos) {
        free(ids);
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < n; ++i) {
        if (clopt_device_query(ids[i], &infos[i], NULL) != CLOPT_OK)
            snprintf(infos[i].name, sizeof infos[i].name, "(device does not answer queries)");
        infos[i].index = i;
    }
    free(ids);
    *out = infos;
    *count = n;
    return CLOPT_OK;
}

static int contains_ignoring_case(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; ++haystack) {
        size_t i = 0;
        while (i < n && haystack[i] &&
               tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == n)
            return 1;
    }
    return n == 0;
}

/* Index of the device matching spec (see clopt_context_options.device), or SIZE_MAX. */
static size_t pick_device(const struct clopt_device_info *infos, size_t n, const char *spec)
{
    if (spec && *spec) {
        char *end;
        unsigned long long index = strtoull(spec, &end, 10);
        if (*end == '\0' && isdigit((unsigned char)spec[0]))
            return index < n ? (size_t)index : SIZE_MAX;
        for (size_t i = 0; i < n; ++i)
            if (contains_ignoring_case(infos[i].name, spec) ||
                contains_ignoring_case(infos[i].platform, spec))
                return i;
        return SIZE_MAX;
    }
    const enum clopt_device_kind preference[] = {CLOPT_DEVICE_GPU, CLOPT_DEVICE_CPU,
                                                 CLOPT_DEVICE_OTHER};
    for (size_t k = 0; k < sizeof preference / sizeof *preference; ++k)
        for (size_t i = 0; i < n; ++i)
            if (infos[i].kind == preference[k])
                return i;
    return SIZE_MAX;
}

static void context_defaults(struct clopt_context_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

void clopt_context_options_init_size(struct clopt_context_options *opts, size_t size)
{
    struct clopt_context_options d;
    context_defaults(&d);
    clopt_abi_init(&d, sizeof d, opts, size);
}

/* Every version of struct clopt_context_options, oldest first. */
static const struct clopt_abi_version context_versions[] = {
    {CLOPT_ABI_OLD_SIZE(struct clopt_context_options, devices),
     offsetof(struct clopt_context_options, devices)},
    {sizeof(struct clopt_context_options), sizeof(struct clopt_context_options)},
};

int clopt_context_options_adopt(const struct clopt_context_options *in,
                                struct clopt_context_options *out, char *err, size_t errlen)
{
    static const struct clopt_abi_layout layout = {
        "context_options", "clopt_context_options_init", context_versions,
        sizeof context_versions / sizeof *context_versions};
    context_defaults(out);
    return clopt_abi_adopt(&layout, in, out, err, errlen);
}

static struct clopt_context *context_alloc(const char *kernel_dir, const char *program_cache)
{
    struct clopt_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    if (kernel_dir && *kernel_dir) {
        ctx->kernel_dir = clopt_format("%s", kernel_dir);
        if (!ctx->kernel_dir) {
            free(ctx);
            return NULL;
        }
    }
    if (program_cache && *program_cache) {
        ctx->program_cache = clopt_format("%s", program_cache);
        if (!ctx->program_cache) {
            free(ctx->kernel_dir);
            free(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* The device `name` picks (the default when NULL) with a context and a queue of its own;
 * `refused` is the first device that did not answer its queries, the likely cause when no
 * device could be picked. */
static int open_one_device(struct clopt_context *ctx, const cl_device_id *ids,
                           const struct clopt_device_info *infos, size_t n, const char *name,
                           struct clopt_device_query_error refused)
{
    size_t chosen = pick_device(infos, n, name);
    if (chosen == SIZE_MAX && refused.call)
        return clopt_fail(ctx, CLOPT_ERR_OPENCL,
                          "%s failed: %s (%d); the device does not answer its queries: check "
                          "its driver with 'clinfo'",
                          refused.call, clopt_cl_error_name(refused.err), refused.err);
    if (chosen == SIZE_MAX)
        return clopt_fail(ctx, CLOPT_ERR_NO_DEVICE,
                          "no OpenCL device matches '%s': run 'clopt devices' for the list",
                          name ? name : "");
    ctx->device = ids[chosen];
    ctx->info = infos[chosen];
    cl_int err;
    ctx->context = clCreateContext(NULL, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        ctx->context = NULL;
        return clopt_fail_cl(ctx, err, "clCreateContext");
    }
    /* Profiling is on so that benchmarks can time kernels with events. */
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        ctx->queue = NULL;
        return clopt_fail_cl(ctx, err, "clCreateCommandQueue");
    }
    return CLOPT_OK;
}

int clopt_context_create(struct clopt_context **out, const struct clopt_context_options *opts)
{
    struct clopt_context_options adopted;
    char abi_err[512];
    int abi_status = CLOPT_OK;
    if (!opts)
        clopt_context_options_init(&adopted);
    else
        abi_status = clopt_context_options_adopt(opts, &adopted, abi_err, sizeof abi_err);
    opts = &adopted;
    /* A refused struct still gets a handle, so that clopt_errmsg() can say why. */
    struct clopt_context *ctx = abi_status == CLOPT_OK
                                    ? context_alloc(opts->kernel_dir, opts->program_cache)
                                    : context_alloc(NULL, NULL);
    *out = ctx;
    if (!ctx)
        return CLOPT_ERR_OUT_OF_MEMORY;
    if (abi_status != CLOPT_OK)
        return clopt_fail(ctx, abi_status, "%s", abi_err);

    cl_device_id *ids = NULL;
    size_t n = 0;
    struct clopt_device_info *infos = NULL;
    int status = enumerate(&ids, &n);
    if (status == CLOPT_ERR_NO_DEVICE) {
        status = clopt_fail(ctx, status,
                            "no OpenCL device found: install a driver, or PoCL for the CPU "
                            "(apt-get install pocl-opencl-icd)");
        goto cleanup;
    }
    if (status != CLOPT_OK) {
        status = clopt_fail(ctx, status, "listing OpenCL devices failed");
        goto cleanup;
    }
    infos = calloc(n, sizeof *infos);
    if (!infos) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        goto cleanup;
    }
    /* A device that does not answer is never picked by default; if no device could be
     * picked, the first refusal is the cause worth naming. */
    struct clopt_device_query_error refused = {NULL, CL_SUCCESS};
    for (size_t i = 0; i < n; ++i) {
        struct clopt_device_query_error error;
        if (clopt_device_query(ids[i], &infos[i], &error) != CLOPT_OK) {
            infos[i].kind = 0;
            if (!refused.call)
                refused = error;
        }
        infos[i].index = i;
    }
    if (opts->devices && *opts->devices) {
        if (opts->device && *opts->device) {
            status = clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                "context_options.device and context_options.devices are both "
                                "set: name the devices in one of them");
            goto cleanup;
        }
        status = clopt_open_devices(ctx, ids, infos, n, opts->devices, pick_device(infos, n, NULL));
        goto cleanup;
    }
    status = open_one_device(ctx, ids, infos, n, opts->device, refused);
cleanup:
    free(ids);
    free(infos);
    return status;
}

int clopt_context_create_from_cl(struct clopt_context **out, cl_context context,
                                 cl_command_queue queue, const char *kernel_dir)
{
    struct clopt_context *ctx = context_alloc(kernel_dir, NULL);
    *out = ctx;
    if (!ctx)
        return CLOPT_ERR_OUT_OF_MEMORY;
    if (!context || !queue)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "a cl_context and a queue are needed");
    cl_command_queue_properties props;
    cl_int err =
        clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof ctx->device, &ctx->device, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetCommandQueueInfo(CL_QUEUE_DEVICE)");
    err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetCommandQueueInfo(CL_QUEUE_PROPERTIES)");
    if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "the queue is out-of-order; clopt needs an in-order queue");
    struct clopt_device_query_error error;
    if (clopt_device_query(ctx->device, &ctx->info, &error) != CLOPT_OK)
        return clopt_fail_cl(ctx, error.err, error.call);
    /* Our own references, released in destroy; the caller's stay the caller's. */
    err = clRetainContext(context);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clRetainContext");
    ctx->context = context;
    err = clRetainCommandQueue(queue);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clRetainCommandQueue");
    ctx->queue = queue;
    return CLOPT_OK;
}

void clopt_context_destroy(struct clopt_context *ctx)
{
    if (!ctx)
        return;
    /* queues[0] is ctx->queue, released below. */
    for (size_t i = 1; ctx->queues && i < ctx->n_devices; ++i)
        if (ctx->queues[i])
            clReleaseCommandQueue(ctx->queues[i]);
    free(ctx->queues);
    free(ctx->devices);
    if (ctx->queue)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->context)
        clReleaseContext(ctx->context);
    free(ctx->kernel_dir);
    free(ctx->errmsg);
    free(ctx->program_cache);
    free(ctx->cache_problem);
    free(ctx->cache_device_key);
    free(ctx);
}

int clopt_context_set_ranks(struct clopt_context *ctx, const struct clopt_ranks *ranks)
{
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    if (ranks && ranks->size > 1 &&
        (ranks->rank >= ranks->size || !ranks->allgatherv || !ranks->neighbours || !ranks->any))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "clopt_context_set_ranks: rank %zu of %zu, or a callback is NULL",
                          ranks->rank, ranks->size);
    memset(&ctx->ranks, 0, sizeof ctx->ranks);
    if (ranks && ranks->size > 1)
        ctx->ranks = *ranks;
    return CLOPT_OK;
}

size_t clopt_context_device_count(const struct clopt_context *ctx)
{
    return ctx && ctx->n_devices > 1 ? ctx->n_devices : 1;
}

const struct clopt_device_info *clopt_context_device(const struct clopt_context *ctx)
{
    return &ctx->info;
}

int clopt_context_cl(const struct clopt_context *ctx, cl_context *context, cl_device_id *device,
                     cl_command_queue *queue)
{
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    if (context)
        *context = ctx->context;
    if (device)
        *device = ctx->device;
    if (queue)
        *queue = ctx->queue;
    return CLOPT_OK;
}

/* "32768K", "1M" or a plain byte count; 0 when unreadable. */
static uint64_t read_cache_size(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    char unit = 0;
    const int got = f ? fscanf(f, "%llu%c", &v, &unit) : 0;
    if (f)
        fclose(f);
    if (got < 1)
        return 0;
    return (uint64_t)v * (unit == 'K' ? 1024u : unit == 'M' ? 1024u * 1024u : 1u);
}

/* The largest data or unified cache of the given level of cpu0 in sysfs; 0 when none. */
static uint64_t cpu_cache_bytes(unsigned want_level)
{
    uint64_t best = 0;
    for (unsigned i = 0; i < 16; ++i) {
        char path[96], type[32] = "";
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%u/level", i);
        FILE *f = fopen(path, "r");
        unsigned level = 0;
        if (!f)
            continue;
        const int got = fscanf(f, "%u", &level);
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%u/type", i);
        if ((f = fopen(path, "r")) != NULL) {
            if (fscanf(f, "%31s", type) != 1)
                type[0] = '\0';
            fclose(f);
        }
        if (got != 1 || level != want_level || !strcmp(type, "Instruction"))
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%u/size", i);
        const uint64_t size = read_cache_size(path);
        if (size > best)
            best = size;
    }
    return best;
}

uint64_t clopt_context_cache_bytes(const struct clopt_context *ctx)
{
    if (!ctx)
        return 0;
    if (ctx->info.kind == CLOPT_DEVICE_CPU) {
        const uint64_t l3 = cpu_cache_bytes(3);
        return l3 ? l3 : cpu_cache_bytes(2);
    }
    cl_ulong size = 0;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof size, &size, NULL) !=
        CL_SUCCESS)
        return 0;
    return (uint64_t)size;
}
