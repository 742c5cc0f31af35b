/* Units of heapfig.c (Check): which glibc function the shim's heap figures come from, and what it
 * makes of mallinfo's int fields, with stand-ins for glibc's functions and for the widening; then
 * the real mallinfo path of this process (built with TS_HEAPFIG_FORCE_MALLINFO). */
#define _GNU_SOURCE
#include "heapfig.h"

#include "check_compat.h"
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static char logged[8][512];
static int log_lines;

static void test_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (log_lines < 8)
        vsnprintf(logged[log_lines], sizeof logged[0], fmt, ap);
    log_lines++;
    va_end(ap);
}

static void reset(void)
{
    log_lines = 0;
    memset(logged, 0, sizeof logged);
}

/* ---- stand-ins for glibc --------------------------------------------------------------- */

static struct ts_mallinfo2 wide_2(void)
{
    struct ts_mallinfo2 m = {0};
    m.arena = 6 * GiB;
    m.hblkhd = 3 * MiB;
    m.uordblks = 2 * GiB;
    m.fordblks = 4 * GiB;
    return m;
}

/* mallinfo of a heap with 4 GiB + 40 kB free between 2 MiB of live nodes (the int fields as
 * glibc fills them: the low 32 bits of the true figures). */
static struct ts_mallinfo narrow_big(void)
{
    uint64_t in_use = 2 * MiB, free_ = 4 * GiB + 40 * KiB;
    struct ts_mallinfo m = {0};
    m.arena = (int)(uint32_t)(in_use + free_);
    m.uordblks = (int)(uint32_t)in_use;
    m.fordblks = (int)(uint32_t)free_;
    m.keepcost = 8 * 1024;
    return m;
}

/* The widening of that reading, with the maps of that heap: rssprobe_widen itself, on made-up
 * maps ([heap] the arena's size, nothing else big). */
static int widen_big(const struct rssprobe_narrow *n, struct rssprobe_widened *out)
{
    struct rssprobe_arena_maps maps = {2 * MiB + 4 * GiB + 40 * KiB + 4 * KiB, 0, 0, 20 * MiB};
    rssprobe_widen(n, &maps, 6 * GiB, out);
    return 0;
}

/* A widening that could not read the maps. */
static int widen_blind(const struct rssprobe_narrow *n, struct rssprobe_widened *out)
{
    rssprobe_widen(n, NULL, 6 * GiB, out);
    return -1;
}

/* The same for a 100 MiB heap in a process mapping more than 4 GiB. */
static int widen_small(const struct rssprobe_narrow *n, struct rssprobe_widened *out)
{
    struct rssprobe_arena_maps maps = {100 * MiB + 4 * KiB, 0, 0, 20 * MiB};
    rssprobe_widen(n, &maps, 6 * GiB, out);
    return 0;
}

static struct ts_mallinfo narrow_small(void)
{
    struct ts_mallinfo m = {0};
    m.arena = 100 << 20;
    m.hblkhd = 1 << 20;
    m.uordblks = 60 << 20;
    m.fordblks = 40 << 20;
    return m;
}

START_TEST(mallinfo2_is_used_as_is)
{
    reset();
    ts_heapfig_use(wide_2, narrow_big, widen_big, test_log);
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    ck_assert_uint_eq(f.free_bytes, 4 * GiB);
    ck_assert_uint_eq(f.used_bytes, 2 * GiB + 3 * MiB);
    ck_assert_int_eq(f.wrapped, 0);
    ck_assert_int_eq(log_lines, 0);
}
END_TEST

START_TEST(wrapped_mallinfo_is_widened)
{
    reset();
    ts_heapfig_use(NULL, narrow_big, widen_big, test_log);
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    /* The int reading says 40 kB free: below the trim threshold. The widened figure is the
     * heap's. */
    ck_assert_uint_eq((uint32_t)narrow_big().fordblks, 40 * KiB);
    ck_assert_uint_eq(f.free_bytes, 4 * GiB + 40 * KiB);
    ck_assert_uint_eq(f.used_bytes, 2 * MiB);
    ck_assert_int_eq(f.wrapped, 1);
    ck_assert_int_eq(f.guessed, 1);
    /* one line, at the first wrap only */
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    ck_assert_int_eq(log_lines, 1);
    ck_assert_ptr_nonnull(strstr(logged[0], "heap past 4 GiB: mallinfo's int fields wrapped (arenas 4.0 GiB "
                                            "by their mappings, read as 2.0 MiB); free bytes taken as 4.0 GiB"));
}
END_TEST

START_TEST(small_mallinfo_reading_is_kept)
{
    reset();
    ts_heapfig_use(NULL, narrow_small, widen_small, test_log);
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    ck_assert_uint_eq(f.free_bytes, 40 * MiB);
    ck_assert_uint_eq(f.used_bytes, 61 * MiB);
    ck_assert_int_eq(f.wrapped, 0);
    ck_assert_int_eq(log_lines, 0);
}
END_TEST

START_TEST(unreadable_maps_keep_the_reading)
{
    /* No maps, no proof either way: the figures the shim always used, no claim of a wrap. */
    reset();
    ts_heapfig_use(NULL, narrow_big, widen_blind, test_log);
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
    ck_assert_uint_eq(f.free_bytes, 40 * KiB);
    ck_assert_int_eq(f.wrapped, 0);
    ck_assert_int_eq(f.guessed, 1);
    ck_assert_int_eq(log_lines, 0);
}
END_TEST

START_TEST(no_function_no_figures)
{
    ts_heapfig_use(NULL, NULL, NULL, NULL);
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), -1);
}
END_TEST

#if !UNDER_ASAN
static void *keep[400];

START_TEST(forced_init_reads_this_heap_through_mallinfo)
{
    reset();
    ts_heapfig_use(NULL, NULL, NULL, NULL);
    ck_assert_int_eq(ts_heapfig_init(test_log), TS_HEAPFIG_MALLINFO);
    ck_assert_int_eq(log_lines, 1);
    ck_assert_ptr_nonnull(strstr(logged[0], "heap figures from mallinfo (int fields"));
    for (int i = 0; i < 400; i++)
        keep[i] = malloc(4096 + 64 * (size_t)i);
    for (int i = 0; i < 400; i += 2) {
        free(keep[i]);
        keep[i] = NULL;
    }
    struct ts_heapfig f;
    ck_assert_int_eq(ts_heapfig_read(&f), 0);
#if __GLIBC_PREREQ(2, 33)
    struct mallinfo2 t = mallinfo2();
    ck_assert_uint_eq(f.free_bytes, t.fordblks);
    ck_assert_uint_eq(f.used_bytes, t.uordblks + t.hblkhd);
#endif
    ck_assert_int_eq(f.wrapped, 0);
    ck_assert_uint_gt(f.free_bytes, 200 * 4096);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("heapfig");
    TCase *tc = tcase_create("heapfig");
    tcase_add_test(tc, mallinfo2_is_used_as_is);
    tcase_add_test(tc, wrapped_mallinfo_is_widened);
    tcase_add_test(tc, small_mallinfo_reading_is_kept);
    tcase_add_test(tc, unreadable_maps_keep_the_reading);
    tcase_add_test(tc, no_function_no_figures);
#if !UNDER_ASAN
    tcase_add_test(tc, forced_init_reads_this_heap_through_mallinfo);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
