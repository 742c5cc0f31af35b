/* heapfig: the shim's two heap figures, free bytes and bytes in use, from glibc.
 *
 * mallinfo2 where glibc has it (2.33 on), found with dlsym so the shim loads on any glibc. Before
 * that only mallinfo, whose fields are int: every figure is known modulo 4 GiB, and a heap past
 * 4 GiB would feed the policy a wrapped free figure (4 GiB + 40 kB free reads as 40 kB, and the
 * heap is never trimmed). There the reading is widened by rssprobe_mallinfo: the arenas' size is
 * proved from their mappings, and whatever of it the readings leave unaccounted for is taken as
 * free (nothing in the process tells free from in use then). That errs towards a trim that
 * returns little, which the policy's futility backoff spaces out, never towards a heap left
 * resident for good.
 *
 * Built with TS_HEAPFIG_FORCE_MALLINFO, mallinfo2 is never looked up: a test build of the shim
 * (libtrimshim_mallinfo.so) that runs glibc < 2.33's path on this machine. Nothing here
 * allocates. Not exported. */
#ifndef TRIMSHIM_HEAPFIG_H
#define TRIMSHIM_HEAPFIG_H

#include <stdint.h>

#include "rssprobe_mallinfo.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_HEAPFIG_HIDDEN __attribute__((visibility("hidden")))

enum ts_heapfig_source {
    TS_HEAPFIG_NONE = 0,  /* neither function: no probe possible */
    TS_HEAPFIG_MALLINFO2, /* size_t fields */
    TS_HEAPFIG_MALLINFO,  /* int fields, widened */
};

struct ts_heapfig {
    uint64_t free_bytes; /* free bytes malloc holds, all arenas (fordblks) */
    uint64_t used_bytes; /* bytes in use, mmapped chunks included (uordblks + hblkhd) */
    int wrapped;         /* mallinfo's reading had wrapped: the figures are widened ones */
    int guessed;         /* some 4 GiB of them could be free or in use: taken as free */
};

/* glibc's two structures, declared here so that no header version matters. */
struct ts_mallinfo2 {
    size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
struct ts_mallinfo {
    int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
typedef struct ts_mallinfo2 (*ts_mallinfo2_fn)(void);
typedef struct ts_mallinfo (*ts_mallinfo_fn)(void);
/* rssprobe_widen_self, or a stand-in in tests. */
typedef int (*ts_widen_fn)(const struct rssprobe_narrow *n, struct rssprobe_widened *out);
/* The shim's log (a printf-like line writer), or NULL for silence. */
typedef void (*ts_heapfig_log_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Looks the functions up (dlsym RTLD_DEFAULT). log: where the one line about the mallinfo path
 * (at start) and the one about the first wrap go, NULL for none. */
enum ts_heapfig_source ts_heapfig_init(ts_heapfig_log_fn log) TS_HEAPFIG_HIDDEN;

/* Reads the figures. Returns 0, or -1 when glibc offers neither function. */
int ts_heapfig_read(struct ts_heapfig *out) TS_HEAPFIG_HIDDEN;

/* Tests: the functions to use instead of glibc's (any may be NULL; widen NULL: rssprobe's). */
void ts_heapfig_use(ts_mallinfo2_fn mi2, ts_mallinfo_fn mi, ts_widen_fn widen, ts_heapfig_log_fn log) TS_HEAPFIG_HIDDEN;

/* The figures of one mallinfo reading, widened (pure but for what widen reads). */
void ts_heapfig_from_mallinfo(const struct ts_mallinfo *m, ts_widen_fn widen, struct ts_heapfig *out) TS_HEAPFIG_HIDDEN;

#ifdef __cplusplus
}
#endif
#endif
