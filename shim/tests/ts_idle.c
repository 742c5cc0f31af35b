/* ts_idle: programs for the tests of the shim's work at a single-threaded program's own waits
 * (interpose.c), run with LD_PRELOAD=libtrimshim.so. Not linked to the shim: its API is found
 * with dlsym. Prints one JSON object per line on stdout.
 *
 *   ts_idle mode                 mode and threads before and after the program's first
 *                                pthread_create
 *   ts_idle sig-in-malloc MS     MS ms of malloc/free while SIGALRM and SIGPROF handlers (1 ms
 *                                timers) call nanosleep and poll; then waits itself
 *   ts_idle raw-handler N        a handler installed with a raw rt_sigaction; N x 64 KiB freed,
 *                                waits; then starts a thread and waits again
 *   ts_idle sig-longjmp N        a handler left with siglongjmp from deep in the stack; then N x
 *                                64 KiB freed, waits
 *   ts_idle ready-wait N ROUNDS  N x 8 KiB fragmented and freed; waits whose event is already
 *                                there (poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
 *                                sigtimedwait), against waits that block
 *   ts_idle waits                each interposed wait's results and timing
 *   ts_idle signal-during-trim N SIG  forks: the child frees N x 8 KiB fragmented and waits; the
 *                                parent sends SIG (TERM: default action; USR1: a handler that
 *                                _exits 7) while the child's first trim runs
 *   ts_idle early-handler        the SIGUSR2 handler ts_early's constructor installed, as
 *                                sigaction reports it
 *   ts_idle duty N               N x 64 KiB freed, then 2.5 s of 200 ms sleeps each followed by
 *                                50 ms of CPU (20 % busy between any two waits' starts)
 *   ts_idle fork-baseline N      a parent with 192 MiB of shared memory touched frees N x 64
 *                                KiB and idles until its shim trims; then forks: the child, whose
 *                                RSS has none of the shared pages, frees N x 64 KiB and idles 3 s
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
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
static double ms_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e6; }

static void stats(struct trimshim_stats *s)
{
    typedef void (*fn)(struct trimshim_stats *, size_t);
    fn f = (fn)dlsym(RTLD_DEFAULT, "trimshim_get_stats2");
    memset(s, 0, sizeof *s);
    s->state = -1;
    if (f)
        f(s, sizeof *s);
}

static void use(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* n x 64 KiB, each followed by a small live node (the seed's heap); the blocks freed */
static void **seed_free_all(long n)
{
    void **blk = malloc((size_t)n * sizeof *blk), **nodes = malloc((size_t)n * sizeof *nodes);
    for (long i = 0; i < n; i++) {
        blk[i] = malloc(64 * 1024);
        memset(blk[i], 1, 64 * 1024);
        use(blk[i]);
        nodes[i] = malloc(24);
    }
    for (long i = 0; i < n; i++)
        free(blk[i]);
    free(blk);
    return nodes;
}

static void **frag_free(long n)
{
    void **live = malloc((size_t)n * sizeof *live), **big = malloc((size_t)n * sizeof *big);
    for (long i = 0; i < n; i++) {
        big[i] = malloc(8192);
        memset(big[i], 1, 8192);
        use(big[i]);
        live[i] = malloc(32);
    }
    for (long i = 0; i < n; i++)
        free(big[i]);
    free(big);
    return live;
}

/* waits in 20 ms usleeps for ms */
static void idle_ms(long ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
    while (now_ns() < end)
        usleep(20000);
}

static int threads_now(void)
{
    char b[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    b[n] = 0;
    const char *p = strstr(b, "Threads:");
    return p ? atoi(p + 8) : -1;
}

/* is there a thread named "trimshim" (the shim's thread names itself so)? waits up to 2 s */
static int shim_thread_exists(void)
{
    for (int i = 0; i < 200; i++) {
        int found = 0;
        int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY);
        char buf[8192];
        long n;
        while (dfd >= 0 && (n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct d64 {
                    uint64_t ino;
                    int64_t off;
                    unsigned short reclen;
                    unsigned char type;
                    char name[];
                } *d = (struct d64 *)(void *)(buf + off);
                off += d->reclen;
                if (d->name[0] == '.')
                    continue;
                char cp[96], comm[32] = {0};
                snprintf(cp, sizeof cp, "/proc/self/task/%s/comm", d->name);
                int cfd = open(cp, O_RDONLY);
                if (cfd >= 0) {
                    if (read(cfd, comm, sizeof comm - 1) > 0 && !strcmp(comm, "trimshim\n"))
                        found = 1;
                    close(cfd);
                }
            }
        }
        if (dfd >= 0)
            close(dfd);
        if (found)
            return 1;
        struct timespec t = {0, 10000000};
        nanosleep(&t, NULL);
    }
    return 0;
}

