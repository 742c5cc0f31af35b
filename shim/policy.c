/* trimshim policy. Pure: everything it knows comes in through ts_obs.
 *
 * Facts measured on the reference machine (Debian 12, glibc 2.36, a 2-vCPU VM shared with other
 * jobs) behind the constants in policy.h:
 *  - malloc_trim(0) walks every free chunk of every arena under the arena lock and madvises each
 *    page-spanning one. A repeat trim with nothing to return cost 1.3-1.5 us per such chunk
 *    (0.27-0.31 s for 200,000 free 8 KiB chunks); the first trim over the same heap, which zaps
 *    resident pages one madvise call at a time, 26-60 us per chunk (5-9 s). A program whose
 *    malloc needs the arena lock stops for that long. So: never trim when nothing was freed,
 *    learn what a trim costs here, and space trims by that cost.
 *  - "Was anything freed?" cannot come from RSS (a free does not change it) and an interposed
 *    free() costs 6 % of a malloc/free-bound loop even when it only forwards (the extra call
 *    layer), which the busy-throughput bound (>= 0.97x) does not allow. mallinfo2() answers it
 *    (free bytes and bytes in use) at 4.5-5.8 ms for 200,000 free chunks, 0.1-0.2 ms for
 *    10,000: a probe, taken only when a trim could follow, and spaced by its own learned cost.
 *  - A busy program that churns memory takes returned pages straight back (a page fault costs
 *    6-50 us here), so a busy program is trimmed only after newly free memory has waited
 *    busy_wait for a quiet moment, and a trim whose bytes come back within TS_REFAULT_WINDOW_NS
 *    doubles the wait (backoff).
 *  - Pages a program takes back after a trim come back one minor fault each (amule, trimmed
 *    periodically, measured ~1,400 minor faults/min against ~20 without), and a program that
 *    frees and reuses memory between two looks can take pages back without RSS ever rising
 *    back. So the refault watch also counts minor faults in the window after a trim against
 *    the rate of the window before it; an excess worth half the returned pages makes the trim
 *    futile, like half the returned bytes back in RSS.
 *  - A quiet program loses nothing to a trim (nobody waits for the arena lock), so it is probed
 *    and trimmed as soon as one observation window shows it quiet after it did something.
 */
#include "policy.h"

#include <stddef.h>

void ts_config_defaults(struct ts_config *cfg)
{
    cfg->policy = TS_POLICY_ADAPTIVE;
    cfg->interval_ns = (uint64_t)TS_DEFAULT_ADAPTIVE_INTERVAL_MS * TS_NS_PER_MS;
    cfg->threshold = TS_DEFAULT_THRESHOLD;
    cfg->pad = TS_DEFAULT_PAD;
    cfg->budget_ppm = TS_DEFAULT_BUDGET_PPM;
    cfg->busy_wait_ns = (uint64_t)TS_DEFAULT_BUSY_WAIT_MS * TS_NS_PER_MS;
    cfg->verbose = 0;
    cfg->log_path = NULL;
    cfg->page_size = 4096;
    cfg->thread = TS_THREAD_AUTO;
    cfg->stats_path = NULL;
    cfg->stats_keep = 0;
}

const char *ts_reason_name(enum ts_reason r)
{
    switch (r) {
    case TS_R_OFF: return "off";
    case TS_R_UNCHANGED: return "unchanged";
    case TS_R_NOTHING_FREED: return "nothing-freed";
    case TS_R_BELOW_THRESHOLD: return "below-threshold";
    case TS_R_WAIT_QUIET: return "wait-quiet";
    case TS_R_WAIT_BUSY_MIN: return "wait-busy-min";
    case TS_R_WAIT_BUDGET: return "wait-budget";
    case TS_R_WAIT_BACKOFF: return "wait-backoff";
    case TS_R_PROBE: return "probe";
    case TS_R_TRIM_QUIET: return "quiet";
    case TS_R_TRIM_BUSY: return "busy";
    case TS_R_TRIM_INTERVAL: return "interval";
    }
    return "?";
}

