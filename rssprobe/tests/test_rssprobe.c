/* Unit tests for rssprobe (Check). Each test pins one property with an expectation that fails
 * when the property breaks: exact page counts for the floor, exact parser results, RSS moving by
 * a known amount, and rssprobe never calling malloc. */
#define _GNU_SOURCE

#include "rssprobe.h"
#include "rssprobe_internal.h"

#include "check_compat.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* Under ASan, malloc is ASan's (mallinfo2 does not see it, freed blocks sit in a quarantine), so
 * the tests about glibc's heap are left out of that build. */
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

/* Tests that read glibc's heap through mallinfo2 (glibc >= 2.33, and not under ASan). */
#if defined(__GLIBC__) && !UNDER_ASAN
#if __GLIBC_PREREQ(2, 33)
#define GLIBC_HEAP_TESTS 1
#endif
#endif
#ifndef GLIBC_HEAP_TESTS
#define GLIBC_HEAP_TESTS 0
#endif

/* Under valgrind, malloc is valgrind's too: mallinfo2 reports zeros and the counter below is
 * bypassed. The suite leaves those tests out when it finds itself under valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static int under_valgrind(void)
{
#if defined(HAVE_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* ---------------------------------------------------------------------------------------------
 * A malloc call counter: it sees every allocation in the process, including the ones glibc makes
 * for itself (fopen, qsort). A malloc + free pair is invisible to mallinfo2 when tcache already
 * holds a chunk of that size; the counter still sees it.
 * - glibc: the test binary interposes malloc, calloc and realloc and forwards them to glibc's own
 *   entry points (glibc calls malloc through the PLT, so its internal calls come here too).
 * - ASan: ASan owns malloc; it calls hooks installed with
 *   __sanitizer_install_malloc_and_free_hooks (declared here: gcc ships no header for it).
 * - valgrind: neither works (valgrind redirects malloc itself); that run leaves the test out. */
#if UNDER_ASAN || defined(__GLIBC__)
static volatile int counting;
static volatile unsigned long alloc_calls;
#endif

#if UNDER_ASAN
#define HAVE_ALLOC_COUNTER 1
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void count_malloc_hook(const volatile void *ptr, size_t size)
{
    (void)ptr;
    (void)size;
    if (counting)
        alloc_calls++;
}

static void ignore_free_hook(const volatile void *ptr)
{
    (void)ptr;
}

static void install_alloc_counter(void)
{
    __sanitizer_install_malloc_and_free_hooks(count_malloc_hook, ignore_free_hook);
}
#elif defined(__GLIBC__)
#define HAVE_ALLOC_COUNTER 1
extern void *__libc_malloc(size_t size);
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

static void install_alloc_counter(void)
{
}
#else
#define HAVE_ALLOC_COUNTER 0
#endif

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static long page_size(void)
{
    return sysconf(_SC_PAGESIZE);
}

static void fill_garbage(struct rssprobe_rss *r)
{
    r->rss_kb = 777;
    r->anon_kb = 777;
    r->anon_huge_kb = 777;
    r->source = RSSPROBE_RSS_STATM;
}

static int parse_smaps(const char *text, struct rssprobe_rss *r)
{
    fill_garbage(r);
    return rssprobe_parse_smaps_rollup(text, strlen(text), r);
}

static int parse_statm(const char *text, long ps, struct rssprobe_rss *r)
{
    fill_garbage(r);
    return rssprobe_parse_statm(text, strlen(text), ps, r);
}

static void assert_invalid(const struct rssprobe_rss *r)
{
    ck_assert_int_eq(r->rss_kb, -1);
    ck_assert_int_eq(r->source, RSSPROBE_RSS_NONE);
}

static long rss_kb_now(void)
{
    struct rssprobe_rss r;
    ck_assert_int_eq(rssprobe_read_rss(&r), 0);
    ck_assert_int_gt(r.rss_kb, 0);
    return r.rss_kb;
}

/* A page-aligned reservation that the floor tests take addresses from. The floor only does
 * arithmetic on the pointers, so it is never touched (PROT_NONE, no RSS). */