static void print_state(const char *phase)
{
    struct trimshim_stats s;
    stats(&s);
    char *single = dlsym(RTLD_DEFAULT, "__libc_single_threaded");
    printf("{\"phase\":\"%s\",\"state\":%d,\"mode\":%d,\"single\":%d,\"threads\":%d,"
           "\"trims\":%llu,\"bg_trims\":%llu,\"idle_looks\":%llu,\"probes\":%llu,"
           "\"bytes_returned\":%llu}\n",
           phase, s.state, s.mode, single ? *single : -1, threads_now(),
           (unsigned long long)s.trims, (unsigned long long)s.background_trims,
           (unsigned long long)s.idle_looks, (unsigned long long)s.probes,
           (unsigned long long)s.bytes_returned);
    fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */

static atomic_int stop_sleeper;
static void *sleeper(void *a)
{
    (void)a;
    while (!atomic_load(&stop_sleeper))
        usleep(10000);
    return NULL;
}

static int cmd_mode(void)
{
    print_state("before");
    pthread_t t;
    if (pthread_create(&t, NULL, sleeper, NULL) != 0)
        return 1;
    int shim = shim_thread_exists();
    struct trimshim_stats s;
    stats(&s);
    char *single = dlsym(RTLD_DEFAULT, "__libc_single_threaded");
    printf("{\"phase\":\"after\",\"state\":%d,\"mode\":%d,\"single\":%d,\"threads\":%d,"
           "\"shim_thread\":%d}\n",
           s.state, s.mode, single ? *single : -1, threads_now(), shim);
    atomic_store(&stop_sleeper, 1);
    pthread_join(t, NULL);
    return 0;
}

/* ---- handlers that wait while the program is inside malloc ---- */

static atomic_long in_handler_waits;
static void on_alrm(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    int saved = errno;
    struct timespec t = {0, 1000};
    nanosleep(&t, NULL); /* a blocking wait, entered inside malloc's interrupted code */
    atomic_fetch_add(&in_handler_waits, 1);
    errno = saved;
}
static void on_prof(int sig)
{
    (void)sig;
    int saved = errno;
    poll(NULL, 0, 1);
    atomic_fetch_add(&in_handler_waits, 1);
    errno = saved;
}

static int cmd_sig_in_malloc(long ms)
{
    struct sigaction sa, q;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alrm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPROF, on_prof);
    sigaction(SIGALRM, NULL, &q);
    int own = q.sa_sigaction == on_alrm; /* the program's handler, not a trampoline */
    struct sigaction qp;
    sigaction(SIGPROF, NULL, &qp);
    own = own && qp.sa_handler == on_prof;
    /* the heap has something to trim, so a trim inside a handler would happen */
    void **nodes = seed_free_all(2000);
    use(nodes);
    struct trimshim_stats a, b, c;
    stats(&a);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    setitimer(ITIMER_PROF, &it, NULL);
    void *pool[256] = {0};
    unsigned x = 1;
    uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
    long ops = 0;
    while (now_ns() < end) {
        for (int i = 0; i < 1000; i++) {
            x = x * 1103515245u + 12345u;
            unsigned k = (x >> 8) % 256;
            free(pool[k]);
            pool[k] = malloc(16 + (x >> 16) % 8000);
            ((char *)pool[k])[0] = 1;
        }
        ops += 1000;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    setitimer(ITIMER_PROF, &off, NULL);
    stats(&b);
    for (int k = 0; k < 256; k++)
        free(pool[k]);
    /* the same waits from the program's own code: the shim works there */
    for (int i = 0; i < 50; i++) {
        struct timespec t = {0, 20000000};
        nanosleep(&t, NULL);
    }
    stats(&c);
    printf("{\"own_handlers\":%d,\"handler_waits\":%ld,\"ops\":%ld,\"mode\":%d,"
           "\"looks_in_handlers\":%llu,\"trims_in_handlers\":%llu,\"probes_in_handlers\":%llu,"
           "\"looks_after\":%llu,\"trims_after\":%llu}\n",
           own, atomic_load(&in_handler_waits), ops, a.mode,
           (unsigned long long)(b.idle_looks - a.idle_looks),
           (unsigned long long)(b.trims - a.trims), (unsigned long long)(b.probes - a.probes),
           (unsigned long long)(c.idle_looks - b.idle_looks),
           (unsigned long long)(c.trims - b.trims));
    return 0;
}

/* ---- a handler installed behind the shim's back ---- */

struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};
static atomic_int raw_handled;
static void on_raw(int sig)
{
    (void)sig;
    atomic_fetch_add(&raw_handled, 1);
}
static void on_dummy(int sig) { (void)sig; }

