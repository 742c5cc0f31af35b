/* watchprobe: the sampler `retention watch` preloads into an unmodified program. A thread of its
 * own wakes every interval and appends one JSON line to the file the runner names: RSS and
 * anonymous RSS (/proc/self/status: kernel counters, microseconds to read), the program's CPU
 * time (the process's minus this thread's), and the allocator's own figures, read through the
 * allocator's statistics call found with dlsym (nothing here links an allocator):
 *   glibc     mallinfo2 (mallinfo before 2.33), through rssprobe_read_heap
 *   jemalloc  mallctl: epoch, then stats.allocated, stats.active, stats.resident, stats.retained
 *   tcmalloc  MallocExtension_GetNumericProperty: generic.current_allocated_bytes,
 *             generic.heap_size, tcmalloc.pageheap_free_bytes, tcmalloc.pageheap_unmapped_bytes
 *   mimalloc  mi_process_info: committed bytes (a release build keeps no count of live bytes)
 * A last line is written at exit, from the exiting thread.
 *
 * Rules, because the probe runs inside the program it measures:
 *   - nothing on the sampling path allocates from the heap: lines are formatted on the stack
 *     with integer conversions only (glibc's floating-point printf may malloc) and written with open/write/close (no descriptor stays open for the program to trip over),
 *     /proc is read by rssprobe_procfs into stack buffers;
 *   - no function is interposed; the thread is created with every signal blocked, so it never
 *     takes a signal meant for the program;
 *   - the glibc heap walk (mallinfo2 takes every arena lock and walks the bins: milliseconds on a
 *     heap with 100,000s of free chunks) is spaced so that it takes at most 1% of wall time;
 *     RSS is still read every interval;
 *   - it stands down (no thread, no line but one saying why) under valgrind, and does nothing in
 *     any process but the one the runner started (its children and forks inherit LD_PRELOAD).
 *
 * Environment (set by the runner, all optional but the first):
 *   RETENTION_WATCH_OUT=FILE        where the lines go (appended)
 *   RETENTION_WATCH_PPID=PID        only a process whose parent is PID samples (the runner)
 *   RETENTION_WATCH_INTERVAL_MS=N   1..60000, default 100
 *   RETENTION_WATCH_TRIM=1          glibc only: malloc_trim(0) each time the program goes quiet
 *                                   after working (the reference "explicit trim" of watch) */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rssprobe.h"
#include "rssprobe_internal.h"
#include "rssprobe_origin.h"

#define LINE_MAX_BYTES 768
#define DEFAULT_INTERVAL_MS 100
/* Share of wall time the heap walk may take: the probe's cost target is 1% of one core. */
#define HEAP_BUDGET_DIVISOR 100
/* A window in which the program used less than this share of one core is quiet (the shim's
 * figure, so the trim reference and the shim agree on what quiet is). */
#define QUIET_PERCENT 10
/* CPU the program must have used since the last trim before a quiet window trims again: a
 * sleeping program is trimmed once, not every interval. */
#define TRIM_AFTER_WORK_NS (20LL * 1000 * 1000)

enum allocator { ALLOC_UNKNOWN, ALLOC_GLIBC, ALLOC_JEMALLOC, ALLOC_TCMALLOC, ALLOC_MIMALLOC };
static const char *const allocator_names[] = {"unknown", "glibc", "jemalloc", "tcmalloc", "mimalloc"};

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef int (*tc_property_fn)(const char *, size_t *);
typedef void (*mi_process_info_fn)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *,
                                   size_t *, size_t *);
typedef int (*malloc_trim_fn)(size_t);

static struct {
    char out[PATH_MAX];
    long interval_ms;
    int trim;
    enum allocator alloc;
    char malloc_from[PATH_MAX];
    mallctl_fn mallctl;
    tc_property_fn tc_property;
    mi_process_info_fn mi_info;
    malloc_trim_fn malloc_trim;
    pid_t pid;
    pthread_t thread;
    clockid_t thread_clock;
    int have_thread_clock;
} g;

static atomic_int g_active;  /* 1 while this process samples */
static atomic_int g_exiting; /* set by the exit hook: the thread writes no more */
static atomic_int g_exit_done;

static long long clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return -1;
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- output: one line per write, the file opened and closed each time ------------------- */

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    int overflow;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof l->buf - l->len;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        l->overflow = 1;
        return;
    }
    l->len += (size_t)n;
}

