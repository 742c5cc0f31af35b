/* rssprobe's mallinfo path (RSSPROBE_FORCE_MALLINFO) on real heaps just below and above 4 GiB
 * (Check; label bigheap, not in the default ctest: each test makes ~4 GiB resident). Above 4 GiB
 * mallinfo's int figures have wrapped; rssprobe must say so ("mallinfo-wrapped"), give the arena
 * size it can prove and -1 for free and in use, never the wrapped number. mallinfo2 is the truth
 * the figures are checked against, so these tests need glibc >= 2.33. */
#define _GNU_SOURCE

#include "rssprobe.h"
#include "rssprobe_mallinfo.h"

#include "check_compat.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

#if __GLIBC_PREREQ(2, 33)

/* Blocks whose chunks are exactly 64 KiB (65528 + the 8-byte size field), each followed by a
 * 24-byte live node: freed, no block coalesces with another or reaches the top, so glibc keeps
 * them all (the founding report's pattern). */
#define BLOCK 65528
#define CHUNK (UINT64_C(64) << 10)

static void **blocks, **nodes;

static void build_and_free(size_t count)
{
    blocks = calloc(count, sizeof *blocks);
    nodes = calloc(count, sizeof *nodes);
    ck_assert_ptr_nonnull(blocks);
    ck_assert_ptr_nonnull(nodes);
    for (size_t i = 0; i < count; i++) {
        blocks[i] = malloc(BLOCK);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], 0x5a, BLOCK); /* resident, as a program's data would be */
        nodes[i] = malloc(24);
        ck_assert_ptr_nonnull(nodes[i]);
    }
    for (size_t i = 0; i < count; i++)
        free(blocks[i]);
}

static void raw_reading(struct rssprobe_narrow *n)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m = mallinfo();
#pragma GCC diagnostic pop
    n->arena = (uint32_t)m.arena;
    n->hblkhd = (uint32_t)m.hblkhd;
    n->uordblks = (uint32_t)m.uordblks;
    n->fordblks = (uint32_t)m.fordblks;
    n->keepcost = (uint32_t)m.keepcost;
}

START_TEST(above_4gib_is_reported_wrapped)
{
    /* 65,600 blocks: 4 GiB + 4 MiB freed. */
    build_and_free(65536 + 64);
    struct mallinfo2 truth = mallinfo2();
    struct rssprobe_narrow raw;
    raw_reading(&raw);
    struct rssprobe_heap h;
    ck_assert_int_eq(rssprobe_read_heap(&h), 0);
    char buf[RSSPROBE_JSON_MAX];
    struct rssprobe_sample s;
    rssprobe_sample(&s, "bigheap", "after_free");
    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);

    /* The premise: the free figure is past 4 GiB, and the int reading is 4 GiB short of it. */
    ck_assert_uint_ge(truth.fordblks, 4 * GiB);
    ck_assert_uint_eq(raw.fordblks, truth.fordblks - 4 * GiB);

    ck_assert_int_eq(h.source, RSSPROBE_HEAP_MALLINFO_WRAPPED);
    /* The arena, unwrapped from the [heap] mapping, is exact. */
    ck_assert_uint_eq(h.arena_bytes, truth.arena);
    /* No mmapped chunk here, and the other mappings are far below 4 GiB: exact too. */
    ck_assert_uint_eq(h.mmap_bytes, truth.hblkhd);
    /* Whether the missing 4 GiB is free or in use, nothing in the process says: unknown. */
    ck_assert_uint_eq(h.in_use_bytes, RSSPROBE_HEAP_UNKNOWN);
    ck_assert_uint_eq(h.free_bytes, RSSPROBE_HEAP_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(buf, "\"source\":\"mallinfo-wrapped\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"in_use_bytes\":-1,\"free_bytes\":-1,"));

    /* The widening's guess (what the shim acts on) is the true figure here: the wrap is on the
     * free side. */
    struct rssprobe_widened w;
    ck_assert_int_eq(rssprobe_widen_self(&raw, &w), 0);
    ck_assert_uint_eq(w.free, truth.fordblks);
    ck_assert_uint_eq(w.in_use, truth.uordblks);
}
END_TEST

START_TEST(below_4gib_is_exact)
{
    /* 56,000 blocks: 3.4 GiB freed, the arena stays below 4 GiB. */
    build_and_free(56000);
    struct mallinfo2 truth = mallinfo2();
    struct rssprobe_heap h;
    ck_assert_int_eq(rssprobe_read_heap(&h), 0);
    ck_assert_uint_lt(truth.arena, 4 * GiB);
    ck_assert_uint_ge(truth.fordblks, 3 * GiB);
    ck_assert_int_eq(h.source, RSSPROBE_HEAP_MALLINFO);
    ck_assert_uint_eq(h.arena_bytes, truth.arena);
    ck_assert_uint_eq(h.in_use_bytes, truth.uordblks);
    ck_assert_uint_eq(h.free_bytes, truth.fordblks);
    ck_assert_uint_eq(h.releasable_bytes, truth.keepcost);
}
END_TEST
#endif

int main(void)
{
#if !__GLIBC_PREREQ(2, 33)
    fputs("skipped: glibc < 2.33 has no mallinfo2 to check the figures against\n", stderr);
    return 77;
#else
    Suite *s = suite_create("rssprobe_bigheap");
    TCase *tc = tcase_create("bigheap");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, above_4gib_is_reported_wrapped);
    tcase_add_test(tc, below_4gib_is_exact);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
#endif
}
