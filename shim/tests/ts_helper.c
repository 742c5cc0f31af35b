/* ts_helper: programs the shim tests run with LD_PRELOAD=libtrimshim.so (or linked statically,
 * where the preload cannot reach them). Not linked to the shim: it finds the shim's API with
 * dlsym when the shim is preloaded. Prints results as one JSON object per line on stdout.
 *
 *   ts_helper work                      deterministic malloc/free work, prints a checksum
 *   ts_helper seed N [--trim] [--idle MS] [--target-kb K] [--until-target] [--stats-copy F]
 *        N x 64 KiB blocks with a small list node after each (the seed report's std::list),
 *        frees the blocks, keeps the nodes; --trim: explicit malloc_trim(0); --idle: sleep up to
 *        MS sampling RSS every 20 ms, recording when it first is <= K (--until-target: stop
 *        idling once it is and a background trim was seen); --stats-copy: then wait (20 ms
 *        sleeps, up to 10 s) until the shim's statistics file shows a quiet trim, copy it to F
 *   ts_helper frag N                    N x 8 KiB blocks with live 32 B nodes between, freed
 *   ts_helper exit-during-trim N api|bg [noalloc]
 *                                       frees a fragmented heap, starts a trim, exits during it
 *                                       (an atexit handler allocates, unless noalloc)
 *   ts_helper fork-during-trim N         forks while a trim of a fragmented heap runs
 *   ts_helper churn-fork FORKS           2 threads churn malloc/free, main forks FORKS times
 *   ts_helper trimstorm MS               4 threads call malloc_trim(0) in a loop, 2 churn, MS ms
 *   ts_helper state                      the shim's state, or "absent"
 *   ts_helper child-trimmer N            forks; the child frees N x 64 KiB and waits for a
 *                                        background trim of its own
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trimshim.h"

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static long rss_kb(void)
{
    char b[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return -1;
    b[n] = 0;
    long size, res;
    if (sscanf(b, "%ld %ld", &size, &res) != 2)
        return -1;
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef void (*stats_fn)(struct trimshim_stats *);
typedef uint64_t (*trim_now_fn)(size_t);

static int shim_stats(struct trimshim_stats *s)
{
    stats_fn f = (stats_fn)dlsym(RTLD_DEFAULT, "trimshim_get_stats");
    if (!f)
        return -1;
    f(s);
    return 0;
}

static void print_stats(const char *what)
{
    struct trimshim_stats s;
    if (shim_stats(&s) != 0) {
        printf("{\"%s\":1,\"shim\":\"absent\"}\n", what);
    } else {
        printf("{\"%s\":1,\"shim\":\"%d\",\"trims\":%llu,\"bg_trims\":%llu,\"bytes_returned\":%llu,"
               "\"trim_ns\":%llu,\"futile\":%llu,\"probes\":%llu,\"wakeups\":%llu}\n",
               what, s.state, (unsigned long long)s.trims, (unsigned long long)s.background_trims,
               (unsigned long long)s.bytes_returned, (unsigned long long)s.trim_ns,
               (unsigned long long)s.futile_trims, (unsigned long long)s.probes,
               (unsigned long long)s.wakeups);
    }
    fflush(stdout);
}

struct node {
    struct node *next;
    char *block;
};

/* ------------------------------------------------------------------------------------------ */

static int cmd_work(void)
{
    /* deterministic: the checksum must not depend on the shim */
    unsigned x = 1;
    unsigned long sum = 0;
    void *slot[512] = {0};
    for (int i = 0; i < 200000; i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 512;
        if (slot[k]) {
            sum += ((unsigned char *)slot[k])[0];
            free(slot[k]);
        }
        size_t sz = 16 + (x >> 16) % 20000;
        slot[k] = malloc(sz);
        memset(slot[k], (int)(i & 0xff), sz < 64 ? sz : 64);
    }
    for (int k = 0; k < 512; k++)
        free(slot[k]);
    printf("{\"checksum\":%lu}\n", sum);
    return 0;
}

