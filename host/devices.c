/* Several devices in one process (context_options.devices): which devices a list names, and
 * one cl_context over them with a queue each. How theta is spread over them is the solver's
 * shard plan (host/solver/solver.h, "Tiles, ranks and devices"). */
#include "internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* More than any machine has; it bounds the list's parse. */
#define MAX_DEVICES 64

/* The indexes a "0,1,3" list names, in its order; -1 with a message when malformed. */
static int parse_list(struct clopt_context *ctx, const char *spec, size_t n, size_t *chosen,
                      size_t *count)
{
    *count = 0;
    const char *p = spec;
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "context_options.devices '%s' is not a list of device indexes "
                              "such as \"0,1\", nor \"all\"",
                              spec);
        char *end;
        const unsigned long long index = strtoull(p, &end, 10);
        if (index >= n)
            return clopt_fail(ctx, CLOPT_ERR_NO_DEVICE,
                              "context_options.devices names device %llu, but the devices are "
                              "numbered 0 to %zu: run 'clopt devices' for the list",
                              index, n - 1);
        for (size_t k = 0; k < *count; ++k)
            if (chosen[k] == index)
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                  "context_options.devices '%s' names device %llu twice", spec,
                                  index);
        if (*count == MAX_DEVICES)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "context_options.devices names more than %d devices", MAX_DEVICES);
        chosen[(*count)++] = (size_t)index;
        if (*end == '\0')
            return CLOPT_OK;
        if (*end != ',')
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "context_options.devices '%s' is not a list of device indexes "
                              "such as \"0,1\", nor \"all\"",
                              spec);
        p = end + 1;
    }
}

static cl_platform_id platform_of(cl_device_id device)
{
    cl_platform_id platform = NULL;
    if (clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL) != CL_SUCCESS)
        return NULL;
    return platform;
}

/* "all": every device of the default pick's platform and type, in index order. */
static int pick_all(struct clopt_context *ctx, const cl_device_id *ids,
                    const struct clopt_device_info *infos, size_t n, size_t default_pick,
                    size_t *chosen, size_t *count)
{
    *count = 0;
    if (default_pick == SIZE_MAX)
        return clopt_fail(ctx, CLOPT_ERR_NO_DEVICE,
                          "context_options.devices \"all\": no device answers its queries: check "
                          "the drivers with 'clinfo'");
    const cl_platform_id platform = platform_of(ids[default_pick]);
    for (size_t i = 0; i < n && *count < MAX_DEVICES; ++i)
        if (platform_of(ids[i]) == platform && infos[i].kind == infos[default_pick].kind)
            chosen[(*count)++] = i;
    return CLOPT_OK;
}

/* The devices must share a platform (one cl_context) and be one model (one program binary,
 * one set of knobs, results bit-identical to one of them). */
static int check_alike(struct clopt_context *ctx, const cl_device_id *ids,
                       const struct clopt_device_info *infos, const size_t *chosen, size_t count)
{
    const struct clopt_device_info *first = &infos[chosen[0]];
    for (size_t k = 1; k < count; ++k) {
        const struct clopt_device_info *d = &infos[chosen[k]];
        if (platform_of(ids[chosen[k]]) != platform_of(ids[chosen[0]]))
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "context_options.devices: devices %zu (%s) and %zu (%s) are on "
                              "different platforms; name devices of one platform",
                              chosen[0], first->platform, chosen[k], d->platform);
        if (strcmp(d->name, first->name) || d->kind != first->kind ||
            d->compute_units != first->compute_units || d->has_fp64 != first->has_fp64)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "context_options.devices: devices %zu (%s) and %zu (%s) are "
                              "different models; name devices of one model",
                              chosen[0], first->name, chosen[k], d->name);
    }
    return CLOPT_OK;
}

int clopt_open_devices(struct clopt_context *ctx, const cl_device_id *ids,
                       const struct clopt_device_info *infos, size_t n, const char *spec,
                       size_t default_pick)
{
    size_t chosen[MAX_DEVICES] = {0}, count = 0;
    int status = strcmp(spec, "all") == 0
                     ? pick_all(ctx, ids, infos, n, default_pick, chosen, &count)
                     : parse_list(ctx, spec, n, chosen, &count);
    if (status == CLOPT_OK && count == 0)
        status = clopt_fail(ctx, CLOPT_ERR_NO_DEVICE, "context_options.devices names no device");
    if (status == CLOPT_OK)
        status = check_alike(ctx, ids, infos, chosen, count);
    if (status != CLOPT_OK)
        return status;
    ctx->devices = calloc(count, sizeof *ctx->devices);
    ctx->queues = calloc(count, sizeof *ctx->queues);
    if (!ctx->devices || !ctx->queues)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t k = 0; k < count; ++k)
        ctx->devices[k] = ids[chosen[k]];
    ctx->n_devices = count;
    ctx->device = ctx->devices[0];
    ctx->info = infos[chosen[0]];
    cl_int err;
    ctx->context = clCreateContext(NULL, (cl_uint)count, ctx->devices, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        ctx->context = NULL;
        return clopt_fail_cl(ctx, err, "clCreateContext(several devices)");
    }
    for (size_t k = 0; k < count; ++k) {
        /* Profiling, as for one device, so that benchmarks can time with events. */
        ctx->queues[k] =
            clCreateCommandQueue(ctx->context, ctx->devices[k], CL_QUEUE_PROFILING_ENABLE, &err);
        if (err != CL_SUCCESS) {
            ctx->queues[k] = NULL;
            return clopt_fail_cl(ctx, err, "clCreateCommandQueue");
        }
        if (k == 0) /* released as ctx->queue (clopt_context_destroy) */
            ctx->queue = ctx->queues[0];
    }
    return CLOPT_OK;
}
