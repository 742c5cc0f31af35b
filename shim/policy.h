/* trimshim policy: when to look at the heap (a "probe": mallinfo2, which walks the free lists
 * under the arena locks) and when to call malloc_trim. Pure functions of (configuration, state,
 * observation): no clocks, no syscalls, no globals, so the unit tests drive them with synthetic
 * observations. trimshim.c feeds them real observations from its background thread. */
#ifndef TRIMSHIM_POLICY_H
#define TRIMSHIM_POLICY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_NS_PER_MS 1000000ull
#define TS_NS_PER_S 1000000000ull

enum ts_policy_kind {
    TS_POLICY_ADAPTIVE = 0, /* default: trim when the program goes quiet; bounded cost while busy */
    TS_POLICY_INTERVAL,     /* every interval: probe, trim if at least threshold is trimmable */
    TS_POLICY_OFF,          /* no background thread */
};

enum ts_thread_kind {
    TS_THREAD_AUTO = 0, /* default: while the program has one thread, work at its blocking waits
                         * (no thread of ours); a background thread once it starts a second one */
    TS_THREAD_ALWAYS,   /* a background thread from the start, whatever the program does */
};

/* Configuration (from the TRIMSHIM_* environment, see env.h). */
struct ts_config {
    enum ts_policy_kind policy;
    uint64_t interval_ns;  /* adaptive: how often the thread looks; interval: the trim period */
    uint64_t threshold;    /* trimmable bytes (estimated) before a trim is worth it; 0: any look
                            * may trim (interval policy + 0 = the naive periodic trimmer) */
    uint64_t pad;          /* passed to malloc_trim */
    uint32_t budget_ppm;   /* adaptive, busy program: share of wall time trims may take (ppm) */
    uint64_t busy_wait_ns; /* adaptive: how long freed memory waits for quiet before a busy trim */
    int verbose;           /* 0 silent, 1 one line per trim and on start/stand-down, 2 + decisions */
    const char *log_path;  /* NULL: stderr; otherwise a file, appended to */
    uint64_t page_size;    /* bytes per page: turns minor faults into bytes (refault judgement) */
    enum ts_thread_kind thread; /* when the background thread starts */
    const char *stats_path; /* TRIMSHIM_STATS: Prometheus text file template (%p: PID), or NULL */
    int stats_keep;        /* 1: leave the statistics file at exit (default: remove it) */
};

/* Defaults, documented in README.md, section "libtrimshim" (its "Policy" and "Knobs"); the
 * measurements behind them are in policy.c. */
#define TS_DEFAULT_ADAPTIVE_INTERVAL_MS 100u
#define TS_DEFAULT_INTERVAL_INTERVAL_MS 1000u
#define TS_DEFAULT_THRESHOLD (64u * 1024u)
#define TS_DEFAULT_PAD 0u
#define TS_DEFAULT_BUDGET_PPM 20000u /* 2 % */
#define TS_DEFAULT_BUSY_WAIT_MS 10000u

/* Fixed policy constants (not knobs). */
#define TS_QUIET_CPU_PPM 100000u        /* program below 10 % of one core over a window: quiet */
#define TS_QUIET_BUDGET_PPM 100000u     /* quiet program: trims may take 10 % of wall time */
#define TS_PROBE_BUDGET_PPM 10000u      /* probes may take 1 % of wall time */
#define TS_MIN_ACTIVITY_NS 20000ull     /* < 20 us of program CPU since the last look: unchanged */
#define TS_BUSY_PROBE_NS (2ull * TS_NS_PER_S) /* busy program: look at most every 2 s */
/* busy program, looking for a large free: probes may hold the arena lock 0.2 % of wall time,
 * but the gap stays <= 10 s so a busy trim starts within busy_wait + 10 s of the free (unless a
 * probe costs over 100 ms, when the 1 % probe budget spaces them further) */