/* Waits (20 ms sleeps: the shim's idle points) up to 10 s for the shim's statistics file to show
 * a quiet trim, then copies it to dest. Prints the file's path and whether it was copied. */
static void copy_stats_file(const char *dest)
{
    typedef const char *(*path_fn)(void);
    path_fn f = (path_fn)dlsym(RTLD_DEFAULT, "trimshim_stats_path");
    const char *path = f ? f() : "";
    static char buf[65536];
    ssize_t n = -1;
    int shown = 0;
    uint64_t end = now_ns() + 10000000000ull;
    while (path[0] && !shown && now_ns() < end) {
        int fd = open(path, O_RDONLY);
        n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = 0;
        const char *q = strstr(buf, "kind=\"quiet\"} ");
        shown = q && atol(q + 14) >= 1;
        if (!shown)
            usleep(20000);
    }
    int copied = 0;
    if (shown) {
        int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        copied = fd >= 0 && write(fd, buf, (size_t)n) == n;
        if (fd >= 0)
            close(fd);
    }
    printf("{\"stats_path\":\"%s\",\"stats_copied\":%d,\"pid\":%d}\n", path, copied,
           (int)getpid());
    fflush(stdout);
}

static struct node *build_seed(long n)
{
    struct node *head = NULL;
    for (long i = 0; i < n; i++) {
        char *m = malloc(64 * 1024);
        memset(m, 'a', 64 * 1024);
        __asm__ volatile("" : : "r"(m) : "memory");
        struct node *nd = malloc(sizeof *nd);
        nd->block = m;
        nd->next = head;
        head = nd;
    }
    return head;
}

static int cmd_seed(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 1000;
    int trim = 0, until = 0;
    long idle_ms = 0, target = -1;
    const char *stats_copy = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--trim"))
            trim = 1;
        else if (!strcmp(argv[i], "--idle") && i + 1 < argc)
            idle_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--until-target"))
            until = 1;
        else if (!strcmp(argv[i], "--target-kb") && i + 1 < argc)
            target = atol(argv[++i]);
        else if (!strcmp(argv[i], "--stats-copy") && i + 1 < argc)
            stats_copy = argv[++i];
        else if (!strcmp(argv[i], "--retitle")) {
            /* what servers' setproctitle does (PostgreSQL's ps_status): argv[0]'s bytes are
             * overwritten, and program_invocation_short_name points into them */
            size_t len = strlen(argv[0]);
            memset(argv[0], 0, len);
            memcpy(argv[0], "x: idle", len < 7 ? len : 7);
        }
    }
    long base = rss_kb();
    struct node *head = build_seed(n);
    long peak = rss_kb();
    for (struct node *p = head; p; p = p->next) {
        free(p->block);
        p->block = NULL;
    }
    uint64_t t_free = now_ns();
    long after_free = rss_kb();
    long after_trim = -1;
    uint64_t trim_ns = 0;
    if (trim) {
        uint64_t t0 = now_ns();
        malloc_trim(0);
        trim_ns = now_ns() - t0;
        after_trim = rss_kb();
    }
    long reach_ms = -1, first_trim_ms = -1;
    uint64_t end = t_free + (uint64_t)idle_ms * 1000000ull;
    while (idle_ms > 0 && now_ns() < end && !(until && reach_ms >= 0 && first_trim_ms >= 0)) {
        usleep(20000);
        long r = rss_kb();
        uint64_t t = now_ns();
        if (target >= 0 && reach_ms < 0 && r <= target)
            reach_ms = (long)((t - t_free) / 1000000ull);
        struct trimshim_stats s;
        if (first_trim_ms < 0 && shim_stats(&s) == 0 && s.background_trims > 0)
            first_trim_ms = (long)((t - t_free) / 1000000ull - s.last_trim_ns / 1000000ull);
    }
    long after_idle = rss_kb();
    printf("{\"base_kb\":%ld,\"peak_kb\":%ld,\"after_free_kb\":%ld,\"after_trim_kb\":%ld,"
           "\"trim_ms\":%llu,\"after_idle_kb\":%ld,\"reach_ms\":%ld,\"trim_start_ms\":%ld}\n",
           base, peak, after_free, after_trim, (unsigned long long)(trim_ns / 1000000ull), after_idle,
           reach_ms, first_trim_ms);
    print_stats("stats");
    if (stats_copy)
        copy_stats_file(stats_copy);
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    return 0;
}

