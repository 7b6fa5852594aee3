#include "testutil.h"
#include "npy.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>

#define MAX_ARGS 64

static char *slurp_fd(int fd)
{
    size_t used = 0, capacity = 4096;
    char *text = malloc(capacity);
    cr_assert_not_null(text);
    for (;;) {
        if (used + 1 >= capacity) {
            capacity *= 2;
            text = realloc(text, capacity);
            cr_assert_not_null(text);
        }
        ssize_t n = read(fd, text + used, capacity - used - 1);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    text[used] = '\0';
    return text;
}

/* argv for execv: the executable, then args up to its NULL (at most MAX_ARGS). */
static void build_argv(const char *argv[MAX_ARGS + 2], const char *const *args)
{
    size_t argc = 0;
    argv[argc++] = CLOPT_EXE;
    for (; args && args[argc - 1] && argc <= MAX_ARGS; ++argc)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
}

struct cli_result cli_run(const char *const *args)
{
    return cli_run_env(args, NULL, NULL);
}

struct cli_result cli_run_env(const char *const *args, const char *name, const char *value)
{
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, args);
    /* Files, not pipes: the child may write more than a pipe holds before we read. */
    FILE *out = tmpfile(), *err = tmpfile();
    cr_assert(out && err);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(err), STDERR_FILENO);
        int null_in = open("/dev/null", O_RDONLY);
        if (null_in >= 0)
            dup2(null_in, STDIN_FILENO);
        /* No tuning database or program cache of the machine's user changes what the tests
         * see (a test that wants a cache passes --program-cache). */
        setenv("CLOPT_TUNING_DB", "/nonexistent/clopt-test-tuning.json", 1);
        setenv("CLOPT_PROGRAM_CACHE", "off", 1);
        if (name)
            setenv(name, value, 1);
        execv(CLOPT_EXE, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    cr_assert(waitpid(pid, &status, 0) == pid);
    struct cli_result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    rewind(out);
    rewind(err);
    r.out = slurp_fd(fileno(out));
    r.err = slurp_fd(fileno(err));
    fclose(out);
    fclose(err);
    return r;
}

void cli_result_free(struct cli_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

size_t count_lines(const char *text)
{
    size_t lines = 0;
    const char *p = text;
    for (; *p; ++p)
        if (*p == '\n')
            ++lines;
    if (p != text && p[-1] != '\n')
        ++lines;
    return lines;
}

char *temp_dir(void)
{
    char *dir = strdup("/tmp/clopt-test-XXXXXX");
    cr_assert_not_null(dir);
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

char *path_in(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);
    cr_assert_not_null(path);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = path_in(dir, e->d_name);
        if (unlink(p) != 0)
            remove_tree(p); /* a directory (the tests nest at most a few levels) */
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

void write_npy(const char *path, const void *data, size_t count, int is_double)
{
    const uint64_t shape = count;
    write_npy_shape(path, data, 1, &shape, is_double);
}

void write_npy_shape(const char *path, const void *data, size_t n_axes, const uint64_t *shape,
                     int is_double)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    char err[256];
    cr_assert_eq(clopt_npy_write_header_shape(f, is_double ? CLOPT_DOUBLE : CLOPT_FLOAT, n_axes,
                                              shape, err, sizeof err),
                 CLOPT_OK, "%s", err);
    size_t count = 1;
    for (size_t a = 0; a < n_axes; ++a)
        count *= (size_t)shape[a];
    size_t item = is_double ? sizeof(double) : sizeof(float);
    cr_assert_eq(fwrite(data, item, count, f), count);
    cr_assert_eq(fclose(f), 0);
}

struct clopt_npy_info read_npy_info(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    struct clopt_npy_info info;
    char err[256];
    cr_assert_eq(clopt_npy_read_header(f, &info, err, sizeof err), CLOPT_OK, "%s: %s", path, err);
    fclose(f);
    return info;
}

double *read_npy_as_double(const char *path, size_t *count, int *is_double)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    struct clopt_npy_info info;
    char err[256];
    cr_assert_eq(clopt_npy_read_header(f, &info, err, sizeof err), CLOPT_OK, "%s", err);
    double *values = malloc(info.count * sizeof *values);
    cr_assert_not_null(values);
    for (uint64_t i = 0; i < info.count; ++i) {
        if (info.dtype == CLOPT_DOUBLE) {
            cr_assert_eq(fread(&values[i], sizeof(double), 1, f), 1);
        } else {
            float v;
            cr_assert_eq(fread(&v, sizeof v, 1, f), 1);
            values[i] = v;
        }
    }
    fclose(f);
    *count = info.count;
    *is_double = info.dtype == CLOPT_DOUBLE;
    return values;
}

