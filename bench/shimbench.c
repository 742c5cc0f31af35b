/* shimbench: the workloads of the trim-shim benchmark. One scenario per run, one JSON object on
 * stdout. The bench script (shim-bench) runs each scenario with no trimmer, with
 * libtrimshim.so preloaded, and with a naive periodic malloc_trim(0) thread (--naive-ms), side
 * by side.
 *
 *   shimbench churn [--threads 2] [--ops N] [--idle S]
 *       (a) T threads, each: free a random slot of 4096, malloc 16 B..128 KiB (log-uniform),
 *           touch one byte per page. Fixed work: reports wall and CPU time.
 *   shimbench frag [--chunks 200000] [--busy S] [--quiet S] [--sync 1]
 *       (b) 200,000 x 8 KiB chunks with a live 32 B node after each, the 8 KiB ones freed
 *           (~1.6 GB free, fragmented), then a single-threaded busy loop of small malloc/free for
 *           S seconds (reports operations), then quiet. --sync 1: once the heap is built, write
 *           "ready" to stdout and wait for a byte on stdin before the free, so that the script can
 *           start two runs' busy phases at the same moment (the paired scenario).
 *   shimbench seed [--count 10000] [--idle S]
 *       (c) the seed report: 64 KiB blocks each followed by a list node, blocks freed, idle; the
 *           seed case's own code (cases/seed_list.cpp).
 *
 * Every scenario ends with an explicit malloc_trim(0) in the same process: its RSS is the
 * reference ("explicit trim figure"), and the RSS samples taken before it (every 100 ms, by the
 * measuring thread itself, never by an extra thread) tell when RSS first was <= 1.05x of it.
 * Common option: --naive-ms MS starts a thread calling malloc_trim(0) every MS ms.
 * No stdio until the end (stdout's buffer would be a heap chunk of its own). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rssprobe_procfs.h"
#include "seed_list.h"
#include "trimshim.h"

static uint64_t clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
static uint64_t now_ns(void) { return clk(CLOCK_MONOTONIC); }

/* RSS in kB from /proc/self/statm, -1 if unreadable. statm, not smaps_rollup: the busy loops
 * sample every 100 ms, and smaps_rollup walks the page tables of the whole heap (2.5 ms per read
 * on a 660 MB heap against 3 us for statm, measured here). */
static long rss_kb(void)
{
    struct rssprobe_statm m;
    uint64_t bytes;
    if (rssprobe_read_statm(&m) != 0 ||
        rssprobe_pages_to_bytes(m.resident, sysconf(_SC_PAGESIZE), &bytes) != 0 ||
        bytes / 1024 > (uint64_t)LONG_MAX)
        return -1;
    return (long)(bytes / 1024);
}

/* ---- RSS timeline (static storage: no heap) ---- */
#define MAX_SAMPLES 20000
static struct sample {
    uint32_t t_ms; /* since the free */
    int32_t rss_kb;
    uint8_t phase; /* 0 busy/run, 1 idle/quiet */
} samples[MAX_SAMPLES];
static int nsamples;
static uint64_t t_origin;

static void sample(int phase)
{
    if (nsamples >= MAX_SAMPLES)
        return;
    samples[nsamples].t_ms = (uint32_t)((now_ns() - t_origin) / 1000000ull);
    samples[nsamples].rss_kb = (int32_t)rss_kb();
    samples[nsamples].phase = (uint8_t)phase;
    nsamples++;
}

/* first sample (of phase, or any if phase < 0) with rss <= target; -1 if none */
static long reach_ms(long target, int phase, uint32_t rel_to_ms)
{
    for (int i = 0; i < nsamples; i++)
        if ((phase < 0 || samples[i].phase == phase) && samples[i].rss_kb <= target)
            return (long)samples[i].t_ms - (long)rel_to_ms;
    return -1;
}

