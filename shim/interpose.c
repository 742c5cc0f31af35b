/* What libtrimshim interposes, and why it is safe.
 *
 * A second thread moves glibc malloc off its single-thread fast paths for the rest of the
 * process's life (SINGLE_THREAD_P: no arena lock, plain instead of atomic free-list updates);
 * measured here, paired runs of a single-threaded loop of small malloc/free: +7-10 % for a thread
 * that only sleeps. So while the program has one thread the shim has none: it does its looks,
 * probes and trims in the program's own thread, at the blocking waits it enters (nanosleep,
 * clock_nanosleep, sleep, usleep, poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
 * epoll_pwait2, pause, sigsuspend, sigtimedwait, sigwaitinfo). When the program creates a second
 * thread, glibc is on its multi-thread paths anyway, and the shim starts its background thread
 * as before (trimshim.c).
 *
 * Fast path: a wait reads ts_idle_on, then the clock (vDSO) against ts_idle_due_ns, and calls
 * the real function. Nothing else; malloc and free are not wrapped at all.
 *
 * Safety argument (single-threaded program):
 *  1. malloc_trim and mallinfo2 are run only from a wait the program itself entered, so the
 *     program's thread is not inside malloc there, except when a signal handler interrupted
 *     malloc and calls the wait. glibc takes no lock in a single-threaded process, so the heap
 *     may be mid-update then: the shim must not touch it. Every handler the program installs
 *     (sigaction, signal, sysv_signal, bsd_signal, sigset) is run through a trampoline that
 *     counts running handlers; the shim works only when that count is 0. sigaction's old action
 *     gives back the program's own handler, never the trampoline.
 *  2. Handlers installed before the shim's constructor ran (another library's constructor) are
 *     wrapped by the constructor. A handler installed with a raw rt_sigaction syscall cannot be
 *     seen when installed: before every probe or trim the shim reads every signal's action
 *     (ts_sig_scan, ~60 syscalls, ~10 us) and, on finding one that is not its trampoline, never
 *     works at an idle point again in this process (it cannot know whether that handler runs
 *     now; starting its thread then would not help either, since a malloc interrupted in
 *     single-thread mode holds no lock). It trims again only from a thread the program's own
 *     second thread lets it start (pthread_create, called outside any handler).
 *  3. A handler left with longjmp never decrements the count: the shim then does nothing (the
 *     safe direction) until it can prove the handler gone: the trampoline records its frame
 *     address; a wait entered from a frame above it on the same stack (a higher address, within
 *     1 MiB) cannot be running inside that handler, so the record is dropped. Handlers that run
 *     on an alternate stack (SA_ONSTACK) are never dropped that way.
 *  4. During its work the shim blocks the signals that have handlers (sigprocmask), so no
 *     handler runs inside malloc_trim or mallinfo2 (a handler calling malloc, not async-signal-
 *     safe but common, would corrupt the heap there); a signal that came meanwhile is taken
 *     when the mask is restored, and the wait then returns EINTR at once, as it would have.
 *  5. The thread that works is the process's only thread: glibc's __libc_single_threaded is
 *     checked, and gettid() == getpid() (a thread made with a raw clone() is not the main one).
 *     A forked child inherits this state and continues it; exec starts afresh.
 *
 * Waits (what the program sees):
 *  - A wait whose event is already there returns it at once: the shim first calls it with a
 *    zero timeout (multiplexers, sigtimedwait; a sleep has no event) and does no work if it
 *    reports anything.
 *  - Otherwise the shim looks (and probes or trims if the policy says so), then waits, in pieces
 *    until the next look is due as long as the policy still has something to do, then the rest
 *    in one call. A piece that reports an event, a signal or an error returns it as the whole
 *    wait would have. A handler that runs between two pieces (in the shim's own code) ends the
 *    wait as interrupted too. The total timeout is the program's: an event that comes during a probe or
 *    a trim waits for it, as a multi-threaded program's malloc waits for a trim's arena lock.
 *  - The cost of that work is the policy's: quiet trims within 10 % of wall time, probes 1 %.
 */
#define _GNU_SOURCE
#include "shim_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

uint64_t ts_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */
/* the real functions */

typedef void (*sighandler_fn)(int);
typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_fn (*signal_fn)(int, sighandler_fn);
typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef unsigned (*sleep_fn)(unsigned);
typedef int (*usleep_fn)(useconds_t);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*poll_chk_fn)(struct pollfd *, nfds_t, int, size_t);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
typedef int (*ppoll_chk_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *,
                            size_t);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                          const sigset_t *);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int, const struct timespec *,
                               const sigset_t *);
