/* rssprobe_mallinfo: mallinfo()'s int figures, told apart from the truth above 4 GiB.
 *
 * glibc before 2.33 has no mallinfo2; mallinfo's fields are int, so every byte figure is only
 * known modulo 2^32 (read as unsigned, right up to 4 GiB). A heap past 4 GiB then reports, say,
 * 2 MiB in its arenas and 40 kB free. What does not wrap is the size of the arenas' mappings:
 * the main arena's [heap] (brk) and each thread arena's heaps, whose heap_info header (at a
 * HEAP_MAX-aligned address, 64 MiB on 64-bit) holds the heap's size, read here through
 * /proc/self/mem (which fails cleanly on an address unmapped meanwhile, where a plain load would
 * crash). glibc's arena figure is the sum of exactly those sizes, so it can be unwrapped, and
 * with it every figure that cannot exceed it:
 *
 *   arena     the value congruent to the reading nearest the mappings' size
 *   free, in use   free + in use == arena exactly (both are computed from system_mem and the
 *             free lists under each arena's lock). If arena < 4 GiB, neither wrapped. Otherwise
 *             their readings sum to arena - n * 4 GiB, n >= 0: n == 0, neither wrapped; n > 0,
 *             n * 4 GiB belongs to one or the other and nothing in the process says which.
 *   mmapped   no larger than the other anonymous writable mappings; exact if they are < 4 GiB
 *   releasable (the main arena's top chunk) no larger than [heap]; exact if that is < 4 GiB
 *
 * A process mapping less than 4 GiB in all (statm's size) cannot have wrapped anything, and is
 * not scanned.
 *
 * Nothing here allocates: /proc files are read with open/read into stack buffers (the maps file
 * in 2 KiB pieces, one line of at most 160 bytes kept), and the parsers take text and a seam for
 * the memory reads, so tests feed them anything. */
#ifndef RSSPROBE_MALLINFO_H
#define RSSPROBE_MALLINFO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2^32: how far apart the values an int-wide reading is congruent to lie. */
#define RSSPROBE_WRAP (UINT64_C(1) << 32)

/* mallinfo's byte fields as read, as the unsigned 32-bit patterns of the ints. */
struct rssprobe_narrow {
    uint32_t arena;    /* arena: bytes of all arenas from the system (sbrk + thread heaps) */
    uint32_t hblkhd;   /* bytes in mmapped chunks */
    uint32_t uordblks; /* bytes in use in the arenas */
    uint32_t fordblks; /* free bytes in the arenas (the top chunks included) */
    uint32_t keepcost; /* the main arena's top chunk */
};

/* What /proc/self/maps (and each thread heap's header) says of the arenas. */
struct rssprobe_arena_maps {
    uint64_t main_heap_bytes;   /* the [heap] mapping: the main arena's brk heap, 0 if none */
    uint64_t thread_heap_bytes; /* thread arenas: the sizes in their heaps' headers, summed */
    unsigned thread_heaps;      /* heaps whose header checked out */
    uint64_t other_anon_bytes;  /* every other private anonymous writable mapping (mmapped
                                 * chunks among them, with stacks and the program's own maps) */
};

/* The figures widened. Bits of rssprobe_widened.unknown: */
#define RSSPROBE_FIG_ARENA 1u
#define RSSPROBE_FIG_MMAP 2u
#define RSSPROBE_FIG_IN_USE 4u
#define RSSPROBE_FIG_FREE 8u
#define RSSPROBE_FIG_RELEASABLE 16u
#define RSSPROBE_FIG_ALL 31u

struct rssprobe_widened {
    /* Each figure exact unless its bit is in unknown; an unknown one holds the reading that
     * puts every ambiguous 4 GiB on the free side (free as large, in use and mmapped as small as
     * the readings allow): the reading under which a trim is never wrongly thought useless. */
    uint64_t arena, mmap, in_use, free, releasable;
    unsigned unknown; /* RSSPROBE_FIG_* bits */
    int wrapped;      /* some true figure is at least 4 GiB: the int reading had wrapped */
};

/* Widens a reading. vm_bytes: everything the process maps (statm size x page size), UINT64_MAX
 * if unknown. maps: NULL when /proc/self/maps could not be read. Pure. */
void rssprobe_widen(const struct rssprobe_narrow *n, const struct rssprobe_arena_maps *maps,
                    uint64_t vm_bytes, struct rssprobe_widened *out);

/* The same for this process: statm's size, and /proc/self/maps only when that is at least
 * 4 GiB. Returns 0, or -1 when the maps were needed and could not be read (out then says
 * unknown for what could have wrapped). */
int rssprobe_widen_self(const struct rssprobe_narrow *n, struct rssprobe_widened *out);

/* ---- the maps scan ------------------------------------------------------------------------ */

/* Reads len bytes at addr of this process into buf. Returns 0, or -1 (unmapped, unreadable). */
typedef int (*rssprobe_peek_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/* glibc's HEAP_MAX_SIZE: 2 x DEFAULT_MMAP_THRESHOLD_MAX (64 MiB with 8-byte longs, 1 MiB with
 * 4-byte ones). */
#define RSSPROBE_HEAP_MAX (sizeof(long) == 8 ? (UINT64_C(64) << 20) : (UINT64_C(1) << 20))

/* A maps scan in progress: the file comes in pieces, a line may span two. */
struct rssprobe_maps_scan {
    struct rssprobe_arena_maps maps;
    uint64_t heap_max;      /* alignment and size limit of a thread heap */
    uint64_t page_size;
    unsigned word;          /* sizeof a pointer in the scanned process: 4 or 8 */
    rssprobe_peek_fn peek;  /* NULL: no header is read, so no thread heap is found */
    void *peek_ctx;
    char line[160];         /* the line so far (longer lines: their first 159 bytes) */
    size_t line_len;
    int truncated;          /* the current line is longer than line holds */
    int bad_lines;          /* lines that were not a maps line */
    uint64_t slots;         /* aligned addresses whose header was read so far */
    int over_budget;        /* more than RSSPROBE_MAPS_SLOTS_MAX: the scan gave up */
};

/* Header reads per scan, at most: 65536 aligned 64 MiB slots are 4 TiB of writable private
 * anonymous address space (a JVM's 32 GiB heap reservation is 512 slots). Beyond that (an ASan
 * shadow, a made-up maps text spanning 2^64 bytes: 2^38 reads) the scan stops and says it could
 * not tell, rather than read for minutes. */
#define RSSPROBE_MAPS_SLOTS_MAX (UINT64_C(1) << 16)

void rssprobe_maps_scan_init(struct rssprobe_maps_scan *s, uint64_t heap_max, uint64_t page_size,
                             unsigned word, rssprobe_peek_fn peek, void *peek_ctx);
void rssprobe_maps_scan_feed(struct rssprobe_maps_scan *s, const char *text, size_t len);
/* The last line, if it had no newline. Returns 0, or -1 when a line was not a maps line or the
 * mappings held more slots than RSSPROBE_MAPS_SLOTS_MAX. */
int rssprobe_maps_scan_end(struct rssprobe_maps_scan *s);

/* /proc/self/maps scanned, thread heaps' headers read through /proc/self/mem (or, if that
 * cannot be opened, none counted). Returns 0, or -1 (out zeroed) when maps cannot be read or is
 * malformed. */
int rssprobe_read_arena_maps(struct rssprobe_arena_maps *out);

#ifdef __cplusplus
}
#endif
#endif
