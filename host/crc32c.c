/* CRC-32C (Castagnoli), the checksum of checkpoint sections: reflected polynomial
 * 0x82F63B78, initial value and final xor 0xFFFFFFFF, computed bytewise from a table built
 * on the stack (no global state). Check value: crc32c("123456789") = 0xE3069283. */
#include "internal.h"

uint32_t clopt_crc32c(uint32_t crc, const void *data, size_t length)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < length; ++i)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
