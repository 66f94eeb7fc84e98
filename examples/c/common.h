/*
 * Shared helpers for kiln's bundled example programs.
 *
 * Every example must print exactly the same bytes when built natively
 * (gcc, x86_64) and for wasm32-wasi (clang), so only fixed-width integer
 * types are used for anything that reaches the output, and 64-bit values
 * are printed through an explicit cast to unsigned long long.
 */
#ifndef KILN_EXAMPLE_COMMON_H
#define KILN_EXAMPLE_COMMON_H

#include <stdint.h>
#include <stdio.h>

/* xorshift32 (Marsaglia). The state must never be zero. */
static uint32_t rng_state = 0x2545F491u;

static inline void rng_seed(uint32_t seed) {
    rng_state = seed ? seed : 0x2545F491u;
}

static inline uint32_t rng_next(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/* Uniform-ish value in [0, n) for small n; bias is irrelevant here. */
static inline uint32_t rng_below(uint32_t n) {
    return rng_next() % n;
}

/* Double in [0, 1) built from 24 random bits, so the conversion is exact. */
static inline double rng_unit(void) {
    return (double)(rng_next() >> 8) * (1.0 / 16777216.0);
}

/* Order-dependent 32-bit checksum step (FNV-1a over a whole word). */
static inline uint32_t mix32(uint32_t h, uint32_t v) {
    h ^= v;
    h *= 0x01000193u;
    h ^= h >> 15;
    return h;
}

static inline uint32_t mix64(uint32_t h, uint64_t v) {
    h = mix32(h, (uint32_t)v);
    return mix32(h, (uint32_t)(v >> 32));
}

/*
 * Parses the optional argv[1] "scale" (work amount): a decimal integer in
 * [1, max]. Returns def when there is no argument and 0 (after printing a
 * usage line to stderr) when the argument is invalid.
 */
static inline int32_t parse_scale(int argc, char **argv, int32_t def, int32_t max) {
    const char *prog = (argc > 0 && argv[0]) ? argv[0] : "example";
    if (argc < 2)
        return def;
    const char *s = argv[1];
    int64_t v = 0;
    if (argc > 2 || *s == '\0')
        goto bad;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            goto bad;
        v = v * 10 + (*s - '0');
        if (v > max)
            goto bad;
    }
    if (v < 1)
        goto bad;
    return (int32_t)v;
bad:
    fprintf(stderr, "usage: %s [scale]   (scale: integer 1..%d, default %d)\n",
            prog, (int)max, (int)def);
    return 0;
}

#endif
