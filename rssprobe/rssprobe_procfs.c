/* rssprobe_procfs: see rssprobe_procfs.h. Hard rule for this file: nothing here allocates, and it
 * depends on nothing else in rssprobe, so libtrimshim links this object alone. No stdio, no
 * malloc: open/read/close into caller or stack buffers, integer parsing by hand. */
#define _GNU_SOURCE

#include "rssprobe_procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* smaps_rollup is about 1 KiB, status about 1.5 KiB, statm a few dozen bytes. */
#define READ_BUF 4096
#define STATM_BUF 256

/* ---------------------------------------------------------------------------------------------
 * Reading */

ssize_t rssprobe_procfs_read_fd(int fd, char *buf, size_t cap, rssprobe_read_fn rd)
{
    size_t got = 0;

    if (rd == NULL)
        rd = read;
    /* A /proc file may come in several pieces (seq_file hands out at most a page per read): only
     * 0 means the end. */
    while (got < cap) {
        ssize_t n = rd(fd, buf + got, cap - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        if ((size_t)n > cap - got) {
            errno = EIO;
            return -1;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t rssprobe_procfs_read(const char *path, char *buf, size_t cap)
{
    int fd;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;

    ssize_t n = rssprobe_procfs_read_fd(fd, buf, cap, NULL);
    int saved = errno;
    close(fd);
    errno = saved;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing helpers */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Parses an unsigned decimal number at *p (before end) into a long. Returns 0 and advances *p
 * past the digits, or -1 when there is no digit or the value does not fit. */
static int parse_long(const char **p, const char *end, long *out)
{
    const char *s = *p;
    long v = 0;

    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9') {
        int d = *s - '0';
        if (v > (LONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* The value of a "Key: value" line, "<blanks><digits><blanks>[kB]<blanks>" up to end. */
static int parse_kb_value(const char *s, const char *end, long *out)
{
    while (s < end && is_blank(*s))
        s++;
    if (parse_long(&s, end, out) < 0)
        return -1;
    while (s < end && is_blank(*s))
        s++;
    if (end - s >= 2 && s[0] == 'k' && s[1] == 'B')
        s += 2;
    while (s < end && is_blank(*s))
        s++;
    return s == end ? 0 : -1;
}

static int key_is(const char *key, size_t klen, const char *want)
{
    size_t wlen = strlen(want);
    return klen == wlen && memcmp(key, want, wlen) == 0;
}

/* A "Key: value kB" file (smaps_rollup, status), one line at a time. */
struct kv_line {
    const char *key;
    size_t klen;
    const char *value, *end; /* after the colon, up to the end of the line */
    int terminated;          /* the line's newline is in the text */
};

/* The next line of [*p, end) into line, advancing *p. Returns 0 at the end of the text. A line
 * without a colon (smaps_rollup's address header, or junk) has key NULL. */
static int next_line(const char **p, const char *end, struct kv_line *line)
{
    const char *s = *p;
    if (s >= end)
        return 0;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *le = nl ? nl : end;
    const char *colon = memchr(s, ':', (size_t)(le - s));

    line->key = colon ? s : NULL;
    line->klen = colon ? (size_t)(colon - s) : 0;
    line->value = colon ? colon + 1 : le;
    line->end = le;
    line->terminated = nl != NULL;
    *p = nl ? nl + 1 : end;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * smaps_rollup and statm as RSS */

static void rss_invalid(struct rssprobe_rss *out)
{
    out->rss_kb = -1;
    out->anon_kb = -1;
    out->anon_huge_kb = -1;
    out->source = RSSPROBE_RSS_NONE;
}

int rssprobe_parse_smaps_rollup(const char *text, size_t len, struct rssprobe_rss *out)
{
    const char *p = text;
    const char *end = text + len;
    long rss = -1, anon = -1, huge = -1;
    int have_rss = 0, have_anon = 0, have_huge = 0;
    struct kv_line l;

    rss_invalid(out);
    if (text == NULL)
        return -1;

    /* The first line (the address range header) and anything unknown are skipped. */
    while (next_line(&p, end, &l)) {
        long v;
        if (l.key == NULL)
            continue;
        if (!have_rss && key_is(l.key, l.klen, "Rss")) {
            have_rss = 1;
            if (parse_kb_value(l.value, l.end, &v) < 0)
                return -1; /* a present but malformed Rss is malformed text */
            rss = v;
        } else if (!have_anon && key_is(l.key, l.klen, "Anonymous")) {
            have_anon = 1;
            anon = parse_kb_value(l.value, l.end, &v) == 0 ? v : -1;
        } else if (!have_huge && key_is(l.key, l.klen, "AnonHugePages")) {
            have_huge = 1;
            huge = parse_kb_value(l.value, l.end, &v) == 0 ? v : -1;
        }
    }
    if (!have_rss)
        return -1;

    out->rss_kb = rss;
    out->anon_kb = anon;
    out->anon_huge_kb = huge;
    out->source = RSSPROBE_RSS_SMAPS_ROLLUP;
    return 0;
}

static void statm_invalid(struct rssprobe_statm *out)
{
    out->size = -1;
    out->resident = -1;
    out->shared = -1;
}

int rssprobe_parse_statm_pages(const char *text, size_t len, struct rssprobe_statm *out)
{
    const char *p = text;
    const char *end = text + len;
    long fields[3] = {0, 0, -1};
    int n = 0;

    statm_invalid(out);
    if (text == NULL)
        return -1;

    /* "size resident shared text lib data dt": every field must be a number, and there must be
     * at least size and resident. A trailing newline is fine. */
    for (;;) {
        long v;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end || *p == '\n')
            break;
        if (parse_long(&p, end, &v) < 0)
            return -1;
        if (p < end && *p != ' ' && *p != '\t' && *p != '\n')
            return -1; /* "12x" */
        if (n < 3)
            fields[n] = v;
        n++;
    }
    /* Only blank space may follow the line. */
    while (p < end && (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if (p != end || n < 2)
        return -1;

    out->size = fields[0];
    out->resident = fields[1];
    out->shared = fields[2];
    return 0;
}

int rssprobe_pages_to_bytes(long pages, long page_size, uint64_t *bytes)
{
    *bytes = 0;
    if (pages < 0 || page_size <= 0)
        return -1;
    uint64_t pg = (uint64_t)pages, psz = (uint64_t)page_size;
    if (pg != 0 && psz > UINT64_MAX / pg)
        return -1;
    *bytes = pg * psz;
    return 0;
}

int rssprobe_parse_statm(const char *text, size_t len, long page_size, struct rssprobe_rss *out)
{
    struct rssprobe_statm m;
    uint64_t bytes;

    rss_invalid(out);
    if (page_size <= 0 || rssprobe_parse_statm_pages(text, len, &m) < 0 ||
        rssprobe_pages_to_bytes(m.resident, page_size, &bytes) < 0 ||
        bytes / 1024 > (uint64_t)LONG_MAX)
        return -1;

    out->rss_kb = (long)(bytes / 1024);
    out->anon_kb = -1;
    out->anon_huge_kb = -1;
    out->source = RSSPROBE_RSS_STATM;
    return 0;
}

int rssprobe_read_statm(struct rssprobe_statm *out)
{
    char buf[STATM_BUF];
    ssize_t n = rssprobe_procfs_read("/proc/self/statm", buf, sizeof buf);

    /* A full buffer is no statm (seven numbers): the text would be cut. */
    if (n < 0 || (size_t)n == sizeof buf) {
        statm_invalid(out);
        return -1;
    }
    return rssprobe_parse_statm_pages(buf, (size_t)n, out);
}

int rssprobe_read_rss(struct rssprobe_rss *out)
{
    char buf[READ_BUF];
    ssize_t n;

    n = rssprobe_procfs_read("/proc/self/smaps_rollup", buf, sizeof buf);
    if (n >= 0 && rssprobe_parse_smaps_rollup(buf, (size_t)n, out) == 0)
        return 0;

    n = rssprobe_procfs_read("/proc/self/statm", buf, sizeof buf);
    if (n >= 0 && rssprobe_parse_statm(buf, (size_t)n, sysconf(_SC_PAGESIZE), out) == 0)
        return 0;

    rss_invalid(out);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * status */

static void status_invalid(struct rssprobe_status *out)
{
    out->vm_rss_kb = -1;
    out->rss_anon_kb = -1;
    out->rss_file_kb = -1;
    out->rss_shmem_kb = -1;
}

int rssprobe_parse_status(const char *text, size_t len, struct rssprobe_status *out)
{
    static const char *const keys[4] = {"VmRSS", "RssAnon", "RssFile", "RssShmem"};
    long v[4] = {-1, -1, -1, -1};
    int have[4] = {0, 0, 0, 0};
    const char *p = text;
    struct kv_line l;

    status_invalid(out);
    if (text == NULL)
        return -1;

    while (next_line(&p, text + len, &l)) {
        if (l.key == NULL || !l.terminated)
            continue;
        for (int k = 0; k < 4; k++) {
            if (have[k] || !key_is(l.key, l.klen, keys[k]))
                continue;
            have[k] = 1;
            if (parse_kb_value(l.value, l.end, &v[k]) < 0)
                return -1;
            break;
        }
    }
    if (!have[0])
        return -1;

    out->vm_rss_kb = v[0];
    out->rss_anon_kb = v[1];
    out->rss_file_kb = v[2];
    out->rss_shmem_kb = v[3];
    return 0;
}

int rssprobe_read_status(struct rssprobe_status *out)
{
    char buf[READ_BUF];
    ssize_t n = rssprobe_procfs_read("/proc/self/status", buf, sizeof buf);

    if (n < 0) {
        status_invalid(out);
        return -1;
    }
    return rssprobe_parse_status(buf, (size_t)n, out);
}
