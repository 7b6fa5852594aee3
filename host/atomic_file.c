/* The atomic file writer (see atomic_file.h for the steps and why each is there). */
#include "atomic_file.h"

#include "clopt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The sticky bit is XSI, outside the _POSIX_C_SOURCE this builds with; its value is fixed. */
#ifndef S_ISVTX
#define S_ISVTX 01000
#endif

/* Random suffixes tried before giving up: a collision needs 2^64 luck or a process that
 * keeps planting names, and either way EEXIST is not worth more than a few tries. */
#define NAME_TRIES 16

/* strerror is not thread-safe, and checkpoints are written from a thread of their own. */
static const char *errtext(int error, char *buffer, size_t size)
{
    if (strerror_r(error, buffer, size) != 0)
        snprintf(buffer, size, "error %d", error);
    return buffer;
}

static void say_errno(char *err, size_t errlen, const char *what, const char *path, int error)
{
    char why[128];
    if (err && errlen)
        snprintf(err, errlen, "%s '%s': %s", what, path, errtext(error, why, sizeof why));
}

/* 64 unpredictable bits; getrandom() never blocks once the kernel's pool is ready, which it
 * is long before a program like this runs. The clock and the address are a fallback for
 * kernels without the call: the name still cannot be guessed ahead of time by another user. */
static uint64_t random_suffix(const void *salt)
{
    uint64_t value = 0;
    if (getrandom(&value, sizeof value, GRND_NONBLOCK) == (ssize_t)sizeof value)
        return value;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    value = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uint64_t)ts.tv_sec ^
            (uint64_t)(uintptr_t)salt ^ (uint64_t)getpid() << 32;
    return value;
}

const char *clopt_untrusted(const struct stat *st, int is_dir, char *why, size_t size)
{
    if (is_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        snprintf(why, size, "not a %s", is_dir ? "directory" : "regular file");
    else if (st->st_uid != geteuid() && st->st_uid != 0)
        snprintf(why, size, "owned by another user (uid %lu)", (unsigned long)st->st_uid);
    else if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(is_dir && (st->st_mode & S_ISVTX)))
        snprintf(why, size, "writable by group or others (mode %04o)",
                 (unsigned)(st->st_mode & 07777));
    else
        return NULL;
    return why;
}

