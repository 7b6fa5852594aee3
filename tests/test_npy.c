/* Tests of the .npy header reader and writer (host/npy.c). Files are built byte by byte in
 * tmpfile()s so that every accepted and rejected form is spelled out here; the few tests
 * that need a real path use a mkdtemp() directory removed by their .fini. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

/* The .npy layout (numpy/lib/format.py): magic, major and minor version bytes, a
 * little-endian header length (uint16 for 1.0, uint32 for 2.0 and 3.0), the header. */
#define NPY_MAGIC "\x93NUMPY"
enum {
    MAGIC_LEN = sizeof NPY_MAGIC - 1,
    VERSION_LEN = 2,
    V1_LEN_FIELD = 2,
    V2_LEN_FIELD = 4,
    V1_PREFIX_LEN = MAGIC_LEN + VERSION_LEN + V1_LEN_FIELD,
    V2_PREFIX_LEN = MAGIC_LEN + VERSION_LEN + V2_LEN_FIELD,
    HEADER_ALIGN = 64, /* what the writer promises, as numpy >= 1.14 does */
    /* A 1-D float dict (57 bytes or more) plus the prefix needs two alignment blocks; real
     * numpy files of small 1-D arrays have their data at byte 128 too. */
    SHORT_HEADER_TOTAL = 2 * HEADER_ALIGN,
    ERR_LEN = 256,
    HEADER_BUF = 512,
};
#define ONE_MIB (UINT32_C(1) << 20)   /* the reader's header length limit */
#define MAX_COUNT (UINT64_C(1) << 62) /* the reader's element count limit */
#define F4 sizeof(float)
#define F8 sizeof(double)

/* The dict numpy writes for a 1-D float32 array of 3 elements. */
#define NUMPY_DICT_F4_3 "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
#define DICT_F4(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape "}"

static FILE *open_tmp(void)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f, "tmpfile() failed");
    return f;
}

static void put_zeros(FILE *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(fputc(0, f), 0);
}

/* A .npy file: magic, version major.minor, declared_len as the header length field (2
 * bytes for major 1, else 4), the header text (of its own length, so that it may disagree
 * with declared_len), then data_bytes zero bytes. Left positioned at its end, which the
 * reader must not mind. */
static FILE *npy_file_len(unsigned major, unsigned minor, uint32_t declared_len, const char *header,
                          size_t data_bytes)
{
    FILE *f = open_tmp();
    size_t len_field = major == 1 ? V1_LEN_FIELD : V2_LEN_FIELD;
    cr_assert_eq(fwrite(NPY_MAGIC, 1, MAGIC_LEN, f), (size_t)MAGIC_LEN);
    cr_assert_eq(fputc((int)major, f), (int)major);
    cr_assert_eq(fputc((int)minor, f), (int)minor);
    for (size_t i = 0; i < len_field; i++)
        fputc((int)((declared_len >> (8 * i)) & 0xff), f);
    size_t header_len = strlen(header);
    cr_assert_eq(fwrite(header, 1, header_len, f), header_len);
    put_zeros(f, data_bytes);
    cr_assert_eq(fflush(f), 0);
    return f;
}

static FILE *npy_file(unsigned major, const char *header, size_t data_bytes)
{
    return npy_file_len(major, 0, (uint32_t)strlen(header), header, data_bytes);
}

static FILE *raw_file(const char *bytes, size_t len)
{
    FILE *f = open_tmp();
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    cr_assert_eq(fflush(f), 0);
    return f;
}

/* dict followed by spaces and '\n' up to a multiple of HEADER_ALIGN, as numpy pads. */
static void pad_header(char *out, size_t outlen, const char *dict, size_t prefix_len)
{
    size_t len = strlen(dict);
    size_t pad = (HEADER_ALIGN - (prefix_len + len + 1) % HEADER_ALIGN) % HEADER_ALIGN;
    cr_assert_lt(len + pad + 1, outlen);
    memcpy(out, dict, len);
    memset(out + len, ' ', pad);
    out[len + pad] = '\n';
    out[len + pad + 1] = '\0';
}

static struct clopt_npy_info expect_accept(FILE *f)
{
    struct clopt_npy_info info;
    char err[ERR_LEN];
    int status = clopt_npy_read_header(f, &info, err, sizeof err);
    cr_assert_eq(status, CLOPT_OK, "status %d: %s", status, err);
    cr_assert_eq((uint64_t)ftello(f), info.data_offset, "not positioned at the data");
    return info;
}