static int cmd_raw_handler(long n)
{
    /* glibc's restorer, from an action glibc installed */
    signal(SIGUSR2, on_dummy);
    struct ksigaction k, raw;
    if (syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8) != 0)
        return 3;
    memset(&raw, 0, sizeof raw);
    raw.handler = (void *)on_raw;
    raw.flags = k.flags; /* SA_RESTORER and glibc's SA_RESTART */
    raw.restorer = k.restorer;
    print_state("before-raw");
    if (syscall(SYS_rt_sigaction, SIGUSR1, &raw, NULL, 8) != 0)
        return 4;
    void **nodes = seed_free_all(n);
    use(nodes);
    idle_ms(1500);
    print_state("raw");
    raise(SIGUSR1);
    pthread_t t;
    pthread_create(&t, NULL, sleeper, NULL);
    idle_ms(2500);
    print_state("thread");
    printf("{\"raw_handled\":%d}\n", atomic_load(&raw_handled));
    atomic_store(&stop_sleeper, 1);
    pthread_join(t, NULL);
    return 0;
}

/* ---- a handler left with siglongjmp ---- */

static sigjmp_buf jb;
static void on_jump(int sig)
{
    (void)sig;
    siglongjmp(jb, 1);
}

static long deep(int level)
{
    volatile char pad[4096];
    pad[0] = (char)level;
    if (level == 0) {
        raise(SIGUSR1);
        return 0;
    }
    return deep(level - 1) + pad[0];
}

static int cmd_sig_longjmp(long n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_jump;
    sigaction(SIGUSR1, &sa, NULL);
    volatile int jumped = 0;
    if (sigsetjmp(jb, 1) == 0)
        deep(16);
    else
        jumped = 1;
    void **nodes = seed_free_all(n);
    use(nodes);
    idle_ms(2000);
    printf("{\"jumped\":%d}\n", jumped);
    print_state("after-jump");
    return 0;
}

/* ---- waits whose event is already there ---- */

static void spin_ms(long ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000ull;
    while (now_ns() < end)
        ;
}

