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

/* The stream kernels, their buffers and a profiling queue. */
struct stream {
    cl_program program;
    cl_kernel copy, scale;
    cl_mem a, b;
    cl_command_queue queue;
    size_t n, elem, wg, epw;
};

/* Builds the kernels, makes the queue and the buffers (filled with ones), sets the
 * arguments. */
static int stream_setup(struct clopt_context *ctx, struct stream *st, const char *options,
                        enum clopt_precision precision)
{
    cl_int err = CL_SUCCESS;
    const struct clopt_program_part parts[] = {{"common.cl", 0}, {"stream.cl", 0}};
    int status = clopt_build_program(ctx, parts, 2, options, &st->program);
    if (status != CLOPT_OK)
        return status;
    st->copy = clCreateKernel(st->program, "clopt_stream_copy", &err);
    if (err == CL_SUCCESS)
        st->scale = clCreateKernel(st->program, "clopt_stream_scale", &err);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clCreateKernel(stream)");
    /* Its own queue, with profiling, whatever the caller's queue has. */
    st->queue = clCreateCommandQueue(ctx->context, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        st->queue = NULL;
        return clopt_fail_cl(ctx, err, "clCreateCommandQueue(profiling)");
    }
    const size_t bytes = st->n * st->elem;
    st->a = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err == CL_SUCCESS)
        st->b = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clCreateBuffer(stream)");
    /* Ones, scaled by one: no overflow and no denormals however often it runs. */
    const double one_d = 1.0;
    const float one_f = 1.0f;
    const void *one = precision == CLOPT_DOUBLE ? (const void *)&one_d : (const void *)&one_f;
    err = clEnqueueFillBuffer(st->queue, st->a, one, st->elem, 0, bytes, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueFillBuffer(st->queue, st->b, one, st->elem, 0, bytes, 0, NULL, NULL);
    const cl_ulong count = st->n;
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->copy, 0, sizeof st->a, &st->a);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->copy, 1, sizeof st->b, &st->b);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->copy, 2, sizeof count, &count);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->scale, 0, sizeof st->a, &st->a);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->scale, 1, st->elem, one);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(st->scale, 2, sizeof count, &count);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "setting up the stream kernels");
    return CLOPT_OK;
}

/* Two warm-up rounds (CPU runtimes compile per launch shape), then `reps` timed ones:
 * times[0..reps) the copies, times[reps..2 reps) the scales. */
static int stream_time(struct clopt_context *ctx, struct stream *st, unsigned reps, double *times)
{
    const size_t global = (st->n + st->wg * st->epw - 1) / (st->wg * st->epw) * st->wg;
    int status = CLOPT_OK;
    for (unsigned r = 0; r < reps + 2 && status == CLOPT_OK; ++r)
        for (int k = 0; k < 2 && status == CLOPT_OK; ++k) {
            cl_event event = NULL;
            cl_int err = clEnqueueNDRangeKernel(st->queue, k ? st->scale : st->copy, 1, NULL,
                                                &global, &st->wg, 0, NULL, &event);
            if (err != CL_SUCCESS)
                return clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(stream)");
            double seconds = 0;
            status = event_seconds(ctx, event, &seconds);
            clReleaseEvent(event);
            if (r >= 2)
                times[k * reps + (r - 2)] = seconds;
        }
    return status;
}

static void stream_release(struct stream *st)
{
    if (st->queue)
        clFinish(st->queue);
    if (st->a)
        clReleaseMemObject(st->a);
    if (st->b)
        clReleaseMemObject(st->b);
    if (st->copy)
        clReleaseKernel(st->copy);
    if (st->scale)
        clReleaseKernel(st->scale);
    if (st->program)
        clReleaseProgram(st->program);
    if (st->queue)
        clReleaseCommandQueue(st->queue);
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
    struct stream st = {.elem = precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float)};
    /* Two buffers that fit the device: a smaller n still measures the same bandwidth. */
    size_t cap = (size_t)(ctx->info.max_alloc_bytes / st.elem);
    if (cap > ctx->info.global_mem_bytes / (3 * st.elem))
        cap = (size_t)(ctx->info.global_mem_bytes / (3 * st.elem));
    st.n = n > cap ? cap : n;
    const int cpu = ctx->info.kind == CLOPT_DEVICE_CPU;
    st.wg = cpu ? 16 : 256;
    st.epw = cpu ? 4096 : 16;
    char *options = clopt_format(
        "-cl-std=CL1.2 -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d -DCLOPT_WG=%zu "
        "-DCLOPT_EPW=%zu -DCLOPT_LAYOUT=%d",
        ctx->info.has_fp64 ? 1 : 0, precision == CLOPT_DOUBLE, st.wg, st.epw, cpu ? 1 : 2);
    double *times = malloc(2 * reps * sizeof *times);
    int status = !options || !times ? clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory")
                                    : stream_setup(ctx, &st, options, precision);
    if (status == CLOPT_OK)
        status = stream_time(ctx, &st, reps, times);
    if (status == CLOPT_OK) {
        qsort(times, reps, sizeof *times, compare_doubles);
        qsort(times + reps, reps, sizeof *times, compare_doubles);
        out->n = st.n;
        out->reps = reps;
        out->copy_seconds = times[reps / 2];
        out->scale_seconds = times[reps + reps / 2];
        /* Both move each element twice: one read and one write. */
        const double bytes = 2.0 * (double)st.n * (double)st.elem;
        out->copy_gbytes_per_second = out->copy_seconds > 0 ? bytes / out->copy_seconds / 1e9 : 0;
        out->scale_gbytes_per_second =
            out->scale_seconds > 0 ? bytes / out->scale_seconds / 1e9 : 0;
    }
    stream_release(&st);
    free(options);
    free(times);
    return status;
}
