/* The device's memory bandwidth, measured STREAM-style on the device itself: the reference
 * that clopt bench reports the fused step against. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds between a finished event's start and end (profiling). */
static int event_seconds(struct clopt_context *ctx, cl_event event, double *seconds)
{
    cl_ulong start = 0, end = 0;
    cl_int err = clWaitForEvents(1, &event);
    if (err == CL_SUCCESS)
        err =
            clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clGetEventProfilingInfo");
    *seconds = (double)(end - start) * 1e-9;
    return CLOPT_OK;
}

int clopt_measure_bandwidth(struct clopt_context *ctx, size_t n, enum clopt_precision precision,
                            unsigned reps, struct clopt_bandwidth *out)
{
    memset(out, 0, sizeof *out);
    if (!ctx || n == 0 || reps == 0 || reps > 1000)
        return ctx ? clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                "the bandwidth needs n >= 1 and 1..1000 repetitions")
                   : CLOPT_ERR_INVALID_ARG;
    if (precision == CLOPT_DOUBLE && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED, "device '%s' has no double precision",
                          ctx->info.name);
    const size_t elem = precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    /* Two buffers that fit the device: a smaller n still measures the same bandwidth. */
    size_t cap = (size_t)(ctx->info.max_alloc_bytes / elem);
    if (cap > ctx->info.global_mem_bytes / (3 * elem))
        cap = (size_t)(ctx->info.global_mem_bytes / (3 * elem));
    if (n > cap)
        n = cap;
    const int cpu = ctx->info.kind == CLOPT_DEVICE_CPU;
    const size_t wg = cpu ? 16 : 256, epw = cpu ? 4096 : 16;
    char *options =
        clopt_format("-cl-std=CL1.2 -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d -DCLOPT_WG=%zu "
                     "-DCLOPT_EPW=%zu -DCLOPT_LAYOUT=%d",
                     ctx->info.has_fp64 ? 1 : 0, precision == CLOPT_DOUBLE, wg, epw, cpu ? 1 : 2);
    double *times = malloc(2 * reps * sizeof *times);
    cl_program program = NULL;
    cl_kernel copy = NULL, scale = NULL;
    cl_mem a = NULL, b = NULL;
    cl_command_queue queue = NULL;
    cl_event event = NULL;
    int status = CLOPT_OK;
    cl_int err = CL_SUCCESS;
    if (!options || !times) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        goto cleanup;
    }
    const struct clopt_program_part parts[] = {{"common.cl", 0}, {"stream.cl", 0}};
    status = clopt_build_program(ctx, parts, 2, options, &program);
    if (status != CLOPT_OK)
        goto cleanup;
    copy = clCreateKernel(program, "clopt_stream_copy", &err);
    if (err == CL_SUCCESS)
        scale = clCreateKernel(program, "clopt_stream_scale", &err);
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "clCreateKernel(stream)");
        goto cleanup;
    }
    /* Its own queue, with profiling, whatever the caller's queue has. */
    queue = clCreateCommandQueue(ctx->context, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        queue = NULL;
        status = clopt_fail_cl(ctx, err, "clCreateCommandQueue(profiling)");
        goto cleanup;
    }
    a = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, n * elem, NULL, &err);
    if (err == CL_SUCCESS)
        b = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, n * elem, NULL, &err);
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "clCreateBuffer(stream)");
        goto cleanup;
    }
    /* Ones, scaled by one: no overflow and no denormals however often it runs. */
    const double one_d = 1.0;
    const float one_f = 1.0f;
    const void *one = precision == CLOPT_DOUBLE ? (const void *)&one_d : (const void *)&one_f;
    err = clEnqueueFillBuffer(queue, a, one, elem, 0, n * elem, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(queue, b, one, elem, 0, n * elem, 0, NULL, NULL);
    const cl_ulong count = n;
    if (err == CL_SUCCESS)
        err = clSetKernelArg(copy, 0, sizeof a, &a);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(copy, 1, sizeof b, &b);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(copy, 2, sizeof count, &count);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(scale, 0, sizeof a, &a);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(scale, 1, elem, one);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(scale, 2, sizeof count, &count);
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "setting up the stream kernels");
        goto cleanup;
    }
    const size_t global = (n + wg * epw - 1) / (wg * epw) * wg;
    /* Two warm-up rounds (CPU runtimes compile per launch shape), then the timed ones. */
    for (unsigned r = 0; r < reps + 2 && status == CLOPT_OK; ++r)
        for (int k = 0; k < 2 && status == CLOPT_OK; ++k) {
            err = clEnqueueNDRangeKernel(queue, k ? scale : copy, 1, NULL, &global, &wg, 0, NULL,
                                         &event);
            if (err != CL_SUCCESS) {
                event = NULL;
                status = clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(stream)");
                break;
            }
            double seconds = 0;
            status = event_seconds(ctx, event, &seconds);
            clReleaseEvent(event);
            event = NULL;
            if (r >= 2)
                times[k * reps + (r - 2)] = seconds;
        }
    if (status != CLOPT_OK)
        goto cleanup;
    qsort(times, reps, sizeof *times, compare_doubles);
    qsort(times + reps, reps, sizeof *times, compare_doubles);
    out->n = n;
    out->reps = reps;
    out->copy_seconds = times[reps / 2];
    out->scale_seconds = times[reps + reps / 2];
    /* Both move each element twice: one read and one write. */
    const double bytes = 2.0 * (double)n * (double)elem;
    out->copy_gbytes_per_second = out->copy_seconds > 0 ? bytes / out->copy_seconds / 1e9 : 0;
    out->scale_gbytes_per_second = out->scale_seconds > 0 ? bytes / out->scale_seconds / 1e9 : 0;
cleanup:
    if (queue)
        clFinish(queue);
    if (a)
        clReleaseMemObject(a);
    if (b)
        clReleaseMemObject(b);
    if (copy)
        clReleaseKernel(copy);
    if (scale)
        clReleaseKernel(scale);
    if (program)
        clReleaseProgram(program);
    if (queue)
        clReleaseCommandQueue(queue);
    free(options);
    free(times);
    return status;
}
