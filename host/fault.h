/* Fault injection (test builds with -DCLOPT_FAULT_INJECTION=ON only): force-included into
 * every library and CLI source, it routes each OpenCL call and host allocation through a
 * counter, and the call numbered $CLOPT_FAULT_AT fails as the real one can (an OpenCL error
 * code, or NULL). Running a short job for every N then shows that each failure ends
 * cleanly: one message, a non-zero status, nothing leaked.
 * It also counts every OpenCL object clopt creates or retains against those it releases
 * and, at exit, reports any still live on stderr ("clopt fault: ... live at exit"): the
 * runtime's allocations are out of LeakSanitizer's reach (tests/lsan.supp), so this count
 * is what catches a leaked buffer, queue or event. */
#ifndef CLOPT_FAULT_H
#define CLOPT_FAULT_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Counts one call; non-zero when this one is to fail. */
int clopt_fault_here(const char *what);

/* A named fault point: the $CLOPT_FAULT_POINT_AT-th time (1 when unset) that any thread
 * passes the point named $CLOPT_FAULT_POINT, it fails (non-zero), once. The environment is
 * read at every call, so a test may set it between runs; thread ranks (tests/test_ranks.c)
 * share the count, so exactly one rank fails there. Outside the CLOPT_FAULT_AT count. */
int clopt_fault_point(const char *name);

/* Live OpenCL objects, by kind. */
enum clopt_fault_kind {
    CLOPT_FAULT_CONTEXT,
    CLOPT_FAULT_QUEUE,
    CLOPT_FAULT_MEM,
    CLOPT_FAULT_PROGRAM,
    CLOPT_FAULT_KERNEL,
    CLOPT_FAULT_EVENT,
    CLOPT_FAULT_KINDS
};
void clopt_fault_live(enum clopt_fault_kind kind, int delta);
/* A created object, counted when there is one. */
static inline void *clopt_fault_created(enum clopt_fault_kind kind, void *object)
{
    if (object)
        clopt_fault_live(kind, 1);
    return object;
}
/* A retain (delta 1) or release (-1), counted when it succeeded. */
static inline cl_int clopt_fault_counted(enum clopt_fault_kind kind, int delta, cl_int status)
{
    if (status == CL_SUCCESS)
        clopt_fault_live(kind, delta);
    return status;
}
/* An enqueue that returned an event. */
static inline cl_int clopt_fault_event(cl_int status, const cl_event *event)
{
    if (status == CL_SUCCESS && event && *event)
        clopt_fault_live(CLOPT_FAULT_EVENT, 1);
    return status;
}

/* Allocations also fail where one block passes $CLOPT_FAULT_MAX_ALLOC bytes (fault.c). */
void *clopt_fault_malloc(size_t size);
void *clopt_fault_calloc(size_t count, size_t size);
void *clopt_fault_realloc(void *p, size_t size);
char *clopt_fault_strdup(const char *s);

#define malloc(size) clopt_fault_malloc(size)
#define calloc(count, size) clopt_fault_calloc(count, size)
#define realloc(p, size) clopt_fault_realloc(p, size)
#define strdup(s) clopt_fault_strdup(s)

/* File output: the calls through which every byte clopt writes reaches the disk (theta,
 * checkpoints and their .prev, the trace, the JSON, the program cache, the tuning database)
 * are fault points too, failing with errno EIO (ENOSPC for writes) as a full or failing disk
 * makes them. The descriptor or stream is still closed by a failed fclose, as the real one
 * does. */
int clopt_fault_io(const char *what, int error);
#define fwrite(p, size, n, f) (clopt_fault_io("fwrite", ENOSPC) ? (size_t)0 : fwrite(p, size, n, f))
#define fflush(f) (clopt_fault_io("fflush", ENOSPC) ? EOF : fflush(f))
#define fclose(f) (clopt_fault_io("fclose", EIO) ? (fclose(f), EOF) : fclose(f))
#define fsync(fd) (clopt_fault_io("fsync", EIO) ? -1 : fsync(fd))
#define rename(from, to) (clopt_fault_io("rename", EIO) ? -1 : rename(from, to))
#define link(from, to) (clopt_fault_io("link", EIO) ? -1 : link(from, to))

