/* Check tests of the shim's safety, in a process that links libtrimshim (the same code that a
 * preload runs; its constructor starts the trimmer before main): fork+exec cycles, short-lived
 * threads, concurrent explicit malloc_trim, signal masks, the child's trimmer after fork, the C
 * API. Also run under valgrind (CK_FORK=no) where the shim stands down: there the tests still
 * do all the forking, threading and trimming, and memcheck checks that nothing leaks. */
#define _GNU_SOURCE
#include "check_compat.h"
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"
#include "trimshim.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ON_VALGRIND (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef ON_VALGRIND
/* without valgrind's header: valgrind preloads its vgpreload_<tool>.so into every client */
#define ON_VALGRIND (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload"))
#endif

static int active(void)
{
    struct trimshim_stats s;
    trimshim_get_stats(&s);
    return s.state == TRIMSHIM_RUNNING;
}

/* tid of the thread named "trimshim", or 0 */
static pid_t shim_tid(void)
{
    DIR *d = opendir("/proc/self/task");
    pid_t found = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n > 0 && !strcmp(comm, "trimshim\n")) /* exactly: the test's own name starts so */
            found = (pid_t)atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

/* the thread names itself when it starts: give it a moment */
static pid_t wait_shim_tid(void)
{
    pid_t t = 0;
    for (int i = 0; i < 2000 && !(t = shim_tid()); i++)
        usleep(1000);
    return t;
}

/* Ends a forked child with a status. Under valgrind a child that exits runs its own leak check
 * (and --error-exitcode) over the parent's heap copy; exec'ing a native shell instead ends the
 * valgrind process without that. */
static void child_exit(int code)
{
    if (ON_VALGRIND) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "exit %d", code);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    }
    _exit(code);
}

static uint64_t rss_bytes(void)
{
    char b[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    b[n] = 0;
    const char *p = strchr(b, ' ');
    return p ? strtoull(p + 1, NULL, 10) * 4096u : 0;
}

/* keeps the compiler from eliding a malloc/free pair */
static void use(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static unsigned long long sigblk_of(pid_t tid)
{
    char path[128], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strstr(buf, "SigBlk:");
    return p ? strtoull(p + 7, NULL, 16) : 0;
}

static int single_threaded(void)
{
    char *p = dlsym(RTLD_DEFAULT, "__libc_single_threaded");
    return p && *p;
}

static int mode_now(void)
{
    struct trimshim_stats s;
    trimshim_get_stats2(&s, sizeof s);
    return s.mode;
}

static void *parked(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* The process's second thread: from then on the shim trims from a thread of its own. */
static void go_threaded(void)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, parked, NULL), 0);
    pthread_detach(t);
}

/* ------------------------------------------------------------------------------------------ */

START_TEST(api_state)
{
    struct trimshim_stats s;
    trimshim_get_stats(&s);
    if (ON_VALGRIND) {
        ck_assert_int_eq(s.state, TRIMSHIM_VALGRIND);
        ck_assert_str_eq(trimshim_state_name(s.state), "valgrind");
        ck_assert_int_eq(shim_tid(), 0); /* stood down: no thread */
        ck_assert_int_eq(trimshim_start(), TRIMSHIM_VALGRIND);
        ck_assert_int_eq(mode_now(), TRIMSHIM_MODE_NONE);
        return;
    }
    ck_assert_int_eq(s.state, TRIMSHIM_RUNNING);
    ck_assert_str_eq(trimshim_state_name(s.state), "running");
    ck_assert_str_eq(trimshim_state_name(TRIMSHIM_WAITING), "waiting");
    ck_assert_str_eq(trimshim_state_name(99), "unknown");
    ck_assert_int_eq(s.policy, 0);
    if (single_threaded()) { /* (Check runs each test in a forked child of one thread) */
        ck_assert_int_eq(mode_now(), TRIMSHIM_MODE_IDLE);
        ck_assert_str_eq(trimshim_mode_name(TRIMSHIM_MODE_IDLE), "idle-points");
        ck_assert_int_eq(shim_tid(), 0); /* no thread while the program has one */
    }
    go_threaded();
    ck_assert_int_ne(wait_shim_tid(), 0);
    ck_assert_int_eq(mode_now(), TRIMSHIM_MODE_THREAD);
    ck_assert_str_eq(trimshim_mode_name(TRIMSHIM_MODE_THREAD), "thread");
    trimshim_get_stats(&s);
    ck_assert_int_eq(s.state, TRIMSHIM_RUNNING);
}
END_TEST

