#define _GNU_SOURCE
#include "scenario.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const phases[] = {"baseline", "peak", "after_free", "after_trim", "after_idle"};

/* How often the idle phase samples RSS: fine enough to see a trimmer act within its settle time. */
#define IDLE_SAMPLE_MS 100

static const struct scenario_option *case_options;

static void usage_error(const char *name, const char *what, const char *value)
{
    /* Before any allocation the case measures, so stdio's buffer may land in the heap harmlessly;
     * we exit right after anyway. */
    if (value)
        fprintf(stderr, "%s: %s '%s'\n", name, what, value);
    else
        fprintf(stderr, "%s: %s\n", name, what);
    fprintf(stderr, "usage: %s", name);
    for (const struct scenario_option *o = case_options; o && o->flag; o++)
        fprintf(stderr, " [%s N]", o->flag);
    fprintf(stderr, " [--trim] [--idle SECONDS] [--hold PHASE] [--report-fd FD]\n");
    exit(2);
}

static long parse_long(const char *name, const char *flag, const char *value, long min, long max)
{
    char *end;
    long v;

    if (!value)
        usage_error(name, "missing value for", flag);
    errno = 0;
    v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < min || v > max) {
        char what[64];
        snprintf(what, sizeof what, "bad value for %s:", flag);
        usage_error(name, what, value);
    }
    return v;
}

static const struct scenario_option *find_option(const struct scenario_option *options,
                                                 const char *flag)
{
    for (const struct scenario_option *o = options; o && o->flag; o++)
        if (!strcmp(o->flag, flag))
            return o;
    return NULL;
}

void scenario_init(struct scenario *s, const char *name, const struct scenario_option *options,
                   int argc, char **argv)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->report_fd = STDOUT_FILENO;
    case_options = options;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const struct scenario_option *o = find_option(options, a);
        if (o) {
            *o->value = parse_long(name, a, v, o->min, o->max);
            i++;
        } else if (!strcmp(a, "--trim")) {
            s->trim = 1;
        } else if (!strcmp(a, "--idle")) {
            s->idle_ms = parse_long(name, a, v, 0, 3600) * 1000;
            i++;
        } else if (!strcmp(a, "--hold")) {
            size_t k;
            if (!v)
                usage_error(name, "missing value for", a);
            for (k = 0; k < sizeof phases / sizeof phases[0]; k++)
                if (!strcmp(v, phases[k]))
                    break;
            if (k == sizeof phases / sizeof phases[0])
                usage_error(name, "unknown phase for --hold:", v);
            s->hold = v;
            i++;
        } else if (!strcmp(a, "--report-fd")) {
            s->report_fd = (int)parse_long(name, a, v, 0, INT_MAX);
            i++;
        } else {
            usage_error(name, "unknown option", a);
        }
    }
    if (rssprobe_floor_init(&s->live) != 0) {
        fprintf(stderr, "%s: cannot map the page-floor table: %s\n", name, strerror(errno));
        exit(1);
    }
}

int scenario_keep(struct scenario *s, const void *ptr, size_t size)
{
    return rssprobe_floor_add(&s->live, ptr, size);
}

static void hold_here(struct scenario *s, const char *phase)
{
    char line[128];
    sigset_t wait_for;
    int sig, n;

    /* Block SIGUSR1 first so a signal sent right after the hold line is not lost. */
    sigemptyset(&wait_for);
    sigaddset(&wait_for, SIGUSR1);
    sigprocmask(SIG_BLOCK, &wait_for, NULL);
    n = snprintf(line, sizeof line, "{\"hold\":\"%s\",\"pid\":%ld}\n", phase, (long)getpid());
    if (write(s->report_fd, line, (size_t)n) != n)
        _exit(1);
    while (sigwait(&wait_for, &sig) != 0)
        ;
}

static long monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void scenario_phase(struct scenario *s, const char *phase)
{
    struct rssprobe_sample sample;

    long started_us = monotonic_us();

    rssprobe_sample(&sample, s->name, phase);
    /* Measured from the end of the previous report, so reading smaps_rollup over a 600 MB heap
     * does not count as the case's allocating or freeing time. */
    if (s->reported_us)
        sample.work_us = started_us - s->reported_us;
    if (s->live.objects) {
        sample.floor_kb = rssprobe_floor_kb(&s->live);
        sample.live_objects = s->live.objects;
        sample.live_bytes = s->live.bytes;
    }
    if (rssprobe_emit(s->report_fd, &sample) != 0) {
        /* The runner cannot judge a case whose figures were lost: fail loudly. */
        _exit(1);
    }
    if (s->hold && !strcmp(s->hold, phase))
        hold_here(s, phase);
    s->reported_us = monotonic_us();
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void scenario_finish(struct scenario *s)
{
    scenario_phase(s, "after_free");
    if (s->trim) {
        malloc_trim(0);
        scenario_phase(s, "after_trim");
    }
    if (s->idle_ms > 0) {
        for (long waited = 0; waited < s->idle_ms; waited += IDLE_SAMPLE_MS) {
            sleep_ms(IDLE_SAMPLE_MS);
            scenario_phase(s, "idle");
        }
        scenario_phase(s, "after_idle");
    }
    exit(0);
}

void scenario_workers_start(struct scenario_workers *w, long count, void *(*fn)(void *), void **args)
{
    w->count = count;
    /* The workers plus the case's own thread meet at both barriers. */
    pthread_barrier_init(&w->at_peak, NULL, (unsigned)count + 1);
    pthread_barrier_init(&w->peak_measured, NULL, (unsigned)count + 1);
    for (long t = 0; t < count; t++) {
        if (pthread_create(&w->tids[t], NULL, fn, args[t]) != 0) {
            /* Before any measurement, so stdio's buffer cannot skew one. */
            fprintf(stderr, "cannot start worker thread %ld of %ld\n", t + 1, count);
            exit(1);
        }
    }
}

void scenario_workers_wait_peak(struct scenario_workers *w)
{
    pthread_barrier_wait(&w->at_peak);
}

void scenario_worker_at_peak(struct scenario_workers *w)
{
    pthread_barrier_wait(&w->at_peak);
    pthread_barrier_wait(&w->peak_measured);
}

void scenario_workers_join(struct scenario_workers *w)
{
    pthread_barrier_wait(&w->peak_measured);
    for (long t = 0; t < w->count; t++)
        pthread_join(w->tids[t], NULL);
}
