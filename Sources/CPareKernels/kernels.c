#include "pare_kernels.h"
#include "simd_choice.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define PARE_X86 1
#endif

// For each mask byte: the lanes of its set bits in order (pack), and for each lane the index of its
// value among the set bits before it (scatter). Built once; 16 KiB.
static uint32_t pack_lanes[256][8];
static uint32_t scatter_lanes[256][8];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
// Whether the CPU has AVX2 and AVX-512 (set with the tables), and the highest level tests allow (2: all).
static int cpu_has_avx2, cpu_has_fma, cpu_has_avx512;
static _Atomic int simd_allowed = 2;

static void build_tables(void) {
#ifdef PARE_X86
    cpu_has_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    cpu_has_fma = __builtin_cpu_supports("fma") ? 1 : 0;
    // The compiler's runtime also checks that the OS saves the 512-bit registers.
    cpu_has_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
#endif
    for (int m = 0; m < 256; m++) {
        int k = 0;
        for (int j = 0; j < 8; j++) {
            scatter_lanes[m][j] = (uint32_t)k;
            if (m & (1 << j)) pack_lanes[m][k++] = (uint32_t)j;
        }
        for (; k < 8; k++) pack_lanes[m][k] = 0;
    }
}

int pare_kernels_use_avx2_fma(void) {
    pthread_once(&tables_once, build_tables);
    return cpu_has_avx2 && cpu_has_fma && simd_allowed >= 1;
}

int pare_kernels_use_avx512(void) {
    pthread_once(&tables_once, build_tables);
    return cpu_has_avx512 && cpu_has_avx2 && cpu_has_fma && simd_allowed >= 2;
}

int pare_kernels_simd_level(void) { return pare_kernels_use_avx512() ? 2 : pare_kernels_use_avx2_fma() ? 1 : 0; }

#ifdef PARE_X86
static int have_avx2(void) { return cpu_has_avx2 && simd_allowed >= 1; }

__attribute__((target("avx2"))) static size_t mask_avx2(const uint32_t *w, size_t n, uint8_t *mask) {
    size_t nonzero = 0, byte = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (; (byte + 1) * 8 <= n; byte++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(w + byte * 8));
        unsigned zeros = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, zero)));
        uint8_t bits = (uint8_t)~zeros;
        mask[byte] = bits;
        nonzero += (size_t)__builtin_popcount(bits);
    }
    return nonzero;
}

__attribute__((target("avx2"))) static size_t pack_avx2(const uint32_t *w, size_t n, uint32_t *out, size_t cap,
                                                          size_t *done) {
    size_t k = 0, i = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 8 <= n && k + 8 <= cap; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(w + i));
        unsigned zeros = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, zero)));
        unsigned bits = ~zeros & 0xFF;
        __m256i lanes = _mm256_loadu_si256((const __m256i *)pack_lanes[bits]);
        _mm256_storeu_si256((__m256i *)(out + k), _mm256_permutevar8x32_epi32(v, lanes));
        k += (size_t)__builtin_popcount(bits);
    }
    *done = i;
    return k;
}

__attribute__((target("avx2"))) static size_t scatter_avx2(
    const uint8_t *mask, const uint32_t *packed, size_t count, size_t n, uint32_t *out, size_t *done) {
    size_t k = 0, byte = 0;
    const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    // Whole bytes while eight values are left to load (a load never passes the values' end).
    for (; (byte + 1) * 8 <= n && k + 8 <= count; byte++) {
        unsigned bits = mask[byte];
        __m256i v = _mm256_loadu_si256((const __m256i *)(packed + k));
        __m256i spread = _mm256_permutevar8x32_epi32(v, _mm256_loadu_si256((const __m256i *)scatter_lanes[bits]));
        __m256i keep = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), lane_bits), lane_bits);
        _mm256_storeu_si256((__m256i *)(out + byte * 8), _mm256_and_si256(spread, keep));
        k += (size_t)__builtin_popcount(bits);
    }
    *done = byte * 8;
    return k;
}
#endif

int pare_kernels_allow_simd(int allowed) {
    pthread_once(&tables_once, build_tables);
#ifdef PARE_X86
    simd_allowed = allowed;
    if (!cpu_has_avx2) return 0;
    return cpu_has_fma && cpu_has_avx512 ? 2 : 1;
#else
    (void)allowed;
    return 0;
#endif
}

size_t pare_mask_words(const uint32_t *words, size_t n, uint8_t *mask) {
    pthread_once(&tables_once, build_tables);
    size_t nonzero = 0, start = 0;
    if (n == 0) return 0;
#ifdef PARE_X86
    if (have_avx2()) {
        nonzero = mask_avx2(words, n, mask);
        start = n / 8 * 8;
    }
#endif
    memset(mask + start / 8, 0, (n + 7) / 8 - start / 8);
    for (size_t j = start; j < n; j++) {
        unsigned bit = words[j] != 0;
        mask[j >> 3] |= (uint8_t)(bit << (j & 7));
        nonzero += bit;
    }
    return nonzero;
}

size_t pare_pack_words(const uint32_t *words, size_t n, uint32_t *packed, size_t capacity) {
    pthread_once(&tables_once, build_tables);
    size_t k = 0, i = 0;
#ifdef PARE_X86
    if (have_avx2()) k = pack_avx2(words, n, packed, capacity, &i);
#endif
    // Every word is stored at the next free slot, which advances past nonzero words only. The slot is
    // clamped to the buffer's last word, past every value of a consistent count (capacity is the count
    // plus 8); a larger count is returned, not written.
    if (capacity == 0) return 0;
    size_t last = capacity - 1;
    for (; i < n; i++) {
        uint32_t word = words[i];
        packed[k < last ? k : last] = word;
        k += word != 0;
    }
    return k;
}

size_t pare_scatter_words(const uint8_t *mask, const uint32_t *packed, size_t count, size_t n, uint32_t *out) {
    pthread_once(&tables_once, build_tables);
    size_t k = 0, j = 0;
#ifdef PARE_X86
    if (have_avx2()) k = scatter_avx2(mask, packed, count, n, out, &j);
#endif
    // The rest element by element; the index is clamped so a set bit beyond the values reads the last one.
    size_t last = count == 0 ? 0 : count - 1;
    for (; j < n; j++) {
        uint32_t bit = (mask[j >> 3] >> (j & 7)) & 1u;
        uint32_t word = count == 0 ? 0 : packed[k < last ? k : last];
        out[j] = word & (0u - bit);
        k += bit;
    }
    return k;
}