/* Also closes f. */
static void expect_reject(FILE *f, int want_status, const char *needle)
{
    struct clopt_npy_info info;
    char err[ERR_LEN];
    int status = clopt_npy_read_header(f, &info, err, sizeof err);
    fclose(f);
    cr_assert_eq(status, want_status, "status %d, want %d (err: %s)", status, want_status, err);
    cr_assert_not_null(strstr(err, needle), "err \"%s\" lacks \"%s\"", err, needle);
    cr_assert_null(strchr(err, '\n'), "err must be one line: \"%s\"", err);
}

static void expect_bad(unsigned major, const char *header, size_t data_bytes, const char *needle)
{
    expect_reject(npy_file(major, header, data_bytes), CLOPT_ERR_BAD_FILE, needle);
}

/* ---- round trips ----------------------------------------------------------------------- */

static const uint64_t odd_counts[] = {1, 7, 93};

static void round_trip(enum clopt_precision dtype)
{
    for (size_t c = 0; c < sizeof odd_counts / sizeof odd_counts[0]; c++) {
        uint64_t count = odd_counts[c];
        FILE *f = open_tmp();
        char err[ERR_LEN];
        int status = clopt_npy_write_header(f, dtype, count, err, sizeof err);
        cr_assert_eq(status, CLOPT_OK, "count %" PRIu64 ": %s", count, err);
        long header_end = ftell(f);
        cr_assert_eq(header_end % HEADER_ALIGN, 0, "header of %ld bytes", header_end);
        for (uint64_t i = 0; i < count; i++) {
            /* Halves are exact in both precisions. */
            if (dtype == CLOPT_FLOAT) {
                float v = (float)i * 0.5f;
                cr_assert_eq(fwrite(&v, sizeof v, 1, f), 1u);
            } else {
                double v = (double)i * 0.5;
                cr_assert_eq(fwrite(&v, sizeof v, 1, f), 1u);
            }
        }

        struct clopt_npy_info info = expect_accept(f);
        cr_assert_eq(info.dtype, dtype);
        cr_assert_eq(info.count, count);
        cr_assert_eq(info.data_offset, (uint64_t)header_end);
        for (uint64_t i = 0; i < count; i++) {
            double v;
            if (dtype == CLOPT_FLOAT) {
                float g;
                cr_assert_eq(fread(&g, sizeof g, 1, f), 1u);
                v = g;
            } else {
                cr_assert_eq(fread(&v, sizeof v, 1, f), 1u);
            }
            cr_assert_eq(v, (double)i * 0.5, "element %" PRIu64 " of %" PRIu64, i, count);
        }
        fclose(f);
    }
}

Test(npy_round_trip, float32_odd_counts)
{
    round_trip(CLOPT_FLOAT);
}

Test(npy_round_trip, float64_odd_counts)
{
    round_trip(CLOPT_DOUBLE);
}

Test(npy_write, matches_numpy_layout)
{
    FILE *f = open_tmp();
    char err[ERR_LEN];
    cr_assert_eq(clopt_npy_write_header(f, CLOPT_FLOAT, 3, err, sizeof err), CLOPT_OK);
    long total = ftell(f);
    cr_assert_eq(total, SHORT_HEADER_TOTAL);

    unsigned char bytes[SHORT_HEADER_TOTAL];
    rewind(f);
    cr_assert_eq(fread(bytes, 1, sizeof bytes, f), sizeof bytes);
    fclose(f);
    cr_assert_eq(memcmp(bytes, NPY_MAGIC, MAGIC_LEN), 0);
    cr_assert_eq(bytes[MAGIC_LEN], 1, "version 1.0");
    cr_assert_eq(bytes[MAGIC_LEN + 1], 0);
    unsigned header_len =
        bytes[MAGIC_LEN + VERSION_LEN] | (unsigned)bytes[MAGIC_LEN + VERSION_LEN + 1] << 8;
    cr_assert_eq(header_len, SHORT_HEADER_TOTAL - V1_PREFIX_LEN);
    const char *dict = (const char *)bytes + V1_PREFIX_LEN;
    cr_assert_eq(memcmp(dict, NUMPY_DICT_F4_3, strlen(NUMPY_DICT_F4_3)), 0);
    for (size_t i = V1_PREFIX_LEN + strlen(NUMPY_DICT_F4_3); i < SHORT_HEADER_TOTAL - 1; i++)
        cr_assert_eq(bytes[i], ' ', "padding byte %zu", i);
    cr_assert_eq(bytes[SHORT_HEADER_TOTAL - 1], '\n');
}

