#ifndef PARE_PROCESS_H
#define PARE_PROCESS_H
// Process-level calls of the command line (process.c has why each is in C).
#include <sys/types.h>

/// Keeps freed blocks below 64 MiB in the heap (see process.c).
void pare_keep_freed_memory(void);
/// Dies with `parent`; 0 when set and the parent is still `parent`.
int pare_die_with_parent(pid_t parent);
/// Installs the handlers that remove temporary files on SIGINT, SIGTERM and SIGHUP (once, at start).
void pare_remove_on_signal_install(void);
/// Adds a path to remove on a signal; -1 if the table is full or memory short.
int pare_remove_on_signal_add(const char *path);
/// Forgets a path (removed already, or kept on purpose).
void pare_remove_on_signal_forget(const char *path);
/// Reports a SIGBUS (an input truncated while mapped) as an error naming `inputs`, removes the
/// temporary files, exits 1.
void pare_sigbus_install(const char *inputs);

#endif
