#include "pare_convolution.h"
#include "simd_choice.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PARE_X86 1
#endif

// Sums are a chain of fused multiply-adds (one rounding each) in a fixed order, the same on every path:
// vfmadd with AVX2, fmaf otherwise (exact in software where the CPU has no FMA). Nothing else may be
// contracted.
#pragma STDC FP_CONTRACT OFF

/// The taps [first, last) of a window along one axis whose input index o·stride + t·dilation − pad
/// falls inside 0..<size.
static inline void tap_range(long o, long stride, long dilation, long pad, long taps, long size, long *first,
                             long *last) {
    long base = o * stride - pad;
    long f = 0, l = taps;
    while (f < taps && base + f * dilation < 0) f++;
    while (l > f && base + (l - 1) * dilation >= size) l--;
    *first = f;
    *last = l;
}

static void conv2d_scalar(const float *in, long images, const pare_window *w, const float *kernel, long cout,
                          const float *bias, float *out) {
    const long c = w->channels;
    for (long b = 0; b < images; b++) {
        const float *image = in + b * w->inH * w->inW * c;
        for (long oh = 0; oh < w->outH; oh++) {
            long kh0, kh1;
            tap_range(oh, w->strideH, w->dilationH, w->padTop, w->kH, w->inH, &kh0, &kh1);
            for (long ow = 0; ow < w->outW; ow++) {
                long kw0, kw1;
                tap_range(ow, w->strideW, w->dilationW, w->padLeft, w->kW, w->inW, &kw0, &kw1);
                float *dst = out + ((b * w->outH + oh) * w->outW + ow) * cout;
                for (long o = 0; o < cout; o++) {
                    float sum = 0;
                    for (long kh = kh0; kh < kh1; kh++) {
                        long ih = oh * w->strideH + kh * w->dilationH - w->padTop;
                        for (long kw = kw0; kw < kw1; kw++) {
                            long iw = ow * w->strideW + kw * w->dilationW - w->padLeft;
                            const float *x = image + (ih * w->inW + iw) * c;
                            const float *k = kernel + (kh * w->kW + kw) * c * cout + o;
                            for (long ci = 0; ci < c; ci++) sum = fmaf(x[ci], k[ci * cout], sum);
                        }
                    }
                    dst[o] = bias ? sum + bias[o] : sum;
                }
            }
        }
    }
}

static void depthwise_scalar(const float *in, long images, const pare_window *w, const float *kernel,
                             const float *bias, float *out) {
    const long c = w->channels;
    for (long b = 0; b < images; b++) {
        const float *image = in + b * w->inH * w->inW * c;
        for (long oh = 0; oh < w->outH; oh++) {
            long kh0, kh1;
            tap_range(oh, w->strideH, w->dilationH, w->padTop, w->kH, w->inH, &kh0, &kh1);
            for (long ow = 0; ow < w->outW; ow++) {
                long kw0, kw1;
                tap_range(ow, w->strideW, w->dilationW, w->padLeft, w->kW, w->inW, &kw0, &kw1);
                float *dst = out + ((b * w->outH + oh) * w->outW + ow) * c;
                for (long ch = 0; ch < c; ch++) {
                    float sum = 0;
                    for (long kh = kh0; kh < kh1; kh++) {
                        long ih = oh * w->strideH + kh * w->dilationH - w->padTop;
                        for (long kw = kw0; kw < kw1; kw++) {
                            long iw = ow * w->strideW + kw * w->dilationW - w->padLeft;
                            sum = fmaf(image[(ih * w->inW + iw) * c + ch], kernel[(kh * w->kW + kw) * c + ch], sum);
                        }
                    }
                    dst[ch] = bias ? sum + bias[ch] : sum;
                }
            }
        }
    }
}

