/* libtrimshim runtime: the interposed free (accounting of freed bytes), the background thread
 * that observes the process and asks policy.c whether to trim, fork/exit handling, the C API.
 *
 * Rules this file keeps (the shim runs inside arbitrary programs):
 *  - free() may run before the constructor, inside the dynamic linker, in a dying thread and in
 *    a forked child: it never allocates, never takes a lock, and resolves the next free with a
 *    per-thread recursion guard.
 *  - The background thread never allocates (malloc_trim, open/read/close of statm, clock_gettime,
 *    snprintf of integers, write), never takes the program's signals (created with all signals
 *    blocked; the creator's mask is restored), and never holds g_mu across a trim.
 *  - Nothing waits for the thread at exit (it may be inside a trim of seconds): the destructor
 *    only tells it to stop; the library is NODELETE so its code stays mapped.
 */
#define _GNU_SOURCE
#include "trimshim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "policy.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TS_HAVE_VALGRIND 1
#endif
#endif

#define EXPORT __attribute__((visibility("default")))
#define TLS_IE __attribute__((tls_model("initial-exec")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

extern char **environ;

/* ------------------------------------------------------------------------------------------ */
/* free accounting: one slot per thread (each thread writes only its own cache line), summed by
 * the background thread. Slot counters are never reset: a slot released by an exiting thread
 * keeps its count and the next owner adds to it, so the sum is monotonic. */

#define TS_NSLOTS 256
#define TS_GLIBC_IS_MMAPPED 0x2
#define TS_GLIBC_SIZE_BITS 0x7
#define TS_PAGE 4096u

struct ts_slot {
    _Atomic uint64_t bytes;
    _Atomic uint64_t big_bytes;
    _Atomic uint64_t big_chunks;
    _Atomic int owner;
} __attribute__((aligned(64)));

static struct ts_slot g_slots[TS_NSLOTS];
static struct ts_slot g_shared_slot; /* threads without a slot: atomic adds */
static _Atomic unsigned g_slots_hw;  /* slots [0, hw) may have counts */
static __thread struct ts_slot *tl_slot TLS_IE;
static __thread int tl_resolving TLS_IE;
static _Atomic int g_count;  /* 1: the program's malloc is glibc's, read chunk sizes */
static _Atomic int g_key_ok; /* g_key created */
static pthread_key_t g_key;

typedef void (*free_fn)(void *);
static _Atomic(free_fn) g_real_free;
extern void __libc_free(void *);

static free_fn resolve_free(void)
{
    free_fn f = atomic_load_explicit(&g_real_free, memory_order_acquire);
    if (f)
        return f;
    if (tl_resolving)
        return NULL; /* free called by dlsym itself: the caller leaks that pointer */
    tl_resolving = 1;
    void *sym = dlsym(RTLD_NEXT, "free");
    tl_resolving = 0;
    f = sym ? (free_fn)sym : __libc_free;
    atomic_store_explicit(&g_real_free, f, memory_order_release);
    return f;
}

static void slot_release(void *v)
{
    struct ts_slot *s = v;
    tl_slot = &g_shared_slot; /* frees later in this thread's exit go to the shared slot */
    if (s && s != &g_shared_slot)
        atomic_store_explicit(&s->owner, 0, memory_order_release);
}

static struct ts_slot *claim_slot(void)
{
    if (!atomic_load_explicit(&g_key_ok, memory_order_acquire))
        return &g_shared_slot; /* before the constructor: do not cache, try again later */
    struct ts_slot *s = &g_shared_slot;
    for (unsigned i = 0; i < TS_NSLOTS; i++) {
        int zero = 0;
        if (atomic_load_explicit(&g_slots[i].owner, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&g_slots[i].owner, &zero, 1,
                                                    memory_order_acquire, memory_order_relaxed)) {
            if (pthread_setspecific(g_key, &g_slots[i]) != 0) {
                atomic_store_explicit(&g_slots[i].owner, 0, memory_order_release);
                break;
            }
            s = &g_slots[i];
            unsigned hw = atomic_load_explicit(&g_slots_hw, memory_order_relaxed);
            while (hw < i + 1 &&
                   !atomic_compare_exchange_weak_explicit(&g_slots_hw, &hw, i + 1,
                                                          memory_order_relaxed,
                                                          memory_order_relaxed))
                ;
            break;
        }
    }
    tl_slot = s;
    return s;
}

