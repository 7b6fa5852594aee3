/* oclgrind artefact, shown on a minimal program: after a host-side store into PART of a
 * buffer (clEnqueueFillBuffer with a pattern shorter than the buffer, clEnqueueWriteBuffer
 * or clEnqueueCopyBuffer of a sub-range), oclgrind --uninitialized treats the rest of the
 * buffer as uninitialised, so a kernel that reads it reports "Uninitialized value written"
 * although every byte was written and the results are right.
 *
 * Why (oclgrind 21.10 and its current master): Uninitialized::hostMemoryStore calls
 * allocAndStoreShadowMemory(address, clean value of `size` bytes), and ShadowMemory::allocate
 * replaces the shadow of the whole buffer with one of `size` bytes, ignoring the offset;
 * a store at a non-zero offset then lies outside that shadow and is dropped. Each pattern
 * copy of a fill is one such store, so after a fill the shadow is one pattern long; a copy
 * between buffers is one store into the destination (Memory::copy).
 *
 * Usage: host_store_shadow KERNEL.cl MODE, MODE one of
 *   whole   one clEnqueueWriteBuffer of the whole buffer    (oclgrind: clean)
 *   fill1   clEnqueueFillBuffer, 1-byte pattern 0            (oclgrind: reports)
 *   fill4   clEnqueueFillBuffer, 4-byte pattern 0.0f         (oclgrind: reports)
 *   halves  two clEnqueueWriteBuffer calls, one per half     (oclgrind: reports)
 *   copy    a whole write, then clEnqueueCopyBuffer of its first element from another
 *           wholly written buffer (a stencil's halo exchange) (oclgrind: reports)
 * It checks the values it reads back and exits 1 if any is wrong, so a run under oclgrind
 * that reports and exits 0 proves the report false. scripts/oclgrind_check.sh runs it. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 64

static int fail(const char *what, cl_int err)
{
    fprintf(stderr, "host_store_shadow: %s failed (%d)\n", what, (int)err);
    return 1;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = calloc(1, 1 << 16);
    if (text && fread(text, 1, (1 << 16) - 1, f) == 0) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* Initialises a (N floats, all 0) the way MODE says; other is a second buffer of N floats. */
static cl_int initialise(cl_command_queue q, cl_mem a, cl_mem other, const char *mode)
{
    static const float zeros[N];
    const cl_uchar byte = 0;
    const float zero = 0.0f;
    if (!strcmp(mode, "whole"))
        return clEnqueueWriteBuffer(q, a, CL_TRUE, 0, sizeof zeros, zeros, 0, NULL, NULL);
    if (!strcmp(mode, "fill1"))
        return clEnqueueFillBuffer(q, a, &byte, 1, 0, sizeof zeros, 0, NULL, NULL);
    if (!strcmp(mode, "fill4"))
        return clEnqueueFillBuffer(q, a, &zero, sizeof zero, 0, sizeof zeros, 0, NULL, NULL);
    if (!strcmp(mode, "halves")) {
        cl_int err = clEnqueueWriteBuffer(q, a, CL_TRUE, 0, sizeof zeros / 2, zeros, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueWriteBuffer(q, a, CL_TRUE, sizeof zeros / 2, sizeof zeros / 2, zeros, 0,
                                       NULL, NULL);
        return err;
    }
    if (!strcmp(mode, "copy")) {
        cl_int err = clEnqueueWriteBuffer(q, a, CL_TRUE, 0, sizeof zeros, zeros, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueWriteBuffer(q, other, CL_TRUE, 0, sizeof zeros, zeros, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueCopyBuffer(q, other, a, 0, 0, sizeof(float), 0, NULL, NULL);
        return err == CL_SUCCESS ? clFinish(q) : err;
    }
    return CL_INVALID_VALUE;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: host_store_shadow KERNEL.cl whole|fill1|fill4|halves|copy\n");
        return 2;
    }
    char *source = read_text(argv[1]);
    if (!source) {
        fprintf(stderr, "host_store_shadow: cannot read %s\n", argv[1]);
        return 2;
    }
    cl_platform_id platform;
    cl_device_id device;
    cl_int err = clGetPlatformIDs(1, &platform, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    if (err != CL_SUCCESS)
        return fail("device", err);
    cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateContext", err);
    cl_command_queue q = clCreateCommandQueue(ctx, device, 0, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateCommandQueue", err);
    const char *sources[] = {source};
    cl_program program = clCreateProgramWithSource(ctx, 1, sources, NULL, &err);
    if (err == CL_SUCCESS)
        err = clBuildProgram(program, 1, &device, "", NULL, NULL);
    if (err != CL_SUCCESS)
        return fail("build", err);
    cl_kernel kernel = clCreateKernel(program, "plus_one", &err);
    if (err != CL_SUCCESS)
        return fail("clCreateKernel", err);
    cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &err);
    cl_mem b = err == CL_SUCCESS
                   ? clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &err)
                   : NULL;
    if (err != CL_SUCCESS)
        return fail("clCreateBuffer", err);
    cl_mem other = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS)
        return fail("clCreateBuffer", err);
    err = initialise(q, a, other, argv[2]);
    if (err != CL_SUCCESS)
        return fail(argv[2], err);
    err = clSetKernelArg(kernel, 0, sizeof a, &a);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(kernel, 1, sizeof b, &b);
    const size_t global = N;
    if (err == CL_SUCCESS)
        err = clEnqueueNDRangeKernel(q, kernel, 1, NULL, &global, NULL, 0, NULL, NULL);
    float out[N];
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(q, b, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return fail("run", err);
    int wrong = 0;
    for (int i = 0; i < N; ++i)
        wrong += out[i] != 1.0f;
    printf("%s: %d of %d values wrong\n", argv[2], wrong, N);
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clReleaseMemObject(other);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    free(source);
    return wrong ? 1 : 0;
}
