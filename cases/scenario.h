/* scenario: the harness every case program shares. It owns the case's command line and the phase
 * sequence (baseline, peak, after_free, after_trim, after_idle); rssprobe owns the measuring.
 * Nothing here touches the heap: a case's numbers must come from the case's own allocations. */
#ifndef SCENARIO_H
#define SCENARIO_H

#include <pthread.h>
#include <stddef.h>

#include "rssprobe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A numeric option of one case (--count, --size, ...), declared by the case with its default. */
struct scenario_option {
    const char *flag; /* "--count" */
    long *value;      /* holds the default; receives the parsed value */
    long min, max;
};

struct scenario {
    const char *name;
    int trim;            /* --trim: call malloc_trim(0) after the free */
    long idle_ms;        /* --idle SECONDS: stay quiet after the free, sampling RSS */
    const char *hold;    /* --hold PHASE: stop after PHASE until SIGUSR1 */
    int report_fd;       /* --report-fd: where the JSON lines go (default stdout) */
    struct rssprobe_floor live; /* the objects the case keeps alive after the free */
    long reported_us;           /* when the previous phase was reported (CLOCK_MONOTONIC, us) */
};

/* Parses argv: the case's own options (an array ended by a zeroed entry) and the harness's
 * (--trim, --idle, --hold, --report-fd). On a bad flag or value prints one line naming it and
 * exits with status 2. Call it before the case allocates anything. */
void scenario_init(struct scenario *s, const char *name, const struct scenario_option *options,
                   int argc, char **argv);

/* Measures and reports one phase (and holds there if asked). */
void scenario_phase(struct scenario *s, const char *phase);

/* Records a live object for the page floor. Returns 0, or -1 when the floor is out of memory. */
int scenario_keep(struct scenario *s, const void *ptr, size_t size);

/* The phases after the free: after_free, then after_trim with --trim, then after_idle with --idle.
 * Then exit(0) with the live objects still allocated, as the seed's program ends: memcheck then
 * reports them as still reachable (a return from main would run destructors and free them). */
void scenario_finish(struct scenario *s) __attribute__((noreturn));

/* Worker threads that allocate, stop at the peak until the case has measured it, then free and
 * end. The case: scenario_workers_start, scenario_workers_wait_peak, scenario_phase(s, "peak"),
 * scenario_workers_join. A worker: allocate, scenario_worker_at_peak, free, return. */
#define SCENARIO_MAX_WORKERS 64

struct scenario_workers {
    long count;
    pthread_t tids[SCENARIO_MAX_WORKERS];
    pthread_barrier_t at_peak, peak_measured;
};

/* Starts count workers running fn(args[i]); exits with status 1 when a thread cannot start. */
void scenario_workers_start(struct scenario_workers *w, long count, void *(*fn)(void *), void **args);
void scenario_workers_wait_peak(struct scenario_workers *w);
void scenario_worker_at_peak(struct scenario_workers *w);
void scenario_workers_join(struct scenario_workers *w);

#ifdef __cplusplus
}
#endif
#endif