static inline void slot_add(struct ts_slot *s, _Atomic uint64_t *field, uint64_t v)
{
    if (s == &g_shared_slot)
        atomic_fetch_add_explicit(field, v, memory_order_relaxed);
    else /* only the owner writes: a plain load and store, no locked instruction */
        atomic_store_explicit(field, atomic_load_explicit(field, memory_order_relaxed) + v,
                              memory_order_relaxed);
}

static inline void account(const void *p)
{
    size_t h = ((const size_t *)p)[-1]; /* glibc chunk header: size | flags */
    if (h & TS_GLIBC_IS_MMAPPED)
        return; /* munmapped at once by free: nothing for a trim to do */
    uint64_t sz = h & ~(size_t)TS_GLIBC_SIZE_BITS;
    struct ts_slot *s = tl_slot;
    if (UNLIKELY(!s))
        s = claim_slot();
    slot_add(s, &s->bytes, sz);
    if (sz >= TS_PAGE) {
        slot_add(s, &s->big_bytes, sz);
        slot_add(s, &s->big_chunks, 1);
    }
}

EXPORT void free(void *p)
{
    free_fn f = atomic_load_explicit(&g_real_free, memory_order_relaxed);
    if (UNLIKELY(!f)) {
        f = resolve_free();
        if (!f)
            return;
    }
    if (p && atomic_load_explicit(&g_count, memory_order_relaxed))
        account(p);
    f(p);
}

static void freed_totals(uint64_t *bytes, uint64_t *big_bytes, uint64_t *big_chunks)
{
    unsigned hw = atomic_load_explicit(&g_slots_hw, memory_order_relaxed);
    uint64_t b = atomic_load_explicit(&g_shared_slot.bytes, memory_order_relaxed);
    uint64_t bb = atomic_load_explicit(&g_shared_slot.big_bytes, memory_order_relaxed);
    uint64_t bc = atomic_load_explicit(&g_shared_slot.big_chunks, memory_order_relaxed);
    for (unsigned i = 0; i < hw && i < TS_NSLOTS; i++) {
        b += atomic_load_explicit(&g_slots[i].bytes, memory_order_relaxed);
        bb += atomic_load_explicit(&g_slots[i].big_bytes, memory_order_relaxed);
        bc += atomic_load_explicit(&g_slots[i].big_chunks, memory_order_relaxed);
    }
    *bytes = b;
    *big_bytes = bb;
    *big_chunks = bc;
}

/* ------------------------------------------------------------------------------------------ */
/* observations */

static uint64_t ts_clock(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * TS_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static long g_page_size = 4096;

/* RSS from /proc/self/statm (second field, pages). open/read/close, no heap. 0 if unreadable. */
static uint64_t read_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *s = buf;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s != ' ')
        return 0;
    s++;
    uint64_t pages = 0;
    while (*s >= '0' && *s <= '9')
        pages = pages * 10 + (uint64_t)(*s++ - '0');
    return pages * (uint64_t)g_page_size;
}

