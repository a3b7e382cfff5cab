#ifndef PARE_CPROCESS_SHIM_H
#define PARE_CPROCESS_SHIM_H
// glibc calls Swift cannot make directly: mallopt's constants are macros, prctl is variadic.
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
/// Keeps freed blocks up to 1 GiB in the heap instead of unmapping them, so memory the
/// interpreter frees is reused without a page fault per page.
static inline void pare_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
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
