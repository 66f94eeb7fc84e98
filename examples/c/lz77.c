/*
 * lz77: an LZ77-style compressor with hash chains, plus the matching
 * decompressor, round-tripping generated text.
 *
 * Hot loops: hashing 4-byte windows (multiplicative hash), walking hash
 * chains and extending candidate matches byte by byte (unpredictable
 * branches, loads at data-dependent offsets), emitting literal runs and
 * (length, distance) tokens, then the decoder's byte-copy loop that must
 * handle overlapping matches. Each round generates 8 KiB of word-based
 * pseudo-text, compresses it, decompresses it and checks the round trip.
 *
 * Token format: byte c < 0x80: a run of c+1 literal bytes follows;
 * c >= 0x80: a match of (c & 0x7F) + 4 bytes at a 16-bit little-endian
 * distance that follows.
 *
 * Scale: number of rounds (one round ~ 2 million wasm instructions).
 */
#include "common.h"

#define DEFAULT_SCALE 96
#define MAX_SCALE 1000000
#define BLOCK 8192u
#define OUT_CAP (BLOCK + BLOCK / 128u + 16u)
#define MIN_MATCH 4u
#define MAX_MATCH (127u + MIN_MATCH)
#define HASH_BITS 12
#define CHAIN_DEPTH 8
#define NO_POS 0xFFFFFFFFu

static uint8_t text[BLOCK], packed[OUT_CAP], unpacked[BLOCK];
static uint32_t head[1u << HASH_BITS];
static uint32_t prev[BLOCK];
static char vocab[64][10];
static uint32_t vocab_len[64];

static uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint32_t hash4(uint32_t v) {
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static uint32_t flush_literals(const uint8_t *in, uint32_t from, uint32_t to, uint8_t *out, uint32_t op) {
    while (from < to) {
        uint32_t run = to - from;
        if (run > 128u)
            run = 128u;
        out[op++] = (uint8_t)(run - 1u);
        for (uint32_t i = 0; i < run; i++)
            out[op++] = in[from + i];
        from += run;
    }
    return op;
}

static void insert(const uint8_t *in, uint32_t pos) {
    uint32_t h = hash4(load32(in + pos));
    prev[pos] = head[h];
    head[h] = pos;
}

static uint32_t compress(const uint8_t *in, uint32_t n, uint8_t *out) {
    for (uint32_t i = 0; i < (1u << HASH_BITS); i++)
        head[i] = NO_POS;
    uint32_t ip = 0, op = 0, lit = 0;
    while (ip + MIN_MATCH <= n) {
        uint32_t best_len = 0, best_dist = 0;
        uint32_t cand = head[hash4(load32(in + ip))];
        for (int depth = 0; depth < CHAIN_DEPTH && cand != NO_POS; depth++) {
            uint32_t dist = ip - cand;
            if (dist > 0xFFFFu)
                break;
            uint32_t len = 0, max = n - ip;
            if (max > MAX_MATCH)
                max = MAX_MATCH;
            while (len < max && in[cand + len] == in[ip + len])
                len++;
            if (len > best_len) {
                best_len = len;
                best_dist = dist;
                if (len == max)
                    break;
            }
            cand = prev[cand];
        }
        if (best_len >= MIN_MATCH) {
            op = flush_literals(in, lit, ip, out, op);
            out[op++] = (uint8_t)(0x80u | (best_len - MIN_MATCH));
            out[op++] = (uint8_t)best_dist;
            out[op++] = (uint8_t)(best_dist >> 8);
            uint32_t end = ip + best_len;
            for (; ip < end; ip++)
                if (ip + MIN_MATCH <= n)
                    insert(in, ip);
            lit = ip;
        } else {
            insert(in, ip);
            ip++;
        }
    }
    return flush_literals(in, lit, n, out, op);
}

/* Returns the decoded length, or NO_POS on a malformed stream. */
static uint32_t decompress(const uint8_t *in, uint32_t n, uint8_t *out, uint32_t cap) {
    uint32_t ip = 0, op = 0;
    while (ip < n) {
        uint32_t c = in[ip++];
        if (c & 0x80u) {
            uint32_t len = (c & 0x7Fu) + MIN_MATCH;
            if (ip + 2u > n)
                return NO_POS;
            uint32_t dist = (uint32_t)in[ip] | ((uint32_t)in[ip + 1] << 8);
            ip += 2;
            if (dist == 0 || dist > op || len > cap - op)
                return NO_POS;
            for (uint32_t i = 0; i < len; i++, op++)
                out[op] = out[op - dist];
        } else {
            uint32_t run = c + 1u;
            if (run > n - ip || run > cap - op)
                return NO_POS;
            for (uint32_t i = 0; i < run; i++)
                out[op++] = in[ip++];
        }
    }
    return op;
}

static void make_vocab(void) {
    for (int i = 0; i < 64; i++) {
        uint32_t len = 2u + rng_below(8);
        for (uint32_t k = 0; k < len; k++)
            vocab[i][k] = (char)('a' + rng_below(26));
        vocab_len[i] = len;
    }
}

static void make_text(uint8_t *t, uint32_t n) {
    uint32_t pos = 0;
    while (pos < n) {
        uint32_t r = rng_next();
        uint32_t kind = r & 15u;
        char tmp[16];
        uint32_t len = 0;
        if (kind < 11u) {   /* a word; low indices are more common */
            uint32_t w = (r >> 8) & 63u;
            if ((r >> 20) & 1u)
                w &= 15u;
            for (uint32_t k = 0; k < vocab_len[w]; k++)
                tmp[len++] = vocab[w][k];
            tmp[len++] = ' ';
        } else if (kind < 14u) {  /* a number */
            uint32_t v = (r >> 8) % 100000u;
            do {
                tmp[len++] = (char)('0' + v % 10u);
                v /= 10u;
            } while (v);
            tmp[len++] = ' ';
        } else {
            tmp[len++] = (kind == 14u) ? '.' : ',';
            tmp[len++] = (r >> 8 & 3u) ? ' ' : '\n';
        }
        for (uint32_t k = 0; k < len && pos < n; k++)
            t[pos++] = (uint8_t)tmp[k];
    }
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    rng_seed(0x177A5EEDu);
    make_vocab();
    uint64_t in_total = 0, out_total = 0;
    uint32_t check = 0, matches = 0;
    for (int32_t round = 0; round < scale; round++) {
        make_text(text, BLOCK);
        uint32_t clen = compress(text, BLOCK, packed);
        if (clen > OUT_CAP) {
            printf("FAIL: round %d: output overflow\n", (int)round);
            return 1;
        }
        uint32_t dlen = decompress(packed, clen, unpacked, BLOCK);
        if (dlen != BLOCK) {
            printf("FAIL: round %d: decoded %u bytes, expected %u\n", (int)round, dlen, BLOCK);
            return 1;
        }
        for (uint32_t i = 0; i < BLOCK; i++)
            if (unpacked[i] != text[i]) {
                printf("FAIL: round %d: mismatch at byte %u\n", (int)round, i);
                return 1;
            }
        uint32_t h = 0x811C9DC5u;
        for (uint32_t i = 0; i < clen; i++) {
            h = (h ^ packed[i]) * 0x01000193u;
            if (packed[i] & 0x80u) {
                matches++;
                h = (h ^ packed[i + 1]) * 0x01000193u;
                h = (h ^ packed[i + 2]) * 0x01000193u;
                i += 2;
            } else {
                for (uint32_t k = 0; k <= packed[i]; k++)
                    h = (h ^ packed[i + 1 + k]) * 0x01000193u;
                i += packed[i] + 1u;
            }
        }
        check = mix32(check, h);
        in_total += BLOCK;
        out_total += clen;
    }

    printf("rounds: %d x %u bytes\n", (int)scale, BLOCK);
    printf("compressed: %llu -> %llu bytes (%llu.%01llu%%)\n", (unsigned long long)in_total,
           (unsigned long long)out_total, (unsigned long long)(out_total * 100u / in_total),
           (unsigned long long)(out_total * 1000u / in_total % 10u));
    printf("match tokens: %u\n", matches);
    printf("checksum: %08x\n", mix64(check, out_total));
    return 0;
}
