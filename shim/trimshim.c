/* libtrimshim runtime: the looks at the process (clocks, statm, minor faults, and mallinfo2
 * probes when the policy asks) and the malloc_trim calls policy.c asks for, made by a background
 * thread or, while the program has one thread, at the program's own blocking waits (interpose.c
 * has that side and its safety argument); the statistics file; fork/exit handling, stand-down
 * detection, the C API.
 *
 * Rules this file keeps (the shim runs inside arbitrary programs):
 *  - No malloc/free wrapper (a forwarding free alone cost 6 % of a malloc-bound loop), so it
 *    cannot break the program's allocation paths. What it interposes is in interpose.c.
 *  - Its work never allocates (malloc_trim, mallinfo2, open/read/close of statm, getrusage,
 *    clock_gettime, snprintf of integers and strings, write, rename), its thread never takes the
 *    program's signals (created with all signals blocked; the creator's mask is restored), and
 *    g_mu is never held across a trim or a probe.
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
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "heapfig.h"
#include "policy.h"
#include "promfile.h"
#include "shim_internal.h"
#include "rssprobe_origin.h"
#include "rssprobe_procfs.h"

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

/* RSS from /proc/self/statm (resident pages; O(1) for the kernel, unlike smaps_rollup) through
 * rssprobe's reader: open/read/close into a stack buffer, no heap. 0 if unreadable or malformed. */
static uint64_t read_rss(void)
{
    struct rssprobe_statm m;
    uint64_t bytes;
    if (rssprobe_read_statm(&m) != 0 ||
        rssprobe_pages_to_bytes(m.resident, g_page_size, &bytes) != 0)
        return 0;
    return bytes;
}

/* mallinfo2 (glibc >= 2.33) or mallinfo (int fields, widened past 4 GiB): heapfig.c. */

static _Atomic uint64_t g_probes, g_probe_ns, g_heap_free, g_heap_used;

/* fills the heap fields of o; returns 0, or -1 if glibc offers neither */
static int probe(struct ts_obs *o)
{
    uint64_t t0 = ts_clock(CLOCK_MONOTONIC);
    struct ts_heapfig hf;
    if (ts_heapfig_read(&hf) != 0)
        return -1;
    o->heap_free_bytes = hf.free_bytes;
    o->heap_used_bytes = hf.used_bytes;
    o->probe_ns = ts_clock(CLOCK_MONOTONIC) - t0;
    o->heap_valid = 1;
    atomic_fetch_add(&g_probes, 1);
    atomic_fetch_add(&g_probe_ns, o->probe_ns);
    atomic_store(&g_heap_free, o->heap_free_bytes);
    atomic_store(&g_heap_used, o->heap_used_bytes);
    return 0;
}

/* CPU time of the shim's work at idle points so far: the program's thread did it, and it must
 * not make the program look busy. */
static _Atomic uint64_t g_idle_cpu_ns;

static uint64_t minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_minflt : 0;
}

