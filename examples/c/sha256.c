/*
 * sha256: a from-scratch SHA-256 (FIPS 180-4) hashing a generated buffer
 * over and over.
 *
 * Hot loop: the 64-round compression function -- 32-bit rotates (which
 * clang turns into i32.rotr), shifts, and/xor/not bit mixing, additions
 * modulo 2^32 and the message-schedule expansion, plus big-endian byte
 * (de)serialisation. Every round hashes an 8 KiB buffer (alternately in one
 * update call and in pseudo-random pieces, which exercises the partial-block
 * buffering) and folds the digest back into the buffer.
 *
 * Scale: number of rounds (one round ~ 1.2 million wasm instructions).
 */
#include "common.h"

#define BUF_LEN 8192u
#define DEFAULT_SCALE 170
#define MAX_SCALE 1000000

typedef struct {
    uint32_t h[8];
    uint8_t block[64];
    uint32_t used;   /* bytes currently in block */
    uint64_t total;  /* total message length in bytes */
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static inline uint32_t rotr(uint32_t x, uint32_t n) {
    return (x >> n) | (x << (32u - n));
}

static void compress(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[i] + w[i];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t iv[8] = {
        0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
        0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
    };
    for (int i = 0; i < 8; i++)
        c->h[i] = iv[i];
    c->used = 0;
    c->total = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, uint32_t n) {
    c->total += n;
    if (c->used) {
        while (n && c->used < 64) {
            c->block[c->used++] = *p++;
            n--;
        }
        if (c->used < 64)
            return;
        compress(c->h, c->block);
        c->used = 0;
    }
    while (n >= 64) {
        compress(c->h, p);
        p += 64;
        n -= 64;
    }
    while (n--)
        c->block[c->used++] = *p++;
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->total * 8u;
    uint8_t pad[72];
    uint32_t padlen = (c->used < 56) ? 56u - c->used : 120u - c->used;
    pad[0] = 0x80;
    for (uint32_t i = 1; i < padlen; i++)
        pad[i] = 0;
    for (int i = 0; i < 8; i++)
        pad[padlen + (uint32_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t total = c->total;
    sha256_update(c, pad, padlen + 8u);
    c->total = total;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

static void to_hex(const uint8_t d[32], char out[65]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

static int kat(const char *msg, const char *want) {
    sha256_ctx c;
    uint8_t d[32];
    char hex[65];
    uint32_t n = 0;
    while (msg[n])
        n++;
    sha256_init(&c);
    sha256_update(&c, (const uint8_t *)msg, n);
    sha256_final(&c, d);
    to_hex(d, hex);
    for (int i = 0; i < 65; i++)
        if (hex[i] != want[i]) {
            printf("FAIL: sha256(\"%s\") = %s, want %s\n", msg, hex, want);
            return 0;
        }
    return 1;
}

static uint8_t buf[BUF_LEN];

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    if (!kat("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") ||
        !kat("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") ||
        !kat("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"))
        return 1;
    printf("known-answer tests: ok\n");

    rng_seed(0x5A256u);
    for (uint32_t i = 0; i < BUF_LEN; i++)
        buf[i] = (uint8_t)rng_next();

    uint8_t digest[32] = {0};
    uint32_t check = 0;
    sha256_ctx chain;   /* hash of all digests, in order */
    sha256_init(&chain);
    for (int32_t round = 0; round < scale; round++) {
        sha256_ctx c;
        sha256_init(&c);
        if (round & 1) {
            uint32_t pos = 0;
            while (pos < BUF_LEN) {
                uint32_t piece = 1u + rng_below(300u);
                if (piece > BUF_LEN - pos)
                    piece = BUF_LEN - pos;
                sha256_update(&c, buf + pos, piece);
                pos += piece;
            }
        } else {
            sha256_update(&c, buf, BUF_LEN);
        }
        sha256_final(&c, digest);
        if (round == 0) {
            /* Self-check: piecewise hashing must give the same digest. */
            uint8_t again[32];
            uint32_t pos = 0, piece = 1;
            sha256_init(&c);
            while (pos < BUF_LEN) {
                if (piece > BUF_LEN - pos)
                    piece = BUF_LEN - pos;
                sha256_update(&c, buf + pos, piece);
                pos += piece;
                piece = piece * 3u % 211u + 1u;
            }
            sha256_final(&c, again);
            for (int i = 0; i < 32; i++)
                if (again[i] != digest[i]) {
                    printf("FAIL: piecewise digest differs from one-shot digest\n");
                    return 1;
                }
        }
        sha256_update(&chain, digest, 32);
        /* Fold the digest back in so every round hashes different data. */
        uint32_t at = ((uint32_t)round * 32u * 7u) % BUF_LEN;
        for (int i = 0; i < 32; i++)
            buf[(at + (uint32_t)i) % BUF_LEN] ^= digest[i];
        for (int i = 0; i < 32; i += 4)
            check = mix32(check, ((uint32_t)digest[i] << 24) | ((uint32_t)digest[i + 1] << 16) |
                                     ((uint32_t)digest[i + 2] << 8) | digest[i + 3]);
    }

    char hex[65];
    uint8_t all[32];
    sha256_final(&chain, all);
    printf("rounds: %d x %u bytes\n", (int)scale, BUF_LEN);
    to_hex(digest, hex);
    printf("last digest: %s\n", hex);
    to_hex(all, hex);
    printf("digest chain: %s\n", hex);
    printf("checksum: %08x\n", check);
    return 0;
}
