/* heapfig: see heapfig.h. Runs on the shim's thread or at the program's waits: no allocation,
 * no lock of its own; its state is set once at start (and by tests). */
#define _GNU_SOURCE
#include "heapfig.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>

static ts_mallinfo2_fn g_mi2;
static ts_mallinfo_fn g_mi;
static ts_widen_fn g_widen = rssprobe_widen_self;
static ts_heapfig_log_fn g_log;
static atomic_int g_wrap_told;

/* "4.0 GiB": the log's unit, integer arithmetic only */
static const char *fmt_size(uint64_t b, char *buf, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    uint64_t whole = b, tenth = 0;
    while (whole >= 1024 && u < 4) {
        tenth = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    snprintf(buf, n, "%llu.%llu %s", (unsigned long long)whole, (unsigned long long)tenth, unit[u]);
    return buf;
}

enum ts_heapfig_source ts_heapfig_init(ts_heapfig_log_fn log)
{
    g_log = log;
#if !defined(TS_HEAPFIG_FORCE_MALLINFO)
    g_mi2 = (ts_mallinfo2_fn)dlsym(RTLD_DEFAULT, "mallinfo2");
#endif
    if (g_mi2 == NULL)
        g_mi = (ts_mallinfo_fn)dlsym(RTLD_DEFAULT, "mallinfo");
    if (g_mi2 != NULL)
        return TS_HEAPFIG_MALLINFO2;
    if (g_mi == NULL)
        return TS_HEAPFIG_NONE;
    if (g_log != NULL)
        g_log("heap figures from mallinfo (int fields; no mallinfo2 before glibc 2.33): past 4 GiB "
              "they are widened from the arenas' mappings");
    return TS_HEAPFIG_MALLINFO;
}

void ts_heapfig_use(ts_mallinfo2_fn mi2, ts_mallinfo_fn mi, ts_widen_fn widen, ts_heapfig_log_fn log)
{
    g_mi2 = mi2;
    g_mi = mi;
    g_widen = widen ? widen : rssprobe_widen_self;
    g_log = log;
    atomic_store(&g_wrap_told, 0);
}

void ts_heapfig_from_mallinfo(const struct ts_mallinfo *m, ts_widen_fn widen, struct ts_heapfig *out)
{
    struct rssprobe_narrow n = {(uint32_t)m->arena, (uint32_t)m->hblkhd, (uint32_t)m->uordblks,
                                (uint32_t)m->fordblks, (uint32_t)m->keepcost};
    struct rssprobe_widened w;
    /* Unreadable maps leave the guesses at the readings themselves: what the shim did before it
     * could widen them. */
    widen(&n, &w);
    out->free_bytes = w.free;
    out->used_bytes = w.in_use + w.mmap;
    out->wrapped = w.wrapped;
    out->guessed = (w.unknown & (RSSPROBE_FIG_FREE | RSSPROBE_FIG_IN_USE)) != 0;
    if (w.wrapped && g_log != NULL && atomic_exchange(&g_wrap_told, 1) == 0) {
        char a[32], r[32], f[32];
        g_log("heap past 4 GiB: mallinfo's int fields wrapped (arenas %s by their mappings, read "
              "as %s); free bytes taken as %s%s",
              fmt_size(w.arena, a, sizeof a), fmt_size(n.arena, r, sizeof r),
              fmt_size(w.free, f, sizeof f),
              out->guessed ? ", at most (free or in use: nothing in the process tells)" : "");
    }
}

int ts_heapfig_read(struct ts_heapfig *out)
{
    if (g_mi2 != NULL) {
        struct ts_mallinfo2 m = g_mi2();
        out->free_bytes = m.fordblks;
        out->used_bytes = (uint64_t)m.uordblks + m.hblkhd;
        out->wrapped = 0;
        out->guessed = 0;
        return 0;
    }
    if (g_mi != NULL) {
        struct ts_mallinfo m = g_mi();
        ts_heapfig_from_mallinfo(&m, g_widen, out);
        return 0;
    }
    return -1;
}