/* ---- naive periodic trimmer ---- */
static int naive_ms;
static atomic_int naive_stop;
static _Atomic uint64_t naive_trims, naive_ns;
static pthread_t naive_thread;

static void *naive_main(void *a)
{
    (void)a;
    while (!atomic_load(&naive_stop)) {
        usleep((useconds_t)naive_ms * 1000);
        uint64_t t0 = now_ns();
        malloc_trim(0);
        atomic_fetch_add(&naive_ns, now_ns() - t0);
        atomic_fetch_add(&naive_trims, 1);
    }
    return NULL;
}

static void naive_start(void)
{
    if (naive_ms > 0)
        pthread_create(&naive_thread, NULL, naive_main, NULL);
}

static void naive_end(void)
{
    if (naive_ms > 0) {
        atomic_store(&naive_stop, 1);
        pthread_join(naive_thread, NULL);
    }
}

/* ---- what the trimmer did during a window (the busy phase) ---- */
struct snap {
    struct trimshim_stats s;
    uint64_t naive_trims, naive_ns;
};

static void take(struct snap *n)
{
    typedef void (*stats_fn)(struct trimshim_stats *);
    stats_fn f = (stats_fn)dlsym(RTLD_DEFAULT, "trimshim_get_stats");
    memset(n, 0, sizeof *n);
    if (f)
        f(&n->s);
    n->naive_trims = atomic_load(&naive_trims);
    n->naive_ns = atomic_load(&naive_ns);
}

/* ---- output ---- */
static char out[8192];
static size_t outlen;
static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + outlen, sizeof out - outlen, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof out - outlen)
        outlen += (size_t)n;
}

static const char *state_name(int st)
{
    static const char *const names[] = {"running", "stopped", "off", "not-glibc", "valgrind",
                                        "failed"};
    return st >= 0 && st <= 5 ? names[st] : "unknown";
}

static void put_window(const char *name, const struct snap *a, const struct snap *b)
{
    put(",\"%s_trims\":%llu,\"%s_trim_ms\":%.1f,\"%s_shim_cpu_ms\":%.1f,"
        "\"%s_shim_probes\":%llu,\"%s_shim_probe_ms\":%.2f,\"%s_shim_wakeups\":%llu",
        name,
        (unsigned long long)(b->s.background_trims - a->s.background_trims + b->naive_trims -
                             a->naive_trims),
        name, (double)(b->s.trim_ns - a->s.trim_ns + b->naive_ns - a->naive_ns) / 1e6, name,
        (double)(b->s.thread_cpu_ns - a->s.thread_cpu_ns) / 1e6, name,
        (unsigned long long)(b->s.probes - a->s.probes), name,
        (double)(b->s.probe_ns - a->s.probe_ns) / 1e6, name,
        (unsigned long long)(b->s.wakeups - a->s.wakeups));
}

static void put_common_tail(long ref_kb, uint64_t ref_trim_ns)
{
    typedef void (*stats_fn)(struct trimshim_stats *);
    stats_fn f = (stats_fn)dlsym(RTLD_DEFAULT, "trimshim_get_stats");
    struct trimshim_stats s;
    memset(&s, 0, sizeof s);
    if (f)
        f(&s);
    put(",\"ref_kb\":%ld,\"ref_trim_ms\":%.1f", ref_kb, (double)ref_trim_ns / 1e6);
    put(",\"shim\":%s,\"shim_state\":\"%s\",\"shim_trims\":%llu,\"shim_trim_ms\":%.1f,"
        "\"shim_max_trim_ms\":%.1f,\"shim_bytes_back\":%llu,\"shim_futile\":%llu",
        f ? "true" : "false", f ? state_name(s.state) : "absent",
        (unsigned long long)s.background_trims, (double)s.trim_ns / 1e6,
        (double)s.max_trim_ns / 1e6, (unsigned long long)s.bytes_returned,
        (unsigned long long)s.futile_trims);
    put(",\"naive_ms\":%d,\"naive_trims\":%llu,\"naive_trim_ms\":%.1f", naive_ms,
        (unsigned long long)atomic_load(&naive_trims), (double)atomic_load(&naive_ns) / 1e6);
    put("}\n");
    if (write(1, out, outlen) != (ssize_t)outlen)
        exit(3);
}

