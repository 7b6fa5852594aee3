/* Fault injection (test builds with -DCLOPT_FAULT_INJECTION=ON only): force-included into
 * every library and CLI source, it routes each OpenCL call and host allocation through a
 * counter, and the call numbered $CLOPT_FAULT_AT fails as the real one can (an OpenCL error
 * code, or NULL). Running a short job for every N then shows that each failure ends
 * cleanly: one message, a non-zero status, nothing leaked. */
#ifndef CLOPT_FAULT_H
#define CLOPT_FAULT_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdlib.h>
#include <string.h>

/* Counts one call; non-zero when this one is to fail. */
int clopt_fault_here(const char *what);

void *clopt_fault_malloc(size_t size);
void *clopt_fault_calloc(size_t count, size_t size);
void *clopt_fault_realloc(void *p, size_t size);
char *clopt_fault_strdup(const char *s);

#define malloc(size) clopt_fault_malloc(size)
#define calloc(count, size) clopt_fault_calloc(count, size)
#define realloc(p, size) clopt_fault_realloc(p, size)
#define strdup(s) clopt_fault_strdup(s)

/* Calls that return a status. */
#define CLOPT_FAULT_STATUS(call, ...)                                                              \
    (clopt_fault_here(#call) ? (cl_int)CL_OUT_OF_RESOURCES : call(__VA_ARGS__))
/* Calls that return an object and report through their last argument. */
static inline void clopt_fault_report(cl_int *err)
{
    if (err)
        *err = CL_OUT_OF_HOST_MEMORY;
}
#define CLOPT_FAULT_OBJECT(type, call, err, ...)                                                   \
    (clopt_fault_here(#call) ? (clopt_fault_report(err), (type)NULL) : call(__VA_ARGS__, err))

#define clGetPlatformIDs(...) CLOPT_FAULT_STATUS(clGetPlatformIDs, __VA_ARGS__)
#define clGetPlatformInfo(...) CLOPT_FAULT_STATUS(clGetPlatformInfo, __VA_ARGS__)
#define clGetDeviceIDs(...) CLOPT_FAULT_STATUS(clGetDeviceIDs, __VA_ARGS__)
#define clGetDeviceInfo(...) CLOPT_FAULT_STATUS(clGetDeviceInfo, __VA_ARGS__)
#define clGetCommandQueueInfo(...) CLOPT_FAULT_STATUS(clGetCommandQueueInfo, __VA_ARGS__)
#define clGetProgramBuildInfo(...) CLOPT_FAULT_STATUS(clGetProgramBuildInfo, __VA_ARGS__)
#define clGetProgramInfo(...) CLOPT_FAULT_STATUS(clGetProgramInfo, __VA_ARGS__)
#define clGetKernelWorkGroupInfo(...) CLOPT_FAULT_STATUS(clGetKernelWorkGroupInfo, __VA_ARGS__)
#define clBuildProgram(...) CLOPT_FAULT_STATUS(clBuildProgram, __VA_ARGS__)
#define clSetKernelArg(...) CLOPT_FAULT_STATUS(clSetKernelArg, __VA_ARGS__)
#define clEnqueueNDRangeKernel(...) CLOPT_FAULT_STATUS(clEnqueueNDRangeKernel, __VA_ARGS__)
#define clEnqueueReadBuffer(...) CLOPT_FAULT_STATUS(clEnqueueReadBuffer, __VA_ARGS__)
#define clEnqueueWriteBuffer(...) CLOPT_FAULT_STATUS(clEnqueueWriteBuffer, __VA_ARGS__)
#define clEnqueueFillBuffer(...) CLOPT_FAULT_STATUS(clEnqueueFillBuffer, __VA_ARGS__)
#define clEnqueueCopyBuffer(...) CLOPT_FAULT_STATUS(clEnqueueCopyBuffer, __VA_ARGS__)
#define clFinish(...) CLOPT_FAULT_STATUS(clFinish, __VA_ARGS__)
#define clFlush(...) CLOPT_FAULT_STATUS(clFlush, __VA_ARGS__)
#define clWaitForEvents(...) CLOPT_FAULT_STATUS(clWaitForEvents, __VA_ARGS__)
#define clGetEventProfilingInfo(...) CLOPT_FAULT_STATUS(clGetEventProfilingInfo, __VA_ARGS__)
#define clRetainContext(...) CLOPT_FAULT_STATUS(clRetainContext, __VA_ARGS__)
#define clRetainCommandQueue(...) CLOPT_FAULT_STATUS(clRetainCommandQueue, __VA_ARGS__)

#define clCreateBuffer(context, flags, size, host, err)                                            \
    CLOPT_FAULT_OBJECT(cl_mem, clCreateBuffer, err, context, flags, size, host)
#define clCreateKernel(program, name, err)                                                         \
    CLOPT_FAULT_OBJECT(cl_kernel, clCreateKernel, err, program, name)
#define clCreateProgramWithSource(context, count, strings, lengths, err)                           \
    CLOPT_FAULT_OBJECT(cl_program, clCreateProgramWithSource, err, context, count, strings, lengths)
#define clCreateProgramWithBinary(context, count, devices, lengths, binaries, status, err)         \
    CLOPT_FAULT_OBJECT(cl_program, clCreateProgramWithBinary, err, context, count, devices,        \
                       lengths, binaries, status)
#define clCreateContext(props, count, devices, notify, user, err)                                  \
    CLOPT_FAULT_OBJECT(cl_context, clCreateContext, err, props, count, devices, notify, user)
#define clCreateCommandQueue(context, device, props, err)                                          \
    CLOPT_FAULT_OBJECT(cl_command_queue, clCreateCommandQueue, err, context, device, props)

#endif
