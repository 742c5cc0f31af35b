/* libtrimshim runtime: the background thread that observes the process (clocks, statm, and
 * mallinfo2 probes when the policy asks), calls malloc_trim when policy.c says so, fork/exit
 * handling, stand-down detection, the C API.
 *
 * Rules this file keeps (the shim runs inside arbitrary programs):
 *  - It interposes nothing: no malloc/free wrapper (a forwarding free alone cost 6 % of a
 *    malloc-bound loop), so it cannot break the program's allocation paths.
 *  - The background thread never allocates (malloc_trim, mallinfo2, open/read/close of statm,
 *    clock_gettime, snprintf of integers, write), never takes the program's signals (created
 *    with all signals blocked; the creator's mask is restored), and never holds g_mu across a
 *    trim or a probe.
 *  - Nothing waits for the thread at exit (it may be inside a trim of seconds): the destructor
 *    only tells it to stop; the library is NODELETE so its code stays mapped.
 *  - fork: the child gets a fresh lock and its own trimmer thread (pthread_atfork); glibc's own
 *    fork handling takes the arena locks, so a fork waits for a trim in progress, never deadlocks.
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
#include <stdlib.h>
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

extern char **environ;

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

/* mallinfo2 (glibc >= 2.33) or mallinfo (int fields, older glibc), found with dlsym so the shim
 * loads on any glibc. Same field order; declared here so no header version matters. */
