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

#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

_Static_assert(sizeof(off_t) >= 8, "a 64-bit off_t is needed for files over 2 GiB");

enum {
    NPY_MAGIC_LEN = 6,
    NPY_VERSION_LEN = 2,
    NPY_V1_LEN_FIELD = 2, /* version 1.0: uint16 little-endian header length */
    NPY_V2_LEN_FIELD = 4, /* versions 2.0 and 3.0: uint32 little-endian header length */
    NPY_ALIGN = 64,       /* numpy >= 1.14 pads magic + length + header to this */
    NPY_ECHO_MAX = 40,    /* longest piece of file text quoted in a message */
    NPY_SHAPE_KEEP = 4,   /* dimensions remembered for quoting the shape in a message */
};

static const unsigned char npy_magic[NPY_MAGIC_LEN] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* numpy's own default limit is 10000 bytes; this is generous but keeps a corrupt length
 * field from allocating gigabytes. */
#define NPY_MAX_HEADER_LEN ((uint32_t)1 << 20)
/* Larger counts cannot be real arrays; the limit also keeps the parser's arithmetic far
 * from uint64 overflow. */
#define NPY_MAX_COUNT ((uint64_t)1 << 62)

enum npy_key { NPY_KEY_DESCR, NPY_KEY_FORTRAN, NPY_KEY_SHAPE, NPY_KEY_COUNT };
static const char *const npy_key_names[NPY_KEY_COUNT] = {
    [NPY_KEY_DESCR] = "descr",
    [NPY_KEY_FORTRAN] = "fortran_order",
    [NPY_KEY_SHAPE] = "shape",
};

/* Lets the compiler check each message's format against its arguments. */
#if defined(__GNUC__)
#define NPY_PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define NPY_PRINTF_LIKE(fmt_index, first_arg)
#endif

NPY_PRINTF_LIKE(4, 5)
static int npy_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

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
    return npy_fail(err, errlen, CLOPT_ERR_IO, "%s: %s", what,
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

/* True when count elements of itemsize bytes after data_offset header bytes stay within a
 * 64-bit file offset. */
static int npy_size_fits(uint64_t count, uint64_t itemsize, uint64_t data_offset)
{
    return count <= NPY_MAX_COUNT && data_offset <= (uint64_t)INT64_MAX &&
           count <= ((uint64_t)INT64_MAX - data_offset) / itemsize;
}

/* ---- header dict parser ---------------------------------------------------------------- */

struct npy_parser {
    const char *text; /* start of the header dict, for byte positions in messages */
    const char *p;
    const char *end;
    int allow_long_suffix; /* accept Python 2's "3L" (numpy does for versions 1.0 and 2.0) */
    char *err;
    size_t errlen;
};

struct npy_fields {
    int seen[NPY_KEY_COUNT];
    const char *descr; /* points into the header text; not NUL-terminated */
    size_t descr_len;
    int fortran_order;
    size_t ndim;
    uint64_t dims[NPY_SHAPE_KEEP]; /* the first NPY_SHAPE_KEEP dimensions */
};

static int npy_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

static int npy_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int npy_is_ident(char ch)
{
    return npy_is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static void npy_skip_space(struct npy_parser *ps)
{
    while (ps->p < ps->end && npy_is_space(*ps->p))
        ps->p++;
}

static int npy_peek(const struct npy_parser *ps, char ch)
{
    return ps->p < ps->end && *ps->p == ch;
}

static int npy_malformed(const struct npy_parser *ps, const char *expected)
{
    size_t pos = (size_t)(ps->p - ps->text);
    if (ps->p == ps->end)
        return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                        "malformed header: expected %s at byte %zu of the header dict, found "
                        "its end",
                        expected, pos);
    unsigned char ch = (unsigned char)*ps->p;
    if (ch >= 0x20 && ch < 0x7f)
        return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                        "malformed header: expected %s at byte %zu of the header dict, found "
                        "'%c'",
                        expected, pos, (char)ch);
    return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                    "malformed header: expected %s at byte %zu of the header dict, found byte "
                    "0x%02x",
                    expected, pos, (unsigned)ch);
}

/* A Python string literal without prefix or escapes: numpy never writes either here. Only
 * printable ASCII is allowed, which also makes the text safe to quote in a message. */
