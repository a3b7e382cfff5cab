#ifndef PARE_COPENBLAS_SHIM_H
#define PARE_COPENBLAS_SHIM_H
// OpenBLAS from Debian's libopenblas-dev (pkg-config openblas): CBLAS (sgemm, ssyrk, dger), and the
// LAPACK routines OpenBLAS exports for the least-squares refit and SparseGPT (no LAPACKE header for
// it; these are the Fortran symbols, 32-bit integers as Debian's LP64 build takes them).
#include <cblas.h>

void dpotrf_(char *uplo, int *n, double *a, int *lda, int *info);
void dpotrs_(char *uplo, int *n, int *nrhs, double *a, int *lda, double *b, int *ldb, int *info);
void dpotri_(char *uplo, int *n, double *a, int *lda, int *info);
#endif
