/* clopt's files without a device: checkpoint information and export, .npy headers, and
 * numbers as text. clopt.h includes this header; it is kept apart only so that each header
 * stays readable. Conventions are clopt.h's. */
#ifndef CLOPT_FILES_H
#define CLOPT_FILES_H

#include "clopt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Checkpoint files, read without a device (host/checkpoint_info.c). */
struct clopt_checkpoint_info {
    char objective[256];
    char optimizer[32];
    enum clopt_precision precision;
    uint64_t n;         /* elements of theta and of each state vector */
    uint64_t iteration; /* where the run stopped: a resumed run starts here */
    uint64_t steps;     /* optimizer steps applied over all runs */
    size_t n_state;     /* optimizer state vectors besides theta (state0, state1, ...) */
    int stopped;        /* the run had met a stopping test (a resume ends at once) */
    char config[8192];  /* the configuration it resumes under: "key=value" lines, as stored
                           (cut at a line end if longer) */
};

/* Reads the checkpoint at path, checking every section's checksum, into *info. Returns
 * CLOPT_OK, or CLOPT_ERR_BAD_FILE with the cause in err (may be NULL). */
CLOPT_API int clopt_checkpoint_info(const char *path, struct clopt_checkpoint_info *info, char *err,
                                    size_t errlen);

/* Writes the checkpoint's theta to theta_path (NULL: not) and, when state_prefix is not NULL,
 * state vector k to state_prefix + k + ".npy", as 1-D .npy files of its precision; streamed
 * section by section, each file written atomically once its section's checksum matched.
 * CLOPT_ERR_BAD_FILE (the checkpoint) or CLOPT_ERR_IO (an output) with the cause in err. */
CLOPT_API int clopt_checkpoint_export(const char *path, const char *theta_path,
                                      const char *state_prefix, char *err, size_t errlen);

/* .npy files (NumPy format, numpy/lib/format.py "NEP 1"): a small, strict reader and writer
 * of the headers of C-order arrays of little-endian float32 or float64, as clopt loads and
 * saves theta (a vector of count elements, whatever the array's shape). Only the header is
 * handled; the caller reads or writes the count * itemsize data bytes that follow it. */
struct clopt_npy_info {
    enum clopt_precision dtype;     /* '<f4' -> CLOPT_FLOAT, '<f8' -> CLOPT_DOUBLE */
    uint64_t count;                 /* number of elements: the product of the shape */
    uint64_t data_offset;           /* byte offset of the data in the file */
    size_t n_axes;                  /* axes of the shape, 1..CLOPT_MAX_AXES */
    uint64_t shape[CLOPT_MAX_AXES]; /* the shape, slowest axis first (C order); entries past
                                       n_axes are 0 */
};

/* Reads and validates the header of the open file f (positioned anywhere; it seeks to 0).
 * On success f is positioned at the first data byte. err receives one line (no trailing
 * newline, without the file name: the caller prefixes it) naming the problem.
 *
 * Accepted: versions 1.0, 2.0 and 3.0; a dict with exactly the keys 'descr',
 * 'fortran_order' and 'shape' in any order; descr '<f4' or '<f8'; a shape of 1 to
 * CLOPT_MAX_AXES axes holding 1 to 2^62 elements in all; fortran_order False, or True for a
 * 1-D shape (the bytes are the same; a Fortran-order array of more axes is refused, as its
 * elements are not in C order). The file must hold exactly data_offset + count * itemsize
 * bytes. f must be seekable (a regular file), since the data size is checked against the
 * file size.
 *
 * Returns CLOPT_OK, CLOPT_ERR_BAD_FILE (malformed / unsupported content), CLOPT_ERR_IO
 * (read or seek failure), CLOPT_ERR_OUT_OF_MEMORY (no memory for the header text) or
 * CLOPT_ERR_INVALID_ARG (f or info is NULL). info is only written on success.
 * err may be NULL or errlen 0; the message is cut to fit errlen otherwise. */
CLOPT_API int clopt_npy_read_header(FILE *f, struct clopt_npy_info *info, char *err, size_t errlen);

/* Writes a version 1.0 header (total header length a multiple of 64 bytes, ending in '\n')
 * for a 1-D little-endian C-order array of count elements; version 2.0 if the header would
 * not fit 1.0's uint16 length. The header is written at the current position of f, which
 * should be the start of the file; the caller then writes the data.
 *
 * Returns CLOPT_OK, CLOPT_ERR_INVALID_ARG (unknown dtype, count 0, or a count the reader
 * would reject) or CLOPT_ERR_IO (write failure). */
CLOPT_API int clopt_npy_write_header(FILE *f, enum clopt_precision dtype, uint64_t count, char *err,
                                     size_t errlen);

/* The same for a C-order array of the given shape (n_axes 1..CLOPT_MAX_AXES, every axis >= 1;
 * the caller then writes the product of the shape in elements). CLOPT_ERR_INVALID_ARG also
 * for a shape the reader would reject. */
CLOPT_API int clopt_npy_write_header_shape(FILE *f, enum clopt_precision dtype, size_t n_axes,
                                           const uint64_t *shape, char *err, size_t errlen);

/* Numbers as text, strict and locale-independent (for flags and files). */

/* A count such as 1000000, 1e6, 2^20 or 3*2^20: non-negative, integral, at most max.
 * Returns 0 on success, -1 with a reason in *why (a static string) otherwise. */
CLOPT_API int clopt_parse_count(const char *text, uint64_t max, uint64_t *value, const char **why);

/* A finite double written in full (no trailing characters, no leading blanks). */
CLOPT_API int clopt_parse_double(const char *text, double *value, const char **why);

#ifdef __cplusplus
}
#endif

#endif /* CLOPT_FILES_H */