Test(npy_write, rejects_bad_arguments)
{
    FILE *f = open_tmp();
    char err[ERR_LEN];
    cr_assert_eq(clopt_npy_write_header(f, CLOPT_FLOAT, 0, err, sizeof err), CLOPT_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err, "empty"), "%s", err);
    cr_assert_eq(clopt_npy_write_header(f, (enum clopt_precision)7, 1, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err, "unknown precision 7"), "%s", err);
    cr_assert_eq(clopt_npy_write_header(f, CLOPT_DOUBLE, MAX_COUNT + 1, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_assert_not_null(strstr(err, "too large"), "%s", err);
    cr_assert_eq(ftell(f), 0, "nothing written on a rejected call");
    fclose(f);
}

/* ---- accepted headers ------------------------------------------------------------------ */

Test(npy_accept, v1_as_numpy_writes_it)
{
    char header[HEADER_BUF];
    pad_header(header, sizeof header, NUMPY_DICT_F4_3, V1_PREFIX_LEN);
    struct clopt_npy_info info = expect_accept(npy_file(1, header, 3 * F4));
    cr_assert_eq(info.dtype, CLOPT_FLOAT);
    cr_assert_eq(info.count, 3);
    cr_assert_eq(info.data_offset, SHORT_HEADER_TOTAL);
}

Test(npy_accept, v2_reordered_without_trailing_comma)
{
    const char *dict = "{'shape': (5,), 'fortran_order': False, 'descr': '<f8'}";
    struct clopt_npy_info info = expect_accept(npy_file(2, dict, 5 * F8));
    cr_assert_eq(info.dtype, CLOPT_DOUBLE);
    cr_assert_eq(info.count, 5);
    cr_assert_eq(info.data_offset, V2_PREFIX_LEN + strlen(dict));
}

Test(npy_accept, v3_spaced_with_trailing_comma)
{
    char header[HEADER_BUF];
    pad_header(header, sizeof header,
               "{ 'fortran_order' : False ,\n\t'descr':'<f4',  'shape':( 2 , ) ,  }",
               V2_PREFIX_LEN);
    struct clopt_npy_info info = expect_accept(npy_file(3, header, 2 * F4));
    cr_assert_eq(info.dtype, CLOPT_FLOAT);
    cr_assert_eq(info.count, 2);
}

Test(npy_accept, fortran_order_true_for_1d)
{
    const char *dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (4,), }\n";
    struct clopt_npy_info info = expect_accept(npy_file(1, dict, 4 * F8));
    cr_assert_eq(info.count, 4);
}

Test(npy_accept, double_quotes_and_python2_long)
{
    /* Python 2's numpy wrote "(3L,)"; numpy still reads that from 1.0 and 2.0 files. */
    const char *dict = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L,)}";
    struct clopt_npy_info info = expect_accept(npy_file(1, dict, 3 * F4));
    cr_assert_eq(info.count, 3);
}

Test(npy_accept, null_and_short_error_buffers)
{
    struct clopt_npy_info info;
    FILE *f = npy_file(1, NUMPY_DICT_F4_3, 3 * F4);
    cr_assert_eq(clopt_npy_read_header(f, &info, NULL, 0), CLOPT_OK);
    fclose(f);

    f = npy_file(1, DICT_F4("(0,)"), 0);
    cr_assert_eq(clopt_npy_read_header(f, &info, NULL, 0), CLOPT_ERR_BAD_FILE);
    enum { SHORT = 6 };
    char err[SHORT];
    cr_assert_eq(clopt_npy_read_header(f, &info, err, sizeof err), CLOPT_ERR_BAD_FILE);
    cr_assert_str_eq(err, "empty", "cut to fit and NUL-terminated");
    fclose(f);
}

/* ---- rejected prefixes ----------------------------------------------------------------- */

Test(npy_reject, bad_magic)
{
    static const char bytes[] = "\x93NUMPZ\x01\x00\x10\x00";
    expect_reject(raw_file(bytes, sizeof bytes - 1), CLOPT_ERR_BAD_FILE, "not a .npy file");
}

Test(npy_reject, empty_file)
{
    expect_reject(raw_file("", 0), CLOPT_ERR_BAD_FILE, "empty file");
}

Test(npy_reject, truncated_prefix)
{
    expect_reject(raw_file(NPY_MAGIC "\x01", MAGIC_LEN + 1), CLOPT_ERR_BAD_FILE,
                  "truncated header");
    expect_reject(raw_file(NPY_MAGIC "\x02\x00\x10", MAGIC_LEN + VERSION_LEN + 1),
                  CLOPT_ERR_BAD_FILE, "truncated header");
}

