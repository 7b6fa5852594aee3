/* .npy header reader and writer; see npy.h and numpy/lib/format.py.
 *
 * The reader is deliberately narrower than numpy's (which evaluates the header as a Python
 * literal): it accepts exactly the dicts numpy writes for a 1-D float32/float64 array, with
 * the whitespace, quoting and trailing-comma freedom a Python literal allows, and names the
 * problem in one line for everything else. Integers are parsed by hand so that neither the
 * locale nor strtoull's overflow conventions matter. */

/* fseeko/ftello and a 64-bit off_t, so files over 2 GiB work on 32-bit hosts too. Must come
 * before any system header. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include "npy_dict.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

_Static_assert(sizeof(off_t) >= 8, "a 64-bit off_t is needed for files over 2 GiB");

static const unsigned char npy_magic[NPY_MAGIC_LEN] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* strerror() may use a static buffer; strerror_r has two incompatible signatures, and which
 * one we get depends on flags the build might add. */
static const char *npy_errno_text(int errnum, char *buf, size_t len)
{
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
    return strerror_r(errnum, buf, len);
#else
    if (strerror_r(errnum, buf, len) != 0)
        snprintf(buf, len, "errno %d", errnum);
    return buf;
#endif
}

static int npy_io_fail(char *err, size_t errlen, const char *what, int errnum)
{
    char text[128];
    return clopt_npy_fail(err, errlen, CLOPT_ERR_IO, "%s: %s", what,
                          npy_errno_text(errnum, text, sizeof text));
}

/* Reads n bytes; *got receives how many arrived. A short read at end of file is not an
 * error here (the caller reports it as truncation); a read error is. */
static int npy_read(FILE *f, void *buf, size_t n, size_t *got, char *err, size_t errlen)
{
    *got = fread(buf, 1, n, f);
    if (*got < n && ferror(f))
        return npy_io_fail(err, errlen, "read failed", errno);
    return CLOPT_OK;
}

/* The fixed-size part of a header: magic, version and the header's length. */
struct npy_prefix {
    unsigned major;
    uint32_t header_len;
    uint64_t data_offset;
};

static int npy_read_prefix(FILE *f, struct npy_prefix *out, char *err, size_t errlen)
{
    unsigned char prefix[NPY_MAGIC_LEN + NPY_VERSION_LEN + NPY_V2_LEN_FIELD];
    size_t got;
    int status = npy_read(f, prefix, NPY_MAGIC_LEN + NPY_VERSION_LEN, &got, err, errlen);
    if (status != CLOPT_OK)
        return status;
    if (got == 0)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE, "empty file: not a .npy file");
    if (memcmp(prefix, npy_magic, got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN) != 0)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "not a .npy file: it does not start with the magic string "
                              "\\x93NUMPY");
    if (got < NPY_MAGIC_LEN + NPY_VERSION_LEN)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "truncated header: the file ends after %zu bytes", got);

    unsigned major = prefix[NPY_MAGIC_LEN];
    unsigned minor = prefix[NPY_MAGIC_LEN + 1];
    if (major < 1 || major > 3 || minor != 0)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "unsupported .npy format version %u.%u: need 1.0, 2.0 or 3.0", major,
                              minor);

    size_t len_field = major == 1 ? NPY_V1_LEN_FIELD : NPY_V2_LEN_FIELD;
    unsigned char *len_bytes = prefix + NPY_MAGIC_LEN + NPY_VERSION_LEN;
    status = npy_read(f, len_bytes, len_field, &got, err, errlen);
    if (status != CLOPT_OK)
        return status;
    if (got < len_field)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "truncated header: the file ends inside the header length field");
    uint32_t header_len = 0;
    for (size_t i = len_field; i-- > 0;)
        header_len = header_len << 8 | len_bytes[i];
    if (header_len > NPY_MAX_HEADER_LEN)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "header too large: %" PRIu32 " bytes (the limit is %" PRIu32 ")",
                              header_len, NPY_MAX_HEADER_LEN);
    out->major = major;
    out->header_len = header_len;
    out->data_offset = NPY_MAGIC_LEN + NPY_VERSION_LEN + len_field + (uint64_t)header_len;
    return CLOPT_OK;
}

