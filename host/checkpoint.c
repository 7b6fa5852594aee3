/* The checkpoint file format: sections, each with a CRC-32C over its header and one over
 * its payload, written through the atomic file writer (atomic_file.h), which keeps the old
 * checkpoint as PATH.prev.
 *
 *   file    = "CLOPTCKP" u32:version u32:n_sections u32:crc(the 16 bytes before)
 *   section = char[8]:tag u64:length u32:crc(tag, length) payload[length] u32:crc(payload)
 *
 * Integers are little-endian (the byte order of every machine clopt runs on is checked
 * when writing). The file ends right after the last section. */
#include "atomic_file.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "CLOPTCKP"
/* 2: the loop section records what the stopping test that decided saw (host/solver/solver.h),
 * and the configuration names input files by the checksum of their content. Files of
 * version 1 are still read. */
#define VERSION 2u
#define OLDEST_VERSION 1u
#define CHUNK CLOPT_CKPT_CHUNK

static int little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* strerror is not thread-safe, and the writer runs on its own thread. */
static const char *errtext(int error, char *buffer, size_t size)
{
    if (strerror_r(error, buffer, size) != 0)
        snprintf(buffer, size, "error %d", error);
    return buffer;
}

static int put(FILE *f, const void *data, size_t bytes, uint32_t *crc)
{
    if (crc)
        *crc = clopt_crc32c(*crc, data, bytes);
    return fwrite(data, 1, bytes, f) == bytes ? 0 : -1;
}

