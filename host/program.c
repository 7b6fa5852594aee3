/* Program builds with readable logs, and the on-disk cache of compiled programs (kernel
 * sources and input files are read in sources.c).
 *
 * A cache entry is one file, DIR/<32 hex digits>, the digits a 128-bit hash of the key
 * (the whole source text, the build options, and the platform name, device name, device
 * version and driver version, each as "name <length>:<bytes>\n"). Its layout, integers
 * little-endian:
 *   magic "CLOPTPC\0" (8 bytes), format version (u32), key length (u64), the key,
 *   binary length (u64), the binary, CRC-32C of everything before it (u32).
 * The key is compared byte for byte on load, so a hash collision can only cost a rebuild. */
#include "atomic_file.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "CLOPTPC" /* with its NUL: 8 bytes */
#define CACHE_VERSION 1u
#define CACHE_HEADER 20u             /* magic, version, key length */
#define CACHE_MAX_BYTES (1ull << 31) /* an entry larger than this is not read */

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

int clopt_context_set_program_cache(struct clopt_context *ctx, const char *dir)
{
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    char *copy = NULL;
    if (dir && *dir) {
        copy = clopt_format("%s", dir);
        if (!copy)
            return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    free(ctx->program_cache);
    ctx->program_cache = copy;
    return CLOPT_OK;
}

const char *clopt_context_cache_problem(const struct clopt_context *ctx)
{
    return ctx ? ctx->cache_problem : NULL;
}

/* Stops using the program cache for this context, keeping the first reason. */
static void distrust_cache(struct clopt_context *ctx, const char *what, const char *path,
                           const char *why)
{
    if (ctx->cache_problem)
        return;
    ctx->cache_problem = clopt_format("program cache %s '%s' is %s: running without the program "
                                      "cache (fix its owner or mode, or choose another cache "
                                      "directory)",
                                      what, path, why);
    if (!ctx->cache_problem) /* no memory for the message: still distrust */
        ctx->cache_problem = clopt_format("%s", "program cache not trusted");
}

/* Whether the cache may be used: its directory, once it exists, must pass
 * clopt_untrusted(). An absent directory is fine (cache_store creates it, mode 0700), and
 * so is one that cannot be a directory (a file in the way): lookups then miss and stores
 * fail, counted as such, which is no question of trust. */
static int cache_trusted(struct clopt_context *ctx)
{
    if (ctx->cache_problem)
        return 0;
    if (ctx->cache_dir_trusted)
        return 1;
    struct stat st;
    char why[96];
    if (stat(ctx->program_cache, &st) != 0 || !S_ISDIR(st.st_mode))
        return 1;
    const char *problem = clopt_untrusted(&st, 1, why, sizeof why);
    if (problem) {
        distrust_cache(ctx, "directory", ctx->program_cache, problem);
        return 0;
    }
    ctx->cache_dir_trusted = 1;
    return 1;
}

int clopt_context_cache_stats(const struct clopt_context *ctx, struct clopt_cache_stats *out)
{
    if (!ctx || !out)
        return CLOPT_ERR_INVALID_ARG;
    *out = ctx->cache_stats;
    return CLOPT_OK;
}

/* Appends "name <length>:<value>\n": fields that cannot run into each other. */
static int append_field(char **dst, size_t *used, size_t *capacity, const char *name,
                        const char *value, size_t length)
{
    char head[80];
    const int n = snprintf(head, sizeof head, "%s %zu:", name, length);
    return n > 0 && (size_t)n < sizeof head && append(dst, used, capacity, head, (size_t)n) &&
           append(dst, used, capacity, value, length) && append(dst, used, capacity, "\n", 1);
}

/* A string property of the device (is_platform: of its platform) as a new heap string. */
static char *info_string(cl_device_id device, cl_platform_id platform, cl_uint what,
                         int is_platform)
{
    size_t size = 0;
    cl_int err = is_platform ? clGetPlatformInfo(platform, what, 0, NULL, &size)
                             : clGetDeviceInfo(device, what, 0, NULL, &size);
    if (err != CL_SUCCESS)
        return NULL;
    char *text = calloc(size + 1, 1);
    if (!text)
        return NULL;
    err = is_platform ? clGetPlatformInfo(platform, what, size, text, NULL)
                      : clGetDeviceInfo(device, what, size, text, NULL);
    if (err != CL_SUCCESS) {
        free(text);
        return NULL;
    }
    return text;
}

/* The device's part of the key, made once per context; 0 on failure. */
static int device_key(struct clopt_context *ctx)
{
    if (ctx->cache_device_key)
        return 1;
    cl_platform_id platform = NULL;
    if (clGetDeviceInfo(ctx->device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL) !=
        CL_SUCCESS)
        return 0;
    static const struct {
        const char *name;
        cl_uint what;
        int is_platform;
    } fields[] = {{"platform", CL_PLATFORM_NAME, 1},
                  {"device", CL_DEVICE_NAME, 0},
                  {"device-version", CL_DEVICE_VERSION, 0},
                  {"driver-version", CL_DRIVER_VERSION, 0}};
    char *key = NULL;
    size_t used = 0, capacity = 0;
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof fields / sizeof *fields; ++i) {
        char *value = info_string(ctx->device, platform, fields[i].what, fields[i].is_platform);
        ok = value && append_field(&key, &used, &capacity, fields[i].name, value, strlen(value));
        free(value);
    }
    if (!ok) {
        free(key);
        return 0;
    }
    ctx->cache_device_key = key;
    return 1;
}

