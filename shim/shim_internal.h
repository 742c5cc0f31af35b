/* Between trimshim.c (the runtime: modes, the policy engine, statistics) and interpose.c (the
 * functions the shim interposes: the program's blocking waits, where it works while the program
 * has one thread; sigaction and friends, to know when a signal handler runs; pthread_create, to
 * start its thread when the program starts its second one). Not installed, not exported. */
#ifndef TRIMSHIM_INTERNAL_H
#define TRIMSHIM_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#define TS_HIDDEN __attribute__((visibility("hidden")))

/* ---- trimshim.c ---- */

/* 1 while the shim works at the program's idle points (one thread, TRIMSHIM_THREAD=auto). The
 * waits' fast path reads it and nothing else. */
extern _Atomic int ts_idle_on TS_HIDDEN;
/* CLOCK_MONOTONIC time of the next look: a wait entered before it goes straight to the kernel
 * (one clock read). */
extern _Atomic uint64_t ts_idle_due_ns TS_HIDDEN;

/* May the shim work here, in the calling thread, now? Only when the process has one thread (and
 * it is the caller), no signal handler runs (ts_handler_depth), the shim is not already working
 * (a handler inside its work), and it is not exiting. Starts the background thread instead when
 * the process has more than one thread. */
int ts_idle_may_work(void) TS_HIDDEN;

enum ts_idle_step {
    TS_IDLE_REST = 0,      /* wait out the rest in one call: nothing more to do while blocked */
    TS_IDLE_SEGMENT,       /* wait *seg_ns (or less), then call ts_idle_step again */
    TS_IDLE_INTERRUPTED,   /* a handler ran for a signal that came during the work: the wait
                            * returns as interrupted (EINTR), as it would have */
};
/* One look (and a probe or a trim when the policy says so), the program's signals that have
 * handlers blocked meanwhile. deadline_ns: when the program's wait ends (UINT64_MAX: never). */
enum ts_idle_step ts_idle_step(uint64_t deadline_ns, uint64_t *seg_ns) TS_HIDDEN;

/* The wait had an event ready at once: no work; look again after a short while only, so a busy
 * program's ready waits are not each preceded by a second, empty one. */
void ts_idle_event_ready(void) TS_HIDDEN;

/* The program is about to create a thread (pthread_create). */
void ts_program_creates_thread(void) TS_HIDDEN;

/* ---- interpose.c ---- */

uint64_t ts_mono_ns(void) TS_HIDDEN;
/* libc's pthread_create (the shim's own thread must not go through its wrapper) */
int ts_real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg) TS_HIDDEN;
/* Resolves the real functions; wraps handlers installed before the shim's constructor ran. */
void ts_interpose_init(int wrap_handlers) TS_HIDDEN;
/* Signal handlers running now in this process (handler frames the program left with longjmp are
 * dropped when provably gone, see interpose.c). */
int ts_handler_depth(void) TS_HIDDEN;
/* 0 if every installed handler is the shim's trampoline (so ts_handler_depth sees them all); -1
 * if one was installed behind its back (a raw rt_sigaction). *handled: the signals with a
 * handler. */
int ts_sig_scan(sigset_t *handled) TS_HIDDEN;
/* The signals whose handler the shim installed for the program (no syscall). */
void ts_sig_handled_set(sigset_t *set) TS_HIDDEN;

#endif
