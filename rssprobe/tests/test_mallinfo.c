/* Unit tests for rssprobe_mallinfo (Check): the widening of mallinfo's int figures, the maps scan
 * that finds the arenas' mappings, and rssprobe_read_heap built to read mallinfo where mallinfo2
 * exists (RSSPROBE_FORCE_MALLINFO), on this process's real heap below 4 GiB. The heap above
 * 4 GiB is test_bigheap.c (label bigheap). */
#define _GNU_SOURCE

#include "rssprobe.h"
#include "rssprobe_mallinfo.h"

#include "check_compat.h"
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define KiB (UINT64_C(1) << 10)

/* ---------------------------------------------------------------------------------------------
 * Widening: made-up readings of a made-up heap */

/* The readings mallinfo gives of a heap whose true figures are these. */
static struct rssprobe_narrow reading_of(uint64_t arena, uint64_t mmap, uint64_t in_use, uint64_t free_,
                                         uint64_t top)
{
    struct rssprobe_narrow n = {(uint32_t)arena, (uint32_t)mmap, (uint32_t)in_use, (uint32_t)free_,
                                (uint32_t)top};
    return n;
}

static struct rssprobe_arena_maps maps_of(uint64_t main_heap, uint64_t thread_heaps, uint64_t other)
{
    struct rssprobe_arena_maps m = {main_heap, thread_heaps, thread_heaps ? 1u : 0u, other};
    return m;
}

START_TEST(small_address_space_is_exact_without_maps)
{
    /* 3 GiB mapped in all: no figure can have reached 4 GiB, whatever the maps say. */
    struct rssprobe_narrow n = reading_of(3 * GiB, 0, GiB, 2 * GiB, MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, NULL, 3 * GiB + 512 * MiB, &w);
    ck_assert_uint_eq(w.unknown, 0);
    ck_assert_int_eq(w.wrapped, 0);
    ck_assert_uint_eq(w.arena, 3 * GiB);
    ck_assert_uint_eq(w.free, 2 * GiB);
    ck_assert_uint_eq(w.in_use, GiB);
}
END_TEST

START_TEST(large_address_space_without_maps_is_unknown)
{
    struct rssprobe_narrow n = reading_of(10 * MiB, 0, 4 * MiB, 6 * MiB, MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, NULL, 8 * GiB, &w);
    ck_assert_uint_eq(w.unknown, RSSPROBE_FIG_ALL);
    /* ...and the guesses are the readings themselves */
    ck_assert_uint_eq(w.free, 6 * MiB);
    ck_assert_uint_eq(w.in_use, 4 * MiB);
}
END_TEST

START_TEST(small_heap_in_large_address_space_is_exact)
{
    /* A 64-bit server reserving address space (thread stacks, arenas' 64 MiB regions) maps more
     * than 4 GiB with a small heap: the maps prove nothing wrapped. */
    struct rssprobe_narrow n = reading_of(100 * MiB, 30 * MiB, 60 * MiB, 40 * MiB, 128 * KiB);
    struct rssprobe_arena_maps m = maps_of(100 * MiB + 4 * KiB, 0, 200 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 12 * GiB, &w);
    ck_assert_uint_eq(w.unknown, 0);
    ck_assert_int_eq(w.wrapped, 0);
    ck_assert_uint_eq(w.arena, 100 * MiB);
    ck_assert_uint_eq(w.mmap, 30 * MiB);
    ck_assert_uint_eq(w.in_use, 60 * MiB);
    ck_assert_uint_eq(w.free, 40 * MiB);
    ck_assert_uint_eq(w.releasable, 128 * KiB);
}
END_TEST

