/* Check tests of the trim policy (policy.c) with synthetic observations: a simulated process
 * whose clock, CPU time, RSS and heap (bytes in use, bytes free) the tests move by hand. */
#include "check_compat.h"
#include <stdint.h>
#include <stdlib.h>

#include "policy.h"

#define MS TS_NS_PER_MS
#define S TS_NS_PER_S
#define MiB (1ull << 20)
#define CHEAP_PROBE (50ull * 1000) /* 50 us: a small heap's mallinfo2 */

struct sim {
    struct ts_config cfg;
    struct ts_policy_state st;
    struct ts_obs o;       /* the process now (heap fields always current) */
    struct ts_decision d;  /* the last final decision */
    uint64_t probe_cost;   /* what a probe costs in this simulated process */
    uint64_t probes, trims, trim_cost_total, probe_cost_total;
};

static void sim_init_cfg(struct sim *s, const struct ts_config *cfg)
{
    struct sim z = {0};
    *s = z;
    s->cfg = *cfg;
    s->o.now_ns = 1000 * S;
    s->o.prog_cpu_ns = 5 * S;
    s->o.rss_bytes = 10 * MiB;
    s->o.heap_used_bytes = 1 * MiB;
    s->o.heap_free_bytes = 0;
    s->probe_cost = CHEAP_PROBE;
    struct ts_obs first = s->o;
    first.heap_valid = 1;
    ts_policy_init(&s->st, &s->cfg, &first);
}

static void sim_init(struct sim *s)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    sim_init_cfg(s, &cfg);
}

/* program actions */
static void alloc_live(struct sim *s, uint64_t n) /* new memory, touched */
{
    s->o.heap_used_bytes += n;
    s->o.rss_bytes += n;
}
static void free_mem(struct sim *s, uint64_t n) /* RSS does not change on free */
{
    s->o.heap_used_bytes -= n;
    s->o.heap_free_bytes += n;
    s->o.prog_cpu_ns += 100000; /* freeing takes a little CPU */
}
static void reuse(struct sim *s, uint64_t n) /* malloc from free lists of returned pages */
{
    s->o.heap_used_bytes += n;
    s->o.heap_free_bytes -= n;
    s->o.rss_bytes += n;
}

/* Advances by dt (0: the policy's sleep) with the program at cpu_pct % of one core, then asks
 * the policy; a PROBE is answered (costing probe_cost) and the final decision returned. */
static struct ts_decision step(struct sim *s, uint64_t dt, unsigned cpu_pct)
{
    if (dt == 0)
        dt = s->st.sleep_ns ? s->st.sleep_ns : s->cfg.interval_ns;
    s->o.now_ns += dt;
    s->o.prog_cpu_ns += dt / 100 * cpu_pct;
    struct ts_obs o = s->o;
    o.heap_valid = 0;
    struct ts_decision d = ts_policy_decide(&s->st, &s->cfg, &o);
    ck_assert_int_ne(d.action, TS_TRIM); /* never without looking at the heap first */
    if (d.action == TS_PROBE) {
        o.heap_valid = 1;
        o.probe_ns = s->probe_cost;
        s->probes++;
        s->probe_cost_total += s->probe_cost;
        d = ts_policy_decide(&s->st, &s->cfg, &o);
        ck_assert_int_ne(d.action, TS_PROBE);
    }
    s->d = d;
    return d;
}

static int trimmed(struct sim *s) { return s->d.action == TS_TRIM; }

/* The trim the decision asked for: costs `cost`, the program is blocked meanwhile (no CPU),
 * RSS drops by `returned`. */
static void trim(struct sim *s, uint64_t cost, uint64_t returned)
{
    struct ts_obs before = s->o;
    before.heap_valid = 0;
    s->o.now_ns += cost;
    s->o.rss_bytes = s->o.rss_bytes > returned ? s->o.rss_bytes - returned : 0;
    struct ts_obs after = s->o;
    after.heap_valid = 1;
    after.probe_ns = s->probe_cost;
    ts_policy_trimmed(&s->st, &s->cfg, &before, &after);
    s->trims++;
    s->trim_cost_total += cost;
}

/* ------------------------------------------------------------------------------------------ */