typedef int (*pause_fn)(void);
typedef int (*sigsuspend_fn)(const sigset_t *);
typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);
typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);
typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static struct {
    sigaction_fn sigaction_, sigaction2_;
    signal_fn signal_, bsd_signal_, sysv_signal_, sysv_signal2_, sigset_;
    nanosleep_fn nanosleep_;
    clock_nanosleep_fn clock_nanosleep_;
    sleep_fn sleep_;
    usleep_fn usleep_;
    poll_fn poll_;
    poll_chk_fn poll_chk_;
    ppoll_fn ppoll_;
    ppoll_chk_fn ppoll_chk_;
    select_fn select_;
    pselect_fn pselect_;
    epoll_wait_fn epoll_wait_;
    epoll_pwait_fn epoll_pwait_;
    epoll_pwait2_fn epoll_pwait2_;
    pause_fn pause_;
    sigsuspend_fn sigsuspend_;
    sigtimedwait_fn sigtimedwait_;
    sigwaitinfo_fn sigwaitinfo_;
    pthread_create_fn pthread_create_;
} R;

/* Resolved in the constructor; a call that comes earlier (another library's constructor)
 * resolves it there, outside any handler. */
#define REAL(field, name)                                                                        \
    (R.field ? R.field : (R.field = (__typeof__(R.field))dlsym(RTLD_NEXT, name)))

static void resolve_all(void)
{
    REAL(sigaction_, "sigaction");
    REAL(sigaction2_, "__sigaction");
    REAL(signal_, "signal");
    REAL(bsd_signal_, "bsd_signal");
    REAL(sysv_signal_, "sysv_signal");
    REAL(sysv_signal2_, "__sysv_signal");
    REAL(sigset_, "sigset");
    REAL(nanosleep_, "nanosleep");
    REAL(clock_nanosleep_, "clock_nanosleep");
    REAL(sleep_, "sleep");
    REAL(usleep_, "usleep");
    REAL(poll_, "poll");
    REAL(poll_chk_, "__poll_chk");
    REAL(ppoll_, "ppoll");
    REAL(ppoll_chk_, "__ppoll_chk");
    REAL(select_, "select");
    REAL(pselect_, "pselect");
    REAL(epoll_wait_, "epoll_wait");
    REAL(epoll_pwait_, "epoll_pwait");
    REAL(epoll_pwait2_, "epoll_pwait2");
    REAL(pause_, "pause");
    REAL(sigsuspend_, "sigsuspend");
    REAL(sigtimedwait_, "sigtimedwait");
    REAL(sigwaitinfo_, "sigwaitinfo");
    REAL(pthread_create_, "pthread_create");
}

int ts_real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                           void *arg)
{
    pthread_create_fn f = REAL(pthread_create_, "pthread_create");
    return f ? f(t, attr, fn, arg) : EAGAIN;
}

/* ------------------------------------------------------------------------------------------ */
/* signal handlers: trampolines that count running handlers */

#define TS_NSIG 65           /* signals 1..64 */
#define TS_FRAMES 64         /* nested handler frames remembered (deeper ones are only counted) */
#define TS_POP_SPAN (1u << 20) /* a frame this far above a handler's is on the same stack */

struct slot {
    _Atomic(sighandler_fn) plain;
    _Atomic(void (*)(int, siginfo_t *, void *)) info;
    _Atomic int onstack; /* SA_ONSTACK: the handler may run on another stack */
};
static struct slot g_slot[TS_NSIG];
static _Atomic uint64_t g_handled; /* bit sig-1: the shim installed a trampoline for sig */
static _Atomic int g_wrap;         /* wrap handlers the program installs */
static _Atomic int g_depth;        /* handlers running now (all threads) */
static _Atomic uintptr_t g_frame[TS_FRAMES];
static _Atomic int g_frame_alt[TS_FRAMES];
static _Atomic unsigned long g_handler_runs; /* handlers entered so far */

static void enter_handler(int sig, uintptr_t frame)
{
    atomic_fetch_add(&g_handler_runs, 1);
    int d = atomic_fetch_add(&g_depth, 1);
    if (d >= 0 && d < TS_FRAMES) {
        atomic_store(&g_frame[d], frame);
        atomic_store(&g_frame_alt[d], atomic_load(&g_slot[sig].onstack));
    }
}

static void leave_handler(void)
{
    int d = atomic_load(&g_depth);
    /* never below 0: a frame dropped as gone (see ts_handler_depth) that did return after all
     * would otherwise take the count below the handlers that run */
    while (d > 0 && !atomic_compare_exchange_weak(&g_depth, &d, d - 1))
        ;
}