START_TEST(stats_v1_size_kept)
{
    /* a program built against API version 1 passes a struct that ends at policy */
    struct trimshim_stats s;
    memset(&s, 0xab, sizeof s);
    trimshim_get_stats(&s);
    const unsigned char *tail = (const unsigned char *)&s + offsetof(struct trimshim_stats, mode);
    for (size_t i = 0; i < sizeof s - offsetof(struct trimshim_stats, mode); i++)
        ck_assert_int_eq(tail[i], 0xab);
    memset(&s, 0xab, sizeof s);
    trimshim_get_stats2(&s, offsetof(struct trimshim_stats, pid)); /* a size from the future's past */
    ck_assert_int_eq(s.pid, (int)0xabababab);
    trimshim_get_stats2(&s, sizeof s);
    ck_assert_int_eq(s.pid, (int)getpid());
    ck_assert_str_eq(trimshim_stats_path(), ""); /* no TRIMSHIM_STATS here */
}
END_TEST

START_TEST(start_stop)
{
    if (ON_VALGRIND) {
        trimshim_stop(); /* no-ops */
        ck_assert_int_eq(trimshim_start(), TRIMSHIM_VALGRIND);
        return;
    }
    if (single_threaded()) { /* no thread to stop: the work at the waits stops and resumes */
        trimshim_stop();
        ck_assert_int_eq(mode_now(), TRIMSHIM_MODE_NONE);
        ck_assert_int_eq(trimshim_start(), TRIMSHIM_RUNNING);
        ck_assert_int_eq(mode_now(), TRIMSHIM_MODE_IDLE);
        ck_assert_int_eq(shim_tid(), 0);
    }
    go_threaded();
    ck_assert_int_ne(wait_shim_tid(), 0);
    ck_assert_int_eq(trimshim_start(), TRIMSHIM_RUNNING); /* idempotent */
    trimshim_stop();
    struct trimshim_stats s;
    trimshim_get_stats(&s);
    ck_assert_int_eq(s.state, TRIMSHIM_STOPPED);
    ck_assert_int_eq(shim_tid(), 0);
    trimshim_stop();
    ck_assert_int_eq(trimshim_start(), TRIMSHIM_RUNNING);
    ck_assert_int_ne(wait_shim_tid(), 0);
    for (int i = 0; i < 20; i++) { /* quick cycles */
        trimshim_stop();
        ck_assert_int_eq(trimshim_start(), TRIMSHIM_RUNNING);
    }
    ck_assert_int_ne(wait_shim_tid(), 0);
}
END_TEST

START_TEST(trim_now_counts_rss)
{
    struct trimshim_stats a, b;
    trimshim_get_stats(&a);
    enum { N = 400 };
    static void *blk[N], *node[N];
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(64 * 1024);
        memset(blk[i], 1, 64 * 1024);
        use(blk[i]); /* or the compiler drops the memset of memory that is freed unread */
        node[i] = malloc(24);
    }
    for (int i = 0; i < N; i++)
        free(blk[i]);
    uint64_t back = trimshim_trim_now(0);
    trimshim_get_stats(&b);
    ck_assert_uint_eq(b.trims, a.trims + 1);
    ck_assert_uint_eq(b.bytes_returned, a.bytes_returned + back);
    ck_assert_uint_ge(b.trim_ns, a.trim_ns);
    ck_assert_uint_eq(b.last_bytes_returned, back);
    if (!ON_VALGRIND) /* most of 25 MiB, unless the background trimmer got there first */
        ck_assert_uint_ge(back + (b.background_trims - a.background_trims) * 16 * 1024 * 1024,
                          16 * 1024 * 1024);
    for (int i = 0; i < N; i++)
        free(node[i]);
}
END_TEST