/* FNV-1a over data in two 64-bit lanes with different offset bases, each lane then folded
 * with the length and stirred (multiply, xor-shift) so that every input bit reaches every
 * output bit. Not cryptographic: the key stored in the entry decides, the hash only names
 * the file. */
static void hash128(const void *data, size_t length, uint64_t out[2])
{
    const uint64_t prime = 0x00000100000001B3ull;
    uint64_t a = 0xCBF29CE484222325ull, b = 0x6C62272E07BB0142ull;
    const unsigned char *p = data;
    for (size_t i = 0; i < length; ++i) {
        a = (a ^ p[i]) * prime;
        b = (b ^ (unsigned char)(p[i] ^ 0xA5u)) * prime;
    }
    uint64_t lanes[2] = {a ^ (uint64_t)length, b ^ ((uint64_t)length << 1)};
    for (int k = 0; k < 2; ++k) {
        uint64_t x = lanes[k];
        for (int round = 0; round < 3; ++round) {
            x ^= x >> 31;
            x *= 0x9E3779B97F4A7C15ull;
            x ^= x >> 29;
        }
        out[k] = x;
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = v << 8 | p[i];
    return v;
}

/* The key of this build and the path of its entry; 0 on failure (out of memory, or the
 * device does not answer). */
static int cache_key(struct clopt_context *ctx, const char *source, size_t source_length,
                     const char *options, char **key, size_t *key_length, char **path)
{
    *key = NULL;
    *key_length = 0;
    *path = NULL;
    if (!device_key(ctx))
        return 0;
    char *text = NULL;
    size_t used = 0, capacity = 0;
    const char *opts = options ? options : "";
    if (!append(&text, &used, &capacity, ctx->cache_device_key, strlen(ctx->cache_device_key)) ||
        !append_field(&text, &used, &capacity, "options", opts, strlen(opts)) ||
        !append_field(&text, &used, &capacity, "source", source, source_length)) {
        free(text);
        return 0;
    }
    uint64_t h[2];
    hash128(text, used, h);
    *path = clopt_format("%s/%016llx%016llx", ctx->program_cache, (unsigned long long)h[0],
                         (unsigned long long)h[1]);
    if (!*path) {
        free(text);
        return 0;
    }
    *key = text;
    *key_length = used;
    return 1;
}

enum cache_lookup { CACHE_HIT, CACHE_ABSENT, CACHE_REJECTED };

/* Reads the entry at path and, when it is whole and for this key, builds its binary. */
static enum cache_lookup cache_load(struct clopt_context *ctx, const char *path, const char *key,
                                    size_t key_length, const char *options, cl_program *out)
{
    *out = NULL;
    enum cache_lookup result = CACHE_REJECTED;
    unsigned char *file = NULL;
    cl_program program = NULL;
    /* Not through a symlink, and without waiting on a FIFO planted under the name. */
    const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP) {
        distrust_cache(ctx, "entry", path, "a symlink");
        return CACHE_REJECTED;
    }
    if (fd < 0) /* no entry, or no directory yet (or a file where it should be) */
        return errno == ENOENT || errno == ENOTDIR ? CACHE_ABSENT : CACHE_REJECTED;
    struct stat st;
    char why[96];
    const char *problem = fstat(fd, &st) == 0 ? clopt_untrusted(&st, 0, why, sizeof why) : NULL;
    if (problem) {
        distrust_cache(ctx, "entry", path, problem);
        goto cleanup;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > CACHE_MAX_BYTES || (uint64_t)st.st_size < CACHE_HEADER + 12u)
        goto cleanup;
    const size_t size = (size_t)st.st_size;
    file = malloc(size);
    if (!file)
        goto cleanup;
    size_t done = 0;
    while (done < size) {
        const ssize_t n = read(fd, file + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto cleanup;
        done += (size_t)n;
    }
    /* Lengths are checked against what is left before they are added to anything. */
    if (memcmp(file, CACHE_MAGIC, 8) != 0 || get_u32(file + 8) != CACHE_VERSION ||
        get_u64(file + 12) != key_length || key_length > size - CACHE_HEADER - 12u ||
        memcmp(file + CACHE_HEADER, key, key_length) != 0)
        goto cleanup;
    const size_t at = CACHE_HEADER + key_length;
    const uint64_t binary_length = get_u64(file + at);
    if (binary_length == 0 || binary_length != size - at - 12u ||
        clopt_crc32c(0, file, size - 4) != get_u32(file + size - 4))
        goto cleanup;
    const unsigned char *binaries[] = {file + at + 8};
    const size_t lengths[] = {(size_t)binary_length};
    cl_int err, binary_status = CL_SUCCESS;
    program = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, lengths, binaries,
                                        &binary_status, &err);
    if (err != CL_SUCCESS) {
        program = NULL;
        goto cleanup;
    }
    if (binary_status != CL_SUCCESS)
        goto cleanup;
    if (clBuildProgram(program, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS)
        goto cleanup;
    *out = program;
    program = NULL;
    result = CACHE_HIT;
cleanup:
    if (program)
        clReleaseProgram(program);
    free(file);
    close(fd);
    return result;
}

/* mkdir -p dir, with mode 0700 for what it creates; 0 on failure. */
static int make_directories(const char *dir)
{
    char *path = clopt_format("%s", dir);
    if (!path)
        return 0;
    int ok = 1;
    for (char *p = path + 1;; ++p) {
        if (*p != '/' && *p != '\0')
            continue;
        const char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(path, 0700) != 0 &&
            !(errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
            ok = 0;
        *p = c;
        if (!ok || c == '\0')
            break;
    }
    free(path);
    return ok;
}

/* Stores the binary of a program just built for ctx->device; 0 on failure. */
static int cache_store(struct clopt_context *ctx, cl_program program, const char *path,
                       const char *key, size_t key_length)
{
    int ok = 0;
    cl_device_id *devices = NULL;
    size_t *sizes = NULL;
    unsigned char **binaries = NULL, *entry = NULL;
    cl_uint n = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_NUM_DEVICES, sizeof n, &n, NULL) != CL_SUCCESS ||
        n == 0)
        goto cleanup;
    devices = calloc(n, sizeof *devices);
    sizes = calloc(n, sizeof *sizes);
    binaries = calloc(n, sizeof *binaries);
    if (!devices || !sizes || !binaries ||
        clGetProgramInfo(program, CL_PROGRAM_DEVICES, n * sizeof *devices, devices, NULL) !=
            CL_SUCCESS ||
        clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, n * sizeof *sizes, sizes, NULL) !=
            CL_SUCCESS)
        goto cleanup;
    cl_uint mine = 0;
    while (mine < n && devices[mine] != ctx->device)
        ++mine;
    const size_t at = CACHE_HEADER + key_length;
    if (mine == n || sizes[mine] == 0 || at >= CACHE_MAX_BYTES - 12u ||
        sizes[mine] > CACHE_MAX_BYTES - at - 12u)
        goto cleanup;
    const size_t size = at + 8 + sizes[mine] + 4;
    entry = malloc(size);
    if (!entry)
        goto cleanup;
    /* The others stay NULL: the driver skips them. */
    binaries[mine] = entry + at + 8;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, n * sizeof *binaries, binaries, NULL) !=
        CL_SUCCESS)
        goto cleanup;
    memcpy(entry, CACHE_MAGIC, 8);
    put_u32(entry + 8, CACHE_VERSION);
    put_u64(entry + 12, key_length);
    memcpy(entry + CACHE_HEADER, key, key_length);
    put_u64(entry + at, sizes[mine]);
    put_u32(entry + size - 4, clopt_crc32c(0, entry, size - 4));
    /* A directory made just now is checked like one found (a parent's default ACL or a
     * setgid bit can make it group-writable). */
    ok = make_directories(ctx->program_cache) && cache_trusted(ctx) &&
         clopt_atomic_write(path, entry, size, 0600, NULL, 0) == CLOPT_OK;
