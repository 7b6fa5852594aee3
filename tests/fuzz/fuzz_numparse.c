/* libFuzzer target: the number parsers behind every numeric flag, and the schedule spec. */
#include "numparse.h"
#include "schedule.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *why = NULL;
    double d;
    uint64_t v;
    if (clopt_parse_double(text, &d, &why) == 0 && d != d)
        abort(); /* a parsed number is never NaN */
    const uint64_t limits[] = {0, 1, (uint64_t)1 << 48, UINT64_MAX};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; ++i)
        if (clopt_parse_count(text, limits[i], &v, &why) == 0 && v > limits[i])
            abort(); /* never above the limit */
    struct clopt_schedule schedule;
    if (clopt_schedule_parse(text, &schedule, &why) == 0)
        (void)clopt_schedule_lr(&schedule, 0.1, 12345);
    free(text);
    return 0;
}
