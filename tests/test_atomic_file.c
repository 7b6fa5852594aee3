/* The atomic file writer every output goes through: whole-or-nothing replacement, no
 * leftovers, nothing followed through a planted symlink, the previous file kept on request. */
#include "atomic_file.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEMP_DIR_SUITE(atomic_file);

static void put_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* The file's contents (at most 255 bytes) into buffer. */
static const char *text_of(const char *path, char *buffer, size_t size)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    const size_t n = fread(buffer, 1, size - 1, f);
    buffer[n] = '\0';
    fclose(f);
    return buffer;
}

static size_t entries_in(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));)
        count += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return count;
}

Test(atomic_file, replaces_the_target_and_leaves_nothing_else)
{
    char *target = path_in(dir, "out.bin");
    put_text(target, "old contents");
    char err[256] = "";
    cr_assert_eq(clopt_atomic_write(target, "new", 3, 0666, err, sizeof err), CLOPT_OK, "%s", err);
    char buffer[256];
    cr_assert_str_eq(text_of(target, buffer, sizeof buffer), "new");
    cr_assert_eq(entries_in(dir), 1, "a temporary file was left behind");
    free(target);
}

Test(atomic_file, abort_keeps_the_target)
{
    char *target = path_in(dir, "out.bin");
    put_text(target, "old contents");
    struct clopt_atomic_file file;
    cr_assert_eq(clopt_atomic_open(&file, target, 0666, NULL, 0), CLOPT_OK);
    fputs("half of the new", file.stream);
    cr_assert_eq(entries_in(dir), 2, "the temporary file lives beside the target");
    clopt_atomic_abort(&file);
    clopt_atomic_abort(&file); /* a second abort does nothing */
    char buffer[256];
    cr_assert_str_eq(text_of(target, buffer, sizeof buffer), "old contents");
    cr_assert_eq(entries_in(dir), 1);
    free(target);
}

Test(atomic_file, keeps_the_previous_file_when_asked)
{
    char *target = path_in(dir, "ck"), *previous = path_in(dir, "ck.prev");
    char buffer[256];
    /* No previous file yet: nothing to keep, and no error. */
    struct clopt_atomic_file file;
    cr_assert_eq(clopt_atomic_open(&file, target, 0666, NULL, 0), CLOPT_OK);
    fputs("first", file.stream);
    cr_assert_eq(clopt_atomic_commit(&file, previous, NULL, 0), CLOPT_OK);
    cr_assert_eq(access(previous, F_OK), -1);
    cr_assert_eq(clopt_atomic_open(&file, target, 0666, NULL, 0), CLOPT_OK);
    fputs("second", file.stream);
    cr_assert_eq(clopt_atomic_commit(&file, previous, NULL, 0), CLOPT_OK);
    cr_assert_str_eq(text_of(target, buffer, sizeof buffer), "second");
    cr_assert_str_eq(text_of(previous, buffer, sizeof buffer), "first");
    free(target);
    free(previous);
}

Test(atomic_file, a_symlink_at_the_target_is_replaced_not_followed)
{
    char *victim = path_in(dir, "victim"), *target = path_in(dir, "out.npy");
    put_text(victim, "must survive");
    cr_assert_eq(symlink(victim, target), 0);
    cr_assert_eq(clopt_atomic_write(target, "theta", 5, 0666, NULL, 0), CLOPT_OK);
    char buffer[256];
    cr_assert_str_eq(text_of(victim, buffer, sizeof buffer), "must survive");
    struct stat st;
    cr_assert_eq(lstat(target, &st), 0);
    cr_assert(S_ISREG(st.st_mode), "the target is now a regular file");
    cr_assert_str_eq(text_of(target, buffer, sizeof buffer), "theta");
    free(victim);
    free(target);
}

Test(atomic_file, the_mode_is_the_one_asked_for)
{
    char *target = path_in(dir, "private");
    cr_assert_eq(clopt_atomic_write(target, "x", 1, 0600, NULL, 0), CLOPT_OK);
    struct stat st;
    cr_assert_eq(stat(target, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    free(target);
}

Test(atomic_file, a_missing_directory_is_an_io_error_naming_the_path)
{
    char *target = path_in(dir, "no/such/dir/out.npy");
    char err[256] = "";
    cr_assert_eq(clopt_atomic_write(target, "x", 1, 0666, err, sizeof err), CLOPT_ERR_IO);
    cr_assert(strstr(err, target) != NULL, "message: %s", err);
    cr_assert(strstr(err, "No such file") != NULL, "message: %s", err);
    free(target);
}

Test(atomic_file, two_writers_of_one_target_never_share_a_temporary_file)
{
    char *target = path_in(dir, "shared");
    struct clopt_atomic_file a, b;
    cr_assert_eq(clopt_atomic_open(&a, target, 0666, NULL, 0), CLOPT_OK);
    cr_assert_eq(clopt_atomic_open(&b, target, 0666, NULL, 0), CLOPT_OK);
    cr_assert_str_neq(a.temporary, b.temporary);
    fputs("from a", a.stream);
    fputs("from b", b.stream);
    cr_assert_eq(clopt_atomic_commit(&a, NULL, NULL, 0), CLOPT_OK);
    cr_assert_eq(clopt_atomic_commit(&b, NULL, NULL, 0), CLOPT_OK);
    char buffer[256];
    cr_assert_str_eq(text_of(target, buffer, sizeof buffer), "from b");
    cr_assert_eq(entries_in(dir), 1);
    free(target);
}

/* Renaming over a device or a FIFO would put a regular file in its place (as root,
 * --out /dev/null turned /dev/null into a file): such a target is refused, untouched. A
 * FIFO stands in for the device here, since replacing /dev/null is no test to run. */
Test(atomic_file, a_target_that_is_not_a_regular_file_is_refused_and_kept)
{
    char *fifo = path_in(dir, "pipe");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    char err[512] = "";
    cr_expect_eq(clopt_atomic_write(fifo, "x", 1, 0600, err, sizeof err), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(err, "not a regular file") != NULL, "%s", err);
    cr_expect(strstr(err, "a FIFO") != NULL, "%s", err);
    struct stat st;
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    cr_expect_eq(entries_in(dir), 1, "a temporary file was left behind");
    free(fifo);
}