/* n x 8 KiB freed, 32 B live nodes between them: a fragmented heap whose trim walks n chunks */
static void **build_frag(long n)
{
    void **live = malloc((size_t)n * sizeof *live);
    void **big = malloc((size_t)n * sizeof *big);
    for (long i = 0; i < n; i++) {
        big[i] = malloc(8192);
        memset(big[i], 1, 8192);
        __asm__ volatile("" : : "r"(big[i]) : "memory"); /* keep the memset: freed unread */
        live[i] = malloc(32);
    }
    for (long i = 0; i < n; i++)
        free(big[i]);
    free(big);
    return live;
}

static int cmd_frag(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 10000;
    build_frag(n);
    printf("{\"rss_kb\":%ld}\n", rss_kb());
    return 0;
}

static atomic_int trim_started, trim_done;
static void *api_trimmer(void *a)
{
    (void)a;
    trim_now_fn f = (trim_now_fn)dlsym(RTLD_DEFAULT, "trimshim_trim_now");
    atomic_store(&trim_started, 1);
    if (f)
        f(0);
    else
        malloc_trim(0);
    atomic_store(&trim_done, 1);
    return NULL;
}

static void at_exit_alloc(void)
{
    /* exit handlers that allocate must not hang on a trim in progress */
    void *p = malloc(100);
    free(p);
    if (write(1, "{\"atexit\":1}\n", 13) != 13)
        _exit(3);
}

static int cmd_exit_during_trim(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 50000;
    const char *mode = argc > 3 ? argv[3] : "api";
    int alloc_at_exit = !(argc > 4 && !strcmp(argv[4], "noalloc"));
    build_frag(n);
    if (alloc_at_exit)
        atexit(at_exit_alloc);
    if (!strcmp(mode, "api")) {
        pthread_t t;
        pthread_create(&t, NULL, api_trimmer, NULL);
        while (!atomic_load(&trim_started))
            usleep(1000);
        usleep(5000);
    } else {
        /* background: wait until the shim logs its decision to trim (TRIMSHIM_VERBOSE=2 and
         * TRIMSHIM_LOG=file), then exit while that trim runs */
        const char *log = getenv("TRIMSHIM_LOG");
        uint64_t end = now_ns() + 20ull * 1000000000ull;
        while (log && now_ns() < end) {
            char buf[8192];
            int fd = open(log, O_RDONLY);
            ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
            if (fd >= 0)
                close(fd);
            if (n > 0) {
                buf[n] = 0;
                if (strstr(buf, "decision quiet"))
                    break;
            }
            usleep(2000);
        }
    }
    struct trimshim_stats s;
    long trims = shim_stats(&s) == 0 ? (long)s.trims : -1;
    /* no stdio: its first use allocates a buffer, which would wait for the trim */
    char line[64];
    int len = snprintf(line, sizeof line, "{\"exiting\":1,\"trims\":%ld,\"api_done\":%d}\n",
                       trims, atomic_load(&trim_done));
    if (write(1, line, (size_t)len) != len)
        return 3;
    exit(0);
}

