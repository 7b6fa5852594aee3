/* Helpers shared by the test programs: running the CLI, temporary files, the host
 * Philox reference and tolerance checks. */
#ifndef CLOPT_TESTUTIL_H
#define CLOPT_TESTUTIL_H

#include "clopt.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cli_result {
    int exit_code; /* -1 when the process did not exit normally */
    char *out;     /* captured stdout, NUL-terminated */
    char *err;     /* captured stderr, NUL-terminated */
};

/* Runs the clopt executable with the given arguments (argv[0] is supplied). */
struct cli_result cli_run(const char *const *args);
/* The same with name=value set in the child's environment (name NULL: nothing). */
struct cli_result cli_run_env(const char *const *args, const char *name, const char *value);
void cli_result_free(struct cli_result *r);
/* Starts the CLI (output discarded), sends signo after `seconds`, and returns its exit
 * status, or minus the signal that ended it. */
int cli_run_and_signal(const char *const *args, double seconds, int signo);
/* Starts the CLI (output discarded) and returns its process id at once. */
pid_t cli_spawn(const char *const *args);
/* The exit status of a spawned CLI, or minus the signal that ended it; with block = 0,
 * CLI_RUNNING while it still runs. */
#define CLI_RUNNING (-100000)
int cli_wait(pid_t pid, int block);
void sleep_seconds(double seconds);

/* Number of lines in text (a final line without '\n' counts). */
size_t count_lines(const char *text);

/* A fresh directory under /tmp; path_in() joins a name onto it (static buffer per call
 * slot is avoided: the caller owns the returned string). */
char *temp_dir(void);
char *path_in(const char *dir, const char *name);
void remove_tree(const char *dir);
/* A Criterion suite whose every test gets a fresh directory under /tmp in `dir`, removed
 * after it (the file must include <criterion/criterion.h>). */
#define TEMP_DIR_SUITE(suite)                                                                      \
    static char *dir;                                                                              \
    static void temp_dir_setup(void)                                                               \
    {                                                                                              \
        dir = temp_dir();                                                                          \
    }                                                                                              \
    static void temp_dir_teardown(void)                                                            \
    {                                                                                              \
        remove_tree(dir);                                                                          \
        free(dir);                                                                                 \
    }                                                                                              \
    TestSuite(suite, .init = temp_dir_setup, .fini = temp_dir_teardown)

/* TEMP_DIR_SUITE plus a context on the default device, `ctx`, for suites that build solvers. */
#define CONTEXT_TEMP_DIR_SUITE(suite)                                                              \
    static struct clopt_context *ctx;                                                              \
    static char *dir;                                                                              \
    static void context_dir_setup(void)                                                            \
    {                                                                                              \
        ctx = test_context();                                                                      \
        dir = temp_dir();                                                                          \
    }                                                                                              \
    static void context_dir_teardown(void)                                                         \
    {                                                                                              \
        clopt_context_destroy(ctx);                                                                \
        remove_tree(dir);                                                                          \
        free(dir);                                                                                 \
    }                                                                                              \
    TestSuite(suite, .init = context_dir_setup, .fini = context_dir_teardown)

/* A text file's contents (the first 64 KiB), heap-allocated; fails the test when it is missing. */
char *read_text(const char *path);

/* A binary file's whole contents, heap-allocated, its length in *size; fails the test when
 * it cannot be read. */
unsigned char *read_binary(const char *path, size_t *size);

/* Writes a 1-D .npy file of float32 (is_double = 0) or float64 values. */
void write_npy(const char *path, const void *data, size_t count, int is_double);
/* The same with a shape of n_axes axes (C order; the data holds their product). */
void write_npy_shape(const char *path, const void *data, size_t n_axes, const uint64_t *shape,
                     int is_double);
/* The header of a .npy file (fails the test when it is not one clopt reads). */
struct clopt_npy_info read_npy_info(const char *path);
/* Reads a .npy of any shape written by clopt (its elements in C order); returns a malloc'd array of
 * doubles. */
double *read_npy_as_double(const char *path, size_t *count, int *is_double);

/* Philox4x32-10, the generator of clopt_init. */
void philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4]);

/* |a - b| <= atol + rtol * |b|, and neither is NaN; an infinity only equals itself. */
int close_enough(double a, double b, double rtol, double atol);

/* A context on the default device; aborts the test on failure. */
struct clopt_context *test_context(void);
/* Whether the tests' default device computes in double (cl_khr_fp64); 0 as well when
 * CLOPT_TEST_NO_FP64 is set (to check the skips on a device that has it). */
int test_device_has_fp64(void);
/* In a test with a float and a double part: whether to leave out the double part (no fp64;
 * says so in the test log). */
int test_skip_double_part(int dbl);
/* Skips the calling Criterion test, saying why, where the device has no fp64: the test asks
 * the device for double precision (GPUs such as Intel Arc lack it). Tests that also check
 * float run that part alone instead (`if (dbl && !test_device_has_fp64()) continue;`). */
#define SKIP_WITHOUT_FP64()                                                                        \
    do {                                                                                           \
        if (!test_device_has_fp64())                                                               \
            cr_skip_test("the device has no fp64 (cl_khr_fp64): this test computes in double");    \
    } while (0)

#endif
