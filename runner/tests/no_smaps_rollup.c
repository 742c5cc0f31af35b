/* Test-only LD_PRELOAD library (runner/tests/test_faults.py): makes /proc/self/smaps_rollup
 * unreadable, as a kernel before 4.14 (no such file) or a sandbox that hides it does, so that
 * rssprobe's fallback to /proc/self/statm and the runner's handling of a phase without anonymous
 * kB are tested on the real case programs. Every other open goes through unchanged. */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

/* /proc/self/smaps_rollup, /proc/thread-self/smaps_rollup, /proc/PID/smaps_rollup. */
static int masked(const char *path)
{
    static const char suffix[] = "/smaps_rollup";
    size_t n, s = sizeof suffix - 1;

    if (path == NULL || strncmp(path, "/proc/", 6) != 0)
        return 0;
    n = strlen(path);
    return n > s && strcmp(path + n - s, suffix) == 0;
}

static mode_t mode_of(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define FORWARD_OPEN(name)                                                                         \
    int name(const char *path, int flags, ...)                                                     \
    {                                                                                              \
        static int (*real)(const char *, int, ...);                                                \
        va_list ap;                                                                                \
        mode_t mode;                                                                               \
        va_start(ap, flags);                                                                       \
        mode = mode_of(flags, ap);                                                                 \
        va_end(ap);                                                                                \
        if (masked(path)) {                                                                        \
            errno = EACCES;                                                                        \
            return -1;                                                                             \
        }                                                                                          \
        if (real == NULL)                                                                          \
            real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);                       \
        return real(path, flags, mode);                                                            \
    }

#define FORWARD_OPENAT(name)                                                                       \
    int name(int dirfd, const char *path, int flags, ...)                                          \
    {                                                                                              \
        static int (*real)(int, const char *, int, ...);                                           \
        va_list ap;                                                                                \
        mode_t mode;                                                                               \
        va_start(ap, flags);                                                                       \
        mode = mode_of(flags, ap);                                                                 \
        va_end(ap);                                                                                \
        if (masked(path)) {                                                                        \
            errno = EACCES;                                                                        \
            return -1;                                                                             \
        }                                                                                          \
        if (real == NULL)                                                                          \
            real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name);                  \
        return real(dirfd, path, flags, mode);                                                     \
    }

FORWARD_OPEN(open)
FORWARD_OPEN(open64)
FORWARD_OPENAT(openat)
FORWARD_OPENAT(openat64)