int clopt_atomic_replaceable(const char *target, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(target, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
        return CLOPT_OK;
    if (err && errlen)
        snprintf(err, errlen,
                 "'%s' is not a regular file (%s): clopt writes a new file and renames it over "
                 "the old one, which would replace it; name a regular file",
                 target,
                 S_ISDIR(st.st_mode)                          ? "a directory"
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                 : S_ISFIFO(st.st_mode)                       ? "a FIFO"
                 : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                              : "a special file");
    return CLOPT_ERR_INVALID_ARG;
}

int clopt_atomic_open(struct clopt_atomic_file *file, const char *target, mode_t mode, char *err,
                      size_t errlen)
{
    *file = (struct clopt_atomic_file){0};
    const int replaceable = clopt_atomic_replaceable(target, err, errlen);
    if (replaceable != CLOPT_OK)
        return replaceable;
    /* ".PATH-name" would hide the file from ls, but a leftover (a run killed mid-write)
     * should be visible to the person who has to remove it. */
    const size_t length = strlen(target) + 32;
    file->target = malloc(strlen(target) + 1);
    file->temporary = malloc(length);
    if (!file->target || !file->temporary) {
        free(file->target);
        free(file->temporary);
        *file = (struct clopt_atomic_file){0};
        if (err && errlen)
            snprintf(err, errlen, "out of host memory writing '%s'", target);
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    strcpy(file->target, target);
    int fd = -1, error = EEXIST;
    for (int attempt = 0; attempt < NAME_TRIES && fd < 0 && error == EEXIST; ++attempt) {
        snprintf(file->temporary, length, "%s.tmp-%016llx", target,
                 (unsigned long long)random_suffix(file));
        fd = open(file->temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        error = fd < 0 ? errno : 0;
    }
    if (fd >= 0)
        file->stream = fdopen(fd, "wb");
    if (!file->stream) {
        if (fd >= 0) {
            error = errno;
            close(fd);
            unlink(file->temporary);
        }
        say_errno(err, errlen, "cannot create a temporary file for", target, error);
        free(file->target);
        free(file->temporary);
        *file = (struct clopt_atomic_file){0};
        return CLOPT_ERR_IO;
    }
    return CLOPT_OK;
}

void clopt_atomic_abort(struct clopt_atomic_file *file)
{
    if (file->stream) {
        fclose(file->stream);
        unlink(file->temporary);
    }
    free(file->target);
    free(file->temporary);
    *file = (struct clopt_atomic_file){0};
}

/* fsync of the directory holding path, so the rename itself survives a power cut. */
static int sync_directory(const char *path)
{
    char *dir = malloc(strlen(path) + 1);
    if (!dir)
        return -1;
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    const int fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* PATH.prev becomes a second name of the current file before the new one takes PATH, so
 * at every moment PATH is a whole file and PATH.prev the one before it. The link is made
 * under a unique name and renamed over PATH.prev: with unlink + link, two runs writing one
 * checkpoint path raced between the two calls and one failed with EEXIST.
 * link() can also fail with ENOENT while PATH exists: another run renamed its file over
 * PATH after link looked PATH up, and Linux refuses to link an inode whose last name is
 * gone. Looking PATH up again links the file that replaced it, which is as previous. */
static int link_previous(const char *target, const char *previous)
{
    struct stat st;
    if (lstat(target, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    const size_t length = strlen(previous) + 32;
    char *name = malloc(length);
    if (!name) {
        errno = ENOMEM;
        return -1;
    }
    int rc = -1;
    for (int attempt = 0; attempt < NAME_TRIES; ++attempt) {
        snprintf(name, length, "%s.tmp-%016llx", previous, (unsigned long long)random_suffix(name));
        if (link(target, name) == 0) {
            rc = 0;
            break;
        }
        const int error = errno;
        if (error == ENOENT && lstat(target, &st) != 0) {
            /* PATH is really gone (someone removed it): there is nothing to keep. */
            rc = errno == ENOENT ? 0 : -1;
            free(name);
            return rc;
        }
        errno = error;
        if (error != EEXIST && error != ENOENT)
            break;
    }
    if (rc == 0 && rename(name, previous) != 0) {
        const int error = errno;
        unlink(name);
        errno = error;
        rc = -1;
    } else if (rc == 0 && lstat(name, &st) == 0) {
        /* PATH.prev was already a name of this file (another run linked it first): rename
         * of two links to one file does nothing and leaves the unique name behind. */
        unlink(name);
    }
    free(name);
    return rc;
}

int clopt_atomic_commit(struct clopt_atomic_file *file, const char *keep_previous_as, char *err,
                        size_t errlen)
{
    FILE *stream = file->stream;
    file->stream = NULL;
    int status = CLOPT_OK;
    if (fflush(stream) != 0 || fsync(fileno(stream)) != 0) {
        say_errno(err, errlen, "writing failed:", file->temporary, errno);
        fclose(stream);
        status = CLOPT_ERR_IO;
    } else if (fclose(stream) != 0) {
        say_errno(err, errlen, "writing failed:", file->temporary, errno);
        status = CLOPT_ERR_IO;
    } else if (keep_previous_as && link_previous(file->target, keep_previous_as) != 0) {
        say_errno(err, errlen, "cannot keep the previous file as", keep_previous_as, errno);
        status = CLOPT_ERR_IO;
    } else if (rename(file->temporary, file->target) != 0) {
        say_errno(err, errlen, "cannot put the new file in place at", file->target, errno);
        status = CLOPT_ERR_IO;
    } else if (sync_directory(file->target) != 0) {
        /* The file is in place; only its durability across a power cut is in doubt. */
        say_errno(err, errlen, "cannot sync the directory of", file->target, errno);
        status = CLOPT_ERR_IO;
    }
    if (status != CLOPT_OK && access(file->temporary, F_OK) == 0)
        unlink(file->temporary);
    free(file->target);
    free(file->temporary);
    *file = (struct clopt_atomic_file){0};
    return status;
}

int clopt_atomic_write(const char *target, const void *data, size_t size, mode_t mode, char *err,
                       size_t errlen)
{
    struct clopt_atomic_file file;
    int status = clopt_atomic_open(&file, target, mode, err, errlen);
    if (status != CLOPT_OK)
        return status;
    if (size && fwrite(data, 1, size, file.stream) != size) {
        say_errno(err, errlen, "writing failed:", file.temporary, errno);
        clopt_atomic_abort(&file);
        return CLOPT_ERR_IO;
    }
    return clopt_atomic_commit(&file, NULL, err, errlen);
}
