/* Targets for retention explain's gdb tests (runner/tests/gdb_explain.py), one per --mode:
 *
 *   in-malloc   a thread stays inside glibc's _int_malloc: the heap's top chunk ends in a page
 *               that userfaultfd write-protects, so malloc's write of the new top header blocks
 *               there until SIGUSR1 lifts the protection. --threads 2 puts the blocked malloc on
 *               a second thread (holding main_arena's lock: M_ARENA_MAX=1 keeps it there) while
 *               the main thread waits in sigwait. Prints {"hold":"in_malloc","pid":N,"tid":T}
 *               just before the blocking malloc; exit 0 after the release.
 *   shm         --shm-mb MB of POSIX shared memory and as much anonymous shared memory (what a
 *               database's buffer pool looks like), all touched, and --heap-mb MB of 64 KiB heap
 *               blocks freed between small live nodes (retained by glibc).
 *   churn       a steady live set (--live-mb) of blocks of 1-64 KiB, one freed and one allocated
 *               every --period-us microseconds: live bytes stay level.
 *   leak        --rate-kb KiB a second allocated, touched and never freed, in 10 KiB pieces.
 *   pinned      --count C++-free variant of the seed: 64 KiB blocks with 24-byte nodes between,
 *               blocks freed; the nodes hold two heap pointers (a doubly linked list).
 *
 * Every mode except in-malloc prints {"hold":MODE,"pid":N} once set up and runs (or waits) until
 * SIGUSR1 or SIGTERM, then exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static int uffd = -1;
static struct uffdio_range wp_range;

static void die(const char *what)
{
    fprintf(stderr, "explain_target: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void hold_line(const char *mode, long tid)
{
    char line[128];
    int n;
    if (tid)
        n = snprintf(line, sizeof line, "{\"hold\":\"%s\",\"pid\":%ld,\"tid\":%ld}\n", mode, (long)getpid(), tid);
    else
        n = snprintf(line, sizeof line, "{\"hold\":\"%s\",\"pid\":%ld}\n", mode, (long)getpid());
    if (write(1, line, (size_t)n) != n)
        exit(2);
}

/* SIGUSR1 in in-malloc mode: lift the write protection (waking the blocked malloc); in the
 * other modes: stop. ioctl is a plain system call, safe in a handler. */
static void on_usr1(int sig)
{
    (void)sig;
    if (uffd >= 0) {
        struct uffdio_writeprotect wp;
        wp.range = wp_range;
        wp.mode = 0;
        ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
    }
    stop = 1;
}

static void handle_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void wait_for_stop(void)
{
    while (!stop)
        pause();
}

/* ---------------------------------------------------------------- in-malloc */

static size_t block_request;

static void *blocking_malloc(void *arg)
{
    (void)arg;
    hold_line("in_malloc", (long)syscall(SYS_gettid));
    /* Served from the top chunk: _int_malloc writes the remainder's header into the protected
     * page and blocks there. */
    char *p = malloc(block_request);
    if (!p)
        abort();
    p[0] = 1;
    return p;
}

static int mode_in_malloc(int threads)
{
    long page = sysconf(_SC_PAGESIZE);
    /* Keep the whole test on brk memory and in one arena, and never trim it meanwhile. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_ARENA_MAX, 1);
    char *big = malloc(8 << 20);
    if (!big)
        die("malloc");
    memset(big, 1, 8 << 20);
    free(big); /* back into the top chunk, pages resident */
    char *probe = malloc(64);
    /* The top chunk now starts right after probe. A request of 1 MiB splits it: the new top's
     * header lands about 1 MiB further on, in the protected page. */
    block_request = 1 << 20;
    uintptr_t header = (uintptr_t)probe + 64 + (1 << 20);
    wp_range.start = (header & ~(uintptr_t)(page - 1)) - (uintptr_t)page;
    wp_range.len = (uint64_t)page * 4;
    /* Write protection needs present pages (the compiler may drop the memset before free):
     * touch them; they lie inside the free top chunk. */
    for (uintptr_t a = wp_range.start; a < wp_range.start + wp_range.len; a += (uintptr_t)page)
        *(volatile char *)a = 0;
    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0)
        die("userfaultfd");
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(uffd, UFFDIO_API, &api) < 0)
        die("UFFDIO_API");
    struct uffdio_register reg = {.range = wp_range, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
        die("UFFDIO_REGISTER");
    struct uffdio_writeprotect wp = {.range = wp_range, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
        die("UFFDIO_WRITEPROTECT");
    handle_signals();
    if (threads > 1) {
        sigset_t set;
        int sig;
        pthread_t t;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGTERM);
        if (pthread_create(&t, NULL, blocking_malloc, NULL))
            die("pthread_create");
        /* Threads other than the blocked one never take the signal: the handler runs on the
         * blocked thread or the main one, both fine; the main thread waits here. */
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        sigwait(&set, &sig);
        on_usr1(sig);
        pthread_join(t, NULL);
    } else {
        blocking_malloc(NULL);
    }
    printf("{\"released\":true}\n");
    return 0;
}