static char *reserve_pages(size_t pages)
{
    void *p = mmap(NULL, pages * (size_t)page_size(), PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

/* Pages of a floor holding one object at base + off. */
static size_t pages_of_one(size_t off, size_t size)
{
    char *base = reserve_pages(4);
    struct rssprobe_floor f;
    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, base + off, size), 0);
    size_t n = rssprobe_floor_pages(&f);
    rssprobe_floor_release(&f);
    munmap(base, 4 * (size_t)page_size());
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Parsers */

static const char realistic_rollup[] =
    "55fa002df000-7ffceba8a000 ---p 00000000 00:00 0                          [rollup]\n"
    "Rss:                2728 kB\n"
    "Pss:                 559 kB\n"
    "Pss_Dirty:           112 kB\n"
    "Pss_Anon:            112 kB\n"
    "Pss_File:            447 kB\n"
    "Pss_Shmem:             0 kB\n"
    "Shared_Clean:       1576 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:        96 kB\n"
    "Private_Dirty:       112 kB\n"
    "Referenced:         1784 kB\n"
    "Anonymous:           640 kB\n"
    "KSM:                   0 kB\n"
    "LazyFree:              0 kB\n"
    "AnonHugePages:       512 kB\n"
    "ShmemPmdMapped:        0 kB\n"
    "FilePmdMapped:         0 kB\n"
    "Shared_Hugetlb:        0 kB\n"
    "Private_Hugetlb:       0 kB\n"
    "Swap:                  0 kB\n"
    "SwapPss:               0 kB\n"
    "Locked:                0 kB\n";

START_TEST(smaps_rollup_realistic_parses_exactly)
{
    struct rssprobe_rss r;
    ck_assert_int_eq(parse_smaps(realistic_rollup, &r), 0);
    ck_assert_int_eq(r.rss_kb, 2728);
    ck_assert_int_eq(r.anon_kb, 640); /* not Pss_Anon's 112 */
    ck_assert_int_eq(r.anon_huge_kb, 512);
    ck_assert_int_eq(r.source, RSSPROBE_RSS_SMAPS_ROLLUP);
}
END_TEST

START_TEST(smaps_rollup_missing_optional_fields_are_minus_one)
{
    struct rssprobe_rss r;
    ck_assert_int_eq(parse_smaps("0-0 ---p 00000000 00:00 0 [rollup]\nRss: 10 kB\nPss: 3 kB\n", &r), 0);
    ck_assert_int_eq(r.rss_kb, 10);
    ck_assert_int_eq(r.anon_kb, -1);
    ck_assert_int_eq(r.anon_huge_kb, -1);
    ck_assert_int_eq(r.source, RSSPROBE_RSS_SMAPS_ROLLUP);

    /* A malformed optional field is unknown, not an error. */
    ck_assert_int_eq(parse_smaps("Rss: 10 kB\nAnonymous: lots kB\nAnonHugePages: 4 kB\n", &r), 0);
    ck_assert_int_eq(r.rss_kb, 10);
    ck_assert_int_eq(r.anon_kb, -1);
    ck_assert_int_eq(r.anon_huge_kb, 4);
}
END_TEST

START_TEST(smaps_rollup_truncated_text_parses_what_is_complete)
{
    struct rssprobe_rss r;
    /* No trailing newline. */
    ck_assert_int_eq(parse_smaps("Rss:              2728 kB", &r), 0);
    ck_assert_int_eq(r.rss_kb, 2728);
    /* Cut in the middle of a later line: Rss is kept, the cut field is unknown. */
    ck_assert_int_eq(parse_smaps("hdr\nRss:   2728 kB\nAnonymous:   64 kB\nAnonHugeP", &r), 0);
    ck_assert_int_eq(r.rss_kb, 2728);
    ck_assert_int_eq(r.anon_kb, 64);
    ck_assert_int_eq(r.anon_huge_kb, -1);
}
END_TEST

START_TEST(smaps_rollup_reads_only_len_bytes)
{
    /* The text is not NUL-terminated: what follows len must not be read as part of it. */
    char buf[32];
    struct rssprobe_rss r;
    memcpy(buf, "Rss: 12 kB99999999999999999999", 30);
    buf[30] = '\0';
    fill_garbage(&r);
    ck_assert_int_eq(rssprobe_parse_smaps_rollup(buf, 10, &r), 0);
    ck_assert_int_eq(r.rss_kb, 12);
}
END_TEST

START_TEST(smaps_rollup_malformed_is_minus_one)
{
    static const char *const bad[] = {
        "",
        "\n",
        "55fa002df000-7ffceba8a000 ---p 00000000 00:00 0 [rollup]\n", /* header only */
        "Pss: 10 kB\nAnonymous: 5 kB\n",                              /* no Rss line */
        "Rss: abc kB\n",
        "Rss:  kB\n",
        "Rss:\n",
        "Rss:",
        "Rss: 12x kB\n",
        "Rss: -5 kB\n",
        "Rss: 12 kB trailing\n",
        "Rss: 99999999999999999999999 kB\n", /* does not fit a long */
        "rss: 12 kB\n",                      /* keys are case-sensitive */
        "RssX: 12 kB\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rssprobe_rss r;
        ck_assert_msg(parse_smaps(bad[i], &r) == -1, "accepted \"%s\"", bad[i]);
        assert_invalid(&r);
    }
    struct rssprobe_rss r;
    fill_garbage(&r);
    ck_assert_int_eq(rssprobe_parse_smaps_rollup("Rss: 1 kB\n", 0, &r), -1); /* len 0 */
    assert_invalid(&r);
}
END_TEST

START_TEST(statm_parses_resident_pages_to_kb)
{
    struct rssprobe_rss r;
    ck_assert_int_eq(parse_statm("765 405 376 5 0 123 0\n", 4096, &r), 0);
    ck_assert_int_eq(r.rss_kb, 405 * 4);
    ck_assert_int_eq(r.anon_kb, -1);
    ck_assert_int_eq(r.anon_huge_kb, -1);
    ck_assert_int_eq(r.source, RSSPROBE_RSS_STATM);

    ck_assert_int_eq(parse_statm("765 405 376 5 0 123 0", 65536, &r), 0); /* no newline */
    ck_assert_int_eq(r.rss_kb, 405 * 64);
    ck_assert_int_eq(parse_statm("10 0\n", 4096, &r), 0); /* two fields are enough */
    ck_assert_int_eq(r.rss_kb, 0);
}
END_TEST

START_TEST(statm_malformed_is_minus_one)
{
    static const char *const bad[] = {
        "", "\n", "765", "765\n", "abc 405 1 1 0 1 0\n", "765 40x 376 5 0 123 0\n",
        "765 405 garbage\n", "765 -405 376\n", "765 405\nmore\n",
        "765 99999999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rssprobe_rss r;
        ck_assert_msg(parse_statm(bad[i], 4096, &r) == -1, "accepted \"%s\"", bad[i]);
        assert_invalid(&r);
    }
    struct rssprobe_rss r;
    ck_assert_int_eq(parse_statm("765 405 376 5 0 123 0\n", 0, &r), -1); /* bad page size */
    assert_invalid(&r);
}
END_TEST

/* statm in pages: the same text rules as the kB parser above, which is built on it. */
static int parse_statm_pages(const char *text, struct rssprobe_statm *m)
{
    m->size = m->resident = m->shared = 777;
    return rssprobe_parse_statm_pages(text, strlen(text), m);
}

START_TEST(statm_pages_are_the_first_three_fields)
{
    struct rssprobe_statm m;
    ck_assert_int_eq(parse_statm_pages("765 405 376 5 0 123 0\n", &m), 0);
    ck_assert_int_eq(m.size, 765);
    ck_assert_int_eq(m.resident, 405);
    ck_assert_int_eq(m.shared, 376);

    /* Two fields are enough; shared is then unknown. */
    ck_assert_int_eq(parse_statm_pages("10 0\n", &m), 0);
    ck_assert_int_eq(m.size, 10);
    ck_assert_int_eq(m.resident, 0);
    ck_assert_int_eq(m.shared, -1);

    /* The largest number a long holds still fits (as pages); the kB parser then refuses it,
     * since in bytes it does not fit. */
    char text[64];
    snprintf(text, sizeof text, "1 %ld 0\n", LONG_MAX);
    ck_assert_int_eq(parse_statm_pages(text, &m), 0);
    ck_assert_int_eq(m.resident, LONG_MAX);
    struct rssprobe_rss r;
    ck_assert_int_eq(parse_statm(text, 4096, &r), -1);
    assert_invalid(&r);
}
END_TEST

START_TEST(statm_pages_malformed_is_minus_one)
{
    static const char *const bad[] = {
        "", "\n", "765", "765\n", "abc 405 1 1 0 1 0\n", "765 40x 376 5 0 123 0\n",
        "765 405 garbage\n", "765 -405 376\n", "765 405\nmore\n",
        "765 99999999999999999999999\n", "765 405 99999999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rssprobe_statm m;
        ck_assert_msg(parse_statm_pages(bad[i], &m) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(m.size, -1);
        ck_assert_int_eq(m.resident, -1);
        ck_assert_int_eq(m.shared, -1);
    }
    struct rssprobe_statm m;
    ck_assert_int_eq(rssprobe_parse_statm_pages(NULL, 4, &m), -1);
    ck_assert_int_eq(rssprobe_parse_statm_pages("765 405\n", 3, &m), -1); /* "765" */
}
END_TEST

START_TEST(pages_to_bytes_refuses_what_does_not_fit)
{
    uint64_t b = 1;
    ck_assert_int_eq(rssprobe_pages_to_bytes(405, 4096, &b), 0);
    ck_assert_uint_eq(b, 405u * 4096u);
    ck_assert_int_eq(rssprobe_pages_to_bytes(0, 65536, &b), 0);
    ck_assert_uint_eq(b, 0);
    /* 2^52 pages of 4 KiB are 2^64 bytes: one too many. */
    ck_assert_int_eq(rssprobe_pages_to_bytes((long)(UINT64_MAX / 4096), 4096, &b), 0);
    ck_assert_uint_eq(b, UINT64_MAX / 4096 * 4096);
    b = 1;
    ck_assert_int_eq(rssprobe_pages_to_bytes((long)(UINT64_MAX / 4096) + 1, 4096, &b), -1);
    ck_assert_uint_eq(b, 0);
    ck_assert_int_eq(rssprobe_pages_to_bytes(LONG_MAX, 4096, &b), -1);
    ck_assert_int_eq(rssprobe_pages_to_bytes(-1, 4096, &b), -1);
    ck_assert_int_eq(rssprobe_pages_to_bytes(1, 0, &b), -1);
    ck_assert_int_eq(rssprobe_pages_to_bytes(1, -4096, &b), -1);
}
END_TEST

/* /proc/self/status of a small process on Linux 6 (the lines after VmSwap cut). */
static const char realistic_status[] =
    "Name:\tcat\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Tgid:\t24375\n"
    "Ngid:\t0\n"
    "Pid:\t24375\n"
    "PPid:\t24373\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t256\n"
    "Groups:\t \n"
    "NStgid:\t24375\n"
    "NSpid:\t24375\n"
    "VmPeak:\t    3060 kB\n"
    "VmSize:\t    3060 kB\n"
    "VmLck:\t       0 kB\n"
    "VmPin:\t       0 kB\n"
    "VmHWM:\t    1700 kB\n"
    "VmRSS:\t    1636 kB\n"
    "RssAnon:\t     112 kB\n"
    "RssFile:\t    1524 kB\n"
    "RssShmem:\t       8 kB\n"
    "VmData:\t     360 kB\n"
    "VmStk:\t     132 kB\n"
    "VmSwap:\t       0 kB\n";

static int parse_status(const char *text, size_t len, struct rssprobe_status *st)
{
    st->vm_rss_kb = st->rss_anon_kb = st->rss_file_kb = st->rss_shmem_kb = 777;
    return rssprobe_parse_status(text, len, st);
}

static void assert_status_invalid(const struct rssprobe_status *st)
{
    ck_assert_int_eq(st->vm_rss_kb, -1);
    ck_assert_int_eq(st->rss_anon_kb, -1);
    ck_assert_int_eq(st->rss_file_kb, -1);
    ck_assert_int_eq(st->rss_shmem_kb, -1);
}

START_TEST(status_realistic_parses_exactly)
{
    struct rssprobe_status st;
    ck_assert_int_eq(parse_status(realistic_status, strlen(realistic_status), &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 1636); /* not VmHWM's 1700 */
    ck_assert_int_eq(st.rss_anon_kb, 112);
    ck_assert_int_eq(st.rss_file_kb, 1524);
    ck_assert_int_eq(st.rss_shmem_kb, 8);

    /* Keys are whole words: VmRSS is not read from a VmRSSx line, nor from VmHWM. */
    static const char other[] = "VmHWM:\t 99 kB\nVmRSSx:\t 98 kB\nVmRSS:\t 5 kB\n";
    ck_assert_int_eq(parse_status(other, sizeof other - 1, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 5);
}
END_TEST

START_TEST(status_without_the_split_has_minus_one)
{
    /* Linux before 4.5: VmRSS only. */
    static const char old[] = "Name:\tx\nVmHWM:\t 10 kB\nVmRSS:\t 9 kB\nVmData:\t 3 kB\n";
    struct rssprobe_status st;
    ck_assert_int_eq(parse_status(old, sizeof old - 1, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 9);
    ck_assert_int_eq(st.rss_anon_kb, -1);
    ck_assert_int_eq(st.rss_file_kb, -1);
    ck_assert_int_eq(st.rss_shmem_kb, -1);

    /* One of the split missing: only that one is unknown. No unit: still kB. */
    static const char partial[] = "VmRSS: 9\nRssAnon: 4 kB\nRssFile: 5 kB\n";
    ck_assert_int_eq(parse_status(partial, sizeof partial - 1, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 9);
    ck_assert_int_eq(st.rss_anon_kb, 4);
    ck_assert_int_eq(st.rss_file_kb, 5);
    ck_assert_int_eq(st.rss_shmem_kb, -1);
}
END_TEST

START_TEST(status_first_occurrence_wins)
{
    static const char twice[] = "VmRSS: 9 kB\nRssShmem: 1 kB\nVmRSS: 7 kB\nRssShmem: x\n";
    struct rssprobe_status st;
    ck_assert_int_eq(parse_status(twice, sizeof twice - 1, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 9);
    ck_assert_int_eq(st.rss_shmem_kb, 1);
}
END_TEST

START_TEST(status_cut_line_is_not_read)
{
    struct rssprobe_status st;
    /* "RssAnon: 4" could be the start of "RssAnon: 4096 kB": a line counts only with its
     * newline. */
    static const char cut[] = "VmRSS:\t 9000 kB\nRssAnon:\t 4";
    ck_assert_int_eq(parse_status(cut, sizeof cut - 1, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 9000);
    ck_assert_int_eq(st.rss_anon_kb, -1);
    /* VmRSS itself cut: missing. */
    ck_assert_int_eq(parse_status("VmRSS:\t 9000 kB", 15, &st), -1);
    assert_status_invalid(&st);
    /* len stops the text before the newline that follows in memory. */
    ck_assert_int_eq(parse_status("VmRSS:\t 9000 kB\n", 11, &st), -1);
    assert_status_invalid(&st);
    ck_assert_int_eq(parse_status("VmRSS:\t 9000 kB\n", 16, &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, 9000);
}
END_TEST

START_TEST(status_malformed_is_minus_one)
{
    static const char *const bad[] = {
        "",
        "\n",
        "Name:\tcat\nVmHWM:\t 10 kB\n",             /* no VmRSS */
        "RssAnon: 1 kB\nRssFile: 2 kB\n",           /* the split without VmRSS */
        "VmRSS: abc kB\n",
        "VmRSS:  kB\n",
        "VmRSS:\n",
        "VmRSS: 12x kB\n",
        "VmRSS: -5 kB\n",
        "VmRSS: 12 kB trailing\n",
        "VmRSS: 12 MB\n",
        "VmRSS: 99999999999999999999999 kB\n",      /* does not fit a long */
        "VmRSS: 9223372036854775808 kB\n",          /* LONG_MAX + 1 */
        "vmrss: 12 kB\n",                            /* keys are case-sensitive */
        "VmRSS 12 kB\n",                             /* no colon */
        "VmRSS: 12 kB\nRssAnon: lots kB\n",         /* a present field of the split, malformed */
        "VmRSS: 12 kB\nRssFile: 1 2 kB\n",
        "VmRSS: 12 kB\nRssShmem: 99999999999999999999999 kB\n",
        "\x01\x02\xff\xfe garbage \x7f\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rssprobe_status st;
        ck_assert_msg(parse_status(bad[i], strlen(bad[i]), &st) == -1, "accepted \"%s\"", bad[i]);
        assert_status_invalid(&st);
    }
    /* A NUL inside a value. */
    static const char nul[] = "VmRSS: 1\0 kB\n";
    struct rssprobe_status st;
    ck_assert_int_eq(parse_status(nul, sizeof nul - 1, &st), -1);
    assert_status_invalid(&st);
    ck_assert_int_eq(parse_status(NULL, 10, &st), -1);
    assert_status_invalid(&st);

    /* LONG_MAX itself fits. */
    char text[64];
    snprintf(text, sizeof text, "VmRSS: %ld kB\n", LONG_MAX);
    ck_assert_int_eq(parse_status(text, strlen(text), &st), 0);
    ck_assert_int_eq(st.vm_rss_kb, LONG_MAX);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Reading: EINTR, short reads, the buffer's end, errors. A scripted read(2) through the reader's
 * seam makes each path happen on demand; one test also takes the EINTR path with a real signal. */

/* Each call takes the next step of the script: a negative step fails with that errno (-EINTR), a
 * positive one returns up to that many bytes of the text, FAKE_OVERCLAIM claims one byte more
 * than asked for. After the script, each call returns as much of the rest as fits. */
#define FAKE_OVERCLAIM 1000000
static struct {
    const char *text;
    size_t len, pos;
    const int *steps;
    size_t nsteps, calls;
} fake;

static void fake_init(const char *text, const int *steps, size_t nsteps)
{
    fake.text = text;
    fake.len = strlen(text);
    fake.pos = 0;
    fake.steps = steps;
    fake.nsteps = nsteps;
    fake.calls = 0;
}

static ssize_t fake_read(int fd, void *buf, size_t count)
{
    (void)fd;
    size_t n = count;
    if (fake.calls < fake.nsteps) {
        int step = fake.steps[fake.calls];
        fake.calls++;
        if (step < 0) {
            errno = -step;
            return -1;
        }
        if (step == FAKE_OVERCLAIM)
            return (ssize_t)count + 1;
        if ((size_t)step < n)
            n = (size_t)step;
    } else {
        fake.calls++;
    }
    if (n > fake.len - fake.pos)
        n = fake.len - fake.pos;
    memcpy(buf, fake.text + fake.pos, n);
    fake.pos += n;
    return (ssize_t)n;
}

START_TEST(read_fd_retries_eintr_and_reads_on_after_short_reads)
{
    static const char text[] = "765 405 376 5 0 123 0\n";
    static const int steps[] = {-EINTR, 3, -EINTR, -EINTR, 1, 5};
    char buf[64];
    struct rssprobe_statm m;

    fake_init(text, steps, sizeof steps / sizeof steps[0]);
    errno = 0;
    ssize_t n = rssprobe_procfs_read_fd(-1, buf, sizeof buf, fake_read);
    ck_assert_int_eq(n, (ssize_t)strlen(text));
    ck_assert_int_eq(memcmp(buf, text, strlen(text)), 0);
    /* the six scripted calls, one for the rest, one that returns 0 */
    ck_assert_uint_eq(fake.calls, 8);
    ck_assert_int_eq(rssprobe_parse_statm_pages(buf, strlen(text), &m), 0);
    ck_assert_int_eq(m.resident, 405);
}
END_TEST

START_TEST(read_fd_stops_at_cap)
{
    static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    static const int steps[] = {3};
    char buf[16];

    memset(buf, '#', sizeof buf);
    fake_init(text, steps, 1);
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, 10, fake_read), 10);
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
    for (size_t i = 10; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], '#');
    ck_assert_uint_eq(fake.calls, 2); /* 3 bytes, then the 7 that fill it: no read past cap */

    /* cap 0 reads nothing */
    fake_init(text, NULL, 0);
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, 0, fake_read), 0);
    ck_assert_uint_eq(fake.calls, 0);
}
END_TEST

START_TEST(read_fd_fails_with_the_error)
{
    char buf[64];

    static const int eio_after_four[] = {4, -EIO};
    fake_init("765 405\n", eio_after_four, 2);
    errno = 0;
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, sizeof buf, fake_read), -1);
    ck_assert_int_eq(errno, EIO);

    static const int ebadf[] = {-EBADF};
    fake_init("765 405\n", ebadf, 1);
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, sizeof buf, fake_read), -1);
    ck_assert_int_eq(errno, EBADF);

    /* A read that claims more than it was asked for: nothing past buf is trusted. */
    static const int overclaim[] = {2, FAKE_OVERCLAIM};
    fake_init("765 405\n", overclaim, 2);
    errno = 0;
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, sizeof buf, fake_read), -1);
    ck_assert_int_eq(errno, EIO);

    /* The real read(2) on a descriptor that is not open. */
    ck_assert_int_eq(rssprobe_procfs_read_fd(-1, buf, sizeof buf, NULL), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* The real read(2), counting the calls that EINTR interrupted. */
static volatile sig_atomic_t alarms;
static unsigned long eintr_returns;

static void count_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static ssize_t counting_read(int fd, void *buf, size_t count)
{
    ssize_t n = read(fd, buf, count);
    if (n < 0 && errno == EINTR)
        eintr_returns++;
    return n;
}

/* A pipe whose writer (a child) sends the text 300 ms late, in two pieces, while a 5 ms interval
 * timer interrupts the blocked read again and again (SIGALRM without SA_RESTART). */
START_TEST(read_fd_survives_real_signals_while_blocked)
{
    static const char text[] = "765 405 376 5 0 123 0\n";
    struct sigaction sa, old_sa;
    struct itimerval every_5ms = {{0, 5000}, {0, 5000}}, off = {{0, 0}, {0, 0}};
    int fds[2];
    char buf[64];

    ck_assert_int_eq(pipe(fds), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(fds[0]);
        usleep(300 * 1000);
        ssize_t a = write(fds[1], text, 7);
        usleep(50 * 1000);
        ssize_t b = write(fds[1], text + 7, strlen(text) - 7);
        _exit(a == 7 && b == (ssize_t)strlen(text) - 7 ? 0 : 1);
    }
    close(fds[1]);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns EINTR */
    ck_assert_int_eq(sigaction(SIGALRM, &sa, &old_sa), 0);
    alarms = 0;
    eintr_returns = 0;
    ck_assert_int_eq(setitimer(ITIMER_REAL, &every_5ms, NULL), 0);

    ssize_t n = rssprobe_procfs_read_fd(fds[0], buf, sizeof buf, counting_read);

    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child); /* the read end is closed: it ends */

    ck_assert_int_eq(n, (ssize_t)strlen(text));
    ck_assert_int_eq(memcmp(buf, text, strlen(text)), 0);
    ck_assert_int_gt(alarms, 0);
    ck_assert_uint_gt(eintr_returns, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer failed: %d", status);
}
END_TEST

/* The lowest free descriptor number: unchanged when nothing was left open. */
static int next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return fd;
}

