/* libFuzzer target: the checkpoint reader walking every section of arbitrary bytes, as
 * clopt_solver_resume does before it trusts any of them. */
#include "internal.h"

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
    struct clopt_ckpt_reader r;
    char err[256];
    static const char *const tags[] = {"config", "loop", "theta", "state0", "state1", "state2"};
    int status = clopt_ckpt_open_stream(&r, f, err, sizeof err);
    for (size_t i = 0; i < sizeof tags / sizeof *tags && status == CLOPT_OK; ++i) {
        if (r.sections_left == 0)
            break;
        uint64_t length;
        status = clopt_ckpt_next(&r, tags[i], &length, err, sizeof err);
        unsigned char chunk[4096];
        /* A declared length is not trusted: it is read in pieces until the data ends. */
        for (uint64_t done = 0; done < length && status == CLOPT_OK;) {
            const size_t piece =
                length - done < sizeof chunk ? (size_t)(length - done) : sizeof chunk;
            status = clopt_ckpt_read(&r, chunk, piece, err, sizeof err);
            done += piece;
        }
        if (status == CLOPT_OK)
            status = clopt_ckpt_end_section(&r, tags[i], err, sizeof err);
    }
    clopt_ckpt_close(&r, status == CLOPT_OK, err, sizeof err);
    return 0;
}