START_TEST(idle_program_costs_nothing)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 2000; i++) {
        struct ts_decision d = step(&s, 0, 0);
        ck_assert_int_eq(d.action, TS_SLEEP);
        ck_assert_uint_le(d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
        ck_assert_uint_ge(d.sleep_ns, s.cfg.interval_ns);
    }
    ck_assert_uint_eq(s.probes, 0); /* not even a look */
    ck_assert_uint_eq(s.d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
    ck_assert_int_eq(s.d.reason, TS_R_UNCHANGED);
}
END_TEST

START_TEST(busy_without_frees_probes_rarely_never_trims)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 600; i++) { /* 60 s busy, allocating live data */
        alloc_live(&s, 1 * MiB);
        step(&s, 100 * MS, 100);
        ck_assert(!trimmed(&s));
    }
    ck_assert_uint_le(s.probes, 60 * S / TS_BUSY_PROBE_NS + 1);
    ck_assert_uint_ge(s.probes, 60 * S / TS_BUSY_PROBE_NS - 1);
}
END_TEST

START_TEST(seed_trims_soon_after_quiet)
{
    /* the seed report: busy allocating 640 MB, frees it, then sleeps forever */
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 30; i++) {
        alloc_live(&s, 640 * MiB / 30);
        ck_assert(!trimmed(&s));
        step(&s, 0, 100);
    }
    free_mem(&s, 600 * MiB); /* the blocks, not the list nodes */
    step(&s, 0, 100);        /* the window of the free: busy */
    ck_assert(!trimmed(&s));
    step(&s, 0, 0); /* first quiet window */
    ck_assert(trimmed(&s));
    ck_assert_int_eq(s.d.reason, TS_R_TRIM_QUIET);
    ck_assert_uint_ge(s.d.trimmable, 590 * MiB);
    trim(&s, 300 * MS, 600 * MiB);
    uint64_t probes = s.probes;
    for (int i = 0; i < 1000; i++) /* nothing changes: no trim, no probe */
        ck_assert(step(&s, 0, 0).action == TS_SLEEP);
    ck_assert_uint_eq(s.probes, probes);
    ck_assert_uint_eq(s.st.productive, 1);
    ck_assert_uint_eq(s.st.backoff, 1);
}
END_TEST

START_TEST(live_growth_is_not_trimmable)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 10; i++) {
        alloc_live(&s, 50 * MiB);
        step(&s, 0, 100);
    }
    for (int i = 0; i < 100; i++)
        ck_assert(!trimmed(&s) && step(&s, 0, 0).action == TS_SLEEP);
    ck_assert_uint_ge(s.probes, 1);
    ck_assert_uint_eq(s.st.last_est, 0);
}
END_TEST

START_TEST(reused_and_freed_again_is_trimmable)
{
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 200 * MiB);
    step(&s, 0, 100);
    free_mem(&s, 200 * MiB);
    step(&s, 0, 0);
    ck_assert(trimmed(&s));
    trim(&s, 10 * MS, 200 * MiB);
    for (int i = 0; i < 30; i++)
        step(&s, 0, 0);
    reuse(&s, 100 * MiB); /* the pages come back */
    step(&s, 0, 100);
    free_mem(&s, 100 * MiB); /* and are freed again: free bytes as before the reuse */
    step(&s, 0, 100);
    ck_assert(!trimmed(&s));
    step(&s, 0, 0);
    ck_assert(trimmed(&s));
    ck_assert_uint_ge(s.d.trimmable, 100 * MiB);
}
END_TEST

START_TEST(quiet_threshold)
{
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 10 * MiB);
    step(&s, 0, 100);
    free_mem(&s, s.cfg.threshold - 1);
    step(&s, 0, 100);
    for (int i = 0; i < 100; i++)
        ck_assert(step(&s, 0, 0).action == TS_SLEEP);
    free_mem(&s, 1);
    struct ts_decision d;
    int n = 0;
    do { /* within the probe backoff (at most TS_MAX_PROBE_BACKOFF intervals) */
        d = step(&s, 0, 0);
        n++;
    } while (d.action != TS_TRIM && n < 200);
    ck_assert_int_eq(d.action, TS_TRIM);
    ck_assert_uint_le((uint64_t)n, TS_MAX_PROBE_BACKOFF + 1);
}
END_TEST

START_TEST(quiet_boundary_is_ten_percent)
{
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 10 * MiB);
    free_mem(&s, 10 * MiB);
    step(&s, 100 * MS, 100);
    ck_assert(step(&s, 100 * MS, 11).action == TS_SLEEP); /* 11 %: busy */
    step(&s, 100 * MS, 10); /* 10 %: quiet */
    ck_assert(trimmed(&s));
}
END_TEST

/* A server drops a 1.6 GB cache `offset` looks into a busy minute and keeps serving at 100 % CPU,
 * probes costing probe_cost: how long after the free the busy trim starts (asserted to come). */
