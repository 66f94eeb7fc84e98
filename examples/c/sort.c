/*
 * sort: sorting pseudo-random uint32_t arrays with a recursive quicksort and
 * with heapsort, then verifying the results.
 *
 * Hot loops: quicksort's Hoare partition (compare-and-swap with
 * data-dependent, poorly predictable branches), recursion on the smaller
 * half plus an insertion sort for short ranges, and heapsort's sift-down
 * (index arithmetic and loads that jump around the array). Every round both
 * sorts a fresh 2048-element array; every fourth round the values are drawn
 * from a tiny range, so there are many duplicates. Each result is checked
 * for order, against the other algorithm's result and against the input's
 * sum and xor.
 *
 * Scale: number of rounds (one round ~ 2.1 million wasm instructions).
 */
#include "common.h"
#include <string.h>

#define LEN 2048
#define DEFAULT_SCALE 96
#define MAX_SCALE 1000000

static uint32_t input[LEN], qs[LEN], hs[LEN];
static uint32_t max_depth;

static void insertion_sort(uint32_t *a, int32_t n) {
    for (int32_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        int32_t j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void quicksort(uint32_t *a, int32_t n, uint32_t depth) {
    if (depth > max_depth)
        max_depth = depth;
    while (n > 16) {
        /* Median of three as the pivot value. */
        uint32_t x = a[0], y = a[n / 2], z = a[n - 1], pivot;
        if (x < y)
            pivot = y < z ? y : (x < z ? z : x);
        else
            pivot = x < z ? x : (y < z ? z : y);
        /* Hoare partition: [0, j] <= pivot <= [j + 1, n). */
        int32_t i = -1, j = n;
        for (;;) {
            do
                i++;
            while (a[i] < pivot);
            do
                j--;
            while (a[j] > pivot);
            if (i >= j)
                break;
            uint32_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        int32_t left = j + 1, right = n - left;
        /* Recurse into the smaller side, loop on the larger one. */
        if (left < right) {
            quicksort(a, left, depth + 1);
            a += left;
            n = right;
        } else {
            quicksort(a + left, right, depth + 1);
            n = left;
        }
    }
    insertion_sort(a, n);
}

static void sift_down(uint32_t *a, int32_t root, int32_t n) {
    uint32_t v = a[root];
    for (;;) {
        int32_t child = 2 * root + 1;
        if (child >= n)
            break;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[child] <= v)
            break;
        a[root] = a[child];
        root = child;
    }
    a[root] = v;
}

static void heapsort(uint32_t *a, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--)
        sift_down(a, i, n);
    for (int32_t end = n - 1; end > 0; end--) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static int verify(const char *name, const uint32_t *a, uint32_t sum, uint32_t xr, int32_t round) {
    uint32_t s = 0, x = 0;
    for (int32_t i = 0; i < LEN; i++) {
        if (i > 0 && a[i - 1] > a[i]) {
            printf("FAIL: round %d: %s output not sorted at index %d\n", (int)round, name, (int)i);
            return 0;
        }
        s += a[i];
        x ^= a[i];
    }
    if (s != sum || x != xr) {
        printf("FAIL: round %d: %s output is not a permutation of the input\n", (int)round, name);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    rng_seed(0x50A7u);
    uint32_t check = 0, dup_runs = 0;
    for (int32_t round = 0; round < scale; round++) {
        uint32_t mask = (round % 4 == 3) ? 63u : 0xFFFFFFFFu;
        uint32_t sum = 0, xr = 0;
        for (int32_t i = 0; i < LEN; i++) {
            input[i] = rng_next() & mask;
            sum += input[i];
            xr ^= input[i];
        }
        memcpy(qs, input, sizeof qs);
        memcpy(hs, input, sizeof hs);
        quicksort(qs, LEN, 1);
        heapsort(hs, LEN);
        if (!verify("quicksort", qs, sum, xr, round) || !verify("heapsort", hs, sum, xr, round))
            return 1;
        if (memcmp(qs, hs, sizeof qs) != 0) {
            printf("FAIL: round %d: quicksort and heapsort disagree\n", (int)round);
            return 1;
        }
        for (int32_t i = 1; i < LEN; i++)
            dup_runs += qs[i] == qs[i - 1];
        for (int32_t i = 0; i < LEN; i += 64)
            check = mix32(check, qs[i]);
    }

    printf("rounds: %d x %d elements\n", (int)scale, LEN);
    printf("last round: min %u, median %u, max %u\n", qs[0], qs[LEN / 2], qs[LEN - 1]);
    printf("adjacent duplicates: %u\n", dup_runs);
    printf("max quicksort depth: %u\n", max_depth);
    printf("checksum: %08x\n", mix32(check, dup_runs));
    return 0;
}
