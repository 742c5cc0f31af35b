/* rssprobe: see rssprobe.h. Hard rule for this file: nothing here allocates from the malloc heap.
 * No stdio FILE, no malloc/strdup, no qsort (glibc's qsort may malloc its scratch array). /proc
 * and /sys files are read by rssprobe_procfs.c into stack buffers, the floor array is mmap'd and
 * grown with mremap, and snprintf is only used with integer conversions into caller buffers. */
#define _GNU_SOURCE

#include "rssprobe.h"
#include "rssprobe_mallinfo.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* mallinfo2 from glibc 2.33 on; mallinfo before (deprecated from 2.33, so only compiled in for
 * older glibc); nothing elsewhere. __GLIBC_PREREQ only exists on glibc, hence the nesting. */
#if defined(__GLIBC__)
#include <malloc.h>
#if __GLIBC_PREREQ(2, 33) && !defined(RSSPROBE_FORCE_MALLINFO)
#define RSSPROBE_MALLINFO2 1
#else
#define RSSPROBE_MALLINFO 1
#endif
#endif

/* Initial floor capacity: 64 KiB of page numbers. */
#define FLOOR_INITIAL_BYTES (64 * 1024)

/* ---------------------------------------------------------------------------------------------
 * Allocator state */

#if defined(RSSPROBE_MALLINFO)
static size_t figure(uint64_t v, unsigned unknown)
{
    return unknown || v >= (uint64_t)SIZE_MAX ? RSSPROBE_HEAP_UNKNOWN : (size_t)v;
}
#endif