static uint64_t busy_trim_delay(uint64_t probe_cost, int offset)
{
    struct sim s;
    sim_init(&s);
    s.probe_cost = probe_cost;
    alloc_live(&s, 1700 * MiB);
    for (int i = 0; i < 100 + offset; i++)
        step(&s, 100 * MS, 100);
    free_mem(&s, 1600 * MiB);
    uint64_t t_free = s.o.now_ns, at = 0;
    for (int i = 0; i < 600 && !at; i++)
        if (step(&s, 100 * MS, 100).action == TS_TRIM)
            at = s.o.now_ns;
    ck_assert_uint_ne(at, 0);
    ck_assert_int_eq(s.d.reason, TS_R_TRIM_BUSY);
    ck_assert_uint_ge(at - t_free, s.cfg.busy_wait_ns);
    return at - t_free;
}

START_TEST(busy_never_quiet_trims_within_busy_wait_plus_a_look)
{
    for (int offset = 0; offset < 50; offset += 7) { /* the free at various points between looks */
        uint64_t delay = busy_trim_delay(CHEAP_PROBE, offset);
        ck_assert_uint_le(delay, TS_DEFAULT_BUSY_WAIT_MS * MS + TS_BUSY_PROBE_NS + 200 * MS);
        ck_assert_uint_le(delay, 20 * S); /* leaves 10 s of 30 for the trim itself */
    }
}
END_TEST

START_TEST(busy_does_not_trim_before_busy_wait)
{
    /* bench (b): 8 s busy after the free, then quiet: no busy trim in those 8 s */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 1700 * MiB);
    for (int i = 0; i < 120; i++)
        step(&s, 100 * MS, 100);
    free_mem(&s, 1600 * MiB);
    for (int i = 0; i < 80; i++)
        ck_assert(step(&s, 100 * MS, 100).action != TS_TRIM);
    step(&s, 100 * MS, 0);
    ck_assert(trimmed(&s));
    ck_assert_int_eq(s.d.reason, TS_R_TRIM_QUIET);
}
END_TEST

START_TEST(busy_small_frees_wait_for_quiet)
{
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 100 * MiB);
    for (int i = 0; i < 3000; i++) { /* 5 minutes busy, 20 KiB freed per 100 ms (58 MiB) */
        free_mem(&s, 20 * 1024);
        ck_assert(step(&s, 100 * MS, 100).action != TS_TRIM);
    }
    ck_assert(step(&s, 100 * MS, 0).action == TS_TRIM); /* quiet */
}
END_TEST

START_TEST(busy_budget_after_expensive_trim)
{
    /* the first busy trim costs 5 s (as measured here for 200,000 resident 8 KiB chunks), and
     * the program keeps refaulting: the next busy trim waits at least cost / budget */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 1700 * MiB);
    step(&s, 0, 100);
    free_mem(&s, 1600 * MiB);
    while (step(&s, 100 * MS, 100).action != TS_TRIM)
        ;
    trim(&s, 5 * S, 780 * MiB);
    uint64_t t_end = s.o.now_ns;
    uint64_t next = 0;
    for (int i = 0; i < 100000 && !next; i++) {
        reuse(&s, 1 * MiB);
        free_mem(&s, 1 * MiB);
        if (step(&s, 100 * MS, 100).action == TS_TRIM)
            next = s.o.now_ns;
    }
    ck_assert_uint_ne(next, 0);
    ck_assert_uint_ge(next - t_end, 5 * S * 1000000ull / s.cfg.budget_ppm);
}
END_TEST

START_TEST(busy_share_bounded_over_an_hour)
{
    /* a busy program that frees and refaults a lot all the time; each trim costs 0.3 s and gets
     * nothing back durably: trims take at most the budget (plus one trim) of an hour */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 500 * MiB);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 3600 * S) {
        free_mem(&s, 100 * MiB);
        alloc_live(&s, 100 * MiB); /* churn: new pages come in as old ones go */
        if (step(&s, 100 * MS, 100).action == TS_TRIM) {
            trim(&s, 300 * MS, 80 * MiB);
            s.o.rss_bytes += 80 * MiB; /* taken straight back */
        }
    }
    uint64_t allowed = 3600 * S / 1000000 * s.cfg.budget_ppm + 300 * MS;
    ck_assert_uint_le(s.trim_cost_total, allowed);
    ck_assert_uint_ge(s.trims, 1);
    ck_assert_uint_eq(s.st.backoff, TS_MAX_BACKOFF); /* learned that it is futile */
    ck_assert_uint_le(s.probe_cost_total, 3600 * S / 100);
}
END_TEST