#define TS_BUSY_PROBE_BUDGET_PPM 2000u
#define TS_BUSY_PROBE_MAX_NS (10ull * TS_NS_PER_S)
#define TS_BUSY_MIN (64ull << 20)       /* busy program: at least 64 MiB newly free to trim */
#define TS_BUSY_USEFUL (16ull << 20)    /* a busy trim returning less than this was futile */
#define TS_MAX_BACKOFF 64u
#define TS_BACKOFF_UNIT_NS TS_NS_PER_S  /* quiet-mode gap per backoff step */
#define TS_MAX_PROBE_BACKOFF 100u       /* idle probes that find nothing: up to 100 intervals */
#define TS_REFAULT_WINDOW_NS (2ull * TS_NS_PER_S) /* returned bytes back this soon: futile */
#define TS_FAULT_RING 32u               /* recent (time, minor faults) samples kept for the window
                                         * before a trim: 32 looks span >= 3.2 s at 100 ms */
#define TS_MAX_SLEEP_FACTOR 5u          /* nothing happening: sleep up to 5 intervals */

void ts_config_defaults(struct ts_config *cfg);

/* One observation of the process, taken by the shim thread after each sleep. */
struct ts_obs {
    uint64_t now_ns;          /* CLOCK_MONOTONIC */
    uint64_t prog_cpu_ns;     /* process CPU time minus the shim thread's own, cumulative */
    uint64_t rss_bytes;       /* resident set size (statm) */
    int heap_valid;           /* the fields below come from a probe done right now */
    uint64_t heap_free_bytes; /* mallinfo2 fordblks: free bytes malloc holds, all arenas */
    uint64_t heap_used_bytes; /* mallinfo2 uordblks + hblkhd: bytes in use (incl. mmapped) */
    uint64_t probe_ns;        /* what that probe cost */
    uint64_t minor_faults;    /* minor page faults of the process so far (getrusage ru_minflt) */
};

enum ts_action {
    TS_SLEEP = 0, /* nothing to do; sleep sleep_ns */
    TS_PROBE,     /* look at the heap (mallinfo2), then call ts_policy_decide again with it */
    TS_TRIM,      /* call malloc_trim now, then ts_policy_trimmed */
};

enum ts_reason {
    TS_R_OFF = 0,         /* policy off */
    TS_R_UNCHANGED,       /* the program did (almost) nothing since the last look */
    TS_R_NOTHING_FREED,   /* probe: nothing newly free since the last trim */
    TS_R_BELOW_THRESHOLD, /* probe: less than the threshold newly free */
    TS_R_WAIT_QUIET,      /* busy program: waiting for it to go quiet (busy_wait not over) */
    TS_R_WAIT_BUSY_MIN,   /* busy program: less than TS_BUSY_MIN newly free, wait for quiet */
    TS_R_WAIT_BUDGET,     /* the last trims' (or probes') cost does not allow one yet */
    TS_R_WAIT_BACKOFF,    /* recent trims were futile: waiting longer */
    TS_R_PROBE,           /* look at the heap */
    TS_R_TRIM_QUIET,      /* trim: the program is quiet and memory was freed */
    TS_R_TRIM_BUSY,       /* trim: the program stayed busy for busy_wait with much freed */
    TS_R_TRIM_INTERVAL,   /* trim: interval policy */
};
const char *ts_reason_name(enum ts_reason r);

struct ts_decision {
    enum ts_action action;
    enum ts_reason reason;
    uint64_t sleep_ns; /* how long to sleep before the next observation */
    uint64_t trimmable; /* after a probe: the estimate of what a trim would return */
};