START_TEST(procfs_read_keeps_no_descriptor_and_names_the_error)
{
    char buf[256];
    int before = next_fd();

    for (int i = 0; i < 100; i++)
        ck_assert_int_gt(rssprobe_procfs_read("/proc/self/statm", buf, sizeof buf), 0);
    errno = 0;
    ck_assert_int_eq(rssprobe_procfs_read("/proc/self/no-such-file", buf, sizeof buf), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* A directory opens but cannot be read. */
    ck_assert_int_eq(rssprobe_procfs_read("/proc/self", buf, sizeof buf), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_int_eq(next_fd(), before);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Live readers */

START_TEST(read_rss_uses_smaps_rollup_when_present)
{
    struct rssprobe_rss r;
    ck_assert_int_eq(rssprobe_read_rss(&r), 0);
    ck_assert_int_gt(r.rss_kb, 0);
    if (access("/proc/self/smaps_rollup", R_OK) == 0) {
        ck_assert_int_eq(r.source, RSSPROBE_RSS_SMAPS_ROLLUP);
        ck_assert_int_ge(r.anon_kb, 0);
        ck_assert_int_le(r.anon_kb, r.rss_kb);
        ck_assert_int_ge(r.anon_huge_kb, 0);
        ck_assert_int_le(r.anon_huge_kb, r.anon_kb);
    } else {
        ck_assert_int_eq(r.source, RSSPROBE_RSS_STATM);
    }
}
END_TEST

START_TEST(read_statm_is_this_process)
{
    struct rssprobe_statm m;
    uint64_t bytes;
    ck_assert_int_eq(rssprobe_read_statm(&m), 0);
    ck_assert_int_gt(m.resident, 0);
    ck_assert_int_ge(m.size, m.resident);
    ck_assert_int_ge(m.shared, 0);
    ck_assert_int_le(m.shared, m.resident);
    ck_assert_int_eq(rssprobe_pages_to_bytes(m.resident, page_size(), &bytes), 0);
    ck_assert_uint_gt(bytes, 0);
}
END_TEST

/* The kernel prints VmRSS as the sum of the three counters it prints after it (Linux >= 4.5), and
 * statm's resident and shared are the same counters in pages: the two files agree, up to what
 * moved between the two reads (a few pages of this test's stack and Check's bookkeeping). */
START_TEST(read_status_splits_vmrss_and_agrees_with_statm)
{
    struct rssprobe_status st;
    struct rssprobe_statm m;
    const long tol_kb = 256;

    ck_assert_int_eq(rssprobe_read_status(&st), 0);
    ck_assert_int_eq(rssprobe_read_statm(&m), 0);
    ck_assert_int_gt(st.vm_rss_kb, 0);
    if (st.rss_anon_kb < 0) { /* before Linux 4.5 */
        ck_assert_int_eq(st.rss_file_kb, -1);
        ck_assert_int_eq(st.rss_shmem_kb, -1);
        return;
    }
    ck_assert_int_ge(st.rss_file_kb, 0);
    ck_assert_int_ge(st.rss_shmem_kb, 0);
    ck_assert_int_eq(st.rss_anon_kb + st.rss_file_kb + st.rss_shmem_kb, st.vm_rss_kb);

    long ps_kb = page_size() / 1024;
    ck_assert_msg(labs(m.resident * ps_kb - st.vm_rss_kb) <= tol_kb,
                  "statm resident %ld kB, status VmRSS %ld kB", m.resident * ps_kb, st.vm_rss_kb);
    ck_assert_msg(labs(m.shared * ps_kb - (st.rss_file_kb + st.rss_shmem_kb)) <= tol_kb,
                  "statm shared %ld kB, status RssFile + RssShmem %ld kB", m.shared * ps_kb,
                  st.rss_file_kb + st.rss_shmem_kb);
}
END_TEST

/* Touching every page of a 64 MiB anonymous mapping must raise RSS by 65536 kB, and unmapping it
 * must bring it back. Tolerance: the mapping itself is exact (every page is written once; with
 * THP the huge pages lie inside the mapping, so they add nothing beyond it). A malloc'd block
 * adds one page: its chunk header makes glibc map 64 MiB + 1 page. What else moves is noise: a
 * few pages of stack, code and Check's bookkeeping faulted in on first use (0 to 8 kB measured
 * here), and, when THP is "always", khugepaged collapsing some other region into a 2 MiB page
 * meanwhile. 256 kB (0.4% of the block) covers the first, 4 MiB the second. */
#define BIG_KB (64L * 1024)

static long rss_tolerance_kb(void)
{
    return strcmp(rssprobe_thp_mode(), "always") == 0 ? 4096 : 256;
}

/* Writes one byte in every page. Not instrumented: under ASan, memset on an (intercepted) mmap
 * region also dirties 1/8 of its size in shadow memory, which is ASan's RSS, not the mapping's. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize_address))
#endif
static void touch_pages(char *p, size_t bytes)
{
    size_t ps = (size_t)page_size();
    for (size_t off = 0; off < bytes; off += ps)
        ((volatile char *)p)[off] = 0x5a;
}

START_TEST(rss_moves_by_a_touched_64mib_mapping)
{
    size_t bytes = (size_t)BIG_KB * 1024;
    long tol = rss_tolerance_kb();

    rss_kb_now(); /* fault in the reader's own code and stack first */
    long before = rss_kb_now();
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    touch_pages(p, bytes);
    long peak = rss_kb_now();
    ck_assert_int_eq(munmap(p, bytes), 0);
    long after = rss_kb_now();

    ck_assert_msg(peak - before >= BIG_KB - tol && peak - before <= BIG_KB + tol,
                  "mapping moved RSS by %ld kB, expected %ld +- %ld", peak - before, BIG_KB, tol);
    ck_assert_msg(labs(after - before) <= tol, "after munmap RSS is %ld kB off the baseline",
                  after - before);
}
END_TEST

#if GLIBC_HEAP_TESTS
/* The same through malloc: 64 MiB is above glibc's mmap threshold (at most 32 MiB on 64-bit even
 * after it adapts), so it is an mmapped chunk that free() unmaps. */
START_TEST(rss_moves_by_a_touched_64mib_malloc)
{
    size_t bytes = (size_t)BIG_KB * 1024;
    long tol = rss_tolerance_kb();
    struct rssprobe_heap h0, h1;

    rss_kb_now();
    long before = rss_kb_now();
    ck_assert_int_eq(rssprobe_read_heap(&h0), 0);
    char *volatile p = malloc(bytes);
    ck_assert_ptr_nonnull(p);
    memset(p, 0x5a, bytes);
    long peak = rss_kb_now();
    ck_assert_int_eq(rssprobe_read_heap(&h1), 0);
    free(p);
    long after = rss_kb_now();

    ck_assert_uint_ge(h1.mmap_bytes - h0.mmap_bytes, bytes);
    ck_assert_msg(peak - before >= BIG_KB - tol && peak - before <= BIG_KB + tol,
                  "malloc moved RSS by %ld kB, expected %ld +- %ld", peak - before, BIG_KB, tol);
    ck_assert_msg(labs(after - before) <= tol, "after free RSS is %ld kB off the baseline",
                  after - before);
}
END_TEST

START_TEST(heap_in_use_grows_by_a_small_malloc)
{
    const size_t n = 1000; /* far below the mmap threshold: a chunk of the main arena */
    struct rssprobe_heap h0, h1;

    ck_assert_int_eq(rssprobe_read_heap(&h0), 0);
    char *volatile p = malloc(n);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(rssprobe_read_heap(&h1), 0);
    free(p);

    ck_assert_int_eq(h1.source, RSSPROBE_HEAP_MALLINFO2);
    ck_assert_uint_ge(h1.in_use_bytes, h0.in_use_bytes + n);
    ck_assert_uint_gt(h1.arena_bytes, 0);
}
END_TEST
#endif

START_TEST(thp_mode_is_the_bracketed_word)
{
    const char *mode = rssprobe_thp_mode();
    char buf[256] = "";
    FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

    if (fp == NULL) {
        ck_assert_str_eq(mode, "unknown");
        return;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *open_br = strchr(buf, '[');
    char *close_br = open_br ? strchr(open_br, ']') : NULL;
    ck_assert_ptr_nonnull(close_br);
    *close_br = '\0';
    ck_assert_str_eq(mode, open_br + 1);
}
END_TEST

START_TEST(sample_fills_measurements_and_defaults)
{
    struct rssprobe_sample a, b;
    ck_assert_int_eq(rssprobe_sample(&a, "unit", "baseline"), 0);
    usleep(20 * 1000);
    ck_assert_int_eq(rssprobe_sample(&b, "unit", "peak"), 0);

    ck_assert_str_eq(a.case_name, "unit");
    ck_assert_str_eq(b.phase, "peak");
    ck_assert_int_ge(b.t_ms - a.t_ms, 20);
    ck_assert_int_gt(a.rss.rss_kb, 0);
    ck_assert_int_ne(a.rss.source, RSSPROBE_RSS_NONE);
    ck_assert_int_eq(a.floor_kb, -1);
    ck_assert_int_eq(a.work_us, -1);
    ck_assert_uint_eq(a.live_objects, 0);
    ck_assert_uint_eq(a.live_bytes, 0);
#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 33)
    ck_assert_int_eq(a.heap.source, RSSPROBE_HEAP_MALLINFO2);
#endif
#endif
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Page floor: exact counts for chosen layouts. An object at ptr of size n occupies
 * [ptr - RSSPROBE_CHUNK_HEADER, ptr + n). */

START_TEST(floor_of_nothing_is_zero)
{
    struct rssprobe_floor f;
    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), 0);
    ck_assert_int_eq(rssprobe_floor_kb(&f), 0);
    ck_assert_uint_eq(f.objects, 0);
    ck_assert_uint_eq(f.bytes, 0);
    rssprobe_floor_release(&f);
    ck_assert_ptr_null(f.pages);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), 0); /* released floors read as empty */
}
END_TEST

