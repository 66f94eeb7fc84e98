/*
 * hashtable: word counting with an open-addressing string hash table.
 *
 * Hot loops: generating short words byte by byte, hashing them (FNV-1a),
 * linear probing with byte-wise key comparison, appending new keys to a
 * string arena, plus lookups of words that may be absent. Words are built
 * from 12 syllables with a skewed length distribution, so some words are
 * very common and most are rare, like real text.
 *
 * Scale: number of 4096-word batches (one batch ~ 2.2 million wasm
 * instructions).
 */
#include "common.h"

#define DEFAULT_SCALE 90
#define MAX_SCALE 1000000
#define BATCH 4096
#define TABLE_BITS 16
#define TABLE_SIZE (1u << TABLE_BITS)
#define MAX_ENTRIES 30000   /* 12 + 12^2 + 12^3 + 12^4 = 22620 possible words */
#define ARENA_SIZE (MAX_ENTRIES * 12)
#define MAX_WORD 16 /* 4 syllables of at most 3 letters */

static const char *const syllables[12] = {
    "ka", "lo", "mi", "nu", "re", "sa", "to", "vi", "an", "el", "ost", "u",
};

typedef struct {
    uint32_t hash;
    uint32_t key;    /* offset into arena */
    uint32_t len;
    uint32_t count;
} entry;

static int32_t slots[TABLE_SIZE]; /* entry index + 1, 0 = empty */
static entry entries[MAX_ENTRIES];
static uint32_t nentries;
static char arena[ARENA_SIZE];
static uint32_t arena_used;
static uint32_t probes;

static uint32_t fnv1a(const char *s, uint32_t len) {
    uint32_t h = 0x811C9DC5u;
    for (uint32_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x01000193u;
    }
    return h;
}

static int same(const char *a, const char *b, uint32_t len) {
    for (uint32_t i = 0; i < len; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Returns the entry for the word, or NULL when absent (and !insert). */
static entry *find(const char *w, uint32_t len, int insert) {
    uint32_t h = fnv1a(w, len);
    uint32_t i = h & (TABLE_SIZE - 1u);
    for (;;) {
        probes++;
        int32_t s = slots[i];
        if (s == 0)
            break;
        entry *e = &entries[s - 1];
        if (e->hash == h && e->len == len && same(arena + e->key, w, len))
            return e;
        i = (i + 1u) & (TABLE_SIZE - 1u);
    }
    if (!insert || nentries == MAX_ENTRIES || arena_used + len > ARENA_SIZE)
        return NULL;
    entry *e = &entries[nentries++];
    e->hash = h;
    e->key = arena_used;
    e->len = len;
    e->count = 0;
    for (uint32_t k = 0; k < len; k++)
        arena[arena_used++] = w[k];
    slots[i] = (int32_t)nentries;
    return e;
}

/* One to four syllables, biased towards common ones and short words. */
static uint32_t make_word(char *w) {
    uint32_t r = rng_next();
    uint32_t nsyl = 1u + ((r >> 30 & 1u) ? (r & 3u) : (r >> 8 & 1u));
    uint32_t len = 0;
    for (uint32_t k = 0; k < nsyl; k++) {
        uint32_t x = rng_next();
        uint32_t idx = (x & 0xFFu) < 160u ? (x >> 8) % 4u : (x >> 8) % 12u;
        for (const char *p = syllables[idx]; *p; p++)
            w[len++] = *p;
    }
    return len;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    rng_seed(0x7AB1Eu);
    char w[MAX_WORD];
    uint32_t total = 0, hits = 0, misses = 0;
    for (int32_t b = 0; b < scale; b++) {
        for (int32_t i = 0; i < BATCH; i++) {
            uint32_t len = make_word(w);
            entry *e = find(w, len, 1);
            if (!e) {
                printf("FAIL: table full\n");
                return 1;
            }
            e->count++;
            total++;
        }
        /* Lookups only: fresh words (usually present) and words starting
         * with 'q', which no syllable does (always absent). */
        for (int32_t i = 0; i < BATCH / 4; i++) {
            uint32_t len = make_word(w);
            if (i & 1)
                w[0] = 'q';
            if (find(w, len, 0))
                hits++;
            else
                misses++;
        }
    }

    /* Verify: counts add up and every stored key finds itself. */
    uint32_t sum = 0, best = 0, check = 0;
    for (uint32_t i = 0; i < nentries; i++) {
        entry *e = &entries[i];
        sum += e->count;
        if (e->count > entries[best].count)
            best = i;
        if (find(arena + e->key, e->len, 0) != e) {
            printf("FAIL: key %u not found\n", i);
            return 1;
        }
        check = mix32(check, e->hash ^ e->count);
    }
    if (sum != total) {
        printf("FAIL: counts sum to %u, expected %u\n", sum, total);
        return 1;
    }
    printf("words: %u, distinct: %u\n", total, nentries);
    printf("most common: \"%.*s\" x %u\n", (int)entries[best].len, arena + entries[best].key,
           entries[best].count);
    printf("lookups: %u hits, %u misses\n", hits, misses);
    printf("probes: %u\n", probes);
    printf("checksum: %08x\n", mix32(check, probes));
    return 0;
}
