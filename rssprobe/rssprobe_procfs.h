/* rssprobe_procfs: the one reader of this project's small /proc files (statm, smaps_rollup,
 * status), shared by rssprobe, libtrimshim and the shim bench.
 *
 * No heap: files are read with open/read/close into a buffer the caller owns, never through stdio.
 * rssprobe must not leave a chunk behind in the heap it measures, and the shim's thread must not
 * allocate at all (it runs inside arbitrary programs, next to their malloc). Reads retry on EINTR
 * and loop on short reads; parsers take the text and its length (no NUL needed), so tests can
 * feed them anything, and refuse malformed text and numbers that do not fit a long. */
#ifndef RSSPROBE_PROCFS_H
#define RSSPROBE_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reading ---------------------------------------------------------------------------- */

/* The read(2) the reader calls: a seam for tests, which pass one that fails with EINTR or returns
 * a few bytes at a time. */
typedef ssize_t (*rssprobe_read_fn)(int fd, void *buf, size_t count);

/* Reads fd until end of file or until cap bytes are in buf, retrying when rd fails with EINTR and
 * calling it again after a short read. rd NULL: read(2). Returns the number of bytes read (cap:
 * the file may be longer, the rest is not read), or -1 with errno from rd (EIO when rd claims
 * more bytes than it was asked for). */
ssize_t rssprobe_procfs_read_fd(int fd, char *buf, size_t cap, rssprobe_read_fn rd);

/* open (O_RDONLY | O_CLOEXEC, retried on EINTR), rssprobe_procfs_read_fd, close: no descriptor
 * stays open. Returns what rssprobe_procfs_read_fd returns, or -1 with open's errno. */
ssize_t rssprobe_procfs_read(const char *path, char *buf, size_t cap);

/* ---- smaps_rollup and statm as RSS ------------------------------------------------------ */

enum rssprobe_rss_source {
    RSSPROBE_RSS_NONE = 0,
    RSSPROBE_RSS_SMAPS_ROLLUP,
    RSSPROBE_RSS_STATM,
};

struct rssprobe_rss {
    long rss_kb;       /* resident set size */
    long anon_kb;      /* Anonymous: resident anonymous memory; -1 when the source lacks it */
    long anon_huge_kb; /* AnonHugePages: THP-backed part of anon_kb; -1 when unknown */
    enum rssprobe_rss_source source;
};

/* Return 0 on success, -1 when a required field is missing or not a number (out is then left with
 * rss_kb = -1 and source = RSSPROBE_RSS_NONE).
 * smaps_rollup: Rss is required (a malformed Rss is an error); Anonymous and AnonHugePages are
 * -1 when absent or malformed; the first occurrence of a key wins; a last line without its
 * newline still counts. statm: resident pages x page_size, at least two fields, all numbers. */
int rssprobe_parse_smaps_rollup(const char *text, size_t len, struct rssprobe_rss *out);
int rssprobe_parse_statm(const char *text, size_t len, long page_size, struct rssprobe_rss *out);

/* Reads /proc/self/smaps_rollup, falling back to /proc/self/statm where the kernel has no
 * smaps_rollup (before Linux 4.14). Returns 0, or -1 when neither can be read. smaps_rollup walks
 * every mapping's page tables (2.5 ms per read on the seed case's 660 MB heap, measured here):
 * fine once per phase, too dear for a reader that wakes every 100 ms. */
int rssprobe_read_rss(struct rssprobe_rss *out);

/* ---- statm in pages: counters the kernel keeps (3 us per read on the same heap), what a
 * periodic reader can afford ----------------------------------------------------------------- */

struct rssprobe_statm {
    long size;     /* pages: total program size */
    long resident; /* pages: resident set, RssAnon + RssFile + RssShmem */
    long shared;   /* pages: resident file-backed and shared memory, RssFile + RssShmem; -1 when
                    * the text has only two fields */
};

/* Returns 0, or -1 (every field -1) on malformed text: fewer than two fields, a field that is not
 * a whole number or does not fit a long, anything but blank space after the line. */
int rssprobe_parse_statm_pages(const char *text, size_t len, struct rssprobe_statm *out);

/* /proc/self/statm. Returns 0, or -1 (every field -1) when it cannot be read or parsed. */
int rssprobe_read_statm(struct rssprobe_statm *out);

/* pages x page_size. Returns 0, or -1 (and *bytes = 0) when pages < 0, page_size <= 0 or the
 * product does not fit 64 bits. */
int rssprobe_pages_to_bytes(long pages, long page_size, uint64_t *bytes);

/* ---- /proc/self/status: RSS split into anonymous, file-backed and shared memory (the same
 * counters as statm, 6 us per read on that heap) --------------------------------------------- */

struct rssprobe_status {
    long vm_rss_kb;    /* VmRSS */
    long rss_anon_kb;  /* RssAnon; -1 when absent (Linux before 4.5: fall back to statm) */
    long rss_file_kb;  /* RssFile; -1 when absent */
    long rss_shmem_kb; /* RssShmem; -1 when absent */
};

/* Returns 0, or -1 (every field -1) when VmRSS is missing or any of the four fields is present
 * but malformed ("<blanks><digits><blanks>kB"; kB optional) or does not fit a long. Only lines
 * ended by a newline count: text cut short by a buffer never yields a cut number. The first
 * occurrence of a key wins; keys are case-sensitive. */
int rssprobe_parse_status(const char *text, size_t len, struct rssprobe_status *out);

/* /proc/self/status, through a 4 KiB stack buffer: the memory fields come within its first 1.5
 * KiB unless the process is in hundreds of supplementary groups (then VmRSS is cut off, the
 * parse fails, and statm is the fallback). Returns 0, or -1 (every field -1). */
int rssprobe_read_status(struct rssprobe_status *out);

#ifdef __cplusplus
}
#endif
#endif