static int npy_parse_string(struct npy_parser *ps, const char **s, size_t *len)
{
    if (!npy_peek(ps, '\'') && !npy_peek(ps, '"'))
        return npy_malformed(ps, "a quoted string");
    char quote = *ps->p++;
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != quote) {
        unsigned char ch = (unsigned char)*ps->p;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return npy_malformed(ps, "printable ASCII without escapes inside a string");
        ps->p++;
    }
    if (ps->p == ps->end)
        return npy_malformed(ps, "the closing quote of a string");
    *s = start;
    *len = (size_t)(ps->p - start);
    ps->p++;
    return CLOPT_OK;
}

/* Consumes word when it stands alone (not the prefix of a longer name). */
static int npy_match_word(struct npy_parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return 0;
    if (ps->p + n < ps->end && npy_is_ident(ps->p[n]))
        return 0;
    ps->p += n;
    return 1;
}

static int npy_parse_dim(struct npy_parser *ps, uint64_t *out)
{
    const char *start = ps->p;
    uint64_t value = 0;
    int too_large = 0;
    while (ps->p < ps->end && npy_is_digit(*ps->p)) {
        uint64_t digit = (uint64_t)(*ps->p - '0');
        /* value * 10 + digit <= NPY_MAX_COUNT, rearranged so nothing can wrap. */
        if (too_large || value > (NPY_MAX_COUNT - digit) / 10)
            too_large = 1;
        else
            value = value * 10 + digit;
        ps->p++;
    }
    size_t len = (size_t)(ps->p - start);
    if (len == 0) {
        if (npy_peek(ps, '-'))
            return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                            "malformed header: the shape has a negative dimension");
        return npy_malformed(ps, "a non-negative integer in 'shape'");
    }
    if (ps->allow_long_suffix && (npy_peek(ps, 'L') || npy_peek(ps, 'l')))
        ps->p++;
    if (too_large)
        return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                        "shape dimension %.*s%s is too large (the limit is 2^62 elements)",
                        (int)(len < NPY_ECHO_MAX ? len : NPY_ECHO_MAX), start,
                        len > NPY_ECHO_MAX ? "..." : "");
    *out = value;
    return CLOPT_OK;
}

/* A Python tuple of non-negative integers: (), (N,), (N, M), (N, M,), ... */
static int npy_parse_shape(struct npy_parser *ps, struct npy_fields *fl)
{
    if (!npy_peek(ps, '('))
        return npy_malformed(ps, "a tuple '(' as the value of 'shape'");
    ps->p++;
    npy_skip_space(ps);
    fl->ndim = 0;
    if (npy_peek(ps, ')')) {
        ps->p++;
        return CLOPT_OK;
    }
    for (;;) {
        uint64_t dim = 0;
        int status = npy_parse_dim(ps, &dim);
        if (status != CLOPT_OK)
            return status;
        if (fl->ndim < NPY_SHAPE_KEEP)
            fl->dims[fl->ndim] = dim;
        fl->ndim++;
        npy_skip_space(ps);
        if (npy_peek(ps, ',')) {
            ps->p++;
            npy_skip_space(ps);
            if (npy_peek(ps, ')')) {
                ps->p++;
                return CLOPT_OK;
            }
        } else if (npy_peek(ps, ')')) {
            /* "(N)" is the integer N in Python, not a tuple; numpy rejects it too. */
            if (fl->ndim == 1)
                return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                                "malformed header: shape (%" PRIu64
                                ") is an integer, not a tuple; a 1-D shape is written (%" PRIu64
                                ",)",
                                dim, dim);
            ps->p++;
            return CLOPT_OK;
        } else {
            return npy_malformed(ps, "',' or ')' in 'shape'");
        }
    }
}

