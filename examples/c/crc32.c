/*
 * crc32: table-driven CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).
 *
 * Hot loops: the classic one-byte-per-step table lookup (load byte, xor,
 * mask, indexed 32-bit load, shift, xor) and a slicing-by-4 variant that
 * does four table lookups per 32-bit word. Each round checksums a 32 KiB
 * pseudo-random buffer both ways, checks they agree, and then perturbs the
 * buffer so no two rounds see the same data.
 *
 * Scale: number of rounds (one round ~ 1.6 million wasm instructions).
 */
#include "common.h"

#define BUF_LEN 32768u
#define DEFAULT_SCALE 120
#define MAX_SCALE 1000000

static uint32_t table[4][256];
static uint8_t buf[BUF_LEN];

static void make_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        table[0][i] = c;
    }
    /* table[t][i] = CRC state after feeding byte i followed by t zero bytes. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = table[0][i];
        for (int t = 1; t < 4; t++) {
            c = table[0][c & 0xFFu] ^ (c >> 8);
            table[t][i] = c;
        }
    }
}

static uint32_t crc_bytewise(uint32_t crc, const uint8_t *p, uint32_t n) {
    crc = ~crc;
    while (n--)
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static uint32_t crc_slice4(uint32_t crc, const uint8_t *p, uint32_t n) {
    crc = ~crc;
    while (n >= 4) {
        crc ^= (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
               ((uint32_t)p[3] << 24);
        crc = table[3][crc & 0xFFu] ^ table[2][(crc >> 8) & 0xFFu] ^
              table[1][(crc >> 16) & 0xFFu] ^ table[0][crc >> 24];
        p += 4;
        n -= 4;
    }
    while (n--)
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    make_tables();

    /* Known-answer test: CRC-32 of "123456789" is 0xCBF43926. */
    static const uint8_t kat[] = "123456789";
    uint32_t k1 = crc_bytewise(0, kat, 9), k4 = crc_slice4(0, kat, 9);
    printf("crc32(\"123456789\") = %08x\n", k1);
    if (k1 != 0xCBF43926u || k4 != 0xCBF43926u) {
        printf("FAIL: known-answer test (bytewise %08x, slice4 %08x)\n", k1, k4);
        return 1;
    }

    rng_seed(0xC0FFEE01u);
    for (uint32_t i = 0; i < BUF_LEN; i++)
        buf[i] = (uint8_t)(rng_next() >> 24);

    uint32_t stream = 0;   /* CRC of the concatenation of every slice hashed */
    uint32_t check = 0;
    uint64_t bytes = 0;
    for (int32_t round = 0; round < scale; round++) {
        /* Vary alignment and length so the tail loops run too. */
        uint32_t off = (uint32_t)round % 3u;
        uint32_t len = BUF_LEN - off - (uint32_t)round % 7u;
        uint32_t a = crc_bytewise(0, buf + off, len);
        uint32_t b = crc_slice4(0, buf + off, len);
        if (a != b) {
            printf("FAIL: round %d: bytewise %08x != slice4 %08x\n", (int)round, a, b);
            return 1;
        }
        stream = crc_slice4(stream, buf + off, len);
        bytes += len;
        check = mix32(check, a);
        /* Perturb 64 bytes at positions chosen by the result. */
        uint32_t x = a;
        for (int j = 0; j < 64; j++) {
            x = x * 1664525u + 1013904223u;
            buf[(x >> 12) & (BUF_LEN - 1u)] ^= (uint8_t)(x >> 4);
        }
    }

    printf("rounds: %d\n", (int)scale);
    printf("bytes hashed: %llu\n", (unsigned long long)bytes);
    printf("stream crc: %08x\n", stream);
    printf("last buffer crc: %08x\n", crc_bytewise(0, buf, BUF_LEN));
    printf("checksum: %08x\n", mix32(check, stream));
    return 0;
}