START_TEST(floor_object_inside_one_page_is_one_page)
{
    size_t ps = (size_t)page_size();
    ck_assert_uint_eq(pages_of_one(ps + RSSPROBE_CHUNK_HEADER, 32), 1);
    /* Ends exactly at the page end: [2ps - 48, 2ps) is one page (the end is exclusive). */
    ck_assert_uint_eq(pages_of_one(2 * ps - 32, 32), 1);
    /* Size 0 still pins its header. */
    ck_assert_uint_eq(pages_of_one(ps + RSSPROBE_CHUNK_HEADER, 0), 1);
}
END_TEST

START_TEST(floor_chunk_header_reaches_into_previous_page)
{
    size_t ps = (size_t)page_size();
    /* ptr one byte short of a full header past the page start: the header's first byte is the
     * last byte of the previous page. */
    ck_assert_uint_eq(pages_of_one(ps + RSSPROBE_CHUNK_HEADER - 1, 8), 2);
    ck_assert_uint_eq(pages_of_one(ps + 8, 8), 2);
    ck_assert_uint_eq(pages_of_one(ps, 8), 2);
}
END_TEST

START_TEST(floor_object_straddling_a_boundary_is_two_pages)
{
    size_t ps = (size_t)page_size();
    ck_assert_uint_eq(pages_of_one(2 * ps - 32, 33), 2); /* one byte over */
    ck_assert_uint_eq(pages_of_one(2 * ps - 8, 16), 2);
    /* Exactly three pages: [ps, 4ps). One byte more is four. */
    ck_assert_uint_eq(pages_of_one(ps + RSSPROBE_CHUNK_HEADER, 3 * ps - RSSPROBE_CHUNK_HEADER), 3);
    ck_assert_uint_eq(pages_of_one(ps + RSSPROBE_CHUNK_HEADER, 3 * ps - RSSPROBE_CHUNK_HEADER + 1),
                      4);
}
END_TEST

