#include "pare_rows.h"
#include "simd_choice.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/// Rows of eight floats or more go in whole registers, the last eight of a row overlapping the ones
/// before it; shorter rows in one masked load and store.
__attribute__((target("avx2,fma"))) static void copy_rows_avx2(const float *src, long srcStride, float *dst,
                                                           long dstStride, long rows, long count) {
    if (count < 8) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (long r = 0; r < rows; r++) {
            _mm256_maskstore_ps(dst + r * dstStride, m, _mm256_maskload_ps(src + r * srcStride, m));
        }
        return;
    }
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * srcStride;
        float *d = dst + r * dstStride;
        long k = 0;
        for (; k + 8 <= count; k += 8) _mm256_storeu_ps(d + k, _mm256_loadu_ps(s + k));
        if (k < count) _mm256_storeu_ps(d + count - 8, _mm256_loadu_ps(s + count - 8));
    }
}
#endif

void pare_copy_rows(const float *src, long srcStride, float *dst, long dstStride, long rows, long count) {
    if (rows <= 0 || count <= 0) return;
#if defined(__x86_64__)
    if (pare_kernels_use_avx2_fma()) {
        copy_rows_avx2(src, srcStride, dst, dstStride, rows, count);
        return;
    }
#endif
    for (long r = 0; r < rows; r++) {
        memcpy(dst + r * dstStride, src + r * srcStride, (size_t)count * sizeof(float));
    }
}