static void say(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

int clopt_ckpt_write(const char *path, const struct clopt_ckpt_section *sections, size_t n_sections,
                     clopt_ckpt_fetch fetch, void *user, char *err, size_t errlen)
{
    if (!little_endian()) {
        say(err, errlen, "checkpoints are little-endian; this machine is not%s%s", "", "");
        return CLOPT_ERR_UNSUPPORTED;
    }
    char *prev = clopt_format("%s.prev", path);
    void *chunk = malloc(CHUNK);
    struct clopt_atomic_file file = {0};
    int status = CLOPT_OK;
    if (!prev || !chunk) {
        say(err, errlen, "out of host memory writing checkpoint '%s'%s", path, "");
        status = CLOPT_ERR_OUT_OF_MEMORY;
        goto cleanup;
    }
    char why[256];
    status = clopt_atomic_open(&file, path, 0666, why, sizeof why);
    if (status != CLOPT_OK) {
        say(err, errlen, "cannot write checkpoint: %s%s", why, "");
        goto cleanup;
    }
    FILE *f = file.stream;
    unsigned char head[20];
    const uint32_t version = VERSION, count = (uint32_t)n_sections;
    memcpy(head, MAGIC, 8);
    memcpy(head + 8, &version, 4);
    memcpy(head + 12, &count, 4);
    const uint32_t head_crc = clopt_crc32c(0, head, 16);
    memcpy(head + 16, &head_crc, 4);
    int bad = put(f, head, sizeof head, NULL);
    for (size_t i = 0; i < n_sections && !bad; ++i) {
        const struct clopt_ckpt_section *s = &sections[i];
        unsigned char sh[20];
        memcpy(sh, s->tag, 8);
        memcpy(sh + 8, &s->length, 8);
        const uint32_t sh_crc = clopt_crc32c(0, sh, 16);
        memcpy(sh + 16, &sh_crc, 4);
        bad = put(f, sh, sizeof sh, NULL);
        uint32_t crc = 0;
        for (uint64_t done = 0; done < s->length && !bad;) {
            const size_t bytes = s->length - done < CHUNK ? (size_t)(s->length - done) : CHUNK;
            const void *src = (const char *)s->data + done;
            if (!s->data) {
                status = fetch(user, i, done, chunk, bytes);
                if (status != CLOPT_OK) {
                    say(err, errlen, "reading the device for checkpoint '%s' failed%s", path, "");
                    goto cleanup;
                }
                src = chunk;
            }
            bad = put(f, src, bytes, &crc);
            done += bytes;
        }
        if (!bad)
            bad = put(f, &crc, sizeof crc, NULL);
    }
    if (bad) {
        say(err, errlen, "writing checkpoint '%s' failed: %s", path,
            errtext(errno, why, sizeof why));
        status = CLOPT_ERR_IO;
        goto cleanup;
    }
    status = clopt_atomic_commit(&file, prev, why, sizeof why);
    if (status != CLOPT_OK)
        say(err, errlen, "writing checkpoint failed: %s%s", why, "");
cleanup:
    clopt_atomic_abort(&file);
    free(prev);
    free(chunk);
    return status;
}

int clopt_ckpt_open(struct clopt_ckpt_reader *r, const char *path, char *err, size_t errlen)
{
    char why[128];
    memset(r, 0, sizeof *r);
    FILE *f = clopt_open_input(path, why, sizeof why);
    if (!f) {
        say(err, errlen, "cannot be opened: %s%s", why, "");
        return CLOPT_ERR_BAD_FILE;
    }
    return clopt_ckpt_open_stream(r, f, err, errlen);
}

int clopt_ckpt_open_stream(struct clopt_ckpt_reader *r, FILE *f, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    unsigned char head[20];
    uint32_t version, count, crc;
    if (fread(head, 1, sizeof head, r->f) != sizeof head || memcmp(head, MAGIC, 8) != 0) {
        say(err, errlen, "not a clopt checkpoint (bad magic or too short)%s%s", "", "");
        return CLOPT_ERR_BAD_FILE;
    }
    memcpy(&version, head + 8, 4);
    memcpy(&count, head + 12, 4);
    memcpy(&crc, head + 16, 4);
    if (crc != clopt_crc32c(0, head, 16)) {
        say(err, errlen, "damaged: the header checksum does not match%s%s", "", "");
        return CLOPT_ERR_BAD_FILE;
    }
    if (version < OLDEST_VERSION || version > VERSION) {
        say(err, errlen, "a checkpoint format version this clopt does not read%s%s", "", "");
        return CLOPT_ERR_BAD_FILE;
    }
    r->version = version;
    r->sections_left = count;
    return CLOPT_OK;
}

int clopt_ckpt_next(struct clopt_ckpt_reader *r, const char *tag, uint64_t *length, char *err,
                    size_t errlen)
{
    unsigned char sh[20];
    uint32_t crc;
    if (r->sections_left == 0 || fread(sh, 1, sizeof sh, r->f) != sizeof sh) {
        say(err, errlen, "checkpoint is truncated or damaged: section '%s' is missing%s", tag, "");
        return CLOPT_ERR_BAD_FILE;
    }
    memcpy(&crc, sh + 16, 4);
    if (crc != clopt_crc32c(0, sh, 16)) {
        say(err, errlen,
            "checkpoint is damaged: the header of section '%s' does not match its "
            "checksum%s",
            tag, "");
        return CLOPT_ERR_BAD_FILE;
    }
    if (strncmp((const char *)sh, tag, 8) != 0) {
        say(err, errlen, "checkpoint is damaged or of another kind: expected section '%s'%s", tag,
            "");
        return CLOPT_ERR_BAD_FILE;
    }
    memcpy(length, sh + 8, 8);
    --r->sections_left;
    r->left = *length;
    r->crc = 0;
    return CLOPT_OK;
}

int clopt_ckpt_read(struct clopt_ckpt_reader *r, void *dst, size_t bytes, char *err, size_t errlen)
{
    if (bytes > r->left || fread(dst, 1, bytes, r->f) != bytes) {
        say(err, errlen, "checkpoint is truncated%s%s", "", "");
        return CLOPT_ERR_BAD_FILE;
    }
    r->left -= bytes;
    r->crc = clopt_crc32c(r->crc, dst, bytes);
    return CLOPT_OK;
}

int clopt_ckpt_end_section(struct clopt_ckpt_reader *r, const char *tag, char *err, size_t errlen)
{
    uint32_t crc;
    if (r->left != 0 || fread(&crc, 1, sizeof crc, r->f) != sizeof crc) {
        say(err, errlen, "checkpoint is truncated in section '%s'%s", tag, "");
        return CLOPT_ERR_BAD_FILE;
    }
    if (crc != r->crc) {
        say(err, errlen, "checkpoint is damaged: section '%s' does not match its checksum%s", tag,
            "");
        return CLOPT_ERR_BAD_FILE;
    }
    return CLOPT_OK;
}

int clopt_ckpt_close(struct clopt_ckpt_reader *r, int expect_end, char *err, size_t errlen)
{
    int status = CLOPT_OK;
    if (expect_end && (r->sections_left != 0 || fgetc(r->f) != EOF)) {
        say(err, errlen, "checkpoint has unexpected data after its last section%s%s", "", "");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (r->f)
        fclose(r->f);
    r->f = NULL;
    return status;
}
