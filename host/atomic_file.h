/* One way to write an output file so that its path always holds either the old file or the
 * whole new one, used for every file clopt writes (theta, checkpoints, the tuning database,
 * the program cache):
 *   1. a temporary file with a unique, unpredictable name in the target's directory, created
 *      with O_CREAT|O_EXCL|O_NOFOLLOW, so that nothing planted under that name (a symlink
 *      in a shared directory) is ever opened or overwritten;
 *   2. the data written to it, then fflush + fsync;
 *   3. optionally a second name for the file being replaced (PATH.prev, a hard link);
 *   4. rename over the target, then fsync of the directory so the rename survives a crash.
 * A symlink at the target itself is replaced by the new file, not followed. A target that
 * exists and is neither a regular file nor a symlink (a device such as /dev/null, a FIFO, a
 * socket, a directory) is refused: the rename would put a regular file in its place, and
 * run as root that turns /dev/null into a file. Messages go to a caller's buffer
 * (checkpoints are written from a thread of their own). */
#ifndef CLOPT_ATOMIC_FILE_H
#define CLOPT_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

struct clopt_atomic_file {
    FILE *stream; /* write the contents here */
    char *target;
    char *temporary;
};

/* CLOPT_OK when target is absent, a regular file or a symlink; CLOPT_ERR_INVALID_ARG with a
 * message in err when renaming over it would replace something else. */
int clopt_atomic_replaceable(const char *target, char *err, size_t errlen);

/* Creates the temporary file for target with the given mode (before the umask): 0666 for
 * outputs a person reads, 0600 for private ones. Returns a clopt status
 * (CLOPT_ERR_INVALID_ARG for a target clopt_atomic_replaceable refuses, CLOPT_ERR_IO or
 * CLOPT_ERR_OUT_OF_MEMORY, with a message in err). On failure nothing is left behind and
 * file needs no abort. */
int clopt_atomic_open(struct clopt_atomic_file *file, const char *target, mode_t mode, char *err,
                      size_t errlen);

/* Flushes, fsyncs and closes the temporary file, links the current target (when there is
 * one) as keep_previous_as (NULL: keep nothing), renames the temporary file over the target
 * and fsyncs the directory. On failure the temporary file is removed and the target is as
 * it was (the previous-name link may have been made). Either way file is released. */
int clopt_atomic_commit(struct clopt_atomic_file *file, const char *keep_previous_as, char *err,
                        size_t errlen);

/* Closes and removes the temporary file; the target is untouched. Accepts a file whose
 * open failed or that was committed (then it does nothing). */
void clopt_atomic_abort(struct clopt_atomic_file *file);

/* Whether clopt may trust a file it reads back and acts on (a program cache entry, the
 * tuning database) or the directory holding it: owned by the effective user (or root, who
 * could replace clopt itself) and not writable by group or others, except a sticky
 * directory such as /tmp, where others cannot replace what the user owns. NULL when
 * trusted, else why not, written into why. Regular files only (is_dir 0) or directories
 * only (is_dir 1). */
const char *clopt_untrusted(const struct stat *st, int is_dir, char *why, size_t size);

/* The whole of data to target through the steps above. */
int clopt_atomic_write(const char *target, const void *data, size_t size, mode_t mode, char *err,
                       size_t errlen);

#endif /* CLOPT_ATOMIC_FILE_H */
