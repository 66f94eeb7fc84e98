/*
 * sieve: segmented sieve of Eratosthenes counting the primes up to a limit.
 *
 * Hot loops: filling a 32 KiB byte array, crossing off multiples with
 * strided byte stores (a nested loop over the base primes), and a byte scan
 * that counts survivors, sums them and counts twin-prime pairs. A small
 * plain sieve first finds the base primes up to sqrt(limit).
 *
 * Scale: the limit is scale * 65536 (one unit ~ 3 million wasm
 * instructions; the cost per unit grows very slowly with the limit).
 */
#include "common.h"

#define UNIT 65536u
#define SEG 32768u
#define DEFAULT_SCALE 64
#define MAX_SCALE 16384 /* limit <= 2^30, base primes <= 32768 */

static uint8_t small[32769];
static uint32_t base[4000];   /* pi(32768) = 3512 */
static uint8_t seg[SEG];

static uint32_t isqrt32(uint32_t n) {
    uint32_t r = 0;
    while ((r + 1u) * (r + 1u) <= n)
        r++;
    return r;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    uint32_t limit = (uint32_t)scale * UNIT;
    uint32_t root = isqrt32(limit);

    /* Plain sieve for the base primes. */
    for (uint32_t i = 0; i <= root; i++)
        small[i] = 1;
    small[0] = small[1] = 0;
    for (uint32_t p = 2; p * p <= root; p++)
        if (small[p])
            for (uint32_t m = p * p; m <= root; m += p)
                small[m] = 0;
    uint32_t nbase = 0;
    for (uint32_t i = 2; i <= root; i++)
        if (small[i])
            base[nbase++] = i;

    uint32_t count = 0, count_2_16 = 0, twins = 0, last = 0, check = 0;
    uint64_t sum = 0;
    for (uint32_t lo = 0; lo <= limit; lo += SEG) {
        uint32_t hi = lo + SEG; /* exclusive */
        if (hi > limit + 1u)
            hi = limit + 1u;
        uint32_t len = hi - lo;
        for (uint32_t i = 0; i < len; i++)
            seg[i] = 1;
        for (uint32_t b = 0; b < nbase; b++) {
            uint32_t p = base[b];
            uint32_t start = p * p;
            if (start >= hi)
                break;
            if (start < lo)
                start = (lo + p - 1u) / p * p;
            for (uint32_t m = start - lo; m < len; m += p)
                seg[m] = 0;
        }
        for (uint32_t i = 0; i < len; i++) {
            if (!seg[i])
                continue;
            uint32_t n = lo + i;
            if (n < 2)
                continue;
            count++;
            if (n <= 65536u)
                count_2_16++;
            if (last != 0 && last + 2u == n)
                twins++;
            last = n;
            sum += n;
            if ((count & 1023u) == 0)
                check = mix32(check, n);
        }
    }

    /* limit >= 65536 always; pi(2^16) = 6542. */
    if (count_2_16 != 6542u) {
        printf("FAIL: pi(65536) = %u, expected 6542\n", count_2_16);
        return 1;
    }
    printf("limit: %u (%u base primes)\n", limit, nbase);
    printf("primes: %u\n", count);
    printf("largest: %u\n", last);
    printf("twin pairs: %u\n", twins);
    printf("sum: %llu\n", (unsigned long long)sum);
    check = mix32(check, count);
    check = mix32(check, twins);
    printf("checksum: %08x\n", mix64(check, sum));
    return 0;
}