static int cmd_ready_wait(long n, int rounds)
{
    void **live = frag_free(n);
    use(live);
    int p[2];
    if (pipe(p) != 0)
        return 3;
    int ep = epoll_create1(0);
    struct epoll_event ee = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ee);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    struct trimshim_stats a, b;
    /* waits that block: the shim works there (the first trim is the dear one) */
    stats(&a);
    uint64_t t0 = now_ns();
    struct pollfd pf = {p[0], POLLIN, 0};
    int r0 = poll(&pf, 1, 300);
    double blocked_ms = ms_since(t0);
    stats(&b);
    unsigned long long blocked_trims = b.trims - a.trims;
    double max_lat = 0;
    unsigned long long ready_trims = 0, ready_looks = 0, ok = 0;
    for (int i = 0; i < rounds; i++) {
        int kind = i % 7;
        char c = 'x';
        if (kind == 6)
            raise(SIGUSR2); /* blocked: pending, for sigtimedwait */
        else if (write(p[1], &c, 1) != 1)
            return 4;
        spin_ms(30); /* the shim's next look falls due (interval 20 ms) */
        stats(&a);
        uint64_t s0 = now_ns();
        int r = -1;
        struct timespec ts = {5, 0};
        struct timeval tv = {5, 0};
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(p[0], &rs);
        struct epoll_event ev;
        switch (kind) {
        case 0: pf.revents = 0; r = poll(&pf, 1, 5000); break;
        case 1: pf.revents = 0; r = ppoll(&pf, 1, &ts, NULL); break;
        case 2: r = select(p[0] + 1, &rs, NULL, NULL, &tv); break;
        case 3: r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL); break;
        case 4: r = epoll_wait(ep, &ev, 1, 5000); break;
        case 5: r = epoll_pwait(ep, &ev, 1, 5000, NULL); break;
        case 6: r = sigtimedwait(&usr2, NULL, &ts) == SIGUSR2 ? 1 : -1; break;
        }
        double lat = ms_since(s0);
        stats(&b);
        if (r == 1)
            ok++;
        if (kind != 6 && read(p[0], &c, 1) != 1)
            return 5;
        if (lat > max_lat)
            max_lat = lat;
        ready_trims += b.trims - a.trims;
        ready_looks += b.idle_looks - a.idle_looks;
    }
    stats(&b);
    printf("{\"blocked_result\":%d,\"blocked_ms\":%.1f,\"blocked_trims\":%llu,"
           "\"last_trim_ms\":%.1f,\"ready_ok\":%llu,\"ready_max_ms\":%.2f,\"ready_trims\":%llu,"
           "\"ready_looks\":%llu,\"mode\":%d}\n",
           r0, blocked_ms, blocked_trims, (double)b.last_trim_ns / 1e6, ok, max_lat,
           ready_trims, ready_looks, b.mode);
    return 0;
}

/* ---- each wait's results and timing ---- */

static atomic_int alarms;
static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&alarms, 1);
}

static void alarm_in_ms(long ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static int cmd_waits(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    int p[2];
    if (pipe(p) != 0)
        return 3;
    struct trimshim_stats s0, s1;
    stats(&s0);
    printf("{");
    /* timeouts: never shorter than asked */
    uint64_t t = now_ns();
    struct pollfd pf = {p[0], POLLIN, 0};
    int r = poll(&pf, 1, 150);
    printf("\"poll_r\":%d,\"poll_ms\":%.1f", r, ms_since(t));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 150000};
    t = now_ns();
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    printf(",\"select_r\":%d,\"select_ms\":%.1f,\"select_bit\":%d,\"select_tv_us\":%ld", r,
           ms_since(t), FD_ISSET(p[0], &rs) ? 1 : 0, (long)(tv.tv_sec * 1000000 + tv.tv_usec));
    char c = 'y';
    if (write(p[1], &c, 1) != 1)
        return 4;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    tv.tv_sec = 1;
    tv.tv_usec = 0;
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    printf(",\"select_ready_r\":%d,\"select_ready_bit\":%d", r, FD_ISSET(p[0], &rs) ? 1 : 0);
    if (read(p[0], &c, 1) != 1)
        return 5;
    struct timespec ts = {0, 150000000};
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    t = now_ns();
    r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, NULL);
    printf(",\"pselect_r\":%d,\"pselect_ms\":%.1f", r, ms_since(t));
    int ep = epoll_create1(0);
    struct epoll_event ee = {.events = EPOLLIN, .data.fd = p[0]}, ev;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ee);
    t = now_ns();
    r = epoll_wait(ep, &ev, 1, 150);
    printf(",\"epoll_r\":%d,\"epoll_ms\":%.1f", r, ms_since(t));
    t = now_ns();
    r = ppoll(&pf, 1, &ts, NULL);
    printf(",\"ppoll_r\":%d,\"ppoll_ms\":%.1f", r, ms_since(t));
    t = now_ns();
    struct timespec req = {0, 200000000}, rem = {0, 0};
    r = nanosleep(&req, &rem);
    printf(",\"nanosleep_r\":%d,\"nanosleep_ms\":%.1f", r, ms_since(t));
    /* interrupted by a handler: EINTR, and the time not slept */
    alarm_in_ms(60);
    t = now_ns();
    r = nanosleep(&req, &rem);
    int e = errno;
    printf(",\"nanosleep_intr_r\":%d,\"nanosleep_intr_errno_eintr\":%d,\"nanosleep_intr_ms\":%.1f,"
           "\"nanosleep_rem_ms\":%.1f",
           r, e == EINTR, ms_since(t), (double)rem.tv_sec * 1e3 + (double)rem.tv_nsec / 1e6);
    alarm_in_ms(60);
    t = now_ns();
    r = poll(&pf, 1, 2000);
    e = errno;
    printf(",\"poll_intr_r\":%d,\"poll_intr_eintr\":%d,\"poll_intr_ms\":%.1f", r, e == EINTR,
           ms_since(t));
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 150000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    t = now_ns();
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &after);
    printf(",\"clock_abs_r\":%d,\"clock_abs_late\":%d", r,
           after.tv_sec > abs.tv_sec || (after.tv_sec == abs.tv_sec && after.tv_nsec >= abs.tv_nsec));
    t = now_ns();
    r = clock_nanosleep(CLOCK_REALTIME, 0, &ts, NULL);
    printf(",\"clock_rel_r\":%d,\"clock_rel_ms\":%.1f", r, ms_since(t));
    t = now_ns();
    r = usleep(150000);
    printf(",\"usleep_r\":%d,\"usleep_ms\":%.1f", r, ms_since(t));
    t = now_ns();
    unsigned left = sleep(1);
    printf(",\"sleep_left\":%u,\"sleep_ms\":%.1f", left, ms_since(t));
    alarm_in_ms(100);
    t = now_ns();
    r = pause();
    e = errno;
    printf(",\"pause_r\":%d,\"pause_eintr\":%d,\"pause_ms\":%.1f", r, e == EINTR, ms_since(t));
    sigset_t none;
    sigemptyset(&none);
    alarm_in_ms(100);
    t = now_ns();
    r = sigsuspend(&none);
    e = errno;
    printf(",\"sigsuspend_r\":%d,\"sigsuspend_eintr\":%d,\"sigsuspend_ms\":%.1f", r, e == EINTR,
           ms_since(t));
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    t = now_ns();
    r = sigtimedwait(&usr2, NULL, &ts);
    e = errno;
    printf(",\"sigtimedwait_r\":%d,\"sigtimedwait_eagain\":%d,\"sigtimedwait_ms\":%.1f", r,
           e == EAGAIN, ms_since(t));
    raise(SIGUSR2);
    r = sigwaitinfo(&usr2, NULL);
    printf(",\"sigwaitinfo_r\":%d", r);
    stats(&s1);
    printf(",\"idle_looks\":%llu,\"mode\":%d,\"alarms\":%d}\n",
           (unsigned long long)(s1.idle_looks - s0.idle_looks), s1.mode, atomic_load(&alarms));
    return 0;
}