START_TEST(probe_statistics)
{
    if (ON_VALGRIND)
        return;
    struct trimshim_stats a, b;
    trimshim_get_stats(&a);
    enum { N = 200 };
    static void *blk[N];
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(64 * 1024);
        memset(blk[i], 1, 64 * 1024);
        use(blk[i]); /* or the compiler drops the memset of memory that is freed unread */
    }
    for (int i = 0; i < N; i++)
        free(blk[i]);
    trimshim_trim_now(0); /* probes after the trim, for the background trimmer's baseline */
    trimshim_get_stats(&b);
    ck_assert_uint_gt(b.probes, a.probes);
    ck_assert_uint_gt(b.heap_used_bytes, 0);
}
END_TEST

/* --- signal masks ------------------------------------------------------------------------ */

START_TEST(shim_thread_blocks_all_signals)
{
    if (ON_VALGRIND)
        return;
    go_threaded();
    pid_t t = wait_shim_tid();
    ck_assert_int_ne(t, 0);
    unsigned long long blk = sigblk_of(t);
    int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD,
                  SIGCONT, SIGTSTP, SIGWINCH, SIGIO, SIGPROF, SIGRTMIN, SIGRTMIN + 5, SIGRTMAX};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        ck_assert_msg(blk & (1ull << (sigs[i] - 1)), "signal %d not blocked (SigBlk %llx)",
                      sigs[i], blk);
}
END_TEST

START_TEST(caller_mask_untouched)
{
    sigset_t want, got, old;
    sigemptyset(&want);
    sigaddset(&want, SIGUSR2);
    sigaddset(&want, SIGWINCH);
    pthread_sigmask(SIG_SETMASK, &want, &old);
    trimshim_stop();
    trimshim_start();
    trimshim_trim_now(0);
    pthread_sigmask(SIG_SETMASK, NULL, &got);
    for (int s = 1; s < SIGRTMAX; s++)
        ck_assert_int_eq(sigismember(&got, s), sigismember(&want, s));
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

static _Atomic pid_t handled_tid;
static atomic_int handled;
static void on_usr1(int sig)
{
    (void)sig;
    atomic_store(&handled_tid, (pid_t)syscall(SYS_gettid));
    atomic_fetch_add(&handled, 1);
}

START_TEST(process_signals_reach_program_threads)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, &old);
    pid_t shim = ON_VALGRIND ? 0 : wait_shim_tid();
    for (int i = 0; i < 50; i++) {
        atomic_store(&handled_tid, 0);
        int before = atomic_load(&handled);
        kill(getpid(), SIGUSR1);
        for (int k = 0; k < 1000 && atomic_load(&handled) == before; k++)
            usleep(1000);
        ck_assert_int_eq(atomic_load(&handled), before + 1);
        ck_assert_int_ne(atomic_load(&handled_tid), 0);
        if (shim)
            ck_assert_int_ne(atomic_load(&handled_tid), shim);
    }
    sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* --- fork / exec / threads ------------------------------------------------------------------ */

START_TEST(fork_exec_1000)
{
    int n = 1000;
    const char *env_n = getenv("TS_FORK_EXEC_CYCLES");
    if (env_n)
        n = atoi(env_n);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cycle %d: status %x", i, st);
    }
    if (!ON_VALGRIND)
        ck_assert(active()); /* the parent's trimmer survived all those forks */
}
END_TEST

static void *short_thread(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = malloc(8192 + k);
        memset(p[i], 1, 64);
        use(p[i]);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    return NULL;
}

START_TEST(short_lived_threads_100)
{
    struct trimshim_stats a, b;
    trimshim_get_stats(&a);
    for (int batch = 0; batch < 10; batch++) {
        pthread_t t[10];
        for (int i = 0; i < 10; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, short_thread, (void *)(uintptr_t)i), 0);
        for (int i = 0; i < 10; i++)
            ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    trimshim_get_stats(&b);
    if (!ON_VALGRIND)
        ck_assert_int_eq(b.state, TRIMSHIM_RUNNING);
}
END_TEST

static atomic_int go;
static void *wait_and_free(void *arg)
{
    (void)arg;
    void *p = malloc(5000);
    use(p);
    while (!atomic_load(&go))
        usleep(1000);
    free(p);
    return NULL;
}

