/* rssprobe_phase: see rssprobe_phase.h. Like the rest of rssprobe, nothing here allocates from the
 * malloc heap: the sample is formatted on the stack (rssprobe_emit), the floor table is mmap'd,
 * and the lock is a C11 atomic flag (no pthread dependency for the users who link -lrssprobe). */
#define _GNU_SOURCE

#include "rssprobe_internal.h"
#include "rssprobe_phase.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rssprobe.h"

/* How often the idle step samples (as the case harness does): fine enough to see a trimmer act
 * within its settle time. */
#define IDLE_SAMPLE_MS 100
#define NAME_MAX_LEN 64

static atomic_flag g_lock = ATOMIC_FLAG_INIT;
static int g_state; /* 0: not looked yet, 1: reporting, -1: not run by the runner */
static int g_fd = -1;
static dev_t g_dev;
static ino_t g_ino;
static int g_trim;
static long g_idle_s;
static struct rssprobe_floor g_floor;
static int g_floor_ok;
static long g_reported_us;

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&g_lock, memory_order_acquire))
        ;
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&g_lock, memory_order_release);
}

long rssprobe_env_long(const char *name, long min, long max, long dflt)
{
    const char *v = getenv(name);
    char *end;
    if (v == NULL || *v == '\0')
        return dflt;
    errno = 0;
    long n = strtol(v, &end, 10);
    /* strtol would take " 7" and "+7": the runner writes bare digits */
    int digits_first = (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
    if (!digits_first || errno || *end != '\0' || n < min || n > max) {
        /* On the stack, one write: nothing here may touch the malloc heap. The value is shown
         * cut to 40 bytes, control bytes as '?': the message stays one line. */
        char shown[41], line[256];
        size_t k = 0;
        for (; k < sizeof shown - 1 && v[k]; k++)
            shown[k] = (unsigned char)v[k] < 0x20 || v[k] == 0x7f ? '?' : v[k];
        shown[k] = '\0';
        int len = snprintf(line, sizeof line, "rssprobe: %s=%s%s: not a whole number in "
                           "%ld..%ld, ignored\n", name, shown, v[k] ? "..." : "", min, max);
        if (len > 0)
            (void)!write(STDERR_FILENO, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
        return dflt;
    }
    return n;
}

/* Is the descriptor still the file the runner opened? A program may close it and get the same
 * number back for a file of its own: the phases must not land there. */
static int fd_is_ours(void)
{
    struct stat st;
    return fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino;
}

static void look(void)
{
    unsigned long long dev, ino;
    const char *id = getenv("RSSPROBE_PHASE_ID");
    g_state = -1;
    g_fd = (int)rssprobe_env_long("RSSPROBE_PHASE_FD", 0, INT_MAX, -1);
    if (g_fd < 0 || id == NULL || sscanf(id, "%llu:%llu", &dev, &ino) != 2)
        return;
    g_dev = (dev_t)dev;
    g_ino = (ino_t)ino;
    if (!fd_is_ours())
        return;
    g_trim = rssprobe_env_long("RSSPROBE_PHASE_TRIM", 0, 1, 0) == 1;
    g_idle_s = rssprobe_env_long("RSSPROBE_PHASE_IDLE", 0, 3600, 0);
    g_state = 1;
}

static long monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int valid_name(const char *name)
{
    size_t n = 0;
    if (name == NULL)
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= NAME_MAX_LEN || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                   (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return n > 0;
}

static int report_locked(const char *name)
{
    struct rssprobe_sample s;
    long started = monotonic_us();

    if (!fd_is_ours()) {
        errno = EBADF;
        return -1;
    }
    rssprobe_sample(&s, program_invocation_short_name, name);
    if (g_reported_us)
        s.work_us = started - g_reported_us;
    if (g_floor_ok && g_floor.objects) {
        s.floor_kb = rssprobe_floor_kb(&g_floor);
        s.live_objects = g_floor.objects;
        s.live_bytes = g_floor.bytes;
    }
    int rc = rssprobe_emit(g_fd, &s);
    g_reported_us = monotonic_us();
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int rssprobe_phase(const char *name)
{
    int rc = 0;
    if (!valid_name(name)) {
        errno = EINVAL;
        return -1;
    }
    lock();
    if (g_state == 0)
        look();
    if (g_state < 0) {
        unlock();
        return 0;
    }
    rc = report_locked(name);
    /* The cell's steps after the free, as the harness's --trim and --idle do them. */
    if (rc == 0 && strcmp(name, "after_free") == 0) {
        if (g_trim) {
            malloc_trim(0);
            rc = report_locked("after_trim");
        }
        for (long waited = 0; rc == 0 && waited < g_idle_s * 1000; waited += IDLE_SAMPLE_MS) {
            sleep_ms(IDLE_SAMPLE_MS);
            rc = report_locked("idle");
        }
        if (rc == 0 && g_idle_s > 0)
            rc = report_locked("after_idle");
    }
    unlock();
    return rc;
}

int rssprobe_phase_keep(const void *ptr, size_t size)
{
    int rc = 0;
    lock();
    if (g_state == 0)
        look();
    if (g_state > 0) {
        if (!g_floor_ok)
            g_floor_ok = rssprobe_floor_init(&g_floor) == 0;
        rc = g_floor_ok ? rssprobe_floor_add(&g_floor, ptr, size) : -1;
        if (!g_floor_ok)
            errno = ENOMEM;
    }
    unlock();
    return rc;
}