static void tramp_plain(int sig)
{
    enter_handler(sig, (uintptr_t)__builtin_frame_address(0));
    sighandler_fn f = sig > 0 && sig < TS_NSIG ? atomic_load(&g_slot[sig].plain) : NULL;
    if (f && f != SIG_DFL && f != SIG_IGN)
        f(sig);
    leave_handler();
}

static void tramp_info(int sig, siginfo_t *si, void *uc)
{
    enter_handler(sig, (uintptr_t)__builtin_frame_address(0));
    void (*f)(int, siginfo_t *, void *) =
        sig > 0 && sig < TS_NSIG ? atomic_load(&g_slot[sig].info) : NULL;
    if (f)
        f(sig, si, uc);
    leave_handler();
}

int ts_handler_depth(void)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    int d = atomic_load(&g_depth);
    while (d > 0 && d <= TS_FRAMES) {
        uintptr_t f = atomic_load(&g_frame[d - 1]);
        /* The stack grows down: code running inside a handler has its frames below the
         * trampoline's. A frame above it, on the same stack, means the handler is gone (it was
         * left with longjmp). */
        if (atomic_load(&g_frame_alt[d - 1]) || !(here > f && here - f <= TS_POP_SPAN))
            break;
        if (atomic_compare_exchange_strong(&g_depth, &d, d - 1))
            d--;
    }
    return d;
}

static int is_fn(const void *h)
{
    return h != (void *)SIG_DFL && h != (void *)SIG_IGN && h != (void *)SIG_ERR &&
           h != (void *)SIG_HOLD;
}

/* the program's view of an action the kernel holds */
static void unwrap(struct sigaction *old, int sig, const struct slot *snap)
{
    if (!old || sig <= 0 || sig >= TS_NSIG)
        return;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction == tramp_info)
            old->sa_sigaction = atomic_load(&snap->info);
    } else if (old->sa_handler == tramp_plain) {
        old->sa_handler = atomic_load(&snap->plain);
    }
}

static sighandler_fn unwrap_handler(sighandler_fn h, int sig, const struct slot *snap)
{
    if (sig <= 0 || sig >= TS_NSIG)
        return h;
    if (h == tramp_plain)
        return atomic_load(&snap->plain);
    if (h == (sighandler_fn)(void *)tramp_info) /* sigaction(SA_SIGINFO) then signal(): glibc
                                                   returns sa_handler, the same pointer */
        return (sighandler_fn)(void *)atomic_load(&snap->info);
    return h;
}

static void snapshot(int sig, struct slot *snap)
{
    atomic_store(&snap->plain, atomic_load(&g_slot[sig].plain));
    atomic_store(&snap->info, atomic_load(&g_slot[sig].info));
    atomic_store(&snap->onstack, atomic_load(&g_slot[sig].onstack));
}

static void restore(int sig, const struct slot *snap)
{
    atomic_store(&g_slot[sig].plain, atomic_load(&snap->plain));
    atomic_store(&g_slot[sig].info, atomic_load(&snap->info));
    atomic_store(&g_slot[sig].onstack, atomic_load(&snap->onstack));
}

static void mark(int sig, int wrapped)
{
    uint64_t bit = 1ull << (sig - 1);
    if (wrapped)
        atomic_fetch_or(&g_handled, bit);
    else
        atomic_fetch_and(&g_handled, ~bit);
}

static int do_sigaction(sigaction_fn real, int sig, const struct sigaction *act,
                        struct sigaction *old)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    struct slot snap;
    int in_range = sig > 0 && sig < TS_NSIG;
    if (in_range)
        snapshot(sig, &snap);
    if (!act || !in_range || !atomic_load(&g_wrap)) {
        int r = real(sig, act, old);
        if (r == 0 && in_range) {
            unwrap(old, sig, &snap);
            if (act)
                mark(sig, 0);
        }
        return r;
    }
    struct sigaction a = *act;
    int fn;
    if (a.sa_flags & SA_SIGINFO) {
        fn = is_fn((void *)a.sa_sigaction);
        if (fn) {
            atomic_store(&g_slot[sig].info, a.sa_sigaction);
            a.sa_sigaction = tramp_info;
        }
    } else {
        fn = is_fn((void *)a.sa_handler);
        if (fn) {
            atomic_store(&g_slot[sig].plain, a.sa_handler);
            a.sa_handler = tramp_plain;
        }
    }
    if (fn)
        atomic_store(&g_slot[sig].onstack, (a.sa_flags & SA_ONSTACK) != 0);
    int r = real(sig, &a, old);
    if (r != 0) {
        restore(sig, &snap);
        return r;
    }
    unwrap(old, sig, &snap);
    mark(sig, fn);
    return 0;
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return do_sigaction(REAL(sigaction_, "sigaction"), sig, act, old);
}

EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    sigaction_fn f = REAL(sigaction2_, "__sigaction");
    return do_sigaction(f ? f : REAL(sigaction_, "sigaction"), sig, act, old);
}

/* signal() and friends keep their own flag rules (SA_RESTART or not, SA_RESETHAND, siginterrupt):
 * the real one is called with the trampoline. */
static sighandler_fn do_signal(signal_fn real, int sig, sighandler_fn h)
{
    if (!real) {
        errno = ENOSYS;
        return SIG_ERR;
    }
    int in_range = sig > 0 && sig < TS_NSIG;
    struct slot snap;
    if (!in_range)
        return real(sig, h);
    snapshot(sig, &snap);
    int fn = is_fn((void *)h) && atomic_load(&g_wrap);
    if (fn) {
        atomic_store(&g_slot[sig].plain, h);
        atomic_store(&g_slot[sig].onstack, 0);
    }
    sighandler_fn old = real(sig, fn ? tramp_plain : h);
    if (old == SIG_ERR) {
        restore(sig, &snap);
        return old;
    }
    mark(sig, fn);
    return unwrap_handler(old, sig, &snap);
}

EXPORT sighandler_fn signal(int sig, sighandler_fn h)
{
    return do_signal(REAL(signal_, "signal"), sig, h);
}
EXPORT sighandler_fn bsd_signal(int sig, sighandler_fn h)
{
    return do_signal(REAL(bsd_signal_, "bsd_signal"), sig, h);
}
EXPORT sighandler_fn sysv_signal(int sig, sighandler_fn h)
{
    return do_signal(REAL(sysv_signal_, "sysv_signal"), sig, h);
}
/* what signal() calls in a strict ISO C program (glibc's <signal.h> redirects it) */
EXPORT sighandler_fn __sysv_signal(int sig, sighandler_fn h)
{
    return do_signal(REAL(sysv_signal2_, "__sysv_signal"), sig, h);
}
EXPORT sighandler_fn sigset(int sig, sighandler_fn h)
{
    /* SIG_HOLD (not a handler) and the others go through unchanged */
    return do_signal(REAL(sigset_, "sigset"), sig, h);
}

static int scan_one(int sig, sigset_t *handled)
{
    struct sigaction o;
    if (R.sigaction_(sig, NULL, &o) != 0)
        return 0; /* glibc's own (32, 33) or none */
    void *h = (o.sa_flags & SA_SIGINFO) ? (void *)o.sa_sigaction : (void *)o.sa_handler;
    if (!is_fn(h))
        return 0;
    if (h != (void *)tramp_plain && h != (void *)tramp_info)
        return -1;
    sigaddset(handled, sig);
    return 0;
}

int ts_sig_scan(sigset_t *handled)
{
    sigemptyset(handled);
    if (!REAL(sigaction_, "sigaction"))
        return -1;
    for (int sig = 1; sig < TS_NSIG && sig <= SIGRTMAX; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && scan_one(sig, handled) != 0)
            return -1;
    return 0;
}

void ts_sig_handled_set(sigset_t *set)
{
    uint64_t bits = atomic_load(&g_handled);
    sigemptyset(set);
    for (int sig = 1; sig < TS_NSIG; sig++)
        if (bits & (1ull << (sig - 1)))
            sigaddset(set, sig);
}

/* Handlers installed before the constructor (another library's): run them through the
 * trampoline too, with their own flags and mask. */
static void wrap_existing(void)
{
    for (int sig = 1; sig < TS_NSIG && sig <= SIGRTMAX; sig++) {
        struct sigaction o;
        if (sig == SIGKILL || sig == SIGSTOP || R.sigaction_(sig, NULL, &o) != 0)
            continue;
        void *h = (o.sa_flags & SA_SIGINFO) ? (void *)o.sa_sigaction : (void *)o.sa_handler;
        if (!is_fn(h) || h == (void *)tramp_plain || h == (void *)tramp_info)
            continue;
        do_sigaction(R.sigaction_, sig, &o, NULL);
    }
}

