/* Pins retention in per-thread arenas: worker threads interleave blocks with small live nodes in arenas of their own, free the blocks and go idle; RSS stays, MALLOC_ARENA_MAX does not change that, and malloc_trim(0) reaches every arena. */
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

struct node {
    struct node *next;
    char *block;
};

/* One list per worker, rooted in globals so memcheck finds every node reachable at exit. */
static struct node *heads[SCENARIO_MAX_WORKERS];
static long blocks_per_thread, block_size;
static struct scenario_workers workers;

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
    scenario_worker_at_peak(&workers);
    for (struct node *n = *head; n; n = n->next) {
        free(n->block);
        n->block = NULL;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long count = 10000, threads = 4;
    const struct scenario_option options[] = {
        {"--count", &count, 1, 100000000L},
        {"--size", &block_size, 1, 1L << 30},
        {"--threads", &threads, 1, SCENARIO_MAX_WORKERS},
        {0},
    };
    void *args[SCENARIO_MAX_WORKERS];
    struct scenario s;

    block_size = 64 * 1024;
    scenario_init(&s, "thread_arenas", options, argc, argv);
    blocks_per_thread = count / threads;
    for (long t = 0; t < threads; t++)
        args[t] = &heads[t];
    scenario_phase(&s, "baseline");

    scenario_workers_start(&workers, threads, worker, args);
    scenario_workers_wait_peak(&workers);
    scenario_phase(&s, "peak");
    scenario_workers_join(&workers);

    for (long t = 0; t < threads; t++)
        for (struct node *n = heads[t]; n; n = n->next)
            scenario_keep(&s, n, sizeof *n);
    scenario_finish(&s);
}
