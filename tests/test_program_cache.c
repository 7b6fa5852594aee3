/* clopt's on-disk cache of compiled programs: hits, misses, damaged entries, directories
 * that cannot be written, and the command line's --program-cache. Every test works in a
 * fresh temporary directory, never in the user's cache. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A short adam run on an odd size: enough to show the binary computes what the source
 * does, bit for bit. */
#define N 1001
#define ITERS 5
#define SEED 7
#define ENTRY_NAME_LENGTH 32
#define MAGIC_LENGTH 8

static char *dir;   /* the test's temporary directory */
static char *cache; /* dir/cache, absent until the library creates it */

/* rm -r, for the directories the default cache path makes. */
static void remove_all(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char *child = path_in(path, e->d_name);
                remove_all(child);
                free(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup(void)
{
    /* Files this test writes into the cache must not be group-writable (a umask of 002
     * would make them so), or the library rightly distrusts them. */
    umask(022);
    dir = temp_dir();
    cache = path_in(dir, "cache");
}

static void teardown(void)
{
    remove_all(dir);
    free(cache);
    free(dir);
}

TestSuite(program_cache, .init = setup, .fini = teardown);

static struct clopt_options run_options(void)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = N;
    o.optimizer = "adam";
    o.lr = 0.05;
    o.max_iters = ITERS;
    o.seed = SEED;
    return o;
}

/* A context caching in path (NULL: no cache). */
static struct clopt_context *context_with_cache(const char *path)
{
    struct clopt_context_options co;
    clopt_context_options_init(&co);
    co.program_cache = path;
    struct clopt_context *ctx = NULL;
    cr_assert_eq(clopt_context_create(&ctx, &co), CLOPT_OK, "%s", clopt_errmsg(ctx));
    return ctx;
}

struct outcome {
    float theta[N];
    double loss;
};

/* Creates a solver on ctx (this is where the program is built or loaded), runs it and
 * reads theta back. */
static void solve(struct clopt_context *ctx, const struct clopt_options *o, struct outcome *out)
{
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    cr_assert_eq(r.iterations, ITERS);
    cr_assert_eq(clopt_solver_read_theta(s, out->theta, CLOPT_FLOAT, 0, N), CLOPT_OK);
    out->loss = r.loss;
    clopt_solver_destroy(s);
}

static void expect_identical(const struct outcome *a, const struct outcome *b, const char *what)
{
    cr_expect_eq(memcmp(a->theta, b->theta, sizeof a->theta), 0, "%s: theta differs", what);
    cr_expect_eq(memcmp(&a->loss, &b->loss, sizeof a->loss), 0, "%s: loss %.17g, not %.17g", what,
                 b->loss, a->loss);
}

static struct clopt_cache_stats stats_of(const struct clopt_context *ctx)
{
    struct clopt_cache_stats st;
    cr_assert_eq(clopt_context_cache_stats(ctx, &st), CLOPT_OK);
    return st;
}

static void expect_stats(const struct clopt_context *ctx, uint64_t hits, uint64_t misses,
                         uint64_t stores, uint64_t store_failures, uint64_t rejected,
                         const char *what)
{
    const struct clopt_cache_stats st = stats_of(ctx);
    cr_expect(st.hits == hits && st.misses == misses && st.stores == stores &&
                  st.store_failures == store_failures && st.rejected == rejected,
              "%s: hits %llu misses %llu stores %llu store_failures %llu rejected %llu, expected "
              "%llu %llu %llu %llu %llu",
              what, (unsigned long long)st.hits, (unsigned long long)st.misses,
              (unsigned long long)st.stores, (unsigned long long)st.store_failures,
              (unsigned long long)st.rejected, (unsigned long long)hits, (unsigned long long)misses,
              (unsigned long long)stores, (unsigned long long)store_failures,
              (unsigned long long)rejected);
}

/* The entries in path (files named by 32 hex digits); anything else there, such as a
 * temporary file left behind, fails the test. names, when not NULL, gets a copy of each
 * entry's name (up to max). */
static size_t entries(const char *path, char names[][ENTRY_NAME_LENGTH + 1], size_t max)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        const int is_entry = strlen(e->d_name) == ENTRY_NAME_LENGTH &&
                             strspn(e->d_name, "0123456789abcdef") == ENTRY_NAME_LENGTH;
        cr_expect(is_entry, "unexpected file '%s' in the cache", e->d_name);
        if (is_entry && names && count < max) {
            memcpy(names[count], e->d_name, ENTRY_NAME_LENGTH);
            names[count][ENTRY_NAME_LENGTH] = '\0';
        }
        ++count;
    }
    closedir(d);
    return count;
}

