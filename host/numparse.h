/* Strict, locale-independent number parsing (host/numparse.c) is public API: see clopt.h.
 * This header stays for the files and tests that include it. */
#ifndef CLOPT_NUMPARSE_H
#define CLOPT_NUMPARSE_H

#include "clopt.h"

#endif /* CLOPT_NUMPARSE_H */
