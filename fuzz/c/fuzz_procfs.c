/* The /proc text parsers of rssprobe_procfs.c, each fed the input as the file's text (the readers
 * hand them exactly what read(2) returned, in a buffer of that length: no NUL after it).
 * FUZZ_PROCFS_WHICH picks the parser, so each is its own target with its own seeds.
 * Contract: 0 with every figure >= 0 (or the documented -1 for an absent optional field), or -1
 * with every field -1; never a read past the text (ASan), never an overflow (UBSan). */
#include "fuzz_common.h"
#include "rssprobe_procfs.h"

#include <limits.h>
#include <string.h>

#define SMAPS_ROLLUP 1
#define STATM 2
#define STATUS 3

#ifndef FUZZ_PROCFS_WHICH
#error "define FUZZ_PROCFS_WHICH"
#endif

#if FUZZ_PROCFS_WHICH != STATUS
static void check_rss(int rc, const struct rssprobe_rss *r, enum rssprobe_rss_source src)
{
    if (rc == 0) {
        FUZZ_CHECK(r->rss_kb >= 0 && r->source == src, "rc 0 with rss_kb %ld source %d", r->rss_kb,
                   (int)r->source);
        FUZZ_CHECK(r->anon_kb >= -1 && r->anon_huge_kb >= -1, "rc 0 with anon %ld huge %ld",
                   r->anon_kb, r->anon_huge_kb);
    } else {
        FUZZ_CHECK(rc == -1 && r->rss_kb == -1 && r->anon_kb == -1 && r->anon_huge_kb == -1 &&
                       r->source == RSSPROBE_RSS_NONE,
                   "rc %d with rss_kb %ld anon %ld huge %ld source %d", rc, r->rss_kb, r->anon_kb,
                   r->anon_huge_kb, (int)r->source);
    }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
#if FUZZ_PROCFS_WHICH == SMAPS_ROLLUP
    struct rssprobe_rss r;
    memset(&r, 0x5a, sizeof r);
    check_rss(rssprobe_parse_smaps_rollup(text, size, &r), &r, RSSPROBE_RSS_SMAPS_ROLLUP);
#elif FUZZ_PROCFS_WHICH == STATM
    struct rssprobe_statm m;
    memset(&m, 0x5a, sizeof m);
    int rc = rssprobe_parse_statm_pages(text, size, &m);
    if (rc == 0)
        FUZZ_CHECK(m.size >= 0 && m.resident >= 0 && m.shared >= -1, "rc 0 with %ld %ld %ld", m.size,
                   m.resident, m.shared);
    else
        FUZZ_CHECK(rc == -1 && m.size == -1 && m.resident == -1 && m.shared == -1,
                   "rc %d with %ld %ld %ld", rc, m.size, m.resident, m.shared);
    /* the RSS view of the same text, at page sizes that make the product overflow too */
    static const long page_sizes[] = {4096, 65536, 1, LONG_MAX, 0, -4096};
    for (size_t i = 0; i < sizeof page_sizes / sizeof *page_sizes; i++) {
        struct rssprobe_rss r;
        memset(&r, 0x5a, sizeof r);
        int rr = rssprobe_parse_statm(text, size, page_sizes[i], &r);
        check_rss(rr, &r, RSSPROBE_RSS_STATM);
        FUZZ_CHECK(rr != 0 || rc == 0, "statm as RSS took text that statm in pages refused");
    }
#elif FUZZ_PROCFS_WHICH == STATUS
    struct rssprobe_status st;
    memset(&st, 0x5a, sizeof st);
    int rc = rssprobe_parse_status(text, size, &st);
    if (rc == 0)
        FUZZ_CHECK(st.vm_rss_kb >= 0 && st.rss_anon_kb >= -1 && st.rss_file_kb >= -1 &&
                       st.rss_shmem_kb >= -1,
                   "rc 0 with %ld %ld %ld %ld", st.vm_rss_kb, st.rss_anon_kb, st.rss_file_kb,
                   st.rss_shmem_kb);
    else
        FUZZ_CHECK(rc == -1 && st.vm_rss_kb == -1 && st.rss_anon_kb == -1 && st.rss_file_kb == -1 &&
                       st.rss_shmem_kb == -1,
                   "rc %d with %ld %ld %ld %ld", rc, st.vm_rss_kb, st.rss_anon_kb, st.rss_file_kb,
                   st.rss_shmem_kb);
#endif
    return 0;
}
