#ifndef PARE_CPROCESS_SHIM_H
#define PARE_CPROCESS_SHIM_H
// glibc calls Swift cannot make directly: mallopt's constants are macros, prctl is variadic.
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
/// Keeps freed blocks below 64 MiB in the heap instead of unmapping them, so the activations the
/// interpreter frees are reused without a page fault per page. Larger blocks (a big model's weight
/// tensors, streamed one layer at a time) are mapped and unmapped on their own: kept in the heap they
/// fragment it, and a 2 GiB model of 256 MiB tensors peaked at 3 tensors instead of 2.
static inline void pare_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

/// Asks the kernel to kill this process when its parent dies, so a child is never orphaned; returns
/// 0 when set and the parent is still `parent` (it may have died before the call).
static inline int pare_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == parent ? 0 : -1;
}
#else
static inline void pare_keep_freed_memory(void) {}
static inline int pare_die_with_parent(int parent) { (void)parent; return 0; }
#endif
#endif