START_TEST(busy_refault_backoff_doubles)
{
    /* 2-thread churn: every busy trim returns 100 MiB that the program takes back at once */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 500 * MiB);
    free_mem(&s, 300 * MiB);
    uint64_t last = 0, prev_gap = 0;
    int gaps = 0;
    for (int i = 0; i < 400000 && gaps < 5; i++) {
        if (step(&s, 100 * MS, 200).action == TS_TRIM) {
            ck_assert_int_eq(s.d.reason, TS_R_TRIM_BUSY);
            trim(&s, 2 * MS, 100 * MiB);
            if (last) {
                uint64_t gap = s.o.now_ns - last;
                if (prev_gap)
                    ck_assert_uint_ge(gap, prev_gap * 2 - 6 * S);
                prev_gap = gap;
                gaps++;
            }
            last = s.o.now_ns;
            step(&s, 100 * MS, 200);
            s.o.rss_bytes += 100 * MiB; /* refault */
        }
    }
    ck_assert_int_eq(gaps, 5);
    ck_assert_uint_ge(s.st.futile, 5);
}
END_TEST

START_TEST(productive_trim_resets_backoff)
{
    struct sim s;
    sim_init(&s);
    s.st.backoff = 8;
    alloc_live(&s, 500 * MiB);
    step(&s, 0, 100);
    free_mem(&s, 500 * MiB);
    int n = 0;
    while (step(&s, 0, 0).action != TS_TRIM)
        ck_assert_int_lt(++n, 1000);
    trim(&s, 10 * MS, 400 * MiB);
    for (int i = 0; i < 30; i++) /* 3 s: past the refault window, RSS stays down */
        step(&s, 100 * MS, 0);
    ck_assert_uint_eq(s.st.backoff, 1);
    ck_assert_uint_eq(s.st.productive, 1);
}
END_TEST

START_TEST(quiet_futile_trims_back_off)
{
    /* an idle program with a heartbeat that frees (and reuses) 100 KiB a second, so each look
     * finds a little trimmable; trims return nothing */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 50 * MiB);
    uint64_t t0 = s.o.now_ns;
    int i = 0;
    while (s.o.now_ns - t0 < 600 * S) {
        if (++i % 10 == 0) {
            alloc_live(&s, 100 * 1024);
            free_mem(&s, 100 * 1024);
        }
        if (step(&s, 100 * MS, 1).action == TS_TRIM)
            trim(&s, 1 * MS, 0);
    }
    ck_assert_uint_le(s.trims, 16); /* backoff 2, 4, ... 64 s, not one per look */
    ck_assert_uint_eq(s.st.backoff, TS_MAX_BACKOFF);
}
END_TEST

START_TEST(quiet_budget_spaces_expensive_trims)
{
    /* learned trim cost 1 s; an idle program keeps freeing 1 MiB a second */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 800 * MiB);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 600 * S) {
        free_mem(&s, 100 * 1024);
        s.o.prog_cpu_ns += 2 * MS;
        if (step(&s, 100 * MS, 0).action == TS_TRIM)
            trim(&s, 1 * S, 1 * MiB);
    }
    ck_assert_uint_le(s.trim_cost_total, 600 * S / 10 + 1 * S);
}
END_TEST

START_TEST(probe_budget_with_expensive_probes)
{
    /* a heap of 1M free chunks: a probe costs 35 ms. A quiet program with a heartbeat that
     * changes nothing trimmable: probes stay within 1 % of the time */
    struct sim s;
    sim_init(&s);
    s.probe_cost = 35 * MS;
    alloc_live(&s, 100 * MiB);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 600 * S) {
        s.o.prog_cpu_ns += 2 * MS;
        ck_assert(step(&s, 100 * MS, 0).action != TS_TRIM);
    }
    ck_assert_uint_le(s.probe_cost_total, 600 * S / 100 + 35 * MS);
}
END_TEST

/* Busy for `secs` with nothing freed; returns the probes' share of the time in ppm. */
static uint64_t busy_probe_share_ppm(struct sim *s, uint64_t secs)
{
    uint64_t t0 = s->o.now_ns, cost0 = s->probe_cost_total;
    while (s->o.now_ns - t0 < secs * S) {
        alloc_live(s, 64 * 1024);
        ck_assert(step(s, 100 * MS, 100).action != TS_TRIM);
    }
    return (s->probe_cost_total - cost0) * 1000000u / (s->o.now_ns - t0);
}