/* A JSON string of a path: only characters that need no escape pass, others become '?'. */
static void put_path(struct line *l, const char *s)
{
    char tmp[PATH_MAX];
    size_t i = 0;
    for (; s[i] && i < sizeof tmp - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        tmp[i] = (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) ? '?' : (char)c;
    }
    tmp[i] = '\0';
    put(l, "\"%s\"", tmp);
}

static void emit(struct line *l)
{
    if (l->overflow || l->len + 1 >= sizeof l->buf)
        return;
    l->buf[l->len++] = '\n';
    int fd;
    do
        fd = open(g.out, O_WRONLY | O_APPEND | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return;
    size_t done = 0;
    while (done < l->len) {
        ssize_t w = write(fd, l->buf + done, l->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    close(fd);
}

/* ---- the allocator -------------------------------------------------------------------------- */

/* Does the object that defines `malloc` for the program also define `name`? Then that
 * statistics call belongs to the allocator that serves the program. */
static void *same_object_symbol(const Dl_info *malloc_info, const char *name)
{
    void *sym = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    if (sym == NULL || !dladdr(sym, &info))
        return NULL;
    return info.dli_fbase == malloc_info->dli_fbase ? sym : NULL;
}

static void find_allocator(void)
{
    Dl_info info;
    g.alloc = ALLOC_UNKNOWN;
    if (!rssprobe_definition_of("malloc", &info))
        return;
    if (info.dli_fname && *info.dli_fname) {
        strncpy(g.malloc_from, info.dli_fname, sizeof g.malloc_from - 1);
        g.malloc_from[sizeof g.malloc_from - 1] = '\0';
    }
    if ((g.mallctl = (mallctl_fn)same_object_symbol(&info, "mallctl")) != NULL) {
        g.alloc = ALLOC_JEMALLOC;
    } else if ((g.tc_property = (tc_property_fn)same_object_symbol(
                    &info, "MallocExtension_GetNumericProperty")) != NULL) {
        g.alloc = ALLOC_TCMALLOC;
    } else if ((g.mi_info = (mi_process_info_fn)same_object_symbol(&info, "mi_process_info")) != NULL) {
        g.alloc = ALLOC_MIMALLOC;
    } else if (same_object_symbol(&info, "malloc_trim") != NULL &&
               same_object_symbol(&info, "gnu_get_libc_version") != NULL) {
        /* malloc comes from glibc itself (ASan, a static allocator in the program or any other
         * preloaded malloc would be named by its own object). */
        g.alloc = ALLOC_GLIBC;
        g.malloc_trim = (malloc_trim_fn)dlsym(RTLD_DEFAULT, "malloc_trim");
    }
}

static int jemalloc_u64(const char *name, uint64_t *v)
{
    /* size_t-sized statistics; uint64_t is the same on 64-bit and holds a 32-bit size_t. */
    size_t s = 0, len = sizeof s;
    if (g.mallctl(name, &s, &len, NULL, 0) != 0)
        return -1;
    *v = s;
    return 0;
}

/* Appends the allocator's figures ("heap":{...}) to l. Returns 0, or -1 when none was read. */
static int put_heap(struct line *l)
{
    switch (g.alloc) {
    case ALLOC_GLIBC: {
        struct rssprobe_heap h;
        if (rssprobe_read_heap(&h) != 0 || h.source == RSSPROBE_HEAP_NONE)
            return -1;
        put(l, ",\"heap\":{\"in_use\":%zu,\"free\":%zu,\"mmap\":%zu,\"arena\":%zu,\"releasable\":%zu}",
            h.in_use_bytes, h.free_bytes, h.mmap_bytes, h.arena_bytes, h.releasable_bytes);
        return 0;
    }
    case ALLOC_JEMALLOC: {
        uint64_t epoch = 1, allocated, active, resident, retained;
        size_t elen = sizeof epoch;
        /* Refreshes the statistics jemalloc caches; without it they stay at their first read. */
        if (g.mallctl("epoch", &epoch, &elen, &epoch, sizeof epoch) != 0)
            return -1;
        if (jemalloc_u64("stats.allocated", &allocated) || jemalloc_u64("stats.active", &active) ||
            jemalloc_u64("stats.resident", &resident) || jemalloc_u64("stats.retained", &retained))
            return -1;
        put(l, ",\"heap\":{\"allocated\":%llu,\"active\":%llu,\"resident\":%llu,\"retained\":%llu}",
            (unsigned long long)allocated, (unsigned long long)active,
            (unsigned long long)resident, (unsigned long long)retained);
        return 0;
    }
    case ALLOC_TCMALLOC: {
        size_t allocated = 0, heap = 0, pfree = 0, unmapped = 0;
        if (!g.tc_property("generic.current_allocated_bytes", &allocated) ||
            !g.tc_property("generic.heap_size", &heap) ||
            !g.tc_property("tcmalloc.pageheap_free_bytes", &pfree) ||
            !g.tc_property("tcmalloc.pageheap_unmapped_bytes", &unmapped))
            return -1;
        put(l, ",\"heap\":{\"allocated\":%zu,\"heap_size\":%zu,\"pageheap_free\":%zu,\"unmapped\":%zu}",
            allocated, heap, pfree, unmapped);
        return 0;
    }
    case ALLOC_MIMALLOC: {
        size_t elapsed = 0, utime = 0, stime = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0,
               faults = 0;
        g.mi_info(&elapsed, &utime, &stime, &rss, &peak_rss, &commit, &peak_commit, &faults);
        put(l, ",\"heap\":{\"committed\":%zu,\"peak_committed\":%zu}", commit, peak_commit);
        return 0;
    }
    case ALLOC_UNKNOWN:
        break;
    }
    return -1;
}

/* ---- one sample ------------------------------------------------------------------------------ */

struct sampler {
    long long next_heap_ns;   /* monotonic time from which the heap may be read again */
    long long last_wall_ns;
    long long last_cpu_ns;    /* the program's CPU at the previous sample */
    long long cpu_since_trim; /* the program's CPU since the last trim */
};

static long long probe_cpu_ns(void)
{
    return g.have_thread_clock ? clock_ns(g.thread_clock) : 0;
}

/* The program's CPU time: the process's, less this probe's thread. */
static long long program_cpu_ns(void)
{
    long long all = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    long long mine = probe_cpu_ns();
    return all >= 0 && mine >= 0 && all >= mine ? all - mine : all;
}

/* Writes one sample line of kind ev ("s", "exit", "trimmed"). with_heap: read the allocator too. */
static void sample(const char *ev, int with_heap, long long *heap_cost_ns)
{
    struct line l = {.len = 0, .overflow = 0};
    struct rssprobe_status st;
    long long now = clock_ns(CLOCK_MONOTONIC);

    if (rssprobe_read_status(&st) != 0) {
        struct rssprobe_statm m;
        st.vm_rss_kb = -1;
        st.rss_anon_kb = -1;
        if (rssprobe_read_statm(&m) == 0) {
            uint64_t b;
            if (rssprobe_pages_to_bytes(m.resident, sysconf(_SC_PAGESIZE), &b) == 0)
                st.vm_rss_kb = (long)(b / 1024);
        }
    }
    put(&l, "{\"watch\":1,\"ev\":\"%s\",\"pid\":%ld,\"t_us\":%lld,\"rss_kb\":%ld,\"anon_kb\":%ld,"
            "\"cpu_us\":%lld,\"probe_cpu_us\":%lld",
        ev, (long)g.pid, now / 1000, st.vm_rss_kb, st.rss_anon_kb, program_cpu_ns() / 1000,
        probe_cpu_ns() / 1000);
    if (with_heap) {
        long long t0 = clock_ns(CLOCK_MONOTONIC);
        int rc = put_heap(&l);
        long long cost = clock_ns(CLOCK_MONOTONIC) - t0;
        if (heap_cost_ns)
            *heap_cost_ns = cost;
        if (rc == 0)
            put(&l, ",\"heap_us\":%lld", cost / 1000);
    }
    put(&l, "}");
    emit(&l);
}

static void start_line(const char *why)
{
    struct line l = {.len = 0, .overflow = 0};
    put(&l, "{\"watch\":1,\"ev\":\"start\",\"pid\":%ld,\"t_us\":%lld,\"interval_ms\":%ld,"
            "\"allocator\":\"%s\",\"malloc_from\":",
        (long)g.pid, clock_ns(CLOCK_MONOTONIC) / 1000, g.interval_ms, allocator_names[g.alloc]);
    put_path(&l, g.malloc_from);
    put(&l, ",\"trim\":%d", g.trim);
    if (why)
        put(&l, ",\"standing_down\":\"%s\"", why);
    put(&l, "}");
    emit(&l);
}

static void trim_now(struct sampler *s)
{
    struct line l = {.len = 0, .overflow = 0};
    long long t0 = clock_ns(CLOCK_MONOTONIC);
    int rc = g.malloc_trim(0);
    long long ns = clock_ns(CLOCK_MONOTONIC) - t0;
    put(&l, "{\"watch\":1,\"ev\":\"trim\",\"pid\":%ld,\"t_us\":%lld,\"returned\":%d,\"trim_us\":%lld}",
        (long)g.pid, (t0 + ns) / 1000, rc, ns / 1000);
    emit(&l);
    s->cpu_since_trim = 0;
    /* The figures right after the trim: what an explicit trim leaves. */
    sample("trimmed", 1, NULL);
}

static void *sampler_main(void *arg)
{
    (void)arg;
    struct sampler s = {0, 0, 0, 0};
    long long interval = g.interval_ms * 1000000LL;
    struct timespec next;

    clock_gettime(CLOCK_MONOTONIC, &next);
    s.last_wall_ns = clock_ns(CLOCK_MONOTONIC);
    s.last_cpu_ns = program_cpu_ns();
    for (;;) {
        long long ns = next.tv_nsec + interval;
        next.tv_sec += ns / 1000000000LL;
        next.tv_nsec = ns % 1000000000LL;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        if (atomic_load(&g_exiting))
            return NULL;
        long long now = clock_ns(CLOCK_MONOTONIC);
        /* After a long stall (the machine suspended, the thread starved) take up the rhythm from
         * now instead of catching up with a burst of samples. */
        if (now - ((long long)next.tv_sec * 1000000000LL + next.tv_nsec) > 5 * interval) {
            next.tv_sec = now / 1000000000LL;
            next.tv_nsec = now % 1000000000LL;
        }
        long long cpu = program_cpu_ns();
        long long dcpu = cpu - s.last_cpu_ns, dwall = now - s.last_wall_ns;
        s.cpu_since_trim += dcpu > 0 ? dcpu : 0;
        s.last_cpu_ns = cpu;
        s.last_wall_ns = now;

        int heap_due = now >= s.next_heap_ns;
        long long cost = 0;
        sample("s", heap_due, &cost);
        if (heap_due)
            s.next_heap_ns = now + cost * HEAP_BUDGET_DIVISOR;

        int quiet = dwall > 0 && dcpu * 100 < dwall * QUIET_PERCENT;
        if (g.trim && g.malloc_trim && quiet && s.cpu_since_trim >= TRIM_AFTER_WORK_NS &&
            !atomic_load(&g_exiting))
            trim_now(&s);
    }
}

/* ---- start and exit -------------------------------------------------------------------------- */

static int running_on_valgrind(void)
{
    /* valgrind preloads its vgpreload_<tool>.so into every client. */
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") ? 1 : 0;
}

static void watch_exit(void)
{
    /* Only the process that started sampling (a fork inherits the flags, not the thread), and
     * once (atexit and the destructor both lead here). */
    if (!atomic_load(&g_active) || getpid() != g.pid || atomic_exchange(&g_exit_done, 1))
        return;
    atomic_store(&g_exiting, 1);
    sample("exit", 1, NULL);
}

__attribute__((destructor)) static void watch_fini(void)
{
    watch_exit();
}

__attribute__((constructor)) static void watch_init(void)
{
    const char *out = getenv("RETENTION_WATCH_OUT");
    if (out == NULL || *out == '\0' || strlen(out) >= sizeof g.out)
        return;
    long ppid = rssprobe_env_long("RETENTION_WATCH_PPID", 1, LONG_MAX, -1);
    if (ppid > 0 && (long)getppid() != ppid)
        return; /* a child of the watched program: its parent is not the runner */
    strcpy(g.out, out);
    g.pid = getpid();
    g.interval_ms = rssprobe_env_long("RETENTION_WATCH_INTERVAL_MS", 1, 60000, DEFAULT_INTERVAL_MS);
    g.trim = rssprobe_env_long("RETENTION_WATCH_TRIM", 0, 1, 0) == 1;
    if (running_on_valgrind()) {
        start_line("valgrind");
        return;
    }
    find_allocator();
    start_line(NULL);
    atomic_store(&g_active, 1);
    /* The baseline: before the program's main runs. */
    sample("s", 1, NULL);

    pthread_attr_t attr;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g.thread, &attr, sampler_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        start_line("no thread");
        atomic_store(&g_active, 0);
        return;
    }
    pthread_detach(g.thread);
    g.have_thread_clock = pthread_getcpuclockid(g.thread, &g.thread_clock) == 0;
    /* Registered after the dynamic linker's exit handler, so it runs before the ELF destructors
     * (those of the program's libraries may free what they hold): the exit line sees the heap as
     * the program's own exit handlers left it. */
    atexit(watch_exit);
}
