/* rssprobe_mallinfo: see rssprobe_mallinfo.h. Hard rule for this file, as for the rest of
 * rssprobe: nothing here allocates (the shim's thread and rssprobe's measurements call it). It
 * depends only on rssprobe_procfs.c, so libtrimshim links these two objects alone. */
#define _GNU_SOURCE

#include "rssprobe_mallinfo.h"

#include "rssprobe_procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Widening */

/* The value congruent to reading (mod 2^32) nearest to estimate. */
static uint64_t nearest(uint32_t reading, uint64_t estimate)
{
    if (estimate <= reading)
        return reading;
    uint64_t k = (estimate - reading + RSSPROBE_WRAP / 2) / RSSPROBE_WRAP;
    return (uint64_t)reading + k * RSSPROBE_WRAP;
}

static uint64_t distance(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

/* The arenas' figure from its mappings may be off by a foreign sbrk, a heap whose mapping merged
 * with a neighbour, or growth between the two reads: a few MiB, far below 2 GiB, where the
 * nearest value would be the wrong one. Beyond this the mappings are not trusted to tell. */
#define TRUST_DISTANCE (RSSPROBE_WRAP / 4)

void rssprobe_widen(const struct rssprobe_narrow *n, const struct rssprobe_arena_maps *maps,
                    uint64_t vm_bytes, struct rssprobe_widened *out)
{
    out->arena = n->arena;
    out->mmap = n->hblkhd;
    out->in_use = n->uordblks;
    out->free = n->fordblks;
    out->releasable = n->keepcost;
    out->unknown = 0;
    out->wrapped = 0;

    /* No figure exceeds what the process maps. */
    if (vm_bytes < RSSPROBE_WRAP)
        return;
    if (maps == NULL) {
        out->unknown = RSSPROBE_FIG_ALL;
        return;
    }

    /* Each true figure is at least its reading, so the arenas hold at least free + in use as
     * read: never settle for a smaller value, whatever the mappings say. */
    uint64_t estimate = maps->main_heap_bytes + maps->thread_heap_bytes;
    uint64_t arena = nearest(n->arena, estimate);
    uint64_t floor = (uint64_t)n->fordblks + n->uordblks;
    while (arena < floor)
        arena += RSSPROBE_WRAP;
    if (distance(arena, estimate) > TRUST_DISTANCE)
        out->unknown |= RSSPROBE_FIG_ARENA;
    out->arena = arena;
    out->wrapped = arena >= RSSPROBE_WRAP;

    /* free + in use == arena: the readings fall short of it by whole wraps, each in one of the
     * two, and nothing tells which. The guess puts them on the free side. */
    uint64_t wraps = (arena - floor) / RSSPROBE_WRAP;
    if (wraps > 0 || (out->unknown & RSSPROBE_FIG_ARENA)) {
        out->unknown |= RSSPROBE_FIG_IN_USE | RSSPROBE_FIG_FREE;
        out->free = (uint64_t)n->fordblks + wraps * RSSPROBE_WRAP;
    }

    /* mmapped chunks are among the other anonymous writable mappings. */
    if (maps->other_anon_bytes >= RSSPROBE_WRAP)
        out->unknown |= RSSPROBE_FIG_MMAP;
    /* The main arena's top chunk lies inside [heap], unless the brk heap could not grow and the
     * arena went on in mmapped memory: then the arena figure is off too. */
    if (maps->main_heap_bytes >= RSSPROBE_WRAP || (out->unknown & RSSPROBE_FIG_ARENA))
        out->unknown |= RSSPROBE_FIG_RELEASABLE;
}

int rssprobe_widen_self(const struct rssprobe_narrow *n, struct rssprobe_widened *out)
{
    struct rssprobe_statm m;
    uint64_t vm = UINT64_MAX;
    long ps = sysconf(_SC_PAGESIZE);

    if (rssprobe_read_statm(&m) == 0 && rssprobe_pages_to_bytes(m.size, ps, &vm) != 0)
        vm = UINT64_MAX;
    if (vm < RSSPROBE_WRAP) {
        rssprobe_widen(n, NULL, vm, out);
        return 0;
    }
    struct rssprobe_arena_maps maps;
    if (rssprobe_read_arena_maps(&maps) != 0) {
        rssprobe_widen(n, NULL, vm, out);
        return -1;
    }
    rssprobe_widen(n, &maps, vm, out);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The maps scan */

void rssprobe_maps_scan_init(struct rssprobe_maps_scan *s, uint64_t heap_max, uint64_t page_size,
                             unsigned word, rssprobe_peek_fn peek, void *peek_ctx)
{
    memset(s, 0, sizeof *s);
    s->heap_max = heap_max;
    s->page_size = page_size ? page_size : 4096;
    s->word = word == 4 ? 4 : 8;
    s->peek = peek;
    s->peek_ctx = peek_ctx;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits at *p up to a byte in stop (or end); at most 16 of them. */
static int parse_hex(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    int digits = 0;
    while (s < end && hexval(*s) >= 0) {
        if (++digits > 16)
            return -1;
        v = v << 4 | (uint64_t)hexval(*s);
        s++;
    }
    if (digits == 0)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

static const char *skip_blanks(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* A field of non-blank bytes. */
static const char *skip_field(const char *s, const char *end)
{
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    return s;
}

enum path_kind { PATH_NONE, PATH_HEAP, PATH_ANON_NAMED, PATH_STACK, PATH_OTHER };

struct maps_line {
    uint64_t start, end;
    char perms[4];
    int inode_zero;
    enum path_kind path;
};

/* "start-end perms offset dev inode [path]". The path may be cut off (truncated): only its
 * first bytes are looked at. */
static int parse_maps_line(const char *text, size_t len, struct maps_line *l)
{
    const char *p = text, *end = text + len;
    if (parse_hex(&p, end, &l->start) < 0 || p >= end || *p != '-')
        return -1;
    p++;
    if (parse_hex(&p, end, &l->end) < 0 || l->end < l->start)
        return -1;
    p = skip_blanks(p, end);
    if (end - p < 4)
        return -1;
    memcpy(l->perms, p, 4);
    p += 4;
    if (p < end && *p != ' ' && *p != '\t')
        return -1;
    p = skip_field(skip_blanks(p, end), end); /* offset */
    p = skip_field(skip_blanks(p, end), end); /* dev */
    p = skip_blanks(p, end);
    const char *inode = p;
    p = skip_field(p, end);
    if (p == inode)
        return -1;
    l->inode_zero = p - inode == 1 && inode[0] == '0';
    p = skip_blanks(p, end);
    size_t rest = (size_t)(end - p);
    if (rest == 0)
        l->path = PATH_NONE;
    else if (rest == 6 && memcmp(p, "[heap]", 6) == 0)
        l->path = PATH_HEAP;
    else if (rest >= 6 && memcmp(p, "[anon:", 6) == 0)
        l->path = PATH_ANON_NAMED; /* a named anonymous mapping (PR_SET_VMA_ANON_NAME) */
    else if (rest >= 6 && memcmp(p, "[stack", 6) == 0)
        l->path = PATH_STACK;
    else
        l->path = PATH_OTHER;
    return 0;
}

static uint64_t word_at(const unsigned char *b, unsigned word)
{
    if (word == 4) {
        uint32_t v;
        memcpy(&v, b, 4);
        return v;
    }
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
}

struct heap_info {
    uint64_t ar_ptr, prev, size, mprotect_size;
};

static int read_heap_info(const struct rssprobe_maps_scan *s, uint64_t addr, struct heap_info *h)
{
    unsigned char buf[32];
    if (s->peek(s->peek_ctx, addr, buf, 4 * s->word) != 0)
        return -1;
    h->ar_ptr = word_at(buf, s->word);
    h->prev = word_at(buf + s->word, s->word);
    h->size = word_at(buf + 2 * s->word, s->word);
    h->mprotect_size = word_at(buf + 3 * s->word, s->word);
    return 0;
}

/* The arena itself sits right after the first heap's header (its first 256 bytes). */
static int is_first_heap(const struct rssprobe_maps_scan *s, uint64_t start, const struct heap_info *h)
{
    return h->prev == 0 && h->ar_ptr > start && h->ar_ptr < start + 256 && (start & (s->heap_max - 1)) == 0;
}

/* A thread heap at start, inside a writable mapping that ends at map_end: its header's sizes
 * fit glibc's rules, and its arena is the one in the header of a first heap (itself, or the one
 * its ar_ptr points into). Returns the heap's size, 0 if this is no heap. */
static uint64_t heap_at(const struct rssprobe_maps_scan *s, uint64_t start, uint64_t map_end)
{
    struct heap_info h, first;
    if (read_heap_info(s, start, &h) != 0)
        return 0;
    if (!(h.size > 0 && h.size <= h.mprotect_size && h.mprotect_size <= s->heap_max) ||
        h.size % s->page_size != 0 || h.size > map_end - start + s->page_size)
        return 0;
    if (is_first_heap(s, start, &h))
        return h.size;
    if (h.prev == 0 || (h.prev & (s->heap_max - 1)) != 0)
        return 0;
    uint64_t first_start = h.ar_ptr & ~(s->heap_max - 1);
    if (first_start == start || read_heap_info(s, first_start, &first) != 0 ||
        !is_first_heap(s, first_start, &first) || first.ar_ptr != h.ar_ptr)
        return 0;
    return h.size;
}

static void scan_line(struct rssprobe_maps_scan *s, const char *text, size_t len)
{
    struct maps_line l;
    if (len == 0)
        return;
    if (parse_maps_line(text, len, &l) != 0) {
        s->bad_lines++;
        return;
    }
    if (l.path == PATH_HEAP) {
        s->maps.main_heap_bytes += l.end - l.start;
        return;
    }
    int anon = l.inode_zero && (l.path == PATH_NONE || l.path == PATH_ANON_NAMED || l.path == PATH_STACK);
    if (!anon || l.perms[0] != 'r' || l.perms[1] != 'w' || l.perms[3] != 'p')
        return;
    uint64_t extent = l.end - l.start, in_heaps = 0;
    if (s->peek != NULL && l.path != PATH_STACK && s->heap_max != 0) {
        /* Heaps next to each other may have merged into one mapping: look at every aligned
         * address inside it. */
        uint64_t b = (l.start + s->heap_max - 1) & ~(s->heap_max - 1);
        for (; b >= l.start && b < l.end; b += s->heap_max) {
            if (s->slots >= RSSPROBE_MAPS_SLOTS_MAX) {
                s->over_budget = 1;
                break;
            }
            s->slots++;
            uint64_t size = heap_at(s, b, l.end);
            if (size == 0)
                continue;
            s->maps.thread_heap_bytes += size;
            s->maps.thread_heaps++;
            /* Its writable part (up to mprotect_size) is the heap's, whatever is in use. */
            uint64_t rw_end = b + s->heap_max < l.end ? b + s->heap_max : l.end;
            in_heaps += rw_end - b;
        }
    }
    s->maps.other_anon_bytes += extent - in_heaps;
}

void rssprobe_maps_scan_feed(struct rssprobe_maps_scan *s, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        size_t room = sizeof s->line - 1 - s->line_len;
        if (n > room) {
            n = room;
            s->truncated = 1;
        }
        memcpy(s->line + s->line_len, p, n);
        s->line_len += n;
        if (nl == NULL)
            return;
        scan_line(s, s->line, s->line_len);
        s->line_len = 0;
        s->truncated = 0;
        p = nl + 1;
    }
}

int rssprobe_maps_scan_end(struct rssprobe_maps_scan *s)
{
    scan_line(s, s->line, s->line_len);
    s->line_len = 0;
    s->truncated = 0;
    return s->bad_lines || s->over_budget ? -1 : 0;
}

static int peek_self(void *ctx, uint64_t addr, void *buf, size_t len)
{
    int fd = *(const int *)ctx;
    ssize_t n;
    if (fd < 0 || addr > (uint64_t)INT64_MAX)
        return -1;
    do {
        n = pread(fd, buf, len, (off_t)addr);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

static int open_ro(const char *path)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

int rssprobe_read_arena_maps(struct rssprobe_arena_maps *out)
{
    struct rssprobe_maps_scan s;
    char buf[2048];
    long ps = sysconf(_SC_PAGESIZE);
    int saved = errno;

    memset(out, 0, sizeof *out);
    int maps_fd = open_ro("/proc/self/maps");
    if (maps_fd < 0)
        return -1;
    int mem_fd = open_ro("/proc/self/mem");
    rssprobe_maps_scan_init(&s, RSSPROBE_HEAP_MAX, ps > 0 ? (uint64_t)ps : 4096, (unsigned)sizeof(void *),
                            mem_fd >= 0 ? peek_self : NULL, &mem_fd);
    int rc = 0;
    for (;;) {
        ssize_t n = rssprobe_procfs_read_fd(maps_fd, buf, sizeof buf, NULL);
        if (n < 0) {
            rc = -1;
            break;
        }
        rssprobe_maps_scan_feed(&s, buf, (size_t)n);
        if ((size_t)n < sizeof buf)
            break;
    }
    if (rssprobe_maps_scan_end(&s) != 0)
        rc = -1;
    close(maps_fd);
    if (mem_fd >= 0)
        close(mem_fd);
    errno = saved;
    if (rc == 0)
        *out = s.maps;
    return rc;
}