/* Only from the background thread (its own CPU time is subtracted). */
static void observe(struct ts_obs *o)
{
    uint64_t proc = ts_clock(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t self = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    o->now_ns = ts_clock(CLOCK_MONOTONIC);
    o->prog_cpu_ns = proc > self ? proc - self : 0;
    o->rss_bytes = read_rss();
    freed_totals(&o->freed_bytes, &o->freed_big_bytes, &o->freed_big_chunks);
}

/* ------------------------------------------------------------------------------------------ */
/* logging: one write(2) per line, no stdio */

static struct ts_config g_cfg;
static int g_log_fd = 2;

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void report_stderr(const char *line, void *ctx)
{
    (void)ctx;
    int saved = errno;
    write_all(2, line, strlen(line));
    errno = saved;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char line[512];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    write_all(g_log_fd, line, (size_t)n);
    errno = saved;
}

/* "781.2 MiB" into buf, integer arithmetic only */
static const char *fmt_bytes(uint64_t b, char *buf, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    uint64_t whole = b, tenth = 0;
    while (whole >= 1024 && u < 4) {
        tenth = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, n, "%llu.%llu %s", (unsigned long long)whole, (unsigned long long)tenth,
                 unit[u]);
    return buf;
}

static const char *fmt_ms(uint64_t ns, char *buf, size_t n)
{
    snprintf(buf, n, "%llu.%llu ms", (unsigned long long)(ns / TS_NS_PER_MS),
             (unsigned long long)(ns % TS_NS_PER_MS / 100000));
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* statistics */

static _Atomic int g_state = TRIMSHIM_OFF;
static _Atomic uint64_t g_trims, g_bg_trims, g_bytes_returned, g_trim_ns, g_max_trim_ns,
    g_last_trim_ns, g_last_bytes, g_futile, g_wakeups;
static _Atomic uint64_t g_freed_base;   /* freed-bytes counter at the last trim (any kind) */
static uint64_t g_freed_at_start;       /* freed counters when the process's shim started */
static uint64_t g_freed_big_at_start;

static uint64_t record_trim(uint64_t t0, uint64_t t1, uint64_t rss0, uint64_t rss1, int bg)
{
    uint64_t ns = t1 > t0 ? t1 - t0 : 0;
    uint64_t back = ts_returned(rss0, rss1);
    uint64_t n = atomic_fetch_add(&g_trims, 1) + 1;
    if (bg)
        atomic_fetch_add(&g_bg_trims, 1);
    atomic_fetch_add(&g_bytes_returned, back);
    atomic_fetch_add(&g_trim_ns, ns);
    atomic_store(&g_last_trim_ns, ns);
    atomic_store(&g_last_bytes, back);
    uint64_t m = atomic_load(&g_max_trim_ns);
    while (ns > m && !atomic_compare_exchange_weak(&g_max_trim_ns, &m, ns))
        ;
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* the background thread */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv;
static pthread_t g_thread;
static int g_thread_live; /* under g_mu: g_thread is a joinable thread */
static int g_stop_req;    /* under g_mu */
static _Atomic int g_exiting;
static int g_standing_down; /* set once in the constructor */

static void cond_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cv, &a);
    pthread_condattr_destroy(&a);
}

/* Sleeps ns or until asked to stop. Returns 1 when the thread must end. */
static int sleep_or_stop(uint64_t ns)
{
    uint64_t deadline = ts_clock(CLOCK_MONOTONIC) + ns;
    struct timespec ts = {(time_t)(deadline / TS_NS_PER_S), (long)(deadline % TS_NS_PER_S)};
    int stop;
    pthread_mutex_lock(&g_mu);
    while (!(stop = g_stop_req) && !atomic_load(&g_exiting)) {
        if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
            break;
    }
    stop = g_stop_req || atomic_load(&g_exiting);
    pthread_mutex_unlock(&g_mu);
    return stop;
}

static void *thread_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "trimshim");
    const struct ts_config *cfg = &g_cfg;
    struct ts_policy_state st;
    struct ts_obs o, after;
    enum ts_reason last_reason = TS_R_OFF;
    char b1[32], b2[32], b3[32], b4[32], b5[32];

    observe(&o);
    ts_policy_init(&st, cfg, &o);
    uint64_t base = atomic_load(&g_freed_base);
    if (base < st.at_trim.freed_bytes) /* freed before this thread: pending (e.g. forked child) */
        st.at_trim.freed_bytes = base;
    uint64_t sleep_ns = cfg->interval_ns;

    while (!sleep_or_stop(sleep_ns)) {
        observe(&o);
        atomic_fetch_add(&g_wakeups, 1);
        base = atomic_load(&g_freed_base);
        if (base > st.at_trim.freed_bytes) /* trimshim_trim_now ran: its frees are done */
            st.at_trim.freed_bytes = base;
        struct ts_decision d = ts_policy_decide(&st, cfg, &o);
        atomic_store(&g_futile, st.futile);
        if (cfg->verbose >= 2 && d.reason != last_reason)
            logf_("trimshim: decision %s (cpu %s, freed since last trim %s, backoff %u, cost %s)",
                  ts_reason_name(d.reason), st.quiet ? "quiet" : "busy",
                  fmt_bytes(o.freed_bytes - st.at_trim.freed_bytes, b1, sizeof b1), st.backoff,
                  fmt_ms(st.cost_ewma_ns, b2, sizeof b2));
        last_reason = d.reason;
        sleep_ns = d.sleep_ns;
        if (!d.trim)
            continue;
        if (atomic_load(&g_exiting))
            break;
        uint64_t pending = o.freed_bytes - st.at_trim.freed_bytes;
        atomic_store(&g_freed_base, o.freed_bytes);
        malloc_trim((size_t)cfg->pad);
        observe(&after);
        uint64_t n = record_trim(o.now_ns, after.now_ns, o.rss_bytes, after.rss_bytes, 1);
        ts_policy_trimmed(&st, cfg, &o, &after);
        atomic_store(&g_futile, st.futile);
        if (cfg->verbose >= 1)
            logf_("trimshim: trim %llu (%s): returned %s in %s (rss %s -> %s; freed since last "
                  "trim %s)",
                  (unsigned long long)n, ts_reason_name(d.reason),
                  fmt_bytes(ts_returned(o.rss_bytes, after.rss_bytes), b1, sizeof b1),
                  fmt_ms(after.now_ns - o.now_ns, b2, sizeof b2),
                  fmt_bytes(o.rss_bytes, b3, sizeof b3), fmt_bytes(after.rss_bytes, b4, sizeof b4),
                  fmt_bytes(pending, b5, sizeof b5));
    }
    return NULL;
}

