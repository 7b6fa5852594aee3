/* Checkpoints read without a device: what one holds (clopt_checkpoint_info) and its vectors
 * as .npy files (clopt_checkpoint_export), streamed through the checkpoint reader
 * (host/checkpoint.c). The sections and the loop section's layout are the solver's
 * (host/solver/checkpoint_write.c); only its format constants are used here. */
#include "atomic_file.h"
#include "internal.h"
#include "solver/solver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_CHUNK ((size_t)1 << 20) /* bytes */
#define MAX_CONFIG ((uint64_t)1 << 20)

/* An open checkpoint after its config and loop sections: what they say. */
struct ckpt_head {
    struct clopt_ckpt_reader r;
    char *config;
    uint64_t t, step, n;
    uint32_t elem, n_state, decided;
    int qn; /* lbfgs/cg/gd-BB: a qnloop section, theta, then qnvec (host/qn/qn_ckpt.c) */
};

static void config_value(const char *config, const char *key, char *out, size_t size);

static int fail(char *err, size_t errlen, int status, const char *path, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "checkpoint '%s': %s", path, why);
    return status;
}

static int read_config(struct ckpt_head *h, char *why, size_t size)
{
    uint64_t length;
    int status = clopt_ckpt_next(&h->r, "config", &length, why, size);
    if (status == CLOPT_OK && length > MAX_CONFIG) {
        snprintf(why, size, "its configuration is implausibly large");
        return CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK && !(h->config = calloc(1, (size_t)length + 1)))
        status = CLOPT_ERR_OUT_OF_MEMORY;
    if (status == CLOPT_OK)
        status = clopt_ckpt_read(&h->r, h->config, (size_t)length, why, size);
    return status == CLOPT_OK ? clopt_ckpt_end_section(&h->r, "config", why, size) : status;
}

/* lbfgs/cg's qnloop section: its head (element size, n, the iteration) is all that is
 * looked at here; its vectors follow theta in one qnvec section. */