static int npy_parse_value(struct npy_parser *ps, enum npy_key key, struct npy_fields *fl)
{
    switch (key) {
    case NPY_KEY_DESCR:
        /* A list descr describes a structured dtype; say so rather than "malformed". */
        if (npy_peek(ps, '['))
            return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                            "structured dtype (a list 'descr') not supported: need float32 or "
                            "float64");
        return npy_parse_string(ps, &fl->descr, &fl->descr_len);
    case NPY_KEY_FORTRAN:
        if (npy_match_word(ps, "True"))
            fl->fortran_order = 1;
        else if (npy_match_word(ps, "False"))
            fl->fortran_order = 0;
        else
            return npy_malformed(ps, "True or False as the value of 'fortran_order'");
        return CLOPT_OK;
    case NPY_KEY_SHAPE:
        return npy_parse_shape(ps, fl);
    case NPY_KEY_COUNT:
        break;
    }
    return npy_malformed(ps, "a known key"); /* unreachable: keys come from the table */
}

/* '{' key ':' value (',' key ':' value)* [','] '}', then only whitespace. */
static int npy_parse_dict(struct npy_parser *ps, struct npy_fields *fl)
{
    npy_skip_space(ps);
    if (!npy_peek(ps, '{'))
        return npy_malformed(ps, "'{' opening the header dict");
    ps->p++;
    npy_skip_space(ps);
    while (!npy_peek(ps, '}')) {
        const char *name;
        size_t name_len;
        int status = npy_parse_string(ps, &name, &name_len);
        if (status != CLOPT_OK)
            return status;
        enum npy_key key = NPY_KEY_COUNT;
        for (int k = 0; k < NPY_KEY_COUNT; k++)
            if (strlen(npy_key_names[k]) == name_len &&
                memcmp(npy_key_names[k], name, name_len) == 0)
                key = (enum npy_key)k;
        if (key == NPY_KEY_COUNT)
            return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                            "unknown key '%.*s%s' in the header: only 'descr', 'fortran_order' "
                            "and 'shape' are allowed",
                            (int)(name_len < NPY_ECHO_MAX ? name_len : NPY_ECHO_MAX), name,
                            name_len > NPY_ECHO_MAX ? "..." : "");
        /* Python would keep the last value silently; a repeated key means a broken writer. */
        if (fl->seen[key])
            return npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                            "duplicate key '%s' in the header", npy_key_names[key]);
        fl->seen[key] = 1;
        npy_skip_space(ps);
        if (!npy_peek(ps, ':'))
            return npy_malformed(ps, "':' after a key");
        ps->p++;
        npy_skip_space(ps);
        status = npy_parse_value(ps, key, fl);
        if (status != CLOPT_OK)
            return status;
        npy_skip_space(ps);
        if (npy_peek(ps, ',')) {
            ps->p++;
            npy_skip_space(ps);
        } else if (!npy_peek(ps, '}')) {
            return npy_malformed(ps, "',' or '}' after a value");
        }
    }
    ps->p++;
    /* numpy pads with spaces and ends with '\n'; any whitespace is harmless. */
    npy_skip_space(ps);
    if (ps->p != ps->end)
        return npy_malformed(ps, "only padding after the closing '}'");
    return CLOPT_OK;
}

