/* The interpreter's floor: the GFLOP/s OpenBLAS's cblas_sgemm reaches on this machine (the library
 * Pare links), on square float32 matrices, warm, best of several timed batches. A model's floor is then
 * 2 × MACs × examples ÷ this rate: no CPU interpreter built on the same sgemm can beat it.
 * Usage: sgemm_floor [N]   (default 1024); prints the rate in GFLOP/s. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 16 || n > 8192) {
        fprintf(stderr, "sgemm_floor: N must be in [16, 8192]\n");
        return 2;
    }
    size_t count = (size_t)n * n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b), *c = malloc(count * sizeof *c);
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < count; i++) {
        a[i] = (float)((i * 7919) % 1000) / 1000.0f;
        b[i] = (float)((i * 104729) % 1000) / 1000.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm-up */
    /* Enough calls per batch for ~0.2 s, best of 5 batches. */
    double start = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double one = now() - start;
    int calls = one > 0 ? (int)(0.2 / one) + 1 : 100;
    double best = 0;
    for (int batch = 0; batch < 5; batch++) {
        start = now();
        for (int i = 0; i < calls; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double rate = 2.0 * n * (double)n * n * calls / (now() - start) / 1e9;
        if (rate > best) best = rate;
    }
    printf("%.2f\n", best);
    free(a);
    free(b);
    free(c);
    return 0;
}