/* Creates the thread with every signal blocked, so it never takes one of the program's signals;
 * the caller's mask is restored. Call with g_mu held (or in the fork child). */
static int spawn_locked(void)
{
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g_thread, &attr, thread_main, NULL);
    if (rc == EINVAL) /* static TLS larger than our small stack: use the default size */
        rc = pthread_create(&g_thread, NULL, thread_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_store(&g_state, TRIMSHIM_FAILED);
        if (g_cfg.verbose >= 1)
            logf_("trimshim: cannot create the trimmer thread (%s); not trimming",
                  strerrorname_np(rc) ? strerrorname_np(rc) : "error");
        return TRIMSHIM_FAILED;
    }
    g_thread_live = 1;
    g_stop_req = 0;
    atomic_store(&g_state, TRIMSHIM_RUNNING);
    return TRIMSHIM_RUNNING;
}

/* ------------------------------------------------------------------------------------------ */
/* fork */

static void at_prepare(void) { pthread_mutex_lock(&g_mu); }
static void at_parent(void) { pthread_mutex_unlock(&g_mu); }

static void at_child(void)
{
    /* Only the forking thread exists here. Our lock and condition may have been in use by the
     * parent's trimmer thread, which the child does not have: start them afresh. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_mu = fresh;
    cond_init();
    int was_running = g_thread_live && !g_stop_req;
    g_thread_live = 0;
    g_stop_req = 0;
    for (unsigned i = 0; i < TS_NSLOTS; i++)
        if (&g_slots[i] != tl_slot)
            atomic_store_explicit(&g_slots[i].owner, 0, memory_order_relaxed);
    /* per-process statistics */
    atomic_store(&g_trims, 0);
    atomic_store(&g_bg_trims, 0);
    atomic_store(&g_bytes_returned, 0);
    atomic_store(&g_trim_ns, 0);
    atomic_store(&g_max_trim_ns, 0);
    atomic_store(&g_last_trim_ns, 0);
    atomic_store(&g_last_bytes, 0);
    atomic_store(&g_futile, 0);
    atomic_store(&g_wakeups, 0);
    freed_totals(&g_freed_at_start, &g_freed_big_at_start, &(uint64_t){0});
    if (was_running && !atomic_load(&g_exiting))
        spawn_locked(); /* the child gets its own trimmer */
}

/* ------------------------------------------------------------------------------------------ */
/* constructor / destructor */

static int g_inited;

static int running_on_valgrind(void)
{
#ifdef TS_HAVE_VALGRIND
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}

