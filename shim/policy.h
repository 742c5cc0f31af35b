/* trimshim policy: when to call malloc_trim. Pure functions of (configuration, state,
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
    TS_POLICY_INTERVAL,     /* every interval, if at least threshold bytes were freed since */
    TS_POLICY_OFF,          /* no background thread */
};

/* Configuration (from the TRIMSHIM_* environment, see env.h). */
struct ts_config {
    enum ts_policy_kind policy;
    uint64_t interval_ns;  /* adaptive: how often the thread looks; interval: the trim period */
    uint64_t threshold;    /* bytes freed since the last trim before a trim is considered */
    uint64_t pad;          /* passed to malloc_trim */
    uint32_t budget_ppm;   /* adaptive, busy program: share of wall time trims may take (ppm) */
    uint64_t busy_wait_ns; /* adaptive: how long freed memory waits for quiet before a busy trim */
    int verbose;           /* 0 silent, 1 one line per trim and on start/stand-down, 2 + decisions */
    const char *log_path;  /* NULL or "stderr": stderr; otherwise a file, appended to */
};

/* Defaults, documented in README-section.md. Every number here was chosen from measurements on
 * the reference machine; the reasons are in policy.c. */
#define TS_DEFAULT_ADAPTIVE_INTERVAL_MS 100u
#define TS_DEFAULT_INTERVAL_INTERVAL_MS 1000u
#define TS_DEFAULT_THRESHOLD (64u * 1024u)
#define TS_DEFAULT_PAD 0u
#define TS_DEFAULT_BUDGET_PPM 20000u /* 2 % */
#define TS_DEFAULT_BUSY_WAIT_MS 15000u

/* Fixed policy constants (not knobs; see policy.c for the measurements behind them). */
#define TS_QUIET_CPU_PPM 100000u       /* program below 10 % of one core over a window: quiet */
#define TS_QUIET_BUDGET_PPM 100000u    /* quiet program: trims may take 10 % of wall time */
#define TS_BUSY_MIN_FREED (64ull << 20) /* busy program: at least 64 MiB freed before a trim */
#define TS_BUSY_USEFUL (16ull << 20)   /* a busy trim returning less than this was futile */
#define TS_MAX_BACKOFF 64u
#define TS_BACKOFF_UNIT_NS TS_NS_PER_S     /* quiet-mode gap per backoff step */
#define TS_REFAULT_WINDOW_NS (2ull * TS_NS_PER_S) /* a trim's bytes that come back this soon: futile */
#define TS_MAX_SLEEP_FACTOR 5u             /* nothing happening: sleep up to 5 intervals */

void ts_config_defaults(struct ts_config *cfg);

/* One observation of the process, taken by the shim thread after each sleep. Counters are
 * cumulative since the shim started; the policy works on their differences. */
struct ts_obs {
    uint64_t now_ns;           /* CLOCK_MONOTONIC */
    uint64_t prog_cpu_ns;      /* process CPU time minus the shim thread's own */
    uint64_t rss_bytes;        /* resident set size (statm) */
    uint64_t freed_bytes;      /* bytes freed through free(), all sizes (glibc chunk sizes) */
    uint64_t freed_big_bytes;  /* of which in chunks of at least one page */
    uint64_t freed_big_chunks; /* number of such chunks */
};

enum ts_reason {
    TS_R_OFF = 0,          /* policy off */
    TS_R_NOTHING_FREED,    /* nothing freed since the last trim */
    TS_R_BELOW_THRESHOLD,  /* freed less than the threshold since the last trim */
    TS_R_WAIT_QUIET,       /* busy program: waiting for it to go quiet (busy_wait not over) */
    TS_R_WAIT_BUSY_MIN,    /* busy program: less than TS_BUSY_MIN_FREED freed, wait for quiet */
    TS_R_WAIT_BUDGET,      /* the last trims' cost does not allow another one yet */
    TS_R_WAIT_BACKOFF,     /* recent trims were futile: waiting longer */
    TS_R_WAIT_INTERVAL,    /* interval policy: period not over */
    TS_R_TRIM_QUIET,       /* trim: the program is quiet and memory was freed */
    TS_R_TRIM_BUSY,        /* trim: the program stayed busy for busy_wait with much freed */
    TS_R_TRIM_INTERVAL,    /* trim: interval policy */
};
const char *ts_reason_name(enum ts_reason r);

struct ts_decision {
    int trim;              /* 1: call malloc_trim now */
    enum ts_reason reason;
    uint64_t sleep_ns;     /* how long to sleep before the next observation */
};

struct ts_policy_state {
    struct ts_obs prev;        /* previous observation */
    struct ts_obs at_trim;     /* observation the last trim started from (init: the first one) */
    uint64_t last_trim_end_ns; /* end of the last trim (init: the first observation) */
    uint64_t quiet_since_ns;   /* start of the current quiet stretch, 0 while busy */
    uint64_t pending_since_ns; /* when freed memory >= threshold was first seen waiting, 0: none */
    uint64_t cost_ewma_ns;     /* learned cost of a trim in this process, 0: not learned yet */
    uint32_t backoff;          /* 1 .. TS_MAX_BACKOFF, doubles after futile trims */
    uint64_t sleep_ns;         /* current sleep */
    int quiet;                 /* the last window was quiet */
    int pending;               /* pending_since_ns is valid */
    int last_busy;             /* the trim being decided/recorded was a busy trim */
    /* refault watch after a trim: if the program takes the returned bytes back within
     * TS_REFAULT_WINDOW_NS the trim was futile */
    int watching;
    uint64_t watch_until_ns;
    uint64_t watch_rss_after;
    uint64_t watch_returned;
    /* counts, for tests and statistics */
    uint64_t trims, futile, productive;
};

/* Starts the state from the first observation. */
void ts_policy_init(struct ts_policy_state *st, const struct ts_config *cfg, const struct ts_obs *first);

/* Takes one observation and decides. Updates st (prev, quiet stretch, refault watch). */
struct ts_decision ts_policy_decide(struct ts_policy_state *st, const struct ts_config *cfg,
                                    const struct ts_obs *obs);

/* Records a trim done after a decision. before: the observation the decision was made on (its
 * freed counters become the new baseline; its time is the trim's start); after: an observation
 * taken right after malloc_trim returned (its time is the trim's end, and the next CPU window
 * starts there, so a program blocked on the arena lock during the trim is not taken for quiet).
 * Learns the cost and starts the refault watch. */
void ts_policy_trimmed(struct ts_policy_state *st, const struct ts_config *cfg,
                       const struct ts_obs *before, const struct ts_obs *after);

/* Bytes a trim returned, from RSS (never from malloc_trim's return value). */
static inline uint64_t ts_returned(uint64_t rss_before, uint64_t rss_after)
{
    return rss_before > rss_after ? rss_before - rss_after : 0;
}

#ifdef __cplusplus
}
#endif

#endif
