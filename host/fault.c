/* The counter behind host/fault.h. Test builds only: the global counter is the point. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
/* This file is the real allocator behind those names. */
#undef malloc
#undef calloc
#undef realloc
#undef strdup
#undef fwrite
#undef fflush
#undef fclose
#undef fsync
#undef rename
#undef link

static unsigned long calls;
static unsigned long fail_at; /* 0: never */
static int configured, verbose;
static long live[CLOPT_FAULT_KINDS];

/* At exit: every OpenCL object clopt made must have been released. */
static void report_live(void)
{
    static const char *const names[CLOPT_FAULT_KINDS] = {"context", "queue",  "mem",
                                                         "program", "kernel", "event"};
    long total = 0;
    char text[256] = "";
    size_t used = 0;
    for (int k = 0; k < CLOPT_FAULT_KINDS; ++k) {
        total += live[k];
        if (live[k] && used < sizeof text) {
            const int n = snprintf(text + used, sizeof text - used, " %s %ld", names[k], live[k]);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (total)
        fprintf(stderr, "clopt fault: OpenCL objects live at exit:%s\n", text);
}

void clopt_fault_live(enum clopt_fault_kind kind, int delta)
{
    static int registered;
    if (!registered) {
        atexit(report_live);
        registered = 1;
    }
    live[kind] += delta;
}

int clopt_fault_here(const char *what)
{
    if (!configured) {
        const char *at = getenv("CLOPT_FAULT_AT");
        fail_at = at ? strtoul(at, NULL, 10) : 0;
        verbose = getenv("CLOPT_FAULT_VERBOSE") != NULL;
        configured = 1;
    }
    ++calls;
    if (verbose)
        fprintf(stderr, "fault point %lu: %s%s\n", calls, what, calls == fail_at ? " FAILS" : "");
    /* The sweep checks that each run reached its fault: a run that never got there proves
     * nothing. */
    if (calls == fail_at)
        fprintf(stderr, "clopt fault: injected at point %lu (%s)\n", calls, what);
    return calls == fail_at;
}

int clopt_fault_point(const char *name)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static unsigned long passes;
    static char armed[128];
    const char *want = getenv("CLOPT_FAULT_POINT");
    if (!want || strcmp(want, name) != 0)
        return 0;
    const char *at = getenv("CLOPT_FAULT_POINT_AT");
    const unsigned long n = at ? strtoul(at, NULL, 10) : 1;
    char key[128];
    snprintf(key, sizeof key, "%s@%lu", want, n);
    pthread_mutex_lock(&lock);
    /* Another point or pass (a new test) counts from zero. */
    if (strcmp(armed, key) != 0) {
        snprintf(armed, sizeof armed, "%s", key);
        passes = 0;
    }
    const int fails = ++passes == n;
    pthread_mutex_unlock(&lock);
    if (fails)
        fprintf(stderr, "clopt fault: injected at %s (pass %lu)\n", name, n);
    return fails;
}

int clopt_fault_io(const char *what, int error)
{
    if (!clopt_fault_here(what))
        return 0;
    errno = error;
    return 1;
}

/* Whether one allocation of `bytes` passes $CLOPT_FAULT_MAX_ALLOC (unset: no limit): a
 * test that a code path never holds more than so much host memory at once in one block
 * (rank 0 streaming a checkpoint instead of holding its image). Read at every call, as
 * tests set it around one run. */
static int too_large(size_t bytes, const char *what)
{
    const char *cap = getenv("CLOPT_FAULT_MAX_ALLOC");
    if (!cap || !*cap || bytes <= strtoull(cap, NULL, 10))
        return 0;
    fprintf(stderr, "clopt fault: %s of %zu bytes refused (CLOPT_FAULT_MAX_ALLOC=%s)\n", what,
            bytes, cap);
    return 1;
}

void *clopt_fault_malloc(size_t size)
{
    return clopt_fault_here("malloc") || too_large(size, "malloc") ? NULL : malloc(size);
}

void *clopt_fault_calloc(size_t count, size_t size)
{
    const int over = size && count > SIZE_MAX / size ? 0 : too_large(count * size, "calloc");
    return clopt_fault_here("calloc") || over ? NULL : calloc(count, size);
}

void *clopt_fault_realloc(void *p, size_t size)
{
    return clopt_fault_here("realloc") || too_large(size, "realloc") ? NULL : realloc(p, size);
}

char *clopt_fault_strdup(const char *s)
{
    return clopt_fault_here("strdup") ? NULL : strdup(s);
}