/* Is the malloc the program resolves glibc's own, and does our free forward to glibc's? */
static int over_glibc_malloc(const char **who)
{
    void *def = dlsym(RTLD_DEFAULT, "malloc");
    void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    void *libc_malloc = h ? dlsym(h, "malloc") : NULL;
    void *libc_free = h ? dlsym(h, "free") : NULL;
    if (h)
        dlclose(h);
    free_fn next = resolve_free();
    *who = "?";
    if (def && def == libc_malloc && next && (void *)next == libc_free)
        return 1;
    Dl_info info;
    void *culprit = (def && def != libc_malloc) ? def : (void *)next;
    if (culprit && dladdr(culprit, &info) && info.dli_fname && *info.dli_fname)
        *who = info.dli_fname;
    else if (!h)
        *who = "no libc.so.6";
    return 0;
}

static void open_log(void)
{
    if (!g_cfg.log_path)
        return;
    int fd = open(g_cfg.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        g_log_fd = fd;
        return;
    }
    char esc[96], line[256];
    int e = errno;
    ts_escape_value(g_cfg.log_path, esc, sizeof esc);
    snprintf(line, sizeof line, "trimshim: TRIMSHIM_LOG=\"%s\": cannot open (%s); using stderr\n",
             esc, strerrorname_np(e) ? strerrorname_np(e) : "error");
    report_stderr(line, NULL);
}

__attribute__((constructor)) static void ts_init(void)
{
    if (g_inited)
        return;
    g_inited = 1;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0)
        g_page_size = ps;
    resolve_free();
    ts_config_from_env(&g_cfg, environ, report_stderr, NULL);
    open_log();
    cond_init();
    if (pthread_key_create(&g_key, slot_release) == 0)
        atomic_store_explicit(&g_key_ok, 1, memory_order_release);

    const char *who = NULL;
    if (running_on_valgrind()) {
        g_standing_down = 1;
        atomic_store(&g_state, TRIMSHIM_VALGRIND);
        if (g_cfg.verbose >= 1)
            logf_("trimshim: standing down: running under valgrind (no thread, free untouched)");
        return;
    }
    if (!over_glibc_malloc(&who)) {
        g_standing_down = 1;
        atomic_store(&g_state, TRIMSHIM_NOT_GLIBC);
        if (g_cfg.verbose >= 1)
            logf_("trimshim: standing down: malloc is not glibc's (it comes from %s); "
                  "malloc_trim would do nothing",
                  who);
        return;
    }
    atomic_store_explicit(&g_count, 1, memory_order_release);
    freed_totals(&g_freed_at_start, &g_freed_big_at_start, &(uint64_t){0});
    pthread_atfork(at_prepare, at_parent, at_child);
    if (g_cfg.policy == TS_POLICY_OFF) {
        atomic_store(&g_state, TRIMSHIM_OFF);
        if (g_cfg.verbose >= 1)
            logf_("trimshim: policy off: no background trimming");
        return;
    }
    pthread_mutex_lock(&g_mu);
    int rc = spawn_locked();
    pthread_mutex_unlock(&g_mu);
    if (rc == TRIMSHIM_RUNNING && g_cfg.verbose >= 1) {
        char b1[32], b2[32];
        logf_("trimshim: running: policy %s, interval %llu ms, threshold %s, pad %s, budget "
              "%u.%u%%, busy wait %llu ms",
              g_cfg.policy == TS_POLICY_INTERVAL ? "interval" : "adaptive",
              (unsigned long long)(g_cfg.interval_ns / TS_NS_PER_MS),
              fmt_bytes(g_cfg.threshold, b1, sizeof b1), fmt_bytes(g_cfg.pad, b2, sizeof b2),
              g_cfg.budget_ppm / 10000, g_cfg.budget_ppm % 10000 / 1000,
              (unsigned long long)(g_cfg.busy_wait_ns / TS_NS_PER_MS));
    }
}