START_TEST(floor_counts_shared_pages_and_duplicates_once)
{
    size_t ps = (size_t)page_size();
    char *base = reserve_pages(8);
    struct rssprobe_floor f;

    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    /* Two objects on page 1. */
    ck_assert_int_eq(rssprobe_floor_add(&f, base + ps + 64, 100), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, base + ps + 512, 100), 0);
    /* One on page 5, added three times, out of order with the next. */
    ck_assert_int_eq(rssprobe_floor_add(&f, base + 5 * ps + 64, 10), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, base + 5 * ps + 64, 10), 0);
    /* One straddling pages 2 and 3. */
    ck_assert_int_eq(rssprobe_floor_add(&f, base + 3 * ps - 16, 64), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, base + 5 * ps + 64, 10), 0);

    ck_assert_uint_eq(f.objects, 6);
    ck_assert_uint_eq(f.bytes, 100 + 100 + 10 + 10 + 64 + 10);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), 4); /* pages 1, 2, 3, 5 */
    ck_assert_int_eq(rssprobe_floor_kb(&f), 4 * (long)ps / 1024);
    /* Sorted and unique afterwards; page numbers are address / page size. */
    uintptr_t first = (uintptr_t)base / ps;
    ck_assert_uint_eq(f.pages[0], first + 1);
    ck_assert_uint_eq(f.pages[1], first + 2);
    ck_assert_uint_eq(f.pages[2], first + 3);
    ck_assert_uint_eq(f.pages[3], first + 5);
    /* Asking twice gives the same answer. */
    ck_assert_uint_eq(rssprobe_floor_pages(&f), 4);

    rssprobe_floor_release(&f);
    munmap(base, 8 * ps);
}
END_TEST

