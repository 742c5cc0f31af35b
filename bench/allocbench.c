/* allocbench: malloc-bound workloads of the shapes allocator studies use, to measure what the
 * trim shim (or any preloaded library) costs a program's malloc fast paths. Fixed duration, one
 * JSON object on stdout with the operations done. bench/alloc-bench runs them paired.
 *
 *   allocbench st [--busy S] [--sync 1]
 *       single-threaded small-object compute loop: a pool of 1024 objects of 16..1024 B; each
 *       step frees a random one, allocates a new one, writes it and sums a few others (the
 *       "compute"). Beyond tcache (7 per size class), so malloc's own paths run: the ones a
 *       second thread in the process slows (arena lock, atomic free lists).
 *   allocbench larson [--threads 2] [--busy S] [--sync 1]
 *       server-like (after Larson and Krishnan's benchmark): T threads replace random objects of
 *       one shared array of 8192 slots (16..2048 B), so most frees are of objects another thread
 *       allocated.
 *   allocbench prodcons [--busy S] [--sync 1]
 *       a producer allocates messages (64..2048 B) into a bounded queue, a consumer reads and
 *       frees them: every free on the other thread.
 *
 * --sync 1: after setting up, write "ready" and wait for a byte on stdin before the timed part,
 * so that two runs can start at the same moment (alloc-bench's pairs). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trimshim.h"

static uint64_t clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
static uint64_t now_ns(void) { return clk(CLOCK_MONOTONIC); }

static uint32_t rnd(uint64_t *s)
{
    /* xorshift64*: cheap, so the loop is malloc's, not the generator's */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (uint32_t)((x * 2685821657736338717ull) >> 32);
}

static atomic_int go_stop;

/* ---- st ---- */

enum { ST_POOL = 1024 };

static uint64_t run_st(uint64_t busy_ns)
{
    static unsigned char *pool[ST_POOL];
    static size_t size[ST_POOL];
    uint64_t seed = 0x9e3779b97f4a7c15ull, ops = 0, sum = 0;
    for (int i = 0; i < ST_POOL; i++) {
        size[i] = 16 + rnd(&seed) % 1009;
        pool[i] = malloc(size[i]);
        memset(pool[i], i, size[i] < 64 ? size[i] : 64);
    }
    uint64_t end = now_ns() + busy_ns;
    for (;;) {
        for (int b = 0; b < 1024; b++) {
            uint32_t r = rnd(&seed);
            unsigned k = r % ST_POOL;
            free(pool[k]);
            size[k] = 16 + (r >> 12) % 1009;
            pool[k] = malloc(size[k]);
            pool[k][0] = (unsigned char)r;
            pool[k][size[k] - 1] = (unsigned char)(r >> 8);
            sum += pool[(k + 1) % ST_POOL][0] + pool[(k + 7) % ST_POOL][0];
        }
        ops += 1024;
        if (now_ns() >= end)
            break;
    }
    for (int i = 0; i < ST_POOL; i++)
        free(pool[i]);
    __asm__ volatile("" : : "r"(sum) : "memory");
    return ops;
}

/* ---- larson ---- */

enum { LARSON_SLOTS = 8192 };
static _Atomic(unsigned char *) larson_slot[LARSON_SLOTS];

struct worker {
    pthread_t t;
    uint64_t seed, ops;
    uint64_t busy_ns;
};

static void *larson_main(void *a)
{
    struct worker *w = a;
    uint64_t end = now_ns() + w->busy_ns, ops = 0;
    for (;;) {
        for (int b = 0; b < 256; b++) {
            uint32_t r = rnd(&w->seed);
            size_t sz = 16 + (r >> 13) % 2033;
            unsigned char *p = malloc(sz);
            p[0] = (unsigned char)r;
            p[sz - 1] = 1;
            /* whoever allocated the one taken out, this thread frees it */
            unsigned char *old = atomic_exchange(&larson_slot[r % LARSON_SLOTS], p);
            free(old);
        }
        ops += 256;
        if (now_ns() >= end || atomic_load(&go_stop))
            break;
    }
    w->ops = ops;
    return NULL;
}

static uint64_t run_larson(int threads, uint64_t busy_ns)
{
    struct worker w[16];
    if (threads > 16)
        threads = 16;
    for (int i = 0; i < threads; i++) {
        w[i].seed = 0x243f6a8885a308d3ull + (uint64_t)i * 0x13198a2e03707344ull;
        w[i].busy_ns = busy_ns;
        w[i].ops = 0;
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&w[i].t, NULL, larson_main, &w[i]);
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].t, NULL);
        ops += w[i].ops;
    }
    for (int k = 0; k < LARSON_SLOTS; k++)
        free(atomic_exchange(&larson_slot[k], NULL));
    return ops;
}

/* ---- prodcons ---- */

enum { QCAP = 1024 };
static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    unsigned char *q[QCAP];
    unsigned head, tail, n;
    int done;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0,
       0, 0};
static uint64_t consumed;