START_TEST(busy_probes_spaced_by_their_cost)
{
    /* bench (b): a probe of the 200,000-chunk heap costs 20 ms and a busy program's malloc
     * waits for it: busy probes come every 10 s (0.2 % of the time), not every 2 s (1 %) */
    struct sim s;
    sim_init(&s);
    s.probe_cost = 20 * MS;
    uint64_t share = busy_probe_share_ppm(&s, 120);
    ck_assert_uint_le(share, TS_BUSY_PROBE_BUDGET_PPM + TS_BUSY_PROBE_BUDGET_PPM / 10);
    ck_assert_uint_le(s.probes, 120 * S / TS_BUSY_PROBE_MAX_NS + 1);
    /* 300 ms probes (several million free chunks): the 1 % probe budget spaces them further */
    sim_init(&s);
    s.probe_cost = 300 * MS;
    ck_assert_uint_le(busy_probe_share_ppm(&s, 600), TS_PROBE_BUDGET_PPM + TS_PROBE_BUDGET_PPM / 10);
}
END_TEST

START_TEST(busy_probe_gap_follows_a_heap_that_became_expensive)
{
    /* cheap probes for a minute, then a large free makes the heap's free lists long: the gap
     * after the first expensive probe is set by that probe's cost, not by the average that
     * still remembers the cheap ones */
    struct sim s;
    sim_init(&s);
    busy_probe_share_ppm(&s, 60);
    s.probe_cost = 20 * MS;
    uint64_t probes = s.probes;
    while (s.probes == probes)
        step(&s, 100 * MS, 100);
    uint64_t first = s.o.now_ns;
    while (s.probes == probes + 1)
        step(&s, 100 * MS, 100);
    ck_assert_uint_ge(s.o.now_ns - first, TS_BUSY_PROBE_MAX_NS);
}
END_TEST

START_TEST(busy_trim_within_twenty_seconds_with_expensive_probes)
{
    /* probes cost 30 ms (the 0.2 % budget alone would space them 15 s apart): the gap stays at
     * 10 s, so the trim starts within busy_wait + 10 s of the free, leaving 10 s of the issue's
     * 30 s for the trim itself */
    for (int offset = 0; offset < 100; offset += 13)
        ck_assert_uint_le(busy_trim_delay(30 * MS, offset), 20 * S + 200 * MS); /* + one look */
}
END_TEST

START_TEST(seen_while_busy_then_quiet_without_activity)
{
    /* a busy-mode look saw the big free; then the program goes quiet having done almost nothing
     * since that look: it must still be trimmed */
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 900 * MiB);
    for (int i = 0; i < 60; i++)
        step(&s, 100 * MS, 100);
    free_mem(&s, 800 * MiB);
    uint64_t probes = s.probes;
    while (s.probes == probes)
        step(&s, 100 * MS, 100);
    ck_assert_uint_ge(s.st.last_est, 700 * MiB);
    int n = 0;
    while (step(&s, 100 * MS, 0).action != TS_TRIM)
        ck_assert_int_lt(++n, 20);
}
END_TEST

START_TEST(blocked_during_trim_is_not_quiet)
{
    struct sim s;
    sim_init(&s);
    alloc_live(&s, 1700 * MiB);
    step(&s, 0, 100);
    free_mem(&s, 1600 * MiB);
    while (step(&s, 100 * MS, 100).action != TS_TRIM)
        ;
    trim(&s, 5 * S, 10 * MiB);
    step(&s, 0, 100);
    ck_assert_int_eq(s.st.quiet, 0);
}
END_TEST

START_TEST(interval_policy)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.policy = TS_POLICY_INTERVAL;
    cfg.interval_ns = 1000 * MS;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    ck_assert(step(&s, 0, 100).action == TS_SLEEP);
    ck_assert_uint_eq(s.d.sleep_ns, 1000 * MS);
    ck_assert_uint_eq(s.probes, 1); /* looks every interval */
    alloc_live(&s, 5 * MiB);
    free_mem(&s, 5 * MiB);
    ck_assert(step(&s, 0, 100).action == TS_TRIM); /* busy or not */
    ck_assert_int_eq(s.d.reason, TS_R_TRIM_INTERVAL);
    trim(&s, 1 * MS, 5 * MiB);
    ck_assert(step(&s, 0, 0).action == TS_SLEEP);
    ck_assert_uint_eq(s.d.sleep_ns, 1000 * MS);
}
END_TEST