static uint64_t sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* cost / (ppm / 1e6) without overflow; ppm 0: never */
static uint64_t gap_for(uint64_t cost_ns, uint32_t ppm)
{
    if (ppm == 0)
        return UINT64_MAX;
    if (cost_ns > UINT64_MAX / 1000000u)
        return UINT64_MAX;
    return cost_ns * 1000000u / ppm;
}

/* dcpu / dt <= ppm / 1e6, without overflow */
static int cpu_share_at_most(uint64_t dcpu, uint64_t dt, uint32_t ppm)
{
    if (dcpu <= UINT64_MAX / 1000000u && dt <= UINT64_MAX / (ppm ? ppm : 1))
        return dcpu * 1000000u <= dt * ppm;
    return dcpu / ppm <= dt / 1000000u; /* coarse, only for absurdly long windows */
}

/* Gap between busy-time probes: a probe holds the arena lock for its whole walk and a busy
 * program's malloc waits for it, so its cost is spread thinner than a quiet program's. Spaced by
 * the larger of the learned and the last cost: the heap can grow between probes, and the first
 * probe after a large free is the first to see its cost. */
static uint64_t busy_probe_gap(const struct ts_policy_state *st, uint64_t probe_gap)
{
    uint64_t cost = max64(st->probe_cost_ewma_ns, st->probe_cost_last_ns);
    uint64_t gap = min64(max64(gap_for(cost, TS_BUSY_PROBE_BUDGET_PPM), TS_BUSY_PROBE_NS),
                         TS_BUSY_PROBE_MAX_NS);
    return max64(gap, probe_gap);
}

static uint64_t ewma(uint64_t old, uint64_t v)
{
    /* alpha 1/2: the first trim over a heap is the expensive one (it zaps resident pages),
     * repeats cost a fraction; a half-life of one sample follows that quickly */
    uint64_t e = old ? old / 2 + v / 2 : v;
    return e ? e : 1;
}

static void fault_sample(struct ts_policy_state *st, const struct ts_obs *o);

static void learn_probe_cost(struct ts_policy_state *st, uint64_t probe_ns)
{
    st->probe_cost_ewma_ns = ewma(st->probe_cost_ewma_ns, probe_ns);
    st->probe_cost_last_ns = probe_ns;
}

void ts_policy_init(struct ts_policy_state *st, const struct ts_config *cfg, const struct ts_obs *first)
{
    struct ts_policy_state z = {0};
    *st = z;
    st->prev = *first;
    st->prev.heap_valid = 0;
    st->base_rss_bytes = first->rss_bytes;
    /* memory already free when the trimmer starts (a forked child, a restart) counts as not
     * trimmed yet: the baseline takes all of it as resident */
    if (first->heap_valid) {
        st->base_used_bytes = first->heap_used_bytes + first->heap_free_bytes;
        st->last_est = first->heap_free_bytes;
        st->cpu_at_look_ns = first->prog_cpu_ns;
        /* the baseline probe is a probe: the next one is spaced by its cost like any other (a
         * trimmer started on a large heap would otherwise probe it twice in a row) */
        st->probed = 1;
        st->last_probe_ns = first->now_ns;
        learn_probe_cost(st, first->probe_ns);
    }
    st->last_trim_end_ns = first->now_ns;
    fault_sample(st, first);
    st->backoff = 1;
    st->probe_backoff = 1;
    st->sleep_ns = cfg->interval_ns;
}

uint64_t ts_policy_trimmable(const struct ts_policy_state *st, const struct ts_obs *obs)
{
    /* resident-not-in-use now minus right after the last trim, signed arithmetic by hand */
    uint64_t now_a = obs->rss_bytes + st->base_used_bytes;
    uint64_t now_b = st->base_rss_bytes + obs->heap_used_bytes;
    return min64(sub0(now_a, now_b), obs->heap_free_bytes);
}

