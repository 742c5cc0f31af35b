/* Pins the search-service pattern: a long-lived index grows while short-lived query buffers come and go across threads; index entries land in the buffers' holes and pin them, so RSS ends at several times the live data; malloc_trim(0) returns the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* Queries in flight per thread: buffers live a short while, so the index entries allocated
 * meanwhile fall into the holes their predecessors left. */
#define WINDOW 32

struct entry {
    struct entry *next;
    uint64_t doc, offset, score, pad; /* 40 B (a 48 B chunk): a plausible index posting */
};

static struct entry *index_heads[SCENARIO_MAX_WORKERS];
static long queries_per_thread, max_query_size;
static struct scenario_workers workers;

/* Query sizes from a per-thread xorshift: reproducible and free of libc's shared rand() lock. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static void *server(void *arg)
{
    struct entry **index = arg;
    char *window[WINDOW] = {0};
    uint64_t state = 0x9e3779b97f4a7c15ULL ^ (uintptr_t)arg;

    for (long q = 0; q < queries_per_thread; q++) {
        /* Queries grow over the run (as result sets do while the index grows), so a freed
         * buffer's hole is too small for the next buffers and only index entries reuse it. */
        size_t grown = (size_t)((double)max_query_size * (double)q / (double)queries_per_thread);
        size_t size = 4096 + grown + next_random(&state) % 4096;
        char **slot = &window[q % WINDOW];
        struct entry *e;

        free(*slot);
        *slot = malloc(size);
        e = malloc(sizeof *e);
        if (!*slot || !e)
            abort();
        memset(*slot, 'q', size);
        e->doc = (uint64_t)q;
        e->next = *index;
        *index = e;
    }
    scenario_worker_at_peak(&workers);
    for (int i = 0; i < WINDOW; i++)
        free(window[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    long queries = 200000, threads = 2;
    const struct scenario_option options[] = {
        {"--count", &queries, 1, 100000000L},
        {"--size", &max_query_size, 1, 1L << 26},
        {"--threads", &threads, 1, SCENARIO_MAX_WORKERS},
        {0},
    };
    void *args[SCENARIO_MAX_WORKERS];
    struct scenario s;

    max_query_size = 60 * 1024;
    scenario_init(&s, "long_lived_interleave", options, argc, argv);
    queries_per_thread = queries / threads;
    for (long t = 0; t < threads; t++)
        args[t] = &index_heads[t];
    scenario_phase(&s, "baseline");

    scenario_workers_start(&workers, threads, server, args);
    scenario_workers_wait_peak(&workers);
    scenario_phase(&s, "peak");
    scenario_workers_join(&workers);

    for (long t = 0; t < threads; t++)
        for (struct entry *e = index_heads[t]; e; e = e->next)
            scenario_keep(&s, e, sizeof *e);
    scenario_finish(&s);
}
