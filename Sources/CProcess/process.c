// glibc calls Swift cannot make directly: mallopt's constants are macros, prctl is variadic; and signal
// handlers, which Swift code cannot safely be. One translation unit: the handlers and the functions that
// fill their tables share one copy of each table (a header's static inline functions were emitted once
// per Swift file that called them, each with its own static table).
#include "pare_process.h"

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
/// Keeps freed blocks below 64 MiB in the heap instead of unmapping them, so the activations the
/// interpreter frees are reused without a page fault per page. Larger blocks (a big model's weight
/// tensors, streamed one layer at a time) are mapped and unmapped on their own: kept in the heap they
/// fragment it, and a 2 GiB model of 256 MiB tensors peaked at 3 tensors instead of 2.
void pare_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

/// Asks the kernel to kill this process when its parent dies, so a child is never orphaned; returns
/// 0 when set and the parent is still `parent` (it may have died before the call).
int pare_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == parent ? 0 : -1;
}

/// Temporary files removed if the process is interrupted (SIGINT, SIGTERM, SIGHUP): a handler may only
/// make async-signal-safe calls, so the paths live in a fixed table of C strings.
#define PARE_REMOVE_ON_SIGNAL_SLOTS 64
// volatile: a slot is cleared before its string is freed, in that order, as a handler may read it any time.
static char *volatile *pare_remove_on_signal_table(void) {
    static char *volatile paths[PARE_REMOVE_ON_SIGNAL_SLOTS];
    return paths;
}

static void pare_remove_on_signal_handler(int sig) {
    char *volatile *paths = pare_remove_on_signal_table();
    for (int i = 0; i < PARE_REMOVE_ON_SIGNAL_SLOTS; i++) {
        char *path = paths[i];
        if (path) unlink(path);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/// Installs the handler (once, at start).
void pare_remove_on_signal_install(void) {
    signal(SIGINT, pare_remove_on_signal_handler);
    signal(SIGTERM, pare_remove_on_signal_handler);
    signal(SIGHUP, pare_remove_on_signal_handler);
}

/// The files a command reads, named by the SIGBUS handler (set once before any is mapped).
static char *pare_mapped_inputs_note(void) {
    static char note[1024];
    return note;
}

/// A file mapped for reading that another process truncates faults (SIGBUS) where Pare reads it: one
/// line naming the inputs, the temporary outputs removed, exit status 1, as for any bad input.
static void pare_sigbus_handler(int sig) {
    (void)sig;
    static const char head[] = "pare: error: ";
    static const char tail[] =
        ": the file was truncated or changed while Pare read it (SIGBUS); nothing written\n";
    const char *note = pare_mapped_inputs_note();
    ssize_t ignored = write(2, head, sizeof head - 1);
    ignored = write(2, note, strlen(note));
    ignored = write(2, tail, sizeof tail - 1);
    (void)ignored;
    char *volatile *paths = pare_remove_on_signal_table();
    for (int i = 0; i < PARE_REMOVE_ON_SIGNAL_SLOTS; i++) {
        char *path = paths[i];
        if (path) unlink(path);
    }
    _exit(1);
}

/// Installs the SIGBUS handler and names the inputs it reports (cut to the note's size).
void pare_sigbus_install(const char *inputs) {
    char *note = pare_mapped_inputs_note();
    strncpy(note, inputs, 1023);
    note[1023] = 0;
    signal(SIGBUS, pare_sigbus_handler);
}

/// Adds a path to remove on a signal; returns -1 if the table is full or memory short.
int pare_remove_on_signal_add(const char *path) {
    char *volatile *paths = pare_remove_on_signal_table();
    for (int i = 0; i < PARE_REMOVE_ON_SIGNAL_SLOTS; i++) {
        if (!paths[i]) {
            char *copy = strdup(path);
            if (!copy) return -1;
            paths[i] = copy;
            return 0;
        }
    }
    return -1;
}

/// Forgets a path (removed already, or kept on purpose).
void pare_remove_on_signal_forget(const char *path) {
    char *volatile *paths = pare_remove_on_signal_table();
    for (int i = 0; i < PARE_REMOVE_ON_SIGNAL_SLOTS; i++) {
        char *entry = paths[i];
        if (entry && strcmp(entry, path) == 0) {
            paths[i] = 0;  // cleared before freed: a handler never sees freed memory
            free(entry);
        }
    }
}
#else
void pare_remove_on_signal_install(void) {}
int pare_remove_on_signal_add(const char *path) { (void)path; return 0; }
void pare_remove_on_signal_forget(const char *path) { (void)path; }
void pare_keep_freed_memory(void) {}
int pare_die_with_parent(int parent) { (void)parent; return 0; }
void pare_sigbus_install(const char *inputs) { (void)inputs; }
#endif