/* Fills a fresh cache with the entry of run_options() and returns its path. */
static char *populate(struct outcome *cached)
{
    struct clopt_context *ctx = context_with_cache(cache);
    const struct clopt_options o = run_options();
    solve(ctx, &o, cached);
    expect_stats(ctx, 0, 1, 1, 0, 0, "a fresh cache");
    clopt_context_destroy(ctx);
    char names[2][ENTRY_NAME_LENGTH + 1];
    cr_assert_eq(entries(cache, names, 2), 1);
    return path_in(cache, names[0]);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    const long length = ftell(f);
    cr_assert_geq(length, 0);
    rewind(f);
    unsigned char *data = malloc((size_t)length + 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)length, f), (size_t)length);
    fclose(f);
    *size = (size_t)length;
    return data;
}

static void write_file(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

Test(program_cache, a_second_context_loads_the_binary_and_computes_the_same_bits)
{
    const struct clopt_options o = run_options();
    struct outcome *plain = malloc(sizeof *plain), *first = malloc(sizeof *first),
                   *second = malloc(sizeof *second);
    cr_assert(plain && first && second);
    struct clopt_context *ctx = context_with_cache(NULL);
    solve(ctx, &o, plain);
    expect_stats(ctx, 0, 0, 0, 0, 0, "no cache");
    clopt_context_destroy(ctx);

    /* The first build: a miss, stored; the directory is created, private to the user. */
    char *entry = populate(first);
    expect_identical(plain, first, "the run that filled the cache");
    struct stat st;
    cr_assert_eq(stat(cache, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700, "the cache directory has mode %o", st.st_mode & 0777);
    size_t size;
    unsigned char *data = read_file(entry, &size);
    cr_expect_gt(size, (size_t)64);
    cr_expect_eq(memcmp(data, "CLOPTPC", MAGIC_LENGTH), 0,
                 "the entry does not start with the magic");
    free(data);

    /* A second context, set up through the setter this time: a hit, nothing built. */
    ctx = context_with_cache(NULL);
    cr_assert_eq(clopt_context_set_program_cache(ctx, cache), CLOPT_OK);
    solve(ctx, &o, second);
    expect_stats(ctx, 1, 0, 0, 0, 0, "the second context");
    expect_identical(plain, second, "the run from the cached binary");

    /* Switched off again: builds are not counted and nothing is written. */
    cr_assert_eq(clopt_context_set_program_cache(ctx, NULL), CLOPT_OK);
    solve(ctx, &o, second);
    expect_stats(ctx, 1, 0, 0, 0, 0, "after switching the cache off");
    clopt_context_destroy(ctx);
    cr_expect_eq(entries(cache, NULL, 0), 1);
    cr_expect_eq(clopt_context_cache_stats(NULL, &(struct clopt_cache_stats){0}),
                 CLOPT_ERR_INVALID_ARG);
    free(entry);
    free(plain);
    free(first);
    free(second);
}

Test(program_cache, other_knobs_or_another_optimizer_are_other_entries)
{
    struct outcome *out = malloc(sizeof *out);
    cr_assert_not_null(out);
    char *entry = populate(out);
    free(entry);
    struct clopt_context *ctx = context_with_cache(cache);
    /* The same source with other build options (a knob)... */
    struct clopt_options o = run_options();
    o.knobs.work_group = 4;
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 1, 1, 0, 0, "other knobs");
    cr_expect_eq(entries(cache, NULL, 0), 2);
    /* ...and other source (another update rule). */
    o = run_options();
    o.optimizer = "gd";
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 2, 2, 0, 0, "another optimizer");
    cr_expect_eq(entries(cache, NULL, 0), 3);
    /* Each is found again. */
    o.knobs.work_group = 0;
    solve(ctx, &o, out);
    o = run_options();
    solve(ctx, &o, out);
    expect_stats(ctx, 2, 2, 2, 0, 0, "the same three again");
    clopt_context_destroy(ctx);
    free(out);
}

/* Damages the entry at path with change(), then checks that a new context rejects it,
 * still computes the reference bits, and leaves a valid entry that the next one loads. */