/* ---- a signal while a trim at an idle point runs ---- */

static void on_usr1_exit(int sig)
{
    (void)sig;
    _exit(7);
}

static int cmd_signal_during_trim(long n, const char *which)
{
    int sig = !strcmp(which, "USR1") ? SIGUSR1 : SIGTERM;
    int p[2];
    if (pipe(p) != 0)
        return 3;
    pid_t pid = fork();
    if (pid == 0) {
        if (sig == SIGUSR1)
            signal(SIGUSR1, on_usr1_exit);
        void **live = frag_free(n);
        use(live);
        if (write(p[1], "f", 1) != 1)
            _exit(3);
        idle_ms(60000);
        _exit(0);
    }
    char c;
    if (read(p[0], &c, 1) != 1)
        return 4;
    /* the signal goes when the child's shim has decided to trim (TRIMSHIM_VERBOSE=2 and
     * TRIMSHIM_LOG=file): the line comes right before malloc_trim */
    const char *log = getenv("TRIMSHIM_LOG");
    char want[64], done[64];
    snprintf(want, sizeof want, "trimshim[%d]: decision quiet", (int)pid);
    snprintf(done, sizeof done, "trimshim[%d]: trim 1 ", (int)pid);
    int seen = 0, done_at_kill = 0;
    uint64_t until = now_ns() + 30000000000ull;
    static char buf[65536];
    while (log && !seen && now_ns() < until) {
        int fd = open(log, O_RDONLY);
        ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[got > 0 ? got : 0] = 0;
        seen = strstr(buf, want) != NULL;
        done_at_kill = strstr(buf, done) != NULL;
        if (!seen) {
            struct timespec t = {0, 1000000};
            nanosleep(&t, NULL);
        }
    }
    uint64_t t0 = now_ns();
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    double ms = ms_since(t0);
    int fd = log ? open(log, O_RDONLY) : -1;
    ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[got > 0 ? got : 0] = 0;
    printf("{\"decided\":%d,\"trim_done_at_kill\":%d,\"trim_done_at_end\":%d,", seen,
           done_at_kill, strstr(buf, done) != NULL);
    printf("\"signalled\":%d,\"termsig\":%d,\"exited\":%d,\"status\":%d,\"ms\":%.1f}\n",
           WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFEXITED(st),
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, ms);
    return 0;
}