#ifdef PARE_X86
/// Lanes 0..<n of eight set (n may be below 0 or above 8).
__attribute__((target("avx2,fma"))) static inline __m256i lanes_below(long n) {
    int k = n < 0 ? 0 : (n > 8 ? 8 : (int)n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Eight lanes at `p`: a plain load for a whole block (`full`, a constant after inlining), else the
/// lanes `m` selects (zeros elsewhere; masked loads are slow, so only for the last block).
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 load8(const float *p, __m256i m, int full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

/// Adds the bias (if any) to two accumulators of sixteen channels and stores the lanes `m0`, `m1` select.
__attribute__((target("avx2,fma"), always_inline)) static inline void finish16(float *dst, __m256 a0, __m256 a1,
                                                                          const float *bias, __m256i m0,
                                                                          __m256i m1, int full) {
    if (bias) {
        a0 = _mm256_add_ps(a0, load8(bias, m0, full));
        a1 = _mm256_add_ps(a1, load8(bias + 8, m1, full));
    }
    if (full) {
        _mm256_storeu_ps(dst, a0);
        _mm256_storeu_ps(dst + 8, a1);
    } else {
        _mm256_maskstore_ps(dst, m0, a0);
        _mm256_maskstore_ps(dst + 8, m1, a1);
    }
}

/// Where one call of the convolution's inner kernels works: the image, its output row and the taps.
typedef struct {
    const float *image;
    const pare_window *w;
    const float *kernel;
    const float *bias;
    long cout, oh, kh0, kh1;
} conv_row;

/// Sixteen channels from `cb` of four neighbouring output pixels from `ow`, all of whose taps along the
/// width fall inside the image: each kernel load serves four pixels (eight accumulators).
__attribute__((target("avx2,fma"), always_inline)) static inline void conv_pixels4(const conv_row *r, long ow, long cb,
                                                                              float *dst, __m256i m0, __m256i m1,
                                                                              int full) {
    const pare_window *w = r->w;
    const long c = w->channels, cout = r->cout, step = w->strideW * c;
    const long left = ow * w->strideW - w->padLeft;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
    __m256 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (long kh = r->kh0; kh < r->kh1; kh++) {
        long ih = r->oh * w->strideH + kh * w->dilationH - w->padTop;
        for (long kw = 0; kw < w->kW; kw++) {
            const float *x = r->image + (ih * w->inW + left + kw * w->dilationW) * c;
            const float *k = r->kernel + (kh * w->kW + kw) * c * cout + cb;
            for (long ci = 0; ci < c; ci++) {
                __m256 k0 = load8(k + ci * cout, m0, full);
                __m256 k1 = load8(k + ci * cout + 8, m1, full);
                __m256 x0 = _mm256_broadcast_ss(x + ci);
                __m256 x1 = _mm256_broadcast_ss(x + step + ci);
                __m256 x2 = _mm256_broadcast_ss(x + 2 * step + ci);
                __m256 x3 = _mm256_broadcast_ss(x + 3 * step + ci);
                a00 = _mm256_fmadd_ps(x0, k0, a00);
                a01 = _mm256_fmadd_ps(x0, k1, a01);
                a10 = _mm256_fmadd_ps(x1, k0, a10);
                a11 = _mm256_fmadd_ps(x1, k1, a11);
                a20 = _mm256_fmadd_ps(x2, k0, a20);
                a21 = _mm256_fmadd_ps(x2, k1, a21);
                a30 = _mm256_fmadd_ps(x3, k0, a30);
                a31 = _mm256_fmadd_ps(x3, k1, a31);
            }
        }
    }
    const float *bias = r->bias ? r->bias + cb : NULL;
    finish16(dst, a00, a01, bias, m0, m1, full);
    finish16(dst + cout, a10, a11, bias, m0, m1, full);
    finish16(dst + 2 * cout, a20, a21, bias, m0, m1, full);
    finish16(dst + 3 * cout, a30, a31, bias, m0, m1, full);
}

/// Sixteen channels from `cb` of output pixel `ow`, over its taps [kw0, kw1) along the width.
__attribute__((target("avx2,fma"), always_inline)) static inline void conv_pixel1(const conv_row *r, long ow, long kw0,
                                                                             long kw1, long cb, float *dst,
                                                                             __m256i m0, __m256i m1, int full) {
    const pare_window *w = r->w;
    const long c = w->channels, cout = r->cout;
    const long left = ow * w->strideW - w->padLeft;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (long kh = r->kh0; kh < r->kh1; kh++) {
        long ih = r->oh * w->strideH + kh * w->dilationH - w->padTop;
        for (long kw = kw0; kw < kw1; kw++) {
            const float *x = r->image + (ih * w->inW + left + kw * w->dilationW) * c;
            const float *k = r->kernel + (kh * w->kW + kw) * c * cout + cb;
            for (long ci = 0; ci < c; ci++) {
                __m256 xv = _mm256_broadcast_ss(x + ci);
                a0 = _mm256_fmadd_ps(xv, load8(k + ci * cout, m0, full), a0);
                a1 = _mm256_fmadd_ps(xv, load8(k + ci * cout + 8, m1, full), a1);
            }
        }
    }
    finish16(dst, a0, a1, r->bias ? r->bias + cb : NULL, m0, m1, full);
}

// Output channels go sixteen at a time (two registers); four neighbouring output pixels whose taps all
// fall inside the image along the width go together; other pixels one at a time over their taps.
__attribute__((target("avx2,fma"))) static void conv2d_avx2(const float *in, long images, const pare_window *w,
                                                        const float *kernel, long cout, const float *bias,
                                                        float *out) {
    const long sw = w->strideW, dw = w->dilationW;
    const __m256i all = _mm256_set1_epi32(-1);
    for (long b = 0; b < images; b++) {
        conv_row r = {in + b * w->inH * w->inW * w->channels, w, kernel, bias, cout, 0, 0, 0};
        for (long oh = 0; oh < w->outH; oh++) {
            r.oh = oh;
            tap_range(oh, w->strideH, w->dilationH, w->padTop, w->kH, w->inH, &r.kh0, &r.kh1);
            long ow = 0;
            while (ow < w->outW) {
                long left = ow * sw - w->padLeft;
                int four = ow + 4 <= w->outW && left >= 0 && left + 3 * sw + (w->kW - 1) * dw < w->inW;
                long kw0 = 0, kw1 = w->kW;
                if (!four) tap_range(ow, sw, dw, w->padLeft, w->kW, w->inW, &kw0, &kw1);
                float *dst = out + ((b * w->outH + oh) * w->outW + ow) * cout;
                long cb = 0;
                for (; cb + 16 <= cout; cb += 16) {
                    if (four) conv_pixels4(&r, ow, cb, dst + cb, all, all, 1);
                    else conv_pixel1(&r, ow, kw0, kw1, cb, dst + cb, all, all, 1);
                }
                if (cb < cout) {
                    __m256i m0 = lanes_below(cout - cb), m1 = lanes_below(cout - cb - 8);
                    if (four) conv_pixels4(&r, ow, cb, dst + cb, m0, m1, 0);
                    else conv_pixel1(&r, ow, kw0, kw1, cb, dst + cb, m0, m1, 0);
                }
                ow += four ? 4 : 1;
            }
        }
    }
}

/// Sixteen channels from `cb` of one output pixel over its taps inside the image.
__attribute__((target("avx2,fma"), always_inline)) static inline void depthwise_block(
    const float *image, const pare_window *w, const float *kernel, const float *bias, long oh, long left, long kh0,
    long kh1, long kw0, long kw1, long cb, float *dst, __m256i m0, __m256i m1, int full) {
    const long c = w->channels;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (long kh = kh0; kh < kh1; kh++) {
        long ih = oh * w->strideH + kh * w->dilationH - w->padTop;
        for (long kw = kw0; kw < kw1; kw++) {
            const float *x = image + (ih * w->inW + left + kw * w->dilationW) * c + cb;
            const float *k = kernel + (kh * w->kW + kw) * c + cb;
            a0 = _mm256_fmadd_ps(load8(x, m0, full), load8(k, m0, full), a0);
            a1 = _mm256_fmadd_ps(load8(x + 8, m1, full), load8(k + 8, m1, full), a1);
        }
    }
    finish16(dst, a0, a1, bias ? bias + cb : NULL, m0, m1, full);
}

// Channels go sixteen at a time; each output pixel sums its taps inside the image.
__attribute__((target("avx2,fma"))) static void depthwise_avx2(const float *in, long images, const pare_window *w,
                                                           const float *kernel, const float *bias, float *out) {
    const long c = w->channels;
    const __m256i all = _mm256_set1_epi32(-1);
    for (long b = 0; b < images; b++) {
        const float *image = in + b * w->inH * w->inW * c;
        for (long oh = 0; oh < w->outH; oh++) {
            long kh0, kh1;
            tap_range(oh, w->strideH, w->dilationH, w->padTop, w->kH, w->inH, &kh0, &kh1);
            for (long ow = 0; ow < w->outW; ow++) {
                long kw0, kw1;
                tap_range(ow, w->strideW, w->dilationW, w->padLeft, w->kW, w->inW, &kw0, &kw1);
                long left = ow * w->strideW - w->padLeft;
                float *dst = out + ((b * w->outH + oh) * w->outW + ow) * c;
                long cb = 0;
                for (; cb + 16 <= c; cb += 16) {
                    depthwise_block(image, w, kernel, bias, oh, left, kh0, kh1, kw0, kw1, cb, dst + cb, all, all, 1);
                }
                if (cb < c) {
                    __m256i m0 = lanes_below(c - cb), m1 = lanes_below(c - cb - 8);
                    depthwise_block(image, w, kernel, bias, oh, left, kh0, kh1, kw0, kw1, cb, dst + cb, m0, m1, 0);
                }
            }
        }
    }
}
#endif

void pare_conv2d_direct(const float *in, long images, const pare_window *w, const float *kernel, long outChannels,
                        const float *bias, float *out) {
#ifdef PARE_X86
    if (pare_kernels_use_avx2_fma()) {
        conv2d_avx2(in, images, w, kernel, outChannels, bias, out);
        return;
    }
#endif
    conv2d_scalar(in, images, w, kernel, outChannels, bias, out);
}

void pare_depthwise2d(const float *in, long images, const pare_window *w, const float *kernel, const float *bias,
                      float *out) {
#ifdef PARE_X86
    if (pare_kernels_use_avx2_fma()) {
        depthwise_avx2(in, images, w, kernel, bias, out);
        return;
    }
#endif
    depthwise_scalar(in, images, w, kernel, bias, out);
}