static void expect_recovery(const char *path, const struct outcome *expected, const char *what)
{
    struct outcome *out = malloc(sizeof *out);
    cr_assert_not_null(out);
    const struct clopt_options o = run_options();
    struct clopt_context *ctx = context_with_cache(cache);
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 1, 1, 0, 1, what);
    expect_identical(expected, out, what);
    clopt_context_destroy(ctx);
    ctx = context_with_cache(cache);
    solve(ctx, &o, out);
    expect_stats(ctx, 1, 0, 0, 0, 0, "the rewritten entry");
    expect_identical(expected, out, "the rewritten entry");
    clopt_context_destroy(ctx);
    cr_expect_eq(access(path, R_OK), 0);
    free(out);
}

Test(program_cache, a_damaged_entry_is_rejected_and_rewritten)
{
    struct outcome *expected = malloc(sizeof *expected);
    cr_assert_not_null(expected);
    char *entry = populate(expected);
    size_t size;
    unsigned char *data = read_file(entry, &size);

    /* One bit flipped in the middle (inside the binary: the CRC catches it). */
    data[size / 2] ^= 0x10;
    write_file(entry, data, size);
    expect_recovery(entry, expected, "a flipped byte");

    /* Cut short. */
    free(data);
    data = read_file(entry, &size);
    write_file(entry, data, size / 3);
    expect_recovery(entry, expected, "a truncated entry");

    /* Empty, and cut inside the header. */
    write_file(entry, data, 0);
    expect_recovery(entry, expected, "an empty entry");
    free(data);
    data = read_file(entry, &size);
    write_file(entry, data, 13);
    expect_recovery(entry, expected, "an entry cut in its header");

    /* A whole, valid entry of another program under this name, as a hash collision would
     * leave: its key differs, so it is not used. */
    struct clopt_context *ctx = context_with_cache(cache);
    struct clopt_options o = run_options();
    o.knobs.work_group = 4;
    struct outcome *other = malloc(sizeof *other);
    cr_assert_not_null(other);
    solve(ctx, &o, other);
    clopt_context_destroy(ctx);
    char names[3][ENTRY_NAME_LENGTH + 1];
    cr_assert_eq(entries(cache, names, 3), 2);
    char *other_entry =
        path_in(cache, strcmp(entry + strlen(cache) + 1, names[0]) ? names[0] : names[1]);
    free(data);
    data = read_file(other_entry, &size);
    write_file(entry, data, size);
    expect_recovery(entry, expected, "another key's entry");

    free(other_entry);
    free(other);
    free(data);
    free(entry);
    free(expected);
}

Test(program_cache, a_cache_that_cannot_be_written_costs_nothing_but_the_cache)
{
    struct outcome *plain = malloc(sizeof *plain), *out = malloc(sizeof *out);
    cr_assert(plain && out);
    const struct clopt_options o = run_options();
    struct clopt_context *ctx = context_with_cache(NULL);
    solve(ctx, &o, plain);
    clopt_context_destroy(ctx);

    /* The directory would have to be made below a regular file. */
    char *file = path_in(dir, "file");
    write_file(file, (const unsigned char *)"x", 1);
    char *below = path_in(file, "cache");
    ctx = context_with_cache(below);
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 1, 0, 1, 0, "a cache below a regular file");
    expect_identical(plain, out, "a cache below a regular file");
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 2, 0, 2, 0, "the second build");
    clopt_context_destroy(ctx);

    /* The cache path itself is a regular file. */
    ctx = context_with_cache(file);
    solve(ctx, &o, out);
    expect_stats(ctx, 0, 1, 0, 1, 0, "a cache path that is a file");
    expect_identical(plain, out, "a cache path that is a file");
    clopt_context_destroy(ctx);

    /* A directory this process may not write in (root may write anyway: then it is an
     * ordinary miss and store). */
    cr_assert_eq(mkdir(cache, 0500), 0);
    ctx = context_with_cache(cache);
    solve(ctx, &o, out);
    const struct clopt_cache_stats st = stats_of(ctx);
    cr_expect(st.misses == 1 && st.stores + st.store_failures == 1 && st.rejected == 0,
              "a read-only directory: misses %llu stores %llu failures %llu",
              (unsigned long long)st.misses, (unsigned long long)st.stores,
              (unsigned long long)st.store_failures);
    if (access(cache, W_OK) != 0)
        cr_expect_eq(st.store_failures, 1);
    expect_identical(plain, out, "a read-only directory");
    clopt_context_destroy(ctx);
    chmod(cache, 0700);

    free(below);
    free(file);
    free(plain);
    free(out);
}

/* The "program_cache" object of a run's --json output. */
struct cli_cache {
    double hits, misses, stores, store_failures, rejected, loss;
    char dir[512]; /* "" for null */
};