static int cmd_fork_during_trim(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 50000;
    build_frag(n);
    pthread_t t;
    pthread_create(&t, NULL, api_trimmer, NULL);
    while (!atomic_load(&trim_started))
        usleep(1000);
    usleep(20000);
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            void *p = malloc(1000);
            free(p);
            _exit(p ? 0 : 1);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    pthread_join(t, NULL);
    printf("{\"forks_bad\":%d}\n", bad);
    return bad ? 1 : 0;
}

static atomic_int stop_churn;
static void *churner(void *a)
{
    unsigned x = (unsigned)(uintptr_t)a;
    void *slot[256] = {0};
    while (!atomic_load(&stop_churn)) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 256;
        free(slot[k]);
        slot[k] = malloc(16 + (x >> 12) % 70000);
        if (slot[k])
            ((char *)slot[k])[0] = 1;
    }
    for (int k = 0; k < 256; k++)
        free(slot[k]);
    return NULL;
}

static int cmd_churn_fork(int argc, char **argv)
{
    int forks = argc > 2 ? atoi(argv[2]) : 200;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churner, (void *)(uintptr_t)(i + 7));
    int bad = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            void *p = malloc(100000);
            memset(p, 1, 100000);
            free(p);
            _exit(0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    atomic_store(&stop_churn, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("{\"forks\":%d,\"forks_bad\":%d}\n", forks, bad);
    print_stats("stats");
    return bad ? 1 : 0;
}

static atomic_long trims_done;
static void *trim_looper(void *a)
{
    (void)a;
    while (!atomic_load(&stop_churn)) {
        malloc_trim(0);
        atomic_fetch_add(&trims_done, 1);
    }
    return NULL;
}

static int cmd_trimstorm(int argc, char **argv)
{
    long ms = argc > 2 ? atol(argv[2]) : 2000;
    pthread_t c[2], t[4];
    for (int i = 0; i < 2; i++)
        pthread_create(&c[i], NULL, churner, (void *)(uintptr_t)(i + 3));
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, trim_looper, NULL);
    usleep((useconds_t)(ms * 1000));
    atomic_store(&stop_churn, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("{\"explicit_trims\":%ld}\n", atomic_load(&trims_done));
    print_stats("stats");
    return 0;
}

static int cmd_child_trimmer(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 500;
    pid_t pid = fork();
    if (pid == 0) {
        struct trimshim_stats s;
        if (shim_stats(&s) != 0 || s.state != TRIMSHIM_RUNNING)
            _exit(10);
        struct node *head = build_seed(n);
        for (struct node *p = head; p; p = p->next)
            free(p->block);
        uint64_t end = now_ns() + 30ull * 1000000000ull;
        while (now_ns() < end) {
            usleep(50000);
            shim_stats(&s);
            if (s.background_trims > 0 && s.bytes_returned > (uint64_t)n * 32 * 1024)
                _exit(0);
        }
        _exit(11);
    }
    int st;
    waitpid(pid, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("{\"child_status\":%d}\n", code);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ts_helper work|seed|frag|exit-during-trim|fork-during-trim|"
                        "churn-fork|trimstorm|state|child-trimmer ...\n");
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "work"))
        return cmd_work();
    if (!strcmp(c, "seed"))
        return cmd_seed(argc, argv);
    if (!strcmp(c, "frag"))
        return cmd_frag(argc, argv);
    if (!strcmp(c, "exit-during-trim"))
        return cmd_exit_during_trim(argc, argv);
    if (!strcmp(c, "fork-during-trim"))
        return cmd_fork_during_trim(argc, argv);
    if (!strcmp(c, "churn-fork"))
        return cmd_churn_fork(argc, argv);
    if (!strcmp(c, "trimstorm"))
        return cmd_trimstorm(argc, argv);
    if (!strcmp(c, "state")) {
        print_stats("state");
        return 0;
    }
    if (!strcmp(c, "child-trimmer"))
        return cmd_child_trimmer(argc, argv);
    fprintf(stderr, "ts_helper: unknown command %s\n", c);
    return 2;
}
