#ifndef PARE_CMALLOC_SHIM_H
#define PARE_CMALLOC_SHIM_H
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
/// Keeps freed blocks up to 1 GiB in the heap instead of unmapping them, so memory the
/// interpreter frees is reused without a page fault per page.
static inline void pare_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
static inline void pare_keep_freed_memory(void) {}
#endif
#endif