/* ---- a handler installed before the shim's constructor ---- */

static int cmd_early_handler(void)
{
    void *want = dlsym(RTLD_DEFAULT, "ts_early_handler");
    struct sigaction q;
    sigaction(SIGUSR2, NULL, &q);
    struct ksigaction k;
    syscall(SYS_rt_sigaction, SIGUSR2, NULL, &k, 8);
    raise(SIGUSR2);
    int *count = dlsym(RTLD_DEFAULT, "ts_early_handled");
    print_state("early");
    printf("{\"have_early\":%d,\"reported_is_early\":%d,\"kernel_is_early\":%d,"
           "\"early_handled\":%d}\n",
           want != NULL, want && (void *)q.sa_handler == want, want && k.handler == want,
           count ? *count : -1);
    return 0;
}

static int cmd_duty(long n)
{
    void **nodes = seed_free_all(n);
    use(nodes);
    uint64_t end = now_ns() + 2500000000ull;
    while (now_ns() < end) {
        /* A thread's 100 ms window is quiet (under 10 ms of CPU) only if it starts at most
         * 10 ms before a burst ends and ends before the next: with 100 ms sleeps and 25 ms
         * bursts that is 10 ms of every 125, and looks 100 ms apart visit only five phases of
         * the cycle, so a run could miss it throughout (seen once in ctest beside a build:
         * 2 probes, no trim). 200 ms sleeps leave 110 ms of every 250 (44 % of the looks). */
        usleep(200000);
        spin_ms(50);
    }
    print_state("duty");
    return 0;
}

/* A server's children (PostgreSQL's backends) start with an RSS far below their parent's, whose
 * shared memory fork does not map into them: the child's shim must measure from its own RSS,
 * not from the baseline its parent's last trim left. */
static int cmd_fork_baseline(long n)
{
    size_t shared_len = 192u << 20;
    char *shared = mmap(NULL, shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 3;
    memset(shared, 1, shared_len);
    void **nodes = seed_free_all(n);
    use(nodes);
    struct trimshim_stats s;
    uint64_t until = now_ns() + 10000000000ull;
    do {
        idle_ms(100);
        stats(&s);
    } while (s.trims == 0 && now_ns() < until);
    print_state("parent");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        idle_ms(300); /* the child's shim takes its baseline at its first looks */
        void **child_nodes = seed_free_all(n);
        use(child_nodes);
        idle_ms(3000);
        print_state("child");
        _exit(0);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 4;
    munmap(shared, shared_len);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ts_idle mode|sig-in-malloc|raw-handler|sig-longjmp|ready-wait|"
                        "waits|signal-during-trim|early-handler|duty|fork-baseline ...\n");
        return 2;
    }
    const char *c = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 1000;
    if (!strcmp(c, "mode"))
        return cmd_mode();
    if (!strcmp(c, "sig-in-malloc"))
        return cmd_sig_in_malloc(n);
    if (!strcmp(c, "raw-handler"))
        return cmd_raw_handler(n);
    if (!strcmp(c, "sig-longjmp"))
        return cmd_sig_longjmp(n);
    if (!strcmp(c, "ready-wait"))
        return cmd_ready_wait(n, argc > 3 ? atoi(argv[3]) : 21);
    if (!strcmp(c, "waits"))
        return cmd_waits();
    if (!strcmp(c, "signal-during-trim"))
        return cmd_signal_during_trim(n, argc > 3 ? argv[3] : "TERM");
    if (!strcmp(c, "early-handler"))
        return cmd_early_handler();
    if (!strcmp(c, "duty"))
        return cmd_duty(n);
    if (!strcmp(c, "fork-baseline"))
        return cmd_fork_baseline(n);
    fprintf(stderr, "ts_idle: unknown command %s\n", c);
    return 2;
}
