/* The library's version, as built (a program may run against a newer libclopt.so than the
 * header it was compiled with: compare clopt_version() with CLOPT_VERSION_STRING). */
#include "clopt.h"

#define CLOPT_STRINGIFY(x) #x
#define CLOPT_VERSION_TEXT(major, minor, patch)                                                    \
    CLOPT_STRINGIFY(major) "." CLOPT_STRINGIFY(minor) "." CLOPT_STRINGIFY(patch)

const char *clopt_version(void)
{
    return CLOPT_VERSION_TEXT(CLOPT_VERSION_MAJOR, CLOPT_VERSION_MINOR, CLOPT_VERSION_PATCH);
}