struct ts_mallinfo2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct ts_mallinfo {
    int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
typedef struct ts_mallinfo2 (*mallinfo2_fn)(void);
typedef struct ts_mallinfo (*mallinfo_fn)(void);
static mallinfo2_fn g_mallinfo2;
static mallinfo_fn g_mallinfo;

static _Atomic uint64_t g_probes, g_probe_ns, g_heap_free, g_heap_used;

/* fills the heap fields of o; returns 0, or -1 if glibc offers neither */
static int probe(struct ts_obs *o)
{
    uint64_t t0 = ts_clock(CLOCK_MONOTONIC);
    if (g_mallinfo2) {
        struct ts_mallinfo2 m = g_mallinfo2();
        o->heap_free_bytes = m.fordblks;
        o->heap_used_bytes = m.uordblks + m.hblkhd;
    } else if (g_mallinfo) {
        struct ts_mallinfo m = g_mallinfo();
        o->heap_free_bytes = (unsigned)m.fordblks;
        o->heap_used_bytes = (uint64_t)(unsigned)m.uordblks + (unsigned)m.hblkhd;
    } else {
        return -1;
    }
    o->probe_ns = ts_clock(CLOCK_MONOTONIC) - t0;
    o->heap_valid = 1;
    atomic_fetch_add(&g_probes, 1);
    atomic_fetch_add(&g_probe_ns, o->probe_ns);
    atomic_store(&g_heap_free, o->heap_free_bytes);
    atomic_store(&g_heap_used, o->heap_used_bytes);
    return 0;
}

/* Only from the background thread (its own CPU time is subtracted). */
static void observe(struct ts_obs *o)
{
    uint64_t proc = ts_clock(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t self = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    memset(o, 0, sizeof *o);
    o->now_ns = ts_clock(CLOCK_MONOTONIC);
    o->prog_cpu_ns = proc > self ? proc - self : 0;
    o->rss_bytes = read_rss();
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
/* an explicit trim (trimshim_trim_now) publishes its result so the thread rebases on it */
static uint64_t g_api_gen, g_api_rss, g_api_used; /* under g_mu */
static int g_api_used_valid;
/* the baseline after the last trim, for a trimmer restarted in this process or a forked child:
 * what was trimmed then does not count again (the first trimmer counts all free memory) */
static uint64_t g_base_rss, g_base_used; /* under g_mu */
static int g_have_base;

static void cond_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cv, &a);
    pthread_condattr_destroy(&a);
}

/* Sleeps ns or until asked to stop. Returns 1 when the thread must end. Reports an explicit
 * trim that happened meanwhile through *gen / *rss / *used. */
static int sleep_or_stop(uint64_t ns, uint64_t *gen, uint64_t *rss, uint64_t *used, int *used_ok)
{
    uint64_t deadline = ts_clock(CLOCK_MONOTONIC) + ns;
    struct timespec ts = {(time_t)(deadline / TS_NS_PER_S), (long)(deadline % TS_NS_PER_S)};
    pthread_mutex_lock(&g_mu);
    while (!g_stop_req && !atomic_load(&g_exiting)) {
        if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
            break;
    }
    int stop = g_stop_req || atomic_load(&g_exiting);
    *gen = g_api_gen;
    *rss = g_api_rss;
    *used = g_api_used;
    *used_ok = g_api_used_valid;
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
    uint64_t seen_gen = 0, api_gen, api_rss, api_used;
    int api_used_ok;

    observe(&o);
    probe(&o); /* the baseline: what is resident and in use when the trimmer starts */
    ts_policy_init(&st, cfg, &o);
    pthread_mutex_lock(&g_mu);
    seen_gen = g_api_gen;
    if (g_have_base && o.heap_valid) {
        st.base_rss_bytes = g_base_rss;
        st.base_used_bytes = g_base_used;
        st.last_est = ts_policy_trimmable(&st, &o);
    }
    pthread_mutex_unlock(&g_mu);
    uint64_t sleep_ns = cfg->interval_ns;

    while (!sleep_or_stop(sleep_ns, &api_gen, &api_rss, &api_used, &api_used_ok)) {
        if (api_gen != seen_gen) { /* trimshim_trim_now ran: start from its result */
            seen_gen = api_gen;
            st.base_rss_bytes = api_rss;
            if (api_used_ok)
                st.base_used_bytes = api_used;
            st.last_est = 0;
            st.pending = 0;
        }
        observe(&o);
        atomic_fetch_add(&g_wakeups, 1);
        struct ts_decision d = ts_policy_decide(&st, cfg, &o);
        if (d.action == TS_PROBE) {
            if (probe(&o) != 0)
                d.action = TS_SLEEP;
            else
                d = ts_policy_decide(&st, cfg, &o);
        }
        if (cfg->verbose >= 2 && d.reason != last_reason)
            logf_("trimshim: decision %s (program %s, trimmable %s, backoff %u, trim cost %s, "
                  "probe cost %s)",
                  ts_reason_name(d.reason), st.quiet ? "quiet" : "busy",
                  fmt_bytes(d.trimmable, b1, sizeof b1), st.backoff,
                  fmt_ms(st.cost_ewma_ns, b2, sizeof b2),
                  fmt_ms(st.probe_cost_ewma_ns, b3, sizeof b3));
        last_reason = d.reason;
        sleep_ns = d.sleep_ns;
        if (d.action != TS_TRIM)
            continue;
        if (atomic_load(&g_exiting))
            break;
        malloc_trim((size_t)cfg->pad);
        observe(&after);
        uint64_t n = record_trim(o.now_ns, after.now_ns, o.rss_bytes, after.rss_bytes, 1);
        probe(&after); /* the new baseline */
        ts_policy_trimmed(&st, cfg, &o, &after);
        atomic_store(&g_futile, st.futile);
        pthread_mutex_lock(&g_mu);
        g_base_rss = st.base_rss_bytes;
        g_base_used = st.base_used_bytes;
        g_have_base = 1;
        pthread_mutex_unlock(&g_mu);
        if (cfg->verbose >= 1)
            logf_("trimshim: trim %llu (%s): returned %s in %s (rss %s -> %s, estimated "
                  "trimmable %s)",
                  (unsigned long long)n, ts_reason_name(d.reason),
                  fmt_bytes(ts_returned(o.rss_bytes, after.rss_bytes), b1, sizeof b1),
                  fmt_ms(after.now_ns - o.now_ns, b2, sizeof b2),
                  fmt_bytes(o.rss_bytes, b3, sizeof b3), fmt_bytes(after.rss_bytes, b4, sizeof b4),
                  fmt_bytes(d.trimmable, b5, sizeof b5));
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
            logf_("trimshim: cannot create the trimmer thread (error %d); not trimming", rc);
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
    atomic_store(&g_probes, 0);
    atomic_store(&g_probe_ns, 0);
    if (was_running && !atomic_load(&g_exiting))
        spawn_locked(); /* the child gets its own trimmer */
    else if (was_running)
        atomic_store(&g_state, TRIMSHIM_STOPPED);
}

/* ------------------------------------------------------------------------------------------ */
/* constructor / destructor */

static int g_inited;

static int running_on_valgrind(void)
{
#ifdef TS_HAVE_VALGRIND
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    /* built without valgrind's header (EL needs valgrind-devel): valgrind preloads its
     * vgpreload_<tool>.so into every client */
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") ? 1 : 0;
#endif
}

/* Are the malloc and free the program resolves glibc's own? Names the culprit if not. */
static int over_glibc_malloc(const char **who)
{
    void *def_malloc = dlsym(RTLD_DEFAULT, "malloc");
    void *def_free = dlsym(RTLD_DEFAULT, "free");
    void *h = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    void *libc_malloc = h ? dlsym(h, "malloc") : NULL;
    void *libc_free = h ? dlsym(h, "free") : NULL;
    if (h)
        dlclose(h);
    *who = "?";
    if (!h) {
        *who = "no libc.so.6 in the process";
        return 0;
    }
    if (def_malloc && def_malloc == libc_malloc && def_free && def_free == libc_free)
        return 1;
    Dl_info info;
    void *culprit = def_malloc != libc_malloc ? def_malloc : def_free;
    if (culprit && dladdr(culprit, &info) && info.dli_fname && *info.dli_fname)
        *who = info.dli_fname;
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
    snprintf(line, sizeof line,
             "trimshim: TRIMSHIM_LOG=\"%s\": cannot open (errno %d); using stderr\n", esc, e);
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
    ts_config_from_env(&g_cfg, environ, report_stderr, NULL);
    open_log();
    cond_init();

    const char *who = NULL;
    if (running_on_valgrind()) {
        g_standing_down = 1;
        atomic_store(&g_state, TRIMSHIM_VALGRIND);
        if (g_cfg.verbose >= 1)
            logf_("trimshim: standing down: running under valgrind (no thread)");
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
    g_mallinfo2 = (mallinfo2_fn)dlsym(RTLD_DEFAULT, "mallinfo2");
    if (!g_mallinfo2)
        g_mallinfo = (mallinfo_fn)dlsym(RTLD_DEFAULT, "mallinfo");
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
    if (g_standing_down)
        return atomic_load(&g_state);
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
    uint64_t rss0 = read_rss();
    uint64_t t0 = ts_clock(CLOCK_MONOTONIC);
    malloc_trim(pad);
    uint64_t t1 = ts_clock(CLOCK_MONOTONIC);
    uint64_t rss1 = read_rss();
    uint64_t n = record_trim(t0, t1, rss0, rss1, 0);
    struct ts_obs o;
    memset(&o, 0, sizeof o);
    int used_ok = !g_standing_down && probe(&o) == 0;
    pthread_mutex_lock(&g_mu);
    g_api_gen++;
    g_api_rss = rss1;
    g_api_used = o.heap_used_bytes;
    g_api_used_valid = used_ok;
    if (used_ok) {
        g_base_rss = rss1;
        g_base_used = o.heap_used_bytes;
        g_have_base = 1;
    }
    pthread_mutex_unlock(&g_mu);
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
    s.trims = atomic_load(&g_trims);
    s.background_trims = atomic_load(&g_bg_trims);
    s.bytes_returned = atomic_load(&g_bytes_returned);
    s.trim_ns = atomic_load(&g_trim_ns);
    s.max_trim_ns = atomic_load(&g_max_trim_ns);
    s.last_trim_ns = atomic_load(&g_last_trim_ns);
    s.last_bytes_returned = atomic_load(&g_last_bytes);
    s.futile_trims = atomic_load(&g_futile);
    s.wakeups = atomic_load(&g_wakeups);
    s.probes = atomic_load(&g_probes);
    s.probe_ns = atomic_load(&g_probe_ns);
    s.heap_free_bytes = atomic_load(&g_heap_free);
    s.heap_used_bytes = atomic_load(&g_heap_used);
    s.state = atomic_load(&g_state);
    s.policy = (int)g_cfg.policy;
    pthread_mutex_lock(&g_mu);
    clockid_t cid;
    if (g_thread_live && pthread_getcpuclockid(g_thread, &cid) == 0)
        s.thread_cpu_ns = ts_clock(cid);
    pthread_mutex_unlock(&g_mu);
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
