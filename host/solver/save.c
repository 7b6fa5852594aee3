/* Theta to a .npy file: read back from the device in chunks, written through the atomic file
 * writer, so an existing file is replaced only once the whole new one is on disk. */
#include "atomic_file.h"
#include "solver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Elements per device read: large enough that the per-read cost vanishes, small enough
 * that theta of any size needs only this much host memory. */
#define SAVE_CHUNK ((size_t)1 << 22)

int clopt_solver_save_theta(struct clopt_solver *s, const char *path,
                            enum clopt_precision precision)
{
    if (!s || !path || !*path)
        return s ? clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                              "clopt_solver_save_theta needs a file name")
                 : CLOPT_ERR_INVALID_ARG;
    if (precision != CLOPT_FLOAT && precision != CLOPT_DOUBLE)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "clopt_solver_save_theta: precision must be CLOPT_FLOAT or CLOPT_DOUBLE");
    const size_t item = precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    /* Several ranks: the reads are collective and rank 0 alone writes the file, so every
     * rank learns whether all are ready before the first read, rank 0 stays in the reads
     * after a failed write, and all learn at the end whether the file was written. A rank
     * that returned early would leave the others in a collective read for ever. */
    const int root = clopt_ranks_is_root(s), ranks = clopt_ranks_active(s);
    void *buffer = malloc(SAVE_CHUNK * item);
    int status = buffer ? CLOPT_OK
                        : clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY,
                                     "out of host memory writing '%s'", path);
    char err[512];
    struct clopt_atomic_file file;
    int opened = 0;
    if (status == CLOPT_OK && root) {
        status = clopt_atomic_open(&file, path, 0666, err, sizeof err);
        opened = status == CLOPT_OK;
        if (status != CLOPT_OK)
            status = clopt_fail(s->ctx, status, "%s", err);
    }
    if (opened) {
        /* options.shape, checked against dim by clopt_validate_options; none: a vector. */
        uint64_t shape[CLOPT_MAX_AXES] = {s->n};
        size_t n_axes = s->opts.n_axes ? s->opts.n_axes : 1;
        for (size_t a = 0; a < s->opts.n_axes; ++a)
            shape[a] = s->opts.shape[a];
        status =
            clopt_npy_write_header_shape(file.stream, precision, n_axes, shape, err, sizeof err);
        if (status != CLOPT_OK)
            status = clopt_fail(s->ctx, status, "writing '%s': %s", path, err);
    }
    status = clopt_ranks_agree(s, status, "before writing theta");
    int written = CLOPT_OK;
    for (size_t done = 0; status == CLOPT_OK && (written == CLOPT_OK || ranks) && done < s->n;) {
        const size_t chunk = s->n - done < SAVE_CHUNK ? s->n - done : SAVE_CHUNK;
        status = clopt_solver_read_theta(s, buffer, precision, done, chunk);
        if (status == CLOPT_OK && opened && written == CLOPT_OK &&
            fwrite(buffer, item, chunk, file.stream) != chunk)
            written = clopt_fail(s->ctx, CLOPT_ERR_IO, "writing '%s': %s", path, strerror(errno));
        done += chunk;
    }
    free(buffer);
    if (opened && status == CLOPT_OK && written == CLOPT_OK) {
        const int committed = clopt_atomic_commit(&file, NULL, err, sizeof err);
        if (committed != CLOPT_OK)
            written = clopt_fail(s->ctx, committed, "%s", err);
    } else if (opened)
        clopt_atomic_abort(&file);
    return status == CLOPT_OK ? clopt_ranks_agree(s, written, "while writing theta") : status;
}

int clopt_output_check(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        if (err && errlen)
            snprintf(err, errlen, "an output file name is needed");
        return CLOPT_ERR_INVALID_ARG;
    }
    /* The very temporary file a write would create, so that whatever would stop the write
     * at the end of a run (a name too long once the suffix is added, a directory that takes
     * no new files, a full inode table) stops it now instead. */
    struct clopt_atomic_file file;
    const int status = clopt_atomic_open(&file, path, 0600, err, errlen);
    if (status == CLOPT_OK)
        clopt_atomic_abort(&file);
    return status;
}