/* explicit trim: the reference figure */
static long explicit_trim(uint64_t *ns)
{
    uint64_t t0 = now_ns();
    malloc_trim(0);
    *ns = now_ns() - t0;
    return rss_kb();
}

/* Right after the free: RSS at once, then a sample every sample_ms for idle_s seconds (the time
 * origin is the free), the naive trimmer stopped, then the explicit trim. */
struct idle_figures {
    long after_free_kb, after_idle_kb, ref_kb;
    uint64_t ref_ns;
};

static void idle_then_trim(int idle_s, unsigned sample_ms, struct idle_figures *a)
{
    t_origin = now_ns();
    a->after_free_kb = rss_kb();
    uint64_t end = t_origin + (uint64_t)idle_s * 1000000000ull;
    while (now_ns() < end) {
        usleep((useconds_t)sample_ms * 1000);
        sample(1);
    }
    a->after_idle_kb = rss_kb();
    naive_end();
    a->ref_kb = explicit_trim(&a->ref_ns);
}

/* ---- (a) churn ---- */
struct churn_arg {
    long ops;
    unsigned seed;
    void **slot;
};
enum { CHURN_SLOTS = 4096 };

static void *churn_main(void *a)
{
    struct churn_arg *c = a;
    unsigned x = c->seed;
    for (long i = 0; i < c->ops; i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 4) % CHURN_SLOTS;
        free(c->slot[k]);
        unsigned e = (x >> 16) % 14; /* 16 B << 0..13 = 16 B .. 128 KiB */
        size_t sz = ((size_t)16 << e) + ((x >> 8) & 0xff) * ((size_t)16 << e) / 256;
        if (sz > 128 * 1024)
            sz = 128 * 1024;
        char *p = malloc(sz);
        for (size_t o = 0; o < sz; o += 4096)
            p[o] = (char)i;
        c->slot[k] = p;
    }
    return NULL;
}

