/* Check tests of the trim policy (policy.c) with synthetic observations: a simulated process
 * whose clock, CPU time, RSS and freed-bytes counter the tests move by hand. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy.h"

#define MS TS_NS_PER_MS
#define S TS_NS_PER_S
#define MiB (1ull << 20)

struct sim {
    struct ts_config cfg;
    struct ts_policy_state st;
    struct ts_obs o;
    struct ts_decision d;
    uint64_t trims;
    uint64_t trim_cost_total;
};

static void sim_init_cfg(struct sim *s, const struct ts_config *cfg)
{
    s->cfg = *cfg;
    struct ts_obs o = {0};
    o.now_ns = 1000 * S;
    o.prog_cpu_ns = 5 * S;
    o.rss_bytes = 100 * MiB;
    s->o = o;
    s->trims = 0;
    s->trim_cost_total = 0;
    ts_policy_init(&s->st, &s->cfg, &s->o);
}

static void sim_init(struct sim *s)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    sim_init_cfg(s, &cfg);
}

/* Advances by the decision's sleep (or dt if nonzero) with the program using cpu_pct % of one
 * core, freeing `freed` bytes during the window; returns the decision. */
static struct ts_decision step(struct sim *s, uint64_t dt, unsigned cpu_pct, uint64_t freed)
{
    if (dt == 0)
        dt = s->st.sleep_ns ? s->st.sleep_ns : s->cfg.interval_ns;
    s->o.now_ns += dt;
    s->o.prog_cpu_ns += dt / 100 * cpu_pct;
    s->o.freed_bytes += freed;
    s->d = ts_policy_decide(&s->st, &s->cfg, &s->o);
    return s->d;
}

/* The trim the decision asked for: costs `cost`, the program is blocked meanwhile (no CPU),
 * RSS drops by `returned`. */
static void trim(struct sim *s, uint64_t cost, uint64_t returned)
{
    struct ts_obs before = s->o;
    s->o.now_ns += cost;
    s->o.rss_bytes = s->o.rss_bytes > returned ? s->o.rss_bytes - returned : 0;
    ts_policy_trimmed(&s->st, &s->cfg, &before, &s->o);
    s->trims++;
    s->trim_cost_total += cost;
}

START_TEST(nothing_freed_never_trims)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 2000; i++) {
        struct ts_decision d = step(&s, 0, (i / 100) % 2 ? 100 : 0, 0);
        ck_assert_int_eq(d.trim, 0);
        ck_assert_int_eq(d.reason, TS_R_NOTHING_FREED);
        ck_assert_uint_le(d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
        ck_assert_uint_ge(d.sleep_ns, s.cfg.interval_ns);
    }
}
END_TEST

START_TEST(idle_sleep_grows_and_snaps_back)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 20; i++)
        step(&s, 0, 0, 0);
    ck_assert_uint_eq(s.d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
    /* a small free (below threshold) wakes it up again */
    step(&s, 0, 0, 100);
    ck_assert_int_eq(s.d.reason, TS_R_BELOW_THRESHOLD);
    ck_assert_uint_eq(s.d.sleep_ns, s.cfg.interval_ns);
}
END_TEST

START_TEST(seed_trims_soon_after_quiet)
{
    /* the seed report: busy allocating 640 MB, frees it, then sleeps forever */
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(step(&s, 0, 100, 0).trim, 0);
    struct ts_decision d = step(&s, 0, 100, 640 * MiB); /* the free, while busy */
    ck_assert_int_eq(d.trim, 0);
    ck_assert_int_eq(d.reason, TS_R_WAIT_QUIET);
    d = step(&s, 0, 0, 0); /* first quiet window */
    ck_assert_int_eq(d.trim, 1);
    ck_assert_int_eq(d.reason, TS_R_TRIM_QUIET);
    trim(&s, 300 * MS, 600 * MiB);
    /* nothing changed since: never again */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(step(&s, 0, 0, 0).trim, 0);
    ck_assert_uint_eq(s.st.productive, 1);
    ck_assert_uint_eq(s.st.backoff, 1);
}
END_TEST

