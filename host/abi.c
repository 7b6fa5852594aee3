/* Option structs across header versions: the caller's struct_size names its version. */
#include "abi.h"

#include "clopt.h"

#include <stdio.h>
#include <string.h>

int clopt_abi_adopt(const struct clopt_abi_layout *layout, const void *caller, void *full,
                    char *err, size_t errlen)
{
    size_t size;
    /* struct_size is the first member of every version, so reading it is always in bounds. */
    memcpy(&size, caller, sizeof size);
    for (size_t k = 0; k < layout->n_versions; ++k) {
        const struct clopt_abi_version *v = &layout->versions[k];
        if (size != v->size)
            continue;
        memcpy(full, caller, v->used);
        const size_t current = layout->versions[layout->n_versions - 1].size;
        memcpy(full, &current, sizeof current);
        return CLOPT_OK;
    }
    if (size == 0)
        snprintf(err, errlen,
                 "%s.struct_size is 0: the struct was not initialised; call %s() on it "
                 "before setting its fields",
                 layout->type, layout->init);
    else
        snprintf(err, errlen,
                 "%s.struct_size %zu is not a size this libclopt %s knows (it knows up to "
                 "%zu): call %s() on the struct, and build with the clopt.h of the library "
                 "you link (a newer header needs a newer library)",
                 layout->type, size, clopt_version(), layout->versions[layout->n_versions - 1].size,
                 layout->init);
    return CLOPT_ERR_INVALID_ARG;
}

void clopt_abi_init(const void *defaults, size_t current_size, void *caller, size_t size)
{
    if (!caller || size < sizeof(size_t))
        return;
    memcpy(caller, defaults, size < current_size ? size : current_size);
    if (size > current_size)
        memset((char *)caller + current_size, 0, size - current_size);
    memcpy(caller, &size, sizeof size);
}