/* "(2, 3)" the way numpy prints a shape, cut after NPY_SHAPE_KEEP dimensions. */
static void npy_format_shape(char *buf, size_t len, const struct npy_fields *fl)
{
    if (fl->ndim == 0) {
        snprintf(buf, len, "()");
        return;
    }
    size_t used = 0;
    for (size_t i = 0; i <= fl->ndim && i <= NPY_SHAPE_KEEP && used < len; i++) {
        int n;
        if (i == fl->ndim)
            n = snprintf(buf + used, len - used, fl->ndim == 1 ? ",)" : ")");
        else if (i == NPY_SHAPE_KEEP)
            n = snprintf(buf + used, len - used, ", ...)");
        else
            n = snprintf(buf + used, len - used, "%s%" PRIu64, i == 0 ? "(" : ", ", fl->dims[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The meaning of the parsed fields; fills dtype and count. */
static int npy_check_fields(const struct npy_fields *fl, uint64_t data_offset,
                            struct clopt_npy_info *out, char *err, size_t errlen)
{
    for (int k = 0; k < NPY_KEY_COUNT; k++)
        if (!fl->seen[k])
            return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE, "missing key '%s' in the header",
                            npy_key_names[k]);

    const char *d = fl->descr;
    size_t dlen = fl->descr_len;
    int is_float = dlen == 3 && d[1] == 'f' && (d[2] == '4' || d[2] == '8');
    if (is_float && d[0] == '<') {
        out->dtype = d[2] == '4' ? CLOPT_FLOAT : CLOPT_DOUBLE;
    } else if (is_float && d[0] == '>') {
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                        "big-endian data is not supported: convert with arr.astype('<f%c')", d[2]);
    } else if (is_float && d[0] == '=') {
        /* numpy itself always writes '<' or '>'; '=' would mean the byte order of whichever
         * machine wrote the file, which the file does not record. */
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                        "native byte order '=f%c' is ambiguous in a file: write it with "
                        "arr.astype('<f%c')",
                        d[2], d[2]);
    } else {
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                        "dtype '%.*s%s' not supported: need float32 or float64 ('<f4' or '<f8')",
                        (int)(dlen < NPY_ECHO_MAX ? dlen : NPY_ECHO_MAX), d,
                        dlen > NPY_ECHO_MAX ? "..." : "");
    }

    if (fl->ndim != 1) {
        char shape[NPY_SHAPE_KEEP * 24 + 16];
        npy_format_shape(shape, sizeof shape, fl);
        if (fl->ndim == 0)
            return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                            "shape () is 0-D (a scalar): a 1-D array is needed (use "
                            "arr.reshape(-1))");
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                        "shape %s is %zu-D: a 1-D array is needed (use arr.reshape(-1))", shape,
                        fl->ndim);
    }
    /* fortran_order needs no check: a 1-D array has the same bytes in either order. */

    uint64_t count = fl->dims[0];
    uint64_t itemsize = out->dtype == CLOPT_FLOAT ? 4 : 8;
    if (count == 0)
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE, "empty array: shape (0,) has no elements");
    if (!npy_size_fits(count, itemsize, data_offset))
        return npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                        "shape (%" PRIu64 ",) of %" PRIu64
                        "-byte elements would overflow a 64-bit file size",
                        count, itemsize);
    out->count = count;
    return CLOPT_OK;
}

int clopt_npy_read_header(FILE *f, struct clopt_npy_info *info, char *err, size_t errlen)
{
    char *header = NULL;
    unsigned char prefix[NPY_MAGIC_LEN + NPY_VERSION_LEN + NPY_V2_LEN_FIELD];
    size_t got;
    int status;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (f == NULL || info == NULL)
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "no file or no info given");

    if (fseeko(f, 0, SEEK_SET) != 0)
        return npy_io_fail(err, errlen, "cannot seek to the start of the file", errno);
    /* A stale error flag would make a clean short read look like a read failure. */
    clearerr(f);

    status = npy_read(f, prefix, NPY_MAGIC_LEN + NPY_VERSION_LEN, &got, err, errlen);
    if (status != CLOPT_OK)
        goto cleanup;
    if (got == 0) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE, "empty file: not a .npy file");
        goto cleanup;
    }
    if (memcmp(prefix, npy_magic, got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN) != 0) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "not a .npy file: it does not start with the magic string "
                          "\\x93NUMPY");
        goto cleanup;
    }
    if (got < NPY_MAGIC_LEN + NPY_VERSION_LEN) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "truncated header: the file ends after %zu bytes", got);
        goto cleanup;
    }

    unsigned major = prefix[NPY_MAGIC_LEN];
    unsigned minor = prefix[NPY_MAGIC_LEN + 1];
    if (major < 1 || major > 3 || minor != 0) {
        status =
            npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                     "unsupported .npy format version %u.%u: need 1.0, 2.0 or 3.0", major, minor);
        goto cleanup;
    }

    size_t len_field = major == 1 ? NPY_V1_LEN_FIELD : NPY_V2_LEN_FIELD;
    unsigned char *len_bytes = prefix + NPY_MAGIC_LEN + NPY_VERSION_LEN;
    status = npy_read(f, len_bytes, len_field, &got, err, errlen);
    if (status != CLOPT_OK)
        goto cleanup;
    if (got < len_field) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "truncated header: the file ends inside the header length field");
        goto cleanup;
    }
    uint32_t header_len = 0;
    for (size_t i = len_field; i-- > 0;)
        header_len = header_len << 8 | len_bytes[i];
    if (header_len > NPY_MAX_HEADER_LEN) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "header too large: %" PRIu32 " bytes (the limit is %" PRIu32 ")",
                          header_len, NPY_MAX_HEADER_LEN);
        goto cleanup;
    }
    uint64_t data_offset = NPY_MAGIC_LEN + NPY_VERSION_LEN + len_field + (uint64_t)header_len;

    /* + 1 so that a zero length still gets a distinct, freeable block. */
    header = malloc((size_t)header_len + 1);
    if (header == NULL) {
        status = npy_fail(err, errlen, CLOPT_ERR_OUT_OF_MEMORY,
                          "out of memory for a %" PRIu32 "-byte header", header_len);
        goto cleanup;
    }
    status = npy_read(f, header, header_len, &got, err, errlen);
    if (status != CLOPT_OK)
        goto cleanup;
    if (got < header_len) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "truncated header: its length field says %" PRIu32
                          " bytes but only %zu follow",
                          header_len, got);
        goto cleanup;
    }

    struct npy_parser ps = {
        .text = header,
        .p = header,
        .end = header + header_len,
        .allow_long_suffix = major < 3,
        .err = err,
        .errlen = errlen,
    };
    struct npy_fields fields = {0};
    status = npy_parse_dict(&ps, &fields);
    if (status != CLOPT_OK)
        goto cleanup;
    struct clopt_npy_info parsed = {.data_offset = data_offset};
    status = npy_check_fields(&fields, data_offset, &parsed, err, errlen);
    if (status != CLOPT_OK)
        goto cleanup;

    /* Unlike fstat, the position after seeking to the end also counts bytes still waiting
     * in f's write buffer (a caller that has just written the file). */
    if (fseeko(f, 0, SEEK_END) != 0) {
        status = npy_io_fail(err, errlen, "cannot seek to the end of the file", errno);
        goto cleanup;
    }
    off_t file_size = ftello(f);
    if (file_size < 0) {
        status = npy_io_fail(err, errlen, "cannot tell the file size", errno);
        goto cleanup;
    }
    uint64_t itemsize = parsed.dtype == CLOPT_FLOAT ? 4 : 8;
    uint64_t want = parsed.count * itemsize; /* cannot wrap: npy_size_fits checked it */
    uint64_t have = (uint64_t)file_size > data_offset ? (uint64_t)file_size - data_offset : 0;
    if (have != want) {
        status = npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                          "%s: header says %" PRIu64 " elements (%" PRIu64
                          " bytes) but the file holds %" PRIu64 " data bytes",
                          have < want ? "truncated" : "trailing bytes after the data", parsed.count,
                          want, have);
        goto cleanup;
    }
    if (fseeko(f, (off_t)data_offset, SEEK_SET) != 0) {
        status = npy_io_fail(err, errlen, "cannot seek to the data", errno);
        goto cleanup;
    }
    *info = parsed;
    status = CLOPT_OK;

cleanup:
    free(header);
    return status;
}

int clopt_npy_write_header(FILE *f, enum clopt_precision dtype, uint64_t count, char *err,
                           size_t errlen)
{
    /* The dict numpy writes for a 1-D array; its longest form (a 20-digit count) is under 80
     * bytes, so the buffers below cannot be too small, and snprintf's result is still
     * checked. */
    char dict[128];
    unsigned char out[NPY_MAGIC_LEN + NPY_VERSION_LEN + NPY_V2_LEN_FIELD + sizeof dict + NPY_ALIGN];
    const char *descr;
    uint64_t itemsize;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (f == NULL)
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "no file given");
    if (dtype == CLOPT_FLOAT) {
        descr = "<f4";
        itemsize = 4;
    } else if (dtype == CLOPT_DOUBLE) {
        descr = "<f8";
        itemsize = 8;
    } else {
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                        "unknown precision %d: need CLOPT_FLOAT or CLOPT_DOUBLE", (int)dtype);
    }
    if (count == 0)
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
                        "cannot write an empty array: count must be at least 1");

    int dict_len = snprintf(dict, sizeof dict,
                            "{'descr': '%s', 'fortran_order': False, 'shape': (%" PRIu64 ",), }",
                            descr, count);
    if (dict_len < 0 || (size_t)dict_len >= sizeof dict)
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG, "header text does not fit");

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
        return npy_fail(err, errlen, CLOPT_ERR_INVALID_ARG,
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