/* Calls that return a status. */
#define CLOPT_FAULT_STATUS(call, ...)                                                              \
    (clopt_fault_here(#call) ? (cl_int)CL_OUT_OF_RESOURCES : call(__VA_ARGS__))
/* Calls that return an object and report through their last argument. */
static inline void clopt_fault_report(cl_int *err)
{
    if (err)
        *err = CL_OUT_OF_HOST_MEMORY;
}
#define CLOPT_FAULT_OBJECT(kind, type, call, err, ...)                                             \
    (clopt_fault_here(#call) ? (clopt_fault_report(err), (type)NULL)                               \
                             : (type)clopt_fault_created(kind, call(__VA_ARGS__, err)))

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
#define clEnqueueNDRangeKernel(queue, kernel, dims, offset, global, local, n, wait, event)         \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueNDRangeKernel, queue, kernel, dims, offset,      \
                                         global, local, n, wait, event),                           \
                      event)
#define clEnqueueReadBuffer(queue, mem, blocking, offset, size, ptr, n, wait, event)               \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueReadBuffer, queue, mem, blocking, offset, size,  \
                                         ptr, n, wait, event),                                     \
                      event)
#define clEnqueueWriteBuffer(queue, mem, blocking, offset, size, ptr, n, wait, event)              \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueWriteBuffer, queue, mem, blocking, offset, size, \
                                         ptr, n, wait, event),                                     \
                      event)
#define clEnqueueFillBuffer(queue, mem, pattern, pattern_size, offset, size, n, wait, event)       \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueFillBuffer, queue, mem, pattern, pattern_size,   \
                                         offset, size, n, wait, event),                            \
                      event)
#define clEnqueueCopyBuffer(queue, src, dst, src_offset, dst_offset, size, n, wait, event)         \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueCopyBuffer, queue, src, dst, src_offset,         \
                                         dst_offset, size, n, wait, event),                        \
                      event)
#define clEnqueueMarkerWithWaitList(queue, n, wait, event)                                         \
    clopt_fault_event(CLOPT_FAULT_STATUS(clEnqueueMarkerWithWaitList, queue, n, wait, event), event)
#define clFinish(...) CLOPT_FAULT_STATUS(clFinish, __VA_ARGS__)
#define clFlush(...) CLOPT_FAULT_STATUS(clFlush, __VA_ARGS__)
#define clWaitForEvents(...) CLOPT_FAULT_STATUS(clWaitForEvents, __VA_ARGS__)
#define clGetEventProfilingInfo(...) CLOPT_FAULT_STATUS(clGetEventProfilingInfo, __VA_ARGS__)
#define clRetainContext(context)                                                                   \
    clopt_fault_counted(CLOPT_FAULT_CONTEXT, 1, CLOPT_FAULT_STATUS(clRetainContext, context))
#define clRetainCommandQueue(queue)                                                                \
    clopt_fault_counted(CLOPT_FAULT_QUEUE, 1, CLOPT_FAULT_STATUS(clRetainCommandQueue, queue))
#define clRetainMemObject(mem)                                                                     \
    clopt_fault_counted(CLOPT_FAULT_MEM, 1, CLOPT_FAULT_STATUS(clRetainMemObject, mem))
/* Releases are no fault points (clopt cannot do anything about a failed one), only counted. */
#define clReleaseContext(x) clopt_fault_counted(CLOPT_FAULT_CONTEXT, -1, clReleaseContext(x))
#define clReleaseCommandQueue(x)                                                                   \
    clopt_fault_counted(CLOPT_FAULT_QUEUE, -1, clReleaseCommandQueue(x))
#define clReleaseMemObject(x) clopt_fault_counted(CLOPT_FAULT_MEM, -1, clReleaseMemObject(x))
#define clReleaseProgram(x) clopt_fault_counted(CLOPT_FAULT_PROGRAM, -1, clReleaseProgram(x))
#define clReleaseKernel(x) clopt_fault_counted(CLOPT_FAULT_KERNEL, -1, clReleaseKernel(x))
#define clReleaseEvent(x) clopt_fault_counted(CLOPT_FAULT_EVENT, -1, clReleaseEvent(x))

#define clCreateBuffer(context, flags, size, host, err)                                            \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_MEM, cl_mem, clCreateBuffer, err, context, flags, size, host)
#define clCreateKernel(program, name, err)                                                         \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_KERNEL, cl_kernel, clCreateKernel, err, program, name)
#define clCreateProgramWithSource(context, count, strings, lengths, err)                           \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_PROGRAM, cl_program, clCreateProgramWithSource, err, context,   \
                       count, strings, lengths)
#define clCreateProgramWithBinary(context, count, devices, lengths, binaries, status, err)         \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_PROGRAM, cl_program, clCreateProgramWithBinary, err, context,   \
                       count, devices, lengths, binaries, status)
#define clCreateContext(props, count, devices, notify, user, err)                                  \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_CONTEXT, cl_context, clCreateContext, err, props, count,        \
                       devices, notify, user)
#define clCreateCommandQueue(context, device, props, err)                                          \
    CLOPT_FAULT_OBJECT(CLOPT_FAULT_QUEUE, cl_command_queue, clCreateCommandQueue, err, context,    \
                       device, props)

#endif
