/* The .npy header dict parser and its checks (npy_dict.c), shared with the reader and
 * writer of npy.c; not installed. */
#ifndef CLOPT_NPY_DICT_H
#define CLOPT_NPY_DICT_H

#include "npy.h"

#include <stdint.h>
#include <stdio.h>

enum {
    NPY_MAGIC_LEN = 6,
    NPY_VERSION_LEN = 2,
    NPY_V1_LEN_FIELD = 2,            /* version 1.0: uint16 little-endian header length */
    NPY_V2_LEN_FIELD = 4,            /* versions 2.0 and 3.0: uint32 little-endian header length */
    NPY_ALIGN = 64,                  /* numpy >= 1.14 pads magic + length + header to this */
    NPY_ECHO_MAX = 40,               /* longest piece of file text quoted in a message */
    NPY_SHAPE_KEEP = CLOPT_MAX_AXES, /* dimensions remembered (and quoted in messages) */
};

/* numpy's own default limit is 10000 bytes; this is generous but keeps a corrupt length
 * field from allocating gigabytes. */
#define NPY_MAX_HEADER_LEN ((uint32_t)1 << 20)
/* Larger counts cannot be real arrays; the limit also keeps the parser's arithmetic far
 * from uint64 overflow. */
#define NPY_MAX_COUNT ((uint64_t)1 << 62)

enum npy_key { NPY_KEY_DESCR, NPY_KEY_FORTRAN, NPY_KEY_SHAPE, NPY_KEY_COUNT };
extern const char *const clopt_npy_key_names[NPY_KEY_COUNT];

/* Lets the compiler check each message's format against its arguments. */
#if defined(__GNUC__)
#define NPY_PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define NPY_PRINTF_LIKE(fmt_index, first_arg)
#endif

NPY_PRINTF_LIKE(4, 5)
int clopt_npy_fail(char *err, size_t errlen, int status, const char *fmt, ...);

/* True when count elements of itemsize bytes after data_offset header bytes stay within a
 * 64-bit file offset. */
static inline int npy_size_fits(uint64_t count, uint64_t itemsize, uint64_t data_offset)
{
    return count <= NPY_MAX_COUNT && data_offset <= (uint64_t)INT64_MAX &&
           count <= ((uint64_t)INT64_MAX - data_offset) / itemsize;
}

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

/* Parses the header dict from ps->p to ps->end into fl; messages name byte positions. */
int clopt_npy_parse_dict(struct npy_parser *ps, struct npy_fields *fl);

/* The meaning of the parsed fields; fills dtype, count and the shape. */
int clopt_npy_check_fields(const struct npy_fields *fl, uint64_t data_offset,
                           struct clopt_npy_info *out, char *err, size_t errlen);

#endif /* CLOPT_NPY_DICT_H */