/* Reads the header dict that follows the prefix and checks its fields. */
static int npy_read_dict(FILE *f, const struct npy_prefix *pre, struct clopt_npy_info *parsed,
                         char *err, size_t errlen)
{
    /* + 1 so that a zero length still gets a distinct, freeable block. */
    char *header = malloc((size_t)pre->header_len + 1);
    if (header == NULL)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_OUT_OF_MEMORY,
                              "out of memory for a %" PRIu32 "-byte header", pre->header_len);
    size_t got;
    int status = npy_read(f, header, pre->header_len, &got, err, errlen);
    if (status == CLOPT_OK && got < pre->header_len)
        status = clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                                "truncated header: its length field says %" PRIu32
                                " bytes but only %zu follow",
                                pre->header_len, got);
    if (status == CLOPT_OK) {
        struct npy_parser ps = {
            .text = header,
            .p = header,
            .end = header + pre->header_len,
            .allow_long_suffix = pre->major < 3,
            .err = err,
            .errlen = errlen,
        };
        struct npy_fields fields = {0};
        status = clopt_npy_parse_dict(&ps, &fields);
        if (status == CLOPT_OK) {
            *parsed = (struct clopt_npy_info){.data_offset = pre->data_offset};
            status = clopt_npy_check_fields(&fields, pre->data_offset, parsed, err, errlen);
        }
    }
    free(header);
    return status;
}

/* The data must fill the rest of the file exactly; leaves f positioned at the data. */
static int npy_check_data_size(FILE *f, const struct clopt_npy_info *parsed, char *err,
                               size_t errlen)
{
    /* Unlike fstat, the position after seeking to the end also counts bytes still waiting
     * in f's write buffer (a caller that has just written the file). */
    if (fseeko(f, 0, SEEK_END) != 0)
        return npy_io_fail(err, errlen, "cannot seek to the end of the file", errno);
    off_t file_size = ftello(f);
    if (file_size < 0)
        return npy_io_fail(err, errlen, "cannot tell the file size", errno);
    uint64_t data_offset = parsed->data_offset;
    uint64_t itemsize = parsed->dtype == CLOPT_FLOAT ? 4 : 8;
    uint64_t want = parsed->count * itemsize; /* cannot wrap: npy_size_fits checked it */
    uint64_t have = (uint64_t)file_size > data_offset ? (uint64_t)file_size - data_offset : 0;
    if (have != want)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "%s: header says %" PRIu64 " elements (%" PRIu64
                              " bytes) but the file holds %" PRIu64 " data bytes",
                              have < want ? "truncated" : "trailing bytes after the data",
                              parsed->count, want, have);
    if (fseeko(f, (off_t)data_offset, SEEK_SET) != 0)
        return npy_io_fail(err, errlen, "cannot seek to the data", errno);
    return CLOPT_OK;
}

int clopt_npy_read_header(FILE *f, struct clopt_npy_info *info, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (f == NULL || info == NULL)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "no file or no info given");

    if (fseeko(f, 0, SEEK_SET) != 0)
        return npy_io_fail(err, errlen, "cannot seek to the start of the file", errno);
    /* A stale error flag would make a clean short read look like a read failure. */
    clearerr(f);

    struct npy_prefix pre = {0};
    int status = npy_read_prefix(f, &pre, err, errlen);
    if (status != CLOPT_OK)
        return status;
    struct clopt_npy_info parsed = {0};
    status = npy_read_dict(f, &pre, &parsed, err, errlen);
    if (status != CLOPT_OK)
        return status;
    status = npy_check_data_size(f, &parsed, err, errlen);
    if (status != CLOPT_OK)
        return status;
    *info = parsed;
    return CLOPT_OK;
}

int clopt_npy_write_header(FILE *f, enum clopt_precision dtype, uint64_t count, char *err,
                           size_t errlen)
{
    return clopt_npy_write_header_shape(f, dtype, 1, &count, err, errlen);
}

