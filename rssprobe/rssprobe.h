/* rssprobe: measure what a process keeps resident (RSS, allocator state, the page floor that live
 * objects pin) without allocating from the heap it measures. Every reader uses open/read into
 * caller or stack buffers and every scratch array is mmap'd, so a measurement never leaves a heap
 * chunk behind that could pin the top of the heap and change what it measures. */
#ifndef RSSPROBE_H
#define RSSPROBE_H

#include <stddef.h>
#include <stdint.h>

#include "rssprobe_procfs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* glibc's chunk header in front of every user pointer (prev_size + size). A live object occupies
 * the pages of [ptr - RSSPROBE_CHUNK_HEADER, ptr + size). */
#define RSSPROBE_CHUNK_HEADER (2 * sizeof(size_t))

/* A buffer big enough for one JSON line from rssprobe_format_json. */
#define RSSPROBE_JSON_MAX 1024

/* RSS from /proc (struct rssprobe_rss, rssprobe_read_rss, the smaps_rollup, statm and status
 * parsers): rssprobe_procfs.h, the one /proc reader the shim and the bench use too. */

enum rssprobe_heap_source {
    RSSPROBE_HEAP_NONE = 0,  /* not glibc, or no mallinfo at all */
    RSSPROBE_HEAP_MALLINFO2, /* glibc >= 2.33: size_t fields */
    RSSPROBE_HEAP_MALLINFO,  /* older glibc: int fields, widened (rssprobe_mallinfo.h); a figure
                              * that cannot be told is RSSPROBE_HEAP_UNKNOWN */
    RSSPROBE_HEAP_MALLINFO_WRAPPED, /* the same, and the arenas are past 4 GiB: the int fields
                                     * had wrapped; free and in use are then unknown */
};

/* A heap figure that the source cannot give (JSON: -1). */
#define RSSPROBE_HEAP_UNKNOWN SIZE_MAX

/* glibc's view of its heap (all arenas), from mallinfo2()/mallinfo(). Note: these walk the bins
 * under the arena locks: cheap for a test, not for a hot path. Built with
 * RSSPROBE_FORCE_MALLINFO, rssprobe reads mallinfo even where mallinfo2 exists (a test build:
 * the path of glibc < 2.33 on this machine). */
struct rssprobe_heap {
    size_t arena_bytes;      /* arena: non-mmapped space obtained from the system */
    size_t mmap_bytes;       /* hblkhd: space in mmapped chunks */
    size_t in_use_bytes;     /* uordblks: allocated (live) bytes */
    size_t free_bytes;       /* fordblks: free bytes the allocator keeps */
    size_t releasable_bytes; /* keepcost: top-most free space that automatic trim could release */
    enum rssprobe_heap_source source;
};
/* Returns 0, or -1 where there is no mallinfo (all fields 0, source RSSPROBE_HEAP_NONE). Under
 * valgrind or ASan, mallinfo2 describes glibc's unused heap, not the replacement allocator. */
int rssprobe_read_heap(struct rssprobe_heap *out);

/* Transparent hugepage mode from /sys/kernel/mm/transparent_hugepage/enabled: "always",
 * "madvise", "never", or "unknown". Returns a static string. */
const char *rssprobe_thp_mode(void);

/* The page floor: the number of distinct pages a set of live objects touches. Storage is mmap'd
 * and grown with mremap, never malloc'd. It is resident memory of the process like any other
 * (8 bytes per distinct page, more while unsorted): release the floor before reading RSS, or read
 * RSS first. Cost: an in-place heapsort, about 0.2 s per million distinct pages measured here:
 * compute it once per phase, not per idle sample. */
struct rssprobe_floor {
    uintptr_t *pages; /* page numbers, unsorted until rssprobe_floor_pages() */
    size_t count;     /* entries in pages */
    size_t cap;       /* capacity in entries */
    size_t objects;   /* objects added */
    size_t bytes;     /* sum of their sizes (without chunk headers) */
    long page_size;
};
/* Returns 0, or -1 when the first mapping fails (f is then empty; rssprobe_floor_add retries). */
int rssprobe_floor_init(struct rssprobe_floor *f);
/* Adds the pages of [ptr - RSSPROBE_CHUNK_HEADER, ptr + size) (size 0 still counts the header's
 * pages). The pointer is never dereferenced. Returns 0, or -1 when out of memory (errno ENOMEM)
 * or for a NULL ptr or a range that wraps (errno EINVAL); the floor then stays as it was. */
int rssprobe_floor_add(struct rssprobe_floor *f, const void *ptr, size_t size);
/* Sorts and de-duplicates in place; returns the number of distinct pages. */
size_t rssprobe_floor_pages(struct rssprobe_floor *f);
long rssprobe_floor_kb(struct rssprobe_floor *f);
void rssprobe_floor_release(struct rssprobe_floor *f);

/* One measurement. phase and case_name must outlive it (string literals or argv). */
struct rssprobe_sample {
    const char *case_name;
    const char *phase;
    long t_ms;    /* CLOCK_MONOTONIC, milliseconds */
    long work_us; /* wall time (microseconds) the case worked since its previous phase was
                   * reported, the measuring itself excluded; -1 when not given */
    struct rssprobe_rss rss;
    struct rssprobe_heap heap;
    long floor_kb;       /* page floor of the live objects, -1 when not given */
    size_t live_objects; /* objects the case keeps alive */
    size_t live_bytes;   /* their requested sizes, summed */
};

/* Fills t_ms, rss and heap; floor_kb = -1 and live_* = 0 until the caller sets them. Returns 0,
 * or -1 when RSS (or the clock) cannot be read; no heap source (RSSPROBE_HEAP_NONE) is not an
 * error. */
int rssprobe_sample(struct rssprobe_sample *s, const char *case_name, const char *phase);

/* Formats one JSON object, no newline, NUL-terminated, into buf. Returns its length (without the
 * NUL), or -1 if it does not fit (buf is then ""). A NULL case_name or phase is written as null;
 * "thp" is rssprobe_thp_mode() at the time of formatting.
 * Keys: rssprobe (format version 1), case, phase, t_ms, work_us, rss_kb, rss_source, anon_kb,
 * anon_huge_kb, thp, heap{source, arena_bytes, mmap_bytes, in_use_bytes, free_bytes,
 * releasable_bytes} (heap.source "mallinfo2", "mallinfo", "mallinfo-wrapped" or "none"; a heap
 * figure that is RSSPROBE_HEAP_UNKNOWN is written -1), floor_kb, live_objects, live_bytes, pid. */
int rssprobe_format_json(const struct rssprobe_sample *s, char *buf, size_t len);

/* Formats and write()s one line (JSON + '\n') to fd, retrying on EINTR and short writes.
 * Returns 0 or -1 (errno from write, or EMSGSIZE when the line would exceed RSSPROBE_JSON_MAX;
 * nothing is written then). */
int rssprobe_emit(int fd, const struct rssprobe_sample *s);

#ifdef __cplusplus
}
#endif
#endif
