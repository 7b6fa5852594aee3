/* Kernel sources (embedded or from a directory) and program builds with readable logs. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct clopt_embedded_kernel {
    const char *name;
    const char *text;
    size_t length;
};
extern const struct clopt_embedded_kernel clopt_embedded_kernels[];

int clopt_read_file(struct clopt_context *ctx, const char *path, char **text, size_t *length)
{
    *text = NULL;
    *length = 0;
    int status = CLOPT_OK;
    char *buffer = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return clopt_fail(ctx, CLOPT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0) {
        status = clopt_fail(ctx, CLOPT_ERR_IO, "cannot seek in '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    off_t size = ftello(f);
    if (size < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        status = clopt_fail(ctx, CLOPT_ERR_IO, "cannot size '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    buffer = malloc((size_t)size + 1);
    if (!buffer) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
        goto cleanup;
    }
    if (fread(buffer, 1, (size_t)size, f) != (size_t)size) {
        status = clopt_fail(ctx, CLOPT_ERR_IO, "cannot read '%s'", path);
        goto cleanup;
    }
    buffer[size] = '\0';
    *text = buffer;
    *length = (size_t)size;
    buffer = NULL;
cleanup:
    free(buffer);
    fclose(f);
    return status;
}

int clopt_kernel_source(struct clopt_context *ctx, const char *name, char **text, size_t *length)
{
    if (ctx->kernel_dir) {
        char *path = clopt_format("%s/%s", ctx->kernel_dir, name);
        if (!path)
            return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        int status = clopt_read_file(ctx, path, text, length);
        free(path);
        if (status == CLOPT_ERR_IO)
            return clopt_fail(ctx, CLOPT_ERR_IO,
                              "kernel '%s' not found in the kernel directory '%s' (unset "
                              "--kernel-dir/CLOPT_KERNEL_DIR to use the built-in kernels)",
                              name, ctx->kernel_dir);
        return status;
    }
    for (const struct clopt_embedded_kernel *k = clopt_embedded_kernels; k->name; ++k) {
        if (strcmp(k->name, name) == 0) {
            *text = malloc(k->length + 1);
            if (!*text)
                return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
            memcpy(*text, k->text, k->length);
            (*text)[k->length] = '\0';
            *length = k->length;
            return CLOPT_OK;
        }
    }
    return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "no built-in kernel named '%s'", name);
}

/* Appends text to the growing buffer *dst; returns 0 on allocation failure. */
static int append(char **dst, size_t *used, size_t *capacity, const char *text, size_t length)
{
    if (*used + length + 1 > *capacity) {
        size_t wanted = (*used + length + 1) * 2;
        char *grown = realloc(*dst, wanted);
        if (!grown)
            return 0;
        *dst = grown;
        *capacity = wanted;
    }
    memcpy(*dst + *used, text, length);
    *used += length;
    (*dst)[*used] = '\0';
    return 1;
}

int clopt_build_program(struct clopt_context *ctx, const struct clopt_program_part *parts,
                        size_t n_parts, const char *options, cl_program *out)
{
    *out = NULL;
    int status = CLOPT_OK;
    char *source = NULL, *text = NULL, *log = NULL;
    size_t used = 0, capacity = 0, length = 0;
    cl_program program = NULL;
    for (size_t i = 0; i < n_parts; ++i) {
        status = parts[i].from_path ? clopt_read_file(ctx, parts[i].name, &text, &length)
                                    : clopt_kernel_source(ctx, parts[i].name, &text, &length);
        if (status != CLOPT_OK)
            goto cleanup;
        if (strchr(parts[i].name, '"') || strchr(parts[i].name, '\n')) {
            status = clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                "kernel file name '%s' contains a quote or newline", parts[i].name);
            goto cleanup;
        }
        char *line = clopt_format("#line 1 \"%s\"\n", parts[i].name);
        int ok = line && append(&source, &used, &capacity, line, strlen(line)) &&
                 append(&source, &used, &capacity, text, length) &&
                 append(&source, &used, &capacity, "\n", 1);
        free(line);
        free(text);
        text = NULL;
        if (!ok) {
            status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
            goto cleanup;
        }
    }
    cl_int err;
    const char *sources[] = {source};
    program = clCreateProgramWithSource(ctx->context, 1, sources, NULL, &err);
    if (err != CL_SUCCESS) {
        program = NULL;
        status = clopt_fail_cl(ctx, err, "clCreateProgramWithSource");
        goto cleanup;
    }
    err = clBuildProgram(program, 1, &ctx->device, options, NULL, NULL);
    if (err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS) {
        size_t log_size = 0;
        clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
        log = calloc(log_size + 1, 1);
        if (log)
            clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
        size_t n = log ? strlen(log) : 0;
        while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
            log[--n] = '\0';
        status = clopt_fail(ctx, CLOPT_ERR_BUILD, "kernel build failed (%s, options: %s):\n%s",
                            clopt_cl_error_name(err), options, log ? log : "(no log)");
        goto cleanup;
    }
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "clBuildProgram");
        goto cleanup;
    }
    *out = program;
    program = NULL;
cleanup:
    if (program)
        clReleaseProgram(program);
    free(source);
    free(text);
    free(log);
    return status;
}