void philox4x32_10(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr_in[0], ctr_in[1], ctr_in[2], ctr_in[3]};
    uint32_t k[2] = {key_in[0], key_in[1]};
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k[0] += 0x9E3779B9u;
            k[1] += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
        const uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        const uint32_t n0 = hi1 ^ c[1] ^ k[0], n2 = hi0 ^ c[3] ^ k[1];
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
    memcpy(out, c, sizeof c);
}

int close_enough(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b))
        return 0;
    /* An infinite reference is met only by the same infinity: the relative bound
     * rtol * |b| is infinite there and would accept any finite value. */
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

struct clopt_context *test_context(void)
{
    struct clopt_context *ctx = NULL;
    int status = clopt_context_create(&ctx, NULL);
    cr_assert_eq(status, CLOPT_OK, "no OpenCL device for the tests: %s", clopt_errmsg(ctx));
    return ctx;
}

int test_skip_double_part(int dbl)
{
    if (!dbl || test_device_has_fp64())
        return 0;
    cr_log_warn("the device has no fp64 (cl_khr_fp64): the double part of this test is left out");
    return 1;
}

int test_device_has_fp64(void)
{
    /* CLOPT_TEST_NO_FP64=1 takes the path of a device without fp64 on one that has it, to
     * check which tests skip (they are the ones that ask the device for double). */
    const char *forced = getenv("CLOPT_TEST_NO_FP64");
    if (forced && *forced && strcmp(forced, "0") != 0)
        return 0;
    /* Once per test process (Criterion runs each test in a process of its own). */
    static int has = -1;
    if (has < 0) {
        struct clopt_context *ctx = test_context();
        has = clopt_context_device(ctx)->has_fp64 != 0;
        clopt_context_destroy(ctx);
    }
    return has;
}

pid_t cli_spawn(const char *const *args)
{
    const char *argv[MAX_ARGS + 2];
    build_argv(argv, args);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setenv("CLOPT_TUNING_DB", "/nonexistent/clopt-test-tuning.json", 1);
        setenv("CLOPT_PROGRAM_CACHE", "off", 1);
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, STDIN_FILENO);
            dup2(null_fd, STDOUT_FILENO);
            dup2(null_fd, STDERR_FILENO);
        }
        execv(CLOPT_EXE, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int cli_wait(pid_t pid, int block)
{
    int status = 0;
    const pid_t got = waitpid(pid, &status, block ? 0 : WNOHANG);
    cr_assert(got == pid || (!block && got == 0), "waitpid failed");
    if (got == 0)
        return CLI_RUNNING;
    return WIFEXITED(status)     ? WEXITSTATUS(status)
           : WIFSIGNALED(status) ? -WTERMSIG(status)
                                 : -1000;
}

void sleep_seconds(double seconds)
{
    struct timespec delay = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&delay, &delay) != 0)
        ;
}

int cli_run_and_signal(const char *const *args, double seconds, int signo)
{
    const pid_t pid = cli_spawn(args);
    sleep_seconds(seconds);
    kill(pid, signo);
    return cli_wait(pid, 1);
}

unsigned char *read_binary(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    const long length = ftell(f);
    fseek(f, 0, SEEK_SET);
    cr_assert_geq(length, 0, "cannot size %s", path);
    unsigned char *data = malloc((size_t)length + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)length, f), (size_t)length, "cannot read %s", path);
    fclose(f);
    *size = (size_t)length;
    return data;
}

char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", path);
    static char buffer[1 << 16];
    size_t n = fread(buffer, 1, sizeof buffer - 1, f);
    buffer[n] = '\0';
    fclose(f);
    return strdup(buffer);
}