static int run_churn(int threads, long ops, int idle_s)
{
    static void *slots[16][CHURN_SLOTS];
    struct churn_arg args[16];
    pthread_t t[16];
    if (threads > 16)
        threads = 16;
    naive_start();
    struct snap sa, sb;
    take(&sa);
    uint64_t w0 = now_ns(), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < threads; i++) {
        args[i].ops = ops;
        args[i].seed = 12345u + (unsigned)i * 7919u;
        args[i].slot = slots[i];
        pthread_create(&t[i], NULL, churn_main, &args[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    uint64_t w1 = now_ns(), c1 = clk(CLOCK_PROCESS_CPUTIME_ID);
    take(&sb);
    long peak = rss_kb();
    for (int i = 0; i < threads; i++)
        for (int k = 0; k < CHURN_SLOTS; k++) {
            free(slots[i][k]);
            slots[i][k] = NULL;
        }
    struct idle_figures a;
    idle_then_trim(idle_s, 100, &a);
    put("{\"scenario\":\"churn\",\"threads\":%d,\"ops_per_thread\":%ld,\"wall_s\":%.3f,"
        "\"cpu_s\":%.3f,\"rss_peak_kb\":%ld,\"after_free_kb\":%ld,\"after_idle_kb\":%ld,"
        "\"reach_ms\":%ld",
        threads, ops, (double)(w1 - w0) / 1e9, (double)(c1 - c0) / 1e9, peak, a.after_free_kb,
        a.after_idle_kb, reach_ms(a.ref_kb * 105 / 100, -1, 0));
    put_window("busy", &sa, &sb);
    put_common_tail(a.ref_kb, a.ref_ns);
    return 0;
}

/* ---- (b) frag ---- */
static int run_frag(long chunks, int busy_s, int quiet_s, int sync)
{
    naive_start();
    void **live = malloc((size_t)chunks * sizeof *live);
    void **big = malloc((size_t)chunks * sizeof *big);
    uint64_t b0 = now_ns();
    for (long i = 0; i < chunks; i++) {
        big[i] = malloc(8192);
        memset(big[i], 1, 8192);
        __asm__ volatile("" : : "r"(big[i]) : "memory"); /* keep the memset: freed unread */
        live[i] = malloc(32);
    }
    uint64_t build_ns = now_ns() - b0;
    long peak = rss_kb();
    if (sync) {
        char go;
        if (write(1, "ready\n", 6) != 6 || read(0, &go, 1) < 0)
            return 3;
    }
    for (long i = 0; i < chunks; i++)
        free(big[i]);
    free(big);
    t_origin = now_ns();
    long after_free = rss_kb();
    struct snap sa, sb;
    take(&sa);

    /* busy: small malloc/free over a pool of 1024 live objects, single thread */
    enum { POOL = 1024 };
    static void *pool[POOL];
    unsigned x = 777;
    uint64_t ops = 0, ops_8s = 0;
    uint64_t busy_end = t_origin + (uint64_t)busy_s * 1000000000ull;
    uint64_t next_sample = t_origin + 100000000ull;
    uint64_t mark_8s = t_origin + 8000000000ull;
    for (;;) {
        for (int i = 0; i < 1024; i++) {
            x = x * 1103515245u + 12345u;
            unsigned k = (x >> 8) % POOL;
            free(pool[k]);
            pool[k] = malloc(16 + (x >> 20) % 497);
            *(volatile char *)pool[k] = 1;
        }
        ops += 1024;
        uint64_t t = now_ns();
        if (t >= next_sample) {
            sample(0);
            next_sample += 100000000ull;
        }
        if (!ops_8s && t >= mark_8s)
            ops_8s = ops;
        if (t >= busy_end)
            break;
    }
    uint64_t busy_ns = now_ns() - t_origin;
    take(&sb);
    long after_busy = rss_kb();
    uint32_t quiet_at = (uint32_t)((now_ns() - t_origin) / 1000000ull);
    uint64_t quiet_end = now_ns() + (uint64_t)quiet_s * 1000000000ull;
    while (now_ns() < quiet_end) {
        usleep(100000);
        sample(1);
    }
    long after_quiet = rss_kb();
    naive_end();
    uint64_t ref_ns;
    long ref = explicit_trim(&ref_ns);
    long target = ref * 105 / 100;
    long busy_reach = reach_ms(target, 0, 0);
    long quiet_reach = busy_reach >= 0 ? 0 : reach_ms(target, 1, quiet_at);
    put("{\"scenario\":\"frag\",\"chunks\":%ld,\"build_s\":%.2f,\"busy_s\":%.3f,\"ops\":%llu,"
        "\"ops_per_s\":%.0f,\"ops_first_8s\":%llu,\"rss_peak_kb\":%ld,\"after_free_kb\":%ld,"
        "\"after_busy_kb\":%ld,\"after_quiet_kb\":%ld,\"busy_reach_ms\":%ld,"
        "\"quiet_reach_ms\":%ld",
        chunks, (double)build_ns / 1e9, (double)busy_ns / 1e9, (unsigned long long)ops,
        (double)ops / ((double)busy_ns / 1e9), (unsigned long long)ops_8s, peak, after_free,
        after_busy, after_quiet, busy_reach, quiet_reach);
    put_window("busy", &sa, &sb);
    put_common_tail(ref, ref_ns);
    for (int k = 0; k < POOL; k++)
        free(pool[k]);
    for (long i = 0; i < chunks; i++)
        free(live[i]);
    free(live);
    return 0;
}

/* ---- (c) seed ---- */
/* The allocations are the seed case's own code (cases/seed_list.cpp), so this scenario measures
 * the case's heap; the measuring is the bench's. The case's harness (cases/scenario.c) cannot
 * serve here: it reads smaps_rollup, reports phases as JSON lines and exits with the list still
 * allocated, where the bench samples statm every 50 ms and ends with its explicit trim. */
static int run_seed(long count, int idle_s)
{
    naive_start();
    seed_list_build(count);
    long peak = rss_kb();
    seed_list_free_blocks();
    struct idle_figures a;
    idle_then_trim(idle_s, 50, &a);
    long at_2s = a.after_free_kb; /* the last sample within 2 s of the free */
    for (int i = 0; i < nsamples; i++)
        if (samples[i].t_ms <= 2000)
            at_2s = samples[i].rss_kb;
    put("{\"scenario\":\"seed\",\"count\":%ld,\"rss_peak_kb\":%ld,\"after_free_kb\":%ld,"
        "\"after_idle_kb\":%ld,\"reach_ms\":%ld,\"at_2s_kb\":%ld",
        count, peak, a.after_free_kb, a.after_idle_kb, reach_ms(a.ref_kb * 105 / 100, -1, 0),
        at_2s);
    put_common_tail(a.ref_kb, a.ref_ns);
    seed_list_clear();
    return 0;
}

static long opt(int argc, char **argv, const char *name, long def)
{
    for (int i = 2; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], name))
            return atol(argv[i + 1]);
    return def;
}

