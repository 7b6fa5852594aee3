/* libFuzzer target: the checkpoint reader walking every section of arbitrary bytes, as
 * clopt_solver_resume does before it trusts any of them; and, for inputs starting with
 * 'S', a file rebuilt from the input's sections with every checksum right, read by
 * clopt_checkpoint_info: mutated raw bytes almost never get past the CRCs, so without the
 * rebuilt files the checks on the fields (sizes, element width, state count, the
 * configuration text) would never be reached. */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_sections(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!f)
        return;
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
}

static void put_u32(FILE *f, uint32_t v, uint32_t *crc)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    if (crc)
        *crc = clopt_crc32c(*crc, b, 4);
    fwrite(b, 1, 4, f);
}

/* The input after 'S': a section count byte, then per section a tag byte (an index into
 * the tags a checkpoint has, or another), a 16-bit little-endian length and that many
 * payload bytes (fewer if the input ends). Written as a checkpoint file with right CRCs. */
static void rebuild(FILE *f, const uint8_t *data, size_t size)
{
    static const char *const tags[] = {"config", "loop",   "theta",  "state0",
                                       "state1", "state2", "state3", "other"};
    size_t at = 0;
    const uint32_t count = size > 0 ? data[at++] % 8u : 0;
    uint32_t crc = 0;
    fwrite("CLOPTCKP", 1, 8, f);
    crc = clopt_crc32c(crc, "CLOPTCKP", 8);
    put_u32(f, 1, &crc);
    put_u32(f, count, &crc);
    put_u32(f, crc, NULL);
    for (uint32_t s = 0; s < count; ++s) {
        char tag[8] = {0};
        const char *name = tags[at < size ? data[at] % 8u : 0];
        at += at < size;
        memcpy(tag, name, strlen(name));
        uint64_t length = 0;
        if (at + 2 <= size) {
            length = (uint64_t)data[at] | (uint64_t)data[at + 1] << 8;
            at += 2;
        }
        if (length > size - at)
            length = size - at;
        unsigned char len_bytes[8];
        for (int k = 0; k < 8; ++k)
            len_bytes[k] = (unsigned char)(length >> (8 * k));
        crc = clopt_crc32c(0, tag, 8);
        crc = clopt_crc32c(crc, len_bytes, 8);
        fwrite(tag, 1, 8, f);
        fwrite(len_bytes, 1, 8, f);
        put_u32(f, crc, NULL);
        fwrite(data + at, 1, (size_t)length, f);
        put_u32(f, clopt_crc32c(0, data + at, (size_t)length), NULL);
        at += (size_t)length;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    walk_sections(data, size);
    if (data[0] != 'S')
        return 0;
    /* One unlinked file for the whole session, named through /proc. */
    static FILE *file;
    static char path[64];
    if (!file) {
        char name[] = "/tmp/clopt-fuzz-ckp-XXXXXX";
        const int fd = mkstemp(name);
        if (fd < 0)
            return 0;
        unlink(name);
        file = fdopen(fd, "w+b");
        if (!file)
            return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    rewind(file);
    if (ftruncate(fileno(file), 0) != 0)
        return 0;
    rebuild(file, data + 1, size - 1);
    fflush(file);
    static struct clopt_checkpoint_info info;
    char err[256];
    clopt_checkpoint_info(path, &info, err, sizeof err);
    return 0;
}
