/* Input files a caller names (theta, data vectors, checkpoints, objective files): opened
 * without blocking, regular files only. Apart from OpenCL, so the fuzz targets link it. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *clopt_open_input(const char *path, char *why, size_t size)
{
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    int error = 0;
    if (fd < 0)
        error = errno;
    else if (fstat(fd, &st) != 0)
        error = errno;
    else if (!S_ISREG(st.st_mode))
        error = S_ISDIR(st.st_mode) ? EISDIR : -1;
    /* Reads block as usual from here on (a regular file never would, but stdio expects it). */
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        error = errno;
    FILE *f = error ? NULL : fdopen(fd, "rb");
    if (!f && !error)
        error = errno;
    if (!f) {
        if (fd >= 0)
            close(fd);
        if (why && size)
            snprintf(why, size, "%s",
                     error == -1       ? "not a regular file (a FIFO, device or socket)"
                     : error == EISDIR ? "a directory, not a regular file"
                                       : strerror(error));
    }
    return f;
}