/* Remembers (time, minor faults) of an observation for the window before a trim. */
static void fault_sample(struct ts_policy_state *st, const struct ts_obs *o)
{
    if (st->fault_n > 0) {
        const struct ts_fault_sample *last =
            &st->fault_ring[(st->fault_head + TS_FAULT_RING - 1) % TS_FAULT_RING];
        if (o->now_ns < last->now_ns || o->minor_faults < last->faults)
            st->fault_n = 0; /* a clock or counter that went back: start over */
        else if (o->now_ns == last->now_ns)
            return;
    }
    st->fault_ring[st->fault_head].now_ns = o->now_ns;
    st->fault_ring[st->fault_head].faults = o->minor_faults;
    st->fault_head = (st->fault_head + 1) % TS_FAULT_RING;
    if (st->fault_n < TS_FAULT_RING)
        st->fault_n++;
}

/* Faults over the TS_REFAULT_WINDOW_NS before `at` (faults at that moment: `faults`), from the
 * latest sample at least that old, else the oldest one (a shorter window); *span_ns gets the
 * window's real length (0: no sample before `at`). */
static uint64_t faults_before(const struct ts_policy_state *st, uint64_t at, uint64_t faults,
                              uint64_t *span_ns)
{
    const struct ts_fault_sample *pick = NULL;
    for (unsigned i = 0; i < st->fault_n; i++) {
        const struct ts_fault_sample *x =
            &st->fault_ring[(st->fault_head + TS_FAULT_RING - 1 - i) % TS_FAULT_RING];
        if (x->now_ns >= at || x->faults > faults)
            continue;
        pick = x; /* going back in time: the last one kept is the oldest usable */
        if (at - x->now_ns >= TS_REFAULT_WINDOW_NS)
            break;
    }
    *span_ns = pick ? at - pick->now_ns : 0;
    return pick ? faults - pick->faults : 0;
}

/* n * num / den without overflow for the sizes at hand (faults < 2^40, windows < 2^50 ns) */
static uint64_t scale(uint64_t n, uint64_t num, uint64_t den)
{
    if (den == 0)
        return 0;
    return (uint64_t)((double)n * (double)num / (double)den + 0.5);
}

static void futile(struct ts_policy_state *st)
{
    st->futile++;
    if (st->backoff < TS_MAX_BACKOFF)
        st->backoff *= 2;
}

static struct ts_decision after_probe(struct ts_policy_state *st, const struct ts_config *cfg,
                                      const struct ts_obs *obs)
{
    const uint64_t interval = cfg->interval_ns ? cfg->interval_ns : TS_NS_PER_MS;
    struct ts_decision d = {TS_SLEEP, TS_R_NOTHING_FREED, interval, 0};
    st->probes++;
    st->probed = 1;
    learn_probe_cost(st, obs->probe_ns);
    st->last_probe_ns = obs->now_ns;
    st->cpu_at_look_ns = obs->prog_cpu_ns;
    st->sleep_ns = interval;

    const uint64_t thr = cfg->threshold;
    const uint64_t est = ts_policy_trimmable(st, obs);
    /* threshold 0: no estimate needed, every look may trim (with the interval policy: the naive
     * periodic trimmer) */
    const int enough = thr == 0 || est >= thr;
    st->last_est = est;
    d.trimmable = est;
    d.reason = est == 0 ? TS_R_NOTHING_FREED : TS_R_BELOW_THRESHOLD;

    if (cfg->policy == TS_POLICY_INTERVAL) {
        if (enough) {
            d.action = TS_TRIM;
            d.reason = TS_R_TRIM_INTERVAL;
            st->last_busy = 0;
        }
        return d;
    }

    const uint64_t since_trim = sub0(obs->now_ns, st->last_trim_end_ns);
    if (st->quiet) {
        if (!enough) {
            if (st->probe_backoff < TS_MAX_PROBE_BACKOFF)
                st->probe_backoff = (uint32_t)min64((uint64_t)st->probe_backoff * 2,
                                                    TS_MAX_PROBE_BACKOFF);
            return d;
        }
        st->probe_backoff = 1;
        d.action = TS_TRIM;
        d.reason = TS_R_TRIM_QUIET;
        st->last_busy = 0;
        return d;
    }

    /* busy */
    if (est < max64(thr, TS_BUSY_MIN)) {
        st->pending = 0;
        d.reason = TS_R_WAIT_BUSY_MIN;
        return d;
    }
    if (!st->pending) {
        st->pending = 1;
        st->pending_since_ns = obs->now_ns;
    }
    const uint64_t waited = sub0(obs->now_ns, st->pending_since_ns);
    if (waited < cfg->busy_wait_ns) {
        d.reason = TS_R_WAIT_QUIET;
        return d;
    }
    if (st->backoff > 1 && waited < cfg->busy_wait_ns * st->backoff) {
        d.reason = TS_R_WAIT_BACKOFF;
        return d;
    }
    if (st->cost_ewma_ns && since_trim < gap_for(st->cost_ewma_ns, cfg->budget_ppm)) {
        d.reason = TS_R_WAIT_BUDGET;
        return d;
    }
    d.action = TS_TRIM;
    d.reason = TS_R_TRIM_BUSY;
    st->last_busy = 1;
    return d;
}