struct ts_policy_state {
    struct ts_obs prev;        /* previous observation */
    int quiet;                 /* the last window was quiet */
    uint64_t quiet_since_ns;
    /* what the heap looked like right after the last trim (init: at start) */
    uint64_t base_rss_bytes;   /* RSS */
    uint64_t base_used_bytes;  /* heap bytes in use (0 if no probe was made) */
    uint64_t last_trim_end_ns; /* end of the last trim (init: the first observation) */
    uint64_t cost_ewma_ns;     /* learned cost of a trim in this process, 0: not learned yet */
    uint32_t backoff;          /* 1 .. TS_MAX_BACKOFF, doubles after futile trims */
    /* probes */
    uint64_t last_probe_ns;     /* time of the last probe (init: 0, none) */
    uint64_t cpu_at_look_ns;    /* program CPU at the last probe or trim */
    uint64_t probe_cost_ewma_ns;
    uint64_t probe_cost_last_ns;
    uint32_t probe_backoff;     /* 1 .. TS_MAX_PROBE_BACKOFF: idle probes that found nothing */
    int probed;                 /* a probe was made since init */
    uint64_t last_est;          /* what the last probe estimated trimmable */
    /* busy program: newly free memory waiting for quiet */
    int pending;
    uint64_t pending_since_ns;
    uint64_t sleep_ns;         /* current sleep */
    int last_busy;             /* the trim being decided/recorded was a busy trim */
    /* refault watch after a trim: if the program takes the returned bytes back within
     * TS_REFAULT_WINDOW_NS the trim was futile */
    int watching;
    uint64_t watch_until_ns;
    uint64_t watch_rss_after;
    uint64_t watch_returned;
    /* the same watch by minor faults: pages a program takes back fault in one by one, so a trim
     * whose returned pages come back shows as faults in the window after it beyond the rate of
     * the window before it (which new memory of its own, unrelated to the trim, also shows) */
    struct ts_fault_sample { uint64_t now_ns, faults; } fault_ring[TS_FAULT_RING];
    unsigned fault_n, fault_head; /* samples held, next slot */
    uint64_t watch_start_ns;      /* the trim's end: the window after it starts here */
    uint64_t watch_faults_start;  /* faults at that moment */
    uint64_t watch_before_faults; /* faults over watch_before_ns right before the trim */
    uint64_t watch_before_ns;
    /* the last finished watch, for the log and the statistics (refault_seq counts them) */
    uint64_t refault_seq;
    struct ts_refault {
        uint64_t window_ns;       /* the window after the trim */
        uint64_t faults_after;    /* minor faults in it */
        uint64_t faults_expected; /* what the rate before the trim predicts for it */
        uint64_t excess;          /* after - expected, at least 0 */
        int futile;               /* the watch judged the trim futile (RSS or faults) */
        int by_faults;            /* ... because of the faults */
    } last_refault;
    uint64_t refault_faults;      /* sum of the excess over all watches */
    /* counts, for tests and statistics */
    uint64_t trims, futile, productive, probes;
};

/* Starts the state from the first observation (a probe in it, if valid, is the baseline). */
void ts_policy_init(struct ts_policy_state *st, const struct ts_config *cfg,
                    const struct ts_obs *first);

/* Takes one observation and decides. With heap_valid == 0 the answer is SLEEP or PROBE (or, for
 * the interval policy, PROBE); after a PROBE the caller probes, sets heap_valid and calls again
 * with the same observation, and the answer is SLEEP or TRIM. */
struct ts_decision ts_policy_decide(struct ts_policy_state *st, const struct ts_config *cfg,
                                    const struct ts_obs *obs);

/* Records a trim done after a TRIM decision. before: the observation the decision was made on
 * (its time is the trim's start); after: an observation taken right after malloc_trim returned,
 * with a probe (heap_valid) when possible: it becomes the new baseline. The next CPU window
 * starts at after, so a program blocked on the arena lock during the trim is not taken for
 * quiet. Learns the cost and starts the refault watch. */
void ts_policy_trimmed(struct ts_policy_state *st, const struct ts_config *cfg,
                       const struct ts_obs *before, const struct ts_obs *after);

/* The estimate of what a trim would return, from a probe: how much the resident memory that is
 * not in use grew since the last trim, (rss - used) - (base_rss - base_used), at most the free
 * bytes. Frees count (used drops, RSS stays); new live data does not (both grow); freed memory
 * reused and freed again counts (RSS grows back, used does not). */
uint64_t ts_policy_trimmable(const struct ts_policy_state *st, const struct ts_obs *obs);

/* Bytes a trim returned, from RSS (never from malloc_trim's return value). */
static inline uint64_t ts_returned(uint64_t rss_before, uint64_t rss_after)
{
    return rss_before > rss_after ? rss_before - rss_after : 0;
}

#ifdef __cplusplus
}
#endif

#endif
