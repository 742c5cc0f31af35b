/* trimshim statistics file, Prometheus text exposition format 0.0.4. See promfile.h.
 *
 * Every sample carries a pid label: node_exporter's textfile collector merges all files of its
 * directory and refuses series that two files both define, and a multi-process server writes one
 * file per process. Counters end in _total, units are bytes and seconds. No timestamps (the
 * collector refuses them). */
#define _GNU_SOURCE
#include "promfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "env.h"

/* The version of the file's names and labels: README documents it; tools may rely on it. */
#define TS_PROM_FORMAT_VERSION "1"

struct out {
    char *buf;
    size_t size, len;
    int overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->overflow = 1;
        return;
    }
    o->len += (size_t)n;
}

void ts_prom_escape_label(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return;
    for (; s && *s; s++) {
        char tmp[2];
        size_t n = 1;
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == '"') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            tmp[0] = '\\';
            tmp[1] = 'n';
            n = 2;
        } else {
            tmp[0] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        if (o + n >= size)
            break;
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o] = 0;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u(struct out *o, const char *name, long pid, uint64_t v)
{
    put(o, "%s{pid=\"%ld\"} %llu\n", name, pid, (unsigned long long)v);
}

static void sample_s(struct out *o, const char *name, long pid, uint64_t ns)
{
    put(o, "%s{pid=\"%ld\"} %llu.%09llu\n", name, pid, (unsigned long long)(ns / 1000000000ull),
        (unsigned long long)(ns % 1000000000ull));
}

size_t ts_prom_format(char *buf, size_t size, const struct ts_prom_values *v)
{
    struct out o = {buf, size, 0, 0};
    char prog[128];
    if (size == 0)
        return 0;
    ts_prom_escape_label(v->program ? v->program : "", prog, sizeof prog);
    family(&o, "trimshim_info", "gauge",
           "The trim shim (libtrimshim) is loaded in this process; mode: how it trims now "
           "(thread, idle-points: at the program's blocking waits, none).");
    put(&o,
        "trimshim_info{pid=\"%ld\",program=\"%s\",mode=\"%s\",policy=\"%s\",format=\""
        TS_PROM_FORMAT_VERSION "\"} 1\n",
        v->pid, prog, v->mode ? v->mode : "none", v->policy ? v->policy : "off");
    family(&o, "trimshim_state", "gauge", "The shim's state: 1 for the current one.");
    for (int i = 0; i < v->nstates; i++)
        put(&o, "trimshim_state{pid=\"%ld\",state=\"%s\"} %d\n", v->pid, v->state_names[i],
            i == v->state ? 1 : 0);
    family(&o, "trimshim_trims_total", "counter",
           "malloc_trim calls, by why: quiet (the program went quiet), busy (much freed while "
           "busy), interval (interval policy), api (trimshim_trim_now).");
    static const char *const kinds[] = {"quiet", "busy", "interval", "api"};
    const uint64_t counts[] = {v->trims_quiet, v->trims_busy, v->trims_interval, v->trims_api};
    for (int i = 0; i < 4; i++)
        put(&o, "trimshim_trims_total{pid=\"%ld\",kind=\"%s\"} %llu\n", v->pid, kinds[i],
            (unsigned long long)counts[i]);
    family(&o, "trimshim_returned_bytes_total", "counter",
           "Resident memory the trims gave back: the RSS drop across each malloc_trim call.");
    sample_u(&o, "trimshim_returned_bytes_total", v->pid, v->returned_bytes);
    family(&o, "trimshim_trim_seconds_total", "counter", "Wall time spent inside malloc_trim.");
    sample_s(&o, "trimshim_trim_seconds_total", v->pid, v->trim_ns);
    family(&o, "trimshim_probes_total", "counter",
           "Heap probes (mallinfo2, which walks the free lists under the arena locks).");
    sample_u(&o, "trimshim_probes_total", v->pid, v->probes);
    family(&o, "trimshim_probe_seconds_total", "counter", "Wall time spent in heap probes.");
    sample_s(&o, "trimshim_probe_seconds_total", v->pid, v->probe_ns);
    family(&o, "trimshim_cpu_seconds_total", "counter",
           "CPU time of the shim's own work: its thread, and its work at the program's idle "
           "points.");
    sample_s(&o, "trimshim_cpu_seconds_total", v->pid, v->cpu_ns);
    family(&o, "trimshim_futile_trims_total", "counter",
           "Background trims judged futile: less back than the threshold, or the pages taken "
           "back within 2 s (RSS, or minor faults).");
    sample_u(&o, "trimshim_futile_trims_total", v->pid, v->futile);
    family(&o, "trimshim_refault_minor_faults_total", "counter",
           "Minor page faults in the 2 s after each background trim beyond what the rate of "
           "the 2 s before it predicts: pages the program took back.");
    sample_u(&o, "trimshim_refault_minor_faults_total", v->pid, v->refault_faults);
    family(&o, "trimshim_wakeups_total", "counter",
           "Looks at the process (clocks, RSS), by the thread or at idle points.");
    sample_u(&o, "trimshim_wakeups_total", v->pid, v->wakeups);
    family(&o, "trimshim_idle_point_looks_total", "counter",
           "Of those, the looks taken at the program's own blocking waits.");
    sample_u(&o, "trimshim_idle_point_looks_total", v->pid, v->idle_points);
    family(&o, "trimshim_heap_free_bytes", "gauge",
           "Free bytes malloc holds (all arenas) at the last probe, the pages trims returned "
           "included (malloc_trim gives back pages, not free bytes).");
    sample_u(&o, "trimshim_heap_free_bytes", v->pid, v->heap_free_bytes);
    family(&o, "trimshim_heap_used_bytes", "gauge",
           "Bytes in use (incl. mmapped chunks) at the last probe.");
    sample_u(&o, "trimshim_heap_used_bytes", v->pid, v->heap_used_bytes);
    family(&o, "trimshim_resident_bytes", "gauge",
           "Resident set size of the process when the file was written.");
    sample_u(&o, "trimshim_resident_bytes", v->pid, v->rss_bytes);
    family(&o, "trimshim_start_time_seconds", "gauge",
           "Unix time the shim started in this process.");
    sample_u(&o, "trimshim_start_time_seconds", v->pid, v->start_time_s);
    if (o.overflow)
        return 0;
    return o.len;
}