cleanup:
    free(devices);
    free(sizes);
    free(binaries);
    free(entry);
    return ok;
}

/* The caller's options plus what every kernel may ask of the device: whether it is a CPU
 * (CLOPT_DEVICE_CPU: CPU-only code such as clang's prefetch builtin), and whether to drop
 * `restrict`, __builtin_assume, __builtin_elementwise_roundeven and non-temporal stores
 * (CLOPT_NO_RESTRICT, CLOPT_NO_ASSUME, CLOPT_NO_ROUNDEVEN and CLOPT_NO_NT_STORE on oclgrind,
 * whose interpreter cannot run the llvm.experimental.noalias.scope.decl calls clang emits for
 * inlined restrict pointers, nor llvm.assume, nor llvm.roundeven: "Undefined external
 * function" in oclgrind 21.10; the stores' !nontemporal hint it would at best ignore, and the
 * sfence after them is an x86 intrinsic). */
static char *device_options(const struct clopt_context *ctx, const char *options)
{
    const int cpu = ctx->info.kind == CLOPT_DEVICE_CPU;
    const int oclgrind = strcmp(ctx->info.platform, "Oclgrind") == 0;
    return clopt_format(
        "%s%s-DCLOPT_DEVICE_CPU=%d%s", options ? options : "", options && *options ? " " : "", cpu,
        oclgrind ? " -DCLOPT_NO_RESTRICT=1 -DCLOPT_NO_ASSUME=1 -DCLOPT_NO_ROUNDEVEN=1"
                   " -DCLOPT_NO_NT_STORE=1"
                 : "");
}