START_TEST(many_threads_at_once)
{
    /* 300 threads alive at once, all allocating and freeing, while the trimmer runs */
    enum { T = 300 };
    static pthread_t t[T];
    struct trimshim_stats a, b;
    trimshim_get_stats(&a);
    atomic_store(&go, 0);
    int made = 0;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    for (int i = 0; i < T; i++)
        if (pthread_create(&t[i], &at, wait_and_free, NULL) == 0)
            made++;
        else
            break;
    pthread_attr_destroy(&at);
    ck_assert_int_gt(made, 260);
    atomic_store(&go, 1);
    for (int i = 0; i < made; i++)
        pthread_join(t[i], NULL);
    trimshim_get_stats(&b);
    if (!ON_VALGRIND)
        ck_assert_int_eq(b.state, TRIMSHIM_RUNNING);
}
END_TEST

static atomic_int stop;
static void *churn(void *arg)
{
    unsigned x = (unsigned)(uintptr_t)arg;
    void *slot[128] = {0};
    /* capped as well as stopped: under valgrind's default (unfair) scheduler a churning thread
     * can starve the thread that would set stop; ctest also runs it with --fair-sched=yes */
    long cap = ON_VALGRIND ? 20000 : 50000000;
    for (long i = 0; i < cap && !atomic_load(&stop); i++) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 128;
        free(slot[k]);
        slot[k] = malloc(16 + (x >> 12) % 100000);
        if (slot[k])
            ((char *)slot[k])[0] = 1;
    }
    for (int k = 0; k < 128; k++)
        free(slot[k]);
    return NULL;
}

static void *trim_loop(void *arg)
{
    int api = (int)(uintptr_t)arg;
    int n = ON_VALGRIND ? 20 : 100;
    for (int i = 0; i < n && !atomic_load(&stop); i++) {
        if (api)
            trimshim_trim_now(0);
        else
            malloc_trim(0);
    }
    return NULL;
}

START_TEST(concurrent_explicit_trims)
{
    atomic_store(&stop, 0);
    pthread_t c[2], t[4];
    struct trimshim_stats a, b;
    trimshim_get_stats(&a);
    for (int i = 0; i < 2; i++)
        pthread_create(&c[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, trim_loop, (void *)(uintptr_t)(i % 2));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    trimshim_get_stats(&b);
    ck_assert_uint_ge(b.trims - a.trims, ON_VALGRIND ? 40 : 200); /* the API ones */
}
END_TEST

START_TEST(fork_while_trim_runs)
{
    /* a trim of a fragmented heap in another thread; fork during it; the children allocate */
    enum { N = 10000 };
    void **live = malloc(N * sizeof *live), **big = malloc(N * sizeof *big);
    for (int i = 0; i < N; i++) {
        big[i] = malloc(8192);
        memset(big[i], 1, 8192);
        use(big[i]);
        live[i] = malloc(32);
    }
    for (int i = 0; i < N; i++)
        free(big[i]);
    atomic_store(&stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, trim_loop, (void *)(uintptr_t)1);
    usleep(5000);
    for (int i = 0; i < 5; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            void *p = malloc(100000);
            memset(p, 2, 100000);
            use(p);
            free(p);
            child_exit(active() || ON_VALGRIND ? 0 : 3);
        }
        int st;
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %x", st);
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++)
        free(live[i]);
    free(live);
    free(big);
}
END_TEST

START_TEST(child_gets_working_trimmer)
{
    if (!ON_VALGRIND)
        go_threaded(); /* a multi-threaded parent: glibc keeps the child on its MT paths */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (ON_VALGRIND)
            child_exit(0);
        struct trimshim_stats s;
        trimshim_get_stats(&s);
        if (s.state != TRIMSHIM_RUNNING)
            _exit(10);
        if (wait_shim_tid() == 0)
            _exit(11);
        if (s.trims != 0)
            _exit(12); /* per-process statistics */
        /* retention that does not depend on the heap the child inherited: keep every other
         * 64 KiB block, so no freed block can merge with a neighbour or the top */
        enum { N = 600 };
        static void *blk[N];
        for (int i = 0; i < N; i++) {
            blk[i] = malloc(64 * 1024);
            memset(blk[i], 1, 64 * 1024);
            use(blk[i]);
        }
        uint64_t before = rss_bytes();
        for (int i = 0; i < N; i += 2)
            free(blk[i]);
        if (rss_bytes() + (8u << 20) < before)
            _exit(14); /* glibc returned it by itself: the test is not testing anything */
        for (int i = 0; i < 600; i++) { /* up to 30 s on a loaded machine */
            usleep(50000);
            trimshim_get_stats(&s);
            if (s.background_trims > 0 && s.bytes_returned >= 8u << 20)
                _exit(0);
        }
        _exit(13);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %x", st);
}
END_TEST