/* The refault watch ends (RSS came back, or its window is over): judge the trim by RSS and by
 * the minor faults since it, against what the rate before it predicts for as long a window. */
static void end_watch(struct ts_policy_state *st, const struct ts_config *cfg,
                      const struct ts_obs *obs, int rss_back)
{
    struct ts_refault r = {0};
    r.window_ns = sub0(obs->now_ns, st->watch_start_ns);
    r.faults_after = sub0(obs->minor_faults, st->watch_faults_start);
    r.faults_expected = scale(st->watch_before_faults, r.window_ns, st->watch_before_ns);
    r.excess = sub0(r.faults_after, r.faults_expected);
    uint64_t page = cfg->page_size ? cfg->page_size : 4096;
    /* half the returned pages faulted back in: the same bar as half the bytes back in RSS */
    r.by_faults = r.excess >= (st->watch_returned / page + 1) / 2 && r.excess > 0;
    r.futile = rss_back || r.by_faults;
    st->watching = 0;
    st->refault_faults += r.excess;
    st->last_refault = r;
    st->refault_seq++;
    if (r.futile) {
        futile(st);
    } else {
        st->productive++;
        st->backoff = 1;
    }
}

struct ts_decision ts_policy_decide(struct ts_policy_state *st, const struct ts_config *cfg,
                                    const struct ts_obs *obs)
{
    const uint64_t interval = cfg->interval_ns ? cfg->interval_ns : TS_NS_PER_MS;
    struct ts_decision d = {TS_SLEEP, TS_R_OFF, interval, 0};

    if (cfg->policy == TS_POLICY_OFF)
        return d;
    if (obs->heap_valid)
        return after_probe(st, cfg, obs);

    /* Was the window since the previous observation quiet? */
    uint64_t dt = sub0(obs->now_ns, st->prev.now_ns);
    uint64_t dcpu = sub0(obs->prog_cpu_ns, st->prev.prog_cpu_ns);
    int quiet = dt > 0 && cpu_share_at_most(dcpu, dt, TS_QUIET_CPU_PPM);
    if (quiet && !st->quiet)
        st->quiet_since_ns = st->prev.now_ns;
    st->quiet = quiet;

    /* Refault watch: did the program take the last trim's bytes back? */
    fault_sample(st, obs);
    if (st->watching) {
        int rss_back = obs->rss_bytes >= st->watch_rss_after + st->watch_returned / 2;
        if (rss_back || obs->now_ns >= st->watch_until_ns)
            end_watch(st, cfg, obs, rss_back);
    }
    st->prev = *obs;

    if (cfg->policy == TS_POLICY_INTERVAL) {
        d.action = TS_PROBE;
        d.reason = TS_R_PROBE;
        return d;
    }

    const uint64_t activity = sub0(obs->prog_cpu_ns, st->cpu_at_look_ns);
    const uint64_t since_trim = sub0(obs->now_ns, st->last_trim_end_ns);
    const uint64_t since_probe = st->probed ? sub0(obs->now_ns, st->last_probe_ns) : UINT64_MAX;
    const uint64_t probe_gap = gap_for(st->probe_cost_ewma_ns, TS_PROBE_BUDGET_PPM);

    if (quiet) {
        if (activity < TS_MIN_ACTIVITY_NS && (cfg->threshold == 0 || st->last_est < cfg->threshold)) {
            /* the program did nothing since the last look, which found nothing worth a trim:
             * nothing can have changed */
            d.reason = TS_R_UNCHANGED;
            if (!st->watching)
                st->sleep_ns = min64(max64(st->sleep_ns, interval) * 2,
                                     interval * TS_MAX_SLEEP_FACTOR);
            d.sleep_ns = st->watching ? interval : st->sleep_ns;
            return d;
        }
        st->sleep_ns = interval;
        if (st->cost_ewma_ns && since_trim < gap_for(st->cost_ewma_ns, TS_QUIET_BUDGET_PPM)) {
            d.reason = TS_R_WAIT_BUDGET;
            return d;
        }
        if (st->backoff > 1 && since_trim < (uint64_t)st->backoff * TS_BACKOFF_UNIT_NS) {
            d.reason = TS_R_WAIT_BACKOFF;
            return d;
        }
        if (since_probe < max64(probe_gap, (uint64_t)st->probe_backoff * interval)) {
            d.reason = TS_R_WAIT_BUDGET;
            return d;
        }
        d.action = TS_PROBE;
        d.reason = TS_R_PROBE;
        return d;
    }

    /* busy: look every busy_probe_gap, and exactly when newly free memory has waited busy_wait */
    st->sleep_ns = interval;
    uint64_t due = busy_probe_gap(st, probe_gap);
    if (st->pending) {
        uint64_t until = st->pending_since_ns + cfg->busy_wait_ns * st->backoff;
        if (obs->now_ns >= until && since_probe >= probe_gap) {
            d.action = TS_PROBE;
            d.reason = TS_R_PROBE;
            return d;
        }
    }
    if (since_probe < due) {
        d.reason = st->pending ? TS_R_WAIT_QUIET : TS_R_WAIT_BUSY_MIN;
        return d;
    }
    d.action = TS_PROBE;
    d.reason = TS_R_PROBE;
    return d;
}