int clopt_build_program(struct clopt_context *ctx, const struct clopt_program_part *parts,
                        size_t n_parts, const char *caller_options, cl_program *out)
{
    *out = NULL;
    int status = CLOPT_OK;
    char *source = NULL, *text = NULL, *log = NULL, *key = NULL, *entry = NULL;
    size_t used = 0, capacity = 0, length = 0, key_length = 0;
    cl_program program = NULL;
    char *options = device_options(ctx, caller_options);
    if (!options)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
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
    /* The cache: a hit ends here; anything wrong with an entry means a build from source,
     * whose binary then replaces it. */
    /* A cache entry holds one device's binary; a program for several devices is built from
     * source (host/devices.c). */
    int caching = ctx->program_cache != NULL && ctx->n_devices <= 1 && cache_trusted(ctx);
    if (caching) {
        if (cache_key(ctx, source, used, options, &key, &key_length, &entry)) {
            const enum cache_lookup found =
                cache_load(ctx, entry, key, key_length, options, &program);
            if (found == CACHE_HIT) {
                ++ctx->cache_stats.hits;
                *out = program;
                program = NULL;
                goto cleanup;
            }
            if (found == CACHE_REJECTED)
                ++ctx->cache_stats.rejected;
        }
        ++ctx->cache_stats.misses;
        caching = ctx->cache_problem == NULL; /* an untrusted entry: store nothing either */
    }
    cl_int err;
    const char *sources[] = {source};
    program = clCreateProgramWithSource(ctx->context, 1, sources, NULL, &err);
    if (err != CL_SUCCESS) {
        program = NULL;
        status = clopt_fail_cl(ctx, err, "clCreateProgramWithSource");
        goto cleanup;
    }
    err = ctx->n_devices > 1
              ? clBuildProgram(program, (cl_uint)ctx->n_devices, ctx->devices, options, NULL, NULL)
              : clBuildProgram(program, 1, &ctx->device, options, NULL, NULL);
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
    if (caching) {
        if (key && cache_store(ctx, program, entry, key, key_length))
            ++ctx->cache_stats.stores;
        else
            ++ctx->cache_stats.store_failures;
    }
    *out = program;
    program = NULL;
cleanup:
    if (program)
        clReleaseProgram(program);
    free(source);
    free(text);
    free(log);
    free(key);
    free(entry);
    free(options);
    return status;
}