/* "(N,)" or "(A, B, C)": the shape as numpy writes it into the header dict. */
static int npy_shape_text(char *buf, size_t len, size_t n_axes, const uint64_t *shape)
{
    size_t used = 0;
    for (size_t a = 0; a <= n_axes; a++) {
        int n;
        if (a == n_axes)
            n = snprintf(buf + used, len - used, n_axes == 1 ? ",)" : ")");
        else
            n = snprintf(buf + used, len - used, "%s%" PRIu64, a == 0 ? "(" : ", ", shape[a]);
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

int clopt_npy_write_header_shape(FILE *f, enum clopt_precision dtype, size_t n_axes,
                                 const uint64_t *shape, char *err, size_t errlen)
{
    /* The dict numpy writes; its longest form (8 axes of 20 digits) is under 300 bytes, so
     * the buffers below cannot be too small, and snprintf's result is still checked. */
    char dict[384], shape_text[CLOPT_MAX_AXES * 22 + 8];
    unsigned char out[NPY_MAGIC_LEN + NPY_VERSION_LEN + NPY_V2_LEN_FIELD + sizeof dict + NPY_ALIGN];
    const char *descr;
    uint64_t itemsize;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (f == NULL)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "no file given");
    if (dtype == CLOPT_FLOAT) {
        descr = "<f4";
        itemsize = 4;
    } else if (dtype == CLOPT_DOUBLE) {
        descr = "<f8";
        itemsize = 8;
    } else {
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                              "unknown precision %d: need CLOPT_FLOAT or CLOPT_DOUBLE", (int)dtype);
    }
    if (n_axes == 0 || n_axes > CLOPT_MAX_AXES || !shape)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                              "a shape of 1 to %d axes is needed, not %zu", CLOPT_MAX_AXES,
                              shape ? n_axes : 0);
    if (npy_shape_text(shape_text, sizeof shape_text, n_axes, shape) != 0)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "header text does not fit");
    uint64_t count = 1;
    for (size_t a = 0; a < n_axes; a++) {
        if (shape[a] == 0)
            return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                                  "cannot write an empty array: count must be at least 1");
        if (count > NPY_MAX_COUNT / shape[a])
            return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                                  "shape %s is too large for a .npy file (the limit is 2^62 "
                                  "elements)",
                                  shape_text);
        count *= shape[a];
    }

    int dict_len =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                 shape_text);
    if (dict_len < 0 || (size_t)dict_len >= sizeof dict)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "header text does not fit");

    /* Version 1.0 unless the padded header overflows its uint16 length field. */
    unsigned major = 1;
    size_t len_field = NPY_V1_LEN_FIELD;
    size_t prefix_len = NPY_MAGIC_LEN + NPY_VERSION_LEN + len_field;
    size_t pad = (NPY_ALIGN - (prefix_len + (size_t)dict_len + 1) % NPY_ALIGN) % NPY_ALIGN;
    if ((size_t)dict_len + pad + 1 > UINT16_MAX) {
        major = 2;
        len_field = NPY_V2_LEN_FIELD;
        prefix_len = NPY_MAGIC_LEN + NPY_VERSION_LEN + len_field;
        pad = (NPY_ALIGN - (prefix_len + (size_t)dict_len + 1) % NPY_ALIGN) % NPY_ALIGN;
    }
    size_t header_len = (size_t)dict_len + pad + 1;
    size_t total = prefix_len + header_len;
    if (!npy_size_fits(count, itemsize, total))
        return clopt_npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                              "count %" PRIu64 " is too large for a .npy file (the limit is 2^62)",
                              count);

    memcpy(out, npy_magic, NPY_MAGIC_LEN);
    out[NPY_MAGIC_LEN] = (unsigned char)major;
    out[NPY_MAGIC_LEN + 1] = 0;
    for (size_t i = 0; i < len_field; i++)
        out[NPY_MAGIC_LEN + NPY_VERSION_LEN + i] = (unsigned char)(header_len >> (8 * i));
    memcpy(out + prefix_len, dict, (size_t)dict_len);
    memset(out + prefix_len + (size_t)dict_len, ' ', pad);
    out[total - 1] = '\n';

    if (fwrite(out, 1, total, f) != total)
        return npy_io_fail(err, errlen, "cannot write the .npy header", errno);
    return CLOPT_OK;
}
