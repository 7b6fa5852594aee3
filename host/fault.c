/* The counter behind host/fault.h. Test builds only: the global counter is the point. */
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

int clopt_fault_io(const char *what, int error)
{
    if (!clopt_fault_here(what))
        return 0;
    errno = error;
    return 1;
}

void *clopt_fault_malloc(size_t size)
{
    return clopt_fault_here("malloc") ? NULL : malloc(size);
}

void *clopt_fault_calloc(size_t count, size_t size)
{
    return clopt_fault_here("calloc") ? NULL : calloc(count, size);
}

void *clopt_fault_realloc(void *p, size_t size)
{
    return clopt_fault_here("realloc") ? NULL : realloc(p, size);
}

char *clopt_fault_strdup(const char *s)
{
    return clopt_fault_here("strdup") ? NULL : strdup(s);
}