START_TEST(child_of_one_thread_trims_at_its_waits)
{
    if (ON_VALGRIND || !single_threaded())
        return;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct trimshim_stats s;
        trimshim_get_stats2(&s, sizeof s);
        if (s.state != TRIMSHIM_RUNNING || s.mode != TRIMSHIM_MODE_IDLE)
            _exit(10);
        if (s.trims != 0 || s.idle_looks != 0)
            _exit(12); /* per-process statistics */
        enum { N = 600 };
        static void *blk[N];
        for (int i = 0; i < N; i++) {
            blk[i] = malloc(64 * 1024);
            memset(blk[i], 1, 64 * 1024);
            use(blk[i]);
        }
        for (int i = 0; i < N; i += 2) /* every other one: nothing merges with the top */
            free(blk[i]);
        for (int i = 0; i < 600; i++) { /* up to 30 s on a loaded machine */
            usleep(50000);
            trimshim_get_stats2(&s, sizeof s);
            if (s.background_trims > 0 && s.bytes_returned >= 8u << 20)
                _exit(shim_tid() == 0 ? 0 : 11);
        }
        _exit(13);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %x", st);
}
END_TEST

START_TEST(stopped_stays_stopped_in_child)
{
    if (ON_VALGRIND)
        return;
    trimshim_stop();
    pid_t pid = fork();
    if (pid == 0)
        _exit(shim_tid() == 0 && mode_now() == TRIMSHIM_MODE_NONE ? 0 : 1);
    int st;
    waitpid(pid, &st, 0);
    ck_assert_int_eq(trimshim_start(), TRIMSHIM_RUNNING);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(exit_while_trim_runs)
{
    if (ON_VALGRIND)
        return; /* the child's exit with a thread inside malloc_trim is a native-only test */
    pid_t pid = fork();
    if (pid == 0) {
        enum { N = 100000 };
        void **live = malloc(N * sizeof *live), **big = malloc(N * sizeof *big);
        for (int i = 0; i < N; i++) {
            big[i] = malloc(8192);
            memset(big[i], 1, 8192);
            use(big[i]);
            live[i] = malloc(32);
        }
        for (int i = 0; i < N; i++)
            free(big[i]);
        atomic_store(&stop, 0);
        pthread_t t;
        pthread_create(&t, NULL, trim_loop, (void *)(uintptr_t)1);
        usleep(20000);
        exit(7); /* while the trim runs */
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %x", st);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("shim");
    TCase *tc = tcase_create("safety");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, api_state);
    tcase_add_test(tc, stats_v1_size_kept);
    tcase_add_test(tc, start_stop);
    tcase_add_test(tc, trim_now_counts_rss);
    tcase_add_test(tc, probe_statistics);
    tcase_add_test(tc, shim_thread_blocks_all_signals);
    tcase_add_test(tc, caller_mask_untouched);
    tcase_add_test(tc, process_signals_reach_program_threads);
    tcase_add_test(tc, fork_exec_1000);
    tcase_add_test(tc, short_lived_threads_100);
    tcase_add_test(tc, many_threads_at_once);
    tcase_add_test(tc, concurrent_explicit_trims);
    tcase_add_test(tc, fork_while_trim_runs);
    tcase_add_test(tc, child_gets_working_trimmer);
    tcase_add_test(tc, child_of_one_thread_trims_at_its_waits);
    tcase_add_test(tc, stopped_stays_stopped_in_child);
    tcase_add_test(tc, exit_while_trim_runs);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