START_TEST(interval_threshold_zero_is_naive_timer)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.policy = TS_POLICY_INTERVAL;
    cfg.interval_ns = 100 * MS;
    cfg.threshold = 0;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    for (int i = 0; i < 50; i++) {
        ck_assert(step(&s, 0, i % 3 ? 100 : 0).action == TS_TRIM); /* nothing freed: trims */
        trim(&s, 1 * MS, 0);
    }
}
END_TEST

START_TEST(off_policy)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.policy = TS_POLICY_OFF;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    alloc_live(&s, 100 * MiB);
    free_mem(&s, 100 * MiB);
    for (int i = 0; i < 100; i++) {
        ck_assert(step(&s, 0, i % 2 ? 0 : 100).action == TS_SLEEP);
        ck_assert_int_eq(s.d.reason, TS_R_OFF);
    }
    ck_assert_uint_eq(s.probes, 0);
}
END_TEST

START_TEST(budget_zero_means_one_busy_trim_then_quiet_only)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.budget_ppm = 0;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    alloc_live(&s, 1700 * MiB);
    step(&s, 0, 100);
    free_mem(&s, 1600 * MiB);
    while (step(&s, 100 * MS, 100).action != TS_TRIM) /* cost unknown: after busy_wait */
        ;
    trim(&s, 1 * S, 800 * MiB);
    for (int i = 0; i < 36000; i++) {
        free_mem(&s, 1 * MiB);
        alloc_live(&s, 1 * MiB);
        ck_assert(step(&s, 100 * MS, 100).action != TS_TRIM);
    }
    ck_assert(step(&s, 100 * MS, 0).action == TS_TRIM); /* quiet still trims */
}
END_TEST

START_TEST(estimate)
{
    struct sim s;
    sim_init(&s);
    struct ts_obs o = s.o;
    ck_assert_uint_eq(ts_policy_trimmable(&s.st, &o), 0);
    o.heap_used_bytes -= 512 * 1024; /* freed 512 KiB */
    o.heap_free_bytes += 512 * 1024;
    ck_assert_uint_eq(ts_policy_trimmable(&s.st, &o), 512 * 1024);
    o.heap_free_bytes = 1000; /* never more than what is free */
    ck_assert_uint_eq(ts_policy_trimmable(&s.st, &o), 1000);
    o.heap_free_bytes = 100 * MiB;
    o.rss_bytes = 0; /* RSS below the baseline */
    ck_assert_uint_eq(ts_policy_trimmable(&s.st, &o), 0);
    ck_assert_uint_eq(ts_returned(5, 10), 0);
    ck_assert_uint_eq(ts_returned(10, 5), 5);
}
END_TEST

START_TEST(clock_and_counter_oddities)
{
    struct sim s;
    sim_init(&s);
    /* CPU clock going backwards, time standing still, huge jumps: no crash, sane decisions */
    s.o.prog_cpu_ns = 0;
    ck_assert(step(&s, 1, 0).action != TS_TRIM);
    struct ts_obs o = s.o;
    ck_assert(ts_policy_decide(&s.st, &s.cfg, &o).action != TS_TRIM); /* dt = 0 */
    s.o.prog_cpu_ns = UINT64_MAX / 2;
    s.o.heap_free_bytes = UINT64_MAX;
    s.o.rss_bytes = UINT64_MAX - 5;
    struct ts_decision d = step(&s, UINT64_MAX / 4, 0);
    ck_assert_uint_ge(d.sleep_ns, 1);
    struct ts_obs before = s.o;
    s.o.rss_bytes = UINT64_MAX;
    ts_policy_trimmed(&s.st, &s.cfg, &before, &s.o); /* RSS grew during the trim */
}
END_TEST