/* Every option is "--name N" with N a whole number in 0..INT_MAX (the values become ints),
 * and known to the scenario (or --naive-ms, known to all). */
static int check_opts(int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i += 2) {
        int ok = !strcmp(argv[i], "--naive-ms");
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(argv[i], *k);
        if (!ok) {
            fprintf(stderr, "shimbench %s: unknown option '%s'\n", argv[1], argv[i]);
            return -1;
        }
        char *end = NULL;
        errno = 0;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (v < 0 || v > INT_MAX || errno || end == argv[i + 1] || *end) {
            fprintf(stderr, "shimbench %s: %s wants a whole number in 0..%d, got '%s'\n",
                    argv[1], argv[i], INT_MAX, i + 1 < argc ? argv[i + 1] : "");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const churn_opts[] = {"--threads", "--ops", "--idle", NULL};
    static const char *const frag_opts[] = {"--chunks", "--busy", "--quiet", "--sync", NULL};
    static const char *const seed_opts[] = {"--count", "--idle", NULL};
    if (argc < 2) {
        fprintf(stderr, "usage: shimbench churn|frag|seed [options] [--naive-ms MS]\n");
        return 2;
    }
    const char *const *known = !strcmp(argv[1], "churn")  ? churn_opts
                               : !strcmp(argv[1], "frag") ? frag_opts
                               : !strcmp(argv[1], "seed") ? seed_opts
                                                          : NULL;
    if (!known) {
        fprintf(stderr, "shimbench: unknown scenario '%s' (churn, frag or seed)\n", argv[1]);
        return 2;
    }
    if (check_opts(argc, argv, known) != 0)
        return 2;
    naive_ms = (int)opt(argc, argv, "--naive-ms", 0);
    if (!strcmp(argv[1], "churn"))
        return run_churn((int)opt(argc, argv, "--threads", 2), opt(argc, argv, "--ops", 1000000),
                         (int)opt(argc, argv, "--idle", 3));
    if (!strcmp(argv[1], "frag"))
        return run_frag(opt(argc, argv, "--chunks", 200000), (int)opt(argc, argv, "--busy", 8),
                        (int)opt(argc, argv, "--quiet", 10), (int)opt(argc, argv, "--sync", 0));
    return run_seed(opt(argc, argv, "--count", 10000), (int)opt(argc, argv, "--idle", 12));
}