static struct cli_cache cli_cache_run(const char *const *args, const char *env_name,
                                      const char *env_value)
{
    struct cli_result r = cli_run_env(args, env_name, env_value);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    /* Nothing extra from clopt (the driver's compiler may speak on a cold build). */
    cr_expect(strstr(r.err, "clopt") == NULL, "a quiet run printed: %s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(root, "program_cache");
    cr_assert(cJSON_IsObject(pc), "no program_cache object in %s", r.out);
    struct cli_cache c;
    memset(&c, 0, sizeof c);
    const char *keys[] = {"hits", "misses", "stores", "store_failures", "rejected"};
    double *fields[] = {&c.hits, &c.misses, &c.stores, &c.store_failures, &c.rejected};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; ++i) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pc, keys[i]);
        cr_assert(cJSON_IsNumber(v), "program_cache.%s missing", keys[i]);
        *fields[i] = v->valuedouble;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(pc, "dir");
    cr_assert(cJSON_IsString(d) || cJSON_IsNull(d));
    if (cJSON_IsString(d))
        snprintf(c.dir, sizeof c.dir, "%s", d->valuestring);
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(root, "loss");
    cr_assert(cJSON_IsNumber(loss));
    c.loss = loss->valuedouble;
    cJSON_Delete(root);
    cli_result_free(&r);
    return c;
}

Test(program_cache, the_command_line_uses_the_cache_it_is_given)
{
    const char *help[] = {"--help", NULL};
    struct cli_result h = cli_run(help);
    cr_expect(strstr(h.out, "--program-cache") != NULL, "--help does not mention --program-cache");
    cli_result_free(&h);

#define RUN_ARGS                                                                                   \
    "run", "--dim", "1001", "--iters", "5", "--optimizer", "adam", "--seed", "7", "--json", "-",   \
        "--quiet"
    const char *with_flag[] = {RUN_ARGS, "--program-cache", cache, NULL};
    struct cli_cache first = cli_cache_run(with_flag, NULL, NULL);
    cr_expect_str_eq(first.dir, cache);
    cr_expect(first.misses == 1 && first.stores == 1 && first.hits == 0,
              "first run: hits %g misses %g stores %g", first.hits, first.misses, first.stores);
    struct cli_cache second = cli_cache_run(with_flag, NULL, NULL);
    cr_expect(second.hits == 1 && second.misses == 0 && second.stores == 0,
              "second run: hits %g misses %g stores %g", second.hits, second.misses, second.stores);
    cr_expect_eq(memcmp(&first.loss, &second.loss, sizeof first.loss), 0, "loss %.17g, then %.17g",
                 first.loss, second.loss);

    /* The environment names it too, and the flag's "off" beats the environment. */
    const char *plain[] = {RUN_ARGS, NULL};
    struct cli_cache env = cli_cache_run(plain, "CLOPT_PROGRAM_CACHE", cache);
    cr_expect(env.hits == 1 && !strcmp(env.dir, cache), "CLOPT_PROGRAM_CACHE: hits %g, dir '%s'",
              env.hits, env.dir);
    const char *off[] = {RUN_ARGS, "--program-cache", "off", NULL};
    struct cli_cache none = cli_cache_run(off, "CLOPT_PROGRAM_CACHE", cache);
    cr_expect(none.hits == 0 && none.misses == 0 && none.dir[0] == '\0',
              "--program-cache off: hits %g misses %g dir '%s'", none.hits, none.misses, none.dir);

    /* With neither, the cache lives under $XDG_CACHE_HOME (here the test's directory).
     * PoCL keeps its own cache there too: it stays where it was, or every kernel of this
     * run would be compiled from nothing. */
    if (!getenv("POCL_CACHE_DIR")) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        char pocl[1024];
        if (xdg && *xdg)
            snprintf(pocl, sizeof pocl, "%s/pocl/kcache", xdg);
        else
            snprintf(pocl, sizeof pocl, "%s/.cache/pocl/kcache", home ? home : "/tmp");
        cr_assert_eq(setenv("POCL_CACHE_DIR", pocl, 1), 0);
    }
    cr_assert_eq(setenv("XDG_CACHE_HOME", dir, 1), 0);
    struct cli_cache xdg = cli_cache_run(plain, "CLOPT_PROGRAM_CACHE", "");
    char *expected = path_in(dir, "clopt/programs");
    cr_expect_str_eq(xdg.dir, expected);
    cr_expect(xdg.misses == 1 && xdg.stores == 1, "XDG cache: misses %g stores %g", xdg.misses,
              xdg.stores);
    cr_expect_eq(entries(expected, NULL, 0), 1);
    cr_expect_eq(memcmp(&first.loss, &xdg.loss, sizeof first.loss), 0);
    free(expected);