Test(npy_reject, version_4_0)
{
    expect_reject(npy_file(4, NUMPY_DICT_F4_3, 3 * F4), CLOPT_ERR_BAD_FILE,
                  "unsupported .npy format version 4.0");
}

Test(npy_reject, version_1_1)
{
    expect_reject(npy_file_len(1, 1, (uint32_t)strlen(NUMPY_DICT_F4_3), NUMPY_DICT_F4_3, 3 * F4),
                  CLOPT_ERR_BAD_FILE, "version 1.1");
}

Test(npy_reject, huge_header_length)
{
    expect_reject(npy_file_len(2, 0, UINT32_MAX, NUMPY_DICT_F4_3, 0), CLOPT_ERR_BAD_FILE,
                  "header too large");
    expect_reject(npy_file_len(3, 0, ONE_MIB + 1, NUMPY_DICT_F4_3, 0), CLOPT_ERR_BAD_FILE,
                  "header too large");
}

Test(npy_reject, truncated_header)
{
    enum { CLAIMED_EXTRA = 100 };
    uint32_t claimed = (uint32_t)strlen(NUMPY_DICT_F4_3) + CLAIMED_EXTRA;
    expect_reject(npy_file_len(1, 0, claimed, NUMPY_DICT_F4_3, 0), CLOPT_ERR_BAD_FILE,
                  "truncated header");
}

/* ---- rejected dtypes ------------------------------------------------------------------- */

Test(npy_reject, big_endian)
{
    expect_bad(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 3 * F4,
               "big-endian data is not supported: convert with arr.astype('<f4')");
    expect_bad(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", 3 * F8,
               "arr.astype('<f8')");
}

Test(npy_reject, native_byte_order)
{
    expect_bad(1, "{'descr': '=f4', 'fortran_order': False, 'shape': (3,), }", 3 * F4,
               "native byte order");
}

Test(npy_reject, int32)
{
    expect_bad(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 3 * F4,
               "dtype '<i4' not supported: need float32 or float64");
    expect_bad(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 3 * 2,
               "dtype '<f2' not supported");
}

Test(npy_reject, structured_dtype)
{
    expect_bad(1, "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (3,), }", 3 * F4,
               "structured dtype");
}

/* ---- rejected shapes ------------------------------------------------------------------- */

Test(npy_reject, fortran_2d)
{
    expect_bad(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 6 * F4,
               "shape (2, 3) is stored in Fortran order: save it in C order");
}

Test(npy_accept, c_order_2d)
{
    struct clopt_npy_info info = expect_accept(npy_file(1, DICT_F4("(2,3)"), 6 * F4));
    cr_assert_eq(info.count, 6);
    cr_assert_eq(info.n_axes, 2);
    cr_assert_eq(info.shape[0], 2);
    cr_assert_eq(info.shape[1], 3);
    cr_assert_eq(info.shape[2], 0, "entries past n_axes are 0");
}

Test(npy_accept, c_order_up_to_the_axis_limit)
{
    struct clopt_npy_info info =
        expect_accept(npy_file(1, DICT_F4("(1, 2, 3, 1, 5, 1, 1, 2)"), 60 * F4));
    cr_assert_eq(info.count, 60);
    cr_assert_eq(info.n_axes, CLOPT_MAX_AXES);
    cr_assert_eq(info.shape[4], 5);
    cr_assert_eq(info.shape[7], 2);
}

Test(npy_reject, more_axes_than_kept)
{
    expect_bad(1, DICT_F4("(1, 2, 3, 1, 1, 1, 1, 1, 2,)"), 12 * F4,
               "shape (1, 2, 3, 1, 1, 1, 1, 1, ...) has 9 axes: at most 8 are kept");
}

Test(npy_reject, an_empty_axis)
{
    expect_bad(1, DICT_F4("(3, 0)"), 0, "empty array: shape (3, 0) has no elements");
}

Test(npy_reject, a_product_past_the_limit)
{
    /* Each axis is within 2^62, their product is not. */
    expect_bad(1, DICT_F4("(4294967296, 4294967296)"), 0, "holds more than 2^62 elements");
}

Test(npy_reject, scalar)
{
    expect_bad(1, DICT_F4("()"), F4, "shape () is 0-D (a scalar): an array is needed");
}

Test(npy_reject, dimension_overflow)
{
    expect_bad(1, DICT_F4("(99999999999999999999999,)"), 0,
               "shape dimension 99999999999999999999999 is too large");
    /* One past the limit; the limit itself parses but its bytes overflow a file offset. */
    expect_bad(1, DICT_F4("(4611686018427387905,)"), 0, "too large");
    expect_bad(1, DICT_F4("(4611686018427387904,)"), 0, "overflow");
}