static int read_qn_loop(struct ckpt_head *h, char *why, size_t size)
{
    uint64_t length;
    unsigned char head[40];
    int status = clopt_ckpt_next(&h->r, "qnloop", &length, why, size);
    if (status == CLOPT_OK && length < sizeof head) {
        snprintf(why, size, "its lbfgs/cg section has an impossible size");
        return CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_read(&h->r, head, sizeof head, why, size);
    /* The rest is read only for its checksum. */
    for (uint64_t left = length - sizeof head; status == CLOPT_OK && left > 0;) {
        unsigned char skip[512];
        const size_t m = left < sizeof skip ? (size_t)left : sizeof skip;
        status = clopt_ckpt_read(&h->r, skip, m, why, size);
        left -= m;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(&h->r, "qnloop", why, size);
    if (status != CLOPT_OK)
        return status;
    memcpy(&h->elem, head + 4, 4);
    memcpy(&h->n, head + 8, 8);
    memcpy(&h->t, head + 32, 8);
    h->step = h->t;
    if ((h->elem != sizeof(float) && h->elem != sizeof(double)) || h->n > ((uint64_t)1 << 48)) {
        snprintf(why, size, "its lbfgs/cg section does not describe a run clopt writes");
        return CLOPT_ERR_BAD_FILE;
    }
    return CLOPT_OK;
}

/* Reads the qnvec section that follows theta in an lbfgs/cg checkpoint, for its checksum. */
static int check_qn_vectors(struct ckpt_head *h, void *chunk, char *why, size_t size)
{
    uint64_t length;
    int status = clopt_ckpt_next(&h->r, "qnvec", &length, why, size);
    for (uint64_t left = length; status == CLOPT_OK && left > 0;) {
        const size_t m = left < EXPORT_CHUNK ? (size_t)left : EXPORT_CHUNK;
        status = clopt_ckpt_read(&h->r, chunk, m, why, size);
        left -= m;
    }
    return status == CLOPT_OK ? clopt_ckpt_end_section(&h->r, "qnvec", why, size) : status;
}

/* The loop section's head (LOOP_HEAD bytes, see solver.h); the pending losses are skipped. */
static int read_loop(struct ckpt_head *h, char *why, size_t size)
{
    char optimizer[32], gd_step[32];
    config_value(h->config, "optimizer", optimizer, sizeof optimizer);
    /* gd with Barzilai-Borwein steps writes the lbfgs/cg layout too, and a gd_step line. */
    config_value(h->config, "gd_step", gd_step, sizeof gd_step);
    h->qn = !strcmp(optimizer, "lbfgs") || !strcmp(optimizer, "cg") || gd_step[0];
    if (h->qn)
        return read_qn_loop(h, why, size);
    uint64_t length;
    unsigned char loop[LOOP_HEAD + RING_SIZE * LOOP_ENTRY];
    int status = clopt_ckpt_next(&h->r, "loop", &length, why, size);
    if (status == CLOPT_OK && (length < LOOP_HEAD_V1 || length > sizeof loop)) {
        snprintf(why, size, "its loop section has an impossible size");
        return CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_read(&h->r, loop, (size_t)length, why, size);
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(&h->r, "loop", why, size);
    if (status != CLOPT_OK)
        return status;
    memcpy(&h->t, loop, 8);
    memcpy(&h->step, loop + 8, 8);
    memcpy(&h->n, loop + 16, 8);
    memcpy(&h->elem, loop + 24, 4);
    memcpy(&h->n_state, loop + 28, 4);
    memcpy(&h->decided, loop + 40, 4);
    if ((h->elem != sizeof(float) && h->elem != sizeof(double)) || h->n_state > MAX_STATE ||
        h->n > ((uint64_t)1 << 48)) {
        snprintf(why, size, "its loop section does not describe a run clopt writes");
        return CLOPT_ERR_BAD_FILE;
    }
    return CLOPT_OK;
}

static int open_head(struct ckpt_head *h, const char *path, char *why, size_t size)
{
    memset(h, 0, sizeof *h);
    int status = clopt_ckpt_open(&h->r, path, why, size);
    if (status == CLOPT_OK)
        status = read_config(h, why, size);
    if (status == CLOPT_OK)
        status = read_loop(h, why, size);
    if (status == CLOPT_ERR_OUT_OF_MEMORY)
        snprintf(why, size, "out of host memory");
    return status;
}

static void close_head(struct ckpt_head *h)
{
    clopt_ckpt_close(&h->r, 0, NULL, 0);
    free(h->config);
    h->config = NULL;
}

/* The value of key in "key=value" lines into out ("" when absent). */
static void config_value(const char *config, const char *key, char *out, size_t size)
{
    const size_t n = strlen(key);
    out[0] = '\0';
    for (const char *line = config; line && *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && !strncmp(line, key, n) && line[n] == '=') {
            snprintf(out, size, "%.*s", (int)(len - n - 1), line + n + 1);
            return;
        }
        line = end ? end + 1 : NULL;
    }
}

/* The tag of vector k: theta, state0, state1, ... */
static void vector_tag(size_t k, char tag[8])
{
    memset(tag, 0, 8);
    if (k == 0)
        memcpy(tag, "theta", 5);
    else
        memcpy(tag, (const char[]){'s', 't', 'a', 't', 'e', (char)('0' + k - 1)}, 6);
}

/* Streams vector k's section to out (NULL: read and check only). */
static int copy_vector(struct ckpt_head *h, size_t k, FILE *out, void *chunk, char *why,
                       size_t size)
{
    char tag[8];
    uint64_t length;
    vector_tag(k, tag);
    int status = clopt_ckpt_next(&h->r, tag, &length, why, size);
    if (status == CLOPT_OK && length != h->n * h->elem) {
        snprintf(why, size, "section '%s' has the wrong size", tag);
        return CLOPT_ERR_BAD_FILE;
    }
    for (uint64_t done = 0; status == CLOPT_OK && done < length;) {
        const size_t m = length - done < EXPORT_CHUNK ? (size_t)(length - done) : EXPORT_CHUNK;
        status = clopt_ckpt_read(&h->r, chunk, m, why, size);
        if (status == CLOPT_OK && out && fwrite(chunk, 1, m, out) != m) {
            snprintf(why, size, "write failed: %s", strerror(errno));
            return CLOPT_ERR_IO;
        }
        done += m;
    }
    return status == CLOPT_OK ? clopt_ckpt_end_section(&h->r, tag, why, size) : status;
}

int clopt_checkpoint_info(const char *path, struct clopt_checkpoint_info *info, char *err,
                          size_t errlen)
{
    char why[512] = "";
    struct ckpt_head h;
    if (!path || !info)
        return fail(err, errlen, CLOPT_ERR_INVALID_ARG, path ? path : "", "no output given");
    memset(info, 0, sizeof *info);
    int status = open_head(&h, path, why, sizeof why);
    void *chunk = status == CLOPT_OK ? malloc(EXPORT_CHUNK) : NULL;
    if (status == CLOPT_OK && !chunk)
        status = CLOPT_ERR_OUT_OF_MEMORY, snprintf(why, sizeof why, "out of host memory");
    for (size_t k = 0; status == CLOPT_OK && k <= h.n_state; ++k)
        status = copy_vector(&h, k, NULL, chunk, why, sizeof why);
    if (status == CLOPT_OK && h.qn)
        status = check_qn_vectors(&h, chunk, why, sizeof why);
    if (status == CLOPT_OK)
        status = clopt_ckpt_close(&h.r, 1, why, sizeof why);
    free(chunk);
    if (status == CLOPT_OK) {
        config_value(h.config, "objective", info->objective, sizeof info->objective);
        /* A file objective is stored by its content; its name is the one to show. */
        if (!strncmp(info->objective, "file ", 5))
            config_value(h.config, "info.objective.file", info->objective, sizeof info->objective);
        config_value(h.config, "optimizer", info->optimizer, sizeof info->optimizer);
        info->precision = h.elem == sizeof(double) ? CLOPT_DOUBLE : CLOPT_FLOAT;
        info->n = h.n;
        info->iteration = h.t;
        info->steps = h.step;
        info->n_state = h.n_state;
        info->stopped = h.decided != 0;
        snprintf(info->config, sizeof info->config, "%s", h.config);
        char *cut = strrchr(info->config, '\n');
        if (strlen(h.config) >= sizeof info->config && cut)
            cut[1] = '\0';
    }
    close_head(&h);
    return status == CLOPT_OK ? CLOPT_OK : fail(err, errlen, status, path, why);
}

/* Vector k of the open checkpoint into a new .npy at target (NULL: skipped). */
static int export_vector(struct ckpt_head *h, size_t k, const char *target, void *chunk, char *why,
                         size_t size)
{
    if (!target)
        return copy_vector(h, k, NULL, chunk, why, size);
    struct clopt_atomic_file file;
    char err[512];
    int status = clopt_atomic_open(&file, target, 0666, err, sizeof err);
    if (status != CLOPT_OK) {
        snprintf(why, size, "%s", err);
        return status;
    }
    const enum clopt_precision dtype = h->elem == sizeof(double) ? CLOPT_DOUBLE : CLOPT_FLOAT;
    status = clopt_npy_write_header(file.stream, dtype, h->n, err, sizeof err);
    if (status != CLOPT_OK)
        snprintf(why, size, "writing '%s': %s", target, err);
    else
        status = copy_vector(h, k, file.stream, chunk, why, size);
    if (status != CLOPT_OK) {
        clopt_atomic_abort(&file);
        return status;
    }
    status = clopt_atomic_commit(&file, NULL, err, sizeof err);
    if (status != CLOPT_OK)
        snprintf(why, size, "%s", err);
    return status;
}

int clopt_checkpoint_export(const char *path, const char *theta_path, const char *state_prefix,
                            char *err, size_t errlen)
{
    char why[600] = "";
    struct ckpt_head h;
    if (!path)
        return fail(err, errlen, CLOPT_ERR_INVALID_ARG, "", "no checkpoint given");
    int status = open_head(&h, path, why, sizeof why);
    void *chunk = status == CLOPT_OK ? malloc(EXPORT_CHUNK) : NULL;
    if (status == CLOPT_OK && !chunk)
        status = CLOPT_ERR_OUT_OF_MEMORY, snprintf(why, sizeof why, "out of host memory");
    for (size_t k = 0; status == CLOPT_OK && k <= h.n_state; ++k) {
        char *target = NULL;
        if (k == 0 && theta_path)
            target = clopt_format("%s", theta_path);
        else if (k > 0 && state_prefix)
            target = clopt_format("%s%u.npy", state_prefix, (unsigned)(k - 1));
        if ((k == 0 ? theta_path != NULL : state_prefix != NULL) && !target) {
            snprintf(why, sizeof why, "out of host memory");
            status = CLOPT_ERR_OUT_OF_MEMORY;
            break;
        }
        status = export_vector(&h, k, target, chunk, why, sizeof why);
        free(target);
    }
    /* lbfgs/cg's vectors are checked, not exported: theta is their x. */
    if (status == CLOPT_OK && h.qn)
        status = check_qn_vectors(&h, chunk, why, sizeof why);
    if (status == CLOPT_OK)
        status = clopt_ckpt_close(&h.r, 1, why, sizeof why);
    free(chunk);
    close_head(&h);
    if (status == CLOPT_ERR_IO) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
        return status;
    }
    return status == CLOPT_OK ? CLOPT_OK : fail(err, errlen, status, path, why);
}