START_TEST(quiet_threshold)
{
    struct sim s;
    sim_init(&s);
    step(&s, 0, 100, s.cfg.threshold - 1);
    for (int i = 0; i < 100; i++) {
        struct ts_decision d = step(&s, 0, 0, 0);
        ck_assert_int_eq(d.trim, 0);
        ck_assert_int_eq(d.reason, TS_R_BELOW_THRESHOLD);
    }
    ck_assert_int_eq(step(&s, 0, 0, 1).trim, 1);

    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.threshold = 0; /* anything at all */
    sim_init_cfg(&s, &cfg);
    ck_assert_int_eq(step(&s, 0, 0, 0).trim, 0);
    ck_assert_int_eq(step(&s, 0, 0, 1).trim, 1);
}
END_TEST

START_TEST(quiet_boundary_is_ten_percent)
{
    struct sim s;
    sim_init(&s);
    step(&s, 100 * MS, 100, 10 * MiB);
    ck_assert_int_eq(step(&s, 100 * MS, 11, 0).trim, 0); /* 11 %: busy */
    ck_assert_int_eq(step(&s, 100 * MS, 10, 0).trim, 1); /* 10 %: quiet */
}
END_TEST

START_TEST(busy_never_quiet_trims_after_busy_wait)
{
    /* a server drops a 1.6 GB cache and keeps serving at 100 % CPU */
    struct sim s;
    sim_init(&s);
    step(&s, 0, 100, 1600 * MiB);
    uint64_t t_free = s.o.now_ns;
    uint64_t trimmed_at = 0;
    for (int i = 0; i < 400 && !trimmed_at; i++) {
        struct ts_decision d = step(&s, 0, 100, 0);
        if (d.trim) {
            ck_assert_int_eq(d.reason, TS_R_TRIM_BUSY);
            trimmed_at = s.o.now_ns;
        } else {
            ck_assert_int_eq(d.reason, TS_R_WAIT_QUIET);
        }
    }
    ck_assert_uint_ne(trimmed_at, 0);
    ck_assert_uint_ge(trimmed_at - t_free, s.cfg.busy_wait_ns - s.cfg.interval_ns);
    ck_assert_uint_le(trimmed_at - t_free, s.cfg.busy_wait_ns + 2 * s.cfg.interval_ns);
    ck_assert_uint_le(trimmed_at - t_free, 30 * S - 6 * S); /* room for a 5 s trim in 30 s */
}
END_TEST

START_TEST(busy_small_frees_wait_for_quiet)
{
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 3000; i++) { /* 5 minutes busy, 20 KiB freed per 100 ms */
        struct ts_decision d = step(&s, 0, 100, 20 * 1024);
        ck_assert_int_eq(d.trim, 0);
    }
    ck_assert_int_eq(s.d.reason, TS_R_WAIT_BUSY_MIN);
    ck_assert_int_eq(step(&s, 0, 0, 0).trim, 1); /* quiet */
}
END_TEST

START_TEST(busy_budget_after_expensive_trim)
{
    /* first busy trim costs 5 s (as measured here for 200,000 resident 8 KiB chunks); the program
     * keeps churning: the next busy trim waits at least cost / budget */
    struct sim s;
    sim_init(&s);
    step(&s, 0, 100, 1600 * MiB);
    while (!step(&s, 0, 100, 1 * MiB).trim)
        ;
    trim(&s, 5 * S, 780 * MiB);
    uint64_t t_end = s.o.now_ns;
    uint64_t next = 0;
    for (int i = 0; i < 100000 && !next; i++)
        if (step(&s, 0, 100, 10 * MiB).trim)
            next = s.o.now_ns;
    ck_assert_uint_ne(next, 0);
    ck_assert_uint_ge(next - t_end, 5 * S * 1000000ull / s.cfg.budget_ppm);
}
END_TEST

START_TEST(busy_share_bounded_over_an_hour)
{
    /* a busy program that frees a lot all the time, each trim costs 0.3 s and gets nothing back
     * durably: trims take at most the budget (plus one trim) of an hour */
    struct sim s;
    sim_init(&s);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 3600 * S) {
        if (step(&s, 0, 100, 50 * MiB).trim) {
            trim(&s, 300 * MS, 30 * MiB);
            s.o.rss_bytes += 30 * MiB; /* taken straight back */
        }
    }
    uint64_t allowed = 3600 * S / 1000000 * s.cfg.budget_ppm + 300 * MS;
    ck_assert_uint_le(s.trim_cost_total, allowed);
    ck_assert_uint_ge(s.trims, 1);
    ck_assert_uint_eq(s.st.backoff, TS_MAX_BACKOFF); /* learned that it is futile */
}
END_TEST