Test(npy_reject, huge_count_is_checked_against_file_size)
{
    /* 2^60 float32 elements are 2^62 bytes: a valid size, but not this file's. */
    char want[ERR_LEN];
    snprintf(want, sizeof want,
             "truncated: header says %" PRIu64 " elements (%" PRIu64
             " bytes) but the file holds 0 data bytes",
             UINT64_C(1) << 60, UINT64_C(1) << 62);
    expect_bad(1, DICT_F4("(1152921504606846976,)"), 0, want);
}

Test(npy_reject, not_a_tuple)
{
    expect_bad(1, DICT_F4("(3)"), 3 * F4, "is an integer, not a tuple");
    expect_bad(1, DICT_F4("[3]"), 3 * F4, "malformed header");
}

Test(npy_reject, negative_dimension)
{
    expect_bad(1, DICT_F4("(-1,)"), 0, "negative dimension");
}

Test(npy_reject, empty_array)
{
    expect_bad(1, DICT_F4("(0,)"), 0, "empty array");
}

Test(npy_reject, python2_long_in_v3)
{
    expect_bad(3, DICT_F4("(3L,)"), 3 * F4, "malformed header");
}

/* ---- rejected data sizes --------------------------------------------------------------- */

Test(npy_reject, truncated_data)
{
    expect_bad(1, DICT_F4("(7,)"), 6 * F4,
               "truncated: header says 7 elements (28 bytes) but the file holds 24 data bytes");
}

Test(npy_reject, trailing_bytes)
{
    expect_bad(1, DICT_F4("(7,)"), 7 * F4 + 1, "trailing bytes after the data");
}

/* ---- rejected dicts -------------------------------------------------------------------- */

Test(npy_reject, missing_key)
{
    expect_bad(1, "{'descr': '<f4', 'shape': (3,), }", 3 * F4, "missing key 'fortran_order'");
}

Test(npy_reject, duplicate_key)
{
    expect_bad(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 3 * F4,
               "duplicate key 'descr'");
}

Test(npy_reject, unknown_key)
{
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", 3 * F4,
               "unknown key 'extra'");
}

Test(npy_reject, garbage_in_dict)
{
    static const char *const garbage[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), junk}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,),, }",
        "{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
        "'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}\x01",
        "",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        expect_bad(1, garbage[i], 3 * F4, "malformed header");
}

Test(npy_reject, nul_byte_in_header)
{
    /* The NUL sits inside the string value, so strlen() cannot be used for the header. */
    static const char dict[] = "{'descr': '<f\0', 'fortran_order': False, 'shape': (3,)}";
    FILE *f = npy_file_len(1, 0, sizeof dict - 1, "", 0);
    cr_assert_eq(fwrite(dict, 1, sizeof dict - 1, f), sizeof dict - 1);
    put_zeros(f, 3 * F4);
    expect_reject(f, CLOPT_ERR_BAD_FILE, "byte 0x00");
}

/* ---- I/O failures ---------------------------------------------------------------------- */

static char tmp_dir[] = "/tmp/clopt_test_npy_XXXXXX";
static char tmp_path[sizeof tmp_dir + sizeof "/a.npy"];

static void make_tmp_dir(void)
{
    cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp failed");
    snprintf(tmp_path, sizeof tmp_path, "%s/a.npy", tmp_dir);
}

static void remove_tmp_dir(void)
{
    unlink(tmp_path);
    rmdir(tmp_dir);
}

Test(npy_io, read_from_write_only_stream, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    FILE *f = fopen(tmp_path, "wb");
    cr_assert_not_null(f);
    expect_reject(f, CLOPT_ERR_IO, "read failed");
}

Test(npy_io, write_to_read_only_stream, .init = make_tmp_dir, .fini = remove_tmp_dir)
{
    FILE *f = fopen(tmp_path, "wb");
    cr_assert_not_null(f);
    fclose(f);
    f = fopen(tmp_path, "rb");
    cr_assert_not_null(f);
    char err[ERR_LEN];
    int status = clopt_npy_write_header(f, CLOPT_FLOAT, 1, err, sizeof err);
    fclose(f);
    cr_assert_eq(status, CLOPT_ERR_IO, "%s", err);
    cr_assert_not_null(strstr(err, "cannot write"), "%s", err);
}

Test(npy_io, pipe_is_not_seekable)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    FILE *f = fdopen(fds[0], "rb");
    cr_assert_not_null(f);
    close(fds[1]);
    expect_reject(f, CLOPT_ERR_IO, "cannot seek");
}
