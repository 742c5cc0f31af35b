/* libtrimshim: give freed heap memory back to the system (glibc malloc_trim) when a program goes
 * quiet, at a bounded cost while it is busy.
 *
 * Two ways to use it:
 *  - LD_PRELOAD=/path/to/libtrimshim.so program ...   (no code change; configure with TRIMSHIM_*)
 *  - link it (-ltrimshim) and optionally use this API. Linking starts the background trimmer just
 *    as preloading does (TRIMSHIM_POLICY=off to prevent that); trimshim_stop() stops it.
 *
 * All functions are thread-safe. None may be called from a signal handler.
 *
 * The library also interposes the program's blocking waits (nanosleep, poll, epoll_wait, ...),
 * sigaction and friends, and pthread_create, never malloc or free: see interpose.c. */
#ifndef TRIMSHIM_H
#define TRIMSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRIMSHIM_API_VERSION 2

enum trimshim_state {
    TRIMSHIM_RUNNING = 0,   /* the background trimmer runs */
    TRIMSHIM_STOPPED = 1,   /* no background trimmer: trimshim_stop() was called */
    TRIMSHIM_OFF = 2,       /* no background trimmer: TRIMSHIM_POLICY=off */
    TRIMSHIM_NOT_GLIBC = 3, /* standing down: the program's malloc is not glibc's */
    TRIMSHIM_VALGRIND = 4,  /* standing down: running under valgrind */
    TRIMSHIM_FAILED = 5,    /* the background thread could not be created */
    TRIMSHIM_WAITING = 6,   /* not trimming until the program starts a thread: a signal handler
                             * was installed behind the shim's back (a raw rt_sigaction), so its
                             * work at the program's waits could run inside a handler */
};

/* How the shim trims now (API version 2). */
enum trimshim_mode {
    TRIMSHIM_MODE_NONE = 0,   /* not at all (see state) */
    TRIMSHIM_MODE_THREAD = 1, /* from a background thread of its own */
    TRIMSHIM_MODE_IDLE = 2,   /* in the program's only thread, at the blocking waits it enters
                               * (nanosleep, poll, epoll_wait, ...): no thread of its own, so a
                               * single-threaded program keeps glibc malloc's fast paths */
};

struct trimshim_stats {
    uint64_t trims;               /* trims done: background + trimshim_trim_now */
    uint64_t background_trims;    /* of which by the background trimmer */
    uint64_t bytes_returned;      /* sum of the RSS drop across each malloc_trim call */
    uint64_t trim_ns;             /* wall time spent inside malloc_trim, total */
    uint64_t max_trim_ns;         /* the longest single trim */
    uint64_t last_trim_ns;        /* the last trim's duration */
    uint64_t last_bytes_returned; /* the last trim's RSS drop */
    uint64_t futile_trims;        /* background trims judged futile (little back, or taken back) */
    uint64_t wakeups;             /* background observations */
    uint64_t probes;              /* heap probes (mallinfo2), background and after trims */
    uint64_t probe_ns;            /* wall time spent in them */
    uint64_t heap_free_bytes;     /* the last probe: free bytes malloc holds (all arenas) */
    uint64_t heap_used_bytes;     /* the last probe: bytes in use, incl. mmapped chunks */
    uint64_t thread_cpu_ns;       /* CPU time of the background thread so far (its whole cost:
                                   * wake-ups, probes, trims); 0 when none runs */
    int state;                    /* enum trimshim_state */
    int policy;                   /* 0 adaptive, 1 interval, 2 off */
    /* API version 2: filled by trimshim_get_stats2 only */
    int mode;                     /* enum trimshim_mode */
    int pid;                      /* the process these figures are of */
    uint64_t quiet_trims;         /* background trims by why: the program went quiet, */
    uint64_t busy_trims;          /* much freed while it stayed busy, */
    uint64_t interval_trims;      /* the interval policy */
    uint64_t refault_faults;      /* minor faults in the 2 s after background trims beyond what
                                   * the rate of the 2 s before predicts, total */
    uint64_t last_refault_faults; /* the same for the last trim whose window is over */
    uint64_t cpu_ns;              /* the shim's own CPU time, monotonic: its threads' (also the
                                   * ones stopped), and its work at the program's idle points */
    uint64_t idle_looks;          /* looks taken at the program's blocking waits */
};

/* Starts the background trimmer (no-op if it runs). Returns TRIMSHIM_RUNNING (0) or the reason
 * it does not run (TRIMSHIM_OFF, TRIMSHIM_NOT_GLIBC, TRIMSHIM_VALGRIND, TRIMSHIM_FAILED). */
int trimshim_start(void);

/* Stops the background trimmer and joins it; returns once it is gone (if it is inside a trim,
 * after that trim). Statistics are kept. */
void trimshim_stop(void);

/* malloc_trim(pad) now, in the calling thread. Returns the bytes returned, measured as the drop
 * of the resident set across the call (0 if it did not drop). Counted in the statistics. The
 * background trimmer takes it into account (it will not trim again for memory freed before). */
uint64_t trimshim_trim_now(size_t pad);

/* Fills the version-1 fields of *out (up to policy: what a program built against version 1 has
 * room for); the rest is left as it was. A snapshot; counters are monotonic within a process; a
 * forked child starts at 0. */
void trimshim_get_stats(struct trimshim_stats *out);

/* Fills min(size, sizeof(struct trimshim_stats)) bytes of *out: call it with sizeof *out. */
void trimshim_get_stats2(struct trimshim_stats *out, size_t size);

/* The statistics file this process writes (TRIMSHIM_STATS with %p expanded), "" if none. Also
 * readable without calling anything: the exported NUL-terminated array trimshim_stats_file
 * (a debugger's `print trimshim_stats_file`). */
const char *trimshim_stats_path(void);
extern char trimshim_stats_file[1024];

/* "thread", "idle-points", "none". */
const char *trimshim_mode_name(int mode);

/* "running", "stopped", "off", "not-glibc", "valgrind", "failed", "waiting". */
const char *trimshim_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif
