/* libFuzzer target: the .npy header reader on arbitrary bytes. */
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!f)
        return 0;
    struct clopt_npy_info info;
    char err[256];
    if (clopt_npy_read_header(f, &info, err, sizeof err) == CLOPT_OK) {
        const uint64_t item = info.dtype == CLOPT_DOUBLE ? 8 : 4;
        /* Accepted means consistent: the data fills the rest of the file exactly. */
        if (info.count == 0 || info.data_offset + info.count * item != size)
            abort();
    }
    fclose(f);
    return 0;
}
