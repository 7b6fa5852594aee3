/* Strict, locale-independent number parsing for the command line. */
#ifndef CLOPT_NUMPARSE_H
#define CLOPT_NUMPARSE_H

#include <stdint.h>

/* A count such as 1000000, 1e6, 2^20 or 3*2^20: non-negative, integral, at most max.
 * Returns 0 on success, -1 with a reason in *why (a static string) otherwise. */
int clopt_parse_count(const char *text, uint64_t max, uint64_t *value, const char **why);

/* A finite double written in full (no trailing characters, no leading blanks). */
int clopt_parse_double(const char *text, double *value, const char **why);

#endif /* CLOPT_NUMPARSE_H */