void ts_interpose_init(int wrap_handlers)
{
    resolve_all();
    if (wrap_handlers) {
        atomic_store(&g_wrap, 1);
        wrap_existing();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* waits */

#define NS_INF UINT64_MAX

static int idle_due(void)
{
    if (!atomic_load_explicit(&ts_idle_on, memory_order_relaxed))
        return 0;
    return ts_mono_ns() >= atomic_load_explicit(&ts_idle_due_ns, memory_order_relaxed);
}

static uint64_t ts_ns(const struct timespec *t)
{
    if (t->tv_sec < 0)
        return 0;
    if ((uint64_t)t->tv_sec >= NS_INF / 1000000000ull - 1)
        return NS_INF - 1;
    return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    return t;
}

static int valid_ts(const struct timespec *t)
{
    return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

static uint64_t deadline_after(uint64_t ns)
{
    uint64_t now = ts_mono_ns();
    return ns >= NS_INF - now ? NS_INF - 1 : now + ns;
}

static uint64_t left(uint64_t deadline)
{
    if (deadline == NS_INF)
        return NS_INF;
    uint64_t now = ts_mono_ns();
    return deadline > now ? deadline - now : 0;
}

/* milliseconds for poll/epoll, rounded up (never return before the program's timeout) */
static int ms_of(uint64_t ns)
{
    if (ns == NS_INF)
        return -1;
    uint64_t ms = (ns + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static unsigned long handler_runs(void) { return atomic_load(&g_handler_runs); }

/* One step for a wait with this deadline: *wait_ns gets how long to wait now (NS_INF: for
 * ever); returns 0 to wait and then step again (a look follows, also when that wait reaches the
 * deadline), 1 to wait and then return, -1 interrupted. runs0: handler_runs() when the wait was
 * entered. A handler that ran while the shim's own code ran (between two pieces, or before its
 * work blocked the signals) would have interrupted the program's single wait: the wait returns
 * interrupted, not asleep for the rest. What is left is the few instructions from this check to
 * the kernel, as short as the program's own window before its syscall. */
static int step(uint64_t deadline, uint64_t *wait_ns, unsigned long runs0)
{
    uint64_t seg;
    int saved = errno;
    enum ts_idle_step s = ts_idle_step(deadline, &seg);
    errno = saved;
    if (s == TS_IDLE_INTERRUPTED || handler_runs() != runs0)
        return -1;
    uint64_t rest = left(deadline);
    *wait_ns = rest;
    if (s == TS_IDLE_REST || rest == 0)
        return 1;
    if (seg < rest) {
        *wait_ns = seg;
        return 0;
    }
    /* The next look falls at or after the wait's end. A wait that still blocks for at least
     * 90 % of that time is a window in which the program uses (almost) no CPU, what the thread
     * calls quiet: look at its end. A program that sleeps 100 ms between 30 ms of work never has
     * a quiet window from one wait's start to the next (its work is in each), but the thread,
     * whose 100 ms windows fall anywhere, sees one inside a sleep within a few looks. */
    return rest * 10 >= seg * 9 ? 0 : 1;
}

/* A timespec timeout the shim leaves alone: malformed (the real call reports EINVAL) or zero
 * (a look, nothing to wait in). */
static int ts_passes(const struct timespec *tmo)
{
    return tmo && (!valid_ts(tmo) || (tmo->tv_sec == 0 && tmo->tv_nsec == 0));
}

static int may_work(void) { return idle_due() && ts_idle_may_work(); }

/* ---- sleeps ---- */

static int sleep_ns(uint64_t req_ns, struct timespec *rem)
{
    const unsigned long runs0 = handler_runs();
    nanosleep_fn real = REAL(nanosleep_, "nanosleep");
    uint64_t deadline = deadline_after(req_ns);
    for (;;) {
        uint64_t w;
        int last = step(deadline, &w, runs0);
        if (last < 0) {
            if (rem)
                *rem = ns_ts(left(deadline));
            errno = EINTR;
            return -1;
        }
        if (w == 0)
            return 0;
        struct timespec ts = ns_ts(w), r;
        if (real(&ts, &r) != 0) {
            if (errno == EINTR && rem)
                *rem = ns_ts(ts_ns(&r) + (left(deadline) > w ? left(deadline) - w : 0));
            return -1;
        }
        if (last)
            return 0;
    }
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    nanosleep_fn real = REAL(nanosleep_, "nanosleep");
    if (!req || ts_passes(req) || !may_work())
        return real(req, rem);
    return sleep_ns(ts_ns(req), rem);
}

EXPORT unsigned sleep(unsigned s)
{
    sleep_fn real = REAL(sleep_, "sleep");
    if (s == 0 || !may_work())
        return real(s);
    struct timespec rem = {0, 0};
    if (sleep_ns((uint64_t)s * 1000000000ull, &rem) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec >= 500000000L); /* as glibc rounds */
}

EXPORT int usleep(useconds_t us)
{
    usleep_fn real = REAL(usleep_, "usleep");
    if (us == 0 || !may_work())
        return real(us);
    return sleep_ns((uint64_t)us * 1000ull, NULL);
}

EXPORT int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                           struct timespec *rem)
{
    clock_nanosleep_fn real = REAL(clock_nanosleep_, "clock_nanosleep");
    int wall = clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME || clk == CLOCK_BOOTTIME ||
               clk == CLOCK_TAI;
    if (!req || !valid_ts(req) || !wall || !may_work())
        return real(clk, flags, req, rem);
    const unsigned long runs0 = handler_runs();
    uint64_t req_ns = ts_ns(req);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        if (clock_gettime(clk, &now) != 0)
            return real(clk, flags, req, rem);
        uint64_t n = ts_ns(&now);
        req_ns = req_ns > n ? req_ns - n : 0;
    }
    if (req_ns == 0)
        return real(clk, flags, req, rem);
    uint64_t deadline = deadline_after(req_ns);
    for (;;) {
        uint64_t w;
        int last = step(deadline, &w, runs0);
        if (last < 0) {
            if (rem && !(flags & TIMER_ABSTIME))
                *rem = ns_ts(left(deadline));
            return EINTR;
        }
        if (last) { /* the rest; with the program's own arguments: exact for TIMER_ABSTIME */
            if (flags & TIMER_ABSTIME)
                return real(clk, flags, req, rem);
            if (w == 0)
                return 0;
            struct timespec ts = ns_ts(w);
            return real(clk, 0, &ts, rem);
        }
        struct timespec ts = ns_ts(w), r;
        int e = real(CLOCK_MONOTONIC, 0, &ts, &r);
        if (e != 0) {
            if (e == EINTR && rem && !(flags & TIMER_ABSTIME))
                *rem = ns_ts(ts_ns(&r) + (left(deadline) > w ? left(deadline) - w : 0));
            return e;
        }
    }
}

/* ---- multiplexers ---- */

/* poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2: one body (do_mux). A
 * look with no wait first: a ready event returns at once, no work before it. Then pieces, each
 * one call of the program's own function with the program's own arguments and a shorter
 * timeout; mux_call makes the call for a piece of ns (NS_INF: no timeout, 0: just a look). */
enum mux_kind { MUX_POLL, MUX_PPOLL, MUX_SELECT, MUX_PSELECT, MUX_EPOLL, MUX_EPOLL_P, MUX_EPOLL_P2 };

/* select and pselect clear the sets' bits of fds that are not ready: each piece starts from the
 * program's sets, and a wait that ends interrupted leaves them as they came. Programs with more
 * than FD_SETSIZE descriptors in a set (hand-sized sets) go straight through. */
struct fdsets {
    fd_set r, w, e;
    fd_set *pr, *pw, *pe;
};

struct mux {
    enum mux_kind kind;
    const sigset_t *mask;
    struct pollfd *fds; /* poll, ppoll */
    nfds_t nfds;
    int n;                 /* select, pselect: nfds; epoll: the epoll fd */
    struct fdsets sets;    /* select, pselect */
    struct epoll_event *ev; /* epoll */
    int max;
};

static void save_sets(struct fdsets *s, fd_set *r, fd_set *w, fd_set *e)
{
    s->pr = r;
    s->pw = w;
    s->pe = e;
    if (r)
        s->r = *r;
    if (w)
        s->w = *w;
    if (e)
        s->e = *e;
}

static void load_sets(const struct fdsets *s)
{
    if (s->pr)
        *s->pr = s->r;
    if (s->pw)
        *s->pw = s->w;
    if (s->pe)
        *s->pe = s->e;
}

static int mux_call(const struct mux *m, uint64_t ns)
{
    struct timespec ts = ns_ts(ns);
    const struct timespec *tsp = ns == NS_INF ? NULL : &ts;
    switch (m->kind) {
    case MUX_POLL:
        return R.poll_(m->fds, m->nfds, ms_of(ns));
    case MUX_PPOLL:
        return R.ppoll_(m->fds, m->nfds, tsp, m->mask);
    case MUX_SELECT: {
        /* rounded up: a piece never ends before the wait's deadline */
        struct timeval tv = {(time_t)(ns / 1000000000ull), (long)((ns % 1000000000ull + 999) / 1000)};
        if (tv.tv_usec >= 1000000) {
            tv.tv_sec++;
            tv.tv_usec -= 1000000;
        }
        load_sets(&m->sets);
        return R.select_(m->n, m->sets.pr, m->sets.pw, m->sets.pe, ns == NS_INF ? NULL : &tv);
    }
    case MUX_PSELECT:
        load_sets(&m->sets);
        return R.pselect_(m->n, m->sets.pr, m->sets.pw, m->sets.pe, tsp, m->mask);
    case MUX_EPOLL:
        return R.epoll_wait_(m->n, m->ev, m->max, ms_of(ns));
    case MUX_EPOLL_P:
        return R.epoll_pwait_(m->n, m->ev, m->max, ms_of(ns), m->mask);
    case MUX_EPOLL_P2:
        return R.epoll_pwait2_(m->n, m->ev, m->max, tsp, m->mask);
    }
    errno = ENOSYS;
    return -1;
}

/* deadline: absolute (deadline_after), or NS_INF */
static int do_mux(const struct mux *m, uint64_t deadline)
{
    const unsigned long runs0 = handler_runs();
    int r = mux_call(m, 0);
    if (r != 0) {
        ts_idle_event_ready();
        return r;
    }
    for (;;) {
        uint64_t w;
        int last = step(deadline, &w, runs0);
        if (last < 0) {
            if (m->kind == MUX_SELECT || m->kind == MUX_PSELECT)
                load_sets(&m->sets);
            errno = EINTR;
            return -1;
        }
        r = mux_call(m, w);
        if (r != 0 || last)
            return r;
    }
}

static uint64_t deadline_ms(int timeout) /* poll's and epoll's: < 0 for ever */
{
    return timeout < 0 ? NS_INF : deadline_after((uint64_t)timeout * 1000000ull);
}

static uint64_t deadline_ts(const struct timespec *tmo) /* NULL for ever */
{
    return tmo ? deadline_after(ts_ns(tmo)) : NS_INF;
}

static int do_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    poll_fn real = REAL(poll_, "poll");
    if (timeout == 0 || !may_work())
        return real(fds, n, timeout);
    struct mux m = {.kind = MUX_POLL, .fds = fds, .nfds = n};
    return do_mux(&m, deadline_ms(timeout));
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) { return do_poll(fds, n, timeout); }

/* _FORTIFY_SOURCE builds call this instead of poll (Debian builds its packages so) */
EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    poll_chk_fn real = REAL(poll_chk_, "__poll_chk");
    if (fdslen / sizeof *fds < n && real)
        return real(fds, n, timeout, fdslen); /* glibc reports the overflow and aborts */
    return do_poll(fds, n, timeout);
}

static int do_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                    const sigset_t *mask)
{
    ppoll_fn real = REAL(ppoll_, "ppoll");
    if (ts_passes(tmo) || !may_work())
        return real(fds, n, tmo, mask);
    struct mux m = {.kind = MUX_PPOLL, .fds = fds, .nfds = n, .mask = mask};
    return do_mux(&m, deadline_ts(tmo));
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo, const sigset_t *mask)
{
    return do_ppoll(fds, n, tmo, mask);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                       const sigset_t *mask, size_t fdslen);
EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                       const sigset_t *mask, size_t fdslen)
{
    ppoll_chk_fn real = REAL(ppoll_chk_, "__ppoll_chk");
    if (fdslen / sizeof *fds < n && real)
        return real(fds, n, tmo, mask, fdslen);
    return do_ppoll(fds, n, tmo, mask);
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    select_fn real = REAL(select_, "select");
    if ((tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000 ||
                (tv->tv_sec == 0 && tv->tv_usec == 0))) ||
        nfds < 0 || nfds > FD_SETSIZE || !may_work())
        return real(nfds, r, w, e, tv);
    struct mux m = {.kind = MUX_SELECT, .n = nfds};
    save_sets(&m.sets, r, w, e);
    uint64_t deadline =
        tv ? deadline_after((uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000)
           : NS_INF;
    int rc = do_mux(&m, deadline);
    if (tv) { /* Linux leaves the time not slept in the program's timeval */
        uint64_t l = left(deadline);
        tv->tv_sec = (time_t)(l / 1000000000ull);
        tv->tv_usec = (long)(l % 1000000000ull / 1000);
    }
    return rc;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
                   const sigset_t *mask)
{
    pselect_fn real = REAL(pselect_, "pselect");
    if (ts_passes(tmo) || nfds < 0 || nfds > FD_SETSIZE || !may_work())
        return real(nfds, r, w, e, tmo, mask);
    struct mux m = {.kind = MUX_PSELECT, .n = nfds, .mask = mask};
    save_sets(&m.sets, r, w, e);
    return do_mux(&m, deadline_ts(tmo));
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    epoll_wait_fn real = REAL(epoll_wait_, "epoll_wait");
    if (timeout == 0 || !may_work())
        return real(epfd, ev, max, timeout);
    struct mux m = {.kind = MUX_EPOLL, .n = epfd, .ev = ev, .max = max};
    return do_mux(&m, deadline_ms(timeout));
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                       const sigset_t *mask)
{
    epoll_pwait_fn real = REAL(epoll_pwait_, "epoll_pwait");
    if (timeout == 0 || !may_work())
        return real(epfd, ev, max, timeout, mask);
    struct mux m = {.kind = MUX_EPOLL_P, .n = epfd, .ev = ev, .max = max, .mask = mask};
    return do_mux(&m, deadline_ms(timeout));
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *tmo,
                        const sigset_t *mask)
{
    epoll_pwait2_fn real = REAL(epoll_pwait2_, "epoll_pwait2");
    if (!real) { /* a glibc before 2.35 */
        errno = ENOSYS;
        return -1;
    }
    if (ts_passes(tmo) || !may_work())
        return real(epfd, ev, max, tmo, mask);
    struct mux m = {.kind = MUX_EPOLL_P2, .n = epfd, .ev = ev, .max = max, .mask = mask};
    return do_mux(&m, deadline_ts(tmo));
}