START_TEST(floor_rejects_null_and_stays_as_it_was)
{
    size_t ps = (size_t)page_size();
    char *base = reserve_pages(2);
    struct rssprobe_floor f;

    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, base + ps + 64, 8), 0);
    ck_assert_int_eq(rssprobe_floor_add(&f, NULL, 8), -1);
    ck_assert_uint_eq(f.objects, 1);
    ck_assert_uint_eq(f.bytes, 8);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), 1);
    rssprobe_floor_release(&f);
    munmap(base, 2 * ps);
}
END_TEST

/* 1,000,000 objects on distinct pages (every other page, visited in a scrambled order, each added
 * twice) must grow the mmap'd array far past its initial capacity and still count exactly. The
 * addresses are made up: the floor never dereferences them, and 8 GB of address space is more
 * than a reservation should cost under valgrind. */
START_TEST(floor_grows_past_initial_capacity_and_stays_exact)
{
    const size_t n = 1000000;
    uintptr_t ps = (uintptr_t)page_size();
    uintptr_t base = ps * ((uintptr_t)1 << 24); /* 64 GiB with 4 KiB pages */
    struct rssprobe_floor f;

    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    size_t initial_cap = f.cap;
    ck_assert_uint_gt(initial_cap, 0);
    ck_assert_uint_lt(initial_cap, n);
    /* Check's assertions record their location on every call: count failures in the loops and
     * assert once. */
    size_t failed = 0;
    for (size_t k = 0; k < 2 * n; k++) {
        size_t i = (k * 7919) % n; /* 7919 is prime and coprime with 10^6: a permutation */
        failed += rssprobe_floor_add(&f, (const void *)(base + 2 * i * ps + 64), 32) != 0;
    }
    ck_assert_uint_eq(failed, 0);
    ck_assert_uint_gt(f.cap, initial_cap);
    ck_assert_uint_eq(f.objects, 2 * n);
    ck_assert_uint_eq(f.bytes, 2 * n * 32);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), n);
    ck_assert_int_eq(rssprobe_floor_kb(&f), (long)(n * ps / 1024));
    size_t bad_steps = 0;
    for (size_t i = 1; i < n; i++)
        bad_steps += f.pages[i] - f.pages[i - 1] != 2;
    ck_assert_uint_eq(bad_steps, 0);
    ck_assert_uint_eq(f.pages[0], base / ps);
    rssprobe_floor_release(&f);
}
END_TEST

/* 1,000,000 contiguous 32-byte objects (48-byte chunks, like a malloc'd list) cover
 * [base, base + 48e6) exactly. */
START_TEST(floor_of_a_million_contiguous_chunks_is_exact)
{
    const size_t n = 1000000, chunk = 32 + RSSPROBE_CHUNK_HEADER;
    size_t ps = (size_t)page_size();
    size_t span = n * chunk;
    size_t reserve = (span + ps - 1) / ps;
    char *base = reserve_pages(reserve);
    struct rssprobe_floor f;

    ck_assert_int_eq(rssprobe_floor_init(&f), 0);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += rssprobe_floor_add(&f, base + i * chunk + RSSPROBE_CHUNK_HEADER, 32) != 0;
    ck_assert_uint_eq(failed, 0);
    ck_assert_uint_eq(f.objects, n);
    ck_assert_uint_eq(rssprobe_floor_pages(&f), reserve);
    rssprobe_floor_release(&f);
    munmap(base, reserve * ps);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * JSON */

static struct rssprobe_sample known_sample(void)
{
    struct rssprobe_sample s;
    memset(&s, 0, sizeof s);
    s.case_name = "seed_std_list";
    s.phase = "after_free";
    s.t_ms = 123456;
    s.work_us = 75;
    s.rss.rss_kb = 2728;
    s.rss.anon_kb = 640;
    s.rss.anon_huge_kb = 0;
    s.rss.source = RSSPROBE_RSS_SMAPS_ROLLUP;
    s.heap.arena_bytes = 135168;
    s.heap.mmap_bytes = 67112960;
    s.heap.in_use_bytes = 4096000;
    s.heap.free_bytes = 32;
    s.heap.releasable_bytes = 16;
    s.heap.source = RSSPROBE_HEAP_MALLINFO2;
    s.floor_kb = 40;
    s.live_objects = 10000;
    s.live_bytes = 320000;
    return s;
}

/* The keys of a flat-or-nested JSON object in order of appearance: every string followed by a
 * ':'. Good enough for rssprobe's output, whose string values never contain ':'. */
static size_t json_keys(const char *json, char keys[][32], size_t max)
{
    size_t n = 0;
    const char *p = json;
    while ((p = strchr(p, '"')) != NULL) {
        const char *q = strchr(p + 1, '"');
        if (q == NULL)
            break;
        if (q[1] == ':' && n < max) {
            size_t len = (size_t)(q - p - 1);
            ck_assert_uint_lt(len, 32);
            memcpy(keys[n], p + 1, len);
            keys[n][len] = '\0';
            n++;
        }
        p = q + 1;
    }
    return n;
}

START_TEST(json_has_exactly_the_contract_keys)
{
    static const char *const want[] = {
        "rssprobe", "case", "phase", "t_ms", "work_us", "rss_kb", "rss_source", "anon_kb", "anon_huge_kb",
        "thp", "heap", "source", "arena_bytes", "mmap_bytes", "in_use_bytes", "free_bytes",
        "releasable_bytes", "floor_kb", "live_objects", "live_bytes", "pid",
    };
    struct rssprobe_sample s = known_sample();
    char buf[RSSPROBE_JSON_MAX], keys[40][32];

    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);
    size_t n = json_keys(buf, keys, 40);
    ck_assert_uint_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(keys[i], want[i]);
}
END_TEST

