#ifndef PARE_CONVOLUTION_H
#define PARE_CONVOLUTION_H
// Direct 2-D convolutions on NHWC images for the interpreter: depthwise convolutions, and Conv2D where
// im2col and a GEMM waste their effort (few input values per output or few output channels; with AVX-512,
// any kernel whose slice for 32 output channels fits in L2: ConvolutionKernels.runsDirectly). Each output
// value sums all of its window's taps in the order named below, starting from zero, with one fused
// multiply-add per tap (taps over the padding multiply zeros, as TensorFlow's padded convolutions do),
// then applies the epilogue: the AVX-512 and AVX2 paths (chosen at run time) and the scalar path (fmaf)
// give the same bits — except which NaN comes out where NaNs of different signs or payloads meet (an
// FMA's choice among its NaN operands differs between the vector instructions and fmaf).
#include <stddef.h>

/// The geometry of one window operation (Window2D on the Swift side); padding is the rows and columns
/// before the first input row and column.
typedef struct {
    long inH, inW, channels;
    long outH, outW;
    long kH, kW;
    long strideH, strideW;
    long dilationH, dilationW;
    long padTop, padLeft;
} pare_window;

/// What happens to each sum before it is stored, in this order: `+ bias[o]`; ReLU when `reluFirst` (the
/// convolution's own activation); `· scale[o] + shift[o]` (a multiply, then an add: a BatchNormalization
/// that follows); `+ residual[i]` (an Add of another tensor of the output's shape, value i the one stored
/// at the same place; `residual[i] + x` when `residualFirst`, the Add's order, which decides which NaN's
/// payload a sum of two NaNs keeps); ReLU when `relu`. ReLU is `x < 0 ? 0 : x` (NaN kept). NULL pointers and zero flags
/// leave their step out; scale and shift go together.
typedef struct {
    const float *bias;
    int reluFirst;
    const float *scale, *shift;
    const float *residual;
    int residualFirst;
    int relu;
} pare_epilogue;

/// Floats of scratch one call of the kernels below needs per thread: one image copied with the zeros its
/// windows reach around it; 0 when every window stays inside the image (scratch may then be NULL).
long pare_window_padded_floats(const pare_window *w);

/// Conv2D without groups over `images` images: kernel (kH, kW, channels, outChannels); taps summed in
/// (kh, kw, c) order; the epilogue's arrays hold outChannels values.
void pare_conv2d_direct(const float *in, long images, const pare_window *w, const float *kernel, long outChannels,
                        const pare_epilogue *epilogue, float *scratch, float *out);

/// DepthwiseConv2D with depth multiplier 1: kernel (kH, kW, channels); taps summed in (kh, kw) order;
/// the epilogue's arrays hold `channels` values.
void pare_depthwise2d(const float *in, long images, const pare_window *w, const float *kernel,
                      const pare_epilogue *epilogue, float *scratch, float *out);

#endif
