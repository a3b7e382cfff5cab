#ifndef PARE_POOLING_H
#define PARE_POOLING_H
// Max pooling on NHWC images for the interpreter (average pooling stays in Swift).
#include "pare_convolution.h"

/// MaxPooling2D over `images` images: each output value is the largest of its window's values inside the
/// image (padding is ignored, as in TensorFlow's "same" pooling), or NaN (0x7fc00000) when any of them is
/// NaN; a window with no value inside the image gives −infinity. The AVX-512 and AVX2 paths (chosen at run
/// time) and the scalar path give the same bits. Output pixels are `outStride` values apart (≥ the channels: a
/// slice of the channels of a wider tensor, as when pooling the parts of a Concatenate into its result).
void pare_max_pool2d(const float *in, long images, const pare_window *w, float *out, long outStride);

#endif
