/* Number parsing for flags: every character is accounted for, overflow is an error, and
 * nothing depends on the locale: decimal digits and '.', parsed by hand or by strtod in the
 * "C" locale. A program that embeds the library may have called setlocale(LC_ALL, ""), and
 * under a comma-decimal LC_NUMERIC (de_DE) strtod stops at the '.' of "0.5" and printf
 * writes "0,5" into a -D define, which no OpenCL compiler reads as a number. So both are
 * done here with this thread's locale switched to "C" for the call (uselocale touches no
 * other thread and no global state). */
#include "internal.h"
#include "numparse.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

double clopt_strtod_c(const char *text, char **end)
{
    const locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0) { /* no memory for a locale object: nothing parsed */
        *end = (char *)(uintptr_t)text;
        return 0;
    }
    const locale_t previous = uselocale(c);
    const double value = strtod(text, end);
    const int error = errno;
    uselocale(previous);
    freelocale(c);
    errno = error;
    return value;
}

int clopt_format_c(char *buffer, size_t size, const char *format, ...)
{
    const locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0)
        return -1;
    const locale_t previous = uselocale(c);
    va_list ap;
    va_start(ap, format);
    const int n = vsnprintf(buffer, size, format, ap);
    va_end(ap);
    uselocale(previous);
    freelocale(c);
    return n >= 0 && (size_t)n < size ? n : -1;
}

/* Digits only, no sign; -1 on overflow past max or on no digits. */
static int parse_digits(const char **p, uint64_t max, uint64_t *value)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); ++s) {
        const uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = s;
    *value = v;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t max, uint64_t *out)
{
    if (a && b > max / a)
        return -1;
    *out = a * b;
    return 0;
}

/* base^exponent without overflow past max. */
static int pow_checked(uint64_t base, uint64_t exponent, uint64_t max, uint64_t *out)
{
    uint64_t v = 1;
    for (uint64_t i = 0; i < exponent; ++i) {
        if (mul_checked(v, base, max, &v))
            return -1;
        if (v == 0 || v == 1)
            break; /* 0^k and 1^k settle at once */
    }
    v = exponent == 0 ? 1 : v;
    if (v > max) /* b^0 = 1 can still exceed a max of 0 (found by fuzz_numparse) */
        return -1;
    *out = v;
    return 0;
}

/* One factor: D, DeE, D.DeE (integral), or B^E. */
static int parse_factor(const char **p, uint64_t max, uint64_t *value, const char **why)
{
    const char *s = *p;
    uint64_t mantissa = 0;
    if (parse_digits(&s, UINT64_MAX, &mantissa)) {
        *why = isdigit((unsigned char)*s) ? "too large" : "not a number";
        return -1;
    }
    if (*s == '^') {
        ++s;
        uint64_t exponent;
        if (parse_digits(&s, 4096, &exponent)) {
            *why = "bad exponent";
            return -1;
        }
        if (pow_checked(mantissa, exponent, max, value)) {
            *why = "too large";
            return -1;
        }
        *p = s;
        return 0;
    }
    /* Fraction digits shift the decimal exponent: 1.5e6 = 15 * 10^5. */
    int64_t shift = 0;
    if (*s == '.') {
        ++s;
        while (isdigit((unsigned char)*s)) {
            if (mantissa > (UINT64_MAX - 9) / 10) {
                *why = "too many digits";
                return -1;
            }
            mantissa = mantissa * 10 + (uint64_t)(*s - '0');
            --shift;
            ++s;
        }
    }
    if (*s == 'e' || *s == 'E') {
        ++s;
        int negative = 0;
        if (*s == '+' || *s == '-')
            negative = *s++ == '-';
        uint64_t exponent;
        if (parse_digits(&s, 4096, &exponent)) {
            *why = "bad exponent";
            return -1;
        }
        shift += negative ? -(int64_t)exponent : (int64_t)exponent;
    }
    for (; shift < 0; ++shift) {
        if (mantissa % 10) {
            *why = "not a whole number";
            return -1;
        }
        mantissa /= 10;
    }
    for (; shift > 0; --shift) {
        if (mul_checked(mantissa, 10, max, &mantissa)) {
            *why = "too large";
            return -1;
        }
        if (mantissa == 0)
            break;
    }
    if (mantissa > max) {
        *why = "too large";
        return -1;
    }
    *value = mantissa;
    *p = s;
    return 0;
}

int clopt_parse_count(const char *text, uint64_t max, uint64_t *value, const char **why)
{
    *why = "not a number";
    if (!text || !*text)
        return -1;
    if (*text == '-') {
        *why = "must not be negative";
        return -1;
    }
    const char *s = text;
    uint64_t product;
    if (parse_factor(&s, max, &product, why))
        return -1;
    while (*s == '*') {
        ++s;
        uint64_t factor;
        if (parse_factor(&s, max, &factor, why))
            return -1;
        if (mul_checked(product, factor, max, &product)) {
            *why = "too large";
            return -1;
        }
    }
    if (*s) {
        *why = "unexpected characters";
        return -1;
    }
    *value = product;
    return 0;
}

int clopt_parse_double(const char *text, double *value, const char **why)
{
    *why = "not a finite decimal number";
    if (!text || !*text || isspace((unsigned char)*text))
        return -1;
    /* Only decimal notation: strtod would also take "nan", "inf" and hex floats. */
    for (const char *c = text; *c; ++c)
        if (!isdigit((unsigned char)*c) && *c != '.' && *c != 'e' && *c != 'E' && *c != '+' &&
            *c != '-')
            return -1;
    char *end;
    errno = 0;
    double v = clopt_strtod_c(text, &end);
    if (*end != '\0' || end == text)
        return -1;
    if (errno == ERANGE && fabs(v) > 1.0) {
        *why = "out of range";
        return -1;
    }
    if (!isfinite(v)) {
        *why = "not finite";
        return -1;
    }
    *value = v;
    return 0;
}