/* ---- signal waits ---- */

/* Pieces of pause and sigsuspend: ppoll with no descriptors waits for a handler like they do,
 * with a timeout. */
static int timed_pause(uint64_t ns, const sigset_t *mask)
{
    struct timespec ts = ns_ts(ns);
    ppoll_fn real = REAL(ppoll_, "ppoll");
    return real(NULL, 0, &ts, mask);
}

EXPORT int pause(void)
{
    pause_fn real = REAL(pause_, "pause");
    if (!may_work())
        return real();
    const unsigned long runs0 = handler_runs();
    for (;;) {
        uint64_t w;
        int last = step(NS_INF, &w, runs0);
        if (last < 0) {
            errno = EINTR;
            return -1;
        }
        if (last)
            return real();
        if (timed_pause(w, NULL) != 0)
            return -1; /* EINTR: a handler ran */
    }
}

EXPORT int sigsuspend(const sigset_t *mask)
{
    sigsuspend_fn real = REAL(sigsuspend_, "sigsuspend");
    if (!may_work())
        return real(mask);
    const unsigned long runs0 = handler_runs();
    /* a signal pending that mask lets through: sigsuspend returns at once, no work first */
    sigset_t pend;
    if (sigpending(&pend) == 0)
        for (int sig = 1; sig < TS_NSIG && sig <= SIGRTMAX; sig++)
            if (sigismember(&pend, sig) == 1 && sigismember(mask, sig) == 0)
                return real(mask);
    for (;;) {
        uint64_t w;
        int last = step(NS_INF, &w, runs0);
        if (last < 0) {
            errno = EINTR;
            return -1;
        }
        if (last)
            return real(mask);
        if (timed_pause(w, mask) != 0)
            return -1;
    }
}