START_TEST(json_is_one_line_with_the_sample_values)
{
    struct rssprobe_sample s = known_sample();
    char buf[RSSPROBE_JSON_MAX], thp[32];
    long pid = 0;

    int n = rssprobe_format_json(&s, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(strlen(buf), (size_t)n);
    ck_assert_ptr_null(strchr(buf, '\n'));
    ck_assert_int_eq(buf[0], '{');
    ck_assert_int_eq(buf[n - 1], '}');

    ck_assert_ptr_nonnull(strstr(buf, "{\"rssprobe\":1,\"case\":\"seed_std_list\","
                                      "\"phase\":\"after_free\",\"t_ms\":123456,\"work_us\":75,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"rss_kb\":2728,\"rss_source\":\"smaps_rollup\","
                                      "\"anon_kb\":640,\"anon_huge_kb\":0,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"heap\":{\"source\":\"mallinfo2\",\"arena_bytes\":135168,"
                                      "\"mmap_bytes\":67112960,\"in_use_bytes\":4096000,"
                                      "\"free_bytes\":32,\"releasable_bytes\":16},"));
    ck_assert_ptr_nonnull(
        strstr(buf, "\"floor_kb\":40,\"live_objects\":10000,\"live_bytes\":320000,"));

    const char *t = strstr(buf, "\"thp\":\"");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sscanf(t, "\"thp\":\"%31[a-z]\"", thp), 1);
    ck_assert_str_eq(thp, rssprobe_thp_mode());
    const char *p = strstr(buf, "\"pid\":");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sscanf(p, "\"pid\":%ld}", &pid), 1);
    ck_assert_int_eq(pid, (long)getpid());
}
END_TEST

START_TEST(json_names_the_sources_and_negative_figures)
{
    struct rssprobe_sample s = known_sample();
    char buf[RSSPROBE_JSON_MAX];

    s.rss.source = RSSPROBE_RSS_STATM;
    s.rss.anon_kb = -1;
    s.rss.anon_huge_kb = -1;
    s.heap.source = RSSPROBE_HEAP_MALLINFO;
    s.floor_kb = -1;
    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"rss_source\":\"statm\",\"anon_kb\":-1,\"anon_huge_kb\":-1,"));
    ck_assert_ptr_nonnull(strstr(buf, "\"heap\":{\"source\":\"mallinfo\","));
    ck_assert_ptr_nonnull(strstr(buf, "\"floor_kb\":-1,"));

    s.rss.source = RSSPROBE_RSS_NONE;
    s.heap.source = RSSPROBE_HEAP_NONE;
    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"rss_source\":\"none\","));
    ck_assert_ptr_nonnull(strstr(buf, "\"heap\":{\"source\":\"none\","));
}
END_TEST

START_TEST(json_escapes_strings)
{
    struct rssprobe_sample s = known_sample();
    char buf[RSSPROBE_JSON_MAX];

    s.case_name = "a\"b\\c\nd\x01";
    s.phase = NULL;
    ck_assert_int_gt(rssprobe_format_json(&s, buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"case\":\"a\\\"b\\\\c\\nd\\u0001\",\"phase\":null,"));
    ck_assert_ptr_null(strchr(buf, '\n'));
}
END_TEST

START_TEST(json_too_small_buffer_is_minus_one)
{
    struct rssprobe_sample s = known_sample();
    char full[RSSPROBE_JSON_MAX], buf[RSSPROBE_JSON_MAX];

    int n = rssprobe_format_json(&s, full, sizeof full);
    ck_assert_int_gt(n, 0);
    /* Every length up to n (no room for the NUL) fails; n + 1 fits exactly. */
    for (size_t len = 0; len <= (size_t)n; len++)
        ck_assert_int_eq(rssprobe_format_json(&s, buf, len), -1);
    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(rssprobe_format_json(&s, buf, (size_t)n + 1), n);
    ck_assert_str_eq(buf, full);
}
END_TEST

/* What rssprobe_env_long writes on stderr while it reads name=value (NUL-terminated in err). */
static long env_long_with_stderr(const char *value, long min, long max, long dflt, char *err, size_t cap)
{
    int fds[2], saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    close(fds[1]);
    if (value)
        setenv("RSSPROBE_TEST_ENV", value, 1);
    else
        unsetenv("RSSPROBE_TEST_ENV");
    long n = rssprobe_env_long("RSSPROBE_TEST_ENV", min, max, dflt);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t len = read(fds[0], err, cap - 1);
    close(fds[0]);
    err[len > 0 ? len : 0] = '\0';
    return n;
}

START_TEST(env_long_reads_a_number_in_range_quietly)
{
    char err[512];
    ck_assert_int_eq(env_long_with_stderr("250", 1, 60000, 100, err, sizeof err), 250);
    ck_assert_str_eq(err, "");
    /* unset and empty: not run by the runner, nothing to say */
    ck_assert_int_eq(env_long_with_stderr(NULL, 1, 60000, 100, err, sizeof err), 100);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(env_long_with_stderr("", 1, 60000, 100, err, sizeof err), 100);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(env_long_names_junk_and_out_of_range_values)
{
    static const char *const bad[] = {"12x", "0", "60001", "-5", " 7", "+7", "-", "99999999999999999999"};
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(env_long_with_stderr(bad[i], 1, 60000, 100, err, sizeof err), 100);
        ck_assert_msg(strstr(err, "RSSPROBE_TEST_ENV=") && strstr(err, bad[i]) &&
                          strstr(err, "1..60000"), "for %s: %s", bad[i], err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "one line: %s", err);
    }
    /* a long value is cut, the line stays one line */
    char longv[300];
    memset(longv, '9', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    ck_assert_int_eq(env_long_with_stderr(longv, 1, 60000, 100, err, sizeof err), 100);
    ck_assert_ptr_nonnull(strstr(err, "..."));
    ck_assert_uint_lt(strlen(err), 120);
}
END_TEST

START_TEST(emit_writes_one_line_to_a_pipe)
{
    struct rssprobe_sample s = known_sample();
    char want[RSSPROBE_JSON_MAX], got[2 * RSSPROBE_JSON_MAX];
    int fds[2];

    int n = rssprobe_format_json(&s, want, sizeof want);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(rssprobe_emit(fds[1], &s), 0);
    ck_assert_int_eq(rssprobe_emit(fds[1], &s), 0);
    close(fds[1]);

    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], got + len, sizeof got - 1 - len)) > 0)
        len += (size_t)r;
    close(fds[0]);
    got[len] = '\0';

    ck_assert_uint_eq(len, 2 * ((size_t)n + 1));
    ck_assert_int_eq(got[n], '\n');
    ck_assert_int_eq(got[2 * n + 1], '\n');
    got[n] = '\0';
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(emit_fails_without_writing_when_it_cannot)
{
    struct rssprobe_sample s = known_sample();
    char longname[RSSPROBE_JSON_MAX + 16];
    int fds[2];

    /* Writing to the read end of a pipe fails with EBADF. */
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(rssprobe_emit(fds[0], &s), -1);
    ck_assert_int_eq(errno, EBADF);

    /* A case name that cannot fit one line: -1 and not a byte written. */
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    s.case_name = longname;
    ck_assert_int_eq(rssprobe_emit(fds[1], &s), -1);
    close(fds[1]);
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 0);
    close(fds[0]);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * No heap allocation */