/* ------------------------------------------------------------------------------------------ */
/* files */

/* dir (without the final slash; "/" for the root) and base of path */
static int split(const char *path, char *dir, size_t dsize, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1])
        return -1;
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1; /* "/name" */
    if (n >= dsize)
        return -1;
    memcpy(dir, path, n);
    dir[n] = 0;
    *base = slash + 1;
    return 0;
}

static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

int ts_prom_check_target(const char *path, char *why, size_t why_size)
{
    char dir[TS_STATS_PATH_MAX];
    const char *base;
    struct stat st;
    if (split(path, dir, sizeof dir, &base) != 0) {
        snprintf(why, why_size, "not a file path");
        return -1;
    }
    if (stat(dir, &st) != 0) {
        snprintf(why, why_size, "its directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, why_size, "%s is not a directory", dir);
        return -1;
    }
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            snprintf(why, why_size, "%s, not a regular file: writing it would replace it",
                     kind_of(st.st_mode));
            return -1;
        }
    } else if (errno != ENOENT) {
        snprintf(why, why_size, "%s", strerror(errno));
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, why_size, "cannot create files in %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int ts_prom_write(const char *path, long pid, const char *text, size_t len, dev_t *dev,
                  ino_t *ino)
{
    char dir[TS_STATS_PATH_MAX], tmp[TS_STATS_PATH_MAX + 64];
    const char *base;
    struct stat st;
    if (split(path, dir, sizeof dir, &base) != 0)
        return EINVAL;
    /* the target is checked each time: something else may have been put there since */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return EEXIST;
    int n = snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", strcmp(dir, "/") ? dir : "", base, pid);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return ENAMETOOLONG;
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST && attempt == 0)
            unlink(tmp); /* left by a process of the same PID that died while writing */
        else if (fd < 0)
            return errno;
    }
    if (fd < 0)
        return EEXIST;
    int err = write_all(fd, text, len);
    if (!err && fstat(fd, &st) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return err;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

int ts_prom_remove_own(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != dev || st.st_ino != ino)
        return 0;
    return unlink(path) == 0;
}

/* Does name match prefix <digits> suffix (the template's file name around %p; "%%" in them
 * stands for "%")? *pid gets the digits. Only the first %p varies; others must be the same PID. */
static int match_name(const char *name, const char *tmpl_base, long *pid)
{
    const char *n = name, *t = tmpl_base;
    long seen = -1;
    while (*t) {
        if (t[0] == '%' && t[1] == '%') {
            if (*n++ != '%')
                return 0;
            t += 2;
        } else if (t[0] == '%' && t[1] == 'p') {
            if (*n < '1' || *n > '9')
                return 0;
            long v = 0;
            while (*n >= '0' && *n <= '9' && v < 100000000)
                v = v * 10 + (*n++ - '0');
            if (seen >= 0 && v != seen)
                return 0;
            seen = v;
            t += 2;
        } else {
            if (*n++ != *t++)
                return 0;
        }
    }
    if (*n || seen < 0)
        return 0;
    *pid = seen;
    return 1;
}

struct ts_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int ts_prom_collect_stale(const char *tmpl, long self_pid)
{
    char dir[TS_STATS_PATH_MAX];
    const char *tbase;
    if (split(tmpl, dir, sizeof dir, &tbase) != 0 || !strstr(tbase, "%p"))
        return 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    int removed = 0;
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct ts_dirent64 *d = (struct ts_dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            long pid;
            if (d->d_reclen == 0)
                break;
            if (!match_name(d->d_name, tbase, &pid) || pid == self_pid)
                continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue; /* alive (or not ours to ask): keep */
            int fd = openat(dfd, d->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0)
                continue;
            char head[32];
            struct stat st;
            ssize_t r = read(fd, head, sizeof head);
            int ours = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && r >= 16 &&
                       memcmp(head, "# HELP trimshim_", 16) == 0;
            close(fd);
            if (ours && unlinkat(dfd, d->d_name, 0) == 0)
                removed++;
        }
    }
    close(dfd);
    return removed;
}