START_TEST(freed_heap_past_4gib_is_unwrapped_to_the_free_side)
{
    /* 4 GiB freed between 2 MiB of live nodes: mallinfo says 40 kB free. */
    uint64_t in_use = 2 * MiB, free_ = 4 * GiB + 40 * KiB, arena = in_use + free_;
    struct rssprobe_narrow n = reading_of(arena, 0, in_use, free_, 8 * KiB);
    ck_assert_uint_eq(n.fordblks, 40 * KiB); /* the premise: the reading is misleading */
    struct rssprobe_arena_maps m = maps_of(arena + 4 * KiB, 0, 10 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_int_eq(w.wrapped, 1);
    ck_assert_uint_eq(w.arena, arena);
    ck_assert_uint_eq(w.unknown & RSSPROBE_FIG_ARENA, 0);
    /* 4 GiB of the arena is unaccounted for: free or in use, nothing says which */
    ck_assert_uint_eq(w.unknown & (RSSPROBE_FIG_FREE | RSSPROBE_FIG_IN_USE),
                      RSSPROBE_FIG_FREE | RSSPROBE_FIG_IN_USE);
    ck_assert_uint_eq(w.free, free_);
    ck_assert_uint_eq(w.in_use, in_use);
    /* [heap] is above 4 GiB: its top chunk could be too */
    ck_assert_uint_ne(w.unknown & RSSPROBE_FIG_RELEASABLE, 0);
    ck_assert_uint_eq(w.unknown & RSSPROBE_FIG_MMAP, 0);
}
END_TEST

START_TEST(live_heap_past_4gib_also_guesses_free)
{
    /* The other reading of the same numbers: 4 GiB live, 40 kB free. The guess is the same (the
     * free side), and both are marked unknown: that is what makes the guess honest. */
    uint64_t in_use = 4 * GiB + 2 * MiB, free_ = 40 * KiB, arena = in_use + free_;
    struct rssprobe_narrow n = reading_of(arena, 0, in_use, free_, 8 * KiB);
    struct rssprobe_arena_maps m = maps_of(arena, 0, 10 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_uint_eq(w.arena, arena);
    ck_assert_uint_ne(w.unknown & RSSPROBE_FIG_IN_USE, 0);
    ck_assert_uint_eq(w.free, 4 * GiB + 40 * KiB);
    ck_assert_uint_eq(w.in_use, 2 * MiB);
}
END_TEST

START_TEST(figures_below_4gib_in_an_arena_above_are_exact)
{
    /* 3 GiB free, 1.5 GiB in use: the arena wrapped, neither part did; their readings add up to
     * more than the arena's, which proves it. */
    uint64_t in_use = 3 * GiB / 2, free_ = 3 * GiB, arena = in_use + free_;
    struct rssprobe_narrow n = reading_of(arena, 0, in_use, free_, 0);
    struct rssprobe_arena_maps m = maps_of(arena - 64 * MiB, 64 * MiB, 10 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_int_eq(w.wrapped, 1);
    ck_assert_uint_eq(w.unknown & (RSSPROBE_FIG_ARENA | RSSPROBE_FIG_FREE | RSSPROBE_FIG_IN_USE), 0);
    ck_assert_uint_eq(w.arena, arena);
    ck_assert_uint_eq(w.free, free_);
    ck_assert_uint_eq(w.in_use, in_use);
}
END_TEST

START_TEST(several_wraps_and_thread_arenas)
{
    /* 9 GiB free in thread arenas' heaps, 1 GiB in the main heap, 100 MiB in use. */
    uint64_t in_use = 100 * MiB, free_ = 9 * GiB + GiB - 100 * MiB, arena = 10 * GiB;
    struct rssprobe_narrow n = reading_of(arena, 0, in_use, free_, 0);
    /* the thread heaps' headers lag a little behind (growth between the two reads) */
    struct rssprobe_arena_maps m = maps_of(GiB, 9 * GiB - 30 * MiB, 10 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 20 * GiB, &w);
    ck_assert_uint_eq(w.arena, arena);
    ck_assert_uint_eq(w.unknown & RSSPROBE_FIG_ARENA, 0);
    ck_assert_uint_eq(w.free, free_);
    /* [heap] is only 1 GiB: its top chunk's reading cannot have wrapped */
    ck_assert_uint_eq(w.unknown & RSSPROBE_FIG_RELEASABLE, 0);
}
END_TEST

START_TEST(maps_far_from_the_reading_are_not_trusted)
{
    /* The maps account for 100 MiB (thread heaps missed), mallinfo for 3 GiB: the arena figure
     * cannot be checked, nor what depends on it. */
    struct rssprobe_narrow n = reading_of(3 * GiB, 0, GiB, 2 * GiB, 0);
    struct rssprobe_arena_maps m = maps_of(100 * MiB, 0, 10 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_uint_ne(w.unknown & RSSPROBE_FIG_ARENA, 0);
    ck_assert_uint_ne(w.unknown & RSSPROBE_FIG_FREE, 0);
    ck_assert_uint_eq(w.arena, 3 * GiB);
}
END_TEST

START_TEST(mmapped_bytes_are_exact_only_below_4gib_of_other_mappings)
{
    struct rssprobe_narrow n = reading_of(10 * MiB, 3 * GiB, 5 * MiB, 5 * MiB, 0);
    struct rssprobe_arena_maps m = maps_of(10 * MiB, 0, 3 * GiB + 50 * MiB);
    struct rssprobe_widened w;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_uint_eq(w.unknown, 0);
    ck_assert_uint_eq(w.mmap, 3 * GiB);
    m.other_anon_bytes = 5 * GiB;
    rssprobe_widen(&n, &m, 6 * GiB, &w);
    ck_assert_uint_eq(w.unknown, RSSPROBE_FIG_MMAP);
    ck_assert_uint_eq(w.mmap, 3 * GiB); /* the guess: as read */
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The maps scan, on made-up maps text and made-up memory */

#define HMAX (UINT64_C(64) << 20)

struct fake_word {
    uint64_t addr;
    uint64_t w[4]; /* ar_ptr, prev, size, mprotect_size */
};

struct fake_mem {
    const struct fake_word *words;
    size_t n;
    unsigned peeks;
};

static int fake_peek(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct fake_mem *m = ctx;
    m->peeks++;
    for (size_t i = 0; i < m->n; i++) {
        if (m->words[i].addr == addr && len <= sizeof m->words[i].w) {
            memcpy(buf, m->words[i].w, len);
            return 0;
        }
    }
    return -1; /* unmapped, or not a header: either way unreadable here */
}

/* Two thread arenas: A with a full first heap at 0x7f0000000000 and a half-used second one at
 * 0x7f0004000000 (prev -> the first), B with two full heaps merged into one mapping at
 * 0x7f0010000000, named by glibc's decorate_maps. One aligned mapping whose header is not a
 * heap's (a program's own). */
#define A1 UINT64_C(0x7f0000000000)
#define A2 UINT64_C(0x7f0004000000)
#define B1 UINT64_C(0x7f0010000000)
#define B2 UINT64_C(0x7f0014000000)
#define J1 UINT64_C(0x7f0020000000)

static const struct fake_word fake_words[] = {
    {A1, {A1 + 32, 0, HMAX, HMAX}},
    {A2, {A1 + 32, A1, 32 * MiB, 40 * MiB}},
    {B1, {B1 + 32, 0, HMAX, HMAX}},
    {B2, {B1 + 32, B1, HMAX, HMAX}},
    {J1, {12345, 0, 8 * MiB, 16 * MiB}}, /* ar_ptr is not right after the header */
};

static const char fake_maps[] =
    "55d0c4a00000-55d0c4a21000 r--p 00000000 08:01 1234567                    /usr/bin/prog\n"
    "55d0c4c21000-55d0c4c22000 rw-p 00021000 08:01 1234567                    /usr/bin/prog\n"
    "55d0c5000000-55d1c5000000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0000000000-7f0004000000 rw-p 00000000 00:00 0 \n"
    "7f0004000000-7f0006800000 rw-p 00000000 00:00 0\n"
    "7f0006800000-7f0008000000 ---p 00000000 00:00 0\n"
    "7f0010000000-7f0018000000 rw-p 00000000 00:00 0                          [anon: glibc: malloc arena]\n"
    "7f0020000000-7f0021000000 rw-p 00000000 00:00 0\n"
    "7f0030000000-7f0030100000 rw-s 00000000 00:01 99                         /dev/zero (deleted)\n"
    "7f0040000000-7f0040200000 rw-p 00000000 00:00 0\n"
    "7f0050000000-7f0050001000 rw-p 00000000 08:01 7654321                    "
    "/a/very/long/path/that/goes/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/"
    "and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/and/on/libfoo.so\n"
    "7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

static void check_fake_maps(const struct rssprobe_maps_scan *s)
{
    /* [heap]: 4 GiB exactly */
    ck_assert_uint_eq(s->maps.main_heap_bytes, UINT64_C(0x100000000));
    /* A: 64 MiB + 32 MiB; B: 2 x 64 MiB; not J1 */
    ck_assert_uint_eq(s->maps.thread_heaps, 4);
    ck_assert_uint_eq(s->maps.thread_heap_bytes, 64 * MiB + 32 * MiB + 128 * MiB);
    /* J1's 16 MiB, the 2 MiB mapping and the stack's 132 KiB; A2's rw part is its heap's (not
     * "other"), the shared and file mappings are no anonymous memory */
    ck_assert_uint_eq(s->maps.other_anon_bytes, 16 * MiB + 2 * MiB + 0x21000);
}

START_TEST(maps_scan_finds_main_and_thread_heaps)
{
    struct fake_mem mem = {fake_words, sizeof fake_words / sizeof fake_words[0], 0};
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
    rssprobe_maps_scan_feed(&s, fake_maps, sizeof fake_maps - 1);
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
    check_fake_maps(&s);
}
END_TEST

START_TEST(maps_scan_in_pieces_gives_the_same)
{
    /* /proc hands the file out a page at a time, and the reader reads 2 KiB: lines span pieces. */
    for (size_t piece = 1; piece <= 97; piece += 6) {
        struct fake_mem mem = {fake_words, sizeof fake_words / sizeof fake_words[0], 0};
        struct rssprobe_maps_scan s;
        rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
        for (size_t off = 0; off < sizeof fake_maps - 1; off += piece) {
            size_t n = sizeof fake_maps - 1 - off < piece ? sizeof fake_maps - 1 - off : piece;
            rssprobe_maps_scan_feed(&s, fake_maps + off, n);
        }
        ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
        check_fake_maps(&s);
    }
}
END_TEST

START_TEST(maps_scan_without_memory_finds_no_thread_heap)
{
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, HMAX, 4096, 8, NULL, NULL);
    rssprobe_maps_scan_feed(&s, fake_maps, sizeof fake_maps - 1);
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
    ck_assert_uint_eq(s.maps.thread_heaps, 0);
    ck_assert_uint_eq(s.maps.thread_heap_bytes, 0);
    ck_assert_uint_eq(s.maps.main_heap_bytes, UINT64_C(0x100000000));
    /* every anonymous writable private mapping is "other" then */
    ck_assert_uint_eq(s.maps.other_anon_bytes, 64 * MiB + 40 * MiB + 128 * MiB + 16 * MiB + 2 * MiB + 0x21000);
}
END_TEST

START_TEST(maps_scan_rejects_a_heap_whose_arena_is_elsewhere)
{
    /* A second heap pointing at an arena no first heap holds: not counted. */
    static const struct fake_word words[] = {{A2, {A1 + 32, A1, 32 * MiB, 40 * MiB}}};
    static const char text[] = "7f0004000000-7f0006800000 rw-p 00000000 00:00 0\n";
    struct fake_mem mem = {words, 1, 0};
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
    rssprobe_maps_scan_feed(&s, text, sizeof text - 1);
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
    ck_assert_uint_eq(s.maps.thread_heaps, 0);
    ck_assert_uint_eq(s.maps.other_anon_bytes, 40 * MiB);
    ck_assert_uint_ge(mem.peeks, 2);
}
END_TEST

START_TEST(maps_scan_rejects_sizes_glibc_never_writes)
{
    static const char text[] = "7f0000000000-7f0004000000 rw-p 00000000 00:00 0\n";
    static const struct fake_word bad[][1] = {
        {{A1, {A1 + 32, 0, 0, HMAX}}},               /* size 0 */
        {{A1, {A1 + 32, 0, HMAX, HMAX / 2}}},        /* size > mprotect_size */
        {{A1, {A1 + 32, 0, HMAX, 2 * HMAX}}},        /* mprotect_size > HEAP_MAX */
        {{A1, {A1 + 32, 0, 10 * MiB + 1, HMAX}}},    /* not whole pages */
        {{A1, {A1 + 4096, 0, 10 * MiB, HMAX}}},      /* arena not right after the header */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_mem mem = {bad[i], 1, 0};
        struct rssprobe_maps_scan s;
        rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
        rssprobe_maps_scan_feed(&s, text, sizeof text - 1);
        ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
        ck_assert_msg(s.maps.thread_heaps == 0, "case %zu counted as a heap", i);
    }
}
END_TEST

START_TEST(maps_scan_32bit_words)
{
    /* A 32-bit process: 1 MiB heaps, 4-byte header words (a 16-byte peek). */
    uint32_t h[4] = {0x40000000u + 16, 0, 512 * 1024, 1024 * 1024};
    struct fake_word words[1] = {{0x40000000u, {0, 0, 0, 0}}};
    memcpy(words[0].w, h, sizeof h);
    static const char text[] = "40000000-40100000 rw-p 00000000 00:00 0\n";
    struct fake_mem mem = {words, 1, 0};
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, UINT64_C(1) << 20, 4096, 4, fake_peek, &mem);
    rssprobe_maps_scan_feed(&s, text, sizeof text - 1);
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
    ck_assert_uint_eq(s.maps.thread_heaps, 1);
    ck_assert_uint_eq(s.maps.thread_heap_bytes, 512 * 1024);
    ck_assert_uint_eq(s.maps.other_anon_bytes, 0);
}
END_TEST

START_TEST(maps_scan_reports_malformed_lines)
{
    static const char *const bad[] = {
        "not a maps line\n",
        "7f00-7e00 rw-p 00000000 00:00 0\n",         /* end before start */
        "7f00-7f10 rw 00000000 00:00 0\n",           /* perms cut short */
        "7f00-7f10 rw-p 00000000 00:00\n",           /* no inode */
        "7f0000000000000000-7f10 rw-p 0 00:00 0\n", /* 18 hex digits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rssprobe_maps_scan s;
        rssprobe_maps_scan_init(&s, HMAX, 4096, 8, NULL, NULL);
        rssprobe_maps_scan_feed(&s, bad[i], strlen(bad[i]));
        ck_assert_msg(rssprobe_maps_scan_end(&s) == -1, "accepted: %s", bad[i]);
    }
}
END_TEST

START_TEST(maps_scan_gives_up_on_an_address_space_too_large_to_read)
{
    /* 2^47 bytes of one writable anonymous mapping: 2^21 aligned slots. The scan reads at most
     * RSSPROBE_MAPS_SLOTS_MAX headers and says it could not tell; within the budget (2^16 slots
     * exactly) it reads them all and is a success. */
    static const char huge[] = "0-800000000000 rw-p 00000000 00:00 0\n";
    struct fake_mem mem = {fake_words, sizeof fake_words / sizeof fake_words[0], 0};
    struct rssprobe_maps_scan s;
    rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
    rssprobe_maps_scan_feed(&s, huge, sizeof huge - 1);
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), -1);
    ck_assert_uint_le(mem.peeks, 2 * RSSPROBE_MAPS_SLOTS_MAX);
    char fits[64];
    snprintf(fits, sizeof fits, "0-%llx rw-p 00000000 00:00 0\n",
             (unsigned long long)(RSSPROBE_MAPS_SLOTS_MAX * HMAX));
    mem.peeks = 0;
    rssprobe_maps_scan_init(&s, HMAX, 4096, 8, fake_peek, &mem);
    rssprobe_maps_scan_feed(&s, fits, strlen(fits));
    ck_assert_int_eq(rssprobe_maps_scan_end(&s), 0);
    ck_assert_uint_eq(mem.peeks, RSSPROBE_MAPS_SLOTS_MAX);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * This process's real heap, through the forced mallinfo path */

#if !UNDER_ASAN
/* glibc's own wide figures, where it has them; on glibc < 2.33 mallinfo itself (the heaps here
 * stay far below 2 GiB, so its ints are exact). */
struct truth {
    uint64_t arena, mmap, in_use, free_;
};

static struct truth truth_now(void)
{
    struct truth t;
#if __GLIBC_PREREQ(2, 33)
    struct mallinfo2 m = mallinfo2();
    t.arena = m.arena;
    t.mmap = m.hblkhd;
    t.in_use = m.uordblks;
    t.free_ = m.fordblks;
#else
    struct mallinfo m = mallinfo();
    t.arena = (unsigned)m.arena;
    t.mmap = (unsigned)m.hblkhd;
    t.in_use = (unsigned)m.uordblks;
    t.free_ = (unsigned)m.fordblks;
#endif
    return t;
}

static void *worker(void *arg)
{
    /* A thread's first malloc gives it an arena of its own (a heap at a 64 MiB boundary). */
    void **keep = arg;
    for (int i = 0; i < 200; i++)
        keep[i] = malloc(16 * 1024);
    return NULL;
}

static void *keep_thread[200];
static void *keep_main[300];

static void make_heaps(void)
{
    for (int i = 0; i < 300; i++)
        keep_main[i] = malloc(8 * 1024);
    for (int i = 0; i < 300; i += 2) {
        free(keep_main[i]);
        keep_main[i] = NULL;
    }
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, worker, keep_thread), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

START_TEST(real_maps_account_for_the_arena_figure)
{
    /* What the widening rests on: glibc's arena figure is the [heap] mapping plus the sizes in
     * the thread heaps' headers. Off by at most a few pages (brk's page rounding). */
    make_heaps();
    struct rssprobe_arena_maps m;
    ck_assert_int_eq(rssprobe_read_arena_maps(&m), 0);
    struct truth t = truth_now();
    ck_assert_uint_ge(m.thread_heaps, 1);
    uint64_t est = m.main_heap_bytes + m.thread_heap_bytes;
    uint64_t diff = est > t.arena ? est - t.arena : t.arena - est;
    ck_assert_msg(diff <= 64 * KiB, "maps %llu (heap %llu + %u thread heaps %llu) vs arena %llu",
                  (unsigned long long)est, (unsigned long long)m.main_heap_bytes, m.thread_heaps,
                  (unsigned long long)m.thread_heap_bytes, (unsigned long long)t.arena);
}
END_TEST

static void check_read_heap_is_exact(void)
{
    struct rssprobe_heap h;
    ck_assert_int_eq(rssprobe_read_heap(&h), 0);
    struct truth t = truth_now();
    ck_assert_int_eq(h.source, RSSPROBE_HEAP_MALLINFO);
    ck_assert_uint_eq(h.arena_bytes, t.arena);
    ck_assert_uint_eq(h.mmap_bytes, t.mmap);
    ck_assert_uint_eq(h.in_use_bytes, t.in_use);
    ck_assert_uint_eq(h.free_bytes, t.free_);
}

START_TEST(forced_mallinfo_small_address_space)
{
    struct rssprobe_statm st;
    ck_assert_int_eq(rssprobe_read_statm(&st), 0);
    if ((uint64_t)st.size * (uint64_t)sysconf(_SC_PAGESIZE) >= RSSPROBE_WRAP)
        return; /* this process already maps 4 GiB: the next test covers it */
    make_heaps();
    check_read_heap_is_exact();
}
END_TEST

START_TEST(forced_mallinfo_large_address_space)
{
    /* 6 GiB of address space reserved (PROT_NONE: no memory, no anonymous writable mapping), so
     * the widening must read the maps to prove the small heap's figures exact. */
    void *r = mmap(NULL, 6 * GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_ptr_ne(r, MAP_FAILED);
    make_heaps();
    check_read_heap_is_exact();
    char buf[RSSPROBE_JSON_MAX];
    struct rssprobe_sample s;
    rssprobe_sample(&s, "t", "p");
    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"heap\":{\"source\":\"mallinfo\",\"arena_bytes\":"));
    ck_assert_ptr_null(strstr(buf, "_bytes\":-1"));
    munmap(r, 6 * GiB);
}
END_TEST

/* A malloc call counter (the test binary's malloc forwards to glibc's): the widening and the
 * maps scan must not allocate, or rssprobe would change the heap it measures. */
extern void *__libc_malloc(size_t size);
static volatile int counting;
static volatile unsigned long alloc_calls;

extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

void *malloc(size_t size)
{
    if (counting)
        alloc_calls++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    if (counting)
        alloc_calls++;
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size)
{
    if (counting)
        alloc_calls++;
    return __libc_realloc(ptr, size);
}

START_TEST(forced_path_never_calls_malloc)
{
    void *r = mmap(NULL, 6 * GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_ptr_ne(r, MAP_FAILED);
    make_heaps();
    /* the counter sees allocations, or this test could not fail */
    counting = 1;
    alloc_calls = 0;
    free(malloc(100));
    counting = 0;
    ck_assert_uint_eq(alloc_calls, 1);

    counting = 1;
    alloc_calls = 0;
    for (int i = 0; i < 50; i++) {
        struct rssprobe_heap h;
        struct rssprobe_arena_maps m;
        rssprobe_read_heap(&h);
        rssprobe_read_arena_maps(&m);
    }
    counting = 0;
    ck_assert_uint_eq(alloc_calls, 0);
    munmap(r, 6 * GiB);
}
END_TEST
#endif

static Suite *suite(void)
{
    Suite *s = suite_create("rssprobe_mallinfo");
    TCase *w = tcase_create("widen");
    tcase_add_test(w, small_address_space_is_exact_without_maps);
    tcase_add_test(w, large_address_space_without_maps_is_unknown);
    tcase_add_test(w, small_heap_in_large_address_space_is_exact);
    tcase_add_test(w, freed_heap_past_4gib_is_unwrapped_to_the_free_side);
    tcase_add_test(w, live_heap_past_4gib_also_guesses_free);
    tcase_add_test(w, figures_below_4gib_in_an_arena_above_are_exact);
    tcase_add_test(w, several_wraps_and_thread_arenas);
    tcase_add_test(w, maps_far_from_the_reading_are_not_trusted);
    tcase_add_test(w, mmapped_bytes_are_exact_only_below_4gib_of_other_mappings);
    suite_add_tcase(s, w);

    TCase *m = tcase_create("maps");
    tcase_add_test(m, maps_scan_finds_main_and_thread_heaps);
    tcase_add_test(m, maps_scan_in_pieces_gives_the_same);
    tcase_add_test(m, maps_scan_without_memory_finds_no_thread_heap);
    tcase_add_test(m, maps_scan_rejects_a_heap_whose_arena_is_elsewhere);
    tcase_add_test(m, maps_scan_rejects_sizes_glibc_never_writes);
    tcase_add_test(m, maps_scan_32bit_words);
    tcase_add_test(m, maps_scan_reports_malformed_lines);
    tcase_add_test(m, maps_scan_gives_up_on_an_address_space_too_large_to_read);
    suite_add_tcase(s, m);

#if !UNDER_ASAN
    TCase *r = tcase_create("real");
    tcase_add_test(r, real_maps_account_for_the_arena_figure);
    tcase_add_test(r, forced_mallinfo_small_address_space);
    tcase_add_test(r, forced_mallinfo_large_address_space);
    tcase_add_test(r, forced_path_never_calls_malloc);
    suite_add_tcase(s, r);
#else
    fputs("under ASan: leaving out the tests on glibc's real heap\n", stderr);
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