#if HAVE_ALLOC_COUNTER || GLIBC_HEAP_TESTS
/* Every rssprobe entry point, rounds times. */
static void exercise_probe(int null_fd, int rounds)
{
    static char region[3 * 4096];
    for (int i = 0; i < rounds; i++) {
        struct rssprobe_rss r;
        struct rssprobe_statm m;
        struct rssprobe_status st;
        struct rssprobe_heap h;
        struct rssprobe_floor f;
        struct rssprobe_sample s;
        char buf[RSSPROBE_JSON_MAX];

        rssprobe_read_rss(&r);
        rssprobe_read_statm(&m);
        rssprobe_read_status(&st);
        rssprobe_read_heap(&h);
        (void)rssprobe_thp_mode();
        if (rssprobe_floor_init(&f) == 0) {
            rssprobe_floor_add(&f, region + 64, 100);
            rssprobe_floor_add(&f, region + 4096 + 8, 5000);
            (void)rssprobe_floor_kb(&f);
            rssprobe_floor_release(&f);
        }
        rssprobe_sample(&s, "noalloc", "loop");
        s.floor_kb = 12;
        rssprobe_format_json(&s, buf, sizeof buf);
        rssprobe_emit(null_fd, &s);
    }
}
#endif

#if HAVE_ALLOC_COUNTER
START_TEST(probe_never_calls_malloc)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(null_fd, 0);

    /* The counter must see glibc's own allocations, or this test could not fail. */
    counting = 1;
    alloc_calls = 0;
    FILE *fp = fopen("/dev/null", "r");
    if (fp != NULL)
        fclose(fp);
    counting = 0;
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_gt(alloc_calls, 0);

    alloc_calls = 0;
    counting = 1;
    exercise_probe(null_fd, 1000);
    counting = 0;
    ck_assert_uint_eq(alloc_calls, 0);
    close(null_fd);
}
END_TEST
#endif

#if GLIBC_HEAP_TESTS
START_TEST(probe_leaves_mallinfo_unchanged)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(null_fd, 0);

    struct mallinfo2 a = mallinfo2();
    exercise_probe(null_fd, 1000);
    struct mallinfo2 b = mallinfo2();
    close(null_fd);

    ck_assert_uint_eq(b.uordblks, a.uordblks);
    ck_assert_uint_eq(b.arena, a.arena);
    ck_assert_uint_eq(b.hblkhd, a.hblkhd);
    ck_assert_uint_eq(b.fordblks, a.fordblks);
}
END_TEST
#endif

/* ---------------------------------------------------------------------------------------------
 * Suite */

static Suite *rssprobe_suite(void)
{
    Suite *s = suite_create("rssprobe");
    int valgrind = under_valgrind();

    if (valgrind)
        fputs("under valgrind: leaving out the tests of glibc's malloc (heap, malloc RSS, "
              "no-allocation)\n", stderr);
#if UNDER_ASAN
    fputs("under ASan: leaving out the tests of glibc's malloc (heap, malloc RSS, mallinfo2)\n",
          stderr);
#endif

    TCase *tc_parse = tcase_create("parse");
    tcase_add_test(tc_parse, smaps_rollup_realistic_parses_exactly);
    tcase_add_test(tc_parse, smaps_rollup_missing_optional_fields_are_minus_one);
    tcase_add_test(tc_parse, smaps_rollup_truncated_text_parses_what_is_complete);
    tcase_add_test(tc_parse, smaps_rollup_reads_only_len_bytes);
    tcase_add_test(tc_parse, smaps_rollup_malformed_is_minus_one);
    tcase_add_test(tc_parse, statm_parses_resident_pages_to_kb);
    tcase_add_test(tc_parse, statm_malformed_is_minus_one);
    tcase_add_test(tc_parse, statm_pages_are_the_first_three_fields);
    tcase_add_test(tc_parse, statm_pages_malformed_is_minus_one);
    tcase_add_test(tc_parse, pages_to_bytes_refuses_what_does_not_fit);
    tcase_add_test(tc_parse, status_realistic_parses_exactly);
    tcase_add_test(tc_parse, status_without_the_split_has_minus_one);
    tcase_add_test(tc_parse, status_first_occurrence_wins);
    tcase_add_test(tc_parse, status_cut_line_is_not_read);
    tcase_add_test(tc_parse, status_malformed_is_minus_one);
    suite_add_tcase(s, tc_parse);

    TCase *tc_read = tcase_create("read");
    tcase_add_test(tc_read, read_fd_retries_eintr_and_reads_on_after_short_reads);
    tcase_add_test(tc_read, read_fd_stops_at_cap);
    tcase_add_test(tc_read, read_fd_fails_with_the_error);
    tcase_add_test(tc_read, read_fd_survives_real_signals_while_blocked);
    tcase_add_test(tc_read, procfs_read_keeps_no_descriptor_and_names_the_error);
    tcase_set_timeout(tc_read, 60);
    suite_add_tcase(s, tc_read);

    TCase *tc_live = tcase_create("live");
    tcase_add_test(tc_live, read_rss_uses_smaps_rollup_when_present);
    tcase_add_test(tc_live, read_statm_is_this_process);
    tcase_add_test(tc_live, read_status_splits_vmrss_and_agrees_with_statm);
    tcase_add_test(tc_live, rss_moves_by_a_touched_64mib_mapping);
#if GLIBC_HEAP_TESTS
    if (!valgrind) {
        tcase_add_test(tc_live, rss_moves_by_a_touched_64mib_malloc);
        tcase_add_test(tc_live, heap_in_use_grows_by_a_small_malloc);
    }
#endif
    tcase_add_test(tc_live, thp_mode_is_the_bracketed_word);
    tcase_add_test(tc_live, sample_fills_measurements_and_defaults);
    tcase_set_timeout(tc_live, 60);
    suite_add_tcase(s, tc_live);

    TCase *tc_floor = tcase_create("floor");
    tcase_add_test(tc_floor, floor_of_nothing_is_zero);
    tcase_add_test(tc_floor, floor_object_inside_one_page_is_one_page);
    tcase_add_test(tc_floor, floor_chunk_header_reaches_into_previous_page);
    tcase_add_test(tc_floor, floor_object_straddling_a_boundary_is_two_pages);
    tcase_add_test(tc_floor, floor_counts_shared_pages_and_duplicates_once);
    tcase_add_test(tc_floor, floor_rejects_null_and_stays_as_it_was);
    tcase_add_test(tc_floor, floor_grows_past_initial_capacity_and_stays_exact);
    tcase_add_test(tc_floor, floor_of_a_million_contiguous_chunks_is_exact);
    tcase_set_timeout(tc_floor, 120); /* the million-object tests, under valgrind */
    suite_add_tcase(s, tc_floor);

    TCase *tc_json = tcase_create("json");
    tcase_add_test(tc_json, json_has_exactly_the_contract_keys);
    tcase_add_test(tc_json, json_is_one_line_with_the_sample_values);
    tcase_add_test(tc_json, json_names_the_sources_and_negative_figures);
    tcase_add_test(tc_json, json_escapes_strings);
    tcase_add_test(tc_json, json_too_small_buffer_is_minus_one);
    tcase_add_test(tc_json, emit_writes_one_line_to_a_pipe);
    tcase_add_test(tc_json, emit_fails_without_writing_when_it_cannot);
    suite_add_tcase(s, tc_json);

    TCase *tc_env = tcase_create("runner_env");
    tcase_add_test(tc_env, env_long_reads_a_number_in_range_quietly);
    tcase_add_test(tc_env, env_long_names_junk_and_out_of_range_values);
    suite_add_tcase(s, tc_env);

    TCase *tc_noalloc = tcase_create("noalloc");
#if HAVE_ALLOC_COUNTER
    if (!valgrind)
        tcase_add_test(tc_noalloc, probe_never_calls_malloc);
#endif
#if GLIBC_HEAP_TESTS
    if (!valgrind)
        tcase_add_test(tc_noalloc, probe_leaves_mallinfo_unchanged);
#endif
    tcase_set_timeout(tc_noalloc, 60);
    suite_add_tcase(s, tc_noalloc);

    return s;
}

int main(void)
{
#if HAVE_ALLOC_COUNTER
    install_alloc_counter();
#endif
    Suite *s = rssprobe_suite();
    SRunner *sr = srunner_create(s);

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
