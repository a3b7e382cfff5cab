#ifndef PARE_KERNELS_H
#define PARE_KERNELS_H
// The bitmask codec's word loops (spec/pare-format.md, "bitmask"): packing the nonzero 4-byte
// elements of a tensor and scattering them back. With AVX2 (checked at run time) eight words take
// one compare, one table look-up and one permute; without it, branch-free scalar loops.
#include <stddef.h>
#include <stdint.h>

/// Sets bit j of `mask` ((n + 7) / 8 bytes, padding bits clear) when word j of `words` is nonzero;
/// returns how many are.
size_t pare_mask_words(const uint32_t *words, size_t n, uint8_t *mask);

/// Copies the nonzero words of `words`, in order, to `packed`, which has room for `capacity` words
/// (the nonzero count plus 8: whole 8-word stores may write past the last value). Never writes past
/// it: words that change between the mask's pass and this one (a file another process rewrites while
/// it is mapped) only make the count returned differ from the mask's. Returns the nonzero count seen.
size_t pare_pack_words(const uint32_t *words, size_t n, uint32_t *packed, size_t capacity);

/// Writes `n` words to `out`: word j is the next of the `count` packed values where bit j of `mask`
/// is set, else zero. Never reads past `packed[count - 1]`, whatever the mask (an excess of set bits
/// repeats the last value; the caller checks the mask's count first). Returns the values consumed.
size_t pare_scatter_words(const uint8_t *mask, const uint32_t *packed, size_t count, size_t n, uint32_t *out);

/// Tests run every path: 0 forces the scalar loops, 1 allows AVX2 only, 2 (the default) AVX-512 too.
/// Returns the highest level this CPU has (0 without AVX2; 1 with AVX2, though the convolution kernels'
/// AVX2 paths also need FMA and run scalar without it; 2 with AVX-512F and FMA as well). Not thread-safe with calls running; for tests
/// only.
int pare_kernels_allow_simd(int allowed);

/// The SIMD level the kernels use now: 0 scalar, 1 AVX2 with FMA, 2 AVX-512 as well.
int pare_kernels_simd_level(void);

#endif
