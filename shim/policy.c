/* trimshim policy. Pure: everything it knows comes in through ts_obs.
 *
 * Facts measured on the reference machine (Debian 12, glibc 2.36, a 2-vCPU VM) behind the
 * constants in policy.h:
 *  - malloc_trim(0) walks every free chunk of every arena under the arena lock and madvises each
 *    page-spanning one: a repeat trim with nothing to return cost 1.3-1.5 us per such chunk
 *    (0.27-0.31 s for 200,000 free 8 KiB chunks), the first trim over the same heap 26 us per
 *    chunk (5.3 s: zapping resident pages one madvise at a time). A program whose malloc needs the
 *    arena lock stops for that long. So: never trim when nothing was freed, learn what a trim
 *    costs here, and space trims by that cost.
 *  - A busy program that churns memory takes the returned pages straight back (page faults cost
 *    6-14 us each here); a trim then is pure loss. So a busy program is trimmed only after freed
 *    memory has waited busy_wait for a quiet moment, and a trim whose bytes come back within
 *    TS_REFAULT_WINDOW_NS doubles the wait (backoff).
 *  - A quiet program loses nothing to a trim (nobody waits for the arena lock), so it is trimmed
 *    as soon as one observation window shows it quiet, limited only by TS_QUIET_BUDGET_PPM of the
 *    learned cost so a program that keeps freeing a little while idle is not trimmed in a loop.
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
}

const char *ts_reason_name(enum ts_reason r)
{
    switch (r) {
    case TS_R_OFF: return "off";
    case TS_R_NOTHING_FREED: return "nothing-freed";
    case TS_R_BELOW_THRESHOLD: return "below-threshold";
    case TS_R_WAIT_QUIET: return "wait-quiet";
    case TS_R_WAIT_BUSY_MIN: return "wait-busy-min";
    case TS_R_WAIT_BUDGET: return "wait-budget";
    case TS_R_WAIT_BACKOFF: return "wait-backoff";
    case TS_R_WAIT_INTERVAL: return "wait-interval";
    case TS_R_TRIM_QUIET: return "quiet";
    case TS_R_TRIM_BUSY: return "busy";
    case TS_R_TRIM_INTERVAL: return "interval";
    }
    return "?";
}

static uint64_t sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* cost * 1e6 / ppm without overflow for any cost below ~584 years */
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

void ts_policy_init(struct ts_policy_state *st, const struct ts_config *cfg, const struct ts_obs *first)
{
    struct ts_policy_state z = {0};
    *st = z;
    st->prev = *first;
    st->at_trim = *first;
    st->last_trim_end_ns = first->now_ns;
    st->backoff = 1;
    st->sleep_ns = cfg->interval_ns;
}

static void futile(struct ts_policy_state *st)
{
    st->futile++;
    if (st->backoff < TS_MAX_BACKOFF)
        st->backoff *= 2;
}

struct ts_decision ts_policy_decide(struct ts_policy_state *st, const struct ts_config *cfg,
                                    const struct ts_obs *obs)
{
    struct ts_decision d = {0, TS_R_OFF, cfg->interval_ns};
    const uint64_t interval = cfg->interval_ns ? cfg->interval_ns : TS_NS_PER_MS;
    d.sleep_ns = interval;

    /* Was the window since the previous observation quiet? */
    uint64_t dt = sub0(obs->now_ns, st->prev.now_ns);
    uint64_t dcpu = sub0(obs->prog_cpu_ns, st->prev.prog_cpu_ns);
    int quiet = dt > 0 && cpu_share_at_most(dcpu, dt, TS_QUIET_CPU_PPM);
    if (quiet && !st->quiet)
        st->quiet_since_ns = st->prev.now_ns;
    st->quiet = quiet;

    /* Refault watch: did the program take the last trim's bytes back? */
    if (st->watching) {
        if (obs->rss_bytes >= st->watch_rss_after + st->watch_returned / 2) {
            st->watching = 0;
            futile(st);
        } else if (obs->now_ns >= st->watch_until_ns) {
            st->watching = 0;
            st->productive++;
            st->backoff = 1;
        }
    }

    const uint64_t pending = sub0(obs->freed_bytes, st->at_trim.freed_bytes);
    const uint64_t thr = cfg->threshold ? cfg->threshold : 1;
    const int changed = obs->freed_bytes != st->prev.freed_bytes;
    st->prev = *obs;

    if (cfg->policy == TS_POLICY_OFF) {
        d.reason = TS_R_OFF;
        return d;
    }

    if (pending < thr) {
        st->pending = 0;
        d.reason = pending == 0 ? TS_R_NOTHING_FREED : TS_R_BELOW_THRESHOLD;
        if (cfg->policy == TS_POLICY_ADAPTIVE && quiet && !changed && !st->watching) {
            /* nothing happening: look less often */
            st->sleep_ns = min64(max64(st->sleep_ns, interval) * 2,
                                 interval * TS_MAX_SLEEP_FACTOR);
        } else {
            st->sleep_ns = interval;
        }
        d.sleep_ns = st->sleep_ns;
        return d;
    }
    st->sleep_ns = interval;
    d.sleep_ns = interval;
    if (!st->pending) {
        st->pending = 1;
        st->pending_since_ns = obs->now_ns - dt; /* freed during the window just observed */
    }

    if (cfg->policy == TS_POLICY_INTERVAL) {
        d.trim = 1;
        d.reason = TS_R_TRIM_INTERVAL;
        st->last_busy = 0;
        return d;
    }

    const uint64_t since = sub0(obs->now_ns, st->last_trim_end_ns);
    if (quiet) {
        /* learned cost: trims take at most TS_QUIET_BUDGET_PPM of the time */
        if (st->cost_ewma_ns && since < gap_for(st->cost_ewma_ns, TS_QUIET_BUDGET_PPM)) {
            d.reason = TS_R_WAIT_BUDGET;
            return d;
        }
        if (st->backoff > 1 && since < (uint64_t)st->backoff * TS_BACKOFF_UNIT_NS) {
            d.reason = TS_R_WAIT_BACKOFF;
            return d;
        }
        d.trim = 1;
        d.reason = TS_R_TRIM_QUIET;
        st->last_busy = 0;
        return d;
    }

    /* busy */
    if (pending < max64(thr, TS_BUSY_MIN_FREED)) {
        d.reason = TS_R_WAIT_BUSY_MIN;
        return d;
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
    if (st->cost_ewma_ns && since < gap_for(st->cost_ewma_ns, cfg->budget_ppm)) {
        d.reason = TS_R_WAIT_BUDGET;
        return d;
    }
    d.trim = 1;
    d.reason = TS_R_TRIM_BUSY;
    st->last_busy = 1;
    return d;
}

void ts_policy_trimmed(struct ts_policy_state *st, const struct ts_config *cfg,
                       const struct ts_obs *before, const struct ts_obs *after)
{
    uint64_t cost = sub0(after->now_ns, before->now_ns);
    /* EWMA, alpha 1/2: the first trim over a heap is the expensive one (it zaps resident pages),
     * repeats cost a fraction; half-life of one trim follows that quickly. */
    st->cost_ewma_ns = st->cost_ewma_ns ? st->cost_ewma_ns / 2 + cost / 2 : cost;
    if (st->cost_ewma_ns == 0)
        st->cost_ewma_ns = 1;
    st->at_trim = *before;
    st->last_trim_end_ns = after->now_ns;
    st->prev = *after;
    st->quiet = 0;
    st->pending = 0;
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
    }
    st->last_busy = 0;
}