/* ---------------------------------------------------------------- shm */

struct node {
    struct node *next, *prev;
    long value;
};

static struct node head = {&head, &head, 0};

/* count 64 KiB blocks, each followed by a live node; the blocks are freed. */
static void pinned_heap(long count)
{
    char **blocks = calloc((size_t)count, sizeof *blocks);
    if (!blocks)
        die("calloc");
    for (long i = 0; i < count; i++) {
        blocks[i] = malloc(64 * 1024);
        struct node *n = malloc(sizeof *n);
        if (!blocks[i] || !n)
            die("malloc");
        memset(blocks[i], 'a', 64 * 1024);
        n->value = i;
        n->prev = head.prev;
        n->next = &head;
        head.prev->next = n;
        head.prev = n;
    }
    for (long i = 0; i < count; i++)
        free(blocks[i]);
    free(blocks);
}

static int mode_shm(long shm_mb, long heap_mb)
{
    char name[64];
    size_t len = (size_t)shm_mb << 20;
    snprintf(name, sizeof name, "/retention-explain-%ld", (long)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        die("shm_open");
    shm_unlink(name); /* stays mapped; nothing left behind in /dev/shm */
    if (ftruncate(fd, (off_t)len) < 0)
        die("ftruncate");
    char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED)
        die("mmap");
    memset(a, 's', len);
    memset(b, 'z', len);
    pinned_heap(heap_mb * 1000000 / (64 * 1024));
    handle_signals();
    hold_line("shm", 0);
    wait_for_stop();
    return 0;
}

/* ---------------------------------------------------------------- churn, leak */

static unsigned long rng = 88172645463325252UL;

static unsigned long next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int mode_churn(long live_mb, long period_us)
{
    long slots = live_mb * 1000000 / (33 * 1024); /* blocks of 1-64 KiB: 33 KiB on average */
    char **p = calloc((size_t)slots, sizeof *p);
    if (!p)
        die("calloc");
    for (long i = 0; i < slots; i++) {
        size_t n = 1024 + next_rand() % (63 * 1024);
        p[i] = malloc(n);
        memset(p[i], 'c', n);
    }
    handle_signals();
    hold_line("churn", 0);
    struct timespec ts = {0, period_us * 1000};
    while (!stop) {
        long i = (long)(next_rand() % (unsigned long)slots);
        size_t n = 1024 + next_rand() % (63 * 1024);
        free(p[i]);
        p[i] = malloc(n);
        memset(p[i], 'c', n);
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int mode_leak(long rate_kb)
{
    handle_signals();
    hold_line("leak", 0);
    /* 10 KiB pieces, rate_kb / 10 a second, in steps of 10 ms */
    long per_step = rate_kb / 10 / 100;
    struct timespec ts = {0, 10 * 1000 * 1000};
    if (per_step < 1)
        per_step = 1;
    while (!stop) {
        for (long i = 0; i < per_step; i++) {
            char *q = malloc(10 * 1024);
            if (!q)
                die("malloc");
            memset(q, 'l', 10 * 1024);
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

static long opt(int argc, char **argv, const char *name, long def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return strtol(argv[i + 1], NULL, 10);
    return def;
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!mode) {
        fprintf(stderr, "usage: explain_target --mode in-malloc|shm|churn|leak|pinned [options]\n");
        return 2;
    }
    if (!strcmp(mode, "in-malloc"))
        return mode_in_malloc((int)opt(argc, argv, "--threads", 1));
    if (!strcmp(mode, "shm"))
        return mode_shm(opt(argc, argv, "--shm-mb", 256), opt(argc, argv, "--heap-mb", 128));
    if (!strcmp(mode, "churn"))
        return mode_churn(opt(argc, argv, "--live-mb", 64), opt(argc, argv, "--period-us", 200));
    if (!strcmp(mode, "leak"))
        return mode_leak(opt(argc, argv, "--rate-kb", 1024));
    if (!strcmp(mode, "pinned")) {
        pinned_heap(opt(argc, argv, "--count", 10000));
        handle_signals();
        hold_line("pinned", 0);
        wait_for_stop();
        return 0;
    }
    fprintf(stderr, "explain_target: unknown mode '%s'\n", mode);
    return 2;
}