static void *consumer_main(void *a)
{
    (void)a;
    uint64_t n = 0, sum = 0;
    unsigned char *batch[64];
    for (;;) {
        pthread_mutex_lock(&Q.mu);
        while (Q.n == 0 && !Q.done)
            pthread_cond_wait(&Q.not_empty, &Q.mu);
        if (Q.n == 0 && Q.done) {
            pthread_mutex_unlock(&Q.mu);
            break;
        }
        unsigned take = Q.n < 64 ? Q.n : 64;
        for (unsigned i = 0; i < take; i++) {
            batch[i] = Q.q[Q.head];
            Q.head = (Q.head + 1) % QCAP;
        }
        Q.n -= take;
        pthread_cond_signal(&Q.not_full);
        pthread_mutex_unlock(&Q.mu);
        for (unsigned i = 0; i < take; i++) {
            sum += batch[i][0];
            free(batch[i]);
        }
        n += take;
    }
    consumed = n;
    __asm__ volatile("" : : "r"(sum) : "memory");
    return NULL;
}

static uint64_t run_prodcons(uint64_t busy_ns)
{
    pthread_t c;
    pthread_create(&c, NULL, consumer_main, NULL);
    uint64_t seed = 0xb7e151628aed2a6bull;
    uint64_t end = now_ns() + busy_ns;
    unsigned char *batch[64];
    for (;;) {
        for (int i = 0; i < 64; i++) {
            uint32_t r = rnd(&seed);
            size_t sz = 64 + (r >> 12) % 1985;
            batch[i] = malloc(sz);
            batch[i][0] = (unsigned char)r;
            batch[i][sz - 1] = 2;
        }
        pthread_mutex_lock(&Q.mu);
        while (Q.n + 64 > QCAP)
            pthread_cond_wait(&Q.not_full, &Q.mu);
        for (int i = 0; i < 64; i++) {
            Q.q[Q.tail] = batch[i];
            Q.tail = (Q.tail + 1) % QCAP;
        }
        Q.n += 64;
        pthread_cond_signal(&Q.not_empty);
        pthread_mutex_unlock(&Q.mu);
        if (now_ns() >= end)
            break;
    }
    pthread_mutex_lock(&Q.mu);
    Q.done = 1;
    pthread_cond_signal(&Q.not_empty);
    pthread_mutex_unlock(&Q.mu);
    pthread_join(c, NULL);
    return consumed;
}

/* ---- main ---- */

static int opt(int argc, char **argv, const char *name, int def, int *out)
{
    *out = def;
    for (int i = 2; i < argc; i += 2) {
        if (strcmp(argv[i], name))
            continue;
        char *end = NULL;
        errno = 0;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (v < 0 || v > INT_MAX || errno || end == argv[i + 1] || *end) {
            fprintf(stderr, "allocbench %s: %s wants a whole number in 0..%d, got '%s'\n",
                    argv[1], name, INT_MAX, i + 1 < argc ? argv[i + 1] : "");
            return -1;
        }
        *out = (int)v;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"--busy", "--sync", "--threads", NULL};
    if (argc < 2 || (strcmp(argv[1], "st") && strcmp(argv[1], "larson") &&
                     strcmp(argv[1], "prodcons"))) {
        fprintf(stderr, "usage: allocbench st|larson|prodcons [--busy S] [--sync 1] "
                        "[--threads T (larson)]\n");
        return 2;
    }
    for (int i = 2; i < argc; i += 2) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            ok |= !strcmp(argv[i], *k);
        if (!ok) {
            fprintf(stderr, "allocbench %s: unknown option '%s'\n", argv[1], argv[i]);
            return 2;
        }
    }
    int busy, sync, threads;
    if (opt(argc, argv, "--busy", 5, &busy) || opt(argc, argv, "--sync", 0, &sync) ||
        opt(argc, argv, "--threads", 2, &threads))
        return 2;
    if (sync) {
        char go;
        if (write(1, "ready\n", 6) != 6 || read(0, &go, 1) < 0)
            return 3;
    }
    uint64_t busy_ns = (uint64_t)busy * 1000000000ull;
    uint64_t w0 = now_ns(), c0 = clk(CLOCK_PROCESS_CPUTIME_ID), ops;
    if (!strcmp(argv[1], "st"))
        ops = run_st(busy_ns);
    else if (!strcmp(argv[1], "larson"))
        ops = run_larson(threads, busy_ns);
    else
        ops = run_prodcons(busy_ns);
    uint64_t w1 = now_ns(), c1 = clk(CLOCK_PROCESS_CPUTIME_ID);
    typedef void (*stats_fn)(struct trimshim_stats *, size_t);
    stats_fn f = (stats_fn)dlsym(RTLD_DEFAULT, "trimshim_get_stats2");
    struct trimshim_stats s;
    memset(&s, 0, sizeof s);
    if (f)
        f(&s, sizeof s);
    printf("{\"workload\":\"%s\",\"ops\":%llu,\"busy_s\":%.3f,\"cpu_s\":%.3f,\"ops_per_s\":%.0f,"
           "\"shim\":%s,\"shim_mode\":%d,\"shim_trims\":%llu,\"shim_probes\":%llu,"
           "\"shim_looks\":%llu,\"shim_cpu_ms\":%.2f}\n",
           argv[1], (unsigned long long)ops, (double)(w1 - w0) / 1e9, (double)(c1 - c0) / 1e9,
           (double)ops / ((double)(w1 - w0) / 1e9), f ? "true" : "false", s.mode,
           (unsigned long long)s.background_trims, (unsigned long long)s.probes,
           (unsigned long long)s.wakeups, (double)s.cpu_ns / 1e6);
    return 0;
}