static int do_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *tmo,
                           int forever)
{
    const unsigned long runs0 = handler_runs();
    sigtimedwait_fn real = REAL(sigtimedwait_, "sigtimedwait");
    struct timespec zero = {0, 0};
    int r = real(set, info, &zero);
    if (r >= 0 || errno != EAGAIN) {
        if (r >= 0)
            ts_idle_event_ready();
        return r;
    }
    uint64_t deadline = forever ? NS_INF : deadline_after(ts_ns(tmo));
    for (;;) {
        uint64_t w;
        int last = step(deadline, &w, runs0);
        if (last < 0) {
            errno = EINTR;
            return -1;
        }
        if (last && forever) {
            sigwaitinfo_fn wait_forever = REAL(sigwaitinfo_, "sigwaitinfo");
            return wait_forever(set, info);
        }
        struct timespec ts = ns_ts(w);
        r = real(set, info, &ts);
        if (r >= 0 || errno != EAGAIN || last)
            return r;
    }
}

EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *tmo)
{
    sigtimedwait_fn real = REAL(sigtimedwait_, "sigtimedwait");
    if (ts_passes(tmo) || !may_work())
        return real(set, info, tmo);
    return do_sigtimedwait(set, info, tmo, tmo == NULL);
}

EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    sigwaitinfo_fn real = REAL(sigwaitinfo_, "sigwaitinfo");
    if (!may_work())
        return real(set, info);
    return do_sigtimedwait(set, info, NULL, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* threads */

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    ts_program_creates_thread();
    return ts_real_pthread_create(t, attr, fn, arg);
}
