/* The .npy header dict: a small parser for exactly the Python literal numpy writes (see
 * npy.c for what is accepted and why), and the checks of what it says. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include "npy_dict.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

const char *const clopt_npy_key_names[NPY_KEY_COUNT] = {
    [NPY_KEY_DESCR] = "descr",
    [NPY_KEY_FORTRAN] = "fortran_order",
    [NPY_KEY_SHAPE] = "shape",
};

int clopt_npy_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---- header dict parser ---------------------------------------------------------------- */

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
        return clopt_npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                              "malformed header: expected %s at byte %zu of the header dict, found "
                              "its end",
                              expected, pos);
    unsigned char ch = (unsigned char)*ps->p;
    if (ch >= 0x20 && ch < 0x7f)
        return clopt_npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                              "malformed header: expected %s at byte %zu of the header dict, found "
                              "'%c'",
                              expected, pos, (char)ch);
    return clopt_npy_fail(
        ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
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
            return clopt_npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                                  "malformed header: the shape has a negative dimension");
        return npy_malformed(ps, "a non-negative integer in 'shape'");
    }
    if (ps->allow_long_suffix && (npy_peek(ps, 'L') || npy_peek(ps, 'l')))
        ps->p++;
    if (too_large)
        return clopt_npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
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
                return clopt_npy_fail(
                    ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                    "malformed header: shape (%" PRIu64
                    ") is an integer, not a tuple; a 1-D shape is written (%" PRIu64 ",)",
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
            return clopt_npy_fail(
                ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
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
int clopt_npy_parse_dict(struct npy_parser *ps, struct npy_fields *fl)
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
            if (strlen(clopt_npy_key_names[k]) == name_len &&
                memcmp(clopt_npy_key_names[k], name, name_len) == 0)
                key = (enum npy_key)k;
        if (key == NPY_KEY_COUNT)
            return clopt_npy_fail(
                ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                "unknown key '%.*s%s' in the header: only 'descr', 'fortran_order' "
                "and 'shape' are allowed",
                (int)(name_len < NPY_ECHO_MAX ? name_len : NPY_ECHO_MAX), name,
                name_len > NPY_ECHO_MAX ? "..." : "");
        /* Python would keep the last value silently; a repeated key means a broken writer. */
        if (fl->seen[key])
            return clopt_npy_fail(ps->err, ps->errlen, CLOPT_ERR_BAD_FILE,
                                  "duplicate key '%s' in the header", clopt_npy_key_names[key]);
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

int clopt_npy_check_fields(const struct npy_fields *fl, uint64_t data_offset,
                           struct clopt_npy_info *out, char *err, size_t errlen)
{
    for (int k = 0; k < NPY_KEY_COUNT; k++)
        if (!fl->seen[k])
            return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE, "missing key '%s' in the header",
                                  clopt_npy_key_names[k]);

    const char *d = fl->descr;
    size_t dlen = fl->descr_len;
    int is_float = dlen == 3 && d[1] == 'f' && (d[2] == '4' || d[2] == '8');
    if (is_float && d[0] == '<') {
        out->dtype = d[2] == '4' ? CLOPT_FLOAT : CLOPT_DOUBLE;
    } else if (is_float && d[0] == '>') {
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "big-endian data is not supported: convert with arr.astype('<f%c')",
                              d[2]);
    } else if (is_float && d[0] == '=') {
        /* numpy itself always writes '<' or '>'; '=' would mean the byte order of whichever
         * machine wrote the file, which the file does not record. */
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "native byte order '=f%c' is ambiguous in a file: write it with "
                              "arr.astype('<f%c')",
                              d[2], d[2]);
    } else {
        return clopt_npy_fail(
            err, errlen, CLOPT_ERR_BAD_FILE,
            "dtype '%.*s%s' not supported: need float32 or float64 ('<f4' or '<f8')",
            (int)(dlen < NPY_ECHO_MAX ? dlen : NPY_ECHO_MAX), d, dlen > NPY_ECHO_MAX ? "..." : "");
    }

    char shape[NPY_SHAPE_KEEP * 24 + 16];
    npy_format_shape(shape, sizeof shape, fl);
    if (fl->ndim == 0)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "shape () is 0-D (a scalar): an array is needed (use "
                              "arr.reshape(-1))");
    if (fl->ndim > NPY_SHAPE_KEEP)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "shape %s has %zu axes: at most %d are kept (use arr.reshape(-1))",
                              shape, fl->ndim, NPY_SHAPE_KEEP);
    /* A 1-D array has the same bytes in either order; with more axes Fortran order would
     * hand the elements over transposed. */
    if (fl->fortran_order && fl->ndim > 1)
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "shape %s is stored in Fortran order: save it in C order "
                              "(np.save(path, np.ascontiguousarray(arr)))",
                              shape);

    uint64_t count = 1;
    for (size_t a = 0; a < fl->ndim; a++) {
        if (fl->dims[a] == 0)
            return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                                  "empty array: shape %s has no elements", shape);
        /* Each dimension is <= 2^62, so the test below cannot wrap. */
        if (count > NPY_MAX_COUNT / fl->dims[a])
            return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                                  "shape %s holds more than 2^62 elements: too large", shape);
        count *= fl->dims[a];
    }
    uint64_t itemsize = out->dtype == CLOPT_FLOAT ? 4 : 8;
    if (!npy_size_fits(count, itemsize, data_offset))
        return clopt_npy_fail(err, errlen, CLOPT_ERR_BAD_FILE,
                              "shape %s of %" PRIu64
                              "-byte elements would overflow a 64-bit file size",
                              shape, itemsize);
    out->count = count;
    out->n_axes = fl->ndim;
    for (size_t a = 0; a < CLOPT_MAX_AXES; a++)
        out->shape[a] = a < fl->ndim ? fl->dims[a] : 0;
    return CLOPT_OK;
}
