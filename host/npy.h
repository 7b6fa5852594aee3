/* The .npy header reader and writer (host/npy.c) are public API: see clopt.h. This header
 * stays for the files and tests that include it. */
#ifndef CLOPT_NPY_H
#define CLOPT_NPY_H

#include "clopt.h"

#endif /* CLOPT_NPY_H */
