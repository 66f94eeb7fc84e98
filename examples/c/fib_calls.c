/*
 * fib_calls: call-heavy recursion.
 *
 * Hot paths: function entry/exit with very little work per call --
 * doubly recursive Fibonacci, Hofstadter's mutually recursive Female/Male
 * sequences (two functions calling each other, nested calls as arguments),
 * the Takeuchi function (three recursive calls feeding a fourth), and an
 * expression tree evaluated recursively through a table of function
 * pointers (indirect calls, wasm call_indirect). Fibonacci, Hofstadter and
 * the tree are checked against iterative or memoised computations.
 *
 * Scale: number of rounds (one round ~ 2.7 million wasm instructions).
 * Recursion depth stays below ~50 frames whatever the scale.
 */
#include "common.h"

#define DEFAULT_SCALE 70
#define MAX_SCALE 1000000

#define NOINLINE __attribute__((noinline))

static uint64_t calls;

NOINLINE static uint32_t fib(uint32_t n) {
    calls++;
    if (n < 2)
        return n;
    return fib(n - 1) + fib(n - 2);
}

static uint32_t fib_iter(uint32_t n) {
    uint32_t a = 0, b = 1;
    while (n--) {
        uint32_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

/* Hofstadter: F(0) = 1, M(0) = 0, F(n) = n - M(F(n-1)), M(n) = n - F(M(n-1)). */
NOINLINE static uint32_t hof_m(uint32_t n);

NOINLINE static uint32_t hof_f(uint32_t n) {
    calls++;
    return n == 0 ? 1u : n - hof_m(hof_f(n - 1));
}

NOINLINE static uint32_t hof_m(uint32_t n) {
    calls++;
    return n == 0 ? 0u : n - hof_f(hof_m(n - 1));
}

#define HOF_MAX 64
static uint32_t memo_f[HOF_MAX], memo_m[HOF_MAX];

static void hof_table(void) {
    memo_f[0] = 1;
    memo_m[0] = 0;
    for (uint32_t n = 1; n < HOF_MAX; n++) {
        memo_f[n] = n - memo_m[memo_f[n - 1]];
        memo_m[n] = n - memo_f[memo_m[n - 1]];
    }
}

/* Takeuchi function. */
NOINLINE static int32_t tak(int32_t x, int32_t y, int32_t z) {
    calls++;
    if (y < x)
        return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y));
    return z;
}

/* Expression tree in an implicit heap layout: node i has children 2i+1 and
 * 2i+2; the last TREE_LEAVES nodes are leaves. */
#define TREE_DEPTH 10
#define TREE_NODES ((1 << TREE_DEPTH) - 1)
#define TREE_INNER ((1 << (TREE_DEPTH - 1)) - 1)

typedef uint32_t (*eval_fn)(uint32_t node);
static uint8_t kind[TREE_NODES];
static uint32_t leaf[TREE_NODES];
static uint32_t eval(uint32_t node);

NOINLINE static uint32_t ev_leaf(uint32_t n) { return leaf[n]; }
NOINLINE static uint32_t ev_add(uint32_t n) { return eval(2 * n + 1) + eval(2 * n + 2); }
NOINLINE static uint32_t ev_sub(uint32_t n) { return eval(2 * n + 1) - eval(2 * n + 2); }
NOINLINE static uint32_t ev_mul(uint32_t n) { return eval(2 * n + 1) * (eval(2 * n + 2) | 1u); }
NOINLINE static uint32_t ev_xor(uint32_t n) {
    uint32_t l = eval(2 * n + 1);
    return (l << 5 | l >> 27) ^ eval(2 * n + 2);
}

static eval_fn const ops[5] = {ev_leaf, ev_add, ev_sub, ev_mul, ev_xor};

NOINLINE static uint32_t eval(uint32_t node) {
    calls++;
    return ops[kind[node]](node);
}

/* The same evaluation bottom-up without calls. */
static uint32_t eval_iter(void) {
    static uint32_t val[TREE_NODES];
    for (int32_t n = TREE_NODES - 1; n >= 0; n--) {
        uint32_t l = n < TREE_INNER ? val[2 * n + 1] : 0, r = n < TREE_INNER ? val[2 * n + 2] : 0;
        switch (kind[n]) {
        case 0: val[n] = leaf[n]; break;
        case 1: val[n] = l + r; break;
        case 2: val[n] = l - r; break;
        case 3: val[n] = l * (r | 1u); break;
        default: val[n] = (l << 5 | l >> 27) ^ r; break;
        }
    }
    return val[0];
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    hof_table();
    rng_seed(0xF1BCA115u);
    for (int32_t n = 0; n < TREE_NODES; n++) {
        kind[n] = n < TREE_INNER ? (uint8_t)(1u + rng_below(4)) : 0u;
        leaf[n] = rng_next();
    }

    uint32_t check = 0, fib_sum = 0, hof_sum = 0, tree = 0;
    int32_t tak_sum = 0;
    for (int32_t r = 0; r < scale; r++) {
        uint32_t n = 17u + (uint32_t)r % 4u;
        uint32_t f = fib(n);
        if (f != fib_iter(n)) {
            printf("FAIL: fib(%u) = %u\n", n, f);
            return 1;
        }
        fib_sum += f;

        uint32_t h = 20u + (uint32_t)r % 16u;
        uint32_t hf = hof_f(h), hm = hof_m(h);
        if (hf != memo_f[h] || hm != memo_m[h]) {
            printf("FAIL: hofstadter(%u) = %u/%u\n", h, hf, hm);
            return 1;
        }
        hof_sum += hf * 3u + hm;

        int32_t x = 12 + r % 3, y = 6 + r % 4, z = r % 5;
        int32_t t = tak(x, y, z);
        tak_sum += t;

        leaf[TREE_INNER + (uint32_t)r % (TREE_NODES - TREE_INNER)] ^= (uint32_t)r * 0x9E3779B9u;
        uint32_t v = eval(0);
        if (v != eval_iter()) {
            printf("FAIL: tree evaluation differs in round %d\n", (int)r);
            return 1;
        }
        tree = tree * 31u + v;
        check = mix32(check, f ^ hf ^ (uint32_t)t ^ v);
    }

    printf("rounds: %d\n", (int)scale);
    printf("fib sum: %u\n", fib_sum);
    printf("hofstadter sum: %u\n", hof_sum);
    printf("tak sum: %d\n", (int)tak_sum);
    printf("tree hash: %08x\n", tree);
    printf("calls: %llu\n", (unsigned long long)calls);
    printf("checksum: %08x\n", mix64(check, calls));
    return 0;
}