START_TEST(busy_refault_backoff_doubles)
{
    /* 2-thread churn: every busy trim returns 20 MiB that the program takes back at once */
    struct sim s;
    sim_init(&s);
    uint64_t last = 0, prev_gap = 0;
    int gaps = 0;
    for (int i = 0; i < 200000 && gaps < 5; i++) {
        if (step(&s, 0, 200, 100 * MiB).trim) {
            ck_assert_int_eq(s.d.reason, TS_R_TRIM_BUSY);
            trim(&s, 2 * MS, 20 * MiB);
            if (last) {
                uint64_t gap = s.o.now_ns - last;
                if (prev_gap)
                    ck_assert_uint_ge(gap, prev_gap * 2 - S);
                prev_gap = gap;
                gaps++;
            }
            last = s.o.now_ns;
            step(&s, 0, 200, 100 * MiB);
            s.o.rss_bytes += 20 * MiB; /* refault */
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
    step(&s, 0, 100, 500 * MiB);
    struct ts_decision d;
    do {
        d = step(&s, 0, 0, 0);
    } while (!d.trim);
    trim(&s, 10 * MS, 400 * MiB);
    for (int i = 0; i < 30; i++) /* 3 s: past the refault window, RSS stays down */
        step(&s, 100 * MS, 0, 0);
    ck_assert_uint_eq(s.st.backoff, 1);
    ck_assert_uint_eq(s.st.productive, 1);
}
END_TEST

START_TEST(quiet_futile_trims_back_off)
{
    /* an idle program with a heartbeat that frees 100 KiB a second; trims return nothing */
    struct sim s;
    sim_init(&s);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 600 * S) {
        if (step(&s, 100 * MS, 1, 10 * 1024).trim)
            trim(&s, 1 * MS, 0);
    }
    /* backoff 2,4,...,64 s: about 10 trims in 10 minutes, not one per 0.7 s */
    ck_assert_uint_le(s.trims, 16);
    ck_assert_uint_eq(s.st.backoff, TS_MAX_BACKOFF);
}
END_TEST

START_TEST(quiet_budget_spaces_expensive_trims)
{
    /* learned trim cost 1 s; an idle program keeps freeing a bit: trims at most 10 % of time */
    struct sim s;
    sim_init(&s);
    uint64_t t0 = s.o.now_ns;
    while (s.o.now_ns - t0 < 600 * S) {
        if (step(&s, 100 * MS, 0, 1 * MiB).trim) {
            trim(&s, 1 * S, 1 * MiB);
        }
    }
    ck_assert_uint_le(s.trim_cost_total, 600 * S / 10 + 1 * S);
}
END_TEST

START_TEST(blocked_during_trim_is_not_quiet)
{
    /* the program waits for the arena lock during a trim (no CPU); the next window starts at
     * the trim's end, so a busy program stays busy */
    struct sim s;
    sim_init(&s);
    step(&s, 0, 100, 1600 * MiB);
    while (!step(&s, 0, 100, 0).trim)
        ;
    trim(&s, 5 * S, 10 * MiB);
    step(&s, 0, 100, 100 * MiB);
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
    ck_assert_int_eq(step(&s, 0, 100, 0).trim, 0);
    ck_assert_int_eq(s.d.reason, TS_R_NOTHING_FREED);
    ck_assert_uint_eq(s.d.sleep_ns, 1000 * MS);
    ck_assert_int_eq(step(&s, 0, 100, 1 * MiB).trim, 1); /* busy or not */
    ck_assert_int_eq(s.d.reason, TS_R_TRIM_INTERVAL);
    trim(&s, 1 * MS, 1 * MiB);
    ck_assert_int_eq(step(&s, 0, 0, 0).trim, 0);
    ck_assert_uint_eq(s.d.sleep_ns, 1000 * MS);
}
END_TEST

START_TEST(off_policy)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.policy = TS_POLICY_OFF;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(step(&s, 0, i % 2 ? 0 : 100, 100 * MiB).trim, 0);
        ck_assert_int_eq(s.d.reason, TS_R_OFF);
    }
}
END_TEST