__attribute__((destructor)) static void ts_fini(void)
{
    /* Do not join: the thread may be inside a long trim, and exit must not wait for it. It sees
     * g_exiting after its sleep or its trim and starts no new trim; _exit ends it. */
    atomic_store(&g_exiting, 1);
    if (g_cfg.verbose >= 1 && !g_standing_down) {
        char b1[32], b2[32];
        logf_("trimshim: exit: %llu trims (%llu background), %s returned, %s in malloc_trim",
              (unsigned long long)atomic_load(&g_trims), (unsigned long long)atomic_load(&g_bg_trims),
              fmt_bytes(atomic_load(&g_bytes_returned), b1, sizeof b1),
              fmt_ms(atomic_load(&g_trim_ns), b2, sizeof b2));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* API */

EXPORT int trimshim_start(void)
{
    ts_init();
    int st = atomic_load(&g_state);
    if (g_standing_down)
        return st;
    if (g_cfg.policy == TS_POLICY_OFF)
        return TRIMSHIM_OFF;
    pthread_mutex_lock(&g_mu);
    int rc = g_thread_live ? TRIMSHIM_RUNNING : spawn_locked();
    pthread_mutex_unlock(&g_mu);
    return rc;
}

EXPORT void trimshim_stop(void)
{
    ts_init();
    pthread_mutex_lock(&g_mu);
    if (!g_thread_live) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    g_stop_req = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_t t = g_thread;
    g_thread_live = 0;
    pthread_mutex_unlock(&g_mu);
    pthread_join(t, NULL);
    pthread_mutex_lock(&g_mu);
    if (!g_thread_live)
        atomic_store(&g_state, TRIMSHIM_STOPPED);
    pthread_mutex_unlock(&g_mu);
}

EXPORT uint64_t trimshim_trim_now(size_t pad)
{
    ts_init();
    uint64_t fb, fbb, fbc;
    freed_totals(&fb, &fbb, &fbc);
    uint64_t rss0 = read_rss();
    uint64_t t0 = ts_clock(CLOCK_MONOTONIC);
    malloc_trim(pad);
    uint64_t t1 = ts_clock(CLOCK_MONOTONIC);
    uint64_t rss1 = read_rss();
    uint64_t base = atomic_load(&g_freed_base);
    while (fb > base && !atomic_compare_exchange_weak(&g_freed_base, &base, fb))
        ;
    uint64_t n = record_trim(t0, t1, rss0, rss1, 0);
    if (g_cfg.verbose >= 1 && !g_standing_down) {
        char b1[32], b2[32];
        logf_("trimshim: trim %llu (api): returned %s in %s", (unsigned long long)n,
              fmt_bytes(ts_returned(rss0, rss1), b1, sizeof b1), fmt_ms(t1 - t0, b2, sizeof b2));
    }
    return ts_returned(rss0, rss1);
}

EXPORT void trimshim_get_stats(struct trimshim_stats *out)
{
    ts_init();
    struct trimshim_stats s;
    memset(&s, 0, sizeof s);
    uint64_t fb, fbb, fbc;
    freed_totals(&fb, &fbb, &fbc);
    s.trims = atomic_load(&g_trims);
    s.background_trims = atomic_load(&g_bg_trims);
    s.bytes_returned = atomic_load(&g_bytes_returned);
    s.trim_ns = atomic_load(&g_trim_ns);
    s.max_trim_ns = atomic_load(&g_max_trim_ns);
    s.last_trim_ns = atomic_load(&g_last_trim_ns);
    s.last_bytes_returned = atomic_load(&g_last_bytes);
    s.futile_trims = atomic_load(&g_futile);
    s.wakeups = atomic_load(&g_wakeups);
    s.freed_bytes = fb - g_freed_at_start;
    s.freed_big_bytes = fbb - g_freed_big_at_start;
    s.state = atomic_load(&g_state);
    s.policy = (int)g_cfg.policy;
    *out = s;
}

EXPORT const char *trimshim_state_name(int state)
{
    switch (state) {
    case TRIMSHIM_RUNNING: return "running";
    case TRIMSHIM_STOPPED: return "stopped";
    case TRIMSHIM_OFF: return "off";
    case TRIMSHIM_NOT_GLIBC: return "not-glibc";
    case TRIMSHIM_VALGRIND: return "valgrind";
    case TRIMSHIM_FAILED: return "failed";
    }
    return "unknown";
}
