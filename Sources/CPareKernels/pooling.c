#include "pare_pooling.h"
#include "simd_choice.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PARE_X86 1
#endif

/// The window's rows (or columns) [first, last) inside 0..<size.
static inline void inside(long o, long stride, long pad, long taps, long size, long *first, long *last) {
    long start = o * stride - pad;
    *first = start < 0 ? 0 : start;
    long end = start + taps < size ? start + taps : size;
    *last = end < *first ? *first : end;
}

static void pool_scalar(const float *image, const pare_window *w, long h0, long h1, long w0, long w1, float *dst) {
    const long c = w->channels;
    for (long ch = 0; ch < c; ch++) {
        float m = -INFINITY;
        int nan = 0;
        for (long ih = h0; ih < h1; ih++) {
            for (long iw = w0; iw < w1; iw++) {
                float v = image[(ih * w->inW + iw) * c + ch];
                nan |= isnan(v);
                m = v > m ? v : m;
            }
        }
        dst[ch] = nan ? NAN : m;
    }
}

#ifdef PARE_X86
/// Eight channels from `cb`: `n` of them (masked loads and stores below eight).
__attribute__((target("avx2,fma"), always_inline)) static inline void pool8(const float *image, const pare_window *w,
                                                                       long h0, long h1, long w0, long w1,
                                                                       long cb, float *dst, __m256i mask,
                                                                       int full) {
    const long c = w->channels;
    __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    for (long ih = h0; ih < h1; ih++) {
        for (long iw = w0; iw < w1; iw++) {
            const float *p = image + (ih * w->inW + iw) * c + cb;
            __m256 v = full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            m = _mm256_max_ps(v, m);  // v > m ? v : m
        }
    }
    m = _mm256_blendv_ps(m, _mm256_set1_ps(NAN), nan);
    if (full) _mm256_storeu_ps(dst + cb, m);
    else _mm256_maskstore_ps(dst + cb, mask, m);
}

__attribute__((target("avx2,fma"))) static void pool_avx2(const float *image, const pare_window *w, long h0, long h1,
                                                      long w0, long w1, float *dst) {
    const long c = w->channels;
    const __m256i all = _mm256_set1_epi32(-1);
    long cb = 0;
    for (; cb + 8 <= c; cb += 8) pool8(image, w, h0, h1, w0, w1, cb, dst, all, 1);
    if (cb < c) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(c - cb)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        pool8(image, w, h0, h1, w0, w1, cb, dst, mask, 0);
    }
}

/// pool8 with sixteen channels a register and the NaN lanes in a mask register.
__attribute__((target("avx512f"), always_inline)) static inline void pool16(const float *image,
                                                                         const pare_window *w, long h0, long h1,
                                                                         long w0, long w1, long cb, float *dst,
                                                                         __mmask16 lanes, int full) {
    const long c = w->channels;
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (long ih = h0; ih < h1; ih++) {
        for (long iw = w0; iw < w1; iw++) {
            const float *p = image + (ih * w->inW + iw) * c + cb;
            __m512 v = full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes, p);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            m = _mm512_max_ps(v, m);  // v > m ? v : m
        }
    }
    m = _mm512_mask_blend_ps(nan, m, _mm512_set1_ps(NAN));
    if (full) _mm512_storeu_ps(dst + cb, m);
    else _mm512_mask_storeu_ps(dst + cb, lanes, m);
}

__attribute__((target("avx512f"))) static void pool_avx512(const float *image, const pare_window *w, long h0,
                                                           long h1, long w0, long w1, float *dst) {
    const long c = w->channels;
    long cb = 0;
    for (; cb + 16 <= c; cb += 16) pool16(image, w, h0, h1, w0, w1, cb, dst, (__mmask16)0xFFFF, 1);
    if (cb < c) pool16(image, w, h0, h1, w0, w1, cb, dst, (__mmask16)((1u << (c - cb)) - 1), 0);
}
#endif

void pare_max_pool2d(const float *in, long images, const pare_window *w, float *out, long outStride) {
#ifdef PARE_X86
    const int simd = pare_kernels_use_avx2_fma(), wide = pare_kernels_use_avx512();
#endif
    for (long b = 0; b < images; b++) {
        const float *image = in + b * w->inH * w->inW * w->channels;
        for (long oh = 0; oh < w->outH; oh++) {
            long h0, h1;
            inside(oh, w->strideH, w->padTop, w->kH, w->inH, &h0, &h1);
            for (long ow = 0; ow < w->outW; ow++) {
                long w0, w1;
                inside(ow, w->strideW, w->padLeft, w->kW, w->inW, &w0, &w1);
                float *dst = out + ((b * w->outH + oh) * w->outW + ow) * outStride;
#ifdef PARE_X86
                if (wide) {
                    pool_avx512(image, w, h0, h1, w0, w1, dst);
                    continue;
                }
                if (simd) {
                    pool_avx2(image, w, h0, h1, w0, w1, dst);
                    continue;
                }
#endif
                pool_scalar(image, w, h0, h1, w0, w1, dst);
            }
        }
    }
}