int rssprobe_read_heap(struct rssprobe_heap *out)
{
    memset(out, 0, sizeof *out);
    out->source = RSSPROBE_HEAP_NONE;
#if defined(RSSPROBE_MALLINFO2)
    struct mallinfo2 mi = mallinfo2();
    out->arena_bytes = mi.arena;
    out->mmap_bytes = mi.hblkhd;
    out->in_use_bytes = mi.uordblks;
    out->free_bytes = mi.fordblks;
    out->releasable_bytes = mi.keepcost;
    out->source = RSSPROBE_HEAP_MALLINFO2;
    return 0;
#elif defined(RSSPROBE_MALLINFO)
    /* int fields, known modulo 2^32 only: widened against the arenas' mappings, and what cannot
     * be told is reported unknown rather than as a wrapped number. mallinfo is deprecated from
     * glibc 2.33 on, where only the forced test build calls it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
    struct rssprobe_narrow n = {(uint32_t)mi.arena, (uint32_t)mi.hblkhd, (uint32_t)mi.uordblks,
                                (uint32_t)mi.fordblks, (uint32_t)mi.keepcost};
    struct rssprobe_widened w;
    rssprobe_widen_self(&n, &w);
    out->arena_bytes = figure(w.arena, w.unknown & RSSPROBE_FIG_ARENA);
    out->mmap_bytes = figure(w.mmap, w.unknown & RSSPROBE_FIG_MMAP);
    out->in_use_bytes = figure(w.in_use, w.unknown & RSSPROBE_FIG_IN_USE);
    out->free_bytes = figure(w.free, w.unknown & RSSPROBE_FIG_FREE);
    out->releasable_bytes = figure(w.releasable, w.unknown & RSSPROBE_FIG_RELEASABLE);
    out->source = w.wrapped ? RSSPROBE_HEAP_MALLINFO_WRAPPED : RSSPROBE_HEAP_MALLINFO;
    return 0;
#else
    return -1;
#endif
}

const char *rssprobe_thp_mode(void)
{
    static const char path[] = "/sys/kernel/mm/transparent_hugepage/enabled";
    char buf[256];
    ssize_t n = rssprobe_procfs_read(path, buf, sizeof buf);
    if (n <= 0)
        return "unknown";

    const char *open_br = memchr(buf, '[', (size_t)n);
    if (open_br == NULL)
        return "unknown";
    const char *word = open_br + 1;
    const char *close_br = memchr(word, ']', (size_t)(buf + n - word));
    if (close_br == NULL)
        return "unknown";
    size_t wlen = (size_t)(close_br - word);
    static const char *const modes[] = {"always", "madvise", "never"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (wlen == strlen(modes[i]) && memcmp(word, modes[i], wlen) == 0)
            return modes[i];
    return "unknown";
}

/* ---------------------------------------------------------------------------------------------
 * Page floor */

/* In-place heapsort: no scratch memory, O(n log n) worst case. */
static void sift_down(uintptr_t *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        uintptr_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heapsort_uintptr(uintptr_t *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        uintptr_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static size_t sort_unique(uintptr_t *a, size_t n)
{
    size_t out = 0, i = 1;

    /* Already sorted and unique (asked again, e.g. once per idle sample): O(n), not a sort. */
    while (i < n && a[i - 1] < a[i])
        i++;
    if (i >= n)
        return n;

    heapsort_uintptr(a, n);
    for (size_t j = 0; j < n; j++) {
        if (out == 0 || a[out - 1] != a[j])
            a[out++] = a[j];
    }
    return out;
}

/* Makes room for `need` more entries: first by de-duplicating what is there, then by growing the
 * mapping. Returns 0, or -1 (errno ENOMEM) with the set of pages unchanged. */
static int floor_reserve(struct rssprobe_floor *f, size_t need)
{
    if (f->cap - f->count >= need)
        return 0;

    /* Duplicates are common (neighbouring objects share pages): dropping them is cheaper than
     * growing, and keeps the array proportional to the distinct pages. Only keep the result
     * when it leaves the array at most half full, so the sorts stay amortised O(log n). */
    if (f->count > 0) {
        f->count = sort_unique(f->pages, f->count);
        if (f->cap - f->count >= need && f->count <= f->cap / 2)
            return 0;
    }

    size_t ps = (size_t)f->page_size;
    size_t new_cap = f->cap ? f->cap : FLOOR_INITIAL_BYTES / sizeof(uintptr_t);
    while (new_cap - f->count < need) {
        if (new_cap > SIZE_MAX / 2 / sizeof(uintptr_t)) {
            errno = ENOMEM;
            return -1;
        }
        new_cap *= 2;
    }
    size_t new_bytes = (new_cap * sizeof(uintptr_t) + ps - 1) / ps * ps;
    new_cap = new_bytes / sizeof(uintptr_t);

    void *mem;
    if (f->pages == NULL) {
        mem = mmap(NULL, new_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } else {
        size_t old_bytes = f->cap * sizeof(uintptr_t);
        mem = mremap(f->pages, old_bytes, new_bytes, MREMAP_MAYMOVE);
    }
    if (mem == MAP_FAILED) {
        errno = ENOMEM;
        return -1;
    }
    f->pages = mem;
    f->cap = new_cap;
    return 0;
}

int rssprobe_floor_init(struct rssprobe_floor *f)
{
    long ps = sysconf(_SC_PAGESIZE);

    memset(f, 0, sizeof *f);
    if (ps <= 0)
        ps = 4096;
    f->page_size = ps;
    if (floor_reserve(f, 1) < 0) {
        memset(f, 0, sizeof *f);
        f->page_size = ps;
        return -1;
    }
    return 0;
}

int rssprobe_floor_add(struct rssprobe_floor *f, const void *ptr, size_t size)
{
    uintptr_t p = (uintptr_t)ptr;
    uintptr_t ps = (uintptr_t)f->page_size;

    if (ptr == NULL || ps == 0 || p < RSSPROBE_CHUNK_HEADER || size > UINTPTR_MAX - p ||
        f->bytes > SIZE_MAX - size) {
        errno = EINVAL;
        return -1;
    }

    /* [p - header, p + size): never empty, since the header is part of it. */
    uintptr_t first = (p - RSSPROBE_CHUNK_HEADER) / ps;
    uintptr_t last = (size ? p + size - 1 : p - 1) / ps;
    size_t n = (size_t)(last - first + 1);

    /* Consecutive objects usually share their first page with the previous object's last one. */
    if (f->count > 0 && f->pages[f->count - 1] == first) {
        first++;
        n--;
    }
    if (n > 0) {
        if (floor_reserve(f, n) < 0)
            return -1;
        for (uintptr_t pg = first; pg <= last; pg++)
            f->pages[f->count++] = pg;
    }
    f->objects++;
    f->bytes += size;
    return 0;
}

size_t rssprobe_floor_pages(struct rssprobe_floor *f)
{
    if (f->pages == NULL)
        return 0;
    f->count = sort_unique(f->pages, f->count);
    return f->count;
}

long rssprobe_floor_kb(struct rssprobe_floor *f)
{
    size_t pages = rssprobe_floor_pages(f);
    unsigned long long kb = (unsigned long long)pages * (unsigned long long)f->page_size / 1024;
    return kb > (unsigned long long)LONG_MAX ? LONG_MAX : (long)kb;
}

void rssprobe_floor_release(struct rssprobe_floor *f)
{
    if (f->pages != NULL)
        munmap(f->pages, f->cap * sizeof(uintptr_t));
    long ps = f->page_size;
    memset(f, 0, sizeof *f);
    f->page_size = ps;
}

/* ---------------------------------------------------------------------------------------------
 * Samples and JSON */

int rssprobe_sample(struct rssprobe_sample *s, const char *case_name, const char *phase)
{
    struct timespec ts;
    int rc = 0;

    memset(s, 0, sizeof *s);
    s->case_name = case_name;
    s->phase = phase;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        s->t_ms = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    else
        rc = -1;
    if (rssprobe_read_rss(&s->rss) < 0)
        rc = -1;
    rssprobe_read_heap(&s->heap); /* RSSPROBE_HEAP_NONE off glibc is not an error */
    s->work_us = -1;
    s->floor_kb = -1;
    s->live_objects = 0;
    s->live_bytes = 0;
    return rc;
}

struct out {
    char *buf;
    size_t cap;
    size_t pos; /* may run past cap: then the output did not fit */
};

static void put_raw(struct out *o, const char *s, size_t n)
{
    if (o->pos < o->cap) {
        size_t room = o->cap - o->pos;
        memcpy(o->buf + o->pos, s, n < room ? n : room);
    }
    o->pos += n;
}

static void put_str(struct out *o, const char *s)
{
    put_raw(o, s, strlen(s));
}

/* A JSON string (with quotes), or null. */
static void put_json_string(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    if (s == NULL) {
        put_str(o, "null");
        return;
    }
    put_raw(o, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6];
        switch (c) {
        case '"': put_raw(o, "\\\"", 2); break;
        case '\\': put_raw(o, "\\\\", 2); break;
        case '\n': put_raw(o, "\\n", 2); break;
        case '\r': put_raw(o, "\\r", 2); break;
        case '\t': put_raw(o, "\\t", 2); break;
        case '\b': put_raw(o, "\\b", 2); break;
        case '\f': put_raw(o, "\\f", 2); break;
        default:
            if (c < 0x20) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                put_raw(o, esc, 6);
            } else {
                put_raw(o, (const char *)&c, 1);
            }
        }
    }
    put_raw(o, "\"", 1);
}

static void put_long(struct out *o, long v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%ld", v);
    put_raw(o, tmp, (size_t)n);
}

static void put_size(struct out *o, size_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%zu", v);
    put_raw(o, tmp, (size_t)n);
}

/* A heap figure: -1 when the source could not give it. */
static void put_heap_size(struct out *o, size_t v)
{
    if (v == RSSPROBE_HEAP_UNKNOWN)
        put_str(o, "-1");
    else
        put_size(o, v);
}

static const char *rss_source_name(enum rssprobe_rss_source src)
{
    switch (src) {
    case RSSPROBE_RSS_SMAPS_ROLLUP: return "smaps_rollup";
    case RSSPROBE_RSS_STATM: return "statm";
    case RSSPROBE_RSS_NONE: break;
    }
    return "none";
}

static const char *heap_source_name(enum rssprobe_heap_source src)
{
    switch (src) {
    case RSSPROBE_HEAP_MALLINFO2: return "mallinfo2";
    case RSSPROBE_HEAP_MALLINFO: return "mallinfo";
    case RSSPROBE_HEAP_MALLINFO_WRAPPED: return "mallinfo-wrapped";
    case RSSPROBE_HEAP_NONE: break;
    }
    return "none";
}

int rssprobe_format_json(const struct rssprobe_sample *s, char *buf, size_t len)
{
    struct out o = {buf, len, 0};

    put_str(&o, "{\"rssprobe\":1,\"case\":");
    put_json_string(&o, s->case_name);
    put_str(&o, ",\"phase\":");
    put_json_string(&o, s->phase);
    put_str(&o, ",\"t_ms\":");
    put_long(&o, s->t_ms);
    put_str(&o, ",\"work_us\":");
    put_long(&o, s->work_us);
    put_str(&o, ",\"rss_kb\":");
    put_long(&o, s->rss.rss_kb);
    put_str(&o, ",\"rss_source\":");
    put_json_string(&o, rss_source_name(s->rss.source));
    put_str(&o, ",\"anon_kb\":");
    put_long(&o, s->rss.anon_kb);
    put_str(&o, ",\"anon_huge_kb\":");
    put_long(&o, s->rss.anon_huge_kb);
    put_str(&o, ",\"thp\":");
    put_json_string(&o, rssprobe_thp_mode());
    put_str(&o, ",\"heap\":{\"source\":");
    put_json_string(&o, heap_source_name(s->heap.source));
    put_str(&o, ",\"arena_bytes\":");
    put_heap_size(&o, s->heap.arena_bytes);
    put_str(&o, ",\"mmap_bytes\":");
    put_heap_size(&o, s->heap.mmap_bytes);
    put_str(&o, ",\"in_use_bytes\":");
    put_heap_size(&o, s->heap.in_use_bytes);
    put_str(&o, ",\"free_bytes\":");
    put_heap_size(&o, s->heap.free_bytes);
    put_str(&o, ",\"releasable_bytes\":");
    put_heap_size(&o, s->heap.releasable_bytes);
    put_str(&o, "},\"floor_kb\":");
    put_long(&o, s->floor_kb);
    put_str(&o, ",\"live_objects\":");
    put_size(&o, s->live_objects);
    put_str(&o, ",\"live_bytes\":");
    put_size(&o, s->live_bytes);
    put_str(&o, ",\"pid\":");
    put_long(&o, (long)getpid());
    put_str(&o, "}");

    /* Room for the terminating NUL too. */
    if (o.pos >= len || o.pos > INT_MAX) {
        if (len > 0)
            buf[0] = '\0';
        return -1;
    }
    buf[o.pos] = '\0';
    return (int)o.pos;
}

int rssprobe_emit(int fd, const struct rssprobe_sample *s)
{
    char line[RSSPROBE_JSON_MAX + 1];
    int n = rssprobe_format_json(s, line, RSSPROBE_JSON_MAX);
    if (n < 0) {
        errno = EMSGSIZE;
        return -1;
    }
    line[n] = '\n';

    size_t len = (size_t)n + 1, done = 0;
    while (done < len) {
        ssize_t w = write(fd, line + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}
