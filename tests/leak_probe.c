/* Shows that tests/lsan.supp suppresses only the OpenCL runtime's own caches: with an
 * argument "leak" this probe leaks 100 buffers and a queue through the OpenCL library,
 * which LeakSanitizer must report; without it, it releases everything and nothing may be
 * reported (sanitizer builds run both, see CMakeLists.txt). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <string.h>

#define BUFFERS 100

int main(int argc, char **argv)
{
    const int leak = argc > 1 && strcmp(argv[1], "leak") == 0;
    cl_platform_id platform;
    cl_device_id device;
    cl_int err = clGetPlatformIDs(1, &platform, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "leak_probe: no OpenCL device (%d)\n", err);
        return 1;
    }
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "leak_probe: clCreateContext failed (%d)\n", err);
        return 1;
    }
    cl_command_queue queue = clCreateCommandQueue(context, device, 0, &err);
    cl_mem buffers[BUFFERS] = {0};
    for (int i = 0; err == CL_SUCCESS && i < BUFFERS; ++i)
        buffers[i] = clCreateBuffer(context, CL_MEM_READ_WRITE, 1024, NULL, &err);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "leak_probe: creating a queue or a buffer failed (%d)\n", err);
        return 1;
    }
    const float zero = 0.0f;
    for (int i = 0; err == CL_SUCCESS && i < BUFFERS; ++i)
        err = clEnqueueFillBuffer(queue, buffers[i], &zero, sizeof zero, 0, 1024, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clFinish(queue);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "leak_probe: filling the buffers failed (%d)\n", err);
        return 1;
    }
    if (!leak) {
        for (int i = 0; i < BUFFERS; ++i)
            clReleaseMemObject(buffers[i]);
        clReleaseCommandQueue(queue);
        clReleaseContext(context);
    }
    printf("leak_probe: %s\n", leak ? "leaked 100 buffers and a queue" : "released everything");
    return 0;
}
