/* Kernel sources: embedded in the binary or from a kernel directory (read as every input
 * file is: without blocking, regular files only). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    /* O_NONBLOCK: a FIFO named as a kernel file opens at once (and is refused below) instead
     * of waiting for a writer forever; on a regular file it changes nothing. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = clopt_fail(ctx, CLOPT_ERR_IO, "cannot size '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "'%s' is %s, not a regular file", path,
                            S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        goto cleanup;
    }
    if ((uint64_t)st.st_size >= SIZE_MAX) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "'%s' is too large", path);
        goto cleanup;
    }
    const size_t size = (size_t)st.st_size;
    buffer = malloc(size + 1);
    if (!buffer) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
        goto cleanup;
    }
    size_t done = 0;
    while (done < size) {
        const ssize_t n = read(fd, buffer + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            status = clopt_fail(ctx, CLOPT_ERR_IO, "cannot read '%s': %s", path,
                                n < 0 ? strerror(errno) : "it shrank while being read");
            goto cleanup;
        }
        done += (size_t)n;
    }
    buffer[size] = '\0';
    *text = buffer;
    *length = size;
    buffer = NULL;
cleanup:
    free(buffer);
    close(fd);
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
        if (status == CLOPT_ERR_BAD_FILE) {
            char why[512];
            snprintf(why, sizeof why, "%s", ctx->errmsg ? ctx->errmsg : "");
            return clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                              "kernel '%s' not usable in the kernel directory '%s' (%s): unset "
                              "--kernel-dir/CLOPT_KERNEL_DIR to use the built-in kernels",
                              name, ctx->kernel_dir, why);
        }
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
