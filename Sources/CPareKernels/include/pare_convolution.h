#ifndef PARE_CONVOLUTION_H
#define PARE_CONVOLUTION_H
// Direct 2-D convolutions on NHWC images for the interpreter, where im2col and a GEMM waste their
// effort: kernels over few input values per output (a first layer's one or three channels) and
// depthwise convolutions. Each output value sums its taps that fall inside the image, in the order
// named below, starting from zero, with one fused multiply-add per tap, then adds its bias: the AVX2
// path (chosen at run time) and the scalar path (fmaf) give the same bits.
#include <stddef.h>

/// The geometry of one window operation (Window2D on the Swift side); padding is the rows and columns
/// before the first input row and column, taps falling outside the image are skipped.
typedef struct {
    long inH, inW, channels;
    long outH, outW;
    long kH, kW;
    long strideH, strideW;
    long dilationH, dilationW;
    long padTop, padLeft;
} pare_window;

/// Conv2D without groups over `images` images: kernel (kH, kW, channels, outChannels); taps summed in
/// (kh, kw, c) order; `bias` (outChannels values) may be NULL.
void pare_conv2d_direct(const float *in, long images, const pare_window *w, const float *kernel, long outChannels,
                        const float *bias, float *out);

/// DepthwiseConv2D with depth multiplier 1: kernel (kH, kW, channels); taps summed in (kh, kw) order;
/// `bias` (channels values) may be NULL.
void pare_depthwise2d(const float *in, long images, const pare_window *w, const float *kernel, const float *bias,
                      float *out);

#endif
