#ifndef PARE_ROWS_H
#define PARE_ROWS_H
// Moving rows of floats between strided layouts (Concatenate's interleaving of channels), where a
// memcpy call per row of a few dozen bytes costs more than the copy.

/// Copies `rows` rows of `count` floats: row r from `src + r·srcStride` to `dst + r·dstStride`. The
/// source and destination rows must not overlap.
void pare_copy_rows(const float *src, long srcStride, float *dst, long dstStride, long rows, long count);

#endif
