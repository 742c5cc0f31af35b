/* Pins retention in per-thread arenas: worker threads interleave blocks with small live nodes in arenas of their own, free the blocks and go idle; RSS stays, MALLOC_ARENA_MAX does not change that, and malloc_trim(0) reaches every arena. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

#define MAX_THREADS 64

struct node {
    struct node *next;
    char *block;
};

/* One list per worker, rooted in globals so memcheck finds every node reachable at exit. */
static struct node *heads[MAX_THREADS];
static long blocks_per_thread, block_size;
static pthread_barrier_t allocated, measured_peak, freed;

static void *worker(void *arg)
{
    struct node **head = arg;

    for (long i = 0; i < blocks_per_thread; i++) {
        char *block = malloc((size_t)block_size);
        struct node *n = malloc(sizeof *n);
        if (!block || !n)
            abort();
        memset(block, 'a', (size_t)block_size);
        n->block = block;
        n->next = *head;
        *head = n;
    }
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&measured_peak);
    for (struct node *n = *head; n; n = n->next) {
        free(n->block);
        n->block = NULL;
    }
    pthread_barrier_wait(&freed);
    return NULL;
}

int main(int argc, char **argv)
{
    long count = 10000, threads = 4;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &block_size, 1, 1L << 30},
        {"--threads", &threads, 1, MAX_THREADS},
        {0},
    };
    pthread_t tids[MAX_THREADS];
    struct scenario s;

    block_size = 64 * 1024;
    scenario_init(&s, "thread_arenas", options, argc, argv);
    blocks_per_thread = count / threads;
    pthread_barrier_init(&allocated, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&measured_peak, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&freed, NULL, (unsigned)threads + 1);
    scenario_phase(&s, "baseline");

    for (long t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, worker, &heads[t]) != 0)
            return 1;
    pthread_barrier_wait(&allocated);
    scenario_phase(&s, "peak");
    pthread_barrier_wait(&measured_peak);
    pthread_barrier_wait(&freed);
    for (long t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);

    for (long t = 0; t < threads; t++)
        for (struct node *n = heads[t]; n; n = n->next)
            scenario_keep(&s, n, sizeof *n);
    scenario_finish(&s);
}
