#include "pare_convolution.h"
#include "simd_choice.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PARE_X86 1
#endif

// Sums are a chain of fused multiply-adds (one rounding each) in a fixed order, the same on every path:
// vfmadd with AVX2, fmaf otherwise (exact in software where the CPU has no FMA). Nothing else may be
// contracted.
#pragma STDC FP_CONTRACT OFF

/// Rows (or columns) the windows reach from the first padding row: the last window's last tap + 1.
static long reach(long out, long stride, long taps, long dilation) {
    return (out - 1) * stride + (taps - 1) * dilation + 1;
}

long pare_window_padded_floats(const pare_window *w) {
    if (w->outH <= 0 || w->outW <= 0) return 0;
    long h = reach(w->outH, w->strideH, w->kH, w->dilationH), wd = reach(w->outW, w->strideW, w->kW, w->dilationW);
    if (w->padTop == 0 && w->padLeft == 0 && h <= w->inH && wd <= w->inW) return 0;
    return h * wd * w->channels;
}

/// Copies `image` into `padded` (the rows and columns the windows reach, from the first padding row and
/// column) with zeros around it.
static void pad_image(const float *image, const pare_window *w, float *padded) {
    const long c = w->channels;
    const long h = reach(w->outH, w->strideH, w->kH, w->dilationH);
    const long wd = reach(w->outW, w->strideW, w->kW, w->dilationW);
    // Columns [first, last) of a padded row hold the image's columns from 0.
    const long first = w->padLeft < wd ? w->padLeft : wd;
    const long last = w->padLeft + w->inW < wd ? w->padLeft + w->inW : wd;
    for (long r = 0; r < h; r++) {
        float *row = padded + r * wd * c;
        long ih = r - w->padTop;
        if (ih < 0 || ih >= w->inH) {
            memset(row, 0, (size_t)(wd * c) * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)(first * c) * sizeof(float));
        memcpy(row + first * c, image + ih * w->inW * c, (size_t)((last - first) * c) * sizeof(float));
        memset(row + last * c, 0, (size_t)((wd - last) * c) * sizeof(float));
    }
}

/// One image's work: `src` holds every tap of every window (`width` pixels a row, the window of output
/// (oh, ow) starting at row oh·strideH, column ow·strideW); `out` is the image's output.
typedef struct {
    const float *src;
    long width;
    const pare_window *w;
    const float *kernel;
    const pare_epilogue *e;
    long cout;
    float *out;
    /// The image's values of the epilogue's residual (NULL if none).
    const float *residual;
} image_job;

/// The epilogue of output value `i` (channel `o`) of an image.
static inline float finish(float sum, const image_job *j, long o, long i) {
    const pare_epilogue *e = j->e;
    float v = e->bias ? sum + e->bias[o] : sum;
    if (e->reluFirst && v < 0) v = 0;
    if (e->scale) v = v * e->scale[o] + e->shift[o];
    if (j->residual) v = e->residualFirst ? j->residual[i] + v : v + j->residual[i];
    return e->relu && v < 0 ? 0 : v;
}

