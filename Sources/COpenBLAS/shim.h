#ifndef PARE_COPENBLAS_SHIM_H
#define PARE_COPENBLAS_SHIM_H
// OpenBLAS from Debian's libopenblas-dev (pkg-config openblas); only cblas_sgemm is used.
#include <cblas.h>
#endif