void ts_policy_trimmed(struct ts_policy_state *st, const struct ts_config *cfg,
                       const struct ts_obs *before, const struct ts_obs *after)
{
    uint64_t cost = sub0(after->now_ns, before->now_ns);
    st->cost_ewma_ns = ewma(st->cost_ewma_ns, cost);
    st->last_trim_end_ns = after->now_ns;
    st->prev = *after;
    st->prev.heap_valid = 0;
    st->quiet = 0;
    st->pending = 0;
    st->probe_backoff = 1;
    st->last_est = 0;
    st->cpu_at_look_ns = after->prog_cpu_ns;
    st->base_rss_bytes = after->rss_bytes;
    if (after->heap_valid) {
        st->base_used_bytes = after->heap_used_bytes;
        learn_probe_cost(st, after->probe_ns);
        st->last_probe_ns = after->now_ns;
        st->probed = 1;
    } else {
        st->base_used_bytes = before->heap_used_bytes;
    }
    st->trims++;

    uint64_t returned = ts_returned(before->rss_bytes, after->rss_bytes);
    uint64_t useful = st->last_busy ? TS_BUSY_USEFUL : (cfg->threshold ? cfg->threshold : 1);
    st->watching = 0;
    if (returned < useful) {
        futile(st);
    } else {
        st->watching = 1;
        st->watch_until_ns = after->now_ns + TS_REFAULT_WINDOW_NS;
        st->watch_rss_after = after->rss_bytes;
        st->watch_returned = returned;
        st->watch_start_ns = after->now_ns;
        st->watch_faults_start = after->minor_faults;
        st->watch_before_faults = faults_before(st, before->now_ns, before->minor_faults,
                                                &st->watch_before_ns);
    }
    fault_sample(st, after);
    st->last_busy = 0;
}
