/*
 * matmul: double-precision dense matrix multiply.
 *
 * Hot loop: f64 loads, f64.mul, f64.add and f64 stores over row-major
 * N x N matrices. Even rounds use the i-k-j order (streaming a row of B into
 * a row of C), odd rounds the i-j-k order (a dot product with a strided
 * column walk). Both add the products for one C element in the same order
 * (k ascending, starting from 0.0), so they give bit-identical results,
 * which round 0 checks. After each multiply A is relaxed towards its
 * initial value, keeping all values bounded while making every round depend
 * on the previous one.
 *
 * Scale: number of N=48 multiplies (one ~ 1.8 million wasm instructions).
 */
#include "common.h"
#include <string.h>

#define N 48
#define DEFAULT_SCALE 110
#define MAX_SCALE 1000000

static double A0[N][N], A[N][N], B[N][N], C[N][N], D[N][N];

static void mul_ikj(double c[N][N], double a[N][N], double b[N][N]) {
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            c[i][j] = 0.0;
        for (int k = 0; k < N; k++) {
            double aik = a[i][k];
            for (int j = 0; j < N; j++)
                c[i][j] = c[i][j] + aik * b[k][j];
        }
    }
}

static void mul_ijk(double c[N][N], double a[N][N], double b[N][N]) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < N; k++)
                s = s + a[i][k] * b[k][j];
            c[i][j] = s;
        }
}

static uint64_t bits_of(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;

    rng_seed(0x3A7F11E5u);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            A0[i][j] = rng_unit() * 2.0 - 1.0;
            A[i][j] = A0[i][j];
        }
    /* Entries in [0, 2/N): each row of A*B averages A's row over k. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            B[i][j] = rng_unit() * (2.0 / N);

    double trace_sum = 0.0, weighted_sum = 0.0;
    for (int32_t round = 0; round < scale; round++) {
        if (round & 1)
            mul_ijk(C, A, B);
        else
            mul_ikj(C, A, B);
        if (round == 0) {
            mul_ijk(D, A, B);
            if (memcmp(C, D, sizeof C) != 0) {
                printf("FAIL: i-k-j and i-j-k products differ\n");
                return 1;
            }
        }
        for (int i = 0; i < N; i++) {
            trace_sum = trace_sum + C[i][i];
            for (int j = 0; j < N; j++) {
                weighted_sum = weighted_sum + C[i][j] * (double)((i * N + j) % 7 + 1);
                A[i][j] = 0.5 * C[i][j] + 0.5 * A0[i][j];
            }
        }
    }

    uint32_t check = 0;
    double total = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            check = mix64(check, bits_of(C[i][j]));
            total = total + C[i][j];
        }
    printf("multiplies: %d of %dx%d\n", (int)scale, N, N);
    printf("C[0][0] = %.9f  C[%d][%d] = %.9f\n", C[0][0], N - 1, N - 1, C[N - 1][N - 1]);
    printf("sum(C) = %.9f\n", total);
    printf("sum of traces = %.9f\n", trace_sum);
    printf("weighted sum = %.9f\n", weighted_sum);
    printf("checksum: %08x\n", mix64(check, bits_of(weighted_sum)));
    return 0;
}
