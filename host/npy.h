/* A small, strict reader and writer of .npy (NumPy format) headers for 1-D arrays of
 * little-endian float32 or float64, as clopt loads and saves theta.
 *
 * Format reference: numpy/lib/format.py ("NEP 1"). Only the header is handled here; the
 * caller reads or writes the count * itemsize data bytes that follow it. */
#ifndef CLOPT_NPY_H
#define CLOPT_NPY_H

#include <stdint.h>
#include <stdio.h>
#include "clopt.h"

#ifdef __cplusplus
extern "C" {
#endif

struct clopt_npy_info {
    enum clopt_precision dtype; /* '<f4' -> CLOPT_FLOAT, '<f8' -> CLOPT_DOUBLE */
    uint64_t count;             /* number of elements (1-D shape (N,)) */
    uint64_t data_offset;       /* byte offset of the data in the file */
};

/* Reads and validates the header of the open file f (positioned anywhere; it seeks to 0).
 * On success f is positioned at the first data byte. err receives one line (no trailing
 * newline, without the file name: the caller prefixes it) naming the problem.
 *
 * Accepted: versions 1.0, 2.0 and 3.0; a dict with exactly the keys 'descr',
 * 'fortran_order' and 'shape' in any order; descr '<f4' or '<f8'; shape (N,) with
 * 1 <= N <= 2^62; fortran_order True or False (the bytes of a 1-D array are the same).
 * The file must hold exactly data_offset + N * itemsize bytes. f must be seekable (a
 * regular file), since the data size is checked against the file size.
 *
 * Returns CLOPT_OK, CLOPT_ERR_BAD_FILE (malformed / unsupported content), CLOPT_ERR_IO
 * (read or seek failure), CLOPT_ERR_OUT_OF_MEMORY (no memory for the header text) or
 * CLOPT_ERR_INVALID_ARG (f or info is NULL). info is only written on success.
 * err may be NULL or errlen 0; the message is cut to fit errlen otherwise. */
int clopt_npy_read_header(FILE *f, struct clopt_npy_info *info, char *err, size_t errlen);

/* Writes a version 1.0 header (total header length a multiple of 64 bytes, ending in '\n')
 * for a 1-D little-endian C-order array of count elements; version 2.0 if the header would
 * not fit 1.0's uint16 length. The header is written at the current position of f, which
 * should be the start of the file; the caller then writes the data.
 *
 * Returns CLOPT_OK, CLOPT_ERR_INVALID_ARG (unknown dtype, count 0, or a count the reader
 * would reject) or CLOPT_ERR_IO (write failure). */
int clopt_npy_write_header(FILE *f, enum clopt_precision dtype, uint64_t count, char *err,
                           size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* CLOPT_NPY_H */
