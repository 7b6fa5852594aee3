/* Option structs as callers built against older headers pass them (host/abi.c); not
 * installed. Every public option struct begins with `size_t struct_size`, set by its
 * *_init function to the sizeof the caller compiled; the library accepts the sizes of the
 * struct's known versions and reads only the fields the caller's version had. */
#ifndef CLOPT_ABI_H
#define CLOPT_ABI_H

#include "clopt.h"

#include <stddef.h>

/* The sizeof an older version of TYPE that ended just before FIELD (the first field the
 * next version added): its fields' bytes rounded up to TYPE's alignment, as the compiler
 * pads a struct. */
#define CLOPT_ABI_OLD_SIZE(TYPE, FIELD)                                                            \
    ((offsetof(TYPE, FIELD) + _Alignof(TYPE) - 1) / _Alignof(TYPE) * _Alignof(TYPE))

struct clopt_abi_version {
    size_t size; /* the version's sizeof, as its struct_size reads */
    size_t used; /* the bytes of that version's fields, which the library copies */
};

/* A public option struct's known versions, oldest first, the last being the current one. */
struct clopt_abi_layout {
    const char *type; /* "clopt_options", for messages */
    const char *init; /* "clopt_options_init", for messages */
    const struct clopt_abi_version *versions;
    size_t n_versions;
};

/* Overlays the caller's struct on full, which holds the current version's defaults: the
 * bytes of the caller's version are copied, later fields keep their defaults, and full's
 * struct_size becomes the current size. A struct_size of no known version leaves full as it
 * was and returns CLOPT_ERR_INVALID_ARG with one line in err saying to call the init
 * function. */
int clopt_abi_adopt(const struct clopt_abi_layout *layout, const void *caller, void *full,
                    char *err, size_t errlen);

/* The struct_size an init function writes: defaults (a complete current struct) copied into
 * the caller's `size` bytes, struct_size set to size, any bytes past the current version
 * (a caller with a newer header) zeroed. */
void clopt_abi_init(const void *defaults, size_t current_size, void *caller, size_t size);

/* Each public option struct as the library reads it: *out gets the current version's
 * defaults with the caller's fields laid over them (see clopt_abi_adopt). */
int clopt_options_adopt(const struct clopt_options *in, struct clopt_options *out, char *err,
                        size_t errlen);
int clopt_context_options_adopt(const struct clopt_context_options *in,
                                struct clopt_context_options *out, char *err, size_t errlen);
int clopt_check_options_adopt(const struct clopt_check_options *in, struct clopt_check_options *out,
                              char *err, size_t errlen);
int clopt_tune_options_adopt(const struct clopt_tune_options *in, struct clopt_tune_options *out,
                             char *err, size_t errlen);

#endif /* CLOPT_ABI_H */