/// Both kernels without SIMD: each output value sums its taps in order.
static void image_scalar(const image_job *j, int depthwise) {
    const pare_window *w = j->w;
    const long c = w->channels, cout = j->cout;
    for (long oh = 0; oh < w->outH; oh++) {
        for (long ow = 0; ow < w->outW; ow++) {
            const float *corner = j->src + (oh * w->strideH * j->width + ow * w->strideW) * c;
            float *dst = j->out + (oh * w->outW + ow) * cout;
            for (long o = 0; o < cout; o++) {
                float sum = 0;
                for (long kh = 0; kh < w->kH; kh++) {
                    for (long kw = 0; kw < w->kW; kw++) {
                        const float *x = corner + (kh * w->dilationH * j->width + kw * w->dilationW) * c;
                        const long tap = kh * w->kW + kw;
                        if (depthwise) {
                            sum = fmaf(x[o], j->kernel[tap * c + o], sum);
                        } else {
                            const float *k = j->kernel + tap * c * cout + o;
                            for (long ci = 0; ci < c; ci++) sum = fmaf(x[ci], k[ci * cout], sum);
                        }
                    }
                }
                dst[o] = finish(sum, j, o, dst + o - j->out);
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

/// Applies the epilogue to two accumulators of sixteen channels from `cb` and stores the lanes `m0`, `m1`
/// select at `dst` (value `dst − out` of the image). max(0, x) is `x < 0 ? 0 : x`: vmaxps returns its
/// second operand when either is NaN or both are zeros.
__attribute__((target("avx2,fma"), always_inline)) static inline void finish16(float *dst, __m256 a0, __m256 a1,
                                                                          const image_job *j, long cb, __m256i m0,
                                                                          __m256i m1, int full) {
    const pare_epilogue *e = j->e;
    const __m256 zero = _mm256_setzero_ps();
    if (e->bias) {
        a0 = _mm256_add_ps(a0, load8(e->bias + cb, m0, full));
        a1 = _mm256_add_ps(a1, load8(e->bias + cb + 8, m1, full));
    }
    if (e->reluFirst) {
        a0 = _mm256_max_ps(zero, a0);
        a1 = _mm256_max_ps(zero, a1);
    }
    if (e->scale) {
        a0 = _mm256_add_ps(_mm256_mul_ps(a0, load8(e->scale + cb, m0, full)), load8(e->shift + cb, m0, full));
        a1 = _mm256_add_ps(_mm256_mul_ps(a1, load8(e->scale + cb + 8, m1, full)), load8(e->shift + cb + 8, m1, full));
    }
    if (j->residual) {
        const float *r = j->residual + (dst - j->out);
        __m256 r0 = load8(r, m0, full), r1 = load8(r + 8, m1, full);
        a0 = e->residualFirst ? _mm256_add_ps(r0, a0) : _mm256_add_ps(a0, r0);
        a1 = e->residualFirst ? _mm256_add_ps(r1, a1) : _mm256_add_ps(a1, r1);
    }
    if (e->relu) {
        a0 = _mm256_max_ps(zero, a0);
        a1 = _mm256_max_ps(zero, a1);
    }
    if (full) {
        _mm256_storeu_ps(dst, a0);
        _mm256_storeu_ps(dst + 8, a1);
    } else {
        _mm256_maskstore_ps(dst, m0, a0);
        _mm256_maskstore_ps(dst + 8, m1, a1);
    }
}

/// Sixteen channels from `cb` of output pixels (oh, ow…ow+pixels−1), pixels ≤ 4 (a constant after
/// inlining): each kernel load serves every pixel. Conv2D when `depthwise` is 0.
__attribute__((target("avx2,fma"), always_inline)) static inline void block16(const image_job *j, long oh, long ow,
                                                                         int pixels, long cb, int depthwise,
                                                                         __m256i m0, __m256i m1, int full) {
    const pare_window *w = j->w;
    const long c = w->channels, cout = j->cout, step = w->strideW * c;
    const float *corner = j->src + (oh * w->strideH * j->width + ow * w->strideW) * c;
    __m256 a[4][2];
    for (int p = 0; p < 4; p++) a[p][0] = a[p][1] = _mm256_setzero_ps();
    for (long kh = 0; kh < w->kH; kh++) {
        for (long kw = 0; kw < w->kW; kw++) {
            const float *x = corner + (kh * w->dilationH * j->width + kw * w->dilationW) * c;
            const long tap = kh * w->kW + kw;
            if (depthwise) {
                const float *k = j->kernel + tap * c + cb;
                __m256 k0 = load8(k, m0, full), k1 = load8(k + 8, m1, full);
                for (int p = 0; p < pixels; p++) {
                    a[p][0] = _mm256_fmadd_ps(load8(x + p * step + cb, m0, full), k0, a[p][0]);
                    a[p][1] = _mm256_fmadd_ps(load8(x + p * step + cb + 8, m1, full), k1, a[p][1]);
                }
            } else {
                const float *k = j->kernel + tap * c * cout + cb;
                for (long ci = 0; ci < c; ci++) {
                    __m256 k0 = load8(k + ci * cout, m0, full), k1 = load8(k + ci * cout + 8, m1, full);
                    for (int p = 0; p < pixels; p++) {
                        __m256 xv = _mm256_broadcast_ss(x + p * step + ci);
                        a[p][0] = _mm256_fmadd_ps(xv, k0, a[p][0]);
                        a[p][1] = _mm256_fmadd_ps(xv, k1, a[p][1]);
                    }
                }
            }
        }
    }
    float *dst = j->out + (oh * w->outW + ow) * cout + cb;
    for (int p = 0; p < pixels; p++) finish16(dst + p * cout, a[p][0], a[p][1], j, cb, m0, m1, full);
}

/// Every channel block of `pixels` output pixels from (oh, ow).
__attribute__((target("avx2,fma"), always_inline)) static inline void pixels_avx2(const image_job *j, long oh,
                                                                             long ow, int pixels, int depthwise) {
    const __m256i all = _mm256_set1_epi32(-1);
    long cb = 0;
    for (; cb + 16 <= j->cout; cb += 16) block16(j, oh, ow, pixels, cb, depthwise, all, all, 1);
    if (cb < j->cout) {
        __m256i m0 = lanes_below(j->cout - cb), m1 = lanes_below(j->cout - cb - 8);
        block16(j, oh, ow, pixels, cb, depthwise, m0, m1, 0);
    }
}

// Output pixels go four at a time along a row; a row's last block ends at its end (overlapping the one
// before when the width is not a multiple of four: those pixels are computed again, to the same bits).
#define PARE_IMAGE_AVX2(name, depthwise)                                                                      \
    __attribute__((target("avx2,fma"))) static void name(const image_job *j) {                                 \
        const pare_window *w = j->w;                                                                           \
        for (long oh = 0; oh < w->outH; oh++) {                                                                \
            if (w->outW < 4) {                                                                                 \
                for (long ow = 0; ow < w->outW; ow++) pixels_avx2(j, oh, ow, 1, depthwise);                    \
                continue;                                                                                      \
            }                                                                                                  \
            for (long ow = 0; ow < w->outW; ow += 4) {                                                         \
                pixels_avx2(j, oh, ow + 4 <= w->outW ? ow : w->outW - 4, 4, depthwise);                        \
            }                                                                                                  \
        }                                                                                                      \
    }
PARE_IMAGE_AVX2(conv_image_avx2, 0)
PARE_IMAGE_AVX2(depthwise_image_avx2, 1)

// AVX-512: sixteen channels a register and 32 registers, so up to eight pixels of 32 channels share each
// kernel load (sixteen accumulators), masks for partial blocks (masked lanes neither load nor fault), and
// half the instructions of AVX2 for the same sums (Zen 4 runs them at AVX2's rate in two halves). The
// order of every sum is the scalar path's, so the bits are the same.
#define PARE_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/// The first `n` of sixteen lanes (n may be below 0 or above 16).
PARE_AVX512_INLINE __mmask16 first_lanes(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/// Sixteen lanes at `p`: a plain load for a whole block (`full`, a constant after inlining), else the
/// lanes `m` selects (zeros elsewhere).
PARE_AVX512_INLINE __m512 load16(const float *p, __mmask16 m, int full) {
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

/// The epilogue's steps and per-channel terms for the sixteen channels from `cb`, loaded once for a block
/// of pixels (the compiler cannot hoist them: the output's stores might overwrite them).
typedef struct {
    int bias, reluFirst, affine, residual, residualFirst, relu;
    __m512 b, scale, shift;
} epilogue_zmm;

PARE_AVX512_INLINE epilogue_zmm epilogue_terms(const image_job *j, long cb, __mmask16 m, int full) {
    const pare_epilogue *e = j->e;
    const __m512 zero = _mm512_setzero_ps();
    epilogue_zmm t = {e->bias != NULL, e->reluFirst, e->scale != NULL, j->residual != NULL, e->residualFirst,
                      e->relu, zero, zero, zero};
    if (t.bias) t.b = load16(e->bias + cb, m, full);
    if (t.affine) {
        t.scale = load16(e->scale + cb, m, full);
        t.shift = load16(e->shift + cb, m, full);
    }
    return t;
}

/// Applies the epilogue `t` to an accumulator and stores the lanes `m` selects at `dst` (value `dst − out`
/// of the image); the steps of finish16.
PARE_AVX512_INLINE void finish_zmm(float *dst, __m512 a, const image_job *j, const epilogue_zmm *t, __mmask16 m,
                                   int full) {
    const __m512 zero = _mm512_setzero_ps();
    if (t->bias) a = _mm512_add_ps(a, t->b);
    if (t->reluFirst) a = _mm512_max_ps(zero, a);
    if (t->affine) a = _mm512_add_ps(_mm512_mul_ps(a, t->scale), t->shift);
    if (t->residual) {
        __m512 r = load16(j->residual + (dst - j->out), m, full);
        a = t->residualFirst ? _mm512_add_ps(r, a) : _mm512_add_ps(a, r);
    }
    if (t->relu) a = _mm512_max_ps(zero, a);
    if (full) _mm512_storeu_ps(dst, a);
    else _mm512_mask_storeu_ps(dst, m, a);
}

/// Stores `vectors` accumulators of each of `pixels` pixels from `dst` (channel `cb`) through the epilogue.
PARE_AVX512_INLINE void store_zmm(const image_job *j, float *dst, __m512 a[8][2], int pixels, int vectors, long cb,
                                  __mmask16 m0, __mmask16 m1, int full) {
    const epilogue_zmm t0 = epilogue_terms(j, cb, m0, full);
    const epilogue_zmm t1 = vectors > 1 ? epilogue_terms(j, cb + 16, m1, full) : t0;
    for (int p = 0; p < pixels; p++) {
        finish_zmm(dst + p * j->cout, a[p][0], j, &t0, m0, full);
        if (vectors > 1) finish_zmm(dst + p * j->cout + 16, a[p][1], j, &t1, m1, full);
    }
}

/// Conv2D: `vectors` (1 or 2) blocks of sixteen channels from `cb` of output pixels (oh, ow…ow+pixels−1),
/// pixels ≤ 8; `m0`, `m1` select each block's channels (all of them when `full`). Constants after inlining.
PARE_AVX512_INLINE void conv_zmm(const image_job *j, long oh, long ow, int pixels, int vectors, long cb,
                                 __mmask16 m0, __mmask16 m1, int full) {
    const pare_window *w = j->w;
    const long c = w->channels, cout = j->cout, step = w->strideW * c;
    const float *corner = j->src + (oh * w->strideH * j->width + ow * w->strideW) * c;
    __m512 a[8][2];
    for (int p = 0; p < pixels; p++) a[p][0] = a[p][1] = _mm512_setzero_ps();
    for (long kh = 0; kh < w->kH; kh++) {
        for (long kw = 0; kw < w->kW; kw++) {
            const float *x = corner + (kh * w->dilationH * j->width + kw * w->dilationW) * c;
            const float *k = j->kernel + (kh * w->kW + kw) * c * cout + cb;
            for (long ci = 0; ci < c; ci++) {
                __m512 k0 = load16(k + ci * cout, m0, full);
                __m512 k1 = vectors > 1 ? load16(k + ci * cout + 16, m1, full) : k0;
                for (int p = 0; p < pixels; p++) {
                    __m512 xv = _mm512_set1_ps(x[p * step + ci]);
                    a[p][0] = _mm512_fmadd_ps(xv, k0, a[p][0]);
                    if (vectors > 1) a[p][1] = _mm512_fmadd_ps(xv, k1, a[p][1]);
                }
            }
        }
    }
    store_zmm(j, j->out + (oh * w->outW + ow) * cout + cb, a, pixels, vectors, cb, m0, m1, full);
}

/// DepthwiseConv2D: as conv_zmm, one multiply-add a tap and pixel. (Its two tap loops are not merged into
/// one: clang then keeps the accumulators on the stack, storing each after every multiply-add.)
PARE_AVX512_INLINE void depthwise_zmm(const image_job *j, long oh, long ow, int pixels, int vectors, long cb,
                                      __mmask16 m0, __mmask16 m1, int full) {
    const pare_window *w = j->w;
    const long c = w->channels, step = w->strideW * c;
    const float *corner = j->src + (oh * w->strideH * j->width + ow * w->strideW) * c;
    __m512 a[8][2];
    for (int p = 0; p < pixels; p++) a[p][0] = a[p][1] = _mm512_setzero_ps();
    if (w->kW == 3 && w->strideW == 1 && w->dilationW == 1) {
        // Rows of three taps a column apart over windows a column apart (most depthwise layers): each of
        // a kernel row's pixels + 2 input vectors is loaded once and serves up to three taps, where the
        // loop below loads one a tap and pixel. The same multiply-adds in the same order.
        for (int v = 0; v < vectors; v++) {
            const __mmask16 m = v ? m1 : m0;
            for (long kh = 0; kh < w->kH; kh++) {
                const float *x = corner + kh * w->dilationH * j->width * c + cb + 16 * v;
                const float *k = j->kernel + kh * 3 * c + cb + 16 * v;
                __m512 in[8 + 2];
                for (int q = 0; q < pixels + 2; q++) in[q] = load16(x + q * c, m, full);
                const __m512 k0 = load16(k, m, full), k1 = load16(k + c, m, full), k2 = load16(k + 2 * c, m, full);
                for (int p = 0; p < pixels; p++) {
                    a[p][v] = _mm512_fmadd_ps(in[p], k0, a[p][v]);
                    a[p][v] = _mm512_fmadd_ps(in[p + 1], k1, a[p][v]);
                    a[p][v] = _mm512_fmadd_ps(in[p + 2], k2, a[p][v]);
                }
            }
        }
        store_zmm(j, j->out + (oh * w->outW + ow) * c + cb, a, pixels, vectors, cb, m0, m1, full);
        return;
    }
    for (long kh = 0; kh < w->kH; kh++) {
        for (long kw = 0; kw < w->kW; kw++) {
            const float *x = corner + (kh * w->dilationH * j->width + kw * w->dilationW) * c + cb;
            const float *k = j->kernel + (kh * w->kW + kw) * c + cb;
            __m512 k0 = load16(k, m0, full), k1 = vectors > 1 ? load16(k + 16, m1, full) : k0;
            for (int p = 0; p < pixels; p++) {
                a[p][0] = _mm512_fmadd_ps(load16(x + p * step, m0, full), k0, a[p][0]);
                if (vectors > 1) a[p][1] = _mm512_fmadd_ps(load16(x + p * step + 16, m1, full), k1, a[p][1]);
            }
        }
    }
    store_zmm(j, j->out + (oh * w->outW + ow) * c + cb, a, pixels, vectors, cb, m0, m1, full);
}

/// One of the two kernels.
PARE_AVX512_INLINE void block_zmm(const image_job *j, long oh, long ow, int pixels, int vectors, long cb,
                                  int depthwise, __mmask16 m0, __mmask16 m1, int full) {
    if (depthwise) depthwise_zmm(j, oh, ow, pixels, vectors, cb, m0, m1, full);
    else conv_zmm(j, oh, ow, pixels, vectors, cb, m0, m1, full);
}

/// Every channel of `pixels` output pixels from (oh, ow): blocks of 32 channels, then what is left.
PARE_AVX512_INLINE void pixels_zmm(const image_job *j, long oh, long ow, int pixels, int depthwise) {
    const __mmask16 all = (__mmask16)0xFFFF;
    long cb = 0;
    for (; cb + 32 <= j->cout; cb += 32) block_zmm(j, oh, ow, pixels, 2, cb, depthwise, all, all, 1);
    const long left = j->cout - cb;
    if (left > 16) block_zmm(j, oh, ow, pixels, 2, cb, depthwise, all, first_lanes(left - 16), 0);
    else if (left == 16) block_zmm(j, oh, ow, pixels, 1, cb, depthwise, all, all, 1);
    else if (left > 0) block_zmm(j, oh, ow, pixels, 1, cb, depthwise, first_lanes(left), 0, 0);
}

// A row goes in the fewest blocks of at most eight pixels, all of one size (28 = 4 × 7); the last block
// ends at the row's end, overlapping the one before when the sizes do not divide the width (those pixels
// are computed again, to the same bits). The switch makes each size a constant in its copy of the code.
#define PARE_IMAGE_AVX512(name, depthwise)                                                                     \
    __attribute__((target("avx512f"))) static void name(const image_job *j) {                                  \
        const long outW = j->w->outW, blocks = (outW + 7) / 8, size = (outW + blocks - 1) / blocks;            \
        for (long oh = 0; oh < j->w->outH; oh++) {                                                             \
            for (long ow = 0; ow < outW; ow += size) {                                                         \
                const long at = ow + size <= outW ? ow : outW - size;                                          \
                switch (size) {                                                                                \
                case 1: pixels_zmm(j, oh, at, 1, depthwise); break;                                            \
                case 2: pixels_zmm(j, oh, at, 2, depthwise); break;                                            \
                case 3: pixels_zmm(j, oh, at, 3, depthwise); break;                                            \
                case 4: pixels_zmm(j, oh, at, 4, depthwise); break;                                            \
                case 5: pixels_zmm(j, oh, at, 5, depthwise); break;                                            \
                case 6: pixels_zmm(j, oh, at, 6, depthwise); break;                                            \
                case 7: pixels_zmm(j, oh, at, 7, depthwise); break;                                            \
                default: pixels_zmm(j, oh, at, 8, depthwise); break;                                           \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }
PARE_IMAGE_AVX512(conv_image_avx512, 0)
PARE_IMAGE_AVX512(depthwise_image_avx512, 1)
#endif

/// Runs one of the kernels over `images` images, each copied with its padding into `scratch` first when
/// its windows reach past it.
static void each_image(const float *in, long images, const pare_window *w, const float *kernel, long cout,
                       const pare_epilogue *e, float *scratch, float *out, int depthwise) {
    if (w->outH <= 0 || w->outW <= 0) return;
    const int padded = pare_window_padded_floats(w) > 0;
    const long width = padded ? reach(w->outW, w->strideW, w->kW, w->dilationW) : w->inW;
#ifdef PARE_X86
    const int simd = pare_kernels_use_avx2_fma(), wide = pare_kernels_use_avx512();
#endif
    for (long b = 0; b < images; b++) {
        const float *image = in + b * w->inH * w->inW * w->channels;
        if (padded) pad_image(image, w, scratch);
        float *dst = out + b * w->outH * w->outW * cout;
        const float *residual = e->residual ? e->residual + b * w->outH * w->outW * cout : NULL;
        image_job j = {padded ? scratch : image, width, w, kernel, e, cout, dst, residual};
#ifdef PARE_X86
        if (wide) {
            if (depthwise) depthwise_image_avx512(&j);
            else conv_image_avx512(&j);
            continue;
        }
        if (simd) {
            if (depthwise) depthwise_image_avx2(&j);
            else conv_image_avx2(&j);
            continue;
        }
#endif
        image_scalar(&j, depthwise);
    }
}

void pare_conv2d_direct(const float *in, long images, const pare_window *w, const float *kernel, long outChannels,
                        const pare_epilogue *epilogue, float *scratch, float *out) {
    each_image(in, images, w, kernel, outChannels, epilogue, scratch, out, 0);
}

void pare_depthwise2d(const float *in, long images, const pare_window *w, const float *kernel,
                      const pare_epilogue *epilogue, float *scratch, float *out) {
    each_image(in, images, w, kernel, w->channels, epilogue, scratch, out, 1);
}
