#ifndef PARE_SIMD_CHOICE_H
#define PARE_SIMD_CHOICE_H
// Shared by the kernel files: whether the AVX2 paths with fused multiply-adds may run (the CPU has both
// and tests have not forced the scalar loops with pare_kernels_allow_simd(0)), and whether the AVX-512
// ones may (AVX-512F as well, and tests allow level 2).
int pare_kernels_use_avx2_fma(void);
int pare_kernels_use_avx512(void);
#endif
