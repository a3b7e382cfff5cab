/* The interpreter's direct convolution kernels (Sources/CPareKernels/convolution.c) on the residual net's
 * and the MNIST CNN's shapes, one core, against what cblas_sgemm reaches on one core in the same run
 * (square 1024 matrices): the rate each kernel reaches as a share of the floor's. Four images a call
 * (a tile's), best of 400 calls, warm. Built and run by `bash tools/bench/run kernels` (results/kernels.md).
 * Usage: kernel_rates   (prints a Markdown table) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pare_convolution.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// cblas_sgemm's GFLOP/s on one thread, best of 5 batches of ~0.2 s.
static double sgemm_rate(void) {
    const int n = 1024;
    size_t count = (size_t)n * n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b), *c = malloc(count * sizeof *c);
    if (!a || !b || !c) exit(1);
    for (size_t i = 0; i < count; i++) a[i] = b[i] = (float)(i % 1000) / 1000.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int batch = 0; batch < 5; batch++) {
        double start = now();
        int calls = 0;
        while (now() - start < 0.2) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
            calls++;
        }
        double rate = 2.0 * n * (double)n * n * calls / (now() - start) / 1e9;
        if (rate > best) best = rate;
    }
    free(a), free(b), free(c);
    return best;
}

typedef struct {
    const char *name;
    long size, channels, outChannels, taps, stride;
    int same, depthwise, batchNorm;
} shape;

/// The kernel's best GFLOP/s on four images of `s` (2 × multiply-adds / time).
static double kernel_rate(const shape *s) {
    const long images = 4, h = s->size, k = s->taps;
    const long out = s->same ? (h + s->stride - 1) / s->stride : (h - k) / s->stride + 1;
    const long pad = s->same ? ((out - 1) * s->stride + k - h) / 2 : 0;
    pare_window w = {h, h, s->channels, out, out, k, k, s->stride, s->stride, 1, 1, pad, pad};
    const long cout = s->depthwise ? s->channels : s->outChannels;
    float *in = malloc(sizeof(float) * images * h * h * s->channels);
    float *result = malloc(sizeof(float) * images * out * out * cout);
    float *kernel = malloc(sizeof(float) * k * k * s->channels * (s->depthwise ? 1 : cout));
    float *terms = malloc(sizeof(float) * 3 * cout);
    long padded = pare_window_padded_floats(&w);
    float *scratch = padded > 0 ? aligned_alloc(64, sizeof(float) * (size_t)((padded + 15) / 16 * 16)) : NULL;
    if (!in || !result || !kernel || !terms || (padded > 0 && !scratch)) exit(1);
    for (long i = 0; i < images * h * h * s->channels; i++) in[i] = (float)(i % 17) * 0.1f - 0.8f;
    for (long i = 0; i < k * k * s->channels * (s->depthwise ? 1 : cout); i++) kernel[i] = (float)(i % 13) * 0.01f;
    for (long i = 0; i < 3 * cout; i++) terms[i] = 0.5f;
    // The bias and, where the net folds one, a BatchNormalization and a ReLU in the store.
    pare_epilogue e = {terms, 0, s->batchNorm ? terms + cout : NULL, s->batchNorm ? terms + 2 * cout : NULL,
                       NULL, 0, s->batchNorm};
    double best = 1e9;
    for (int r = 0; r < 400; r++) {
        double start = now();
        if (s->depthwise) pare_depthwise2d(in, images, &w, kernel, &e, scratch, result);
        else pare_conv2d_direct(in, images, &w, kernel, cout, &e, scratch, result);
        double t = now() - start;
        if (t < best) best = t;
    }
    double macs = (double)images * out * out * k * k * s->channels * (s->depthwise ? 1 : cout);
    free(in), free(result), free(kernel), free(terms), free(scratch);
    return 2 * macs / best / 1e9;
}

int main(void) {
    openblas_set_num_threads(1);
    const shape shapes[] = {
        {"residual stem 3×3, 1 → 16", 28, 1, 16, 3, 1, 1, 0, 1},
        {"residual block_conv 3×3, 16 → 16", 28, 16, 16, 3, 1, 1, 0, 1},
        {"residual depthwise 3×3, 16", 28, 16, 16, 3, 1, 1, 1, 1},
        {"residual separable pointwise 1×1, 16 → 24", 28, 16, 24, 1, 1, 0, 0, 0},
        {"residual head_conv 3×3 stride 2, 40 → 32", 14, 40, 32, 3, 2, 0, 0, 0},
        {"MNIST CNN conv 3×3, 1 → 32", 28, 1, 32, 3, 1, 0, 0, 0},
        {"MNIST CNN conv 3×3, 32 → 64", 26, 32, 64, 3, 1, 0, 0, 0},
    };
    double floor = sgemm_rate();
    printf("| kernel (4 images) | GFLOP/s | share of one core's sgemm |\n|---|---|---|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double rate = kernel_rate(&shapes[i]);
        printf("| %s | %.1f | %.2f |\n", shapes[i].name, rate, rate / floor);
    }
    printf("\ncblas_sgemm on one thread (1024², same run): %.1f GFLOP/s; best of 400 calls a kernel, warm.\n", floor);
    return 0;
}