/* The shim's own CPU time is subtracted: its thread's (on_thread), and its work at idle points. */
static void observe(struct ts_obs *o, int on_thread)
{
    uint64_t proc = ts_clock(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t self = (on_thread ? ts_clock(CLOCK_THREAD_CPUTIME_ID) : 0) + atomic_load(&g_idle_cpu_ns);
    uint64_t faults = minor_faults();
    memset(o, 0, sizeof *o);
    o->minor_faults = faults;
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

/* Every line names its process: "trimshim[PID]: ", so that the lines of the processes of one
 * server in one log can be told apart. */
static int prefix(char *buf, size_t size)
{
    int n = snprintf(buf, size, "trimshim[%ld]: ", (long)getpid());
    return n < 0 ? 0 : (size_t)n >= size ? (int)size - 1 : n;
}

/* Lines from env.c begin "trimshim: "; the PID goes in here. */
static void report_stderr(const char *line, void *ctx)
{
    (void)ctx;
    int saved = errno;
    char out[600];
    int n = prefix(out, sizeof out);
    if (!strncmp(line, "trimshim: ", 10))
        line += 10;
    size_t len = strlen(line);
    if (len > sizeof out - (size_t)n - 1)
        len = sizeof out - (size_t)n - 1;
    memcpy(out + n, line, len);
    if (len == 0 || out[n + len - 1] != '\n')
        out[n + len++] = '\n';
    write_all(2, out, (size_t)n + len);
    errno = saved;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char line[600];
    int saved = errno;
    int p = prefix(line, sizeof line);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + p, sizeof line - (size_t)p - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    n += p;
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
static _Atomic int g_mode = TRIMSHIM_MODE_NONE;
static _Atomic uint64_t g_trims, g_bg_trims, g_bytes_returned, g_trim_ns, g_max_trim_ns,
    g_last_trim_ns, g_last_bytes, g_futile, g_wakeups;
/* background trims by why (TS_TRIM_QUIET...), minor faults taken back after trims, looks at idle
 * points, CPU time of the shim's threads that have ended */
static _Atomic uint64_t g_kind_trims[4], g_refaults, g_last_refaults, g_idle_looks,
    g_thread_cpu_done_ns;

enum { TS_TRIM_API = 0, TS_TRIM_QUIET, TS_TRIM_BUSY, TS_TRIM_INTERVAL };

static int trim_kind(enum ts_reason r)
{
    return r == TS_R_TRIM_QUIET ? TS_TRIM_QUIET : r == TS_R_TRIM_BUSY ? TS_TRIM_BUSY
                                                                       : TS_TRIM_INTERVAL;
}

/* kind: TS_TRIM_API (trimshim_trim_now) or the background trim's kind */
static uint64_t record_trim(uint64_t t0, uint64_t t1, uint64_t rss0, uint64_t rss1, int kind)
{
    uint64_t ns = t1 > t0 ? t1 - t0 : 0;
    uint64_t back = ts_returned(rss0, rss1);
    uint64_t n = atomic_fetch_add(&g_trims, 1) + 1;
    if (kind != TS_TRIM_API)
        atomic_fetch_add(&g_bg_trims, 1);
    if (kind >= 0 && kind < 4)
        atomic_fetch_add(&g_kind_trims[kind], 1);
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
/* shared state */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv;
static pthread_t g_thread;
static int g_thread_live; /* under g_mu: g_thread is a joinable thread */
static int g_stop_req;    /* under g_mu */
static int g_api_stopped; /* under g_mu: trimshim_stop() was called (and no start since) */
static _Atomic int g_exiting;
static int g_standing_down; /* set once in the constructor */
/* an explicit trim (trimshim_trim_now) publishes its result so the trimmer rebases on it */
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

/* ------------------------------------------------------------------------------------------ */
/* the statistics file (TRIMSHIM_STATS) */

/* The path this process writes, "" if none: exported so that a debugger (or a tool reading the
 * process's memory) finds it without calling anything. */
EXPORT char trimshim_stats_file[TS_STATS_PATH_MAX];

#define TS_STATS_GAP_NS (2ull * TS_NS_PER_S)      /* at most one write per 2 s */
#define TS_STATS_REFRESH_NS (60ull * TS_NS_PER_S) /* gauges (RSS) refreshed at least per minute
                                                   * while the shim looks */
static atomic_flag g_stats_busy = ATOMIC_FLAG_INIT; /* guards everything below */
static int g_stats_closed;   /* exit dealt with the file: no more writes */
static int g_stats_written;  /* this process wrote its file (dev/ino: which one) */
static dev_t g_stats_dev;
static ino_t g_stats_ino;
static int g_stats_err_told; /* a failed write was reported (once) */
static uint64_t g_stats_last_ns, g_stats_key[8];
static char g_stats_text[8192]; /* the file's text: static, not on a program's (maybe small) stack */
static _Atomic int g_stats_pending; /* something changed that is not written yet */
static uint64_t g_start_unix_s;
/* The program's name as it started: program_invocation_short_name points into argv[0], which
 * servers overwrite with their process title (PostgreSQL's backends: "ostgres [local] idle",
 * read mid-rewrite). Copied in the constructor; a forked child keeps its parent's. */
static char g_program[64];

static const char *const g_state_names[] = {"running", "stopped", "off",    "not-glibc",
                                            "valgrind", "failed", "waiting"};

static void stats_values(struct ts_prom_values *v)
{
    memset(v, 0, sizeof *v);
    v->pid = (long)getpid();
    v->program = g_program;
    v->mode = trimshim_mode_name(atomic_load(&g_mode));
    v->policy = g_cfg.policy == TS_POLICY_ADAPTIVE   ? "adaptive"
                : g_cfg.policy == TS_POLICY_INTERVAL ? "interval"
                                                     : "off";
    v->state = atomic_load(&g_state);
    v->state_names = g_state_names;
    v->nstates = (int)(sizeof g_state_names / sizeof *g_state_names);
    v->trims_quiet = atomic_load(&g_kind_trims[TS_TRIM_QUIET]);
    v->trims_busy = atomic_load(&g_kind_trims[TS_TRIM_BUSY]);
    v->trims_interval = atomic_load(&g_kind_trims[TS_TRIM_INTERVAL]);
    v->trims_api = atomic_load(&g_kind_trims[TS_TRIM_API]);
    v->returned_bytes = atomic_load(&g_bytes_returned);
    v->trim_ns = atomic_load(&g_trim_ns);
    v->probe_ns = atomic_load(&g_probe_ns);
    v->probes = atomic_load(&g_probes);
    v->futile = atomic_load(&g_futile);
    v->refault_faults = atomic_load(&g_refaults);
    v->wakeups = atomic_load(&g_wakeups);
    v->idle_points = atomic_load(&g_idle_looks);
    v->heap_free_bytes = atomic_load(&g_heap_free);
    v->heap_used_bytes = atomic_load(&g_heap_used);
    v->rss_bytes = read_rss();
    v->start_time_s = g_start_unix_s;
    struct trimshim_stats s;
    trimshim_get_stats2(&s, sizeof s);
    v->cpu_ns = s.cpu_ns;
}

/* Writes the file (under g_stats_busy). Returns 0 or an errno value. */
static int stats_write_locked(const struct ts_prom_values *v)
{
    size_t len = ts_prom_format(g_stats_text, sizeof g_stats_text, v);
    if (len == 0)
        return ENOBUFS;
    int first = !g_stats_written;
    int err = ts_prom_write(trimshim_stats_file, v->pid, g_stats_text, len, &g_stats_dev,
                            &g_stats_ino);
    if (err) {
        if (!g_stats_err_told) {
            g_stats_err_told = 1;
            char esc[96];
            ts_escape_value(trimshim_stats_file, esc, sizeof esc);
            logf_("TRIMSHIM_STATS=\"%s\": cannot write it (%s); trying again later", esc,
                  err == EEXIST ? "it is no longer a regular file" : strerror(err));
        }
        return err;
    }
    g_stats_written = 1;
    /* the files of dead processes of the same template (killed: no exit code ran), unless the
     * user keeps files (TRIMSHIM_STATS_KEEP=1: then the pile is theirs) */
    if (first && g_cfg.stats_path && !g_cfg.stats_keep)
        ts_prom_collect_stale(g_cfg.stats_path, v->pid);
    return 0;
}

/* After a look: writes the file when something changed and the last write is 2 s old (or a
 * minute old, for the gauges), and the first time. Never waits for the lock. */
static void stats_maybe_write(uint64_t now)
{
    if (!trimshim_stats_file[0] || atomic_flag_test_and_set(&g_stats_busy))
        return;
    if (!g_stats_closed) {
        /* the key from counters alone: the full values (RSS from /proc, the CPU clocks) only
         * for a write, not at every look of a busy server's waits */
        uint64_t trims = 0;
        for (int k = 0; k < 4; k++)
            trims += atomic_load(&g_kind_trims[k]);
        uint64_t key[8] = {trims,
                           atomic_load(&g_bytes_returned),
                           atomic_load(&g_probes),
                           atomic_load(&g_futile),
                           atomic_load(&g_refaults),
                           (uint64_t)atomic_load(&g_state),
                           (uint64_t)atomic_load(&g_mode),
                           0};
        int changed = memcmp(key, g_stats_key, sizeof key) != 0;
        uint64_t since = now - g_stats_last_ns;
        int due = !g_stats_written ? 1
                  : changed         ? since >= TS_STATS_GAP_NS
                                    : since >= TS_STATS_REFRESH_NS;
        struct ts_prom_values v;
        if (due)
            stats_values(&v);
        if (due && stats_write_locked(&v) == 0) {
            memcpy(g_stats_key, key, sizeof key);
            g_stats_last_ns = now;
            changed = 0;
        } else if (due) {
            g_stats_last_ns = now; /* a failed write: try again after the gap, not at once */
        }
        atomic_store(&g_stats_pending, changed);
    }
    atomic_flag_clear(&g_stats_busy);
}

/* when a pending write becomes due (for a look at an idle point) */
static uint64_t stats_due_ns(void) { return g_stats_last_ns + TS_STATS_GAP_NS; }

/* Exit: remove this process's own file, or (TRIMSHIM_STATS_KEEP=1) write it a last time. */
static void stats_at_exit(void)
{
    if (!trimshim_stats_file[0])
        return;
    /* the thread may be writing: that takes microseconds */
    for (int i = 0; atomic_flag_test_and_set(&g_stats_busy); i++) {
        if (i > 100000)
            return;
        sched_yield();
    }
    if (!g_stats_closed) {
        g_stats_closed = 1;
        if (g_cfg.stats_keep) {
            struct ts_prom_values v;
            stats_values(&v);
            stats_write_locked(&v);
        } else if (g_stats_written) {
            ts_prom_remove_own(trimshim_stats_file, g_stats_dev, g_stats_ino);
        }
    }
    atomic_flag_clear(&g_stats_busy);
}

/* The path of this process's file from the template; "" when there is none. Complains (one
 * line) about a target a rename must not replace. A forked child of a fixed path (no %p) writes
 * nothing: that file is its parent's. */
static void stats_open(int in_child)
{
    trimshim_stats_file[0] = 0;
    g_stats_closed = 0;
    g_stats_written = 0;
    g_stats_err_told = 0;
    g_stats_last_ns = 0;
    memset(g_stats_key, 0, sizeof g_stats_key);
    atomic_store(&g_stats_pending, 0);
    atomic_flag_clear(&g_stats_busy);
    const char *t = g_cfg.stats_path;
    if (!t || (in_child && !strstr(t, "%p")))
        return;
    char path[TS_STATS_PATH_MAX], why[256];
    if (ts_expand_stats_template(t, (long)getpid(), path, sizeof path) != 0)
        return;
    if (ts_prom_check_target(path, why, sizeof why) != 0) {
        if (!in_child) {
            char esc[96], line[512];
            ts_escape_value(t, esc, sizeof esc);
            snprintf(line, sizeof line, "trimshim: TRIMSHIM_STATS=\"%s\": %s; no statistics file\n",
                     esc, why);
            report_stderr(line, NULL);
        }
        return;
    }
    memcpy(trimshim_stats_file, path, strlen(path) + 1);
}

/* ------------------------------------------------------------------------------------------ */
/* the engine: one policy state, stepped by the thread or at the program's idle points */

struct engine {
    struct ts_policy_state st;
    int ready;
    enum ts_reason last_reason;
    uint64_t seen_gen;         /* the last trimshim_trim_now taken into account */
    uint64_t seen_refault_seq; /* the last refault watch reported */
    uint64_t seen_futile;      /* st.futile already added to g_futile */
    uint64_t trim_no;          /* the number of this engine's last trim (for the refault line) */
};

/* idle points: may the heap be touched in this look? (a raw-rt_sigaction handler could be the
 * one running: see interpose.c) */
static int g_idle_scanned, g_idle_heap_ok, g_idle_foreign;

static void stop_idle_foreign(void);

static int heap_ok(int on_thread)
{
    if (on_thread)
        return 1;
    if (!g_idle_scanned) {
        sigset_t handled;
        g_idle_scanned = 1;
        g_idle_heap_ok = ts_sig_scan(&handled) == 0;
        if (!g_idle_heap_ok)
            stop_idle_foreign();
    }
    return g_idle_heap_ok;
}

static void engine_start(struct engine *e, int on_thread)
{
    struct ts_obs o;
    memset(e, 0, sizeof *e);
    observe(&o, on_thread);
    probe(&o); /* the baseline: what is resident and in use when the trimmer starts */
    ts_policy_init(&e->st, &g_cfg, &o);
    pthread_mutex_lock(&g_mu);
    e->seen_gen = g_api_gen;
    if (g_have_base && o.heap_valid) {
        e->st.base_rss_bytes = g_base_rss;
        e->st.base_used_bytes = g_base_used;
        e->st.last_est = ts_policy_trimmable(&e->st, &o);
    }
    pthread_mutex_unlock(&g_mu);
    e->last_reason = TS_R_OFF;
    e->ready = 1;
}

static void log_refault(const struct engine *e)
{
    const struct ts_refault *r = &e->st.last_refault;
    char b1[32];
    logf_("trim %llu: %llu minor faults in the %s after it, %llu expected from the rate before "
          "it: %s",
          (unsigned long long)e->trim_no, (unsigned long long)r->faults_after,
          fmt_ms(r->window_ns, b1, sizeof b1), (unsigned long long)r->faults_expected,
          !r->futile    ? "the pages stayed returned"
          : r->by_faults ? "pages taken back (futile, backoff doubled)"
                         : "RSS back up (futile, backoff doubled)");
}

/* One look: observe, decide, and probe or trim when the policy says so. */
static struct ts_decision engine_step(struct engine *e, int on_thread)
{
    const struct ts_config *cfg = &g_cfg;
    struct ts_obs o, after;
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    struct ts_decision d = {TS_SLEEP, TS_R_UNCHANGED, cfg->interval_ns, 0};

    if (!e->ready) {
        if (!heap_ok(on_thread))
            return d;
        engine_start(e, on_thread);
    }
    pthread_mutex_lock(&g_mu);
    uint64_t api_gen = g_api_gen, api_rss = g_api_rss, api_used = g_api_used;
    int api_used_ok = g_api_used_valid;
    pthread_mutex_unlock(&g_mu);
    if (api_gen != e->seen_gen) { /* trimshim_trim_now ran: start from its result */
        e->seen_gen = api_gen;
        e->st.base_rss_bytes = api_rss;
        if (api_used_ok)
            e->st.base_used_bytes = api_used;
        e->st.last_est = 0;
        e->st.pending = 0;
    }
    observe(&o, on_thread);
    atomic_fetch_add(&g_wakeups, 1);
    if (!on_thread)
        atomic_fetch_add(&g_idle_looks, 1);
    d = ts_policy_decide(&e->st, cfg, &o);
    if (d.action == TS_PROBE) {
        if (!heap_ok(on_thread) || probe(&o) != 0)
            d.action = TS_SLEEP;
        else
            d = ts_policy_decide(&e->st, cfg, &o);
    }
    if (e->st.refault_seq != e->seen_refault_seq) { /* a refault watch ended in that look */
        e->seen_refault_seq = e->st.refault_seq;
        atomic_fetch_add(&g_refaults, e->st.last_refault.excess);
        atomic_store(&g_last_refaults, e->st.last_refault.excess);
        if (cfg->verbose >= 1)
            log_refault(e);
    }
    if (cfg->verbose >= 2 && d.reason != e->last_reason)
        logf_("decision %s (program %s, trimmable %s, backoff %u, trim cost %s, probe cost %s)",
              ts_reason_name(d.reason), e->st.quiet ? "quiet" : "busy",
              fmt_bytes(d.trimmable, b1, sizeof b1), e->st.backoff,
              fmt_ms(e->st.cost_ewma_ns, b2, sizeof b2),
              fmt_ms(e->st.probe_cost_ewma_ns, b3, sizeof b3));
    e->last_reason = d.reason;
    if (d.action == TS_TRIM && !atomic_load(&g_exiting) && heap_ok(on_thread)) {
        malloc_trim((size_t)cfg->pad);
        observe(&after, on_thread);
        uint64_t n = record_trim(o.now_ns, after.now_ns, o.rss_bytes, after.rss_bytes,
                                 trim_kind(d.reason));
        e->trim_no = n;
        probe(&after); /* the new baseline */
        ts_policy_trimmed(&e->st, cfg, &o, &after);
        pthread_mutex_lock(&g_mu);
        g_base_rss = e->st.base_rss_bytes;
        g_base_used = e->st.base_used_bytes;
        g_have_base = 1;
        pthread_mutex_unlock(&g_mu);
        if (cfg->verbose >= 1)
            logf_("trim %llu (%s): returned %s in %s (rss %s -> %s, estimated trimmable %s)",
                  (unsigned long long)n, ts_reason_name(d.reason),
                  fmt_bytes(ts_returned(o.rss_bytes, after.rss_bytes), b1, sizeof b1),
                  fmt_ms(after.now_ns - o.now_ns, b2, sizeof b2),
                  fmt_bytes(o.rss_bytes, b3, sizeof b3), fmt_bytes(after.rss_bytes, b4, sizeof b4),
                  fmt_bytes(d.trimmable, b5, sizeof b5));
    }
    if (e->st.futile != e->seen_futile) {
        atomic_fetch_add(&g_futile, e->st.futile - e->seen_futile);
        e->seen_futile = e->st.futile;
    }
    stats_maybe_write(ts_clock(CLOCK_MONOTONIC));
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* the background thread */

/* Sleeps ns or until asked to stop. Returns 1 when the thread must end. */
static int sleep_or_stop(uint64_t ns)
{
    uint64_t deadline = ts_clock(CLOCK_MONOTONIC) + ns;
    struct timespec ts = {(time_t)(deadline / TS_NS_PER_S), (long)(deadline % TS_NS_PER_S)};
    pthread_mutex_lock(&g_mu);
    while (!g_stop_req && !atomic_load(&g_exiting)) {
        if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) == ETIMEDOUT)
            break;
    }
    int stop = g_stop_req || atomic_load(&g_exiting);
    pthread_mutex_unlock(&g_mu);
    return stop;
}

static struct engine g_thread_eng; /* the thread's only (one thread at a time, joined on stop) */

static void *thread_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "trimshim");
    struct engine *e = &g_thread_eng;
    e->ready = 0;
    engine_start(e, 1);
    uint64_t sleep_ns = g_cfg.interval_ns;
    while (!sleep_or_stop(sleep_ns))
        sleep_ns = engine_step(e, 1).sleep_ns;
    atomic_fetch_add(&g_thread_cpu_done_ns, ts_clock(CLOCK_THREAD_CPUTIME_ID));
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
    int rc = ts_real_pthread_create(&g_thread, &attr, thread_main, NULL);
    if (rc == EINVAL) /* static TLS larger than our small stack: use the default size */
        rc = ts_real_pthread_create(&g_thread, NULL, thread_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_store(&g_state, TRIMSHIM_FAILED);
        atomic_store(&g_mode, TRIMSHIM_MODE_NONE);
        if (g_cfg.verbose >= 1)
            logf_("cannot create the trimmer thread (error %d); not trimming", rc);
        return TRIMSHIM_FAILED;
    }
    g_thread_live = 1;
    g_stop_req = 0;
    atomic_store(&g_state, TRIMSHIM_RUNNING);
    atomic_store(&g_mode, TRIMSHIM_MODE_THREAD);
    return TRIMSHIM_RUNNING;
}

/* ------------------------------------------------------------------------------------------ */
/* idle points: the shim's work in the program's only thread (interpose.c calls these) */

_Atomic int ts_idle_on;
_Atomic uint64_t ts_idle_due_ns;
static _Atomic int g_in_work;      /* the program's thread is inside the shim's work */
static int g_idle_capable;         /* set in the constructor: idle points may be used here */
static const volatile char *g_single; /* glibc's __libc_single_threaded (2.32+) */
static struct engine g_idle_eng;

#define TS_IDLE_RECHECK_NS (10ull * TS_NS_PER_MS) /* after a wait whose event was ready */

/* Idle points on (program single-threaded), under g_mu. */
static void idle_start_locked(void)
{
    g_idle_eng.ready = 0; /* a new baseline, as a new thread takes */
    atomic_store(&ts_idle_due_ns, 0);
    atomic_store(&g_state, TRIMSHIM_RUNNING);
    atomic_store(&g_mode, TRIMSHIM_MODE_IDLE);
    atomic_store(&ts_idle_on, 1);
}

/* The program has (or is about to have) a second thread: the background thread takes over.
 * Only from outside any signal handler and outside the shim's own work: a malloc interrupted
 * in single-thread mode holds no lock, and the new thread would not wait for it. */
static void switch_to_thread(const char *why)
{
    int switched = 0;
    pthread_mutex_lock(&g_mu);
    int mode = atomic_load(&g_mode);
    if (!g_api_stopped && !g_thread_live && !atomic_load(&g_exiting) &&
        (mode == TRIMSHIM_MODE_IDLE || atomic_load(&g_state) == TRIMSHIM_WAITING)) {
        atomic_store(&ts_idle_on, 0);
        switched = spawn_locked() == TRIMSHIM_RUNNING;
    }
    pthread_mutex_unlock(&g_mu);
    if (switched && g_cfg.verbose >= 1)
        logf_("%s: trimming from a thread of its own from now on", why);
}

static void stop_idle_foreign(void)
{
    pthread_mutex_lock(&g_mu);
    g_idle_foreign = 1;
    atomic_store(&ts_idle_on, 0);
    atomic_store(&g_mode, TRIMSHIM_MODE_NONE);
    atomic_store(&g_state, TRIMSHIM_WAITING);
    pthread_mutex_unlock(&g_mu);
    if (g_cfg.verbose >= 1)
        logf_("a signal handler was installed behind the shim's back (a raw rt_sigaction): no "
              "trimming at the program's waits, which that handler could be running; trimming "
              "again once the program starts a thread");
}

int ts_idle_may_work(void)
{
    if (!atomic_load(&ts_idle_on) || atomic_load(&g_in_work) || atomic_load(&g_exiting))
        return 0;
    if (ts_handler_depth() != 0)
        return 0;
    if (!*g_single) {
        switch_to_thread("the process has a second thread");
        return 0;
    }
    return syscall(SYS_gettid) == getpid(); /* a raw clone() thread is not the main one */
}

void ts_idle_event_ready(void)
{
    atomic_store(&ts_idle_due_ns, ts_clock(CLOCK_MONOTONIC) + TS_IDLE_RECHECK_NS);
}

enum ts_idle_step ts_idle_step(uint64_t deadline_ns, uint64_t *seg_ns)
{
    sigset_t block, old, pend;
    *seg_ns = 0;
    if (!ts_idle_may_work())
        return TS_IDLE_REST;
    ts_sig_handled_set(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    atomic_store(&g_in_work, 1);
    g_idle_scanned = 0;
    uint64_t c0 = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    struct ts_decision d = engine_step(&g_idle_eng, 0);
    uint64_t c1 = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    atomic_fetch_add(&g_idle_cpu_ns, c1 > c0 ? c1 - c0 : 0);
    atomic_store(&g_in_work, 0);
    /* a signal with a handler that came during the work and that the program's mask lets
     * through runs when the mask is restored: the wait then returns interrupted */
    int interrupted = 0;
    if (sigpending(&pend) == 0)
        for (int sig = 1; sig <= SIGRTMAX; sig++)
            if (sigismember(&block, sig) == 1 && sigismember(&pend, sig) == 1 &&
                sigismember(&old, sig) == 0)
                interrupted = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    uint64_t now = ts_clock(CLOCK_MONOTONIC);
    uint64_t next = now + d.sleep_ns;
    int pending = atomic_load(&g_stats_pending);
    if (pending && stats_due_ns() < next)
        next = stats_due_ns() > now ? stats_due_ns() : now + TS_NS_PER_MS;
    atomic_store(&ts_idle_due_ns, next);
    if (interrupted)
        return TS_IDLE_INTERRUPTED;
    if (!atomic_load(&ts_idle_on))
        return TS_IDLE_REST;
    /* nothing happened since the last look: while the program waits, nothing can */
    (void)deadline_ns;
    if (d.reason == TS_R_UNCHANGED && !pending)
        return TS_IDLE_REST;
    *seg_ns = next - now;
    return TS_IDLE_SEGMENT;
}

/* The idle engine's baseline right away (the constructor, trimshim_start): the heap the program
 * starts with, as a thread started then would see it, not the one at its first wait (after the
 * frees a program makes before it first waits, which would then make the first probe a dear
 * one). Outside any handler; the program's handled signals blocked meanwhile. */
static void idle_engine_start_now(void)
{
    sigset_t block, old;
    ts_sig_handled_set(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    atomic_store(&g_in_work, 1);
    g_idle_scanned = 0;
    uint64_t c0 = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    if (!g_idle_eng.ready && heap_ok(0))
        engine_start(&g_idle_eng, 0);
    uint64_t c1 = ts_clock(CLOCK_THREAD_CPUTIME_ID);
    atomic_fetch_add(&g_idle_cpu_ns, c1 > c0 ? c1 - c0 : 0);
    atomic_store(&g_in_work, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void ts_program_creates_thread(void)
{
    if (!g_idle_capable || atomic_load(&g_mode) == TRIMSHIM_MODE_THREAD ||
        atomic_load(&g_in_work) || ts_handler_depth() != 0)
        return;
    switch_to_thread("the program starts a thread");
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
    int was_idle = atomic_load(&ts_idle_on);
    g_thread_live = 0;
    g_stop_req = 0;
    atomic_store(&g_in_work, 0);
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
    for (int k = 0; k < 4; k++)
        atomic_store(&g_kind_trims[k], 0);
    atomic_store(&g_refaults, 0);
    atomic_store(&g_last_refaults, 0);
    atomic_store(&g_idle_looks, 0);
    atomic_store(&g_idle_cpu_ns, 0); /* the child's CPU clocks start at 0 too */
    atomic_store(&g_thread_cpu_done_ns, 0);
    stats_open(1); /* its own file (%p), or none (a fixed path is the parent's) */
    /* The child measures from its own RSS: the baseline of the parent's last trim counts the
     * parent's shared memory, which fork does not map into the child (a PostgreSQL backend
     * starts ~30 MiB below its postmaster), so the child's heap would never look trimmable. */
    g_have_base = 0;
    g_api_used_valid = 0;
    if (was_idle && !atomic_load(&g_exiting)) {
        idle_start_locked(); /* the child is single-threaded too: it goes on at its waits */
    } else if (was_running && !atomic_load(&g_exiting)) {
        /* glibc keeps a multi-threaded parent's child on the multi-thread malloc paths: the
         * child gets its own trimmer thread */
        spawn_locked();
    } else if (was_running) {
        atomic_store(&g_state, TRIMSHIM_STOPPED);
        atomic_store(&g_mode, TRIMSHIM_MODE_NONE);
    }
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
    Dl_info m_info, f_info;
    int have_m = rssprobe_definition_of("malloc", &m_info);
    int have_f = rssprobe_definition_of("free", &f_info);
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
    int m_ok = have_m && m_info.dli_saddr == libc_malloc;
    int f_ok = have_f && f_info.dli_saddr == libc_free;
    if (m_ok && f_ok)
        return 1;
    const Dl_info *culprit = !m_ok ? (have_m ? &m_info : NULL) : (have_f ? &f_info : NULL);
    if (culprit && culprit->dli_fname && *culprit->dli_fname)
        *who = culprit->dli_fname;
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
    g_cfg.page_size = (uint64_t)g_page_size;
    open_log();
    cond_init();
    ts_interpose_init(0);
    g_start_unix_s = (uint64_t)time(NULL);
    snprintf(g_program, sizeof g_program, "%s", program_invocation_short_name);

    const char *who = NULL;
    if (running_on_valgrind()) {
        g_standing_down = 1;
        atomic_store(&g_state, TRIMSHIM_VALGRIND);
        if (g_cfg.verbose >= 1)
            logf_("standing down: running under valgrind (no thread)");
        return;
    }
    if (!over_glibc_malloc(&who)) {
        g_standing_down = 1;
        atomic_store(&g_state, TRIMSHIM_NOT_GLIBC);
        if (g_cfg.verbose >= 1)
            logf_("standing down: malloc is not glibc's (it comes from %s); "
                  "malloc_trim would do nothing",
                  who);
        return;
    }
    ts_heapfig_init(g_cfg.verbose >= 1 ? logf_ : NULL);
    pthread_atfork(at_prepare, at_parent, at_child);
    stats_open(0);
    if (g_cfg.policy == TS_POLICY_OFF) {
        atomic_store(&g_state, TRIMSHIM_OFF);
        if (g_cfg.verbose >= 1)
            logf_("policy off: no background trimming");
        return;
    }
    /* No thread while the program has one (TRIMSHIM_THREAD=auto): glibc malloc keeps its
     * single-thread paths. Needs glibc's __libc_single_threaded (2.32+) to know. */
    g_single = (const volatile char *)dlsym(RTLD_DEFAULT, "__libc_single_threaded");
    g_idle_capable = g_cfg.thread == TS_THREAD_AUTO && g_single != NULL;
    if (g_idle_capable)
        ts_interpose_init(1); /* from now on every handler the program installs is counted */
    pthread_mutex_lock(&g_mu);
    int rc = TRIMSHIM_RUNNING;
    if (g_idle_capable && *g_single && syscall(SYS_gettid) == getpid())
        idle_start_locked();
    else
        rc = spawn_locked();
    pthread_mutex_unlock(&g_mu);
    if (atomic_load(&g_mode) == TRIMSHIM_MODE_IDLE)
        idle_engine_start_now();
    if (rc == TRIMSHIM_RUNNING && g_cfg.verbose >= 1) {
        char b1[32], b2[32];
        logf_("running: policy %s, interval %llu ms, threshold %s, pad %s, budget "
              "%u.%u%%, busy wait %llu ms, %s%s%s",
              g_cfg.policy == TS_POLICY_INTERVAL ? "interval" : "adaptive",
              (unsigned long long)(g_cfg.interval_ns / TS_NS_PER_MS),
              fmt_bytes(g_cfg.threshold, b1, sizeof b1), fmt_bytes(g_cfg.pad, b2, sizeof b2),
              g_cfg.budget_ppm / 10000, g_cfg.budget_ppm % 10000 / 1000,
              (unsigned long long)(g_cfg.busy_wait_ns / TS_NS_PER_MS),
              atomic_load(&g_mode) == TRIMSHIM_MODE_IDLE
                  ? "at the program's waits (no thread while it has one)"
                  : "from a thread",
              trimshim_stats_file[0] ? ", statistics in " : "", trimshim_stats_file);
    }
}

__attribute__((destructor)) static void ts_fini(void)
{
    /* Do not join: the thread may be inside a long trim, and exit must not wait for it. It sees
     * g_exiting after its sleep or its trim and starts no new trim; _exit ends it. */
    atomic_store(&g_exiting, 1);
    atomic_store(&ts_idle_on, 0);
    stats_at_exit();
    if (g_cfg.verbose >= 1 && !g_standing_down) {
        char b1[32], b2[32];
        logf_("exit: %llu trims (%llu background), %s returned, %s in malloc_trim",
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
    g_api_stopped = 0;
    int rc = TRIMSHIM_RUNNING, start_now = 0;
    if (g_thread_live || atomic_load(&ts_idle_on))
        rc = TRIMSHIM_RUNNING;
    else if (g_idle_capable && !g_idle_foreign && *g_single && syscall(SYS_gettid) == getpid())
    {
        idle_start_locked();
        start_now = 1;
    }
    else if (g_idle_foreign && *g_single)
        atomic_store(&g_state, rc = TRIMSHIM_WAITING); /* until the program starts a thread */
    else
        rc = spawn_locked();
    pthread_mutex_unlock(&g_mu);
    if (start_now)
        idle_engine_start_now();
    return rc;
}

EXPORT void trimshim_stop(void)
{
    ts_init();
    pthread_mutex_lock(&g_mu);
    g_api_stopped = 1;
    if (atomic_load(&ts_idle_on) || atomic_load(&g_state) == TRIMSHIM_WAITING) {
        atomic_store(&ts_idle_on, 0);
        atomic_store(&g_mode, TRIMSHIM_MODE_NONE);
        atomic_store(&g_state, TRIMSHIM_STOPPED);
    }
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
    if (!g_thread_live) {
        atomic_store(&g_state, TRIMSHIM_STOPPED);
        atomic_store(&g_mode, TRIMSHIM_MODE_NONE);
    }
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
        logf_("trim %llu (api): returned %s in %s", (unsigned long long)n,
              fmt_bytes(ts_returned(rss0, rss1), b1, sizeof b1), fmt_ms(t1 - t0, b2, sizeof b2));
    }
    return ts_returned(rss0, rss1);
}

EXPORT void trimshim_get_stats2(struct trimshim_stats *out, size_t size)
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
    s.mode = atomic_load(&g_mode);
    s.pid = (int)getpid();
    s.quiet_trims = atomic_load(&g_kind_trims[TS_TRIM_QUIET]);
    s.busy_trims = atomic_load(&g_kind_trims[TS_TRIM_BUSY]);
    s.interval_trims = atomic_load(&g_kind_trims[TS_TRIM_INTERVAL]);
    s.refault_faults = atomic_load(&g_refaults);
    s.last_refault_faults = atomic_load(&g_last_refaults);
    s.idle_looks = atomic_load(&g_idle_looks);
    pthread_mutex_lock(&g_mu);
    clockid_t cid;
    if (g_thread_live && pthread_getcpuclockid(g_thread, &cid) == 0)
        s.thread_cpu_ns = ts_clock(cid);
    s.cpu_ns = s.thread_cpu_ns + atomic_load(&g_thread_cpu_done_ns) + atomic_load(&g_idle_cpu_ns);
    pthread_mutex_unlock(&g_mu);
    memcpy(out, &s, size < sizeof s ? size : sizeof s);
}

EXPORT void trimshim_get_stats(struct trimshim_stats *out)
{
    struct trimshim_stats s;
    trimshim_get_stats2(&s, sizeof s);
    memcpy(out, &s, offsetof(struct trimshim_stats, mode)); /* version 1's size */
}

EXPORT const char *trimshim_stats_path(void) { return trimshim_stats_file; }

EXPORT const char *trimshim_mode_name(int mode)
{
    switch (mode) {
    case TRIMSHIM_MODE_THREAD: return "thread";
    case TRIMSHIM_MODE_IDLE: return "idle-points";
    }
    return "none";
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
    case TRIMSHIM_WAITING: return "waiting";
    }
    return "unknown";
}
