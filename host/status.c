/* Status strings, OpenCL error names and the context's last-error message. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const status_text[] = {
    [CLOPT_OK] = "success",
    [CLOPT_STOP_MAX_ITERS] = "iteration limit reached",
    [CLOPT_STOP_GTOL] = "gradient norm below gtol",
    [CLOPT_STOP_FTOL] = "relative loss change below ftol",
    [CLOPT_STOP_TARGET] = "loss reached target",
    [CLOPT_STOP_CANCELLED] = "cancelled",
    [CLOPT_STOP_LINE_SEARCH] = "line search failed (no acceptable step)",
    [CLOPT_STOP_MAX_EVALS] = "evaluation limit reached",
};

static const char *const error_text[] = {
    [-CLOPT_ERR_INVALID_ARG] = "invalid argument",
    [-CLOPT_ERR_BAD_FILE] = "bad input file",
    [-CLOPT_ERR_IO] = "input/output error",
    [-CLOPT_ERR_NO_DEVICE] = "no OpenCL device",
    [-CLOPT_ERR_UNSUPPORTED] = "device lacks a needed feature",
    [-CLOPT_ERR_OUT_OF_MEMORY] = "out of memory",
    [-CLOPT_ERR_BUILD] = "kernel build failed",
    [-CLOPT_ERR_OPENCL] = "OpenCL call failed",
    [-CLOPT_ERR_DIVERGED] = "diverged (loss or gradient not finite)",
    [-CLOPT_ERR_NO_CANDIDATE] = "no tuning candidate ran correctly",
};

const char *clopt_strerror(int status)
{
    if (status >= 0 && (size_t)status < sizeof status_text / sizeof *status_text &&
        status_text[status])
        return status_text[status];
    if (status < 0 && (size_t)-status < sizeof error_text / sizeof *error_text &&
        error_text[-status])
        return error_text[-status];
    return "unknown status";
}

const char *clopt_cl_error_name(cl_int err)
{
    switch (err) {
#define CASE(code)                                                                                 \
    case code:                                                                                     \
        return #code
        CASE(CL_SUCCESS);
        CASE(CL_DEVICE_NOT_FOUND);
        CASE(CL_DEVICE_NOT_AVAILABLE);
        CASE(CL_COMPILER_NOT_AVAILABLE);
        CASE(CL_MEM_OBJECT_ALLOCATION_FAILURE);
        CASE(CL_OUT_OF_RESOURCES);
        CASE(CL_OUT_OF_HOST_MEMORY);
        CASE(CL_PROFILING_INFO_NOT_AVAILABLE);
        CASE(CL_MEM_COPY_OVERLAP);
        CASE(CL_IMAGE_FORMAT_MISMATCH);
        CASE(CL_IMAGE_FORMAT_NOT_SUPPORTED);
        CASE(CL_BUILD_PROGRAM_FAILURE);
        CASE(CL_MAP_FAILURE);
        CASE(CL_MISALIGNED_SUB_BUFFER_OFFSET);
        CASE(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
        CASE(CL_COMPILE_PROGRAM_FAILURE);
        CASE(CL_LINKER_NOT_AVAILABLE);
        CASE(CL_LINK_PROGRAM_FAILURE);
        CASE(CL_DEVICE_PARTITION_FAILED);
        CASE(CL_KERNEL_ARG_INFO_NOT_AVAILABLE);
        CASE(CL_INVALID_VALUE);
        CASE(CL_INVALID_DEVICE_TYPE);
        CASE(CL_INVALID_PLATFORM);
        CASE(CL_INVALID_DEVICE);
        CASE(CL_INVALID_CONTEXT);
        CASE(CL_INVALID_QUEUE_PROPERTIES);
        CASE(CL_INVALID_COMMAND_QUEUE);
        CASE(CL_INVALID_HOST_PTR);
        CASE(CL_INVALID_MEM_OBJECT);
        CASE(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
        CASE(CL_INVALID_IMAGE_SIZE);
        CASE(CL_INVALID_SAMPLER);
        CASE(CL_INVALID_BINARY);
        CASE(CL_INVALID_BUILD_OPTIONS);
        CASE(CL_INVALID_PROGRAM);
        CASE(CL_INVALID_PROGRAM_EXECUTABLE);
        CASE(CL_INVALID_KERNEL_NAME);
        CASE(CL_INVALID_KERNEL_DEFINITION);
        CASE(CL_INVALID_KERNEL);
        CASE(CL_INVALID_ARG_INDEX);
        CASE(CL_INVALID_ARG_VALUE);
        CASE(CL_INVALID_ARG_SIZE);
        CASE(CL_INVALID_KERNEL_ARGS);
        CASE(CL_INVALID_WORK_DIMENSION);
        CASE(CL_INVALID_WORK_GROUP_SIZE);
        CASE(CL_INVALID_WORK_ITEM_SIZE);
        CASE(CL_INVALID_GLOBAL_OFFSET);
        CASE(CL_INVALID_EVENT_WAIT_LIST);
        CASE(CL_INVALID_EVENT);
        CASE(CL_INVALID_OPERATION);
        CASE(CL_INVALID_GL_OBJECT);
        CASE(CL_INVALID_BUFFER_SIZE);
        CASE(CL_INVALID_MIP_LEVEL);
        CASE(CL_INVALID_GLOBAL_WORK_SIZE);
        CASE(CL_INVALID_PROPERTY);
        CASE(CL_INVALID_IMAGE_DESCRIPTOR);
        CASE(CL_INVALID_COMPILER_OPTIONS);
        CASE(CL_INVALID_LINKER_OPTIONS);
        CASE(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef CASE
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
        return "unknown OpenCL error";
    }
}

char *clopt_vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int length = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (length < 0)
        return NULL;
    char *text = malloc((size_t)length + 1);
    if (text)
        vsnprintf(text, (size_t)length + 1, fmt, ap);
    return text;
}

char *clopt_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = clopt_vformat(fmt, ap);
    va_end(ap);
    return text;
}

int clopt_fail(struct clopt_context *ctx, int status, const char *fmt, ...)
{
    if (!ctx)
        return status;
    va_list ap;
    va_start(ap, fmt);
    char *text = clopt_vformat(fmt, ap);
    va_end(ap);
    free(ctx->errmsg);
    ctx->errmsg = text;
    return status;
}

int clopt_fail_cl(struct clopt_context *ctx, cl_int err, const char *call)
{
    if (err == CL_OUT_OF_RESOURCES)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY,
                          "%s failed: CL_OUT_OF_RESOURCES (%d): the device ran out of memory, "
                          "or of registers or local memory for this launch; try a smaller "
                          "options.dim or a smaller knobs.work_group",
                          call, err);
    const int out_of_memory =
        err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE;
    if (out_of_memory)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY,
                          "%s failed: %s (%d): the device ran out of memory; try a smaller "
                          "options.dim or another device",
                          call, clopt_cl_error_name(err), err);
    return clopt_fail(ctx, CLOPT_ERR_OPENCL, "%s failed: %s (%d)", call, clopt_cl_error_name(err),
                      err);
}

const char *clopt_errmsg(const struct clopt_context *ctx)
{
    if (!ctx || !ctx->errmsg)
        return "no error recorded";
    return ctx->errmsg;
}