START_TEST(budget_zero_means_no_busy_trims_after_learning)
{
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    cfg.budget_ppm = 0;
    struct sim s;
    sim_init_cfg(&s, &cfg);
    step(&s, 0, 100, 1600 * MiB);
    while (!step(&s, 0, 100, 0).trim) /* the first one: cost unknown, after busy_wait */
        ;
    trim(&s, 1 * S, 800 * MiB);
    for (int i = 0; i < 36000; i++)
        ck_assert_int_eq(step(&s, 0, 100, 100 * MiB).trim, 0);
    ck_assert_int_eq(step(&s, 0, 0, 0).trim, 1); /* quiet still trims */
}
END_TEST

START_TEST(clock_and_counter_oddities)
{
    struct sim s;
    sim_init(&s);
    /* CPU clock going backwards, time standing still, huge jumps: no crash, sane decisions */
    s.o.prog_cpu_ns = 0;
    struct ts_decision d = step(&s, 1, 0, 0);
    ck_assert_int_eq(d.trim, 0);
    d = ts_policy_decide(&s.st, &s.cfg, &s.o); /* dt = 0 */
    ck_assert_int_eq(d.trim, 0);
    s.o.freed_bytes = UINT64_MAX - 10;
    s.o.prog_cpu_ns = UINT64_MAX / 2;
    d = step(&s, UINT64_MAX / 4, 0, 0);
    ck_assert_uint_ge(d.sleep_ns, 1);
    struct ts_obs before = s.o;
    s.o.rss_bytes = UINT64_MAX;
    ts_policy_trimmed(&s.st, &s.cfg, &before, &s.o); /* RSS grew during the trim */
    ck_assert_uint_eq(ts_returned(5, 10), 0);
    ck_assert_uint_eq(ts_returned(10, 5), 5);
}
END_TEST

START_TEST(random_property_never_trims_without_frees)
{
    /* random busy/quiet patterns: never a trim unless >= threshold was freed since the last */
    for (unsigned seed = 1; seed <= 50; seed++) {
        struct sim s;
        sim_init(&s);
        unsigned x = seed;
        uint64_t since_trim = 0;
        for (int i = 0; i < 5000; i++) {
            x = x * 1103515245u + 12345u;
            unsigned cpu = (x >> 16) % 4 == 0 ? 0 : (x >> 8) % 200;
            uint64_t freed = (x >> 20) % 8 == 0 ? ((uint64_t)(x >> 4) % 200) * MiB / 8 : 0;
            since_trim += freed;
            struct ts_decision d = step(&s, 0, cpu, freed);
            if (d.trim) {
                ck_assert_uint_ge(since_trim, s.cfg.threshold);
                trim(&s, ((x >> 3) % 1000) * MS, ((x >> 5) % 100) * MiB);
                since_trim = 0;
            }
            ck_assert_uint_ge(d.sleep_ns, s.cfg.interval_ns);
            ck_assert_uint_le(d.sleep_ns, s.cfg.interval_ns * TS_MAX_SLEEP_FACTOR);
        }
    }
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
    tcase_add_test(tc, nothing_freed_never_trims);
    tcase_add_test(tc, idle_sleep_grows_and_snaps_back);
    tcase_add_test(tc, seed_trims_soon_after_quiet);
    tcase_add_test(tc, quiet_threshold);
    tcase_add_test(tc, quiet_boundary_is_ten_percent);
    tcase_add_test(tc, busy_never_quiet_trims_after_busy_wait);
    tcase_add_test(tc, busy_small_frees_wait_for_quiet);
    tcase_add_test(tc, busy_budget_after_expensive_trim);
    tcase_add_test(tc, busy_share_bounded_over_an_hour);
    tcase_add_test(tc, busy_refault_backoff_doubles);
    tcase_add_test(tc, productive_trim_resets_backoff);
    tcase_add_test(tc, quiet_futile_trims_back_off);
    tcase_add_test(tc, quiet_budget_spaces_expensive_trims);
    tcase_add_test(tc, blocked_during_trim_is_not_quiet);
    tcase_add_test(tc, interval_policy);
    tcase_add_test(tc, off_policy);
    tcase_add_test(tc, budget_zero_means_no_busy_trims_after_learning);
    tcase_add_test(tc, clock_and_counter_oddities);
    tcase_add_test(tc, random_property_never_trims_without_frees);
    tcase_add_test(tc, reason_names);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