#undef RUN_ARGS
}

/* Runs with the cache and expects no lookup to have served: the binary came from source,
 * and the context says why it no longer trusts the cache. */
static void expect_distrust(const char *what, const char *reason, const struct outcome *expected)
{
    struct outcome *out = malloc(sizeof *out);
    cr_assert_not_null(out);
    struct clopt_context *ctx = context_with_cache(cache);
    const struct clopt_options o = run_options();
    solve(ctx, &o, out);
    const struct clopt_cache_stats st = stats_of(ctx);
    cr_expect_eq(st.hits, 0, "%s: an untrusted entry was run", what);
    cr_expect_eq(st.stores, 0, "%s: an untrusted cache was written", what);
    const char *problem = clopt_context_cache_problem(ctx);
    cr_expect(problem && strstr(problem, reason), "%s: problem '%s', wanted '%s'", what,
              problem ? problem : "(none)", reason);
    expect_identical(expected, out, what);
    /* Once distrusted, the context leaves the cache alone. */
    solve(ctx, &o, out);
    const struct clopt_cache_stats again = stats_of(ctx);
    cr_expect(again.hits == 0 && again.misses == st.misses && again.stores == 0,
              "%s: the cache was used after it was distrusted", what);
    clopt_context_destroy(ctx);
    free(out);
}

/* A cached binary is run as it is and its CRC is no signature: an entry or directory that
 * another user, or anyone, could have written is not used (issue 16, item 6). */
Test(program_cache, what_others_could_have_written_is_not_trusted)
{
    struct outcome *cached = malloc(sizeof *cached);
    cr_assert_not_null(cached);
    char *entry = populate(cached);
    size_t size;
    unsigned char *data = read_file(entry, &size);

    cr_assert_eq(chmod(entry, 0666), 0);
    expect_distrust("a world-writable entry", "writable by group or others", cached);
    cr_assert_eq(chmod(entry, 0600), 0);

    cr_assert_eq(chmod(cache, 0770), 0);
    expect_distrust("a group-writable directory", "directory", cached);
    cr_assert_eq(chmod(cache, 0700), 0);

    /* A symlink to a whole entry elsewhere, and a FIFO (which must not hang the build). */
    char *elsewhere = path_in(dir, "elsewhere");
    write_file(elsewhere, data, size);
    cr_assert_eq(unlink(entry), 0);
    cr_assert_eq(symlink(elsewhere, entry), 0);
    expect_distrust("a symlinked entry", "a symlink", cached);
    cr_assert_eq(unlink(entry), 0);
    cr_assert_eq(mkfifo(entry, 0600), 0);
    expect_distrust("a FIFO entry", "not a regular file", cached);
    cr_assert_eq(unlink(entry), 0);

    write_file(entry, data, size);
    cr_assert_eq(chmod(entry, 0600), 0);
    if (geteuid() == 0) { /* only root can give a file away */
        cr_assert_eq(chown(entry, 65534, 65534), 0);
        expect_distrust("another user's entry", "owned by another user", cached);
        cr_assert_eq(chown(entry, 0, 0), 0);
    }

    /* A sticky directory such as /tmp: others cannot replace what this user owns. */
    cr_assert_eq(chmod(cache, 01777), 0);
    struct clopt_context *ctx = context_with_cache(cache);
    struct outcome *out = malloc(sizeof *out);
    cr_assert_not_null(out);
    const struct clopt_options o = run_options();
    solve(ctx, &o, out);
    expect_stats(ctx, 1, 0, 0, 0, 0, "a sticky directory, an entry of this user");
    cr_expect_null(clopt_context_cache_problem(ctx));
    expect_identical(cached, out, "a sticky directory");
    clopt_context_destroy(ctx);
    cr_assert_eq(chmod(cache, 0700), 0);

    /* The command line says it in one warning line and runs. */
    cr_assert_eq(chmod(entry, 0666), 0);
    const char *args[] = {"run", "--optimizer", "adam", "--dim",  "1001", "--iters",
                          "5",   "--lr",        "0.05", "--seed", "7",    "--program-cache",
                          cache, "--quiet",     NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, 0, "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect(strncmp(r.err, "clopt: warning: program cache entry", 35) == 0, "%s", r.err);
    cli_result_free(&r);

    free(out);
    free(elsewhere);
    free(data);
    free(entry);
    free(cached);
}
