/* The counter behind host/fault.h. Test builds only: the global counter is the point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long calls;
static unsigned long fail_at; /* 0: never */
static int configured, verbose;

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
    return calls == fail_at;
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