START_TEST(random_property)
{
    /* random programs: a trim only after a probe that found >= threshold; probes within budget;
     * sleeps within bounds */
    for (unsigned seed = 1; seed <= 40; seed++) {
        struct sim s;
        sim_init(&s);
        alloc_live(&s, 200 * MiB);
        unsigned x = seed;
        for (int i = 0; i < 5000; i++) {
            x = x * 1103515245u + 12345u;
            unsigned cpu = (x >> 16) % 4 == 0 ? 0 : (x >> 8) % 200;
            unsigned what = (x >> 20) % 8;
            uint64_t n = ((uint64_t)(x >> 4) % 64) * MiB;
            if (what == 0 && n <= s.o.heap_used_bytes)
                free_mem(&s, n);
            else if (what == 1)
                alloc_live(&s, n);
            else if (what == 2 && n <= s.o.heap_free_bytes)
                reuse(&s, n);
            struct ts_decision d = step(&s, 0, cpu);
            if (d.action == TS_TRIM) {
                ck_assert_uint_ge(d.trimmable, s.cfg.threshold);
                uint64_t back = ((x >> 5) % 100) * MiB;
                trim(&s, ((x >> 3) % 1000) * MS, back < s.o.rss_bytes ? back : 0);
            }
            ck_assert_uint_ge(d.sleep_ns, s.cfg.interval_ns);
            ck_assert_uint_le(d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
        }
    }
}
END_TEST

START_TEST(free_at_start_counts)
{
    /* a trimmer started late (a forked child, trimshim_start after a stop) still trims what is
     * free at its start */
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    struct sim s = {0};
    s.cfg = cfg;
    s.o.now_ns = 1000 * S;
    s.o.prog_cpu_ns = 5 * S;
    s.o.rss_bytes = 300 * MiB;
    s.o.heap_used_bytes = 50 * MiB;
    s.o.heap_free_bytes = 200 * MiB;
    s.probe_cost = 50000;
    struct ts_obs first = s.o;
    first.heap_valid = 1;
    ts_policy_init(&s.st, &s.cfg, &first);
    ck_assert(step(&s, 0, 0).action == TS_TRIM);
    ck_assert_uint_eq(s.d.trimmable, 200 * MiB);
}
END_TEST


/* ---- refaults counted as minor faults ---------------------------------------------------- */

/* A quiet program freed 400 MiB; the policy trims it (cost 10 ms, 400 MiB back). Until then it
 * faulted faults_per_s (new memory of its own), for 3 s. */
static void trim_after_steady_faults(struct sim *s, uint64_t faults_per_look)
{
    sim_init(s);
    alloc_live(s, 500 * MiB);
    for (int i = 0; i < 30; i++) { /* 3 s busy, faulting at its own rate */
        s->o.minor_faults += faults_per_look;
        step(s, 100 * MS, 50);
    }
    free_mem(s, 400 * MiB);
    int n = 0;
    while (step(s, 100 * MS, 0).action != TS_TRIM) {
        s->o.minor_faults += faults_per_look;
        ck_assert_int_lt(++n, 100);
    }
    trim(s, 10 * MS, 400 * MiB);
}

START_TEST(refaults_as_minor_faults_make_a_trim_futile)
{
    /* the program takes the pages back one fault each and frees them again before the next
     * look (RSS never rises back: only the faults tell), 60 % of the 102,400 pages returned */
    struct sim s;
    trim_after_steady_faults(&s, 10);
    ck_assert_uint_eq(s.st.backoff, 1);
    for (int i = 0; i < 30; i++) { /* 3 s: the faults in the 2 s window, then none */
        if (i < 20)
            s.o.minor_faults += 102400 * 6 / 10 / 20;
        step(&s, 100 * MS, 5);
    }
    ck_assert_uint_eq(s.st.refault_seq, 1);
    ck_assert_int_eq(s.st.last_refault.by_faults, 1);
    ck_assert_int_eq(s.st.last_refault.futile, 1);
    ck_assert_uint_eq(s.st.backoff, 2);
    ck_assert_uint_eq(s.st.futile, 1);
    /* the window before faulted 10 per 100 ms: ~200 of the after-window's faults expected */
    ck_assert_uint_ge(s.st.last_refault.faults_expected, 150);
    ck_assert_uint_le(s.st.last_refault.faults_expected, 250);
    ck_assert_uint_eq(s.st.refault_faults, s.st.last_refault.excess);
    ck_assert_uint_ge(s.st.last_refault.excess, 102400 / 2);
}
END_TEST

START_TEST(faults_at_the_rate_before_are_not_refaults)
{
    /* a program that faults 5,000 pages a second all along (fresh memory: a growing cache)
     * faults as much after the trim: not the trim's pages */
    struct sim s;
    trim_after_steady_faults(&s, 500);
    for (int i = 0; i < 30; i++) {
        s.o.minor_faults += 500;
        step(&s, 100 * MS, 5);
    }
    ck_assert_uint_eq(s.st.refault_seq, 1);
    ck_assert_int_eq(s.st.last_refault.futile, 0);
    ck_assert_uint_eq(s.st.backoff, 1);
    ck_assert_uint_eq(s.st.productive, 1);
    /* expected within 10 % of the faults seen: the rate is the same */
    ck_assert_uint_le(s.st.last_refault.excess, s.st.last_refault.faults_after / 10);
    ck_assert_uint_ge(s.st.last_refault.faults_after, 9000); /* ~2 s x 5,000/s */
}
END_TEST

START_TEST(a_few_refaults_keep_the_trim)
{
    /* 10 % of the returned pages come back as faults: below half, the trim held */
    struct sim s;
    trim_after_steady_faults(&s, 0);
    for (int i = 0; i < 30; i++) {
        if (i < 20)
            s.o.minor_faults += 102400 / 10 / 20;
        step(&s, 100 * MS, 5);
    }
    ck_assert_uint_eq(s.st.refault_seq, 1);
    ck_assert_int_eq(s.st.last_refault.futile, 0);
    ck_assert_uint_ge(s.st.last_refault.excess, 102400 / 10 - 100);
    ck_assert_uint_eq(s.st.backoff, 1);
}
END_TEST

START_TEST(fault_counter_oddities)
{
    /* a counter that goes back (it cannot, but a bad reading must not blow the estimate up) */
    struct sim s;
    trim_after_steady_faults(&s, 10);
    s.o.minor_faults = 0;
    for (int i = 0; i < 30; i++)
        step(&s, 100 * MS, 5);
    ck_assert_uint_eq(s.st.refault_seq, 1);
    ck_assert_int_eq(s.st.last_refault.by_faults, 0);
    ck_assert_uint_eq(s.st.last_refault.excess, 0);
    /* no sample before the trim at all: nothing expected, nothing divided by zero */
    struct ts_policy_state st;
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    struct ts_obs o = {0};
    o.now_ns = 5 * S;
    ts_policy_init(&st, &cfg, &o);
    struct ts_obs a = o;
    a.now_ns += 10 * MS;
    a.rss_bytes = 0;
    o.rss_bytes = 100 * MiB;
    ts_policy_trimmed(&st, &cfg, &o, &a);
    ck_assert_int_eq(st.watching, 1);
    ck_assert_uint_eq(st.watch_before_ns, 0);
}
END_TEST

START_TEST(reason_names)
{
    for (int r = TS_R_OFF; r <= TS_R_TRIM_INTERVAL; r++)
        ck_assert_str_ne(ts_reason_name((enum ts_reason)r), "?");
    ck_assert_str_eq(ts_reason_name(TS_R_TRIM_QUIET), "quiet");
}
END_TEST

int main(void)
{
    Suite *su = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, idle_program_costs_nothing);
    tcase_add_test(tc, refaults_as_minor_faults_make_a_trim_futile);
    tcase_add_test(tc, faults_at_the_rate_before_are_not_refaults);
    tcase_add_test(tc, a_few_refaults_keep_the_trim);
    tcase_add_test(tc, fault_counter_oddities);
    tcase_add_test(tc, busy_without_frees_probes_rarely_never_trims);
    tcase_add_test(tc, seed_trims_soon_after_quiet);
    tcase_add_test(tc, live_growth_is_not_trimmable);
    tcase_add_test(tc, reused_and_freed_again_is_trimmable);
    tcase_add_test(tc, quiet_threshold);
    tcase_add_test(tc, quiet_boundary_is_ten_percent);
    tcase_add_test(tc, busy_never_quiet_trims_within_busy_wait_plus_a_look);
    tcase_add_test(tc, busy_does_not_trim_before_busy_wait);
    tcase_add_test(tc, busy_small_frees_wait_for_quiet);
    tcase_add_test(tc, busy_budget_after_expensive_trim);
    tcase_add_test(tc, busy_share_bounded_over_an_hour);
    tcase_add_test(tc, busy_refault_backoff_doubles);
    tcase_add_test(tc, productive_trim_resets_backoff);
    tcase_add_test(tc, quiet_futile_trims_back_off);
    tcase_add_test(tc, quiet_budget_spaces_expensive_trims);
    tcase_add_test(tc, probe_budget_with_expensive_probes);
    tcase_add_test(tc, busy_probes_spaced_by_their_cost);
    tcase_add_test(tc, busy_probe_gap_follows_a_heap_that_became_expensive);
    tcase_add_test(tc, busy_trim_within_twenty_seconds_with_expensive_probes);
    tcase_add_test(tc, seen_while_busy_then_quiet_without_activity);
    tcase_add_test(tc, blocked_during_trim_is_not_quiet);
    tcase_add_test(tc, interval_policy);
    tcase_add_test(tc, interval_threshold_zero_is_naive_timer);
    tcase_add_test(tc, off_policy);
    tcase_add_test(tc, budget_zero_means_one_busy_trim_then_quiet_only);
    tcase_add_test(tc, estimate);
    tcase_add_test(tc, clock_and_counter_oddities);
    tcase_add_test(tc, random_property);
    tcase_add_test(tc, free_at_start_counts);
    tcase_add_test(tc, reason_names);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
